//! Real Kafka clients against a 3-broker seedlog cluster started as processes, each broker with
//! a Kafka listener: confluent-kafka (librdkafka 2.16), kafka-python 3.0 and kcat (librdkafka
//! 2.0.2) produce keyed records with acks=all (idempotent, gzip, plain) and read every partition
//! back with `assign`; tests/kafka/clients.py checks keys, values, offsets and ListOffsets, and
//! consumer groups with each of librdkafka's assignors. Then tests/kafka/more_clients.py (commits
//! from an `assign` consumer, seeks, kafka-python and aiokafka groups) and tests/kafka/kafkajs.js
//! (kafkajs: idempotent produce, a group, the admin client's offsets), and
//! tests/kafka/kafka_console.py (the kafka-console CLI on @platformatic/kafka: create a topic,
//! produce with headers, dump, a group that commits and resumes, offsets by time), then
//! tests/kafka/rskafka_check (Rust: topic creation, every codec, read-back, offset lookups) and
//! tests/kafka/sarama_check (Go: idempotent produce, read-back, a group that resumes).
//!
//! The clients are installed by tests/kafka/setup.sh (a virtual environment under target/, npm
//! packages, kcat and Go with sarama from apt, rskafka from crates.io). If they cannot be
//! installed the test fails: it never skips.

mod common;

use common::{kafka_clients, kafka_script, run_command as run, start_kafka_cluster, Procs};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn real_kafka_clients_produce_and_consume() {
    let started = Instant::now();
    let python = kafka_clients();
    eprintln!(
        "clients ready after {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let dir = tempfile::tempdir().expect("temp dir");
    let (cluster, kafka) = start_kafka_cluster(dir.path(), "events:3:3");
    let _procs: Procs = cluster.procs;
    let checks = [
        // Produce with every client, read back, groups with each of librdkafka's assignors.
        ("clients.py", vec!["--count", "200"]),
        // Clients the listener was not written against, on the same cluster and topic.
        ("more_clients.py", vec![]),
    ];
    for (script, extra) in checks {
        let (ok, out) = run(
            kafka_script(&python, script, &kafka).args(extra),
            Duration::from_secs(300),
        );
        eprint!("{out}");
        assert!(ok && out.contains("RESULT ok"), "{script} failed:\n{out}");
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (ok, out) = run(
        Command::new("node")
            .arg(root.join("tests/kafka/kafkajs.js"))
            .args([&kafka, "events"])
            .env("NODE_PATH", root.join("target/kafka-node/node_modules")),
        Duration::from_secs(180),
    );
    eprint!("{out}");
    assert!(ok && out.contains("RESULT ok"), "kafkajs failed:\n{out}");
    // A client that speaks only flexible versions and fetches by topic id, on a topic it
    // creates itself.
    let cli = root.join("target/kafka-node/node_modules/.bin/kafka-console");
    let (ok, out) = run(
        Command::new(&python)
            .arg(root.join("tests/kafka/kafka_console.py"))
            .args(["--bootstrap", &kafka, "--cli"])
            .arg(&cli),
        Duration::from_secs(300),
    );
    eprint!("{out}");
    assert!(
        ok && out.contains("RESULT ok"),
        "kafka-console failed:\n{out}"
    );
    // Two clients in other languages: rskafka (Rust; creates its own topic, every codec) and
    // sarama (Go; no ApiVersions, versions from its config, a group that resumes).
    let checks = [
        (
            "rskafka",
            "target/kafka-rust/debug/rskafka-check",
            vec![&*kafka],
        ),
        (
            "sarama",
            "target/kafka-go/sarama-check",
            vec![&*kafka, "events"],
        ),
    ];
    for (client, program, args) in checks {
        let (ok, out) = run(
            Command::new(root.join(program)).args(args),
            Duration::from_secs(180),
        );
        eprint!("{out}");
        assert!(ok && out.contains("RESULT ok"), "{client} failed:\n{out}");
    }
    eprintln!("done after {:.1} s", started.elapsed().as_secs_f64());
}

/// Topics created the moment a new cluster's processes start, while its controller quorum is
/// still electing and no broker is registered: both admin clients get them created (the
/// listener accepts once its broker is registered, and asks again for a creation refused by a
/// controller that is not active). Before, the refusal was dropped on the way and the client
/// waited out its 30 s timeout for REQUEST_TIMED_OUT.
#[test]
fn topics_created_as_a_new_cluster_starts_are_created() {
    let python = kafka_clients();
    let dir = tempfile::tempdir().expect("temp dir");
    let (cluster, kafka) = start_kafka_cluster(dir.path(), "events:1:3");
    let _procs: Procs = cluster.procs;
    let (ok, out) = run(
        &mut kafka_script(&python, "create_at_start.py", &kafka),
        Duration::from_secs(120),
    );
    eprint!("{out}");
    assert!(
        ok && out.contains("RESULT ok"),
        "create_at_start.py failed:\n{out}"
    );
}
