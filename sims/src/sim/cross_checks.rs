//! Cross-node checks: after each step of a node, what its state rests on is checked against
//! what only the whole cluster shows (the other nodes' states, the quorum's committed metadata,
//! every epoch's leader so far). A node checks only itself (`check_invariants`), and the history
//! checker sees only what clients saw; a wrong belief about another node shows here at the step
//! it is formed. A failure stops the node like a broken invariant (`node-invariant`).
//!
//! The simulation runs one task at a time, so locking another node while the stepping one is
//! locked (by its driver) cannot wait.

use super::committed::CommittedLog;
use seedlog::log::{Checked, Violation};
use seedlog::node::{AnyNode, Broker, QuorumNode};
use seedlog::protocol::{NodeId, QuorumEpoch};
use seedlog::runtime::driver::StepCheck;
use seedlog::runtime::lock;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Every node's state by id.
pub type Peers = Arc<Mutex<BTreeMap<NodeId, Arc<Mutex<AnyNode>>>>>;

/// What the checks keep over a run: the nodes, and the leader each quorum epoch has had. It
/// outlives every incarnation of every node.
#[derive(Clone, Default)]
pub struct CrossChecks {
    pub peers: Peers,
    leaders: Arc<Mutex<BTreeMap<QuorumEpoch, NodeId>>>,
}

impl CrossChecks {
    /// The check a node's driver runs after each step.
    pub fn step_check(&self, committed: &Arc<Mutex<CommittedLog>>) -> StepCheck {
        let (checks, committed) = (self.clone(), committed.clone());
        Arc::new(move |node| {
            if let Some(b) = node.as_broker() {
                return checks.broker(b, &committed);
            }
            match node.as_quorum_controller() {
                Some(c) => checks.voter(c.quorum()),
                None => Ok(()),
            }
        })
    }

    /// Node `id`'s state, unless it is `me` (locked already by its driver).
    fn peer(&self, me: NodeId, id: NodeId) -> Option<Arc<Mutex<AnyNode>>> {
        (id != me)
            .then(|| lock(&self.peers).get(&id).cloned())
            .flatten()
    }

    /// A broker against:
    /// - the metadata known committed: the leader counts every member of the ISR the controller
    ///   committed (`isr-known-to-leader`), and hands out producer ids from committed blocks
    ///   (`producer-ids-committed`);
    /// - the members of that ISR: each holds the leader's high watermark (`isr-member-holds-hw`);
    /// - its followers: each holds what the leader counts for it (`progress-held-by-follower`),
    ///   and, once at the leader's log end, the leader's producer states
    ///   (`producers-held-by-follower`).
    fn broker(&self, b: &Broker, committed: &Arc<Mutex<CommittedLog>>) -> Checked {
        let committed = lock(committed);
        b.check_against_committed(committed.metadata(), Some(committed.next_producer_id()))?;
        b.each_committed_isr_member(committed.metadata(), |tp, hw, m, registered| {
            match self.peer(b.id(), m) {
                Some(state) => lock(&state).as_broker().map_or(Ok(()), |member| {
                    member.check_isr_member_holds(tp, hw, registered)
                }),
                None => Ok(()),
            }
        })?;
        b.each_recorded_progress(|tp, epoch, f, p| match self.peer(b.id(), f) {
            Some(state) => lock(&state).as_broker().map_or(Ok(()), |follower| {
                follower.check_recorded_progress(b.id(), tp, epoch, p)?;
                match b.log(tp) {
                    Some(log) => follower.check_producers_held(b.id(), tp, epoch, p, log),
                    None => Ok(()),
                }
            }),
            None => Ok(()),
        })
    }

    /// A controller-quorum voter against the other voters: a leader was elected by a majority
    /// (`leader-elected-by-majority`) and is the only one its epoch has had
    /// (`single-leader-per-epoch`), what it counts of each follower is held by it
    /// (`quorum-progress-held-by-follower`), and what this voter takes as committed is held by
    /// a majority (`quorum-hw-held-by-majority`). A voter that is down is judged by the state it
    /// last ran with, which holds at least what its disk does: that can only be lenient.
    fn voter(&self, q: &QuorumNode) -> Checked {
        let me = q.id();
        let with_voter = |v: NodeId, judge: &dyn Fn(&QuorumNode) -> bool| {
            self.peer(me, v).is_none_or(|state| {
                lock(&state)
                    .as_quorum_controller()
                    .is_none_or(|c| judge(c.quorum()))
            })
        };
        if q.is_leader() {
            let epoch = q.epoch();
            let first = *lock(&self.leaders).entry(epoch).or_insert(me);
            if first != me {
                return Err(Violation::new(
                    "single-leader-per-epoch",
                    format!("voter {me} leads epoch {epoch}, which voter {first} led before"),
                ));
            }
            q.check_elected_by_majority(|v| with_voter(v, &|o| o.supports_leader(me, epoch)))?;
            q.each_recorded_progress(|f, epoch, offset, leader_entry| match self.peer(me, f) {
                Some(state) => lock(&state).as_quorum_controller().map_or(Ok(()), |c| {
                    c.quorum()
                        .check_progress_held(me, epoch, offset, leader_entry)
                }),
                None => Ok(()),
            })?;
        }
        q.check_hw_held_by_majority(|v, offset, epoch| with_voter(v, &|o| o.holds(offset, epoch)))
    }
}
