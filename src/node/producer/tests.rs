//! Producer behaviour pinned down on one node: batching, pipelining, in-order retries, epochs.

use super::*;
use crate::node::{BugSet, Effect};
use crate::protocol::{Acks, PartitionState, Record};

fn config(records: usize, max_in_flight: usize, batch_size_bytes: u64) -> ProducerConfig {
    ProducerConfig {
        id: 7,
        bootstrap: vec![0],
        topic: "t".into(),
        acks: Acks::All,
        records: (0..records)
            .map(|i| Record::keyed("k", format!("v{i}")))
            .collect(),
        sticky_batch: 1,
        seed: 0,
        request_timeout_ms: Some(1_000),
        retry_backoff_ms: Some(100),
        idempotent: true,
        producer_id: Some(0xfeed),
        send_interval_ms: None,
        delivery_timeout_ms: Some(5_000),
        max_in_flight,
        batch_size_bytes,
        linger_ms: None,
        metadata_max_age_ms: None,
        bugs: Default::default(),
    }
}

/// Metadata naming broker `leader` leader of `t-0` (version `version`).
fn metadata(version: u64, leader: u32) -> ClusterMetadata {
    ClusterMetadata {
        version,
        brokers: vec![],
        partitions: vec![PartitionState {
            tp: TopicPartition::new("t", 0),
            replicas: vec![0, 1],
            leader: Some(leader),
            leader_epoch: version as u32,
            isr: vec![0, 1],
            partition_epoch: 1,
        }],
    }
}

fn warmed_up(config: ProducerConfig) -> Producer {
    Producer::with_metadata(Arc::new(config), metadata(1, 0))
}

/// One batch sent, and the correlation of the request that carried it.
#[derive(Clone, Debug)]
struct Sent {
    correlation: u64,
    batch: PartitionBatch,
}

impl std::ops::Deref for Sent {
    type Target = PartitionBatch;
    fn deref(&self) -> &PartitionBatch {
        &self.batch
    }
}

/// The batches sent among the effects, request by request: (broker, batch).
fn produces(effects: &[Effect]) -> Vec<(u32, Sent)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Send {
                to,
                message: Message::Produce(r),
            } => Some((*to, r)),
            _ => None,
        })
        .flat_map(|(to, r)| {
            r.batches.iter().map(move |b| {
                let sent = Sent {
                    correlation: r.correlation,
                    batch: b.clone(),
                };
                (to, sent)
            })
        })
        .collect()
}

/// The outcomes reported, in order.
fn outcomes(effects: &[Effect]) -> Vec<ClientEvent> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Observe(
                ev @ (ClientEvent::SendOk { .. }
                | ClientEvent::SendFail { .. }
                | ClientEvent::SendInfo { .. }),
            ) => Some(ev.clone()),
            _ => None,
        })
        .collect()
}

fn answer(p: &mut Producer, from: u32, sent: &Sent, result: Result<u64, ErrorCode>) -> Vec<Effect> {
    let mut cx = Context::new(10);
    let resp = ProduceResponse {
        correlation: sent.correlation,
        batches: vec![crate::protocol::BatchResult {
            tp: sent.tp.clone(),
            batch: sent.batch.batch,
            result,
        }],
    };
    p.on_message(&mut cx, from, Message::ProduceResponse(resp));
    cx.take_effects()
}

fn start(p: &mut Producer) -> Vec<Effect> {
    let mut cx = Context::new(0);
    p.on_start(&mut cx);
    cx.take_effects()
}

#[test]
fn records_go_in_batches_with_several_requests_in_flight() {
    // Records of 10 bytes, batches of 20 bytes: two records per batch; at most 3 in flight.
    let mut p = warmed_up(config(10, 3, 20));
    let sent = produces(&start(&mut p));
    assert_eq!(sent.len(), 3, "{sent:?}");
    let firsts: Vec<u64> = sent
        .iter()
        .map(|(_, r)| r.producer.expect("idempotent").sequence)
        .collect();
    assert_eq!(firsts, [0, 2, 4], "per-partition sequences, one per record");
    assert!(sent.iter().all(|(to, r)| *to == 0 && r.records.len() == 2));
    // An answer frees a slot: the next batch goes.
    let effects = answer(&mut p, 0, &sent[0].1, Ok(0));
    assert_eq!(
        outcomes(&effects),
        [
            ClientEvent::SendOk {
                id: 0,
                partition: 0,
                offset: 0
            },
            ClientEvent::SendOk {
                id: 1,
                partition: 0,
                offset: 1
            }
        ]
    );
    let next = produces(&effects);
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].1.producer.map(|s| s.sequence), Some(6));
}

#[test]
fn a_retriable_error_resends_every_batch_of_the_partition_in_order() {
    let mut p = warmed_up(config(6, 3, 20));
    let sent = produces(&start(&mut p));
    assert_eq!(sent.len(), 3);
    // The second batch fails; the first and third are still out.
    let effects = answer(&mut p, 0, &sent[1].1, Err(ErrorCode::NotLeaderOrFollower));
    assert!(outcomes(&effects).is_empty());
    assert!(produces(&effects).is_empty(), "it backs off first");
    // The late answers to the abandoned attempts are ignored.
    assert!(outcomes(&answer(&mut p, 0, &sent[0].1, Ok(0))).is_empty());
    // After the backoff, fresh metadata names broker 1; all three go again, in order.
    let mut cx = Context::new(200);
    p.on_timer(&mut cx, Timer::ClientBackoff);
    p.on_message(&mut cx, 0, Message::MetadataResponse(metadata(2, 1)));
    let resent = produces(&cx.take_effects());
    // Broker 0 still owes the third batch's first answer; the batches go to broker 1 anyway (a
    // batch that overtook one still on its way would be refused there as out of sequence).
    let firsts: Vec<(u32, u64)> = resent
        .iter()
        .map(|(to, r)| (*to, r.producer.expect("idempotent").sequence))
        .collect();
    // Broker 0's late answer to the third batch's first attempt is not taken for the new one.
    assert!(outcomes(&answer(
        &mut p,
        0,
        &sent[2].1,
        Err(ErrorCode::NotLeaderOrFollower)
    ))
    .is_empty());
    assert!(outcomes(&answer(&mut p, 1, &resent[0].1, Ok(7))).len() == 2);
    assert_eq!(firsts, [(1, 0), (1, 2), (1, 4)]);
}

#[test]
fn giving_up_on_a_batch_starts_a_new_epoch_once_nothing_is_in_flight() {
    let mut p = warmed_up(config(4, 1, 20));
    let sent = produces(&start(&mut p));
    assert_eq!(sent.len(), 1);
    // The first batch passes the delivery timeout while in flight: its outcome is unknown.
    let mut cx = Context::new(5_000);
    p.on_timer(&mut cx, Timer::DeliveryTimeout(0));
    let effects = cx.take_effects();
    assert!(outcomes(&effects)
        .iter()
        .all(|e| matches!(e, ClientEvent::SendInfo { .. })));
    assert_eq!(outcomes(&effects).len(), 2);
    // The next batch waits until the request is answered (or times out)...
    assert!(produces(&effects).is_empty());
    let effects = answer(&mut p, 0, &sent[0].1, Err(ErrorCode::NotLeaderOrFollower));
    assert!(outcomes(&effects).is_empty(), "already given up");
    // ...then goes in a new epoch, from sequence 0.
    let next = produces(&effects);
    let stamp = next[0].1.producer.expect("idempotent");
    assert_eq!((stamp.epoch, stamp.sequence), (1, 0));
}

/// While an epoch bump waits for the requests in flight, nothing more is sent: a batch sent in
/// the old epoch behind the gap would be refused out of sequence as well, and with requests
/// always in flight the new epoch would never start.
#[test]
fn nothing_is_sent_while_an_epoch_bump_waits_for_the_requests_in_flight() {
    let mut p = warmed_up(config(10, 3, 20));
    let sent = produces(&start(&mut p));
    assert_eq!(sent.len(), 3);
    let effects = answer(&mut p, 0, &sent[0].1, Err(ErrorCode::OutOfOrderSequence));
    outcomes_all(&effects, |e| matches!(e, ClientEvent::SendFail { .. }));
    assert!(produces(&effects).is_empty(), "sent in the old epoch");
    let effects = answer(&mut p, 0, &sent[1].1, Ok(2));
    assert!(
        produces(&effects).is_empty(),
        "sent with a request in flight"
    );
    let effects = answer(&mut p, 0, &sent[2].1, Ok(4));
    let next = produces(&effects);
    let stamp = next[0].1.producer.expect("idempotent");
    assert_eq!((stamp.epoch, stamp.sequence), (1, 0), "{next:?}");
}

#[test]
fn an_out_of_order_answer_is_a_definite_failure_only_on_a_first_attempt() {
    // First attempt refused: nothing of it was appended.
    let mut p = warmed_up(config(2, 1, 20));
    let sent = produces(&start(&mut p));
    let effects = answer(&mut p, 0, &sent[0].1, Err(ErrorCode::OutOfOrderSequence));
    outcomes_all(&effects, |e| matches!(e, ClientEvent::SendFail { .. }));
    assert!(reached_gap(&effects), "{effects:?}");
    // Refused on a retry: an earlier attempt may have landed, so the outcome is unknown.
    let mut p = warmed_up(config(2, 1, 20));
    let sent = produces(&start(&mut p));
    let mut cx = Context::new(1_000);
    p.on_timer(&mut cx, Timer::ProduceTimeout(sent[0].1.correlation));
    p.on_timer(&mut cx, Timer::ClientBackoff);
    p.on_message(&mut cx, 0, Message::MetadataResponse(metadata(2, 0)));
    let retry = produces(&cx.take_effects());
    assert_eq!(retry.len(), 1);
    let effects = answer(&mut p, 0, &retry[0].1, Err(ErrorCode::OutOfOrderSequence));
    outcomes_all(&effects, |e| matches!(e, ClientEvent::SendInfo { .. }));
    assert!(reached_gap(&effects), "{effects:?}");
}

/// Asserts that some outcome was reported, and every one is of the kind `is_kind` accepts.
fn outcomes_all(effects: &[Effect], is_kind: fn(&ClientEvent) -> bool) {
    let got = outcomes(effects);
    assert!(!got.is_empty() && got.iter().all(is_kind), "{got:?}");
}

/// Whether the producer reported a gap nothing in flight can fill (`sequence-gap-final`).
fn reached_gap(effects: &[Effect]) -> bool {
    effects
        .iter()
        .any(|e| matches!(e, Effect::Reached(Situation::SequenceGapFinal)))
}

#[test]
fn out_of_order_behind_an_unanswered_batch_is_retried() {
    let mut p = warmed_up(config(4, 2, 20));
    let sent = produces(&start(&mut p));
    assert_eq!(sent.len(), 2);
    // The second batch arrives first and is refused for the gap the first will fill.
    let effects = answer(&mut p, 0, &sent[1].1, Err(ErrorCode::OutOfOrderSequence));
    assert!(outcomes(&effects).is_empty(), "{effects:?}");
    assert!(!reached_gap(&effects), "{effects:?}");
    assert_eq!(p.done(), 0);
}

#[test]
fn the_retry_out_of_order_switch_renumbers_the_failed_batch_behind_the_others() {
    let mut c = config(6, 3, 20);
    c.bugs = BugSet::none().with(Bug::RetryOutOfOrder);
    let mut p = warmed_up(c);
    let sent = produces(&start(&mut p));
    answer(&mut p, 0, &sent[0].1, Err(ErrorCode::NotLeaderOrFollower));
    let mut cx = Context::new(1_200);
    p.on_timer(&mut cx, Timer::ProduceTimeout(sent[1].1.correlation));
    p.on_timer(&mut cx, Timer::ProduceTimeout(sent[2].1.correlation));
    p.on_timer(&mut cx, Timer::ClientBackoff);
    p.on_message(&mut cx, 0, Message::MetadataResponse(metadata(2, 0)));
    let resent = produces(&cx.take_effects());
    let values: Vec<(u64, String)> = resent
        .iter()
        .map(|(_, r)| {
            (
                r.producer.expect("idempotent").sequence,
                String::from_utf8_lossy(r.records[0].value.as_deref().expect("a value"))
                    .into_owned(),
            )
        })
        .collect();
    // v0's batch failed: it now goes last, numbered after the others.
    assert_eq!(
        values,
        [
            (0, "v2".to_string()),
            (2, "v4".to_string()),
            (4, "v0".to_string())
        ]
    );
}

#[test]
fn records_waiting_in_an_open_batch_for_a_leaderless_partition_ask_for_metadata() {
    // Lingering keeps the records in the open batch; the partition has no leader.
    let mut cfg = config(3, 1, 1_000);
    cfg.linger_ms = Some(50);
    let mut md = metadata(1, 0);
    md.partitions[0].leader = None;
    let mut p = Producer::with_metadata(Arc::new(cfg), md);
    let effects = start(&mut p);
    assert!(produces(&effects).is_empty());
    assert!(p
        .queues
        .values()
        .all(|q| q.batches.is_empty() && !q.open.is_empty()));
    // It backs off and then asks for newer metadata, rather than wait for a leader forever.
    assert!(p.backing_off && p.stale, "no refresh scheduled");
    let mut cx = Context::new(100);
    p.on_timer(&mut cx, Timer::ClientBackoff);
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

/// A metadata request that times out closes its connection before the next broker is asked:
/// a connection stalled behind a lost segment would otherwise hold whatever is sent there next
/// (the produce requests, once that broker leads a partition) for another whole timeout.
#[test]
fn a_metadata_request_timeout_closes_that_broker_s_connection() {
    let mut c = config(2, 1, 20);
    c.bootstrap = vec![0, 1];
    let mut p = Producer::new(Arc::new(c));
    start(&mut p);
    assert!(p.metadata_in_flight);
    let mut cx = Context::new(1_000);
    p.on_timer(&mut cx, Timer::ClientRequestTimeout);
    let effects = cx.take_effects();
    assert!(effects.contains(&Effect::Disconnect(0)), "{effects:?}");
    let asked = crate::node::effects::sent_metadata_to(&effects);
    assert_eq!(asked, Some(1), "{effects:?}");
}

/// The connection a metadata timeout closes may carry produce requests too (the bootstrap
/// broker leads a partition): they fail with it and are sent again at once. Left waiting for
/// their own timeout, an answer that could no longer arrive held the partition's
/// acknowledgements back for seconds (the simulator's `slow`, seed 502590891).
#[test]
fn a_metadata_timeout_fails_the_produce_requests_on_the_connection_it_closes() {
    let mut c = config(2, 1, 1);
    c.bootstrap = vec![0, 1];
    let mut p = Producer::with_metadata(Arc::new(c), metadata(1, 0));
    let sent = produces(&start(&mut p));
    assert_eq!(sent.len(), 1, "{sent:?}");
    let (broker, first) = &sent[0];
    assert_eq!(*broker, 0);
    let mut cx = Context::new(100);
    p.request_metadata(&mut cx);
    assert!(p.metadata_in_flight);
    let mut cx = Context::new(1_000);
    p.on_timer(&mut cx, Timer::ClientRequestTimeout);
    let effects = cx.take_effects();
    assert!(effects.contains(&Effect::Disconnect(0)), "{effects:?}");
    assert!(
        effects.contains(&Effect::CancelTimer(Timer::ProduceTimeout(
            first.correlation
        ))),
        "{effects:?}"
    );
    // Failed: nothing is in flight, the batch waits for the retry backoff (not the request
    // timeout), and a late answer to the failed request changes nothing.
    assert!(p.in_flight.is_empty());
    assert!(
        effects.iter().any(|e| matches!(
            e,
            Effect::SetTimer {
                timer: Timer::ClientBackoff,
                ..
            }
        )),
        "{effects:?}"
    );
    assert!(outcomes(&answer(&mut p, 0, first, Ok(0))).is_empty());
}

/// The other way round: a produce timeout closes the connection to the leader, which is also
/// the bootstrap broker, and the metadata request in flight on it is asked again at once on a
/// new connection, not left to its own timeout (the batch waits for that metadata).
#[test]
fn a_produce_timeout_asks_again_for_the_metadata_in_flight_on_that_connection() {
    let mut p = Producer::with_metadata(Arc::new(config(2, 1, 1)), metadata(1, 0));
    let sent = produces(&start(&mut p));
    let (_, first) = &sent[0];
    let mut cx = Context::new(100);
    p.request_metadata(&mut cx);
    let mut cx = Context::new(1_000);
    p.on_timer(&mut cx, Timer::ProduceTimeout(first.correlation));
    let effects = cx.take_effects();
    assert!(effects.contains(&Effect::Disconnect(0)), "{effects:?}");
    let asked = crate::node::effects::sent_metadata_to(&effects);
    assert_eq!(asked, Some(0), "{effects:?}");
    assert!(p.metadata_in_flight);
    // Its timer starts again with the new request.
    let rearmed = effects.iter().any(|e| {
        matches!(
            e,
            Effect::SetTimer {
                timer: Timer::ClientRequestTimeout,
                ..
            }
        )
    });
    assert!(rearmed, "{effects:?}");
}

/// A metadata timeout closes the connection an InitProducerId request is waiting on too: it is
/// asked again, of the next broker, at once.
#[test]
fn a_metadata_timeout_asks_again_for_the_producer_id_in_flight_on_that_connection() {
    let mut c = config(1, 1, 1);
    c.bootstrap = vec![0, 1];
    c.producer_id = None;
    let mut p = Producer::with_metadata(Arc::new(c), metadata(1, 0));
    let effects = start(&mut p);
    let asked_id = |effects: &[Effect]| {
        effects.iter().find_map(|e| match e {
            Effect::Send {
                to,
                message: Message::InitProducerId { .. },
            } => Some(*to),
            _ => None,
        })
    };
    assert_eq!(asked_id(&effects), Some(0), "{effects:?}");
    let mut cx = Context::new(100);
    p.request_metadata(&mut cx);
    let mut cx = Context::new(1_000);
    p.on_timer(&mut cx, Timer::ClientRequestTimeout);
    let effects = cx.take_effects();
    assert!(effects.contains(&Effect::Disconnect(0)), "{effects:?}");
    assert_eq!(asked_id(&effects), Some(1), "{effects:?}");
    let asked = crate::node::effects::sent_metadata_to(&effects);
    assert_eq!(asked, Some(1), "{effects:?}");
}

#[test]
fn giving_up_keeps_the_metadata_request_timer() {
    let mut p = Producer::new(Arc::new(config(2, 1, 20)));
    let effects = start(&mut p);
    assert!(p.metadata_in_flight);
    assert!(produces(&effects).is_empty());
    // No batch exists yet: a stray delivery timeout changes nothing.
    let mut cx = Context::new(5_000);
    p.on_timer(&mut cx, Timer::DeliveryTimeout(0));
    let cancelled = cx
        .take_effects()
        .into_iter()
        .any(|e| e == Effect::CancelTimer(Timer::ClientRequestTimeout));
    assert!(!cancelled, "the metadata request would wait forever");
    assert!(p.metadata_in_flight);
}

#[test]
fn an_old_metadata_answer_does_not_clear_staleness_or_the_timer() {
    let mut p = Producer::new(Arc::new(config(2, 1, 20)));
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

#[test]
fn a_non_retriable_error_fails_the_batch_at_once() {
    let mut p = warmed_up(config(2, 1, 10));
    let sent = produces(&start(&mut p));
    let effects = answer(&mut p, 0, &sent[0].1, Err(ErrorCode::InvalidTopic));
    assert_eq!(
        outcomes(&effects),
        [ClientEvent::SendFail {
            id: 0,
            reason: "InvalidTopic".into()
        }]
    );
    assert!(effects.contains(&Effect::CancelTimer(Timer::DeliveryTimeout(0))));
    assert_eq!(p.done(), 1);
}

#[test]
fn a_retriable_error_backs_off_and_keeps_the_send_open() {
    let mut p = warmed_up(config(2, 1, 10));
    let sent = produces(&start(&mut p));
    // A broker that has just restarted does not know the partition yet: not a failure.
    let effects = answer(
        &mut p,
        0,
        &sent[0].1,
        Err(ErrorCode::UnknownTopicOrPartition),
    );
    assert!(outcomes(&effects).is_empty());
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
    let mut p = warmed_up(config(1, 1, 10));
    let sent = produces(&start(&mut p));
    let stamp = sent[0].1.producer.expect("idempotent");
    assert_eq!(
        (stamp.producer, stamp.epoch, stamp.sequence),
        (0xfeed, 0, 0)
    );
}

/// A record is stamped by the producer's wall clock at each try: a clock set back an hour
/// between two tries stamps the retry an hour earlier (no panic, no wrap), and a reading
/// past `i64::MAX` saturates (before, `now as i64` made it -1, a time before 1970).
#[test]
fn a_producer_handed_an_earlier_now_stamps_with_it() {
    let mut p = warmed_up(config(1, 1, 10));
    let mut cx = Context::new(7_200_000);
    p.on_start(&mut cx);
    let sent = produces(&cx.take_effects());
    assert_eq!(sent[0].1.records[0].timestamp, 7_200_000);
    // The send times out; the retry follows the fresh metadata an hour earlier by the clock.
    let mut cx = Context::new(7_200_000 - 3_600_000);
    p.on_timer(&mut cx, Timer::ProduceTimeout(sent[0].1.correlation));
    p.on_timer(&mut cx, Timer::ClientBackoff);
    p.on_message(&mut cx, 0, Message::MetadataResponse(metadata(2, 0)));
    let retry = produces(&cx.take_effects());
    assert_eq!(retry[0].1.records[0].timestamp, 3_600_000);
    let mut p = warmed_up(config(1, 1, 10));
    let mut cx = Context::new(u64::MAX);
    p.on_start(&mut cx);
    assert_eq!(
        produces(&cx.take_effects())[0].1.records[0].timestamp,
        i64::MAX
    );
}

/// Two partitions led by one broker: one request carries a batch of each, and it stays in
/// flight (holding the broker's only slot) until both batches are answered.
#[test]
fn one_request_carries_a_batch_of_each_partition_the_broker_leads() {
    let mut md = metadata(1, 0);
    let mut second = md.partitions[0].clone();
    second.tp = TopicPartition::new("t", 1);
    md.partitions.push(second);
    // Two keys of different partitions, alternating.
    let partition = |k: &str| {
        let mut sticky = StickyPartitioner::new(1);
        partition_for(Some(k.as_bytes()), 2, &mut sticky, 0)
    };
    let other = (1..)
        .map(|i| format!("k{i}"))
        .find(|k| partition(k) != partition("k0"))
        .expect("some key lands in the other partition");
    let keys = ["k0".to_string(), other];
    let mut c = config(4, 1, 1);
    c.records = (0..4)
        .map(|i| Record::keyed(keys[i % 2].as_str(), format!("v{i}")))
        .collect();
    let mut p = Producer::with_metadata(Arc::new(c), md);
    let sent = produces(&start(&mut p));
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert_eq!(sent[0].1.correlation, sent[1].1.correlation, "one request");
    assert_ne!(sent[0].1.tp, sent[1].1.tp);
    // The first partition's answer alone frees nothing.
    let effects = answer(&mut p, 0, &sent[0].1, Ok(0));
    assert_eq!(outcomes(&effects).len(), 1);
    assert!(
        produces(&effects).is_empty(),
        "the request is still in flight"
    );
    // The second's completes the request: the next one goes, again with both partitions.
    let effects = answer(&mut p, 0, &sent[1].1, Ok(0));
    assert_eq!(outcomes(&effects).len(), 1);
    let next = produces(&effects);
    assert_eq!(next.len(), 2, "{next:?}");
    assert!(next
        .iter()
        .all(|(_, b)| b.producer.map(|s| s.sequence) == Some(1)));
}

#[test]
fn a_timed_out_request_closes_its_connection_and_fails_the_others_on_it() {
    // Partition 0 led by broker 0, partition 1 by broker 1; two requests in flight to each.
    let mut md = metadata(1, 0);
    let mut second = md.partitions[0].clone();
    second.tp = TopicPartition::new("t", 1);
    second.leader = Some(1);
    md.partitions.push(second);
    let mut c = config(8, 2, 1);
    c.records = (0..8)
        .map(|i| Record::keyed(format!("k{i}"), format!("v{i}")))
        .collect();
    let mut p = Producer::with_metadata(Arc::new(c), md);
    let sent = produces(&start(&mut p));
    let to = |b: u32| -> Vec<&Sent> {
        sent.iter()
            .filter(|(t, _)| *t == b)
            .map(|(_, s)| s)
            .collect()
    };
    let (at0, at1) = (to(0), to(1));
    assert_eq!((at0.len(), at1.len()), (2, 2), "{sent:?}");
    let mut cx = Context::new(1_000);
    p.on_timer(&mut cx, Timer::ProduceTimeout(at0[0].correlation));
    let effects = cx.take_effects();
    assert!(effects.contains(&Effect::Disconnect(0)), "{effects:?}");
    assert!(!effects.contains(&Effect::Disconnect(1)), "{effects:?}");
    // The other request on the closed connection failed with it: its timer is cancelled and a
    // late answer to it changes nothing (its batch waits to be sent again).
    assert!(
        effects.contains(&Effect::CancelTimer(Timer::ProduceTimeout(
            at0[1].correlation
        ))),
        "{effects:?}"
    );
    assert!(outcomes(&answer(&mut p, 0, at0[1], Ok(1))).is_empty());
    // Broker 1's requests are untouched.
    assert_eq!(outcomes(&answer(&mut p, 1, at1[0], Ok(0))).len(), 1);
}

/// A producer of a two-partition topic led by broker 0, sending 3 MiB records: four to each
/// partition, all of partition 0's first.
fn large_records_producer(max_in_flight: usize) -> Producer {
    use crate::protocol::partitioner::default_partition;
    // Keys of both partitions, found by the partitioner itself.
    let key_of = |p: u32| {
        (0..)
            .map(|i| format!("k{i}"))
            .find(|k| default_partition(k.as_bytes(), 2) == p)
            .expect("a key of each partition")
    };
    let (k0, k1) = (key_of(0), key_of(1));
    let value = "x".repeat(3 << 20);
    let mut config = config(0, max_in_flight, u64::MAX);
    config.records = (0..8)
        .map(|i| Record::keyed(if i < 4 { k0.as_str() } else { k1.as_str() }, value.clone()))
        .collect();
    let mut md = metadata(1, 0);
    let mut second = md.partitions[0].clone();
    second.tp = TopicPartition::new("t", 1);
    md.partitions.push(second);
    Producer::with_metadata(Arc::new(config), md)
}

/// Each request's batches, as (partition, records); asserts that none carries more than one
/// append may take.
fn requests(effects: &[Effect]) -> Vec<Vec<(u32, usize)>> {
    use crate::protocol::entry_block::{append_bound, MAX_APPEND_BYTES};
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Send {
                message: Message::Produce(r),
                ..
            } => Some(r),
            _ => None,
        })
        .map(|r| {
            let bound: u64 = r.batches.iter().map(|b| append_bound(&b.records)).sum();
            assert!(bound <= MAX_APPEND_BYTES, "a request of {bound} bytes");
            r.batches
                .iter()
                .map(|b| (b.tp.partition, b.records.len()))
                .collect()
        })
        .collect()
}

/// Large records: a batch closes before its records would take more than one append may (the
/// leader refuses such a batch whole), whatever `batch.size` says, and a request carries batches
/// up to that much together (a larger request frame would be past the frame limit, refused by
/// the broker, and sent again for ever). Partitions left out go first in the next request.
#[test]
fn large_records_are_split_into_batches_and_requests_one_append_can_take() {
    let mut p = large_records_producer(5);
    // Two records of 3 MiB per batch (a third would pass 8 MiB), one batch per request, and
    // every record sent, in order per partition.
    assert_eq!(
        requests(&start(&mut p)),
        [vec![(0, 2)], vec![(1, 2)], vec![(0, 2)], vec![(1, 2)],],
    );
}

/// The same with one request in flight: partition 1, left out of the first request, goes first
/// in the next one, though partition 0 has a batch waiting too.
#[test]
fn a_partition_left_out_of_a_full_request_goes_first_in_the_next() {
    let mut p = large_records_producer(1);
    let effects = start(&mut p);
    assert_eq!(requests(&effects), [vec![(0, 2)]]);
    let mut order = vec![0];
    let mut last = produces(&effects);
    for _ in 0..3 {
        let effects = answer(&mut p, 0, &last[0].1, Ok(0));
        last = produces(&effects);
        assert_eq!(last.len(), 1, "{:?}", requests(&effects));
        order.push(last[0].1.tp.partition);
    }
    assert_eq!(order, [0, 1, 0, 1]);
}

/// A record no leader would take (more than one append may) fails at once, without being sent;
/// the records around it go as usual.
#[test]
fn a_record_larger_than_one_append_fails_without_being_sent() {
    let mut config = config(3, 5, 20);
    config.records[1] = Record::keyed("k", "x".repeat(9 << 20));
    let mut p = warmed_up(config);
    let effects = start(&mut p);
    assert_eq!(
        outcomes(&effects),
        [ClientEvent::SendFail {
            id: 1,
            reason: ErrorCode::MessageTooLarge.to_string()
        }]
    );
    let sent: Vec<usize> = produces(&effects)
        .iter()
        .map(|(_, b)| b.records.len())
        .collect();
    assert_eq!(sent, [2], "records 0 and 2 in one batch");
}

/// A stopped producer hands over nothing more; `resume(n)` hands over its next `n` records, at
/// its pace, and it has finished once they are done.
#[test]
fn a_stopped_producer_resumes_for_as_many_records_as_it_is_handed() {
    let mut c = config(6, 1, 1);
    c.send_interval_ms = Some(10);
    let mut p = warmed_up(c);
    let first = produces(&start(&mut p));
    assert_eq!(first.len(), 1, "one record per pacing interval");
    p.stop();
    answer(&mut p, 0, &first[0].1, Ok(0));
    let mut cx = Context::new(20);
    p.on_timer(&mut cx, Timer::SendPace);
    assert!(produces(&cx.take_effects()).is_empty(), "stopped");
    assert!(p.finished());
    let mut cx = Context::new(30);
    p.resume(&mut cx, 2);
    let second = produces(&cx.take_effects());
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].1.records[0].value.as_deref(), Some(&b"v1"[..]));
    assert!(!p.finished());
    answer(&mut p, 0, &second[0].1, Ok(1));
    let mut cx = Context::new(40);
    p.on_timer(&mut cx, Timer::SendPace);
    let third = produces(&cx.take_effects());
    assert_eq!(third.len(), 1);
    answer(&mut p, 0, &third[0].1, Ok(2));
    let mut cx = Context::new(50);
    p.on_timer(&mut cx, Timer::SendPace);
    assert!(
        produces(&cx.take_effects()).is_empty(),
        "two records, no more"
    );
    assert!(p.finished());
}

/// A refresh after an error is answered with the version the producer holds (the broker
/// waited for a newer one and has none): the producer sends again, and is no longer stale,
/// so its periodic refreshes ask for any version instead of one nobody has — which the
/// broker parks, holding every send of the producer meanwhile.
#[test]
fn an_answer_to_the_refresh_in_flight_ends_staleness_even_with_nothing_newer() {
    let mut p = warmed_up(config(2, 1, 10));
    let sent = produces(&start(&mut p));
    answer(&mut p, 0, &sent[0].1, Err(ErrorCode::NotLeaderOrFollower));
    assert!(p.stale);
    let metadata_asked = |effects: Vec<Effect>| {
        effects.into_iter().find_map(|e| match e {
            Effect::Send {
                message: Message::Metadata { min_version },
                ..
            } => Some(min_version),
            _ => None,
        })
    };
    let mut cx = Context::new(200);
    p.on_timer(&mut cx, Timer::ClientBackoff);
    assert_eq!(
        metadata_asked(cx.take_effects()),
        Some(2),
        "a newer version"
    );
    let mut cx = Context::new(700);
    p.on_message(&mut cx, 0, Message::MetadataResponse(metadata(1, 0)));
    assert!(!p.stale && !p.metadata_in_flight);
    assert_eq!(
        produces(&cx.take_effects()).len(),
        1,
        "the batch goes again"
    );
    let mut cx = Context::new(5_000);
    p.on_timer(&mut cx, Timer::MetadataMaxAge);
    assert_eq!(metadata_asked(cx.take_effects()), Some(1), "any version");
}

/// A batch refused by a broker that metadata newer than the request's routing already names
/// as not the leader: the producer does not take what it holds for stale, so the refresh
/// after the backoff asks for any version, not for one newer still that no broker has.
#[test]
fn a_refusal_of_a_request_routed_by_older_metadata_leaves_the_newer_one_trusted() {
    let mut p = warmed_up(config(2, 1, 10));
    let sent = produces(&start(&mut p));
    let mut cx = Context::new(5);
    p.on_message(&mut cx, 0, Message::MetadataResponse(metadata(2, 1)));
    answer(&mut p, 0, &sent[0].1, Err(ErrorCode::NotLeaderOrFollower));
    assert!(!p.stale, "the metadata came after the request was routed");
    // The same refusal of a request routed by the metadata held makes it stale.
    let mut p = warmed_up(config(2, 1, 10));
    let sent = produces(&start(&mut p));
    answer(&mut p, 0, &sent[0].1, Err(ErrorCode::NotLeaderOrFollower));
    assert!(p.stale);
}

/// An epoch bump gives up the batches sent in the old epoch and not answered; batches
/// acknowledged behind one of them (held so that a partition's acknowledgements come in order)
/// are reported then, before the rest are numbered again, so the first batch sent in the new
/// epoch starts at sequence 0. Numbered with the acknowledged ones still queued, it started
/// after them, and the leader refused it as out of sequence: a definite failure nothing had
/// caused, and acknowledged records reported only later.
#[test]
fn an_epoch_bump_reports_the_held_acknowledgements_before_numbering_again() {
    // Six batches of two records, three in flight.
    let mut p = warmed_up(config(12, 3, 20));
    let sent = produces(&start(&mut p));
    assert_eq!(sent.len(), 3);
    // The second and third are acknowledged, held behind the first; each answer lets one more
    // batch go.
    let mut more = produces(&answer(&mut p, 0, &sent[1].1, Ok(2)));
    more.extend(produces(&answer(&mut p, 0, &sent[2].1, Ok(4))));
    assert_eq!(more.len(), 2);
    // The first is refused for a reason worth a retry: every batch waits to be sent again,
    // and the two in flight are answered too late to count.
    let refused = answer(&mut p, 0, &sent[0].1, Err(ErrorCode::NotLeaderOrFollower));
    assert!(outcomes(&refused).is_empty(), "{refused:?}");
    for (_, m) in &more {
        answer(&mut p, 0, m, Ok(6));
    }
    // A batch of another partition gives up (a delivery timeout): the epoch is bumped now that
    // nothing is in flight.
    p.epoch_bump_pending = true;
    let mut cx = Context::new(2_000);
    p.on_timer(&mut cx, Timer::ClientBackoff);
    p.on_message(&mut cx, 0, Message::MetadataResponse(metadata(2, 0)));
    let effects = cx.take_effects();
    let reported = outcomes(&effects);
    let oks = reported
        .iter()
        .filter(|e| matches!(e, ClientEvent::SendOk { .. }))
        .count();
    assert_eq!(oks, 4, "the held acknowledgements: {reported:?}");
    let next = produces(&effects);
    let stamp = next[0].1.producer.expect("idempotent");
    assert_eq!((stamp.epoch, stamp.sequence), (1, 0), "{next:?}");
}
