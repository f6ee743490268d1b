//! Every bug switch of the replication issue is caught by the simulator within a fixed seed
//! range, by the anomaly or invariant we expect.
#![cfg(madsim)]

use seedlog::node::Bug;
use sims::faults::Target;
use sims::scenario::{Scenario, ScenarioOptions};
use sims::sim::run::run;

/// The first seed in `0..limit` whose run reports a problem whose name is one of `expected`,
/// and whose very scenario (same schedule, same workload) with the switch off reports none of
/// them: the switch, not the faults, made the difference. (A seed failing both ways, such as a
/// power loss of the whole ISR with replicated durability, is a design limit, not the bug: the
/// search goes on.)
fn first_catch(
    bug: Bug,
    durability: Option<seedlog::node::Durability>,
    limit: u64,
    expected: &[&str],
) -> Catch {
    let opts = ScenarioOptions {
        bugs: vec![bug],
        durability,
        ..Default::default()
    };
    let found = |problems: &[String]| {
        problems
            .iter()
            .find(|p| {
                // A problem kind (`committed-diverged ...`), or the rule of a broken invariant
                // (`node-invariant ctl0 at ...: leader-elected-by-majority: ...`).
                expected
                    .iter()
                    .any(|e| p.starts_with(e) || p.contains(&format!(": {e}: ")))
            })
            .cloned()
    };
    let mut both_ways = Vec::new();
    for seed in 0..limit {
        let sc = Scenario::from_seed(seed, &opts);
        let Some(problem) = found(&run(&sc, false).problems) else {
            continue;
        };
        let without = run(
            &Scenario {
                bugs: Vec::new(),
                ..sc.clone()
            },
            false,
        )
        .problems;
        match found(&without) {
            None => {
                eprintln!("{}: seed {seed}: {problem}", bug.name());
                return Catch {
                    scenario: sc,
                    without,
                };
            }
            Some(p) => both_ways.push(format!("seed {seed}: {p}")),
        }
    }
    panic!(
        "{} not caught in seeds 0..{limit}; failing with and without the switch: {both_ways:?}",
        bug.name()
    );
}

/// A seed that catches a bug: its scenario (switch on) and every problem of the same scenario
/// with the switch off (none of the expected kind).
struct Catch {
    scenario: Scenario,
    without: Vec<String>,
}

/// How the loss of acknowledged records shows in a history. (`duplicate` too: a record cut from
/// the log takes its producer's idempotence stamp with it, so a retry lands a second copy.)
const LOSS: &[&str] = &["lost-write", "unseen", "inconsistent-offsets", "duplicate"];

/// An ISR member below the high watermark, named by the leader's own check or the cross-node
/// one at the step it happens, or the loss it leads to if that member is elected.
const ISR_BELOW_HW: &[&str] = &[
    "isr-holds-hw",
    "isr-member-holds-hw",
    "lost-write",
    "unseen",
    "inconsistent-offsets",
    "duplicate",
];

#[test]
fn ack_before_isr_is_caught() {
    first_catch(Bug::AckBeforeIsr, None, 200, LOSS);
}

#[test]
fn unclean_election_is_caught() {
    first_catch(Bug::UncleanElection, None, 300, LOSS);
}

/// The leader rebalance hands a partition to its preferred replica while that replica, back
/// from a crash, is still catching up (outside the ISR): the records it lacks are cut from the
/// others, acknowledged ones among them. Hunts run the rebalance every 0.5-2 s.
#[test]
fn preferred_out_of_isr_is_caught() {
    first_catch(Bug::PreferredOutOfIsr, None, 100, LOSS);
}

#[test]
fn truncate_to_hw_is_caught() {
    first_catch(Bug::TruncateToHw, None, 300, LOSS);
}

#[test]
fn hw_from_stale_epoch_is_caught() {
    // Counting a stale-epoch follower leaves replicas that never agree again: the liveness
    // phase's "replicas agree" check names it (or the history shows the loss).
    // Or, first of all, the follower's broken invariant where it takes records of an epoch older
    // than its log's (node-invariant follower-append).
    let expected: Vec<&str> = LOSS
        .iter()
        .copied()
        .chain(["liveness", "node-invariant"])
        .collect();
    first_catch(Bug::HwFromStaleEpoch, None, 700, &expected);
}

#[test]
fn isr_before_epoch_start_is_caught() {
    // Its targeted nemesis (sims/src/faults/nemesis.rs): the new leader's high watermark is left
    // below its epoch start, the old leader comes back missing its last records and fetches from
    // inside that gap, is let into the ISR, and is elected before the records reach it. About 4%
    // of seeds line the windows up (37 of 0..1000 once syncs took time; the first at 16).
    let catch = first_catch(Bug::IsrBeforeEpochStart, None, 300, LOSS);
    // Shrinking pins the roles to the nodes the failing run bound, so removing or moving faults
    // cannot make an episode start elsewhere.
    let shrunk = sims::sim::shrink::shrink(&catch.scenario).expect("it fails");
    let mut events = shrunk.scenario.schedule.events.clone();
    assert!(
        events.iter_mut().all(|e| e
            .fault
            .targets_mut()
            .iter()
            .all(|t| matches!(t, Target::Node(_)))),
        "{events:?}"
    );
    // The shrink keeps the run's first problem, which may be the loss seen from a latest offset:
    // the new leader answered below a high watermark an older leader had reached, i.e. it lacks
    // committed records (seed 6's since a repeated registration fences nothing).
    let problem = shrunk.problem.as_str();
    assert!(
        LOSS.contains(&problem) || problem == "latest-below-older-epoch",
        "{problem}"
    );
}

#[test]
fn last_replica_standing_is_caught() {
    // Its nemesis shrinks the ISR to the leader and cuts the leader's log with a flipped bit.
    // Without the switch the partition goes offline instead (a liveness failure, not a loss).
    let without = first_catch(Bug::LastReplicaStanding, None, 20, LOSS).without;
    assert!(
        !without.is_empty()
            && without
                .iter()
                .all(|p| p.starts_with("liveness") && p.contains("has no leader")),
        "without the switch partitions go offline (the leader that was cut may lead the group's \
         offsets too), and nothing else: {without:?}"
    );
}

#[test]
fn ack_before_sync_is_caught() {
    // Its nemesis leaves the leader alone in the ISR (min.insync.replicas=1), slows its disk
    // and cuts its power while syncs are outstanding. Without the switch the leader answers
    // only what its disk holds, so the same power loss takes nothing acknowledged.
    let without = first_catch(Bug::AckBeforeSync, None, 20, LOSS).without;
    assert!(without.is_empty(), "clean without the switch: {without:?}");
}

#[test]
fn stale_broker_epoch_is_caught() {
    // Bug I (KIP-903), nemesis `lossy-rejoin`: the leader proposes a follower that caught up
    // for the ISR; the proposal stalls, the follower loses power (replicated durability: what
    // it fetched is gone) and registers again, and the active controller fails over. The
    // proposal, sent again to the successor, names the old incarnation; with the switch the
    // controller takes the new one into the ISR, below the high watermark, which the leader's
    // `isr-holds-hw` or the cross-node `isr-member-holds-hw` names at that step.
    let without = first_catch(Bug::StaleBrokerEpoch, None, 20, ISR_BELOW_HW).without;
    assert!(without.is_empty(), "clean without the switch: {without:?}");
}

#[test]
fn hw_ignores_pending_isr_is_caught() {
    // H (KIP-497): the high watermark passes a follower whose ISR expansion is in flight; once
    // the controller commits it, an ISR member is below the high watermark (the leader's own
    // `isr-holds-hw`, or the cross-node `isr-member-holds-hw`), and an election of it would
    // lose acknowledged records.
    first_catch(Bug::HwIgnoresPendingIsr, None, 50, ISR_BELOW_HW);
}

/// The `lossy-rejoin` nemesis without any switch: every seed clean. Before the fix, a leader
/// sending its unanswered ISR proposal again named each member anew, in the incarnation that
/// had registered since the power loss, and the controller took that broker into the ISR
/// without the records its old incarnation had fetched (seeds 1, 2, 5, 6 and 8 of these; then,
/// once resends named the old incarnation, the refusal left the ISR short of it for good,
/// `liveness`).
#[test]
fn lossy_rejoin_leaves_every_isr_member_whole() {
    let opts = ScenarioOptions {
        nemesis: Some(sims::faults::nemesis::Nemesis::LossyRejoin),
        ..Default::default()
    };
    for seed in 0..20 {
        let sc = Scenario::from_seed(seed, &opts);
        let problems = run(&sc, false).problems;
        assert!(problems.is_empty(), "seed {seed}: {problems:?}");
    }
}

// The pipelined producer's switches: the failover mix makes requests fail and time out while
// several batches are in flight.

#[test]
fn dedup_window_1_is_caught() {
    // The leader remembers only a producer's last batch: a retry of an earlier batch still in
    // flight is taken for a new one and lands twice.
    first_catch(Bug::DedupWindow1, None, 50, &["duplicate"]);
}

#[test]
fn no_sequence_gap_check_is_caught() {
    // The leader appends a batch that does not continue the producer's sequences: a producer
    // that learned of a new leader (a metadata refresh) sends it later batches while earlier
    // ones are still stuck at the old leader; those, retried, land behind them or twice.
    first_catch(
        Bug::NoSequenceGapCheck,
        None,
        100,
        &[
            "duplicate",
            "inconsistent-offsets",
            "per-key-order",
            "nonmonotonic-send",
        ],
    );
}

#[test]
fn retry_out_of_order_is_caught() {
    // The producer resends a failed batch behind the later ones, numbering them again: a later
    // batch takes an earlier one's sequences, and the leader answers it with that batch's
    // offsets, or appends it twice.
    first_catch(
        Bug::RetryOutOfOrder,
        None,
        50,
        &[
            "duplicate",
            "inconsistent-offsets",
            "per-key-order",
            "nonmonotonic-send",
        ],
    );
}

// The consumer-group switches: a group bug hunt crashes and pauses members often.

#[test]
fn commit_before_process_is_caught() {
    // A member that commits a batch and dies before processing it leaves records below the
    // group's committed offset that no member processed.
    first_catch(Bug::CommitBeforeProcess, None, 100, &["at-least-once"]);
}

#[test]
fn sync_before_assignment_is_caught() {
    // Kafka's classic protocol (the group's leader member assigns): a coordinator that answers
    // syncs before the leader's assignment arrives gives the members empty shares, and the
    // group's partitions stay unread until a rebalance that a settled group never has.
    first_catch(Bug::SyncBeforeAssignment, None, 20, &["liveness"]);
}

#[test]
fn keep_stale_list_offsets_is_caught() {
    // The hunt seeks to the end after most batches (not the rewinding ones) and stalls members'
    // links for less than their request timeout. A member rejoining with its request for the
    // latest offset kept gets the answer during the rebalance: it sets a position the new
    // generation then reads from without fetching the committed offset (`poll-without-resume`;
    // 9 of seeds 0..199, the first at 8). An answer arriving after the member resumed would be
    // `stale-seek`; this member, one request at a time, cannot rejoin before the answer or its
    // timeout.
    first_catch(
        Bug::KeepStaleListOffsets,
        None,
        20,
        &["poll-without-resume", "stale-seek"],
    );
}

#[test]
fn accept_stale_generation_is_caught() {
    // A paused member, expelled meanwhile, comes back and commits in its old generation: the
    // coordinator appends the commit after the new generation's record (`offsets-monotonic`,
    // the cross-node check reading each replica of `__consumer_offsets`; seed 2 of 0..20), and
    // the group's committed offset may move back (`offset-regression`, which alone found it at
    // seed 2 of 0..100).
    first_catch(
        Bug::AcceptStaleGeneration,
        None,
        20,
        &["offsets-monotonic", "offset-regression"],
    );
}

#[test]
fn a_failing_run_shrinks_to_fewer_faults_that_still_fail_the_same_way() {
    let sc = first_catch(Bug::AckBeforeIsr, None, 200, LOSS).scenario;
    let shrunk = sims::sim::shrink::shrink(&sc).expect("it fails");
    assert!(shrunk.scenario.schedule.events.len() < sc.schedule.events.len());
    // The setup shrinks too: here the faults move to the start and the fault phase ends soon
    // after them.
    assert!(
        shrunk.scenario.fault_ms < sc.fault_ms,
        "{} ms",
        shrunk.scenario.fault_ms
    );
    let again = run(&shrunk.scenario, false);
    assert!(
        again
            .problems
            .iter()
            .any(|p| sims::sim::shrink::problem_name(p) == shrunk.problem),
        "{:?}",
        again.problems
    );
}

/// Two controllers applying different entries at one offset, or a voter cutting entries it
/// applied (its watermark dragged below them): what a broken quorum shows. The second comes
/// first where a voter that won an election it should not have made another cut its log.
const QUORUM: &[&str] = &["committed-diverged", "quorum-applied-within-hw"];

/// A vote answered before its sync and lost in a power loss: the candidate leads on a vote no
/// voter shows (`leader-elected-by-majority`), or the voter votes again and a second leader of
/// the epoch follows the first (`single-leader-per-epoch`); before those checks, the two
/// leaders' entries diverged (seed 8 of 0..40 is now the first, at 16.0 s simulated).
#[test]
fn vote_not_durable_is_caught() {
    first_catch(
        Bug::VoteNotDurable,
        None,
        40,
        &[
            "committed-diverged",
            "leader-elected-by-majority",
            "single-leader-per-epoch",
        ],
    );
}

#[test]
fn vote_without_log_check_is_caught() {
    // 5 of seeds 0..200 caught it when the driver slept anew on every event (the first at 5),
    // 7 of 200 since it re-arms one timer, another schedule for every seed (the first at 82);
    // seed 5 again since `quorum-applied-within-hw` sees the cut of applied entries itself,
    // before any other voter applies something else there.
    first_catch(Bug::VoteWithoutLogCheck, None, 40, QUORUM);
}

/// A voter that ranks logs by length before last epoch elects a deposed leader whose
/// uncommitted tail outgrew its successor's log (nemesis `deposed-controller`: the active
/// controller is cut off, keeps fencing the brokers whose sessions expire on it, and is healed
/// as its successor dies); its tail overwrites the successor's committed leader change. 25 of
/// seeds 0..39 catch it, seed 0 the first.
#[test]
fn vote_by_log_length_is_caught() {
    first_catch(Bug::VoteByLogLength, None, 10, QUORUM);
}

/// Voters that keep a connection whose request timed out: after `deposed-controller` heals its
/// cut, the two controllers left cannot hear each other's answers for seconds (they wait behind
/// segments the cut stalled), and the promise that they elect within 2.4 s is broken. 73 of
/// seeds 0..199 catch it, seed 2 the first; a liveness bug, no record is lost.
#[test]
fn keep_stalled_links_is_caught() {
    caught_and_clean_without(Bug::KeepStalledLinks, 10, &["controller-not-elected"]);
}

/// A snapshot claiming entries past what its voter applied is not the state the committed
/// entries below its end build.
#[test]
fn snapshot_past_commit_is_caught() {
    first_catch(Bug::SnapshotPastCommit, None, 10, &["snapshot-diverged"]);
}

#[test]
fn commit_previous_epoch_by_count_is_caught() {
    // Raft's Figure 8, nemesis `figure-8` (one entry per quorum fetch): two new leaders are
    // killed before their leader changes leave them, the first is elected again and killed the
    // moment its follower holds its old leader change and not its new one; the second is then
    // elected and commits its own at that offset. Counting the old entry committed applied it
    // first.
    let catch = first_catch(Bug::CommitPreviousEpochByCount, None, 10, QUORUM);
    assert!(
        catch.without.is_empty(),
        "clean without the switch: {:?}",
        catch.without
    );
    // The catch went the figure's way: all three lazy roles were bound (the last one, the
    // follower holding the old entries up to the leader's epoch start, just before the end).
    let o = run(&catch.scenario, true);
    let events = o.trace.events().expect("trace kept");
    for role in ["new-leader#", "second-new-leader#", "epoch-start-follower#"] {
        assert!(
            events
                .iter()
                .any(|e| e.what.contains(&format!("role: {role}"))),
            "{role} never bound: {:?}",
            o.problems
        );
    }
}

/// `no-prevote` breaks no safety property; its cost is availability. Controller 2 hears nothing
/// for 17 s (its peers' messages to it are cut; its own still arrive): with pre-vote its timeouts
/// change nothing, without it each one bumps the epoch, deposes the active controller and keeps
/// the others from electing a successor.
#[test]
fn without_pre_vote_a_cut_off_controller_keeps_deposing_the_active_one() {
    use sims::faults::{Fault, FaultSchedule, TimedFault};
    let mut sc = Scenario::from_seed(1, &ScenarioOptions::default());
    let at = TimedFault::at;
    let cut = |from: u32| Fault::OneWay {
        from: from.into(),
        to: 102.into(),
    };
    let heal = |from: u32| Fault::HealLink {
        from: from.into(),
        to: 102.into(),
    };
    sc.schedule = FaultSchedule {
        events: vec![
            at(2_000, cut(100)),
            at(2_000, cut(101)),
            at(19_000, heal(100)),
            at(19_000, heal(101)),
        ],
    };
    // The highest quorum epoch any controller wrote: each election (or, without pre-vote, each
    // timeout of the cut-off controller) moves it.
    let epochs = |bugs: Vec<Bug>| {
        let o = run(&Scenario { bugs, ..sc.clone() }, true);
        assert!(o.ok(), "{:?}", o.problems);
        let events = o.trace.events().expect("trace kept");
        events
            .iter()
            .filter_map(|e| {
                e.what
                    .split_once("persist quorum epoch ")?
                    .1
                    .split(' ')
                    .next()?
                    .parse::<u32>()
                    .ok()
            })
            .max()
            .unwrap_or(0)
    };
    let with = epochs(Vec::new());
    let without = epochs(vec![Bug::NoPrevote]);
    eprintln!("highest controller epoch: {with} with pre-vote, {without} without");
    assert!(
        without >= with + 2,
        "{with} with pre-vote, {without} without"
    );
}

/// CreateTopics answered before the quorum commits the new topic: the `controller-storm`
/// nemesis cuts the active controller's power while the controllers' disks are slow, and the
/// admin (creating a topic every 250 ms) was told "created" about a topic its successor never
/// had. Without the switch the answer waits for the commit, and a topic lost with the
/// controller was never answered.
#[test]
fn create_topic_before_commit_is_caught() {
    first_catch(
        Bug::CreateTopicBeforeCommit,
        None,
        20,
        &["created-topic-lost", "created-topic-diverged"],
    );
}

#[test]
fn producers_not_journaled_is_caught() {
    // A follower that restarts at its leader's log start takes the producer state below it and
    // journals only the emptied log: its disk no longer rebuilds the log it runs with. Nothing a
    // client sees shows it until that replica crashes, leads, and takes a retry of a batch
    // retention deleted a second time; the disk check names it at the next crash or at the end
    // of the run, `disk-matches-memory`.
    caught_and_clean_without(Bug::ProducersNotJournaled, 40, &["disk-matches-memory"]);
}

/// With fsync durability a broker that counts everything it recovered as synced (after a
/// process crash, some of it was only in the page cache) reports records to its leader as
/// synced that a power loss can take. Nothing a client sees shows it unless the same power
/// loss reaches every replica that held them; the simulator compares what each broker counts
/// as synced with what its disk holds durably as each incarnation starts, `synced-on-disk`.
#[test]
fn recovery_counts_unsynced_is_caught() {
    caught_and_clean_without(Bug::RecoveryCountsUnsynced, 40, &["synced-on-disk"]);
}

/// A group member whose position retention deleted moves to the high watermark and reports
/// it as the log start. The history checker takes a reported log start on trust (records below
/// it were deleted, which excuses them), so only the simulator's comparison of every report
/// with the highest log start any replica has had sees the skipped records,
/// `reset-above-log-start`.
#[test]
fn reset_to_high_watermark_is_caught() {
    caught_and_clean_without(Bug::ResetToHighWatermark, 10, &["reset-above-log-start"]);
}

/// A producer that goes on in the same epoch after a batch is refused for good leaves a gap in
/// its sequences that every later batch meets: all its sends fail from then on. A failed send
/// is an allowed outcome, so no safety check sees it; the probe after convergence does
/// (`refused-after-heal`: its last round's records are not acknowledged).
#[test]
fn no_epoch_bump_after_refusal_is_caught() {
    caught_and_clean_without(Bug::NoEpochBumpAfterRefusal, 20, &["refused-after-heal"]);
}

/// A coordinator rebuilt after a failover that keeps each partition's highest committed offset
/// instead of its last gives a group that rewound (committed lower offsets to re-read) the
/// higher one again. Nothing is lost, and the offset does not move back. The simulator's
/// `coordinator-offsets-in-log` stops the new coordinator at the step it loads (it holds an
/// offset its committed log does not end with); from the clients' history alone, the checker's
/// `stale-offset` sees a fetch return an offset a later commit had overwritten (16 of seeds
/// 0..299 before the simulator's check existed). The hunt's members rewind 25 records, so the
/// group's offset stays below its earlier commit a while.
#[test]
fn replay_keeps_highest_offset_is_caught() {
    caught_and_clean_without(
        Bug::ReplayKeepsHighestOffset,
        20,
        &["coordinator-offsets-in-log", "stale-offset"],
    );
}

/// A group coordinator deposed without hearing it answers an offset fetch from its cache: the
/// `stale-coordinator` nemesis cuts the coordinator off from the cluster (its clients still
/// reach it) while a member is paused in the middle of its fetches, until the other member has
/// committed at the new coordinator; the paused one's next fetch misses that commit.
#[test]
fn offset_fetch_from_cache_is_caught() {
    caught_and_clean_without(
        Bug::OffsetFetchFromCache,
        30,
        &["offset-regression", "stale-offset"],
    );
}

/// Availability, which no safety check sees: with one replica of three lost, a leader that
/// judges lag against its high watermark never drops a follower that stopped fetching (the
/// high watermark waits for it), and one that wants more than `min.insync.replicas` members
/// refuses every acks=all write. Both lose nothing; the `lost-replica` nemesis promises that
/// writes go through once the cluster has settled, and the run reports `unavailable`.
#[test]
fn lag_from_high_watermark_is_caught() {
    caught_and_clean_without(Bug::LagFromHighWatermark, 10, &["unavailable"]);
}

#[test]
fn min_insync_exclusive_is_caught() {
    caught_and_clean_without(Bug::MinInsyncExclusive, 10, &["unavailable"]);
}

/// `first_catch`, and the catching seed's scenario with the switch off shows no problem at
/// all (not only none of the expected kind).
fn caught_and_clean_without(bug: Bug, limit: u64, expected: &[&str]) {
    let catch = first_catch(bug, None, limit, expected);
    assert!(
        catch.without.is_empty(),
        "clean without the switch: {:?}",
        catch.without
    );
}

#[test]
fn latest_is_log_end_is_caught() {
    // The leader answers a partition's latest offset with its log end: a member seeking to the
    // end is told an offset no replica's high watermark has reached (`latest-above-hw`, the
    // simulator's own check of every answer).
    caught_and_clean_without(Bug::LatestIsLogEnd, 10, &["latest-above-hw"]);
}

#[test]
fn time_lookup_strict_is_caught() {
    // ListOffsets by time skips the records of the very millisecond asked: a member seeking to
    // a record's own time is sent past it, above a record it read there (`wrong-time-offset`,
    // from the clients' history alone).
    caught_and_clean_without(Bug::TimeLookupStrict, 5, &["wrong-time-offset"]);
}

#[test]
fn time_lookup_past_hw_is_caught() {
    // ListOffsets by time searches records not yet committed: a member asking for a time just
    // after the newest record it read is sent to one no leader's high watermark has passed
    // (`time-offset-above-hw`, the simulator's check of every answer).
    caught_and_clean_without(Bug::TimeLookupPastHw, 30, &["time-offset-above-hw"]);
}

/// A liveness bug only the calm after the run sees: every record is read and committed, the
/// history is clean, and the cluster converges; but left alone, the group's members are
/// expelled every session timeout (their heartbeats renew nothing) and the group rebalances
/// again and again (`unstable`: 200 of seeds 0..199).
#[test]
fn member_session_not_renewed_is_caught_by_the_calm() {
    let outcome = caught_alone(Bug::MemberSessionNotRenewed, 5, "unstable");
    assert!(
        outcome.problems[0].contains("Rebalance x"),
        "{:?}",
        outcome.problems
    );
}

/// Another liveness bug only the end of the run sees: the controller moves leadership back to
/// the preferred replicas once per term, then never again, so after a failover the load stays on
/// the brokers that took over. Every record arrives and the cluster is calm; only the check
/// after the calm (`unbalanced`) names the partitions led away from a preferred replica that is
/// live and in sync.
#[test]
fn rebalance_not_rearmed_is_caught_after_the_calm() {
    caught_alone(Bug::RebalanceNotRearmed, 20, "unbalanced");
}

/// A latency bug: the leader leaves the fetches it parked to their long-poll deadline, so
/// followers learn of new records, and the leader of their progress, one wait late. Every
/// record arrives and nothing is refused; only the timed probe round after the heal (`slow`)
/// sees acks=all writes taking hundreds of milliseconds.
#[test]
fn parked_fetch_not_woken_is_caught_by_the_timed_probe() {
    let outcome = caught_alone(Bug::ParkedFetchNotWoken, 5, "slow");
    assert!(
        outcome.problems[0].contains("took"),
        "{:?}",
        outcome.problems
    );
}

/// The first of seeds `0..limit` whose run with `bug` reports `expected` and nothing else, where
/// the same run without the switch reports nothing at all (a liveness bug that only one check
/// sees, and that check alone); its outcome with the switch.
fn caught_alone(bug: Bug, limit: u64, expected: &str) -> sims::sim::run::Outcome {
    let catch = first_catch(bug, None, limit, &[expected]);
    assert!(
        catch.without.is_empty(),
        "clean without the switch: {:?}",
        catch.without
    );
    let outcome = run(&catch.scenario, false);
    assert_eq!(
        outcome.problems.len(),
        1,
        "only {expected}: {:?}",
        outcome.problems
    );
    outcome
}

#[test]
fn max_timestamp_last_tie_is_caught() {
    // ListOffsets by max timestamp answers the last record of the largest millisecond, not the
    // first: a member is sent above a record it read with that very timestamp
    // (`wrong-max-timestamp`, from the clients' history alone).
    caught_and_clean_without(Bug::MaxTimestampLastTie, 10, &["wrong-max-timestamp"]);
}

/// The same switch, as the clients' history alone shows it: once a failover gives the
/// uncommitted offsets the member was told about to records sent after the answer
/// (`latest-ahead`). Only the history checker judges this run, as it would a real client's.
#[test]
fn latest_is_log_end_shows_in_the_history() {
    let opts = ScenarioOptions {
        bugs: vec![Bug::LatestIsLogEnd],
        nemesis: Some(sims::faults::nemesis::Nemesis::LoneLeaderPowerLoss),
        ..Default::default()
    };
    let sc = Scenario::from_seed(534, &opts);
    let outcome = run(&sc, false);
    let history = sims::sim::history::anomalies(&outcome.observed, &sc);
    assert!(
        history.iter().any(|a| a.starts_with("latest-ahead ")),
        "{history:?}"
    );
    let clean = run(
        &Scenario {
            bugs: Vec::new(),
            ..sc.clone()
        },
        false,
    );
    assert!(clean.problems.is_empty(), "{:?}", clean.problems);
}
