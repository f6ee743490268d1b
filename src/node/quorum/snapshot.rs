//! Snapshots (KIP-630): the hosting state machine hands the voter its state at a committed
//! offset, as records that rebuild it; the voter writes it and drops the entries it covers, so
//! the log stays bounded and a restart replays only what follows. A follower whose next entries
//! the leader no longer holds, or whose log parts from the leader's inside the leader's
//! snapshot, is sent the snapshot instead of entries and replaces its whole log with it.
//!
//! A snapshot only ever covers committed entries — the voter's invariant
//! `quorum-snapshot-committed` — so every voter's snapshot at one offset describes the same
//! state, and installing one never undoes anything the follower applied.

use super::QuorumNode;
use crate::node::{Bug, Context, DiskOp, Effect, Situation};
use crate::protocol::{MetadataRecord, Offset, QuorumFetchResult, QuorumSnapshot};

impl QuorumNode {
    /// Whether the hosting state machine, having just applied the entry before `applied`, owes
    /// the voter a snapshot there: every `snapshot_every` entries, at offsets that are multiples
    /// of it, past the log's start.
    pub fn snapshot_due(&self, applied: Offset) -> bool {
        self.config
            .snapshot_every
            .is_some_and(|every| every > 0 && applied.is_multiple_of(every))
            && applied > self.log.start_offset()
            && applied <= self.applied
    }

    /// The hosting state machine's state at `end_offset` (what it had applied then), as
    /// `records`: the voter writes the snapshot and drops the entries below `end_offset`.
    /// With `snapshot-past-commit` it claims the whole log instead, entries not yet committed
    /// (nor in the state) included.
    pub fn take_snapshot(
        &mut self,
        cx: &mut Context,
        end_offset: Offset,
        records: Vec<MetadataRecord>,
    ) {
        let end_offset = match self.config.bugs.has(Bug::SnapshotPastCommit) {
            true => self.log.end_offset(),
            false => end_offset,
        };
        if end_offset <= self.log.start_offset() || end_offset > self.log.end_offset() {
            return;
        }
        let Some(last) = self.log.entry(end_offset - 1) else {
            return;
        };
        let snapshot = QuorumSnapshot {
            end_offset,
            last_epoch: last.epoch,
            records,
        };
        self.log.compact(snapshot.clone());
        cx.reached(Situation::QuorumSnapshotTaken);
        cx.effects.push(Effect::Snapshot {
            snapshot: snapshot.clone(),
            installed: false,
        });
        self.persist(cx, DiskOp::QuorumSnapshot { snapshot });
    }

    /// The leader's answer to a fetch it cannot answer from its log: its snapshot, if it has
    /// one (it always has when the fetch reaches below its log start).
    pub(super) fn snapshot_answer(&self) -> Option<QuorumFetchResult> {
        self.log
            .snapshot()
            .map(|s| QuorumFetchResult::Snapshot(s.clone()))
    }

    /// A follower replaces its log with its leader's snapshot — unless it already holds (and so
    /// applied or will apply) everything the snapshot covers: then the answer is stale.
    pub(super) fn install_snapshot(&mut self, cx: &mut Context, snapshot: QuorumSnapshot) {
        if snapshot.end_offset <= self.high_watermark {
            return;
        }
        // A late answer to an older fetch: this log already holds the snapshot's last entry
        // (same offset, same epoch), so everything below it is the committed history the
        // snapshot stands for, and what follows may already count for the leader's high
        // watermark. Installing would throw that away (Raft keeps the entries after a snapshot
        // its log agrees with). Found by the simulator: seed 74170278's voter dropped an entry
        // its leader counted it for (`quorum-progress-held-by-follower`).
        let last = snapshot.end_offset.checked_sub(1);
        if last.and_then(|o| self.log.entry(o)).map(|e| e.epoch) == Some(snapshot.last_epoch) {
            return;
        }
        cx.reached(Situation::QuorumSnapshotInstalled);
        self.log.install(snapshot.clone());
        self.high_watermark = snapshot.end_offset;
        self.applied = snapshot.end_offset;
        self.cut_durable_ends(snapshot.end_offset);
        cx.effects.push(Effect::Snapshot {
            snapshot: snapshot.clone(),
            installed: true,
        });
        self.persist(cx, DiskOp::QuorumInstallSnapshot { snapshot });
    }
}
