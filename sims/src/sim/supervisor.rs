//! Carries out a fault schedule against the simulated cluster, and heals everything afterwards.
//! Each fault is folded into the trace, so a replay shows it on the timeline.

use super::cluster::{lock, Cluster};
use crate::faults::{Fault, Role, RoleRef, Target, TimedFault};
use crate::scenario::{Scenario, TOPIC};
use madsim::net::NetSim;
use seedlog::node::{QuorumRole, Situation};
use seedlog::protocol::TopicPartition;
use seedlog::runtime::trace::with_trace;
use std::collections::btree_map::Entry;
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
    slow_disks: BTreeSet<u32>,
    /// Some link was held (`hold`): the heal releases them all.
    held: bool,
    /// Each node's jumps not yet put right (their sum), and the nodes running at another rate.
    jumped: BTreeMap<u32, i64>,
    drifted: BTreeSet<u32>,
    episodes: EpisodeRoles,
}

/// A quorum leader as the lazy roles see it: its epoch, whether it is the active controller,
/// where its epoch starts, how far its log is on its disk, and each follower's fetch offset.
struct LeaderView {
    id: u32,
    epoch: seedlog::protocol::QuorumEpoch,
    active: bool,
    epoch_start: seedlog::protocol::Offset,
    synced_end: seedlog::protocol::Offset,
    progress: BTreeMap<u32, seedlog::protocol::Offset>,
}

/// Each episode's roles as bound by its first role-targeted fault (`None`: the episode was
/// skipped).
pub type EpisodeRoles = BTreeMap<u32, Option<BTreeMap<RoleRef, u32>>>;

impl Cluster {
    fn madsim_id(&self, node: u32) -> Option<madsim::task::NodeId> {
        self.nodes.get(&node).map(|n| n.handle.id())
    }

    /// `disk-matches-memory` for a running node about to crash: a difference stops the run
    /// like a broken invariant. (A node already down runs no more steps; its disk was checked
    /// when it went down.)
    fn check_disk(&self, n: &super::cluster::SimNode, damage: &Damage, when: &str) {
        if damage.down.contains(&n.id) {
            return;
        }
        let now = (self.clock)();
        let name = Scenario::node_name(n.id);
        let problem = super::disk_check::disk_matches_memory(n, now, when).or_else(|| {
            super::disk_check::synced_on_disk(&lock(&n.state), &n.disk, &name, now, when)
        });
        if let Some(problem) = problem {
            self.fail(problem);
        }
    }

    /// Records a broken promise or check and wakes the run, which stops on it.
    fn fail(&self, problem: String) {
        lock(&self.failures).push(problem);
        self.broken.notify_one();
    }

    /// The promise `resigned`: the node (a controller cut off from the others past
    /// check-quorum) leads no quorum epoch, or the run stops with `leader-not-resigned`. A node
    /// that is down holds no role.
    fn check_resigned(&self, node: u32, damage: &Damage) {
        let Some(n) = self.nodes.get(&node) else {
            return;
        };
        let epoch = lock(&n.state)
            .as_quorum_controller()
            .filter(|c| c.quorum().is_leader())
            .map(|c| c.quorum().epoch());
        let Some(epoch) = epoch.filter(|_| !damage.down.contains(&node)) else {
            return self.note("kept: not a quorum leader");
        };
        self.note("broken: still the quorum leader");
        let name = Scenario::node_name(node);
        self.fail(format!(
            "leader-not-resigned: {name} still leads quorum epoch {epoch}, cut off from the other \
             controllers past check-quorum"
        ));
    }

    /// The promise `elected`: among the controllers that are up (not paused), one leads a quorum
    /// epoch and a majority of all the voters (itself included) are up, in that epoch and
    /// following it; or the run stops with `controller-not-elected`.
    fn check_elected(&self, damage: &Damage) {
        // (epoch, leader) as each live controller sees it.
        let views: Vec<(u32, (u32, Option<u32>))> = self
            .nodes
            .iter()
            .filter(|(id, _)| !damage.down.contains(id) && !damage.paused.contains(id))
            .filter_map(|(&id, n)| {
                let state = lock(&n.state);
                let q = state.as_quorum_controller()?.quorum();
                Some((id, (q.epoch(), q.leader())))
            })
            .collect();
        let voters = self
            .nodes
            .values()
            .filter(|n| lock(&n.state).as_quorum_controller().is_some())
            .count();
        let majority = voters / 2 + 1;
        let elected = views.iter().any(|&(id, (epoch, leader))| {
            leader == Some(id)
                && views
                    .iter()
                    .filter(|(_, view)| *view == (epoch, Some(id)))
                    .count()
                    >= majority
        });
        if elected {
            return self.note("kept: a quorum leader followed by a majority");
        }
        self.note("broken: no quorum leader followed by a majority");
        let seen: Vec<String> = views
            .iter()
            .map(|(id, (epoch, leader))| {
                let leader = leader.map_or("none".to_string(), Scenario::node_name);
                format!("{} epoch {epoch} leader {leader}", Scenario::node_name(*id))
            })
            .collect();
        self.fail(format!(
            "controller-not-elected: the network whole and a majority of controllers up, yet no \
             quorum leader is followed by a majority ({})",
            seen.join("; ")
        ));
    }

    fn note(&self, what: &str) {
        let now = (self.clock)();
        with_trace(&self.trace, |t| {
            t.record(now, "supervisor", "fault", what.as_bytes(), || {
                what.to_string()
            })
        });
    }

    /// The node a target names. The first role-targeted fault of an episode looks up every role
    /// of that episode at once in the controller's committed metadata of the hunted partition,
    /// and they stay bound for the episode (its later faults then hit the nodes the episode
    /// started with, wherever leadership has moved since). If the partition has no leader then,
    /// every fault of the episode aimed at a partition role is skipped (half an episode would
    /// only hit nodes at random); with no active controller, the whole episode is.
    fn node_of(&self, target: Target, damage: &mut Damage, bind_lazy: bool) -> Option<u32> {
        let wanted = match target {
            Target::Node(n) => return Some(n),
            Target::Role(r) => r,
        };
        let episode = wanted.episode;
        let bound = match damage.episodes.entry(episode) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => {
                let roles = self.bind_roles(episode);
                self.note(&match &roles {
                    Some(roles) => {
                        let names: Vec<String> = roles
                            .iter()
                            .map(|(r, n)| format!("{r}={}", Scenario::node_name(*n)))
                            .collect();
                        format!("roles: {}", names.join(" "))
                    }
                    None => format!("episode {episode} skipped: no active controller"),
                });
                e.insert(roles)
            }
        };
        let bound = bound.as_mut()?;
        if let Some(&node) = bound.get(&wanted) {
            return Some(node);
        }
        if !(wanted.role.is_lazy() && bind_lazy) {
            return None;
        }
        // A lazy role is looked up now, and stays bound once it names a node.
        let node = self.lazy_role(wanted.role, episode, bound)?;
        bound.insert(wanted, node);
        self.note(&format!("role: {wanted}={}", Scenario::node_name(node)));
        Some(node)
    }

    /// The node a lazy role names in the present state (of the quorum, or of the episode's
    /// partition leader for `isr-joiner`), given the episode's roles bound so far (`None`: none
    /// does now).
    fn lazy_role(&self, role: Role, episode: u32, bound: &BTreeMap<RoleRef, u32>) -> Option<u32> {
        let leaders = self.quorum_leaders();
        let first = bound
            .get(&RoleRef {
                role: Role::NewLeader,
                episode,
            })
            .copied();
        // Just elected: not active, and its leader change not yet on its own disk, so nothing
        // of its epoch has left it (the outbox holds every message until then).
        let new = |l: &&LeaderView| !l.active && l.synced_end <= l.epoch_start;
        let newest = |ls: Vec<&LeaderView>| ls.into_iter().max_by_key(|l| l.epoch).map(|l| l.id);
        match role {
            Role::NewLeader => newest(leaders.iter().filter(new).collect()),
            Role::SecondNewLeader => {
                let first = first?;
                newest(
                    leaders
                        .iter()
                        .filter(new)
                        .filter(|l| l.id != first)
                        .collect(),
                )
            }
            // The first new leader leads again, not yet active, and a follower holds its log
            // up to its epoch start: the older entries, not its leader change.
            Role::EpochStartFollower => {
                let l = leaders.iter().find(|l| Some(l.id) == first && !l.active)?;
                l.progress
                    .iter()
                    .find(|&(_, &held)| l.epoch_start > 0 && held == l.epoch_start)
                    .map(|(&follower, _)| follower)
            }
            Role::IsrJoiner => {
                let leader = *bound.get(&RoleRef {
                    role: Role::Leader,
                    episode,
                })?;
                let state = lock(&self.nodes.get(&leader)?.state);
                let tp = TopicPartition::new(TOPIC, 0);
                let ls = state.as_broker()?.replicas().get(&tp)?.leader()?;
                let pending = ls.pending_isr.as_ref()?;
                pending.iter().copied().find(|m| !ls.isr.contains(m))
            }
            Role::OffsetFetcher => self.nodes.iter().find_map(|(&id, n)| {
                let state = lock(&n.state);
                let (_, waiting) = state.as_consumer()?.offset_fetch_in_flight()?;
                (waiting >= 2).then_some(id)
            }),
            Role::FetchedCoordinator => {
                let fetcher = *bound.get(&RoleRef {
                    role: Role::OffsetFetcher,
                    episode,
                })?;
                let state = lock(&self.nodes.get(&fetcher)?.state);
                state
                    .as_consumer()?
                    .offset_fetch_in_flight()
                    .map(|(to, _)| to)
            }
            _ => None,
        }
    }

    /// Every controller that leads the quorum, as the lazy roles read it.
    fn quorum_leaders(&self) -> Vec<LeaderView> {
        self.nodes
            .iter()
            .filter_map(|(&id, n)| {
                let state = lock(&n.state);
                let c = state.as_quorum_controller()?;
                let q = c.quorum();
                let QuorumRole::Leader(l) = q.role() else {
                    return None;
                };
                Some(LeaderView {
                    id,
                    epoch: q.epoch(),
                    active: c.is_active(),
                    epoch_start: l.epoch_start,
                    synced_end: q.synced_end(),
                    progress: l.progress.clone(),
                })
            })
            .collect()
    }

    /// Every role of `episode`: the active controller, and the hunted partition's roles from
    /// its committed metadata (none while the partition has no leader); `None` if there is no
    /// active controller.
    fn bind_roles(&self, episode: u32) -> Option<BTreeMap<RoleRef, u32>> {
        let tp = TopicPartition::new(TOPIC, 0);
        let (controller, _, metadata) = self.active_controller()?;
        let mut roles = BTreeMap::new();
        let role = Role::ActiveController;
        roles.insert(RoleRef { role, episode }, controller);
        let standbys = self
            .nodes
            .iter()
            .filter(|(id, n)| **id != controller && lock(&n.state).as_quorum_controller().is_some())
            .map(|(id, _)| *id);
        for (role, node) in [Role::StandbyController, Role::OtherStandbyController]
            .into_iter()
            .zip(standbys)
        {
            roles.insert(RoleRef { role, episode }, node);
        }
        if let Some(ps) = metadata.partition(&tp).filter(|ps| ps.leader.is_some()) {
            for role in Role::ALL {
                if let Some(node) = role.resolve(&ps.replicas, ps.leader, &ps.isr) {
                    roles.insert(RoleRef { role, episode }, node);
                }
            }
        }
        Some(roles)
    }

    /// A partition whose only in-sync replica is `broker`, or soon may be: by the active
    /// controller's committed metadata, by the changes it has proposed and not yet committed,
    /// or by an ISR change a leader has proposed (none without an active controller). A shrink
    /// in flight when the bit flips commits anyway, and leaves the damaged broker the only
    /// member (seed 812243438: the flip came 19 ms after the controller appended a shrink to
    /// `[2]`, 4 ms before it committed, and the partition went offline by design).
    fn only_in_sync_on(&self, broker: u32) -> Option<TopicPartition> {
        let (id, _, committed) = self.active_controller()?;
        let proposed = lock(&self.nodes[&id].state)
            .as_quorum_controller()
            .and_then(|c| c.proposed_metadata().cloned());
        let alone = |isr: &[u32]| isr == [broker];
        let in_metadata = committed
            .partitions
            .iter()
            .chain(proposed.iter().flat_map(|m| m.partitions.iter()))
            .find(|ps| alone(&ps.isr))
            .map(|ps| ps.tp.clone());
        in_metadata.or_else(|| {
            self.nodes.values().find_map(|n| {
                let state = lock(&n.state);
                let b = state.as_broker()?;
                b.replicas().iter().find_map(|(tp, r)| {
                    let pending = r.leader()?.pending_isr.as_deref()?;
                    alone(pending).then(|| tp.clone())
                })
            })
        })
    }

    /// The fault with every target replaced by a node id; `None` if a role names no node (its
    /// episode was skipped, or the partition has fewer replicas), and the fault is skipped.
    /// Only a fault with a window binds a lazy role (any other skips a lazy role not bound).
    fn resolve(&self, fault: &Fault, damage: &mut Damage, bind_lazy: bool) -> Option<Fault> {
        let mut f = fault.clone();
        for t in f.targets_mut() {
            *t = Target::Node(self.node_of(*t, damage, bind_lazy)?);
        }
        Some(f)
    }

    pub fn apply(&self, fault: &Fault, damage: &mut Damage) {
        self.note(&serde_json::to_string(fault).unwrap_or_default());
        let Some(fault) = self.resolve(fault, damage, false) else {
            self.note("skipped: its role has no node");
            return;
        };
        self.apply_resolved(&fault, damage);
    }

    /// A fault with a window: tried every 5 ms from now until its targets name nodes (then
    /// applied) or `until` passes (then skipped); the schedule waits meanwhile.
    async fn apply_within(&self, fault: &Fault, until: tokio::time::Instant, damage: &mut Damage) {
        loop {
            if let Some(resolved) = self.resolve(fault, damage, true) {
                self.note(&serde_json::to_string(fault).unwrap_or_default());
                return self.apply_resolved(&resolved, damage);
            }
            if tokio::time::Instant::now() >= until {
                self.note(&serde_json::to_string(fault).unwrap_or_default());
                self.note("skipped: no node took its role within its window");
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    fn apply_resolved(&self, fault: &Fault, damage: &mut Damage) {
        let handle = madsim::runtime::Handle::current();
        let net = NetSim::current();
        match fault {
            Fault::Kill {
                node: Target::Node(node),
            } => {
                if let (Some(id), Some(n)) = (self.madsim_id(*node), self.nodes.get(node)) {
                    self.check_disk(n, damage, "before a process crash");
                    if n.disk.outstanding_syncs() > 0 {
                        self.coverage.add(Situation::SyncOutstandingAtCrash);
                    }
                    handle.kill(id);
                    n.disk.crash_process();
                    damage.down.insert(*node);
                }
            }
            Fault::PowerLoss {
                node: Target::Node(node),
                mode,
            } => {
                if let (Some(id), Some(n)) = (self.madsim_id(*node), self.nodes.get(node)) {
                    self.check_disk(n, damage, "before a power loss");
                    // Committed records this broker holds only in its page cache, if any.
                    let unsynced_committed = lock(&n.state).as_broker().is_some_and(|b| {
                        b.replicas()
                            .values()
                            .any(|r| r.synced_offset < r.log.high_watermark())
                    });
                    if n.disk.outstanding_syncs() > 0 {
                        self.coverage.add(Situation::SyncOutstandingAtCrash);
                    }
                    handle.kill(id);
                    let dropped = n.disk.power_loss((*mode).into());
                    if unsynced_committed && dropped > 0 {
                        self.coverage.add(Situation::PowerLossDroppedCommitted);
                    }
                    damage.down.insert(*node);
                }
            }
            Fault::Restart {
                node: Target::Node(node),
            } => {
                if let Some(id) = self.madsim_id(*node) {
                    // A restart of a running node (its kill was skipped) is a crash too.
                    if let Some(n) = self.nodes.get(node) {
                        self.check_disk(n, damage, "before a restart");
                    }
                    handle.restart(id);
                    damage.down.remove(node);
                    damage.paused.remove(node);
                }
            }
            Fault::Pause {
                node: Target::Node(node),
            } => {
                if let Some(id) = self.madsim_id(*node) {
                    handle.pause(id);
                    damage.paused.insert(*node);
                }
            }
            Fault::Resume {
                node: Target::Node(node),
            } => {
                if let Some(id) = self.madsim_id(*node) {
                    handle.resume(id);
                    damage.paused.remove(node);
                }
            }
            Fault::FlipBit {
                node: Target::Node(node),
                bit,
                spare_last_replica,
            } => {
                let alone = spare_last_replica
                    .then(|| self.only_in_sync_on(*node))
                    .flatten();
                if let Some(tp) = alone {
                    self.note(&format!(
                        "skipped: broker {node} is the only in-sync replica of {tp}, which has no \
                         other copy to repair from"
                    ));
                    return;
                }
                if let Some(at) = self.nodes.get(node).and_then(|n| n.disk.flip_bit_at(*bit)) {
                    self.note(&format!("flipped a bit of byte {at}"));
                }
            }
            Fault::Isolate {
                node: Target::Node(node),
            } => {
                if let Some(id) = self.madsim_id(*node) {
                    net.clog_node(id);
                    damage.clogged_nodes.insert(*node);
                }
            }
            Fault::CutFromCluster {
                node: Target::Node(node),
            } => {
                for peer in self.cluster_peers(*node) {
                    self.clog_link(&net, *node, peer, damage);
                    self.clog_link(&net, peer, *node, damage);
                }
            }
            Fault::RejoinCluster {
                node: Target::Node(node),
            } => {
                for peer in self.cluster_peers(*node) {
                    self.unclog_link(&net, *node, peer, damage);
                    self.unclog_link(&net, peer, *node, damage);
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
            Fault::OneWay {
                from: Target::Node(from),
                to: Target::Node(to),
            } => self.clog_link(&net, *from, *to, damage),
            // Unclogs the link whatever clogged it (the nemeses use it only on their own
            // one-way links).
            Fault::HealLink {
                from: Target::Node(from),
                to: Target::Node(to),
            } => {
                self.unclog_link(&net, *from, *to, damage);
            }
            Fault::Hold {
                from: Target::Node(from),
                to: Target::Node(to),
            } => {
                self.holds.hold(*from, *to);
                damage.held = true;
            }
            Fault::Release {
                from: Target::Node(from),
                to: Target::Node(to),
            } => self.holds.release(*from, *to),
            Fault::HealNetwork => self.heal_network(&net, damage),
            Fault::Loss { percent } => {
                net.update_config(|c| c.packet_loss_rate = *percent as f64 / 100.0)
            }
            Fault::Latency { min_ms, max_ms } => net.update_config(|c| {
                c.send_latency = Duration::from_millis(*min_ms)..Duration::from_millis(*max_ms)
            }),
            Fault::NetworkNormal => net.update_config(|c| *c = madsim::net::Config::default()),
            Fault::SlowDisk {
                node: Target::Node(node),
                extra_ms,
            } => {
                if let Some(n) = self.nodes.get(node) {
                    n.disk.stall(*extra_ms);
                    damage.slow_disks.insert(*node);
                    self.coverage.add(Situation::SlowDisk);
                }
            }
            Fault::DiskNormal {
                node: Target::Node(node),
            } => {
                if let Some(n) = self.nodes.get(node) {
                    n.disk.stall(0);
                    damage.slow_disks.remove(node);
                }
            }
            Fault::ClockJump {
                node: Target::Node(node),
                by_ms,
            } => {
                if let Some(n) = self.nodes.get(node) {
                    n.clock.jump(*by_ms);
                    let net_jump = damage.jumped.entry(*node).or_default();
                    *net_jump = net_jump.saturating_add(*by_ms);
                    if *net_jump == 0 {
                        damage.jumped.remove(node);
                    }
                    self.coverage.add(Situation::ClockJump);
                    self.note_clock(n);
                }
            }
            Fault::ClockDrift {
                node: Target::Node(node),
                ppm,
            } => {
                if let Some(n) = self.nodes.get(node) {
                    n.clock.set_drift(*ppm);
                    damage.drifted.insert(*node);
                    self.coverage.add(Situation::ClockDrift);
                    self.note_clock(n);
                }
            }
            Fault::ClockDriftEnd {
                node: Target::Node(node),
            } => {
                if let Some(n) = self.nodes.get(node) {
                    n.clock.restore_drift();
                    damage.drifted.remove(node);
                    self.note_clock(n);
                }
            }
            // A promise checked after the run, not a fault.
            Fault::Available { .. } => {}
            Fault::Resigned {
                node: Target::Node(node),
            } => self.check_resigned(*node, damage),
            Fault::Elected => self.check_elected(damage),
            // `resolve` leaves no role behind; a fault still naming one is reported, not applied.
            unresolved => self.note(&format!("not applied, unresolved target: {unresolved:?}")),
        }
    }

    /// Puts a node's clock reading in the trace after a clock fault.
    fn note_clock(&self, n: &super::cluster::SimNode) {
        self.note(&format!(
            "{} clock reads {:+} ms from true time, drift {:+} ppm",
            crate::scenario::Scenario::node_name(n.id),
            n.clock.skew_ms(),
            n.clock.drift_ppm()
        ));
    }

    /// Every broker and controller but `node`.
    fn cluster_peers(&self, node: u32) -> Vec<u32> {
        self.nodes
            .iter()
            .filter(|(&id, n)| id != node && lock(&n.state).is_cluster_node())
            .map(|(&id, _)| id)
            .collect()
    }

    fn clog_link(&self, net: &NetSim, from: u32, to: u32, damage: &mut Damage) {
        if let (Some(a), Some(b)) = (self.madsim_id(from), self.madsim_id(to)) {
            net.clog_link(a, b);
            damage.clogged_links.insert((from, to));
        }
    }

    fn unclog_link(&self, net: &NetSim, from: u32, to: u32, damage: &mut Damage) {
        if let (Some(a), Some(b)) = (self.madsim_id(from), self.madsim_id(to)) {
            net.unclog_link(a, b);
            damage.clogged_links.remove(&(from, to));
        }
    }

    fn heal_network(&self, net: &NetSim, damage: &mut Damage) {
        if std::mem::take(&mut damage.held) {
            self.holds.release_all();
        }
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
    /// Returns how each episode's roles were bound.
    pub async fn run_schedule(&self, sc: &Scenario, start: tokio::time::Instant) -> EpisodeRoles {
        let mut damage = Damage::default();
        for TimedFault {
            at_ms,
            fault,
            until_ms,
        } in &sc.schedule.events
        {
            tokio::time::sleep_until(start + Duration::from_millis(*at_ms)).await;
            match until_ms {
                Some(until) => {
                    // (A window ends with the fault phase at the latest.)
                    let until = start + Duration::from_millis((*until).min(sc.fault_ms));
                    self.apply_within(fault, until, &mut damage).await
                }
                None => self.apply(fault, &mut damage),
            }
        }
        tokio::time::sleep_until(start + Duration::from_millis(sc.fault_ms)).await;
        self.heal(&mut damage);
        damage.episodes
    }

    pub fn heal(&self, damage: &mut Damage) {
        self.note("heal");
        let net = NetSim::current();
        self.heal_network(&net, damage);
        net.update_config(|c| *c = madsim::net::Config::default());
        for node in std::mem::take(&mut damage.paused) {
            self.apply(&Fault::Resume { node: node.into() }, &mut Damage::default());
        }
        for node in std::mem::take(&mut damage.slow_disks) {
            self.apply(
                &Fault::DiskNormal { node: node.into() },
                &mut Damage::default(),
            );
        }
        for node in std::mem::take(&mut damage.down) {
            self.apply(
                &Fault::Restart { node: node.into() },
                &mut Damage::default(),
            );
        }
        // Clocks are put right too (NTP steps a jumped clock back; the drift ends): the liveness
        // phase runs on each node's own clock again.
        for (node, by_ms) in std::mem::take(&mut damage.jumped) {
            self.apply(
                &Fault::ClockJump {
                    node: node.into(),
                    by_ms: -by_ms,
                },
                &mut Damage::default(),
            );
        }
        for node in std::mem::take(&mut damage.drifted) {
            self.apply(
                &Fault::ClockDriftEnd { node: node.into() },
                &mut Damage::default(),
            );
        }
    }

    /// The operating system's periodic writeback: unsynced writes of running nodes reach the disk
    /// every few seconds even without fsync, as with Linux's dirty-page flushing (every 5 s
    /// unless the scenario says otherwise).
    pub async fn writeback(&self, until: tokio::time::Instant, period_ms: Option<u64>) {
        let period = Duration::from_millis(period_ms.unwrap_or(5_000).max(1));
        loop {
            // A scenario's own period ends with the fault phase; the default's timing is kept
            // as it always was (every seed's trace depends on it).
            if period_ms.is_some() && tokio::time::Instant::now() + period >= until {
                tokio::time::sleep_until(until).await;
                return;
            }
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
