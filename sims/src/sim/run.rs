//! One simulated run of a scenario: build, inject faults, heal, wait for convergence within the
//! liveness bound, then check the history. Everything here is a function of the scenario.

use super::checks::not_converged;
use super::cluster::{lock, Cluster, Observed};
use super::supervisor::EpisodeRoles;
use crate::scenario::Scenario;
use seedlog::node::AnyNode;
use seedlog::runtime::driver::Clock;
use seedlog::runtime::trace::{with_trace, SharedTrace, Trace};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

pub struct Outcome {
    pub seed: u64,
    pub trace_hash: u64,
    pub events: usize,
    pub sim_ms: u64,
    /// One line per problem: anomalies by name, `liveness: ...`, node failures.
    pub problems: Vec<String>,
    pub observed: Vec<Observed>,
    pub trace: Trace,
    /// How the schedule's role targets were bound (empty without role targets).
    pub roles: EpisodeRoles,
}

impl Outcome {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }

    /// The name of the first problem (an anomaly or invariant name), for summaries.
    pub fn first_problem_name(&self) -> Option<&str> {
        self.problems.first().map(|p| problem_name(p))
    }
}

/// The name a problem line starts with (`lost-write`, `liveness`, `nondeterminism`, ...).
pub fn problem_name(line: &str) -> &str {
    line.split([' ', ':']).next().unwrap_or(line)
}

pub fn run(sc: &Scenario, keep_trace: bool) -> Outcome {
    let rt = madsim::runtime::Runtime::with_seed_and_config(sc.seed, madsim::Config::default());
    let trace = Trace::shared(keep_trace);
    let (sim_ms, observed, mut problems, roles) = rt.block_on(simulate(sc.clone(), trace.clone()));
    problems.extend(super::history::anomalies(&observed, sc));
    let trace = match Arc::try_unwrap(trace) {
        Ok(m) => m.into_inner().unwrap_or_else(|p| p.into_inner()),
        // A node task still holds it (the runtime keeps tasks until it is dropped).
        Err(shared) => with_trace(&shared, |t| std::mem::replace(t, Trace::new(false))),
    };
    drop(rt);
    Outcome {
        seed: sc.seed,
        trace_hash: trace.hash(),
        events: trace.len(),
        sim_ms,
        problems,
        observed,
        trace,
        roles,
    }
}

async fn simulate(
    sc: Scenario,
    trace: SharedTrace,
) -> (u64, Vec<Observed>, Vec<String>, EpisodeRoles) {
    let start = Instant::now();
    let clock: Clock = Arc::new(move || start.elapsed().as_millis() as u64);
    let mut cluster = Cluster::build(&sc, trace, clock);
    let heal_at = start + Duration::from_millis(sc.fault_ms);
    let phase =
        async { tokio::join!(cluster.run_schedule(&sc, start), cluster.writeback(heal_at)) };
    let broken = cluster.broken.clone();
    // A broken invariant ends the run where it happened: what follows would build on it.
    let roles = tokio::select! {
        biased;
        _ = broken.notified() => return cluster.stop_broken(start, EpisodeRoles::default()).await,
        (roles, ()) = phase => roles,
    };
    // The send phase ends with the faults; what is in flight finishes during the liveness phase.
    for n in cluster.nodes.values() {
        if let AnyNode::Producer(p) = &mut *lock(&n.state) {
            p.stop();
        }
    }
    cluster.add_final_reader(&sc);
    let deadline = heal_at + Duration::from_millis(sc.liveness_ms);
    let mut problems = Vec::new();
    loop {
        tokio::select! {
            biased;
            _ = broken.notified() => return cluster.stop_broken(start, roles).await,
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
        }
        let reason = not_converged(&cluster, &sc);
        match reason {
            None => break,
            Some(r) if Instant::now() >= deadline => {
                problems.push(format!(
                    "liveness: not converged {} ms after the heal: {r}",
                    sc.liveness_ms
                ));
                break;
            }
            Some(_) => {}
        }
    }
    problems.extend(lock(&cluster.failures).iter().cloned());
    let sim_ms = start.elapsed().as_millis() as u64;
    let observed = lock(&cluster.history).clone();
    cluster.shut_down().await;
    (sim_ms, observed, problems, roles)
}

impl Cluster {
    /// Ends a run in which a node broke an invariant: the violation is the problem; the history
    /// so far is still checked.
    async fn stop_broken(
        &self,
        start: Instant,
        roles: EpisodeRoles,
    ) -> (u64, Vec<Observed>, Vec<String>, EpisodeRoles) {
        let sim_ms = start.elapsed().as_millis() as u64;
        let observed = lock(&self.history).clone();
        let problems = lock(&self.failures).clone();
        self.shut_down().await;
        (sim_ms, observed, problems, roles)
    }
}
