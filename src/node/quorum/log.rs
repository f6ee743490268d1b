//! A quorum voter's replicated log: entries in offset order, each tagged with the epoch of the
//! leader that appended it. The epochs never decrease along the log, so "where does epoch `e`
//! end" (the leader epoch cache of KIP-101/595) is a search over the entries rather than a
//! separate structure that could disagree with them.

use crate::log::{ensure, Checked};
use crate::protocol::{Offset, QuorumEntry, QuorumEpoch};

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QuorumLog {
    entries: Vec<QuorumEntry>,
}

impl QuorumLog {
    pub fn new(entries: Vec<QuorumEntry>) -> Self {
        QuorumLog { entries }
    }

    pub fn entries(&self) -> &[QuorumEntry] {
        &self.entries
    }

    pub fn end_offset(&self) -> Offset {
        self.entries.len() as Offset
    }

    /// The epoch of the last entry; 0 for an empty log (no leader leads epoch 0).
    pub fn last_epoch(&self) -> QuorumEpoch {
        self.entries.last().map_or(0, |e| e.epoch)
    }

    pub fn entry(&self, offset: Offset) -> Option<&QuorumEntry> {
        self.entries.get(usize::try_from(offset).ok()?)
    }

    /// Up to `max` entries from `from` (none if `from` is at or past the end).
    pub fn read(&self, from: Offset, max: usize) -> Vec<QuorumEntry> {
        let from = (from as usize).min(self.entries.len());
        let to = from.saturating_add(max).min(self.entries.len());
        self.entries[from..to].to_vec()
    }

    pub fn append(&mut self, entry: QuorumEntry) -> Offset {
        self.entries.push(entry);
        self.end_offset() - 1
    }

    pub fn truncate(&mut self, offset: Offset) {
        self.entries.truncate(offset as usize);
    }

    /// The largest epoch in the log not above `epoch`, and where it ends (the offset after its
    /// last entry); `(0, 0)` if the log has no such epoch. Leaders answer a diverging fetch with
    /// it, and followers truncate with it (KIP-595's OffsetForLeaderEpoch, folded into Fetch).
    pub fn end_for_epoch(&self, epoch: QuorumEpoch) -> (QuorumEpoch, Offset) {
        match self.entries.iter().rposition(|e| e.epoch <= epoch) {
            Some(i) => (self.entries[i].epoch, i as Offset + 1),
            None => (0, 0),
        }
    }

    /// Raft's "at least as up to date": a later last epoch wins, then a longer log.
    pub fn candidate_up_to_date(&self, last_epoch: QuorumEpoch, end_offset: Offset) -> bool {
        (last_epoch, end_offset) >= (self.last_epoch(), self.end_offset())
    }

    /// Epochs never decrease along the log, and none is above the voter's own epoch.
    pub fn check(&self, epoch: QuorumEpoch) -> Checked {
        let bad = self
            .entries
            .windows(2)
            .position(|w| w[0].epoch > w[1].epoch);
        ensure(bad.is_none(), "quorum-log-epochs-ordered", || {
            format!("entries at {bad:?} go back in epoch")
        })?;
        ensure(self.last_epoch() <= epoch, "quorum-log-epoch-known", || {
            format!("last entry of epoch {} in epoch {epoch}", self.last_epoch())
        })
    }
}
