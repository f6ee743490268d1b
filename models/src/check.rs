//! Runs a model to completion (or to the first violation) and summarises what it found.

use crate::cluster::{build, ModelOptions};
use crate::render;
use stateright::{Checker, Expectation, HasDiscoveries, Model};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Search {
    Bfs,
    Dfs,
}

#[derive(Clone, Debug)]
pub struct RunOptions {
    pub threads: usize,
    pub max_depth: Option<usize>,
    pub search: Search,
}

#[derive(Clone, Debug)]
pub struct Violation {
    pub property: &'static str,
    pub depth: usize,
    pub trace: String,
}

#[derive(Clone, Debug)]
pub struct Progress {
    pub states: usize,
    pub unique_states: usize,
    pub max_depth: usize,
    pub secs: f64,
}

#[derive(Clone, Debug)]
pub struct Outcome {
    pub model: &'static str,
    pub unique_states: usize,
    pub states: usize,
    pub max_depth: usize,
    pub secs: f64,
    /// The first safety property violated, with its counterexample.
    pub violation: Option<Violation>,
    /// `sometimes` properties reached, and those never reached (a model that never gets there
    /// proves nothing about it).
    pub reached: Vec<&'static str>,
    pub unreached: Vec<&'static str>,
}

impl Outcome {
    pub fn ok(&self) -> bool {
        self.violation.is_none() && self.unreached.is_empty()
    }
}

pub fn check(opts: &ModelOptions, run: &RunOptions, progress: impl FnMut(Progress)) -> Outcome {
    let model = build(opts);
    let mut builder = model
        .checker()
        .threads(run.threads.max(1))
        .finish_when(HasDiscoveries::AnyFailures);
    if let Some(d) = run.max_depth {
        builder = builder.target_max_depth(d);
    }
    let name = opts.kind.name();
    match run.search {
        Search::Bfs => finish(name, builder.spawn_bfs(), progress),
        Search::Dfs => finish(name, builder.spawn_dfs(), progress),
    }
}

fn finish<C>(name: &'static str, checker: C, mut progress: impl FnMut(Progress)) -> Outcome
where
    C: Checker<crate::cluster::SeedlogModel>,
{
    let start = Instant::now();
    let mut last_report = Instant::now();
    while !checker.is_done() {
        std::thread::sleep(Duration::from_millis(50));
        if last_report.elapsed() >= Duration::from_secs(2) {
            last_report = Instant::now();
            progress(Progress {
                states: checker.state_count(),
                unique_states: checker.unique_state_count(),
                max_depth: checker.max_depth(),
                secs: start.elapsed().as_secs_f64(),
            });
        }
    }
    let checker = checker.join();
    let secs = start.elapsed().as_secs_f64();
    let model = checker.model();
    let mut violation = None;
    let mut reached = Vec::new();
    let mut unreached = Vec::new();
    for p in model.properties() {
        let found = checker.discovery(p.name);
        match (p.expectation, found) {
            (Expectation::Always, Some(path)) if violation.is_none() => {
                let depth = path.clone().into_actions().len();
                violation = Some(Violation {
                    property: p.name,
                    depth,
                    trace: render::path(model, path),
                });
            }
            (Expectation::Sometimes, Some(_)) => reached.push(p.name),
            (Expectation::Sometimes, None) => unreached.push(p.name),
            _ => {}
        }
    }
    Outcome {
        model: name,
        unique_states: checker.unique_state_count(),
        states: checker.state_count(),
        max_depth: checker.max_depth(),
        secs,
        violation,
        reached,
        unreached,
    }
}
