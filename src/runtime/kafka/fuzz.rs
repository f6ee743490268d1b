//! Fuzzing the listener's decoders with proptest: the request parser (`conn::parse`, which walks
//! every length and count before the kafka-protocol crate decodes) and the record-batch parser
//! (`batch::decode_payload`). Random bytes mostly die at the first length, so the inputs are
//! valid requests and batches of every advertised API and version, then mutated: bytes
//! overwritten, huge lengths and counts planted, cut short, grown. Batches get their CRC-32C
//! recomputed after the mutation, so the parser's later checks (record counts, varints, header
//! counts, each codec's inflation) are reached instead of the checksum refusing everything.
//!
//! The property is the listener's promise for hostile input: an answer or a refusal, never a
//! panic, and never an allocation the input does not pay for (the crate reserves a stated
//! count up front; 2^31 elements aborted the process before the walk existed, which would fail
//! this test run outright).
//!
//! Cases per property: `SEEDLOG_FUZZ_CASES` (default 512, so `cargo test` stays quick); CI runs
//! a longer pass with a larger count under a time limit.

use super::batch::decode_payload;
use super::conn;
use super::tests::{batch, encoded_batch, request, sample};
use super::versions::ADVERTISED;
use bytes::{Bytes, BytesMut};
use kafka_protocol::records::Compression;
use proptest::prelude::*;

fn cases() -> u32 {
    std::env::var("SEEDLOG_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(512)
}

/// One change to an input.
#[derive(Clone, Debug)]
enum Mutation {
    /// Overwrite the byte at this position (modulo the length).
    Set(usize, u8),
    /// Plant a 32-bit big-endian value here: lengths and counts are i32 (or i16 inside it).
    Plant(usize, u32),
    /// Cut the input to this length (modulo the length).
    Cut(usize),
    /// Append these bytes.
    Grow(Vec<u8>),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let huge = prop_oneof![
        Just(u32::MAX),
        Just(0x7fff_ffff),
        Just(0x8000_0000),
        Just(0xffff),
        any::<u32>()
    ];
    prop_oneof![
        4 => (any::<usize>(), any::<u8>()).prop_map(|(at, b)| Mutation::Set(at, b)),
        3 => (any::<usize>(), huge).prop_map(|(at, v)| Mutation::Plant(at, v)),
        1 => any::<usize>().prop_map(Mutation::Cut),
        1 => proptest::collection::vec(any::<u8>(), 1..16).prop_map(Mutation::Grow),
    ]
}

/// Applies `mutations` to `bytes` from position `from` on (the part before it is kept).
fn mutate(bytes: &[u8], from: usize, mutations: &[Mutation]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    for m in mutations {
        let span = out.len().saturating_sub(from).max(1);
        match m {
            Mutation::Set(at, b) => {
                if let Some(x) = out.get_mut(from + at % span) {
                    *x = *b;
                }
            }
            Mutation::Plant(at, v) => {
                let at = from + at % span;
                for (i, b) in v.to_be_bytes().into_iter().enumerate() {
                    if let Some(x) = out.get_mut(at + i) {
                        *x = b;
                    }
                }
            }
            Mutation::Cut(at) => out.truncate(from + at % span),
            Mutation::Grow(more) => out.extend_from_slice(more),
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    /// Arbitrary bytes after a served API's key and version.
    #[test]
    fn arbitrary_requests_never_panic(
        which in 0usize..ADVERTISED.len(),
        version in 0i16..17,
        body in proptest::collection::vec(any::<u8>(), 4..200),
    ) {
        let (key, _, _) = ADVERTISED[which];
        let mut frame = BytesMut::new();
        frame.extend_from_slice(&(key as i16).to_be_bytes());
        frame.extend_from_slice(&version.to_be_bytes());
        frame.extend_from_slice(&body);
        let _ = conn::parse(frame.freeze());
    }

    /// A valid request of every advertised API and version, mutated after its API key and
    /// version (the frame's size prefix is the connection's, checked before parsing).
    #[test]
    fn mutated_requests_never_panic(
        which in 0usize..ADVERTISED.len(),
        pick in any::<u16>(),
        mutations in proptest::collection::vec(mutation(), 1..6),
    ) {
        let (key, lo, hi) = ADVERTISED[which];
        let version = lo + (pick % (hi - lo + 1) as u16) as i16;
        let framed = request(key, version, 7, &sample(key, version));
        let frame = mutate(&framed[4..], 4, &mutations);
        // The connection refuses frames under 8 bytes before parsing.
        if frame.len() >= 8 {
            let _ = conn::parse(Bytes::from(frame));
        }
    }

    /// A valid batch (plain or compressed with any of Kafka's codecs, snappy both framed and
    /// raw; several records),
    /// mutated after its CRC field, the CRC then made right again: refused with a Kafka error
    /// or decoded, never a panic.
    #[test]
    fn mutated_batches_never_panic(
        encoding in 0u8..6,
        records in 1usize..6,
        mutations in proptest::collection::vec(mutation(), 1..6),
        fix_crc in any::<bool>(),
    ) {
        let values: Vec<String> = (0..records).map(|i| format!("value-{i}")).collect();
        let values: Vec<&str> = values.iter().map(String::as_str).collect();
        let valid = encoded_batch(&values, encoding);
        let mut bytes = mutate(&valid, 21, &mutations);
        if fix_crc && bytes.len() >= 21 {
            let crc = crc32c::crc32c(&bytes[21..]);
            bytes[17..21].copy_from_slice(&crc.to_be_bytes());
        }
        let _ = decode_payload(&Bytes::from(bytes));
    }
}

/// The mutations reach past the checksum: a batch whose record count is planted huge and CRC
/// fixed is refused by the count check, not the CRC (else the fuzzing above tests nothing but
/// the checksum).
#[test]
fn a_fixed_crc_gets_a_mutated_batch_past_the_checksum() {
    let valid = batch(&["a", "b"], Compression::None);
    // The record count is the last field of the 61-byte batch header.
    let mut bytes = mutate(&valid, 0, &[Mutation::Plant(57, 0x7fff_ffff)]);
    let crc = crc32c::crc32c(&bytes[21..]);
    bytes[17..21].copy_from_slice(&crc.to_be_bytes());
    let refused = decode_payload(&Bytes::from(bytes)).expect_err("refused");
    assert!(!refused.why.contains("CRC"), "{}", refused.why);
}
