//! The leader role: appends produced records, serves fetches (long-polling when there is nothing
//! new), advances the high watermark over the maximal ISR, and asks the controller to shrink or
//! expand the ISR.

use super::{Broker, LeaderState, Progress, Role, WaitingProduce};
use crate::log::{BatchCheck, PartitionLog, ProducerState, SequenceRules, Violation};
use crate::node::{Bug, Context, DiskOp, Situation, Timer};
use crate::protocol::{
    entry_block, Acks, BatchResult, BrokerId, ErrorCode, FetchRequest, FetchResponse, LogEntry,
    Message, NodeId, Offset, OffsetSpec, PartitionBatch, PartitionState, ProduceRequest,
    ProduceResponse, TopicPartition, OFFSETS_TOPIC,
};
use std::collections::BTreeMap;

impl Broker {
    pub(super) fn become_leader(&mut self, cx: &mut Context, ps: &PartitionState) {
        self.step_down(cx, &ps.tp);
        let r = self
            .replicas
            .get_mut(&ps.tp)
            .expect("created by the caller");
        let start = r.log.log_end_offset();
        // Record where the epoch starts now, not at the first append (KAFKA-7415).
        r.log.assign_epoch(ps.leader_epoch, start);
        cx.persist(DiskOp::AssignEpoch {
            tp: ps.tp.clone(),
            epoch: ps.leader_epoch,
            start_offset: start,
        });
        r.leader_epoch = Some(ps.leader_epoch);
        r.role = Role::Leader(LeaderState {
            epoch: ps.leader_epoch,
            epoch_start: start,
            isr: ps.isr.clone(),
            partition_epoch: ps.partition_epoch,
            pending_isr: None,
            pending_epochs: Vec::new(),
            isr_change_refused: false,
            followers: BTreeMap::new(),
            waiting_produce: Vec::new(),
            parked_fetches: Vec::new(),
            connections: BTreeMap::new(),
        });
        self.arm_lag_timers(cx, &ps.tp);
        self.start_coordinator(cx, &ps.tp);
        self.leader_progress(cx, &ps.tp);
    }

    /// A partition state from a newer metadata push, in the same leader epoch: the controller may
    /// have committed an ISR change, and a refused change may be proposed again.
    pub(super) fn adopt_partition_state(&mut self, cx: &mut Context, ps: &PartitionState) {
        let Some(Role::Leader(ls)) = self.replicas.get_mut(&ps.tp).map(|r| &mut r.role) else {
            return;
        };
        if ps.partition_epoch > ls.partition_epoch {
            ls.isr = ps.isr.clone();
            ls.partition_epoch = ps.partition_epoch;
            ls.pending_isr = None;
            ls.pending_epochs.clear();
            ls.isr_change_refused = false;
            self.arm_lag_timers(cx, &ps.tp);
            self.leader_progress(cx, &ps.tp);
            self.try_expand_isr(cx, &ps.tp);
        } else if ls.isr_change_refused {
            // Any newer push ends the wait, not only one that changes this partition: a refusal
            // for a follower's stale broker epoch is cured by the push of its new registration,
            // which leaves this partition's epoch as it was. (Waiting for a partition change
            // instead left the ISR at the leader alone for good: seeds 752, 2124, 2688, 4610,
            // 7366 of the standard sweep.)
            ls.isr_change_refused = false;
            self.try_expand_isr(cx, &ps.tp);
        }
    }

    /// Leaving the leader role: everyone waiting is told to look for the new leader.
    pub(super) fn step_down(&mut self, cx: &mut Context, tp: &TopicPartition) {
        let Some(r) = self.replicas.get_mut(tp) else {
            return;
        };
        let Role::Leader(ls) = std::mem::take(&mut r.role) else {
            return;
        };
        self.stop_coordinator(cx, tp);
        let Some(r) = self.replicas.get_mut(tp) else {
            return;
        };
        let epoch = ls.epoch;
        for f in ls.isr.iter().filter(|b| **b != self.config.id) {
            cx.cancel_timer(Timer::FollowerLag {
                tp: tp.clone(),
                replica: *f,
            });
        }
        for w in ls.waiting_produce {
            let resp = w.answer(tp, Err(ErrorCode::NotLeaderOrFollower));
            cx.send(w.client, Message::ProduceResponse(resp));
        }
        for (from, req) in ls.parked_fetches {
            let resp = error_fetch(&req, ErrorCode::NotLeaderOrFollower, epoch, r);
            cx.send(from, Message::FetchResponse(resp));
        }
    }

    pub(super) fn on_produce(&mut self, cx: &mut Context, from: NodeId, req: ProduceRequest) {
        // A batch naming a leader epoch we have not caught up with parks the whole request: the
        // request is handled again later, and its other batches must not be appended twice.
        if req
            .batches
            .iter()
            .any(|b| self.is_ahead(&b.tp, b.leader_epoch))
        {
            cx.reached(Situation::FetchParkedForNewerEpoch);
            return self.park(cx, from, Message::Produce(req));
        }
        let (acks, correlation) = (req.acks, req.correlation);
        let mut now = Vec::new();
        for batch in req.batches {
            let (tp, id) = (batch.tp.clone(), batch.batch);
            if let Err(e) = self.produce_batch(cx, from, acks, correlation, batch) {
                now.push(BatchResult {
                    tp,
                    batch: id,
                    result: e,
                });
            }
        }
        if acks != Acks::None && !now.is_empty() {
            let resp = ProduceResponse {
                correlation,
                batches: now,
            };
            cx.send(from, Message::ProduceResponse(resp));
        }
    }

    /// Appends one batch of a produce request (or finds it already appended) and leaves it to
    /// wait for its acknowledgement; `Err` holds the answer it gets at once instead.
    fn produce_batch(
        &mut self,
        cx: &mut Context,
        from: NodeId,
        acks: Acks,
        correlation: u64,
        batch: PartitionBatch,
    ) -> Result<(), Result<Offset, ErrorCode>> {
        let config = self.config.clone();
        let rules = self.sequence_rules();
        let not_leader = self.not_leader(&batch.tp);
        let tp = &batch.tp;
        if tp.topic == OFFSETS_TOPIC {
            return Err(Err(ErrorCode::InvalidTopic));
        }
        let Some(r) = self.replicas.get_mut(tp) else {
            return Err(Err(not_leader));
        };
        let Role::Leader(ls) = &mut r.role else {
            return Err(Err(not_leader));
        };
        if acks == Acks::All && !ls.isr_meets_min(&config) {
            return Err(Err(ErrorCode::NotEnoughReplicas));
        }
        // An idempotent producer's batch is checked against what the log knows of it: a retry
        // of one of its last batches is answered from the log (once committed, like the first
        // attempt), a batch out of sequence or of an old epoch is refused.
        let check = match batch.producer {
            Some(stamp) => ProducerState::check(
                r.log.producer_state(stamp.producer),
                stamp,
                batch.records.len() as u64,
                rules,
            ),
            None => BatchCheck::Append,
        };
        let (base, last) = match check {
            BatchCheck::Duplicate {
                first_offset,
                last_offset,
            } => {
                cx.reached(Situation::IdempotentRetryDeduplicated);
                (first_offset, last_offset)
            }
            BatchCheck::Refuse(e) => {
                cx.reached(match e {
                    ErrorCode::ProducerFenced => Situation::ProducerFenced,
                    _ => Situation::OutOfOrderSequenceRefused,
                });
                return Err(Err(e));
            }
            BatchCheck::Append if batch.records.is_empty() => {
                return Err(Err(ErrorCode::InvalidRecord))
            }
            // The append would be journaled as one frame past the frame limit, acknowledged,
            // and then refused as corrupt when the journal is read back (found with 4 096
            // records of 4 KiB from `seedlog produce`: a leader that would not restart). Checked
            // only for a batch to append: a retry of one already in the log is answered from it.
            BatchCheck::Append
                if entry_block::append_bound(&batch.records) > entry_block::MAX_APPEND_BYTES =>
            {
                return Err(Err(ErrorCode::MessageTooLarge))
            }
            BatchCheck::Append => {
                let entries = match r
                    .log
                    .append_stamped(ls.epoch, batch.records, batch.producer)
                {
                    Ok(e) => e,
                    // The leader appends in its own epoch at its own log end: this cannot fail.
                    // No answer: a broken node stops.
                    Err(e) => {
                        self.broken(Violation::new("leader-append", e.to_string()).at(tp));
                        return Ok(());
                    }
                };
                let span = (entries[0].offset, entries[entries.len() - 1].offset);
                cx.persist(DiskOp::Append {
                    tp: tp.clone(),
                    entries,
                });
                span
            }
        };
        match acks {
            Acks::None => {}
            Acks::All if config.bugs.has(Bug::AckBeforeIsr) => return Err(Ok(base)),
            acks => ls.waiting_produce.push(WaitingProduce {
                client: from,
                correlation,
                batch: batch.batch,
                acks,
                base_offset: base,
                last_offset: last,
            }),
        }
        self.leader_progress(cx, tp);
        Ok(())
    }

    /// How this leader checks idempotent producers' sequences (relaxed by bug switches).
    fn sequence_rules(&self) -> SequenceRules {
        let mut rules = SequenceRules::default();
        if self.config.bugs.has(Bug::DedupWindow1) {
            rules.window = 1;
        }
        if self.config.bugs.has(Bug::NoSequenceGapCheck) {
            rules.gap_check = false;
        }
        rules
    }

    pub(super) fn on_fetch(&mut self, cx: &mut Context, from: NodeId, req: FetchRequest) {
        if self.is_ahead(&req.tp, req.current_leader_epoch) {
            cx.reached(Situation::FetchParkedForNewerEpoch);
            return self.park(cx, from, Message::Fetch(req));
        }
        let config = self.config.clone();
        let not_leader = self.not_leader(&req.tp);
        let metadata_epoch = req
            .replica
            .and_then(|rep| self.metadata.registration(rep.broker).map(|r| r.epoch));
        let assigned = self
            .metadata
            .partition(&req.tp)
            .map(|p| p.replicas.clone())
            .unwrap_or_default();
        let Some(r) = self.replicas.get_mut(&req.tp) else {
            let resp = error_fetch(&req, not_leader, 0, &Default::default());
            return cx.send(from, Message::FetchResponse(resp));
        };
        let Role::Leader(ls) = &mut r.role else {
            let epoch = r.leader_epoch.unwrap_or(0);
            let resp = error_fetch(&req, not_leader, epoch, r);
            return cx.send(from, Message::FetchResponse(resp));
        };
        if let Some(rep) = req.replica {
            // Sent by an incarnation of the follower before the one that has fetched from us
            // since, and delivered late: nobody waits for its answer, and answered, it reached
            // the new incarnation, whose fetch in flight had the same offset and connection
            // number, so the follower took our answer to its old log (a divergence) for its own
            // and cut below the position we had counted for it (seed 887448240:
            // `progress-held-by-follower`). Connection numbers alone do not order these: both
            // incarnations' first connection is 0, which `connections` does not record.
            let newer = ls.followers.get(&rep.broker);
            if newer.is_some_and(|p| p.broker_epoch > rep.broker_epoch) {
                return;
            }
            // Sent on a connection the follower has since dropped (or by an incarnation before
            // its restart), and overtaken by a fetch on its next one: its offset may be older
            // than what the follower proved since, and nobody waits for its answer.
            let this = (rep.broker_epoch, rep.connection);
            match ls.connections.get(&rep.broker) {
                Some(&newest) if newest > this => return,
                Some(&newest) if newest == this => {}
                _ if rep.connection > 0 => {
                    ls.connections.insert(rep.broker, this);
                    // Its fetches parked from older connections will not be awaited either.
                    ls.parked_fetches.retain(|(f, q)| {
                        *f != from
                            || q.replica
                                .is_none_or(|r| (r.broker_epoch, r.connection) >= this)
                    });
                }
                _ => {}
            }
        }
        let epoch = ls.epoch;
        let mut stale_epoch = false;
        let error = match req.current_leader_epoch {
            Some(e) if e > epoch => Some(ErrorCode::UnknownLeaderEpoch),
            Some(e) if e < epoch => {
                // Bug F: a follower still in an older epoch is served and counted.
                stale_epoch = req.replica.is_some() && config.bugs.has(Bug::HwFromStaleEpoch);
                (!stale_epoch).then_some(ErrorCode::FencedLeaderEpoch)
            }
            _ => None,
        };
        let error = error.or_else(|| match req.replica {
            Some(rep) if !assigned.contains(&rep.broker) => Some(ErrorCode::NotLeaderOrFollower),
            Some(rep) if metadata_epoch.is_some_and(|e| rep.broker_epoch < e) => {
                Some(ErrorCode::StaleBrokerEpoch)
            }
            _ => None,
        });
        if let Some(error) = error {
            let resp = error_fetch(&req, error, epoch, r);
            return cx.send(from, Message::FetchResponse(resp));
        }
        // Divergence: does the follower's last epoch end where it thinks in our log?
        if let (Some(lfe), false) = (req.last_fetched_epoch, stale_epoch) {
            let end = r.log.end_offset_for_epoch(lfe);
            if end.epoch != Some(lfe) || end.end_offset < req.fetch_offset {
                let mut resp = error_fetch(&req, ErrorCode::OffsetOutOfRange, epoch, r);
                resp.error = None;
                // The follower may have to restart at our log start: with no epoch in common,
                // or when where our logs part lies below its own log start. It then takes our
                // producer state below our log start. (Otherwise it truncates and goes on: its
                // entries keep its producer state.)
                if req.replica.is_some() {
                    resp.producers = r.log.producers_below_log_start();
                }
                resp.diverging_epoch = Some(end);
                return cx.send(from, Message::FetchResponse(resp));
            }
        }
        if req.fetch_offset < r.log.log_start_offset() || req.fetch_offset > r.log.log_end_offset()
        {
            let resp = out_of_range(&req, epoch, r);
            return cx.send(from, Message::FetchResponse(resp));
        }
        if let Some(rep) = req.replica {
            let log_end = r.log.log_end_offset();
            ls.followers.insert(
                rep.broker,
                Progress {
                    log_end: req.fetch_offset,
                    synced: req.synced_offset.min(req.fetch_offset),
                    broker_epoch: rep.broker_epoch,
                },
            );
            if req.fetch_offset >= log_end && ls.isr.contains(&rep.broker) {
                // Caught up: restart its lag clock.
                let timer = Timer::FollowerLag {
                    tp: req.tp.clone(),
                    replica: rep.broker,
                };
                cx.cancel_timer(timer.clone());
                cx.set_timer(timer, config.replica_lag_time_max_ms);
            }
            self.try_expand_isr(cx, &req.tp);
            self.leader_progress(cx, &req.tp);
        }
        self.answer_or_park(cx, from, req);
    }

    /// Answers a fetch if it has something to return (records, or for a follower a newer high
    /// watermark); otherwise parks it until something changes.
    fn answer_or_park(&mut self, cx: &mut Context, from: NodeId, req: FetchRequest) {
        let max = match (&req.replica, self.config.max_replica_fetch_records) {
            (Some(_), Some(n)) => n,
            _ => self.config.max_fetch_records,
        };
        let max_bytes = self.config.max_fetch_bytes;
        let max_wait = self.config.fetch_max_wait_ms;
        let Some(r) = self.replicas.get_mut(&req.tp) else {
            return;
        };
        let Some(epoch) = r.leader().map(|l| l.epoch) else {
            return;
        };
        if req.fetch_offset < r.log.log_start_offset() {
            // Retention moved the log start past a parked fetch: out of range, as on arrival.
            // Reading from the new log start instead skipped the deleted records without a word
            // (a reader's poll-skip after its reset, found by the simulator).
            if let Role::Leader(ls) = &mut r.role {
                ls.parked_fetches
                    .retain(|(f, p)| !(*f == from && p.tp == req.tp));
            }
            let resp = out_of_range(&req, epoch, r);
            return cx.send(from, Message::FetchResponse(resp));
        }
        let Role::Leader(ls) = &mut r.role else {
            return;
        };
        let hw = r.log.high_watermark();
        // KIP-207: until this leader has committed its predecessors' records it does not know the
        // true high watermark, and must not show a consumer a smaller one: the fetch waits.
        let hw_known = hw >= ls.epoch_start;
        let until = if req.replica.is_some() {
            r.log.log_end_offset()
        } else {
            hw
        };
        let records = r.log.read_within(req.fetch_offset, until, max, max_bytes);
        let hw_news = req.replica.is_some() && hw.min(req.fetch_offset) > req.known_hw;
        ls.parked_fetches
            .retain(|(f, p)| !(*f == from && p.tp == req.tp));
        let consumer_waits = req.replica.is_none() && !hw_known;
        if (records.is_empty() && !hw_news) || consumer_waits {
            let timer = Timer::FetchMaxWait {
                tp: req.tp.clone(),
                from,
            };
            ls.parked_fetches.push((from, req));
            cx.set_timer(timer, max_wait);
            return;
        }
        let resp = FetchResponse {
            tp: req.tp.clone(),
            fetch_offset: req.fetch_offset,
            error: None,
            leader_epoch: ls.epoch,
            high_watermark: hw,
            log_start_offset: r.log.log_start_offset(),
            records,
            diverging_epoch: None,
            producers: Vec::new(),
            connection: req.connection(),
        };
        cx.send(from, Message::FetchResponse(resp));
    }

    pub(super) fn on_fetch_max_wait(
        &mut self,
        cx: &mut Context,
        tp: &TopicPartition,
        from: NodeId,
    ) {
        let Some(r) = self.replicas.get_mut(tp) else {
            return;
        };
        let Role::Leader(ls) = &mut r.role else {
            return;
        };
        let Some(i) = ls.parked_fetches.iter().position(|(f, _)| *f == from) else {
            return;
        };
        let (_, req) = ls.parked_fetches.remove(i);
        let resp = FetchResponse {
            tp: tp.clone(),
            fetch_offset: req.fetch_offset,
            error: None,
            leader_epoch: ls.epoch,
            high_watermark: r.log.high_watermark(),
            log_start_offset: r.log.log_start_offset(),
            records: Vec::new(),
            diverging_epoch: None,
            producers: Vec::new(),
            connection: req.connection(),
        };
        cx.send(from, Message::FetchResponse(resp));
    }

    /// After anything that may move the high watermark: advance it, answer produces it commits,
    /// and wake parked fetches.
    pub(super) fn leader_progress(&mut self, cx: &mut Context, tp: &TopicPartition) {
        let config = &self.config;
        let Some(r) = self.replicas.get_mut(tp) else {
            return;
        };
        if let Some(c) = r.hw_due(config) {
            if let Err(e) = r.log.set_high_watermark(c) {
                let v = Violation::new("leader-hw", e.to_string()).at(tp);
                return self.broken(v);
            }
        }
        let hw = r.log.high_watermark();
        let (done, waiting): (Vec<_>, Vec<_>) = match &mut r.role {
            Role::Leader(ls) => std::mem::take(&mut ls.waiting_produce),
            _ => return,
        }
        .into_iter()
        .partition(|w| r.produce_due(config, w));
        let Role::Leader(ls) = &mut r.role else {
            return;
        };
        let isr_ok = ls.isr_meets_min(config);
        ls.waiting_produce = waiting;
        for w in done {
            let result = if w.acks == Acks::All && !isr_ok {
                Err(ErrorCode::NotEnoughReplicasAfterAppend)
            } else {
                Ok(w.base_offset)
            };
            cx.send(w.client, Message::ProduceResponse(w.answer(tp, result)));
        }
        // Bug: the parked fetches are left to their long-poll deadline.
        let parked = if config.bugs.has(Bug::ParkedFetchNotWoken) {
            Vec::new()
        } else {
            std::mem::take(&mut ls.parked_fetches)
        };
        let epoch_start = ls.epoch_start;
        for (from, req) in parked {
            self.answer_or_park(cx, from, req);
        }
        self.coordinator_progress(cx, tp, hw, epoch_start, isr_ok);
    }

    /// Proposes adding every caught-up follower (LEO at least the high watermark and the start of
    /// this epoch, registered in the incarnation that fetched) to the ISR, one change at a time.
    pub(super) fn try_expand_isr(&mut self, cx: &mut Context, tp: &TopicPartition) {
        let skip_epoch_check = self.config.bugs.has(Bug::IsrBeforeEpochStart);
        let Some(r) = self.replicas.get(tp) else {
            return;
        };
        let Some(ls) = r.leader() else {
            return;
        };
        if ls.pending_isr.is_some() || ls.isr_change_refused {
            return;
        }
        let hw = r.log.high_watermark();
        // With fsync durability a member has synced everything below the high watermark
        // (`isr-member-syncs-hw`), so a follower joins once it has synced up to it, not only
        // written it.
        let durability = self.config.durability;
        let joining = ls.followers.iter().find(|(b, p)| {
            let live = self
                .metadata
                .registration(**b)
                .is_some_and(|reg| reg.epoch == p.broker_epoch && !reg.fenced);
            !ls.isr.contains(b)
                && live
                && p.log_end >= hw
                && p.counted(durability) >= hw
                && (skip_epoch_check || p.log_end >= ls.epoch_start)
        });
        if let Some((&b, _)) = joining {
            let mut isr = ls.isr.clone();
            isr.push(b);
            isr.sort_unstable();
            self.propose_isr(cx, tp, isr);
        }
    }

    pub(super) fn on_follower_lag(&mut self, cx: &mut Context, tp: &TopicPartition, f: BrokerId) {
        let lag_ms = self.config.replica_lag_time_max_ms;
        let Some(r) = self.replicas.get(tp) else {
            return;
        };
        let Some(ls) = r.leader() else {
            return;
        };
        if !ls.isr.contains(&f) || f == self.config.id {
            return;
        }
        // Behind the leader's log end, not its high watermark: the high watermark waits for
        // every ISR member, so a follower that stopped fetching is never below it.
        let caught_up_to = if self.config.bugs.has(Bug::LagFromHighWatermark) {
            r.log.high_watermark()
        } else {
            r.log.log_end_offset()
        };
        let behind = ls
            .followers
            .get(&f)
            .is_none_or(|p| p.log_end < caught_up_to);
        if behind && ls.pending_isr.is_none() && !ls.isr_change_refused {
            let isr: Vec<_> = ls.isr.iter().copied().filter(|b| *b != f).collect();
            self.propose_isr(cx, tp, isr);
        } else {
            // Caught up, or a change is in flight: keep watching.
            let timer = Timer::FollowerLag {
                tp: tp.clone(),
                replica: f,
            };
            cx.set_timer(timer, lag_ms);
        }
    }

    /// Proposes `isr` to the controller.
    fn propose_isr(&mut self, cx: &mut Context, tp: &TopicPartition, isr: Vec<BrokerId>) {
        let Some(my_epoch) = self.broker_epoch() else {
            return;
        };
        let me = self.config.id;
        let Some(Role::Leader(ls)) = self.replicas.get_mut(tp).map(|r| &mut r.role) else {
            return;
        };
        let new_isr = isr
            .iter()
            .map(|&b| {
                let epoch = if b == me {
                    my_epoch
                } else {
                    ls.followers
                        .get(&b)
                        .map(|p| p.broker_epoch)
                        .or_else(|| self.metadata.registration(b).map(|r| r.epoch))
                        .unwrap_or(0)
                };
                (b, epoch)
            })
            .collect();
        ls.pending_isr = Some(isr);
        ls.pending_epochs = new_isr;
        self.send_isr_proposal(cx, tp);
    }

    /// Sends the pending ISR change as it was first proposed, each member named in the
    /// incarnation the leader saw catch up then. Naming members anew on a resend named a
    /// broker's new incarnation — registered after a power loss, without what the old one had
    /// fetched, and not caught up — and the controller, seeing the epoch it had registered,
    /// took it into the ISR below the high watermark (found by the `lossy-rejoin` nemesis:
    /// `isr-member-holds-hw`, seed 8).
    fn send_isr_proposal(&mut self, cx: &mut Context, tp: &TopicPartition) {
        let Some(my_epoch) = self.broker_epoch() else {
            return;
        };
        let me = self.config.id;
        let Some(ls) = self.replicas.get(tp).and_then(|r| r.leader()) else {
            return;
        };
        if ls.pending_isr.is_none() {
            return;
        }
        let req = crate::protocol::AlterPartitionRequest {
            tp: tp.clone(),
            leader: me,
            leader_broker_epoch: my_epoch,
            leader_epoch: ls.epoch,
            partition_epoch: ls.partition_epoch,
            new_isr: ls.pending_epochs.clone(),
        };
        self.send_to_controller(cx, Message::AlterPartition(req));
        cx.set_timer(
            Timer::AlterPartitionTimeout(tp.clone()),
            self.config.alter_partition_timeout_ms,
        );
    }

    /// The controller we sent to is not the active one, and names it: the proposals it was
    /// sent are lost, so send each again there rather than wait out its timeout. (A leader
    /// kept an ISR of itself alone for two seconds with both followers caught up; a bit flip
    /// on it in that time left no other copy: seed 502324.) A proposal the active controller
    /// also got is answered twice; only the first answer finds it pending.
    pub(super) fn resend_isr_proposals(&mut self, cx: &mut Context) {
        let pending: Vec<TopicPartition> = self
            .replicas
            .iter()
            .filter(|(_, r)| r.leader().is_some_and(|ls| ls.pending_isr.is_some()))
            .map(|(tp, _)| tp.clone())
            .collect();
        for tp in pending {
            self.send_isr_proposal(cx, &tp);
        }
    }

    pub(super) fn on_alter_partition_response(
        &mut self,
        cx: &mut Context,
        from: NodeId,
        tp: TopicPartition,
        request_partition_epoch: crate::protocol::PartitionEpoch,
        result: Result<PartitionState, ErrorCode>,
    ) {
        if !self.answered_by_controller(from) {
            return;
        }
        let Some(Role::Leader(ls)) = self.replicas.get_mut(&tp).map(|r| &mut r.role) else {
            return;
        };
        // Only the answer to the proposal in flight counts: proposals are based on the current
        // partition epoch, so an answer to one based on an older epoch is late. (Found by the
        // model checker: taking a late answer for the current one dropped an ISR expansion the
        // controller had committed, and the leader acknowledged records the new ISR member
        // lacked.)
        if ls.pending_isr.is_none() || request_partition_epoch != ls.partition_epoch {
            return;
        }
        cx.cancel_timer(Timer::AlterPartitionTimeout(tp.clone()));
        match result {
            Ok(ps) => {
                ls.pending_isr = None;
                ls.pending_epochs.clear();
                if ps.leader_epoch == ls.epoch && ps.partition_epoch > ls.partition_epoch {
                    ls.isr = ps.isr;
                    ls.partition_epoch = ps.partition_epoch;
                }
            }
            // The partition epoch moved on: another copy of this proposal (sent again after a
            // timeout, or to another controller) may be what moved it, so its members may be in
            // the ISR the controller committed. They keep counting for the high watermark until
            // the push of the newer partition state says what was committed.
            Err(ErrorCode::InvalidUpdateVersion) => ls.isr_change_refused = true,
            // Refused on its merits (stale or unknown members, a deposed leader): not applied.
            // Propose nothing more until the controller's next push — unless the push that
            // cures it has come already: a member named in an incarnation that our metadata
            // shows replaced (its new registration arrived before this answer, so no later
            // push need come). Then propose again at once, for the new incarnation once it has
            // caught up. (Waiting left the ISR short of that broker for good: `liveness`,
            // nemesis `lossy-rejoin`.)
            Err(e) => {
                // (Only a joining member's epoch is checked by the controller: the leader's own
                // is checked apart, and current members' are not checked.)
                let me = self.config.id;
                let replaced = e == ErrorCode::StaleBrokerEpoch
                    && ls.pending_epochs.iter().any(|&(b, epoch)| {
                        b != me
                            && !ls.isr.contains(&b)
                            && self
                                .metadata
                                .registration(b)
                                .is_some_and(|r| r.epoch != epoch)
                    });
                ls.pending_isr = None;
                ls.pending_epochs.clear();
                ls.isr_change_refused = !replaced;
            }
        }
        self.arm_lag_timers(cx, &tp);
        self.leader_progress(cx, &tp);
        self.try_expand_isr(cx, &tp);
    }

    /// No answer in time. The controller may still have applied the proposal (its answer lost
    /// or late, or the controller failed after committing it), so the proposal stays pending —
    /// its members counted for the high watermark — and is sent again as it was; only its
    /// answer or a push of a newer partition state settles it. (Dropping it here let the high
    /// watermark pass a follower the controller had just taken into the ISR: the
    /// `isr-holds-hw` check, seed 12970. Kafka's leader also keeps an unanswered change
    /// pending and retries it.)
    pub(super) fn on_alter_partition_timeout(&mut self, cx: &mut Context, tp: &TopicPartition) {
        let pending = self
            .replicas
            .get(tp)
            .and_then(|r| r.leader())
            .is_some_and(|ls| ls.pending_isr.is_some());
        if pending {
            self.send_isr_proposal(cx, tp);
        } else {
            self.try_expand_isr(cx, tp);
        }
    }

    fn arm_lag_timers(&mut self, cx: &mut Context, tp: &TopicPartition) {
        let me = self.config.id;
        let Some(ls) = self.replicas.get(tp).and_then(|r| r.leader()) else {
            return;
        };
        let assigned = self
            .metadata
            .partition(tp)
            .map(|p| p.replicas.clone())
            .unwrap_or_default();
        for &f in assigned.iter().filter(|b| **b != me) {
            let timer = Timer::FollowerLag {
                tp: tp.clone(),
                replica: f,
            };
            if ls.isr.contains(&f) {
                cx.set_timer(timer, self.config.replica_lag_time_max_ms);
            } else {
                cx.cancel_timer(timer);
            }
        }
    }

    pub(super) fn on_list_offsets(
        &mut self,
        cx: &mut Context,
        from: NodeId,
        tp: TopicPartition,
        spec: OffsetSpec,
    ) {
        let not_leader = self.not_leader(&tp);
        let mut timestamp = None;
        let replica = self.replicas.get(&tp);
        // Kafka's answer names the leader's epoch too; the simulator holds the answer to it.
        let leader_epoch = replica.and_then(|r| r.leader()).map(|l| l.epoch);
        let result = match replica {
            Some(r) => match (r.leader(), spec) {
                (None, _) => Err(not_leader),
                (Some(_), OffsetSpec::Earliest) => Ok(r.log.log_start_offset()),
                // Latest and by time look at committed records only: a new leader cannot tell
                // where they end until it has committed an entry of its own epoch (KIP-207).
                (
                    Some(ls),
                    OffsetSpec::Latest | OffsetSpec::Timestamp(_) | OffsetSpec::MaxTimestamp,
                ) if r.log.high_watermark() < ls.epoch_start => Err(ErrorCode::OffsetNotAvailable),
                (Some(_), OffsetSpec::Latest) if self.config.bugs.has(Bug::LatestIsLogEnd) => {
                    Ok(r.log.log_end_offset())
                }
                (Some(_), OffsetSpec::Latest) => Ok(r.log.high_watermark()),
                (Some(_), spec @ (OffsetSpec::Timestamp(_) | OffsetSpec::MaxTimestamp)) => {
                    // The record found, or none: the high watermark then, for either lookup.
                    let found = self.found_by_time(&r.log, spec);
                    timestamp = found.map(|e| e.record.timestamp);
                    Ok(found.map_or(r.log.high_watermark(), |e| e.offset))
                }
            },
            None => Err(not_leader),
        };
        let answer = Message::ListOffsetsResponse {
            tp,
            spec,
            result,
            timestamp,
            leader_epoch: leader_epoch.filter(|_| result.is_ok()),
            log_start: replica
                .map(|r| r.log.log_start_offset())
                .filter(|_| result.is_ok()),
            high_watermark: replica
                .map(|r| r.log.high_watermark())
                .filter(|_| result.is_ok()),
        };
        cx.send(from, answer);
    }

    /// The committed record a lookup by time finds in `log`: the first at or after the time,
    /// or the first holding the largest timestamp (the bug switch `time-lookup-past-hw` looks
    /// at uncommitted ones too). Earliest and latest name no record.
    fn found_by_time<'a>(&self, log: &'a PartitionLog, spec: OffsetSpec) -> Option<&'a LogEntry> {
        let hw = log.high_watermark();
        let bugs = &self.config.bugs;
        match spec {
            OffsetSpec::Timestamp(t) => {
                let mut until = hw;
                if bugs.has(Bug::TimeLookupPastHw) {
                    until = log.log_end_offset();
                }
                let mut from_time = t;
                if bugs.has(Bug::TimeLookupStrict) {
                    from_time = t.saturating_add(1);
                }
                log.first_at_or_after(from_time, until)
            }
            OffsetSpec::Earliest | OffsetSpec::Latest => None,
            OffsetSpec::MaxTimestamp => {
                let first = log.first_with_max_timestamp(hw);
                match first.filter(|_| bugs.has(Bug::MaxTimestampLastTie)) {
                    Some(f) => log
                        .entries()
                        .iter()
                        .rev()
                        .find(|e| e.offset < hw && e.record.timestamp == f.record.timestamp),
                    None => first,
                }
            }
        }
    }
}

/// `OffsetOutOfRange`. A follower told so may restart at our log start, so its answer carries
/// the producer state below the log start (see `FetchResponse::producers`).
fn out_of_range(req: &FetchRequest, epoch: u32, r: &super::Replica) -> FetchResponse {
    let mut resp = error_fetch(req, ErrorCode::OffsetOutOfRange, epoch, r);
    if req.replica.is_some() {
        resp.producers = r.log.producers_below_log_start();
    }
    resp
}

/// An answer with no records.
fn error_fetch(
    req: &FetchRequest,
    error: ErrorCode,
    epoch: u32,
    r: &super::Replica,
) -> FetchResponse {
    FetchResponse {
        tp: req.tp.clone(),
        fetch_offset: req.fetch_offset,
        error: Some(error),
        leader_epoch: epoch,
        high_watermark: r.log.high_watermark(),
        log_start_offset: r.log.log_start_offset(),
        records: Vec::new(),
        diverging_epoch: None,
        producers: Vec::new(),
        connection: req.connection(),
    }
}
