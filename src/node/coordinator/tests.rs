//! The coordinator inside a one-broker cluster: broker 0 leads `t` (2 partitions) and
//! `__consumer_offsets` with ISR {0}, so every record it appends commits at once.

use super::{Coordinator, Settings};
use crate::node::{
    Broker, BrokerConfig, Bug, Context, Controller, ControllerConfig, Effect, Timer, TopicSpec,
    PRODUCER_ID_BLOCK_SIZE,
};
use crate::protocol::{
    AssignBy, Assignor, ErrorCode, GroupAnswer, GroupMessage, GroupRequest, Message,
    TopicPartition, OFFSETS_TOPIC,
};
use std::sync::Arc;

fn broker(bugs: &[Bug]) -> Broker {
    broker_with(bugs, None)
}

fn broker_with(bugs: &[Bug], compact_after: Option<u64>) -> Broker {
    broker_configured(bugs, compact_after, 1)
}

fn broker_configured(bugs: &[Bug], compact_after: Option<u64>, min_insync: usize) -> Broker {
    let controller = Controller::bootstrapped(Arc::new(ControllerConfig {
        id: 9,
        brokers: vec![0],
        topics: vec![
            TopicSpec::spread("t", 2, 1, &[0]),
            TopicSpec::spread(OFFSETS_TOPIC, 1, 1, &[0]),
        ],
        session_timeout_ms: None,
        unclean_leader_election: false,
        producer_id_block_size: PRODUCER_ID_BLOCK_SIZE,
        leader_rebalance_ms: None,
        bugs: Default::default(),
    }));
    let mut config = BrokerConfig::new(0, vec![9]);
    config.bugs = bugs.iter().copied().collect();
    config.offsets_compact_after = compact_after;
    config.min_insync_replicas = min_insync;
    let mut b = Broker::bootstrapped(Arc::new(config), controller.metadata().clone());
    b.on_start(&mut Context::new(0));
    b
}

type Answer = Result<GroupAnswer, ErrorCode>;

/// Sends one group request from client `from`; returns the answers sent to each client.
fn ask(b: &mut Broker, from: u32, request: GroupRequest) -> Vec<(u32, Answer)> {
    answers_in(&ask_effects(b, from, request))
}

/// Sends one group request from client `from`; returns every effect of it.
fn ask_effects(b: &mut Broker, from: u32, request: GroupRequest) -> Vec<Effect> {
    let msg = GroupMessage {
        group: "g".into(),
        correlation: 1,
        request,
    };
    let mut cx = Context::new(0);
    b.on_message(&mut cx, from, Message::Group(msg));
    cx.take_effects()
}

fn answers(mut cx: Context) -> Vec<(u32, Answer)> {
    answers_in(&cx.take_effects())
}

fn answers_in(effects: &[Effect]) -> Vec<(u32, Answer)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Send {
                to,
                message: Message::GroupResponse(r),
            } => Some((*to, r.result.clone())),
            _ => None,
        })
        .collect()
}

fn join(b: &mut Broker, from: u32, member: Option<&str>) -> Vec<(u32, Answer)> {
    let request = GroupRequest::Join {
        member: member.map(str::to_string),
        topics: vec!["t".into()],
        assign: AssignBy::Coordinator(Assignor::Range),
        require_known_member_id: false,
    };
    ask(b, from, request)
}

fn joined(answers: &[(u32, Answer)], client: u32) -> (String, u32) {
    answers
        .iter()
        .find_map(|(to, a)| match a {
            Ok(GroupAnswer::Joined {
                member, generation, ..
            }) if *to == client => Some((member.clone(), *generation)),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no join answer for {client} in {answers:?}"))
}

fn sync(b: &mut Broker, from: u32, member: &str, generation: u32) -> Answer {
    let r = ask(
        b,
        from,
        GroupRequest::Sync {
            member: member.into(),
            generation,
            assignments: Vec::new(),
        },
    );
    r.into_iter().next().expect("answered at once").1
}

fn commit(b: &mut Broker, from: u32, member: &str, generation: u32, offset: u64) -> Answer {
    commit_with(b, from, member, generation, offset, "")
}

fn commit_with(
    b: &mut Broker,
    from: u32,
    member: &str,
    generation: u32,
    offset: u64,
    metadata: &str,
) -> Answer {
    let r = ask(
        b,
        from,
        GroupRequest::Commit {
            member: member.into(),
            generation,
            tp: TopicPartition::new("t", 0),
            offset,
            metadata: metadata.into(),
        },
    );
    r.into_iter().next().expect("answered at once").1
}

/// A heartbeat of `member` in `generation`, and its answer.
fn heartbeat(b: &mut Broker, from: u32, member: &str, generation: u32) -> Answer {
    let request = GroupRequest::Heartbeat {
        member: member.into(),
        generation,
    };
    ask(b, from, request)
        .into_iter()
        .next()
        .expect("answered")
        .1
}

fn fetch(b: &mut Broker) -> Answer {
    let r = ask(
        b,
        7,
        GroupRequest::FetchOffset {
            tp: TopicPartition::new("t", 0),
        },
    );
    r.into_iter().next().expect("answered").1
}

/// Two members, both synced in generation 2; returns their ids.
fn two_members(b: &mut Broker) -> (String, String) {
    let (m1, g1) = joined(&join(b, 101, None), 101);
    assert_eq!(g1, 1);
    let a = sync(b, 101, &m1, 1);
    let all = vec![TopicPartition::new("t", 0), TopicPartition::new("t", 1)];
    assert_eq!(
        a,
        Ok(GroupAnswer::Assignment {
            generation: 1,
            partitions: all,
            data: Vec::new(),
        })
    );
    // A second member starts a rebalance; the first learns it from its heartbeat, rejoins.
    assert!(
        join(b, 102, None).is_empty(),
        "the join waits for the others"
    );
    let hb = ask(
        b,
        101,
        GroupRequest::Heartbeat {
            member: m1.clone(),
            generation: 1,
        },
    );
    assert_eq!(hb[0].1, Err(ErrorCode::RebalanceInProgress));
    let both = join(b, 101, Some(&m1));
    let (m2, g2) = joined(&both, 102);
    assert_eq!((joined(&both, 101).1, g2), (2, 2));
    // Range: the first member (by id) gets t-0, the second t-1.
    let s1 = sync(b, 101, &m1, 2);
    let s2 = sync(b, 102, &m2, 2);
    assert_eq!(
        (s1, s2),
        (
            Ok(GroupAnswer::Assignment {
                generation: 2,
                partitions: vec![TopicPartition::new("t", 0)],
                data: Vec::new(),
            }),
            Ok(GroupAnswer::Assignment {
                generation: 2,
                partitions: vec![TopicPartition::new("t", 1)],
                data: Vec::new(),
            })
        )
    );
    (m1, m2)
}

#[test]
fn members_join_rebalance_and_get_range_assignments() {
    let mut b = broker(&[]);
    two_members(&mut b);
}

/// A heartbeat is judged by the generation it names, not the group's: a member still in an
/// older generation hears `IllegalGeneration` and rejoins, instead of consuming on with an
/// assignment the group has replaced.
#[test]
fn a_heartbeat_of_an_older_generation_is_refused() {
    let mut b = broker(&[]);
    let (m1, _) = two_members(&mut b);
    assert_eq!(
        heartbeat(&mut b, 101, &m1, 1),
        Err(ErrorCode::IllegalGeneration)
    );
    assert!(heartbeat(&mut b, 101, &m1, 2).is_ok());
}

#[test]
fn commits_are_fenced_by_member_and_generation() {
    let mut b = broker(&[]);
    let (m1, _) = two_members(&mut b);
    assert_eq!(
        fetch(&mut b),
        Ok(GroupAnswer::Offset {
            offset: None,
            metadata: String::new()
        })
    );
    assert_eq!(commit(&mut b, 101, &m1, 2, 5), Ok(GroupAnswer::Committed));
    assert_eq!(
        fetch(&mut b),
        Ok(GroupAnswer::Offset {
            offset: Some(5),
            metadata: String::new()
        })
    );
    // The same member in the generation before, and a member the group does not know.
    assert_eq!(
        commit(&mut b, 101, &m1, 1, 3),
        Err(ErrorCode::IllegalGeneration)
    );
    assert_eq!(
        commit(&mut b, 103, "stranger", 2, 3),
        Err(ErrorCode::UnknownMemberId)
    );
    assert_eq!(
        fetch(&mut b),
        Ok(GroupAnswer::Offset {
            offset: Some(5),
            metadata: String::new()
        })
    );
}

#[test]
fn the_bug_switch_accepts_a_stale_commit_and_the_offset_goes_back() {
    let mut b = broker(&[Bug::AcceptStaleGeneration]);
    let (m1, _) = two_members(&mut b);
    assert_eq!(commit(&mut b, 101, &m1, 2, 5), Ok(GroupAnswer::Committed));
    assert_eq!(commit(&mut b, 101, &m1, 1, 3), Ok(GroupAnswer::Committed));
    assert_eq!(
        fetch(&mut b),
        Ok(GroupAnswer::Offset {
            offset: Some(3),
            metadata: String::new()
        })
    );
}

/// A heartbeat renews the member's session: it sets the member's session timer again, so a
/// member that only heartbeats (nothing to commit) is never expired while it keeps doing so. A
/// sync renews it too (as in Kafka): a member whose join waited out most of a rebalance is not
/// expelled before its first heartbeat.
#[test]
fn a_heartbeat_or_a_sync_renews_the_members_session() {
    let mut b = broker(&[]);
    let (m1, _) = two_members(&mut b);
    let requests = [
        GroupRequest::Heartbeat {
            member: m1.clone(),
            generation: 2,
        },
        GroupRequest::Sync {
            member: m1.clone(),
            generation: 2,
            assignments: Vec::new(),
        },
    ];
    for request in requests {
        let msg = GroupMessage {
            group: "g".into(),
            correlation: 1,
            request: request.clone(),
        };
        let mut cx = Context::new(0);
        b.on_message(&mut cx, 101, Message::Group(msg));
        let session = Timer::MemberSession {
            group: "g".into(),
            member: m1.clone(),
        };
        let renewed = cx
            .take_effects()
            .into_iter()
            .any(|e| matches!(e, Effect::SetTimer { timer, .. } if timer == session));
        assert!(renewed, "{request:?} did not renew the session");
    }
}

/// A first join asking for an id (Kafka's KIP-394) and its answer: the id, which is held for a
/// session (its timer armed), so one never joined with expires.
fn join_for_id(b: &mut Broker, from: u32) -> String {
    let request = GroupRequest::Join {
        member: None,
        topics: vec!["t".into()],
        assign: AssignBy::Coordinator(Assignor::Range),
        require_known_member_id: true,
    };
    let effects = ask_effects(b, from, request);
    let id = match answers_in(&effects).as_slice() {
        [(to, Ok(GroupAnswer::MemberIdRequired { member }))] if *to == from => member.clone(),
        other => panic!("no member id for {from}: {other:?}"),
    };
    let session = Timer::MemberSession {
        group: "g".into(),
        member: id.clone(),
    };
    let timed = effects
        .iter()
        .any(|e| matches!(e, Effect::SetTimer { timer, .. } if *timer == session));
    assert!(timed, "the pending id {id} has no session timer");
    id
}

/// A first join that asks for an id is given one and nothing else: no member, no rebalance. A
/// copy of a first join the network delivers late (its client long a member) leaves only a
/// pending id, which expires with no rebalance either — it was a member of its own that no
/// client heartbeats for, taken in by one rebalance and expelled by another. The id joined with
/// makes a member.
#[test]
fn a_first_join_is_only_given_an_id_and_a_late_copy_adds_no_member() {
    let mut b = broker(&[]);
    let (m1, _) = two_members(&mut b);
    let late = join_for_id(&mut b, 101);
    assert_eq!(heartbeat(&mut b, 101, &m1, 2), Ok(GroupAnswer::HeartbeatOk));
    let mut cx = Context::new(0);
    let expiry = Timer::MemberSession {
        group: "g".into(),
        member: late.clone(),
    };
    b.on_timer(&mut cx, expiry);
    assert!(answers(cx).is_empty());
    assert_eq!(heartbeat(&mut b, 101, &m1, 2), Ok(GroupAnswer::HeartbeatOk));
    // Expired, the id is unknown.
    assert_eq!(
        join(&mut b, 101, Some(&late)),
        vec![(101, Err(ErrorCode::UnknownMemberId))]
    );
    // A new member: its id, then the join with it, which starts a rebalance.
    let id = join_for_id(&mut b, 103);
    assert_ne!(id, late);
    assert!(
        join(&mut b, 103, Some(&id)).is_empty(),
        "waits for the others"
    );
    assert_eq!(
        heartbeat(&mut b, 101, &m1, 2),
        Err(ErrorCode::RebalanceInProgress)
    );
    // A member now, no longer pending: its session's end expels it like any member's.
    let mut cx = Context::new(0);
    let expiry = Timer::MemberSession {
        group: "g".into(),
        member: id.clone(),
    };
    b.on_timer(&mut cx, expiry);
    assert_eq!(
        join(&mut b, 103, Some(&id)),
        vec![(103, Err(ErrorCode::UnknownMemberId))]
    );
}

/// A first join the group would refuse is refused at once, not given an id; a pending id that
/// leaves is gone without a rebalance, as in Kafka.
#[test]
fn a_refused_first_join_gets_no_id_and_a_pending_id_can_leave() {
    let mut b = broker(&[]);
    let (m1, _) = two_members(&mut b);
    let leader_assigned = GroupRequest::Join {
        member: None,
        topics: Vec::new(),
        assign: AssignBy::Leader {
            protocol_type: "consumer".into(),
            protocols: vec![offer("range", b"")],
        },
        require_known_member_id: true,
    };
    assert_eq!(
        ask(&mut b, 104, leader_assigned),
        vec![(104, Err(ErrorCode::InconsistentGroupProtocol))]
    );
    let id = join_for_id(&mut b, 103);
    let left = ask(&mut b, 103, GroupRequest::Leave { member: id.clone() });
    assert_eq!(left, vec![(103, Ok(GroupAnswer::Left))]);
    assert_eq!(heartbeat(&mut b, 101, &m1, 2), Ok(GroupAnswer::HeartbeatOk));
    assert_eq!(
        join(&mut b, 103, Some(&id)),
        vec![(103, Err(ErrorCode::UnknownMemberId))]
    );
}

#[test]
fn session_expiry_removes_a_member_and_the_other_rebalances_alone() {
    let mut b = broker(&[]);
    let (m1, m2) = two_members(&mut b);
    let mut cx = Context::new(0);
    b.on_timer(
        &mut cx,
        Timer::MemberSession {
            group: "g".into(),
            member: m2.clone(),
        },
    );
    assert_eq!(
        heartbeat(&mut b, 101, &m1, 2),
        Err(ErrorCode::RebalanceInProgress)
    );
    let (_, g) = joined(&join(&mut b, 101, Some(&m1)), 101);
    assert_eq!(g, 3);
    assert_eq!(
        heartbeat(&mut b, 102, &m2, 2),
        Err(ErrorCode::UnknownMemberId)
    );
}

/// A rebalance does not wait for ever on a member that is alive (its session kept up) but does
/// not rejoin: when the rebalance timer fires, the generation completes with those that
/// rejoined, and the one that did not is out of the group.
#[test]
fn a_rebalance_completes_at_its_deadline_without_a_member_that_did_not_rejoin() {
    let mut b = broker(&[]);
    let (m1, m2) = two_members(&mut b);
    assert!(
        join(&mut b, 103, None).is_empty(),
        "the join waits for the others"
    );
    assert!(
        join(&mut b, 101, Some(&m1)).is_empty(),
        "still waiting for the second member"
    );
    let mut cx = Context::new(0);
    b.on_timer(&mut cx, Timer::GroupRebalance("g".into()));
    let done = answers(cx);
    let (m3, g3) = joined(&done, 103);
    assert_eq!((joined(&done, 101).1, g3), (3, 3));
    assert_ne!(m3, m2);
    assert_eq!(
        heartbeat(&mut b, 102, &m2, 2),
        Err(ErrorCode::UnknownMemberId)
    );
}

#[test]
fn a_new_coordinator_rebuilds_offsets_and_generation_from_the_log() {
    let mut b = broker(&[]);
    let (m1, _) = two_members(&mut b);
    assert_eq!(commit(&mut b, 101, &m1, 2, 5), Ok(GroupAnswer::Committed));
    assert_eq!(commit(&mut b, 101, &m1, 2, 8), Ok(GroupAnswer::Committed));
    let log = b
        .log(&TopicPartition::new(OFFSETS_TOPIC, 0))
        .expect("offsets log");
    // What a new leader of the partition does: replay, then serve once its HW covers the log.
    let mut c = Coordinator::replay(7, log);
    assert!(
        !c.is_loaded(),
        "serves nothing before its high watermark reaches its epoch start"
    );
    c.on_high_watermark(
        &mut Context::new(0),
        log.log_end_offset(),
        log.log_end_offset(),
        true,
    );
    let g = &c.groups()["g"];
    assert_eq!(g.offsets[&TopicPartition::new("t", 0)], 8);
    assert_eq!(g.generation, 2);
    assert!(g.members.is_empty(), "members are not stored: they rejoin");
}

/// The last commit is the group's offset, also when it is lower than an earlier one (a group
/// reset back to re-read); with `replay-keeps-highest-offset` the rebuilt coordinator gives the
/// earlier, higher one.
#[test]
fn a_new_coordinator_keeps_the_last_commit_even_a_lower_one() {
    let mut b = broker(&[]);
    let (m1, _) = two_members(&mut b);
    assert_eq!(commit(&mut b, 101, &m1, 2, 8), Ok(GroupAnswer::Committed));
    assert_eq!(commit(&mut b, 101, &m1, 2, 5), Ok(GroupAnswer::Committed));
    let log = b
        .log(&TopicPartition::new(OFFSETS_TOPIC, 0))
        .expect("offsets log");
    let offset_after = |bugged: bool| {
        let settings = Settings {
            session_timeout_ms: None,
            rebalance_timeout_ms: None,
            accept_stale_generation: false,
            sync_before_assignment: false,
            replay_keeps_highest_offset: bugged,
            member_session_not_renewed: false,
            offset_fetch_from_cache: false,
        };
        let mut c = Coordinator::load(7, log, &settings);
        let end = log.log_end_offset();
        c.on_high_watermark(&mut Context::new(0), end, end, true);
        c.groups()["g"].offsets[&TopicPartition::new("t", 0)]
    };
    assert_eq!(offset_after(false), 5);
    assert_eq!(offset_after(true), 8);
}

/// A broker whose group `g` (generation 2) committed offset 5, and its offsets log.
fn one_commit() -> (Broker, crate::log::PartitionLog) {
    let mut b = broker(&[]);
    let (m1, _) = two_members(&mut b);
    assert_eq!(commit(&mut b, 101, &m1, 2, 5), Ok(GroupAnswer::Committed));
    let log = b
        .log(&TopicPartition::new(OFFSETS_TOPIC, 0))
        .expect("offsets log")
        .clone();
    (b, log)
}

/// What a loaded coordinator serves is what its committed log says: an offset it holds that
/// the log does not (or holds otherwise), or one the log has that it lacks, breaks
/// `coordinator-offsets-in-log` (the check the simulator runs after a broker step that moved
/// an offsets partition).
#[test]
fn a_coordinator_whose_offsets_differ_from_its_committed_log_breaks_an_invariant() {
    let (b, log) = one_commit();
    let c = replayed(&b);
    assert_eq!(c.check_offsets_in_log(&log), Ok(()));
    let t0 = TopicPartition::new("t", 0);
    type Corrupt<'a> = Box<dyn Fn(&mut Coordinator) + 'a>;
    let corruptions: Vec<Corrupt> = vec![
        Box::new(|c| {
            c.groups.get_mut("g").unwrap().offsets.insert(t0.clone(), 4);
        }),
        Box::new(|c| {
            c.groups
                .get_mut("g")
                .unwrap()
                .offsets
                .insert(TopicPartition::new("t", 1), 1);
        }),
        Box::new(|c| {
            c.groups.get_mut("g").unwrap().offsets.remove(&t0);
        }),
    ];
    for corrupt in corruptions {
        let mut bad = replayed(&b);
        corrupt(&mut bad);
        let got = bad.check_offsets_in_log(&log).map_err(|v| v.rule);
        assert_eq!(got, Err("coordinator-offsets-in-log"));
    }
}

/// A loaded coordinator's generation of a group is at least every generation the group's
/// committed records name (`coordinator-generation-covers-log`): one rebuilt lower would hand
/// out generation numbers an old generation's members still hold. Higher (a generation handed
/// out, its record not yet committed) is fine.
#[test]
fn a_coordinator_behind_its_logged_generation_breaks_an_invariant() {
    let (b, log) = one_commit();
    let mut c = replayed(&b);
    assert_eq!(c.groups()["g"].generation, 2);
    assert_eq!(c.check_offsets_in_log(&log), Ok(()));
    c.groups.get_mut("g").unwrap().generation = 3;
    assert_eq!(c.check_offsets_in_log(&log), Ok(()));
    for behind in [1, 0] {
        c.groups.get_mut("g").unwrap().generation = behind;
        let v = c.check_offsets_in_log(&log).unwrap_err();
        assert_eq!(v.rule, "coordinator-generation-covers-log");
        assert!(v.detail.contains("generation 2"), "{v}");
    }
}

/// A generation the coordinator takes as stored (so answers its syncs) must be the one its
/// committed records name (`coordinator-generation-stored`): taken as stored ahead of its own
/// record, a failover before that record commits loses a generation members were handed.
#[test]
fn a_generation_taken_as_stored_ahead_of_its_record_breaks_an_invariant() {
    let (b, log) = one_commit();
    let mut c = replayed(&b);
    let g = c.groups.get_mut("g").unwrap();
    g.generation_stored = true;
    assert_eq!(c.check_offsets_in_log(&log), Ok(()));
    // A new generation handed out, its record not yet committed: fine while not stored.
    let g = c.groups.get_mut("g").unwrap();
    g.generation = 3;
    g.generation_stored = false;
    assert_eq!(c.check_offsets_in_log(&log), Ok(()));
    c.groups.get_mut("g").unwrap().generation_stored = true;
    let v = c.check_offsets_in_log(&log).unwrap_err();
    assert_eq!(v.rule, "coordinator-generation-stored");
    assert!(
        v.detail.contains("generation 3") && v.detail.contains("Some(2)"),
        "{v}"
    );
    // A group stable (its syncs answered) in a generation whose record has not committed,
    // though the flag says not stored: a coordinator that answered without waiting for it.
    let g = c.groups.get_mut("g").unwrap();
    g.generation_stored = false;
    g.state = super::group::GroupState::Stable;
    let v = c.check_offsets_in_log(&log).unwrap_err();
    assert_eq!(v.rule, "coordinator-generation-stored");
    assert!(v.detail.contains("Stable at generation 3"), "{v}");
    // A group with no generation record at all.
    let mut c = replayed(&b);
    let mut other = c.groups["g"].clone();
    other.generation_stored = true;
    other.offsets.clear();
    c.groups.insert("h".to_string(), other);
    let v = c.check_offsets_in_log(&log).unwrap_err();
    assert_eq!(v.rule, "coordinator-generation-stored");
}

/// A push of broker `b`'s metadata, one version newer, with `change` made to the state of the
/// `__consumer_offsets` partition.
fn offsets_changed(
    b: &Broker,
    change: impl FnOnce(&mut crate::protocol::PartitionState),
) -> Message {
    let mut md = b.metadata().clone();
    md.version += 1;
    let offsets = TopicPartition::new(OFFSETS_TOPIC, 0);
    let ps = md.partitions.iter_mut().find(|p| p.tp == offsets);
    change(ps.expect("offsets partition"));
    Message::UpdateMetadata {
        controller_epoch: 0,
        metadata: md,
    }
}

#[test]
fn a_broker_that_stops_leading_the_partition_resigns_and_refuses() {
    let mut b = broker(&[]);
    let r = ask(&mut b, 101, GroupRequest::FindCoordinator);
    assert_eq!(r[0].1, Ok(GroupAnswer::Coordinator(0)));
    let (m1, g1) = joined(&join(&mut b, 101, None), 101);
    assert!(
        m1.starts_with("c101-e"),
        "member ids name client and epoch: {m1}"
    );
    // A second join leaves a rebalance waiting for the first member when leadership moves, and
    // a third client holds a pending id.
    assert!(join(&mut b, 102, None).is_empty());
    let pending = join_for_id(&mut b, 103);
    let push = offsets_changed(&b, |ps| {
        ps.leader = None;
        ps.leader_epoch += 1;
    });
    let mut cx = Context::new(0);
    b.on_message(&mut cx, 9, push);
    let effects = cx.take_effects();
    assert_eq!(
        answers_in(&effects),
        vec![(102, Err(ErrorCode::NotCoordinator))],
        "the waiting join is told to look for the new coordinator"
    );
    // Every session timer goes with the coordinator, a pending id's too: left armed, it would
    // fire into whatever coordinator this broker runs next.
    for member in [&m1, &pending] {
        let session = Timer::MemberSession {
            group: "g".into(),
            member: member.clone(),
        };
        let cancelled = effects
            .iter()
            .any(|e| matches!(e, Effect::CancelTimer(timer) if *timer == session));
        assert!(cancelled, "the session timer of {member} is left armed");
    }
    assert!(b.coordinators().is_empty());
    assert_eq!(
        commit(&mut b, 101, &m1, g1, 1),
        Err(ErrorCode::NotCoordinator)
    );
    let r = ask(&mut b, 101, GroupRequest::FindCoordinator);
    assert_eq!(r[0].1, Err(ErrorCode::CoordinatorNotAvailable));
}

/// Ids never repeat across coordinators: one loaded in a later leader epoch counts its ids from
/// the start again, so without the epoch in the id it gave a client the id that client held
/// under the previous coordinator, and a stale request of the old membership passed for the new.
#[test]
fn a_coordinator_of_a_later_epoch_gives_no_id_an_earlier_one_gave() {
    let mut b = broker(&[]);
    let (first, _) = joined(&join(&mut b, 101, None), 101);
    let push = offsets_changed(&b, |ps| {
        ps.leader_epoch += 1;
        ps.partition_epoch += 1;
    });
    b.on_message(&mut Context::new(0), 9, push);
    let (again, _) = joined(&join(&mut b, 101, None), 101);
    assert_ne!(again, first, "the later coordinator gave the same id again");
}

/// A new coordinator replaying broker `b`'s `__consumer_offsets` log, all of it committed.
fn replayed(b: &Broker) -> Coordinator {
    let log = b
        .log(&TopicPartition::new(OFFSETS_TOPIC, 0))
        .expect("offsets log");
    let mut c = Coordinator::replay(9, log);
    let end = log.log_end_offset();
    c.on_high_watermark(&mut Context::new(0), end, end, true);
    c
}

#[test]
fn compaction_keeps_the_latest_value_of_every_key() {
    let mut b = broker_with(&[], Some(6));
    let (m1, _) = two_members(&mut b);
    let offsets_tp = TopicPartition::new(OFFSETS_TOPIC, 0);
    for offset in 1..=20 {
        assert_eq!(
            commit(&mut b, 101, &m1, 2, offset),
            Ok(GroupAnswer::Committed)
        );
    }
    let log = b.log(&offsets_tp).expect("offsets log");
    let held = log.log_end_offset() - log.log_start_offset();
    assert!(log.log_start_offset() > 0, "compaction moved the log start");
    assert!(held <= 6, "{held} records held after compaction");
    assert_eq!(
        fetch(&mut b),
        Ok(GroupAnswer::Offset {
            offset: Some(20),
            metadata: String::new()
        })
    );
    // A new coordinator replaying the compacted log has the same state.
    let c = replayed(&b);
    let g = &c.groups()["g"];
    assert_eq!(
        (g.offsets[&TopicPartition::new("t", 0)], g.generation),
        (20, 2)
    );
}

#[test]
fn commit_metadata_is_kept_with_its_offset_through_compaction_and_replay() {
    use crate::protocol::MAX_COMMIT_METADATA;
    let offset_with = |offset: u64, metadata: &str| {
        Ok(GroupAnswer::Offset {
            offset: Some(offset),
            metadata: metadata.into(),
        })
    };
    let mut b = broker_with(&[], Some(6));
    let (m1, _) = two_members(&mut b);
    assert_eq!(
        commit_with(&mut b, 101, &m1, 2, 4, "checkpoint-a"),
        Ok(GroupAnswer::Committed)
    );
    assert_eq!(fetch(&mut b), offset_with(4, "checkpoint-a"));
    // Too long: refused, and the commit before it stands; a fenced member with too long a
    // metadata hears that it is fenced first.
    let long = "x".repeat(MAX_COMMIT_METADATA + 1);
    assert_eq!(
        commit_with(&mut b, 101, &m1, 2, 5, &long),
        Err(ErrorCode::OffsetMetadataTooLarge)
    );
    assert_eq!(
        commit_with(&mut b, 101, &m1, 1, 5, &long),
        Err(ErrorCode::IllegalGeneration)
    );
    let longest = "y".repeat(MAX_COMMIT_METADATA);
    assert_eq!(
        commit_with(&mut b, 101, &m1, 2, 5, &longest),
        Ok(GroupAnswer::Committed)
    );
    assert_eq!(fetch(&mut b), offset_with(5, &longest));
    // An empty one replaces it.
    assert_eq!(commit(&mut b, 101, &m1, 2, 6), Ok(GroupAnswer::Committed));
    assert_eq!(fetch(&mut b), offset_with(6, ""));
    // Enough commits that compaction rewrites the live one; a coordinator replaying the log
    // afterwards gives the same answer.
    for offset in 7..=20 {
        let metadata = format!("m{offset}");
        assert_eq!(
            commit_with(&mut b, 101, &m1, 2, offset, &metadata),
            Ok(GroupAnswer::Committed)
        );
    }
    assert_eq!(fetch(&mut b), offset_with(20, "m20"));
    let offsets_tp = TopicPartition::new(OFFSETS_TOPIC, 0);
    let log = b.log(&offsets_tp).expect("offsets log");
    assert!(log.log_start_offset() > 0, "compaction moved the log start");
    let c = replayed(&b);
    let g = &c.groups()["g"];
    let tp = TopicPartition::new("t", 0);
    assert_eq!(
        (g.offsets[&tp], g.offset_metadata[&tp].as_str()),
        (20, "m20")
    );
}

#[test]
fn without_compaction_every_commit_stays() {
    let mut b = broker(&[]);
    let (m1, _) = two_members(&mut b);
    for offset in 1..=20 {
        assert_eq!(
            commit(&mut b, 101, &m1, 2, offset),
            Ok(GroupAnswer::Committed)
        );
    }
    let log = b
        .log(&TopicPartition::new(OFFSETS_TOPIC, 0))
        .expect("offsets log");
    assert_eq!(log.log_start_offset(), 0);
    assert_eq!(log.log_end_offset(), 22, "2 generations + 20 commits");
}

#[test]
fn commits_are_refused_while_the_isr_is_below_min_insync() {
    // One broker, so the offsets partition's ISR is {0}: below min.insync.replicas = 2.
    let mut b = broker_configured(&[], None, 2);
    let (m1, _) = two_members(&mut b);
    assert_eq!(
        commit(&mut b, 101, &m1, 2, 5),
        Err(ErrorCode::CoordinatorNotAvailable)
    );
    assert_eq!(
        fetch(&mut b),
        Ok(GroupAnswer::Offset {
            offset: None,
            metadata: String::new()
        })
    );
}

#[test]
fn a_member_expelled_while_its_join_waits_is_told_it_is_unknown() {
    let mut b = broker(&[]);
    let (_, g1) = joined(&join(&mut b, 101, None), 101);
    assert_eq!(g1, 1);
    assert!(
        join(&mut b, 102, None).is_empty(),
        "waits for member 1 to rejoin"
    );
    let parked = b.coordinators()[&0].groups()["g"].waiting_joins[0]
        .member
        .clone();
    let mut cx = Context::new(0);
    b.on_timer(
        &mut cx,
        Timer::MemberSession {
            group: "g".into(),
            member: parked,
        },
    );
    let answered = answers(cx);
    assert!(
        answered.contains(&(102, Err(ErrorCode::UnknownMemberId))),
        "its join was dropped unanswered: {answered:?}"
    );
}

/// Each of the coordinator's invariants, broken by hand, is reported under its name.
#[test]
fn every_coordinator_invariant_trips_on_a_broken_state() {
    use super::Pending;
    use crate::log::PartitionLog;
    use crate::protocol::Record;
    let mut log = PartitionLog::new();
    log.assign_epoch(0, 0);
    log.append_as_leader(0, &[Record::keyed("k", "v"), Record::keyed("k", "w")])
        .expect("append");
    log.set_high_watermark(1).expect("within the log");
    let mut c = Coordinator::replay(0, &log);
    // A write in flight at 1: appended, not yet committed.
    c.appended(1, Pending::Checkpoint);
    assert_eq!(c.check_invariants(&log), Ok(()));
    let rule = |c: &Coordinator| c.check_invariants(&log).map_err(|v| v.rule);
    // A write in flight below the high watermark should have completed.
    let mut below = c.clone();
    below.appended(0, Pending::Checkpoint);
    assert_eq!(rule(&below), Err("coordinator-pending-uncommitted"));
    // One past the log end was never appended.
    let mut past = c.clone();
    past.pending.insert(2, Pending::Checkpoint);
    assert_eq!(rule(&past), Err("coordinator-pending-uncommitted"));
    let mut checkpoint = c.clone();
    checkpoint.checkpoint = Some((1, 5));
    assert_eq!(rule(&checkpoint), Err("coordinator-checkpoint-within-log"));
}

// Kafka's classic protocol: the leader member assigns, the coordinator carries opaque bytes.

fn offer(name: &str, metadata: &[u8]) -> crate::protocol::ProtocolOffer {
    crate::protocol::ProtocolOffer {
        name: name.into(),
        metadata: metadata.to_vec(),
    }
}

fn join_leader(
    b: &mut Broker,
    from: u32,
    member: Option<&str>,
    protocols: &[(&str, &[u8])],
) -> Vec<(u32, Answer)> {
    let request = GroupRequest::Join {
        member: member.map(str::to_string),
        topics: Vec::new(),
        assign: AssignBy::Leader {
            protocol_type: "consumer".into(),
            protocols: protocols.iter().map(|(n, m)| offer(n, m)).collect(),
        },
        require_known_member_id: false,
    };
    ask(b, from, request)
}

fn leader_join_of(answers: &[(u32, Answer)], client: u32) -> crate::protocol::LeaderJoin {
    answers
        .iter()
        .find_map(|(to, a)| match a {
            Ok(GroupAnswer::Joined {
                leader: Some(l), ..
            }) if *to == client => Some(l.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no leader join for {client} in {answers:?}"))
}

fn sync_with(
    b: &mut Broker,
    from: u32,
    member: &str,
    generation: u32,
    assignments: Vec<(String, Vec<u8>)>,
) -> Vec<(u32, Answer)> {
    let request = GroupRequest::Sync {
        member: member.into(),
        generation,
        assignments,
    };
    ask(b, from, request)
}

fn data(answers: &[(u32, Answer)], client: u32) -> Vec<u8> {
    answers
        .iter()
        .find_map(|(to, a)| match a {
            Ok(GroupAnswer::Assignment { data, .. }) if *to == client => Some(data.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no assignment for {client} in {answers:?}"))
}

/// Two members of a leader-assigned group in generation 2: (leader, follower) ids, by client.
fn leader_and_follower(b: &mut Broker) -> (String, String) {
    let first = join_leader(b, 101, None, &[("sticky", b"A1"), ("range", b"A2")]);
    let (m1, _) = joined(&first, 101);
    assert_eq!(leader_join_of(&first, 101).leader, m1, "alone, it leads");
    let done = sync_with(b, 101, &m1, 1, vec![(m1.clone(), b"all".to_vec())]);
    assert_eq!(data(&done, 101), b"all");
    assert!(join_leader(b, 102, None, &[("range", b"B2"), ("sticky", b"B1")]).is_empty());
    let both = join_leader(b, 101, Some(&m1), &[("sticky", b"A1"), ("range", b"A2")]);
    let (m2, generation) = joined(&both, 102);
    assert_eq!(generation, 2);
    (m1, m2)
}

#[test]
fn the_leader_gets_every_members_metadata_and_its_assignment_reaches_the_others() {
    let mut b = broker(&[]);
    let first = join_leader(&mut b, 101, None, &[("sticky", b"A1"), ("range", b"A2")]);
    let (m1, _) = joined(&first, 101);
    sync_with(&mut b, 101, &m1, 1, vec![(m1.clone(), b"all".to_vec())]);
    assert!(join_leader(&mut b, 102, None, &[("range", b"B2"), ("sticky", b"B1")]).is_empty());
    let both = join_leader(
        &mut b,
        101,
        Some(&m1),
        &[("sticky", b"A1"), ("range", b"A2")],
    );
    let (m2, _) = joined(&both, 102);
    // One vote each: the tie goes to the first member's preference. The leader stays the
    // leader; it alone sees the members, each with its metadata for the chosen protocol.
    let lead = leader_join_of(&both, 101);
    let follow = leader_join_of(&both, 102);
    assert_eq!((lead.protocol.as_str(), &lead.leader), ("sticky", &m1));
    assert_eq!(
        lead.members,
        vec![(m1.clone(), b"A1".to_vec()), (m2.clone(), b"B1".to_vec())]
    );
    assert_eq!((follow.leader, follow.members.len()), (m1.clone(), 0));
    // The follower's sync waits for the leader's, which brings the assignment for both.
    assert!(sync_with(&mut b, 102, &m2, 2, Vec::new()).is_empty());
    let shares = vec![(m1.clone(), b"t-0".to_vec()), (m2.clone(), b"t-1".to_vec())];
    let done = sync_with(&mut b, 101, &m1, 2, shares);
    assert_eq!(
        (data(&done, 101), data(&done, 102)),
        (b"t-0".to_vec(), b"t-1".to_vec())
    );
    // Once stable, a late sync gets the same share; a follower cannot replace the assignment.
    let again = sync_with(&mut b, 102, &m2, 2, vec![(m2.clone(), b"mine".to_vec())]);
    assert_eq!(data(&again, 102), b"t-1");
}

#[test]
fn a_follower_waits_for_the_leader_and_a_leader_that_leaves_is_replaced() {
    let mut b = broker(&[]);
    let (m1, m2) = leader_and_follower(&mut b);
    assert!(sync_with(&mut b, 102, &m2, 2, Vec::new()).is_empty());
    // The leader leaves without syncing: the follower's parked sync is told to rejoin, and
    // alone it becomes the leader of generation 3.
    let left = ask(&mut b, 101, GroupRequest::Leave { member: m1 });
    assert!(
        left.contains(&(102, Err(ErrorCode::RebalanceInProgress))),
        "{left:?}"
    );
    let alone = join_leader(
        &mut b,
        102,
        Some(&m2),
        &[("range", b"B2"), ("sticky", b"B1")],
    );
    let lead = leader_join_of(&alone, 102);
    assert_eq!((lead.leader, lead.protocol.as_str()), (m2, "range"));
}

/// Between a generation's join answers and its leader's assignment, a commit of that
/// generation is refused with `RebalanceInProgress`, as in Kafka: the committer does not know
/// its new share yet, so its commit may be for a partition now another member's, landing after
/// that member read the committed offset. Once the assignment is in, the same commit is taken.
#[test]
fn a_commit_while_the_generation_awaits_its_assignment_is_refused() {
    let mut b = broker(&[]);
    let (m1, m2) = leader_and_follower(&mut b);
    for (client, member) in [(101, &m1), (102, &m2)] {
        assert_eq!(
            commit(&mut b, client, member, 2, 4),
            Err(ErrorCode::RebalanceInProgress)
        );
    }
    let shares = vec![(m1.clone(), b"t-0".to_vec()), (m2.clone(), b"t-1".to_vec())];
    sync_with(&mut b, 101, &m1, 2, shares);
    assert_eq!(commit(&mut b, 102, &m2, 2, 4), Ok(GroupAnswer::Committed));
}

#[test]
fn a_join_that_shares_no_protocol_or_mode_with_the_group_is_refused() {
    let mut b = broker(&[]);
    let (_, _) = leader_and_follower(&mut b);
    let refused = Err(ErrorCode::InconsistentGroupProtocol);
    let none_common = join_leader(&mut b, 103, None, &[("cooperative-sticky", b"C")]);
    assert_eq!(none_common, vec![(103, refused.clone())]);
    // A member asking the coordinator to assign cannot join a group whose leader assigns.
    assert_eq!(join(&mut b, 104, None), vec![(104, refused.clone())]);
    // Nor one with another protocol type, nor one offering nothing.
    let other_type = GroupRequest::Join {
        member: None,
        topics: Vec::new(),
        assign: AssignBy::Leader {
            protocol_type: "connect".into(),
            protocols: vec![offer("range", b"")],
        },
        require_known_member_id: false,
    };
    assert_eq!(ask(&mut b, 105, other_type), vec![(105, refused.clone())]);
    let mut fresh = broker(&[]);
    assert_eq!(
        join_leader(&mut fresh, 106, None, &[]),
        vec![(106, refused)]
    );
}

#[test]
fn a_commit_outside_any_generation_is_taken_only_while_the_group_has_no_members() {
    let mut b = broker(&[]);
    // A consumer reading with `assign`: no member id, no generation.
    assert_eq!(commit(&mut b, 101, "", 0, 4), Ok(GroupAnswer::Committed));
    assert_eq!(
        fetch(&mut b),
        Ok(GroupAnswer::Offset {
            offset: Some(4),
            metadata: String::new()
        })
    );
    // Once the group has members, such a commit would overwrite their progress: refused.
    let (m1, m2) = two_members(&mut b);
    assert_eq!(
        commit(&mut b, 103, "", 0, 1),
        Err(ErrorCode::UnknownMemberId)
    );
    assert_eq!(
        fetch(&mut b),
        Ok(GroupAnswer::Offset {
            offset: Some(4),
            metadata: String::new()
        })
    );
    // The members leave; the group is empty and takes it again.
    ask(&mut b, 101, GroupRequest::Leave { member: m1 });
    ask(&mut b, 102, GroupRequest::Leave { member: m2 });
    assert_eq!(commit(&mut b, 103, "", 0, 9), Ok(GroupAnswer::Committed));
    assert_eq!(
        fetch(&mut b),
        Ok(GroupAnswer::Offset {
            offset: Some(9),
            metadata: String::new()
        })
    );
}

#[test]
fn the_bug_switch_answers_syncs_before_the_leader_assigns() {
    // Here the generation's record commits as soon as it is appended, before any sync: with
    // the switch the group is stable at once with no assignment, and the leader's own sync,
    // which brings one, gets an empty share.
    for (bugs, share) in [
        (vec![], b"all".to_vec()),
        (vec![Bug::SyncBeforeAssignment], Vec::new()),
    ] {
        let mut b = broker(&bugs);
        let first = join_leader(&mut b, 101, None, &[("range", b"A")]);
        let (m1, _) = joined(&first, 101);
        let done = sync_with(&mut b, 101, &m1, 1, vec![(m1.clone(), b"all".to_vec())]);
        assert_eq!(data(&done, 101), share, "bugs {bugs:?}");
    }
}

/// An offset fetch waits behind a barrier record: answered once the record commits (from the
/// cache as it then is), told to look for the new coordinator if this one resigns first. A
/// coordinator deposed without hearing it cannot commit the barrier, so it never answers from
/// a cache a newer coordinator has moved past. With `offset-fetch-from-cache` it answers at
/// once, as Kafka does.
#[test]
fn an_offset_fetch_is_answered_once_its_barrier_commits() {
    use super::{Pending, Write};
    use crate::log::PartitionLog;
    use crate::protocol::{ClusterMetadata, OffsetsKey, OffsetsValue};
    let settings = |from_cache| Settings {
        session_timeout_ms: None,
        rebalance_timeout_ms: None,
        accept_stale_generation: false,
        sync_before_assignment: false,
        replay_keeps_highest_offset: false,
        member_session_not_renewed: false,
        offset_fetch_from_cache: from_cache,
    };
    let fetch = |c: &mut Coordinator, from_cache: bool, correlation| {
        let msg = GroupMessage {
            group: "g".into(),
            correlation,
            request: GroupRequest::FetchOffset {
                tp: TopicPartition::new("t", 0),
            },
        };
        let mut cx = Context::new(0);
        let md = ClusterMetadata::default();
        let writes = c.handle(&mut cx, &settings(from_cache), &md, 101, msg);
        (writes, answers(cx))
    };
    let log = PartitionLog::new();
    let mut c = Coordinator::load(1, &log, &settings(false));
    c.on_high_watermark(&mut Context::new(0), 0, 0, true);
    let none = Ok(GroupAnswer::Offset {
        offset: None,
        metadata: String::new(),
    });

    let (writes, answered) = fetch(&mut c, false, 1);
    assert_eq!(answered, vec![], "not answered before its barrier commits");
    let [Write { record, then }] = &writes[..] else {
        panic!("one barrier record: {writes:?}")
    };
    assert_eq!(
        OffsetsKey::read(record),
        (
            Some(OffsetsKey::Barrier { group: "g".into() }),
            Some(OffsetsValue::Barrier)
        )
    );
    assert!(matches!(then, Pending::Read { client: 101, .. }));
    c.appended(0, then.clone());
    let mut cx = Context::new(0);
    c.on_high_watermark(&mut cx, 1, 0, true);
    assert_eq!(answers(cx), vec![(101, none.clone())]);

    // Still waiting when the coordinator resigns: the member looks for the new one.
    let (writes, _) = fetch(&mut c, false, 2);
    c.appended(1, writes[0].then.clone());
    let mut cx = Context::new(0);
    c.clone().resign(&mut cx);
    assert_eq!(answers(cx), vec![(101, Err(ErrorCode::NotCoordinator))]);

    // The switch answers at once from the cache and writes nothing.
    let (writes, answered) = fetch(&mut c, true, 3);
    assert!(writes.is_empty());
    assert_eq!(answered, vec![(101, none)]);
}
