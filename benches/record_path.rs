//! `cargo bench --bench record_path`: what one record costs on a broker's produce path, per
//! step, in nanoseconds — appending a produced batch to the leader's log (the bench's copy of
//! the batch, which a broker gets from the request decoder, included), encoding the fetch
//! answer that carries it to a follower (the frame codec real TCP uses), decoding it there, and
//! encoding the journal write each replica makes. A measurement, not a test: it asserts nothing
//! about time. Batches of 500 records of 100 bytes (the Kafka benchmark's shape).

use seedlog::log::PartitionLog;
use seedlog::node::DiskOp;
use seedlog::protocol::{FetchResponse, LogEntry, Message, ProducerStamp, Record, TopicPartition};
use seedlog::runtime::frame::{encode_into, FrameDecoder};
use std::hint::black_box;
use std::time::Instant;

const BATCH: usize = 500;
/// Batches timed per step; `RECORD_PATH_ROUNDS` sets it (e.g. low, under callgrind).
fn rounds() -> usize {
    std::env::var("RECORD_PATH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(400)
}

fn records() -> Vec<Record> {
    (0..BATCH)
        .map(|i| Record {
            key: (i % 2 == 0).then(|| format!("key-{i}").into_bytes().into()),
            value: Some(vec![b'x'; 100].into()),
            timestamp: 1_700_000_000_000 + i as i64,
            headers: Vec::new(),
        })
        .collect()
}

/// Runs `f` `rounds()` times (after a warm-up) and prints nanoseconds per record.
fn time(name: &str, mut f: impl FnMut()) {
    let rounds = rounds().max(1);
    for _ in 0..rounds.div_ceil(10) {
        f();
    }
    let start = Instant::now();
    for _ in 0..rounds {
        f();
    }
    let per_record = start.elapsed().as_nanos() as f64 / (rounds * BATCH) as f64;
    println!("{name:<40} {per_record:>8.1} ns/record");
}

fn main() {
    let tp = TopicPartition::new("bench", 0);
    let batch = records();
    let stamp = Some(ProducerStamp::batch(7, 0, 0));

    let mut log = PartitionLog::new();
    let mut sequence = 0;
    time("leader append (log, producer state)", || {
        let stamp = stamp.map(|s| ProducerStamp::batch(s.producer, s.epoch, sequence));
        sequence += BATCH as u64;
        black_box(log.append_stamped(1, batch.clone(), stamp).expect("append"));
    });

    let entries: Vec<LogEntry> = log.read(0, BATCH as u64, BATCH);
    let answer = Message::FetchResponse(FetchResponse {
        tp: tp.clone(),
        fetch_offset: 0,
        error: None,
        leader_epoch: 1,
        high_watermark: 0,
        log_start_offset: 0,
        records: entries.clone(),
        diverging_epoch: None,
        producers: Vec::new(),
        connection: 0,
    });
    let mut wire = Vec::new();
    time("fetch answer encode (frame)", || {
        wire.clear();
        encode_into(&answer, &mut wire);
        black_box(&wire);
    });
    time("fetch answer decode (frame)", || {
        let mut decoder = FrameDecoder::new();
        decoder.push(&wire);
        black_box(
            decoder
                .next_frame::<Message>()
                .expect("decode")
                .expect("a frame"),
        );
    });
    let op = DiskOp::Append { tp, entries };
    let mut journal = Vec::new();
    time("journal write encode (frame)", || {
        journal.clear();
        encode_into(&op, &mut journal);
        black_box(&journal);
    });
}
