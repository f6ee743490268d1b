//! The quorum model: each safety property is shown failing on a hand-built state (voters driven
//! through their real entry points, or given disks no correct run produces) next to a control that
//! passes; the model holds at small bounds; and the checker finds each safety bug switch.

use models::actor::{Digested, Disk, Stored};
use models::check::{check, RunOptions, Search};
use models::cluster::{build, ModelKind, ModelOptions, SeedlogModel};
use models::properties::{violated, State};
use models::quorum::Start;
use seedlog::node::{AnyNode, Bug, Context, Image, QuorumImage, QuorumNode, Timer};
use seedlog::protocol::{
    Message, MetadataRecord, QuorumEntry, QuorumFetchRequest, QuorumFetchResponse,
    QuorumFetchResult, VoteResponse,
};
use stateright::Model;
use std::sync::Arc;

fn model() -> (SeedlogModel, State) {
    let m = build(&ModelOptions::defaults(ModelKind::Quorum));
    let s = m.init_states().remove(0);
    assert!(violated(&m, &s).is_empty(), "the initial state holds");
    (m, s)
}

fn entry(epoch: u32, broker: u32) -> QuorumEntry {
    QuorumEntry {
        epoch,
        record: MetadataRecord::RegisterBroker { broker, epoch: 1 },
    }
}

fn voter(s: &State, i: usize) -> QuorumNode {
    s.actor_states[i]
        .node()
        .and_then(|n| n.as_quorum())
        .expect("a running voter")
        .clone()
}

/// Voter `i` runs as `q`, its disk written as `q` holds it (the effects that built `q` were not
/// kept; a running voter's writes are always in its page cache: `disk-matches-memory`).
fn set_voter(s: &mut State, i: usize, q: QuorumNode) {
    let ns = &s.actor_states[i];
    let mut disk = ns.disk().clone();
    Arc::make_mut(&mut disk).written = Digested::new(Image::Quorum(QuorumImage {
        epoch: q.epoch(),
        voted_for: q.voted_for(),
        log: q.log().entries().to_vec(),
        snapshot: q.log().snapshot().cloned(),
    }));
    // Rebuilt, not edited in place: the state's digest and invariant verdict are made with it.
    let next = ns.replaced(AnyNode::Quorum(q), disk, ns.syncing().clone());
    s.actor_states[i] = Arc::new(next);
}

/// Voter `i` rebuilt from `image` (as after a restart).
fn recovered(s: &State, i: usize, image: QuorumImage) -> QuorumNode {
    QuorumNode::recover(voter(s, i).config_arc(), image)
}

/// Drives voter `q` through a pre-vote and a vote, granted by both others: it leads the next
/// epoch.
fn elect(mut q: QuorumNode) -> QuorumNode {
    let mut cx = Context::new(0);
    q.on_timer(&mut cx, Timer::QuorumElection);
    let epoch = q.epoch() + 1;
    let others: Vec<u32> = (0..3).filter(|&v| v != q.id()).collect();
    for &v in &others {
        let r = VoteResponse {
            request_epoch: epoch,
            epoch: epoch - 1,
            leader: None,
            granted: true,
        };
        q.on_message(&mut cx, v, Message::PreVoteResponse(r));
    }
    q.on_persisted(&mut cx, 1_000);
    let r = VoteResponse {
        request_epoch: epoch,
        epoch,
        leader: None,
        granted: true,
    };
    q.on_message(&mut cx, others[0], Message::VoteResponse(r));
    assert!(q.is_leader());
    q.on_persisted(&mut cx, 1_000);
    q
}

/// Voter `i` as having voted for `leader` in `epoch`, holding nothing (the votes a hand-built
/// leader needs for `leader-elected-by-majority`).
fn voting(s: &mut State, i: usize, leader: u32, epoch: u32) {
    let image = QuorumImage {
        epoch,
        voted_for: Some(leader),
        log: Vec::new(),
        snapshot: None,
    };
    let q = recovered(s, i, image);
    set_voter(s, i, q);
}

fn set_disk(s: &mut State, i: usize, f: impl FnOnce(&mut Disk)) {
    let mut d = Disk::clone(s.actor_storages[i].as_ref().expect("stored"));
    f(&mut d);
    s.actor_storages[i] = Some(Stored::new(Arc::new(d)));
}

#[test]
fn single_leader_per_epoch_fails_with_two_leaders_of_one_epoch() {
    let (m, mut s) = model();
    let zero = elect(voter(&s, 0));
    set_voter(&mut s, 0, zero);
    voting(&mut s, 2, 0, 1);
    assert!(violated(&m, &s).is_empty(), "control: one leader");
    let one = elect(voter(&s, 1));
    set_voter(&mut s, 1, one);
    // Nobody but itself shows a vote for voter 1, and their leader-change entries differ at
    // offset 0 in one epoch: the logs disagree too.
    assert_eq!(
        violated(&m, &s),
        vec![
            "single-leader-per-epoch",
            "leader-elected-by-majority",
            "log-matching"
        ]
    );
}

/// Voter 0 leads epoch 1 and has voter 1's fetch past its leader change counted; voter 1
/// holds that entry (control), then holds nothing in the same epoch (a follower that fetched
/// before syncing, and lost it).
#[test]
fn quorum_progress_held_fails_when_the_leader_counts_an_entry_its_follower_lacks() {
    let (m, mut s) = model();
    let mut zero = elect(voter(&s, 0));
    let change = zero.log().entries()[0].clone();
    let fetch = QuorumFetchRequest {
        epoch: 1,
        replica: 1,
        fetch_offset: 1,
        last_fetched_epoch: 1,
        high_watermark: 0,
    };
    zero.on_message(&mut Context::new(0), 1, Message::QuorumFetch(fetch));
    set_voter(&mut s, 0, zero);
    let holding = QuorumImage {
        epoch: 1,
        voted_for: Some(0),
        log: vec![change],
        snapshot: None,
    };
    let one = recovered(&s, 1, holding);
    set_voter(&mut s, 1, one);
    assert!(
        violated(&m, &s).is_empty(),
        "control: the follower holds it"
    );
    voting(&mut s, 1, 0, 1);
    assert_eq!(violated(&m, &s), vec!["quorum-progress-held-by-follower"]);
}

#[test]
fn log_matching_fails_when_logs_agree_on_an_epoch_but_not_before_it() {
    let (m, mut s) = model();
    let image = |first| QuorumImage {
        epoch: 1,
        voted_for: None,
        log: vec![entry(1, first), entry(1, 9)],
        snapshot: None,
    };
    let a = recovered(&s, 0, image(1));
    set_voter(&mut s, 0, a);
    let b = recovered(&s, 1, image(1));
    set_voter(&mut s, 1, b);
    assert!(violated(&m, &s).is_empty(), "control: identical logs");
    let c = recovered(&s, 1, image(2));
    set_voter(&mut s, 1, c);
    assert_eq!(violated(&m, &s), vec!["log-matching"]);
}

#[test]
fn leader_completeness_fails_when_a_later_leader_lacks_a_committed_entry() {
    let (m, mut s) = model();
    let committed = entry(1, 1);
    for i in [0, 1] {
        set_disk(&mut s, i, |d| {
            d.synced = Digested::new(Image::Quorum(QuorumImage {
                epoch: 1,
                voted_for: None,
                log: vec![committed.clone()],
                snapshot: None,
            }))
        });
    }
    set_disk(&mut s, 0, |d| d.applied = vec![(committed.clone(), 1)]);
    let with = QuorumImage {
        epoch: 1,
        voted_for: None,
        log: vec![committed.clone()],
        snapshot: None,
    };
    let leader = elect(recovered(&s, 2, with));
    set_voter(&mut s, 2, leader);
    voting(&mut s, 0, 2, 2);
    assert!(violated(&m, &s).is_empty(), "control: the leader holds it");
    let without = QuorumImage {
        epoch: 1,
        voted_for: None,
        log: vec![entry(1, 2)],
        snapshot: None,
    };
    let leader = elect(recovered(&s, 2, without));
    set_voter(&mut s, 2, leader);
    assert_eq!(violated(&m, &s), vec!["leader-completeness"]);
}

#[test]
fn committed_durable_fails_when_fewer_than_a_majority_synced_an_applied_entry() {
    let (m, mut s) = model();
    let committed = entry(1, 1);
    let holding = Image::Quorum(QuorumImage {
        epoch: 1,
        voted_for: None,
        log: vec![committed.clone()],
        snapshot: None,
    });
    set_disk(&mut s, 0, |d| {
        d.applied = vec![(committed.clone(), 1)];
        d.synced = Digested::new(holding.clone());
    });
    assert_eq!(violated(&m, &s), vec!["committed-durable"]);
    set_disk(&mut s, 1, |d| d.synced = Digested::new(holding.clone()));
    assert!(
        violated(&m, &s).is_empty(),
        "control: two of three synced it"
    );
}

#[test]
fn applied_consistent_fails_on_different_or_changed_applications() {
    let (m, mut s) = model();
    let synced = Image::Quorum(QuorumImage {
        epoch: 1,
        voted_for: None,
        log: vec![entry(1, 1), entry(1, 2)],
        snapshot: None,
    });
    for i in 0..3 {
        set_disk(&mut s, i, |d| d.synced = Digested::new(synced.clone()));
    }
    set_disk(&mut s, 0, |d| {
        d.applied = vec![(entry(1, 1), 1), (entry(1, 2), 1)]
    });
    set_disk(&mut s, 1, |d| d.applied = vec![(entry(1, 1), 1)]);
    assert!(
        violated(&m, &s).is_empty(),
        "control: one a prefix of the other"
    );
    let mut changed = s.clone();
    set_disk(&mut changed, 1, |d| d.apply_conflict = true);
    assert_eq!(violated(&m, &changed), vec!["applied-consistent"]);
    set_disk(&mut s, 1, |d| d.applied = vec![(entry(1, 2), 1)]);
    let v = violated(&m, &s);
    assert!(v.contains(&"applied-consistent"), "{v:?}");
}

#[test]
fn hw_monotonic_fails_when_a_voter_truncates_below_what_it_applied() {
    let (m, mut s) = model();
    let mut q = recovered(
        &s,
        1,
        QuorumImage {
            epoch: 1,
            voted_for: None,
            log: vec![entry(1, 1), entry(1, 2)],
            snapshot: None,
        },
    );
    let mut cx = Context::new(0);
    let answer = |result| {
        // To a fetch naming the voter's log end (2, in epoch 1), which neither answer moves.
        Message::QuorumFetchResponse(QuorumFetchResponse {
            epoch: 1,
            leader: Some(0),
            fetch_offset: 2,
            last_fetched_epoch: 1,
            result,
        })
    };
    q.on_message(
        &mut cx,
        0,
        answer(QuorumFetchResult::Entries {
            start: 2,
            entries: vec![],
            high_watermark: Some(2),
        }),
    );
    assert_eq!(q.applied(), 2);
    set_voter(&mut s, 1, q.clone());
    assert!(
        violated(&m, &s).is_empty(),
        "control: applied up to the watermark"
    );
    // A divergence no correct leader sends: epoch 0 ends at 0, below the watermark.
    q.on_message(
        &mut cx,
        0,
        answer(QuorumFetchResult::Diverging {
            epoch: 0,
            end_offset: 0,
        }),
    );
    set_voter(&mut s, 1, q);
    // The voter's own invariant (`quorum-applied-within-hw`) says the same, after every step.
    assert_eq!(violated(&m, &s), vec!["node-invariant", "hw-monotonic"]);
}

fn opts(
    records: usize,
    crashes: usize,
    timeouts: usize,
    max_epoch: u32,
    bugs: &[Bug],
) -> ModelOptions {
    ModelOptions {
        records,
        crashes,
        expiries: timeouts,
        max_epoch,
        bugs: bugs.to_vec(),
        ..ModelOptions::defaults(ModelKind::Quorum)
    }
}

fn run(o: &ModelOptions, max_depth: Option<usize>) -> models::check::Outcome {
    let run = RunOptions {
        max_depth,
        ..RunOptions::exhaustive_bfs()
    };
    let start = std::time::Instant::now();
    let out = check(o, &run, |_| {});
    eprintln!(
        "bugs {:?}: {} unique states, depth {}, {:.1}s, violation {:?}",
        o.bugs,
        out.unique_states,
        out.max_depth,
        start.elapsed().as_secs_f64(),
        out.violation.as_ref().map(|v| (v.property, v.depth))
    );
    out
}

#[test]
fn the_quorum_model_holds_at_small_bounds() {
    // One election timeout: a leader is elected and commits; no leader is replaced.
    let out = run(&opts(1, 0, 1, 2, &[]), None);
    assert!(out.violation.is_none(), "{:?}", out.violation);
    assert!(out.exhaustive);
    assert_eq!(out.unreached, vec!["reaches leader replaced"]);
}

/// Two voters, the model's default bounds otherwise (two records, a crash, two election
/// timeouts): exhaustive in a fraction of a second. An even number of voters is where a wrong
/// majority shows: with three or five, the majority-th largest of the voters' log ends is also
/// the majority-th smallest, so a leader sorting them the wrong way round (or counting half
/// instead of half plus one) commits exactly what it should; with two it commits what only it
/// holds (`committed-durable` at depth 9). The simulator runs 3 or 5 controllers, and every
/// other quorum check here 3.
#[test]
fn the_quorum_model_holds_with_two_voters() {
    let o = ModelOptions {
        brokers: 2,
        ..ModelOptions::defaults(ModelKind::Quorum)
    };
    let out = run(&o, None);
    assert!(out.violation.is_none(), "{:?}", out.violation);
    assert!(out.exhaustive);
    assert!(out.unique_states > 10_000, "{}", out.unique_states);
    assert!(out.reached.contains(&"reaches committed change"));
}

/// Two election timeouts from empty disks, nothing submitted, no crash: every interleaving of
/// two voters' elections (a candidate timing out again while its vote requests are still
/// unanswered, a grant of the first election arriving during the second). Exhaustive in
/// seconds; a candidate that counts a grant of its earlier election as one of the current
/// election's is `leader-elected-by-majority` at depth 15 here.
#[test]
fn the_quorum_model_holds_through_two_elections_from_empty_disks() {
    let out = run(&opts(0, 0, 2, 2, &[]), None);
    assert!(out.violation.is_none(), "{:?}", out.violation);
    assert!(out.exhaustive);
    assert_eq!(out.unreached, vec!["reaches committed change"]);
}

/// The switch is caught at these bounds, as `property`, and the same bounds (the same depth) are
/// clean without it.
fn caught(o: &ModelOptions, max_depth: usize, property: &str) {
    let out = run(o, Some(max_depth));
    let v = out.violation.expect("the switch is caught");
    assert_eq!(v.property, property, "{}", v.trace);
    let mut clean = o.clone();
    clean.bugs.clear();
    let out = run(&clean, Some(max_depth));
    assert!(
        out.violation.is_none(),
        "the same bounds are clean without it"
    );
}

#[test]
fn vote_without_log_check_elects_a_leader_without_a_committed_entry() {
    caught(
        &opts(0, 0, 2, 2, &[Bug::VoteWithoutLogCheck]),
        24,
        "leader-completeness",
    );
}

/// Raft's Figure 8 from its state after two elections (`Start::Figure8`: every voter restarts
/// from the figure's disks), with two more election timeouts up to epoch 4, nothing submitted,
/// no crash: breadth-first, the switch's counterexample at depth 22 (voter 0 leads epoch 3 and
/// counts its epoch-1 entry committed once voter 1 fetched it; voter 2 wins epoch 4 with voter
/// 1's vote and lacks it). The same bounds, searched exhaustively, are clean without it.
#[test]
fn commit_previous_epoch_by_count_loses_a_committed_entry_in_figure_8() {
    let o = ModelOptions {
        quorum_start: Start::Figure8,
        ..opts(0, 0, 2, 4, &[Bug::CommitPreviousEpochByCount])
    };
    let out = run(&o, None);
    let v = out.violation.expect("the switch is caught");
    assert_eq!(
        (v.property, v.depth),
        ("leader-completeness", 24),
        "{}",
        v.trace
    );
    let clean = ModelOptions {
        bugs: Vec::new(),
        ..o
    };
    let out = run(&clean, None);
    assert!(out.violation.is_none(), "{:?}", out.violation);
    assert!(out.exhaustive);
    // Nothing is submitted: no registration is ever committed.
    assert_eq!(out.unreached, vec!["reaches committed change"]);
}

/// The symmetry reduction (`models::symmetry`) against the full depth-first search: the same
/// verdict for every property, with and without a safety switch, at bounds small enough to
/// search in full twice (`vote-not-durable`'s smallest such bounds take minutes).
#[test]
fn the_symmetry_reduction_agrees_with_the_full_search() {
    let cases = [
        opts(1, 1, 1, 2, &[]),
        opts(0, 0, 2, 2, &[]),
        opts(0, 0, 2, 2, &[Bug::VoteWithoutLogCheck]),
        ModelOptions {
            quorum_start: Start::Figure8,
            ..opts(0, 0, 2, 4, &[Bug::CommitPreviousEpochByCount])
        },
        // The formed start (`--preset target`'s), with all three `sometimes` reached.
        ModelOptions {
            quorum_start: Start::Formed,
            ..opts(1, 1, 1, 2, &[])
        },
    ];
    for o in &cases {
        let search = |symmetry| {
            let run = RunOptions {
                search: Search::Dfs,
                symmetry,
                ..RunOptions::exhaustive_bfs()
            };
            check(o, &run, |_| {})
        };
        let (full, reduced) = (search(false), search(true));
        eprintln!(
            "{:?} crashes {} timeouts {}: full {} states, reduced {}",
            o.bugs, o.crashes, o.expiries, full.unique_states, reduced.unique_states
        );
        // Depth-first, each stops at the first violation it meets, which may be of another
        // property on another path: both find one, or neither.
        assert_eq!(
            full.violation.is_some(),
            reduced.violation.is_some(),
            "{o:?}"
        );
        if full.violation.is_none() {
            assert_eq!(
                (&full.reached, &full.unreached),
                (&reduced.reached, &reduced.unreached)
            );
            assert!(reduced.unique_states < full.unique_states, "{o:?}");
        }
    }
}

/// The formed start (`Start::Formed`, `--preset target`'s): voter 0 leads epoch 1 and every
/// voter holds its leader change, synced, committed and applied, with no fault budget spent —
/// a state the empty start reaches (`quorum::formed` takes only the empty model's own steps to
/// get there) — and the model holds from it, exhaustively, at the preset's bounds with one
/// record, every `sometimes` reached (the leader replaced after a crash and one timeout).
#[test]
fn the_formed_start_is_an_elected_quorum_and_the_model_holds_from_it() {
    let o = ModelOptions {
        records: 1,
        ..ModelOptions::quorum_target()
    };
    let m = build(&o);
    let s = m.init_states().remove(0);
    assert!(violated(&m, &s).is_empty());
    let leader_change = QuorumEntry {
        epoch: 1,
        record: MetadataRecord::LeaderChange {
            leader: 0,
            epoch: 1,
        },
    };
    for i in 0..3 {
        let q = voter(&s, i);
        assert_eq!((q.epoch(), q.leader(), q.high_watermark()), (1, Some(0), 1));
        assert_eq!(q.log().entries(), std::slice::from_ref(&leader_change));
        let d = s.actor_storages[i].as_ref().expect("a disk");
        assert_eq!(d.written, d.synced, "voter {i} synced");
        assert_eq!(d.applied, vec![(leader_change.clone(), 1)]);
        assert_eq!((d.boots, d.expiries), (0, 0), "no budget spent");
    }
    assert!(voter(&s, 0).is_leader());
    let run = RunOptions {
        search: Search::Dfs,
        symmetry: true,
        ..RunOptions::exhaustive_bfs()
    };
    let out = check(&o, &run, |_| {});
    eprintln!("formed: {} unique states", out.unique_states);
    assert!(out.violation.is_none(), "{:?}", out.violation);
    assert!(
        out.exhaustive && out.unreached.is_empty(),
        "{:?}",
        out.unreached
    );
}

/// Stateright's unordered network (a newer message may overtake an older one of the same
/// channel): the model holds at small bounds, searched in full (with the symmetry reduction).
#[test]
fn the_quorum_model_holds_with_an_unordered_network_at_small_bounds() {
    let o = ModelOptions {
        unordered: true,
        ..opts(1, 0, 1, 2, &[])
    };
    let run = RunOptions {
        search: Search::Dfs,
        symmetry: true,
        ..RunOptions::exhaustive_bfs()
    };
    let out = check(&o, &run, |_| {});
    eprintln!("unordered: {} unique states", out.unique_states);
    assert!(out.violation.is_none(), "{:?}", out.violation);
    assert!(out.exhaustive);
    assert_eq!(out.unreached, vec!["reaches leader replaced"]);
}

/// A voter answers its vote before syncing it: the candidate leads on a vote a power loss can
/// still take (after which the voter may vote again in that epoch). Caught when the vote is
/// counted, with no crash needed (depth 7; before votes had to be synced to count, only once a
/// power loss had taken it, depth 9).
#[test]
fn vote_not_durable_elects_a_leader_on_a_vote_a_power_loss_can_take() {
    caught(
        &opts(0, 1, 2, 1, &[Bug::VoteNotDurable]),
        17,
        "leader-elected-by-majority",
    );
}
