//! Every bug switch of the replication issue is caught by the simulator within a fixed seed
//! range, by the anomaly or invariant we expect.
#![cfg(madsim)]

use seedlog::node::Bug;
use sims::scenario::{Scenario, ScenarioOptions};
use sims::sim::run::run;

/// The first seed in `0..limit` whose run reports a problem whose name is one of `expected`.
fn first_catch(
    bug: Bug,
    durability: Option<seedlog::node::Durability>,
    limit: u64,
    expected: &[&str],
) -> (u64, String) {
    let opts = ScenarioOptions {
        bugs: vec![bug],
        durability,
        ..Default::default()
    };
    for seed in 0..limit {
        let o = run(&Scenario::from_seed(seed, &opts), false);
        if let Some(p) = o
            .problems
            .iter()
            .find(|p| expected.iter().any(|e| p.starts_with(e)))
        {
            return (seed, p.clone());
        }
    }
    panic!("{} not caught in seeds 0..{limit}", bug.name());
}

/// How the loss of acknowledged records shows in a history. (`duplicate` too: a record cut from
/// the log takes its producer's idempotence stamp with it, so a retry lands a second copy.)
const LOSS: &[&str] = &["lost-write", "unseen", "inconsistent-offsets", "duplicate"];

#[test]
fn ack_before_isr_is_caught() {
    let (seed, problem) = first_catch(Bug::AckBeforeIsr, None, 200, LOSS);
    eprintln!("ack-before-isr: seed {seed}: {problem}");
}

#[test]
fn unclean_election_is_caught() {
    let (seed, problem) = first_catch(Bug::UncleanElection, None, 300, LOSS);
    eprintln!("unclean-election: seed {seed}: {problem}");
}

#[test]
fn truncate_to_hw_is_caught() {
    let (seed, problem) = first_catch(Bug::TruncateToHw, None, 300, LOSS);
    eprintln!("truncate-to-hw: seed {seed}: {problem}");
}

#[test]
fn hw_from_stale_epoch_is_caught() {
    // Counting a stale-epoch follower leaves replicas that never agree again: the liveness
    // phase's "replicas agree" check names it (or the history shows the loss).
    let expected: Vec<&str> = LOSS.iter().copied().chain(["liveness"]).collect();
    let (seed, problem) = first_catch(Bug::HwFromStaleEpoch, None, 300, &expected);
    eprintln!("hw-from-stale-epoch: seed {seed}: {problem}");
}

// isr-before-epoch-start (G) is not caught by the simulator yet: in this broker the fetch that
// lets a lagging follower into the ISR also carries it the records it lacks, so the loss needs
// the leader to die between committing the ISR change and that response arriving (a one-way
// partition leader -> follower at exactly that moment). 300 seeds of the failover mix do not
// hit it; the model checker does (see models/tests). Left as a known gap.

// The consumer-group switches: a group bug hunt crashes and pauses members often.

#[test]
fn commit_before_process_is_caught() {
    // A member that commits a batch and dies before processing it leaves records below the
    // group's committed offset that no member processed.
    let (seed, problem) = first_catch(Bug::CommitBeforeProcess, None, 100, &["at-least-once"]);
    eprintln!("commit-before-process: seed {seed}: {problem}");
}

#[test]
fn accept_stale_generation_is_caught() {
    // A paused member, expelled meanwhile, comes back and commits its old position in its old
    // generation: the group's committed offset moves back.
    let (seed, problem) = first_catch(
        Bug::AcceptStaleGeneration,
        None,
        100,
        &["offset-regression"],
    );
    eprintln!("accept-stale-generation: seed {seed}: {problem}");
}

#[test]
fn a_failing_run_shrinks_to_fewer_faults_that_still_fail_the_same_way() {
    let opts = ScenarioOptions {
        bugs: vec![Bug::AckBeforeIsr],
        ..Default::default()
    };
    let (seed, _) = first_catch(Bug::AckBeforeIsr, None, 200, LOSS);
    let sc = Scenario::from_seed(seed, &opts);
    let shrunk = sims::sim::shrink::shrink(&sc).expect("it fails");
    assert!(shrunk.scenario.schedule.events.len() < sc.schedule.events.len());
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
