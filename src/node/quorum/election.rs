//! Elections: pre-vote (KIP-996), vote (KIP-595), and the moves between roles. Epochs and votes
//! are written and synced before any message that reveals them leaves (`QuorumNode::send`).

use super::{LeaderState, QuorumNode, QuorumRole};
use crate::node::{Bug, Context, Situation, Timer};
use crate::protocol::{
    BeginQuorumEpoch, Message, MetadataRecord, NodeId, QuorumEpoch, VoteRequest, VoteResponse,
};
use std::collections::{BTreeMap, BTreeSet};

impl QuorumNode {
    /// The election timer fired: no leader was heard from (or no election was won) in time.
    pub(super) fn on_election_timeout(&mut self, cx: &mut Context) {
        if self.is_leader() {
            return;
        }
        self.drop_silent_links(cx);
        self.leader_contact = false;
        if self.config.bugs.has(Bug::NoPrevote) {
            self.start_election(cx);
        } else {
            self.start_pre_vote(cx);
        }
    }

    /// The peers this voter waited on for a whole timeout (election, or fetch) without an answer
    /// — the leader it fetches from, or the voters its pre-vote or vote went to — are disconnected, as
    /// Kafka closes a connection whose request timed out. A connection that stalled while the
    /// link was cut can carry nothing for seconds after the link heals (a retransmission backoff
    /// queues everything behind the lost segment); the next request opens a fresh one.
    pub(super) fn drop_silent_links(&self, cx: &mut Context) {
        if self.config.bugs.has(Bug::KeepStalledLinks) {
            return;
        }
        let silent: Vec<NodeId> = match &self.role {
            QuorumRole::Follower { leader } => leader.iter().copied().collect(),
            QuorumRole::Prospective { granted, refused } => self
                .others()
                .into_iter()
                .filter(|v| !granted.contains(v) && !refused.contains(v))
                .collect(),
            QuorumRole::Candidate { granted } => self
                .others()
                .into_iter()
                .filter(|v| !granted.contains(v))
                .collect(),
            QuorumRole::Leader(_) => Vec::new(),
        };
        for peer in silent {
            cx.disconnect(peer);
        }
    }

    /// Asks every voter whether it would vote for us in the next epoch, changing nothing yet: a
    /// voter that cannot win (cut off, or behind) never bumps the epoch.
    fn start_pre_vote(&mut self, cx: &mut Context) {
        let mut granted = BTreeSet::new();
        granted.insert(self.config.id);
        self.role = QuorumRole::Prospective {
            granted,
            refused: BTreeSet::new(),
        };
        self.fetching = false;
        self.reset_election_timer(cx);
        if self.config.majority() == 1 {
            return self.start_election(cx);
        }
        let request = self.vote_request(self.epoch + 1);
        for v in self.others() {
            self.send(cx, v, Message::PreVote(request.clone()));
        }
    }

    /// Moves to the next epoch voting for itself (synced before the requests leave).
    fn start_election(&mut self, cx: &mut Context) {
        self.epoch += 1;
        self.voted_for = Some(self.config.id);
        self.persist_election(cx);
        let mut granted = BTreeSet::new();
        granted.insert(self.config.id);
        self.role = QuorumRole::Candidate { granted };
        self.fetching = false;
        self.reset_election_timer(cx);
        if self.config.majority() == 1 {
            return self.become_leader(cx);
        }
        let request = self.vote_request(self.epoch);
        for v in self.others() {
            self.send(cx, v, Message::Vote(request.clone()));
        }
    }

    fn vote_request(&self, epoch: QuorumEpoch) -> VoteRequest {
        VoteRequest {
            epoch,
            candidate: self.config.id,
            last_epoch: self.log.last_epoch(),
            end_offset: self.log.end_offset(),
        }
    }

    pub(super) fn others(&self) -> Vec<NodeId> {
        let me = self.config.id;
        self.config
            .voters
            .iter()
            .copied()
            .filter(|&v| v != me)
            .collect()
    }

    fn answer(&self, request_epoch: QuorumEpoch, granted: bool) -> VoteResponse {
        VoteResponse {
            request_epoch,
            epoch: self.epoch,
            leader: self.leader(),
            granted,
        }
    }

    /// Granted only to a candidate whose log is at least as up to date, for an epoch beyond ours,
    /// and only if no leader was heard from since our election timer last fired. Changes nothing.
    pub(super) fn on_pre_vote(&mut self, cx: &mut Context, from: NodeId, r: VoteRequest) {
        let granted = r.candidate == from
            && r.epoch > self.epoch
            && !self.leader_contact
            && !self.is_leader()
            && self.candidate_up_to_date(&r);
        let answer = self.answer(r.epoch, granted);
        self.send(cx, from, Message::PreVoteResponse(answer));
    }

    pub(super) fn on_pre_vote_response(&mut self, cx: &mut Context, from: NodeId, r: VoteResponse) {
        if r.epoch > self.epoch {
            return self.observe_epoch(cx, r.epoch, r.leader);
        }
        let majority = self.config.majority();
        let QuorumRole::Prospective { granted, refused } = &mut self.role else {
            return;
        };
        if r.request_epoch != self.epoch + 1 {
            return;
        }
        if r.granted {
            granted.insert(from);
        } else {
            refused.insert(from);
        }
        if granted.len() >= majority {
            self.start_election(cx);
        } else if refused.len() >= majority {
            // Cannot win: wait, following whoever leads, until the election timer fires again.
            cx.reached(Situation::PreVoteLost);
            let leader = r.leader.filter(|_| r.epoch == self.epoch);
            self.become_follower(cx, leader);
        }
    }

    /// One vote per epoch, to a candidate whose log is at least as up to date, written and synced
    /// before the answer leaves.
    pub(super) fn on_vote(&mut self, cx: &mut Context, from: NodeId, r: VoteRequest) {
        if r.candidate != from {
            return;
        }
        if r.epoch > self.epoch {
            self.observe_epoch(cx, r.epoch, None);
        }
        let log_ok =
            self.config.bugs.has(Bug::VoteWithoutLogCheck) || self.candidate_up_to_date(&r);
        let free = self.voted_for.is_none_or(|v| v == from);
        // A voter that knows the epoch's leader (or leads it) has nothing to vote for.
        let leaderless = self.leader().is_none();
        let granted = r.epoch == self.epoch && log_ok && free && leaderless;
        if granted && self.voted_for.is_none() {
            self.voted_for = Some(from);
            self.persist_election(cx);
            // A prospective voter gives up its own pre-vote round: it voted in this epoch.
            self.role = QuorumRole::Follower { leader: None };
            self.reset_election_timer(cx);
        }
        let answer = Message::VoteResponse(self.answer(r.epoch, granted));
        if self.config.bugs.has(Bug::VoteNotDurable) {
            cx.send(from, answer);
        } else {
            self.send(cx, from, answer);
        }
    }

    /// Raft's rule: the candidate's log ends in a later epoch, or in the same one and no
    /// shorter (`vote-by-log-length` ranks by length first).
    fn candidate_up_to_date(&self, r: &VoteRequest) -> bool {
        if self.config.bugs.has(Bug::VoteByLogLength) {
            return (r.end_offset, r.last_epoch) >= (self.log.end_offset(), self.log.last_epoch());
        }
        self.log.candidate_up_to_date(r.last_epoch, r.end_offset)
    }

    pub(super) fn on_vote_response(&mut self, cx: &mut Context, from: NodeId, r: VoteResponse) {
        if r.epoch > self.epoch {
            return self.observe_epoch(cx, r.epoch, r.leader);
        }
        let majority = self.config.majority();
        let QuorumRole::Candidate { granted } = &mut self.role else {
            return;
        };
        if r.request_epoch == self.epoch && r.granted {
            granted.insert(from);
            if granted.len() >= majority {
                self.become_leader(cx);
            }
        }
    }

    /// A leader announced itself: follow it (moving to its epoch if it is newer).
    pub(super) fn on_begin_epoch(&mut self, cx: &mut Context, b: BeginQuorumEpoch) {
        if b.epoch > self.epoch {
            self.observe_epoch(cx, b.epoch, Some(b.leader));
        } else if b.epoch == self.epoch && !self.is_leader() {
            self.become_follower(cx, Some(b.leader));
        }
    }

    /// Someone is in a later epoch: move to it, with no vote, following `leader` if known.
    pub(super) fn observe_epoch(
        &mut self,
        cx: &mut Context,
        epoch: QuorumEpoch,
        leader: Option<NodeId>,
    ) {
        debug_assert!(epoch > self.epoch);
        self.epoch = epoch;
        self.voted_for = None;
        self.persist_election(cx);
        self.become_follower(cx, leader);
    }

    /// Follows `leader` in the current epoch (or waits for one), fetching from it.
    pub(super) fn become_follower(&mut self, cx: &mut Context, leader: Option<NodeId>) {
        if let QuorumRole::Leader(l) = &self.role {
            for &v in l.parked.keys() {
                cx.cancel_timer(Timer::QuorumFetchWait(v));
            }
            cx.cancel_timer(Timer::QuorumCheck);
        }
        let leader = leader.filter(|&l| l != self.config.id);
        let same = matches!(self.role, QuorumRole::Follower { leader: l } if l == leader);
        self.role = QuorumRole::Follower { leader };
        if !same {
            self.fetching = false;
            self.reset_election_timer(cx);
        }
        self.send_fetch(cx);
    }

    /// Won the epoch: append a leader-change entry of our own epoch (the high watermark moves
    /// only once a majority holds it), and tell every voter.
    pub(super) fn become_leader(&mut self, cx: &mut Context) {
        let epoch_start = self.log.end_offset();
        self.role = QuorumRole::Leader(LeaderState {
            epoch_start,
            progress: BTreeMap::new(),
            high_watermark: None,
            parked: BTreeMap::new(),
            fetched: BTreeSet::new(),
        });
        self.fetching = false;
        cx.cancel_timer(Timer::QuorumElection);
        cx.cancel_timer(Timer::QuorumFetchTimeout);
        cx.set_timer(Timer::QuorumCheck, self.config.check_quorum_ms);
        let record = MetadataRecord::LeaderChange {
            leader: self.config.id,
            epoch: self.epoch,
        };
        self.append_own(cx, record);
        let begin = BeginQuorumEpoch {
            epoch: self.epoch,
            leader: self.config.id,
        };
        for v in self.others() {
            self.send(cx, v, Message::BeginQuorumEpoch(begin.clone()));
        }
    }

    /// Check-quorum: a leader that no majority fetched from within the period resigns, so that
    /// a leader cut off from the others stops answering as if it led.
    pub(super) fn on_check_quorum(&mut self, cx: &mut Context) {
        let majority = self.config.majority();
        let QuorumRole::Leader(l) = &mut self.role else {
            return;
        };
        if l.fetched.len() + 1 >= majority {
            l.fetched.clear();
            cx.set_timer(Timer::QuorumCheck, self.config.check_quorum_ms);
        } else {
            cx.reached(Situation::QuorumLeaderResigned);
            self.become_follower(cx, None);
        }
    }
}
