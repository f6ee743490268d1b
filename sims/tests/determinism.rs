//! One seed, one run: the same seed twice gives the same trace hash, in one process and in two.
#![cfg(madsim)]

use sims::scenario::{Scenario, ScenarioOptions};
use sims::sim::run::run;
use std::process::Command;

fn options() -> ScenarioOptions {
    ScenarioOptions {
        fault_ms: Some(5_000),
        ..Default::default()
    }
}

#[test]
fn same_seed_same_trace_in_one_process() {
    for seed in [1, 7, 42] {
        let sc = Scenario::from_seed(seed, &options());
        let (a, b) = (run(&sc, false), run(&sc, false));
        assert_eq!(
            a.trace_hash, b.trace_hash,
            "seed {seed} is not deterministic"
        );
        assert_eq!(a.events, b.events);
        assert!(
            a.events > 200,
            "seed {seed} did almost nothing: {} events",
            a.events
        );
    }
}

#[test]
fn different_seeds_differ() {
    let a = run(&Scenario::from_seed(1, &options()), false);
    let b = run(&Scenario::from_seed(2, &options()), false);
    assert_ne!(a.trace_hash, b.trace_hash);
}

/// The hash line of `replay`, from a fresh process.
fn hash_from_process(seed: u64) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_sims"))
        .args(["replay", "--seed", &seed.to_string(), "--sim-secs", "5"])
        .arg("--history")
        .arg(std::env::temp_dir().join(format!(
            "sims-determinism-{seed}-{}.jsonl",
            std::process::id()
        )))
        .output()
        .expect("run the sims binary");
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout
        .lines()
        .find(|l| l.starts_with("trace hash"))
        .unwrap_or_else(|| panic!("no trace hash in output:\n{stdout}"))
        .to_string()
}

#[test]
fn same_seed_same_trace_in_two_processes() {
    let first = hash_from_process(3);
    let second = hash_from_process(3);
    assert_eq!(first, second);
    // And the in-process run agrees with the processes.
    let o = run(&Scenario::from_seed(3, &options()), false);
    assert!(
        first.contains(&format!("{:016x}", o.trace_hash)),
        "{first} vs {:016x}",
        o.trace_hash
    );
}

#[test]
fn the_determinism_check_names_where_runs_part() {
    // Two runs of different scenarios stand in for a nondeterministic one: the report must point
    // at an event, not just say "differs".
    let a = run(&Scenario::from_seed(1, &options()), true);
    let b = run(&Scenario::from_seed(2, &options()), true);
    let i = a.trace.first_divergence(&b.trace).expect("they differ");
    let ea = &a.trace.events().expect("kept")[i];
    assert!(!ea.what.is_empty());
}
