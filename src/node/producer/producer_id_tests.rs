//! The producer's start: an idempotent producer without a preset id asks a broker for one
//! (InitProducerId) and sends nothing before it has it.

use super::*;
use crate::node::Effect;
use crate::protocol::{PartitionState, Record};

/// Two records, one per batch, to `t-0` led by broker 0; bootstrap brokers 0 and 1.
fn producer(producer_id: Option<u64>) -> Producer {
    let config = ProducerConfig {
        id: 200,
        bootstrap: vec![0, 1],
        topic: "t".into(),
        acks: Acks::All,
        records: vec![Record::keyed("k", "a"), Record::keyed("k", "b")],
        sticky_batch: 1,
        seed: 0,
        request_timeout_ms: Some(1_000),
        retry_backoff_ms: Some(100),
        idempotent: true,
        producer_id,
        send_interval_ms: None,
        delivery_timeout_ms: Some(5_000),
        max_in_flight: 1,
        batch_size_bytes: 1,
        linger_ms: None,
        metadata_max_age_ms: None,
        bugs: Default::default(),
    };
    let metadata = ClusterMetadata {
        version: 1,
        brokers: vec![],
        partitions: vec![PartitionState {
            tp: TopicPartition::new("t", 0),
            replicas: vec![0, 1],
            leader: Some(0),
            leader_epoch: 1,
            isr: vec![0, 1],
            partition_epoch: 1,
        }],
    };
    Producer::with_metadata(Arc::new(config), metadata)
}

/// InitProducerId requests sent: (broker, correlation).
fn asked(effects: &[Effect]) -> Vec<(u32, u64)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Send {
                to,
                message: Message::InitProducerId { correlation },
            } => Some((*to, *correlation)),
            _ => None,
        })
        .collect()
}

/// The producer ids stamped on the produce requests sent.
fn stamped(effects: &[Effect]) -> Vec<Option<u64>> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Send {
                message: Message::Produce(r),
                ..
            } => Some(r.batches.iter().map(|b| b.producer.map(|s| s.producer))),
            _ => None,
        })
        .flatten()
        .collect()
}

fn handed_over(effects: &[Effect]) -> usize {
    let invoked = |e: &&Effect| matches!(e, Effect::Observe(ClientEvent::SendInvoke { .. }));
    effects.iter().filter(invoked).count()
}

fn granted(p: &mut Producer, from: u32, correlation: u64, id: u64) -> Vec<Effect> {
    let mut cx = Context::new(0);
    let result = Ok((id, 0));
    let answer = Message::InitProducerIdResponse {
        correlation,
        result,
    };
    p.on_message(&mut cx, from, answer);
    cx.take_effects()
}

#[test]
fn a_producer_without_an_id_asks_for_one_and_sends_nothing_before() {
    let mut p = producer(None);
    let mut cx = Context::new(0);
    p.on_start(&mut cx);
    let effects = cx.take_effects();
    assert_eq!(asked(&effects), [(0, 1)]);
    assert!(stamped(&effects).is_empty());
    assert_eq!(handed_over(&effects), 0, "records wait for the id");
    // No answer in time: the next bootstrap broker is asked.
    p.on_timer(&mut cx, Timer::InitProducerIdTimeout);
    let effects = cx.take_effects();
    assert_eq!(asked(&effects), [(1, 2)]);
    assert!(stamped(&effects).is_empty());
    // The first broker's answer comes late: any granted id is unique, so it is taken.
    let effects = granted(&mut p, 0, 1, 42);
    assert!(effects.contains(&Effect::CancelTimer(Timer::InitProducerIdTimeout)));
    assert_eq!(handed_over(&effects), 2);
    assert_eq!(stamped(&effects), [Some(42)]);
    // The answer to the second attempt changes nothing.
    assert!(granted(&mut p, 1, 2, 43).is_empty());
    // A timer that fires anyway asks nobody.
    p.on_timer(&mut cx, Timer::InitProducerIdTimeout);
    assert!(asked(&cx.take_effects()).is_empty());
}

#[test]
fn a_refused_init_producer_id_is_asked_again_after_the_backoff() {
    let mut p = producer(None);
    let mut cx = Context::new(0);
    p.on_start(&mut cx);
    cx.take_effects();
    let refused = Message::InitProducerIdResponse {
        correlation: 1,
        result: Err(ErrorCode::NotCoordinator),
    };
    p.on_message(&mut cx, 0, refused);
    let backoff = Effect::SetTimer {
        timer: Timer::InitProducerIdTimeout,
        after_ms: 100,
    };
    assert_eq!(cx.take_effects(), [backoff]);
    p.on_timer(&mut cx, Timer::InitProducerIdTimeout);
    assert_eq!(asked(&cx.take_effects()), [(1, 2)]);
}

/// A producer that stopped while still asking for an id gives up asking once it has nothing
/// left to send; records handed over afterwards make it ask again.
#[test]
fn records_resumed_while_still_without_an_id_ask_for_one_again() {
    let mut p = producer(None);
    let mut cx = Context::new(0);
    p.on_start(&mut cx);
    cx.take_effects();
    p.stop();
    p.on_timer(&mut cx, Timer::InitProducerIdTimeout);
    assert!(asked(&cx.take_effects()).is_empty(), "nothing to send");
    p.resume(&mut cx, 1);
    assert_eq!(asked(&cx.take_effects()).len(), 1);
}

#[test]
fn a_preset_id_is_used_without_asking() {
    let mut p = producer(Some(7));
    let mut cx = Context::new(0);
    p.on_start(&mut cx);
    let effects = cx.take_effects();
    assert!(asked(&effects).is_empty());
    assert_eq!(stamped(&effects), [Some(7)]);
}
