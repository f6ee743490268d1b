//! Each rule of the quorum, driven through the node's entry points: on a small in-test network
//! (`Net`) where syncs complete at once unless held, messages are delivered in order unless a
//! voter is cut off, and timers fire only when a test fires them.

use super::*;
use crate::node::{Bug, Effect};
use crate::protocol::{QuorumFetchResponse, QuorumFetchResult, QuorumSubmit, VoteRequest};
use std::collections::VecDeque;

mod cross_checks;
mod snapshot;

fn config(id: NodeId, bugs: &[Bug]) -> Arc<QuorumConfig> {
    let mut c = QuorumConfig::new(id, vec![0, 1, 2], 7);
    c.bugs = bugs.iter().copied().collect();
    // Entry by entry: the tests look at the states in between.
    c.max_fetch_entries = 1;
    Arc::new(c)
}

fn record(broker: u32) -> MetadataRecord {
    MetadataRecord::RegisterBroker { broker, epoch: 1 }
}

struct Net {
    nodes: Vec<QuorumNode>,
    images: Vec<QuorumImage>,
    queue: VecDeque<(NodeId, NodeId, Message)>,
    /// Messages to these voters are lost (a one-way partition: they still send).
    deaf: BTreeSet<NodeId>,
    /// Syncs of these voters do not complete until `release` (their effects are kept).
    held: BTreeSet<NodeId>,
    held_syncs: Vec<(NodeId, SyncToken)>,
    applied: Vec<Vec<(Offset, QuorumEntry)>>,
    /// Client answers received (to node id 9).
    answers: Vec<Message>,
}

impl Net {
    fn new(bugs: &[Bug]) -> Self {
        let nodes: Vec<QuorumNode> = (0..3).map(|i| QuorumNode::new(config(i, bugs))).collect();
        let mut net = Net {
            images: vec![QuorumImage::default(); 3],
            nodes,
            queue: VecDeque::new(),
            deaf: BTreeSet::new(),
            held: BTreeSet::new(),
            held_syncs: Vec::new(),
            applied: vec![Vec::new(); 3],
            answers: Vec::new(),
        };
        for i in 0..3 {
            net.step(i, |n, cx| n.on_start(cx));
        }
        net
    }

    fn step(&mut self, id: NodeId, f: impl FnOnce(&mut QuorumNode, &mut Context)) {
        let mut cx = Context::new(0);
        f(&mut self.nodes[id as usize], &mut cx);
        self.carry_out(id, cx);
    }

    fn persisted(&mut self, id: NodeId, token: SyncToken) {
        let mut cx = Context::new(0);
        self.nodes[id as usize].on_persisted(&mut cx, token);
        self.carry_out(id, cx);
    }

    fn carry_out(&mut self, id: NodeId, mut cx: Context) {
        self.nodes[id as usize]
            .check_invariants()
            .expect("invariants hold");
        for e in cx.take_effects() {
            match e {
                Effect::Send { to: 9, message } => self.answers.push(message),
                Effect::Send { to, message } if !self.deaf.contains(&to) => {
                    self.queue.push_back((id, to, message))
                }
                Effect::Persist(op) => self.images[id as usize].apply(&op),
                Effect::Sync(token) if self.held.contains(&id) => self.held_syncs.push((id, token)),
                Effect::Sync(token) => self.persisted(id, token),
                Effect::Apply { offset, entry, .. } => {
                    self.applied[id as usize].push((offset, entry))
                }
                _ => {}
            }
        }
    }

    fn run(&mut self) {
        for _ in 0..10_000 {
            let Some((from, to, m)) = self.queue.pop_front() else {
                return;
            };
            self.step(to, |n, cx| n.on_message(cx, from, m));
        }
        panic!("the network never went quiet");
    }

    fn fire(&mut self, id: NodeId, timer: Timer) {
        self.step(id, |n, cx| n.on_timer(cx, timer));
    }

    /// Voter `id`'s election timer fires, and the network runs until quiet.
    fn elect(&mut self, id: NodeId) {
        self.fire(id, Timer::QuorumElection);
        self.run();
    }

    fn submit(&mut self, to: NodeId, broker: u32) {
        let m = Message::QuorumSubmit(QuorumSubmit {
            id: broker as u64,
            record: record(broker),
        });
        self.step(to, |n, cx| n.on_message(cx, 9, m));
        self.run();
    }

    fn leaders(&self) -> Vec<NodeId> {
        self.nodes
            .iter()
            .filter(|n| n.is_leader())
            .map(|n| n.id())
            .collect()
    }
}

#[test]
fn a_timed_out_voter_is_elected_and_its_leader_change_is_committed_everywhere() {
    let mut net = Net::new(&[]);
    net.elect(0);
    assert_eq!(net.leaders(), vec![0]);
    for n in &net.nodes {
        assert_eq!(n.epoch(), 1);
        assert_eq!(n.high_watermark(), 1, "node {}", n.id());
    }
    let lc = QuorumEntry {
        epoch: 1,
        record: MetadataRecord::LeaderChange {
            leader: 0,
            epoch: 1,
        },
    };
    for a in &net.applied {
        assert_eq!(a, &vec![(0, lc.clone())]);
    }
    net.submit(0, 5);
    net.submit(0, 6);
    for (i, a) in net.applied.iter().enumerate() {
        assert_eq!(a.len(), 3, "node {i} applied {a:?}");
        assert_eq!(a[2].1.record, record(6));
    }
}

#[test]
fn a_non_leader_names_the_leader_to_a_client() {
    let mut net = Net::new(&[]);
    net.elect(0);
    net.submit(1, 5);
    let Some(Message::QuorumSubmitResponse(r)) = net.answers.last() else {
        panic!("{:?}", net.answers)
    };
    assert_eq!(r.result, Err(Some(0)));
    net.submit(0, 5);
    let Some(Message::QuorumSubmitResponse(r)) = net.answers.last() else {
        panic!()
    };
    assert_eq!(r.result, Ok(1));
}

fn vote_request(epoch: QuorumEpoch, candidate: NodeId, last_epoch: u32, end: Offset) -> Message {
    Message::Vote(VoteRequest {
        epoch,
        candidate,
        last_epoch,
        end_offset: end,
    })
}

fn sends(effects: &[Effect]) -> Vec<&Message> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Send { message, .. } => Some(message),
            _ => None,
        })
        .collect()
}

fn granted(effects: &[Effect]) -> Option<bool> {
    sends(effects).iter().find_map(|m| match m {
        Message::VoteResponse(r) => Some(r.granted),
        _ => None,
    })
}

/// A step's effects wrote epoch 1 with a vote for voter 0 and sent nothing (it waits for the
/// sync): the sync's token.
fn election_written_unsent(effects: &[Effect]) -> SyncToken {
    assert!(effects.iter().any(|e| matches!(
        e,
        Effect::Persist(DiskOp::QuorumElection {
            epoch: 1,
            voted_for: Some(0)
        })
    )));
    assert!(
        sends(effects).is_empty(),
        "sent before the sync: {effects:?}"
    );
    effects
        .iter()
        .rev()
        .find_map(|e| match e {
            Effect::Sync(t) => Some(*t),
            _ => None,
        })
        .expect("a sync")
}

#[test]
fn a_vote_is_answered_only_once_the_epoch_and_vote_are_synced() {
    let mut n = QuorumNode::new(config(1, &[]));
    let mut cx = Context::new(0);
    n.on_message(&mut cx, 0, vote_request(1, 0, 0, 0));
    assert!(!n.election_durable());
    let token = election_written_unsent(&cx.take_effects());
    n.on_persisted(&mut cx, token);
    assert!(n.election_durable());
    assert_eq!(granted(&cx.take_effects()), Some(true));

    // vote-not-durable: the answer leaves in the same step, before the sync completes.
    let mut n = QuorumNode::new(config(1, &[Bug::VoteNotDurable]));
    n.on_message(&mut cx, 0, vote_request(1, 0, 0, 0));
    let effects = cx.take_effects();
    let sent_at = effects
        .iter()
        .position(|e| matches!(e, Effect::Send { .. }));
    let sync_at = effects.iter().position(|e| matches!(e, Effect::Sync(_)));
    assert!(sent_at.is_some() && sync_at.is_some());
    assert_eq!(granted(&effects), Some(true));
}

#[test]
fn a_candidate_asks_for_votes_only_once_its_epoch_and_vote_are_synced() {
    let mut n = QuorumNode::new(config(0, &[]));
    let mut cx = Context::new(0);
    n.on_timer(&mut cx, Timer::QuorumElection);
    cx.take_effects();
    let pre_vote = vote_answer(1, 0, None, true);
    n.on_message(&mut cx, 1, Message::PreVoteResponse(pre_vote));
    assert!(!n.election_durable());
    let token = election_written_unsent(&cx.take_effects());
    n.on_persisted(&mut cx, token);
    assert!(n.election_durable());
    let asked: Vec<NodeId> = cx
        .take_effects()
        .iter()
        .filter_map(|e| match e {
            Effect::Send {
                to,
                message: Message::Vote(r),
            } if r.epoch == 1 => Some(*to),
            _ => None,
        })
        .collect();
    assert_eq!(asked, vec![1, 2]);
}

/// Voter 0 leads epoch 1 and its syncs are held (they complete only on `persisted`), with the
/// log end before anything more is proposed.
fn leader_with_syncs_held() -> (Net, Offset) {
    let mut net = Net::new(&[]);
    net.elect(0);
    net.held.insert(0);
    let end = net.nodes[0].log.end_offset();
    (net, end)
}

/// A sync in flight when the log is cut makes nothing past the cut durable: an entry written
/// at those offsets afterwards was not in the page cache when it started, so its completion
/// must not count that entry synced (a voter acts on its synced end: fetch offsets, votes).
#[test]
fn a_sync_in_flight_across_a_truncation_covers_nothing_written_after_the_cut() {
    let (mut net, end) = leader_with_syncs_held();
    net.step(0, |n, cx| {
        n.propose(cx, record(1));
    });
    let (_, first) = *net.held_syncs.last().expect("a sync held");
    net.step(0, |n, cx| n.truncate(cx, end));
    net.step(0, |n, cx| {
        n.propose(cx, record(2));
    });
    assert_eq!(net.nodes[0].log.end_offset(), end + 1);
    net.persisted(0, first);
    assert_eq!(net.nodes[0].synced_end(), end);
}

/// The checks count a restarted voter's recovered log as durable until the sync owed for it
/// completes (`durable_end`), and nothing else: not a running voter's unsynced write, even
/// with its sync tokens counted from its last completed sync (the model checker's symmetry
/// reduction makes such a write the first outstanding token, as the owed sync is).
#[test]
fn only_a_recovered_log_counts_as_durable_before_its_sync() {
    let (mut net, end) = leader_with_syncs_held();
    net.step(0, |n, cx| {
        n.propose(cx, record(1));
    });
    let running = &net.nodes[0];
    assert_eq!((running.synced_end(), running.durable_end()), (end, end));
    let shift = running.synced_token();
    assert!(shift > 0);
    let renumbered = running.relabeled(config(0, &[]), |v| v, |e| e.clone(), |m| m.clone(), shift);
    assert_eq!(
        renumbered.durable_end(),
        end,
        "an unsynced append is not durable"
    );
    // Restarted from a disk holding the appended entry: counted until the owed sync completes.
    let mut image = net.images[0].clone();
    image.log = running.log.entries().to_vec();
    let restarted = QuorumNode::recover(config(0, &[]), image);
    assert_eq!(
        (restarted.synced_end(), restarted.durable_end()),
        (0, end + 1)
    );
}

/// One completion may answer several syncs (a driver's disk sync covers every write before it):
/// the synced end is then the end the last of them makes durable, not the first's.
#[test]
fn one_completion_of_several_syncs_makes_the_last_ones_end_durable() {
    let (mut net, end) = leader_with_syncs_held();
    for r in 1..=3 {
        net.step(0, |n, cx| {
            n.propose(cx, record(r));
        });
    }
    assert_eq!(net.held_syncs.len(), 3, "{:?}", net.held_syncs);
    let (_, last) = *net.held_syncs.last().expect("syncs held");
    net.persisted(0, last);
    assert_eq!(net.nodes[0].synced_end(), end + 3);
}

#[test]
fn one_vote_per_epoch_and_it_survives_a_restart() {
    let mut net = Net::new(&[]);
    let mut cx = Context::new(0);
    net.step(1, |n, cx| n.on_message(cx, 0, vote_request(1, 0, 0, 0)));
    let again = QuorumNode::recover(config(1, &[]), net.images[1].clone());
    assert_eq!((again.epoch(), again.voted_for()), (1, Some(0)));
    let mut n = started(again);
    n.on_message(&mut cx, 2, vote_request(1, 2, 0, 0));
    assert_eq!(
        granted(&cx.take_effects()),
        Some(false),
        "a second vote in epoch 1"
    );
    n.on_message(&mut cx, 0, vote_request(1, 0, 0, 0));
    assert_eq!(
        granted(&cx.take_effects()),
        Some(true),
        "the same candidate again"
    );
}

/// A voter that learned the epoch's leader without voting in it (the leader's announcement
/// reached it first) has nothing to vote for in that epoch: with five voters, a second
/// candidate of the same epoch could otherwise win the three voters the leader did not need,
/// and the epoch would have two leaders. (A mutation asking only "am I the leader?" passed every
/// sweep, nemesis and model check: the window needs two candidates of one epoch.)
#[test]
fn a_voter_following_the_epochs_leader_refuses_a_vote_in_that_epoch() {
    let mut n = QuorumNode::new(config(1, &[]));
    let mut cx = Context::new(0);
    let begin = Message::BeginQuorumEpoch(crate::protocol::BeginQuorumEpoch {
        epoch: 1,
        leader: 0,
    });
    n.on_message(&mut cx, 0, begin);
    assert_eq!((n.epoch(), n.voted_for()), (1, None));
    cx.take_effects();
    n.on_message(&mut cx, 2, vote_request(1, 2, 0, 0));
    n.on_persisted(&mut cx, 10);
    assert_eq!(granted(&cx.take_effects()), Some(false));
    assert_eq!(n.voted_for(), None);
}

#[test]
fn a_vote_needs_a_log_at_least_as_up_to_date() {
    let mut net = Net::new(&[]);
    net.elect(0);
    // Everyone holds the leader change of epoch 1 at offset 0: a candidate with an empty log is
    // behind, one with a later last epoch is ahead even if shorter.
    let mut cx = Context::new(0);
    // A longer log ending in an earlier epoch is behind too (a deposed leader's tail).
    let cases = [
        (0, 0, false),
        (1, 0, false),
        (1, 1, true),
        (2, 0, true),
        (0, 3, false),
    ];
    for (last_epoch, end, expect) in cases {
        let mut n = QuorumNode::recover(config(1, &[]), net.images[1].clone());
        n.on_message(&mut cx, 2, vote_request(5, 2, last_epoch, end));
        n.on_persisted(&mut cx, 10);
        let got = granted(&cx.take_effects());
        assert_eq!(got, Some(expect), "last epoch {last_epoch} end {end}");
    }
    // vote-by-log-length: the longer log wins, though its last epoch is older.
    let mut n = QuorumNode::recover(config(1, &[Bug::VoteByLogLength]), net.images[1].clone());
    n.on_message(&mut cx, 2, vote_request(5, 2, 0, 3));
    n.on_persisted(&mut cx, 10);
    assert_eq!(granted(&cx.take_effects()), Some(true));
    // vote-without-log-check: the empty log wins the vote.
    let mut n = QuorumNode::recover(
        config(1, &[Bug::VoteWithoutLogCheck]),
        net.images[1].clone(),
    );
    n.on_message(&mut cx, 2, vote_request(5, 2, 0, 0));
    n.on_persisted(&mut cx, 10);
    assert_eq!(granted(&cx.take_effects()), Some(true));
}

#[test]
fn a_pre_vote_changes_no_epoch_and_is_refused_while_a_leader_is_heard() {
    let mut net = Net::new(&[]);
    net.elect(0);
    // Voter 2 times out although the leader is fine (say, a pause): voter 1 still hears the
    // leader, the leader refuses, so nothing changes.
    net.elect(2);
    assert_eq!(net.leaders(), vec![0]);
    assert!(net.nodes.iter().all(|n| n.epoch() == 1));
    // Once voter 1's own timer fired too, it grants: voter 2 wins epoch 2.
    net.fire(1, Timer::QuorumElection);
    net.queue.clear();
    net.elect(2);
    assert_eq!(net.leaders(), vec![2]);
    assert!(net.nodes.iter().all(|n| n.epoch() == 2));
}

#[test]
fn a_pre_vote_needs_a_log_at_least_as_up_to_date() {
    let mut net = Net::new(&[]);
    net.elect(0);
    let mut n = started(QuorumNode::recover(config(1, &[]), net.images[1].clone()));
    let mut cx = Context::new(0);
    let ask = |end| {
        Message::PreVote(VoteRequest {
            epoch: 2,
            candidate: 2,
            last_epoch: end as u32,
            end_offset: end,
        })
    };
    let answer = |effects: Vec<Effect>| {
        effects.iter().find_map(|e| match e {
            Effect::Send {
                message: Message::PreVoteResponse(r),
                ..
            } => Some(r.granted),
            _ => None,
        })
    };
    n.on_message(&mut cx, 2, ask(0));
    assert_eq!(answer(cx.take_effects()), Some(false));
    n.on_message(&mut cx, 2, ask(1));
    assert_eq!(answer(cx.take_effects()), Some(true));
    assert_eq!(
        (n.epoch(), n.voted_for()),
        (1, Some(0)),
        "a pre-vote changes nothing"
    );
}

/// Voter 0 led epoch 1 and appended two entries nobody fetched (offsets 1 and 2); voter 1 won
/// epoch 2 with 2's vote and appended its leader change at offset 1. Voter 0, cut off, still
/// believes it leads epoch 1.
fn deposed_leader_with_unfetched_entries() -> Net {
    let mut net = Net::new(&[]);
    net.elect(0);
    // 2 is deaf, 1 is cut off by dropping its fetches.
    net.deaf = [1, 2].into_iter().collect();
    net.submit(0, 5);
    net.submit(0, 6);
    assert_eq!(net.nodes[0].log().end_offset(), 3);
    net.deaf = [0].into_iter().collect();
    net.fire(2, Timer::QuorumElection);
    net.queue.clear();
    net.elect(1);
    assert_eq!(net.leaders(), vec![0, 1]);
    net
}

/// The network heals and voter 0 learns that 1 leads epoch 2; it fetches from 1 until quiet.
fn tell_zero_of_epoch_2(net: &mut Net) {
    net.deaf.clear();
    let begin = Message::BeginQuorumEpoch(crate::protocol::BeginQuorumEpoch {
        epoch: 2,
        leader: 1,
    });
    net.step(0, |n, cx| n.on_message(cx, 1, begin));
    net.run();
}

#[test]
fn a_follower_truncates_where_the_leaders_epoch_ends() {
    let mut net = deposed_leader_with_unfetched_entries();
    // Voter 0 hears of epoch 2 and fetches with last epoch 1 at offset 3: the leader's epoch 1
    // ends at 1, so it truncates its two uncommitted entries and takes epoch 2's.
    net.step(1, |n, cx| n.on_timer(cx, Timer::QuorumCheck));
    tell_zero_of_epoch_2(&mut net);
    let zero = &net.nodes[0];
    assert_eq!(zero.log().entries(), net.nodes[1].log().entries());
    assert_eq!(zero.log().end_offset(), 2);
    assert_eq!(zero.high_watermark(), 2);
}

#[test]
fn the_high_watermark_moves_only_with_an_entry_of_the_leaders_epoch() {
    // Voter 0 leads epoch 1 with an entry at offset 1 only it holds (voter 1 has offset 0).
    let entry = |epoch| QuorumEntry {
        epoch,
        record: record(5),
    };
    for (bugs, expect) in [(vec![], 0), (vec![Bug::CommitPreviousEpochByCount], 2)] {
        let image = QuorumImage {
            epoch: 2,
            voted_for: None,
            log: vec![entry(1), entry(1)],
            snapshot: None,
        };
        let mut n = QuorumNode::recover(config(0, &bugs), image);
        let mut cx = Context::new(0);
        // Elected in epoch 3: its leader change goes at offset 2.
        n.on_timer(&mut cx, Timer::QuorumElection);
        for v in [1, 2] {
            let r = vote_answer(3, 2, None, true);
            n.on_message(&mut cx, v, Message::PreVoteResponse(r));
        }
        n.on_persisted(&mut cx, 100);
        let r = vote_answer(3, 3, None, true);
        n.on_message(&mut cx, 1, Message::VoteResponse(r));
        assert!(n.is_leader());
        n.on_persisted(&mut cx, 100);
        // Voter 1 fetched both epoch-1 entries, not yet the leader change.
        let fetch = QuorumFetchRequest {
            epoch: 3,
            replica: 1,
            fetch_offset: 2,
            last_fetched_epoch: 1,
            high_watermark: 0,
        };
        n.on_message(&mut cx, 1, Message::QuorumFetch(fetch));
        assert_eq!(n.high_watermark(), expect, "bugs {bugs:?}");
    }
}

/// A recovered voter started, with the sync it owes for what it read completed.
fn started(mut n: QuorumNode) -> QuorumNode {
    let mut cx = Context::new(0);
    n.on_start(&mut cx);
    let token = cx.take_effects().iter().find_map(|e| match e {
        Effect::Sync(t) => Some(*t),
        _ => None,
    });
    n.on_persisted(
        &mut cx,
        token.expect("a recovered voter syncs what it read"),
    );
    n
}

/// What a restarted voter read may be only in the page cache (a process crash keeps unsynced
/// writes): it syncs it first, and sends nothing that reveals it — here a fetch naming its log
/// end, which the leader would count — until that sync completes.
#[test]
fn a_restarted_voter_syncs_what_it_read_before_revealing_it() {
    let mut net = Net::new(&[]);
    net.elect(0);
    net.submit(0, 5);
    let mut again = QuorumNode::recover(config(1, &[]), net.images[1].clone());
    let mut cx = Context::new(0);
    again.on_start(&mut cx);
    let token = cx
        .take_effects()
        .iter()
        .find_map(|e| match e {
            Effect::Sync(t) => Some(*t),
            _ => None,
        })
        .expect("a sync of what recovery read");
    // The leader's next answer names it: it fetches again, but only once the sync is done.
    again.on_message(&mut cx, 0, nothing_new_from_leader_0());
    assert!(
        sends(&cx.take_effects()).is_empty(),
        "fetched before the sync"
    );
    again.on_persisted(&mut cx, token);
    let effects = cx.take_effects();
    assert!(
        matches!(sends(&effects)[..], [Message::QuorumFetch(f)] if f.fetch_offset == 2),
        "{effects:?}"
    );
    // A new voter's empty disk holds nothing to sync.
    let mut fresh = QuorumNode::new(config(2, &[]));
    fresh.on_start(&mut cx);
    assert!(!cx
        .take_effects()
        .iter()
        .any(|e| matches!(e, Effect::Sync(_))));
}

/// Leader 0's answer in epoch 1 to a fetch at offset 2: nothing new, the watermark at 2.
fn nothing_new_from_leader_0() -> Message {
    Message::QuorumFetchResponse(QuorumFetchResponse {
        epoch: 1,
        leader: Some(0),
        fetch_offset: 2,
        last_fetched_epoch: 1,
        result: QuorumFetchResult::Entries {
            start: 2,
            entries: vec![],
            high_watermark: Some(2),
        },
    })
}

/// A follower told by its leader that their logs part below what it holds committed cuts
/// committed entries: its watermark falls below what it applied, which breaks
/// `quorum-applied-within-hw` at once (a voter that then took its leader's snapshot back would
/// hold the same history again, and nothing compared later would show the cut).
#[test]
fn a_follower_cutting_committed_entries_breaks_an_invariant() {
    let mut net = Net::new(&[]);
    net.elect(0);
    net.submit(0, 5);
    let one = &mut net.nodes[1];
    assert_eq!((one.high_watermark(), one.applied()), (2, 2));
    assert_eq!(one.check_invariants(), Ok(()));
    let diverging = Message::QuorumFetchResponse(QuorumFetchResponse {
        epoch: 1,
        leader: Some(0),
        fetch_offset: 2,
        last_fetched_epoch: 1,
        result: QuorumFetchResult::Diverging {
            epoch: 0,
            end_offset: 0,
        },
    });
    let mut cx = Context::new(0);
    one.on_message(&mut cx, 0, diverging);
    assert_eq!(one.log().end_offset(), 0, "the forged answer cut the log");
    let v = one.check_invariants().unwrap_err();
    assert_eq!(v.rule, "quorum-applied-within-hw");
}

#[test]
fn a_restarted_voter_keeps_its_epoch_vote_and_log_and_relearns_the_high_watermark() {
    let mut net = Net::new(&[]);
    net.elect(0);
    net.submit(0, 5);
    let before = net.nodes[1].clone();
    let mut again = QuorumNode::recover(config(1, &[]), net.images[1].clone());
    assert_eq!(again.epoch(), before.epoch());
    assert_eq!(again.voted_for(), before.voted_for());
    assert_eq!(again.log(), before.log());
    assert_eq!(again.high_watermark(), 0);
    // It learns the watermark again from the leader's next answer.
    let mut cx = Context::new(0);
    again.on_start(&mut cx);
    again.on_message(&mut cx, 0, nothing_new_from_leader_0());
    assert_eq!(again.high_watermark(), 2);
    let applied = cx
        .take_effects()
        .iter()
        .filter(|e| matches!(e, Effect::Apply { .. }))
        .count();
    assert_eq!(applied, 2, "it applies the log again from the start");
}

#[test]
fn check_quorum_makes_a_leader_nobody_fetches_from_resign() {
    let mut net = Net::new(&[]);
    net.elect(0);
    // Both followers fetched since the leader was elected: it stays.
    net.fire(0, Timer::QuorumCheck);
    assert_eq!(net.leaders(), vec![0]);
    // Nobody fetched in the next period (their fetches are parked, none new).
    net.fire(0, Timer::QuorumCheck);
    assert!(net.leaders().is_empty());
    assert_eq!(net.nodes[0].epoch(), 1, "resigning bumps no epoch");
}

/// A one-way partition: voter 2 hears nothing (its fetches' answers are lost) but its own
/// messages arrive. Its election timer fires five times; between them, the others' timers fire
/// when they have no leader. Returns (epoch bumps, times the leader lost its leadership).
fn one_way_partition(bugs: &[Bug]) -> (QuorumEpoch, usize) {
    let mut net = Net::new(bugs);
    net.elect(0);
    net.deaf.insert(2);
    let mut deposed = 0;
    for _ in 0..5 {
        net.elect(2);
        if net.leaders().is_empty() {
            deposed += 1;
            // The two that hear each other elect a leader again (voter 1's timer fires).
            net.elect(1);
        }
        assert_eq!(net.leaders().len(), 1);
    }
    (net.nodes[1].epoch() - 1, deposed)
}

#[test]
fn without_pre_vote_a_cut_off_voter_keeps_deposing_the_leader() {
    assert_eq!(one_way_partition(&[]), (0, 0));
    // Voter 2, deaf, never learns the epochs the others move to: every other timeout of its
    // lands on an epoch above theirs and deposes the leader.
    assert_eq!(one_way_partition(&[Bug::NoPrevote]), (6, 3));
}

fn disconnected(cx: &mut Context) -> Vec<NodeId> {
    cx.take_effects()
        .into_iter()
        .filter_map(|e| match e {
            Effect::Disconnect(peer) => Some(peer),
            _ => None,
        })
        .collect()
}

/// A voter that waited a whole timeout for an answer closes its connection to whoever owed it:
/// the leader its fetch went to, the voters its pre-vote went to that said nothing. Those that
/// answered keep theirs. With `keep-stalled-links` nobody is disconnected.
#[test]
fn peers_silent_for_a_timeout_are_disconnected() {
    for (bugs, fixed) in [(vec![], true), (vec![Bug::KeepStalledLinks], false)] {
        let mut net = Net::new(&bugs);
        net.elect(0);
        let n = &mut net.nodes[2];
        assert!(n.fetching, "its fetch waits at the leader");
        let mut cx = Context::new(0);
        n.on_timer(&mut cx, Timer::QuorumFetchTimeout);
        let expect = |peers: Vec<NodeId>| if fixed { peers } else { Vec::new() };
        assert_eq!(disconnected(&mut cx), expect(vec![0]), "{bugs:?}");
        // No answer again: its election timer fires (the leader still owes it one).
        n.on_timer(&mut cx, Timer::QuorumElection);
        assert_eq!(disconnected(&mut cx), expect(vec![0]), "{bugs:?}");
        // Voter 1 refuses the pre-vote; the leader says nothing.
        let refused = vote_answer(2, 1, Some(0), false);
        n.on_message(&mut cx, 1, Message::PreVoteResponse(refused));
        cx.take_effects();
        n.on_timer(&mut cx, Timer::QuorumElection);
        assert_eq!(disconnected(&mut cx), expect(vec![0]), "{bugs:?}");
        // A fetch timeout with no fetch outstanding (it is prospective) closes nothing.
        n.on_timer(&mut cx, Timer::QuorumFetchTimeout);
        assert_eq!(disconnected(&mut cx), Vec::<NodeId>::new());
    }
}

/// A voter that lost its pre-vote follows the leader a refusal names only if it leads the
/// voter's own epoch: a voter still in an older epoch names that epoch's leader, which does not
/// lead this one (fetches sent to it would be refused, or answered by a deposed leader).
#[test]
fn a_lost_pre_vote_follows_only_a_leader_of_its_own_epoch() {
    for (epoch, follows) in [(2, None), (1, Some(0))] {
        let mut net = Net::new(&[]);
        net.elect(0);
        let n = &mut net.nodes[2];
        let mut cx = Context::new(0);
        if epoch == 2 {
            // Voter 2 moved on to epoch 2 (a candidate's request), where it knows no leader.
            n.observe_epoch(&mut cx, 2, None);
        }
        n.on_timer(&mut cx, Timer::QuorumElection);
        assert!(matches!(n.role, QuorumRole::Prospective { .. }), "{epoch}");
        for v in [0, 1] {
            let refused = vote_answer(epoch + 1, 1, Some(0), false);
            n.on_message(&mut cx, v, Message::PreVoteResponse(refused));
        }
        assert_eq!(n.role, QuorumRole::Follower { leader: follows }, "{epoch}");
    }
}

/// Voter 2 of a quorum led by 0 in epoch 1, moved on to epoch 2 by a candidate's request (no
/// leader known there), whose election timer then fired: prospective, asking for epoch 3.
fn prospective_in_epoch_2() -> Net {
    let mut net = Net::new(&[]);
    net.elect(0);
    let n = &mut net.nodes[2];
    let mut cx = Context::new(0);
    n.observe_epoch(&mut cx, 2, None);
    n.on_timer(&mut cx, Timer::QuorumElection);
    assert!(matches!(n.role, QuorumRole::Prospective { .. }));
    net
}

/// A voter's answer to a (pre-)vote request for `request_epoch`, from a voter in `epoch`.
fn vote_answer(
    request_epoch: QuorumEpoch,
    epoch: QuorumEpoch,
    leader: Option<NodeId>,
    granted: bool,
) -> crate::protocol::VoteResponse {
    crate::protocol::VoteResponse {
        request_epoch,
        epoch,
        leader,
        granted,
    }
}

fn pre_vote_granted(request_epoch: QuorumEpoch) -> Message {
    Message::PreVoteResponse(vote_answer(request_epoch, 1, None, true))
}

/// Only answers to this pre-vote round count: grants of an earlier round (asked from an older
/// epoch, and answered about that) say nothing of whether a majority would follow now.
#[test]
fn pre_vote_grants_of_an_earlier_round_are_not_counted() {
    let mut net = prospective_in_epoch_2();
    let n = &mut net.nodes[2];
    let mut cx = Context::new(0);
    for v in [0, 1] {
        n.on_message(&mut cx, v, pre_vote_granted(2));
    }
    assert_eq!(n.epoch, 2);
    assert!(matches!(n.role, QuorumRole::Prospective { .. }));
    // This round's grants start the election.
    for v in [0, 1] {
        n.on_message(&mut cx, v, pre_vote_granted(3));
    }
    assert_eq!(n.epoch, 3);
    assert!(matches!(n.role, QuorumRole::Candidate { .. }));
}

/// A prospective voter that grants a vote in its epoch gives up its own pre-vote round: it waits
/// for the candidate it voted for, and late grants of its round start no election against it.
#[test]
fn a_prospective_voter_that_grants_a_vote_gives_up_its_pre_vote() {
    let mut net = prospective_in_epoch_2();
    let n = &mut net.nodes[2];
    let mut cx = Context::new(0);
    let request = vote_request(2, 1, n.log.last_epoch(), n.log.end_offset());
    n.on_message(&mut cx, 1, request);
    assert_eq!(n.voted_for, Some(1));
    assert_eq!(n.role, QuorumRole::Follower { leader: None });
    for v in [0, 1] {
        n.on_message(&mut cx, v, pre_vote_granted(3));
    }
    assert_eq!(n.epoch, 2);
    assert_eq!(n.role, QuorumRole::Follower { leader: None });
}

#[test]
fn bug_names_round_trip() {
    for bug in [
        Bug::VoteWithoutLogCheck,
        Bug::CommitPreviousEpochByCount,
        Bug::VoteNotDurable,
        Bug::NoPrevote,
        Bug::VoteByLogLength,
        Bug::KeepStalledLinks,
    ] {
        assert_eq!(bug.name().parse::<Bug>(), Ok(bug));
    }
}
