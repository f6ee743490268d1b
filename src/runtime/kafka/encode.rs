//! Log entries as record batches (format v2, uncompressed) for a Fetch response.
//!
//! The log keeps records one by one; batches are rebuilt on the way out, one per run of entries
//! appended in the same leader epoch by the same producer batch, each at its entries' offsets.

use crate::protocol::LogEntry;
use bytes::{Bytes, BytesMut};
use indexmap::IndexMap;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

/// A v2 record batch's header, in bytes.
const BATCH_HEADER: usize = 61;

/// `entries` (consecutive offsets, as a fetch returns them) as batches.
pub fn encode_entries(entries: &[LogEntry]) -> anyhow::Result<Bytes> {
    // Room for every record (its varint lengths and deltas included) and a few batch headers:
    // a buffer grown from empty copied the records again at every doubling.
    let room: usize = entries
        .iter()
        .map(|e| e.record.size_bytes() as usize + 32 + e.record.headers.len() * 10)
        .sum::<usize>()
        + 8 * BATCH_HEADER;
    let mut buf = BytesMut::with_capacity(room);
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    let mut start = 0;
    while start < entries.len() {
        let first = &entries[start];
        let same_batch = |e: &LogEntry| {
            e.epoch == first.epoch
                && match (e.producer, first.producer) {
                    (Some(a), Some(b)) => {
                        a.producer == b.producer
                            && a.epoch == b.epoch
                            && a.batch_first == b.batch_first
                    }
                    (None, None) => true,
                    _ => false,
                }
        };
        let end = start
            + entries[start..]
                .iter()
                .take_while(|e| same_batch(e))
                .count();
        let run = &entries[start..end];
        let records: Vec<Record> = run.iter().map(|e| kafka_record(e, run[0].offset)).collect();
        RecordBatchEncoder::encode(&mut buf, &records, &options)?;
        start = end;
    }
    Ok(buf.freeze())
}

fn kafka_record(e: &LogEntry, run_base: u64) -> Record {
    let (producer_id, producer_epoch, sequence) = match e.producer {
        Some(p) => (p.producer as i64, p.epoch as i16, p.sequence as i32),
        // No producer: the batch's base sequence must be -1. The encoder ends a batch where
        // `offset - sequence` changes (its rule for idempotent runs), so the sequences count up
        // from -1 with the offsets; it writes only the first, -1, into the batch header.
        None => (-1, -1, (e.offset - run_base) as i32 - 1),
    };
    let headers: IndexMap<StrBytes, Option<Bytes>> = e
        .record
        .headers
        .iter()
        .map(|h| (StrBytes::from_string(h.key.clone()), h.value.clone()))
        .collect();
    Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: e.epoch as i32,
        producer_id,
        producer_epoch,
        timestamp_type: TimestampType::Creation,
        offset: e.offset as i64,
        sequence,
        timestamp: e.record.timestamp,
        key: e.record.key.clone(),
        value: e.record.value.clone(),
        headers,
    }
}
