//! A replication-model counterexample as a simulator scenario (`check ... --export-schedule
//! FILE`, replayed by `cargo sim replay --schedule FILE`).
//!
//! The model's steps are deliveries, timer firings, crashes and restarts in an order of the
//! checker's choosing; the simulator's network is timed. The translation gives step `k` a time
//! `T(k)` (`BASE_MS`, then `GAP_MS` apart, more before a session expiry or a lag eviction, which
//! need simulated time to pass) and forces the order with the simulator's fault vocabulary:
//!
//! * broker-to-broker and producer-to-broker links are held (`hold`: messages wait at the
//!   receiver's door) from the start, and each is released (`release`) for a moment just before
//!   `T(d)` for every step `d` that delivers a message on it: what the simulated node sent on
//!   that link meanwhile arrives then, in order (a follower's long-poll answered early waits
//!   there too);
//! * broker-controller links carry heartbeats the model does not have, so they stay open, and
//!   are held only while the model holds a message on them (sent at step `s`, delivered at
//!   `d > s + 1`, or never) and, before a session expiry of broker `b`, from the step before it
//!   until `b` next reaches the controller in the path (sessions last 2 s there);
//! * a crash is a `kill` at `T(k)`, or a `power-loss` losing every unsynced write if the model's
//!   restart chose "power loss"; the restart is a `restart` at its step's time. A broker whose
//!   sync is still outstanding when it crashes has a stalled disk (`slow-disk`) from the step
//!   that started the sync, so that the simulated sync cannot complete first;
//! * the producer's links are held from the start until just before its first delivery (then
//!   it gets the metadata and the producer id the model presets); the reader is left out (the
//!   simulator's final reader reads everything after the heal).
//!
//! What a timed network cannot force is reported as a warning in the file (and printed by both
//! commands), never dropped silently: above all, opening a link releases everything it holds,
//! so a path that delivers a later message on a link while holding an earlier one back cannot
//! be reproduced as such.

use crate::actor::{ActorTimer, Boot, NodeState};
use crate::check::Action;
use crate::cluster::{ModelKind, ModelOptions, SeedlogModel};
use crate::properties::State;
use crate::render;
use seedlog::node::{Bug, Durability, Timer};
use serde::Serialize;
use serde_json::{json, Value};
use stateright::actor::{ActorModelAction, Network};
use stateright::Path;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// When the path's first step happens: the simulated cluster has elected its controller,
/// registered its brokers and led the partition from broker 0 by then.
pub const BASE_MS: u64 = 4_000;
/// Between two steps.
pub const GAP_MS: u64 = 250;
/// Before a session expiry: the simulator's broker session is 2 s.
const SESSION_GAP_MS: u64 = 3_000;
/// Before a lag eviction: `replica.lag.time.max.ms` is set to `LAG_MS`.
const LAG_GAP_MS: u64 = 3_600;
const LAG_MS: u64 = 3_000;
/// `replica.lag.time.max.ms` when the path evicts nobody: no eviction the model did not make.
const NO_LAG_MS: u64 = 3_600_000;
/// A link is opened this long before the step that delivers on it.
const OPEN_BEFORE_MS: u64 = 30;
/// ... and closed again this long before the step.
const CLOSE_BEFORE_MS: u64 = 5;
/// The producer is let go this long before its first delivery (metadata, producer id).
const PRODUCER_SETUP_MS: u64 = 200;
/// Brokers other than 0 reach the controller only after this: broker 0 registers first and
/// leads (the controller is elected within about 1 s).
const REGISTER_FIRST_MS: u64 = 1_500;
/// After the last step, before the heal.
const SETTLE_MS: u64 = 3_000;
/// OS writeback in the exported run: never (the model's power loss loses every unsynced write).
const NO_WRITEBACK_MS: u64 = 3_600_000;
/// Added to a sync the path keeps outstanding until its broker crashes: it never completes.
const STALLED_SYNC_MS: u64 = 3_600_000;

/// Simulator node ids (`sims::scenario`).
const SIM_CONTROLLER: u32 = 100;
const SIM_PRODUCER: u32 = 200;

/// The scenario, as the simulator reads it (`sims::scenario::Scenario`).
#[derive(Serialize)]
pub struct SimScenario {
    pub seed: u64,
    pub brokers: u32,
    pub controllers: u32,
    pub partitions: u32,
    pub replication: usize,
    pub min_insync_replicas: usize,
    pub durability: Durability,
    pub producers: Vec<SimProducer>,
    pub readers: u32,
    pub members: u32,
    pub process_ms: u64,
    pub fault_ms: u64,
    pub liveness_ms: u64,
    pub bugs: Vec<Bug>,
    pub sync_latency_ms: (u64, u64),
    pub replica_lag_time_max_ms: u64,
    pub fetch_max_wait_ms: u64,
    pub fetch_timeout_ms: u64,
    pub writeback_ms: u64,
    pub mix: Value,
    pub schedule: SimSchedule,
    pub from_model: Origin,
}

#[derive(Serialize)]
pub struct SimProducer {
    pub acks: seedlog::protocol::Acks,
    pub records: usize,
    pub interval_ms: u64,
    pub keys: u32,
    pub max_in_flight: usize,
    pub batch_size_bytes: u64,
    pub linger_ms: Option<u64>,
    pub delivery_timeout_ms: u64,
    pub metadata_max_age_ms: Option<u64>,
    pub request_timeout_ms: u64,
}

#[derive(Serialize)]
pub struct SimSchedule {
    pub events: Vec<Value>,
}

/// Where the scenario came from, and what the replay should find.
#[derive(Serialize)]
pub struct Origin {
    /// The model checker's command line (its options and bug switches).
    pub command: String,
    /// The property the path violates.
    pub property: String,
    /// The simulator's problems that count as the same violation (README, *Model
    /// counterexamples in the simulator*).
    pub expect: Vec<String>,
    /// The path's steps with the simulated time given to each.
    pub steps: Vec<String>,
    /// What the translation could not force.
    pub warnings: Vec<String>,
}

/// The simulator's problems that stand for a model property. Empty: the simulator has no check
/// that sees it.
pub fn expected_problems(property: &str) -> Vec<&'static str> {
    match property {
        "acked-not-lost" => vec!["lost-write", "unseen", "inconsistent-offsets"],
        "no-duplicates" => vec!["duplicate", "inconsistent-offsets"],
        "acked-in-order" => vec!["nonmonotonic-send", "per-key-order"],
        // The simulator runs the cross-node checks after every broker step, as the node's own.
        "node-invariant"
        | "isr-known-to-leader"
        | "isr-member-holds-hw"
        | "progress-held-by-follower" => vec!["node-invariant"],
        // Two replicas disagreeing at an offset: a read sees both, or they never converge.
        "log-matching" => vec!["inconsistent-offsets", "liveness", "node-invariant"],
        "consumed-stable" => vec!["inconsistent-offsets", "lost-write", "unseen"],
        // The simulator reads a node's disk beside its memory before each crash and at the end.
        "disk-matches-memory" => vec!["disk-matches-memory"],
        _ => Vec::new(),
    }
}

/// The kind of a link: closed-world links are stalled except when the path delivers on them.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum LinkKind {
    Data,
    Control,
}

/// One message of the path: sent at step `sent` (0: in the initial network), delivered at step
/// `delivered` (`None`: still in flight at the end).
#[derive(Clone, Copy, Debug)]
struct Flight {
    sent: usize,
    delivered: Option<usize>,
}

type Link = (usize, usize);

fn channels(s: &State) -> BTreeMap<Link, usize> {
    match &s.network {
        Network::Ordered(ch) => ch
            .iter()
            .map(|((a, b), q)| ((usize::from(*a), usize::from(*b)), q.len()))
            .collect(),
        _ => BTreeMap::new(),
    }
}

fn is_broker(cfg: &crate::cluster::ModelCfg, a: usize) -> bool {
    a < cfg.brokers
}

/// The simulator's id of a model actor (`None`: the reader, which is left out).
fn sim_id(cfg: &crate::cluster::ModelCfg, a: usize) -> Option<u32> {
    if a < cfg.brokers {
        Some(a as u32)
    } else if a == cfg.controller {
        Some(SIM_CONTROLLER)
    } else if Some(a) == cfg.producer {
        Some(SIM_PRODUCER)
    } else {
        None
    }
}

/// Builds the scenario of `path`, a counterexample of `property` found with `opts`.
pub fn export(
    opts: &ModelOptions,
    command: &str,
    model: &SeedlogModel,
    path: &Path<State, Action>,
    property: &str,
) -> Result<SimScenario, String> {
    if opts.kind != ModelKind::Replication {
        return Err(format!(
            "--export-schedule supports the replication model only (this is {}): the simulator's \
             workload has no counterpart of the {} model's fixed layout",
            opts.kind.name(),
            opts.kind.name()
        ));
    }
    if opts.controllers > 1 {
        return Err(
            "--export-schedule supports the single controller only: a controller quorum's \
             votes and election timeouts are not translated"
                .into(),
        );
    }
    if opts.retentions > 0 {
        return Err(
            "--export-schedule does not translate retention steps (the model deletes at any moment, \
             the simulator by age or size)"
                .into(),
        );
    }
    let cfg = &model.cfg;
    let steps = path.clone().into_vec();
    let states: Vec<&State> = steps.iter().map(|(s, _)| s).collect();
    let actions: Vec<&Action> = steps.iter().filter_map(|(_, a)| a.as_ref()).collect();
    let n = actions.len();
    let mut warnings = Vec::new();
    let expect = expected_problems(property);
    if expect.is_empty() {
        warnings.push(format!(
            "property {property}: the simulator has no check that sees it; the replay can only \
             show what follows from it"
        ));
    }

    // Times.
    let mut t = vec![BASE_MS; n + 1];
    let mut evicts = false;
    for (k, a) in actions.iter().enumerate() {
        let gap = match a {
            ActorModelAction::Timeout(_, t) => match t.as_node() {
                Some(Timer::SessionExpiry(_)) => SESSION_GAP_MS,
                Some(Timer::FollowerLag { .. }) => {
                    evicts = true;
                    LAG_GAP_MS
                }
                _ => GAP_MS,
            },
            _ => GAP_MS,
        };
        t[k + 1] = t[k] + gap;
    }
    let end = t[n] + SETTLE_MS;

    // Messages: who sent what when, and when it was delivered (channels are FIFO).
    let mut queues: BTreeMap<Link, VecDeque<usize>> = BTreeMap::new();
    for (l, len) in channels(states[0]) {
        queues
            .entry(l)
            .or_default()
            .extend(std::iter::repeat_n(0, len));
    }
    let mut flights: BTreeMap<Link, Vec<Flight>> = BTreeMap::new();
    for (i, a) in actions.iter().enumerate() {
        let k = i + 1;
        let popped: Option<Link> = match a {
            ActorModelAction::Deliver { src, dst, .. } => {
                Some((usize::from(*src), usize::from(*dst)))
            }
            ActorModelAction::Drop(env) => {
                warnings.push(format!(
                    "step {k}: a lost message is a message never delivered (its link stays stalled)"
                ));
                Some((usize::from(env.src), usize::from(env.dst)))
            }
            _ => None,
        };
        if let Some(l) = popped {
            let sent = queues.entry(l).or_default().pop_front().unwrap_or(0);
            let delivered = matches!(a, ActorModelAction::Deliver { .. }).then_some(k);
            flights
                .entry(l)
                .or_default()
                .push(Flight { sent, delivered });
        }
        let (pre, post) = (channels(states[i]), channels(states[k]));
        let links: BTreeSet<Link> = pre.keys().chain(post.keys()).copied().collect();
        for l in links {
            let before = pre.get(&l).copied().unwrap_or(0) - usize::from(popped == Some(l));
            let after = post.get(&l).copied().unwrap_or(0);
            let q = queues.entry(l).or_default();
            if after >= before {
                q.extend(std::iter::repeat_n(k, after - before));
            } else {
                for _ in 0..before - after {
                    let sent = q.pop_front().unwrap_or(0);
                    flights.entry(l).or_default().push(Flight {
                        sent,
                        delivered: None,
                    });
                }
            }
        }
    }
    for (l, q) in queues {
        for sent in q {
            flights.entry(l).or_default().push(Flight {
                sent,
                delivered: None,
            });
        }
    }

    // When each step's effect can first happen in the simulation: a delivery on a stalled link
    // when the link opens, one on an open link as soon as it was sent, a fault at its time.
    let kind_of = |(a, b): Link| {
        if (is_broker(cfg, a) || Some(a) == cfg.producer)
            && (is_broker(cfg, b) || Some(b) == cfg.producer)
        {
            LinkKind::Data
        } else {
            LinkKind::Control
        }
    };
    let mut delivered_at: BTreeMap<usize, (Link, usize)> = BTreeMap::new();
    for (l, fs) in &flights {
        for f in fs {
            if let Some(d) = f.delivered {
                delivered_at.insert(d, (*l, f.sent));
            }
        }
    }
    let mut est = vec![BASE_MS; n + 1];
    for k in 1..=n {
        est[k] = match (actions[k - 1], delivered_at.get(&k)) {
            (ActorModelAction::Deliver { .. }, Some((l, sent)))
                if kind_of(*l) == LinkKind::Control && *sent + 1 == k =>
            {
                est[*sent]
            }
            (ActorModelAction::Deliver { .. }, _) => t[k] - OPEN_BEFORE_MS,
            (ActorModelAction::Timeout(_, ActorTimer::Node(_)), _) => t[k - 1] + 10,
            (ActorModelAction::Timeout(_, ActorTimer::SyncDone), _) => est[k - 1],
            _ => t[k],
        };
    }

    let mut events: Vec<(u64, Value)> = Vec::new();
    let mut ev = |at: u64, v: Value| events.push((at, v));

    // Crashes and restarts.
    for (i, a) in actions.iter().enumerate() {
        let k = i + 1;
        match a {
            ActorModelAction::Crash(id) => {
                let who = usize::from(*id);
                let Some(node) = sim_id(cfg, who) else {
                    warnings.push(format!(
                        "step {k}: the reader does not run in the simulation"
                    ));
                    continue;
                };
                // The restart's choice, if it had one.
                let lost = actions[k..]
                    .iter()
                    .take_while(|b| !matches!(b, ActorModelAction::Crash(x) if x == id))
                    .any(|b| {
                        matches!(b, ActorModelAction::SelectRandom { actor, random: Boot::UnsyncedLost, .. } if actor == id)
                    });
                if lost {
                    ev(
                        t[k],
                        json!({"fault": "power-loss", "node": node, "mode": {"lose": "all-pending"}}),
                    );
                } else {
                    ev(t[k], json!({"fault": "kill", "node": node}));
                }
                // A sync outstanding at the crash must not complete first in the simulation.
                if is_broker(cfg, who) {
                    if let Some(w) = sync_started(states.as_slice(), who, k) {
                        let from = if w == 0 { BASE_MS } else { t[w - 1] + 5 };
                        ev(
                            from,
                            json!({"fault": "slow-disk", "node": node, "extra_ms": STALLED_SYNC_MS}),
                        );
                        ev(t[k] + 1, json!({"fault": "disk-normal", "node": node}));
                    }
                }
            }
            ActorModelAction::Recover(id) => {
                if let Some(node) = sim_id(cfg, usize::from(*id)) {
                    ev(t[k], json!({"fault": "restart", "node": node}));
                }
            }
            ActorModelAction::Timeout(_, ActorTimer::Node(timer)) => match &**timer {
                Timer::SessionExpiry(_) | Timer::FollowerLag { .. } => {}
                other => warnings.push(format!(
                    "step {k}: {} fires {other:?}, which the translation does not force; the \
                     simulated node's timer fires on its own schedule",
                    render::action(model, a)
                        .split(':')
                        .next()
                        .unwrap_or("a node"),
                )),
            },
            _ => {}
        }
    }

    // Links: stalled intervals and open windows.
    let producer_first = cfg.producer.and_then(|p| {
        (1..=n).find(|&k| matches!(actions[k - 1], ActorModelAction::Deliver { src, .. } if usize::from(*src) == p))
    });
    let mut links: BTreeSet<Link> = flights.keys().copied().collect();
    for a in 0..cfg.brokers {
        for b in 0..cfg.brokers {
            if a != b {
                links.insert((a, b));
            }
        }
        if let Some(p) = cfg.producer {
            links.insert((a, p));
            links.insert((p, a));
        }
        links.insert((a, cfg.controller));
        links.insert((cfg.controller, a));
    }
    for l in links {
        let (Some(from), Some(to)) = (sim_id(cfg, l.0), sim_id(cfg, l.1)) else {
            continue;
        };
        let kind = kind_of(l);
        let fs = flights.get(&l).cloned().unwrap_or_default();
        let mut windows: Vec<(u64, u64)> = fs
            .iter()
            .filter_map(|f| f.delivered)
            .map(|d| (t[d] - OPEN_BEFORE_MS, t[d] - CLOSE_BEFORE_MS))
            .collect();
        if let Some(k) = producer_first {
            if Some(l.0) == cfg.producer || Some(l.1) == cfg.producer {
                windows.push((t[k] - PRODUCER_SETUP_MS, t[k] - CLOSE_BEFORE_MS));
            }
        }
        let mut holds: Vec<(u64, u64, String)> = Vec::new();
        if kind == LinkKind::Control {
            for f in &fs {
                let late = match f.delivered {
                    None => true,
                    Some(d) => d > f.sent + 1,
                };
                if !late {
                    continue;
                }
                let from_t = if f.sent == 0 {
                    BASE_MS
                } else {
                    est[f.sent].saturating_sub(2)
                };
                let until = f.delivered.map_or(end, |d| t[d] - OPEN_BEFORE_MS);
                holds.push((
                    from_t,
                    until,
                    format!(
                        "the message sent at step {} and {}",
                        f.sent,
                        f.delivered.map_or("never delivered".into(), |d| format!(
                            "delivered at step {d}"
                        ))
                    ),
                ));
            }
            // Session expiries: the broker's heartbeats stop from the step before.
            for (i, a) in actions.iter().enumerate() {
                let k = i + 1;
                let expiry = match a {
                    ActorModelAction::Timeout(c, t) => match t.as_node() {
                        Some(Timer::SessionExpiry(b)) => Some((c, b)),
                        _ => None,
                    },
                    _ => None,
                };
                if let Some((c, b)) = expiry {
                    if usize::from(*c) == l.1 && *b as usize == l.0 {
                        let next = fs
                            .iter()
                            .filter_map(|f| f.delivered)
                            .find(|&d| d > k)
                            .map_or(end, |d| t[d] - OPEN_BEFORE_MS);
                        holds.push((
                            t[k - 1] + 10,
                            next,
                            format!("the session expiry at step {k}"),
                        ));
                    }
                }
            }
        }
        // A hold that lasts past the session timeout expires a session the model did not.
        for (a, b, why) in &holds {
            if l.1 == cfg.controller
                && b - a > 1_800
                && !why.starts_with("the session expiry")
                // (An expiry's hold starts just after the step before it; a message sent by the
                // expiry is held from a few ms earlier.)
                && !holds.iter().any(|(x, y, w)| {
                    w.starts_with("the session expiry") && *x <= a + GAP_MS && y >= b
                })
            {
                warnings.push(format!(
                    "link {}->{}: held for {} ms for {why}; the simulated controller expires the \
                     broker's session after 2 s of silence, which the model's path does not",
                    sim_name(from),
                    sim_name(to),
                    b - a
                ));
            }
        }
        // Opening a link releases everything it holds (FIFO): a message the path keeps back
        // while a later step delivers an earlier one on the same link cannot stay behind.
        for e in fs.iter().filter_map(|g| g.delivered) {
            for f in &fs {
                let kept_past = match f.delivered {
                    None => true,
                    Some(d) => d > e + 1,
                };
                if f.sent < e && kept_past {
                    warnings.push(format!(
                        "link {}->{}: step {e} delivers a message while the one sent at step {} \
                         {}; opening the simulated link at step {e} releases both",
                        sim_name(from),
                        sim_name(to),
                        f.sent,
                        match f.delivered {
                            None => "is never delivered".to_string(),
                            Some(d) => format!("waits until step {d}"),
                        }
                    ));
                }
            }
        }
        // Data links are held from the start: a follower's first fetch then waits at the
        // leader's door, in flight as in the model's first state (had it arrived during the
        // warm-up, the leader would hold it parked and answer it at the first append, whatever
        // the path delivers first); the producer asks for metadata and a producer id (which the
        // model presets) in its setup window.
        emit_link(&mut ev, from, to, kind, &windows, &holds, end);
    }

    // The model starts with broker 0 leading; the simulated controller makes the first broker
    // to register the leader, so the others reach it only once broker 0 has.
    for b in 1..cfg.brokers as u32 {
        ev(0, json!({"fault": "hold", "from": b, "to": SIM_CONTROLLER}));
        ev(
            REGISTER_FIRST_MS,
            json!({"fault": "release", "from": b, "to": SIM_CONTROLLER}),
        );
    }

    if cfg.reader.is_some() {
        let reads = actions.iter().any(|a| {
            matches!(a, ActorModelAction::Deliver { src, dst, .. }
                if Some(usize::from(*src)) == cfg.reader || Some(usize::from(*dst)) == cfg.reader)
        });
        if reads && matches!(property, "consumed-stable" | "hw-monotonic") {
            warnings.push(format!(
                "property {property} rests on the model's reader, which the export leaves out"
            ));
        }
    }

    events.sort_by_key(|(at, _)| *at);
    let events = events
        .into_iter()
        .map(|(at, mut v)| {
            v["at_ms"] = json!(at);
            v
        })
        .collect();
    let steps_text = actions
        .iter()
        .enumerate()
        .map(|(i, a)| {
            format!(
                "{:>3}. at {:>6} ms: {}",
                i + 1,
                t[i + 1],
                render::action(model, a)
            )
        })
        .collect();
    let mut dedup = BTreeSet::new();
    warnings.retain(|w| dedup.insert(w.clone()));
    Ok(SimScenario {
        seed: 0,
        brokers: cfg.brokers as u32,
        controllers: 1,
        partitions: 1,
        replication: cfg.brokers,
        min_insync_replicas: opts.min_insync_replicas,
        durability: opts.durability,
        producers: vec![SimProducer {
            acks: seedlog::protocol::Acks::All,
            records: cfg.records.len(),
            interval_ms: 1,
            keys: 1,
            max_in_flight: opts.max_in_flight,
            batch_size_bytes: 1,
            linger_ms: None,
            delivery_timeout_ms: 120_000,
            metadata_max_age_ms: None,
            request_timeout_ms: end,
        }],
        readers: 0,
        members: 0,
        process_ms: 1,
        fault_ms: end,
        liveness_ms: 60_000,
        bugs: opts.bugs.clone(),
        sync_latency_ms: (0, 1),
        replica_lag_time_max_ms: if evicts { LAG_MS } else { NO_LAG_MS },
        // The model's leader parks a fetch until it has something to send, and neither its
        // followers nor its producer time a request out: here they do only after the heal (a
        // request lost in a crash must be sent again for the run to converge).
        fetch_max_wait_ms: end,
        fetch_timeout_ms: end + 1_000,
        writeback_ms: NO_WRITEBACK_MS,
        mix: json!({"kinds": [], "mean_gap_ms": 0}),
        schedule: SimSchedule { events },
        from_model: Origin {
            command: command.to_string(),
            property: property.to_string(),
            expect: expect.iter().map(|s| s.to_string()).collect(),
            steps: steps_text,
            warnings,
        },
    })
}

fn sim_name(id: u32) -> String {
    match id {
        SIM_CONTROLLER => "ctl0".into(),
        SIM_PRODUCER => "p0".into(),
        b => format!("b{b}"),
    }
}

/// The step whose state first had the sync `broker` still has outstanding before step `crash`.
fn sync_started(states: &[&State], broker: usize, crash: usize) -> Option<usize> {
    let outstanding = |s: &State| {
        matches!(
            &*s.actor_states[broker],
            NodeState::Running {
                syncing: Some(_),
                ..
            }
        )
    };
    if !outstanding(states[crash - 1]) {
        return None;
    }
    let mut w = crash - 1;
    while w > 0 && outstanding(states[w - 1]) {
        w -= 1;
    }
    Some(w)
}

/// The link's faults: a data link is held from the start except in its windows; a control link
/// is open except in its holds (windows win over holds).
fn emit_link(
    ev: &mut impl FnMut(u64, Value),
    from: u32,
    to: u32,
    kind: LinkKind,
    windows: &[(u64, u64)],
    holds: &[(u64, u64, String)],
    end: u64,
) {
    let mut cuts: BTreeSet<u64> = BTreeSet::from([0, BASE_MS]);
    for &(a, b) in windows {
        cuts.insert(a);
        cuts.insert(b);
    }
    for (a, b, _) in holds {
        cuts.insert(*a);
        cuts.insert(*b);
    }
    let stalled = |at: u64| {
        if windows.iter().any(|&(a, b)| a <= at && at < b) {
            return false;
        }
        match kind {
            LinkKind::Data => true,
            LinkKind::Control => holds.iter().any(|(a, b, _)| *a <= at && at < *b),
        }
    };
    let mut now = false;
    for at in cuts.into_iter().filter(|&at| at < end) {
        let s = stalled(at);
        if s != now {
            let fault = if s { "hold" } else { "release" };
            ev(at, json!({"fault": fault, "from": from, "to": to}));
            now = s;
        }
    }
}
