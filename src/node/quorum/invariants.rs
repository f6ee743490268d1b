//! Cross-node checks of the quorum: what one voter's role rests on, checked against what the
//! other voters hold. `check_invariants` sees one voter; these need a harness that sees them all
//! (the simulator after every controller step, the model checker as properties). Each names a
//! Raft safety argument at the step it first breaks, instead of waiting for two leaders to
//! commit different entries:
//!
//! - a leader holds the votes of a majority in its epoch (`leader-elected-by-majority`);
//! - what a leader counts of a follower's log is held by that follower
//!   (`quorum-progress-held-by-follower`);
//! - every entry a voter takes as committed is held by a majority on synced disks
//!   (`quorum-hw-held-by-majority`).
//!
//! Each voter is judged through a predicate of the harness's (`supports_leader`, `holds`),
//! which may be lenient where it cannot see (a crashed voter, a voter past the epoch): a lenient
//! answer can hide a violation, never invent one.

use super::{QuorumLog, QuorumNode, QuorumRole};
use crate::log::{ensure, Checked};
use crate::node::QuorumImage;
use crate::protocol::{NodeId, Offset, QuorumEpoch};

impl QuorumNode {
    /// `leader-elected-by-majority`: a leader of epoch `e` holds the votes of a majority of the
    /// voters in `e`, itself included, each synced. `supports(v)` says whether voter `v` shows
    /// a vote for this leader in `e` (`supports_leader_durably` for a running voter, whose
    /// vote a power loss could still take). A vote is synced before it is answered (a
    /// candidate's own before it asks for any) and a
    /// voter's epoch never goes back, so a voter that granted the vote shows it for as long as
    /// it stays in `e`. A leader without such a majority counted a vote it was not given: a
    /// grant of an older election, one voter twice, the wrong majority.
    pub fn check_elected_by_majority(&self, supports: impl Fn(NodeId) -> bool) -> Checked {
        if !self.is_leader() {
            return Ok(());
        }
        let me = self.config.id;
        let voters: Vec<NodeId> = self
            .config
            .voters
            .iter()
            .copied()
            .filter(|&v| {
                if v == me {
                    self.own_vote_counts()
                } else {
                    supports(v)
                }
            })
            .collect();
        ensure(
            voters.len() >= self.config.majority(),
            "leader-elected-by-majority",
            || {
                format!(
                    "voter {me} leads epoch {} with the votes of only {voters:?} of {:?}",
                    self.epoch, self.config.voters
                )
            },
        )
    }

    /// Whether this voter shows a vote for `leader` in `epoch`: it voted for it there, or it
    /// has moved past `epoch` (where the vote it cast in `epoch` is no longer visible, so it is
    /// counted).
    pub fn supports_leader(&self, leader: NodeId, epoch: QuorumEpoch) -> bool {
        image_supports(self.epoch, self.voted_for, leader, epoch)
    }

    /// `supports_leader`, counting a vote in `epoch` only once it is synced: a vote that a
    /// power loss can still take may be cast again, for another candidate, in the same epoch.
    /// (Having moved past `epoch` still counts, synced or not, as in `supports_leader`.)
    pub fn supports_leader_durably(&self, leader: NodeId, epoch: QuorumEpoch) -> bool {
        self.epoch > epoch || (self.supports_leader(leader, epoch) && self.election_durable())
    }

    /// Whether the last write of this voter's epoch and vote is synced.
    pub fn election_durable(&self) -> bool {
        self.election_unsynced.is_none()
    }

    /// A leader's vote for itself counts once it is synced, like any other. Alone in its
    /// quorum it leads before its vote is synced; nothing it appends commits before that sync
    /// either, so a power loss takes the leadership and everything it did together.
    fn own_vote_counts(&self) -> bool {
        self.election_durable() || self.config.majority() == 1
    }

    /// For a leader, each follower's fetch offset it counts, with its epoch and the epoch of
    /// its own entry below that offset (if it still holds it), until one fails. A harness that
    /// sees the follower checks it with `check_progress_held`.
    pub fn each_recorded_progress(
        &self,
        mut check: impl FnMut(NodeId, QuorumEpoch, Offset, Option<QuorumEpoch>) -> Checked,
    ) -> Checked {
        let QuorumRole::Leader(l) = &self.role else {
            return Ok(());
        };
        for (&follower, &offset) in &l.progress {
            let below = offset
                .checked_sub(1)
                .and_then(|o| self.log.entry(o))
                .map(|e| e.epoch);
            check(follower, self.epoch, offset, below)?;
        }
        Ok(())
    }

    /// `quorum-progress-held-by-follower`: a leader of `epoch` counts this voter as holding its
    /// log below `offset` (the offset of the voter's last validated fetch). A follower fetches
    /// only what it has synced, in the epoch it is in, and its log matches the leader's below a
    /// fetch offset that passed the divergence check; nothing of it can be lost while it stays in
    /// that epoch. So while this voter is in `epoch`, its synced log (`durable_end`) reaches
    /// `offset`, and the entry below it is the leader's (`leader_entry_epoch`, when the leader
    /// still holds it); it is never in an earlier epoch.
    pub fn check_progress_held(
        &self,
        leader: NodeId,
        epoch: QuorumEpoch,
        offset: Offset,
        leader_entry_epoch: Option<QuorumEpoch>,
    ) -> Checked {
        if self.epoch > epoch {
            return Ok(());
        }
        // Synced, not merely written: the fetch was held until its sync completed.
        let end = self.durable_end();
        // Below the log start the entry is in the snapshot, committed: it matches.
        let entry_epoch = match offset.checked_sub(1) {
            Some(o) if o >= self.log.start_offset() => self.log.entry(o).map(|e| e.epoch),
            _ => None,
        };
        let matches = leader_entry_epoch.is_none()
            || entry_epoch.is_none_or(|e| Some(e) == leader_entry_epoch);
        ensure(
            self.epoch == epoch && end >= offset && matches,
            "quorum-progress-held-by-follower",
            || {
                format!(
                    "leader {leader} of epoch {epoch} counts voter {} as holding its log below \
                     {offset} (entry of epoch {leader_entry_epoch:?}); the voter is in epoch {} \
                     with its log synced to {end} (entry of epoch {entry_epoch:?})",
                    self.config.id, self.epoch
                )
            },
        )
    }

    /// `quorum-hw-held-by-majority`: every entry this voter takes as committed (below its high
    /// watermark) is held by a majority of the voters on synced disks, so no power loss of a
    /// minority can take it. `holds(v, offset, epoch)` says whether voter `v` holds the entry
    /// of `epoch` at `offset` durably (`holds_durably`); this voter is judged the same way.
    /// Only the entry below the watermark is asked about: a voter holding it holds every entry
    /// before it (log matching, checked by `committed-diverged` and `log-matching`). A leader
    /// that counted an entry it had only written (or a follower's fetch sent before its sync)
    /// breaks this at once, long before a power loss shows it as a lost entry.
    pub fn check_hw_held_by_majority(
        &self,
        holds: impl Fn(NodeId, Offset, QuorumEpoch) -> bool,
    ) -> Checked {
        let Some(last) = self.high_watermark.checked_sub(1) else {
            return Ok(());
        };
        let Some(entry) = self.log.entry(last) else {
            // Inside this voter's snapshot: taken only of committed entries.
            return Ok(());
        };
        let me = self.config.id;
        let holding: Vec<NodeId> = self
            .config
            .voters
            .iter()
            .copied()
            .filter(|&v| match v == me {
                true => self.holds_durably(last, entry.epoch),
                false => holds(v, last, entry.epoch),
            })
            .collect();
        ensure(
            holding.len() >= self.config.majority(),
            "quorum-hw-held-by-majority",
            || {
                format!(
                    "voter {me} (epoch {}) has its high watermark at {}, but only {holding:?} \
                     of {:?} hold the entry of epoch {} at offset {last} synced",
                    self.epoch, self.high_watermark, self.config.voters, entry.epoch
                )
            },
        )
    }

    /// Whether this voter holds the entry of `epoch` at `offset`: in its log, or below its log
    /// start (a snapshot holds only committed entries, which every later holder agrees on).
    pub fn holds(&self, offset: Offset, epoch: QuorumEpoch) -> bool {
        offset < self.log.start_offset() || self.log.entry(offset).is_some_and(|e| e.epoch == epoch)
    }

    /// `holds`, and the entry is below `durable_end`: a power loss now would leave it.
    pub fn holds_durably(&self, offset: Offset, epoch: QuorumEpoch) -> bool {
        self.holds(offset, epoch)
            && (offset < self.log.start_offset() || offset < self.durable_end())
    }

    /// How far this voter's log is durable, as far as the checks can tell: `synced_end`, or,
    /// until the sync owed for a recovered log completes, that log's end. A restarted voter
    /// counts nothing it recovered as synced (a process crash keeps the page cache), though
    /// every entry it had synced before is on its disk; the checks take the recovered log as
    /// durable for that short while, which can only be lenient.
    pub fn durable_end(&self) -> Offset {
        self.synced_end.max(self.recovered_end.unwrap_or(0))
    }

    /// `disk-matches-memory`: what this voter's disk holds, replayed (`image`), is the epoch,
    /// vote and log it runs with (`Broker::check_disk_image` for a broker; the same moments).
    /// A vote, epoch or entry held only in memory would be forgotten by a crash; a journal
    /// write the replay reads differently rebuilds another log.
    pub fn check_disk_image(&self, image: &QuorumImage) -> Checked {
        let me = self.id();
        ensure(
            (self.epoch, self.voted_for) == (image.epoch, image.voted_for),
            "disk-matches-memory",
            || {
                format!(
                    "voter {me}: epoch {} voted for {:?} in memory, epoch {} voted for {:?} on \
                     disk",
                    self.epoch, self.voted_for, image.epoch, image.voted_for
                )
            },
        )?;
        let disk = QuorumLog::with_snapshot(image.snapshot.clone(), image.log.clone());
        ensure(self.log == disk, "disk-matches-memory", || {
            format!(
                "voter {me}: logs differ: entries [{}, {}) in memory, [{}, {}) on disk",
                self.log.start_offset(),
                self.log.end_offset(),
                disk.start_offset(),
                disk.end_offset(),
            )
        })
    }
}

impl QuorumImage {
    /// `QuorumNode::supports_leader` for a voter that is down, judged by its disk.
    pub fn supports_leader(&self, leader: NodeId, epoch: QuorumEpoch) -> bool {
        image_supports(self.epoch, self.voted_for, leader, epoch)
    }

    /// `QuorumNode::holds` for a voter that is down, judged by its disk.
    pub fn holds(&self, offset: Offset, epoch: QuorumEpoch) -> bool {
        let start = self.start_offset();
        offset < start
            || self
                .log
                .get((offset - start) as usize)
                .is_some_and(|e| e.epoch == epoch)
    }
}

fn image_supports(
    own_epoch: QuorumEpoch,
    voted_for: Option<NodeId>,
    leader: NodeId,
    epoch: QuorumEpoch,
) -> bool {
    own_epoch > epoch || (own_epoch == epoch && voted_for == Some(leader))
}
