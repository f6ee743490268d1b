//! Helpers for the tests that run the `seedlog` binary as processes: free ports, starting nodes
//! and waiting for READY, running clients under a deadline, and a cluster of 3 brokers and 1 or
//! more controllers.
#![allow(dead_code)] // each test file uses its own subset

use seedlog::node::DiskOp;
use seedlog::runtime::disk::{CorruptionPolicy, Disk};
use seedlog::runtime::file_disk::FileDisk;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub const BIN: &str = env!("CARGO_BIN_EXE_seedlog");

/// Kills the cluster's processes however the test ends.
pub struct Procs(pub Vec<(String, Child)>);

impl Drop for Procs {
    fn drop(&mut self) {
        for (_, child) in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `n` ports on 127.0.0.1 that were free when asked and that no earlier call in this process
/// handed out. They come from 20000..32000, below Linux's ephemeral range (32768 and up), so
/// neither the kernel's port-0 binds nor the clients' outgoing connections take one between this
/// call and the node binding it; and each port is handed out once per process, so clusters
/// started by tests running in parallel never share one. The range start depends on the process
/// id, so two test binaries running at once start far apart.
pub fn free_ports(n: usize) -> Vec<String> {
    const LOW: u16 = 20000;
    const SPAN: u16 = 12000;
    static NEXT: std::sync::Mutex<Option<u16>> = std::sync::Mutex::new(None);
    let mut next = NEXT.lock().unwrap_or_else(|e| e.into_inner());
    let offset = next.get_or_insert_with(|| (std::process::id() % 40) as u16 * 300);
    let mut ports = Vec::with_capacity(n);
    for _ in 0..SPAN {
        if ports.len() == n {
            break;
        }
        let port = LOW + *offset % SPAN;
        *offset = (*offset + 1) % SPAN;
        // Free now: the node binds it with SO_REUSEADDR, so a closed earlier user is no bar.
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            ports.push(format!("127.0.0.1:{port}"));
        }
    }
    assert_eq!(ports.len(), n, "no {n} free ports in {LOW}..{}", LOW + SPAN);
    ports
}

/// Starts a node and waits for its READY line.
pub fn start(args: &[String]) -> Child {
    start_watched(args).0
}

/// Starts a node and waits for its READY line; the receiver gets every later line of its stdout
/// (a controller's ACTIVE and STANDBY lines). Its stdout is read to the end even if the receiver
/// is dropped, so the node never blocks on a full pipe.
pub fn start_watched(args: &[String]) -> (Child, mpsc::Receiver<String>) {
    let mut child = Command::new(BIN)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start seedlog");
    let stdout = child.stdout.take().expect("stdout");
    let (ready_tx, ready) = mpsc::channel();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.starts_with("READY") {
                let _ = ready_tx.send(());
            } else {
                let _ = tx.send(line);
            }
        }
    });
    ready
        .recv_timeout(Duration::from_secs(20))
        .unwrap_or_else(|_| panic!("node {args:?} did not become ready"));
    (child, rx)
}

/// Runs a client command to completion; returns its stdout lines and exit code.
pub fn client(args: &[String]) -> (Vec<String>, i32) {
    let (code, stdout, stderr) = run_with_deadline(args, Duration::from_secs(60));
    eprint!("{stderr}");
    let lines = stdout.lines().map(str::to_string).collect();
    (lines, code.unwrap_or(-1))
}

pub fn values(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v.get("value")?.as_str().map(str::to_string))
        .collect()
}

/// The records in a client's JSON lines, as (value, partition, offset): what a producer
/// acknowledged, or what a consumer read.
pub fn placed(lines: &[String]) -> Vec<(String, u64, u64)> {
    lines
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| {
            let value = v.get("value")?.as_str()?.to_string();
            Some((value, v["partition"].as_u64()?, v["offset"].as_u64()?))
        })
        .collect()
}

/// Writes `ops` through the library into a new data directory and syncs them: a node's disk as
/// an earlier run, or an earlier version, left it.
pub fn write_data_dir(dir: &Path, ops: &[DiskOp]) {
    let mut disk = FileDisk::open(dir, CorruptionPolicy::Refuse).expect("open");
    disk.recover().expect("recover empty");
    for op in ops {
        disk.append(op).expect("append");
    }
    disk.sync().expect("sync");
}

/// Runs the binary expecting it to exit by itself; returns (exit code, stdout, stderr). Kills it
/// and fails the test if it has not exited within `deadline`: a process that should finish must
/// never hang the suite (CI has a hard time limit).
pub fn run_with_deadline(args: &[String], deadline: Duration) -> (Option<i32>, String, String) {
    let (status, stdout, stderr) = run_to_end(Command::new(BIN).args(args), deadline);
    (status.code(), stdout, stderr)
}

/// Runs `cmd` to its end, reading its stdout and stderr as it goes; returns (status, stdout,
/// stderr). Kills it and fails the test, with its output, if it is still running after
/// `deadline`.
pub fn run_to_end(cmd: &mut Command, deadline: Duration) -> (ExitStatus, String, String) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
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
            panic!(
                "{cmd:?} still running after {deadline:?}; it should have exited:\n{}{}",
                out.join().unwrap_or_default(),
                err.join().unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let (stdout, stderr) = (
        out.join().unwrap_or_default(),
        err.join().unwrap_or_default(),
    );
    (status, stdout, stderr)
}

/// A controller and three brokers on 127.0.0.1, data under `dir`, with `topic` created
/// (`name:partitions:replication`); `broker_args` go to every broker. Returns the processes
/// (controller first, then broker i at i + 1) and the layout arguments clients need.
pub fn start_cluster(dir: &Path, topic: &str, broker_args: &[&str]) -> (Procs, Vec<String>) {
    let cluster = start_cluster_of(dir, 1, topic, broker_args);
    (cluster.procs, cluster.layout)
}

/// A running cluster: its processes (the controllers first, then broker i at `controllers + i`)
/// and the arguments each was started with (to restart it), the lines each controller printed
/// after READY, and the layout arguments clients need.
pub struct Cluster {
    pub procs: Procs,
    pub args: Vec<Vec<String>>,
    pub controller_lines: Vec<mpsc::Receiver<String>>,
    pub layout: Vec<String>,
}

/// `controllers` controllers (a quorum, ids 100, 101, ...) and three brokers on 127.0.0.1, data
/// under `dir`, with `topic` created (`name:partitions:replication`); `broker_args` go to every
/// broker.
pub fn start_cluster_of(
    dir: &Path,
    controllers: usize,
    topic: &str,
    broker_args: &[&str],
) -> Cluster {
    start_cluster_with(dir, controllers, topic, &[], broker_args)
}

/// `start_cluster_of` with `controller_args` added to every controller.
pub fn start_cluster_with(
    dir: &Path,
    controllers: usize,
    topic: &str,
    controller_args: &[&str],
    broker_args: &[&str],
) -> Cluster {
    let ports = free_ports(controllers + 3);
    let (controller_ports, broker_ports) = ports.split_at(controllers);
    let layout = vec!["--brokers".to_string(), broker_ports.join(",")];
    let mut node_layout = layout.clone();
    node_layout.extend(["--controllers".to_string(), controller_ports.join(",")]);
    let data = |name: &str| dir.join(name).display().to_string();
    let mut cluster = Cluster {
        procs: Procs(Vec::new()),
        args: Vec::new(),
        controller_lines: Vec::new(),
        layout,
    };
    for c in 0..controllers {
        let id = (100 + c).to_string();
        let mut args: Vec<String> = vec!["controller".into(), "--id".into(), id.clone()];
        args.extend(node_layout.clone());
        args.extend([
            "--topic".into(),
            topic.into(),
            "--data-dir".into(),
            data(&format!("controller{id}")),
        ]);
        args.extend(["--session-timeout-ms".into(), "1500".into()]);
        // Snapshots every few changes: restarts start from one, and a controller that was away
        // installs the active one's.
        args.extend(["--snapshot-every".into(), "4".into()]);
        args.extend(controller_args.iter().map(|a| a.to_string()));
        let (child, lines) = start_watched(&args);
        cluster.procs.0.push((format!("controller {id}"), child));
        cluster.controller_lines.push(lines);
        cluster.args.push(args);
    }
    for id in 0..3 {
        let mut args: Vec<String> = vec!["broker".into(), "--id".into(), id.to_string()];
        args.extend(node_layout.clone());
        args.extend(["--data-dir".into(), data(&format!("broker{id}"))]);
        args.extend(broker_args.iter().map(|a| a.to_string()));
        cluster.procs.0.push((format!("broker {id}"), start(&args)));
        cluster.args.push(args);
    }
    cluster
}

/// `seedlog <command> <layout> <extra>` as an argument list.
pub fn command(name: &str, layout: &[String], extra: &[&str]) -> Vec<String> {
    let mut args = vec![name.to_string()];
    args.extend(layout.iter().cloned());
    args.extend(extra.iter().map(|a| a.to_string()));
    args
}

/// The repository root, where tests/kafka and target/kafka-venv are.
pub const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Runs a command to completion within `deadline`; returns (success, stdout and stderr).
pub fn run_command(cmd: &mut Command, deadline: Duration) -> (bool, String) {
    let (status, stdout, stderr) = run_to_end(cmd, deadline);
    (status.success(), format!("{stdout}{stderr}"))
}

/// `python tests/kafka/<script> --bootstrap <kafka> --topic events --partitions 3`: a client
/// script against the topic `start_kafka_cluster` made as `events:3:3`.
pub fn kafka_script(python: &Path, script: &str, kafka: &str) -> Command {
    let mut cmd = Command::new(python);
    cmd.arg(Path::new(ROOT).join("tests/kafka").join(script));
    cmd.args([
        "--bootstrap",
        kafka,
        "--topic",
        "events",
        "--partitions",
        "3",
    ]);
    cmd
}

/// A controller and three brokers, each broker with a Kafka listener, min.insync.replicas 2,
/// and `topic` (`name:partitions:replication`); returns the cluster and the brokers' Kafka
/// addresses (comma-separated, broker i the i-th).
pub fn start_kafka_cluster(dir: &Path, topic: &str) -> (Cluster, String) {
    let kafka = free_ports(3).join(",");
    let cluster = start_cluster_of(
        dir,
        1,
        topic,
        &["--min-insync-replicas", "2", "--kafka-listeners", &kafka],
    );
    (cluster, kafka)
}

/// Installs the real Kafka clients (tests/kafka/setup.sh) or fails the test: it never skips.
/// Returns the virtual environment's Python.
/// The script runs once per test binary (the tests of one binary run in parallel), and
/// serializes itself across binaries with a lock file.
pub fn kafka_clients() -> std::path::PathBuf {
    static INSTALLED: std::sync::Mutex<bool> = std::sync::Mutex::new(false);
    let mut installed = INSTALLED.lock().unwrap_or_else(|e| e.into_inner());
    if !*installed {
        let (ok, out) = run_command(
            &mut Command::new(Path::new(ROOT).join("tests/kafka/setup.sh")),
            Duration::from_secs(1200),
        );
        eprint!("{out}");
        assert!(
            ok,
            "the Kafka clients could not be installed (tests/kafka/setup.sh):\n{out}"
        );
        *installed = true;
    }
    Path::new(ROOT).join("target/kafka-venv/bin/python")
}
