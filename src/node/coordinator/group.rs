//! One consumer group as its coordinator sees it: members, generation, the rebalance in progress,
//! the current assignment and the committed offsets.

use crate::protocol::{Assignor, Generation, MemberId, NodeId, Offset, TopicPartition};
use std::collections::BTreeMap;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GroupState {
    /// No members (a new group, or one rebuilt from the log after coordinator failover).
    Empty,
    /// Waiting for every known member to rejoin (or for the rebalance timeout).
    PreparingRebalance,
    /// The new generation is being written to `__consumer_offsets`; syncs wait for it.
    CompletingRebalance,
    Stable,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Member {
    pub client: NodeId,
    pub topics: Vec<String>,
    /// Rejoined in the rebalance in progress.
    pub rejoined: bool,
}

/// A request parked until the rebalance (joins) or the generation write (syncs) completes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Waiting {
    pub client: NodeId,
    pub correlation: u64,
    pub member: MemberId,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Group {
    pub generation: Generation,
    pub state: GroupState,
    pub assignor: Assignor,
    pub members: BTreeMap<MemberId, Member>,
    pub assignment: BTreeMap<MemberId, Vec<TopicPartition>>,
    /// Committed offsets (the next offset to read), as of the coordinator's high watermark.
    pub offsets: BTreeMap<TopicPartition, Offset>,
    pub waiting_joins: Vec<Waiting>,
    pub waiting_syncs: Vec<Waiting>,
}

impl Group {
    pub fn new() -> Self {
        Group {
            generation: 0,
            state: GroupState::Empty,
            assignor: Assignor::Range,
            members: BTreeMap::new(),
            assignment: BTreeMap::new(),
            offsets: BTreeMap::new(),
            waiting_joins: Vec::new(),
            waiting_syncs: Vec::new(),
        }
    }

    /// Every member has rejoined the rebalance in progress.
    pub fn all_rejoined(&self) -> bool {
        self.members.values().all(|m| m.rejoined)
    }

    /// Starts a rebalance: every member must rejoin, except `except` (the one whose join
    /// started it). Returns the syncs parked for the generation being abandoned: the caller
    /// answers them `RebalanceInProgress`, so those members rejoin at once instead of waiting
    /// out a timeout.
    pub fn prepare_rebalance(&mut self, except: Option<&MemberId>) -> Vec<Waiting> {
        self.state = GroupState::PreparingRebalance;
        self.assignment.clear();
        for (id, m) in &mut self.members {
            m.rejoined = Some(id) == except;
        }
        std::mem::take(&mut self.waiting_syncs)
    }
}

impl Default for Group {
    fn default() -> Self {
        Self::new()
    }
}
