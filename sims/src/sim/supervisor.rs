//! Carries out a fault schedule against the simulated cluster, and heals everything afterwards.
//! Each fault is folded into the trace, so a replay shows it on the timeline.

use super::cluster::{lock, Cluster};
use crate::faults::{Fault, PowerLossMode, Role, RoleRef, Target, TimedFault};
use crate::scenario::{Scenario, CONTROLLER, TOPIC};
use madsim::net::NetSim;
use seedlog::node::AnyNode;
use seedlog::protocol::TopicPartition;
use seedlog::runtime::sim_disk::PowerLoss;
use seedlog::runtime::trace::with_trace;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// What the supervisor has broken and must undo at the heal, and which node each episode's
/// role was bound to.
#[derive(Default)]
pub struct Damage {
    down: BTreeSet<u32>,
    paused: BTreeSet<u32>,
    clogged_nodes: BTreeSet<u32>,
    clogged_links: BTreeSet<(u32, u32)>,
    bound: BTreeMap<RoleRef, u32>,
}

impl Cluster {
    fn madsim_id(&self, node: u32) -> Option<madsim::task::NodeId> {
        self.nodes.get(&node).map(|n| n.handle.id())
    }

    fn note(&self, what: &str) {
        let now = (self.clock)();
        with_trace(&self.trace, |t| {
            t.record(now, "supervisor", "fault", what.as_bytes(), || {
                what.to_string()
            })
        });
    }

    /// The node a target names: the first role-targeted fault of an episode looks up every role
    /// of that episode at once in the controller's committed metadata of the hunted partition,
    /// and they stay bound for the episode (its later faults then hit the nodes the episode
    /// started with, wherever leadership has moved since).
    fn node_of(&self, target: Target, damage: &mut Damage) -> Option<u32> {
        let wanted = match target {
            Target::Node(n) => return Some(n),
            Target::Role(r) => r,
        };
        let episode = wanted.episode;
        if !damage.bound.keys().any(|r| r.episode == episode) {
            let tp = TopicPartition::new(TOPIC, 0);
            let (replicas, leader) = match &*lock(&self.nodes.get(&CONTROLLER)?.state) {
                AnyNode::Controller(c) => {
                    let ps = c.metadata().partition(&tp)?;
                    (ps.replicas.clone(), ps.leader)
                }
                _ => return None,
            };
            let mut names = Vec::new();
            for role in Role::ALL {
                if let Some(node) = role.resolve(&replicas, leader) {
                    let r = RoleRef { role, episode };
                    damage.bound.insert(r, node);
                    names.push(format!("{r}=b{node}"));
                }
            }
            self.note(&format!("roles: {}", names.join(" ")));
        }
        damage.bound.get(&wanted).copied()
    }

    /// The fault with every target replaced by a node id; `None` if a role names no node
    /// (the partition has no leader), and the fault is skipped.
    fn resolve(&self, fault: &Fault, damage: &mut Damage) -> Option<Fault> {
        let mut f = fault.clone();
        match &mut f {
            Fault::Kill { node }
            | Fault::PowerLoss { node, .. }
            | Fault::Restart { node }
            | Fault::Pause { node }
            | Fault::Resume { node }
            | Fault::FlipBit { node, .. }
            | Fault::Isolate { node } => *node = Target::Node(self.node_of(*node, damage)?),
            Fault::OneWay { from, to } | Fault::HealLink { from, to } => {
                *from = Target::Node(self.node_of(*from, damage)?);
                *to = Target::Node(self.node_of(*to, damage)?);
            }
            Fault::Split { .. }
            | Fault::HealNetwork
            | Fault::Loss { .. }
            | Fault::Latency { .. }
            | Fault::NetworkNormal => {}
        }
        Some(f)
    }

    pub fn apply(&self, fault: &Fault, damage: &mut Damage) {
        let handle = madsim::runtime::Handle::current();
        let net = NetSim::current();
        self.note(&serde_json::to_string(fault).unwrap_or_default());
        let Some(fault) = self.resolve(fault, damage) else {
            self.note("skipped: its role has no node now");
            return;
        };
        let id = |t: &Target| match t {
            Target::Node(n) => *n,
            // `resolve` left none.
            Target::Role(_) => u32::MAX,
        };
        match &fault {
            Fault::Kill { node } => {
                let node = id(node);
                if let (Some(id), Some(n)) = (self.madsim_id(node), self.nodes.get(&node)) {
                    handle.kill(id);
                    n.disk.crash_process();
                    damage.down.insert(node);
                }
            }
            Fault::PowerLoss { node, mode } => {
                let node = id(node);
                if let (Some(id), Some(n)) = (self.madsim_id(node), self.nodes.get(&node)) {
                    handle.kill(id);
                    n.disk.power_loss(match *mode {
                        PowerLossMode::AllPending => PowerLoss::DropPending,
                        PowerLossMode::KeepPrefix { writes } => PowerLoss::KeepPrefix(writes),
                        PowerLossMode::DropLast { writes } => PowerLoss::DropLast(writes),
                        PowerLossMode::TearLast { keep_bytes } => {
                            PowerLoss::TearLast { keep_bytes }
                        }
                    });
                    damage.down.insert(node);
                }
            }
            Fault::Restart { node } => {
                let node = id(node);
                if let Some(id) = self.madsim_id(node) {
                    handle.restart(id);
                    damage.down.remove(&node);
                    damage.paused.remove(&node);
                }
            }
            Fault::Pause { node } => {
                let node = id(node);
                if let Some(id) = self.madsim_id(node) {
                    handle.pause(id);
                    damage.paused.insert(node);
                }
            }
            Fault::Resume { node } => {
                let node = id(node);
                if let Some(id) = self.madsim_id(node) {
                    handle.resume(id);
                    damage.paused.remove(&node);
                }
            }
            Fault::FlipBit { node, bit } => {
                let flipped = self
                    .nodes
                    .get(&id(node))
                    .and_then(|n| n.disk.flip_bit_at(*bit));
                if let Some(at) = flipped {
                    self.note(&format!("flipped a bit of byte {at}"));
                }
            }
            Fault::Isolate { node } => {
                let node = id(node);
                if let Some(id) = self.madsim_id(node) {
                    net.clog_node(id);
                    damage.clogged_nodes.insert(node);
                }
            }
            Fault::Split { left, right } => {
                for &l in left {
                    for &r in right {
                        self.clog_link(&net, l, r, damage);
                        self.clog_link(&net, r, l, damage);
                    }
                }
            }
            Fault::OneWay { from, to } => self.clog_link(&net, id(from), id(to), damage),
            Fault::HealLink { from, to } => {
                let (from, to) = (id(from), id(to));
                if let (Some(a), Some(b)) = (self.madsim_id(from), self.madsim_id(to)) {
                    net.unclog_link(a, b);
                    damage.clogged_links.remove(&(from, to));
                }
            }
            Fault::HealNetwork => self.heal_network(&net, damage),
            Fault::Loss { percent } => {
                net.update_config(|c| c.packet_loss_rate = *percent as f64 / 100.0)
            }
            Fault::Latency { min_ms, max_ms } => net.update_config(|c| {
                c.send_latency = Duration::from_millis(*min_ms)..Duration::from_millis(*max_ms)
            }),
            Fault::NetworkNormal => net.update_config(|c| *c = madsim::net::Config::default()),
        }
    }

    fn clog_link(&self, net: &NetSim, from: u32, to: u32, damage: &mut Damage) {
        if let (Some(a), Some(b)) = (self.madsim_id(from), self.madsim_id(to)) {
            net.clog_link(a, b);
            damage.clogged_links.insert((from, to));
        }
    }

    fn heal_network(&self, net: &NetSim, damage: &mut Damage) {
        for node in std::mem::take(&mut damage.clogged_nodes) {
            if let Some(id) = self.madsim_id(node) {
                net.unclog_node(id);
            }
        }
        for (from, to) in std::mem::take(&mut damage.clogged_links) {
            if let (Some(a), Some(b)) = (self.madsim_id(from), self.madsim_id(to)) {
                net.unclog_link(a, b);
            }
        }
    }

    /// Runs the schedule (times are from `start`), then undoes whatever is still broken.
    pub async fn run_schedule(&self, sc: &Scenario, start: tokio::time::Instant) {
        let mut damage = Damage::default();
        for TimedFault { at_ms, fault } in &sc.schedule.events {
            tokio::time::sleep_until(start + Duration::from_millis(*at_ms)).await;
            self.apply(fault, &mut damage);
        }
        tokio::time::sleep_until(start + Duration::from_millis(sc.fault_ms)).await;
        self.heal(&mut damage);
    }

    pub fn heal(&self, damage: &mut Damage) {
        self.note("heal");
        let net = NetSim::current();
        self.heal_network(&net, damage);
        net.update_config(|c| *c = madsim::net::Config::default());
        for node in std::mem::take(&mut damage.paused) {
            self.apply(&Fault::Resume { node: node.into() }, &mut Damage::default());
        }
        for node in std::mem::take(&mut damage.down) {
            self.apply(
                &Fault::Restart { node: node.into() },
                &mut Damage::default(),
            );
        }
    }

    /// The operating system's periodic writeback: unsynced writes of running nodes reach the disk
    /// every few seconds even without fsync, as with Linux's dirty-page flushing.
    pub async fn writeback(&self, until: tokio::time::Instant) {
        let period = Duration::from_secs(5);
        loop {
            tokio::time::sleep(period).await;
            if tokio::time::Instant::now() >= until {
                return;
            }
            for n in self.nodes.values() {
                let _ = seedlog::runtime::disk::Disk::sync(&mut n.disk.clone());
            }
        }
    }
}
