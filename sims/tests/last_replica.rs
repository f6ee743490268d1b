//! Bug J, the last replica standing, as a hand-written schedule: two followers die, the ISR
//! shrinks to the leader, the leader's log is corrupted and cut on restart, the followers come
//! back. With the switch on, the cut leader is elected again and acknowledged records vanish; by
//! default it registers as having lost data, leaves the ISR, and the partition stays offline —
//! a liveness failure, never a lost record. The random mixes spare that case (their flips skip
//! the only in-sync replica of a partition), which the last test shows.
#![cfg(madsim)]

use seedlog::node::{Bug, Durability};
use sims::faults::{Fault, FaultSchedule, TimedFault};
use sims::scenario::{Scenario, ScenarioOptions};
use sims::sim::run::run;

fn scenario(bugs: Vec<Bug>) -> Scenario {
    scenario_sparing(bugs, false)
}

/// With `spare`, the flip is one the random mixes generate: skipped while its broker is the
/// only in-sync replica of a partition.
fn scenario_sparing(bugs: Vec<Bug>, spare: bool) -> Scenario {
    let mut sc = Scenario::from_seed(
        1,
        &ScenarioOptions {
            fault_ms: Some(12_000),
            bugs,
            durability: Some(Durability::Fsync),
            nemesis: None,
        },
    );
    sc.partitions = 1;
    sc.liveness_ms = 10_000;
    // The hole J is about: only a clean election may bring the partition back.
    sc.unclean_leader_election = false;
    sc.retention = Default::default();
    sc.retention_check_ms = None;
    let at = TimedFault::at;
    sc.schedule = FaultSchedule {
        events: vec![
            at(2_000, Fault::Kill { node: 1.into() }),
            at(2_000, Fault::Kill { node: 2.into() }),
            // Bit 100 lies in the first frame of broker 0's log: recovery keeps nothing.
            at(
                6_000,
                Fault::FlipBit {
                    node: 0.into(),
                    bit: 100,
                    spare_last_replica: spare,
                },
            ),
            at(6_001, Fault::Kill { node: 0.into() }),
            at(6_002, Fault::Restart { node: 0.into() }),
            at(8_000, Fault::Restart { node: 1.into() }),
            at(8_000, Fault::Restart { node: 2.into() }),
        ],
    };
    sc
}

const LOSS: &[&str] = &["lost-write", "unseen", "inconsistent-offsets", "duplicate"];

#[test]
fn with_the_switch_the_cut_leader_loses_acknowledged_records() {
    let o = run(&scenario(vec![Bug::LastReplicaStanding]), false);
    // The cut leader loses every committed record it led, `__consumer_offsets`' included: the
    // group's committed generation goes too, and the coordinator that loads what is left
    // hands the same generation to another membership (`generation-reused`), which stops the
    // run at that step, before the history shows the lost records.
    let reused = |p: &String| p.contains("generation-reused");
    assert!(
        o.problems
            .iter()
            .any(|p| LOSS.iter().any(|l| p.starts_with(l)) || reused(p)),
        "{:?}",
        o.problems
    );
}

#[test]
fn by_default_the_partition_goes_offline_instead() {
    let o = run(&scenario(vec![]), false);
    assert!(
        !o.problems
            .iter()
            .any(|p| LOSS.iter().any(|l| p.starts_with(l))),
        "{:?}",
        o.problems
    );
    assert!(
        o.problems
            .iter()
            .any(|p| p.starts_with("liveness") && p.contains("no leader")),
        "{:?}",
        o.problems
    );
}

/// The random mixes' flips spare the only in-sync replica: the same schedule then runs clean,
/// with the switch on too (nothing is cut, so nothing is lost).
#[test]
fn a_generated_flip_spares_the_only_in_sync_replica() {
    for bugs in [vec![], vec![Bug::LastReplicaStanding]] {
        let o = run(&scenario_sparing(bugs.clone(), true), false);
        assert!(o.ok(), "{bugs:?}: {:?}", o.problems);
    }
}
