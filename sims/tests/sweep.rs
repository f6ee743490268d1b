//! A fixed range of seeds, as in CI: every run clean, and between them every fault kind used.
#![cfg(madsim)]

use sims::faults::{Fault, FaultKind};
use sims::scenario::{Scenario, ScenarioOptions};
use sims::sim::run::run;
use std::collections::BTreeSet;

const SEEDS: std::ops::Range<u64> = 0..80;

/// The fault's name as schedules spell it ("kill", "power-loss", ...).
fn fault_name(f: &Fault) -> String {
    serde_json::to_value(f).expect("encode")["fault"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn fixed_seeds_are_clean_and_cover_every_fault_kind() {
    let mut kinds = BTreeSet::new();
    let mut faults_seen = BTreeSet::new();
    let mut failures = Vec::new();
    for seed in SEEDS {
        let sc = Scenario::from_seed(seed, &ScenarioOptions::default());
        kinds.extend(sc.mix.kinds.iter().copied());
        for f in &sc.schedule.events {
            faults_seen.insert(fault_name(&f.fault));
        }
        let o = run(&sc, false);
        if !o.ok() {
            failures.push(format!(
                "seed {seed}: {:?}",
                &o.problems[..o.problems.len().min(3)]
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "failing seeds:\n{}",
        failures.join("\n")
    );
    assert_eq!(
        kinds.len(),
        FaultKind::ALL.len(),
        "fault kinds drawn: {kinds:?}"
    );
    // Every fault variant (kill, power loss, restart, pause, resume, flip, isolate, split,
    // one-way, heal, loss, latency, back to normal) actually scheduled somewhere.
    let all = [
        Fault::Kill { node: 0 },
        Fault::PowerLoss {
            node: 0,
            mode: sims::faults::PowerLossMode::AllPending,
        },
        Fault::Restart { node: 0 },
        Fault::Pause { node: 0 },
        Fault::Resume { node: 0 },
        Fault::FlipBit { node: 0, bit: 0 },
        Fault::Isolate { node: 0 },
        Fault::Split {
            left: vec![],
            right: vec![],
        },
        Fault::OneWay { from: 0, to: 1 },
        Fault::HealNetwork,
        Fault::Loss { percent: 1 },
        Fault::Latency {
            min_ms: 1,
            max_ms: 2,
        },
        Fault::NetworkNormal,
    ];
    for f in &all {
        assert!(
            faults_seen.contains(&fault_name(f)),
            "never scheduled: {f:?}"
        );
    }
}

#[test]
fn a_saved_schedule_replays_to_the_same_trace() {
    let sc = Scenario::from_seed(
        11,
        &ScenarioOptions {
            fault_ms: Some(5_000),
            ..Default::default()
        },
    );
    let json = serde_json::to_string(&sc).expect("encode");
    let back: Scenario = serde_json::from_str(&json).expect("decode");
    assert_eq!(back, sc);
    assert_eq!(run(&sc, false).trace_hash, run(&back, false).trace_hash);
}
