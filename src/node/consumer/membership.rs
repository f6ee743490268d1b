//! Group membership: coordinator discovery, join, sync, heartbeats, leave, and what each refusal
//! means for the member.

use super::{leader, refusal, Consumer, GroupCall, InFlight};
use crate::node::{Bug, ClientEvent, Context, Situation, Stage, Timer};
use crate::protocol::{ErrorCode, GroupAnswer, GroupMessage, GroupRequest, Message};

impl Consumer {
    pub(super) fn group_request(&mut self, cx: &mut Context, kind: GroupCall) {
        let to = match (&kind, self.coordinator) {
            (GroupCall::Find, _) | (_, None) => {
                match self.bootstrap.current(&self.config.bootstrap) {
                    Some(b) => b,
                    None => return,
                }
            }
            (_, Some(c)) => c,
        };
        let member = self.member.clone();
        let generation = self.generation.unwrap_or(0);
        let request = match &kind {
            GroupCall::Find => GroupRequest::FindCoordinator,
            GroupCall::Join => GroupRequest::Join {
                member,
                topics: vec![self.config.topic.clone()],
                assign: self.assign_by(),
                require_known_member_id: self.config.require_known_member_id,
            },
            GroupCall::Sync => GroupRequest::Sync {
                member: member.unwrap_or_default(),
                generation,
                assignments: match (&self.leading, &self.metadata) {
                    (Some(join), Some(md)) => leader::assignments(join, md),
                    _ => Vec::new(),
                },
            },
            GroupCall::Commit { tp, offset } => GroupRequest::Commit {
                member: member.unwrap_or_default(),
                generation,
                tp: tp.clone(),
                offset: *offset,
                metadata: String::new(),
            },
            GroupCall::FetchOffset { tp } => GroupRequest::FetchOffset { tp: tp.clone() },
            GroupCall::Leave => GroupRequest::Leave {
                member: member.unwrap_or_default(),
            },
        };
        let correlation = self.next_correlation();
        let msg = GroupMessage {
            group: self.config.group.clone(),
            correlation,
            request,
        };
        cx.send(to, Message::Group(msg));
        cx.set_timer(Timer::ClientRequestTimeout, self.config.request_timeout_ms);
        self.in_flight = Some(InFlight::Group {
            correlation,
            kind,
            to,
        });
    }

    pub(super) fn find_coordinator(&mut self, cx: &mut Context) {
        self.group_request(cx, GroupCall::Find);
    }

    pub(super) fn join(&mut self, cx: &mut Context) {
        self.group_request(cx, GroupCall::Join);
    }

    pub(super) fn sync(&mut self, cx: &mut Context) {
        self.group_request(cx, GroupCall::Sync);
    }

    /// The heartbeat timer: while the member has a generation it always re-arms, whatever else
    /// is going on (a member that stops heartbeating is expelled without knowing it). Heartbeats
    /// unanswered for the request timeout mean the coordinator is gone: find it again.
    pub(super) fn send_heartbeat(&mut self, cx: &mut Context) {
        let (Some(member), Some(generation)) = (self.member.clone(), self.generation) else {
            return;
        };
        if self.assignment.is_none() || self.finished {
            return;
        }
        cx.set_timer(Timer::GroupHeartbeat, self.config.heartbeat_interval_ms);
        let Some(to) = self.coordinator else {
            return;
        };
        let silent_ms =
            self.heartbeats.len() as u64 * self.config.heartbeat_interval_ms.unwrap_or(0);
        if self
            .config
            .request_timeout_ms
            .is_some_and(|t| !self.heartbeats.is_empty() && silent_ms >= t)
        {
            self.heartbeats.clear();
            self.coordinator = None;
            return;
        }
        let correlation = self.next_correlation();
        let msg = GroupMessage {
            group: self.config.group.clone(),
            correlation,
            request: GroupRequest::Heartbeat { member, generation },
        };
        cx.send(to, Message::Group(msg));
        self.heartbeats.insert(correlation);
    }

    pub(super) fn on_group_response(
        &mut self,
        cx: &mut Context,
        kind: GroupCall,
        result: Result<GroupAnswer, ErrorCode>,
    ) {
        let group = self.config.group.clone();
        match (kind, result) {
            (GroupCall::Find, Ok(GroupAnswer::Coordinator(c))) => self.coordinator = Some(c),
            (GroupCall::Find, _) => {
                self.bootstrap.advance(&self.config.bootstrap);
                self.retry_later(cx, false);
            }
            (
                GroupCall::Join,
                Ok(GroupAnswer::Joined {
                    member,
                    generation,
                    leader,
                }),
            ) => {
                self.leading = leader.filter(|l| l.leader == member);
                self.member = Some(member);
                self.generation = Some(generation);
                self.assignment = None;
            }
            // An id to join with: the next step joins again, as this member.
            (GroupCall::Join, Ok(GroupAnswer::MemberIdRequired { member })) => {
                self.member = Some(member);
            }
            (
                GroupCall::Sync,
                Ok(GroupAnswer::Assignment {
                    generation,
                    partitions,
                    data,
                }),
            ) if Some(generation) == self.generation => {
                let partitions = if self.config.leader_assigns {
                    leader::share(&data)
                } else {
                    partitions
                };
                self.leading = None;
                cx.observe(ClientEvent::Assigned {
                    group,
                    member: self.member.clone().unwrap_or_default(),
                    generation,
                    partitions: partitions.clone(),
                });
                self.assignment = Some(partitions);
                self.cursor = 0;
                cx.set_timer(Timer::GroupHeartbeat, self.config.heartbeat_interval_ms);
            }
            (GroupCall::Commit { tp, offset }, Ok(GroupAnswer::Committed)) => {
                cx.observe(ClientEvent::Commit {
                    stage: Stage::Ok,
                    group,
                    tp: tp.clone(),
                    offset,
                });
                self.committed.insert(tp.clone(), offset);
                if self.positions.get(&tp) == Some(&offset) {
                    self.dirty.remove(&tp);
                }
                self.after_commit(cx, &tp);
            }
            (GroupCall::Commit { tp, offset }, Err(e)) => {
                let stage = refusal(e);
                if matches!(stage, Stage::Info(_)) {
                    self.commit_uncertain(cx, &tp);
                }
                cx.observe(ClientEvent::Commit {
                    stage,
                    group,
                    tp,
                    offset,
                });
                self.on_group_error(cx, e);
            }
            (GroupCall::FetchOffset { tp }, Ok(GroupAnswer::Offset { offset, .. })) => {
                cx.observe(ClientEvent::FetchCommitted {
                    stage: Stage::Ok,
                    group,
                    tp: tp.clone(),
                    offset,
                });
                self.resume_at(cx, &tp, offset);
            }
            (GroupCall::FetchOffset { tp }, Err(e)) => {
                cx.observe(ClientEvent::FetchCommitted {
                    stage: Stage::Fail(e.to_string()),
                    group,
                    tp,
                    offset: None,
                });
                self.on_group_error(cx, e);
            }
            (GroupCall::Leave, _) => self.finish(cx),
            (_, Err(e)) => self.on_group_error(cx, e),
            // An answer of the wrong shape (a sync for another generation): start over.
            (_, Ok(_)) => self.rejoin(cx),
        }
    }

    /// What a refusal means for the member.
    pub(super) fn on_group_error(&mut self, cx: &mut Context, e: ErrorCode) {
        match e {
            ErrorCode::UnknownMemberId => {
                self.member = None;
                self.rejoin(cx);
            }
            ErrorCode::IllegalGeneration | ErrorCode::RebalanceInProgress => self.rejoin(cx),
            ErrorCode::NotCoordinator | ErrorCode::CoordinatorNotAvailable => {
                self.coordinator = None;
                self.retry_later(cx, false);
            }
            _ => self.retry_later(cx, false),
        }
    }

    /// Leaves the current generation: what is in hand or being fetched is dropped (not
    /// committed, so another member will process it) and every position is fetched again after
    /// the next sync.
    pub(super) fn rejoin(&mut self, cx: &mut Context) {
        // A fetch in flight belongs to the old generation: its records must not be processed
        // (and committed) in the new one. Found by the simulator as an offset-regression. So do
        // a fetch of the committed offset and a seek to the end: their answers must not set a
        // position of the new one (found by the checker's `poll-without-resume`: a committed
        // offset fetched before a rebalance was the new generation's start, unfetched).
        let stale = match &self.in_flight {
            Some(InFlight::Fetch { .. }) => true,
            Some(InFlight::Group {
                kind: GroupCall::FetchOffset { .. },
                ..
            }) => true,
            Some(InFlight::ListOffsets { .. }) => {
                let drop = !self.config.bugs.has(Bug::KeepStaleListOffsets);
                if drop {
                    cx.reached(Situation::SeekToEndDropped);
                }
                drop
            }
            _ => false,
        };
        if stale {
            self.in_flight = None;
            cx.cancel_timer(Timer::ClientRequestTimeout);
        }
        self.generation = None;
        self.assignment = None;
        self.leading = None;
        self.positions.clear();
        self.to_end.clear();
        self.to_time.clear();
        self.committed.clear();
        self.dirty.clear();
        // A late commit of the old generation is refused as stale: nothing to repair.
        self.uncertain.clear();
        self.recommit.clear();
        self.in_hand = None;
        if self.processing {
            self.processing = false;
            cx.cancel_timer(Timer::Process);
        }
        cx.cancel_timer(Timer::GroupHeartbeat);
        self.heartbeats.clear();
    }

    pub(super) fn leave(&mut self, cx: &mut Context) {
        if self.member.is_some() && self.coordinator.is_some() {
            self.group_request(cx, GroupCall::Leave);
        } else {
            self.finish(cx);
        }
    }

    fn finish(&mut self, cx: &mut Context) {
        self.finished = true;
        cx.cancel_timer(Timer::GroupHeartbeat);
        cx.cancel_timer(Timer::ClientBackoff);
    }
}
