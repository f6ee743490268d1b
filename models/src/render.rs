//! Counterexamples as numbered, readable steps followed by the final state of every node.

use crate::actor::{ActorTimer, Boot, NodeActor, NodeState};
use crate::cluster::SeedlogModel;
use crate::properties::State;
use seedlog::node::{AnyNode, Broker, Role, Timer};
use stateright::actor::{ActorModelAction, Id};
use stateright::Path;

type Action = ActorModelAction<crate::actor::Msg, ActorTimer, Boot>;

fn name(model: &SeedlogModel, id: Id) -> String {
    use stateright::actor::Actor;
    let i = usize::from(id);
    model
        .actors
        .get(i)
        .map_or(format!("node {i}"), NodeActor::name)
}

fn timer(t: &ActorTimer) -> String {
    let t = match t {
        ActorTimer::SyncDone => return "the outstanding disk sync completes".into(),
        ActorTimer::Node(t) => &**t,
    };
    match t {
        Timer::SessionExpiry(b) => format!("session of broker {b} expires"),
        Timer::QuorumElection => "election timeout".to_string(),
        Timer::FollowerLag { tp, replica } => format!("{tp}: follower {replica} lags too long"),
        Timer::MemberSession { group, member } => {
            format!("session of member {member} of group {group} expires")
        }
        Timer::GroupRebalance(group) => {
            format!("rebalance of group {group} stops waiting for members")
        }
        other => format!("timer {other:?} fires"),
    }
}

pub fn action(model: &SeedlogModel, a: &Action) -> String {
    match a {
        ActorModelAction::Deliver { src, dst, msg } => {
            format!("{} -> {}: {msg}", name(model, *src), name(model, *dst))
        }
        ActorModelAction::Timeout(id, t) => format!("{}: {}", name(model, *id), timer(t)),
        ActorModelAction::Crash(id) => format!("{} crashes", name(model, *id)),
        ActorModelAction::Recover(id) => format!("{} restarts", name(model, *id)),
        ActorModelAction::SelectRandom { actor, random, .. } => match random {
            Boot::PageCacheKept => format!(
                "{} boots: process crash, page cache survived",
                name(model, *actor)
            ),
            Boot::UnsyncedLost => format!(
                "{} boots: power loss, unsynced writes lost",
                name(model, *actor)
            ),
        },
        ActorModelAction::Drop(env) => format!("message lost: {}", env.msg),
    }
}

fn broker(b: &Broker) -> String {
    let mut parts = Vec::new();
    for (tp, r) in b.replicas() {
        let role = match &r.role {
            Role::Leader(l) => format!("leader epoch {} isr={:?}", l.epoch, l.isr),
            Role::Follower(f) => format!("follower of {} epoch {}", f.leader, f.epoch),
            Role::Idle => "idle".to_string(),
        };
        let log: Vec<String> = r.log.entries().iter().map(ToString::to_string).collect();
        parts.push(format!(
            "{tp} {role} hw={} log=[{}]",
            r.log.high_watermark(),
            log.join(", ")
        ));
    }
    for c in b.coordinators().values() {
        for (name, g) in c.groups() {
            let members: Vec<&String> = g.members.keys().collect();
            let offsets: Vec<String> = g
                .offsets
                .iter()
                .map(|(tp, o)| format!("{tp}={o}"))
                .collect();
            parts.push(format!(
                "coordinator of group {name}: generation {} {:?} members={members:?} offsets=[{}]",
                g.generation,
                g.state,
                offsets.join(", ")
            ));
        }
    }
    parts.join("; ")
}

pub fn final_state(model: &SeedlogModel, s: &State) -> String {
    let mut out = String::new();
    for (i, a) in s.actor_states.iter().enumerate() {
        let who = name(model, Id::from(i));
        let what = if s.crashed[i] {
            "crashed".to_string()
        } else {
            match &**a {
                NodeState::Booting(_) => "booting".to_string(),
                NodeState::Running { node, .. } => match node {
                    AnyNode::Broker(b) => broker(b),
                    AnyNode::Controller(c) => {
                        let md = c.metadata();
                        let parts: Vec<String> = md
                            .partitions
                            .iter()
                            .map(|p| {
                                let leader = p.leader.map_or("none".into(), |l| l.to_string());
                                format!(
                                    "{} leader={leader} epoch={} isr={:?}",
                                    p.tp, p.leader_epoch, p.isr
                                )
                            })
                            .collect();
                        format!("v{} {}", md.version, parts.join("; "))
                    }
                    AnyNode::Producer(p) => {
                        format!("{} of {} records done", p.done(), p.config().records.len())
                    }
                    AnyNode::Reader(r) => format!("positions {:?}", r.positions()),
                    AnyNode::Quorum(q) => crate::quorum::render(q),
                    AnyNode::QuorumClient(c) => format!("{} records accepted", c.accepted()),
                    AnyNode::Admin(a) => format!("answered {:?}", a.outcomes()),
                    AnyNode::QuorumController(c) => {
                        let active = c
                            .active_epoch()
                            .map_or(String::new(), |e| format!(" active in epoch {e}"));
                        let md = c.metadata();
                        let quorum = crate::quorum::render(c.quorum());
                        format!("{quorum}{active} metadata v{}", md.version)
                    }
                    AnyNode::Consumer(c) => {
                        let member = c.member().map_or("no member".to_string(), |(m, g)| {
                            format!("member {m} gen {g:?}")
                        });
                        format!(
                            "{member} assigned {:?} positions {:?} processed {}",
                            c.assignment(),
                            c.positions(),
                            c.processed()
                        )
                    }
                },
            }
        };
        out.push_str(&format!("  {who}: {what}\n"));
        if let Some(Err(v)) = a
            .node()
            .filter(|_| !s.crashed[i])
            .map(|n| n.check_invariants())
        {
            out.push_str(&format!("  {who}: BROKEN INVARIANT {v}\n"));
        }
    }
    if model.cfg.kind == crate::cluster::ModelKind::Quorum {
        for (i, d) in s.actor_storages.iter().enumerate() {
            let Some(d) = d.as_ref().filter(|d| !d.applied.is_empty()) else {
                continue;
            };
            let applied: Vec<String> = d.applied.iter().map(|(e, _)| e.to_string()).collect();
            let who = name(model, Id::from(i));
            out.push_str(&format!("  {who} applied: [{}]\n", applied.join(", ")));
        }
        return out;
    }
    let acked: Vec<String> = s
        .history
        .acked
        .iter()
        .map(|(tp, o, i)| format!("{tp}@{o}={}", model.cfg.records[*i]))
        .collect();
    out.push_str(&format!("  acknowledged: [{}]\n", acked.join(", ")));
    let read: Vec<String> = s
        .history
        .read
        .iter()
        .map(|(tp, o, v)| match v {
            Some(v) => format!("{tp}@{o}={}", String::from_utf8_lossy(v)),
            None => format!("{tp}@{o}=(null)"),
        })
        .collect();
    out.push_str(&format!("  read: [{}]\n", read.join(", ")));
    if !model.cfg.consumers.is_empty() {
        let processed: Vec<String> = model
            .cfg
            .consumers
            .iter()
            .filter_map(|&c| Some((c, s.actor_storages[c].as_ref()?)))
            .flat_map(|(c, d)| {
                d.processed
                    .iter()
                    .map(move |(tp, o)| format!("{tp}@{o} by {}", name(model, Id::from(c))))
            })
            .collect();
        out.push_str(&format!("  processed: [{}]\n", processed.join(", ")));
    }
    out
}

/// The whole counterexample: numbered steps, then the final state.
pub fn path(model: &SeedlogModel, path: Path<State, Action>) -> String {
    let steps = path.into_vec();
    let mut out = String::new();
    let mut last = None;
    let mut n = 0;
    for (state, act) in steps {
        if let Some(a) = act {
            n += 1;
            out.push_str(&format!("{n:>3}. {}\n", action(model, &a)));
        }
        last = Some(state);
    }
    if let Some(s) = last {
        out.push_str("final state:\n");
        out.push_str(&final_state(model, &s));
    }
    out
}
