//! The producer client: sends its records one at a time (max.in.flight = 1, so per-key order holds
//! without idempotence), to the partition Kafka's partitioner picks, at the leader metadata names;
//! on a retriable error it backs off, refreshes metadata and sends the same record again. An
//! idempotent producer stamps each record with its id and a sequence number, so a retry of a
//! record that did land is answered with the original offset instead of being appended twice.
//! Each record is one operation in the history (`Observe` effects): invoked at its first attempt,
//! then acknowledged, failed at once on an error no retry can change (`ErrorCode::is_retriable`),
//! or given up after the delivery timeout with an unknown outcome.

use super::client::{metadata_request, Bootstrap};
use super::{ClientEvent, Context, ProducerConfig, Timer};
use crate::protocol::partitioner::{partition_for, StickyPartitioner};
use crate::protocol::{
    Acks, ClusterMetadata, ErrorCode, Message, NodeId, ProduceRequest, ProduceResponse,
    ProducerStamp, TopicPartition,
};
use std::sync::Arc;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Producer {
    config: Arc<ProducerConfig>,
    metadata: Option<ClusterMetadata>,
    /// Index of the record being sent; all before it are acknowledged (or sent, with acks=0).
    next: usize,
    /// Partition chosen for the current record; kept across retries.
    partition: Option<u32>,
    in_flight: bool,
    metadata_in_flight: bool,
    backing_off: bool,
    /// The metadata we hold proved stale (an error came back): ask for a newer version.
    stale: bool,
    bootstrap: Bootstrap,
    sticky: StickyPartitioner,
    rng: u64,
    /// The current record's `SendInvoke` has been reported.
    invoked: bool,
    /// Waiting for the pacing timer before sending the next record.
    pacing: bool,
    /// Records beyond this index are not sent (a workload told to stop).
    limit: usize,
}

impl Producer {
    pub fn new(config: Arc<ProducerConfig>) -> Self {
        Producer {
            sticky: StickyPartitioner::new(config.sticky_batch),
            rng: config.seed,
            config,
            metadata: None,
            next: 0,
            partition: None,
            in_flight: false,
            metadata_in_flight: false,
            backing_off: false,
            stale: false,
            bootstrap: Bootstrap::default(),
            invoked: false,
            pacing: false,
            limit: usize::MAX,
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
        self.next
    }

    /// Finish the record in hand, then send no more (a workload ending its send phase).
    pub fn stop(&mut self) {
        self.limit = self.next + usize::from(self.invoked);
    }

    /// Every record it will send is done.
    pub fn finished(&self) -> bool {
        self.next >= self.config.records.len().min(self.limit)
    }

    pub fn on_start(&mut self, cx: &mut Context) {
        match self.metadata {
            Some(_) => self.try_send(cx),
            None => self.request_metadata(cx),
        }
    }

    pub fn on_message(&mut self, cx: &mut Context, _from: NodeId, message: Message) {
        match message {
            Message::MetadataResponse(md) => {
                // Only the answer we wait for stops the request timer (it is shared with the
                // produce request), and only news clears staleness: a late answer to an earlier
                // request may be older than what we have.
                let newer = self
                    .metadata
                    .as_ref()
                    .is_none_or(|m| md.version > m.version);
                if newer {
                    self.metadata = Some(md);
                    self.stale = false;
                }
                if self.metadata_in_flight {
                    self.metadata_in_flight = false;
                    cx.cancel_timer(Timer::ClientRequestTimeout);
                    self.try_send(cx);
                }
            }
            Message::ProduceResponse(resp) => self.on_response(cx, resp),
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
                self.try_send(cx);
            }
            Timer::DeliveryTimeout => self.give_up(cx),
            Timer::ClientRequestTimeout => {
                // The outcome of a timed-out send is unknown; sending again may duplicate it.
                if self.metadata_in_flight {
                    self.bootstrap.advance(&self.config.bootstrap);
                }
                self.in_flight = false;
                self.metadata_in_flight = false;
                self.request_metadata(cx);
            }
            _ => {}
        }
    }

    fn on_response(&mut self, cx: &mut Context, resp: ProduceResponse) {
        if !self.in_flight || resp.correlation != self.next as u64 {
            return;
        }
        self.in_flight = false;
        cx.cancel_timer(Timer::ClientRequestTimeout);
        match resp.result {
            Ok(offset) => {
                if let Some(partition) = self.partition {
                    cx.observe(ClientEvent::SendOk { partition, offset });
                }
                self.finish_record(cx);
            }
            Err(e) if !e.is_retriable() => self.fail(cx, e),
            Err(_) => self.back_off(cx),
        }
    }

    /// The record was refused for what it is (e.g. `InvalidTopic`): every attempt of it met, or
    /// would have met, the same refusal, so none was appended and retrying cannot help. The send
    /// ends now as a definite failure rather than at the delivery timeout as an unknown one.
    fn fail(&mut self, cx: &mut Context, e: ErrorCode) {
        cx.observe(ClientEvent::SendFail {
            reason: e.to_string(),
        });
        self.finish_record(cx);
    }

    /// The current record is done (acknowledged, failed or given up): move on, after the pacing
    /// interval.
    fn finish_record(&mut self, cx: &mut Context) {
        self.next += 1;
        self.partition = None;
        self.invoked = false;
        cx.cancel_timer(Timer::DeliveryTimeout);
        if self.config.send_interval_ms.is_some() && !self.finished() {
            self.pacing = true;
            cx.set_timer(Timer::SendPace, self.config.send_interval_ms);
        } else {
            self.try_send(cx);
        }
    }

    /// The delivery timeout passed: an attempt may still land (it may be in a leader's log or in
    /// flight), so the outcome is unknown. A late answer carries an old correlation and is ignored.
    fn give_up(&mut self, cx: &mut Context) {
        if !self.invoked {
            return;
        }
        cx.observe(ClientEvent::SendInfo {
            reason: "delivery timeout".into(),
        });
        // The request timer belongs to whatever is in flight; a metadata request keeps it, or
        // it would wait for its answer forever.
        if self.in_flight {
            self.in_flight = false;
            cx.cancel_timer(Timer::ClientRequestTimeout);
        }
        self.finish_record(cx);
    }

    /// The send failed because our metadata is stale (or the cluster is not ready): wait, then ask
    /// for metadata newer than ours.
    fn back_off(&mut self, cx: &mut Context) {
        self.stale = true;
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

    fn try_send(&mut self, cx: &mut Context) {
        while !self.in_flight
            && !self.backing_off
            && !self.pacing
            && self.next < self.config.records.len().min(self.limit)
        {
            let Some(md) = &self.metadata else {
                return self.request_metadata(cx);
            };
            let count = md.partition_count(&self.config.topic);
            let mut record = self.config.records[self.next].clone();
            if !self.invoked {
                self.invoked = true;
                cx.observe(ClientEvent::SendInvoke {
                    topic: self.config.topic.clone(),
                    key: record.key.clone(),
                    value: record.value.clone(),
                });
                cx.set_timer(Timer::DeliveryTimeout, self.config.delivery_timeout_ms);
            }
            if count == 0 {
                return self.back_off(cx);
            }
            let partition = match self.partition {
                Some(p) => p,
                None => {
                    let random = next_random(&mut self.rng);
                    partition_for(record.key.as_deref(), count, &mut self.sticky, random)
                }
            };
            self.partition = Some(partition);
            let tp = TopicPartition::new(self.config.topic.clone(), partition);
            let Some((leader, epoch)) = md
                .partition(&tp)
                .and_then(|p| Some((p.leader?, p.leader_epoch)))
            else {
                return self.back_off(cx);
            };
            record.timestamp = cx.timestamp_ms();
            let req = ProduceRequest {
                tp,
                acks: self.config.acks,
                records: vec![record],
                leader_epoch: Some(epoch),
                correlation: self.next as u64,
                producer: self.config.idempotent.then_some(ProducerStamp {
                    producer: self.config.producer_id,
                    sequence: self.next as u64,
                }),
            };
            cx.send(leader, Message::Produce(req));
            if self.config.acks == Acks::None {
                cx.observe(ClientEvent::SendInfo {
                    reason: "acks=0".into(),
                });
                self.finish_record(cx);
                return;
            } else {
                self.in_flight = true;
                cx.set_timer(Timer::ClientRequestTimeout, self.config.request_timeout_ms);
            }
        }
    }
}

/// splitmix64: the producer's own deterministic randomness, seeded from its config.
fn next_random(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::Effect;
    use crate::protocol::{Acks, Record};

    fn producer() -> Producer {
        Producer::new(Arc::new(ProducerConfig {
            id: 7,
            bootstrap: vec![0],
            topic: "t".into(),
            acks: Acks::All,
            records: vec![Record::keyed("k", "v0"), Record::keyed("k", "v1")],
            sticky_batch: 1,
            seed: 0,
            request_timeout_ms: Some(1_000),
            retry_backoff_ms: Some(100),
            idempotent: true,
            producer_id: 0xfeed,
            send_interval_ms: None,
            delivery_timeout_ms: Some(5_000),
        }))
    }

    #[test]
    fn giving_up_on_a_record_keeps_the_metadata_request_timer() {
        let mut p = producer();
        let mut cx = Context::new(0);
        p.on_start(&mut cx);
        assert!(p.metadata_in_flight);
        // The first record is invoked only once metadata arrives; simulate one in hand.
        p.invoked = true;
        let mut cx = Context::new(5_000);
        p.on_timer(&mut cx, Timer::DeliveryTimeout);
        let cancelled = cx
            .take_effects()
            .into_iter()
            .any(|e| e == Effect::CancelTimer(Timer::ClientRequestTimeout));
        assert!(!cancelled, "the metadata request would wait forever");
        assert!(p.metadata_in_flight);
        // Its timeout still fires and the producer asks again.
        let mut cx = Context::new(6_000);
        p.on_timer(&mut cx, Timer::ClientRequestTimeout);
        let asked = cx.take_effects().into_iter().any(|e| {
            matches!(
                e,
                Effect::Send {
                    message: Message::Metadata { .. },
                    ..
                }
            )
        });
        assert!(asked);
    }

    #[test]
    fn an_old_metadata_answer_does_not_clear_staleness_or_the_timer() {
        let mut p = producer();
        p.metadata = Some(ClusterMetadata {
            version: 5,
            ..Default::default()
        });
        p.stale = true;
        let mut cx = Context::new(0);
        let old = ClusterMetadata {
            version: 3,
            ..Default::default()
        };
        p.on_message(&mut cx, 0, Message::MetadataResponse(old));
        assert!(p.stale);
        assert_eq!(p.metadata.as_ref().map(|m| m.version), Some(5));
        assert!(cx.take_effects().is_empty());
    }

    /// A producer of `producer()`'s records that holds metadata naming broker 0 leader of `t-0`.
    fn warmed_up() -> Producer {
        Producer::with_metadata(
            Arc::new(producer().config().clone()),
            ClusterMetadata {
                version: 1,
                brokers: vec![],
                partitions: vec![crate::protocol::PartitionState {
                    tp: TopicPartition::new("t", 0),
                    replicas: vec![0],
                    leader: Some(0),
                    leader_epoch: 1,
                    isr: vec![0],
                    partition_epoch: 1,
                }],
            },
        )
    }

    /// Broker 0 answers the first record's produce with `error`; returns the effects.
    fn first_record_refused(p: &mut Producer, error: ErrorCode) -> Vec<Effect> {
        let mut cx = Context::new(0);
        p.on_start(&mut cx);
        let mut cx = Context::new(10);
        let resp = ProduceResponse {
            tp: TopicPartition::new("t", 0),
            correlation: 0,
            result: Err(error),
        };
        p.on_message(&mut cx, 0, Message::ProduceResponse(resp));
        cx.take_effects()
    }

    #[test]
    fn a_non_retriable_error_fails_the_send_at_once() {
        let mut p = warmed_up();
        let effects = first_record_refused(&mut p, ErrorCode::InvalidTopic);
        // A definite failure, reported now (not an unknown outcome at the delivery timeout)...
        let outcomes: Vec<&ClientEvent> = effects
            .iter()
            .filter_map(|e| match e {
                Effect::Observe(
                    ev @ (ClientEvent::SendFail { .. } | ClientEvent::SendInfo { .. }),
                ) => Some(ev),
                _ => None,
            })
            .collect();
        assert_eq!(
            outcomes,
            [&ClientEvent::SendFail {
                reason: "InvalidTopic".into()
            }]
        );
        assert!(effects.contains(&Effect::CancelTimer(Timer::DeliveryTimeout)));
        // ...with no retry: no backoff, no metadata refresh, no second produce of record 0.
        let retried = effects.iter().any(|e| match e {
            Effect::SetTimer { timer, .. } => *timer == Timer::ClientBackoff,
            Effect::Send { message, .. } => match message {
                Message::Metadata { .. } => true,
                Message::Produce(r) => r.correlation == 0,
                _ => false,
            },
            _ => false,
        });
        assert!(!retried, "{effects:?}");
        // The producer moves on to the next record.
        assert_eq!(p.done(), 1);
        let next = effects.iter().any(|e| {
            matches!(e, Effect::Send { message: Message::Produce(r), .. } if r.correlation == 1)
        });
        assert!(next, "{effects:?}");
    }

    #[test]
    fn a_retriable_error_backs_off_and_keeps_the_send_open() {
        let mut p = warmed_up();
        // A broker that has just restarted does not know the partition yet: not a failure.
        let effects = first_record_refused(&mut p, ErrorCode::UnknownTopicOrPartition);
        assert!(!effects.iter().any(|e| matches!(e, Effect::Observe(_))));
        assert!(effects.iter().any(|e| matches!(
            e,
            Effect::SetTimer {
                timer: Timer::ClientBackoff,
                ..
            }
        )));
        assert_eq!(p.done(), 0);
    }

    #[test]
    fn stamps_carry_the_session_producer_id() {
        let mut p = warmed_up();
        let mut cx = Context::new(0);
        p.on_start(&mut cx);
        let stamp = cx.take_effects().into_iter().find_map(|e| match e {
            Effect::Send {
                message: Message::Produce(r),
                ..
            } => r.producer,
            _ => None,
        });
        assert_eq!(stamp.map(|s| (s.producer, s.sequence)), Some((0xfeed, 0)));
    }

    /// The timestamps the producer's sends carry, in order.
    fn stamped(effects: Vec<Effect>) -> Vec<i64> {
        effects
            .into_iter()
            .filter_map(|e| match e {
                Effect::Send {
                    message: Message::Produce(r),
                    ..
                } => Some(r.records[0].timestamp),
                _ => None,
            })
            .collect()
    }

    /// A record is stamped by the producer's wall clock at each try: a clock set back an hour
    /// between two tries stamps the retry an hour earlier (no panic, no wrap), and a reading
    /// past `i64::MAX` saturates (before, `now as i64` made it -1, a time before 1970).
    #[test]
    fn a_producer_handed_an_earlier_now_stamps_with_it() {
        let mut p = warmed_up();
        let mut cx = Context::new(7_200_000);
        p.on_start(&mut cx);
        assert_eq!(stamped(cx.take_effects()), vec![7_200_000]);
        // The send times out; the retry follows the fresh metadata an hour earlier by the clock.
        let mut cx = Context::new(7_200_000 - 3_600_000);
        p.on_timer(&mut cx, Timer::ClientRequestTimeout);
        let mut md = p.metadata.clone().expect("warmed up");
        md.version += 1;
        p.on_message(&mut cx, 0, Message::MetadataResponse(md));
        assert_eq!(stamped(cx.take_effects()), vec![3_600_000]);
        let mut p = warmed_up();
        let mut cx = Context::new(u64::MAX);
        p.on_start(&mut cx);
        assert_eq!(stamped(cx.take_effects()), vec![i64::MAX]);
    }
}
