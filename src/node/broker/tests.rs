//! Broker behaviour that is easiest to pin down on one node: idempotent produce.

use crate::node::{Broker, BrokerConfig, Context, Controller, ControllerConfig, Effect, TopicSpec};
use crate::protocol::{
    Acks, ErrorCode, Message, Offset, ProduceRequest, ProducerStamp, Record, TopicPartition,
};
use std::sync::Arc;

/// A one-broker cluster: broker 0 leads `t-0` with ISR {0}, so acks=all commits at once.
fn single_leader() -> Broker {
    let controller = Controller::bootstrapped(Arc::new(ControllerConfig {
        id: 9,
        brokers: vec![0],
        topics: vec![TopicSpec::spread("t", 1, 1, &[0])],
        session_timeout_ms: None,
        unclean_leader_election: false,
        bugs: Default::default(),
    }));
    let mut broker = Broker::bootstrapped(
        Arc::new(BrokerConfig::new(0, 9)),
        controller.metadata().clone(),
    );
    broker.on_start(&mut Context::new(0));
    broker
}

fn produce(b: &mut Broker, value: &str, sequence: u64) -> Vec<Result<Offset, ErrorCode>> {
    let req = ProduceRequest {
        tp: TopicPartition::new("t", 0),
        acks: Acks::All,
        records: vec![Record::keyed("k", value)],
        leader_epoch: None,
        correlation: sequence,
        producer: Some(ProducerStamp {
            producer: 7,
            sequence,
        }),
    };
    let mut cx = Context::new(0);
    b.on_message(&mut cx, 100, Message::Produce(req));
    cx.take_effects()
        .into_iter()
        .filter_map(|e| match e {
            Effect::Send {
                message: Message::ProduceResponse(r),
                ..
            } => Some(r.result),
            _ => None,
        })
        .collect()
}

#[test]
fn idempotent_retry_is_answered_with_the_original_offset() {
    let mut b = single_leader();
    assert_eq!(produce(&mut b, "a", 0), vec![Ok(0)]);
    assert_eq!(produce(&mut b, "b", 1), vec![Ok(1)]);
    // A retry of the newest record: same offset, nothing appended.
    assert_eq!(produce(&mut b, "b", 1), vec![Ok(1)]);
    // A late copy of an older record: refused, nothing appended.
    assert_eq!(
        produce(&mut b, "a", 0),
        vec![Err(ErrorCode::DuplicateSequence)]
    );
    let log = b.log(&TopicPartition::new("t", 0)).expect("log exists");
    assert_eq!(log.log_end_offset(), 2);
    assert_eq!(produce(&mut b, "c", 2), vec![Ok(2)]);
}

#[test]
fn clients_cannot_write_to_the_offsets_topic() {
    let mut b = single_leader();
    let req = ProduceRequest {
        tp: TopicPartition::new(crate::protocol::OFFSETS_TOPIC, 0),
        acks: Acks::All,
        records: vec![Record::keyed("k", "forged commit")],
        leader_epoch: None,
        correlation: 1,
        producer: None,
    };
    let mut cx = Context::new(0);
    b.on_message(&mut cx, 100, Message::Produce(req));
    let refused = cx.take_effects().into_iter().any(|e| {
        matches!(e, Effect::Send { message: Message::ProduceResponse(r), .. }
            if r.result == Err(ErrorCode::InvalidTopic))
    });
    assert!(refused);
}
