//! Runs a model to completion (or to the first violation) and summarises what it found.

use crate::cluster::{build, ModelOptions, SeedlogModel};
use crate::properties::State;
use crate::reduce::Reduced;
use crate::render;
use stateright::actor::ActorModelAction;
use stateright::{Checker, Chooser, Expectation, HasDiscoveries, Model, Path};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub type Action = ActorModelAction<crate::actor::Msg, crate::actor::ActorTimer, crate::actor::Boot>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Search {
    Bfs,
    Dfs,
    /// Random walks from the initial state (stateright's simulation checker), seeded. Not
    /// exhaustive: for counterexamples too deep for BFS or DFS to reach in minutes. A walk ends
    /// at a state outside the bounds, a state it already visited, or a state with no successor.
    Random {
        seed: u64,
    },
}

#[derive(Clone, Debug)]
pub struct RunOptions {
    pub threads: usize,
    pub max_depth: Option<usize>,
    pub search: Search,
    /// Stop after this many states (required in practice for random walks, which never finish).
    pub max_states: Option<usize>,
    /// Quorum model, depth-first search: remember one state per class of states equal up to
    /// renaming the voters (`crate::symmetry`).
    pub symmetry: bool,
}

impl RunOptions {
    /// One thread, breadth first, no bounds: the whole space, and the shortest counterexample,
    /// found the same way on every run.
    pub fn exhaustive_bfs() -> RunOptions {
        RunOptions {
            threads: 1,
            max_depth: None,
            search: Search::Bfs,
            max_states: None,
            symmetry: false,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Violation {
    pub property: &'static str,
    pub depth: usize,
    pub trace: String,
    /// The path itself (for `crate::export`).
    pub path: Path<State, Action>,
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
    /// Whether the whole bounded space was explored (false for random walks and early stops).
    pub exhaustive: bool,
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
    let model = Reduced(build(opts));
    let mut builder = model
        .checker()
        .threads(run.threads.max(1))
        .finish_when(HasDiscoveries::AnyFailures);
    if let Some(d) = run.max_depth {
        builder = builder.target_max_depth(d);
    }
    if let Some(n) = run.max_states {
        builder = builder.target_state_count(n);
    }
    if run.symmetry {
        assert_eq!(
            opts.kind,
            crate::cluster::ModelKind::Quorum,
            "symmetry: quorum only"
        );
        builder = builder.symmetry_fn(crate::symmetry::representative);
    }
    let name = opts.kind.name();
    let mut out = match run.search {
        Search::Bfs => finish(name, builder.spawn_bfs(), progress, false),
        Search::Dfs => finish(name, builder.spawn_dfs(), progress, false),
        Search::Random { seed } => finish(
            name,
            builder.spawn_simulation(seed, InBounds(Arc::new(build(opts)))),
            progress,
            true,
        ),
    };
    let bounded = run.max_depth.is_some()
        || run
            .max_states
            .is_some_and(|n| out.states >= n || out.unique_states >= n);
    out.exhaustive &= !bounded && out.violation.is_none();
    out
}

fn finish<C>(
    name: &'static str,
    checker: C,
    mut progress: impl FnMut(Progress),
    random: bool,
) -> Outcome
where
    C: Checker<Reduced>,
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
                // A random walk wanders; cut it down to the steps the violation needs.
                let path = if random {
                    shrink(model, p.condition, path)
                } else {
                    path
                };
                let depth = path.clone().into_actions().len();
                violation = Some(Violation {
                    property: p.name,
                    depth,
                    trace: render::path(&model.0, path.clone()),
                    path,
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
        exhaustive: !random,
        violation,
        reached,
        unreached,
    }
}

/// Chooses each step of a random walk among the actions that lead somewhere within the model's
/// bounds. (Stateright's uniform chooser also picks steps past a bound — a second expiry, a
/// client crash — which end the walk.) Faults (crashes, session expiries, lag evictions) are
/// always enabled, so a uniform pick spends the whole fault budget in the first few steps, before
/// anything worth breaking has happened; a fault is picked only one time in `FAULT_ODDS`.
/// Its random numbers are splitmix64, so a seed gives the same walks on every build.
#[derive(Clone)]
struct InBounds(Arc<SeedlogModel>);

const FAULT_ODDS: u64 = 12;

fn is_fault(a: &Action) -> bool {
    use seedlog::node::Timer;
    match a {
        ActorModelAction::Crash(_) => true,
        ActorModelAction::Timeout(_, t) => matches!(
            t.as_node(),
            Some(Timer::SessionExpiry(_) | Timer::FollowerLag { .. })
        ),
        _ => false,
    }
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Per walk: the random stream, and the walk's own seed, from which it derives which message
/// channels are slow in this walk.
pub struct WalkState {
    rng: u64,
    walk: u64,
}

impl InBounds {
    /// Swarm testing: in each walk about one channel (source, destination) in three is slow, its
    /// messages picked one eighth as often as others. Deep counterexamples usually need some
    /// message to stay in flight while many other steps happen (a commit's high watermark not yet
    /// at the next leader, say); uniform picks almost never hold one back that long.
    fn weight(walk: u64, a: &Action) -> u64 {
        match a {
            ActorModelAction::Deliver { src, dst, .. } => {
                let mut h = walk ^ ((usize::from(*src) as u64) << 32) ^ usize::from(*dst) as u64;
                if splitmix64(&mut h) < u64::MAX / 3 {
                    1
                } else {
                    8
                }
            }
            _ => 8,
        }
    }
}

impl Chooser<Reduced> for InBounds {
    type State = WalkState;

    fn new_state(&self, seed: u64) -> WalkState {
        WalkState {
            rng: seed,
            walk: seed,
        }
    }

    fn choose_initial_state(&self, _: &mut WalkState, _: &[State]) -> usize {
        0
    }

    fn choose_action(&self, w: &mut WalkState, state: &State, actions: &[Action]) -> usize {
        let m: &SeedlogModel = &self.0;
        let next: Vec<Option<State>> = actions
            .iter()
            .map(|a| m.next_state(state, a.clone()))
            .collect();
        let inside: Vec<usize> = (0..actions.len())
            .filter(|&i| next[i].as_ref().is_some_and(|s| m.within_boundary(s)))
            .collect();
        // Never pick an action without a successor: the checker would then retry on a reordered
        // list, and the path it records would no longer replay.
        let pool: Vec<usize> = if inside.is_empty() {
            (0..actions.len()).filter(|&i| next[i].is_some()).collect()
        } else {
            inside
        };
        let (faults, steps): (Vec<usize>, Vec<usize>) =
            pool.iter().partition(|&&i| is_fault(&actions[i]));
        let pool = match (faults.is_empty(), steps.is_empty()) {
            (false, false) if splitmix64(&mut w.rng) < u64::MAX / FAULT_ODDS => faults,
            (false, false) | (true, _) => steps,
            (false, true) => faults,
        };
        let total: u64 = pool
            .iter()
            .map(|&i| Self::weight(w.walk, &actions[i]))
            .sum();
        if total == 0 {
            return 0;
        }
        let mut pick = splitmix64(&mut w.rng) % total;
        for &i in &pool {
            let weight = Self::weight(w.walk, &actions[i]);
            if pick < weight {
                return i;
            }
            pick -= weight;
        }
        0
    }
}

/// Replays `actions` from the initial state, each of which must be enabled and stay within the
/// bounds, up to the first state that violates `condition`; `None` if no state does.
fn replay(
    model: &Reduced,
    init: &State,
    condition: fn(&Reduced, &State) -> bool,
    actions: &[Action],
) -> Option<Vec<Action>> {
    let mut state = init.clone();
    let mut taken = Vec::new();
    let mut enabled = Vec::new();
    for a in actions {
        if !condition(model, &state) {
            return Some(taken);
        }
        // Any path of the full model is a counterexample, reduced or not: shrinking drops
        // steps the reduction would have forced.
        let full = &model.0;
        enabled.clear();
        full.actions(&state, &mut enabled);
        if !enabled.contains(a) {
            return None;
        }
        state = full.next_state(&state, a.clone())?;
        if !full.within_boundary(&state) {
            return None;
        }
        taken.push(a.clone());
    }
    (!condition(model, &state)).then_some(taken)
}

/// Greedy shrinking: drops single steps while the rest still replays to a violation, until no
/// step can go. The result is a real path of the model (every step enabled where it is taken),
/// so it is still a counterexample, only without the walk's detours.
fn shrink(
    model: &Reduced,
    condition: fn(&Reduced, &State) -> bool,
    path: Path<State, Action>,
) -> Path<State, Action> {
    let init = path.clone().into_states().swap_remove(0);
    let Some(mut best) = replay(model, &init, condition, &path.clone().into_actions()) else {
        return path;
    };
    loop {
        let mut changed = false;
        let mut i = best.len();
        while i > 0 {
            i -= 1;
            let mut candidate = best.clone();
            candidate.remove(i);
            if let Some(shorter) = replay(model, &init, condition, &candidate) {
                best = shorter;
                changed = true;
                i = i.min(best.len());
            }
        }
        if !changed {
            break;
        }
    }
    Path::from_actions(&model.0, init, &best).unwrap_or(path)
}
