//! The producer client, as Kafka's: the application hands it records one by one (paced by the
//! workload); it picks each record's partition (Kafka's partitioner), collects records into one
//! open batch per partition that closes at `batch.size` bytes or after `linger.ms`, and sends
//! closed batches to the partition's leader, up to `max.in.flight` requests at a time per broker.
//! Batches of a partition go in order, and on a retriable error the failed batch and every batch
//! behind it are sent again, in the same order, after a backoff and a metadata refresh.
//!
//! Idempotence: each batch carries the producer id, an epoch and its first sequence number (per
//! partition, one per record, from 0 in each epoch), so the leader answers a retry of a batch
//! it already has with the original offsets and refuses one out of sequence. When the producer
//! can no longer tell which of its batches landed — it gave one up, or one failed for good — it
//! waits until nothing is in flight, then starts a new epoch: sequences restart at 0, and the
//! brokers fence whatever of the old epoch still arrives. The producer id comes from the cluster
//! (`InitProducerId`, answered by any broker) unless the configuration presets one: until it has
//! one, the producer hands over no record, so no batch goes out unstamped or with a made-up id.
//!
//! Each record is one operation in the history (`Observe` effects, by record index): invoked when
//! handed over, then acknowledged, failed (a definite refusal), or given up with an unknown
//! outcome when its batch passes the delivery timeout.

use super::client::{metadata_request, Bootstrap};
use super::{Bug, ClientEvent, Context, ProducerConfig, Situation, Timer};
use crate::protocol::partitioner::{partition_for, StickyPartitioner};
use crate::protocol::{
    entry_block, Acks, ClusterMetadata, ErrorCode, LeaderEpoch, Message, NodeId, Offset,
    PartitionBatch, ProduceRequest, ProduceResponse, ProducerStamp, TopicPartition,
};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

/// Records handed over but not done, at most: the application waits beyond it (`buffer.memory`).
const MAX_BUFFERED_RECORDS: usize = 4_096;

/// A closed batch of one partition: record indices, its first sequence, and its attempt.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Batch {
    id: u64,
    records: Vec<usize>,
    /// What its records take in the leader's journal write (`entry_block::append_bound`).
    bound: u64,
    first_seq: u64,
    /// The correlation of the request carrying it, while one is in flight.
    sent: Option<u64>,
    /// Acknowledged at this base offset while an earlier batch of the partition is not done:
    /// held, so that a partition's acknowledgements come in order (an answer to an earlier
    /// attempt of a later batch can arrive before the earlier batch's).
    acked: Option<Offset>,
    /// Times it was sent in the current epoch, counting to 2 only ("more than once" is all that
    /// matters, and a growing count would make every retry a new state for the model checker).
    attempts: u8,
}

/// A request in flight: the broker it went to, and its batches not answered yet (partition,
/// batch id).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct InFlight {
    broker: NodeId,
    batches: Vec<(u32, u64)>,
    /// The metadata version the request was routed by.
    version: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
struct PartitionQueue {
    /// Records handed over and not yet in a batch, their size, and what they take in the
    /// leader's journal write (`entry_block::append_bound`).
    open: Vec<usize>,
    open_bytes: u64,
    open_bound: u64,
    /// Closed batches not yet done, in send order.
    batches: VecDeque<Batch>,
    next_seq: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Producer {
    config: Arc<ProducerConfig>,
    metadata: Option<ClusterMetadata>,
    metadata_in_flight: bool,
    backing_off: bool,
    /// The metadata we hold proved stale (an error came back): ask for a newer version.
    stale: bool,
    bootstrap: Bootstrap,
    sticky: StickyPartitioner,
    rng: u64,
    /// Index of the next record the application hands over.
    next_record: usize,
    /// Records done (acknowledged, failed, given up, or sent with acks=0).
    done: usize,
    /// Waiting for the pacing timer before handing over the next record.
    pacing: bool,
    /// Records from this index on are not handed over (a workload told to stop).
    limit: usize,
    epoch: u16,
    /// A batch's fate is unknown or it failed: start a new epoch once nothing is in flight.
    epoch_bump_pending: bool,
    queues: BTreeMap<u32, PartitionQueue>,
    /// Requests in flight, by correlation: the smallest number no other request in flight
    /// uses, so that retries add no state (an answer names its batches, so one to an earlier
    /// request under the same number is still matched right).
    in_flight: BTreeMap<u64, InFlight>,
    next_batch: u64,
    /// Partitions a request left out because its batches filled it (8 MiB): they go first in
    /// later requests to their leader, so that busy partitions cannot keep them waiting. Only
    /// ordering: an entry stays until its partition's next batch is sent. Empty while no
    /// request fills up (never with the simulator's and the model checker's small records).
    left_out: Vec<u32>,
    /// The idempotence stamp's producer id: preset by the configuration or granted by a broker.
    producer_id: Option<u64>,
    /// InitProducerId requests sent (each attempt's correlation).
    init_attempts: u64,
}

impl Producer {
    pub fn new(config: Arc<ProducerConfig>) -> Self {
        Producer {
            sticky: StickyPartitioner::new(config.sticky_batch),
            rng: config.seed,
            metadata: None,
            metadata_in_flight: false,
            backing_off: false,
            stale: false,
            bootstrap: Bootstrap::default(),
            next_record: 0,
            done: 0,
            pacing: false,
            limit: usize::MAX,
            epoch: 0,
            epoch_bump_pending: false,
            queues: BTreeMap::new(),
            in_flight: BTreeMap::new(),
            next_batch: 0,
            producer_id: config.producer_id,
            init_attempts: 0,
            left_out: Vec::new(),
            config,
        }
    }

    /// A producer that already holds metadata (a warmed-up client): it sends at once.
    pub fn with_metadata(config: Arc<ProducerConfig>, metadata: ClusterMetadata) -> Self {
        let mut p = Self::new(config);
        p.metadata = Some(metadata);
        p
    }

    pub fn config(&self) -> &ProducerConfig {
        &self.config
    }

    /// How many records are done (acknowledged, failed, given up, or sent with acks=0).
    pub fn done(&self) -> usize {
        self.done
    }

    /// Hand over no more records; those handed over are still sent (a workload ending its
    /// send phase).
    pub fn stop(&mut self) {
        self.limit = self.next_record;
    }

    /// The application hands over up to `records` more of its records after a `stop` (the
    /// simulator's probe that a producer still gets writes through once faults have healed).
    pub fn resume(&mut self, cx: &mut Context, records: usize) {
        self.limit = self.next_record.saturating_add(records);
        // Still without an id, it stopped asking for one once it had nothing left to send
        // (`init_producer_id`): ask again, or the new records wait for ever (seed 50124 of
        // `lone-leader-power-loss`: its request timed out as the send phase ended).
        if self.awaiting_producer_id() {
            self.init_producer_id(cx);
        }
        self.progress(cx);
    }

    /// Every record it will send is done.
    pub fn finished(&self) -> bool {
        self.done >= self.config.records.len().min(self.limit)
    }

    pub fn on_start(&mut self, cx: &mut Context) {
        cx.set_timer(Timer::MetadataMaxAge, self.config.metadata_max_age_ms);
        // The id and the metadata are asked for at once; records wait for both.
        if self.awaiting_producer_id() {
            self.init_producer_id(cx);
        }
        match self.metadata {
            Some(_) => self.progress(cx),
            None => self.request_metadata(cx),
        }
    }

    pub fn on_message(&mut self, cx: &mut Context, _from: NodeId, message: Message) {
        match message {
            Message::MetadataResponse(md) => {
                // Only news replaces what we hold: a late answer to an earlier request may be
                // older than what we have.
                let newer = self
                    .metadata
                    .as_ref()
                    .is_none_or(|m| md.version > m.version);
                if newer {
                    self.metadata = Some(md);
                    self.stale = false;
                }
                // Only the answer we wait for stops the request timer, and it ends staleness
                // even when it brings nothing newer: the broker waited for a newer version
                // and has none, so the error that made ours stale was not about metadata.
                // Still stale, every periodic refresh asked for a version nobody had, waited
                // out the broker's park, and held every send meanwhile: in a calm cluster,
                // acks=all sends took 300-550 ms instead of tens (`slow`, seed 26).
                if self.metadata_in_flight {
                    self.metadata_in_flight = false;
                    self.stale = false;
                    cx.cancel_timer(Timer::ClientRequestTimeout);
                    self.progress(cx);
                }
            }
            Message::ProduceResponse(resp) => self.on_response(cx, resp),
            Message::InitProducerIdResponse { result, .. } => self.on_producer_id(cx, result),
            _ => {}
        }
    }

    pub fn on_timer(&mut self, cx: &mut Context, timer: Timer) {
        match timer {
            Timer::ClientBackoff => {
                self.backing_off = false;
                self.request_metadata(cx);
            }
            Timer::SendPace => {
                self.pacing = false;
                self.progress(cx);
            }
            Timer::Linger(partition) => {
                self.close_open_batch(cx, partition);
                self.progress(cx);
            }
            Timer::DeliveryTimeout(batch) => self.give_up(cx, batch),
            Timer::MetadataMaxAge => {
                // A refresh without an error: the batches in flight stay where they are.
                cx.set_timer(Timer::MetadataMaxAge, self.config.metadata_max_age_ms);
                self.request_metadata(cx);
            }
            Timer::ProduceTimeout(correlation) => self.on_produce_timeout(cx, correlation),
            // Each asks again inside `time_out_bootstrap`, of the next broker.
            Timer::ClientRequestTimeout if self.metadata_in_flight => self.time_out_bootstrap(cx),
            Timer::ClientRequestTimeout => self.request_metadata(cx),
            Timer::InitProducerIdTimeout if self.awaiting_producer_id() => {
                self.time_out_bootstrap(cx)
            }
            _ => {}
        }
    }

    /// A produce request got no answer in time. As Kafka's client does, the connection to its
    /// broker is closed, which fails every request in flight on it (their answers can no longer
    /// arrive). The outcome of each is unknown; its batches are sent again (a retry the leader
    /// recognises if the first attempt landed) — except those sent again already, after another
    /// failure. An attempt may still reach the broker on the old connection after later ones
    /// sent on the new connection: the leader's sequence and epoch checks decide what it does.
    fn on_produce_timeout(&mut self, cx: &mut Context, correlation: u64) {
        let Some(broker) = self.in_flight.get(&correlation).map(|r| r.broker) else {
            return;
        };
        cx.cancel_timer(Timer::ProduceTimeout(correlation));
        cx.disconnect(broker);
        if self.bootstrap.current(&self.config.bootstrap) == Some(broker) {
            // The metadata or producer-id request in flight there shared the connection.
            self.ask_bootstrap_again(cx);
        }
        self.fail_produce_requests(cx, broker);
    }

    /// The connection to `broker` was closed: every produce request in flight on it failed
    /// (its answer can no longer arrive), with an unknown outcome; its batches are sent again.
    fn fail_produce_requests(&mut self, cx: &mut Context, broker: NodeId) {
        let failed: Vec<u64> = self
            .in_flight
            .iter()
            .filter(|(_, r)| r.broker == broker)
            .map(|(c, _)| *c)
            .collect();
        for c in failed {
            let Some(request) = self.in_flight.remove(&c) else {
                continue;
            };
            cx.cancel_timer(Timer::ProduceTimeout(c));
            for (partition, batch) in request.batches {
                if self.is_current(partition, batch, c) {
                    self.retry_from(cx, partition, batch);
                }
            }
        }
        self.progress(cx);
    }

    /// A request to the current bootstrap broker went unanswered: its connection is closed and
    /// the next broker asked. Every other request in flight on that connection fails with it,
    /// as Kafka's client fails every request on a closed connection: left waiting for their
    /// own timeout, answers that can no longer arrive held acknowledgements back for seconds.
    fn time_out_bootstrap(&mut self, cx: &mut Context) {
        let closed = self.bootstrap.time_out(cx, &self.config.bootstrap);
        self.ask_bootstrap_again(cx);
        if let Some(broker) = closed {
            self.fail_produce_requests(cx, broker);
        }
    }

    /// The connection the metadata and producer-id requests went on (they go to the current
    /// bootstrap broker, which changes only when one of them times out) was closed: whichever
    /// is in flight is asked again, of the broker now current, on a new connection.
    fn ask_bootstrap_again(&mut self, cx: &mut Context) {
        if self.awaiting_producer_id() && self.init_attempts > 0 {
            cx.cancel_timer(Timer::InitProducerIdTimeout);
            self.init_producer_id(cx);
        }
        if self.metadata_in_flight {
            self.metadata_in_flight = false;
            cx.cancel_timer(Timer::ClientRequestTimeout);
            self.request_metadata(cx);
        }
    }

    /// An idempotent producer without an id yet: it sends nothing until it has one.
    fn awaiting_producer_id(&self) -> bool {
        self.config.idempotent && self.producer_id.is_none()
    }

    /// Asks the current bootstrap broker for a producer id; on no answer in time, the next one.
    fn init_producer_id(&mut self, cx: &mut Context) {
        if self.finished() {
            return;
        }
        let Some(to) = self.bootstrap.current(&self.config.bootstrap) else {
            return;
        };
        self.init_attempts += 1;
        let correlation = self.init_attempts;
        cx.send(to, Message::InitProducerId { correlation });
        cx.set_timer(Timer::InitProducerIdTimeout, self.config.request_timeout_ms);
    }

    /// Any answer with an id will do, even one to an earlier attempt: every id a broker grants
    /// is unique. A refusal (no broker refuses today: they hold the request until they have an
    /// id) is asked again at the next broker after the backoff, or without one configured when
    /// the request's timer fires.
    fn on_producer_id(&mut self, cx: &mut Context, result: Result<(u64, u16), ErrorCode>) {
        if !self.awaiting_producer_id() {
            return;
        }
        match result {
            Ok((id, epoch)) => {
                self.producer_id = Some(id);
                self.epoch = epoch;
                cx.cancel_timer(Timer::InitProducerIdTimeout);
                self.progress(cx);
            }
            Err(_) if self.config.retry_backoff_ms.is_some() => {
                cx.set_timer(Timer::InitProducerIdTimeout, self.config.retry_backoff_ms)
            }
            Err(_) => {}
        }
    }

    /// Hands over records, closes batches, and sends what can go.
    fn progress(&mut self, cx: &mut Context) {
        if self.awaiting_producer_id() {
            return;
        }
        self.release_all_acked(cx);
        self.hand_over(cx);
        self.maybe_bump_epoch(cx);
        self.send_ready(cx);
    }

    /// The application hands over its next records (all it has, or one per pacing interval),
    /// each to the open batch of its partition.
    fn hand_over(&mut self, cx: &mut Context) {
        let end = self.config.records.len().min(self.limit);
        while !self.pacing
            && self.next_record < end
            && self.next_record - self.done < MAX_BUFFERED_RECORDS
        {
            let Some(md) = &self.metadata else {
                return self.request_metadata(cx);
            };
            let count = md.partition_count(&self.config.topic);
            if count == 0 {
                return self.back_off(cx);
            }
            let index = self.next_record;
            let record = &self.config.records[index];
            let random = next_random(&mut self.rng);
            let partition = partition_for(record.key.as_deref(), count, &mut self.sticky, random);
            cx.observe(ClientEvent::SendInvoke {
                id: index as u64,
                topic: self.config.topic.clone(),
                key: record.key.clone(),
                // Histories name records by their values; a null value is observed as empty
                // (the workloads send unique, non-null values).
                value: record.value.clone().unwrap_or_default(),
            });
            let size = record.size_bytes();
            let bound = entry_block::entry_bound(record);
            self.next_record += 1;
            // A record no leader would take fails here, as Kafka's producer refuses a record
            // past `max.request.size` (sent, its frame could be past the frame limit, which
            // the broker refuses by dropping the connection: resent until its delivery timeout).
            if bound > entry_block::MAX_APPEND_BYTES {
                let reason = ErrorCode::MessageTooLarge.to_string();
                cx.observe(ClientEvent::SendFail {
                    id: index as u64,
                    reason,
                });
                self.done += 1;
            } else {
                self.add_to_open_batch(cx, partition, index, size, bound);
            }
            if self.config.send_interval_ms.is_some() {
                self.pacing = true;
                cx.set_timer(Timer::SendPace, self.config.send_interval_ms);
            }
        }
    }

    /// Adds record `index` (of `size` bytes, taking `bound` in a journal write) to the open
    /// batch of `partition`, closing batches as `batch.size` and the append cap say.
    fn add_to_open_batch(
        &mut self,
        cx: &mut Context,
        partition: u32,
        index: usize,
        size: u64,
        bound: u64,
    ) {
        // A batch closes before its records would take more than a leader appends at once
        // (it would refuse the whole batch as too large): a large `batch.size` of large
        // records makes several batches.
        let q = self.queues.entry(partition).or_default();
        if !q.open.is_empty() && q.open_bound + bound > entry_block::MAX_APPEND_BYTES {
            self.close_open_batch(cx, partition);
        }
        let q = self.queues.entry(partition).or_default();
        if q.open.is_empty() {
            cx.set_timer(Timer::Linger(partition), self.config.linger_ms);
        }
        q.open.push(index);
        q.open_bytes += size;
        q.open_bound += bound;
        if q.open_bytes >= self.config.batch_size_bytes {
            self.close_open_batch(cx, partition);
        }
    }

    /// Closes the open batch of `partition`, assigning its sequence numbers.
    fn close_open_batch(&mut self, cx: &mut Context, partition: u32) {
        let Some(q) = self.queues.get_mut(&partition) else {
            return;
        };
        if q.open.is_empty() {
            return;
        }
        cx.cancel_timer(Timer::Linger(partition));
        let records = std::mem::take(&mut q.open);
        let bound = std::mem::take(&mut q.open_bound);
        q.open_bytes = 0;
        let id = self.next_batch;
        self.next_batch += 1;
        let first_seq = q.next_seq;
        q.next_seq += records.len() as u64;
        q.batches.push_back(Batch {
            id,
            records,
            bound,
            first_seq,
            sent: None,
            acked: None,
            attempts: 0,
        });
        cx.set_timer(Timer::DeliveryTimeout(id), self.config.delivery_timeout_ms);
    }

    /// Sends every batch that can go, in order per partition: to each leader, requests carrying
    /// the next batch of every partition it leads, while it has fewer than `max.in.flight`
    /// requests of ours.
    fn send_ready(&mut self, cx: &mut Context) {
        // After a failure, nothing goes until the backoff is over and the metadata asked for
        // then has come (it names the leader to send to).
        let refreshing = self.stale && self.metadata_in_flight;
        if self.backing_off || refreshing || self.epoch_bump_pending {
            return;
        }
        let Some(md) = &self.metadata else {
            return;
        };
        let version = md.version;
        // A batch of a partition may go to its new leader while an earlier one is still on its
        // way to the old: the new leader refuses it as out of sequence (unless the earlier one
        // landed and was copied there), and it is sent again once the earlier one is answered.
        // (This runs on every event of the producer: only partitions with something to send
        // are looked up, without cloning the metadata.)
        let mut by_leader: BTreeMap<NodeId, Vec<(u32, LeaderEpoch)>> = BTreeMap::new();
        let mut leaderless = false;
        let topic = self.config.topic.as_str();
        for (&partition, q) in &self.queues {
            let unsent = q
                .batches
                .iter()
                .any(|b| b.sent.is_none() && b.acked.is_none());
            if !unsent && q.open.is_empty() {
                continue;
            }
            let state = md.partition_of(topic, partition);
            match state.and_then(|p| Some((p.leader?, p.leader_epoch))) {
                Some((leader, epoch)) => by_leader
                    .entry(leader)
                    .or_default()
                    .push((partition, epoch)),
                // Records still in the open batch count too: with nothing else to send, a
                // producer that looked only at closed batches never asked for news and stalled
                // for good (seed 79, once the controllers formed a quorum).
                None => leaderless = true,
            }
        }
        for (leader, mut partitions) in by_leader {
            loop {
                let busy = self
                    .in_flight
                    .values()
                    .filter(|f| f.broker == leader)
                    .count();
                if busy >= self.config.max_in_flight.max(1) {
                    break;
                }
                let correlation = (0..)
                    .find(|c| !self.in_flight.contains_key(c))
                    .expect("fewer requests in flight than numbers");
                // A request carries batches up to what one append may take, so that its frame
                // stays under the frame limit (the broker refuses a larger frame and drops the
                // connection: the producer would send it again for ever). A partition left out
                // goes first in the next request (`left_out`).
                let mut room = entry_block::MAX_APPEND_BYTES;
                let mut batches: Vec<PartitionBatch> = Vec::new();
                if !self.left_out.is_empty() {
                    let first = |p: &(u32, LeaderEpoch)| !self.left_out.contains(&p.0);
                    partitions.sort_by_key(first);
                }
                for &(p, epoch) in &partitions {
                    let bound = self.next_bound(p);
                    if !batches.is_empty() && bound > room {
                        if !self.left_out.contains(&p) {
                            self.left_out.push(p);
                        }
                        continue;
                    }
                    if let Some(batch) = self.take_next(cx, p, epoch, correlation) {
                        room = room.saturating_sub(bound);
                        batches.push(batch);
                        self.left_out.retain(|&q| q != p);
                    }
                }
                if batches.is_empty() {
                    break;
                }
                let carried = batches.iter().map(|b| (b.tp.partition, b.batch)).collect();
                let req = ProduceRequest {
                    acks: self.config.acks,
                    correlation,
                    batches,
                };
                cx.send(leader, Message::Produce(req));
                if self.config.acks == Acks::None {
                    // Nothing will answer: the batches are done as sent.
                    let carried: Vec<(u32, u64)> = carried;
                    for (partition, batch) in carried {
                        self.finish_batch(cx, partition, batch, |_| ClientEvent::SendInfo {
                            id: 0,
                            reason: "acks=0".into(),
                        });
                    }
                    continue;
                }
                self.in_flight.insert(
                    correlation,
                    InFlight {
                        broker: leader,
                        batches: carried,
                        version,
                    },
                );
                cx.set_timer(
                    Timer::ProduceTimeout(correlation),
                    self.config.request_timeout_ms,
                );
            }
        }
        if leaderless {
            self.back_off(cx);
        }
    }

    /// What the batch `take_next` would send for `partition` takes in the leader's journal write.
    fn next_bound(&self, partition: u32) -> u64 {
        let Some(q) = self.queues.get(&partition) else {
            return 0;
        };
        q.batches
            .iter()
            .find(|b| b.sent.is_none() && b.acked.is_none())
            .map_or(q.open_bound, |b| b.bound)
    }

    /// The next batch of `partition` to send, marked as sent under `correlation`: the first not
    /// sent nor acknowledged, or (without lingering) the open batch, closed now.
    fn take_next(
        &mut self,
        cx: &mut Context,
        partition: u32,
        leader_epoch: LeaderEpoch,
        correlation: u64,
    ) -> Option<PartitionBatch> {
        let q = self.queues.get_mut(&partition)?;
        let next = q
            .batches
            .iter()
            .position(|b| b.sent.is_none() && b.acked.is_none());
        let next = match next {
            Some(i) => i,
            None if self.config.linger_ms.is_none() && !q.open.is_empty() => {
                self.close_open_batch(cx, partition);
                self.queues[&partition].batches.len() - 1
            }
            None => return None,
        };
        let q = self.queues.get_mut(&partition).expect("found above");
        let batch = &mut q.batches[next];
        batch.sent = Some(correlation);
        batch.attempts = (batch.attempts + 1).min(2);
        let records = batch
            .records
            .iter()
            .map(|&i| {
                let mut r = self.config.records[i].clone();
                r.timestamp = cx.timestamp_ms();
                r
            })
            .collect();
        Some(PartitionBatch {
            tp: TopicPartition::new(self.config.topic.clone(), partition),
            leader_epoch: Some(leader_epoch),
            batch: batch.id,
            records,
            producer: self.config.idempotent.then_some(ProducerStamp::batch(
                // `progress` sends nothing before an idempotent producer has its id.
                self.producer_id.unwrap_or_default(),
                self.epoch,
                batch.first_seq,
            )),
        })
    }

    fn on_response(&mut self, cx: &mut Context, resp: ProduceResponse) {
        let correlation = resp.correlation;
        let Some(request) = self.in_flight.get_mut(&correlation) else {
            return;
        };
        // Metadata newer than what the request was routed by came in since: a refusal of it
        // (not the leader, say) does not make what we hold stale. Taken for stale, the refresh
        // asked for a version newer still, which no broker had, and the sends waited out the
        // broker's park of that request (seed 61001448, `slow`).
        let routed_by_older = self
            .metadata
            .as_ref()
            .is_some_and(|m| m.version > request.version);
        let was_stale = self.stale;
        let mut answered = Vec::new();
        for r in resp.batches {
            if r.tp.topic != self.config.topic {
                continue;
            }
            let key = (r.tp.partition, r.batch);
            if let Some(i) = request.batches.iter().position(|b| *b == key) {
                request.batches.remove(i);
                answered.push((key, r.result));
            }
        }
        if request.batches.is_empty() {
            self.in_flight.remove(&correlation);
            cx.cancel_timer(Timer::ProduceTimeout(correlation));
        }
        for ((partition, batch), result) in answered {
            // Not an answer to an attempt the batch has since been sent again after.
            if self.is_current(partition, batch, correlation) {
                self.on_batch_result(cx, partition, batch, result);
            }
        }
        if routed_by_older && !was_stale {
            self.stale = false;
        }
        self.progress(cx);
    }

    fn on_batch_result(
        &mut self,
        cx: &mut Context,
        partition: u32,
        batch_id: u64,
        result: Result<Offset, ErrorCode>,
    ) {
        match result {
            Ok(base) => {
                if let Some(b) = self
                    .queues
                    .get_mut(&partition)
                    .and_then(|q| q.batches.iter_mut().find(|b| b.id == batch_id))
                {
                    b.acked = Some(base);
                    b.sent = None;
                }
                self.release_acked(cx, partition);
            }
            // Out of sequence while an earlier batch of ours is unanswered: that batch fills the
            // gap once it lands; send this one again behind it.
            Err(ErrorCode::OutOfOrderSequence) if self.earlier_unfinished(partition, batch_id) => {
                self.retry_from(cx, partition, batch_id)
            }
            Err(e) if !e.is_retriable() => {
                // Refused for good. On its first attempt nothing of it was appended: a definite
                // failure. A batch refused as out of sequence after earlier attempts may have
                // landed with one of them (a retry from before the leader's window): unknown.
                // Either way its sequences are now a gap: start a new epoch.
                let reason = e.to_string();
                let attempts = self.attempts(partition, batch_id);
                if e == ErrorCode::OutOfOrderSequence {
                    cx.reached(Situation::SequenceGapFinal);
                }
                if e == ErrorCode::OutOfOrderSequence && attempts > 1 {
                    self.finish_batch(cx, partition, batch_id, |_| ClientEvent::SendInfo {
                        id: 0,
                        reason: reason.clone(),
                    });
                } else {
                    self.finish_batch(cx, partition, batch_id, |_| ClientEvent::SendFail {
                        id: 0,
                        reason: reason.clone(),
                    });
                }
                if !self.config.bugs.has(Bug::NoEpochBumpAfterRefusal) {
                    self.epoch_bump_pending = true;
                }
            }
            Err(_) => self.retry_from(cx, partition, batch_id),
        }
    }

    /// Whether `correlation` is the attempt of the batch still awaited.
    fn is_current(&self, partition: u32, batch_id: u64, correlation: u64) -> bool {
        self.queues
            .get(&partition)
            .and_then(|q| q.batches.iter().find(|b| b.id == batch_id))
            .is_some_and(|b| b.sent == Some(correlation))
    }

    fn attempts(&self, partition: u32, batch_id: u64) -> u8 {
        self.queues
            .get(&partition)
            .and_then(|q| q.batches.iter().find(|b| b.id == batch_id))
            .map_or(0, |b| b.attempts)
    }

    /// Whether a batch of `partition` with lower sequences than `batch_id`'s is not answered yet
    /// (an acknowledged one is in the leader's log: it cannot explain a gap).
    fn earlier_unfinished(&self, partition: u32, batch_id: u64) -> bool {
        let Some(q) = self.queues.get(&partition) else {
            return false;
        };
        let Some(first) = q
            .batches
            .iter()
            .find(|b| b.id == batch_id)
            .map(|b| b.first_seq)
        else {
            return false;
        };
        q.batches
            .iter()
            .any(|b| b.first_seq < first && b.acked.is_none())
    }

    /// The attempt of `batch_id` failed (or timed out): every batch of its partition is sent
    /// again, in order from the oldest, after a backoff and a metadata refresh — the batches in
    /// flight with it went to the same leader and will likely fail too, and a later batch must
    /// not land before an earlier one's retry. Answers to their earlier attempts are ignored; if
    /// an earlier attempt landed, the leader recognises the retry.
    fn retry_from(&mut self, cx: &mut Context, partition: u32, batch_id: u64) {
        let out_of_order = self.config.bugs.has(Bug::RetryOutOfOrder);
        if let Some(q) = self.queues.get_mut(&partition) {
            if let Some(i) = q.batches.iter().position(|b| b.id == batch_id) {
                if q.batches.iter().skip(i + 1).any(|b| b.sent.is_some()) {
                    cx.reached(Situation::BatchRetriedBehindInFlight);
                }
                for b in q.batches.iter_mut() {
                    b.sent = None;
                }
                if out_of_order {
                    // The bug: the failed batch goes behind the others, and sequences are
                    // handed out again in the new order.
                    if let Some(b) = q.batches.remove(i) {
                        q.batches.push_back(b);
                    }
                    let mut seq = q.batches.iter().map(|b| b.first_seq).min().unwrap_or(0);
                    for b in q.batches.iter_mut() {
                        b.first_seq = seq;
                        seq += b.records.len() as u64;
                    }
                }
            }
        }
        self.back_off(cx);
    }

    /// `release_acked` for every partition, in partition order.
    fn release_all_acked(&mut self, cx: &mut Context) {
        let partitions: Vec<u32> = self.queues.keys().copied().collect();
        for p in partitions {
            self.release_acked(cx, p);
        }
    }

    /// Reports the acknowledged batches at the front of the partition's queue, in order.
    fn release_acked(&mut self, cx: &mut Context, partition: u32) {
        while let Some((id, base)) = self
            .queues
            .get(&partition)
            .and_then(|q| q.batches.front())
            .and_then(|b| Some((b.id, b.acked?)))
        {
            self.finish_batch(cx, partition, id, |i| ClientEvent::SendOk {
                id: 0,
                partition,
                offset: base + i as Offset,
            });
        }
    }

    /// The batch is done: reports each record's outcome (`event(i)` for the i-th), forgets it.
    fn finish_batch(
        &mut self,
        cx: &mut Context,
        partition: u32,
        batch_id: u64,
        event: impl Fn(usize) -> ClientEvent,
    ) {
        let Some(q) = self.queues.get_mut(&partition) else {
            return;
        };
        let Some(i) = q.batches.iter().position(|b| b.id == batch_id) else {
            return;
        };
        let batch = q.batches.remove(i).expect("found above");
        cx.cancel_timer(Timer::DeliveryTimeout(batch_id));
        for (i, &record) in batch.records.iter().enumerate() {
            cx.observe(with_id(event(i), record as u64));
        }
        self.done += batch.records.len();
    }

    /// The batch passed the delivery timeout: it may still land (it may be in a leader's log or
    /// in flight), so its records' outcome is unknown, and so is the producer's sequence state.
    fn give_up(&mut self, cx: &mut Context, batch_id: u64) {
        let Some(partition) = self
            .queues
            .iter()
            .find(|(_, q)| q.batches.iter().any(|b| b.id == batch_id))
            .map(|(p, _)| *p)
        else {
            return;
        };
        self.finish_batch(cx, partition, batch_id, |_| ClientEvent::SendInfo {
            id: 0,
            reason: "delivery timeout".into(),
        });
        if self.config.idempotent {
            self.epoch_bump_pending = true;
        }
        self.progress(cx);
    }

    /// Starts a new epoch once nothing is in flight. A batch sent in the old epoch and not
    /// answered may still land (an attempt that timed out can be on its way), and sent again in
    /// the new epoch it would not be recognised: such batches are given up (outcome unknown).
    /// Every other batch is numbered again from 0 in its partition.
    fn maybe_bump_epoch(&mut self, cx: &mut Context) {
        if !self.epoch_bump_pending || !self.in_flight.is_empty() {
            return;
        }
        self.epoch_bump_pending = false;
        if !self.config.idempotent {
            return;
        }
        self.epoch = self.epoch.wrapping_add(1);
        let unresolved: Vec<(u32, u64)> = self
            .queues
            .iter()
            .flat_map(|(p, q)| {
                q.batches
                    .iter()
                    .filter(|b| b.attempts > 0 && b.acked.is_none())
                    .map(|b| (*p, b.id))
            })
            .collect();
        for (partition, batch) in unresolved {
            self.finish_batch(cx, partition, batch, |_| ClientEvent::SendInfo {
                id: 0,
                reason: "sent in an abandoned epoch".into(),
            });
        }
        // What was held behind a batch given up is acknowledged: report it now, so that only
        // batches never sent are numbered again (an acknowledged batch left in the queue put the
        // new epoch's first sequence after its records, and the leader refused it).
        self.release_all_acked(cx);
        for q in self.queues.values_mut() {
            let mut seq = 0;
            for b in q.batches.iter_mut() {
                b.first_seq = seq;
                seq += b.records.len() as u64;
            }
            q.next_seq = seq;
        }
    }

    /// A send failed because our metadata is stale (or the cluster is not ready): wait, then ask
    /// for metadata newer than ours.
    fn back_off(&mut self, cx: &mut Context) {
        self.stale = true;
        if self.backing_off {
            return;
        }
        if self.config.retry_backoff_ms.is_none() {
            return self.request_metadata(cx);
        }
        self.backing_off = true;
        cx.set_timer(Timer::ClientBackoff, self.config.retry_backoff_ms);
    }

    fn request_metadata(&mut self, cx: &mut Context) {
        if self.metadata_in_flight || self.finished() {
            return;
        }
        let Some(to) = self.bootstrap.current(&self.config.bootstrap) else {
            return;
        };
        self.metadata_in_flight = true;
        cx.send(to, metadata_request(self.metadata.as_ref(), self.stale));
        cx.set_timer(Timer::ClientRequestTimeout, self.config.request_timeout_ms);
    }
}

/// The event with the record's index set.
fn with_id(event: ClientEvent, record: u64) -> ClientEvent {
    match event {
        ClientEvent::SendOk {
            partition, offset, ..
        } => ClientEvent::SendOk {
            id: record,
            partition,
            offset,
        },
        ClientEvent::SendFail { reason, .. } => ClientEvent::SendFail { id: record, reason },
        ClientEvent::SendInfo { reason, .. } => ClientEvent::SendInfo { id: record, reason },
        other => other,
    }
}

/// splitmix64: the producer's own deterministic randomness, seeded from its config (the quorum's
/// voters draw their election timeouts with it too).
pub(crate) fn next_random(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod producer_id_tests;
#[cfg(test)]
mod tests;
