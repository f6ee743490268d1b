//! The broker's side of consumer groups: it runs a group coordinator for every
//! `__consumer_offsets` partition it leads, routes group requests and timers to it, appends the
//! coordinator's records to the partition and tells it when the high watermark passes them.

use super::{Broker, Role};
use crate::log::Violation;
use crate::node::coordinator::{Coordinator, Pending, Settings, Write};
use crate::node::{Bug, Context, DiskOp, Situation, Timer};
use crate::protocol::{
    group_partition, ErrorCode, GroupAnswer, GroupMessage, GroupRequest, GroupResponse, Message,
    NodeId, Offset, TopicPartition, OFFSETS_TOPIC,
};

impl Broker {
    fn group_settings(&self) -> Settings {
        Settings {
            session_timeout_ms: self.config.group_session_timeout_ms,
            rebalance_timeout_ms: self.config.group_rebalance_timeout_ms,
            accept_stale_generation: self.config.bugs.has(Bug::AcceptStaleGeneration),
            sync_before_assignment: self.config.bugs.has(Bug::SyncBeforeAssignment),
            replay_keeps_highest_offset: self.config.bugs.has(Bug::ReplayKeepsHighestOffset),
            member_session_not_renewed: self.config.bugs.has(Bug::MemberSessionNotRenewed),
            offset_fetch_from_cache: self.config.bugs.has(Bug::OffsetFetchFromCache),
        }
    }

    /// Became leader of `tp`: if it is an offsets partition, rebuild its groups from the log.
    pub(super) fn start_coordinator(&mut self, cx: &mut Context, tp: &TopicPartition) {
        if tp.topic != OFFSETS_TOPIC {
            return;
        }
        let Some(r) = self.replicas.get(tp) else {
            return;
        };
        let Some(ls) = r.leader() else {
            return;
        };
        let c = Coordinator::load(ls.epoch, &r.log, &self.group_settings());
        if !c.groups().is_empty() {
            cx.reached(Situation::CoordinatorFailover);
        }
        self.coordinators.insert(tp.partition, c);
    }

    pub(super) fn stop_coordinator(&mut self, cx: &mut Context, tp: &TopicPartition) {
        if tp.topic != OFFSETS_TOPIC {
            return;
        }
        if let Some(c) = self.coordinators.remove(&tp.partition) {
            c.resign(cx);
        }
    }

    /// The high watermark of `tp` may have moved: completes the coordinator's writes below it.
    pub(super) fn coordinator_progress(
        &mut self,
        cx: &mut Context,
        tp: &TopicPartition,
        hw: Offset,
        epoch_start: Offset,
        isr_ok: bool,
    ) {
        if tp.topic != OFFSETS_TOPIC {
            return;
        }
        let Some(c) = self.coordinators.get_mut(&tp.partition) else {
            return;
        };
        if let Some(start) = c.on_high_watermark(cx, hw, epoch_start, isr_ok) {
            if self.set_log_start(cx, tp, start) {
                cx.reached(Situation::Compaction);
            }
        }
        self.maybe_compact(cx, tp, hw);
    }

    /// Starts a compaction checkpoint when the partition holds more than
    /// `offsets_compact_after` records, at least half of them superseded, and everything in it
    /// is committed (see the coordinator's module comment).
    fn maybe_compact(&mut self, cx: &mut Context, tp: &TopicPartition, hw: Offset) {
        let Some(limit) = self.config.offsets_compact_after else {
            return;
        };
        let (Some(r), Some(c)) = (
            self.replicas.get(tp),
            self.coordinators.get_mut(&tp.partition),
        ) else {
            return;
        };
        let held = r.log.log_end_offset() - r.log.log_start_offset();
        if hw != r.log.log_end_offset() || held <= limit || held < 2 * c.live_keys() {
            return;
        }
        let writes = c.checkpoint();
        self.append_group_writes(cx, tp.partition, writes);
    }

    pub(super) fn on_group(&mut self, cx: &mut Context, from: NodeId, m: GroupMessage) {
        let partition = group_partition(&m.group, self.metadata.partition_count(OFFSETS_TOPIC));
        let reply = |cx: &mut Context, result| {
            let resp = GroupResponse {
                group: m.group.clone(),
                correlation: m.correlation,
                result,
            };
            cx.send(from, Message::GroupResponse(resp));
        };
        if m.request == GroupRequest::FindCoordinator {
            let tp = TopicPartition::new(OFFSETS_TOPIC, partition);
            let result = match self.metadata.partition(&tp).and_then(|ps| ps.leader) {
                Some(leader) => Ok(GroupAnswer::Coordinator(leader)),
                None => Err(ErrorCode::CoordinatorNotAvailable),
            };
            return reply(cx, result);
        }
        let settings = self.group_settings();
        let Some(c) = self.coordinators.get_mut(&partition) else {
            return reply(cx, Err(ErrorCode::NotCoordinator));
        };
        let writes = c.handle(cx, &settings, &self.metadata, from, m);
        self.append_group_writes(cx, partition, writes);
    }

    pub(super) fn on_group_timer(&mut self, cx: &mut Context, timer: &Timer) {
        let settings = self.group_settings();
        let owner = self
            .coordinators
            .iter()
            .find(|(_, c)| c.owns_timer(timer))
            .map(|(p, _)| *p);
        let Some(partition) = owner else {
            return;
        };
        let c = self.coordinators.get_mut(&partition).expect("found above");
        let writes = c.on_timer(cx, &settings, &self.metadata, timer);
        self.append_group_writes(cx, partition, writes);
    }

    /// Appends the coordinator's records as leader of its partition; they complete when the high
    /// watermark passes them (see `coordinator_progress`).
    fn append_group_writes(&mut self, cx: &mut Context, partition: u32, writes: Vec<Write>) {
        if writes.is_empty() {
            return;
        }
        let tp = TopicPartition::new(OFFSETS_TOPIC, partition);
        let (Some(r), Some(c)) = (
            self.replicas.get_mut(&tp),
            self.coordinators.get_mut(&partition),
        ) else {
            return;
        };
        let Role::Leader(ls) = &r.role else {
            return;
        };
        // Like Kafka's coordinator (which writes with acks=all), a commit is refused up front
        // while the partition has fewer in-sync replicas than `min.insync.replicas`: it could
        // not be made as durable as promised.
        let too_few = !ls.isr_meets_min(&self.config);
        for w in writes {
            if let (
                true,
                Pending::Commit {
                    client,
                    correlation,
                    group,
                    ..
                },
            ) = (too_few, &w.then)
            {
                let resp = GroupResponse {
                    group: group.clone(),
                    correlation: *correlation,
                    result: Err(ErrorCode::CoordinatorNotAvailable),
                };
                cx.send(*client, Message::GroupResponse(resp));
                continue;
            }
            let entries = match r.log.append_as_leader(ls.epoch, &[w.record]) {
                Ok(entries) => entries,
                // The leader appends in its own epoch at its own log end: this cannot fail.
                Err(e) => {
                    let v = Violation::new("coordinator-append", e.to_string()).at(&tp);
                    return self.broken(v);
                }
            };
            let offset = entries[0].offset;
            cx.persist(DiskOp::Append {
                tp: tp.clone(),
                entries,
            });
            c.appended(offset, w.then);
        }
        self.leader_progress(cx, &tp);
    }
}
