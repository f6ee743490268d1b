//! The real thing, as processes: a controller and three brokers of the `seedlog` binary on
//! 127.0.0.1, each with its own data directory. We produce with acks=all, kill the partition
//! leader's process, produce again, and read everything back: failover must lose no acknowledged
//! record and duplicate none.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use seedlog::node::DiskOp;
use seedlog::protocol::{LogEntry, Record, TopicPartition};
use seedlog::runtime::disk::{CorruptionPolicy, Disk};
use seedlog::runtime::file_disk::FileDisk;

const BIN: &str = env!("CARGO_BIN_EXE_seedlog");

/// Kills the cluster's processes however the test ends.
struct Procs(Vec<(String, Child)>);

impl Drop for Procs {
    fn drop(&mut self) {
        for (_, child) in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn free_ports(n: usize) -> Vec<String> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().expect("local addr").to_string())
        .collect()
}

/// Starts a node and waits for its READY line.
fn start(args: &[String]) -> Child {
    let mut child = Command::new(BIN)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start seedlog");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.starts_with("READY") {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(20))
        .unwrap_or_else(|_| panic!("node {args:?} did not become ready"));
    child
}

/// Runs a client command to completion; returns its stdout lines and exit code.
fn client(args: &[String]) -> (Vec<String>, i32) {
    let (code, stdout, stderr) = run_with_deadline(args, Duration::from_secs(60));
    eprint!("{stderr}");
    let lines = stdout.lines().map(str::to_string).collect();
    (lines, code.unwrap_or(-1))
}

fn values(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v.get("value")?.as_str().map(str::to_string))
        .collect()
}

#[test]
fn leader_process_killed_no_acknowledged_record_lost() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ports = free_ports(4);
    let (controller, brokers) = (ports[0].clone(), ports[1..].join(","));
    let layout = vec![
        "--brokers".to_string(),
        brokers.clone(),
        "--controller".to_string(),
        controller.clone(),
    ];
    let data = |name: &str| dir.path().join(name).display().to_string();
    let mut procs = Procs(Vec::new());
    let mut args: Vec<String> = vec!["controller".into()];
    args.extend(layout.clone());
    args.extend([
        "--topic".into(),
        "events:1:3".into(),
        "--data-dir".into(),
        data("controller"),
    ]);
    args.extend(["--session-timeout-ms".into(), "1500".into()]);
    procs.0.push(("controller".into(), start(&args)));
    for id in 0..3 {
        let mut args: Vec<String> = vec!["broker".into(), "--id".into(), id.to_string()];
        args.extend(layout.clone());
        args.extend(["--data-dir".into(), data(&format!("broker{id}"))]);
        args.extend(["--min-insync-replicas".into(), "2".into()]);
        procs.0.push((format!("broker {id}"), start(&args)));
    }
    let produce = |prefix: &str| {
        let mut args: Vec<String> = vec!["produce".into()];
        args.extend(layout.clone());
        args.extend([
            "--topic".into(),
            "events".into(),
            "--count".into(),
            "20".into(),
        ]);
        args.extend([
            "--prefix".into(),
            prefix.into(),
            "--timeout-ms".into(),
            "30000".into(),
        ]);
        client(&args)
    };
    let (first, code) = produce("before-");
    assert_eq!(code, 0, "first produce failed: {first:?}");
    let mut acked = values(&first);
    assert_eq!(acked.len(), 20);

    let mut args: Vec<String> = vec!["metadata".into()];
    args.extend(layout.clone());
    let (md, code) = client(&args);
    assert_eq!(code, 0, "metadata failed: {md:?}");
    let md: serde_json::Value = serde_json::from_str(&md[0]).expect("metadata JSON");
    let leader = md["partitions"][0]["leader"].as_u64().expect("a leader") as usize;
    // procs.0[0] is the controller; broker i is at i + 1.
    let (name, child) = &mut procs.0[leader + 1];
    child.kill().expect("kill the leader");
    let _ = child.wait();
    eprintln!("killed {name}, the leader of events-0");

    let (second, code) = produce("after-");
    assert_eq!(code, 0, "produce after failover failed: {second:?}");
    acked.extend(values(&second));
    assert_eq!(acked.len(), 40);

    let mut args: Vec<String> = vec!["consume".into()];
    args.extend(layout.clone());
    args.extend([
        "--topic".into(),
        "events".into(),
        "--count".into(),
        "40".into(),
    ]);
    args.extend(["--timeout-ms".into(), "20000".into()]);
    let (read, code) = client(&args);
    assert_eq!(code, 0, "consume did not read 40 records: {read:?}");
    let read = values(&read);
    let distinct: BTreeSet<&String> = read.iter().collect();
    assert_eq!(
        distinct.len(),
        read.len(),
        "a record was read twice: {read:?}"
    );
    for v in &acked {
        assert!(
            distinct.contains(v),
            "acknowledged record {v} lost after failover"
        );
    }
}

#[test]
fn a_corrupt_log_stops_the_broker_unless_repair_is_asked_for() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("broker0");
    // A genuine three-record log written through the library, then one bit flipped inside the
    // first record: valid frames follow the damage, so this is bit rot, not a torn tail.
    let mut disk = FileDisk::open(&data, CorruptionPolicy::Refuse).expect("open");
    disk.recover().expect("recover empty");
    for offset in 0..3 {
        let op = DiskOp::Append {
            tp: TopicPartition::new("events", 0),
            entries: vec![LogEntry {
                offset,
                epoch: 1,
                record: Record::keyed("k", format!("v{offset}")),
                producer: None,
            }],
        };
        disk.append(&op).expect("append");
    }
    disk.sync().expect("sync");
    drop(disk);
    let log = data.join("ops.log");
    let mut bytes = std::fs::read(&log).expect("read");
    bytes[10] ^= 0x01;
    std::fs::write(&log, &bytes).expect("write");
    let ports = free_ports(2);
    let args = |extra: &[&str]| {
        let mut a: Vec<String> = vec!["broker".into(), "--id".into(), "0".into()];
        a.extend([
            "--brokers".into(),
            ports[0].clone(),
            "--controller".into(),
            ports[1].clone(),
        ]);
        a.extend(["--data-dir".into(), data.display().to_string()]);
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let (code, _, stderr) = run_with_deadline(&args(&[]), Duration::from_secs(20));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("corrupt data at byte 0"), "{stderr}");
    // The refused file is untouched: nothing is dropped without being asked.
    assert_eq!(std::fs::read(&log).expect("read"), bytes);
    // With --repair-corruption it cuts the log at the damage and starts.
    let _broker = Procs(vec![(
        "broker".into(),
        start(&args(&["--repair-corruption"])),
    )]);
}

/// Runs the binary expecting it to exit by itself; returns (exit code, stdout, stderr). Kills it
/// and fails the test if it has not exited within `deadline`: a process that should finish must
/// never hang the suite (CI has a hard time limit).
fn run_with_deadline(args: &[String], deadline: Duration) -> (Option<i32>, String, String) {
    let mut child = Command::new(BIN)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start seedlog");
    let drain = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_string(&mut s);
            }
            s
        })
    };
    let out = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let err = drain(child.stderr.take().map(|p| Box::new(p) as _));
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("seedlog {args:?} still running after {deadline:?}; it should have exited");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let (stdout, stderr) = (
        out.join().unwrap_or_default(),
        err.join().unwrap_or_default(),
    );
    (status.code(), stdout, stderr)
}
