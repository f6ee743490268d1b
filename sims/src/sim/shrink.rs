//! Shrinking a failing scenario: remove faults while the run still fails the same way (the same
//! first problem name), bisecting chunks of the schedule first and single faults last (a
//! simplified delta debugging); then make the rest of the scenario smaller the same way: fewer
//! producers, readers and group members, a fault phase that ends soon after the last fault, and
//! clocks that agree (no offset, no drift: the clock faults that remain still apply).
//! The result is a smaller scenario to read and to keep as a regression test.

pub use super::run::problem_name;
use super::run::run;
use super::supervisor::EpisodeRoles;
use crate::faults::Target;
use crate::scenario::{Scenario, FIRST_MEMBER};

pub struct Shrunk {
    pub scenario: Scenario,
    pub problem: String,
    pub runs: usize,
}

/// `None` if the scenario does not fail at all.
pub fn shrink(original: &Scenario) -> Option<Shrunk> {
    let first = run(original, false);
    let target = problem_name(first.problems.first()?).to_string();
    let mut runs = 1;
    let mut best = original.clone();
    let fails = |sc: &Scenario, runs: &mut usize| {
        *runs += 1;
        run(sc, false)
            .problems
            .iter()
            .any(|p| problem_name(p) == target)
    };
    // Faults aimed at roles are bound when their episode starts; once faults are removed or
    // moved, an episode would start elsewhere and hit other nodes. So they first become the
    // nodes the failing run bound them to.
    let pinned = pin_roles(&best, &first.roles);
    if pinned != best && fails(&pinned, &mut runs) {
        best = pinned;
    }
    let mut chunk = best.schedule.events.len().div_ceil(2).max(1);
    loop {
        let mut removed_any = false;
        let mut start = 0;
        while start < best.schedule.events.len() {
            let mut candidate = best.clone();
            let end = (start + chunk).min(candidate.schedule.events.len());
            candidate.schedule.events.drain(start..end);
            if fails(&candidate, &mut runs) {
                best = candidate;
                removed_any = true;
            } else {
                start += chunk;
            }
        }
        if chunk == 1 && !removed_any {
            break;
        }
        if !removed_any {
            chunk = chunk.div_ceil(2);
        }
    }
    for candidate in smaller_setups(&best) {
        // Each candidate is tried against the best so far: the setups compose.
        let candidate = candidate(&best);
        if candidate != best && fails(&candidate, &mut runs) {
            best = candidate;
        }
    }
    Some(Shrunk {
        scenario: best,
        problem: target,
        runs,
    })
}

type Simplify = Box<dyn Fn(&Scenario) -> Scenario>;

/// Simplifications of the scenario around its faults, in the order they are tried (each keeps
/// whatever the ones before it achieved).
fn smaller_setups(sc: &Scenario) -> Vec<Simplify> {
    let mut steps: Vec<Simplify> = Vec::new();
    // The faults start sooner: after 0.5 s of quiet instead of many seconds of it, else after
    // half the quiet time.
    for keep_percent in [0, 50] {
        steps.push(Box::new(move |sc: &Scenario| {
            let first = sc
                .schedule
                .events
                .iter()
                .map(|e| e.at_ms)
                .min()
                .unwrap_or(0);
            let lead = first.saturating_sub(500);
            let shift = lead - lead * keep_percent / 100;
            let mut s = sc.clone();
            for e in &mut s.schedule.events {
                e.at_ms -= shift;
                // A window moves with its fault.
                e.until_ms = e.until_ms.map(|u| u - shift);
            }
            s
        }));
    }
    // The fault phase ends 2 s after the last fault (and the liveness phase then starts); a
    // fault with a window may fire as late as its window's end.
    steps.push(Box::new(|sc: &Scenario| {
        let last = sc
            .schedule
            .events
            .iter()
            .map(|e| e.until_ms.unwrap_or(e.at_ms).max(e.at_ms))
            .max()
            .unwrap_or(0);
        let mut s = sc.clone();
        s.fault_ms = s.fault_ms.min(last + 2_000);
        s
    }));
    // Perfect clocks: a failure that survives this does not need the nodes' clocks to disagree.
    steps.push(Box::new(|sc: &Scenario| {
        let mut s = sc.clone();
        s.clocks.clear();
        s
    }));
    // No consumer group (its members' faults go with it), then one member.
    for members in [0, 1] {
        steps.push(Box::new(move |sc: &Scenario| {
            let mut s = sc.clone();
            if s.members > members {
                s.members = members;
                let gone = FIRST_MEMBER + members;
                s.schedule.events.retain_mut(|e| {
                    !e.fault
                        .targets_mut()
                        .iter()
                        .any(|t| matches!(t, Target::Node(n) if *n >= gone))
                });
            }
            s
        }));
    }
    // Fewer readers, then fewer producers (the last first, so the others keep their ids).
    for _ in 0..sc.readers {
        steps.push(Box::new(|sc: &Scenario| {
            let mut s = sc.clone();
            s.readers = s.readers.saturating_sub(1);
            s
        }));
    }
    for _ in 1..sc.producers.len() {
        steps.push(Box::new(|sc: &Scenario| {
            let mut s = sc.clone();
            if s.producers.len() > 1 {
                s.producers.pop();
            }
            s
        }));
    }
    steps
}

/// The scenario with every role target replaced by the node its episode bound in a run with
/// `roles`; faults of episodes that were skipped (or roles never bound) are dropped, as they were
/// never applied.
pub fn pin_roles(sc: &Scenario, roles: &EpisodeRoles) -> Scenario {
    let pin = |t: &mut Target| -> bool {
        match *t {
            Target::Node(_) => true,
            Target::Role(r) => match roles.get(&r.episode).and_then(|e| e.as_ref()?.get(&r)) {
                Some(&n) => {
                    *t = Target::Node(n);
                    true
                }
                None => false,
            },
        }
    };
    let mut s = sc.clone();
    s.schedule
        .events
        .retain_mut(|e| e.fault.targets_mut().into_iter().all(pin));
    s
}
