//! What a partition's log remembers of each idempotent producer: its epoch and the metadata of its
//! last `PRODUCER_WINDOW` batches (sequence range and offsets). Built from the entries' stamps, so
//! every replica — and so every future leader — has the same state, and it is kept in a map, not
//! found by scanning the log: a produce costs the same however long the log is. Retention keeps
//! it (a retry must be recognised after its original was deleted); truncation rebuilds the
//! producers it touched from the entries that remain.
//!
//! The leader checks each stamped batch against it (`check`), as Kafka's producer state manager
//! does: an older epoch is fenced; a new epoch, or a producer the log does not know, must start
//! at sequence 0; a batch equal to one in the window is a retry, answered with the original
//! offsets; any other batch must continue the newest one's sequences exactly, else it is out of order (a gap, or a retry older than the
//! window: either way it must not be appended).

use crate::protocol::{BatchMeta, ErrorCode, Offset, ProducerSnapshot, ProducerStamp};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// How many batches per producer and partition a retry is recognised among (Kafka's 5, the most
/// requests a producer may have in flight).
pub const PRODUCER_WINDOW: usize = 5;

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ProducerState {
    pub epoch: u16,
    /// Oldest first, at most `PRODUCER_WINDOW`.
    pub batches: VecDeque<BatchMeta>,
}

/// What the leader does with a stamped batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BatchCheck {
    Append,
    /// A retry of a batch in the window: answer with its offsets, append nothing.
    Duplicate {
        first_offset: Offset,
        last_offset: Offset,
    },
    Refuse(ErrorCode),
}

/// How the leader checks sequences; the relaxed settings are bug switches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SequenceRules {
    /// How many of the newest batches a retry is looked for among (`PRODUCER_WINDOW`).
    pub window: usize,
    /// Refuse a batch that does not continue the newest one's sequences.
    pub gap_check: bool,
}

impl Default for SequenceRules {
    fn default() -> Self {
        SequenceRules {
            window: PRODUCER_WINDOW,
            gap_check: true,
        }
    }
}

impl ProducerState {
    /// Checks a batch of `count` records stamped `stamp` (its `sequence` the batch's first).
    pub fn check(
        state: Option<&ProducerState>,
        stamp: ProducerStamp,
        count: u64,
        rules: SequenceRules,
    ) -> BatchCheck {
        let first = stamp.sequence;
        let last = first + count.saturating_sub(1);
        // A producer this log knows nothing of must start at sequence 0: a later batch may be
        // one sent here while the earlier ones are still on their way to a previous leader.
        // (A producer whose state went with an unclean election's truncation is refused too,
        // and starts a new epoch, at 0.)
        let Some(state) = state else {
            return if first == 0 || !rules.gap_check {
                BatchCheck::Append
            } else {
                BatchCheck::Refuse(ErrorCode::OutOfOrderSequence)
            };
        };
        if stamp.epoch < state.epoch {
            return BatchCheck::Refuse(ErrorCode::ProducerFenced);
        }
        if stamp.epoch > state.epoch {
            return if first == 0 || !rules.gap_check {
                BatchCheck::Append
            } else {
                BatchCheck::Refuse(ErrorCode::OutOfOrderSequence)
            };
        }
        let retried = state
            .batches
            .iter()
            .rev()
            .take(rules.window)
            .find(|b| b.first_seq == first && b.last_seq == last);
        if let Some(b) = retried {
            return BatchCheck::Duplicate {
                first_offset: b.first_offset,
                last_offset: b.last_offset,
            };
        }
        let next = state.batches.back().map_or(0, |b| b.last_seq + 1);
        // A smaller window than the producer's in-flight limit forgets batches a retry may
        // still be for, and takes such a retry for a new batch (the `dedup-window-1` switch:
        // Redpanda's 2022 bug).
        let forgotten = first < next && rules.window < PRODUCER_WINDOW;
        if first == next || forgotten || !rules.gap_check {
            BatchCheck::Append
        } else {
            BatchCheck::Refuse(ErrorCode::OutOfOrderSequence)
        }
    }

    /// Takes an appended entry with `stamp` at `offset` into the state: it extends the newest
    /// batch if it continues it (same epoch and batch, next offset), else starts a new one.
    pub fn record(&mut self, stamp: ProducerStamp, offset: Offset) {
        if stamp.epoch != self.epoch {
            self.epoch = stamp.epoch;
            self.batches.clear();
        }
        if let Some(b) = self.batches.back_mut() {
            if b.first_seq == stamp.batch_first && b.last_offset + 1 == offset {
                b.last_seq = stamp.sequence;
                b.last_offset = offset;
                return;
            }
        }
        // An entry from the middle of its batch (the rest of a batch the log start or a
        // truncation cut, replayed): sequences and offsets go up together within a batch, so
        // its first offset is known even though its first entries are gone. A retry of it is
        // answered with the offsets the batch was given, not those of its surviving tail.
        let into_batch = stamp.sequence.saturating_sub(stamp.batch_first);
        self.batches.push_back(BatchMeta {
            first_seq: stamp.batch_first,
            last_seq: stamp.sequence,
            first_offset: offset.saturating_sub(into_batch),
            last_offset: offset,
        });
        while self.batches.len() > PRODUCER_WINDOW {
            self.batches.pop_front();
        }
    }

    /// This state as it stood just below `offset`, as far as the batches tell: the batches that
    /// began there, the one straddling it cut to end at `offset - 1` (sequences and offsets go
    /// up together within a batch). `None` if no batch began below `offset`: replaying the
    /// entries from `offset` on rebuilds such a producer whole.
    pub fn below(&self, producer: u64, offset: Offset) -> Option<ProducerSnapshot> {
        let batches: Vec<BatchMeta> = self
            .batches
            .iter()
            .filter(|b| b.first_offset < offset)
            .map(|b| {
                let over = (b.last_offset + 1).saturating_sub(offset);
                // Saturating: a retry appended right after its original (only under a bug
                // switch) extends one batch's offsets but not its sequences.
                BatchMeta {
                    last_seq: b.last_seq.saturating_sub(over).max(b.first_seq),
                    last_offset: b.last_offset - over,
                    ..*b
                }
            })
            .collect();
        (!batches.is_empty()).then_some(ProducerSnapshot {
            producer,
            epoch: self.epoch,
            batches,
        })
    }

    /// The state a snapshot describes.
    pub fn from_snapshot(s: &ProducerSnapshot) -> Self {
        ProducerState {
            epoch: s.epoch,
            batches: s.batches.iter().copied().collect(),
        }
    }
}
