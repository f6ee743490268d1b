//! One simulated run of a scenario: build, inject faults, heal, wait for convergence within the
//! liveness bound, probe that producers still write (`probe`), leave it alone a while (`calm`),
//! then check the history.
//! Everything here is a function of the scenario.

use super::checks::not_converged;
use super::cluster::{lock, Cluster, Observed};
use super::supervisor::EpisodeRoles;
use crate::scenario::Scenario;
use seedlog::node::{AnyNode, Situation};
use seedlog::runtime::trace::{with_trace, SharedTrace, Trace};
use std::collections::BTreeMap;
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
    /// How often each protocol situation was reached.
    pub coverage: BTreeMap<Situation, u64>,
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

/// Anomalies that losing acknowledged records explains: records gone or replaced, offsets
/// reused, committed group offsets gone back with their records.
const LOSS_FAMILY: &[&str] = &[
    "lost-write",
    "unseen",
    "inconsistent-offsets",
    "duplicate",
    "nonmonotonic-send",
    "per-key-order",
    // A reset sent back by a log cut below what was read (an unclean leader's).
    "spurious-reset",
    "offset-regression",
    "stale-offset",
    "at-least-once",
    "latest-ahead",
    // An answer by time checked against records read at the same offsets, which were reused.
    "wrong-time-offset",
    "wrong-max-timestamp",
];

/// A run with unclean election enabled promises nothing about acknowledged records once an
/// unclean election, or a power loss that dropped committed records it had not synced, has
/// happened (Kafka's trade-off for availability). Every other check still holds it to account.
fn gave_up_durability(sc: &Scenario, coverage: &BTreeMap<Situation, u64>) -> bool {
    sc.unclean_leader_election
        && [
            Situation::UncleanElection,
            Situation::PowerLossDroppedCommitted,
        ]
        .iter()
        .any(|s| coverage.contains_key(s))
}

/// The name a problem line starts with (`lost-write`, `liveness`, `nondeterminism`, ...).
pub fn problem_name(line: &str) -> &str {
    line.split([' ', ':']).next().unwrap_or(line)
}

pub fn run(sc: &Scenario, keep_trace: bool) -> Outcome {
    let rt = madsim::runtime::Runtime::with_seed_and_config(sc.seed, madsim::Config::default());
    let trace = Trace::shared(keep_trace);
    let (sim_ms, observed, mut problems, roles, coverage) =
        rt.block_on(simulate(sc.clone(), trace.clone()));
    problems.extend(super::history::anomalies(&observed, sc));
    problems.extend(super::availability::unavailable(
        &sc.schedule,
        &observed,
        sc,
    ));
    if gave_up_durability(sc, &coverage) {
        problems.retain(|p| !LOSS_FAMILY.contains(&problem_name(p)));
    }
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
        coverage,
    }
}

/// What `simulate` returns: simulated ms, the history, the problems, bound roles, coverage.
type Simulated = (
    u64,
    Vec<Observed>,
    Vec<String>,
    EpisodeRoles,
    BTreeMap<Situation, u64>,
);

async fn simulate(sc: Scenario, trace: SharedTrace) -> Simulated {
    let start = Instant::now();
    let mut cluster = Cluster::build(&sc, trace, start);
    let heal_at = start + Duration::from_millis(sc.fault_ms);
    let phase = async {
        tokio::join!(
            cluster.run_schedule(&sc, start),
            cluster.writeback(heal_at, sc.writeback_ms)
        )
    };
    let broken = cluster.broken.clone();
    // A broken invariant ends the run where it happened: what follows would build on it.
    let roles = tokio::select! {
        biased;
        _ = broken.notified() => return cluster.finish(start, Vec::new(), EpisodeRoles::default()).await,
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
    let mut converged = cluster
        .converge(&sc, deadline, CatchUp::WhileMoving, &mut problems, || {
            format!("{} ms after the heal", sc.liveness_ms)
        })
        .await;
    // Converged, every producer writes a little more: the last round must be acknowledged.
    let mut rounds = super::probe::Rounds {
        first_ms: (cluster.clock)(),
        last_ms: 0,
    };
    // Leader elections since the probes began: a producer may learn of one only when its
    // first send of the last round is refused.
    let elections_before = super::latency::elections(&cluster.coverage.counts());
    for round in 1..=super::probe::ROUNDS {
        if converged != Converged::Yes {
            break;
        }
        rounds.last_ms = (cluster.clock)();
        super::probe::hand_over(&cluster, &sc);
        let deadline = Instant::now() + Duration::from_millis(super::probe::WAIT_MS);
        converged = cluster
            .converge(&sc, deadline, CatchUp::No, &mut problems, || {
                format!(
                    "{} ms after probe round {round} began",
                    super::probe::WAIT_MS
                )
            })
            .await;
        if round == super::probe::ROUNDS && converged == Converged::Yes {
            let history = lock(&cluster.history);
            let acks: Vec<_> = sc.producers.iter().map(|p| p.acks).collect();
            problems.extend(super::probe::refused(&history, rounds, &acks));
            // A leader elected during the probes (a preferred-leader election, by design)
            // sends its producers through a refusal, a backoff and a metadata refresh.
            if super::latency::elections(&cluster.coverage.counts()) == elections_before {
                let bounds = super::latency::bounds(&sc);
                problems.extend(super::latency::slow(&history, rounds.last_ms, &bounds));
            }
        }
    }
    if converged == Converged::Broken {
        return cluster.finish(start, problems, roles).await;
    }
    if converged == Converged::Yes {
        let settling = cluster.coverage.counts();
        let mut before = BTreeMap::new();
        for ms in [super::calm::SETTLE_MS, super::calm::CALM_MS] {
            before = cluster.coverage.counts();
            tokio::select! {
                biased;
                _ = cluster.broken.notified() => return cluster.finish(start, problems, roles).await,
                _ = tokio::time::sleep(Duration::from_millis(ms)) => {}
            }
        }
        let after = cluster.coverage.counts();
        problems.extend(super::calm::judge(&settling, &before, &after));
        if let Some(md) = super::checks::settled_metadata(&cluster, &sc) {
            problems.extend(super::calm::unbalanced(&md, sc.leader_rebalance_ms));
        }
    }
    // Every node's disk holds what it runs with (the run ended normally: all were restarted at
    // the heal, so none is down after a power loss; a broker whose disk took a flipped bit and
    // that was never restarted since is not asked: `SimDisk::image_under_node`).
    let now = (cluster.clock)();
    problems.extend(
        cluster
            .nodes
            .values()
            .filter_map(|n| super::disk_check::disk_matches_memory(n, now, "end of the run")),
    );
    cluster.finish(start, problems, roles).await
}

/// How waiting for convergence ended.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Converged {
    Yes,
    /// Not in the time given: a `liveness` problem is noted.
    TimedOut,
    /// A node broke an invariant meanwhile: the run ends there (and that is its problem, not
    /// the wait it cut short).
    Broken,
}

/// Whether a wait not converged by its deadline goes on while replicas catch up.
#[derive(Clone, Copy, PartialEq, Eq)]
enum CatchUp {
    No,
    /// A follower that fell far behind during the faults, fetching a few records per answer
    /// (`replica_fetch_records`) with a slow fsync each time, can need longer than the phase
    /// allows while it keeps moving: the wait goes on as long as some broker's log of the
    /// workload's topic grew within the last `CATCH_UP_STALL_MS`, up to `CATCH_UP_MAX_MS`
    /// beyond the deadline. A replica that stops moving, or one that never arrives, still
    /// fails, and the problem says which limit ended the wait.
    WhileMoving,
}

const CATCH_UP_STALL_MS: u64 = 2_000;
const CATCH_UP_MAX_MS: u64 = 60_000;

impl Cluster {
    /// Waits, looking every 250 ms, until the cluster has converged (`not_converged`) or
    /// `deadline` passes (with `CatchUp::WhileMoving`, possibly later); `waited` says how long
    /// it was given, for the problem line.
    async fn converge(
        &self,
        sc: &Scenario,
        deadline: Instant,
        catch_up: CatchUp,
        problems: &mut Vec<String>,
        waited: impl Fn() -> String,
    ) -> Converged {
        let until = deadline + Duration::from_millis(CATCH_UP_MAX_MS);
        // From the deadline on, with a catch-up: the topic's log ends, and when one last grew.
        let mut moving: Option<(BTreeMap<_, _>, Instant)> = None;
        loop {
            tokio::select! {
                biased;
                _ = self.broken.notified() => return Converged::Broken,
                _ = tokio::time::sleep(Duration::from_millis(250)) => {}
            }
            let Some(why) = not_converged(self, sc) else {
                return Converged::Yes;
            };
            let now = Instant::now();
            if now < deadline {
                continue;
            }
            if catch_up == CatchUp::No {
                problems.push(format!("liveness: not converged {}: {why}", waited()));
                return Converged::TimedOut;
            }
            let ends = super::checks::data_log_ends(self, sc);
            let Some((was, moved_at)) = &mut moving else {
                moving = Some((ends, now));
                continue;
            };
            if ends.iter().any(|(k, e)| was.get(k).is_none_or(|w| e > w)) {
                *moved_at = now;
            }
            *was = ends;
            let stalled = now >= *moved_at + Duration::from_millis(CATCH_UP_STALL_MS);
            if stalled || now >= until {
                let after = (now - deadline).as_millis();
                problems.push(format!(
                    "liveness: not converged {}, nor {after} ms later ({}): {why}",
                    waited(),
                    if stalled {
                        "no replica of the topic had moved for 2 s"
                    } else {
                        "the most a catch-up is given"
                    }
                ));
                return Converged::TimedOut;
            }
        }
    }

    /// Ends a run, at the end of its liveness phase or where a node broke an invariant (then
    /// the violation is among the node failures, and the history so far is still checked).
    async fn finish(
        &self,
        start: Instant,
        mut problems: Vec<String>,
        roles: EpisodeRoles,
    ) -> Simulated {
        problems.extend(lock(&self.failures).iter().cloned());
        problems.extend(super::checks::created_topics(self));
        let sim_ms = start.elapsed().as_millis() as u64;
        // Taken, not copied: what nodes report from here on is not checked either way.
        let observed = std::mem::take(&mut *lock(&self.history));
        self.shut_down().await;
        (sim_ms, observed, problems, roles, self.coverage.counts())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::ScenarioOptions;

    /// Loss is excused only in a run with unclean election on, and only once an unclean election
    /// or a power loss that dropped committed records has happened in it.
    #[test]
    fn only_a_lossy_run_that_lost_is_excused() {
        let mut sc = Scenario::from_seed(0, &ScenarioOptions::default());
        let reached = |s: Situation| BTreeMap::from([(s, 1)]);
        let nothing = BTreeMap::new();
        sc.unclean_leader_election = false;
        assert!(!gave_up_durability(
            &sc,
            &reached(Situation::UncleanElection)
        ));
        sc.unclean_leader_election = true;
        assert!(!gave_up_durability(&sc, &nothing));
        assert!(!gave_up_durability(&sc, &reached(Situation::CrcCut)));
        assert!(gave_up_durability(
            &sc,
            &reached(Situation::UncleanElection)
        ));
        assert!(gave_up_durability(
            &sc,
            &reached(Situation::PowerLossDroppedCommitted)
        ));
    }
}
