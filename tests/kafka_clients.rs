//! Real Kafka clients against a 3-broker seedlog cluster started as processes, each broker with
//! a Kafka listener: confluent-kafka (librdkafka 2.16), kafka-python 3.0 and kcat (librdkafka
//! 2.0.2) produce keyed records with acks=all (idempotent, gzip, plain) and read every partition
//! back with `assign`; tests/kafka/clients.py checks keys, values, offsets and ListOffsets.
//!
//! The clients are installed by tests/kafka/setup.sh (a virtual environment under target/, and
//! kcat from apt). If they cannot be installed the test fails: it never skips.

mod common;

use common::{kafka_clients, kafka_script, run_command as run, start_kafka_cluster, Procs};
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
    let (ok, out) = run(
        kafka_script(&python, "clients.py", &kafka).args(["--count", "200"]),
        Duration::from_secs(300),
    );
    eprint!("{out}");
    assert!(ok, "the clients' checks failed:\n{out}");
    assert!(out.contains("RESULT ok"), "{out}");
    eprintln!("done after {:.1} s", started.elapsed().as_secs_f64());
}
