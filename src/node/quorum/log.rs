//! A quorum voter's replicated log: an optional snapshot standing in for the entries below its
//! end offset (KIP-630), then entries in offset order, each tagged with the epoch of the leader
//! that appended it. Offsets are absolute: the first entry held is at the snapshot's end (0
//! without one). The epochs never decrease along the log, so "where does epoch `e` end" (the
//! leader epoch cache of KIP-101/595) is a search over the entries rather than a separate
//! structure that could disagree with them — except inside the snapshot, which keeps only its
//! last epoch: there the answer is unknown, and the callers fall back on the snapshot.

use crate::log::{ensure, Checked};
use crate::protocol::{Offset, QuorumEntry, QuorumEpoch, QuorumSnapshot};
use std::sync::Arc;

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QuorumLog {
    /// Shared: a voter is cloned often (the model checker, every simulated step's invariant
    /// checks), its snapshot changes rarely.
    snapshot: Option<Arc<QuorumSnapshot>>,
    entries: Vec<QuorumEntry>,
}

impl QuorumLog {
    pub fn new(entries: Vec<QuorumEntry>) -> Self {
        QuorumLog {
            snapshot: None,
            entries,
        }
    }

    /// A log that starts with `snapshot` (its entries follow it).
    pub fn with_snapshot(snapshot: Option<QuorumSnapshot>, entries: Vec<QuorumEntry>) -> Self {
        QuorumLog {
            snapshot: snapshot.map(Arc::new),
            entries,
        }
    }

    /// The entries held, from `start_offset()` on.
    pub fn entries(&self) -> &[QuorumEntry] {
        &self.entries
    }

    pub fn snapshot(&self) -> Option<&QuorumSnapshot> {
        self.snapshot.as_deref()
    }

    /// The offset of the first entry held: the snapshot's end, or 0.
    pub fn start_offset(&self) -> Offset {
        self.snapshot.as_ref().map_or(0, |s| s.end_offset)
    }

    pub fn end_offset(&self) -> Offset {
        self.start_offset() + self.entries.len() as Offset
    }

    /// The epoch of the last entry (the snapshot's last epoch if it holds no entry after it); 0
    /// for an empty log (no leader leads epoch 0).
    pub fn last_epoch(&self) -> QuorumEpoch {
        match (self.entries.last(), &self.snapshot) {
            (Some(e), _) => e.epoch,
            (None, Some(s)) => s.last_epoch,
            (None, None) => 0,
        }
    }

    /// The entry at `offset`, if held (not below the start, not past the end).
    pub fn entry(&self, offset: Offset) -> Option<&QuorumEntry> {
        let index = offset.checked_sub(self.start_offset())?;
        self.entries.get(usize::try_from(index).ok()?)
    }

    /// Up to `max` entries from `from` (none if `from` is at or past the end; from the start if
    /// `from` lies below it).
    pub fn read(&self, from: Offset, max: usize) -> Vec<QuorumEntry> {
        let index = from.saturating_sub(self.start_offset()) as usize;
        let from = index.min(self.entries.len());
        let to = from.saturating_add(max).min(self.entries.len());
        self.entries[from..to].to_vec()
    }

    pub fn append(&mut self, entry: QuorumEntry) -> Offset {
        self.entries.push(entry);
        self.end_offset() - 1
    }

    /// Cuts the log to end at `offset`, never below its start: the snapshot holds only
    /// committed entries, which nothing may cut.
    pub fn truncate(&mut self, offset: Offset) {
        let keep = offset.saturating_sub(self.start_offset()) as usize;
        self.entries.truncate(keep);
    }

    /// Drops the entries below `snapshot`'s end, which must lie within the log: the voter's own
    /// snapshot of what it applied.
    pub fn compact(&mut self, snapshot: QuorumSnapshot) {
        let drop = (snapshot.end_offset.saturating_sub(self.start_offset()) as usize)
            .min(self.entries.len());
        self.entries.drain(..drop);
        self.snapshot = Some(Arc::new(snapshot));
    }

    /// Replaces the whole log with `snapshot`: a follower installing its leader's.
    pub fn install(&mut self, snapshot: QuorumSnapshot) {
        self.entries.clear();
        self.snapshot = Some(Arc::new(snapshot));
    }

    /// The largest epoch in the log not above `epoch`, and where it ends (the offset after its
    /// last entry); `(0, 0)` if the log has no such epoch. `None` when the answer lies inside
    /// the snapshot, whose epochs are not kept: `epoch` is below the snapshot's last epoch and
    /// no entry after it is of `epoch` or below. Leaders answer a diverging fetch with it, and
    /// followers truncate with it (KIP-595's OffsetForLeaderEpoch, folded into Fetch).
    pub fn end_for_epoch(&self, epoch: QuorumEpoch) -> Option<(QuorumEpoch, Offset)> {
        if let Some(i) = self.entries.iter().rposition(|e| e.epoch <= epoch) {
            return Some((self.entries[i].epoch, self.start_offset() + i as Offset + 1));
        }
        match &self.snapshot {
            None => Some((0, 0)),
            Some(s) if s.last_epoch <= epoch => Some((s.last_epoch, s.end_offset)),
            Some(_) => None,
        }
    }

    /// Raft's "at least as up to date": a later last epoch wins, then a longer log.
    pub fn candidate_up_to_date(&self, last_epoch: QuorumEpoch, end_offset: Offset) -> bool {
        (last_epoch, end_offset) >= (self.last_epoch(), self.end_offset())
    }

    /// Epochs never decrease along the log (the snapshot's last epoch first), and none is above
    /// the voter's own epoch.
    pub fn check(&self, epoch: QuorumEpoch) -> Checked {
        let bad = self
            .entries
            .windows(2)
            .position(|w| w[0].epoch > w[1].epoch);
        let after_snapshot = match (&self.snapshot, self.entries.first()) {
            (Some(s), Some(e)) => s.last_epoch <= e.epoch,
            _ => true,
        };
        ensure(
            bad.is_none() && after_snapshot,
            "quorum-log-epochs-ordered",
            || {
                format!(
                    "entries at {bad:?} go back in epoch (after the snapshot: {after_snapshot})"
                )
            },
        )?;
        ensure(self.last_epoch() <= epoch, "quorum-log-epoch-known", || {
            format!("last entry of epoch {} in epoch {epoch}", self.last_epoch())
        })
    }
}
