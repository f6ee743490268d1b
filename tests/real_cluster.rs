//! The real thing, as processes: a controller and three brokers of the `seedlog` binary on
//! 127.0.0.1, each with its own data directory. We produce with acks=all, kill the partition
//! leader's process, produce again, and read everything back: failover must lose no acknowledged
//! record and duplicate none. With the controller's leader rebalance, leadership goes back to a
//! killed and restarted preferred replica.

mod common;

use common::{
    client, run_with_deadline, start, start_cluster, start_cluster_of, start_cluster_with, values,
    Procs,
};
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

    let leader = leaders(&layout)
        .first()
        .copied()
        .flatten()
        .expect("events-0 has a leader") as usize;
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

/// The leader of each partition of `events`, by partition, from `seedlog metadata` (None while
/// leaderless; empty while the metadata cannot be read). The metadata lists
/// `__consumer_offsets` too, first.
fn leaders(layout: &[String]) -> Vec<Option<u64>> {
    let mut args: Vec<String> = vec!["metadata".into()];
    args.extend(layout.iter().cloned());
    let (md, code) = client(&args);
    let Some(md) = md.first().filter(|_| code == 0) else {
        return Vec::new();
    };
    let md: serde_json::Value = serde_json::from_str(md).expect("metadata JSON");
    let parts = md["partitions"].as_array().cloned().unwrap_or_default();
    let mut events: Vec<(u64, Option<u64>)> = parts
        .iter()
        .filter(|p| p["tp"]["topic"] == "events")
        .map(|p| {
            (
                p["tp"]["partition"].as_u64().unwrap_or(0),
                p["leader"].as_u64(),
            )
        })
        .collect();
    events.sort_unstable();
    events.into_iter().map(|(_, leader)| leader).collect()
}

/// Polls `leaders` until `want` holds or 30 s pass; returns the last leaders seen.
fn wait_for_leaders(layout: &[String], want: impl Fn(&[Option<u64>]) -> bool) -> Vec<Option<u64>> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let now = leaders(layout);
        if want(&now) || std::time::Instant::now() > deadline {
            return now;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn leadership_returns_to_the_preferred_replica_after_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    // Partition p of `events` prefers broker p; the controller rebalances every 500 ms.
    let mut cluster = start_cluster_with(
        dir.path(),
        1,
        "events:3:3",
        &["--leader-rebalance-interval-ms", "500"],
        &["--min-insync-replicas", "2"],
    );
    let layout = cluster.layout.clone();
    let preferred = |l: &[Option<u64>]| l.len() == 3 && (0..3).all(|p| l[p] == Some(p as u64));
    let now = wait_for_leaders(&layout, preferred);
    assert!(
        preferred(&now),
        "not every partition on its preferred replica: {now:?}"
    );
    // Broker 0 (process 1; the controller is process 0) is killed: partition 0 moves away.
    let child = &mut cluster.procs.0[1].1;
    child.kill().expect("kill broker 0");
    let _ = child.wait();
    let moved = |l: &[Option<u64>]| l.len() == 3 && l[0].is_some_and(|b| b != 0);
    let now = wait_for_leaders(&layout, moved);
    assert!(
        moved(&now),
        "partition 0 did not move off the killed broker: {now:?}"
    );
    // Back, it rejoins the ISR, and the rebalance hands partition 0 back to it.
    cluster.procs.0[1].1 = start(&cluster.args[1]);
    let now = wait_for_leaders(&layout, preferred);
    assert!(preferred(&now), "partition 0 not back on broker 0: {now:?}");
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

/// 4 096 records of 4 KiB asked for in one batch (`--batch-size` far above it): journaled as one
/// append they took a frame past the 16 MiB frame limit, were acknowledged, and then the leader
/// refused to restart ("frame ... declares 16853944 bytes, more than the 16777216-byte limit").
/// The producer now closes a batch before it takes more than one append may, and the
/// leader refuses a larger one. Every broker is restarted, and every record is read back.
#[test]
fn large_batches_are_acknowledged_and_read_back_after_every_broker_restarts() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut cluster = start_cluster_of(dir.path(), 1, "big:1:3", &["--min-insync-replicas", "2"]);
    let layout = cluster.layout.clone();
    let prefix = "x".repeat(4056);
    let mut args: Vec<String> = vec!["produce".into()];
    args.extend(layout.clone());
    args.extend(
        [
            "--topic",
            "big",
            "--count",
            "4096",
            "--keys",
            "0",
            "--prefix",
            &prefix,
            "--batch-size",
            "100000000",
            "--linger-ms",
            "2000",
            "--timeout-ms",
            "60000",
        ]
        .map(String::from),
    );
    let (sent, code) = client(&args);
    let acked: BTreeSet<String> = values(&sent).into_iter().collect();
    assert_eq!((code, acked.len()), (0, 4096), "produce: {:?}", sent.last());
    // procs.0[0] is the controller; broker i is at i + 1.
    for i in 1..=3 {
        let child = &mut cluster.procs.0[i].1;
        child.kill().expect("kill a broker");
        let _ = child.wait();
    }
    for i in 1..=3 {
        cluster.procs.0[i].1 = start(&cluster.args[i]);
    }
    let mut args: Vec<String> = vec!["consume".into()];
    args.extend(layout);
    args.extend(["--topic", "big", "--count", "4096", "--timeout-ms", "60000"].map(String::from));
    let (read, code) = client(&args);
    let read: BTreeSet<String> = values(&read).into_iter().collect();
    assert_eq!(
        code,
        0,
        "consume after the restarts read {} records",
        read.len()
    );
    assert!(read == acked, "read back {} of 4096 records", read.len());
}
