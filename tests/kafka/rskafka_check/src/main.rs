//! rskafka 0.6 against a seedlog cluster's Kafka listeners: `rskafka-check HOST:PORT[,...]`. Creates a
//! topic (and is refused the second time), produces keyed records with headers and timestamps
//! in every codec Kafka has, reads them back from offset 0 (offsets dense, every field kept),
//! and looks up the earliest, latest and by-time offsets. Prints `OK ...` per check and
//! `RESULT ok` at the end; on a mismatch prints `FAIL ...` and exits 1.

use chrono::{TimeZone, Utc};
use rskafka::client::partition::{Compression, OffsetAt, UnknownTopicHandling};
use rskafka::client::ClientBuilder;
use rskafka::record::Record;
use rskafka::BackoffConfig;
use std::collections::BTreeMap;
use std::time::Duration;

/// Every call gets this long; rskafka itself retries until its backoff deadline.
const CALL: Duration = Duration::from_secs(30);

fn fail(why: String) -> ! {
    println!("FAIL rskafka: {why}");
    std::process::exit(1)
}

/// Runs one client call with a deadline, failing the check on an error or a timeout.
async fn call<T, E: std::fmt::Debug>(
    what: &str,
    f: impl std::future::Future<Output = Result<T, E>>,
) -> T {
    match tokio::time::timeout(CALL, f).await {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => fail(format!("{what}: {e:?}")),
        Err(_) => fail(format!("{what}: no answer in {CALL:?}")),
    }
}

fn record(codec: &str, i: i64, timestamp_ms: i64) -> Record {
    let headers = BTreeMap::from([("codec".to_string(), codec.as_bytes().to_vec())]);
    Record {
        key: Some(format!("key-{codec}-{i}").into_bytes()),
        value: Some(format!("value-{codec}-{i}").into_bytes()),
        headers,
        timestamp: Utc.timestamp_millis_opt(timestamp_ms).unwrap(),
    }
}

#[tokio::main]
async fn main() {
    let bootstrap = std::env::args()
        .nth(1)
        .unwrap_or_else(|| fail("usage: rskafka-check BOOTSTRAP".into()));
    let topic = format!("rskafka-{}", std::process::id());
    let backoff = BackoffConfig {
        deadline: Some(Duration::from_secs(20)),
        ..Default::default()
    };
    let brokers = bootstrap.split(',').map(str::to_string).collect();
    let client = call(
        "connect",
        ClientBuilder::new(brokers).backoff_config(backoff).build(),
    )
    .await;

    let controller = call("controller client", async { client.controller_client() }).await;
    call("create_topic", controller.create_topic(&topic, 3, 3, 5_000)).await;
    match tokio::time::timeout(CALL, controller.create_topic(&topic, 3, 3, 5_000)).await {
        Ok(Err(e)) if format!("{e}").contains("TopicAlreadyExists") => {}
        other => fail(format!(
            "creating {topic} again: {other:?}, expected TopicAlreadyExists"
        )),
    }
    // The creation is answered once the controller quorum committed the topic; the broker asked
    // for metadata may learn of it a moment later.
    let mut listed = None;
    for _ in 0..100 {
        let topics = call("list_topics", client.list_topics()).await;
        listed = topics.into_iter().find(|t| t.name == topic);
        if listed.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    match listed {
        Some(t) if t.partitions.len() == 3 => {}
        other => fail(format!(
            "{topic} listed as {other:?}, expected 3 partitions"
        )),
    }
    println!("OK rskafka: created {topic} (3 partitions; TopicAlreadyExists the second time)");

    let partition = call(
        "partition_client",
        client.partition_client(topic.clone(), 1, UnknownTopicHandling::Retry),
    )
    .await;
    let codecs = [
        ("none", Compression::NoCompression),
        ("gzip", Compression::Gzip),
        ("snappy", Compression::Snappy),
        ("lz4", Compression::Lz4),
        ("zstd", Compression::Zstd),
    ];
    let start = Utc::now().timestamp_millis();
    let mut sent = Vec::new();
    for (n, (codec, compression)) in codecs.into_iter().enumerate() {
        let records: Vec<Record> = (0..3)
            .map(|i| record(codec, i, start + n as i64 * 1000 + i))
            .collect();
        let offsets = call(
            &format!("produce {codec}"),
            partition.produce(records.clone(), compression),
        )
        .await;
        if offsets.len() != records.len() {
            fail(format!(
                "produce {codec}: {} offsets for {} records",
                offsets.len(),
                records.len()
            ));
        }
        sent.extend(offsets.into_iter().zip(records));
    }
    println!(
        "OK rskafka: produced {} records, 3 in each of none, gzip, snappy, lz4 and zstd",
        sent.len()
    );

    let mut read = Vec::new();
    while read.len() < sent.len() {
        let (records, _) = call(
            "fetch_records",
            partition.fetch_records(read.len() as i64, 1..1_000_000, 1_000),
        )
        .await;
        if records.is_empty() {
            fail(format!(
                "fetch from {} returned nothing; {} records sent",
                read.len(),
                sent.len()
            ));
        }
        read.extend(records);
    }
    for (i, got) in read.iter().enumerate() {
        let Some((offset, want)) = sent.get(i) else {
            fail(format!("read {} records, sent {}", read.len(), sent.len()))
        };
        if got.offset != i as i64 || got.offset != *offset || got.record != *want {
            fail(format!(
                "record {i}: read {got:?}, sent {want:?} at offset {offset}"
            ));
        }
    }
    println!("OK rskafka: read back {} records at offsets 0..{}, keys, values, headers and timestamps kept", read.len(), read.len());

    let earliest = call("earliest offset", partition.get_offset(OffsetAt::Earliest)).await;
    let latest = call("latest offset", partition.get_offset(OffsetAt::Latest)).await;
    let (want, record) = &sent[5];
    let by_time = call(
        "offset by time",
        partition.get_offset(OffsetAt::Timestamp(record.timestamp)),
    )
    .await;
    if (earliest, latest, by_time) != (0, sent.len() as i64, *want) {
        fail(format!(
            "offsets: earliest {earliest}, latest {latest}, at {} {by_time}; expected 0, {}, {want}",
            record.timestamp,
            sent.len()
        ));
    }
    println!("OK rskafka: earliest 0, latest {latest}, by time {by_time}");
    println!("RESULT ok");
}
