//! The leader-epoch cache: for every leader epoch seen in this log, the offset where it starts.
//! Followers use it to find where their log diverges from the leader's (KIP-101, KIP-279), instead
//! of truncating to a possibly stale high watermark.

use super::{ensure, Checked};
use crate::protocol::{EpochEndOffset, LeaderEpoch, Offset};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct EpochStart {
    pub epoch: LeaderEpoch,
    pub start_offset: Offset,
}

/// Entries in strictly increasing epoch and non-decreasing start offset.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct EpochCache {
    entries: Vec<EpochStart>,
}

impl EpochCache {
    /// Epochs strictly increase, start offsets never decrease, and none starts past `log_end`.
    pub fn check_invariants(&self, log_end: Offset) -> Checked {
        for w in self.entries.windows(2) {
            let (a, b) = (w[0], w[1]);
            ensure(
                a.epoch < b.epoch && a.start_offset <= b.start_offset,
                "epoch-cache-ordered",
                || {
                    format!(
                        "epoch {} at {} before epoch {} at {}",
                        a.epoch, a.start_offset, b.epoch, b.start_offset
                    )
                },
            )?;
        }
        let last = self.latest();
        ensure(
            last.is_none_or(|e| e.start_offset <= log_end),
            "epoch-cache-within-log",
            || format!("epoch {last:?} starts past the log end {log_end}"),
        )
    }

    /// Lets tests build a cache no method would, to show its invariants tripping.
    #[cfg(test)]
    pub(crate) fn entries_mut_for_tests(&mut self) -> &mut Vec<EpochStart> {
        &mut self.entries
    }

    pub fn entries(&self) -> &[EpochStart] {
        &self.entries
    }

    pub fn latest(&self) -> Option<EpochStart> {
        self.entries.last().copied()
    }

    /// Records that `epoch` starts at `start_offset`. An epoch older than the latest is ignored
    /// (it can only come from a stale source); the latest epoch keeps its first start offset.
    /// Entries that start at or after `start_offset` with a smaller epoch are dropped: a newer epoch
    /// starting there supersedes them (they held no records).
    pub fn assign(&mut self, epoch: LeaderEpoch, start_offset: Offset) {
        if let Some(last) = self.latest() {
            if epoch <= last.epoch {
                return;
            }
        }
        while self
            .entries
            .last()
            .is_some_and(|e| e.start_offset > start_offset)
        {
            self.entries.pop();
        }
        self.entries.push(EpochStart {
            epoch,
            start_offset,
        });
    }

    /// After truncating the log to `end`: epochs that start at or beyond it no longer exist.
    pub fn truncate_from_end(&mut self, end: Offset) {
        while self.entries.last().is_some_and(|e| e.start_offset >= end) {
            self.entries.pop();
        }
    }

    /// After the log start moved to `start`: drop epochs wholly below it and clamp the one that
    /// spans it, so the earliest remaining epoch starts at the new log start.
    pub fn truncate_from_start(&mut self, start: Offset) {
        let spanning = self.entries.iter().rposition(|e| e.start_offset <= start);
        if let Some(i) = spanning {
            self.entries.drain(..i);
            self.entries[0].start_offset = start;
        }
    }

    /// Where `epoch` ends in this log whose end offset is `log_end`: the largest epoch <= `epoch`
    /// and the start of the first epoch after `epoch` (or `log_end`). With no epoch <= `epoch`, the
    /// answer's epoch is `None` and the end is where the first known epoch starts: nothing below it
    /// can match.
    pub fn end_offset_for(&self, epoch: LeaderEpoch, log_end: Offset) -> EpochEndOffset {
        let next = self.entries.iter().find(|e| e.epoch > epoch);
        let found = self.entries.iter().rev().find(|e| e.epoch <= epoch);
        EpochEndOffset {
            epoch: found.map(|e| e.epoch),
            end_offset: next.map_or(log_end, |e| e.start_offset.min(log_end)),
        }
    }

    /// The epoch whose range holds `offset`.
    pub fn epoch_at(&self, offset: Offset) -> Option<LeaderEpoch> {
        self.entries
            .iter()
            .rev()
            .find(|e| e.start_offset <= offset)
            .map(|e| e.epoch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(pairs: &[(LeaderEpoch, Offset)]) -> EpochCache {
        let mut c = EpochCache::default();
        for &(e, o) in pairs {
            c.assign(e, o);
        }
        c
    }

    #[test]
    fn end_offset_is_start_of_next_epoch() {
        let c = cache(&[(1, 0), (3, 5), (4, 9)]);
        let eo = |e| c.end_offset_for(e, 12);
        assert_eq!(
            eo(1),
            EpochEndOffset {
                epoch: Some(1),
                end_offset: 5
            }
        );
        // Epoch 2 never led here: the answer is the largest epoch below it and where 3 starts.
        assert_eq!(
            eo(2),
            EpochEndOffset {
                epoch: Some(1),
                end_offset: 5
            }
        );
        assert_eq!(
            eo(4),
            EpochEndOffset {
                epoch: Some(4),
                end_offset: 12
            }
        );
        assert_eq!(
            eo(7),
            EpochEndOffset {
                epoch: Some(4),
                end_offset: 12
            }
        );
        assert_eq!(
            cache(&[(3, 2)]).end_offset_for(1, 4),
            EpochEndOffset {
                epoch: None,
                end_offset: 2
            }
        );
    }

    #[test]
    fn assign_ignores_old_epochs_and_supersedes_empty_ones() {
        let mut c = cache(&[(1, 0), (2, 4)]);
        c.assign(1, 9);
        assert_eq!(
            c.latest(),
            Some(EpochStart {
                epoch: 2,
                start_offset: 4
            })
        );
        // Epoch 3 elected at offset 2 (after a truncation the cache did not see): 2's entry goes.
        c.assign(3, 2);
        assert_eq!(
            c.entries(),
            &[
                EpochStart {
                    epoch: 1,
                    start_offset: 0
                },
                EpochStart {
                    epoch: 3,
                    start_offset: 2
                }
            ]
        );
    }

    #[test]
    fn truncation_from_both_ends() {
        let mut c = cache(&[(1, 0), (2, 4), (5, 8)]);
        c.truncate_from_end(8);
        assert_eq!(c.latest().map(|e| e.epoch), Some(2));
        c.truncate_from_start(6);
        assert_eq!(
            c.entries(),
            &[EpochStart {
                epoch: 2,
                start_offset: 6
            }]
        );
        assert_eq!(c.epoch_at(7), Some(2));
        assert_eq!(c.epoch_at(5), None);
    }
}
