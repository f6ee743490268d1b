//! The partition loop: resume each assigned partition at the committed offset, fetch a batch,
//! process it, commit the next offset, move on. With the `commit-before-process` bug (M) the
//! commit comes first, so a crash during processing loses the batch for the group.

use super::{Consumer, GroupCall, InFlight, InHand};
use crate::node::client::metadata_request;
use crate::node::{Bug, ClientEvent, Context, OffsetReset, Stage, Timer};
use crate::protocol::{
    ErrorCode, FetchRequest, FetchResponse, Message, Offset, OffsetSpec, TopicPartition,
};

impl Consumer {
    /// The next step of a synced member.
    pub(super) fn advance(&mut self, cx: &mut Context) {
        let assignment = self.assignment.clone().unwrap_or_default();
        if let Some(h) = &self.in_hand {
            let tp = h.tp.clone();
            let next = h.records.last().map_or(0, |e| e.offset + 1);
            if self.has_bug(Bug::CommitBeforeProcess) && !h.committed {
                return self.commit(cx, tp, next);
            }
            self.start_processing(cx);
            if !self.processing {
                // Processed at once (no processing time): go on to the commit now, or nothing
                // would wake this member before its next heartbeat (found by the model checker).
                self.step(cx);
            }
            return;
        }
        // Commit what was processed and not yet committed (also after a rewind). A position
        // set by a reset or a seek alone is not committed: nothing was processed there.
        let uncommitted = assignment.iter().find(|tp| {
            let pos = self.positions.get(*tp);
            self.dirty.contains(*tp) && pos.is_some() && pos != self.committed.get(*tp)
        });
        if let Some(tp) = uncommitted.cloned() {
            let offset = self.positions[&tp];
            return self.commit(cx, tp, offset);
        }
        // A due re-commit of the last acknowledged offset, after a commit of unknown outcome.
        while let Some(tp) = self.recommit.pop_first() {
            if let Some(&offset) = self.committed.get(&tp).filter(|_| assignment.contains(&tp)) {
                return self.commit(cx, tp, offset);
            }
        }
        if self
            .config
            .max_records
            .is_some_and(|max| self.processed >= max)
        {
            return self.leave(cx);
        }
        if let Some(tp) = assignment
            .iter()
            .find(|tp| !self.positions.contains_key(*tp))
        {
            let tp = tp.clone();
            // The invoke matters: the checker orders observations of the committed offset by
            // when they started (found by the simulator: an answer delayed by a pause looked
            // like a fresh read of an old offset).
            cx.observe(ClientEvent::FetchCommitted {
                stage: crate::node::Stage::Invoke,
                group: self.config.group.clone(),
                tp: tp.clone(),
                offset: None,
            });
            return self.group_request(cx, GroupCall::FetchOffset { tp });
        }
        if let Some(tp) = assignment.iter().find(|tp| self.to_end.contains(*tp)) {
            let tp = tp.clone();
            return self.list_offsets(cx, &tp, OffsetSpec::Latest);
        }
        let due = assignment
            .iter()
            .find_map(|tp| Some((tp.clone(), self.to_time.get(tp)?.0)));
        if let Some((tp, spec)) = due {
            return self.list_offsets(cx, &tp, spec);
        }
        if assignment.is_empty() {
            // Nothing assigned: only heartbeats until the next rebalance.
            return;
        }
        self.cursor %= assignment.len();
        let tp = assignment[self.cursor].clone();
        self.fetch(cx, tp);
    }

    fn commit(&mut self, cx: &mut Context, tp: TopicPartition, offset: Offset) {
        cx.observe(ClientEvent::Commit {
            stage: crate::node::Stage::Invoke,
            group: self.config.group.clone(),
            tp: tp.clone(),
            offset,
        });
        self.group_request(cx, GroupCall::Commit { tp, offset });
    }

    /// A commit of `tp` may or may not have been applied, and may still be: it could land after
    /// a newer commit and take the group's offset back. Re-commit on a timer from now on.
    pub(super) fn commit_uncertain(&mut self, cx: &mut Context, tp: &TopicPartition) {
        let Some(every) = self.config.recommit_ms else {
            return;
        };
        if self.uncertain.is_empty() {
            cx.set_timer(Timer::Recommit, Some(every));
        }
        self.uncertain.insert(tp.clone());
    }

    /// The re-commit timer fired: every uncertain partition's last acknowledged offset is
    /// committed again at the next step (a newer commit on the way supersedes it anyway).
    pub(super) fn recommit_due(&mut self, cx: &mut Context) {
        if self.uncertain.is_empty() {
            return;
        }
        self.recommit.extend(self.uncertain.iter().cloned());
        cx.set_timer(Timer::Recommit, self.config.recommit_ms);
    }

    /// A commit of `tp` succeeded: with the bug, processing of the batch starts now.
    pub(super) fn after_commit(&mut self, cx: &mut Context, tp: &TopicPartition) {
        if let Some(h) = &mut self.in_hand {
            if &h.tp == tp && self.config.bugs.has(Bug::CommitBeforeProcess) {
                h.committed = true;
                self.start_processing(cx);
            }
        }
    }

    fn start_processing(&mut self, cx: &mut Context) {
        match self.config.process_ms {
            Some(ms) => {
                self.processing = true;
                cx.set_timer(Timer::Process, Some(ms));
            }
            None => self.finish_processing(cx),
        }
    }

    /// The batch in hand is processed: report it, move the position past it.
    pub(super) fn finish_processing(&mut self, cx: &mut Context) {
        self.processing = false;
        let Some(h) = self.in_hand.take() else {
            return;
        };
        let (Some(first), Some(next)) = (
            h.records.first().map(|e| e.offset),
            h.records.last().map(|e| e.offset + 1),
        ) else {
            return;
        };
        self.processed += h.records.len() as u64;
        // One of the batch's records, a different one each time, for a seek by time: records of
        // one millisecond and producers' clocks out of offset order make the answer land on, or
        // before, the record whose time is asked.
        let record_time = h.records[self.batches as usize % h.records.len()]
            .record
            .timestamp;
        let newest = h.records.iter().map(|e| e.record.timestamp).max();
        let newest = newest.unwrap_or(record_time);
        cx.observe(ClientEvent::Polled {
            tp: h.tp.clone(),
            records: h.records,
            group: Some(self.config.group.clone()),
        });
        self.positions.insert(h.tp.clone(), next);
        if h.committed {
            self.committed.insert(h.tp.clone(), next);
        } else {
            self.dirty.insert(h.tp.clone());
        }
        self.batches += 1;
        let rewind = self.config.rewind.filter(|r| r.every > 0);
        if let Some(r) = rewind.filter(|r| self.batches.is_multiple_of(r.every)) {
            self.seek_to(cx, &h.tp, next.saturating_sub(r.back));
        } else if self
            .config
            .seek_end_every
            .is_some_and(|n| n > 0 && self.batches.is_multiple_of(n))
        {
            self.to_end.insert(h.tp.clone());
        } else if let Some(n) = self
            .config
            .seek_time_every
            .filter(|&n| n > 0 && self.batches.is_multiple_of(n))
        {
            // In turn: a record's time (an answer among what was read); just after the
            // batch's newest record (for a member that has caught up, the answer is at the
            // high watermark's edge, where a search past it would find the records being
            // replicated); the largest timestamp (producers' clocks differ and jump, so it is
            // often not the last record, and records of one batch share their millisecond);
            // and a time to come (no record: the answer is the high watermark).
            let spec = match (self.batches / n) % 4 {
                1 => OffsetSpec::Timestamp(record_time),
                2 => OffsetSpec::Timestamp(newest.saturating_add(1)),
                3 => OffsetSpec::MaxTimestamp,
                _ => OffsetSpec::Timestamp(cx.timestamp_ms().saturating_add(1_000)),
            };
            self.to_time.insert(h.tp.clone(), (spec, first));
        }
        self.cursor += 1;
    }

    /// Moves `tp`'s position (an application seek or an offset reset) and reports it.
    pub fn seek_to(&mut self, cx: &mut Context, tp: &TopicPartition, offset: Offset) {
        self.positions.insert(tp.clone(), offset);
        cx.observe(ClientEvent::Seek {
            tp: tp.clone(),
            offset,
            group: Some(self.config.group.clone()),
        });
    }

    /// A fetch was out of range and its answer says the log of `tp` starts at `log_start`: move
    /// there, and report the log start (what lies below was deleted, not skipped).
    fn reset_to_log_start(&mut self, cx: &mut Context, tp: &TopicPartition, log_start: Offset) {
        self.positions.insert(tp.clone(), log_start);
        cx.observe(ClientEvent::Reset {
            tp: tp.clone(),
            offset: log_start,
            group: Some(self.config.group.clone()),
        });
    }

    /// The group's committed offset for `tp` arrived: resume there, or reset.
    pub(super) fn resume_at(
        &mut self,
        cx: &mut Context,
        tp: &TopicPartition,
        offset: Option<Offset>,
    ) {
        if let Some(o) = offset {
            self.committed.insert(tp.clone(), o);
        }
        let seek = self.config.seek_to.get(&tp.partition).copied();
        if let Some(s) = seek.filter(|_| self.sought.insert(tp.partition)) {
            return self.seek_to(cx, tp, s);
        }
        if let Some(o) = offset {
            self.positions.insert(tp.clone(), o);
            return;
        }
        match self.config.auto_offset_reset {
            // The log start may be above 0; the fetch then says where it is.
            OffsetReset::Earliest => self.seek_to(cx, tp, 0),
            OffsetReset::Latest => self.list_offsets(cx, tp, OffsetSpec::Latest),
            OffsetReset::None => {
                cx.observe(ClientEvent::ConsumerError {
                    reason: format!(
                        "no committed offset for {tp} in group {} and auto.offset.reset=none",
                        self.config.group
                    ),
                });
                self.leave(cx);
            }
        }
    }

    /// Asks `tp`'s leader for the partition's latest offset, the first at or after a time, or
    /// the first with the largest timestamp; the answer moves the position there.
    fn list_offsets(&mut self, cx: &mut Context, tp: &TopicPartition, spec: OffsetSpec) {
        let Some(leader) = self.leader_of(tp).filter(|_| !self.stale) else {
            return self.request_metadata(cx);
        };
        let group = Some(self.config.group.clone());
        cx.observe(match spec {
            OffsetSpec::Timestamp(timestamp) => ClientEvent::OffsetForTime {
                stage: Stage::Invoke,
                tp: tp.clone(),
                timestamp,
                offset: None,
                record_timestamp: None,
                log_start: None,
                leader_epoch: None,
                group,
            },
            OffsetSpec::MaxTimestamp => ClientEvent::OffsetForMaxTimestamp {
                stage: Stage::Invoke,
                tp: tp.clone(),
                offset: None,
                record_timestamp: None,
                log_start: None,
                high_watermark: None,
                leader_epoch: None,
                group,
            },
            _ => ClientEvent::LatestOffset {
                stage: Stage::Invoke,
                tp: tp.clone(),
                offset: None,
                leader_epoch: None,
                group,
            },
        });
        cx.send(
            leader,
            Message::ListOffsets {
                tp: tp.clone(),
                spec,
            },
        );
        cx.set_timer(Timer::ClientRequestTimeout, self.config.request_timeout_ms);
        self.in_flight = Some(InFlight::ListOffsets {
            tp: tp.clone(),
            spec,
            leader,
        });
    }

    fn leader_of(&self, tp: &TopicPartition) -> Option<crate::protocol::BrokerId> {
        self.metadata.as_ref()?.partition(tp)?.leader
    }

    fn fetch(&mut self, cx: &mut Context, tp: TopicPartition) {
        let Some(md) = self.metadata.as_ref().filter(|_| !self.stale) else {
            // No metadata yet, or a leader refused us: ask for (newer) metadata first.
            return self.request_metadata(cx);
        };
        let Some(ps) = md.partition(&tp).filter(|ps| ps.leader.is_some()) else {
            self.stale = true;
            return self.request_metadata(cx);
        };
        let leader = ps.leader.expect("filtered above");
        let offset = self.positions[&tp];
        let req = FetchRequest::by_consumer(tp.clone(), offset, ps.leader_epoch);
        cx.send(leader, Message::Fetch(req));
        cx.set_timer(Timer::ClientRequestTimeout, self.config.request_timeout_ms);
        self.in_flight = Some(InFlight::Fetch { tp, offset, leader });
    }

    pub(super) fn on_fetch_response(&mut self, cx: &mut Context, resp: FetchResponse) {
        let tp = resp.tp.clone();
        match resp.error {
            None if resp.records.is_empty() => self.cursor += 1,
            None => {
                let mut records = resp.records;
                if let Some(max) = self.config.max_records {
                    // Process no more than asked for, so a member with --count stops exactly
                    // there and commits exactly that (max.poll.records).
                    let left = max.saturating_sub(self.processed).max(1);
                    records.truncate(left as usize);
                }
                self.in_hand = Some(InHand {
                    tp,
                    records,
                    committed: false,
                });
            }
            Some(ErrorCode::OffsetOutOfRange)
                if self
                    .positions
                    .get(&tp)
                    .is_some_and(|p| *p < resp.log_start_offset) =>
            {
                // Retention removed what we had not read: continue from the log start, and
                // commit it even before anything there is processed: nothing below it is left to
                // process, and a group whose log start passed its last record would otherwise
                // never commit again (found by the simulator once runs drew retention).
                let start = if self.config.bugs.has(Bug::ResetToHighWatermark) {
                    resp.high_watermark
                } else {
                    resp.log_start_offset
                };
                self.reset_to_log_start(cx, &tp, start);
                self.dirty.insert(tp.clone());
            }
            Some(ErrorCode::OffsetOutOfRange) => {
                // Past the log end (a seek too far, or an unclean election cut the log below
                // where the group had got): `auto.offset.reset` decides, as in Kafka, and the
                // new position is committed, as Kafka's auto-commit would: a group whose
                // committed offset lies past the log end otherwise never commits again until
                // new records pass it (found by the simulator, seed 207996 of the 10 000-seed
                // sweep at 200000).
                match self.config.auto_offset_reset {
                    OffsetReset::Earliest => {
                        self.reset_to_log_start(cx, &tp, resp.log_start_offset);
                        self.dirty.insert(tp.clone());
                    }
                    OffsetReset::Latest => {
                        self.seek_to(cx, &tp, resp.high_watermark);
                        self.dirty.insert(tp.clone());
                    }
                    OffsetReset::None => {
                        let at = self.positions.get(&tp).copied().unwrap_or(0);
                        cx.observe(ClientEvent::ConsumerError {
                            reason: format!(
                                "offset {at} is out of range for {tp} and auto.offset.reset=none"
                            ),
                        });
                        self.leave(cx);
                    }
                }
            }
            Some(_) => self.retry_later(cx, true),
        }
    }

    pub(super) fn request_metadata(&mut self, cx: &mut Context) {
        let Some(to) = self.bootstrap.current(&self.config.bootstrap) else {
            return;
        };
        cx.send(to, metadata_request(self.metadata.as_ref(), self.stale));
        cx.set_timer(Timer::ClientRequestTimeout, self.config.request_timeout_ms);
        self.in_flight = Some(InFlight::Metadata { to });
    }
}
