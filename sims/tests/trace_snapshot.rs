//! A short fixed-seed trace, kept as a snapshot: a change in protocol behaviour or timing shows
//! up in review as a diff of this timeline.
#![cfg(madsim)]

use sims::scenario::{Scenario, ScenarioOptions};
use sims::sim::run::run;

#[test]
fn fixed_seed_timeline() {
    let sc = Scenario::from_seed(
        5,
        &ScenarioOptions {
            fault_ms: Some(1_000),
            ..Default::default()
        },
    );
    let outcome = run(&sc, true);
    let events = outcome.trace.events().expect("descriptions kept");
    let timeline: Vec<String> = events
        .iter()
        .take(120)
        .map(|e| format!("{:>6} {:<12} {}", e.time_ms, e.node, e.what))
        .collect();
    insta::assert_snapshot!(timeline.join("\n"));
}
