//! The real thing, as processes: a controller and three brokers of the `seedlog` binary on
//! 127.0.0.1, each with its own data directory. We produce with acks=all, kill the partition
//! leader's process, produce again, and read everything back: failover must lose no acknowledged
//! record and duplicate none.

mod common;

use common::{client, run_with_deadline, start, start_cluster, values, Procs};
use std::collections::BTreeSet;
use std::time::Duration;

use seedlog::node::DiskOp;
use seedlog::protocol::{LogEntry, Record, TopicPartition};

#[test]
fn leader_process_killed_no_acknowledged_record_lost() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (mut procs, layout) =
        start_cluster(dir.path(), "events:1:3", &["--min-insync-replicas", "2"]);
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
    let ops: Vec<DiskOp> = (0..3)
        .map(|offset| DiskOp::Append {
            tp: TopicPartition::new("events", 0),
            entries: vec![LogEntry {
                offset,
                epoch: 1,
                record: Record::keyed("k", format!("v{offset}")),
                producer: None,
            }],
        })
        .collect();
    common::write_data_dir(&data, &ops);
    let log = data.join("ops.log");
    let mut bytes = std::fs::read(&log).expect("read");
    bytes[10] ^= 0x01;
    std::fs::write(&log, &bytes).expect("write");
    let ports = common::free_ports(2);
    let args = |extra: &[&str]| {
        let mut a: Vec<String> = vec!["broker".into(), "--id".into(), "0".into()];
        a.extend([
            "--brokers".into(),
            ports[0].clone(),
            "--controllers".into(),
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
