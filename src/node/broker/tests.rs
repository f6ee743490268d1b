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

/// Broker 1 following broker 0 on `t-0`, as bootstrapped; returns it after its first fetch.
fn follower() -> Broker {
    let controller = Controller::bootstrapped(Arc::new(ControllerConfig {
        id: 9,
        brokers: vec![0, 1],
        topics: vec![TopicSpec::spread("t", 1, 2, &[0, 1])],
        session_timeout_ms: None,
        unclean_leader_election: false,
        bugs: Default::default(),
    }));
    let mut b = Broker::bootstrapped(
        Arc::new(BrokerConfig::new(1, 9)),
        controller.metadata().clone(),
    );
    b.on_start(&mut Context::new(0));
    b
}

fn fetched_at(effects: Vec<Effect>) -> Option<(Offset, Option<u32>)> {
    effects.into_iter().find_map(|e| match e {
        Effect::Send {
            message: Message::Fetch(f),
            ..
        } => Some((f.fetch_offset, f.last_fetched_epoch)),
        _ => None,
    })
}

#[test]
fn a_follower_whose_epochs_the_leader_no_longer_holds_restarts_at_its_log_start() {
    use crate::protocol::{EpochEndOffset, FetchResponse, LogEntry};
    let mut b = follower();
    let tp = TopicPartition::new("t", 0);
    let epoch = b.metadata().partition(&tp).expect("t-0").leader_epoch;
    let respond = |b: &mut Broker, resp: FetchResponse| {
        let mut cx = Context::new(0);
        b.on_message(&mut cx, 0, Message::FetchResponse(resp));
        fetched_at(cx.take_effects())
    };
    let base = FetchResponse {
        tp: tp.clone(),
        fetch_offset: 0,
        error: None,
        leader_epoch: epoch,
        high_watermark: 3,
        log_start_offset: 0,
        records: (0..3)
            .map(|o| LogEntry {
                offset: o,
                epoch,
                record: Record::keyed("k", format!("v{o}")),
                producer: None,
            })
            .collect(),
        diverging_epoch: None,
    };
    assert_eq!(respond(&mut b, base.clone()), Some((3, Some(epoch))));
    // Meanwhile the leader's log start moved to 10 (retention, compaction) and it holds no epoch
    // as old as ours: its answer names no epoch and ends at its log start.
    let diverged = FetchResponse {
        fetch_offset: 3,
        high_watermark: 12,
        log_start_offset: 10,
        records: Vec::new(),
        diverging_epoch: Some(EpochEndOffset {
            epoch: None,
            end_offset: 10,
        }),
        ..base
    };
    // Before the fix it asked again at 3 with its old epoch, for ever.
    assert_eq!(respond(&mut b, diverged), Some((10, None)));
    let log = b.log(&tp).expect("log");
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (10, 10));
}
