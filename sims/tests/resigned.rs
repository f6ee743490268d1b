//! The `resigned` promise of the `deposed-controller` nemesis: a controller cut off from the
//! others past check-quorum leads no quorum epoch. Checked both ways on hand-written schedules:
//! the promise holds for an isolated active controller, and a promise made of one that was
//! never cut off (so it still leads, rightly) is reported as broken — the check can fail.
#![cfg(madsim)]

use sims::faults::{Fault, FaultSchedule, Role, Target, TimedFault};
use sims::scenario::{Scenario, ScenarioOptions};
use sims::sim::run::run;

fn scenario(isolate: bool) -> Scenario {
    let mut sc = Scenario::from_seed(3, &ScenarioOptions::default());
    let active = Target::role(Role::ActiveController, 0);
    let at = TimedFault::at;
    let mut events = Vec::new();
    if isolate {
        events.push(at(2_000, Fault::Isolate { node: active }));
    }
    // (Without the cut, the promise is the episode's first fault and binds its roles itself.)
    events.push(at(8_000, Fault::Resigned { node: active }));
    events.push(at(8_001, Fault::HealNetwork));
    sc.schedule = FaultSchedule { events };
    sc
}

#[test]
fn an_isolated_active_controller_has_resigned_when_promised() {
    let outcome = run(&scenario(true), false);
    let problems = &outcome.problems;
    assert!(
        !problems
            .iter()
            .any(|p| p.starts_with("leader-not-resigned")),
        "{problems:?}"
    );
    // The promise was checked on the isolated controller, not skipped for want of one.
    let bound = outcome.roles.get(&0).cloned().flatten().unwrap_or_default();
    let active = sims::faults::RoleRef {
        role: Role::ActiveController,
        episode: 0,
    };
    assert!(bound.contains_key(&active), "{:?}", outcome.roles);
}

#[test]
fn a_leader_that_was_never_cut_off_breaks_the_promise() {
    let problems = run(&scenario(false), false).problems;
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("leader-not-resigned: ")),
        "{problems:?}"
    );
}
