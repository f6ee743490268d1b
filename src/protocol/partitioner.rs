//! The partitioners a client uses to pick the partition of a record, matching Apache Kafka's
//! default producer behaviour so that a Kafka client and seedlog agree on where every record goes.
//!
//! Everything here is pure: no I/O, no clock, no randomness of its own. Where Kafka would draw a
//! random number the caller passes one in, so the simulator and the model checker can replay a run.

/// Kafka's murmur2 seed (`0x9747b28c`).
const SEED: u32 = 0x9747_b28c;
/// Murmur2 multiplication constant.
const M: u32 = 0x5bd1_e995;
/// Murmur2 mixing shift.
const R: u32 = 24;

/// Murmur2 hash, bit-compatible with `org.apache.kafka.common.utils.Utils.murmur2`.
///
/// Bit-compatibility is the point: Kafka's default partitioner places a keyed record by this
/// hash, so a Kafka client and seedlog must compute exactly the same value for the same key bytes
/// to put that key in the same partition (and so keep per-key ordering across both clients).
/// Java's `int` arithmetic wraps and `>>>` is an unsigned shift, hence wrapping `u32` arithmetic.
pub fn murmur2(data: &[u8]) -> i32 {
    // Java truncates the length to an `int`; so do we, to stay bit-compatible.
    let mut h = SEED ^ (data.len() as u32);

    let mut blocks = data.chunks_exact(4);
    for block in &mut blocks {
        let mut k = u32::from_le_bytes([block[0], block[1], block[2], block[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }

    // Fold the last `len % 4` bytes in, highest first, as Kafka's fall-through `switch` does.
    let tail = blocks.remainder();
    if !tail.is_empty() {
        for (i, &byte) in tail.iter().enumerate().rev() {
            h ^= u32::from(byte) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }

    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// Kafka's `Utils.toPositive`: clears the sign bit. Not `abs`, which would differ from Kafka for
/// negative hashes (and overflow on `i32::MIN`).
pub fn to_positive(h: i32) -> u32 {
    (h & 0x7fff_ffff) as u32
}

/// Partition of a keyed record under Kafka's default partitioner:
/// `toPositive(murmur2(key)) % partitions`.
///
/// `partitions` must be greater than zero. Zero is a caller bug (asserted in debug builds), but
/// this returns 0 rather than dividing by zero, because protocol code must never panic.
pub fn default_partition(key: &[u8], partitions: u32) -> u32 {
    debug_assert!(
        partitions > 0,
        "default_partition needs at least one partition"
    );
    to_positive(murmur2(key))
        .checked_rem(partitions)
        .unwrap_or(0)
}

/// Sticky partitioner for records without a key (Kafka's behaviour since KIP-480).
///
/// Spraying keyless records round-robin makes many small batches; sticking to one partition for
/// a batch and then moving on gives full batches while still spreading load over time. The choice
/// of the next partition uses a random number supplied by the caller (sans-IO, deterministic).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StickyPartitioner {
    /// Records per batch (at least 1).
    batch_records: u32,
    /// Partition of the current batch; `None` before the first record.
    current: Option<u32>,
    /// Records still to go to `current` before a new batch starts.
    left_in_batch: u32,
}

impl StickyPartitioner {
    /// A partitioner that sends `batch_records` consecutive keyless records to one partition.
    /// `0` is treated as `1` (move on every record), since an empty batch means nothing.
    pub fn new(batch_records: u32) -> Self {
        StickyPartitioner {
            batch_records: batch_records.max(1),
            current: None,
            left_in_batch: 0,
        }
    }

    /// Partition for the next keyless record; `random` is a caller-supplied random number used
    /// only when a new batch starts. A new batch never picks the partition of the previous batch
    /// when there is more than one partition, so moving on always actually moves load.
    ///
    /// A new batch also starts early if the partition count shrank below the current partition.
    /// `partitions` must be greater than zero (asserted in debug builds); with zero this returns 0.
    pub fn next(&mut self, partitions: u32, random: u64) -> u32 {
        debug_assert!(
            partitions > 0,
            "StickyPartitioner::next needs at least one partition"
        );
        if partitions == 0 {
            return 0;
        }
        let current = match self.current {
            Some(c) if c < partitions && self.left_in_batch > 0 => c,
            previous => {
                let c = pick_other(previous, partitions, random);
                self.current = Some(c);
                self.left_in_batch = self.batch_records;
                c
            }
        };
        self.left_in_batch -= 1;
        current
    }
}

/// A partition in `0..partitions` chosen by `random`, avoiding `previous` when there is another
/// one to choose. Uniform over the allowed partitions up to the bias of `random % n`.
fn pick_other(previous: Option<u32>, partitions: u32, random: u64) -> u32 {
    match previous {
        Some(p) if p < partitions && partitions > 1 => {
            let r = (random % u64::from(partitions - 1)) as u32;
            if r >= p {
                r + 1
            } else {
                r
            }
        }
        _ => (random % u64::from(partitions)) as u32,
    }
}

/// Kafka's default partitioner: keyed records hash with murmur2 (so a key always lands in the same
/// partition, as with a Kafka client), keyless ones go through the sticky partitioner.
pub fn partition_for(
    key: Option<&[u8]>,
    partitions: u32,
    sticky: &mut StickyPartitioner,
    random: u64,
) -> u32 {
    match key {
        Some(key) => default_partition(key, partitions),
        None => sticky.next(partitions, random),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Vectors from Kafka's `UtilsTest.testMurmur2`.
    const VECTORS: [(&[u8], i32); 6] = [
        (b"21", -973_932_308),
        (b"foobar", -790_332_482),
        (b"abc", 479_470_107),
        (b"a-little-bit-long-string", -985_981_536),
        (b"a-little-bit-longer-string", -1_486_304_829),
        (
            b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
            -58_897_971,
        ),
    ];

    #[test]
    fn murmur2_matches_kafka() {
        for (key, want) in VECTORS {
            assert_eq!(murmur2(key), want, "{}", String::from_utf8_lossy(key));
        }
    }

    #[test]
    fn default_partition_with_six_partitions() {
        let got: Vec<u32> = VECTORS[..4]
            .iter()
            .map(|(key, _)| default_partition(key, 6))
            .collect();
        assert_eq!(got, [0, 0, 3, 2]);
        // Empty key: no blocks, no tail (value as pinned by other Kafka-compatible clients).
        assert_eq!(murmur2(b""), 275_646_681);
        // Pinned for the partitioning model: with 2 partitions "a" and "c" collide, "d" does not.
        let two: Vec<u32> = ["a", "c", "d"]
            .iter()
            .map(|k| default_partition(k.as_bytes(), 2))
            .collect();
        assert_eq!(two, [0, 0, 1]);
    }

    #[test]
    fn sticky_stays_for_a_batch_then_moves() {
        let mut sticky = StickyPartitioner::new(3);
        // The same random number each time: moving on must still pick another partition.
        let first: Vec<u32> = (0..3).map(|_| sticky.next(4, 7)).collect();
        assert!(first.iter().all(|&p| p == first[0] && p < 4));
        let second: Vec<u32> = (0..3).map(|_| sticky.next(4, 7)).collect();
        assert!(second.iter().all(|&p| p == second[0] && p < 4));
        assert_ne!(first[0], second[0]);
        assert_ne!(sticky.next(4, 7), second[0]);
    }

    #[test]
    fn single_partition_is_always_zero() {
        let mut sticky = StickyPartitioner::new(0);
        for random in 0..20 {
            assert_eq!(partition_for(None, 1, &mut sticky, random), 0);
            assert_eq!(partition_for(Some(b"k"), 1, &mut sticky, random), 0);
        }
    }

    #[test]
    fn shrinking_partition_count_starts_a_new_batch() {
        let mut sticky = StickyPartitioner::new(10);
        assert_eq!(sticky.next(8, 7), 7);
        assert!(sticky.next(4, 5) < 4);
    }

    proptest! {
        #[test]
        fn default_partition_in_range_and_stable(
            key in proptest::collection::vec(any::<u8>(), 0..64),
            partitions in 1u32..=64,
        ) {
            let p = default_partition(&key, partitions);
            prop_assert!(p < partitions);
            prop_assert_eq!(p, default_partition(&key, partitions));
        }

        #[test]
        fn sticky_in_range_and_moves_only_at_batch_boundaries(
            batch in 1u32..8,
            partitions in 1u32..=16,
            randoms in proptest::collection::vec(any::<u64>(), 1..100),
        ) {
            let mut sticky = StickyPartitioner::new(batch);
            let (mut previous, mut in_batch) = (None, 0);
            for random in randoms {
                let p = sticky.next(partitions, random);
                prop_assert!(p < partitions);
                let boundary = in_batch == batch;
                in_batch = if boundary { 1 } else { in_batch + 1 };
                match previous {
                    Some(prev) if boundary && partitions > 1 => prop_assert_ne!(p, prev),
                    Some(prev) if !boundary => prop_assert_eq!(p, prev),
                    _ => {}
                }
                previous = Some(p);
            }
        }
    }
}
