//! The listener against a real broker state machine (one broker leading `t-0` and `t-1`, run
//! by the runtime driver on a simulated disk): hand-built Kafka requests in, responses out,
//! malformed input included.

use super::batch::{
    decode_payload, decode_payload_within, InflateBudget, MAX_APPEND_BYTES, MAX_INFLATED,
    MAX_REQUEST_INFLATED,
};
use super::conn::{self, Shared};
use super::encode::encode_entries;
use super::errors;
use super::topic_id::topic_id;
use crate::node::{AnyNode, Broker, BrokerConfig};
use crate::protocol::{
    BrokerRegistration, ClusterMetadata, LogEntry, PartitionState, ProducerStamp, Record,
    TopicPartition,
};
use crate::runtime::disk::CorruptionPolicy;
use crate::runtime::driver::{Clock, Driver};
use crate::runtime::net::Net;
use crate::runtime::sim_disk::SimDisk;
use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{encode_request_header_into_buffer, Decodable, StrBytes};
use kafka_protocol::records::{
    Compression, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

/// A one-broker cluster whose broker leads t-0 and t-1, with a Kafka listener's shared state.
fn broker() -> Arc<Shared> {
    let partitions = (0..2)
        .map(|p| PartitionState {
            tp: TopicPartition::new("t", p),
            replicas: vec![0],
            leader: Some(0),
            leader_epoch: 3,
            isr: vec![0],
            partition_epoch: 1,
        })
        .collect();
    let md = ClusterMetadata {
        version: 1,
        brokers: vec![BrokerRegistration {
            broker: 0,
            epoch: 1,
            fenced: false,
            incarnation: 0,
        }],
        partitions,
    };
    let mut config = BrokerConfig::new(0, vec![100]);
    config.fetch_max_wait_ms = Some(300);
    let node = Broker::bootstrapped(Arc::new(config), md);
    let (net, inbox) = Net::new(0, Default::default());
    let clock: Clock = Arc::new(|| 1_000);
    let disk = SimDisk::new("b0", CorruptionPolicy::Refuse);
    let node = Arc::new(Mutex::new(AnyNode::Broker(node)));
    let driver = Driver::new(0, "b0", node, disk, net.clone(), inbox, clock);
    tokio::spawn(driver.run());
    let kafka = BTreeMap::from([(0, "127.0.0.1:9092".parse().expect("an address"))]);
    Arc::new(Shared::new(net, 0, kafka))
}

/// A connection to the listener: the client's end, and the server's result.
fn connect(
    shared: Arc<Shared>,
) -> (
    DuplexStream,
    tokio::task::JoinHandle<Result<(), conn::Close>>,
) {
    let (client, server) = tokio::io::duplex(1 << 20);
    (client, tokio::spawn(conn::serve(shared, server)))
}

pub(super) fn request(key: ApiKey, version: i16, correlation: i32, body: &RequestKind) -> Bytes {
    let mut buf = BytesMut::new();
    let mut header = RequestHeader::default();
    header.request_api_key = key as i16;
    header.request_api_version = version;
    header.correlation_id = correlation;
    header.client_id = Some(StrBytes::from_static_str("test"));
    encode_request_header_into_buffer(&mut buf, &header).expect("header");
    body.encode(&mut buf, version).expect("body");
    let mut framed = BytesMut::new();
    framed.extend_from_slice(&(buf.len() as i32).to_be_bytes());
    framed.extend_from_slice(&buf);
    framed.freeze()
}

async fn read_frame(c: &mut DuplexStream) -> Option<Bytes> {
    let mut size = [0u8; 4];
    tokio::time::timeout(Duration::from_secs(5), c.read_exact(&mut size))
        .await
        .ok()?
        .ok()?;
    let mut body = vec![0u8; i32::from_be_bytes(size) as usize];
    c.read_exact(&mut body).await.ok()?;
    Some(Bytes::from(body))
}

/// Sends one request and decodes its response (correlation id checked).
async fn call(c: &mut DuplexStream, key: ApiKey, version: i16, body: RequestKind) -> ResponseKind {
    c.write_all(&request(key, version, 7, &body))
        .await
        .expect("write");
    let mut frame = read_frame(c).await.expect("a response");
    let header =
        ResponseHeader::decode(&mut frame, key.response_header_version(version)).expect("header");
    assert_eq!(header.correlation_id, 7);
    ResponseKind::decode(key, &mut frame, version).expect("body")
}

fn records(values: &[&str]) -> Vec<kafka_protocol::records::Record> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| kafka_protocol::records::Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: -1 + i as i32,
            timestamp: 1_700_000_000_000 + i as i64,
            key: Some(Bytes::from(format!("k{i}"))),
            value: Some(Bytes::from(v.to_string())),
            headers: Default::default(),
        })
        .collect()
}

pub(super) fn batch(values: &[&str], compression: Compression) -> Bytes {
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression,
    };
    RecordBatchEncoder::encode(&mut buf, &records(values), &options).expect("a batch");
    buf.freeze()
}

fn produce(acks: i16, partition: i32, payload: Bytes) -> RequestKind {
    let mut p = PartitionProduceData::default();
    p.index = partition;
    p.records = Some(payload);
    let mut t = TopicProduceData::default();
    t.name = TopicName(StrBytes::from_static_str("t"));
    t.partition_data = vec![p];
    let mut req = ProduceRequest::default();
    req.acks = acks;
    req.timeout_ms = 5_000;
    req.topic_data = vec![t];
    RequestKind::Produce(req)
}

fn fetch(partition: i32, offset: i64, max_wait_ms: i32) -> RequestKind {
    let mut p = FetchPartition::default();
    p.partition = partition;
    p.fetch_offset = offset;
    p.partition_max_bytes = 1 << 20;
    let mut t = FetchTopic::default();
    t.topic = TopicName(StrBytes::from_static_str("t"));
    t.partitions = vec![p];
    let mut req = FetchRequest::default();
    req.replica_id = BrokerId(-1);
    req.max_wait_ms = max_wait_ms;
    req.min_bytes = 1;
    req.max_bytes = 1 << 20;
    req.topics = vec![t];
    RequestKind::Fetch(req)
}

fn produced(resp: ResponseKind) -> (i16, i64) {
    let ResponseKind::Produce(r) = resp else {
        panic!("not a produce response: {resp:?}")
    };
    let p = &r.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

#[tokio::test]
async fn api_versions_lists_what_is_advertised_and_answers_unknown_versions_in_v0() {
    let (mut c, _) = connect(broker());
    let ResponseKind::ApiVersions(r) = call(
        &mut c,
        ApiKey::ApiVersions,
        3,
        RequestKind::ApiVersions(ApiVersionsRequest::default()),
    )
    .await
    else {
        panic!("not ApiVersions")
    };
    assert_eq!(r.error_code, 0);
    let produce = r.api_keys.iter().find(|k| k.api_key == 0).expect("Produce");
    assert_eq!((produce.min_version, produce.max_version), (3, 12));
    assert!(r.supported_features.is_empty() && r.finalized_features.is_empty());
    // Version 99: the v0 format, UNSUPPORTED_VERSION and ApiVersions' own range.
    let mut raw = BytesMut::new();
    raw.extend_from_slice(&[0, 18, 0, 99, 0, 0, 0, 42, 0, 0]);
    c.write_all(&(raw.len() as i32).to_be_bytes())
        .await
        .expect("write");
    c.write_all(&raw).await.expect("write");
    let frame = read_frame(&mut c).await.expect("an answer");
    assert_eq!(
        &frame[..],
        &[0, 0, 0, 42, 0, 35, 0, 0, 0, 1, 0, 18, 0, 0, 0, 4][..],
        "correlation 42, error 35, one entry: ApiVersions 0..4"
    );
}

/// Records "a" and "b" to partition 0 of a new broker: offsets 0 and 1.
async fn produce_a_and_b(c: &mut DuplexStream) {
    let resp = call(
        c,
        ApiKey::Produce,
        9,
        produce(-1, 0, batch(&["a", "b"], Compression::None)),
    )
    .await;
    assert_eq!(produced(resp), (0, 0));
}

#[tokio::test]
async fn produce_then_fetch_returns_the_records_at_the_broker_offsets() {
    let (mut c, _) = connect(broker());
    produce_a_and_b(&mut c).await;
    let resp = call(
        &mut c,
        ApiKey::Produce,
        3,
        produce(1, 0, batch(&["c"], Compression::Gzip)),
    )
    .await;
    assert_eq!(produced(resp), (0, 2));
    // acks=0: no response; the next request's is the next frame.
    c.write_all(&request(
        ApiKey::Produce,
        9,
        5,
        &produce(0, 0, batch(&["d"], Compression::None)),
    ))
    .await
    .expect("write");
    let ResponseKind::Fetch(f) = call(&mut c, ApiKey::Fetch, 11, fetch(0, 1, 500)).await else {
        panic!("not a fetch response")
    };
    let p = &f.responses[0].partitions[0];
    assert_eq!(
        (p.error_code, p.high_watermark, p.log_start_offset),
        (0, 4, 0)
    );
    let mut bytes = p.records.clone().expect("records");
    let sets = RecordBatchDecoder::decode_all(&mut bytes).expect("batches");
    let got: Vec<(i64, String, i32)> = sets
        .iter()
        .flat_map(|s| &s.records)
        .map(|r| {
            let v = String::from_utf8(r.value.clone().expect("value").to_vec()).expect("utf-8");
            (r.offset, v, r.partition_leader_epoch)
        })
        .collect();
    assert_eq!(
        got,
        vec![(1, "b".into(), 3), (2, "c".into(), 3), (3, "d".into(), 3)]
    );
}

/// A null value (a tombstone) and a null header value come back null, and empty ones empty.
#[tokio::test]
async fn null_values_and_header_values_are_kept_apart_from_empty_ones() {
    let (mut c, _) = connect(broker());
    let mut sent = records(&["", ""]);
    sent[0].value = None;
    let header = |k: &'static str, v: Option<&'static [u8]>| {
        (StrBytes::from_static_str(k), v.map(Bytes::from_static))
    };
    sent[0].headers = [header("h", None), header("e", Some(b""))]
        .into_iter()
        .collect();
    sent[1].headers = [header("h", Some(b"")), header("n", None)]
        .into_iter()
        .collect();
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut buf, &sent, &options).expect("a batch");
    let resp = call(&mut c, ApiKey::Produce, 9, produce(-1, 0, buf.freeze())).await;
    assert_eq!(produced(resp), (0, 0));
    let ResponseKind::Fetch(f) = call(&mut c, ApiKey::Fetch, 11, fetch(0, 0, 500)).await else {
        panic!("not a fetch response")
    };
    let mut bytes = f.responses[0].partitions[0]
        .records
        .clone()
        .expect("records");
    let sets = RecordBatchDecoder::decode_all(&mut bytes).expect("batches");
    let got: Vec<_> = sets
        .iter()
        .flat_map(|s| &s.records)
        .map(|r| (r.value.clone(), r.headers.clone()))
        .collect();
    let want: Vec<_> = sent
        .iter()
        .map(|r| (r.value.clone(), r.headers.clone()))
        .collect();
    assert_eq!(got, want);
    assert_eq!(got[1].0, Some(Bytes::new()));
}

/// Kafka processes one connection's requests in order: pipelined produce requests (a producer
/// keeps up to 5 in flight) must reach the broker in the order they were sent, or an idempotent
/// producer's sequences arrive out of order and it fails fatally. The connection handles
/// requests on tasks of their own; with one worker, tokio runs the most recently spawned task
/// first, which reordered them.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn pipelined_produce_requests_are_appended_in_the_order_sent() {
    let (mut c, _) = connect(broker());
    let n = 40;
    let mut wire = BytesMut::new();
    for i in 0..n {
        let value = format!("v{i}");
        let body = produce(1, 0, batch(&[value.as_str()], Compression::None));
        wire.extend_from_slice(&request(ApiKey::Produce, 9, i, &body));
    }
    c.write_all(&wire).await.expect("write");
    for i in 0..n {
        let mut frame = read_frame(&mut c).await.expect("a response");
        let header = ResponseHeader::decode(&mut frame, ApiKey::Produce.response_header_version(9))
            .expect("header");
        assert_eq!(header.correlation_id, i, "responses in request order");
        let resp = ResponseKind::decode(ApiKey::Produce, &mut frame, 9).expect("body");
        assert_eq!(
            produced(resp),
            (0, i64::from(i)),
            "request {i} appended at offset {i}"
        );
    }
}

#[tokio::test]
async fn a_corrupt_batch_is_refused_and_changes_no_log() {
    let shared = broker();
    let (mut c, _) = connect(shared);
    let mut bad = BytesMut::from(&batch(&["x"], Compression::None)[..]);
    let last = bad.len() - 1;
    bad[last] ^= 0xff;
    let resp = call(&mut c, ApiKey::Produce, 9, produce(-1, 0, bad.freeze())).await;
    assert_eq!(produced(resp).0, errors::CORRUPT_MESSAGE);
    let mut list = ListOffsetsRequest::default();
    let mut t = ListOffsetsTopic::default();
    t.name = TopicName(StrBytes::from_static_str("t"));
    let mut p = ListOffsetsPartition::default();
    p.timestamp = -1;
    t.partitions = vec![p];
    list.topics = vec![t];
    let ResponseKind::ListOffsets(r) = call(
        &mut c,
        ApiKey::ListOffsets,
        7,
        RequestKind::ListOffsets(list),
    )
    .await
    else {
        panic!("not ListOffsets")
    };
    assert_eq!(r.topics[0].partitions[0].offset, 0, "nothing was appended");
}

/// ListOffsets of partition 0 at `timestamp`: (error, offset, timestamp).
async fn offset_at(c: &mut DuplexStream, timestamp: i64) -> (i16, i64, i64) {
    let p = listed_at(c, timestamp).await;
    (p.error_code, p.offset, p.timestamp)
}

/// The answer for partition 0 of a ListOffsets (v7) at `timestamp`.
async fn listed_at(
    c: &mut DuplexStream,
    timestamp: i64,
) -> kafka_protocol::messages::list_offsets_response::ListOffsetsPartitionResponse {
    listed_at_version(c, timestamp, 7).await
}

/// The answer for partition 0 of a ListOffsets of `version` at `timestamp`.
async fn listed_at_version(
    c: &mut DuplexStream,
    timestamp: i64,
    version: i16,
) -> kafka_protocol::messages::list_offsets_response::ListOffsetsPartitionResponse {
    let mut list = ListOffsetsRequest::default();
    let mut t = ListOffsetsTopic::default();
    t.name = TopicName(StrBytes::from_static_str("t"));
    let mut p = ListOffsetsPartition::default();
    p.timestamp = timestamp;
    t.partitions = vec![p];
    list.topics = vec![t];
    let ResponseKind::ListOffsets(r) = call(
        c,
        ApiKey::ListOffsets,
        version,
        RequestKind::ListOffsets(list),
    )
    .await
    else {
        panic!("not ListOffsets")
    };
    r.topics[0].partitions[0].clone()
}

/// Max timestamp (-3) exists from version 7 (KIP-734): below it, and for the negative times
/// not implemented (-4, earliest local; -5, latest tiered), the partition gets an error and
/// offset -1, and the rest of the answer is unharmed.
#[tokio::test]
async fn max_timestamp_needs_version_7_and_other_negative_times_are_refused() {
    let (mut c, _) = connect(broker());
    produce_a_and_b(&mut c).await;
    let refused = errors::UNSUPPORTED_FOR_MESSAGE_FORMAT;
    for (timestamp, version) in [(-3, 6), (-3, 1), (-4, 7), (-5, 7)] {
        let p = listed_at_version(&mut c, timestamp, version).await;
        assert_eq!(
            (p.error_code, p.offset),
            (refused, -1),
            "{timestamp} v{version}"
        );
    }
    let p = listed_at_version(&mut c, -3, 7).await;
    assert_eq!((p.error_code, p.offset, p.leader_epoch), (0, 1, 3));
    assert_eq!(listed_at_version(&mut c, -1, 6).await.offset, 2);
}

#[tokio::test]
async fn list_offsets_by_time_finds_the_first_record_at_or_after_it() {
    let (mut c, _) = connect(broker());
    // Records stamped 1_700_000_000_000 + 0, 1, 2.
    let resp = call(
        &mut c,
        ApiKey::Produce,
        9,
        produce(-1, 0, batch(&["a", "b", "c"], Compression::None)),
    )
    .await;
    assert_eq!(produced(resp), (0, 0));
    let base = 1_700_000_000_000;
    assert_eq!(offset_at(&mut c, 0).await, (0, 0, base));
    assert_eq!(offset_at(&mut c, base + 1).await, (0, 1, base + 1));
    assert_eq!(offset_at(&mut c, base + 2).await, (0, 2, base + 2));
    // Later than every record: none, as Kafka answers it.
    assert_eq!(offset_at(&mut c, base + 3).await, (0, -1, -1));
    assert_eq!(offset_at(&mut c, -1).await, (0, 3, -1));
    assert_eq!(offset_at(&mut c, -2).await, (0, 0, -1));
    // Max timestamp (-3): the newest stamp here, at offset 2.
    assert_eq!(offset_at(&mut c, -3).await, (0, 2, base + 2));
    // Each answer names the leader's epoch (3), as Kafka's do from v4.
    assert_eq!(listed_at(&mut c, -1).await.leader_epoch, 3);
    assert_eq!(listed_at(&mut c, base + 1).await.leader_epoch, 3);
}

#[tokio::test]
async fn fetch_with_nothing_to_read_waits_then_answers_empty() {
    let (mut c, _) = connect(broker());
    let started = tokio::time::Instant::now();
    let ResponseKind::Fetch(f) = call(&mut c, ApiKey::Fetch, 4, fetch(1, 0, 200)).await else {
        panic!("not a fetch response")
    };
    assert!(
        started.elapsed() >= Duration::from_millis(150),
        "a long poll"
    );
    let p = &f.responses[0].partitions[0];
    assert_eq!((p.error_code, p.high_watermark), (0, 0));
    assert!(p.records.as_ref().is_none_or(|r| r.is_empty()));
}

#[tokio::test]
async fn metadata_lists_this_broker_as_controller_and_topic_ids_from_v10() {
    let (mut c, _) = connect(broker());
    let mut all = MetadataRequest::default();
    all.topics = None;
    let ResponseKind::Metadata(m) =
        call(&mut c, ApiKey::Metadata, 12, RequestKind::Metadata(all)).await
    else {
        panic!("not Metadata")
    };
    assert_eq!(m.controller_id, BrokerId(0));
    assert_eq!(m.brokers[0].port, 9092);
    let t = &m.topics[0];
    assert_eq!(t.topic_id, topic_id("t"));
    assert_eq!(t.partitions.len(), 2);
    assert_eq!(t.partitions[1].leader_epoch, 3);
    let ResponseKind::Metadata(m) = call(
        &mut c,
        ApiKey::Metadata,
        0,
        RequestKind::Metadata(MetadataRequest::default()),
    )
    .await
    else {
        panic!("not Metadata")
    };
    assert_eq!(m.topics[0].partitions.len(), 2);
}

#[tokio::test]
async fn a_truncated_frame_closes_the_connection() {
    let (mut c, server) = connect(broker());
    c.write_all(&100i32.to_be_bytes()).await.expect("write");
    c.write_all(&[0, 18, 0, 3]).await.expect("write");
    c.shutdown().await.expect("shutdown");
    let closed = server.await.expect("no panic");
    assert!(closed.is_err(), "closed with a reason");
}

#[tokio::test]
async fn an_absurd_size_or_unknown_api_closes_without_allocating() {
    for first in [
        i32::MAX.to_be_bytes(),
        (-5i32).to_be_bytes(),
        3i32.to_be_bytes(),
    ] {
        let (mut c, server) = connect(broker());
        c.write_all(&first).await.expect("write");
        let closed = tokio::time::timeout(Duration::from_secs(2), server)
            .await
            .expect("closed at once");
        assert!(closed.expect("no panic").is_err());
    }
    let (mut c, server) = connect(broker());
    c.write_all(&[0, 0, 0, 8, 0x7f, 0x00, 0, 0, 0, 0, 0, 1])
        .await
        .expect("write");
    assert!(server.await.expect("no panic").is_err());
    // A Produce body whose topic array claims 2^31 - 1 entries: the decoder fails on the bytes
    // that are not there (the crate reserves the count, which on 64-bit Linux is address space
    // only; see docs/kafka-listener.md).
    let (mut c, server) = connect(broker());
    let mut raw = vec![0, 0, 0, 8, 0, 0, 0, 1, 0xff, 0xff];
    raw.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0, 0, 0x13, 0x88]);
    raw.extend_from_slice(&i32::MAX.to_be_bytes());
    c.write_all(&(raw.len() as i32).to_be_bytes())
        .await
        .expect("write");
    c.write_all(&raw).await.expect("write");
    assert!(server.await.expect("no panic").is_err());
}

#[test]
fn batch_counts_are_checked_before_anything_is_allocated() {
    let good = batch(&["a", "b"], Compression::None);
    assert_eq!(decode_payload(&good).expect("decodes").records.len(), 2);
    // Record count 2^31 - 1 with a valid CRC: refused by the count check.
    let mut b = BytesMut::from(&good[..]);
    b[57..61].copy_from_slice(&i32::MAX.to_be_bytes());
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    let refused = decode_payload(&b.freeze()).expect_err("refused");
    assert_eq!(refused.code, errors::CORRUPT_MESSAGE);
    // A record whose header count is huge.
    let mut b = BytesMut::from(&good[..]);
    // The first record: length, attributes, ts delta, offset delta, key (len 2 "k0"), value
    // (len 1 "a"), header count: the last byte of the record.
    let first_len = (b[61] >> 1) as usize;
    let header_count_at = 61 + 1 + first_len - 1;
    b[header_count_at] = 0x7e; // zigzag 63 headers in a record with no bytes left
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    assert_eq!(
        decode_payload(&b.freeze()).expect_err("refused").code,
        errors::CORRUPT_MESSAGE
    );
    // Magic 1 is refused, a short payload too.
    let mut b = BytesMut::from(&good[..]);
    b[16] = 1;
    assert_eq!(
        decode_payload(&b.freeze()).expect_err("refused").code,
        errors::UNSUPPORTED_FOR_MESSAGE_FORMAT
    );
    assert!(decode_payload(&good.slice(..30)).is_err());
}

#[test]
fn a_gzip_bomb_is_refused() {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..(MAX_INFLATED >> 20) + 1 {
        gz.write_all(&zeros).expect("compress");
    }
    let body = gz.finish().expect("compressed");
    assert_eq!(
        decode_payload(&rebody(1, &body)).expect_err("refused").code,
        errors::CORRUPT_MESSAGE
    );
}

/// Past `MAX_APPEND_BYTES` a partition's records are refused (they would be journaled and
/// replicated in frames larger than the frame limit); at it they are taken, in a journal frame
/// and a fetch answer that stay under the limit.
#[test]
fn records_past_the_append_limit_are_refused_as_too_large() {
    let values = |total: usize| vec!["v".repeat(1 << 20); total >> 20];
    let over: Vec<String> = values(MAX_APPEND_BYTES as usize + (1 << 20));
    let over: Vec<&str> = over.iter().map(String::as_str).collect();
    let refused = decode_payload(&batch(&over, Compression::Gzip)).expect_err("too large");
    assert_eq!(refused.code, errors::MESSAGE_TOO_LARGE, "{}", refused.why);
    let under: Vec<String> = values(MAX_APPEND_BYTES as usize - (1 << 20));
    let under: Vec<&str> = under.iter().map(String::as_str).collect();
    let decoded = decode_payload(&batch(&under, Compression::Gzip)).expect("taken");
    let mut log = crate::log::PartitionLog::new();
    let entries = log.append_as_leader(1, &decoded.records).expect("append");
    assert_journal_write_fits_a_frame(entries);
    let answer = log.read_within(0, 100, 500, 1 << 20);
    assert_eq!(answer.len(), 1, "a fetch answer stops at its byte budget");
}

/// The journal write of `entries` (one frame) stays under the frame limit.
fn assert_journal_write_fits_a_frame(entries: Vec<crate::protocol::LogEntry>) {
    let journal = crate::runtime::frame::encode(&crate::node::DiskOp::Append {
        tp: crate::protocol::TopicPartition::new("t", 0),
        entries,
    });
    assert!(
        journal.len() < crate::runtime::frame::MAX_FRAME,
        "{}",
        journal.len()
    );
}

/// Many tiny records are counted as the log stores them (offsets, lengths, producer stamps), not
/// by their bytes alone: a batch of 200 000 empty records is refused, though its record bytes
/// (8 each, with the timestamp) are under the limit, as its journal write would pass the frame
/// limit; half as many are taken, in a journal frame under the limit with producer stamps.
#[test]
fn many_tiny_records_are_counted_as_the_log_stores_them() {
    let refused =
        decode_payload(&batch(&vec![""; 200_000], Compression::None)).expect_err("too large");
    assert_eq!(refused.code, errors::MESSAGE_TOO_LARGE, "{}", refused.why);
    let decoded = decode_payload(&batch(&vec![""; 100_000], Compression::None)).expect("taken");
    let stamp = Some(crate::protocol::ProducerStamp::batch(1, 0, 0));
    let mut log = crate::log::PartitionLog::new();
    let entries = log
        .append_stamped(1, decoded.records, stamp)
        .expect("append");
    assert_journal_write_fits_a_frame(entries);
}

/// A batch of `codec` (the attributes' low bits) around `body`: the header of a real batch of
/// one record, the codec set, the body swapped, length and CRC redone.
fn rebody(codec: u8, body: &[u8]) -> Bytes {
    rebody_of(&["a"], codec, body)
}

/// As `rebody`, with the header of a real batch of `values` (so of their record count).
pub(super) fn rebody_of(values: &[&str], codec: u8, body: &[u8]) -> Bytes {
    let real = batch(values, Compression::None);
    let mut b = BytesMut::from(&real[..61]);
    b[22] = (b[22] & !7) | codec;
    b.extend_from_slice(body);
    let len = (b.len() - 12) as i32;
    b[8..12].copy_from_slice(&len.to_be_bytes());
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b.freeze()
}

fn lz4(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = lz4_flex::frame::FrameEncoder::new(Vec::new());
    enc.write_all(data).expect("compress");
    enc.finish().expect("compressed")
}

#[test]
fn an_lz4_batch_is_inflated_and_an_lz4_bomb_refused() {
    // The records of an uncompressed one-record batch, lz4-framed.
    let plain = batch(&["a"], Compression::None);
    let decoded = decode_payload(&rebody(3, &lz4(&plain[61..]))).expect("decodes");
    let values: Vec<_> = decoded.records.iter().map(|r| r.value.clone()).collect();
    assert_eq!(values, vec![Some(Bytes::from_static(b"a"))]);
    let bomb = lz4(&vec![0u8; MAX_INFLATED + 1]);
    assert_eq!(
        decode_payload(&rebody(3, &bomb)).expect_err("refused").code,
        errors::CORRUPT_MESSAGE
    );
    // Not lz4 at all.
    assert_eq!(
        decode_payload(&rebody(3, b"garbage"))
            .expect_err("refused")
            .code,
        errors::CORRUPT_MESSAGE
    );
    // Codecs 5-7 are none of Kafka's.
    for codec in 5..=7 {
        assert_eq!(
            decode_payload(&rebody(codec, &plain[61..]))
                .expect_err("refused")
                .code,
            errors::UNSUPPORTED_COMPRESSION_TYPE
        );
    }
}

const ABC: [&str; 3] = ["a", "bb", "ccc"];

/// The records of an uncompressed batch of `ABC`.
fn plain_records() -> Vec<u8> {
    batch(&ABC, Compression::None)[61..].to_vec()
}

fn values_of(payload: &Bytes) -> Vec<Vec<u8>> {
    let decoded = decode_payload(payload).expect("decodes");
    decoded
        .records
        .iter()
        .map(|r| r.value.as_deref().expect("a value").to_vec())
        .collect()
}

/// xerial's stream format, as Kafka's Java producer writes snappy: header, then blocks of a
/// 4-byte length and raw snappy.
fn xerial(blocks: &[&[u8]]) -> Vec<u8> {
    let mut out = vec![
        0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0, 0, 0, 0, 1, 0, 0, 0, 1,
    ];
    for block in blocks {
        let raw = snap::raw::Encoder::new()
            .compress_vec(block)
            .expect("compress");
        out.extend_from_slice(&(raw.len() as u32).to_be_bytes());
        out.extend_from_slice(&raw);
    }
    out
}

/// `data` compressed as Kafka's codec `codec` (1 gzip, 2 snappy in xerial blocks, 3 lz4, 4
/// zstd; anything else leaves it as it is).
pub(super) fn compress(codec: u8, data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    match codec {
        1 => {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(data).expect("compress");
            gz.finish().expect("compressed")
        }
        2 => xerial(&[data]),
        3 => lz4(data),
        4 => zstd::stream::encode_all(data, 3).expect("compress"),
        _ => data.to_vec(),
    }
}

/// A batch of `values` in one of six encodings: uncompressed, Kafka's four codecs, and (5)
/// snappy as one raw block, as librdkafka sends it.
pub(super) fn encoded_batch(values: &[&str], encoding: u8) -> Bytes {
    let plain = batch(values, Compression::None);
    match encoding {
        5 => {
            let raw = snap::raw::Encoder::new()
                .compress_vec(&plain[61..])
                .expect("compress");
            rebody_of(values, 2, &raw)
        }
        codec => rebody_of(values, codec, &compress(codec, &plain[61..])),
    }
}

#[test]
fn a_snappy_batch_is_inflated_raw_or_in_xerial_blocks_and_a_snappy_bomb_refused() {
    let records = plain_records();
    let raw = snap::raw::Encoder::new()
        .compress_vec(&records)
        .expect("compress");
    let want = vec![b"a".to_vec(), b"bb".to_vec(), b"ccc".to_vec()];
    assert_eq!(values_of(&rebody_of(&ABC, 2, &raw)), want);
    // The same records split over two xerial blocks.
    let (head, tail) = records.split_at(records.len() / 2);
    assert_eq!(values_of(&rebody_of(&ABC, 2, &xerial(&[head, tail]))), want);
    // Refused as corrupt, for the reason `why` names.
    let refused = |body: &[u8], why: &str| {
        let r = decode_payload(&rebody_of(&ABC, 2, body)).expect_err("refused");
        assert_eq!(r.code, errors::CORRUPT_MESSAGE);
        assert!(r.why.contains(why), "{} does not say {why}", r.why);
    };
    // A block stating more than the cap is refused before it is inflated; so are blocks that
    // add up past it.
    let bomb = snap::raw::Encoder::new()
        .compress_vec(&vec![0u8; MAX_INFLATED + 1])
        .expect("compress");
    refused(&bomb, "past the limit");
    let half = vec![0u8; MAX_INFLATED / 2 + 1];
    refused(&xerial(&[&half, &half]), "past the limit");
    // Garbage, a xerial block longer than what follows, a header cut short.
    refused(b"\x05garbage", "snappy: ");
    let mut cut = xerial(&[&records]);
    cut.truncate(cut.len() - 1);
    refused(&cut, "block cut short");
    refused(&xerial(&[])[..10], "header cut short");
}

#[test]
fn a_snappy_block_stating_more_than_snappy_can_inflate_is_refused_before_allocating() {
    // Five bytes stating 64 MiB: refused for the ratio, not by trying (a 64 MiB buffer each).
    let refused = decode_payload(&rebody(2, &[0x80, 0x80, 0x80, 0x20, 0x00])).expect_err("refused");
    assert_eq!(refused.code, errors::CORRUPT_MESSAGE);
    assert!(refused.why.contains("states"), "{}", refused.why);
    // The densest real block (long runs) is within the ratio.
    let dense = snap::raw::Encoder::new()
        .compress_vec(&vec![7u8; 1 << 20])
        .expect("compress");
    let ratio = snap::raw::decompress_len(&dense).expect("len") / dense.len();
    assert!((16..22).contains(&ratio), "ratio {ratio}");
}

/// One request's partitions share one inflation budget: a request of many small, highly
/// compressed partitions is refused past it (`MESSAGE_TOO_LARGE`) in every codec, and the
/// partitions past it are not inflated at all.
/// Kafka allows a record to carry a header key twice; the crate's decoder keeps one value per
/// key. Such a batch is refused, never stored with a header dropped.
#[test]
fn a_record_repeating_a_header_key_is_refused_not_stored_without_one() {
    let mut record = records(&["v"]).remove(0);
    record.headers.insert(
        StrBytes::from_static_str("ka"),
        Some(Bytes::from_static(b"1")),
    );
    record.headers.insert(
        StrBytes::from_static_str("kb"),
        Some(Bytes::from_static(b"2")),
    );
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(&mut buf, &[record], &options).expect("a batch");
    let distinct = buf.clone().freeze();
    let decoded = decode_payload(&distinct).expect("distinct keys are taken");
    assert_eq!(decoded.records[0].headers.len(), 2);
    // The second key renamed to the first, the CRC made right: the same key twice.
    let at = buf
        .windows(2)
        .position(|w| w == b"kb")
        .expect("the second key");
    buf[at + 1] = b'a';
    let crc = crc32c::crc32c(&buf[21..]);
    buf[17..21].copy_from_slice(&crc.to_be_bytes());
    let refused = decode_payload(&buf.freeze()).expect_err("refused");
    assert_eq!(refused.code, errors::INVALID_RECORD);
    assert!(
        refused.why.contains("repeats a header key"),
        "{}",
        refused.why
    );
}

#[test]
fn a_request_inflates_at_most_its_budget_across_partitions() {
    let value = "v".repeat(6 << 20);
    let plain = batch(&[value.as_str()], Compression::None);
    for codec in 1..=4u8 {
        let payload = rebody_of(&[value.as_str()], codec, &compress(codec, &plain[61..]));
        assert!(
            payload.len() < 1 << 20,
            "codec {codec}: {} bytes",
            payload.len()
        );
        let mut budget = InflateBudget::per_request();
        let fits = MAX_REQUEST_INFLATED / (6 << 20);
        for _ in 0..fits {
            decode_payload_within(&payload, &mut budget).expect("within the budget");
        }
        let refused = decode_payload_within(&payload, &mut budget).expect_err("past the budget");
        assert_eq!(refused.code, errors::MESSAGE_TOO_LARGE, "codec {codec}");
        assert!(refused.why.contains("together"), "{}", refused.why);
        // A fresh request is not affected.
        decode_payload(&payload).expect("a new budget");
    }
}

#[test]
fn a_zstd_batch_is_inflated_and_a_zstd_bomb_or_huge_window_refused() {
    let records = plain_records();
    let compressed = zstd::stream::encode_all(&records[..], 3).expect("compress");
    assert_eq!(
        values_of(&rebody_of(&ABC, 4, &compressed)),
        vec![b"a".to_vec(), b"bb".to_vec(), b"ccc".to_vec()]
    );
    let refused = |body: &[u8], why: &str| {
        let r = decode_payload(&rebody_of(&ABC, 4, body)).expect_err("refused");
        assert_eq!(r.code, errors::CORRUPT_MESSAGE);
        assert!(r.why.contains(why), "{} does not say {why}", r.why);
    };
    let bomb = zstd::stream::encode_all(&vec![0u8; MAX_INFLATED + 1][..], 3).expect("compress");
    refused(&bomb, "past the limit");
    // A frame whose window is past 16 MiB (streamed, so its header states the window rather
    // than the content size) is refused before the decoder allocates it.
    let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), 3).expect("encoder");
    encoder.window_log(25).expect("window");
    encoder.long_distance_matching(true).expect("ldm");
    std::io::Write::write_all(&mut encoder, &records).expect("compress");
    let wide = encoder.finish().expect("compressed");
    refused(&wide, "zstd: ");
    refused(b"garbage", "zstd: ");
    // The same frame inflates when the window is allowed (what was refused was the window).
    let mut decoder = zstd::stream::read::Decoder::new(&wide[..]).expect("decoder");
    decoder.window_log_max(25).expect("window");
    let mut inflated = Vec::new();
    std::io::Read::read_to_end(&mut decoder, &mut inflated).expect("inflates");
    assert_eq!(inflated, records);
}

#[test]
fn several_batches_of_a_partition_are_one_append_and_idempotent_ones_must_follow() {
    let mut two = BytesMut::from(&batch(&["a"], Compression::None)[..]);
    two.extend_from_slice(&batch(&["b", "c"], Compression::None));
    assert_eq!(
        decode_payload(&two.freeze())
            .expect("decodes")
            .records
            .len(),
        3
    );
}

#[test]
fn entries_are_encoded_as_batches_at_their_offsets_split_by_epoch_and_producer() {
    let entry = |offset, epoch, producer: Option<ProducerStamp>| LogEntry {
        offset,
        epoch,
        record: Record::keyed(format!("k{offset}"), format!("v{offset}")),
        producer,
    };
    let stamp = |seq| {
        Some(ProducerStamp {
            producer: 9,
            epoch: 0,
            sequence: seq,
            batch_first: 0,
        })
    };
    let entries = vec![
        entry(5, 1, None),
        entry(6, 1, None),
        entry(7, 2, None),
        entry(8, 2, stamp(0)),
        entry(9, 2, stamp(1)),
    ];
    let mut bytes = encode_entries(&entries).expect("encoded");
    let sets = RecordBatchDecoder::decode_all(&mut bytes).expect("decoded");
    let shape: Vec<Vec<(i64, i32, i64, i32)>> = sets
        .iter()
        .map(|s| {
            s.records
                .iter()
                .map(|r| {
                    (
                        r.offset,
                        r.partition_leader_epoch,
                        r.producer_id,
                        r.sequence,
                    )
                })
                .collect()
        })
        .collect();
    assert_eq!(
        shape,
        vec![
            vec![(5, 1, -1, -1), (6, 1, -1, 0)],
            vec![(7, 2, -1, -1)],
            vec![(8, 2, 9, 0), (9, 2, 9, 1)],
        ]
    );
    // The plain batches' headers say "no producer": base sequence -1.
    let raw = encode_entries(&entries[..2]).expect("encoded");
    assert_eq!(i32::from_be_bytes([raw[53], raw[54], raw[55], raw[56]]), -1);
}

/// Requests the crate encodes, filled in, at every advertised version: the walk must accept
/// each and end exactly where the body ends (a schema slip would close real clients' connections).
#[test]
fn the_walk_accepts_every_advertised_version_of_every_request() {
    use super::versions::ADVERTISED;
    for (key, lo, hi) in ADVERTISED {
        for version in *lo..=*hi {
            let body = sample(*key, version);
            let frame = request(*key, version, 1, &body);
            let left = super::walk::check(*key, version, &frame[4..])
                .unwrap_or_else(|e| panic!("{key:?} v{version}: {e}"));
            assert_eq!(left, 0, "{key:?} v{version}: the walk stopped early");
            assert!(
                matches!(conn::parse(frame.slice(4..)), Ok(conn::Parsed::Request(..))),
                "{key:?} v{version} decodes"
            );
        }
    }
}

pub(super) fn sample(key: ApiKey, version: i16) -> RequestKind {
    let name = || TopicName(StrBytes::from_static_str("t"));
    match key {
        ApiKey::Produce => produce(-1, 1, batch(&["a"], Compression::None)),
        ApiKey::Fetch => {
            let RequestKind::Fetch(mut req) = fetch(0, 3, 100) else {
                unreachable!()
            };
            if version >= 13 {
                req.topics[0].topic = TopicName::default();
                req.topics[0].topic_id = topic_id("t");
            }
            if version >= 7 {
                let mut f = kafka_protocol::messages::fetch_request::ForgottenTopic::default();
                if version >= 13 {
                    f.topic_id = topic_id("t");
                } else {
                    f.topic = name();
                }
                f.partitions = vec![1, 2];
                req.forgotten_topics_data = vec![f];
            }
            if version >= 11 {
                req.rack_id = StrBytes::from_static_str("r");
            }
            RequestKind::Fetch(req)
        }
        ApiKey::ListOffsets => {
            let mut t = ListOffsetsTopic::default();
            t.name = name();
            let mut p = ListOffsetsPartition::default();
            p.timestamp = -2;
            t.partitions = vec![p.clone(), p];
            let mut req = ListOffsetsRequest::default();
            req.topics = vec![t];
            RequestKind::ListOffsets(req)
        }
        ApiKey::Metadata => {
            let mut t = kafka_protocol::messages::metadata_request::MetadataRequestTopic::default();
            t.name = Some(name());
            let mut req = MetadataRequest::default();
            req.topics = Some(vec![t]);
            RequestKind::Metadata(req)
        }
        ApiKey::ApiVersions => {
            let mut req = ApiVersionsRequest::default();
            if version >= 3 {
                req.client_software_name = StrBytes::from_static_str("x");
                req.client_software_version = StrBytes::from_static_str("1");
            }
            RequestKind::ApiVersions(req)
        }
        ApiKey::InitProducerId => {
            let mut req = InitProducerIdRequest::default();
            req.transaction_timeout_ms = 60_000;
            RequestKind::InitProducerId(req)
        }
        ApiKey::FindCoordinator => {
            let mut req = FindCoordinatorRequest::default();
            if version >= 4 {
                req.coordinator_keys = vec![
                    StrBytes::from_static_str("g"),
                    StrBytes::from_static_str("h"),
                ];
            } else {
                req.key = StrBytes::from_static_str("g");
            }
            RequestKind::FindCoordinator(req)
        }
        ApiKey::JoinGroup => {
            let mut p =
                kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol::default();
            p.name = StrBytes::from_static_str("range");
            p.metadata =
                Bytes::from_static(&[0, 0, 0, 0, 0, 1, 0, 1, b't', 0xff, 0xff, 0xff, 0xff]);
            let mut req = JoinGroupRequest::default();
            req.group_id = GroupId(StrBytes::from_static_str("g"));
            req.session_timeout_ms = 6_000;
            req.protocol_type = StrBytes::from_static_str("consumer");
            req.protocols = vec![p.clone(), p];
            RequestKind::JoinGroup(req)
        }
        ApiKey::SyncGroup => {
            let mut a =
                kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment::default();
            a.member_id = StrBytes::from_static_str("m");
            a.assignment = Bytes::from_static(b"xyz");
            let mut req = SyncGroupRequest::default();
            req.group_id = GroupId(StrBytes::from_static_str("g"));
            req.member_id = StrBytes::from_static_str("m");
            if version >= 5 {
                req.protocol_type = Some(StrBytes::from_static_str("consumer"));
                req.protocol_name = Some(StrBytes::from_static_str("range"));
            }
            req.assignments = vec![a.clone(), a];
            RequestKind::SyncGroup(req)
        }
        ApiKey::Heartbeat => {
            let mut req = HeartbeatRequest::default();
            req.group_id = GroupId(StrBytes::from_static_str("g"));
            req.member_id = StrBytes::from_static_str("m");
            RequestKind::Heartbeat(req)
        }
        ApiKey::LeaveGroup => {
            let mut req = LeaveGroupRequest::default();
            req.group_id = GroupId(StrBytes::from_static_str("g"));
            if version >= 3 {
                let mut m =
                    kafka_protocol::messages::leave_group_request::MemberIdentity::default();
                m.member_id = StrBytes::from_static_str("m");
                req.members = vec![m.clone(), m];
            } else {
                req.member_id = StrBytes::from_static_str("m");
            }
            RequestKind::LeaveGroup(req)
        }
        ApiKey::OffsetCommit => {
            let mut p = kafka_protocol::messages::offset_commit_request::OffsetCommitRequestPartition::default();
            p.committed_offset = 5;
            p.committed_metadata = Some(StrBytes::from_static_str("md"));
            let mut t =
                kafka_protocol::messages::offset_commit_request::OffsetCommitRequestTopic::default(
                );
            t.name = name();
            t.partitions = vec![p.clone(), p];
            let mut req = OffsetCommitRequest::default();
            req.group_id = GroupId(StrBytes::from_static_str("g"));
            req.member_id = StrBytes::from_static_str("m");
            req.topics = vec![t];
            RequestKind::OffsetCommit(req)
        }
        ApiKey::OffsetFetch => {
            let mut req = OffsetFetchRequest::default();
            if version >= 8 {
                let mut t = kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopics::default();
                t.name = name();
                t.partition_indexes = vec![0, 1];
                let mut g = kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestGroup::default();
                g.group_id = GroupId(StrBytes::from_static_str("g"));
                g.topics = Some(vec![t]);
                req.groups = vec![g];
            } else {
                let mut t = kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic::default();
                t.name = name();
                t.partition_indexes = vec![0, 1];
                req.group_id = GroupId(StrBytes::from_static_str("g"));
                req.topics = Some(vec![t]);
            }
            RequestKind::OffsetFetch(req)
        }
        ApiKey::CreateTopics => {
            use kafka_protocol::messages::create_topics_request::{
                CreatableReplicaAssignment, CreatableTopic, CreatableTopicConfig,
            };
            let mut a = CreatableReplicaAssignment::default();
            a.broker_ids = vec![BrokerId(0), BrokerId(1)];
            let mut c = CreatableTopicConfig::default();
            c.name = StrBytes::from_static_str("retention.ms");
            c.value = Some(StrBytes::from_static_str("1000"));
            let mut t = CreatableTopic::default();
            t.name = name();
            t.num_partitions = 2;
            t.replication_factor = 1;
            t.assignments = vec![a.clone(), a];
            t.configs = vec![c.clone(), c];
            let mut plain = CreatableTopic::default();
            plain.name = TopicName(StrBytes::from_static_str("u"));
            plain.num_partitions = -1;
            plain.replication_factor = -1;
            let mut req = CreateTopicsRequest::default();
            req.topics = vec![t, plain];
            // No controller answers this test's broker: a short wait for REQUEST_TIMED_OUT.
            req.timeout_ms = 50;
            req.validate_only = true;
            RequestKind::CreateTopics(req)
        }
        _ => unreachable!("not advertised"),
    }
}

/// Every advertised version of every API is answered (the response encodes at that version)
/// by a broker that is no group's coordinator and holds no records.
#[tokio::test]
async fn every_advertised_version_is_answered() {
    use super::versions::ADVERTISED;
    let shared = broker();
    for (key, lo, hi) in ADVERTISED {
        for version in *lo..=*hi {
            let (mut c, _) = connect(shared.clone());
            let body = sample(*key, version);
            c.write_all(&request(*key, version, 7, &body))
                .await
                .expect("write");
            let mut frame = read_frame(&mut c)
                .await
                .unwrap_or_else(|| panic!("{key:?} v{version}: no response"));
            let header = ResponseHeader::decode(&mut frame, key.response_header_version(version))
                .expect("header");
            assert_eq!(header.correlation_id, 7);
            ResponseKind::decode(*key, &mut frame, version)
                .unwrap_or_else(|e| panic!("{key:?} v{version}: {e}"));
        }
    }
}

/// One record of an idempotent producer `pid` at sequence `seq`, as a v2 batch.
fn idempotent_batch(pid: i64, seq: i32, value: &str) -> Bytes {
    let mut r = records(&[value]);
    r[0].producer_id = pid;
    r[0].producer_epoch = 0;
    r[0].sequence = seq;
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut buf, &r, &options).expect("a batch");
    buf.freeze()
}

/// An idempotent producer pipelines its batches on one connection; Kafka appends a
/// connection's requests in order. Were they handed to the broker in whatever order their tasks
/// ran, a batch would overtake the one before it and be refused as out of sequence (which
/// librdkafka takes for a fatal error: `seedlog chaos` found it, docs/chaos.md).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pipelined_idempotent_batches_reach_the_broker_in_connection_order() {
    let (mut c, _) = connect(broker());
    for round in 0..5 {
        let n = 40;
        let mut frames = BytesMut::new();
        for i in 0..n {
            let seq = round * n + i;
            let body = produce(-1, 0, idempotent_batch(77, seq, &format!("v{seq}")));
            frames.extend_from_slice(&request(ApiKey::Produce, 9, seq, &body));
        }
        c.write_all(&frames).await.expect("write");
        for i in 0..n {
            let seq = round * n + i;
            let mut frame = read_frame(&mut c).await.expect("a response");
            let version = ApiKey::Produce.response_header_version(9);
            let header = ResponseHeader::decode(&mut frame, version).expect("header");
            assert_eq!(header.correlation_id, seq);
            let resp = ResponseKind::decode(ApiKey::Produce, &mut frame, 9).expect("body");
            assert_eq!(produced(resp), (0, i64::from(seq)), "batch {seq}");
        }
    }
}
