//! One consumer group as its coordinator sees it: members, generation, the rebalance in progress,
//! the current assignment and the committed offsets.

use crate::protocol::{
    AssignBy, Assignor, ErrorCode, Generation, MemberId, NodeId, Offset, ProtocolOffer,
    TopicPartition,
};
use std::collections::{BTreeMap, BTreeSet};

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
    /// The protocols it offers, in its order of preference (empty when the coordinator assigns).
    pub protocols: Vec<ProtocolOffer>,
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

/// Who assigns, fixed by the first member to join an empty group.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    Coordinator(Assignor),
    Leader(Classic),
}

/// Kafka's classic protocol, where a leader member assigns.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct Classic {
    pub protocol_type: String,
    /// Chosen when a generation completes.
    pub protocol: Option<String>,
    pub leader: Option<MemberId>,
    /// The leader's assignment for the current generation, once its Sync brought it.
    pub assignment: Option<BTreeMap<MemberId, Vec<u8>>>,
}

impl Classic {
    /// The protocols every member offers, in `first`'s order of preference.
    pub fn candidates<'a>(members: impl Iterator<Item = &'a Member> + Clone) -> Vec<String> {
        let Some(first) = members.clone().next() else {
            return Vec::new();
        };
        first
            .protocols
            .iter()
            .map(|p| p.name.clone())
            .filter(|name| {
                members
                    .clone()
                    .all(|m| m.protocols.iter().any(|p| &p.name == name))
            })
            .collect()
    }

    /// Kafka's vote: among the candidates, the one most members prefer most (each votes for its
    /// first-preferred candidate); ties go to the earliest candidate.
    pub fn choose<'a>(members: impl Iterator<Item = &'a Member> + Clone) -> Option<String> {
        let candidates = Self::candidates(members.clone());
        let mut votes = vec![0usize; candidates.len()];
        for m in members {
            let pick = m
                .protocols
                .iter()
                .find_map(|p| candidates.iter().position(|c| c == &p.name));
            if let Some(i) = pick {
                votes[i] += 1;
            }
        }
        let best = votes.iter().copied().max()?;
        let i = votes.iter().position(|&v| v == best)?;
        candidates.get(i).cloned()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Group {
    pub generation: Generation,
    pub state: GroupState,
    pub mode: Mode,
    pub members: BTreeMap<MemberId, Member>,
    /// Ids given to first joins (`GroupAnswer::MemberIdRequired`) and not yet joined with: not
    /// members, so a rebalance neither waits for them nor assigns them anything. Memory only (a
    /// new coordinator refuses such an id as unknown, and its client joins afresh).
    pub pending: BTreeSet<MemberId>,
    /// The coordinator's assignment (when it assigns) of the current generation.
    pub assignment: BTreeMap<MemberId, Vec<TopicPartition>>,
    /// The current generation's record is committed in `__consumer_offsets`.
    pub generation_stored: bool,
    /// Committed offsets (the next offset to read), as of the coordinator's high watermark.
    pub offsets: BTreeMap<TopicPartition, Offset>,
    /// The metadata committed with each offset, where not empty (kept apart from `offsets`,
    /// which the checks read, and empty in every model).
    pub offset_metadata: BTreeMap<TopicPartition, String>,
    pub waiting_joins: Vec<Waiting>,
    pub waiting_syncs: Vec<Waiting>,
}

impl Group {
    pub fn new() -> Self {
        Group {
            generation: 0,
            state: GroupState::Empty,
            mode: Mode::Coordinator(Assignor::Range),
            members: BTreeMap::new(),
            pending: BTreeSet::new(),
            assignment: BTreeMap::new(),
            generation_stored: false,
            offsets: BTreeMap::new(),
            offset_metadata: BTreeMap::new(),
            waiting_joins: Vec::new(),
            waiting_syncs: Vec::new(),
        }
    }

    /// `id` is a member, or an id given to a first join and not yet joined with (`pending`).
    pub fn knows(&self, id: &MemberId) -> bool {
        self.members.contains_key(id) || self.pending.contains(id)
    }

    /// Records `offset` and its `metadata` as committed for `tp`.
    pub fn set_committed(&mut self, tp: TopicPartition, offset: Offset, metadata: String) {
        if metadata.is_empty() {
            self.offset_metadata.remove(&tp);
        } else {
            self.offset_metadata.insert(tp.clone(), metadata);
        }
        self.offsets.insert(tp, offset);
    }

    /// The metadata committed with `tp`'s offset (empty if none).
    pub fn metadata_of(&self, tp: &TopicPartition) -> String {
        self.offset_metadata.get(tp).cloned().unwrap_or_default()
    }

    /// The current generation's assignment is known to the coordinator (it computed it, or the
    /// leader's Sync brought it) and its record is committed: syncs can be answered.
    pub fn ready(&self) -> bool {
        self.generation_stored
            && match &self.mode {
                Mode::Coordinator(_) => true,
                Mode::Leader(c) => c.assignment.is_some(),
            }
    }

    /// `member`'s share of the current generation, as answered to its Sync.
    pub fn share_of(&self, member: &MemberId) -> (Vec<TopicPartition>, Vec<u8>) {
        match &self.mode {
            Mode::Coordinator(_) => (
                self.assignment.get(member).cloned().unwrap_or_default(),
                Vec::new(),
            ),
            Mode::Leader(c) => (
                Vec::new(),
                c.assignment
                    .as_ref()
                    .and_then(|a| a.get(member).cloned())
                    .unwrap_or_default(),
            ),
        }
    }

    /// Whether `id` may join with `assign`: the first member of an empty group (or its only
    /// member, rejoining) decides who assigns; any other must agree, and in a group whose
    /// leader assigns must name the same protocol type and offer a protocol every current
    /// member offers (Kafka's rule, which keeps a common protocol for the next generation).
    pub fn admit(&mut self, id: &MemberId, assign: &AssignBy) -> Result<(), ErrorCode> {
        let others = self
            .members
            .iter()
            .filter(|(m, _)| *m != id)
            .map(|(_, m)| m);
        let alone = others.clone().next().is_none();
        match (&self.mode, assign) {
            (
                _,
                AssignBy::Leader {
                    protocol_type,
                    protocols,
                },
            ) if protocol_type.is_empty() || protocols.is_empty() => {
                Err(ErrorCode::InconsistentGroupProtocol)
            }
            (Mode::Coordinator(_), AssignBy::Coordinator(a)) => {
                if alone {
                    self.mode = Mode::Coordinator(*a);
                }
                Ok(())
            }
            (
                Mode::Leader(c),
                AssignBy::Leader {
                    protocol_type,
                    protocols,
                },
            ) if &c.protocol_type == protocol_type && !alone => {
                let candidates = Classic::candidates(others);
                if protocols.iter().any(|p| candidates.contains(&p.name)) {
                    Ok(())
                } else {
                    Err(ErrorCode::InconsistentGroupProtocol)
                }
            }
            (_, _) if !alone => Err(ErrorCode::InconsistentGroupProtocol),
            (_, AssignBy::Coordinator(a)) => {
                self.mode = Mode::Coordinator(*a);
                Ok(())
            }
            (_, AssignBy::Leader { protocol_type, .. }) => {
                self.mode = Mode::Leader(Classic {
                    protocol_type: protocol_type.clone(),
                    ..Classic::default()
                });
                Ok(())
            }
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
        self.generation_stored = false;
        if let Mode::Leader(c) = &mut self.mode {
            c.assignment = None;
        }
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
