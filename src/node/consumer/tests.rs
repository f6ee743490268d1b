//! The consumer's own sequencing, request by request, with the coordinator's answers written by
//! hand: what it asks next, what it reports, and when it commits relative to processing.

use super::Consumer;
use crate::node::{Bug, ClientEvent, ConsumerConfig, Context, Effect, OffsetReset, Stage, Timer};
use crate::protocol::{
    Assignor, ClusterMetadata, ErrorCode, FetchResponse, GroupAnswer, GroupRequest, GroupResponse,
    LogEntry, Message, OffsetSpec, PartitionState, Record, TopicPartition,
};
use std::sync::Arc;

fn consumer(process_ms: Option<u64>, bugs: &[Bug]) -> Consumer {
    consumer_assigning(process_ms, bugs, false)
}

fn consumer_assigning(process_ms: Option<u64>, bugs: &[Bug], leader_assigns: bool) -> Consumer {
    Consumer::new(Arc::new(config(process_ms, bugs, leader_assigns)))
}

fn config(process_ms: Option<u64>, bugs: &[Bug], leader_assigns: bool) -> ConsumerConfig {
    ConsumerConfig {
        id: 50,
        bootstrap: vec![0],
        group: "g".into(),
        topic: "t".into(),
        assignor: Assignor::Range,
        leader_assigns,
        auto_offset_reset: OffsetReset::Earliest,
        heartbeat_interval_ms: None,
        request_timeout_ms: None,
        retry_backoff_ms: None,
        process_ms,
        rewind: None,
        seek_end_every: None,
        seek_time_every: None,
        max_records: None,
        recommit_ms: None,
        seek_to: Default::default(),
        require_known_member_id: true,
        bugs: bugs.iter().copied().collect(),
    }
}

fn tp() -> TopicPartition {
    TopicPartition::new("t", 0)
}

/// The group request the consumer just sent, with its correlation.
fn sent_group(effects: &[Effect]) -> Option<(u64, GroupRequest)> {
    effects.iter().find_map(|e| match e {
        Effect::Send {
            message: Message::Group(m),
            ..
        } => Some((m.correlation, m.request.clone())),
        _ => None,
    })
}

fn answer(c: &mut Consumer, correlation: u64, result: GroupAnswer) -> Vec<Effect> {
    respond(c, correlation, Ok(result))
}

fn refuse(c: &mut Consumer, correlation: u64, e: ErrorCode) -> Vec<Effect> {
    respond(c, correlation, Err(e))
}

fn respond(
    c: &mut Consumer,
    correlation: u64,
    result: Result<GroupAnswer, ErrorCode>,
) -> Vec<Effect> {
    let mut cx = Context::new(0);
    let resp = GroupResponse {
        group: "g".into(),
        correlation,
        result,
    };
    c.on_message(&mut cx, 0, Message::GroupResponse(resp));
    cx.take_effects()
}

/// Drives a new member through its join to its first assignment (`t-0`): its fetch of the
/// committed offset is in flight; returns that request's correlation.
fn member_assigned(c: &mut Consumer) -> u64 {
    let mut cx = Context::new(0);
    c.on_start(&mut cx);
    let mut fx = cx.take_effects();
    let script = [
        GroupAnswer::Coordinator(0),
        GroupAnswer::Joined {
            member: "m".into(),
            generation: 1,
            leader: None,
        },
        GroupAnswer::Assignment {
            generation: 1,
            partitions: vec![tp()],
            data: Vec::new(),
        },
    ];
    for a in script {
        let (corr, _) = sent_group(&fx).expect("a group request is in flight");
        fx = answer(c, corr, a);
    }
    let (corr, req) = sent_group(&fx).expect("the fetch of the committed offset");
    assert!(matches!(req, GroupRequest::FetchOffset { .. }));
    corr
}

/// A group request that times out leaves the coordinator unknown: the next group request is a
/// FindCoordinator, not another request to a coordinator that may be gone (a broker that died
/// or lost its `__consumer_offsets` leadership answers nothing, and asking it again only times
/// out again).
#[test]
fn a_timed_out_group_request_looks_the_coordinator_up_again() {
    let mut c = consumer(None, &[]);
    member_assigned(&mut c);
    let mut cx = Context::new(0);
    c.on_timer(&mut cx, Timer::ClientRequestTimeout);
    let mut fx = cx.take_effects();
    if sent_group(&fx).is_none() {
        // Backing off first, if the consumer does.
        c.on_timer(&mut cx, Timer::ClientBackoff);
        fx = cx.take_effects();
    }
    let (_, req) = sent_group(&fx).expect("a group request after the timeout");
    assert!(matches!(req, GroupRequest::FindCoordinator), "{req:?}");
}

/// A first join asks only for an id (Kafka's KIP-394), and the answer's id is joined with at
/// once: the next request is the join as that member.
#[test]
fn a_member_joins_with_the_id_its_first_join_was_given() {
    let mut c = consumer(None, &[]);
    let mut cx = Context::new(0);
    c.on_start(&mut cx);
    let (corr, _) = sent_group(&cx.take_effects()).expect("finds its coordinator");
    let fx = answer(&mut c, corr, GroupAnswer::Coordinator(0));
    let (corr, first) = sent_group(&fx).expect("joins");
    assert!(
        matches!(
            first,
            GroupRequest::Join {
                member: None,
                require_known_member_id: true,
                ..
            }
        ),
        "{first:?}"
    );
    let given = GroupAnswer::MemberIdRequired {
        member: "m-7".into(),
    };
    let fx = answer(&mut c, corr, given);
    let (_, again) = sent_group(&fx).expect("joins again");
    assert!(
        matches!(&again, GroupRequest::Join { member: Some(m), .. } if m == "m-7"),
        "{again:?}"
    );
}

fn committed_at_3() -> GroupAnswer {
    GroupAnswer::Offset {
        offset: Some(3),
        metadata: String::new(),
    }
}

/// Drives a new member to the point where it fetches `t-0` at offset 3 (the committed offset).
fn member_fetching(c: &mut Consumer) -> Vec<Effect> {
    let corr = member_assigned(c);
    let fx = answer(c, corr, committed_at_3());
    // It needs metadata to find the leader.
    assert!(fx.iter().any(|e| matches!(
        e,
        Effect::Send {
            message: Message::Metadata { .. },
            ..
        }
    )));
    let mut cx = Context::new(0);
    let md = ClusterMetadata {
        version: 1,
        brokers: vec![],
        partitions: vec![PartitionState {
            tp: tp(),
            replicas: vec![0],
            leader: Some(0),
            leader_epoch: 1,
            isr: vec![0],
            partition_epoch: 1,
        }],
    };
    c.on_message(&mut cx, 0, Message::MetadataResponse(md));
    cx.take_effects()
}

/// The leader's answer to a fetch of `t-0` at `fetch_offset`: `records`, and a high watermark
/// just past them.
fn fetch_answer(fetch_offset: u64, records: Vec<LogEntry>) -> FetchResponse {
    FetchResponse {
        tp: tp(),
        fetch_offset,
        error: None,
        leader_epoch: 1,
        high_watermark: records.last().map_or(fetch_offset, |e| e.offset + 1),
        log_start_offset: 0,
        records,
        diverging_epoch: None,
        producers: Vec::new(),
        connection: 0,
    }
}

fn deliver(c: &mut Consumer, now: u64, resp: FetchResponse) -> Vec<Effect> {
    let mut cx = Context::new(now);
    c.on_message(&mut cx, 0, Message::FetchResponse(resp));
    cx.take_effects()
}

fn deliver_batch(c: &mut Consumer) -> Vec<Effect> {
    let records = (3..5)
        .map(|o| LogEntry {
            offset: o,
            epoch: 1,
            record: Record::keyed("k", format!("v{o}")),
            producer: None,
        })
        .collect();
    deliver(c, 0, fetch_answer(3, records))
}

fn observed(effects: &[Effect]) -> Vec<String> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Observe(ev) => Some(ev.to_string()),
            _ => None,
        })
        .collect()
}

#[test]
fn it_resumes_at_the_committed_offset() {
    let mut c = consumer(None, &[]);
    let fx = member_fetching(&mut c);
    assert_eq!(fetch_offset(&fx), Some(3));
}

#[test]
fn without_processing_time_it_processes_then_commits_at_once() {
    let mut c = consumer(None, &[]);
    member_fetching(&mut c);
    let fx = deliver_batch(&mut c);
    assert_eq!(
        observed(&fx),
        ["polled t-0 [3@1:k=v3, 4@1:k=v4]", "commit g t-0=5 invoke"]
    );
    let (_, req) = sent_group(&fx).expect("the commit is sent in the same step");
    assert!(matches!(req, GroupRequest::Commit { offset: 5, .. }));
}

#[test]
fn it_commits_only_after_processing() {
    let mut c = consumer(Some(10), &[]);
    member_fetching(&mut c);
    let fx = deliver_batch(&mut c);
    assert!(observed(&fx).is_empty(), "nothing before processing ends");
    assert!(sent_group(&fx).is_none(), "no commit before processing");
    let mut cx = Context::new(10);
    c.on_timer(&mut cx, Timer::Process);
    let fx = cx.take_effects();
    assert_eq!(
        observed(&fx),
        ["polled t-0 [3@1:k=v3, 4@1:k=v4]", "commit g t-0=5 invoke"]
    );
}

#[test]
fn the_bug_switch_commits_before_processing() {
    let mut c = consumer(Some(10), &[Bug::CommitBeforeProcess]);
    member_fetching(&mut c);
    let fx = deliver_batch(&mut c);
    assert_eq!(observed(&fx), ["commit g t-0=5 invoke"]);
    let (corr, _) = sent_group(&fx).expect("commit sent");
    let fx = answer(&mut c, corr, GroupAnswer::Committed);
    // Committed, not yet processed: a crash now loses offsets 3 and 4 for the group.
    assert_eq!(observed(&fx), ["commit g t-0=5 ok"]);
    let mut cx = Context::new(10);
    c.on_timer(&mut cx, Timer::Process);
    assert_eq!(
        observed(&cx.take_effects()),
        ["polled t-0 [3@1:k=v3, 4@1:k=v4]"]
    );
}

#[test]
fn a_fenced_commit_drops_the_generation_and_rejoins() {
    let mut c = consumer(None, &[]);
    member_fetching(&mut c);
    let fx = deliver_batch(&mut c);
    let (corr, _) = sent_group(&fx).expect("commit sent");
    let fx = refuse(&mut c, corr, ErrorCode::IllegalGeneration);
    let events: Vec<&ClientEvent> = fx
        .iter()
        .filter_map(|e| match e {
            Effect::Observe(ev) => Some(ev),
            _ => None,
        })
        .collect();
    assert!(matches!(
        events[..],
        [ClientEvent::Commit {
            stage: Stage::Fail(_),
            ..
        }]
    ));
    let (_, req) = sent_group(&fx).expect("rejoins at once");
    assert!(matches!(
        req,
        GroupRequest::Join {
            member: Some(_),
            ..
        }
    ));
    assert!(
        c.positions().is_empty(),
        "positions come again from the committed offsets"
    );
}

/// The consumer's answer to a fetch at 3 out of range, the log starting at `log_start`.
fn out_of_range(c: &mut Consumer, log_start: u64) -> Vec<Effect> {
    let resp = FetchResponse {
        error: Some(crate::protocol::ErrorCode::OffsetOutOfRange),
        high_watermark: 9,
        log_start_offset: log_start,
        ..fetch_answer(3, Vec::new())
    };
    deliver(c, 0, resp)
}

fn fetch_offset(effects: &[Effect]) -> Option<u64> {
    crate::node::effects::sent_fetch(effects).map(|f| f.fetch_offset)
}

#[test]
fn a_fetch_below_the_log_start_resets_there_and_reports_the_log_start() {
    // Retention deleted 3..6: the member moves to 7 and says so, so that a history can tell
    // deleted records from lost ones; and it commits 7 at once: nothing below is left to
    // process, and if nothing more is ever produced no batch would ever commit it.
    let mut c = consumer(None, &[]);
    member_fetching(&mut c);
    let fx = out_of_range(&mut c, 7);
    assert_eq!(
        observed(&fx),
        ["reset t-0 to the log start 7", "commit g t-0=7 invoke"]
    );
    assert!(matches!(
        fx.iter().find_map(|e| match e {
            Effect::Observe(ev) => Some(ev),
            _ => None,
        }),
        Some(ClientEvent::Reset { offset: 7, group: Some(g), .. }) if g == "g"
    ));
}

#[test]
fn a_fetch_past_the_log_end_resets_to_the_log_start_with_earliest_and_commits_it() {
    // The committed 3 is past the log end (out of range, above the log start 1; an unclean
    // election can cut a log below what a group committed): auto.offset.reset=earliest moves the
    // member to the log start, which it reports, and commits it, as auto-commit would. Without
    // the commit a group whose committed offset lies past the log end keeps it until new
    // records pass it (the simulator's liveness check found such a group, never converging).
    let mut c = consumer(None, &[]);
    member_fetching(&mut c);
    let fx = out_of_range(&mut c, 1);
    assert_eq!(
        observed(&fx),
        ["reset t-0 to the log start 1", "commit g t-0=1 invoke"]
    );
}

#[test]
fn a_leading_member_assigns_from_fresh_metadata_and_reads_its_share() {
    use crate::protocol::{AssignBy, LeaderJoin};
    let mut c = consumer_assigning(None, &[], true);
    let mut cx = Context::new(0);
    c.on_start(&mut cx);
    let (corr, _) = sent_group(&cx.take_effects()).expect("finds its coordinator");
    let fx = answer(&mut c, corr, GroupAnswer::Coordinator(0));
    let (corr, join) = sent_group(&fx).expect("joins");
    let GroupRequest::Join {
        assign: AssignBy::Leader { protocols, .. },
        ..
    } = join
    else {
        panic!("a member whose leader assigns offers protocols: {join:?}")
    };
    assert_eq!(protocols[0].name, "range");
    // It leads; the other member reads the same topic. It knows no partitions yet, so it
    // asks for metadata before it assigns.
    let topics = protocols[0].metadata.clone();
    let lead = LeaderJoin {
        protocol: "range".into(),
        leader: "m".into(),
        members: vec![("m".into(), topics.clone()), ("n".into(), topics)],
    };
    let joined = GroupAnswer::Joined {
        member: "m".into(),
        generation: 1,
        leader: Some(lead),
    };
    let fx = answer(&mut c, corr, joined);
    assert!(sent_group(&fx).is_none(), "no sync before metadata: {fx:?}");
    let mut cx = Context::new(0);
    let partition = |p| PartitionState {
        tp: TopicPartition::new("t", p),
        replicas: vec![0],
        leader: Some(0),
        leader_epoch: 1,
        isr: vec![0],
        partition_epoch: 1,
    };
    let md = ClusterMetadata {
        version: 1,
        brokers: vec![],
        partitions: vec![partition(0), partition(1)],
    };
    c.on_message(&mut cx, 0, Message::MetadataResponse(md));
    let (corr, sync) = sent_group(&cx.take_effects()).expect("syncs");
    let GroupRequest::Sync { assignments, .. } = sync else {
        panic!("{sync:?}")
    };
    let shares: Vec<(String, Vec<TopicPartition>)> = assignments
        .iter()
        .map(|(m, d)| (m.clone(), super::leader::share(d)))
        .collect();
    let t = |p| vec![TopicPartition::new("t", p)];
    assert_eq!(shares, vec![("m".into(), t(0)), ("n".into(), t(1))]);
    // Its share comes back as the leader encoded it; the assignment is what it decodes.
    let mine = assignments[0].1.clone();
    let answered = GroupAnswer::Assignment {
        generation: 1,
        partitions: Vec::new(),
        data: mine,
    };
    let fx = answer(&mut c, corr, answered);
    assert!(fx.iter().any(|e| matches!(
        e,
        Effect::Observe(ClientEvent::Assigned { partitions, .. }) if partitions == &t(0)
    )));
}

/// A member that seeks to the end after every batch, fetching `t-0` at 3 and handed 3..5.
fn member_seeking_to_the_end() -> (Consumer, Vec<Effect>) {
    let mut c = Consumer::new(Arc::new(ConsumerConfig {
        seek_end_every: Some(1),
        seek_time_every: None,
        ..config(None, &[], false)
    }));
    member_fetching(&mut c);
    let fx = deliver_batch(&mut c);
    let (corr, _) = sent_group(&fx).expect("the batch's commit");
    let fx = answer(&mut c, corr, GroupAnswer::Committed);
    (c, fx)
}

fn latest_answer(c: &mut Consumer, result: Result<u64, ErrorCode>) -> Vec<Effect> {
    let mut cx = Context::new(0);
    let resp = Message::ListOffsetsResponse {
        tp: tp(),
        spec: OffsetSpec::Latest,
        result,
        timestamp: None,
        leader_epoch: result.ok().map(|_| 2),
        log_start: result.ok().map(|_| 0),
        high_watermark: result.ok(),
    };
    c.on_message(&mut cx, 0, resp);
    cx.take_effects()
}

#[test]
fn a_seek_to_the_end_asks_the_leader_for_the_latest_offset_moves_there_and_commits_it() {
    let (mut c, fx) = member_seeking_to_the_end();
    assert_eq!(
        observed(&fx),
        ["commit g t-0=5 ok", "latest-offset t-0 invoke"]
    );
    assert!(fx.iter().any(|e| matches!(
        e,
        Effect::Send {
            to: 0,
            message: Message::ListOffsets {
                spec: OffsetSpec::Latest,
                ..
            },
        }
    )));
    // Committed like processed records: otherwise a group whose members all jumped to the end
    // would keep its old offset while nothing is left to read (never converging).
    let fx = latest_answer(&mut c, Ok(9));
    assert_eq!(
        observed(&fx),
        [
            "latest-offset t-0 ok 9",
            "seek t-0 to 9",
            "commit g t-0=9 invoke"
        ]
    );
}

/// A fetching member is handed `t-0`'s records 3 and 4 (stamped 300 and 400) and its commit of
/// 5 is answered; what it does then.
fn read_3_and_4_and_commit(c: &mut Consumer) -> Vec<Effect> {
    let records = (3..5)
        .map(|o| LogEntry {
            offset: o,
            epoch: 1,
            record: Record {
                timestamp: o as i64 * 100,
                ..Record::keyed("k", format!("v{o}"))
            },
            producer: None,
        })
        .collect();
    let fx = deliver(c, 0, fetch_answer(3, records));
    let (corr, _) = sent_group(&fx).expect("the batch's commit");
    answer(c, corr, GroupAnswer::Committed)
}

/// The leader's answer to the member's lookup by `spec`: `offset`, whose record is stamped
/// `stamp` (log start 0, high watermark 5); what the member does then.
fn found_by_time(c: &mut Consumer, spec: OffsetSpec, offset: u64, stamp: i64) -> Vec<Effect> {
    let mut cx = Context::new(0);
    let resp = Message::ListOffsetsResponse {
        tp: tp(),
        spec,
        result: Ok(offset),
        timestamp: Some(stamp),
        leader_epoch: Some(1),
        log_start: Some(0),
        high_watermark: Some(5),
    };
    c.on_message(&mut cx, 0, resp);
    cx.take_effects()
}

/// A member that seeks by time after every batch: it fetches `t-0` at 3, is handed 3..5 with
/// timestamps 300 and 400, commits 5 and asks for the first offset at or after the time of
/// the batch's first record (its first batch picks index 0).
#[test]
fn a_seek_by_time_asks_the_leader_for_the_record_s_time_moves_there_and_commits_it() {
    let mut c = Consumer::new(Arc::new(ConsumerConfig {
        seek_time_every: Some(1),
        ..config(None, &[], false)
    }));
    member_fetching(&mut c);
    let fx = read_3_and_4_and_commit(&mut c);
    assert_eq!(
        observed(&fx),
        ["commit g t-0=5 ok", "offset-for-time t-0 300 invoke"]
    );
    assert!(fx.iter().any(|e| matches!(
        e,
        Effect::Send {
            to: 0,
            message: Message::ListOffsets {
                spec: OffsetSpec::Timestamp(300),
                ..
            },
        }
    )));
    // An answer to another question (the latest offset) is not this one's.
    assert_eq!(latest_answer(&mut c, Ok(9)), vec![]);
    let fx = found_by_time(&mut c, OffsetSpec::Timestamp(300), 3, 300);
    // The answer, with what the checker needs, then a re-read from there, committed.
    assert!(fx.iter().any(|e| matches!(
        e,
        Effect::Observe(ClientEvent::OffsetForTime {
            stage: Stage::Ok,
            timestamp: 300,
            offset: Some(3),
            record_timestamp: Some(300),
            log_start: Some(0),
            ..
        })
    )));
    assert_eq!(
        observed(&fx),
        [
            "offset-for-time t-0 300 ok 3",
            "seek t-0 to 3",
            "commit g t-0=3 invoke"
        ]
    );
}

/// A member due to seek to the max timestamp (the third of its four turns of seeks by time): after
/// its batch's commit it asks the leader, reports the answer with the leader's log start and
/// high watermark, moves there and commits it.
#[test]
fn a_seek_to_the_max_timestamp_asks_the_leader_reports_the_answer_and_moves_there() {
    let mut c = Consumer::new(Arc::new(config(None, &[], false)));
    member_fetching(&mut c);
    c.to_time.insert(tp(), (OffsetSpec::MaxTimestamp, 3));
    let fx = read_3_and_4_and_commit(&mut c);
    assert_eq!(
        observed(&fx),
        ["commit g t-0=5 ok", "offset-for-max-timestamp t-0 invoke"]
    );
    assert!(fx.iter().any(|e| matches!(
        e,
        Effect::Send {
            to: 0,
            message: Message::ListOffsets {
                spec: OffsetSpec::MaxTimestamp,
                ..
            },
        }
    )));
    let fx = found_by_time(&mut c, OffsetSpec::MaxTimestamp, 4, 400);
    assert!(fx.iter().any(|e| matches!(
        e,
        Effect::Observe(ClientEvent::OffsetForMaxTimestamp {
            stage: Stage::Ok,
            offset: Some(4),
            record_timestamp: Some(400),
            log_start: Some(0),
            high_watermark: Some(5),
            ..
        })
    )));
    assert_eq!(
        observed(&fx),
        [
            "offset-for-max-timestamp t-0 ok 4",
            "seek t-0 to 4",
            "commit g t-0=4 invoke"
        ]
    );
}

/// An answer by time before the batch that prompted the lookup (an older record stamped later,
/// by a producer whose clock ran ahead) is reported but not followed: a member that rewound
/// there at every lookup might never catch up. It fetches on from where it was.
#[test]
fn an_answer_by_time_before_the_batch_that_asked_is_not_followed() {
    let mut c = Consumer::new(Arc::new(config(None, &[], false)));
    member_fetching(&mut c);
    c.to_time.insert(tp(), (OffsetSpec::MaxTimestamp, 3));
    read_3_and_4_and_commit(&mut c);
    let fx = found_by_time(&mut c, OffsetSpec::MaxTimestamp, 1, 900);
    assert_eq!(observed(&fx), ["offset-for-max-timestamp t-0 ok 1"]);
    assert!(fx.iter().any(|e| matches!(
        e,
        Effect::Send {
            message: Message::Fetch(f),
            ..
        } if f.fetch_offset == 5
    )));
    assert!(c.to_time.is_empty());
}

#[test]
fn a_refused_latest_offset_is_reported_and_asked_again_after_new_metadata() {
    let (mut c, _) = member_seeking_to_the_end();
    let fx = latest_answer(&mut c, Err(ErrorCode::OffsetNotAvailable));
    assert_eq!(
        observed(&fx),
        ["latest-offset t-0 failed: OffsetNotAvailable"]
    );
    // No backoff configured: it asks for metadata at once, then for the latest offset again.
    assert!(fx.iter().any(|e| matches!(
        e,
        Effect::Send {
            message: Message::Metadata { .. },
            ..
        }
    )));
}

/// A rewind moves the position back `back` offsets from the end of the batch just processed,
/// and the next commit writes the rewound position: the group's offset goes down, below the
/// committed 3, as an application resetting its group back would make it.
#[test]
fn a_rewind_commits_the_lower_position() {
    let mut c = Consumer::new(Arc::new(ConsumerConfig {
        rewind: Some(crate::node::Rewind { every: 1, back: 4 }),
        ..config(None, &[], false)
    }));
    member_fetching(&mut c);
    let fx = deliver_batch(&mut c);
    assert_eq!(
        observed(&fx),
        [
            "polled t-0 [3@1:k=v3, 4@1:k=v4]",
            "seek t-0 to 1",
            "commit g t-0=1 invoke"
        ]
    );
}

fn sets_recommit(effects: &[Effect]) -> bool {
    effects.iter().any(|e| {
        matches!(
            e,
            Effect::SetTimer {
                timer: Timer::Recommit,
                after_ms: 5_000
            }
        )
    })
}

/// A commit of 5 refused by a coordinator that may have written it (outcome unknown), sent
/// again to the new coordinator and acknowledged; the member then fetches at 5. Returns the
/// effects of the unknown outcome.
fn commit_unknown_then_acknowledged(c: &mut Consumer) -> Vec<Effect> {
    member_fetching(c);
    let fx = deliver_batch(c);
    let (corr, _) = sent_group(&fx).expect("commit sent");
    let unknown = refuse(c, corr, ErrorCode::NotCoordinator);
    assert_eq!(
        observed(&unknown),
        ["commit g t-0=5 unknown: NotCoordinator"]
    );
    let (corr, req) = sent_group(&unknown).expect("looks for the coordinator again");
    assert!(matches!(req, GroupRequest::FindCoordinator));
    let fx = answer(c, corr, GroupAnswer::Coordinator(0));
    let (corr, req) = sent_group(&fx).expect("the commit is sent again");
    assert!(matches!(req, GroupRequest::Commit { offset: 5, .. }));
    let fx = answer(c, corr, GroupAnswer::Committed);
    assert_eq!(fetch_offset(&fx), Some(5));
    unknown
}

/// The unknown commit may still land after the acknowledged one and take the group's offset
/// back to what it said; with nothing new to process the member would never commit again. So,
/// as Kafka's auto-commit does on its interval, it commits its last acknowledged offset again.
#[test]
fn after_a_commit_of_unknown_outcome_the_last_acknowledged_offset_is_committed_again() {
    let mut cfg = config(None, &[], false);
    cfg.recommit_ms = Some(5_000);
    let mut c = Consumer::new(Arc::new(cfg));
    let unknown = commit_unknown_then_acknowledged(&mut c);
    assert!(sets_recommit(&unknown), "{unknown:?}");
    // The timer fires while the fetch is in flight: the re-commit waits for its answer.
    let mut cx = Context::new(5_000);
    c.on_timer(&mut cx, Timer::Recommit);
    let fx = cx.take_effects();
    assert!(sets_recommit(&fx), "re-armed: {fx:?}");
    assert!(sent_group(&fx).is_none());
    let fx = deliver(&mut c, 5_001, fetch_answer(5, Vec::new()));
    assert_eq!(observed(&fx), ["commit g t-0=5 invoke"]);
    let (corr, _) = sent_group(&fx).expect("re-commit sent");
    let fx = answer(&mut c, corr, GroupAnswer::Committed);
    assert_eq!(fetch_offset(&fx), Some(5), "then back to fetching");
    // A rebalance ends it: a late commit of the old generation is refused as stale.
    let mut cx = Context::new(5_002);
    c.rejoin(&mut cx);
    let mut cx = Context::new(10_000);
    c.on_timer(&mut cx, Timer::Recommit);
    assert!(
        !sets_recommit(&cx.take_effects()),
        "not re-armed after a rebalance"
    );
}

#[test]
fn without_a_recommit_interval_nothing_is_committed_again() {
    let mut c = consumer(None, &[]);
    let unknown = commit_unknown_then_acknowledged(&mut c);
    assert!(!sets_recommit(&unknown), "{unknown:?}");
}

/// A member that rejoins its group (a rebalance) while `in_flight` is out; then the answer comes.
fn rejoin_then(
    c: &mut Consumer,
    answer_late: impl FnOnce(&mut Consumer) -> Vec<Effect>,
) -> Vec<Effect> {
    let mut cx = Context::new(0);
    c.rejoin(&mut cx);
    answer_late(c)
}

#[test]
fn a_rejoining_member_drops_its_seek_to_the_end_in_flight() {
    let (mut c, _) = member_seeking_to_the_end();
    let fx = rejoin_then(&mut c, |c| latest_answer(c, Ok(9)));
    assert_eq!(observed(&fx), Vec::<String>::new());
    assert!(c.positions().is_empty(), "the new generation starts afresh");
    // Nor is the seek itself carried over: the new generation resumes at the committed offset,
    // not at an end the old one chose to jump to (records in between would go unread).
    assert!(c.to_end.is_empty(), "a seek of the old generation");
    // The switch keeps the request: its answer sets a position of the new generation.
    let mut c = Consumer::new(Arc::new(ConsumerConfig {
        seek_end_every: Some(1),
        seek_time_every: None,
        ..config(None, &[Bug::KeepStaleListOffsets], false)
    }));
    member_fetching(&mut c);
    let fx = deliver_batch(&mut c);
    let (corr, _) = sent_group(&fx).expect("the batch's commit");
    answer(&mut c, corr, GroupAnswer::Committed);
    let fx = rejoin_then(&mut c, |c| latest_answer(c, Ok(9)));
    assert_eq!(observed(&fx), ["latest-offset t-0 ok 9", "seek t-0 to 9"]);
    assert_eq!(c.positions().get(&tp()), Some(&9));
}

#[test]
fn a_rejoining_member_drops_its_fetch_of_the_committed_offset_in_flight() {
    let mut c = consumer(None, &[]);
    let corr = member_assigned(&mut c);
    // Found by the history checker (`poll-without-resume`): the answer set the position the new
    // generation then read from, without fetching the committed offset again.
    let fx = rejoin_then(&mut c, |c| answer(c, corr, committed_at_3()));
    assert_eq!(observed(&fx), Vec::<String>::new());
    assert!(
        c.positions().is_empty(),
        "the new generation fetches it again"
    );
}

/// An answer is matched to its request by correlation: the commit's answer, arriving while a
/// heartbeat is unanswered, acknowledges the commit (taken for the heartbeat's, the commit
/// would wait out its timeout and be reported unknown).
#[test]
fn a_commit_answered_while_a_heartbeat_is_unanswered_is_acknowledged() {
    let mut cfg = config(None, &[], false);
    cfg.heartbeat_interval_ms = Some(1_000);
    let mut c = Consumer::new(Arc::new(cfg));
    member_fetching(&mut c);
    let mut cx = Context::new(0);
    c.on_timer(&mut cx, Timer::GroupHeartbeat);
    let (beat, req) = sent_group(&cx.take_effects()).expect("a heartbeat");
    assert!(matches!(req, GroupRequest::Heartbeat { .. }), "{req:?}");
    let fx = deliver_batch(&mut c);
    let (commit, req) = sent_group(&fx).expect("the commit");
    assert!(
        matches!(req, GroupRequest::Commit { offset: 5, .. }),
        "{req:?}"
    );
    assert_ne!(beat, commit);
    let fx = answer(&mut c, commit, GroupAnswer::Committed);
    assert_eq!(observed(&fx), ["commit g t-0=5 ok"]);
    assert_eq!(fetch_offset(&fx), Some(5));
}

/// A fetch that times out may have gone to a leader that is gone: the member asks for metadata
/// newer than its own before it fetches again, rather than fetch from the same broker again.
#[test]
fn a_timed_out_fetch_asks_for_newer_metadata() {
    let mut c = consumer(None, &[]);
    let fx = member_fetching(&mut c);
    assert_eq!(fetch_offset(&fx), Some(3));
    let mut cx = Context::new(0);
    c.on_timer(&mut cx, Timer::ClientRequestTimeout);
    let mut fx = cx.take_effects();
    assert!(fx.contains(&Effect::Disconnect(0)), "{fx:?}");
    if !fx.iter().any(|e| matches!(e, Effect::Send { .. })) {
        // Backing off first, if the consumer does.
        c.on_timer(&mut cx, Timer::ClientBackoff);
        fx = cx.take_effects();
    }
    let asked = fx.iter().find_map(|e| match e {
        Effect::Send {
            message: Message::Metadata { min_version },
            ..
        } => Some(*min_version),
        _ => None,
    });
    assert_eq!(asked, Some(2), "{fx:?}");
    assert_eq!(fetch_offset(&fx), None, "{fx:?}");
}
