//! The run's trace: every event a driver processes (delivery, timer, disk write, client operation,
//! injected fault) is folded into a rolling hash. Two runs of one seed must end with the same hash;
//! when they do not, the kept per-event hashes name the first event where they parted.

use std::sync::{Arc, Mutex};

/// The trace's hash of one event's bytes, chained from the previous event's: fixed and portable
/// (unlike std's per-process seeded hashers), and fed eight bytes at a time, one 64-bit word
/// each, where FNV-1a (before) multiplied once per byte.
///
/// Each word goes in by `h = (rotl(h, 23) ^ word) * K` with `K` odd: every step is a bijection of
/// `h` for a fixed word and of the word for a fixed `h`, so two byte strings of the same length
/// that differ in one word always end in different states; the length goes in last (a string
/// and the same one with zero bytes appended differ), then murmur3's finalizer spreads every bit
/// over the result. The words are those of everything written, in order, however the writes
/// split it: hashing a value as postcard produces its bytes is hashing its encoding.
#[derive(Clone, Copy, Debug)]
pub struct WordHash {
    h: u64,
    /// The bytes written since the last whole word, little-endian.
    pending: u64,
    /// How many bytes were written in all.
    len: u64,
}

const WORD_K: u64 = 0x9E37_79B9_7F4A_7C15;
const TRACE_SEED: u64 = 0xCBF2_9CE4_8422_2325;

#[inline]
fn mix(h: u64, word: u64) -> u64 {
    (h.rotate_left(23) ^ word).wrapping_mul(WORD_K)
}

impl WordHash {
    pub fn new(seed: u64) -> Self {
        WordHash {
            h: mix(TRACE_SEED, seed),
            pending: 0,
            len: 0,
        }
    }

    #[inline]
    pub fn write_u8(&mut self, byte: u8) {
        let fill = (self.len & 7) as u32;
        self.pending |= u64::from(byte) << (8 * fill);
        self.len += 1;
        if fill == 7 {
            self.h = mix(self.h, self.pending);
            self.pending = 0;
        }
    }

    #[inline]
    pub fn write(&mut self, bytes: &[u8]) {
        // Short writes (postcard's varints, short names) byte by byte: no loop set-up.
        if bytes.len() < 8 {
            for &b in bytes {
                self.write_u8(b);
            }
            return;
        }
        let mut words = bytes.chunks_exact(8);
        let shift = 8 * (self.len & 7) as u32;
        let (mut h, mut pending) = (self.h, self.pending);
        if shift == 0 {
            for w in &mut words {
                h = mix(h, u64::from_le_bytes(w.try_into().expect("eight bytes")));
            }
        } else {
            // Each word completes the pending bytes; what it leaves over is pending next.
            for w in &mut words {
                let w = u64::from_le_bytes(w.try_into().expect("eight bytes"));
                h = mix(h, pending | (w << shift));
                pending = w >> (64 - shift);
            }
        }
        self.h = h;
        self.pending = pending;
        self.len += (bytes.len() - words.remainder().len()) as u64;
        for &b in words.remainder() {
            self.write_u8(b);
        }
    }

    pub fn finish(&self) -> u64 {
        let mut h = self.h;
        if self.len & 7 != 0 {
            h = mix(h, self.pending);
        }
        let mut x = mix(h, self.len);
        x ^= x >> 33;
        x = x.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
        x ^= x >> 33;
        x = x.wrapping_mul(0xC4CE_B9FE_1A85_EC53);
        x ^ (x >> 33)
    }
}

/// Folds a name into `h`, whose length was folded in before: one word for a name of up to eight
/// bytes (its first four and last four, overlapping, or for one to three bytes its first, middle
/// and last: every byte, for a known length), else its words.
#[inline]
fn name_words(h: u64, name: &[u8]) -> u64 {
    let n = name.len();
    let word = match n {
        0 => return h,
        1..=3 => u64::from(name[0]) << 16 | u64::from(name[n / 2]) << 8 | u64::from(name[n - 1]),
        4..=8 => {
            let first = u32::from_le_bytes(name[..4].try_into().expect("four bytes"));
            let last = u32::from_le_bytes(name[n - 4..].try_into().expect("four bytes"));
            u64::from(first) << 32 | u64::from(last)
        }
        _ => {
            let mut w = WordHash {
                h,
                pending: 0,
                len: 0,
            };
            w.write(name);
            return if n & 7 != 0 { mix(w.h, w.pending) } else { w.h };
        }
    };
    mix(h, word)
}

/// Hashes a value's postcard encoding as the serializer produces it, without writing it
/// anywhere.
struct HashFlavor(WordHash);

impl postcard::ser_flavors::Flavor for HashFlavor {
    type Output = WordHash;

    #[inline]
    fn try_push(&mut self, byte: u8) -> postcard::Result<()> {
        self.0.write_u8(byte);
        Ok(())
    }

    #[inline]
    fn try_extend(&mut self, bytes: &[u8]) -> postcard::Result<()> {
        self.0.write(bytes);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<WordHash> {
        Ok(self.0)
    }
}

/// One processed event, as kept when descriptions are asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceEvent {
    pub time_ms: u64,
    pub node: String,
    pub what: String,
}

#[derive(Debug)]
pub struct Trace {
    hash: u64,
    /// The rolling hash after each event, to find where two runs part.
    hashes: Vec<u64>,
    /// Descriptions are built only when kept (a replay with `--trace`, a determinism check).
    events: Option<Vec<TraceEvent>>,
}

pub type SharedTrace = Arc<Mutex<Trace>>;

impl Trace {
    pub fn new(keep_descriptions: bool) -> Self {
        Trace {
            hash: TRACE_SEED,
            hashes: Vec::new(),
            events: keep_descriptions.then(Vec::new),
        }
    }

    pub fn shared(keep_descriptions: bool) -> SharedTrace {
        Arc::new(Mutex::new(Self::new(keep_descriptions)))
    }

    /// Folds one event in: `kind` and `payload` feed the hash; `describe` runs only when
    /// descriptions are kept.
    pub fn record(
        &mut self,
        time_ms: u64,
        node: &str,
        kind: &str,
        payload: &[u8],
        describe: impl FnOnce() -> String,
    ) {
        let mut h = Self::head(self.hash, time_ms, node, kind);
        h.write(payload);
        self.push(h.finish(), time_ms, node, kind, describe);
    }

    /// `record` with the payload `value`'s postcard encoding (which is not built: the hash
    /// takes its bytes as they are produced). A value that does not encode counts as empty.
    pub fn record_value<T: serde::Serialize + ?Sized>(
        &mut self,
        time_ms: u64,
        node: &str,
        kind: &str,
        value: &T,
        describe: impl FnOnce() -> String,
    ) {
        let head = Self::head(self.hash, time_ms, node, kind);
        let h = postcard::serialize_with_flavor(value, HashFlavor(head)).unwrap_or(head);
        self.push(h.finish(), time_ms, node, kind, describe);
    }

    /// The event's hash so far: the previous event's, then the time, the node's and the
    /// kind's lengths in one word, then each name's bytes.
    fn head(hash: u64, time_ms: u64, node: &str, kind: &str) -> WordHash {
        let mut h = mix(mix(TRACE_SEED, hash), time_ms);
        h = mix(h, (node.len() as u64) << 32 | kind.len() as u64);
        h = name_words(h, node.as_bytes());
        h = name_words(h, kind.as_bytes());
        WordHash {
            h,
            pending: 0,
            len: 0,
        }
    }

    fn push(
        &mut self,
        h: u64,
        time_ms: u64,
        node: &str,
        kind: &str,
        describe: impl FnOnce() -> String,
    ) {
        self.hash = h;
        self.hashes.push(h);
        if let Some(events) = &mut self.events {
            let detail = describe();
            events.push(TraceEvent {
                time_ms,
                node: node.to_string(),
                what: if detail.is_empty() {
                    kind.to_string()
                } else {
                    format!("{kind} {detail}")
                },
            });
        }
    }

    pub fn hash(&self) -> u64 {
        self.hash
    }

    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    pub fn events(&self) -> Option<&[TraceEvent]> {
        self.events.as_deref()
    }

    /// Index of the first event after which the two runs' hashes differ (`None`: identical).
    pub fn first_divergence(&self, other: &Trace) -> Option<usize> {
        let common = self.hashes.len().min(other.hashes.len());
        (0..common)
            .find(|&i| self.hashes[i] != other.hashes[i])
            .or((self.hashes.len() != other.hashes.len()).then_some(common))
    }
}

/// Locks a shared trace, surviving a panic elsewhere (the trace is append-only, never torn).
pub fn with_trace<R>(trace: &SharedTrace, f: impl FnOnce(&mut Trace) -> R) -> R {
    f(&mut super::lock(trace))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_events_same_hash_and_divergence_is_located() {
        let run = |third: &[u8]| {
            let mut t = Trace::new(false);
            t.record(1, "b0", "deliver", b"x", String::new);
            t.record(2, "b1", "timer", b"y", String::new);
            t.record(3, "b0", "deliver", third, String::new);
            t
        };
        let (a, b, c) = (run(b"z"), run(b"z"), run(b"w"));
        assert_eq!(a.hash(), b.hash());
        assert_eq!(a.first_divergence(&b), None);
        assert_ne!(a.hash(), c.hash());
        assert_eq!(a.first_divergence(&c), Some(2));
    }

    #[test]
    fn a_value_hashes_as_its_encoding() {
        let value = (7u32, "seven", vec![Some(1u64), None]);
        let mut by_bytes = Trace::new(false);
        by_bytes.record(
            5,
            "b0",
            "deliver",
            &postcard::to_allocvec(&value).unwrap(),
            String::new,
        );
        let mut by_value = Trace::new(false);
        by_value.record_value(5, "b0", "deliver", &value, String::new);
        assert_eq!(by_bytes.hash(), by_value.hash());
    }

    /// Any one changed byte of a message, wherever it falls in the words, changes the event's
    /// hash, and so does one zero byte more: what lets a replay's hash tell two runs apart.
    #[test]
    fn a_changed_byte_or_length_changes_the_hash() {
        let hash = |payload: &[u8]| {
            let mut t = Trace::new(false);
            t.record(9, "b2", "persist", payload, String::new);
            t.hash()
        };
        let base: Vec<u8> = (0..37u8).collect();
        let h = hash(&base);
        let mut seen = std::collections::BTreeSet::from([h]);
        for i in 0..base.len() {
            for flip in [1u8, 0x80, 0xFF] {
                let mut changed = base.clone();
                changed[i] ^= flip;
                assert!(seen.insert(hash(&changed)), "byte {i} ^ {flip:#x}");
            }
        }
        let mut longer = base.clone();
        longer.push(0);
        assert_ne!(hash(&longer), h);
        assert_ne!(hash(&base[..36]), h);
        assert_ne!(hash(b""), hash(b"\0"));
    }

    /// The hash does not depend on how the bytes are split into writes.
    #[test]
    fn the_hash_is_of_the_concatenation() {
        let bytes: Vec<u8> = (0..53u8).map(|b| b.wrapping_mul(37)).collect();
        let mut whole = WordHash::new(1);
        whole.write(&bytes);
        for split in [1, 3, 7, 8, 9, 20] {
            for start in 0..9 {
                let mut parts = WordHash::new(1);
                parts.write(&bytes[..start]);
                for chunk in bytes[start..].chunks(split) {
                    if chunk.len() == 1 {
                        parts.write_u8(chunk[0]);
                    } else {
                        parts.write(chunk);
                    }
                }
                assert_eq!(parts.finish(), whole.finish(), "split {split} from {start}");
            }
        }
    }

    /// Events that differ only in their node or kind, whatever the names' lengths, differ.
    #[test]
    fn node_and_kind_change_the_hash() {
        let names = [
            "",
            "b",
            "b0",
            "b00",
            "c0",
            "b1",
            "b10",
            "deliver",
            "delivery",
            "persist",
            "timer",
            "a-much-longer-node-name",
            "a-much-longer-node-namf",
        ];
        let mut seen = std::collections::BTreeSet::new();
        for node in names {
            for kind in names {
                let mut t = Trace::new(false);
                t.record(3, node, kind, b"same", String::new);
                assert!(seen.insert(t.hash()), "{node:?} {kind:?}");
            }
        }
    }

    /// A record's value changed in a delivered message changes the trace's hash.
    #[test]
    fn a_changed_message_value_changes_the_hash() {
        let hash = |value: &[u8]| {
            let message = (3u32, "t", vec![(7u64, value.to_vec())]);
            let mut t = Trace::new(false);
            t.record_value(5, "b0", "deliver", &message, String::new);
            t.hash()
        };
        let value = b"a record value of some length".to_vec();
        let mut changed = value.clone();
        changed[20] = b'X';
        assert_ne!(hash(&value), hash(&changed));
    }
}
