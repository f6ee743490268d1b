//! Log entries in bulk, as one block of bytes: how a fetch answer carries them to a follower or a
//! consumer and how a journal write stores them.
//!
//! Why a block, and not each entry through serde: a broker's produce path moves every record
//! through three encodings (its journal write, one fetch answer per follower) and every follower
//! through one decoding and one more journal write. Encoded field by field, each record cost some
//! 700 instructions to encode and 1 200 to decode (two allocations for its key and value); the
//! block writes fixed-width fields and raw bytes, and a decoded record's key, value and header
//! values are slices of one shared buffer (one allocation per block, not two per record).
//!
//! Compact formats (postcard: frames, journals, the simulator's trace hash) carry the block as
//! one byte string; readable ones (JSON) keep the plain list of entries.
//!
//! Layout, every integer little-endian:
//! ```text
//! block  = count:u32 entry*count
//! entry  = offset:u64 epoch:u32 timestamp:i64 flags:u8
//!          [key:bytes if flags&KEY] [value:bytes if flags&VALUE]
//!          headers:u32 header*headers
//!          [producer:u64 producer_epoch:u16 sequence:u64 batch_first:u64 if flags&PRODUCER]
//! header = key:bytes(UTF-8) present:u8 [value:bytes if present == 1]
//! bytes  = len:u32 byte*len
//! ```
//! Decoding checks every length against what is left before it allocates, so a corrupt or
//! hostile count cannot make it allocate more than a small multiple of the block's own size
//! (an entry takes at least 25 bytes in a block and about 150 in memory).

use super::{Header, LogEntry, ProducerStamp, Record};
use bytes::Bytes;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

const KEY: u8 = 1;
const VALUE: u8 = 2;
const PRODUCER: u8 = 4;
/// The fewest bytes an entry takes (offset, epoch, timestamp, flags, header count): a count
/// larger than what is left divided by this is refused before anything is allocated.
const MIN_ENTRY: usize = 8 + 4 + 8 + 1 + 4;
/// Producer id, epoch, sequence and the batch's first sequence.
const PRODUCER_STAMP: usize = 8 + 2 + 8 + 8;

/// Why a block could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    #[error("entry block cut short: {what} needs {need} bytes at byte {at}, {have} left")]
    Short {
        what: &'static str,
        at: usize,
        need: usize,
        have: usize,
    },
    #[error("entry block declares {count} entries, more than its {len} bytes can hold")]
    TooManyEntries { count: usize, len: usize },
    #[error("entry block: entry {index} has unknown flags {flags:#04x}")]
    Flags { index: usize, flags: u8 },
    #[error("entry block: a header key of entry {index} is not UTF-8")]
    HeaderKey { index: usize },
    #[error("entry block: header value marker {marker} of entry {index} is neither 0 nor 1")]
    HeaderMarker { index: usize, marker: u8 },
    #[error("entry block: {left} bytes left over after its {count} entries")]
    Trailing { count: usize, left: usize },
}

/// The bytes `encode` writes for `entries`, exactly.
pub fn encoded_len(entries: &[LogEntry]) -> usize {
    4 + entries.iter().map(entry_len).sum::<usize>()
}

fn entry_len(e: &LogEntry) -> usize {
    let r = &e.record;
    let headers: usize = r
        .headers
        .iter()
        .map(|h| 4 + h.key.len() + 1 + h.value.as_ref().map_or(0, |v| 4 + v.len()))
        .sum();
    MIN_ENTRY
        + r.key.as_ref().map_or(0, |k| 4 + k.len())
        + r.value.as_ref().map_or(0, |v| 4 + v.len())
        + headers
        + if e.producer.is_some() {
            8 + 2 + 8 + 8
        } else {
            0
        }
}

/// The most bytes an entry holding `record` takes in a block (a producer stamp counted): what a
/// journal write or a fetch answer of these records needs, to keep it under the frame limit.
pub fn entry_bound(record: &Record) -> u64 {
    let headers: usize = record
        .headers
        .iter()
        .map(|h| 4 + h.key.len() + 1 + 4 + h.value.as_ref().map_or(0, |v| v.len()))
        .sum();
    let bytes = |b: &Option<Bytes>| 4 + b.as_ref().map_or(0, |b| b.len());
    (MIN_ENTRY + bytes(&record.key) + bytes(&record.value) + headers + PRODUCER_STAMP) as u64
}

/// The most bytes one append may take in the log's journal write, counted by `entry_bound`
/// (record bytes, lengths, offsets and producer stamps: counting record bytes alone, a batch of
/// many tiny records would pass at a third of its size). A broker journals an append as one
/// frame, and frames over 16 MiB are refused as corrupt when they are read back: a larger
/// append would be acknowledged, then refused on recovery. Past this a leader answers
/// `MessageTooLarge` and appends nothing, and a fetch answer stops before it (so that a
/// follower's journal write of the answer stays under the frame limit too).
pub const MAX_APPEND_BYTES: u64 = 8 << 20;

/// The most bytes `records` take in a block, as `MAX_APPEND_BYTES` counts them.
pub fn append_bound(records: &[Record]) -> u64 {
    records.iter().map(entry_bound).sum()
}

/// Appends the block for `entries` to `out`.
pub fn encode(entries: &[LogEntry], out: &mut Vec<u8>) {
    out.reserve(encoded_len(entries));
    put_len(out, entries.len());
    for e in entries {
        let r = &e.record;
        out.extend_from_slice(&e.offset.to_le_bytes());
        out.extend_from_slice(&e.epoch.to_le_bytes());
        out.extend_from_slice(&r.timestamp.to_le_bytes());
        let flags = (r.key.is_some() as u8 * KEY)
            | (r.value.is_some() as u8 * VALUE)
            | (e.producer.is_some() as u8 * PRODUCER);
        out.push(flags);
        if let Some(k) = &r.key {
            put_bytes(out, k);
        }
        if let Some(v) = &r.value {
            put_bytes(out, v);
        }
        put_len(out, r.headers.len());
        for h in &r.headers {
            put_bytes(out, h.key.as_bytes());
            match &h.value {
                Some(v) => {
                    out.push(1);
                    put_bytes(out, v);
                }
                None => out.push(0),
            }
        }
        if let Some(p) = &e.producer {
            out.extend_from_slice(&p.producer.to_le_bytes());
            out.extend_from_slice(&p.epoch.to_le_bytes());
            out.extend_from_slice(&p.sequence.to_le_bytes());
            out.extend_from_slice(&p.batch_first.to_le_bytes());
        }
    }
}

/// Lengths and counts are `u32`: a frame is at most 16 MiB, so none comes near.
fn put_len(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&(n as u32).to_le_bytes());
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_len(out, b.len());
    out.extend_from_slice(b);
}

/// Reads a block; every key, value and header value is a slice of `block` (no copy).
pub fn decode(block: &Bytes) -> Result<Vec<LogEntry>, BlockError> {
    let mut r = Reader { block, at: 0 };
    let count = r.len("entry count")?;
    if count > r.left() / MIN_ENTRY {
        return Err(BlockError::TooManyEntries {
            count,
            len: block.len(),
        });
    }
    // Capped as well: a hostile count within the block's size still asks for a lot of memory.
    let mut entries = Vec::with_capacity(count.min(1 << 16));
    for index in 0..count {
        let offset = u64::from_le_bytes(r.array("offset")?);
        let epoch = u32::from_le_bytes(r.array("epoch")?);
        let timestamp = i64::from_le_bytes(r.array("timestamp")?);
        let [flags] = r.array("flags")?;
        if flags & !(KEY | VALUE | PRODUCER) != 0 {
            return Err(BlockError::Flags { index, flags });
        }
        let key = (flags & KEY != 0).then(|| r.bytes("key")).transpose()?;
        let value = (flags & VALUE != 0).then(|| r.bytes("value")).transpose()?;
        let n = r.len("header count")?;
        // Each header takes at least 5 bytes (key length, value marker).
        let mut headers = Vec::with_capacity(n.min(r.left() / 5).min(64));
        for _ in 0..n {
            let key = r.bytes("header key")?;
            let key =
                String::from_utf8(key.to_vec()).map_err(|_| BlockError::HeaderKey { index })?;
            let value = match r.array("header value marker")? {
                [0] => None,
                [1] => Some(r.bytes("header value")?),
                [marker] => return Err(BlockError::HeaderMarker { index, marker }),
            };
            headers.push(Header { key, value });
        }
        let producer = if flags & PRODUCER != 0 {
            Some(ProducerStamp {
                producer: u64::from_le_bytes(r.array("producer id")?),
                epoch: u16::from_le_bytes(r.array("producer epoch")?),
                sequence: u64::from_le_bytes(r.array("sequence")?),
                batch_first: u64::from_le_bytes(r.array("batch's first sequence")?),
            })
        } else {
            None
        };
        entries.push(LogEntry {
            offset,
            epoch,
            record: Record {
                key,
                value,
                timestamp,
                headers,
            },
            producer,
        });
    }
    match r.left() {
        0 => Ok(entries),
        left => Err(BlockError::Trailing { count, left }),
    }
}

struct Reader<'a> {
    block: &'a Bytes,
    at: usize,
}

impl Reader<'_> {
    fn left(&self) -> usize {
        self.block.len() - self.at
    }

    fn take(&mut self, what: &'static str, need: usize) -> Result<usize, BlockError> {
        if need > self.left() {
            return Err(BlockError::Short {
                what,
                at: self.at,
                need,
                have: self.left(),
            });
        }
        let start = self.at;
        self.at += need;
        Ok(start)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], BlockError> {
        let at = self.take(what, N)?;
        Ok(self.block[at..at + N].try_into().expect("N bytes taken"))
    }

    fn len(&mut self, what: &'static str) -> Result<usize, BlockError> {
        Ok(u32::from_le_bytes(self.array(what)?) as usize)
    }

    fn bytes(&mut self, what: &'static str) -> Result<Bytes, BlockError> {
        let n = self.len(what)?;
        let at = self.take(what, n)?;
        Ok(self.block.slice(at..at + n))
    }
}

/// `#[serde(with = "entry_block")]` for a `Vec<LogEntry>` field: the block in compact formats,
/// the plain list in readable ones.
pub fn serialize<S: Serializer>(entries: &Vec<LogEntry>, s: S) -> Result<S::Ok, S::Error> {
    if s.is_human_readable() {
        return entries.serialize(s);
    }
    let mut block = Vec::new();
    encode(entries, &mut block);
    s.serialize_bytes(&block)
}

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<LogEntry>, D::Error> {
    if d.is_human_readable() {
        return Vec::<LogEntry>::deserialize(d);
    }
    d.deserialize_bytes(BlockVisitor)
}

struct BlockVisitor;

impl<'de> serde::de::Visitor<'de> for BlockVisitor {
    type Value = Vec<LogEntry>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a block of log entries")
    }

    fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Self::Value, E> {
        // One copy of the whole block; the entries' bytes are slices of it.
        decode(&Bytes::copy_from_slice(v)).map_err(E::custom)
    }

    fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Self::Value, E> {
        decode(&Bytes::from(v)).map_err(E::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::DiskOp;
    use crate::protocol::{FetchResponse, Message, TopicPartition};
    use proptest::prelude::*;

    fn entry(offset: u64, key: Option<&str>, value: Option<&str>) -> LogEntry {
        LogEntry {
            offset,
            epoch: 3,
            record: Record {
                key: key.map(|k| Bytes::from(k.to_owned())),
                value: value.map(|v| Bytes::from(v.to_owned())),
                timestamp: -7,
                headers: vec![
                    Header {
                        key: "h".into(),
                        value: None,
                    },
                    Header {
                        key: "é".into(),
                        value: Some(Bytes::from_static(b"")),
                    },
                ],
            },
            producer: Some(ProducerStamp {
                producer: 9,
                epoch: 2,
                sequence: offset + 4,
                batch_first: 4,
            }),
        }
    }

    fn block(entries: &[LogEntry]) -> Bytes {
        let mut out = Vec::new();
        encode(entries, &mut out);
        assert_eq!(out.len(), encoded_len(entries));
        Bytes::from(out)
    }

    #[test]
    fn a_block_reads_back_with_nulls_and_empties_kept_apart() {
        let entries = vec![
            entry(0, Some("k"), Some("v")),
            entry(1, None, None),
            entry(2, Some(""), Some("")),
        ];
        assert_eq!(decode(&block(&entries)).unwrap(), entries);
        assert_eq!(decode(&block(&[])).unwrap(), vec![]);
    }

    #[test]
    fn a_decoded_value_is_a_slice_of_the_block_not_a_copy() {
        let b = block(&[entry(0, Some("key"), Some("value"))]);
        let got = decode(&b).unwrap();
        let value = got[0].record.value.as_ref().unwrap();
        let inside = b.as_ptr_range();
        assert!(inside.contains(&value.as_ptr()), "the value was copied");
    }

    #[test]
    fn every_cut_of_a_block_is_refused_with_an_error() {
        let b = block(&[entry(0, Some("k"), Some("v")), entry(1, None, Some("w"))]);
        for n in 0..b.len() {
            let err = decode(&b.slice(..n)).expect_err("a cut block must not read");
            assert!(
                matches!(
                    err,
                    BlockError::Short { .. } | BlockError::TooManyEntries { .. }
                ),
                "cut at {n}: {err}"
            );
        }
        let mut longer = b.to_vec();
        longer.push(0);
        assert_eq!(
            decode(&Bytes::from(longer)),
            Err(BlockError::Trailing { count: 2, left: 1 })
        );
    }

    #[test]
    fn a_huge_count_is_refused_before_anything_is_allocated() {
        let mut b = u32::MAX.to_le_bytes().to_vec();
        b.extend_from_slice(&[0; 100]);
        assert_eq!(
            decode(&Bytes::from(b)),
            Err(BlockError::TooManyEntries {
                count: u32::MAX as usize,
                len: 104
            })
        );
        // A header count past what is left fails on the bytes, not on an allocation.
        let mut bare = entry(0, None, None);
        bare.record.headers.clear();
        bare.producer = None;
        let mut one = block(&[bare]).to_vec();
        let headers_at = 4 + 8 + 4 + 8 + 1;
        one[headers_at..headers_at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            decode(&Bytes::from(one)),
            Err(BlockError::Short {
                what: "header key",
                ..
            })
        ));
    }

    #[test]
    fn bad_flags_markers_and_header_keys_are_named() {
        let good = block(&[entry(0, None, None)]).to_vec();
        let flags_at = 4 + 8 + 4 + 8;
        let mut bad = good.clone();
        bad[flags_at] = 0x80 | PRODUCER;
        assert_eq!(
            decode(&Bytes::from(bad)),
            Err(BlockError::Flags {
                index: 0,
                flags: 0x84
            })
        );
        // First header: key length 1, key "h", then its value marker.
        let marker_at = flags_at + 1 + 4 + 4 + 1;
        let mut bad = good.clone();
        bad[marker_at] = 2;
        assert_eq!(
            decode(&Bytes::from(bad)),
            Err(BlockError::HeaderMarker {
                index: 0,
                marker: 2
            })
        );
        let mut bad = good;
        bad[marker_at - 1] = 0xff;
        assert_eq!(
            decode(&Bytes::from(bad)),
            Err(BlockError::HeaderKey { index: 0 })
        );
    }

    #[test]
    fn fetch_answers_and_journal_writes_carry_the_block_and_json_the_list() {
        let entries = vec![entry(5, Some("k"), None), entry(6, None, Some("v"))];
        let answer = Message::FetchResponse(FetchResponse {
            tp: TopicPartition::new("t", 0),
            fetch_offset: 5,
            error: None,
            leader_epoch: 3,
            high_watermark: 5,
            log_start_offset: 0,
            records: entries.clone(),
            diverging_epoch: None,
            producers: Vec::new(),
            connection: 0,
        });
        let wire = postcard::to_stdvec(&answer).unwrap();
        assert_eq!(postcard::from_bytes::<Message>(&wire).unwrap(), answer);
        let json = serde_json::to_string(&answer).unwrap();
        assert!(json.contains("\"records\":[{\"offset\":5"), "{json}");
        assert_eq!(serde_json::from_str::<Message>(&json).unwrap(), answer);
        let op = DiskOp::Append {
            tp: TopicPartition::new("t", 0),
            entries,
        };
        let frame = postcard::to_stdvec(&op).unwrap();
        assert_eq!(postcard::from_bytes::<DiskOp>(&frame).unwrap(), op);
    }

    #[test]
    fn journals_written_before_the_block_still_read() {
        // The old `Append` (first variant, entries as a list) is `AppendV1` now.
        let entries = vec![entry(0, Some("k"), Some("v"))];
        let tp = TopicPartition::new("t", 0);
        let old = DiskOp::AppendV1 {
            tp: tp.clone(),
            entries: entries.clone(),
        };
        let frame = postcard::to_stdvec(&old).unwrap();
        assert_eq!(frame[0], 0, "the old form kept its variant number");
        let mut image = crate::node::BrokerImage::default();
        image
            .apply(&postcard::from_bytes::<DiskOp>(&frame).unwrap())
            .unwrap();
        assert_eq!(image.logs[&tp].entries(), &entries[..]);
    }

    fn arb_bytes() -> impl Strategy<Value = Option<Bytes>> {
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..6).prop_map(Bytes::from))
    }

    fn arb_entry() -> impl Strategy<Value = LogEntry> {
        (
            (any::<u64>(), any::<u32>(), any::<i64>()),
            (arb_bytes(), arb_bytes()),
            proptest::collection::vec(("\\PC{0,3}", arb_bytes()), 0..3),
            proptest::option::of((any::<u64>(), any::<u16>(), any::<u64>(), any::<u64>())),
        )
            .prop_map(
                |((offset, epoch, timestamp), (key, value), headers, p)| LogEntry {
                    offset,
                    epoch,
                    record: Record {
                        key,
                        value,
                        timestamp,
                        headers: headers
                            .into_iter()
                            .map(|(key, value)| Header { key, value })
                            .collect(),
                    },
                    producer: p.map(|(producer, epoch, sequence, batch_first)| ProducerStamp {
                        producer,
                        epoch,
                        sequence,
                        batch_first,
                    }),
                },
            )
    }

    proptest! {
        #[test]
        fn every_list_of_entries_reads_back_as_written(
            entries in proptest::collection::vec(arb_entry(), 0..5),
        ) {
            prop_assert_eq!(decode(&block(&entries)).unwrap(), entries);
        }

        /// Any bytes at all: an error or entries, never a panic; and whatever reads encodes
        /// back to the same bytes (the format has one spelling per list of entries).
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let b = Bytes::from(bytes);
            if let Ok(entries) = decode(&b) {
                prop_assert_eq!(block(&entries), b);
            }
        }

        /// A changed byte in a block either fails to read or reads as different entries.
        #[test]
        fn a_flipped_byte_is_never_read_as_the_same_entries(
            entries in proptest::collection::vec(arb_entry(), 1..4),
            at in any::<prop::sample::Index>(),
            flip in 1u8..=255,
        ) {
            let mut b = block(&entries).to_vec();
            let i = at.index(b.len());
            b[i] ^= flip;
            if let Ok(read) = decode(&Bytes::from(b)) {
                prop_assert_ne!(read, entries);
            }
        }
    }
}
