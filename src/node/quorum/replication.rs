//! Replication the KRaft way: followers fetch from the leader, naming their log end and the
//! epoch of their last entry; the leader answers with entries, or with where the follower's
//! epoch ends in its own log when the two have parted, and the follower truncates there. A
//! follower's fetch is also its heartbeat. The high watermark is the offset a majority holds,
//! counted only once that includes an entry of the leader's own epoch.

use super::{QuorumNode, QuorumRole};
use crate::node::{Bug, Context, Effect, Timer};
use crate::protocol::{
    Message, NodeId, Offset, QuorumFetchRequest, QuorumFetchResponse, QuorumFetchResult,
    QuorumSubmit, QuorumSubmitResponse,
};

impl QuorumNode {
    /// A follower with a known leader and no fetch outstanding asks for what follows its log. The
    /// request waits in the outbox until the log it names is synced: the leader counts it.
    pub(super) fn send_fetch(&mut self, cx: &mut Context) {
        let QuorumRole::Follower {
            leader: Some(leader),
        } = self.role
        else {
            return;
        };
        if self.fetching {
            return;
        }
        self.fetching = true;
        let request = QuorumFetchRequest {
            epoch: self.epoch,
            replica: self.config.id,
            fetch_offset: self.log.end_offset(),
            last_fetched_epoch: self.log.last_epoch(),
            high_watermark: self.high_watermark,
        };
        self.send(cx, leader, Message::QuorumFetch(request));
        cx.set_timer(Timer::QuorumFetchTimeout, self.config.fetch_timeout_ms);
    }

    fn fetch_answer(&self, r: &QuorumFetchRequest, result: QuorumFetchResult) -> Message {
        Message::QuorumFetchResponse(QuorumFetchResponse {
            epoch: self.epoch,
            leader: self.leader(),
            fetch_offset: r.fetch_offset,
            last_fetched_epoch: r.last_fetched_epoch,
            result,
        })
    }

    pub(super) fn on_fetch(&mut self, cx: &mut Context, from: NodeId, r: QuorumFetchRequest) {
        if r.replica != from {
            return;
        }
        if r.epoch > self.epoch {
            self.observe_epoch(cx, r.epoch, None);
        }
        if r.epoch < self.epoch || !self.is_leader() {
            let answer = self.fetch_answer(&r, QuorumFetchResult::NotLeader);
            return self.send(cx, from, answer);
        }
        let epoch_end = self.log.end_for_epoch(r.last_fetched_epoch);
        let below_start = r.fetch_offset < self.log.start_offset();
        if let QuorumRole::Leader(l) = &mut self.role {
            l.fetched.insert(from);
        }
        // What the follower needs next, or where its log parts from ours, lies inside our
        // snapshot: it takes the snapshot instead.
        if below_start || epoch_end.is_none() {
            if let Some(result) = self.snapshot_answer() {
                let answer = self.fetch_answer(&r, result);
                return self.send(cx, from, answer);
            }
        }
        let (epoch, end) = epoch_end.unwrap_or((0, 0));
        let QuorumRole::Leader(l) = &mut self.role else {
            return;
        };
        if epoch != r.last_fetched_epoch || end < r.fetch_offset {
            let answer = self.fetch_answer(
                &r,
                QuorumFetchResult::Diverging {
                    epoch,
                    end_offset: end,
                },
            );
            return self.send(cx, from, answer);
        }
        l.progress.insert(from, r.fetch_offset);
        // Nothing new to send: park it (long poll) until there is, or the wait runs out.
        let nothing_new = r.fetch_offset == self.log.end_offset()
            && l.high_watermark.is_none_or(|h| h <= r.high_watermark);
        if nothing_new {
            l.parked.insert(from, r);
            cx.set_timer(Timer::QuorumFetchWait(from), self.config.fetch_max_wait_ms);
            self.advance_leader_hw(cx);
            return;
        }
        self.advance_leader_hw(cx);
        self.answer_fetch(cx, from, &r);
    }

    fn answer_fetch(&mut self, cx: &mut Context, to: NodeId, r: &QuorumFetchRequest) {
        let QuorumRole::Leader(l) = &self.role else {
            return;
        };
        let result = QuorumFetchResult::Entries {
            start: r.fetch_offset,
            entries: self.log.read(r.fetch_offset, self.config.max_fetch_entries),
            high_watermark: l.high_watermark,
        };
        let answer = self.fetch_answer(r, result);
        self.send(cx, to, answer);
    }

    /// Answers every parked fetch: the log grew, or the high watermark moved.
    pub(super) fn answer_parked(&mut self, cx: &mut Context) {
        let QuorumRole::Leader(l) = &mut self.role else {
            return;
        };
        let parked = std::mem::take(&mut l.parked);
        for (voter, r) in parked {
            cx.cancel_timer(Timer::QuorumFetchWait(voter));
            self.answer_fetch(cx, voter, &r);
        }
    }

    pub(super) fn on_fetch_wait(&mut self, cx: &mut Context, voter: NodeId) {
        let QuorumRole::Leader(l) = &mut self.role else {
            return;
        };
        if let Some(r) = l.parked.remove(&voter) {
            self.answer_fetch(cx, voter, &r);
        }
    }

    /// The leader's high watermark: the largest offset a majority holds (its own synced log end
    /// and the followers' fetch offsets), once that covers its own leader-change entry. With
    /// `commit-previous-epoch-by-count` the epoch condition is skipped (Raft's Figure 8).
    pub(super) fn advance_leader_hw(&mut self, cx: &mut Context) {
        let QuorumRole::Leader(l) = &mut self.role else {
            return;
        };
        let me = self.config.id;
        let mut ends: Vec<Offset> = self
            .config
            .voters
            .iter()
            .map(|&v| match v == me {
                true => self.synced_end,
                false => l.progress.get(&v).copied().unwrap_or(0),
            })
            .collect();
        ends.sort_unstable_by(|a, b| b.cmp(a));
        let majority_end = ends[self.config.majority() - 1];
        let in_epoch = majority_end > l.epoch_start;
        let by_count = self.config.bugs.has(Bug::CommitPreviousEpochByCount);
        if !(in_epoch || by_count) || majority_end <= self.high_watermark {
            return;
        }
        l.high_watermark = Some(majority_end);
        self.high_watermark = majority_end;
        self.apply_committed(cx);
        self.answer_parked(cx);
    }

    /// Hands every newly committed entry to the state machine, in order.
    fn apply_committed(&mut self, cx: &mut Context) {
        while self.applied < self.high_watermark {
            let Some(entry) = self.log.entry(self.applied).cloned() else {
                break;
            };
            cx.effects.push(Effect::Apply {
                offset: self.applied,
                entry,
                epoch: self.epoch,
            });
            self.applied += 1;
        }
    }

    pub(super) fn on_fetch_response(
        &mut self,
        cx: &mut Context,
        from: NodeId,
        r: QuorumFetchResponse,
    ) {
        if r.epoch > self.epoch {
            return self.observe_epoch(cx, r.epoch, r.leader);
        }
        let QuorumRole::Follower { leader } = self.role else {
            return;
        };
        if r.epoch < self.epoch || leader.is_some_and(|l| l != from) {
            return;
        }
        // An answer to a fetch that named another log end: the log has moved since (a later
        // answer, overtaking this one from a connection since replaced, appended or cut), and
        // this one no longer describes it. Cutting where it says would drop entries the leader
        // has counted; the fetch outstanding gets its own answer.
        let late = (r.fetch_offset, r.last_fetched_epoch)
            != (self.log.end_offset(), self.log.last_epoch());
        if late && !matches!(r.result, QuorumFetchResult::NotLeader) {
            return;
        }
        self.fetching = false;
        cx.cancel_timer(Timer::QuorumFetchTimeout);
        match r.result {
            QuorumFetchResult::NotLeader => {
                // Same epoch, and it does not lead: follow whom it names, if anyone.
                let named = r.leader.filter(|&l| l != from);
                if leader.is_none() || named.is_some() {
                    self.become_follower(cx, named);
                }
                return;
            }
            QuorumFetchResult::Diverging { epoch, end_offset } => {
                self.heard_from_leader(cx, from);
                // Inside our own snapshot: keep it (it holds only committed entries), cut the
                // rest.
                let mine = self
                    .log
                    .end_for_epoch(epoch)
                    .map_or(self.log.start_offset(), |(_, end)| end);
                self.truncate(cx, end_offset.min(mine));
            }
            QuorumFetchResult::Snapshot(snapshot) => {
                self.heard_from_leader(cx, from);
                self.install_snapshot(cx, snapshot);
            }
            QuorumFetchResult::Entries {
                start,
                entries,
                high_watermark,
            } => {
                self.heard_from_leader(cx, from);
                if start == self.log.end_offset() && !entries.is_empty() {
                    for e in &entries {
                        self.log.append(e.clone());
                    }
                    let op = crate::node::DiskOp::QuorumAppend { start, entries };
                    self.persist(cx, op);
                }
                if let Some(hw) = high_watermark {
                    let hw = hw.min(self.log.end_offset());
                    if hw > self.high_watermark {
                        self.high_watermark = hw;
                        self.apply_committed(cx);
                    }
                }
            }
        }
        self.send_fetch(cx);
    }

    /// A successful fetch: the leader is there, so no election for another timeout.
    fn heard_from_leader(&mut self, cx: &mut Context, leader: NodeId) {
        self.role = QuorumRole::Follower {
            leader: Some(leader),
        };
        self.leader_contact = true;
        self.reset_election_timer(cx);
    }

    /// A client's record: the leader appends it in its epoch and answers with its offset once it
    /// is synced; anyone else names the leader it knows.
    pub(super) fn on_submit(&mut self, cx: &mut Context, from: NodeId, r: QuorumSubmit) {
        let result = if self.is_leader() {
            let offset = self.append_own(cx, r.record);
            self.answer_parked(cx);
            Ok(offset)
        } else {
            Err(self.leader())
        };
        let answer = QuorumSubmitResponse { id: r.id, result };
        self.send(cx, from, Message::QuorumSubmitResponse(answer));
    }
}
