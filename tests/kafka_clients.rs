//! Real Kafka clients against a 3-broker seedlog cluster started as processes, each broker with
//! a Kafka listener: confluent-kafka (librdkafka 2.16), kafka-python 3.0 and kcat (librdkafka
//! 2.0.2) produce keyed records with acks=all (idempotent, gzip, plain) and read every partition
//! back with `assign`; tests/kafka/clients.py checks keys, values, offsets and ListOffsets, and
//! consumer groups with each of librdkafka's assignors. Then tests/kafka/more_clients.py (commits
//! from an `assign` consumer, seeks, kafka-python and aiokafka groups) and tests/kafka/kafkajs.js
//! (kafkajs: idempotent produce, a group, the admin client's offsets).
//!
//! The clients are installed by tests/kafka/setup.sh (a virtual environment under target/, and
//! kcat from apt). If they cannot be installed the test fails: it never skips.

mod common;

use common::{free_ports, start_cluster_of, Procs};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Runs a command to completion within `deadline`; returns (success, stdout and stderr).
fn run(cmd: &mut Command, deadline: Duration) -> (bool, String) {
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let started = Instant::now();
    loop {
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        if started.elapsed() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "{cmd:?} still running after {deadline:?}:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("output");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn real_kafka_clients_produce_and_consume() {
    let started = Instant::now();
    let (ok, out) = run(
        &mut Command::new(Path::new(ROOT).join("tests/kafka/setup.sh")),
        Duration::from_secs(600),
    );
    eprint!("{out}");
    assert!(
        ok,
        "the Kafka clients could not be installed (tests/kafka/setup.sh):\n{out}"
    );
    eprintln!(
        "clients ready after {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let dir = tempfile::tempdir().expect("temp dir");
    let kafka = free_ports(3).join(",");
    let cluster = start_cluster_of(
        dir.path(),
        1,
        "events:3:3",
        &["--min-insync-replicas", "2", "--kafka-listeners", &kafka],
    );
    let _procs: Procs = cluster.procs;
    let python = Path::new(ROOT).join("target/kafka-venv/bin/python");
    let common = [
        "--bootstrap",
        &kafka,
        "--topic",
        "events",
        "--partitions",
        "3",
    ];
    let checks = [
        // Produce with every client, read back, groups with each of librdkafka's assignors.
        (
            Path::new(ROOT).join("tests/kafka/clients.py"),
            vec!["--count", "200"],
        ),
        // Clients the listener was not written against, on the same cluster and topic.
        (Path::new(ROOT).join("tests/kafka/more_clients.py"), vec![]),
    ];
    for (script, extra) in checks {
        let (ok, out) = run(
            Command::new(&python).arg(&script).args(common).args(extra),
            Duration::from_secs(300),
        );
        eprint!("{out}");
        assert!(ok && out.contains("RESULT ok"), "{script:?} failed:\n{out}");
    }
    let (ok, out) = run(
        Command::new("node")
            .arg(Path::new(ROOT).join("tests/kafka/kafkajs.js"))
            .args([&kafka, "events"])
            .env(
                "NODE_PATH",
                Path::new(ROOT).join("target/kafka-node/node_modules"),
            ),
        Duration::from_secs(180),
    );
    eprint!("{out}");
    assert!(ok && out.contains("RESULT ok"), "kafkajs failed:\n{out}");
    eprintln!("done after {:.1} s", started.elapsed().as_secs_f64());
}
