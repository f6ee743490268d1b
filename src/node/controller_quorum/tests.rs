//! Three controllers on an in-process network that delivers in order, completes every sync at
//! once and drops whatever crosses a cut: the active controller's changes are announced only
//! once committed, a deposed controller's never, and every voter applies the same metadata.

use super::*;
use crate::node::{QuorumConfig, TopicSpec};
use crate::protocol::{BrokerRegistration, ErrorCode};
use std::collections::{BTreeMap, BTreeSet};

const VOTERS: [NodeId; 3] = [100, 101, 102];

struct Net {
    nodes: BTreeMap<NodeId, QuorumController>,
    queue: VecDeque<(NodeId, NodeId, Message)>,
    /// What the controllers sent to brokers (ids below 100), in order.
    to_brokers: Vec<(NodeId, NodeId, Message)>,
    /// Voters cut off from everyone.
    cut: BTreeSet<NodeId>,
}

fn controller_config() -> Arc<ControllerConfig> {
    Arc::new(ControllerConfig {
        id: 100,
        brokers: vec![0, 1],
        topics: vec![TopicSpec::spread("t", 1, 2, &[0, 1])],
        session_timeout_ms: Some(10_000),
        unclean_leader_election: false,
        producer_id_block_size: 10,
        leader_rebalance_ms: None,
        bugs: Default::default(),
    })
}

fn quorum_config(id: NodeId) -> Arc<QuorumConfig> {
    Arc::new(QuorumConfig {
        election_jitter_ms: 0,
        ..QuorumConfig::new(id, VOTERS.to_vec(), 0)
    })
}

/// Voter `id`'s configuration, snapshotting every `every` committed entries.
fn snapshotting(id: NodeId, every: Offset) -> Arc<QuorumConfig> {
    let mut c = (*quorum_config(id)).clone();
    c.snapshot_every = Some(every);
    Arc::new(c)
}

/// One entry point of a voter, boxed (a step may queue further steps of the same voter).
type Step<'a> = Box<dyn FnOnce(&mut QuorumController, &mut Context) + 'a>;

impl Net {
    fn new() -> Self {
        let config = controller_config();
        Self::with(|id| QuorumController::new(config.clone(), quorum_config(id)))
    }

    /// A quorum that starts formed, 100 leading epoch 1 and active.
    fn bootstrapped() -> Self {
        let config = controller_config();
        Self::with(|id| QuorumController::bootstrapped(config.clone(), quorum_config(id), 100))
    }

    fn with(voter: impl Fn(NodeId) -> QuorumController) -> Self {
        let nodes = VOTERS.iter().map(|&id| (id, voter(id))).collect();
        let mut net = Net {
            nodes,
            queue: VecDeque::new(),
            to_brokers: Vec::new(),
            cut: BTreeSet::new(),
        };
        for id in VOTERS {
            net.step(id, |n, cx| n.on_start(cx));
        }
        net
    }

    /// Runs one entry point of voter `id`, then completes its syncs and queues its messages.
    fn step(&mut self, id: NodeId, f: impl FnOnce(&mut QuorumController, &mut Context)) {
        self.step_dyn(id, Box::new(f));
    }

    fn step_dyn(&mut self, id: NodeId, f: Step<'_>) {
        let mut cx = Context::new(0);
        let node = self.nodes.get_mut(&id).expect("a voter");
        f(node, &mut cx);
        node.check_invariants().expect("invariants hold");
        let mut syncs = Vec::new();
        for e in cx.take_effects() {
            match e {
                Effect::Send { to, message } if VOTERS.contains(&to) => {
                    self.queue.push_back((id, to, message))
                }
                Effect::Send { to, message } => self.to_brokers.push((id, to, message)),
                Effect::Sync(t) => syncs.push(t),
                _ => {}
            }
        }
        for t in syncs {
            self.step_dyn(id, Box::new(move |n, cx| n.on_persisted(cx, t)));
        }
    }

    fn run(&mut self) {
        while let Some((from, to, m)) = self.queue.pop_front() {
            if !self.cut.contains(&from) && !self.cut.contains(&to) {
                self.step(to, |n, cx| n.on_message(cx, from, m));
            }
        }
    }

    fn fire(&mut self, id: NodeId, timer: Timer) {
        self.step(id, |n, cx| n.on_timer(cx, timer));
        self.run();
    }

    /// A broker's request to voter `to`, and everything that follows from it.
    fn request_from_broker(&mut self, broker: NodeId, to: NodeId, m: Message) {
        self.step(to, |n, cx| n.on_message(cx, broker, m));
        self.run();
    }

    fn node(&self, id: NodeId) -> &QuorumController {
        &self.nodes[&id]
    }

    fn active(&self) -> Vec<NodeId> {
        VOTERS
            .into_iter()
            .filter(|id| self.node(*id).is_active())
            .collect()
    }

    fn answers_to(&self, broker: NodeId) -> Vec<(NodeId, Message)> {
        self.to_brokers
            .iter()
            .filter(|(_, to, _)| *to == broker)
            .map(|(from, _, m)| (*from, m.clone()))
            .collect()
    }

    /// Lets the followers fetch again (their last fetch was lost to a cut).
    fn refetch(&mut self) {
        for id in VOTERS {
            if !self.node(id).quorum().is_leader() {
                self.fire(id, Timer::QuorumFetchTimeout);
            }
        }
    }
}

fn register(broker: NodeId) -> Message {
    register_run(broker, 1)
}

/// A registration by the `incarnation`-th run of the broker's process.
fn register_run(broker: NodeId, incarnation: u64) -> Message {
    Message::RegisterBroker {
        broker,
        lost_data: false,
        incarnation,
    }
}

fn registered(net: &Net, id: NodeId, broker: NodeId) -> Option<BrokerRegistration> {
    net.node(id).metadata().registration(broker).cloned()
}

/// Voter 100 wins epoch 1 with everyone connected.
fn elected() -> Net {
    let mut net = Net::new();
    net.fire(100, Timer::QuorumElection);
    assert_eq!(net.active(), vec![100]);
    net
}

/// The active controller's own writes become quorum proposals, and so must its syncs: each
/// sync the hosting voter asks of its driver follows a write of the quorum's. A controller's
/// sync let through would complete with the controller's token (a metadata version) as if
/// it were the voter's, and count the voter's unsynced writes durable.
#[test]
fn the_active_controllers_own_syncs_never_reach_the_driver() {
    let mut net = elected();
    let mut cx = Context::new(0);
    let active = net.nodes.get_mut(&100).expect("voter 100");
    active.on_message(&mut cx, 0, register(0));
    let effects = cx.take_effects();
    let count = |f: fn(&Effect) -> bool| effects.iter().filter(|e| f(e)).count();
    let syncs = count(|e| matches!(e, Effect::Sync(_)));
    let writes = count(|e| matches!(e, Effect::Persist(_)));
    assert!(syncs > 0, "the proposal is written and synced: {effects:?}");
    assert_eq!(syncs, writes, "{effects:?}");
}

#[test]
fn only_the_leader_is_active_and_the_others_name_it() {
    let mut net = elected();
    net.request_from_broker(0, 101, register(0));
    assert_eq!(
        net.answers_to(0),
        vec![(
            101,
            Message::NotController {
                leader: Some(100),
                epoch: 1
            }
        )]
    );
    assert!(VOTERS.iter().all(|&v| registered(&net, v, 0).is_none()));
}

#[test]
fn a_change_is_answered_and_applied_everywhere_only_once_committed() {
    let mut net = elected();
    // The followers are cut off: the leader proposes the registration but cannot commit it.
    net.cut.extend([101, 102]);
    net.request_from_broker(0, 100, register(0));
    assert!(net.answers_to(0).is_empty(), "nothing said before commit");
    assert!(registered(&net, 100, 0).is_none());
    net.cut.clear();
    net.refetch();
    let answers = net.answers_to(0);
    assert!(
        answers
            .iter()
            .any(|a| matches!(a, (100, Message::RegisterBrokerResponse { .. }))),
        "{answers:?}"
    );
    let pushed = answers.iter().find_map(|(_, m)| match m {
        Message::UpdateMetadata {
            controller_epoch,
            metadata,
        } => Some((*controller_epoch, metadata.clone())),
        _ => None,
    });
    let (epoch, md) = pushed.expect("the change is pushed");
    assert_eq!(epoch, 1);
    assert!(md.registration(0).is_some());
    for v in VOTERS {
        assert_eq!(
            net.node(v).metadata(),
            net.node(100).metadata(),
            "voter {v}"
        );
    }
}

#[test]
fn a_deposed_controllers_change_is_never_announced_and_its_successor_announces_its_epoch() {
    let mut net = elected();
    net.request_from_broker(1, 100, register(1));
    assert!(
        registered(&net, 102, 1).is_some() || {
            net.refetch();
            registered(&net, 102, 1).is_some()
        }
    );
    // 100 is cut off and takes a registration it can never commit.
    net.cut.insert(100);
    let before = net.to_brokers.len();
    net.request_from_broker(0, 100, register(0));
    assert_eq!(
        net.to_brokers.len(),
        before,
        "an uncommitted change stays unsaid"
    );
    // 102's timer fires first (its pre-vote fails: 101 still hears from 100), then 101's, and
    // 102, no longer hearing from a leader, grants it.
    net.fire(102, Timer::QuorumElection);
    net.fire(101, Timer::QuorumElection);
    assert!(
        net.node(101).is_active(),
        "{:?}",
        net.node(101).quorum().role()
    );
    assert_eq!(net.node(101).active_epoch(), Some(2));
    let pushes: Vec<_> = net.to_brokers[before..]
        .iter()
        .filter_map(|(from, _, m)| match m {
            Message::UpdateMetadata {
                controller_epoch, ..
            } => Some((*from, *controller_epoch)),
            _ => None,
        })
        .collect();
    assert_eq!(pushes, vec![(101, 2), (101, 2)], "one push per broker");
    // The old leader rejoins: it learns of epoch 2, stops being active, and its change is gone.
    net.cut.clear();
    net.fire(101, Timer::QuorumCheck);
    net.step(101, |n, cx| {
        n.on_message(
            cx,
            100,
            Message::BeginQuorumEpoch(crate::protocol::BeginQuorumEpoch {
                epoch: 1,
                leader: 100,
            }),
        )
    });
    net.queue.push_back((
        101,
        100,
        Message::BeginQuorumEpoch(crate::protocol::BeginQuorumEpoch {
            epoch: 2,
            leader: 101,
        }),
    ));
    net.run();
    net.refetch();
    assert!(!net.node(100).is_active());
    assert!(VOTERS.iter().all(|&v| registered(&net, v, 0).is_none()));
    let from_100: Vec<_> = net.to_brokers[before..]
        .iter()
        .filter(|(from, _, _)| *from == 100)
        .collect();
    assert!(
        from_100.is_empty(),
        "the deposed controller said {from_100:?}"
    );
}

#[test]
fn every_invariant_trips_on_a_broken_state() {
    let net = elected();
    type Break = Box<dyn Fn(&mut QuorumController)>;
    let cases: Vec<(&str, Break)> = vec![
        (
            "controller-applied-in-step",
            Box::new(|c| c.applied_offset += 1),
        ),
        (
            "active-state-committed",
            Box::new(|c| {
                let a = c.active.as_mut().expect("active");
                a.proposed.metadata.version += 1;
            }),
        ),
        (
            "controller-pending-ordered",
            Box::new(|c| {
                let a = c.active.as_mut().expect("active");
                a.pending.push_back((0, 1));
            }),
        ),
    ];
    for (name, break_it) in cases {
        let mut c = net.node(100).clone();
        break_it(&mut c);
        let err = c.check_invariants().expect_err(name);
        assert_eq!(err.rule, name, "{err:?}");
    }
    // An active controller on a voter that does not lead.
    let mut follower = net.node(101).clone();
    follower.active = net.node(100).active.clone();
    let err = follower.check_invariants().expect_err("follower active");
    assert_eq!(err.rule, "active-controller-leads");
}

#[test]
fn a_bootstrapped_quorum_starts_formed_with_the_bootstrapped_metadata() {
    let config = controller_config();
    let single = Controller::bootstrapped(config.clone());
    let image = QuorumController::bootstrap_image(&config, 100);
    let mut replayed = Controller::new(config.clone()).image().clone();
    for e in &image.log {
        apply_record(&mut replayed, &e.record);
    }
    assert_eq!(
        &replayed,
        single.image(),
        "the log rebuilds the bootstrapped state"
    );
    for id in VOTERS {
        let c = QuorumController::bootstrapped(config.clone(), quorum_config(id), 100);
        c.check_invariants().expect("invariants hold");
        let q = c.quorum();
        assert_eq!(q.log().entries(), &image.log[..], "voter {id}");
        assert_eq!((q.epoch(), q.voted_for()), (1, Some(100)));
        assert_eq!(q.high_watermark(), 2);
        assert_eq!(q.committed(), &image.log[..]);
        assert_eq!(c.metadata(), single.metadata());
        assert_eq!(q.leader(), Some(100));
        assert_eq!(c.is_active(), id == 100);
        assert_eq!(q.is_leader(), id == 100);
    }
    // At start the active controller starts the brokers' sessions and tells them nothing (they
    // hold the metadata already); the followers' fetches are parked at it, so they send nothing.
    let mut leader = QuorumController::bootstrapped(config.clone(), quorum_config(100), 100);
    let mut cx = Context::new(0);
    leader.on_start(&mut cx);
    let effects = cx.take_effects();
    assert!(effects.iter().all(|e| !matches!(e, Effect::Send { .. })));
    for b in [0, 1] {
        assert!(effects.iter().any(|e| matches!(e,
            Effect::SetTimer { timer: Timer::SessionExpiry(x), .. } if *x == b)));
    }
    let mut follower = QuorumController::bootstrapped(config, quorum_config(101), 100);
    follower.on_start(&mut cx);
    let effects = cx.take_effects();
    assert!(effects.iter().all(|e| !matches!(e, Effect::Send { .. })));
    assert!(effects.iter().any(|e| matches!(
        e,
        Effect::SetTimer {
            timer: Timer::QuorumElection,
            ..
        }
    )));
}

#[test]
fn a_bootstrapped_quorum_commits_changes_and_fails_over() {
    let mut net = Net::bootstrapped();
    assert_eq!(net.active(), vec![100]);
    // A broker restarts and registers again: the change is committed at offset 2 and applied
    // everywhere.
    net.request_from_broker(0, 100, register(0));
    let epoch = registered(&net, 100, 0).expect("registered").epoch;
    assert_eq!(epoch, 3, "bootstrap gave out epochs 1 and 2");
    net.refetch();
    assert!(VOTERS
        .iter()
        .all(|&v| registered(&net, v, 0).map(|r| r.epoch) == Some(3)));
    // The leader is cut off; 101 takes over with everything committed.
    net.cut.insert(100);
    net.fire(102, Timer::QuorumElection);
    net.fire(101, Timer::QuorumElection);
    assert!(net.node(101).is_active() || net.node(102).is_active());
    let new = if net.node(101).is_active() { 101 } else { 102 };
    assert_eq!(net.node(new).active_epoch(), Some(2));
    assert_eq!(registered(&net, new, 0).map(|r| r.epoch), Some(3));
}

#[test]
fn a_voter_snapshots_its_metadata_and_a_follower_far_behind_installs_it() {
    let config = controller_config();
    let mut net = Net::with(|id| QuorumController::new(config.clone(), snapshotting(id, 3)));
    net.fire(100, Timer::QuorumElection);
    net.refetch();
    // 102 is cut off while three changes commit (broker 0 registers twice, restarted between):
    // 100 and 101 snapshot at offset 3 and drop the entries below it.
    net.cut.insert(102);
    for (b, run) in [(0, 1), (1, 1), (0, 2)] {
        net.request_from_broker(b, 100, register_run(b, run));
        net.refetch();
    }
    for v in [100, 101] {
        let log = net.node(v).quorum().log();
        assert_eq!(log.snapshot().map(|s| s.end_offset), Some(3), "voter {v}");
        assert_eq!(log.start_offset(), 3, "voter {v}");
    }
    assert_eq!(net.node(102).quorum().log().end_offset(), 1);
    // Back, 102 fetches from offset 1, below the leader's log start: it installs the snapshot,
    // then takes the entry after it, and holds the same metadata as the others.
    net.cut.clear();
    net.refetch();
    let two = net.node(102);
    assert_eq!(two.quorum().log().start_offset(), 3);
    assert_eq!(
        two.quorum().log().end_offset(),
        net.node(100).quorum().log().end_offset()
    );
    assert_eq!(two.metadata(), net.node(100).metadata());
    assert!(two.metadata().registration(0).is_some() && two.metadata().registration(1).is_some());
    // A voter restarted from a disk holding the snapshot starts from the snapshot's metadata
    // (the re-registration after it is applied again once the high watermark is relearned).
    let q = two.quorum();
    let image = QuorumImage {
        epoch: q.epoch(),
        voted_for: q.voted_for(),
        log: q.log().entries().to_vec(),
        snapshot: q.log().snapshot().cloned(),
    };
    let start = image.start_offset();
    let again = QuorumController::recover(config.clone(), snapshotting(102, 3), image);
    again.check_invariants().expect("a recovered voter holds");
    let records = &q.log().snapshot().expect("installed").records;
    let expected = QuorumController::snapshot_state(&config, records);
    assert_eq!(again.image(), &expected);
    assert_eq!(
        again.metadata().registration(1),
        two.metadata().registration(1)
    );
    assert!(
        again.metadata().registration(0).unwrap().epoch
            < two.metadata().registration(0).unwrap().epoch
    );
    assert_eq!(again.quorum().applied(), start);
    assert_eq!(again.quorum().log().end_offset(), q.log().end_offset());
}

fn create(topic: &str) -> Message {
    Message::ForwardCreateTopic {
        client: 7,
        request: crate::protocol::CreateTopicRequest {
            correlation: 1,
            topic: topic.into(),
            partitions: Some(2),
            replication_factor: Some(1),
            validate_only: false,
        },
    }
}

/// The answers to client 7's topic creations that reached broker 0, by sender.
type Layout = Result<Vec<Vec<u32>>, ErrorCode>;

fn created(net: &Net) -> Vec<(NodeId, Layout)> {
    net.answers_to(0)
        .into_iter()
        .filter_map(|(from, m)| match m {
            Message::ForwardCreateTopicResponse {
                client: 7,
                response,
            } => Some((from, response.result)),
            _ => None,
        })
        .collect()
}

/// A topic creation is answered only once the quorum committed it, so a controller deposed
/// before the commit never answers, and its successor, which never had the topic, creates it
/// anew; a voter that is not active names the leader.
#[test]
fn a_topic_is_answered_created_only_once_committed_and_not_by_a_deposed_controller() {
    let mut net = elected();
    net.request_from_broker(0, 100, register(0));
    net.request_from_broker(1, 100, register(1));
    net.cut.extend([101, 102]);
    net.request_from_broker(0, 100, create("a"));
    // A retry (its first answer lost) is told the topic exists only once that is committed too:
    // told before, it would report a creation a failover can still undo.
    net.request_from_broker(0, 100, create("a"));
    assert!(created(&net).is_empty(), "nothing said before commit");
    net.cut.clear();
    net.refetch();
    assert_eq!(
        created(&net),
        vec![
            (100, Ok(vec![vec![1], vec![0]])),
            (100, Err(ErrorCode::TopicAlreadyExists))
        ]
    );
    for v in VOTERS {
        assert_eq!(net.node(v).metadata().partition_count("a"), 2, "voter {v}");
    }
    // 100, cut off, takes a creation it can never commit, and is deposed.
    net.cut.insert(100);
    net.request_from_broker(0, 100, create("b"));
    net.fire(102, Timer::QuorumElection);
    net.fire(101, Timer::QuorumElection);
    assert!(net.node(101).is_active());
    net.request_from_broker(0, 102, create("b"));
    // A standby refuses the creation to the client (so it retries at once), then names the
    // leader: in that order, as the broker takes answers only from the controller it follows.
    let from_standby: Vec<Message> = net
        .answers_to(0)
        .into_iter()
        .filter(|(from, _)| *from == 102)
        .map(|(_, m)| m)
        .collect();
    assert!(
        matches!(
            from_standby.as_slice(),
            [
                Message::ForwardCreateTopicResponse { client: 7, response },
                Message::NotController { leader: Some(101), .. },
            ] if response.result == Err(ErrorCode::NotController) && response.topic == "b"
        ),
        "{from_standby:?}"
    );
    net.request_from_broker(0, 101, create("b"));
    net.request_from_broker(0, 101, create("a"));
    let answers = created(&net);
    assert_eq!(
        answers[3..],
        [
            (101, Ok(vec![vec![1], vec![0]])),
            (101, Err(ErrorCode::TopicAlreadyExists))
        ],
        "{answers:?}"
    );
    net.cut.clear();
    net.fire(101, Timer::QuorumCheck);
    net.refetch();
    assert_eq!(
        created(&net).len(),
        5,
        "the deposed controller never answered b"
    );
}
