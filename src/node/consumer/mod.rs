//! The group consumer: finds its group's coordinator, joins, gets its partitions, resumes each at
//! the group's committed offset (or per `auto.offset.reset`), and then loops: fetch a batch from
//! the partition's leader, process it, commit the next offset to read, move to the next partition.
//! One request is in flight at a time (plus the heartbeat), so its history is a plain sequence of
//! operations. A rebalance (a heartbeat or commit refused as stale) drops what it has in hand and
//! starts again from the committed offsets: records may be processed twice, never skipped.
//!
//! `mod.rs` holds the state and the entry points; `membership.rs` the coordinator, join, sync,
//! heartbeat and leave; `progress.rs` positions, fetching, processing and committing.

mod leader;
mod membership;
mod progress;

use super::client::Bootstrap;
use super::{Bug, ClientEvent, ConsumerConfig, Context, Stage, Timer};
use crate::protocol::{
    BrokerId, ClusterMetadata, ErrorCode, Generation, LeaderJoin, LogEntry, MemberId, Message,
    NodeId, Offset, OffsetSpec, TopicPartition,
};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// The one request in flight.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum InFlight {
    /// Each request names the broker it went to: a timeout closes that connection.
    Metadata { to: BrokerId },
    Group {
        correlation: u64,
        kind: GroupCall,
        to: BrokerId,
    },
    Fetch {
        tp: TopicPartition,
        offset: Offset,
        leader: BrokerId,
    },
    ListOffsets {
        tp: TopicPartition,
        spec: OffsetSpec,
        leader: BrokerId,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum GroupCall {
    Find,
    Join,
    Sync,
    Commit { tp: TopicPartition, offset: Offset },
    FetchOffset { tp: TopicPartition },
    Leave,
}

/// A fetched batch not yet processed.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct InHand {
    tp: TopicPartition,
    records: Vec<LogEntry>,
    /// With the `commit-before-process` bug: its offsets are already committed.
    committed: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Consumer {
    config: Arc<ConsumerConfig>,
    metadata: Option<ClusterMetadata>,
    /// A request failed in a way newer metadata resolves.
    stale: bool,
    bootstrap: Bootstrap,
    coordinator: Option<BrokerId>,
    member: Option<MemberId>,
    /// This member leads the generation it joined (its leader computes the assignment): the
    /// members and their metadata, until its sync is answered.
    leading: Option<LeaderJoin>,
    /// Set once joined; the assignment once synced in that generation.
    generation: Option<Generation>,
    assignment: Option<Vec<TopicPartition>>,
    /// Next offset to process, per assigned partition.
    positions: BTreeMap<TopicPartition, Offset>,
    /// The group's committed offset as this member last knew it.
    committed: BTreeMap<TopicPartition, Offset>,
    /// Partitions with processed records not yet committed.
    dirty: BTreeSet<TopicPartition>,
    /// Partitions with a commit of unknown outcome in this generation: it may land late, after
    /// a newer commit, so their last acknowledged offset is re-committed now and then.
    uncertain: BTreeSet<TopicPartition>,
    /// Partitions whose re-commit is due.
    recommit: BTreeSet<TopicPartition>,
    /// Partitions to move to their latest offset once it is known (a seek to the end).
    to_end: BTreeSet<TopicPartition>,
    /// Partitions to move to an offset looked up by time (the first at or after a timestamp,
    /// or the first with the largest timestamp), once it is known, and the first offset of the
    /// batch that prompted the lookup: an answer below it is not followed (see `on_message`).
    to_time: BTreeMap<TopicPartition, (OffsetSpec, Offset)>,
    /// Partitions whose configured seek has been applied.
    sought: BTreeSet<u32>,
    /// Round-robin cursor over the assignment.
    cursor: usize,
    in_flight: Option<InFlight>,
    /// Heartbeats sent and not yet answered (any answer settles them all).
    heartbeats: BTreeSet<u64>,
    correlation: u64,
    in_hand: Option<InHand>,
    processing: bool,
    backing_off: bool,
    batches: u32,
    processed: u64,
    finished: bool,
}

impl Consumer {
    pub fn new(config: Arc<ConsumerConfig>) -> Self {
        Consumer {
            config,
            metadata: None,
            stale: false,
            bootstrap: Bootstrap::default(),
            coordinator: None,
            member: None,
            leading: None,
            generation: None,
            assignment: None,
            positions: BTreeMap::new(),
            committed: BTreeMap::new(),
            dirty: BTreeSet::new(),
            uncertain: BTreeSet::new(),
            recommit: BTreeSet::new(),
            to_end: BTreeSet::new(),
            to_time: BTreeMap::new(),
            sought: BTreeSet::new(),
            cursor: 0,
            in_flight: None,
            heartbeats: BTreeSet::new(),
            correlation: 0,
            in_hand: None,
            processing: false,
            backing_off: false,
            batches: 0,
            processed: 0,
            finished: false,
        }
    }

    pub fn config(&self) -> &ConsumerConfig {
        &self.config
    }

    /// Left the group after `max_records`, or stopped on an error.
    pub fn finished(&self) -> bool {
        self.finished
    }

    /// Records processed so far (counting re-processing).
    pub fn processed(&self) -> u64 {
        self.processed
    }

    /// The partitions assigned in the current generation.
    pub fn assignment(&self) -> Option<&[TopicPartition]> {
        self.assignment.as_deref()
    }

    pub fn positions(&self) -> &BTreeMap<TopicPartition, Offset> {
        &self.positions
    }

    pub fn member(&self) -> Option<(&MemberId, Option<Generation>)> {
        self.member.as_ref().map(|m| (m, self.generation))
    }

    /// While this member asks its coordinator for a committed offset: that coordinator, and how
    /// many assigned partitions still wait for theirs (this one included; they are asked one at
    /// a time). For the simulator's `stale-coordinator` nemesis.
    pub fn offset_fetch_in_flight(&self) -> Option<(BrokerId, usize)> {
        let Some(InFlight::Group {
            kind: GroupCall::FetchOffset { .. },
            to,
            ..
        }) = &self.in_flight
        else {
            return None;
        };
        let assigned = self.assignment.as_deref().unwrap_or_default();
        let waiting = assigned
            .iter()
            .filter(|tp| !self.positions.contains_key(tp))
            .count();
        Some((*to, waiting))
    }

    pub fn on_start(&mut self, cx: &mut Context) {
        self.step(cx);
    }

    pub fn on_message(&mut self, cx: &mut Context, from: NodeId, message: Message) {
        match message {
            Message::MetadataResponse(md) => {
                if !matches!(self.in_flight, Some(InFlight::Metadata { .. })) {
                    return;
                }
                self.done(cx);
                ClusterMetadata::keep_newer(&mut self.metadata, md);
                self.stale = false;
            }
            Message::GroupResponse(resp) => {
                if self.heartbeats.contains(&resp.correlation) {
                    self.heartbeats.clear();
                    if let Err(e) = resp.result {
                        self.on_group_error(cx, e);
                    }
                } else {
                    let kind = match &self.in_flight {
                        Some(InFlight::Group {
                            correlation, kind, ..
                        }) if *correlation == resp.correlation => kind.clone(),
                        _ => return,
                    };
                    self.done(cx);
                    self.on_group_response(cx, kind, resp.result);
                }
            }
            Message::FetchResponse(resp) => {
                let Some(InFlight::Fetch { tp, offset, leader }) = &self.in_flight else {
                    return;
                };
                if *tp != resp.tp || *offset != resp.fetch_offset || *leader != from {
                    return;
                }
                self.done(cx);
                self.on_fetch_response(cx, resp);
            }
            Message::ListOffsetsResponse {
                tp,
                spec,
                result,
                timestamp,
                leader_epoch,
                log_start,
                high_watermark,
            } => {
                let Some(InFlight::ListOffsets {
                    tp: asked,
                    spec: asked_spec,
                    leader,
                }) = &self.in_flight
                else {
                    return;
                };
                if *asked != tp || *asked_spec != spec || *leader != from {
                    return;
                }
                self.done(cx);
                let group = Some(self.config.group.clone());
                let stage = match result {
                    Ok(_) => Stage::Ok,
                    Err(e) => Stage::Fail(format!("{e:?}")),
                };
                let offset = result.ok();
                match spec {
                    OffsetSpec::Timestamp(t) => cx.observe(ClientEvent::OffsetForTime {
                        stage,
                        tp: tp.clone(),
                        timestamp: t,
                        offset,
                        record_timestamp: timestamp.filter(|_| offset.is_some()),
                        log_start: log_start.filter(|_| offset.is_some()),
                        leader_epoch: leader_epoch.filter(|_| offset.is_some()),
                        group,
                    }),
                    OffsetSpec::MaxTimestamp => cx.observe(ClientEvent::OffsetForMaxTimestamp {
                        stage,
                        tp: tp.clone(),
                        offset,
                        record_timestamp: timestamp.filter(|_| offset.is_some()),
                        log_start: log_start.filter(|_| offset.is_some()),
                        high_watermark: high_watermark.filter(|_| offset.is_some()),
                        leader_epoch: leader_epoch.filter(|_| offset.is_some()),
                        group,
                    }),
                    _ => cx.observe(ClientEvent::LatestOffset {
                        stage,
                        tp: tp.clone(),
                        offset,
                        leader_epoch: leader_epoch.filter(|_| offset.is_some()),
                        group,
                    }),
                }
                match offset {
                    Some(offset) => {
                        // An application's seek (to the end, or to a time) is committed like
                        // processed records (what it skipped it chose to skip); a reset is not.
                        let sought = match spec {
                            OffsetSpec::Timestamp(_) | OffsetSpec::MaxTimestamp => {
                                match self.to_time.remove(&tp) {
                                    // Before the batch that prompted the lookup: an older record
                                    // stamped later (a producer's clock ahead). Rewinding there
                                    // at every lookup can keep the member from ever catching
                                    // up, so it stays where it is.
                                    Some((_, floor)) if offset < floor => None,
                                    asked => Some(asked.is_some()),
                                }
                            }
                            _ => Some(self.to_end.remove(&tp)),
                        };
                        if let Some(sought) = sought {
                            if sought {
                                self.dirty.insert(tp.clone());
                            }
                            self.seek_to(cx, &tp, offset)
                        }
                    }
                    None => self.retry_later(cx, true),
                }
            }
            _ => return,
        }
        self.step(cx);
    }

    pub fn on_timer(&mut self, cx: &mut Context, timer: Timer) {
        match timer {
            Timer::ClientRequestTimeout => self.on_request_timeout(cx),
            Timer::ClientBackoff => self.backing_off = false,
            Timer::GroupHeartbeat => self.send_heartbeat(cx),
            Timer::Process => self.finish_processing(cx),
            Timer::Recommit => self.recommit_due(cx),
            _ => {}
        }
        self.step(cx);
    }

    /// Decides the next request, if none is in flight: the membership steps first, then the
    /// partition loop.
    fn step(&mut self, cx: &mut Context) {
        if self.finished || self.in_flight.is_some() || self.backing_off || self.processing {
            return;
        }
        if self.coordinator.is_none() {
            return self.find_coordinator(cx);
        }
        if self.generation.is_none() {
            return self.join(cx);
        }
        if self.assignment.is_none() {
            // A leader assigns from metadata that knows every subscribed topic.
            if let Some(join) = &self.leading {
                if leader::unknown_topics(join, self.metadata.as_ref()) {
                    return self.request_metadata(cx);
                }
            }
            return self.sync(cx);
        }
        self.advance(cx);
    }

    /// The request in flight was answered.
    fn done(&mut self, cx: &mut Context) {
        self.in_flight = None;
        cx.cancel_timer(Timer::ClientRequestTimeout);
    }

    fn next_correlation(&mut self) -> u64 {
        self.correlation += 1;
        self.correlation
    }

    /// Waits before the next request; `stale` asks for newer metadata first.
    fn retry_later(&mut self, cx: &mut Context, stale: bool) {
        self.stale |= stale;
        self.backing_off = true;
        match self.config.retry_backoff_ms {
            Some(_) => cx.set_timer(Timer::ClientBackoff, self.config.retry_backoff_ms),
            None => self.backing_off = false,
        }
    }

    /// The request in flight went unanswered: its connection is closed (its answer may be stuck
    /// behind a stalled segment; `Effect::Disconnect`), and what it asked is settled as unknown.
    fn on_request_timeout(&mut self, cx: &mut Context) {
        let Some(req) = self.in_flight.take() else {
            return;
        };
        let to = match &req {
            InFlight::Fetch { leader, .. } | InFlight::ListOffsets { leader, .. } => *leader,
            InFlight::Group { to, .. } | InFlight::Metadata { to } => *to,
        };
        if !self.config.bugs.has(Bug::KeepStalledLinks) {
            cx.disconnect(to);
        }
        match req {
            InFlight::Metadata { .. }
            | InFlight::Group {
                kind: GroupCall::Find,
                ..
            } => {
                self.bootstrap.advance(&self.config.bootstrap);
            }
            InFlight::Group { kind, .. } => {
                self.report_unknown(cx, &kind, "request timed out");
                self.coordinator = None;
            }
            InFlight::Fetch { .. } | InFlight::ListOffsets { .. } => self.stale = true,
        }
    }

    /// A group operation whose outcome the member cannot know.
    fn report_unknown(&mut self, cx: &mut Context, kind: &GroupCall, why: &str) {
        let group = self.config.group.clone();
        match kind {
            GroupCall::Commit { tp, offset } => {
                cx.observe(ClientEvent::Commit {
                    stage: Stage::Info(why.to_string()),
                    group,
                    tp: tp.clone(),
                    offset: *offset,
                });
                self.commit_uncertain(cx, tp);
            }
            GroupCall::FetchOffset { tp } => cx.observe(ClientEvent::FetchCommitted {
                stage: Stage::Info(why.to_string()),
                group,
                tp: tp.clone(),
                offset: None,
            }),
            _ => {}
        }
    }

    fn has_bug(&self, bug: Bug) -> bool {
        self.config.bugs.has(bug)
    }
}

/// How a refused group request is reported: definitely not applied, or unknown (a coordinator
/// that resigned may have appended the commit before it did).
fn refusal(e: ErrorCode) -> Stage {
    match e {
        ErrorCode::NotCoordinator | ErrorCode::NotEnoughReplicasAfterAppend => {
            Stage::Info(e.to_string())
        }
        _ => Stage::Fail(e.to_string()),
    }
}

#[cfg(test)]
mod tests;
