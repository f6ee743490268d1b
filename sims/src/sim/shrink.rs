//! Shrinking a failing scenario: remove faults while the run still fails the same way (the same
//! first problem name), bisecting chunks of the schedule first and single faults last (a
//! simplified delta debugging). The result is a smaller scenario to read and to keep as a
//! regression test.

pub use super::run::problem_name;
use super::run::run;
use crate::scenario::Scenario;

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
    Some(Shrunk {
        scenario: best,
        problem: target,
        runs,
    })
}
