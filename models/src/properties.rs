//! The properties checked over every reachable state, named as in DESIGN.md, and the bounds that
//! keep the state space finite.

use crate::actor::{NodeActor, NodeState};
use crate::cluster::{ModelCfg, ModelKind, SeedlogModel};
use crate::history::History;
use seedlog::node::{Broker, Image};
use seedlog::protocol::{ClusterMetadata, TopicPartition};
use stateright::actor::ActorModelState;
use stateright::Expectation;
use std::collections::BTreeMap;

pub type State = ActorModelState<NodeActor, History>;

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
fn controller_metadata<'a>(cfg: &ModelCfg, s: &'a State) -> Option<&'a ClusterMetadata> {
    let c = cfg.controller;
    if let Some(ctl) = s.actor_states[c].node().and_then(|n| n.as_controller()) {
        if !s.crashed[c] {
            return Some(ctl.metadata());
        }
    }
    match &s.actor_storages[c].as_ref()?.synced {
        Image::Controller(img) => Some(&img.metadata),
        _ => None,
    }
}

/// Every broker acting as leader in the controller's current epoch holds `value` at `offset`.
fn current_leaders_hold(
    cfg: &ModelCfg,
    s: &State,
    tp: &TopicPartition,
    offset: u64,
    value: &[u8],
) -> bool {
    let Some(epoch) = controller_metadata(cfg, s)
        .and_then(|md| md.partition(tp))
        .map(|p| p.leader_epoch)
    else {
        return true;
    };
    live_brokers(cfg, s)
        .filter(|(_, b)| b.leader_epoch_of(tp) == Some(epoch))
        .all(|(_, b)| {
            b.log(tp)
                .and_then(|l| l.entry(offset))
                .is_some_and(|e| e.record.value == value)
        })
}

fn acked_not_lost(m: &SeedlogModel, s: &State) -> bool {
    let cfg = &m.cfg;
    s.history.acked.iter().all(|(tp, offset, i)| {
        let value = &cfg.records[*i].value;
        current_leaders_hold(cfg, s, tp, *offset, value)
    })
}

fn consumed_stable(m: &SeedlogModel, s: &State) -> bool {
    s.history
        .read
        .iter()
        .all(|(tp, offset, value)| current_leaders_hold(&m.cfg, s, tp, *offset, value))
}

/// Two replicas holding an entry of the same epoch at one offset hold the same entries up to it.
fn log_matching(m: &SeedlogModel, s: &State) -> bool {
    let brokers: Vec<_> = live_brokers(&m.cfg, s).collect();
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

fn single_leader_per_epoch(m: &SeedlogModel, s: &State) -> bool {
    let mut seen: BTreeMap<(TopicPartition, u32), usize> = BTreeMap::new();
    for (i, b) in live_brokers(&m.cfg, s) {
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

fn hw_monotonic(_: &SeedlogModel, s: &State) -> bool {
    !s.history.hw_regressed
}

/// Acknowledged records of one key, in the order the producer sent them.
fn acked_by_key(
    m: &SeedlogModel,
    s: &State,
) -> BTreeMap<Vec<u8>, Vec<(usize, TopicPartition, u64)>> {
    let mut by_key: BTreeMap<Vec<u8>, Vec<(usize, TopicPartition, u64)>> = BTreeMap::new();
    for (tp, offset, i) in &s.history.acked {
        let key = m.cfg.records[*i].key.clone().unwrap_or_default();
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

fn per_key_partition(m: &SeedlogModel, s: &State) -> bool {
    acked_by_key(m, s)
        .values()
        .all(|v| v.windows(2).all(|w| w[0].1 == w[1].1))
}

/// A later send of a key is acknowledged at a higher offset than every earlier one (retries may
/// duplicate a record, but never put it before its predecessors).
fn per_key_order(m: &SeedlogModel, s: &State) -> bool {
    acked_by_key(m, s).values().all(|v| {
        v.iter().all(|(i, tp, o)| {
            v.iter()
                .filter(|(j, tp2, _)| j < i && tp2 == tp)
                .all(|(_, _, o2)| o2 < o)
        })
    })
}

fn reaches_ack(_: &SeedlogModel, s: &State) -> bool {
    !s.history.acked.is_empty()
}

fn reaches_read(_: &SeedlogModel, s: &State) -> bool {
    !s.history.read.is_empty()
}

fn reaches_failover(m: &SeedlogModel, s: &State) -> bool {
    controller_metadata(&m.cfg, s).is_some_and(|md| {
        md.partitions
            .iter()
            .any(|p| p.leader.is_some() && p.leader_epoch > 0)
    })
}

fn reaches_ack_after_failover(m: &SeedlogModel, s: &State) -> bool {
    let led_by_new = |tp: &TopicPartition, offset: u64| {
        live_brokers(&m.cfg, s).any(|(_, b)| {
            b.log(tp)
                .and_then(|l| l.entry(offset))
                .is_some_and(|e| e.epoch > 0)
        })
    };
    s.history.acked.iter().any(|(tp, o, _)| led_by_new(tp, *o))
}

fn reaches_truncation(_: &SeedlogModel, s: &State) -> bool {
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

fn reaches_both_partitions(_: &SeedlogModel, s: &State) -> bool {
    let parts: std::collections::BTreeSet<_> =
        s.history.acked.iter().map(|(tp, _, _)| tp).collect();
    parts.len() >= 2
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

pub fn add(model: SeedlogModel, kind: ModelKind, reader: bool) -> SeedlogModel {
    use Expectation::{Always as A, Sometimes as S};
    match kind {
        ModelKind::Replication => {
            let model = model
                .property(A, "acked-not-lost", acked_not_lost)
                .property(A, "log-matching", log_matching)
                .property(A, "single-leader-per-epoch", single_leader_per_epoch);
            // What the reader saw: only meaningful with a reader.
            let model = if reader {
                model
                    .property(A, "consumed-stable", consumed_stable)
                    .property(A, "hw-monotonic", hw_monotonic)
                    .property(S, "reaches read", reaches_read)
            } else {
                model
            };
            model
                .property(S, "reaches acked write", reaches_ack)
                .property(S, "reaches failover", reaches_failover)
                .property(S, "reaches ack after failover", reaches_ack_after_failover)
                .property(S, "reaches truncation", reaches_truncation)
        }
        ModelKind::Partitioning => model
            .property(A, "per-key-partition", per_key_partition)
            .property(A, "per-key-order", per_key_order)
            .property(A, "log-matching", log_matching)
            .property(A, "single-leader-per-epoch", single_leader_per_epoch)
            .property(S, "reaches acked write", reaches_ack)
            .property(S, "reaches both partitions", reaches_both_partitions)
            .property(S, "reaches failover", reaches_failover),
    }
}

/// Bounds: clients never crash; at most `crashes` crashes in all; at most `max_version`
/// controller changes.
pub fn within_boundary(cfg: &ModelCfg, s: &State) -> bool {
    if s.crashed[cfg.producer] || cfg.reader.is_some_and(|r| s.crashed[r]) {
        return false;
    }
    let disks = || s.actor_storages.iter().flatten();
    let boots: usize = disks().map(|d| d.boots as usize).sum();
    let down = s.crashed.iter().filter(|c| **c).count();
    if boots + down > cfg.crashes {
        return false;
    }
    if disks().map(|d| d.expiries as usize).sum::<usize>() > cfg.expiries
        || disks().map(|d| d.evictions as usize).sum::<usize>() > cfg.evictions
    {
        return false;
    }
    controller_metadata(cfg, s).is_none_or(|md| md.version <= cfg.max_version)
}
