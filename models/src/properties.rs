//! The properties checked over every reachable state, named as in `docs/architecture.md`, and the
//! bounds that keep the state space finite.

use crate::actor::{Fault, NodeActor, NodeState};
use crate::cluster::{ModelCfg, ModelKind, SeedlogModel};
use crate::history::History;
use seedlog::node::controller_quorum::apply_record;
use seedlog::node::coordinator::CommitFencing;
use seedlog::node::{Broker, Image, BOOTSTRAP_EPOCH};
use seedlog::protocol::{ClusterMetadata, MetadataRecord, TopicPartition, OFFSETS_TOPIC};
use stateright::actor::ActorModelState;
use stateright::Expectation;
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

pub type State = ActorModelState<NodeActor, History>;

/// What a property needs of the model it runs in: its layout. Both the actor model and the
/// reduced model the checker runs (`crate::reduce`) have it, so one set of property functions
/// serves both.
pub trait Layout {
    fn cfg(&self) -> &ModelCfg;
}

impl Layout for SeedlogModel {
    fn cfg(&self) -> &ModelCfg {
        &self.cfg
    }
}

/// Brokers that are up and running, with their index.
fn live_brokers<'a>(cfg: &ModelCfg, s: &'a State) -> impl Iterator<Item = (usize, &'a Broker)> {
    (0..cfg.brokers).filter_map(move |i| {
        if s.crashed[i] {
            return None;
        }
        s.actor_states[i].node()?.as_broker().map(|b| (i, b))
    })
}

/// The controller's committed metadata: from its memory if it runs, else from its durable image.
/// With a controller quorum, the metadata of everything any voter applied (`quorum_metadata`).
fn controller_metadata<'a>(cfg: &ModelCfg, s: &'a State) -> Option<Cow<'a, ClusterMetadata>> {
    if cfg.controllers > 1 {
        return quorum_metadata(cfg, s);
    }
    let c = cfg.controller;
    if let Some(ctl) = s.actor_states[c].node().and_then(|n| n.as_controller()) {
        if !s.crashed[c] {
            return Some(Cow::Borrowed(ctl.metadata()));
        }
    }
    match &*s.actor_storages[c].as_ref()?.synced {
        Image::Controller(img) => Some(Cow::Borrowed(&img.metadata)),
        _ => None,
    }
}

/// The controller quorum's voters: their actor indices.
fn voters(cfg: &ModelCfg) -> std::ops::Range<usize> {
    cfg.controller..cfg.controller + cfg.controllers
}

/// The quorum's committed metadata: the longest sequence of entries a voter applied (kept in
/// its storage, so a crashed voter's counts, and every voter's is a prefix of the longest in a
/// correct quorum), applied to a new cluster's state. Read from the memory of a running voter
/// that applied all of it (the active controller, normally), else rebuilt.
fn quorum_metadata<'a>(cfg: &ModelCfg, s: &'a State) -> Option<Cow<'a, ClusterMetadata>> {
    let longest = voters(cfg)
        .filter_map(|i| s.actor_storages[i].as_ref())
        .map(|d| &d.applied)
        .max_by_key(|a| a.len())?;
    let up_to_date = voters(cfg)
        .filter(|&i| !s.crashed[i])
        .filter_map(|i| s.actor_states[i].node()?.as_quorum_controller())
        .find(|c| c.quorum().applied() as usize == longest.len());
    if let Some(c) = up_to_date {
        return Some(Cow::Borrowed(c.metadata()));
    }
    let mut image = (**cfg.controller_base.as_ref()?).clone();
    for (e, _) in longest {
        apply_record(&mut image, &e.record);
    }
    Some(Cow::Owned(image.metadata))
}

/// The quorum's bound on controller changes: no voter's log (its written disk image: every
/// entry it holds, proposals included) has a change past `max_version`, so, as with the single
/// controller, a change past the bound is outside the model as soon as it is made.
fn quorum_within_versions(cfg: &ModelCfg, s: &State) -> bool {
    voters(cfg)
        .filter_map(|i| s.actor_storages[i].as_ref())
        .all(|d| match &*d.written {
            Image::Quorum(q) => q.log.iter().all(|e| match &e.record {
                MetadataRecord::Change(d) => d.version <= cfg.max_version,
                _ => true,
            }),
            _ => true,
        })
}

/// A controller of a later quorum epoch than the bootstrapped one is active: the quorum failed
/// over.
fn reaches_controller_failover<M: Layout>(m: &M, s: &State) -> bool {
    voters(m.cfg()).any(|i| {
        !s.crashed[i]
            && s.actor_states[i]
                .node()
                .and_then(|n| n.as_quorum_controller())
                .and_then(|c| c.active_epoch())
                .is_some_and(|e| e > BOOTSTRAP_EPOCH)
    })
}

/// Every broker acting as leader in the controller's current epoch holds `value` at `offset`.
fn current_leaders_hold(
    cfg: &ModelCfg,
    s: &State,
    tp: &TopicPartition,
    offset: u64,
    value: Option<&[u8]>,
) -> bool {
    let Some(epoch) =
        controller_metadata(cfg, s).and_then(|md| md.partition(tp).map(|p| p.leader_epoch))
    else {
        return true;
    };
    live_brokers(cfg, s)
        .filter(|(_, b)| b.leader_epoch_of(tp) == Some(epoch))
        .all(|(_, b)| {
            // Retention may delete a committed record: below the log start is not lost.
            b.log(tp).is_some_and(|l| {
                offset < l.log_start_offset()
                    || l.entry(offset)
                        .is_some_and(|e| e.record.value.as_deref() == value)
            })
        })
}

fn acked_not_lost<M: Layout>(m: &M, s: &State) -> bool {
    let cfg = m.cfg();
    s.history.acked.iter().all(|(tp, offset, i)| {
        let value = cfg.records[*i].value.as_deref();
        current_leaders_hold(cfg, s, tp, *offset, value)
    })
}

fn consumed_stable<M: Layout>(m: &M, s: &State) -> bool {
    s.history
        .read
        .iter()
        .all(|(tp, offset, value)| current_leaders_hold(m.cfg(), s, tp, *offset, value.as_deref()))
}

/// Two replicas holding an entry of the same epoch at one offset hold the same entries up to it.
fn log_matching<M: Layout>(m: &M, s: &State) -> bool {
    let brokers: Vec<_> = live_brokers(m.cfg(), s).collect();
    for (i, (_, a)) in brokers.iter().enumerate() {
        for (_, b) in &brokers[i + 1..] {
            for (tp, ra) in a.replicas() {
                let Some(rb) = b.replicas().get(tp) else {
                    continue;
                };
                let (la, lb) = (&ra.log, &rb.log);
                let lo = la.log_start_offset().max(lb.log_start_offset());
                let hi = la.log_end_offset().min(lb.log_end_offset());
                // The highest offset where both hold the same epoch...
                let top = (lo..hi)
                    .rev()
                    .find(|&o| la.entry(o).map(|e| e.epoch) == lb.entry(o).map(|e| e.epoch));
                // ...and everything from the common start up to it must be identical.
                if let Some(top) = top {
                    if (lo..=top).any(|o| la.entry(o) != lb.entry(o)) {
                        return false;
                    }
                }
            }
        }
    }
    true
}

fn single_leader_per_epoch<M: Layout>(m: &M, s: &State) -> bool {
    let mut seen: BTreeMap<(TopicPartition, u32), usize> = BTreeMap::new();
    for (i, b) in live_brokers(m.cfg(), s) {
        for tp in b.replicas().keys() {
            if let Some(epoch) = b.leader_epoch_of(tp) {
                if seen.insert((tp.clone(), epoch), i).is_some() {
                    return false;
                }
            }
        }
    }
    true
}

fn hw_monotonic<M: Layout>(_: &M, s: &State) -> bool {
    !s.history.hw_regressed
}

/// Acknowledged records of one key, in the order the producer sent them.
fn acked_by_key<M: Layout>(
    m: &M,
    s: &State,
) -> BTreeMap<Vec<u8>, Vec<(usize, TopicPartition, u64)>> {
    let mut by_key: BTreeMap<Vec<u8>, Vec<(usize, TopicPartition, u64)>> = BTreeMap::new();
    for (tp, offset, i) in &s.history.acked {
        let key = m.cfg().records[*i]
            .key
            .as_deref()
            .unwrap_or_default()
            .to_vec();
        by_key
            .entry(key)
            .or_default()
            .push((*i, tp.clone(), *offset));
    }
    for v in by_key.values_mut() {
        v.sort();
    }
    by_key
}

fn per_key_partition<M: Layout>(m: &M, s: &State) -> bool {
    acked_by_key(m, s)
        .values()
        .all(|v| v.windows(2).all(|w| w[0].1 == w[1].1))
}

/// A later send of a key is acknowledged at a higher offset than every earlier one (retries may
/// duplicate a record, but never put it before its predecessors).
fn per_key_order<M: Layout>(m: &M, s: &State) -> bool {
    acked_by_key(m, s).values().all(|v| {
        v.iter().all(|(i, tp, o)| {
            v.iter()
                .filter(|(j, tp2, _)| j < i && tp2 == tp)
                .all(|(_, _, o2)| o2 < o)
        })
    })
}

/// Idempotence: no log holds a record twice, and no record is acknowledged at two offsets.
fn no_duplicates<M: Layout>(m: &M, s: &State) -> bool {
    let logs = live_brokers(m.cfg(), s).all(|(_, b)| {
        b.replicas().values().all(|r| {
            let mut seen = BTreeSet::new();
            (r.log.log_start_offset()..r.log.log_end_offset())
                .filter_map(|o| r.log.entry(o))
                .all(|e| seen.insert(&e.record.value))
        })
    });
    let mut acked_at = BTreeMap::new();
    logs && s
        .history
        .acked
        .iter()
        .all(|(tp, o, i)| *acked_at.entry(*i).or_insert((tp, o)) == (tp, o))
}

/// Idempotence keeps order: in each partition, a record sent later is acknowledged at a higher
/// offset than every record sent before it (retries and several batches in flight included).
fn acked_in_order<M: Layout>(_: &M, s: &State) -> bool {
    s.history.acked.iter().all(|(tp, o, i)| {
        s.history
            .acked
            .iter()
            .filter(|(tp2, _, j)| tp2 == tp && j < i)
            .all(|(_, o2, _)| o2 < o)
    })
}

fn reaches_ack<M: Layout>(_: &M, s: &State) -> bool {
    !s.history.acked.is_empty()
}

fn reaches_read<M: Layout>(_: &M, s: &State) -> bool {
    !s.history.read.is_empty()
}

fn reaches_failover<M: Layout>(m: &M, s: &State) -> bool {
    controller_metadata(m.cfg(), s).is_some_and(|md| {
        md.partitions
            .iter()
            .any(|p| p.leader.is_some() && p.leader_epoch > 0)
    })
}

fn reaches_ack_after_failover<M: Layout>(m: &M, s: &State) -> bool {
    let led_by_new = |tp: &TopicPartition, offset: u64| {
        live_brokers(m.cfg(), s).any(|(_, b)| {
            b.log(tp)
                .and_then(|l| l.entry(offset))
                .is_some_and(|e| e.epoch > 0)
        })
    };
    s.history.acked.iter().any(|(tp, o, _)| led_by_new(tp, *o))
}

fn reaches_truncation<M: Layout>(_: &M, s: &State) -> bool {
    s.actor_states.iter().any(|a| {
        matches!(
            **a,
            NodeState::Running {
                truncated: true,
                ..
            }
        )
    })
}

fn reaches_both_partitions<M: Layout>(_: &M, s: &State) -> bool {
    let parts: std::collections::BTreeSet<_> =
        s.history.acked.iter().map(|(tp, _, _)| tp).collect();
    parts.len() >= 2
}

/// The records of the `__consumer_offsets` partition (all groups hash to partition 0 of one).
fn offsets_tp() -> TopicPartition {
    TopicPartition::new(OFFSETS_TOPIC, 0)
}

/// `offsets-monotonic`: a group's committed offset only moves through commits of its current
/// generation; stale generations are fenced. Checked on what the coordinator accepted: every
/// accepted commit is a record appended to `__consumer_offsets` naming the member's generation,
/// and every completed rebalance a record naming the new generation. In the log of every live
/// replica of that partition, a member's commit names the generation its group recorded last
/// before it (`CommitFencing`, the rule the simulator checks too): correct code bumps the
/// generation in the same step as it appends the generation record, and then refuses commits of
/// any other generation. The `accept-stale-generation` switch (N) appends a fenced member's late
/// commit after the new generation's record, which is what this catches. (A commit of the current
/// generation during a rebalance, before the new generation is recorded, is legitimate and
/// allowed, as in Kafka.)
fn offsets_monotonic<M: Layout>(m: &M, s: &State) -> bool {
    let tp = offsets_tp();
    live_brokers(m.cfg(), s).all(|(_, b)| {
        b.log(&tp)
            .is_none_or(|log| CommitFencing::check_log(log.entries()).is_ok())
    })
}

/// Every record a group member finished processing (kept across consumer crashes).
fn processed<M: Layout>(m: &M, s: &State) -> std::collections::BTreeSet<(TopicPartition, u64)> {
    m.cfg()
        .consumers
        .iter()
        .filter_map(|&c| s.actor_storages[c].as_ref())
        .flat_map(|d| d.processed.iter().cloned())
        .collect()
}

/// `at-least-once`: nothing below a group's committed offset went unprocessed, so a member that
/// resumes at the committed offset skips nothing. For the committed offset of every partition in
/// every live coordinator (the group state of each live broker leading `__consumer_offsets`:
/// offsets whose commit record passed the high watermark, or that a new coordinator replayed from
/// its log), every record below it must have been processed by some member (a `Polled`
/// observation, which the adapter keeps in the member's storage so it survives the member's
/// crash) — or be in the hands of a live member that has committed it and not processed it yet
/// (the adapter notes a member's latest commit until it processes a batch of that partition; a
/// crash forgets it). Correct code processes before it commits, so the exception never matters
/// to it; with `commit-before-process` (M), the member that crashes between its commit and its
/// processing leaves the committed offset above a record no one processed.
fn at_least_once<M: Layout>(m: &M, s: &State) -> bool {
    let done = processed(m, s);
    let in_hand = |tp: &TopicPartition, offset: u64| {
        m.cfg().consumers.iter().any(|&c| {
            !s.crashed[c]
                && matches!(
                    &*s.actor_states[c],
                    NodeState::Running { owed: Some((t, o)), .. } if t == tp && offset < *o
                )
        })
    };
    live_brokers(m.cfg(), s).all(|(_, b)| {
        b.coordinators().values().all(|c| {
            c.groups().values().all(|g| {
                g.offsets.iter().all(|(tp, &committed)| {
                    (0..committed).all(|o| done.contains(&(tp.clone(), o)) || in_hand(tp, o))
                })
            })
        })
    })
}

/// `offset-fetch-fresh`: an offset fetch's answer holds every commit acknowledged before the
/// fetch was sent. Judged on what the members were told (the history's `OffsetReads`): an
/// answer below the highest such commit, or no offset after one, is stale unless a commit of
/// the answered offset was still unacknowledged when the fetch was sent (or sent since) and so
/// may have landed after the higher one. A coordinator that answers from its cache after a
/// newer coordinator took a commit (`offset-fetch-from-cache`) breaks it.
fn offset_fetch_fresh<M: Layout>(_: &M, s: &State) -> bool {
    !s.history.offsets.stale
}

/// The groups of every live coordinator.
fn coordinator_groups<'a, M: Layout>(
    m: &'a M,
    s: &'a State,
) -> impl Iterator<Item = &'a seedlog::node::coordinator::Group> + 'a {
    live_brokers(m.cfg(), s)
        .flat_map(|(_, b)| b.coordinators().values().flat_map(|c| c.groups().values()))
}

fn reaches_commit<M: Layout>(m: &M, s: &State) -> bool {
    coordinator_groups(m, s).any(|g| !g.offsets.is_empty())
}

fn reaches_rebalance<M: Layout>(m: &M, s: &State) -> bool {
    coordinator_groups(m, s).any(|g| g.generation >= 2)
}

/// A coordinator of a later leader epoch than the first appended a record (a generation or a
/// commit) to `__consumer_offsets`: another broker took over the group and serves it.
fn reaches_coordinator_failover<M: Layout>(m: &M, s: &State) -> bool {
    let tp = offsets_tp();
    live_brokers(m.cfg(), s).any(|(_, b)| {
        b.log(&tp)
            .is_some_and(|l| l.entries().iter().any(|e| e.epoch > 0))
    })
}

/// Every pre-filled record of every data partition was processed.
fn reaches_all_processed<M: Layout>(m: &M, s: &State) -> bool {
    let done = processed(m, s);
    let per_partition = m.cfg().records.len() as u64;
    let partitions: std::collections::BTreeSet<_> = done.iter().map(|(tp, _)| tp).collect();
    !partitions.is_empty()
        && partitions
            .iter()
            .all(|tp| (0..per_partition).all(|o| done.contains(&((*tp).clone(), o))))
}

/// The safety properties of `model` that do not hold in `state`, by name: the very conditions
/// the checker evaluates, so tests can show each one failing on a hand-built violating state.
pub fn violated(model: &SeedlogModel, state: &State) -> Vec<&'static str> {
    use stateright::Model;
    model
        .properties()
        .into_iter()
        .filter(|p| matches!(p.expectation, Expectation::Always) && !(p.condition)(model, state))
        .map(|p| p.name)
        .collect()
}

/// A leader's retention deleted records: some broker's log starts above 0.
fn reaches_retention<M: Layout>(m: &M, s: &State) -> bool {
    live_brokers(m.cfg(), s)
        .any(|(_, b)| b.replicas().values().any(|r| r.log.log_start_offset() > 0))
}

/// Every running node's own invariants hold (`check_invariants`, which the drivers run after
/// every step): a state machine that corrupted its state is caught in the step that did it,
/// whether or not a client would ever see the effect.
fn node_invariant<M: Layout>(_: &M, s: &State) -> bool {
    s.actor_states
        .iter()
        .enumerate()
        .all(|(i, a)| s.crashed[i] || a.sound())
}

/// Every leader counts, for its high watermark, every member of the ISR the controller
/// committed for its leader epoch (`Broker::check_against_committed`): a member it dropped
/// while the controller took it in could be elected without records the leader acknowledged.
fn isr_known_to_leader<M: Layout>(m: &M, s: &State) -> bool {
    let Some(md) = controller_metadata(m.cfg(), s) else {
        return true;
    };
    live_brokers(m.cfg(), s).all(|(_, b)| b.check_against_committed(&md, None).is_ok())
}

/// Every member of the ISR the controller committed, running in the incarnation it registered,
/// holds everything below its leader's high watermark (`check_isr_member_holds`).
fn isr_member_holds_hw<M: Layout>(m: &M, s: &State) -> bool {
    let Some(md) = controller_metadata(m.cfg(), s) else {
        return true;
    };
    let brokers: Vec<&Broker> = live_brokers(m.cfg(), s).map(|(_, b)| b).collect();
    brokers.iter().all(|l| {
        l.each_committed_isr_member(&md, |tp, hw, f, reg| {
            brokers
                .iter()
                .find(|b| b.id() == f)
                .map_or(Ok(()), |b| b.check_isr_member_holds(tp, hw, reg))
        })
        .is_ok()
    })
}

/// Every leader's record of a follower's progress is held by that follower while it follows
/// that leader in that epoch, in the incarnation that fetched (`check_recorded_progress`): the
/// high watermark rests on those records.
fn progress_held_by_follower<M: Layout>(m: &M, s: &State) -> bool {
    let brokers: Vec<&Broker> = live_brokers(m.cfg(), s).map(|(_, b)| b).collect();
    brokers.iter().all(|l| {
        l.each_recorded_progress(|tp, epoch, f, p, _| {
            brokers
                .iter()
                .find(|b| b.id() == f)
                .map_or(Ok(()), |b| b.check_recorded_progress(l.id(), tp, epoch, p))
        })
        .is_ok()
    })
}

/// Every running node's disk, as written (the page cache included), rebuilds the state it runs
/// with (`Broker::check_disk_image`, `QuorumNode::check_disk_image`): a change made in memory
/// with no journal write for it would be undone by the crash the model may take next.
fn disk_matches_memory<M: Layout>(_: &M, s: &State) -> bool {
    s.actor_states.iter().enumerate().all(|(i, a)| {
        // A running node's own disk, which each of its steps writes as it changes the node.
        s.crashed[i]
            || a.node()
                .is_none_or(|n| n.check_disk_image(&a.disk().written).is_ok())
    })
}

/// A property: what is expected, its name, and its condition.
pub type Named<M> = (Expectation, &'static str, fn(&M, &State) -> bool);

/// The properties of a model of `cfg`'s kind: always-properties (names as in
/// `docs/architecture.md`) and `sometimes` ones showing the model gets somewhere.
pub fn list<M: Layout>(cfg: &ModelCfg) -> Vec<Named<M>> {
    use Expectation::{Always as A, Sometimes as S};
    let mut props: Vec<Named<M>> = vec![
        (A, "node-invariant", node_invariant),
        (A, "disk-matches-memory", disk_matches_memory),
    ];
    if cfg.kind != ModelKind::Quorum {
        props.push((A, "isr-known-to-leader", isr_known_to_leader));
        props.push((A, "progress-held-by-follower", progress_held_by_follower));
        props.push((A, "isr-member-holds-hw", isr_member_holds_hw));
    }
    match cfg.kind {
        ModelKind::Replication => {
            props.push((A, "acked-not-lost", acked_not_lost));
            props.push((A, "log-matching", log_matching));
            props.push((A, "single-leader-per-epoch", single_leader_per_epoch));
            // What the reader saw: only meaningful with a reader.
            if cfg.reader.is_some() {
                props.push((A, "consumed-stable", consumed_stable));
                props.push((A, "hw-monotonic", hw_monotonic));
                props.push((S, "reaches read", reaches_read));
            }
            if cfg.idempotent {
                props.push((A, "no-duplicates", no_duplicates));
                props.push((A, "acked-in-order", acked_in_order));
            }
            props.push((S, "reaches acked write", reaches_ack));
            props.push((S, "reaches failover", reaches_failover));
            props.push((S, "reaches ack after failover", reaches_ack_after_failover));
            props.push((S, "reaches truncation", reaches_truncation));
            if cfg.retentions > 0 {
                props.push((S, "reaches retention delete", reaches_retention));
            }
            if cfg.controllers > 1 {
                props.push((
                    S,
                    "reaches controller failover",
                    reaches_controller_failover,
                ));
            }
        }
        ModelKind::Partitioning => {
            props.push((A, "per-key-partition", per_key_partition));
            props.push((A, "per-key-order", per_key_order));
            if cfg.idempotent {
                props.push((A, "no-duplicates", no_duplicates));
                props.push((A, "acked-in-order", acked_in_order));
            }
            props.push((A, "log-matching", log_matching));
            props.push((A, "single-leader-per-epoch", single_leader_per_epoch));
            props.push((S, "reaches acked write", reaches_ack));
            props.push((S, "reaches both partitions", reaches_both_partitions));
            props.push((S, "reaches failover", reaches_failover));
        }
        ModelKind::Offsets => {
            props.push((A, "offsets-monotonic", offsets_monotonic));
            props.push((A, "at-least-once", at_least_once));
            props.push((A, "offset-fetch-fresh", offset_fetch_fresh));
            props.push((A, "log-matching", log_matching));
            props.push((A, "single-leader-per-epoch", single_leader_per_epoch));
            props.push((S, "reaches commit", reaches_commit));
            props.push((S, "reaches all processed", reaches_all_processed));
            props.push((S, "reaches rebalance", reaches_rebalance));
            // The offsets model reaches a coordinator failover only if a broker can be fenced.
            if cfg.expiries > 0 {
                props.push((
                    S,
                    "reaches coordinator failover",
                    reaches_coordinator_failover,
                ));
            }
        }
        ModelKind::Quorum => props.extend(crate::quorum::properties()),
    }
    props
}

/// Registers the properties of the model's kind on the actor model.
pub fn add(model: SeedlogModel) -> SeedlogModel {
    list::<SeedlogModel>(&model.cfg)
        .into_iter()
        .fold(model, |m, (e, name, f)| m.property(e, name, f))
}

/// Crashes so far: completed restarts (counted in the disks, so they survive the crash) and
/// actors down now.
pub fn crashes_so_far(s: &State) -> usize {
    let boots: usize = s
        .actor_storages
        .iter()
        .flatten()
        .map(|d| d.boots as usize)
        .sum();
    boots + s.crashed.iter().filter(|c| **c).count()
}

/// Faults of one kind counted so far, in every actor's disk.
pub fn faults_so_far(s: &State, fault: Fault) -> usize {
    s.actor_storages
        .iter()
        .flatten()
        .map(|d| fault.counted(d))
        .sum()
}

/// How many faults of one kind a run may have.
pub fn fault_budget(cfg: &ModelCfg, fault: Fault) -> usize {
    match fault {
        Fault::Expiry => cfg.expiries,
        Fault::Eviction => cfg.evictions,
        Fault::MemberExpiry => cfg.member_expiries,
        Fault::Retention => cfg.retentions,
    }
}

/// Bounds: the producer and reader (and, in the offsets model, the controller) never crash; at
/// most `crashes` crashes in all; at most `max_version` controller changes; at most `expiries`
/// broker session expiries, `evictions` ISR evictions and `member_expiries` group member session
/// expiries, and `refusals` group requests refused to members.
pub fn within_boundary(cfg: &ModelCfg, s: &State) -> bool {
    if cfg.never_crash.iter().any(|&i| s.crashed[i]) {
        return false;
    }
    if crashes_so_far(s) > cfg.crashes {
        return false;
    }
    let faults = [
        Fault::Expiry,
        Fault::Eviction,
        Fault::MemberExpiry,
        Fault::Retention,
    ];
    if faults
        .iter()
        .any(|&f| faults_so_far(s, f) > fault_budget(cfg, f))
    {
        return false;
    }
    let refusals: usize = s
        .actor_storages
        .iter()
        .flatten()
        .map(|d| d.refusals as usize)
        .sum();
    if refusals > cfg.refusals {
        return false;
    }
    if cfg.kind == ModelKind::Quorum {
        return crate::quorum::within_epochs(cfg, s);
    }
    if cfg.controllers > 1 {
        return quorum_within_versions(cfg, s);
    }
    controller_metadata(cfg, s).is_none_or(|md| md.version <= cfg.max_version)
}
