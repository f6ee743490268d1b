//! The controller quorum for real: three controllers and three brokers of the `seedlog` binary
//! as processes on 127.0.0.1. While producers write with acks=all, we SIGKILL the active
//! controller's process, wait for another controller to become active, then SIGKILL the
//! partition leader's broker: the new active controller must fence it and elect a new leader,
//! and producing must go on. Then the first controller killed restarts from its data directory
//! and the active one is killed again: the two left need each other to elect. Reading everything
//! back must show every acknowledged record at the offset it was acknowledged at, none twice.

mod common;

use common::{
    client, command, free_ports, placed, run_with_deadline, start_cluster_of, start_watched,
    write_data_dir, Cluster,
};
use seedlog::node::{ControllerImage, DiskOp};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Long enough for elections (1-2 s each, a few may split), broker fencing (1.5 s) and process
/// start-up on a loaded 2-core machine; the test polls, so a healthy run takes far less.
const PATIENCE: Duration = Duration::from_secs(90);

/// Acknowledged records: value -> (partition, offset).
type Acked = Arc<Mutex<BTreeMap<String, (u64, u64)>>>;

/// Polls `cond` every 100 ms until it holds; fails the test with `what` after `PATIENCE`.
fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < PATIENCE,
            "not within {PATIENCE:?}: {what}"
        );
        thread::sleep(Duration::from_millis(100));
    }
}

/// Reads the controllers' ACTIVE/STANDBY lines seen so far; returns the controller (index into
/// the cluster's controllers) active in the highest quorum epoch, with that epoch, unless it
/// reported standing down since.
fn active_controller(
    lines: &[mpsc::Receiver<String>],
    state: &mut [Option<u64>],
) -> Option<(usize, u64)> {
    for (i, rx) in lines.iter().enumerate() {
        while let Ok(line) = rx.try_recv() {
            eprintln!("controller {}: {line}", 100 + i);
            if line.starts_with("ACTIVE ") {
                let epoch = line.rsplit(' ').next().and_then(|e| e.parse().ok());
                state[i] = epoch;
            } else if line.starts_with("STANDBY ") {
                state[i] = None;
            }
        }
    }
    state
        .iter()
        .enumerate()
        .filter_map(|(i, e)| Some((i, (*e)?)))
        .max_by_key(|(_, e)| *e)
}

/// The partition leader the brokers report, if one is.
fn leader(layout: &[String]) -> Option<u64> {
    let (lines, code) = client(&command("metadata", layout, &["--timeout-ms", "5000"]));
    if code != 0 {
        return None;
    }
    let md: serde_json::Value = serde_json::from_str(lines.first()?).ok()?;
    md["partitions"]
        .as_array()?
        .iter()
        .find(|p| p["tp"]["topic"] == "events")?["leader"]
        .as_u64()
}

/// Runs producers one after another until `stop`, each sending 20 records with acks=all under a
/// prefix of its own; every acknowledged record goes into `acked`, whether or not the run as a
/// whole finished (a run cut short by a failover still had those records acknowledged).
fn keep_producing(
    layout: Vec<String>,
    acked: Acked,
    stop: Arc<AtomicBool>,
) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let mut run = 0;
        while !stop.load(Ordering::SeqCst) {
            let prefix = format!("r{run}-");
            let args = command(
                "produce",
                &layout,
                &[
                    "--topic",
                    "events",
                    "--count",
                    "20",
                    "--prefix",
                    &prefix,
                    "--timeout-ms",
                    "20000",
                ],
            );
            let (lines, _) = client(&args);
            let mut acked = acked.lock().unwrap();
            acked.extend(placed(&lines).into_iter().map(|(v, p, o)| (v, (p, o))));
            run += 1;
        }
    })
}

/// Three controllers and three brokers with `events` (1 partition, 3 replicas,
/// `min.insync.replicas` 2), once a controller is active and the partition has a leader: the
/// cluster, the controllers' activity as `active_controller` reads it, and the active one.
fn start_and_settle(dir: &std::path::Path) -> (Cluster, Vec<Option<u64>>, Option<(usize, u64)>) {
    let cluster = start_cluster_of(dir, 3, "events:1:3", &["--min-insync-replicas", "2"]);
    let mut state = vec![None; 3];
    let mut active = None;
    wait_for("a controller becomes active", || {
        active = active_controller(&cluster.controller_lines, &mut state);
        active.is_some()
    });
    wait_for("the partition has a leader", || {
        leader(&cluster.layout).is_some()
    });
    (cluster, state, active)
}

#[test]
fn active_controller_and_leader_killed_no_acknowledged_record_lost() {
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("temp dir");
    let (
        Cluster {
            mut procs,
            args,
            mut controller_lines,
            layout,
        },
        mut state,
        active,
    ) = start_and_settle(dir.path());

    let acked: Acked = Default::default();
    let stop = Arc::new(AtomicBool::new(false));
    let producer = keep_producing(layout.clone(), acked.clone(), stop.clone());
    let count = || acked.lock().unwrap().len();
    let progress = |what: &str| {
        let before = count();
        wait_for(&format!("40 more records acknowledged {what}"), || {
            count() >= before + 40
        });
    };
    progress("before any kill");

    // Kill the active controller; another must become active in a later epoch.
    let (killed, epoch) = active.expect("active");
    let (name, child) = &mut procs.0[killed];
    child.kill().expect("kill the active controller");
    let _ = child.wait();
    eprintln!("killed {name}, the active controller in epoch {epoch}");
    let mut next = None;
    wait_for("another controller becomes active", || {
        next = active_controller(&controller_lines, &mut state)
            .filter(|(i, e)| *i != killed && *e > epoch);
        next.is_some()
    });
    let (next, next_epoch) = next.expect("next active");
    eprintln!("controller {} active in epoch {next_epoch}", 100 + next);
    progress("after the active controller died");

    // Kill the partition leader's broker: the new active controller must elect another.
    let old_leader = leader(&layout).expect("a leader after the controller failover");
    let (name, child) = &mut procs.0[3 + old_leader as usize];
    child.kill().expect("kill the partition leader");
    let _ = child.wait();
    eprintln!("killed {name}, the leader of events-0");
    wait_for("the partition gets a new leader", || {
        leader(&layout).is_some_and(|l| l != old_leader)
    });
    progress("after the partition leader died");

    // Restart the first controller killed, from its data directory (epoch, vote and metadata
    // log), then kill the active one: the two left elect only with each other's votes, so the
    // restarted one must take part again, bound by the epoch and vote it wrote before it died.
    let (child, lines) = start_watched(&args[killed]);
    procs.0[killed].1 = child;
    controller_lines[killed] = lines;
    state[killed] = None;
    eprintln!("restarted controller {}", 100 + killed);
    let (name, child) = &mut procs.0[next];
    child.kill().expect("kill the active controller again");
    let _ = child.wait();
    eprintln!("killed {name}, the active controller in epoch {next_epoch}");
    wait_for("a third controller becomes active", || {
        active_controller(&controller_lines, &mut state)
            .is_some_and(|(i, e)| i != next && e > next_epoch)
    });
    progress("after the second controller failover");

    stop.store(true, Ordering::SeqCst);
    producer.join().expect("the producer thread");
    let acked = acked.lock().unwrap().clone();

    // Read everything back: every acknowledged record, and maybe some whose outcome their
    // producer never learned, so there is no count to wait for: the reader reads until its
    // timeout, far longer than a few hundred records take.
    let (read, code) = client(&command(
        "consume",
        &layout,
        &["--topic", "events", "--timeout-ms", "20000"],
    ));
    assert_eq!(code, 0, "consume failed: {read:?}");
    let mut at: BTreeMap<(u64, u64), String> = BTreeMap::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for (value, p, o) in placed(&read) {
        *seen.entry(value.clone()).or_default() += 1;
        at.insert((p, o), value);
    }
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "records read more than once: {twice:?}");
    for (value, position) in &acked {
        assert_eq!(
            at.get(position),
            Some(value),
            "acknowledged record {value} at {position:?} lost or moved"
        );
    }
    eprintln!(
        "{} records acknowledged, {} read, all acknowledged ones in place; {:?} in all",
        acked.len(),
        at.len(),
        started.elapsed()
    );
}

/// A controller refuses, with the reason and exit code 2, what it cannot run as: an id outside
/// the quorum, and a data directory in the single controller's format (its state cannot become
/// a quorum member's log; starting empty instead would silently drop the cluster's metadata).
#[test]
fn a_controller_refuses_a_bad_id_and_the_old_single_controller_format() {
    let dir = tempfile::tempdir().expect("temp dir");
    let old = dir.path().join("old");
    write_data_dir(&old, &[DiskOp::ControllerState(ControllerImage::default())]);
    let ports = free_ports(4);
    let args = |id: &str, data: &std::path::Path| -> Vec<String> {
        let mut a: Vec<String> = vec!["controller".into(), "--id".into(), id.into()];
        a.extend(["--brokers".into(), ports[0].clone()]);
        a.extend(["--controllers".into(), ports[1..].join(",")]);
        a.extend(["--data-dir".into(), data.display().to_string()]);
        a
    };
    let (code, _, stderr) = run_with_deadline(&args("100", &old), Duration::from_secs(20));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("holds the state of a single controller"),
        "{stderr}"
    );
    let fresh = dir.path().join("fresh");
    let (code, _, stderr) = run_with_deadline(&args("3", &fresh), Duration::from_secs(20));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("--id 3 is not a controller id") && stderr.contains("100, 101 or 102"),
        "{stderr}"
    );
}

/// `seedlog create-topic` with the given extra arguments: its output lines and exit code.
fn create_topic(layout: &[String], topic: &str, extra: &[&str]) -> (Vec<String>, i32) {
    let mut args = vec!["--topic", topic, "--timeout-ms", "30000"];
    args.extend(extra);
    client(&command("create-topic", layout, &args))
}

/// Topics created at runtime through the quorum: answered with their assignment once
/// committed, refused when they exist or cannot be placed, and still there after the active
/// controller is killed; records produced to one are read back.
#[test]
fn topics_created_at_runtime_survive_a_controller_failover() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (
        Cluster {
            mut procs,
            controller_lines,
            layout,
            ..
        },
        mut state,
        active,
    ) = start_and_settle(dir.path());
    let ok = |(lines, code): (Vec<String>, i32), what: &str| {
        assert_eq!(code, 0, "{what}: {lines:?}");
        let v: serde_json::Value = serde_json::from_str(&lines[0]).expect("JSON");
        v["replicas"].as_array().expect("replicas").len()
    };
    let two = ["--partitions", "2", "--replication-factor", "3"];
    // Until all three brokers have registered with the active controller, three replicas cannot
    // be placed (Kafka's answer too): on a slow machine the first attempts may come that early.
    // A refused create creates nothing, so it is asked again.
    let mut first = create_topic(&layout, "fresh", &two);
    wait_for("three brokers registered to place fresh", || {
        let early = first.1 == 1
            && first
                .0
                .iter()
                .any(|l| l.contains("InvalidReplicationFactor"));
        if early {
            first = create_topic(&layout, "fresh", &two);
        }
        !early
    });
    assert_eq!(ok(first, "create fresh"), 2);
    let (lines, code) = create_topic(&layout, "fresh", &two);
    assert_eq!(code, 1, "{lines:?}");
    assert!(
        lines.iter().any(|l| l.contains("TopicAlreadyExists")),
        "{lines:?}"
    );
    let (lines, code) = create_topic(&layout, "wide", &["--replication-factor", "4"]);
    assert_eq!(code, 1, "{lines:?}");
    assert!(
        lines.iter().any(|l| l.contains("InvalidReplicationFactor")),
        "{lines:?}"
    );
    let (lines, code) = create_topic(&layout, "no/slash", &[]);
    assert_eq!(code, 1, "{lines:?}");
    assert!(
        lines.iter().any(|l| l.contains("InvalidTopic")),
        "{lines:?}"
    );

    // The active controller dies: the topic is committed, so its successor has it.
    let (killed, epoch) = active.expect("active");
    let (name, child) = &mut procs.0[killed];
    child.kill().expect("kill the active controller");
    let _ = child.wait();
    eprintln!("killed {name}, the active controller in epoch {epoch}");
    wait_for("another controller becomes active", || {
        active_controller(&controller_lines, &mut state)
            .is_some_and(|(i, e)| i != killed && e > epoch)
    });
    let (lines, code) = create_topic(&layout, "fresh", &two);
    assert_eq!(code, 1, "the new controller lost fresh: {lines:?}");
    assert_eq!(ok(create_topic(&layout, "later", &[]), "create later"), 1);

    let produce = command(
        "produce",
        &layout,
        &["--topic", "fresh", "--count", "20", "--timeout-ms", "30000"],
    );
    let (lines, code) = client(&produce);
    assert_eq!(code, 0, "produce to fresh: {lines:?}");
    assert_eq!(placed(&lines).len(), 20);
    let consume = command(
        "consume",
        &layout,
        &["--topic", "fresh", "--count", "20", "--timeout-ms", "20000"],
    );
    let (lines, code) = client(&consume);
    assert_eq!(code, 0, "consume fresh: {lines:?}");
}
