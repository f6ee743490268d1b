//! Every safety property must be seen to fail. The bug-switch tests in `models.rs` show the
//! checker finding `acked-not-lost` violations; here each property's own check is run on a state
//! built by hand to violate it — nodes driven through their real entry points with messages no
//! correct peer would send, or client observations fed through the model's history hook — next to
//! a control state that differs only in the violating detail and passes. `violated` evaluates the
//! very conditions the checker registers, so each test fails if its property were `true`.

use models::actor::{Digested, Msg, NodeState};
use models::cluster::{build, ModelKind, ModelOptions, SeedlogModel, TOPIC};
use models::history::{record_in, record_out};
use models::properties::{violated, State};
use seedlog::node::{Context, Effect};
use seedlog::protocol::{
    Acks, BatchResult, ClusterMetadata, FetchRequest, FetchResponse, LogEntry, Message, NodeId,
    PartitionBatch, ProduceRequest, ProduceResponse, Record, ReplicaId, TopicPartition,
};
use stateright::actor::{Envelope, Id};
use stateright::Model;
use std::sync::Arc;

fn model(kind: ModelKind, records: usize) -> (SeedlogModel, State) {
    let mut o = ModelOptions::defaults(kind);
    o.records = records;
    o.reader = true;
    let m = build(&o);
    let s = m.init_states().remove(0);
    assert!(
        violated(&m, &s).is_empty(),
        "the initial state must satisfy every property"
    );
    (m, s)
}

fn tp(partition: u32) -> TopicPartition {
    TopicPartition::new(TOPIC, partition)
}

/// Runs `msg` through node `to`'s `on_message`. Of its effects only its disk writes are kept
/// (written, as the model's step writes them, so `disk-matches-memory` holds): only its state
/// matters.
fn deliver(s: &mut State, to: usize, from: usize, msg: Message) {
    let ns = &s.actor_states[to];
    let mut node = ns.node().expect("the node runs").clone();
    let mut cx = Context::new(0);
    node.on_message(&mut cx, from as NodeId, msg);
    let mut disk = ns.disk().clone();
    let mut image = (*disk.written).clone();
    for effect in cx.take_effects() {
        if let Effect::Persist(op) = effect {
            image.apply(&op).expect("a well-formed write");
        }
    }
    Arc::make_mut(&mut disk).written = Digested::new(image);
    // Rebuilt, not edited in place: the state's digest and invariant verdict are made with it.
    let next = ns.replaced(node, disk, ns.syncing().clone());
    s.actor_states[to] = Arc::new(next);
}

/// Records a message arriving at a client, as the checker's `record_msg_in` hook does.
fn observe(m: &SeedlogModel, s: &mut State, src: usize, dst: usize, msg: Message) {
    // An acknowledgement answers a batch the producer sent: the history learns which record a
    // batch carries from the request (here: batch id = the record's index).
    if let Message::ProduceResponse(r) = &msg {
        let batches: Vec<PartitionBatch> = r
            .batches
            .iter()
            .filter_map(|b| {
                Some(PartitionBatch {
                    tp: b.tp.clone(),
                    leader_epoch: None,
                    batch: b.batch,
                    records: vec![m.cfg.records.get(b.batch as usize)?.clone()],
                    producer: None,
                })
            })
            .collect();
        {
            let req = Msg::new(Message::Produce(ProduceRequest {
                acks: Acks::All,
                correlation: r.correlation,
                batches,
            }));
            let out = Envelope {
                src: Id::from(dst),
                dst: Id::from(src),
                msg: &req,
            };
            if let Some(h) = record_out(&m.cfg, &s.history, out) {
                s.history = h;
            }
        }
    }
    let msg = Msg::new(msg);
    let env = Envelope {
        src: Id::from(src),
        dst: Id::from(dst),
        msg: &msg,
    };
    if let Some(h) = record_in(&m.cfg, &s.history, env) {
        s.history = h;
    }
}

fn produce(m: &SeedlogModel, s: &mut State, leader: usize, record: Record) {
    let req = ProduceRequest {
        acks: Acks::All,
        correlation: 0,
        batches: vec![PartitionBatch {
            tp: tp(0),
            leader_epoch: Some(0),
            batch: 0,
            records: vec![record],
            producer: None,
        }],
    };
    deliver(
        s,
        leader,
        m.cfg.producer.expect("a producer"),
        Message::Produce(req),
    );
}

fn fetch_response(hw: u64, records: Vec<LogEntry>) -> FetchResponse {
    FetchResponse {
        tp: tp(0),
        fetch_offset: 0,
        error: None,
        leader_epoch: 0,
        high_watermark: hw,
        log_start_offset: 0,
        records,
        diverging_epoch: None,
        producers: Vec::new(),
        connection: 0,
    }
}

/// The acknowledgement of batch `batch` (the record of that index) at `offset`.
fn ack(batch: u64, partition: u32, offset: u64) -> Message {
    Message::ProduceResponse(ProduceResponse {
        correlation: 0,
        batches: vec![BatchResult {
            tp: tp(partition),
            batch,
            result: Ok(offset),
        }],
    })
}

/// The controller's push of `md` (epoch 0) to broker `to`.
fn push_metadata(m: &SeedlogModel, s: &mut State, to: usize, md: ClusterMetadata) {
    let push = Message::UpdateMetadata {
        controller_epoch: 0,
        metadata: md,
    };
    deliver(s, to, m.cfg.controller, push);
}

fn controller_metadata(m: &SeedlogModel, s: &State) -> ClusterMetadata {
    let node = s.actor_states[m.cfg.controller].node().expect("running");
    node.as_controller().expect("controller").metadata().clone()
}

#[test]
fn acked_not_lost_fails_when_the_leader_lacks_an_acknowledged_record() {
    let (m, mut s) = model(ModelKind::Replication, 1);
    observe(
        &m,
        &mut s,
        0,
        m.cfg.producer.expect("a producer"),
        ack(0, 0, 0),
    );
    assert_eq!(violated(&m, &s), ["acked-not-lost"]);
    // Control: the leader (broker 0, epoch 0) holds the record.
    let (m, mut s) = model(ModelKind::Replication, 1);
    produce(&m, &mut s, 0, m.cfg.records[0].clone());
    observe(
        &m,
        &mut s,
        0,
        m.cfg.producer.expect("a producer"),
        ack(0, 0, 0),
    );
    assert!(violated(&m, &s).is_empty());
}

#[test]
fn single_leader_per_epoch_fails_with_two_leaders_in_one_epoch() {
    let (m, mut s) = model(ModelKind::Replication, 1);
    // A controller push naming broker 1 leader of epoch 0, which broker 0 already leads.
    let mut md = controller_metadata(&m, &s);
    md.version += 1;
    md.partitions[0].leader = Some(1);
    push_metadata(&m, &mut s, 1, md);
    let leads = |s: &State, i: usize| {
        s.actor_states[i]
            .node()
            .and_then(|n| n.as_broker())
            .and_then(|b| b.leader_epoch_of(&tp(0)))
    };
    assert_eq!((leads(&s, 0), leads(&s, 1)), (Some(0), Some(0)));
    assert_eq!(violated(&m, &s), ["single-leader-per-epoch"]);
}

#[test]
fn isr_known_to_leader_fails_when_the_leader_drops_a_member_the_controller_keeps() {
    for (isr, ok) in [(vec![0], false), (vec![0, 1, 2], true)] {
        let (m, mut s) = model(ModelKind::Replication, 1);
        // A push of the leader's own partition in the same leader epoch, with an ISR the
        // controller never committed (it still has all three).
        let mut md = controller_metadata(&m, &s);
        assert_eq!(md.partitions[0].isr, [0, 1, 2]);
        md.version += 1;
        md.partitions[0].partition_epoch += 1;
        md.partitions[0].isr = isr;
        push_metadata(&m, &mut s, 0, md);
        let expected: &[&str] = if ok { &[] } else { &["isr-known-to-leader"] };
        assert_eq!(violated(&m, &s), expected);
    }
}

#[test]
fn progress_held_by_follower_fails_when_a_follower_claims_more_than_it_holds() {
    for (claimed, ok) in [(1, false), (0, true)] {
        let (m, mut s) = model(ModelKind::Replication, 1);
        produce(&m, &mut s, 0, Record::keyed("k", "v"));
        let broker_epoch = controller_metadata(&m, &s)
            .registration(1)
            .expect("broker 1")
            .epoch;
        // Broker 1 holds nothing, but this fetch says it holds the leader's one record.
        let fetch = FetchRequest {
            tp: tp(0),
            replica: Some(ReplicaId {
                broker: 1,
                broker_epoch,
                connection: 0,
            }),
            fetch_offset: claimed,
            last_fetched_epoch: (claimed > 0).then_some(0),
            current_leader_epoch: Some(0),
            synced_offset: 0,
            known_hw: 0,
        };
        deliver(&mut s, 0, 1, Message::Fetch(fetch));
        let expected: &[&str] = if ok {
            &[]
        } else {
            &["progress-held-by-follower"]
        };
        assert_eq!(violated(&m, &s), expected);
    }
}

#[test]
fn log_matching_fails_when_replicas_differ_under_one_offset_and_epoch() {
    let leader_record = Record::keyed("k", "x");
    for (follower_record, ok) in [
        (Record::keyed("k", "y"), false),
        (leader_record.clone(), true),
    ] {
        let (m, mut s) = model(ModelKind::Replication, 1);
        produce(&m, &mut s, 0, leader_record.clone());
        // Broker 1's first fetch (offset 0) is in flight; answer it with `follower_record` at
        // offset 0, epoch 0: the leader's own entry there is `leader_record`, epoch 0.
        let entry = LogEntry {
            offset: 0,
            epoch: 0,
            record: follower_record,
            producer: None,
        };
        deliver(
            &mut s,
            1,
            0,
            Message::FetchResponse(fetch_response(0, vec![entry])),
        );
        let log_end = |i: usize| {
            let node = s.actor_states[i].node().and_then(|n| n.as_broker());
            node.and_then(|b| b.log(&tp(0))).map(|l| l.log_end_offset())
        };
        assert_eq!((log_end(0), log_end(1)), (Some(1), Some(1)));
        let expected: &[&str] = if ok { &[] } else { &["log-matching"] };
        assert_eq!(violated(&m, &s), expected);
    }
}

#[test]
fn consumed_stable_fails_when_the_leader_no_longer_holds_a_read_record() {
    let value = Record::keyed("k", "v0");
    let read = |m: &SeedlogModel, s: &mut State| {
        let entry = LogEntry {
            offset: 0,
            epoch: 0,
            record: value.clone(),
            producer: None,
        };
        let msg = Message::FetchResponse(fetch_response(1, vec![entry]));
        let reader = m.cfg.reader.expect("model with a reader");
        observe(m, s, 0, reader, msg);
        assert_eq!(s.history.read.len(), 1);
    };
    // The leader of epoch 0 holds what the reader read...
    let (m, mut s) = model(ModelKind::Replication, 1);
    produce(&m, &mut s, 0, value.clone());
    read(&m, &mut s);
    assert!(violated(&m, &s).is_empty());
    // ...or holds something else at that offset.
    let (m, mut s) = model(ModelKind::Replication, 1);
    produce(&m, &mut s, 0, Record::keyed("k", "other"));
    read(&m, &mut s);
    assert_eq!(violated(&m, &s), ["consumed-stable"]);
}

#[test]
fn hw_monotonic_fails_when_the_reader_sees_the_high_watermark_go_back() {
    for (first, second, ok) in [(2, 1, false), (1, 2, true)] {
        let (m, mut s) = model(ModelKind::Replication, 1);
        let reader = m.cfg.reader.expect("model with a reader");
        for hw in [first, second] {
            let msg = Message::FetchResponse(fetch_response(hw, Vec::new()));
            observe(&m, &mut s, 0, reader, msg);
        }
        let expected: &[&str] = if ok { &[] } else { &["hw-monotonic"] };
        assert_eq!(violated(&m, &s), expected);
    }
}

#[test]
fn per_key_partition_fails_when_one_key_is_acked_in_two_partitions() {
    // Three records: keys a, d, a. Records 0 and 2 share key "a".
    for (second_partition, ok) in [(1, false), (0, true)] {
        let (m, mut s) = model(ModelKind::Partitioning, 3);
        assert_eq!(m.cfg.records[0].key, m.cfg.records[2].key);
        let producer = m.cfg.producer.expect("a producer");
        observe(&m, &mut s, 0, producer, ack(0, 0, 0));
        observe(&m, &mut s, 0, producer, ack(2, second_partition, 1));
        let expected: &[&str] = if ok { &[] } else { &["per-key-partition"] };
        assert_eq!(violated(&m, &s), expected);
    }
}

#[test]
fn per_key_order_fails_when_a_later_send_is_acked_below_an_earlier_one() {
    // Records 0 and 2 (key "a") acknowledged in one partition: record 2 was sent after record 0.
    for (offset_0, offset_2, ok) in [(1, 0, false), (0, 1, true)] {
        let (m, mut s) = model(ModelKind::Partitioning, 3);
        let producer = m.cfg.producer.expect("a producer");
        observe(&m, &mut s, 0, producer, ack(0, 0, offset_0));
        observe(&m, &mut s, 0, producer, ack(2, 0, offset_2));
        let expected: &[&str] = if ok { &[] } else { &["per-key-order"] };
        assert_eq!(violated(&m, &s), expected);
    }
}

/// The replication model with an idempotent producer of two records (both with key "k").
fn idempotent_model() -> (SeedlogModel, State) {
    let mut o = ModelOptions::defaults(ModelKind::Replication);
    o.records = 2;
    o.idempotent = true;
    let m = build(&o);
    let s = m.init_states().remove(0);
    assert!(violated(&m, &s).is_empty());
    (m, s)
}

#[test]
fn acked_in_order_fails_when_a_later_send_is_acked_below_an_earlier_one() {
    // The leader holds record 1 at offset 0 and record 0 at offset 1: every acknowledgement is
    // held (acked-not-lost), but record 1, sent after record 0, is acknowledged below it.
    for (first, second, ok) in [(1, 0, false), (0, 1, true)] {
        let (m, mut s) = idempotent_model();
        let producer = m.cfg.producer.expect("a producer");
        produce(&m, &mut s, 0, m.cfg.records[first].clone());
        produce(&m, &mut s, 0, m.cfg.records[second].clone());
        observe(&m, &mut s, 0, producer, ack(first as u64, 0, 0));
        observe(&m, &mut s, 0, producer, ack(second as u64, 0, 1));
        let expected: &[&str] = if ok { &[] } else { &["acked-in-order"] };
        assert_eq!(violated(&m, &s), expected);
    }
}

#[test]
fn no_duplicates_fails_when_a_log_holds_a_record_twice_or_it_is_acked_twice() {
    // A record appended twice: the leader's log holds it at offsets 0 and 1.
    let (m, mut s) = idempotent_model();
    produce(&m, &mut s, 0, m.cfg.records[0].clone());
    assert!(violated(&m, &s).is_empty());
    produce(&m, &mut s, 0, m.cfg.records[0].clone());
    assert_eq!(violated(&m, &s), ["no-duplicates"]);
    // Record 0 acknowledged at offset 0, then again at offset 1 (where the log holds record 1):
    // one record at two offsets.
    let (m, mut s) = idempotent_model();
    let producer = m.cfg.producer.expect("a producer");
    produce(&m, &mut s, 0, m.cfg.records[0].clone());
    produce(&m, &mut s, 0, m.cfg.records[1].clone());
    observe(&m, &mut s, 0, producer, ack(0, 0, 0));
    assert!(violated(&m, &s).is_empty());
    observe(&m, &mut s, 0, producer, ack(0, 0, 1));
    assert!(
        violated(&m, &s).contains(&"no-duplicates"),
        "{:?}",
        violated(&m, &s)
    );
}

mod offsets {
    use super::*;
    use models::cluster::GROUP;
    use seedlog::protocol::{
        AssignBy, Assignor, FetchRequest, GroupAnswer, GroupMessage, GroupRequest, GroupResponse,
        OffsetsKey, OffsetsValue, ReplicaId, OFFSETS_TOPIC,
    };

    /// The offsets model with `replicated` durability: the leader's high watermark then moves
    /// without the disk syncs `deliver` does not carry out.
    fn offsets_model() -> (SeedlogModel, State) {
        let mut o = ModelOptions::defaults(ModelKind::Offsets);
        o.durability = seedlog::node::Durability::Replicated;
        let m = build(&o);
        let s = m.init_states().remove(0);
        assert!(violated(&m, &s).is_empty());
        (m, s)
    }

    fn offsets_tp() -> TopicPartition {
        TopicPartition::new(OFFSETS_TOPIC, 0)
    }

    fn group(correlation: u64, request: GroupRequest) -> Message {
        Message::Group(GroupMessage {
            group: GROUP.into(),
            correlation,
            request,
        })
    }

    /// Broker 1's follower fetch of `__consumer_offsets` at `offset`, as it would send it.
    fn follower_fetch(m: &SeedlogModel, s: &State, offset: u64) -> Message {
        let md = controller_metadata(m, s);
        let broker_epoch = md.registration(1).expect("broker 1 registered").epoch;
        Message::Fetch(FetchRequest {
            tp: offsets_tp(),
            replica: Some(ReplicaId {
                broker: 1,
                broker_epoch,
                connection: 0,
            }),
            fetch_offset: offset,
            last_fetched_epoch: (offset > 0).then_some(0),
            current_leader_epoch: Some(0),
            // Nothing synced: `deliver` carries out no disk syncs.
            synced_offset: 0,
            known_hw: 0,
        })
    }

    /// Broker 0's `__consumer_offsets` entries from broker 1's log end on, answered to broker
    /// 1's fetch in flight, so that its next fetch (`follower_fetch`) claims only what it holds.
    fn replicate_offsets(s: &mut State) {
        let log = |s: &State, i: usize| {
            s.actor_states[i]
                .node()
                .and_then(|n| n.as_broker())
                .and_then(|b| b.log(&offsets_tp()))
                .cloned()
                .expect("an offsets log")
        };
        let (leader, follower) = (log(s, 0), log(s, 1));
        let from = follower.log_end_offset();
        let mut resp = fetch_response(0, leader.read(from, leader.log_end_offset(), 100));
        resp.tp = offsets_tp();
        resp.fetch_offset = from;
        deliver(s, 1, 0, Message::FetchResponse(resp));
        assert_eq!(log(s, 1).log_end_offset(), leader.log_end_offset());
    }

    fn generation_record(generation: u32) -> Record {
        let key = OffsetsKey::Group {
            group: GROUP.into(),
        };
        key.record(&OffsetsValue::Group { generation })
    }

    fn commit_record(generation: u32, offset: u64) -> Record {
        let key = OffsetsKey::Offset {
            group: GROUP.into(),
            tp: tp(0),
        };
        let value = OffsetsValue::Offset {
            offset,
            member: "m".into(),
            generation,
            metadata: String::new(),
        };
        key.record(&value)
    }

    #[test]
    fn offsets_monotonic_fails_when_a_log_holds_a_commit_of_a_replaced_generation() {
        // Broker 1's first fetch of `__consumer_offsets` is in flight; answer it with three
        // records: generations 1 and 2, then a commit of generation 1 (stale) — or the commit
        // between the two generations.
        for (stale_after, ok) in [(true, false), (false, true)] {
            let (m, mut s) = offsets_model();
            let mut records = vec![
                generation_record(1),
                generation_record(2),
                commit_record(1, 1),
            ];
            if !stale_after {
                records.swap(1, 2);
            }
            let entries = records
                .into_iter()
                .enumerate()
                .map(|(i, record)| LogEntry {
                    offset: i as u64,
                    epoch: 0,
                    record,
                    producer: None,
                })
                .collect();
            let mut resp = fetch_response(0, entries);
            resp.tp = offsets_tp();
            deliver(&mut s, 1, 0, Message::FetchResponse(resp));
            let node = s.actor_states[1].node().and_then(|n| n.as_broker());
            let log_end = node
                .and_then(|b| b.log(&offsets_tp()))
                .map(|l| l.log_end_offset());
            assert_eq!(log_end, Some(3));
            let expected: &[&str] = if ok { &[] } else { &["offsets-monotonic"] };
            assert_eq!(violated(&m, &s), expected);
        }
    }

    /// Consumer a joins (alone: generation 1), and commits offset 2 of the data partition
    /// without having processed anything; broker 1's fetches bring the high watermark past both
    /// records, so the coordinator holds the committed offset 2.
    fn commit_unprocessed(m: &SeedlogModel, s: &mut State) {
        let a = m.cfg.consumers[0];
        let join = GroupRequest::Join {
            member: None,
            topics: vec![TOPIC.into()],
            assign: AssignBy::Coordinator(Assignor::Range),
            require_known_member_id: false,
        };
        deliver(s, 0, a, group(1, join));
        replicate_offsets(s);
        let fetch = follower_fetch(m, s, 1);
        deliver(s, 0, 1, fetch);
        let commit = GroupRequest::Commit {
            member: format!("c{a}-e0-1"),
            generation: 1,
            tp: tp(0),
            offset: 2,
            metadata: String::new(),
        };
        deliver(s, 0, a, group(2, commit));
        replicate_offsets(s);
        let fetch = follower_fetch(m, s, 2);
        deliver(s, 0, 1, fetch);
        let node = s.actor_states[0].node().and_then(|n| n.as_broker());
        let committed = node
            .and_then(|b| b.coordinators().get(&0))
            .and_then(|c| c.groups().get(GROUP))
            .and_then(|g| g.offsets.get(&tp(0)).copied());
        assert_eq!(committed, Some(2));
    }

    #[test]
    fn at_least_once_fails_when_the_committed_offset_passes_unprocessed_records() {
        let (m, mut s) = offsets_model();
        commit_unprocessed(&m, &mut s);
        assert_eq!(violated(&m, &s), ["at-least-once"]);
        // Control: consumer a's storage says it processed both records.
        let (m, mut s) = offsets_model();
        commit_unprocessed(&m, &mut s);
        let a = m.cfg.consumers[0];
        let mut disk = (**s.actor_storages[a].as_ref().expect("a started").disk()).clone();
        disk.processed.extend([(tp(0), 0), (tp(0), 1)]);
        s.actor_storages[a] = Some(models::actor::Stored::new(Arc::new(disk)));
        assert!(violated(&m, &s).is_empty());
        // Control: a live member still holds the batch it committed.
        let (m, mut s) = offsets_model();
        commit_unprocessed(&m, &mut s);
        let mut node_state = NodeState::clone(&s.actor_states[a]);
        let NodeState::Running { owed, .. } = &mut node_state else {
            panic!("consumer a is not running");
        };
        *owed = Some((tp(0), 2));
        s.actor_states[a] = Arc::new(node_state);
        assert!(violated(&m, &s).is_empty());
        // ...unless it crashed.
        s.crashed[a] = true;
        assert_eq!(violated(&m, &s), ["at-least-once"]);
    }

    /// Member `member`'s group request `correlation` to broker 0, as the checker's
    /// `record_msg_out` hook sees it.
    fn member_sends(
        m: &SeedlogModel,
        s: &mut State,
        member: usize,
        correlation: u64,
        request: GroupRequest,
    ) {
        let msg = Msg::new(group(correlation, request));
        let out = Envelope {
            src: Id::from(member),
            dst: Id::from(0),
            msg: &msg,
        };
        if let Some(h) = record_out(&m.cfg, &s.history, out) {
            s.history = h;
        }
    }

    /// Broker 0's answer to member `member`'s request `correlation`.
    fn member_hears(
        m: &SeedlogModel,
        s: &mut State,
        member: usize,
        correlation: u64,
        result: Result<GroupAnswer, seedlog::protocol::ErrorCode>,
    ) {
        let response = Message::GroupResponse(GroupResponse {
            group: GROUP.into(),
            correlation,
            result,
        });
        observe(m, s, 0, member, response);
    }

    fn commit(offset: u64) -> GroupRequest {
        GroupRequest::Commit {
            member: "m".into(),
            generation: 1,
            tp: tp(0),
            offset,
            metadata: String::new(),
        }
    }

    fn fetched(offset: Option<u64>) -> Result<GroupAnswer, seedlog::protocol::ErrorCode> {
        Ok(GroupAnswer::Offset {
            offset,
            metadata: String::new(),
        })
    }

    /// Member b's commit of `acked` is acknowledged; then member a's fetch (sent after, or
    /// before, the acknowledgement) is answered `answer`; `lower` is a commit of 1 by member a
    /// still unanswered, sent before the fetch (it may land after the acknowledged one).
    fn fetch_after_commit(
        acked: u64,
        fetch_first: bool,
        lower: bool,
        answer: Option<u64>,
    ) -> Vec<&'static str> {
        let (m, mut s) = offsets_model();
        let (a, b) = (m.cfg.consumers[0], m.cfg.consumers[1]);
        if lower {
            member_sends(&m, &mut s, a, 1, commit(1));
        }
        let fetch = GroupRequest::FetchOffset { tp: tp(0) };
        if fetch_first {
            member_sends(&m, &mut s, a, 2, fetch.clone());
        }
        member_sends(&m, &mut s, b, 1, commit(acked));
        member_hears(&m, &mut s, b, 1, Ok(GroupAnswer::Committed));
        if !fetch_first {
            member_sends(&m, &mut s, a, 2, fetch);
        }
        member_hears(&m, &mut s, a, 2, fetched(answer));
        violated(&m, &s)
    }

    #[test]
    fn offset_fetch_fresh_fails_when_a_fetch_misses_a_commit_acknowledged_before_it() {
        const FRESH: &[&str] = &["offset-fetch-fresh"];
        let none: &[&str] = &[];
        // Sent after commit 2 was acknowledged: 1 or nothing is stale, 2 (or more) is not.
        assert_eq!(fetch_after_commit(2, false, false, Some(1)), FRESH);
        assert_eq!(fetch_after_commit(2, false, false, None), FRESH);
        assert_eq!(fetch_after_commit(2, false, false, Some(2)), none);
        assert_eq!(fetch_after_commit(2, false, false, Some(3)), none);
        // Sent before the acknowledgement: the commit may land after the read.
        assert_eq!(fetch_after_commit(2, true, false, Some(1)), none);
        assert_eq!(fetch_after_commit(2, true, false, None), none);
        // A commit of 1 still in flight may land after commit 2: 1 is explained, 0 is not.
        assert_eq!(fetch_after_commit(2, false, true, Some(1)), none);
        assert_eq!(fetch_after_commit(2, false, true, Some(0)), FRESH);
    }

    #[test]
    fn offset_fetch_fresh_does_not_judge_an_answer_a_restarted_member_cannot_place() {
        let (m, mut s) = offsets_model();
        let (a, b) = (m.cfg.consumers[0], m.cfg.consumers[1]);
        member_sends(&m, &mut s, b, 1, commit(2));
        member_hears(&m, &mut s, b, 1, Ok(GroupAnswer::Committed));
        // Member a fetches, crashes, and its next incarnation numbers a fetch 1 again: the
        // first answer to key 1 may belong to either, so it is not judged.
        let fetch = GroupRequest::FetchOffset { tp: tp(0) };
        member_sends(&m, &mut s, a, 1, fetch.clone());
        member_sends(&m, &mut s, a, 1, fetch.clone());
        member_hears(&m, &mut s, a, 1, fetched(None));
        assert!(violated(&m, &s).is_empty());
        // A refused commit may still land: its offset explains a later answer.
        member_sends(&m, &mut s, a, 2, commit(1));
        member_hears(
            &m,
            &mut s,
            a,
            2,
            Err(seedlog::protocol::ErrorCode::NotCoordinator),
        );
        member_sends(&m, &mut s, a, 3, fetch.clone());
        member_hears(&m, &mut s, a, 3, fetched(Some(1)));
        assert!(violated(&m, &s).is_empty());
        // A commit refused for good (a fenced generation) was never appended: it explains
        // nothing.
        member_sends(&m, &mut s, a, 4, commit(0));
        member_hears(
            &m,
            &mut s,
            a,
            4,
            Err(seedlog::protocol::ErrorCode::IllegalGeneration),
        );
        member_sends(&m, &mut s, a, 5, fetch);
        member_hears(&m, &mut s, a, 5, fetched(Some(0)));
        assert_eq!(violated(&m, &s), ["offset-fetch-fresh"]);
    }
}

#[test]
fn node_invariant_fails_when_a_follower_takes_an_answer_that_does_not_continue_its_log() {
    for (offset, ok) in [(5, false), (0, true)] {
        let (m, mut s) = model(ModelKind::Replication, 1);
        // Broker 1's first fetch (offset 0) is in flight; the answer's record sits at `offset`.
        let entry = LogEntry {
            offset,
            epoch: 0,
            record: Record::keyed("k", "x"),
            producer: None,
        };
        deliver(
            &mut s,
            1,
            0,
            Message::FetchResponse(fetch_response(0, vec![entry])),
        );
        let expected: &[&str] = if ok { &[] } else { &["node-invariant"] };
        assert_eq!(violated(&m, &s), expected);
    }
}

#[test]
fn disk_matches_memory_fails_when_a_write_is_missing_from_the_disk() {
    let (m, mut s) = model(ModelKind::Replication, 1);
    let before = s.actor_states[0].disk().clone();
    produce(&m, &mut s, 0, m.cfg.records[0].clone());
    // Control: the leader's append is on its disk (page cache).
    assert!(violated(&m, &s).is_empty());
    // The same leader with its disk as before the append: the write was never made.
    let ns = &s.actor_states[0];
    let node = ns.node().expect("runs").clone();
    s.actor_states[0] = Arc::new(ns.replaced(node, before, ns.syncing().clone()));
    assert_eq!(violated(&m, &s), ["disk-matches-memory"]);
}
