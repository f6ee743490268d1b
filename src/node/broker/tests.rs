//! Broker behaviour that is easiest to pin down on one node: idempotent produce.

use crate::node::{
    Broker, BrokerConfig, Bug, BugSet, Context, Controller, ControllerConfig, Durability, Effect,
    TopicSpec, PRODUCER_ID_BLOCK_SIZE,
};
use crate::protocol::{
    Acks, ClusterMetadata, ErrorCode, Message, Offset, PartitionBatch, ProduceRequest,
    ProducerStamp, Record, TopicPartition,
};
use std::sync::Arc;

/// A one-broker cluster: broker 0 leads `t-0` with ISR {0}, so acks=all commits at once.
fn single_leader() -> Broker {
    single_leader_with(BrokerConfig::new(0, vec![9]))
}

fn single_leader_with(config: BrokerConfig) -> Broker {
    let controller = controller(&[0], TopicSpec::spread("t", 1, 1, &[0]));
    let mut broker = Broker::bootstrapped(Arc::new(config), controller.metadata().clone());
    broker.on_start(&mut Context::new(0));
    broker
}

fn produce(b: &mut Broker, value: &str, sequence: u64) -> Vec<Result<Offset, ErrorCode>> {
    produce_stamped(b, value, sequence, 0)
}

/// A produce of one record by producer 7 in `epoch`.
fn produce_in(
    b: &mut Broker,
    value: &str,
    epoch: u16,
    sequence: u64,
) -> Vec<Result<Offset, ErrorCode>> {
    produce_with(
        b,
        Record::keyed("k", value),
        ProducerStamp::batch(7, epoch, sequence),
    )
}

/// A produce of a record stamped `timestamp` by its producer's clock.
fn produce_stamped(
    b: &mut Broker,
    value: &str,
    sequence: u64,
    timestamp: i64,
) -> Vec<Result<Offset, ErrorCode>> {
    let mut record = Record::keyed("k", value);
    record.timestamp = timestamp;
    produce_with(b, record, ProducerStamp::batch(7, 0, sequence))
}

fn produce_with(
    b: &mut Broker,
    record: Record,
    stamp: ProducerStamp,
) -> Vec<Result<Offset, ErrorCode>> {
    produce_answers(produce_effects(b, vec![record], stamp))
}

/// The effects of a produce (acks=all) of `records` in one batch stamped `stamp`.
fn produce_effects(b: &mut Broker, records: Vec<Record>, stamp: ProducerStamp) -> Vec<Effect> {
    let req = ProduceRequest {
        acks: Acks::All,
        correlation: stamp.sequence,
        batches: vec![PartitionBatch {
            tp: TopicPartition::new("t", 0),
            leader_epoch: None,
            batch: stamp.sequence,
            records,
            producer: Some(stamp),
        }],
    };
    let mut cx = Context::new(0);
    b.on_message(&mut cx, 100, Message::Produce(req));
    cx.take_effects()
}

/// The batch results of the produce answers among `effects`.
fn produce_answers(effects: Vec<Effect>) -> Vec<Result<Offset, ErrorCode>> {
    effects
        .into_iter()
        .filter_map(|e| match e {
            Effect::Send {
                message: Message::ProduceResponse(r),
                ..
            } => Some(r.batches),
            _ => None,
        })
        .flatten()
        .map(|b| b.result)
        .collect()
}

/// Syncs are numbered; one completion may answer several, and only then does the leader with
/// `fsync` durability acknowledge what they cover.
#[test]
fn one_sync_completion_answers_every_sync_up_to_its_token() {
    let fsync = |bugs: BugSet| {
        let mut config = BrokerConfig::new(0, vec![9]);
        config.durability = Durability::Fsync;
        config.bugs = bugs;
        single_leader_with(config)
    };
    let mut b = fsync(BugSet::none());
    assert!(produce(&mut b, "a", 0).is_empty(), "not synced yet");
    assert!(produce(&mut b, "b", 1).is_empty(), "not synced yet");
    let mut cx = Context::new(0);
    b.on_persisted(&mut cx, 2);
    let acked: Vec<u64> = cx
        .take_effects()
        .into_iter()
        .filter_map(|e| match e {
            Effect::Send {
                message: Message::ProduceResponse(r),
                ..
            } => Some(r.batches),
            _ => None,
        })
        .flatten()
        .filter_map(|b| b.result.ok())
        .collect();
    assert_eq!(acked, [0, 1]);
    // The switch acknowledges before the sync completes.
    let mut b = fsync(BugSet::none().with(Bug::AckBeforeSync));
    assert_eq!(produce(&mut b, "a", 0), [Ok(0)]);
}

#[test]
fn idempotent_retry_is_answered_with_the_original_offset() {
    let mut b = single_leader();
    assert_eq!(produce(&mut b, "a", 0), vec![Ok(0)]);
    assert_eq!(produce(&mut b, "b", 1), vec![Ok(1)]);
    // A retry of the newest batch, and of an older one in the window: their offsets, nothing
    // appended.
    assert_eq!(produce(&mut b, "b", 1), vec![Ok(1)]);
    assert_eq!(produce(&mut b, "a", 0), vec![Ok(0)]);
    let log = b.log(&TopicPartition::new("t", 0)).expect("log exists");
    assert_eq!(log.log_end_offset(), 2);
    assert_eq!(produce(&mut b, "c", 2), vec![Ok(2)]);
}

/// The leader's sequence rules: a gap is refused, a retry older than the window of five is out
/// of order too (not appended again), an older epoch is fenced, a new epoch starts at 0. With
/// the switches, a retry older than the last batch lands twice, and a gap is appended.
#[test]
fn sequences_are_checked_against_the_last_five_batches_and_the_epoch() {
    let mut b = single_leader();
    for seq in 0..6 {
        assert_eq!(produce(&mut b, &format!("v{seq}"), seq), vec![Ok(seq)]);
    }
    assert_eq!(produce(&mut b, "v1", 1), vec![Ok(1)], "in the window");
    assert_eq!(
        produce(&mut b, "v0", 0),
        vec![Err(ErrorCode::OutOfOrderSequence)],
        "older than the window"
    );
    assert_eq!(
        produce(&mut b, "v8", 8),
        vec![Err(ErrorCode::OutOfOrderSequence)],
        "a gap"
    );
    assert_eq!(
        produce_in(&mut b, "w", 1, 3),
        vec![Err(ErrorCode::OutOfOrderSequence)],
        "a new epoch starts at 0"
    );
    assert_eq!(produce_in(&mut b, "w0", 1, 0), vec![Ok(6)]);
    assert_eq!(
        produce_in(&mut b, "v6", 0, 6),
        vec![Err(ErrorCode::ProducerFenced)]
    );
    let log = b.log(&TopicPartition::new("t", 0)).expect("log exists");
    assert_eq!(log.log_end_offset(), 7);

    let bugged = |bug| {
        let mut config = BrokerConfig::new(0, vec![9]);
        config.bugs = BugSet::none().with(bug);
        single_leader_with(config)
    };
    let mut b = bugged(Bug::DedupWindow1);
    for seq in 0..3 {
        assert_eq!(produce(&mut b, &format!("v{seq}"), seq), vec![Ok(seq)]);
    }
    assert_eq!(
        produce(&mut b, "v2", 2),
        vec![Ok(2)],
        "the last batch is known"
    );
    assert_eq!(
        produce(&mut b, "v1", 1),
        vec![Ok(3)],
        "an older retry is not recognised: appended again"
    );
    let mut b = bugged(Bug::NoSequenceGapCheck);
    assert_eq!(
        produce(&mut b, "v3", 3),
        vec![Ok(0)],
        "an unknown producer's gap"
    );
    assert_eq!(produce(&mut b, "v5", 5), vec![Ok(1)], "the gap is appended");
    assert_eq!(
        produce(&mut b, "v4", 4),
        vec![Ok(2)],
        "and what fills it, behind"
    );
}

/// A producer the log has no batch of must start at sequence 0: its first batch here may have
/// overtaken earlier ones still on their way to the previous leader.
#[test]
fn an_unknown_producer_must_start_at_sequence_zero() {
    let mut b = single_leader();
    assert_eq!(
        produce(&mut b, "v1", 1),
        vec![Err(ErrorCode::OutOfOrderSequence)]
    );
    assert_eq!(produce(&mut b, "v0", 0), vec![Ok(0)]);
    assert_eq!(produce(&mut b, "v1", 1), vec![Ok(1)]);
}

/// One request, batches for two partitions: the one this broker does not lead is refused at
/// once, the other answered when committed, each in its own response naming its batch.
#[test]
fn a_request_with_batches_for_several_partitions_answers_each_batch() {
    let controller = controller(&[0, 1], TopicSpec::spread("t", 2, 1, &[0, 1]));
    let md = controller.metadata().clone();
    let led = |b: u32| {
        md.partitions
            .iter()
            .find(|p| p.leader == Some(b))
            .map(|p| p.tp.clone())
            .expect("each broker leads one")
    };
    let mut b = Broker::bootstrapped(Arc::new(BrokerConfig::new(0, vec![9])), md.clone());
    b.on_start(&mut Context::new(0));
    let batch = |tp: TopicPartition, id| PartitionBatch {
        tp,
        leader_epoch: None,
        batch: id,
        records: vec![Record::keyed("k", "v")],
        producer: None,
    };
    let req = ProduceRequest {
        acks: Acks::All,
        correlation: 4,
        batches: vec![batch(led(1), 10), batch(led(0), 11)],
    };
    let mut cx = Context::new(0);
    b.on_message(&mut cx, 100, Message::Produce(req));
    let mut answers: Vec<(u64, u64, Result<Offset, ErrorCode>)> = cx
        .take_effects()
        .into_iter()
        .filter_map(|e| match e {
            Effect::Send {
                message: Message::ProduceResponse(r),
                ..
            } => Some(r),
            _ => None,
        })
        .flat_map(|r| {
            r.batches
                .into_iter()
                .map(move |x| (r.correlation, x.batch, x.result))
        })
        .collect();
    answers.sort();
    assert_eq!(
        answers,
        [(4, 10, Err(ErrorCode::NotLeaderOrFollower)), (4, 11, Ok(0))]
    );
}

#[test]
fn clients_cannot_write_to_the_offsets_topic() {
    let mut b = single_leader();
    let req = ProduceRequest {
        acks: Acks::All,
        correlation: 1,
        batches: vec![PartitionBatch {
            tp: TopicPartition::new(crate::protocol::OFFSETS_TOPIC, 0),
            leader_epoch: None,
            batch: 1,
            records: vec![Record::keyed("k", "forged commit")],
            producer: None,
        }],
    };
    let mut cx = Context::new(0);
    b.on_message(&mut cx, 100, Message::Produce(req));
    let refused = cx.take_effects().into_iter().any(|e| {
        matches!(e, Effect::Send { message: Message::ProduceResponse(r), .. }
            if r.batches[0].result == Err(ErrorCode::InvalidTopic))
    });
    assert!(refused);
}

/// A batch whose records would take more than `MAX_APPEND_BYTES` in the journal write is refused
/// whole, and nothing of it is appended or journaled: written, that frame would be past the frame
/// limit and refused when the journal is read back, after it was acknowledged. The limit counts
/// what the log stores: 200 000 empty records are 1.6 MB of record bytes but 11.8 MB of entries.
#[test]
fn a_batch_past_what_one_append_may_take_is_refused_and_nothing_is_journaled() {
    use crate::protocol::entry_block::{append_bound, MAX_APPEND_BYTES};
    let empty = |n: usize| vec![Record::keyed("", ""); n];
    let mut b = single_leader();
    let send = |b: &mut Broker, records: Vec<Record>, sequence: u64| {
        let effects = produce_effects(b, records, ProducerStamp::batch(7, 0, sequence));
        let journaled = effects
            .iter()
            .any(|e| matches!(e, Effect::Persist(crate::node::DiskOp::Append { .. })));
        (produce_answers(effects), journaled)
    };
    let over = empty(200_000);
    let record_bytes: u64 = over.iter().map(Record::size_bytes).sum();
    assert!(record_bytes < MAX_APPEND_BYTES && append_bound(&over) > MAX_APPEND_BYTES);
    assert_eq!(
        send(&mut b, over, 0),
        (vec![Err(ErrorCode::MessageTooLarge)], false)
    );
    assert!(!ErrorCode::MessageTooLarge.is_retriable());
    let log = b.log(&TopicPartition::new("t", 0)).expect("log exists");
    assert_eq!(log.log_end_offset(), 0);
    // Under the limit the same producer's batch at the same sequence goes in (the refused one
    // left no trace in its sequences either).
    let under = empty(100_000);
    assert!(append_bound(&under) <= MAX_APPEND_BYTES);
    assert_eq!(send(&mut b, under, 0), (vec![Ok(0)], true));
}

/// Controller 9 of brokers 0 and 1, with `t-0` on both, led by 0, as bootstrapped.
fn two_broker_controller() -> Controller {
    controller(&[0, 1], TopicSpec::spread("t", 1, 2, &[0, 1]))
}

/// Controller 9 of `brokers` with one topic, as bootstrapped (no session expiry).
fn controller(brokers: &[u32], topic: TopicSpec) -> Controller {
    Controller::bootstrapped(Arc::new(ControllerConfig {
        id: 9,
        brokers: brokers.to_vec(),
        topics: vec![topic],
        session_timeout_ms: None,
        unclean_leader_election: false,
        producer_id_block_size: PRODUCER_ID_BLOCK_SIZE,
        leader_rebalance_ms: None,
        bugs: Default::default(),
    }))
}

/// Broker `id` of `two_broker_controller`'s cluster, started (a follower has sent its first
/// fetch).
fn started_broker(controller: &Controller, id: u32) -> Broker {
    started_broker_with(controller, BrokerConfig::new(id, vec![9]))
}

/// The same broker with its own configuration.
fn started_broker_with(controller: &Controller, config: BrokerConfig) -> Broker {
    let mut b = Broker::bootstrapped(Arc::new(config), controller.metadata().clone());
    b.on_start(&mut Context::new(0));
    b
}

/// A sync in flight when the log is cut covers nothing above the cut: the records written at
/// those offsets afterwards were not in the page cache when it started, so its completion must
/// not count them synced (the count goes to the leader, whose high watermark trusts it).
#[test]
fn a_sync_in_flight_across_a_truncation_covers_nothing_written_after_the_cut() {
    let tp = TopicPartition::new("t", 0);
    let mut b = single_leader_with(fsync_config(0));
    // Two records, each with a sync of its own in flight (tokens 1 and 2).
    assert!(produce(&mut b, "a", 0).is_empty(), "not synced yet");
    assert!(produce(&mut b, "b", 1).is_empty(), "not synced yet");
    let mut cx = Context::new(0);
    b.truncate(&mut cx, &tp, 0);
    // Two other records at the same offsets, written after both syncs started.
    let log = &mut b.replicas.get_mut(&tp).expect("a replica").log;
    let entries: Vec<_> = (0..2)
        .map(|offset| crate::protocol::LogEntry {
            offset,
            epoch: 0,
            record: Record::keyed("k", "new"),
            producer: None,
        })
        .collect();
    log.append_entries(&entries).expect("append");
    b.on_persisted(&mut cx, 2);
    assert_eq!(b.replicas()[&tp].synced_offset, 0);
}

/// A truncation or a restart of the log cuts the syncs in flight to what it keeps; a mark left
/// above what the replica asked to have synced breaks `syncs-within-requested` at once (its sync
/// would later count records written after the cut as durable).
#[test]
fn a_sync_in_flight_above_what_the_replica_asked_for_breaks_an_invariant() {
    let tp = TopicPartition::new("t", 0);
    let mut b = single_leader_with(fsync_config(0));
    assert!(produce(&mut b, "a", 0).is_empty(), "not synced yet");
    assert!(produce(&mut b, "b", 1).is_empty(), "not synced yet");
    assert_eq!(rule_broken(&b), Ok(()));
    let mut cx = Context::new(0);
    b.truncate(&mut cx, &tp, 1);
    assert_eq!(b.check_syncs_in_flight(), Ok(()));
    b.restart_log(&mut cx, &tp, 0, Vec::new());
    assert_eq!(b.check_syncs_in_flight(), Ok(()));
    let (_, marks) = b.pending_syncs.back_mut().expect("a sync in flight");
    marks[0].1 = 1;
    let broken = b.check_syncs_in_flight().map_err(|v| v.rule);
    assert_eq!(broken, Err("syncs-within-requested"));
}

/// `BrokerConfig::new(id, [9])` with fsync durability.
fn fsync_config(id: u32) -> BrokerConfig {
    let mut config = BrokerConfig::new(id, vec![9]);
    config.durability = Durability::Fsync;
    config
}

/// Broker 1 following broker 0 on `t-0`, as bootstrapped; returns it after its first fetch.
fn follower() -> Broker {
    started_broker(&two_broker_controller(), 1)
}

/// `follower()`, with the partition it follows and its leader epoch there.
fn follower_of_t0() -> (Broker, TopicPartition, u32) {
    let b = follower();
    let tp = TopicPartition::new("t", 0);
    let epoch = b.metadata().partition(&tp).expect("t-0").leader_epoch;
    (b, tp, epoch)
}

/// What the broker's disk would hold: its logs as they are now, then `effects`' writes.
fn image_after(before: &Broker, effects: &[Effect]) -> crate::node::BrokerImage {
    let logs = before.replicas.iter();
    let mut image = crate::node::BrokerImage {
        logs: logs.map(|(tp, r)| (tp.clone(), r.log.clone())).collect(),
    };
    for e in effects {
        if let Effect::Persist(op) = e {
            image.apply(op).expect("a well-formed write");
        }
    }
    image
}

/// `disk-matches-memory`: a follower restarting at its leader's log start installs the
/// leader's producer state and journals it in the same write, so the disk rebuilds the log it
/// runs with. With `producers-not-journaled` the write leaves the producers out, and the check
/// names the producer the disk has forgotten. Other differences are named too (log start,
/// entries, epoch cache), and a high watermark, which is not persisted, is none.
#[test]
fn a_restart_at_the_leaders_log_start_journals_the_producers_it_installs() {
    use crate::protocol::{FetchResponse, LogEntry};
    let tp = TopicPartition::new("t", 0);
    for (bugs, expected) in [
        (BugSet::none(), Ok(())),
        (
            BugSet::none().with(Bug::ProducersNotJournaled),
            Err("producer 7: Some(ProducerState"),
        ),
    ] {
        let mut config = BrokerConfig::new(1, vec![9]);
        config.bugs = bugs;
        let controller = two_broker_controller();
        let mut b = Broker::bootstrapped(Arc::new(config), controller.metadata().clone());
        b.on_start(&mut Context::new(0));
        let epoch = b.metadata().partition(&tp).expect("t-0").leader_epoch;
        let out_of_range = FetchResponse {
            tp: tp.clone(),
            fetch_offset: 0,
            error: Some(ErrorCode::OffsetOutOfRange),
            leader_epoch: epoch,
            high_watermark: 12,
            log_start_offset: 10,
            records: Vec::new(),
            diverging_epoch: None,
            producers: vec![producer_7_below(9)],
            connection: 0,
        };
        let before = b.clone();
        let mut cx = Context::new(0);
        b.on_message(&mut cx, 0, Message::FetchResponse(out_of_range));
        let image = image_after(&before, &cx.take_effects());
        assert_eq!(b.log(&tp).map(|l| l.log_start_offset()), Some(10));
        let checked = b.check_disk_image(&image).map_err(|v| {
            assert_eq!(v.rule, "disk-matches-memory");
            v.detail
        });
        match (checked, expected) {
            (Ok(()), Ok(())) => {}
            (Err(detail), Err(names)) => assert!(detail.contains(names), "{detail}"),
            (got, want) => panic!("{got:?}, expected {want:?}"),
        }
    }
    // Each part of the log, changed on the disk alone, is named.
    let mut b = single_leader();
    produce(&mut b, "a", 0);
    produce(&mut b, "b", 1);
    let same = image_after(&b, &[]);
    assert_eq!(b.check_disk_image(&same), Ok(()));
    let changed = |f: &dyn Fn(&mut crate::log::PartitionLog)| {
        let mut image = same.clone();
        f(image.logs.get_mut(&tp).expect("t-0"));
        b.check_disk_image(&image).expect_err("differs").detail
    };
    let detail = changed(&|l| assert!(l.advance_log_start(1)));
    assert!(
        detail.contains("log start 0 in memory, 1 on disk"),
        "{detail}"
    );
    let detail = changed(&|l| l.truncate_to(1).expect("within the log"));
    assert!(detail.contains("entries differ from offset 1"), "{detail}");
    let detail = changed(&|l| {
        let next = LogEntry {
            offset: 2,
            ..l.entries()[1].clone()
        };
        l.append_entries(&[next]).expect("appends");
    });
    assert!(detail.contains("entries differ from offset 2"), "{detail}");
    let detail = changed(&|l| l.assign_epoch(7, 2));
    assert!(detail.contains("epoch cache"), "{detail}");
    let mut hw_only = same.clone();
    let log = hw_only.logs.get_mut(&tp).expect("t-0");
    log.set_high_watermark(0).expect("within the log");
    assert_eq!(b.check_disk_image(&hw_only), Ok(()));
}

/// A follower whose fetch goes unanswered for its timeout asks again on a new connection (the
/// answer may be stuck on a stalled one, which TCP leaves silent until its retransmission
/// backoff runs out), numbered so that the leader ignores what the old one delivers late, and
/// ignores the old one's late answer itself. With `keep-stalled-links` it asks again on the
/// old one.
#[test]
fn a_fetch_that_times_out_is_sent_again_on_a_new_connection() {
    let timeout = crate::node::Timer::FetchTimeout(TopicPartition::new("t", 0));
    for (bugs, fixed) in [(vec![], true), (vec![Bug::KeepStalledLinks], false)] {
        let mut config = BrokerConfig::new(1, vec![9]);
        config.bugs = bugs.into_iter().collect();
        let mut b = started_broker_with(&two_broker_controller(), config);
        let mut cx = Context::new(5_000);
        b.on_timer(&mut cx, timeout.clone());
        let fx = cx.take_effects();
        let dropped = fx.iter().any(|e| matches!(e, Effect::Disconnect(0)));
        assert_eq!(dropped, fixed, "{fx:?}");
        let again = crate::node::effects::sent_fetch(&fx).expect("the fetch goes again");
        assert_eq!(again.fetch_offset, 0);
        let connection = u64::from(fixed);
        assert_eq!(again.replica.map(|r| r.connection), Some(connection));
        // The answer to the first fetch (of connection 0) arrives late: with a new connection
        // it is not this fetch's; the new connection's answer is.
        let late = first_fetch_answer(0, 2, None);
        assert_eq!(answer_fetch(&mut b, late.clone()).is_some(), !fixed);
        if fixed {
            let current = crate::protocol::FetchResponse { connection, ..late };
            assert_eq!(answer_fetch(&mut b, current), Some((2, Some(0))));
        }
    }
}

/// The leader ignores a follower's fetch sent on a connection the follower has since replaced:
/// its offset is older than what the follower proved on the new one, and the leader would take
/// the follower's log end back (found by the simulator as `isr-holds-hw`, when followers first
/// reconnected after a timeout without numbering their connections).
#[test]
fn a_fetch_from_a_dropped_connection_is_ignored() {
    let (_controller, mut leader) = pair();
    produce(&mut leader, "a", 0);
    let broker_epoch = leader.metadata().registration(1).expect("registered").epoch;
    let epoch = leader
        .leader_epoch_of(&TopicPartition::new("t", 0))
        .expect("leads t-0");
    // Follower 1's fetch from `offset` on connection `connection` of its incarnation `incarnation`.
    let on = |incarnation, connection, offset| {
        let mut req = match follower_fetch(incarnation, epoch) {
            Message::Fetch(req) => req,
            other => panic!("a fetch expected: {other:?}"),
        };
        req.fetch_offset = offset;
        req.last_fetched_epoch = (offset > 0).then_some(epoch);
        if let Some(r) = req.replica.as_mut() {
            r.connection = connection;
        }
        Message::Fetch(req)
    };
    to_broker(&mut leader, 1, on(broker_epoch, 1, 1));
    let progress = |b: &mut Broker| leader_state(b).followers.get(&1).map(|p| p.log_end);
    assert_eq!(progress(&mut leader), Some(1));
    // The old connection's fetch from 0 arrives late: ignored, unanswered.
    assert_eq!(to_broker(&mut leader, 1, on(broker_epoch, 0, 0)), vec![]);
    assert_eq!(progress(&mut leader), Some(1));
    // The same fetch on the current connection is taken (the follower truncated, say), and
    // its answer names that connection.
    let answers = to_broker(&mut leader, 1, on(broker_epoch, 1, 0));
    assert!(
        matches!(&answers[..], [(1, Message::FetchResponse(r))] if r.connection == 1),
        "{answers:?}"
    );
    assert_eq!(progress(&mut leader), Some(0));
    // The follower restarts: its new incarnation numbers connections from 0 again, below the
    // old incarnation's, and its fetches must still be answered (connections are ordered by
    // broker epoch first; ordered by number alone, a restarted follower went unanswered until
    // its fetch timeouts had numbered a connection past the old one).
    let answers = to_broker(&mut leader, 1, on(broker_epoch + 1, 0, 0));
    assert!(
        matches!(&answers[..], [(1, Message::FetchResponse(r))] if r.connection == 0),
        "{answers:?}"
    );
    // A fetch of the old incarnation delivered after the new one has fetched is ignored,
    // unanswered, whatever its connection number: nobody waits for it, and its answer would
    // reach the new incarnation, whose fetch in flight may have the same offset and number.
    assert_eq!(to_broker(&mut leader, 1, on(broker_epoch, 1, 1)), vec![]);
    let counted = leader_state(&mut leader).followers.get(&1).cloned();
    let counted = counted.map(|p| (p.log_end, p.broker_epoch));
    assert_eq!(counted, Some((0, broker_epoch + 1)));
}

/// After every step a leader has done all its progress step would (`leader-hw-current`,
/// `produce-answered-when-due`): a path that records what moves the high watermark but forgets
/// the step leaves the watermark, and the produces it commits, waiting for some later event.
#[test]
fn a_high_watermark_left_behind_by_a_step_breaks_an_invariant() {
    let (_controller, mut leader) = pair();
    let tp = TopicPartition::new("t", 0);
    assert_eq!(produce(&mut leader, "a", 0), vec![]);
    let broker_epoch = leader.metadata().registration(1).expect("registered").epoch;
    let epoch = leader.leader_epoch_of(&tp).expect("leads t-0");
    to_broker(&mut leader, 1, follower_fetch(broker_epoch, epoch));
    assert_eq!(rule_broken(&leader), Ok(()));
    // Follower 1's progress past the record, recorded without the step.
    let progress = leader_state(&mut leader)
        .followers
        .get_mut(&1)
        .expect("fetched");
    (progress.log_end, progress.synced) = (1, 1);
    assert_eq!(rule_broken(&leader), Err("leader-hw-current"));
    // The watermark moved, but the produce it commits left waiting.
    leader
        .replicas
        .get_mut(&tp)
        .expect("t-0")
        .log
        .set_high_watermark(1)
        .expect("within the log");
    assert_eq!(rule_broken(&leader), Err("produce-answered-when-due"));
    // The step itself answers it and leaves nothing due.
    let mut cx = Context::new(0);
    leader.leader_progress(&mut cx, &tp);
    assert_eq!(produce_answers(cx.take_effects()), vec![Ok(0)]);
    assert_eq!(rule_broken(&leader), Ok(()));
}

fn fetched_at(effects: Vec<Effect>) -> Option<(Offset, Option<u32>)> {
    crate::node::effects::sent_fetch(&effects).map(|f| (f.fetch_offset, f.last_fetched_epoch))
}

/// Hands the follower `b` its leader's (broker 0's) fetch answer; returns where it fetches next.
fn answer_fetch(
    b: &mut Broker,
    resp: crate::protocol::FetchResponse,
) -> Option<(Offset, Option<u32>)> {
    let mut cx = Context::new(0);
    b.on_message(&mut cx, 0, Message::FetchResponse(resp));
    fetched_at(cx.take_effects())
}

/// The leader's answer to a first fetch of t-0 in `epoch`: records 0..`n`, all committed, each
/// stamped by `producer` (producer 7, sequences from 0) when given.
fn first_fetch_answer(
    epoch: u32,
    n: Offset,
    producer: Option<u64>,
) -> crate::protocol::FetchResponse {
    use crate::protocol::LogEntry;
    crate::protocol::FetchResponse {
        tp: TopicPartition::new("t", 0),
        fetch_offset: 0,
        error: None,
        leader_epoch: epoch,
        high_watermark: n,
        log_start_offset: 0,
        records: (0..n)
            .map(|o| LogEntry {
                offset: o,
                epoch,
                record: Record::keyed("k", format!("v{o}")),
                producer: producer.map(|p| ProducerStamp::batch(p, 0, o)),
            })
            .collect(),
        diverging_epoch: None,
        producers: Vec::new(),
        connection: 0,
    }
}

/// Only an answer in the follower's own leader epoch answers its fetch in flight, even from its
/// leader at the offset it asked for: an answer of an older epoch may carry records the leader
/// has since truncated (it followed another leader in between) and its high watermark of then.
#[test]
fn a_fetch_answer_of_another_leader_epoch_is_ignored() {
    let (mut b, tp, epoch) = follower_of_t0();
    for other in epoch.checked_sub(1).into_iter().chain([epoch + 1]) {
        assert_eq!(
            answer_fetch(&mut b, first_fetch_answer(other, 3, None)),
            None
        );
        assert_eq!(b.log(&tp).map(|l| l.log_end_offset()), Some(0));
    }
    let taken = answer_fetch(&mut b, first_fetch_answer(epoch, 3, None));
    assert_eq!(taken, Some((3, Some(epoch))));
}

/// An answer refusing a fetch for its epoch names the leader's epoch, which tells whose fetch it
/// answers: "fenced" from a leader in the follower's own epoch, or "unknown epoch" from one in
/// it, answers an older fetch at the same offset, not the one in flight. Taken for it, the
/// follower sent that fetch again while the first was still on its way, and the first, delivered
/// late on another connection, took the follower's position back at the leader.
#[test]
fn an_epoch_refusal_naming_the_followers_own_epoch_answers_an_older_fetch() {
    let (mut b, _tp, epoch) = follower_of_t0();
    let refusal = |error, leader_epoch| crate::protocol::FetchResponse {
        error: Some(error),
        leader_epoch,
        ..first_fetch_answer(epoch, 0, None)
    };
    for error in [ErrorCode::FencedLeaderEpoch, ErrorCode::UnknownLeaderEpoch] {
        let mut cx = Context::new(0);
        b.on_message(&mut cx, 0, Message::FetchResponse(refusal(error, epoch)));
        let effects = cx.take_effects();
        assert!(effects.is_empty(), "{error:?} taken: {effects:?}");
    }
    // The fetch in flight is still awaited: its answer is taken.
    let taken = answer_fetch(&mut b, first_fetch_answer(epoch, 3, None));
    assert_eq!(taken, Some((3, Some(epoch))));
    // A refusal that does name another epoch answers it: the follower backs off. (Its epoch is
    // the first, so only a newer one can be named.)
    let (mut b, tp, _) = follower_of_t0();
    let mut cx = Context::new(0);
    let fenced = refusal(ErrorCode::FencedLeaderEpoch, epoch + 1);
    b.on_message(&mut cx, 0, Message::FetchResponse(fenced));
    let backoff = crate::node::Timer::FetchBackoff(tp);
    let effects = cx.take_effects();
    let backs_off = effects
        .iter()
        .any(|e| matches!(e, Effect::SetTimer { timer, .. } if *timer == backoff));
    assert!(backs_off, "fenced by a newer epoch, not taken: {effects:?}");
}

/// A follower of t-0 holding records 0..4 of its leader epoch, whose log start (its own retention)
/// then moved to 3; with the leader's answer that gave it those records.
fn follower_with_log_start_3() -> (Broker, TopicPartition, crate::protocol::FetchResponse) {
    let (mut b, tp, epoch) = follower_of_t0();
    let base = first_fetch_answer(epoch, 4, None);
    assert_eq!(answer_fetch(&mut b, base.clone()), Some((4, Some(epoch))));
    assert!(b.set_log_start(&mut Context::new(0), &tp, 3));
    (b, tp, base)
}

/// A leader's high watermark can lag the log start a follower's own retention moved (a new
/// leader learns its watermark only from its followers' next fetches): the follower takes its
/// log start as its watermark, never one below it, which its log refuses (`follower-hw`).
#[test]
fn a_high_watermark_below_the_followers_log_start_is_taken_as_its_log_start() {
    let (mut b, tp, base) = follower_with_log_start_3();
    let epoch = base.leader_epoch;
    let lagging = crate::protocol::FetchResponse {
        fetch_offset: 4,
        high_watermark: 2,
        records: Vec::new(),
        ..base
    };
    assert_eq!(answer_fetch(&mut b, lagging), Some((4, Some(epoch))));
    let log = b.log(&tp).expect("log");
    assert_eq!((log.log_start_offset(), log.high_watermark()), (3, 3));
    assert_eq!(rule_broken(&b), Ok(()));
}

/// Moving a log start raises the synced mark to it: a mark left below the log start
/// (`synced-within-log`) would report less synced than the replica holds.
#[test]
fn a_synced_mark_below_the_log_start_breaks_an_invariant() {
    let (mut b, tp, _) = follower_with_log_start_3();
    assert_eq!(b.replicas[&tp].synced_offset, 3);
    assert_eq!(rule_broken(&b), Ok(()));
    b.replicas.get_mut(&tp).unwrap().synced_offset = 2;
    assert_eq!(rule_broken(&b), Err("synced-within-log"));
}

#[test]
fn a_follower_whose_epochs_the_leader_no_longer_holds_restarts_at_its_log_start() {
    use crate::protocol::{EpochEndOffset, FetchResponse};
    let (mut b, tp, epoch) = follower_of_t0();
    let respond = answer_fetch;
    let base = first_fetch_answer(epoch, 3, None);
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
        // Producer 7's batch lies below the leader's log start: handed over.
        producers: vec![producer_7_below(9)],
        ..base
    };
    // Before the fix it asked again at 3 with its old epoch, for ever.
    assert_eq!(respond(&mut b, diverged), Some((10, None)));
    let log = b.log(&tp).expect("log");
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (10, 10));
    assert_eq!(log.producer_state(7).map(|s| s.batches.len()), Some(1));
}

/// A follower whose log start retention moved above where its log and the leader's part (an
/// unclean leader rebuilt the log from 0) holds nothing the leader has, nor the producer state
/// of the leader's history: it starts over at the leader's log start, with the leader's
/// producers. (Before, it cut at its own log start and kept producer 7's old batches:
/// `producers-held-by-follower`, seed 379551071.)
#[test]
fn a_follower_that_parts_from_its_leader_below_its_log_start_starts_over_there() {
    use crate::protocol::{EpochEndOffset, FetchResponse};
    let (mut b, tp, epoch) = follower_of_t0();
    let respond = answer_fetch;
    // Five committed records of producer 7, of which the leader's retention deleted three.
    let base = FetchResponse {
        log_start_offset: 3,
        ..first_fetch_answer(epoch, 5, Some(7))
    };
    assert_eq!(respond(&mut b, base.clone()), Some((5, Some(epoch))));
    let log = b.log(&tp).expect("log");
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (3, 5));
    // The leader's log now starts at 0 in a newer epoch only: it names no epoch of ours, and
    // its first epoch starts at 0, under our log start.
    let diverged = FetchResponse {
        fetch_offset: 5,
        high_watermark: 8,
        log_start_offset: 0,
        records: Vec::new(),
        diverging_epoch: Some(EpochEndOffset {
            epoch: None,
            end_offset: 0,
        }),
        ..base
    };
    assert_eq!(respond(&mut b, diverged), Some((0, None)));
    let log = b.log(&tp).expect("log");
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (0, 0));
    assert!(
        log.producer_state(7).is_none(),
        "the old history's producer"
    );
}

/// The same, where the leader still holds our epoch but ended it below our log start, above its
/// own: the follower starts over at the leader's log start, not at that epoch's end, or it would
/// lack the leader's records between the two (and, elected, answer them as deleted).
#[test]
fn a_follower_that_parts_below_its_log_start_starts_at_the_leaders_log_start() {
    use crate::protocol::{EpochEndOffset, FetchResponse};
    let (mut b, tp, epoch) = follower_of_t0();
    let base = FetchResponse {
        log_start_offset: 3,
        ..first_fetch_answer(epoch, 5, Some(7))
    };
    assert_eq!(answer_fetch(&mut b, base.clone()), Some((5, Some(epoch))));
    let diverged = FetchResponse {
        fetch_offset: 5,
        high_watermark: 8,
        log_start_offset: 1,
        records: Vec::new(),
        diverging_epoch: Some(EpochEndOffset {
            epoch: Some(epoch),
            end_offset: 2,
        }),
        ..base
    };
    assert_eq!(answer_fetch(&mut b, diverged), Some((1, None)));
    let log = b.log(&tp).expect("log");
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (1, 1));
}

/// Producer 7's state as a leader hands it over: one batch of one record at `offset`.
fn producer_7_below(offset: Offset) -> crate::protocol::ProducerSnapshot {
    crate::protocol::ProducerSnapshot {
        producer: 7,
        epoch: 0,
        batches: vec![crate::protocol::BatchMeta {
            first_seq: 0,
            last_seq: 0,
            first_offset: offset,
            last_offset: offset,
        }],
    }
}

/// The two-broker cluster's controller and its leader, broker 0.
fn pair() -> (Controller, Broker) {
    let controller = two_broker_controller();
    let leader = started_broker(&controller, 0);
    (controller, leader)
}

/// The messages among a step's effects.
fn sends(effects: Vec<Effect>) -> Vec<(u32, Message)> {
    effects
        .into_iter()
        .filter_map(|e| match e {
            Effect::Send { to, message } => Some((to, message)),
            _ => None,
        })
        .collect()
}

/// Delivers one message to the controller, completing its syncs, and returns what it sent.
fn to_controller(c: &mut Controller, from: u32, m: Message) -> Vec<(u32, Message)> {
    let mut cx = Context::new(0);
    c.on_message(&mut cx, from, m);
    let version = c.metadata().version;
    c.on_persisted(&mut cx, version);
    sends(cx.take_effects())
}

/// Broker 1 registers (again): a new incarnation, out of every ISR.
fn register_broker_1(c: &mut Controller) {
    let incarnation = c
        .metadata()
        .registration(1)
        .map_or(1, |r| r.incarnation + 1);
    let register = Message::RegisterBroker {
        broker: 1,
        lost_data: false,
        incarnation,
    };
    to_controller(c, 1, register);
}

/// The ISR change a broker proposed among the messages it sent.
fn proposal_in(sent: Vec<(u32, Message)>) -> Option<crate::protocol::AlterPartitionRequest> {
    sent.into_iter().find_map(|(_, m)| match m {
        Message::AlterPartition(req) => Some(req),
        _ => None,
    })
}

fn to_broker(b: &mut Broker, from: u32, m: Message) -> Vec<(u32, Message)> {
    let mut cx = Context::new(0);
    b.on_message(&mut cx, from, m);
    sends(cx.take_effects())
}

fn push_of(c: &Controller) -> Message {
    Message::UpdateMetadata {
        controller_epoch: 0,
        metadata: c.metadata().clone(),
    }
}

fn follower_fetch(broker_epoch: u64, leader_epoch: u32) -> Message {
    use crate::protocol::{FetchRequest, ReplicaId};
    let mut req = FetchRequest::by_consumer(TopicPartition::new("t", 0), 0, leader_epoch);
    req.replica = Some(ReplicaId {
        broker: 1,
        broker_epoch,
        connection: 0,
    });
    Message::Fetch(req)
}

#[test]
fn an_isr_expansion_refused_for_a_stale_broker_epoch_is_proposed_again_after_the_next_push() {
    let (mut c, mut leader) = pair();
    let tp = TopicPartition::new("t", 0);
    // Broker 1 restarts: it leaves the ISR under a new broker epoch; the leader hears of it.
    register_broker_1(&mut c);
    to_broker(&mut leader, 9, push_of(&c));
    let seen = |b: &Broker| b.metadata().registration(1).map(|r| r.epoch);
    let first = seen(&leader).expect("registered");
    // It registers once more (a retried request, say); this push does not reach the leader yet
    // and, broker 1 being out of the ISR already, leaves `t-0`'s partition epoch as it was.
    register_broker_1(&mut c);
    let epoch = leader.leader_epoch_of(&tp).expect("leads t-0");
    // Broker 1's older incarnation catches up: the leader proposes it for the ISR and is refused.
    let proposal = proposal_in(to_broker(&mut leader, 1, follower_fetch(first, epoch)))
        .expect("the caught-up follower is proposed");
    let answer = to_controller(&mut c, 0, Message::AlterPartition(proposal));
    assert!(matches!(
        &answer[..],
        [(0, Message::AlterPartitionResponse { result: Err(_), .. })]
    ));
    to_broker(&mut leader, 9, answer[0].1.clone());
    // The current incarnation fetches; the leader does not yet know its epoch.
    let current = c.metadata().registration(1).expect("registered").epoch;
    assert!(to_broker(&mut leader, 1, follower_fetch(current, epoch))
        .iter()
        .all(|(_, m)| !matches!(m, Message::AlterPartition(_))));
    // Had the push also changed `t-0` (a newer partition epoch: the controller committed another
    // change of it meanwhile), the leader takes its ISR and proposes again at once as well: a
    // refusal left standing there waited for yet another push, which a calm cluster may not send.
    let mut changed = c.metadata().clone();
    let ps = changed.partitions.iter_mut().find(|p| p.tp == tp);
    ps.expect("t-0").partition_epoch += 1;
    let push = Message::UpdateMetadata {
        controller_epoch: 0,
        metadata: changed,
    };
    let again = proposal_in(to_broker(&mut leader.clone(), 9, push));
    assert!(
        again.is_some(),
        "not proposed again after a push changing t-0"
    );
    // The push of the newer registration arrives. Before the fix the refusal was cleared only by
    // a change of `t-0` itself, so the ISR stayed {0} for good.
    let proposal =
        proposal_in(to_broker(&mut leader, 9, push_of(&c))).expect("proposed again after the push");
    let answer = to_controller(&mut c, 0, Message::AlterPartition(proposal));
    assert!(answer
        .iter()
        .any(|(to, m)| *to == 0
            && matches!(m, Message::AlterPartitionResponse { result: Ok(_), .. })));
    assert_eq!(c.metadata().partition(&tp).expect("t-0").isr, vec![0, 1]);
}

/// The controller's answer to the leader's own ISR change can come before the push of the
/// same change: the leader takes the new ISR with the new partition epoch from it, and the push
/// that follows (the same partition epoch) changes nothing. A leader that took the epoch
/// without the ISR would never learn the member was added (the push is no newer), and breaks
/// `leader-isr-follows-metadata` when the push is applied.
#[test]
fn the_answer_to_an_isr_change_gives_the_leader_the_new_isr_before_the_push() {
    let (mut c, mut leader) = pair();
    let tp = TopicPartition::new("t", 0);
    // Broker 1 restarts (out of the ISR) and catches up: proposed for the ISR.
    register_broker_1(&mut c);
    to_broker(&mut leader, 9, push_of(&c));
    assert_eq!(leader_state(&mut leader).isr, vec![0]);
    let registered = c.metadata().registration(1).expect("registered").epoch;
    let epoch = leader.leader_epoch_of(&tp).expect("leads t-0");
    let proposal = proposal_in(to_broker(&mut leader, 1, follower_fetch(registered, epoch)))
        .expect("the caught-up follower is proposed");
    let answers = to_controller(&mut c, 0, Message::AlterPartition(proposal));
    let (_, answer) = answers
        .into_iter()
        .find(|(to, m)| {
            *to == 0 && matches!(m, Message::AlterPartitionResponse { result: Ok(_), .. })
        })
        .expect("accepted");
    let committed = c.metadata().partition(&tp).expect("t-0").clone();
    assert_eq!(committed.isr, vec![0, 1]);
    // The answer first.
    to_broker(&mut leader, 9, answer);
    let ls = leader_state(&mut leader);
    assert_eq!(ls.isr, vec![0, 1]);
    assert_eq!(ls.partition_epoch, committed.partition_epoch);
    assert_eq!(rule_broken(&leader), Ok(()));
    // Then the push of the same change.
    to_broker(&mut leader, 9, push_of(&c));
    assert_eq!(leader_state(&mut leader).isr, vec![0, 1]);
    assert_eq!(rule_broken(&leader), Ok(()));
}

/// A proposal sent again names each member in the incarnation the leader saw catch up when it
/// first proposed it, not the one that has registered since (which may have lost, in a power
/// loss, what the old one fetched). Refused for that, it is proposed again without waiting for
/// a push when the leader already knows the new registration.
#[test]
fn a_resent_isr_proposal_names_the_incarnation_first_proposed() {
    let (mut c, mut leader) = pair();
    let tp = TopicPartition::new("t", 0);
    // Broker 1 restarts (out of the ISR) and its incarnation catches up: proposed, unanswered.
    register_broker_1(&mut c);
    to_broker(&mut leader, 9, push_of(&c));
    let first = c.metadata().registration(1).expect("registered").epoch;
    let epoch = leader.leader_epoch_of(&tp).expect("leads t-0");
    let proposed = proposal_in(to_broker(&mut leader, 1, follower_fetch(first, epoch))).is_some();
    assert!(proposed, "the caught-up follower is proposed");
    // It loses power and registers again; the leader hears of it, and the new incarnation
    // fetches (in this test from the same offset: what matters is the epoch it is named by).
    register_broker_1(&mut c);
    to_broker(&mut leader, 9, push_of(&c));
    let second = c.metadata().registration(1).expect("registered").epoch;
    assert_ne!(first, second);
    to_broker(&mut leader, 1, follower_fetch(second, epoch));
    // No answer came: the leader sends the proposal again, as it was.
    let mut cx = Context::new(0);
    leader.on_timer(
        &mut cx,
        crate::node::Timer::AlterPartitionTimeout(tp.clone()),
    );
    let resent: Vec<_> = sends(cx.take_effects())
        .into_iter()
        .filter_map(|(_, m)| match m {
            Message::AlterPartition(r) => Some(r),
            _ => None,
        })
        .collect();
    assert_eq!(resent.len(), 1, "{resent:?}");
    let named = resent[0].new_isr.iter().find(|(b, _)| *b == 1).map(|m| m.1);
    assert_eq!(named, Some(first), "{resent:?}");
    // The controller refuses it; the leader, knowing the new registration already, proposes
    // the current incarnation at once (it has caught up here) rather than wait for a push.
    let answer = to_controller(&mut c, 0, Message::AlterPartition(resent[0].clone()));
    let refusal = answer
        .into_iter()
        .find(|(_, m)| matches!(m, Message::AlterPartitionResponse { result: Err(_), .. }))
        .expect("refused for the stale broker epoch");
    let again = to_broker(&mut leader, 9, refusal.1)
        .into_iter()
        .find_map(|(_, m)| match m {
            Message::AlterPartition(r) => Some(r),
            _ => None,
        })
        .expect("proposed again without a push");
    let named = again.new_isr.iter().find(|(b, _)| *b == 1).map(|m| m.1);
    assert_eq!(named, Some(second));
    to_controller(&mut c, 0, Message::AlterPartition(again));
    assert_eq!(c.metadata().partition(&tp).expect("t-0").isr, vec![0, 1]);
}

#[test]
fn an_answer_to_a_heartbeat_of_an_earlier_registration_is_ignored() {
    let (mut c, mut leader) = pair();
    let current = leader.metadata().registration(0).expect("registered").epoch;
    // A heartbeat sent by an earlier registration, answered after this one was made.
    let metadata_version = c.metadata().version;
    let late = to_controller(
        &mut c,
        0,
        Message::Heartbeat {
            broker: 0,
            broker_epoch: current - 1,
            metadata_version,
            controller_epoch: 0,
        },
    );
    assert!(matches!(
        &late[..],
        [(0, Message::HeartbeatResponse { fenced: true, .. })]
    ));
    // Before the fix this made the broker drop every role and register again.
    let reaction = to_broker(&mut leader, 9, late[0].1.clone());
    assert!(reaction.is_empty(), "{reaction:?}");
    assert!(leader
        .leader_epoch_of(&TopicPartition::new("t", 0))
        .is_some());
    // An answer about its own registration is still taken.
    let own = Message::HeartbeatResponse {
        broker_epoch: current,
        fenced: true,
    };
    let reaction = to_broker(&mut leader, 9, own);
    let again = reaction.iter().find_map(|(_, m)| match m {
        Message::RegisterBroker {
            broker: 0,
            incarnation,
            ..
        } => Some(*incarnation),
        _ => None,
    });
    // Having dropped its roles, it registers as a new incarnation, numbered above the one
    // registered (the controller ignores one below the live registration as a late request of
    // an earlier run): the controller takes it out of every ISR and gives it a new broker
    // epoch, as after a restart.
    let registered = c
        .metadata()
        .registration(0)
        .expect("registered")
        .incarnation;
    assert!(again.is_some_and(|i| i > registered), "{reaction:?}");
    let register = reaction.into_iter().map(|(_, m)| m);
    let register = register.filter(|m| matches!(m, Message::RegisterBroker { .. }));
    for m in register {
        to_controller(&mut c, 0, m);
    }
    let epoch = c.metadata().registration(0).expect("registered").epoch;
    assert!(
        epoch > current,
        "registered again in a new epoch: {epoch} after {current}"
    );
}

/// The leader's state of `t-0` on `b`, for tests that break it by hand.
fn leader_state(b: &mut Broker) -> &mut crate::node::broker::LeaderState {
    let r = b
        .replicas
        .get_mut(&TopicPartition::new("t", 0))
        .expect("t-0");
    match &mut r.role {
        crate::node::Role::Leader(ls) => ls,
        other => panic!("not leading t-0: {other:?}"),
    }
}

fn rule_broken(b: &Broker) -> Result<(), &'static str> {
    b.check_invariants().map_err(|v| v.rule)
}

/// A replica that did not act on the metadata its broker applied breaks
/// `role-follows-metadata`: named leader again in a newer epoch but still leading the old one
/// (the push taken as a same-epoch update), named a follower of another broker or left without a
/// leader while still leading. Applied through the broker's own path, the same metadata holds.
#[test]
fn a_replica_that_did_not_act_on_the_applied_metadata_breaks_an_invariant() {
    assert_eq!(rule_broken(&single_leader()), Ok(()));
    let tp = TopicPartition::new("t", 0);
    type Change = fn(&mut crate::protocol::PartitionState);
    let changes: [Change; 3] = [
        |ps| ps.leader_epoch += 1,
        |ps| ps.leader = Some(5),
        // The controller leaves a partition without a leader in a new epoch.
        |ps| {
            ps.leader = None;
            ps.leader_epoch += 1;
        },
    ];
    for change in changes {
        let mut b = single_leader();
        let md = Arc::make_mut(&mut b.metadata);
        change(md.partitions.iter_mut().find(|p| p.tp == tp).unwrap());
        md.version += 1;
        assert_eq!(rule_broken(&b), Err("role-follows-metadata"));
        // The broker's own path acts on it (a new epoch, a new leader, or none).
        b.apply_metadata(&mut Context::new(0));
        assert_eq!(rule_broken(&b), Ok(()));
    }
    // Metadata of an earlier incarnation is not judged: nothing acts on it yet.
    let mut b = single_leader();
    let md = Arc::make_mut(&mut b.metadata);
    md.partitions
        .iter_mut()
        .find(|p| p.tp == tp)
        .unwrap()
        .leader_epoch += 1;
    b.registration = crate::node::broker::Registration::Registered {
        epoch: b.broker_epoch().unwrap(),
        min_version: b.metadata.version + 1,
    };
    assert_eq!(rule_broken(&b), Ok(()));
}

/// Each of the broker's invariants, broken by hand, is reported under its name.
#[test]
fn every_broker_invariant_trips_on_a_broken_state() {
    use crate::node::broker::{Progress, WaitingProduce};
    use crate::node::coordinator::Coordinator;
    let tp = TopicPartition::new("t", 0);
    let fresh = || {
        let mut b = single_leader();
        produce(&mut b, "a", 0);
        b
    };
    assert_eq!(rule_broken(&fresh()), Ok(()));
    type Corrupt<'a> = Box<dyn Fn(&mut Broker) + 'a>;
    let cases: Vec<(&str, Corrupt)> = vec![
        (
            "synced-within-log",
            Box::new(|b| b.replicas.get_mut(&tp).unwrap().synced_offset = 9),
        ),
        (
            "leader-epoch",
            Box::new(|b| b.replicas.get_mut(&tp).unwrap().leader_epoch = Some(7)),
        ),
        (
            "leader-epoch-cached",
            Box::new(|b| b.replicas.get_mut(&tp).unwrap().log.assign_epoch(7, 1)),
        ),
        (
            "leader-epoch-start-within-log",
            Box::new(|b| leader_state(b).epoch_start = 9),
        ),
        ("isr-has-leader", Box::new(|b| leader_state(b).isr = vec![])),
        (
            "isr-has-leader",
            Box::new(|b| leader_state(b).pending_isr = Some(vec![5])),
        ),
        (
            "isr-within-replicas",
            Box::new(|b| leader_state(b).isr = vec![0, 5]),
        ),
        (
            "follower-progress-within-log",
            Box::new(|b| {
                let p = Progress {
                    log_end: 9,
                    synced: 0,
                    broker_epoch: 1,
                };
                leader_state(b).followers.insert(1, p);
            }),
        ),
        (
            "waiting-produce-within-log",
            Box::new(|b| {
                leader_state(b).waiting_produce.push(WaitingProduce {
                    client: 100,
                    correlation: 1,
                    batch: 1,
                    acks: Acks::All,
                    base_offset: 4,
                    last_offset: 4,
                })
            }),
        ),
        (
            "coordinator-leads",
            Box::new(|b| {
                let c = Coordinator::replay(0, &crate::log::PartitionLog::new());
                b.coordinators.insert(0, c);
            }),
        ),
    ];
    for (rule, corrupt) in cases {
        let mut b = fresh();
        corrupt(&mut b);
        assert_eq!(rule_broken(&b), Err(rule));
    }
    // A follower acting in an epoch other than its replica's.
    let mut f = follower();
    if let crate::node::Role::Follower(fs) = &mut f.replicas.get_mut(&tp).unwrap().role {
        fs.epoch += 1;
    }
    assert_eq!(rule_broken(&f), Err("follower-epoch"));
}

/// An ISR member the leader knows to be below its high watermark (a follower let into the ISR
/// too early, or a high watermark moved past a member) trips `isr-holds-hw`; progress reported
/// under another registration than the one the leader knows does not count.
#[test]
fn an_isr_member_below_the_high_watermark_is_a_broken_invariant() {
    use crate::node::broker::Progress;
    let tp = TopicPartition::new("t", 0);
    let controller = two_broker_controller();
    let mut leader = started_broker(&controller, 0);
    let registered = leader.metadata.registration(1).expect("broker 1").epoch;
    append_one_record(&mut leader, &tp, Some(1));
    let at = |log_end, broker_epoch| Progress {
        log_end,
        synced: 0,
        broker_epoch,
    };
    leader_state(&mut leader)
        .followers
        .insert(1, at(1, registered));
    assert_eq!(rule_broken(&leader), Ok(()));
    leader_state(&mut leader)
        .followers
        .insert(1, at(0, registered + 1));
    assert_eq!(rule_broken(&leader), Ok(()));
    leader_state(&mut leader)
        .followers
        .insert(1, at(0, registered));
    assert_eq!(rule_broken(&leader), Err("isr-holds-hw"));
    // Out of the ISR, a follower may lag as far as it likes (the controller's answer to the
    // leader's shrink, ahead of the push that will say the same).
    let ls = leader_state(&mut leader);
    ls.isr = vec![0];
    ls.partition_epoch += 1;
    assert_eq!(rule_broken(&leader), Ok(()));
}

/// A leader's ISR against the metadata its broker applied (`leader-isr-follows-metadata`): at
/// the same partition epoch both describe one committed ISR, and the leader is never at an
/// older one. A leader ahead (the controller's answer to its own change came first) is fine;
/// one that took a partition epoch without its ISR, or did not take a newer one, is not.
#[test]
fn a_leader_whose_isr_is_not_the_applied_metadata_s_breaks_an_invariant() {
    let tp = TopicPartition::new("t", 0);
    let controller = two_broker_controller();
    let mut leader = started_broker(&controller, 0);
    assert_eq!(rule_broken(&leader), Ok(()));
    // The answer to its shrink came first: ahead of the metadata, with the new ISR.
    let ls = leader_state(&mut leader);
    ls.isr = vec![0];
    ls.partition_epoch += 1;
    assert_eq!(rule_broken(&leader), Ok(()));
    // The push of that partition epoch with the same ISR: still fine.
    let mut pushed = (*leader.metadata).clone();
    let ps = pushed.partitions.iter_mut().find(|p| p.tp == tp).unwrap();
    ps.partition_epoch += 1;
    ps.isr = vec![0];
    pushed.version += 1;
    leader.metadata = Arc::new(pushed.clone());
    assert_eq!(rule_broken(&leader), Ok(()));
    // The same partition epoch, another ISR: the leader took the epoch but not the members.
    leader_state(&mut leader).isr = vec![0, 1];
    assert_eq!(rule_broken(&leader), Err("leader-isr-follows-metadata"));
    let v = leader.check_invariants().unwrap_err();
    assert!(v.detail.starts_with("t-0: "), "{v}");
    // A newer partition epoch the leader did not take.
    let ls = leader_state(&mut leader);
    ls.isr = vec![0];
    ls.partition_epoch -= 1;
    assert_eq!(rule_broken(&leader), Err("leader-isr-follows-metadata"));
    // Applied through the broker's own path, the newer state is taken.
    let mut newer = pushed;
    let ps = newer.partitions.iter_mut().find(|p| p.tp == tp).unwrap();
    ps.partition_epoch += 1;
    newer.version += 1;
    leader.metadata = Arc::new(newer);
    leader.apply_metadata(&mut Context::new(0));
    assert_eq!(rule_broken(&leader), Ok(()));
}

/// The leader against the ISR the controller committed: a member it does not count (in
/// neither its ISR nor a proposal in flight) is reported; a committed ISR smaller than the
/// leader's, or one of another leader epoch (not yet pushed to it), is not.
#[test]
fn a_committed_isr_member_the_leader_does_not_count_is_a_broken_invariant() {
    let tp = TopicPartition::new("t", 0);
    let controller = two_broker_controller();
    let mut leader = started_broker(&controller, 0);
    let committed = controller.metadata().clone();
    assert_eq!(committed.partition(&tp).expect("t-0").isr, vec![0, 1]);
    let rule =
        |b: &Broker, md: &ClusterMetadata| b.check_against_committed(md, None).map_err(|v| v.rule);
    assert_eq!(rule(&leader, &committed), Ok(()));
    // The leader dropped broker 1 while the controller kept it: the high watermark could pass it.
    leader_state(&mut leader).isr = vec![0];
    assert_eq!(rule(&leader, &committed), Err("isr-known-to-leader"));
    let v = leader
        .check_against_committed(&committed, None)
        .unwrap_err();
    assert!(
        v.detail.starts_with("t-0: ") && v.detail.contains("broker 1"),
        "{v}"
    );
    // A proposal in flight counts its members.
    leader_state(&mut leader).pending_isr = Some(vec![0, 1]);
    assert_eq!(rule(&leader, &committed), Ok(()));
    leader_state(&mut leader).pending_isr = None;
    // A newer leader epoch the leader has not heard of yet: not this leader's ISR to count.
    let mut newer = committed.clone();
    newer.partitions[0].leader_epoch += 1;
    assert_eq!(rule(&leader, &newer), Ok(()));
    // Nor another leader's.
    let mut other = committed.clone();
    other.partitions[0].leader = Some(1);
    assert_eq!(rule(&leader, &other), Ok(()));
    // A committed shrink the leader has not applied yet leaves it counting more: safe.
    let mut shrunk = committed;
    shrunk.partitions[0].isr = vec![0];
    assert_eq!(rule(&leader, &shrunk), Ok(()));
}

/// A leader's record of a follower's progress, checked against the follower: more than it
/// holds, or synced past what it synced, is reported; a record from another incarnation, epoch
/// or leader is not this follower's to answer for.
#[test]
fn a_leader_counting_more_than_its_follower_holds_is_a_broken_invariant() {
    use crate::node::broker::Progress;
    let tp = TopicPartition::new("t", 0);
    let controller = two_broker_controller();
    let mut follower = started_broker(&controller, 1);
    let registered = follower.metadata.registration(1).expect("broker 1").epoch;
    append_one_record(&mut follower, &tp, None);
    // The follower holds one record (log end 1) and has synced none.
    let counted = |log_end, synced, broker_epoch| Progress {
        log_end,
        synced,
        broker_epoch,
    };
    let rule = |p: Progress, leader, epoch| {
        follower
            .check_recorded_progress(leader, &tp, epoch, &p)
            .map_err(|v| v.rule)
    };
    assert_eq!(rule(counted(1, 0, registered), 0, 0), Ok(()));
    assert_eq!(
        rule(counted(2, 0, registered), 0, 0),
        Err("progress-held-by-follower")
    );
    assert_eq!(
        rule(counted(1, 1, registered), 0, 0),
        Err("progress-held-by-follower")
    );
    // Another incarnation of the follower, another epoch, another leader: not checked here.
    assert_eq!(rule(counted(2, 0, registered + 1), 0, 0), Ok(()));
    assert_eq!(rule(counted(2, 0, registered), 0, 1), Ok(()));
    assert_eq!(rule(counted(2, 0, registered), 2, 0), Ok(()));
    // The leader's side lists what it counts.
    let mut leader = started_broker(&controller, 0);
    leader_state(&mut leader)
        .followers
        .insert(1, counted(1, 0, registered));
    let mut recorded = Vec::new();
    let listed = leader.each_recorded_progress(|tp, epoch, f, p, _| {
        recorded.push((tp.clone(), epoch, f, *p));
        Ok(())
    });
    assert_eq!(listed, Ok(()));
    assert_eq!(
        recorded,
        vec![(tp.clone(), 0, 1, counted(1, 0, registered))]
    );
}

/// A member of the committed ISR below its leader's high watermark, in the incarnation the
/// controller registered, is reported; another incarnation is not this one's to answer for.
#[test]
fn a_committed_isr_member_below_the_leaders_high_watermark_is_a_broken_invariant() {
    let tp = TopicPartition::new("t", 0);
    let controller = two_broker_controller();
    let mut leader = started_broker(&controller, 0);
    let follower = started_broker(&controller, 1);
    let committed = controller.metadata().clone();
    let registered = committed.registration(1).expect("broker 1").epoch;
    append_one_record(&mut leader, &tp, None);
    assert_eq!(
        members(&leader, &committed),
        vec![(tp.clone(), 0, 1, registered)]
    );
    leader
        .replicas
        .get_mut(&tp)
        .unwrap()
        .log
        .set_high_watermark(1)
        .expect("hw");
    assert_eq!(
        members(&leader, &committed),
        vec![(tp.clone(), 1, 1, registered)]
    );
    let rule = |hw, epoch| {
        follower
            .check_isr_member_holds(&tp, hw, epoch)
            .map_err(|v| v.rule)
    };
    // The follower holds nothing: below a high watermark of 1, not below 0.
    assert_eq!(rule(1, registered), Err("isr-member-holds-hw"));
    assert_eq!(rule(0, registered), Ok(()));
    assert_eq!(rule(1, registered + 1), Ok(()));
    // Not the leader of the committed epoch: nothing to check from it.
    let mut newer = committed;
    newer.partitions[0].leader_epoch += 1;
    assert!(members(&leader, &newer).is_empty());
}

/// With fsync durability a committed ISR member must also have synced what lies below its
/// leader's high watermark: holding it in the page cache is not enough, as a power loss takes it.
#[test]
fn a_committed_isr_member_unsynced_below_the_high_watermark_is_a_broken_invariant() {
    let tp = TopicPartition::new("t", 0);
    let controller = two_broker_controller();
    let mut follower = started_broker_with(&controller, fsync_config(1));
    let registered = controller
        .metadata()
        .registration(1)
        .expect("broker 1")
        .epoch;
    append_one_record(&mut follower, &tp, None);
    let rule = |b: &Broker| {
        b.check_isr_member_holds(&tp, 1, registered)
            .map_err(|v| v.rule)
    };
    // It holds offset 0 but has synced nothing.
    assert_eq!(rule(&follower), Err("isr-member-syncs-hw"));
    follower.replicas.get_mut(&tp).unwrap().synced_offset = 1;
    assert_eq!(rule(&follower), Ok(()));
    // Without fsync durability the log end is what counts.
    let mut cached = started_broker(&controller, 1);
    append_one_record(&mut cached, &tp, None);
    assert_eq!(rule(&cached), Ok(()));
}

/// Broker 1's fetch of `t-0` from `offset` as `leader`'s follower in its current registration,
/// reporting `synced_offset` synced.
fn fetch_by_follower_1(leader: &Broker, offset: Offset, synced_offset: Offset) -> Message {
    let tp = TopicPartition::new("t", 0);
    let epoch = leader.leader_epoch_of(&tp).expect("leads t-0");
    let broker_epoch = leader.metadata().registration(1).expect("broker 1").epoch;
    let mut req = crate::protocol::FetchRequest::by_consumer(tp, offset, epoch);
    req.replica = Some(crate::protocol::ReplicaId {
        broker: 1,
        broker_epoch,
        connection: 0,
    });
    req.synced_offset = synced_offset;
    Message::Fetch(req)
}

/// The ISR `leader` proposes on `fetch_by_follower_1`, if it proposes one.
fn isr_proposed_on_fetch(
    leader: &mut Broker,
    offset: Offset,
    synced_offset: Offset,
) -> Option<Vec<u32>> {
    let fetch = fetch_by_follower_1(leader, offset, synced_offset);
    proposal_in(to_broker(leader, 1, fetch))
        .map(|req| req.new_isr.iter().map(|(b, _)| *b).collect())
}

/// With fsync durability a follower out of the ISR is proposed for it only once it has synced
/// up to the high watermark: written is not enough (a crash that keeps the page cache would
/// otherwise let it rejoin with nothing synced, and `isr-member-syncs-hw` break).
#[test]
fn an_fsync_follower_joins_the_isr_only_once_synced_up_to_the_high_watermark() {
    let tp = TopicPartition::new("t", 0);
    let controller = two_broker_controller();
    let mut leader = started_broker_with(&controller, fsync_config(0));
    // Broker 1 is out of the ISR; the leader commits one record alone, once it has synced it.
    leader_state(&mut leader).isr = vec![0];
    assert_eq!(produce(&mut leader, "a", 0), vec![]);
    leader.on_persisted(&mut Context::new(0), u64::MAX);
    assert_eq!(leader.replicas()[&tp].log.high_watermark(), 1);
    // It holds the record (it fetches from offset 1) but has synced nothing.
    assert_eq!(isr_proposed_on_fetch(&mut leader, 1, 0), None);
    assert_eq!(isr_proposed_on_fetch(&mut leader, 1, 1), Some(vec![0, 1]));
}

/// A follower the leader's metadata shows fenced (its session expired on the controller) is
/// not proposed for the ISR however caught up it is: the controller would refuse it, and the
/// refusal holds every ISR change of the partition back, shrinks included, until the next
/// metadata push.
#[test]
fn a_fenced_follower_is_not_proposed_for_the_isr() {
    let controller = two_broker_controller();
    let mut leader = started_broker(&controller, 0);
    leader_state(&mut leader).isr = vec![0];
    produce(&mut leader, "a", 0);
    let set_fenced = |leader: &mut Broker, fenced: bool| {
        let brokers = &mut Arc::make_mut(&mut leader.metadata).brokers;
        brokers
            .iter_mut()
            .find(|r| r.broker == 1)
            .expect("broker 1")
            .fenced = fenced;
    };
    set_fenced(&mut leader, true);
    assert_eq!(isr_proposed_on_fetch(&mut leader, 1, 1), None);
    set_fenced(&mut leader, false);
    assert_eq!(isr_proposed_on_fetch(&mut leader, 1, 1), Some(vec![0, 1]));
}

/// A follower's progress counts for the ISR only in the incarnation that fetched it: once its
/// broker registered again (it restarted, and may have lost what it had not synced), what it
/// fetched before says nothing of what it holds (KIP-903).
#[test]
fn a_follower_s_progress_from_an_earlier_registration_does_not_propose_it() {
    use crate::node::broker::Progress;
    let tp = TopicPartition::new("t", 0);
    let controller = two_broker_controller();
    let mut leader = started_broker(&controller, 0);
    leader_state(&mut leader).isr = vec![0];
    produce(&mut leader, "a", 0);
    let registered = leader.metadata().registration(1).expect("broker 1").epoch;
    let caught_up = |broker_epoch| Progress {
        log_end: 1,
        synced: 1,
        broker_epoch,
    };
    leader_state(&mut leader)
        .followers
        .insert(1, caught_up(registered));
    Arc::make_mut(&mut leader.metadata)
        .brokers
        .iter_mut()
        .find(|r| r.broker == 1)
        .expect("broker 1")
        .epoch = registered + 1;
    let proposed = |leader: &mut Broker| {
        let mut cx = Context::new(0);
        leader.try_expand_isr(&mut cx, &tp);
        proposal_in(sends(cx.take_effects())).map(|req| req.new_isr.len())
    };
    assert_eq!(proposed(&mut leader), None);
    leader_state(&mut leader)
        .followers
        .insert(1, caught_up(registered + 1));
    assert_eq!(proposed(&mut leader), Some(2));
}

/// What `each_committed_isr_member` hands its check.
fn members(
    leader: &Broker,
    committed: &ClusterMetadata,
) -> Vec<(TopicPartition, Offset, u32, u64)> {
    let mut out = Vec::new();
    let listed = leader.each_committed_isr_member(committed, |tp, hw, m, epoch| {
        out.push((tp.clone(), hw, m, epoch));
        Ok(())
    });
    assert_eq!(listed, Ok(()));
    out
}

/// `producers-held-by-follower`: a follower the leader recorded at its own log end holds the
/// leader's producers; one stamped entry the follower has under another producer epoch is
/// named. Behind the leader's end, or in another incarnation, it is not judged.
#[test]
fn a_follower_at_the_leaders_end_with_another_producer_state_is_a_broken_invariant() {
    use crate::node::broker::Progress;
    use crate::protocol::LogEntry;
    let tp = TopicPartition::new("t", 0);
    let controller = two_broker_controller();
    let stamped = |producer_epoch| LogEntry {
        offset: 0,
        epoch: 0,
        record: Record::keyed("k", "v"),
        producer: Some(ProducerStamp::batch(7, producer_epoch, 0)),
    };
    let with_entry = |b: &mut Broker, entry: LogEntry| {
        let log = &mut b.replicas.get_mut(&tp).expect("a replica").log;
        log.append_entries(&[entry]).expect("append");
    };
    let mut leader = started_broker(&controller, 0);
    with_entry(&mut leader, stamped(0));
    let leader_log = leader.log(&tp).expect("t-0").clone();
    let mut follower = started_broker(&controller, 1);
    let registered = follower.metadata.registration(1).expect("broker 1").epoch;
    let at = |log_end, broker_epoch| Progress {
        log_end,
        synced: 0,
        broker_epoch,
    };
    let rule = |f: &Broker, p: Progress| {
        f.check_producers_held(0, &tp, 0, &p, &leader_log)
            .map_err(|v| v.rule)
    };
    // Behind the leader: not judged.
    assert_eq!(rule(&follower, at(0, registered)), Ok(()));
    let mut same = follower.clone();
    with_entry(&mut same, stamped(0));
    assert_eq!(rule(&same, at(1, registered)), Ok(()));
    with_entry(&mut follower, stamped(1));
    assert_eq!(
        rule(&follower, at(1, registered)),
        Err("producers-held-by-follower")
    );
    assert_eq!(rule(&follower, at(1, registered + 1)), Ok(()));
}

/// Appends one record (`k=v`, epoch 0) at offset 0 of `tp`'s log, and sets the high watermark
/// to `hw` if given.
fn append_one_record(b: &mut Broker, tp: &TopicPartition, hw: Option<Offset>) {
    let log = &mut b.replicas.get_mut(tp).expect("a replica").log;
    let entry = crate::protocol::LogEntry {
        offset: 0,
        epoch: 0,
        record: Record::keyed("k", "v"),
        producer: None,
    };
    log.append_entries(&[entry]).expect("append");
    if let Some(hw) = hw {
        log.set_high_watermark(hw).expect("hw");
    }
}

#[test]
fn an_append_error_on_the_leader_is_a_broken_invariant_not_a_client_error() {
    let mut b = single_leader();
    let tp = TopicPartition::new("t", 0);
    // A log whose latest epoch is past the one the broker leads in: appending must fail.
    b.replicas.get_mut(&tp).unwrap().log.assign_epoch(9, 0);
    // Before, the producer was told UnknownTopicOrPartition and retried for ever.
    assert_eq!(produce(&mut b, "a", 0), vec![]);
    let v = b
        .check_invariants()
        .expect_err("the append error is recorded");
    assert_eq!(v.rule, "leader-append");
    assert!(v.detail.starts_with("t-0: "), "{v}");
}

#[test]
fn a_fetch_answer_that_does_not_continue_the_log_is_a_broken_invariant() {
    use crate::protocol::{FetchResponse, LogEntry};
    let (mut b, tp, epoch) = follower_of_t0();
    let gap = FetchResponse {
        tp: tp.clone(),
        fetch_offset: 0,
        error: None,
        leader_epoch: epoch,
        high_watermark: 0,
        log_start_offset: 0,
        // The leader reads from the fetch offset: an answer starting elsewhere is impossible.
        records: vec![LogEntry {
            offset: 5,
            epoch,
            record: Record::keyed("k", "v"),
            producer: None,
        }],
        diverging_epoch: None,
        producers: Vec::new(),
        connection: 0,
    };
    to_broker(&mut b, 0, Message::FetchResponse(gap));
    assert_eq!(rule_broken(&b), Err("follower-append"));
}

#[test]
fn a_follower_whose_whole_log_lies_past_the_leaders_end_restarts_at_its_log_start() {
    use crate::protocol::{FetchResponse, LogEntry};
    let (mut b, tp, epoch) = follower_of_t0();
    // The follower's log: retention left only offsets 20..22 of what an old leader had.
    let r = b.replicas.get_mut(&tp).expect("t-0");
    r.log.reset_to(20);
    let entries: Vec<LogEntry> = (20..22)
        .map(|o| LogEntry {
            offset: o,
            epoch,
            record: Record::keyed("k", "old"),
            producer: None,
        })
        .collect();
    r.log.append_entries(&entries).expect("continues the log");
    if let crate::node::Role::Follower(fs) = &mut r.role {
        fs.in_flight = Some(22);
    }
    // An unclean election made a replica whose log ends at 12 the leader: the fetch at 22 is out
    // of range, and no epoch is left in common. Before, the follower asked again at 22 for ever.
    let out_of_range = FetchResponse {
        tp: tp.clone(),
        fetch_offset: 22,
        error: Some(ErrorCode::OffsetOutOfRange),
        leader_epoch: epoch,
        high_watermark: 12,
        log_start_offset: 3,
        records: Vec::new(),
        diverging_epoch: None,
        producers: vec![producer_7_below(2)],
        connection: 0,
    };
    let mut cx = Context::new(0);
    b.on_message(&mut cx, 0, Message::FetchResponse(out_of_range));
    let effects = cx.take_effects();
    // The emptied log and the leader's producer state are one write.
    let restarts: Vec<String> = effects
        .iter()
        .filter_map(|e| match e {
            Effect::Persist(
                op @ (crate::node::DiskOp::RestartWithProducers { .. }
                | crate::node::DiskOp::ResetLog { .. }),
            ) => Some(op.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(restarts, ["reset log t-0 to start at 3, with 1 producers"]);
    assert_eq!(fetched_at(effects), Some((3, None)));
    let log = b.log(&tp).expect("log");
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (3, 3));
    assert_eq!(log.producer_state(7).map(|s| s.batches.len()), Some(1));
    assert_eq!(rule_broken(&b), Ok(()));
}

#[test]
fn a_parked_fetch_whose_offset_retention_deleted_is_answered_out_of_range() {
    use crate::protocol::FetchRequest;
    let mut b = single_leader();
    let tp = TopicPartition::new("t", 0);
    for (i, v) in ["a", "b", "c"].iter().enumerate() {
        produce(&mut b, v, i as u64);
    }
    let epoch = b.leader_epoch_of(&tp).expect("leads");
    // A consumer's fetch at 1 waits (a new leader's, say, before it knows the true high
    // watermark) while retention moves the log start to 2.
    let parked = FetchRequest::by_consumer(tp.clone(), 1, epoch);
    leader_state(&mut b).parked_fetches.push((300, parked));
    let mut cx = Context::new(0);
    assert!(b.set_log_start(&mut cx, &tp, 2));
    b.leader_progress(&mut cx, &tp);
    let answer = sends(cx.take_effects())
        .into_iter()
        .find_map(|(to, m)| match m {
            Message::FetchResponse(r) if to == 300 => Some(r),
            _ => None,
        })
        .expect("answered");
    // Before, it was answered with the records from 2: offset 1 skipped without a word.
    assert_eq!(answer.error, Some(ErrorCode::OffsetOutOfRange));
    assert!(answer.records.is_empty());
    assert_eq!(answer.log_start_offset, 2);
}

/// A one-broker leader of `t-0` deleting records older than 10 s, holding three committed
/// records stamped at `stamps`.
fn leader_with_age_retention(stamps: [i64; 3]) -> Broker {
    let mut config = BrokerConfig::new(0, vec![9]);
    config.retention = crate::log::RetentionPolicy {
        max_age_ms: Some(10_000),
        max_bytes: None,
    };
    config.retention_check_ms = Some(1_000);
    let mut b = single_leader_with(config);
    for (i, ts) in stamps.into_iter().enumerate() {
        assert_eq!(
            produce_stamped(&mut b, &format!("v{i}"), i as u64, ts),
            vec![Ok(i as u64)]
        );
    }
    b
}

/// Runs a retention check at `now_ms` on the broker's clock; returns `t-0`'s log start.
fn retention_at(b: &mut Broker, now_ms: u64) -> Offset {
    let mut cx = Context::new(now_ms);
    b.on_timer(&mut cx, crate::node::Timer::Retention);
    assert_eq!(b.check_invariants(), Ok(()));
    b.replicas()[&TopicPartition::new("t", 0)]
        .log
        .log_start_offset()
}

/// A broker whose wall clock is set back an hour between two retention checks: the records are
/// in its future, so nothing goes, nothing panics, the log start stays where it was and every
/// invariant holds; once the clock is past them again, retention resumes.
#[test]
fn a_broker_handed_an_earlier_now_deletes_nothing_more_and_keeps_its_invariants() {
    let t = 50_000_000;
    let mut b = leader_with_age_retention([t, t + 1_000, t + 2_000]);
    assert_eq!(retention_at(&mut b, (t + 11_500) as u64), 2);
    assert_eq!(retention_at(&mut b, (t + 11_500 - 3_600_000) as u64), 2);
    assert_eq!(retention_at(&mut b, 0), 2);
    assert_eq!(retention_at(&mut b, (t + 12_500) as u64), 3);
}

/// A wall clock read past `i64::MAX` (a clock jumped absurdly far ahead) is a time far ahead:
/// every committed record is past its age. Before, `now as i64` wrapped it to -1, a time before
/// every record, and retention deleted nothing.
#[test]
fn a_broker_whose_clock_reads_past_i64_max_treats_it_as_far_ahead() {
    let mut b = leader_with_age_retention([1_000, 2_000, 3_000]);
    assert_eq!(retention_at(&mut b, u64::MAX), 3);
}

#[test]
fn retention_past_the_high_watermark_is_a_broken_invariant() {
    use super::retention_within_committed;
    assert_eq!(retention_within_committed(5, 5), Ok(()));
    let v = retention_within_committed(6, 5).expect_err("past the high watermark");
    assert_eq!(v.rule, "retention-below-hw");
}

/// Retention deleted producer 7's only batch; a follower that lost its log restarts at the
/// leader's log start. The leader hands it the producer state it can no longer fetch, so a
/// retry of that batch is still a retry once the follower leads. Before, the follower knew no
/// producer 7 and took the retry for a new producer's first batch (a duplicate, seed 507639).
#[test]
fn a_follower_restarted_at_the_log_start_takes_the_producer_state_retention_deleted() {
    use crate::log::{BatchCheck, ProducerState, SequenceRules};
    use crate::protocol::{FetchResponse, ReplicaId};
    let c = two_broker_controller();
    let tp = TopicPartition::new("t", 0);
    let epoch = c.metadata().partition(&tp).expect("t-0").leader_epoch;
    let broker_epoch = c.metadata().registration(1).expect("registered").epoch;
    let mut leader = started_broker(&c, 0);
    produce_in(&mut leader, "a", 0, 0);
    produce_with(
        &mut leader,
        Record::keyed("k", "b"),
        ProducerStamp::batch(8, 0, 0),
    );
    produce_with(
        &mut leader,
        Record::keyed("k", "c"),
        ProducerStamp::batch(8, 0, 1),
    );
    let fetch = |offset: Offset| {
        let mut req = crate::protocol::FetchRequest::by_consumer(tp.clone(), offset, epoch);
        req.replica = Some(ReplicaId {
            broker: 1,
            broker_epoch,
            connection: 0,
        });
        req.last_fetched_epoch = (offset > 0).then_some(epoch);
        Message::Fetch(req)
    };
    // Broker 1 copies all three: the high watermark reaches 3; retention then deletes 0..2.
    to_broker(&mut leader, 1, fetch(3));
    assert!(leader.set_log_start(&mut Context::new(0), &tp, 2));
    // Broker 1 comes back from a power loss with an empty log and fetches at 0.
    let answer = to_broker(&mut leader, 1, fetch(0))
        .into_iter()
        .find_map(|(_, m)| match m {
            Message::FetchResponse(r) => Some(r),
            _ => None,
        })
        .expect("answered");
    assert_eq!(answer.error, Some(ErrorCode::OffsetOutOfRange));
    let given: Vec<u64> = answer.producers.iter().map(|p| p.producer).collect();
    assert_eq!(given, vec![7, 8]);
    let mut follower = follower();
    let mut cx = Context::new(0);
    follower.on_message(&mut cx, 0, Message::FetchResponse(answer));
    let rest = FetchResponse {
        tp: tp.clone(),
        fetch_offset: 2,
        error: None,
        leader_epoch: epoch,
        high_watermark: 3,
        log_start_offset: 2,
        records: leader
            .log(&tp)
            .expect("log")
            .read_within(2, 3, 10, u64::MAX),
        diverging_epoch: None,
        producers: Vec::new(),
        connection: 0,
    };
    follower.on_message(&mut cx, 0, Message::FetchResponse(rest));
    // What the follower wrote recovers the same state after a restart.
    let mut image = crate::node::BrokerImage::default();
    for e in cx.take_effects() {
        if let Effect::Persist(op) = e {
            image.apply(&op).expect("applies");
        }
    }
    let (ours, theirs) = (
        follower.log(&tp).expect("log"),
        leader.log(&tp).expect("log"),
    );
    assert_eq!((ours.log_start_offset(), ours.log_end_offset()), (2, 3));
    for p in [7, 8] {
        assert_eq!(
            ours.producer_state(p),
            theirs.producer_state(p),
            "producer {p}"
        );
        assert_eq!(image.logs[&tp].producer_state(p), theirs.producer_state(p));
    }
    let retry = ProducerState::check(
        ours.producer_state(7),
        ProducerStamp::batch(7, 0, 0),
        1,
        SequenceRules::default(),
    );
    assert_eq!(
        retry,
        BatchCheck::Duplicate {
            first_offset: 0,
            last_offset: 0
        }
    );
    assert_eq!(rule_broken(&follower), Ok(()));
}

fn assert_sets_timer(effects: &[Effect], timer: &crate::node::Timer) {
    assert!(
        effects
            .iter()
            .any(|e| matches!(e, Effect::SetTimer { timer: t, .. } if t == timer)),
        "no {timer:?} set: {effects:?}"
    );
}

/// A member the controller's push adds to the ISR gets a lag timer at once: the leader adopts
/// the newer partition state (its own proposal's answer may be lost), and a member with no lag
/// timer would never be shrunk out again however far it fell behind, holding up every
/// acks=all produce.
#[test]
fn a_member_added_to_the_isr_by_a_push_is_timed_for_lag() {
    let tp = TopicPartition::new("t", 0);
    let controller = two_broker_controller();
    let mut leader = started_broker(&controller, 0);
    leader_state(&mut leader).isr = vec![0];
    let mut md = controller.metadata().clone();
    md.version += 1;
    let p = md.partitions.iter_mut().find(|p| p.tp == tp).expect("t-0");
    p.partition_epoch += 1;
    p.isr = vec![0, 1];
    let mut cx = Context::new(0);
    let push = Message::UpdateMetadata {
        controller_epoch: 0,
        metadata: md,
    };
    leader.on_message(&mut cx, 9, push);
    assert_eq!(leader_state(&mut leader).isr, vec![0, 1]);
    let lag = crate::node::Timer::FollowerLag {
        tp: tp.clone(),
        replica: 1,
    };
    assert_sets_timer(&cx.take_effects(), &lag);
}

/// A broker that becomes a partition's leader times every other ISR member for lag at once: a
/// follower cut off from it (and not from the controller, so its session lives on) would
/// otherwise stay in the ISR for good, holding up every acks=all produce.
#[test]
fn a_new_leader_times_every_isr_follower_for_lag() {
    let tp = TopicPartition::new("t", 0);
    let controller = two_broker_controller();
    let mut md = controller.metadata().clone();
    let p = md.partitions.iter().find(|p| p.tp == tp).expect("t-0");
    let (old_leader, isr) = (p.leader.expect("a leader"), p.isr.clone());
    assert_eq!(isr, vec![0, 1]);
    let new_leader = 1 - old_leader;
    let mut b = started_broker(&controller, new_leader);
    md.version += 1;
    let p = md.partitions.iter_mut().find(|p| p.tp == tp).expect("t-0");
    p.leader = Some(new_leader);
    p.leader_epoch += 1;
    p.partition_epoch += 1;
    let mut cx = Context::new(0);
    let push = Message::UpdateMetadata {
        controller_epoch: 0,
        metadata: md,
    };
    b.on_message(&mut cx, 9, push);
    let lag = crate::node::Timer::FollowerLag {
        tp: tp.clone(),
        replica: old_leader,
    };
    assert_sets_timer(&cx.take_effects(), &lag);
}

/// A leader's ISR proposal sent to a controller that is not the active one is sent again to the
/// one it names at once, not after the proposal's timeout (seed 502324: the leader stayed the
/// only in-sync replica for two seconds with both followers caught up).
#[test]
fn an_isr_proposal_refused_as_not_controller_goes_to_the_named_controller_at_once() {
    let c = two_broker_controller();
    let tp = TopicPartition::new("t", 0);
    let mut b = Broker::bootstrapped(
        Arc::new(BrokerConfig::new(0, vec![9, 8])),
        c.metadata().clone(),
    );
    b.on_start(&mut Context::new(0));
    // Broker 1 lags behind a record: the leader proposes an ISR of itself alone, to 9.
    produce(&mut b, "a", 0);
    let mut cx = Context::new(0);
    b.on_timer(
        &mut cx,
        crate::node::Timer::FollowerLag {
            tp: tp.clone(),
            replica: 1,
        },
    );
    let proposals = |effects: Vec<Effect>| -> Vec<(u32, Vec<u32>)> {
        sends(effects)
            .into_iter()
            .filter_map(|(to, m)| match m {
                Message::AlterPartition(r) => {
                    Some((to, r.new_isr.iter().map(|(b, _)| *b).collect()))
                }
                _ => None,
            })
            .collect()
    };
    assert_eq!(proposals(cx.take_effects()), vec![(9, vec![0])]);
    let epoch = b.controller().epoch();
    let not = Message::NotController {
        leader: Some(8),
        epoch,
    };
    b.on_message(&mut cx, 9, not);
    assert_eq!(proposals(cx.take_effects()), vec![(8, vec![0])]);
}

/// An ISR expansion left unanswered stays pending, its member counted for the high watermark,
/// and is sent again as it was: the controller may have committed it. The same after a refusal
/// because the partition epoch moved (another copy may have moved it); a refusal on the
/// proposal's merits drops it. (Seed 12970: the leader dropped it at the timeout, the high
/// watermark passed the follower, and the controller's push then showed it in the ISR.)
#[test]
fn an_unanswered_isr_expansion_keeps_counting_until_settled() {
    use crate::node::broker::Progress;
    let tp = TopicPartition::new("t", 0);
    let controller = two_broker_controller();
    let expanding = || {
        let mut leader = started_broker(&controller, 0);
        let registered = leader.metadata.registration(1).expect("broker 1").epoch;
        let own = leader.metadata.registration(0).expect("broker 0").epoch;
        let ls = leader_state(&mut leader);
        ls.isr = vec![0];
        ls.pending_isr = Some(vec![0, 1]);
        ls.pending_epochs = vec![(0, own), (1, registered)];
        let caught_up = Progress {
            log_end: 0,
            synced: 0,
            broker_epoch: registered,
        };
        ls.followers.insert(1, caught_up);
        leader
    };
    let hw = |b: &Broker| b.replicas[&tp].log.high_watermark();
    let mut leader = expanding();
    let mut cx = Context::new(0);
    leader.on_timer(
        &mut cx,
        crate::node::Timer::AlterPartitionTimeout(tp.clone()),
    );
    let resent = sends(cx.take_effects()).into_iter().any(|(_, m)| {
        matches!(m, Message::AlterPartition(r) if r.new_isr.iter().map(|(b, _)| *b).eq([0, 1]))
    });
    assert!(resent, "the same proposal is sent again");
    assert_eq!(leader_state(&mut leader).pending_isr, Some(vec![0, 1]));
    // A record broker 1 lacks: the high watermark waits for it.
    produce(&mut leader, "a", 0);
    assert_eq!(hw(&leader), 0);
    let refused = |error| Message::AlterPartitionResponse {
        tp: tp.clone(),
        request_partition_epoch: 0,
        result: Err(error),
    };
    to_broker(&mut leader, 9, refused(ErrorCode::InvalidUpdateVersion));
    assert_eq!(leader_state(&mut leader).pending_isr, Some(vec![0, 1]));
    produce(&mut leader, "b", 1);
    assert_eq!(hw(&leader), 0);
    // Refused on its merits: not applied, so broker 1 no longer counts.
    let mut leader = expanding();
    to_broker(&mut leader, 9, refused(ErrorCode::StaleBrokerEpoch));
    assert_eq!(leader_state(&mut leader).pending_isr, None);
    produce(&mut leader, "a", 0);
    assert_eq!(hw(&leader), 1);
}

/// ListOffsets answers, in their own file.
mod list_offsets;

/// A leader's high watermark never goes back: an ISR member that fetches from below it (it
/// restarted with a shorter log, before the controller fenced its old registration) holds the
/// high watermark where it is. Records below it were committed, acknowledged and maybe read.
#[test]
fn a_follower_fetching_from_below_the_high_watermark_does_not_move_it_back() {
    let tp = TopicPartition::new("t", 0);
    let (_controller, mut leader) = pair();
    assert_eq!(produce(&mut leader, "a", 0), vec![]);
    assert_eq!(produce(&mut leader, "b", 1), vec![]);
    follower_1_fetches(&mut leader, 2);
    assert_eq!(leader.replicas()[&tp].log.high_watermark(), 2);
    for offset in [1, 0] {
        follower_1_fetches(&mut leader, offset);
        assert_eq!(leader.replicas()[&tp].log.high_watermark(), 2, "{offset}");
    }
    // It catches up again; the high watermark moves on from where it was.
    assert_eq!(produce(&mut leader, "c", 2), vec![]);
    follower_1_fetches(&mut leader, 3);
    assert_eq!(leader.replicas()[&tp].log.high_watermark(), 3);
}

/// Broker 1 fetches from `offset`, having synced as much: what the leader sends.
fn follower_1_fetches(leader: &mut Broker, offset: Offset) -> Vec<(u32, Message)> {
    let fetch = fetch_by_follower_1(leader, offset, offset);
    to_broker(leader, 1, fetch)
}

/// The produce answers broker 1's fetch from `offset` (having synced as much) releases.
fn produce_answers_on_fetch(leader: &mut Broker, offset: Offset) -> Vec<Result<Offset, ErrorCode>> {
    follower_1_fetches(leader, offset)
        .into_iter()
        .filter_map(|(_, m)| match m {
            Message::ProduceResponse(r) => Some(r.batches[0].result),
            _ => None,
        })
        .collect()
}

/// A retry of a batch already in the log is answered once the whole batch is committed, not
/// its first record: with the high watermark inside the batch, the tail may still be lost in a
/// failover to the follower that lacks it, and the producer would count it acknowledged.
#[test]
fn a_retry_of_a_partly_committed_batch_waits_for_its_last_record() {
    let tp = TopicPartition::new("t", 0);
    let (_controller, mut leader) = pair();
    let batch = || vec![Record::keyed("k", "a"), Record::keyed("k", "b")];
    let stamp = ProducerStamp::batch(7, 0, 0);
    assert_eq!(
        produce_answers(produce_effects(&mut leader, batch(), stamp)),
        vec![]
    );
    // The follower holds the first record only: the high watermark is inside the batch.
    follower_1_fetches(&mut leader, 1);
    assert_eq!(leader.replicas()[&tp].log.high_watermark(), 1);
    // The retry is recognised (nothing is appended) and waits, like the first attempt.
    let retry = produce_answers(produce_effects(&mut leader, batch(), stamp));
    assert_eq!(retry, vec![]);
    assert_eq!(leader.replicas()[&tp].log.log_end_offset(), 2);
    // Once the follower holds the tail, both attempts are answered with the batch's offset.
    let answers = produce_answers_on_fetch(&mut leader, 2);
    assert_eq!(answers, vec![Ok(0), Ok(0)]);
}

/// `min.insync.replicas` holds at the acknowledgment too, not only at the append: a batch
/// appended with two in-sync replicas, committed after the ISR shrank to the leader alone, is
/// answered `NotEnoughReplicasAfterAppend` (it is in the log, held by one replica: a power loss
/// of that one may take it, so it is not acknowledged as durable).
#[test]
fn a_batch_committed_after_the_isr_shrank_below_the_minimum_is_not_acknowledged() {
    let tp = TopicPartition::new("t", 0);
    let controller = two_broker_controller();
    let mut config = BrokerConfig::new(0, vec![9]);
    config.min_insync_replicas = 2;
    let mut leader = started_broker_with(&controller, config);
    assert_eq!(produce(&mut leader, "a", 0), vec![], "waits for broker 1");
    leader_state(&mut leader).isr = vec![0];
    let mut cx = Context::new(0);
    leader.leader_progress(&mut cx, &tp);
    assert_eq!(
        produce_answers(cx.take_effects()),
        vec![Err(ErrorCode::NotEnoughReplicasAfterAppend)]
    );
    assert_eq!(leader.replicas()[&tp].log.high_watermark(), 1);
    // With the ISR at the minimum again, the next batch is acknowledged once committed.
    leader_state(&mut leader).isr = vec![0, 1];
    assert_eq!(produce(&mut leader, "b", 1), vec![]);
    let answers = produce_answers_on_fetch(&mut leader, 2);
    assert_eq!(answers, vec![Ok(1)]);
}

/// With fsync durability a broker that becomes a follower while its log's tail is not on disk
/// (a deposed leader's unsynced records; a log recovered from the page cache) fetches only once
/// the tail is synced, reporting it durable. Fetching at once reported it not durable, the
/// leader had nothing new to answer with and parked the fetch for its whole wait, and the
/// partition's high watermark stood still that long after every failover.
#[test]
fn a_new_follower_with_an_unsynced_tail_fetches_once_it_is_synced() {
    let tp = TopicPartition::new("t", 0);
    let controller = two_broker_controller();
    let mut b = started_broker_with(&controller, fsync_config(0));
    // Leading t-0 with follower 1 in the ISR: the record waits for the sync and the follower.
    assert!(produce(&mut b, "a", 0).is_empty());
    assert_eq!(b.log(&tp).map(|l| l.log_end_offset()), Some(1));
    let epoch = b.leader_epoch_of(&tp).expect("leads t-0");
    let fetches = |effects: Vec<Effect>| -> Vec<(Offset, Offset)> {
        effects
            .into_iter()
            .filter_map(|e| match e {
                Effect::Send {
                    message: Message::Fetch(f),
                    ..
                } => Some((f.fetch_offset, f.synced_offset)),
                _ => None,
            })
            .collect()
    };
    let mut cx = Context::new(0);
    b.become_follower(&mut cx, &tp, 1, epoch + 1);
    assert_eq!(
        fetches(cx.take_effects()),
        [],
        "the tail is not on disk yet"
    );
    let mut cx = Context::new(0);
    b.on_persisted(&mut cx, b.last_sync_token);
    assert_eq!(
        fetches(cx.take_effects()),
        [(1, 1)],
        "fetches, reporting it durable"
    );
    // A tail already on disk is fetched from at once.
    let mut cx = Context::new(0);
    b.become_follower(&mut cx, &tp, 1, epoch + 2);
    assert_eq!(fetches(cx.take_effects()), [(1, 1)]);
}
