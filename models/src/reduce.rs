//! The model the checker runs: the actor model with partial-order reduction for the clients
//! (`eager`, below), and without the steps the bounds refuse — crashes past the budget
//! (`drop_crashes_out_of_bounds`) and fault timers past theirs (`fault_out_of_bounds`): the
//! same states, built faster.
//!
//! The client reduction:
//!
//! The producer and the reader each keep a single request chain in these models: with their
//! timers off, a client sends one request at its start and at most one more for each answer it
//! gets, and a broker answers a request at most once. So while an answer to a client is in the
//! network, nothing else can reach that client before it. Delivering it touches only the client
//! (and appends one request to the client's channel to a broker, which no other step reads), so
//! it commutes with every other step: every state the full model reaches with the answer still
//! in flight, it also reaches, one delivery later, with the answer delivered. Those intermediate
//! states are where the client's progress multiplies with everything else, and the reduced model
//! skips them: where such a delivery is enabled, it is the only step explored.
//!
//! Nothing is lost for the properties. The delivery changes the history only by adding to it —
//! one more acknowledged or read record, a higher high watermark seen, a regression noted — and
//! every safety property is monotone in the history (more acknowledged or read records can only
//! add violations), as is every `sometimes` property; no other actor's state changes. A violating
//! state of the full model is therefore followed, after the delivery, by a violating state of the
//! reduced one. The reduced step never repeats (afterwards no answer is in flight to that
//! client), so no step is postponed forever. `tests/reduce.rs` checks the single-chain premise
//! over the full default model, and that reduced and full models agree on the default bounds.
//!
//! The rule applies only where the premise is checked on the spot: the client is running with
//! no timer set, and exactly one message in the network involves it, addressed to it.

use crate::actor::{Fault, Msg};
use crate::check::Action;
use crate::cluster::{ModelCfg, ModelKind, SeedlogModel};
use crate::properties::{self, Layout, State};
use stateright::actor::{ActorModelAction, Id, Network};
use stateright::{Model, Path, Property};
use std::cell::RefCell;
use std::collections::HashMap;

/// The actor model with client answers delivered eagerly.
pub struct Reduced(pub SeedlogModel);

impl Layout for Reduced {
    fn cfg(&self) -> &ModelCfg {
        &self.0.cfg
    }
}

/// The one step to explore from `s`, if an answer to a client may go first.
pub fn eager(cfg: &ModelCfg, s: &State, actions: &[Action]) -> Option<usize> {
    // The reader keeps a single chain only over a one-partition topic (it keeps one fetch in
    // flight per partition): the replication model's. No other model has a reader today.
    let reader = cfg.reader.filter(|_| cfg.kind == ModelKind::Replication);
    let clients = cfg.producer.into_iter().chain(reader);
    for c in clients {
        if s.crashed[c] || s.timers_set[c].iter().next().is_some() {
            continue;
        }
        let mut involved = involving(s, c);
        let (Some(only), None) = (involved.next(), involved.next()) else {
            continue;
        };
        if usize::from(only.1) != c {
            continue;
        }
        let found = actions.iter().position(|a| {
            matches!(a, ActorModelAction::Deliver { src, dst, msg }
                if *src == only.0 && *dst == only.1 && msg == only.2)
        });
        if found.is_some() {
            return found;
        }
    }
    None
}

impl Model for Reduced {
    type State = State;
    type Action = Action;

    fn init_states(&self) -> Vec<State> {
        self.0.init_states()
    }

    fn actions(&self, s: &State, actions: &mut Vec<Action>) {
        self.0.actions(s, actions);
        if let Some(i) = eager(&self.0.cfg, s, actions) {
            let a = actions.swap_remove(i);
            actions.clear();
            actions.push(a);
            return;
        }
        drop_crashes_out_of_bounds(&self.0.cfg, s, actions);
    }

    fn next_state(&self, s: &State, a: Action) -> Option<State> {
        if fault_out_of_bounds(&self.0, s, &a) {
            return None;
        }
        self.0.next_state(s, a)
    }

    fn format_action(&self, a: &Action) -> String {
        self.0.format_action(a)
    }

    fn format_step(&self, s: &State, a: Action) -> Option<String> {
        self.0.format_step(s, a)
    }

    fn as_svg(&self, path: Path<State, Action>) -> Option<String> {
        self.0.as_svg(path)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        properties::list::<Reduced>(&self.0.cfg)
            .into_iter()
            .map(|(expectation, name, condition)| Property {
                expectation,
                name,
                condition,
            })
            .collect()
    }

    fn within_boundary(&self, s: &State) -> bool {
        Model::within_boundary(&self.0, s)
    }
}

/// Whether `a` fires a fault timer (`Fault`) whose budget is spent, in a way that counts: its
/// successor is then out of bounds, and the checker would build it (a copy of the whole system
/// state) only to throw it away. Such a step is answered as no successor instead, which the
/// checker treats the same. The node's handler is run to tell whether the firing counts
/// (`NodeActor::firing_counts_a_fault`); only the copy of the system state, its digest and its
/// invariants are saved. In a run with one session expiry allowed, most firings of the
/// controller's session timers came after it was spent.
pub fn fault_out_of_bounds(m: &SeedlogModel, s: &State, a: &Action) -> bool {
    let ActorModelAction::Timeout(id, timer) = a else {
        return false;
    };
    let Some((timer, fault)) = timer.as_node().and_then(|t| Some((t, Fault::of(t)?))) else {
        return false;
    };
    let i = usize::from(*id);
    if properties::faults_so_far(s, fault) < properties::fault_budget(&m.cfg, fault) {
        return false;
    }
    let state = &s.actor_states[i];
    let Some(digest) = state.digest() else {
        return false; // booting: its step does nothing
    };
    // The answer depends on the node's state and the timer alone (not on the bounds: those
    // were read above), and the same node states come back in state after state (the
    // controller's, above all, which changes only when metadata does): remembered per thread,
    // by digest.
    let key = (i, digest, crate::actor::fingerprint(timer));
    COUNTS.with(|counts| {
        if let Some(&counts) = counts.borrow().get(&key) {
            return counts;
        }
        let answer = m.actors[i].firing_counts_a_fault(state, timer);
        let mut counts = counts.borrow_mut();
        if counts.len() >= MAX_REMEMBERED {
            counts.clear();
        }
        counts.insert(key, answer);
        answer
    })
}

/// Answers `fault_out_of_bounds` remembers per thread before it starts afresh (about 40 MB).
const MAX_REMEMBERED: usize = 1 << 20;

/// `fault_out_of_bounds`'s answers by (actor, node state digest, timer digest).
type Remembered = HashMap<(usize, u64, u64), bool, ahash::RandomState>;

thread_local! {
    static COUNTS: RefCell<Remembered> =
        const { RefCell::new(HashMap::with_hasher(ahash::RandomState::with_seeds(1, 2, 3, 4))) };
}

/// Removes the crashes whose successor `within_boundary` would refuse: stateright offers a
/// crash of every running actor while fewer than `--crashes` are down at once, but the models
/// bound crashes over the whole run and never crash the clients. A crash changes only which
/// actors are down (and forgets their timers), so its successor is out of bounds exactly when
/// the actor never crashes or the budget is spent. Not a reduction (the same states, paths and
/// verdicts): the checker would build each such successor, a copy of the whole system state,
/// only to throw it away; in a run with one crash allowed, that was up to six copies a state
/// (`tests/reduce.rs` checks, over whole models, that every crash left out is out of bounds).
pub fn drop_crashes_out_of_bounds(cfg: &ModelCfg, s: &State, actions: &mut Vec<Action>) {
    let spent = properties::crashes_so_far(s) >= cfg.crashes;
    actions.retain(|a| match a {
        ActorModelAction::Crash(id) => !spent && !cfg.never_crash.contains(&usize::from(*id)),
        _ => true,
    });
}

/// The premise of the reduction, as a condition on one state: no client has more than one
/// message in the network (to it or from it). `tests/reduce.rs` checks it over the whole
/// unreduced model.
pub fn single_request_chain(cfg: &ModelCfg, s: &State) -> bool {
    cfg.producer
        .into_iter()
        .chain(cfg.reader)
        .all(|c| involving(s, c).nth(1).is_none())
}

/// The messages in the network from or to actor `c`, as (source, destination, message).
/// (Stateright's `Network::iter_all` never ends on an ordered network: its cursor does not
/// advance. The channels are read directly; the models use ordered networks, and the quorum
/// model optionally an unordered, non-duplicating one.)
fn involving(s: &State, c: usize) -> impl Iterator<Item = (Id, Id, &Msg)> {
    let (channels, unordered) = match &s.network {
        Network::Ordered(channels) => (Some(channels), None),
        Network::UnorderedNonDuplicating(envelopes) => (None, Some(envelopes)),
        Network::UnorderedDuplicating(..) => (None, None),
    };
    let touches = move |src: Id, dst: Id| usize::from(src) == c || usize::from(dst) == c;
    let ordered = channels
        .into_iter()
        .flatten()
        .filter(move |((src, dst), _)| touches(*src, *dst))
        .flat_map(|((src, dst), q)| q.iter().map(move |m| (*src, *dst, m)));
    let unordered = unordered
        .into_iter()
        .flatten()
        .filter(move |(e, _)| touches(e.src, e.dst))
        .flat_map(|(e, &n)| std::iter::repeat_n((e.src, e.dst, &e.msg), n));
    ordered.chain(unordered)
}
