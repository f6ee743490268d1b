//! kill -9 of a partition leader's process while an idempotent confluent-kafka producer writes
//! to it (acks=all, min.insync.replicas 2, replication 3): no acknowledged record lost, none
//! duplicated, per-key order kept, offsets dense. tests/kafka/kill_leader.py produces and reads
//! back; this file kills and restarts the leader and checks what was read (`check_readback`,
//! whose own tests below show it failing on a lost, a duplicated and a reordered record).
//!
//! The clients are installed by tests/kafka/setup.sh; if they cannot be, the test fails.

mod common;

use common::{kafka_clients, kafka_script, start, start_kafka_cluster};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;
use std::time::Duration;

/// A record as the producer's delivery report or the consumer gave it.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
struct Rec {
    key: String,
    value: String,
    partition: u32,
    offset: u64,
    #[serde(default)]
    after_kill: bool,
}

#[derive(Deserialize)]
struct Outcome {
    acked: Vec<Rec>,
    read: Vec<Rec>,
    /// (low, high) watermark of each partition before the read.
    marks: Vec<(u64, u64)>,
}

/// Every acknowledged record read exactly once, at its acknowledged partition and offset; no
/// value read twice; each partition's offsets dense from 0 up to its high watermark; and in
/// each partition the per-key sequence numbers (values `key:seq`) increase with the offset.
fn check_readback(acked: &[Rec], read: &[Rec], marks: &[(u64, u64)]) -> Result<(), String> {
    let mut at: BTreeMap<&str, &Rec> = BTreeMap::new();
    for r in read {
        if let Some(first) = at.insert(&r.value, r) {
            return Err(format!(
                "duplicate: {} read at {}@{} and {}@{}",
                r.value, first.partition, first.offset, r.partition, r.offset
            ));
        }
    }
    for a in acked {
        match at.get(a.value.as_str()) {
            None => {
                return Err(format!(
                    "lost: {} acknowledged at {}@{}, never read",
                    a.value, a.partition, a.offset
                ))
            }
            Some(r) if (r.partition, r.offset) != (a.partition, a.offset) => {
                return Err(format!(
                    "moved: {} acknowledged at {}@{}, read at {}@{}",
                    a.value, a.partition, a.offset, r.partition, r.offset
                ))
            }
            Some(_) => {}
        }
    }
    let mut by_partition: BTreeMap<u32, Vec<&Rec>> = BTreeMap::new();
    for r in read {
        by_partition.entry(r.partition).or_default().push(r);
    }
    for (p, &(low, high)) in marks.iter().enumerate() {
        let mut records = by_partition.remove(&(p as u32)).unwrap_or_default();
        records.sort_by_key(|r| r.offset);
        let offsets: Vec<u64> = records.iter().map(|r| r.offset).collect();
        if low != 0 || offsets != (0..high).collect::<Vec<_>>() {
            return Err(format!(
                "partition {p}: offsets read are not dense from 0 to the high watermark {high} \
                 (low {low}): {} records, first gap after {:?}",
                offsets.len(),
                offsets.windows(2).find(|w| w[1] != w[0] + 1).map(|w| w[0])
            ));
        }
        let mut last: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
        for r in records {
            let seq = r
                .value
                .strip_prefix(&format!("{}:", r.key))
                .and_then(|s| s.parse::<u64>().ok())
                .ok_or_else(|| format!("value {} is not {}:<sequence>", r.value, r.key))?;
            if let Some((prev, prev_offset)) = last.insert(&r.key, (seq, r.offset)) {
                if seq <= prev {
                    return Err(format!(
                        "per-key order: {} at {p}@{} after {}:{prev} at {p}@{prev_offset}",
                        r.value, r.offset, r.key
                    ));
                }
            }
        }
    }
    if let Some(p) = by_partition.keys().next() {
        return Err(format!(
            "records read from partition {p}, which has no watermarks"
        ));
    }
    Ok(())
}

#[test]
fn kill_9_of_a_leader_during_idempotent_produce_loses_and_duplicates_nothing() {
    let python = kafka_clients();
    let dir = tempfile::tempdir().expect("temp dir");
    let (mut cluster, kafka) = start_kafka_cluster(dir.path(), "events:3:3");
    let out = dir.path().join("outcome.json");
    let mut driver = kafka_script(&python, "kill_leader.py", &kafka)
        .args(["--seconds", "12", "--out"])
        .arg(&out)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the producer");
    let mut stdin = driver.stdin.take().expect("stdin");
    let stdout = BufReader::new(driver.stdout.take().expect("stdout"));
    let mut killed = None;
    for line in stdout.lines().map_while(Result::ok) {
        eprintln!("driver: {line}");
        let Some(leader) = line.strip_prefix("LEADER ") else {
            continue;
        };
        let leader: usize = leader.trim().parse().expect("a broker id");
        // The controller is procs.0[0]; broker i is at i + 1.
        let (name, child) = &mut cluster.procs.0[leader + 1];
        child.kill().expect("kill -9 the leader");
        let _ = child.wait();
        eprintln!("killed {name} (SIGKILL), the leader of events-0");
        writeln!(stdin, "KILLED").expect("tell the driver");
        killed = Some(leader);
        // Down for a few seconds (the producer moves to the new leader), then back.
        std::thread::sleep(Duration::from_secs(3));
        cluster.procs.0[leader + 1].1 = start(&cluster.args[leader + 1]);
        eprintln!("restarted broker {leader}");
    }
    let status = driver.wait().expect("wait for the driver");
    assert!(status.success(), "the producer/reader failed: {status}");
    let killed = killed.expect("the driver never named a leader to kill");
    let outcome: Outcome =
        serde_json::from_str(&std::fs::read_to_string(&out).expect("read the outcome"))
            .expect("outcome JSON");
    let after: Vec<&Rec> = outcome.acked.iter().filter(|r| r.after_kill).collect();
    assert!(
        after.iter().any(|r| r.partition == 0),
        "no record of events-0 was acknowledged after its leader (broker {killed}) was killed"
    );
    eprintln!(
        "{} records acknowledged ({} after the kill of broker {killed}), {} read",
        outcome.acked.len(),
        after.len(),
        outcome.read.len()
    );
    if let Err(e) = check_readback(&outcome.acked, &outcome.read, &outcome.marks) {
        panic!("after kill -9 of broker {killed}: {e}");
    }
}

fn rec(key: &str, seq: u64, partition: u32, offset: u64) -> Rec {
    Rec {
        key: key.into(),
        value: format!("{key}:{seq}"),
        partition,
        offset,
        after_kill: false,
    }
}

/// A good readback: keys a and b interleaved in partition 0, c in partition 1.
fn good() -> (Vec<Rec>, Vec<(u64, u64)>) {
    let read = vec![
        rec("a", 0, 0, 0),
        rec("b", 0, 0, 1),
        rec("a", 1, 0, 2),
        rec("c", 0, 1, 0),
        rec("c", 1, 1, 1),
    ];
    (read, vec![(0, 3), (0, 2)])
}

#[test]
fn the_readback_check_passes_a_good_readback() {
    let (read, marks) = good();
    check_readback(&read, &read, &marks).expect("good");
    // An unacknowledged record that was written once is fine too.
    check_readback(&read[1..], &read, &marks).expect("good");
}

#[test]
fn the_readback_check_catches_a_lost_acknowledged_record() {
    let (read, marks) = good();
    let mut acked = read.clone();
    acked.push(rec("c", 2, 1, 2));
    let e = check_readback(&acked, &read, &marks).expect_err("lost");
    assert!(e.starts_with("lost: c:2"), "{e}");
}

#[test]
fn the_readback_check_catches_a_duplicate() {
    let (mut read, _) = good();
    read.push(Rec {
        offset: 2,
        ..rec("c", 1, 1, 2)
    });
    let e = check_readback(&read[..4], &read, &[(0, 3), (0, 3)]).expect_err("duplicate");
    assert!(e.starts_with("duplicate: c:1"), "{e}");
}

#[test]
fn the_readback_check_catches_a_reorder_a_gap_and_a_moved_record() {
    let (read, marks) = good();
    // a:1 before a:0 in partition 0.
    let mut reordered = read.clone();
    reordered[0].offset = 2;
    reordered[2].offset = 0;
    let e = check_readback(&reordered, &reordered, &marks).expect_err("reorder");
    assert!(e.starts_with("per-key order: a:0"), "{e}");
    // Offset 1 of partition 0 missing.
    let gap: Vec<Rec> = read.iter().filter(|r| r.value != "b:0").cloned().collect();
    let e = check_readback(&gap, &gap, &marks).expect_err("gap");
    assert!(e.contains("not dense"), "{e}");
    // Acknowledged at one offset, read at another.
    let mut acked = read.clone();
    acked[3].offset = 7;
    let e = check_readback(&acked, &read, &marks).expect_err("moved");
    assert!(e.starts_with("moved: c:0"), "{e}");
}
