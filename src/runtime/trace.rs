//! The run's trace: every event a driver processes (delivery, timer, disk write, client operation,
//! injected fault) is folded into a rolling hash. Two runs of one seed must end with the same hash;
//! when they do not, the kept per-event hashes name the first event where they parted.

use std::sync::{Arc, Mutex};

/// FNV-1a (64-bit): fixed and portable, unlike std's per-process seeded hashers.
pub fn fnv1a(mut state: u64, bytes: &[u8]) -> u64 {
    for b in bytes {
        state ^= u64::from(*b);
        state = state.wrapping_mul(FNV_PRIME);
    }
    state
}

const FNV_OFFSET: u64 = 0xCBF2_9CE4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01B3;

/// FNV-1a over a value's postcard encoding, folded in as the serializer produces it: the same
/// hash as encoding the value and hashing the bytes, without writing them anywhere.
struct FnvFlavor(u64);

impl postcard::ser_flavors::Flavor for FnvFlavor {
    type Output = u64;

    fn try_push(&mut self, byte: u8) -> postcard::Result<()> {
        self.0 = (self.0 ^ u64::from(byte)).wrapping_mul(FNV_PRIME);
        Ok(())
    }

    fn try_extend(&mut self, bytes: &[u8]) -> postcard::Result<()> {
        self.0 = fnv1a(self.0, bytes);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<u64> {
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
            hash: FNV_OFFSET,
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
        let h = fnv1a(Self::fold_head(self.hash, time_ms, node, kind), payload);
        self.push(h, time_ms, node, kind, describe);
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
        let head = Self::fold_head(self.hash, time_ms, node, kind);
        let h = postcard::serialize_with_flavor(value, FnvFlavor(head)).unwrap_or(head);
        self.push(h, time_ms, node, kind, describe);
    }

    fn fold_head(hash: u64, time_ms: u64, node: &str, kind: &str) -> u64 {
        let h = fnv1a(hash, &time_ms.to_le_bytes());
        fnv1a(fnv1a(h, node.as_bytes()), kind.as_bytes())
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
}
