//! End-of-run checks on the cluster itself (the history checker covers what clients saw):
//! after the heal, within the liveness bound, every partition has a leader whose committed log
//! every replica holds identically, the final reader has read up to every high watermark, and
//! every producer has finished. Partition problems are named first: they explain the others.

use super::cluster::{lock, Cluster};
use crate::scenario::{Scenario, CONTROLLER, FINAL_READER, TOPIC};
use seedlog::node::AnyNode;
use seedlog::protocol::{ClusterMetadata, LogEntry, TopicPartition};

/// Why the cluster has not converged yet (`None`: it has).
pub fn not_converged(cluster: &Cluster, sc: &Scenario) -> Option<String> {
    let metadata: ClusterMetadata = match &*lock(&cluster.nodes.get(&CONTROLLER)?.state) {
        AnyNode::Controller(c) => c.metadata().clone(),
        _ => return Some("the controller is not running".into()),
    };
    for p in 0..sc.partitions {
        let tp = TopicPartition::new(TOPIC, p);
        let Some(ps) = metadata.partition(&tp) else {
            return Some(format!("{tp} is unknown to the controller"));
        };
        let Some(leader) = ps.leader else {
            return Some(format!("{tp} has no leader"));
        };
        let Some(leader_log) = log_of(cluster, leader, &tp) else {
            return Some(format!("{tp}: leader b{leader} has no log"));
        };
        let (hw, leo) = leader_log.1;
        if hw != leo {
            return Some(format!("{tp}: leader b{leader} has HW {hw} < LEO {leo}"));
        }
        for &r in &ps.replicas {
            match log_of(cluster, r, &tp) {
                Some((entries, _)) if entries == leader_log.0 => {}
                Some((entries, _)) => {
                    return Some(format!(
                        "{tp}: b{r} holds {} entries, leader b{leader} {}{}",
                        entries.len(),
                        leader_log.0.len(),
                        first_difference(&entries, &leader_log.0)
                    ))
                }
                None => return Some(format!("{tp}: b{r} is not running")),
            }
        }
        let read = match cluster
            .nodes
            .get(&FINAL_READER)
            .map(|n| lock(&n.state).clone())
        {
            Some(AnyNode::Reader(r)) => r.positions().get(&p).copied().unwrap_or(0),
            _ => 0,
        };
        if read < hw {
            return Some(format!("{tp}: the final reader is at {read}, HW is {hw}"));
        }
    }
    for n in cluster.nodes.values() {
        if let AnyNode::Producer(p) = &*lock(&n.state) {
            if !p.finished() {
                return Some(format!(
                    "{} has {} records left",
                    Scenario::node_name(n.id),
                    p.config().records.len().min(p.done() + 1) - p.done()
                ));
            }
        }
    }
    None
}

type LogView = (Vec<LogEntry>, (u64, u64));

fn log_of(cluster: &Cluster, broker: u32, tp: &TopicPartition) -> Option<LogView> {
    match &*lock(&cluster.nodes.get(&broker)?.state) {
        AnyNode::Broker(b) => b.log(tp).map(|l| {
            (
                l.entries().to_vec(),
                (l.high_watermark(), l.log_end_offset()),
            )
        }),
        _ => None,
    }
}

fn first_difference(a: &[LogEntry], b: &[LogEntry]) -> String {
    match a.iter().zip(b).find(|(x, y)| x != y) {
        Some((x, y)) => format!("; first difference at offset {}: {x} vs {y}", x.offset),
        None => String::new(),
    }
}
