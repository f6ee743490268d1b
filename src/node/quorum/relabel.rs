//! Renaming a voter, for the model checker's symmetry reduction (`models/src/symmetry.rs`): the
//! same voter with every voter id it holds mapped through a permutation, under the configuration
//! of the id it now has, and its sync tokens counted from another origin. Nothing here runs in a
//! real voter.

use super::{QuorumConfig, QuorumNode, QuorumRole};
use crate::node::SyncToken;
use crate::protocol::{Message, NodeId, QuorumEntry, QuorumSnapshot};
use std::sync::Arc;

impl QuorumNode {
    /// This voter as it would be had the voters been numbered by `id`: `config` is the
    /// configuration of its new id, `entry` and `message` rename the ids inside log entries and
    /// held messages. Sync tokens are only ever compared with one another, so every token the
    /// voter holds is moved down by `token_shift` (at most the last completed one).
    ///
    /// Only meaningful without election jitter: the generator's state is that of a voter whose
    /// generator never moved (it never moves with `election_jitter_ms == 0`).
    pub fn relabeled(
        &self,
        config: Arc<QuorumConfig>,
        id: impl Fn(NodeId) -> NodeId,
        entry: impl Fn(&QuorumEntry) -> QuorumEntry,
        message: impl Fn(&Message) -> Message,
        token_shift: SyncToken,
    ) -> QuorumNode {
        debug_assert!(token_shift <= self.synced);
        let ids = |set: &std::collections::BTreeSet<NodeId>| set.iter().map(|&v| id(v)).collect();
        let role = match &self.role {
            QuorumRole::Follower { leader } => QuorumRole::Follower {
                leader: leader.map(&id),
            },
            QuorumRole::Prospective { granted, refused } => QuorumRole::Prospective {
                granted: ids(granted),
                refused: ids(refused),
            },
            QuorumRole::Candidate { granted } => QuorumRole::Candidate {
                granted: ids(granted),
            },
            QuorumRole::Leader(l) => {
                let mut l = l.clone();
                l.progress = l.progress.iter().map(|(&v, &o)| (id(v), o)).collect();
                l.parked = l
                    .parked
                    .iter()
                    .map(|(&v, r)| {
                        let mut r = r.clone();
                        r.replica = id(r.replica);
                        (id(v), r)
                    })
                    .collect();
                l.fetched = ids(&l.fetched);
                QuorumRole::Leader(l)
            }
        };
        let fresh = QuorumNode::new(config.clone());
        QuorumNode {
            epoch: self.epoch,
            voted_for: self.voted_for.map(&id),
            log: super::QuorumLog::with_snapshot(
                self.log.snapshot().map(|s| QuorumSnapshot {
                    records: s
                        .records
                        .iter()
                        .map(|r| {
                            let e = QuorumEntry {
                                epoch: s.last_epoch,
                                record: r.clone(),
                            };
                            entry(&e).record
                        })
                        .collect(),
                    ..s.clone()
                }),
                self.log.entries().iter().map(&entry).collect(),
            ),
            role,
            high_watermark: self.high_watermark,
            applied: self.applied,
            leader_contact: self.leader_contact,
            fetching: self.fetching,
            requested: self.requested - token_shift,
            synced: self.synced - token_shift,
            unsynced_ends: self
                .unsynced_ends
                .iter()
                .map(|&(t, o)| (t - token_shift, o))
                .collect(),
            synced_end: self.synced_end,
            recovered_end: self.recovered_end,
            election_unsynced: self.election_unsynced.map(|t| t - token_shift),
            outbox: self
                .outbox
                .iter()
                .map(|(t, to, m)| (t - token_shift, id(*to), message(m)))
                .collect(),
            rng: fresh.rng,
            config,
        }
    }

    /// The last sync token completed: what [`QuorumNode::relabeled`] may count tokens from.
    pub fn synced_token(&self) -> SyncToken {
        self.synced
    }
}
