//! Record batches (format v2) in a Produce request: checked, then decoded with the crate.
//!
//! Everything the wire states about sizes is checked against the bytes actually there before
//! anything is allocated from it: the crate's decoder reserves a batch's record count and a
//! record's header count as given, so a count of 2^31 must be refused first. A compressed batch
//! (gzip, snappy, lz4 or zstd) is inflated with a cap, so a small batch cannot expand into
//! gigabytes.

use super::errors;
use crate::protocol::{entry_block, Header, ProducerStamp, Record};
use bytes::Bytes;
use kafka_protocol::records::{Compression, RecordBatchDecoder};
use std::io::Read;

/// Bytes of a v2 batch header, up to and including the record count.
const HEADER: usize = 61;
/// The most a compressed batch may inflate to (a request frame is capped the same way).
pub const MAX_INFLATED: usize = 64 * 1024 * 1024;
/// The most all compressed batches of one Produce request may inflate to together. Each
/// partition's records stay in memory until the request is answered, and a 16 MiB request of
/// thousands of highly compressed partitions would otherwise inflate to hundreds of gigabytes
/// (or spend minutes inflating and refusing them): past the budget the rest are refused with
/// `MESSAGE_TOO_LARGE`, without being inflated.
pub const MAX_REQUEST_INFLATED: usize = 64 * 1024 * 1024;
/// Snappy's densest encoding (a 3-byte copy of 64 bytes) inflates about 21-fold: a block stating
/// more than this many times its own size is corrupt, and is refused before its stated size is
/// allocated.
const SNAPPY_MAX_RATIO: usize = 22;
/// The largest zstd window a batch may ask the decoder for, as a power of two: 16 MiB. Real
/// producers stay far below (zstd's levels up to 19 use at most 8 MiB); a frame that asks for
/// more would make the decoder allocate it before a byte is inflated.
const ZSTD_MAX_WINDOW_LOG: u32 = 24;
/// The header Kafka's Java producer puts before snappy data (xerial's stream format): this
/// magic, a version and a compatible version (4 bytes each), then blocks of a 4-byte length and
/// raw snappy. librdkafka sends raw snappy without it; both are taken.
const XERIAL_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
const XERIAL_HEADER: usize = 16;
/// The most bytes one partition's payload may append (`protocol::entry_block`, where the broker
/// itself refuses a larger append with `MessageTooLarge`). Checked here as well, so that the
/// client's error carries the sizes: Kafka answers MESSAGE_TOO_LARGE likewise past
/// `message.max.bytes`.
pub use crate::protocol::entry_block::MAX_APPEND_BYTES;
/// The fewest bytes a record takes (length, attributes, timestamp and offset deltas, key and
/// value lengths, header count: one byte each at least).
const MIN_RECORD: usize = 7;

/// A partition's payload, decoded: its records, and the producer stamp of an idempotent send.
#[derive(Debug, PartialEq)]
pub struct Decoded {
    pub records: Vec<Record>,
    pub producer: Option<ProducerStamp>,
}

/// What is left of one request's inflation budget (`MAX_REQUEST_INFLATED`).
#[derive(Debug)]
pub struct InflateBudget {
    left: usize,
}

impl InflateBudget {
    pub fn per_request() -> Self {
        InflateBudget {
            left: MAX_REQUEST_INFLATED,
        }
    }

    /// The most the next batch may inflate to.
    fn cap(&self) -> usize {
        self.left.min(MAX_INFLATED)
    }

    /// The refusal of a batch that would inflate past `cap`: corrupt past a batch's own limit,
    /// too large past what the request has left.
    fn past_cap(&self, codec: &str) -> Refused {
        if self.left < MAX_INFLATED {
            let why = format!(
                "{codec}: the request's compressed batches inflate past {MAX_REQUEST_INFLATED} bytes together"
            );
            refuse(errors::MESSAGE_TOO_LARGE, why)
        } else {
            refuse(
                errors::CORRUPT_MESSAGE,
                format!("{codec} batch inflates past the limit"),
            )
        }
    }

    fn spend(&mut self, inflated: usize) {
        self.left = self.left.saturating_sub(inflated);
    }
}

/// Why a payload is refused, as Kafka's error code with a message.
#[derive(Debug, PartialEq)]
pub struct Refused {
    pub code: i16,
    pub why: String,
}

fn refuse(code: i16, why: impl Into<String>) -> Refused {
    Refused {
        code,
        why: why.into(),
    }
}

/// Decodes every batch of one partition's payload; one bad batch refuses the whole payload (it
/// is never appended in part). Several batches of a plain producer become one list; an
/// idempotent producer's batches must follow each other in sequence.
#[cfg(test)]
pub fn decode_payload(payload: &Bytes) -> Result<Decoded, Refused> {
    decode_payload_within(payload, &mut InflateBudget::per_request())
}

/// As `decode_payload`, inflating within what is left of the request's `budget`.
pub fn decode_payload_within(
    payload: &Bytes,
    budget: &mut InflateBudget,
) -> Result<Decoded, Refused> {
    let mut at = 0;
    let mut out: Option<Decoded> = None;
    while at < payload.len() {
        let (batch, len) = decode_one(&payload.slice(at..), budget)?;
        at += len;
        out = Some(match out {
            None => batch,
            Some(mut acc) => {
                let follows = match (acc.producer, batch.producer) {
                    (None, None) => true,
                    (Some(a), Some(b)) => {
                        a.producer == b.producer
                            && a.epoch == b.epoch
                            && a.sequence + acc.records.len() as u64 == b.sequence
                    }
                    _ => false,
                };
                if !follows {
                    return Err(refuse(
                        errors::INVALID_RECORD,
                        "batches of one partition do not follow each other in sequence",
                    ));
                }
                acc.records.extend(batch.records);
                acc
            }
        });
    }
    let decoded = out.ok_or_else(|| refuse(errors::CORRUPT_MESSAGE, "no record batch"))?;
    let size = entry_block::append_bound(&decoded.records);
    if size > MAX_APPEND_BYTES {
        return Err(refuse(
            errors::MESSAGE_TOO_LARGE,
            format!(
                "{} records for one partition take up to {size} bytes in the log, more than {MAX_APPEND_BYTES}",
                decoded.records.len()
            ),
        ));
    }
    Ok(decoded)
}

/// One batch at the start of `bytes`, and its length.
fn decode_one(bytes: &Bytes, budget: &mut InflateBudget) -> Result<(Decoded, usize), Refused> {
    let corrupt = |why: &str| refuse(errors::CORRUPT_MESSAGE, why);
    if bytes.len() < HEADER {
        return Err(corrupt("record batch shorter than its header"));
    }
    let length = i32::from_be_bytes(word(bytes, 8));
    let Some(total) = usize::try_from(length)
        .ok()
        .and_then(|l| l.checked_add(12))
        .filter(|t| (HEADER..=bytes.len()).contains(t))
    else {
        return Err(corrupt("record batch length outside the payload"));
    };
    if bytes[16] != 2 {
        return Err(refuse(
            errors::UNSUPPORTED_FOR_MESSAGE_FORMAT,
            format!("record batch magic {} (only v2 is accepted)", bytes[16]),
        ));
    }
    let stated = u32::from_be_bytes(word(bytes, 17));
    if stated != crc32c::crc32c(&bytes[21..total]) {
        return Err(corrupt("record batch CRC-32C mismatch"));
    }
    let attributes = i16::from_be_bytes([bytes[21], bytes[22]]);
    if attributes & (1 << 4) != 0 || attributes & (1 << 5) != 0 {
        return Err(refuse(
            errors::INVALID_RECORD,
            "transactional and control batches are not supported",
        ));
    }
    let count = i32::from_be_bytes(word(bytes, 57));
    let body = bytes.slice(HEADER..total);
    let inflated = match attributes & 0x7 {
        0 => body,
        1 => inflate("gzip", flate2::read::MultiGzDecoder::new(&body[..]), budget)?,
        2 => unsnappy(&body, budget)?,
        // Kafka's lz4 is the LZ4 frame format (with a correct header checksum since magic 1).
        3 => inflate("lz4", lz4_flex::frame::FrameDecoder::new(&body[..]), budget)?,
        4 => {
            let zstd_error =
                |e: std::io::Error| refuse(errors::CORRUPT_MESSAGE, format!("zstd: {e}"));
            let mut decoder = zstd::stream::read::Decoder::new(&body[..]).map_err(zstd_error)?;
            decoder
                .window_log_max(ZSTD_MAX_WINDOW_LOG)
                .map_err(zstd_error)?;
            inflate("zstd", decoder, budget)?
        }
        codec => {
            return Err(refuse(
                errors::UNSUPPORTED_COMPRESSION_TYPE,
                format!(
                "compression codec {codec} is not one of Kafka's (none, gzip, snappy, lz4, zstd)"
            ),
            ))
        }
    };
    let count = usize::try_from(count).map_err(|_| corrupt("negative record count"))?;
    if count == 0 || count > inflated.len() / MIN_RECORD {
        return Err(corrupt("record count does not fit the batch's bytes"));
    }
    let stated_headers = check_records(&inflated, count)?;
    let mut batch = bytes.slice(..total);
    let decompressed = inflated.clone();
    let decoded = RecordBatchDecoder::decode_with_custom_compression(
        &mut batch,
        Some(&|_: &mut Bytes, _: Compression| Ok(decompressed.clone())),
    )
    .map_err(|e| corrupt(&format!("record batch: {e}")))?;
    // The crate keeps a record's headers in a map, one value per key; Kafka allows a key twice.
    // Refused rather than stored with a header silently dropped.
    let kept: usize = decoded.records.iter().map(|r| r.headers.len()).sum();
    if kept < stated_headers {
        return Err(refuse(
            errors::INVALID_RECORD,
            "a record repeats a header key, which this broker cannot store (it keeps one value per key)",
        ));
    }
    let producer_id = i64::from_be_bytes(long(bytes, 43));
    let producer_epoch = i16::from_be_bytes([bytes[51], bytes[52]]);
    let base_sequence = i32::from_be_bytes(word(bytes, 53));
    let producer = match (
        producer_id,
        u16::try_from(producer_epoch),
        u64::try_from(base_sequence),
    ) {
        (id, Ok(epoch), Ok(seq)) if id >= 0 => Some(ProducerStamp::batch(id as u64, epoch, seq)),
        (id, _, _) if id >= 0 => {
            return Err(refuse(
                errors::INVALID_RECORD,
                "bad producer epoch or sequence",
            ))
        }
        _ => None,
    };
    let mut records = Vec::with_capacity(decoded.records.len());
    for r in decoded.records {
        let mut headers = Vec::with_capacity(r.headers.len());
        for (k, v) in r.headers {
            headers.push(Header {
                key: k.to_string(),
                value: v,
            });
        }
        // Keys and values stay slices of the request's buffer: the log, the journal write and
        // every follower's fetch answer share it.
        records.push(Record {
            key: r.key,
            value: r.value,
            timestamp: r.timestamp,
            headers,
        });
    }
    Ok((Decoded { records, producer }, total))
}

fn word(b: &[u8], at: usize) -> [u8; 4] {
    [b[at], b[at + 1], b[at + 2], b[at + 3]]
}

fn long(b: &[u8], at: usize) -> [u8; 8] {
    let mut out = [0u8; 8];
    out.copy_from_slice(&b[at..at + 8]);
    out
}

/// Inflates a compressed body (`codec` names it in errors), refusing one that would grow past
/// `MAX_INFLATED` or past what the request's `budget` has left.
fn inflate(codec: &str, decoder: impl Read, budget: &mut InflateBudget) -> Result<Bytes, Refused> {
    let cap = budget.cap();
    let mut out = Vec::new();
    let mut reader = decoder.take(cap as u64 + 1);
    reader
        .read_to_end(&mut out)
        .map_err(|e| refuse(errors::CORRUPT_MESSAGE, format!("{codec}: {e}")))?;
    if out.len() > cap {
        return Err(budget.past_cap(codec));
    }
    budget.spend(out.len());
    Ok(Bytes::from(out))
}

/// Inflates a snappy body: xerial's stream format (the Java producer's) or one raw snappy block
/// (librdkafka's). Each block states its inflated length up front; it is checked against the
/// block's own size (snappy cannot inflate more than about 21-fold) and against the caps before
/// anything is allocated.
fn unsnappy(body: &[u8], budget: &mut InflateBudget) -> Result<Bytes, Refused> {
    let mut out = Vec::new();
    if !body.starts_with(&XERIAL_MAGIC) {
        snappy_block(body, &mut out, budget)?;
    } else {
        let mut rest = body
            .get(XERIAL_HEADER..)
            .ok_or_else(|| refuse(errors::CORRUPT_MESSAGE, "snappy: header cut short"))?;
        while !rest.is_empty() {
            let Some((block, after)) = rest
                .split_first_chunk::<4>()
                .and_then(|(len, after)| after.split_at_checked(u32::from_be_bytes(*len) as usize))
            else {
                return Err(refuse(errors::CORRUPT_MESSAGE, "snappy: block cut short"));
            };
            snappy_block(block, &mut out, budget)?;
            rest = after;
        }
    }
    budget.spend(out.len());
    Ok(Bytes::from(out))
}

/// Inflates one raw snappy block onto `out`, refusing it if `out` would pass the budget's cap
/// (the budget is charged for the whole body afterwards).
fn snappy_block(block: &[u8], out: &mut Vec<u8>, budget: &InflateBudget) -> Result<(), Refused> {
    let snappy_error = |e: snap::Error| refuse(errors::CORRUPT_MESSAGE, format!("snappy: {e}"));
    let len = snap::raw::decompress_len(block).map_err(snappy_error)?;
    if len > block.len().saturating_mul(SNAPPY_MAX_RATIO) {
        return Err(refuse(
            errors::CORRUPT_MESSAGE,
            format!(
                "snappy: a block of {} bytes states {len} inflated",
                block.len()
            ),
        ));
    }
    if len > budget.cap() - out.len() {
        return Err(budget.past_cap("snappy"));
    }
    let start = out.len();
    out.resize(start + len, 0);
    let written = snap::raw::Decoder::new()
        .decompress(block, &mut out[start..])
        .map_err(snappy_error)?;
    out.truncate(start + written);
    Ok(())
}

/// Walks `count` records, checking every length and the header count against the bytes left,
/// so the decoder never reserves more than the batch can hold. Returns how many headers the
/// records state, together.
fn check_records(mut b: &[u8], count: usize) -> Result<usize, Refused> {
    let bad = |why: &str| refuse(errors::CORRUPT_MESSAGE, format!("record: {why}"));
    let mut total_headers = 0;
    for _ in 0..count {
        let len = varint(&mut b).ok_or_else(|| bad("length"))?;
        let len = usize::try_from(len).map_err(|_| bad("negative length"))?;
        if len > b.len() {
            return Err(bad("length past the batch"));
        }
        let (mut r, rest) = b.split_at(len);
        b = rest;
        if r.is_empty() {
            return Err(bad("empty"));
        }
        r = &r[1..]; // attributes
        varint(&mut r).ok_or_else(|| bad("timestamp delta"))?;
        varint(&mut r).ok_or_else(|| bad("offset delta"))?;
        for what in ["key", "value"] {
            let n = varint(&mut r).ok_or_else(|| bad(what))?;
            if n >= 0 {
                let n = n as usize;
                if n > r.len() {
                    return Err(bad(what));
                }
                r = &r[n..];
            } else if n != -1 {
                return Err(bad(what));
            }
        }
        let headers = varint(&mut r).ok_or_else(|| bad("header count"))?;
        // A header takes two bytes at least (key and value lengths).
        if headers < 0 || headers as usize > r.len() / 2 {
            return Err(bad("header count does not fit the record"));
        }
        total_headers += headers as usize;
    }
    if !b.is_empty() {
        return Err(bad("bytes after the last record"));
    }
    Ok(total_headers)
}

/// A zigzag varint (up to 64 bits), advancing `b`.
fn varint(b: &mut &[u8]) -> Option<i64> {
    let mut raw: u64 = 0;
    for i in 0..10 {
        let byte = *b.get(i)?;
        raw |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            *b = &b[i + 1..];
            return Some(((raw >> 1) as i64) ^ -((raw & 1) as i64));
        }
    }
    None
}
