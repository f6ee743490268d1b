//! End-of-run checks on the cluster itself (the history checker covers what clients saw):
//! after the heal, within the liveness bound, every partition has a leader whose committed log
//! every replica holds identically (the `__consumer_offsets` partitions too), the final reader has
//! read up to every high watermark, every producer has finished, and the consumer group has
//! committed every partition up to its high watermark. Partition problems are named first: they
//! explain the others.

use super::cluster::{lock, Cluster};
use crate::scenario::{Scenario, ADMIN, FINAL_READER, GROUP, OFFSETS_PARTITIONS, TOPIC};
use seedlog::log::PartitionLog;
use seedlog::node::admin::topic_layout;
use seedlog::node::{AnyNode, Created};
use seedlog::protocol::{
    group_partition, ClusterMetadata, ErrorCode, LogEntry, NodeId, Offset, PartitionState,
    QuorumEpoch, TopicPartition, OFFSETS_TOPIC,
};
use std::collections::BTreeMap;

/// One controller is active, no other believes it is, every broker follows it (talks to it
/// and took metadata of its epoch), and every other controller has applied the quorum's log as
/// far as it has: its committed metadata, or why not.
fn controllers_settled(cluster: &Cluster, sc: &Scenario) -> Result<ClusterMetadata, String> {
    let active = cluster.active_controllers();
    let followed: Vec<(NodeId, NodeId, QuorumEpoch)> = sc
        .broker_ids()
        .into_iter()
        .filter_map(|b| {
            let state = lock(&cluster.nodes.get(&b)?.state);
            let link = state.as_broker()?.controller();
            Some((b, link.target(), link.epoch()))
        })
        .collect();
    let controller = settled_controller(&active, &followed)?;
    let applied = |id: NodeId| {
        let state = lock(&cluster.nodes.get(&id)?.state);
        Some((id, state.as_quorum_controller()?.quorum().applied()))
    };
    let others: Vec<(NodeId, Offset)> = (sc.controller_ids().into_iter())
        .filter(|&id| id != controller)
        .filter_map(applied)
        .collect();
    voters_caught_up(applied(controller).expect("listed above"), &others)?;
    let state = lock(&cluster.nodes[&controller].state);
    let c = state.as_quorum_controller().expect("listed above");
    Ok(c.metadata().clone())
}

/// The decision of `controllers_settled` on what it read: the controllers that believe they
/// are active, with their epochs, and each running broker with the controller it follows and
/// that controller's epoch as it knows it. The one active controller, or why not.
fn settled_controller(
    active: &[(NodeId, QuorumEpoch)],
    followed: &[(NodeId, NodeId, QuorumEpoch)],
) -> Result<NodeId, String> {
    let [(controller, epoch)] = active[..] else {
        return Err(format!(
            "active controllers {active:?} (id, epoch): not exactly one"
        ));
    };
    for &(b, target, target_epoch) in followed {
        if target != controller || target_epoch != epoch {
            return Err(format!(
                "b{b} follows controller {} of epoch {target_epoch}, the active one is {} of \
                 epoch {epoch}",
                Scenario::node_name(target),
                Scenario::node_name(controller)
            ));
        }
    }
    Ok(controller)
}

/// The active controller's committed metadata, once the controllers have settled
/// (`controllers_settled`).
pub fn settled_metadata(cluster: &Cluster, sc: &Scenario) -> Option<ClusterMetadata> {
    controllers_settled(cluster, sc).ok()
}

/// Every other voter has applied the quorum's log as far as the active controller has. A voter
/// left behind for good (say, one that keeps a diverging tail it should have cut) costs the
/// quorum nothing while the other two agree, so no other check sees it; it is one failure
/// from an unavailable quorum.
fn voters_caught_up(active: (NodeId, Offset), others: &[(NodeId, Offset)]) -> Result<(), String> {
    match others.iter().find(|(_, applied)| *applied < active.1) {
        None => Ok(()),
        Some(&(id, applied)) => Err(format!(
            "controller {} has applied the quorum's log to offset {applied}, the active {} to {}",
            Scenario::node_name(id),
            Scenario::node_name(active.0),
            active.1
        )),
    }
}

/// Why the cluster has not converged yet (`None`: it has).
pub fn not_converged(cluster: &Cluster, sc: &Scenario) -> Option<String> {
    let metadata: ClusterMetadata = match controllers_settled(cluster, sc) {
        Ok(md) => md,
        Err(why) => return Some(why),
    };
    let offsets = (0..OFFSETS_PARTITIONS).map(|p| TopicPartition::new(OFFSETS_TOPIC, p));
    let data = (0..sc.partitions).map(|p| TopicPartition::new(TOPIC, p));
    let mut high_watermarks = BTreeMap::new();
    for tp in offsets.chain(data) {
        let p = tp.partition;
        let Some(ps) = metadata.partition(&tp) else {
            return Some(format!("{tp} is unknown to the controller"));
        };
        let Some(leader) = ps.leader else {
            return Some(format!("{tp} has no leader"));
        };
        // Compared where they lie, each node locked in turn (this runs every 250 ms of the
        // liveness phase; copying every log to compare it was a twentieth of a run).
        let compared = with_log(cluster, leader, &tp, |leader_log| {
            let (hw, leo) = (leader_log.high_watermark(), leader_log.log_end_offset());
            if hw != leo {
                return Err(format!("{tp}: leader b{leader} has HW {hw} < LEO {leo}"));
            }
            for &r in ps.replicas.iter().filter(|&&r| r != leader) {
                let differs = with_log(cluster, r, &tp, |log| {
                    let (entries, end) = (log.entries(), log.log_end_offset());
                    (!same_retained((entries, end), (leader_log.entries(), leo))).then(|| {
                        format!(
                            "{tp}: b{r} holds {} entries, leader b{leader} {}{}",
                            entries.len(),
                            leader_log.entries().len(),
                            first_difference(entries, leader_log.entries())
                        )
                    })
                });
                match differs {
                    Some(None) => {}
                    Some(Some(why)) => return Err(why),
                    None => return Err(format!("{tp}: b{r} is not running")),
                }
            }
            Ok(hw)
        });
        let hw = match compared {
            Some(Ok(hw)) => hw,
            Some(Err(why)) => return Some(why),
            None => return Some(format!("{tp}: leader b{leader} has no log")),
        };
        if let Some(why) = under_replicated(ps) {
            return Some(why);
        }
        if tp.topic != TOPIC {
            continue;
        }
        high_watermarks.insert(tp.clone(), hw);
        let read = cluster
            .nodes
            .get(&FINAL_READER)
            .map_or(0, |n| match &*lock(&n.state) {
                AnyNode::Reader(r) => r.positions().get(&p).copied().unwrap_or(0),
                _ => 0,
            });
        if read < hw {
            return Some(format!("{tp}: the final reader is at {read}, HW is {hw}"));
        }
    }
    if sc.members > 0 {
        if let Some(lag) = group_lag(group_offsets(cluster, &metadata).as_ref(), &high_watermarks) {
            return Some(lag);
        }
    }
    for n in cluster.nodes.values() {
        if let AnyNode::Admin(a) = &*lock(&n.state) {
            if !a.finished() {
                return Some(format!(
                    "{} has topics it was not answered about",
                    Scenario::node_name(n.id)
                ));
            }
        }
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

/// Asked once every replica runs and holds the leader's log: each must be back in the ISR
/// (Kafka's under-replicated partitions, zero on a healthy cluster). A leader that stops
/// proposing expansions otherwise goes unnoticed until a fault finds the ISR too small.
fn under_replicated(ps: &PartitionState) -> Option<String> {
    let missing: Vec<_> = ps.replicas.iter().filter(|r| !ps.isr.contains(r)).collect();
    (!missing.is_empty()).then(|| {
        format!(
            "{}: under-replicated, ISR {:?} lacks {missing:?}",
            ps.tp, ps.isr
        )
    })
}

/// Where the group's committed offsets (`None`: no loaded coordinator) fall short of the data
/// partitions' high watermarks. A partition that never got a record needs no commit.
fn group_lag(
    committed: Option<&BTreeMap<TopicPartition, Offset>>,
    high_watermarks: &BTreeMap<TopicPartition, Offset>,
) -> Option<String> {
    for (tp, hw) in high_watermarks {
        let c = committed.and_then(|c| c.get(tp).copied());
        if c != Some(*hw) && !(c.is_none() && *hw == 0) {
            let c = c.map_or("nothing".to_string(), |c| c.to_string());
            return Some(format!(
                "group {GROUP} has committed {c} for {tp}, HW is {hw}"
            ));
        }
    }
    None
}

/// The group's committed offsets as its coordinator holds them (`None`: no loaded coordinator).
fn group_offsets(
    cluster: &Cluster,
    metadata: &ClusterMetadata,
) -> Option<BTreeMap<TopicPartition, Offset>> {
    let p = group_partition(GROUP, OFFSETS_PARTITIONS);
    let leader = metadata
        .partition(&TopicPartition::new(OFFSETS_TOPIC, p))?
        .leader?;
    match &*lock(&cluster.nodes.get(&leader)?.state) {
        AnyNode::Broker(b) => {
            let c = b.coordinators().get(&p).filter(|c| c.is_loaded())?;
            Some(
                c.groups()
                    .get(GROUP)
                    .map(|g| g.offsets.clone())
                    .unwrap_or_default(),
            )
        }
        _ => None,
    }
}

/// Every running broker's log end of each partition of the workload's topic. Producers have
/// stopped once the faults healed, so these grow afterwards only as replicas catch up.
pub fn data_log_ends(cluster: &Cluster, sc: &Scenario) -> BTreeMap<(u32, u32), Offset> {
    let mut ends = BTreeMap::new();
    for p in 0..sc.partitions {
        let tp = TopicPartition::new(TOPIC, p);
        for b in sc.broker_ids() {
            if let Some(end) = with_log(cluster, b, &tp, PartitionLog::log_end_offset) {
                ends.insert((p, b), end);
            }
        }
    }
    ends
}

/// `f` of the log of `tp` on `broker` (`None`: not running, or no such log), read in place.
fn with_log<R>(
    cluster: &Cluster,
    broker: u32,
    tp: &TopicPartition,
    f: impl FnOnce(&PartitionLog) -> R,
) -> Option<R> {
    match &*lock(&cluster.nodes.get(&broker)?.state) {
        AnyNode::Broker(b) => b.log(tp).map(f),
        _ => None,
    }
}

/// Two replicas agree if they end at the same offset and hold the same entries from the later
/// of their log starts on: retention may have deleted more on one (a former leader) than on the
/// other, and a log start never moves back.
fn same_retained(a: (&[LogEntry], u64), b: (&[LogEntry], u64)) -> bool {
    let start = |l: &[LogEntry], end: u64| l.first().map_or(end, |e| e.offset);
    let from = start(a.0, a.1).max(start(b.0, b.1));
    a.1 == b.1 && tail_from(a.0, from) == tail_from(b.0, from)
}

/// The entries at or above `from`.
fn tail_from(l: &[LogEntry], from: u64) -> &[LogEntry] {
    &l[l.partition_point(|e| e.offset < from)..]
}

fn first_difference(a: &[LogEntry], b: &[LogEntry]) -> String {
    match a.iter().zip(b).find(|(x, y)| x != y) {
        Some((x, y)) => format!("; first difference at offset {}: {x} vs {y}", x.offset),
        None => String::new(),
    }
}

/// What the admin client was told against what the quorum committed: a topic answered created
/// must be committed with the replicas the answer gave (`created-topic-lost` if absent,
/// `created-topic-diverged` if laid out otherwise); one a retry was told exists must be
/// committed. A refusal for good must hold too (`created-topic-refused`): a topic refused as
/// invalid is never committed, and no request of the admin's is told its topic exists but a
/// retry (nobody else creates the admin's topics, and a broker forwards each request once).
pub fn created_topics(cluster: &Cluster) -> Vec<String> {
    let Some(admin) = cluster.nodes.get(&ADMIN) else {
        return Vec::new();
    };
    let outcomes = match &*lock(&admin.state) {
        AnyNode::Admin(a) => a.outcomes().clone(),
        _ => return Vec::new(),
    };
    let committed = lock(&cluster.committed);
    outcomes
        .iter()
        .filter_map(|(topic, outcome)| {
            created_topic_problem(topic, outcome, topic_layout(committed.metadata(), topic))
        })
        .collect()
}

/// The decision of `created_topics` for one topic: what the admin was told, and the committed
/// replicas of each partition (`None`: no such topic).
fn created_topic_problem(
    topic: &str,
    outcome: &Created,
    committed: Option<Vec<Vec<u32>>>,
) -> Option<String> {
    match (outcome, committed) {
        (Created::Created(_) | Created::Exists, None) => Some(format!(
            "created-topic-lost: a0 was told {outcome:?} for {topic}, which no committed \
             metadata holds"
        )),
        (Created::Created(told), Some(held)) if *told != held => Some(format!(
            "created-topic-diverged: a0 was told {topic} has replicas {told:?}, the committed \
             metadata holds {held:?}"
        )),
        (Created::Refused(ErrorCode::TopicAlreadyExists), _) => Some(format!(
            "created-topic-refused: a0's first request for {topic} was told the topic exists, \
             which only a retry can be"
        )),
        (Created::Refused(e), Some(held)) => Some(format!(
            "created-topic-refused: a0 was told {topic} was refused ({e:?}), the committed \
             metadata holds it with replicas {held:?}"
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offsets(pairs: &[(u32, Offset)]) -> BTreeMap<TopicPartition, Offset> {
        pairs
            .iter()
            .map(|&(p, o)| (TopicPartition::new(TOPIC, p), o))
            .collect()
    }

    #[test]
    fn a_created_topic_must_be_committed_as_answered() {
        let told = Created::Created(vec![vec![0, 1], vec![1, 2]]);
        let same = Some(vec![vec![0, 1], vec![1, 2]]);
        assert_eq!(created_topic_problem("t", &told, same.clone()), None);
        let lost = created_topic_problem("t", &told, None).expect("lost");
        assert!(lost.starts_with("created-topic-lost: "), "{lost}");
        let other = Some(vec![vec![0, 1], vec![2, 0]]);
        let diverged = created_topic_problem("t", &told, other).expect("diverged");
        assert!(
            diverged.starts_with("created-topic-diverged: "),
            "{diverged}"
        );
        // A retry told "exists": committed, whatever its layout.
        assert_eq!(
            created_topic_problem("t", &Created::Exists, same.clone()),
            None
        );
        assert!(created_topic_problem("t", &Created::Exists, None).is_some());
        // A refusal as invalid: never committed.
        let refused = Created::Refused(ErrorCode::InvalidPartitions);
        assert_eq!(created_topic_problem("t", &refused, None), None);
        let held = created_topic_problem("t", &refused, same.clone()).expect("refused, held");
        assert!(held.starts_with("created-topic-refused: "), "{held}");
        // "Exists" can only answer a retry: a first request told so is reported, committed or not.
        let exists = Created::Refused(ErrorCode::TopicAlreadyExists);
        for committed in [same, None] {
            let p = created_topic_problem("t", &exists, committed).expect("first told exists");
            assert!(p.starts_with("created-topic-refused: "), "{p}");
        }
    }

    /// The liveness condition on the controllers: exactly one active controller, followed by
    /// every broker in its epoch. Settled passes; two active controllers, none, a broker
    /// following a stale epoch of the active one, and a broker following another controller
    /// are each reported.
    #[test]
    fn settled_controller_reports_anything_but_one_active_controller_followed_by_all() {
        let all_follow = |c, e| vec![(0, c, e), (1, c, e), (2, c, e)];
        assert_eq!(
            settled_controller(&[(101, 4)], &all_follow(101, 4)),
            Ok(101)
        );
        // (a) Two controllers believe they are active (a deposed one has not heard of its
        // successor), even with every broker following the newer.
        let two = settled_controller(&[(100, 3), (101, 4)], &all_follow(101, 4));
        assert_eq!(
            two,
            Err("active controllers [(100, 3), (101, 4)] (id, epoch): not exactly one".into())
        );
        // (b) No active controller (an election under way).
        let none = settled_controller(&[], &all_follow(101, 4));
        assert_eq!(
            none,
            Err("active controllers [] (id, epoch): not exactly one".into())
        );
        // (c) A broker that follows the active controller in an older epoch (it missed the
        // announcement of the new one), and a broker that follows another controller.
        let stale = settled_controller(&[(101, 4)], &[(0, 101, 4), (1, 101, 2), (2, 101, 4)]);
        assert_eq!(
            stale,
            Err("b1 follows controller ctl1 of epoch 2, the active one is ctl1 of epoch 4".into())
        );
        let other = settled_controller(&[(101, 4)], &[(0, 101, 4), (1, 101, 4), (2, 100, 4)]);
        assert_eq!(
            other,
            Err("b2 follows controller ctl0 of epoch 4, the active one is ctl1 of epoch 4".into())
        );
        // No running broker to follow it: nothing to report about brokers.
        assert_eq!(settled_controller(&[(102, 7)], &[]), Ok(102));
    }

    /// A voter behind the active controller's applied offset keeps the run from converging;
    /// one level with it, or none at all, does not.
    #[test]
    fn a_voter_behind_the_active_controller_is_reported() {
        assert_eq!(voters_caught_up((101, 9), &[(100, 9), (102, 9)]), Ok(()));
        assert_eq!(voters_caught_up((101, 9), &[]), Ok(()));
        assert_eq!(
            voters_caught_up((101, 9), &[(100, 9), (102, 5)]),
            Err(
                "controller ctl2 has applied the quorum's log to offset 5, the active ctl1 to 9"
                    .into()
            )
        );
    }

    /// The liveness condition on the group: caught up passes; a commit behind the high
    /// watermark, a partition never committed, and no loaded coordinator are each reported.
    #[test]
    fn a_replica_left_out_of_the_isr_is_under_replicated() {
        let mut ps = PartitionState {
            tp: TopicPartition::new("events", 1),
            replicas: vec![2, 0, 1],
            leader: Some(2),
            leader_epoch: 3,
            isr: vec![0, 1, 2],
            partition_epoch: 7,
        };
        assert_eq!(under_replicated(&ps), None);
        ps.isr = vec![2];
        assert_eq!(
            under_replicated(&ps).as_deref(),
            Some("events-1: under-replicated, ISR [2] lacks [0, 1]")
        );
    }

    #[test]
    fn group_lag_reports_a_group_behind_its_high_watermarks() {
        let hws = offsets(&[(0, 5), (1, 0), (2, 3)]);
        assert_eq!(group_lag(Some(&offsets(&[(0, 5), (2, 3)])), &hws), None);
        assert_eq!(
            group_lag(Some(&offsets(&[(0, 4), (2, 3)])), &hws).as_deref(),
            Some("group g0 has committed 4 for events-0, HW is 5")
        );
        assert_eq!(
            group_lag(Some(&offsets(&[(0, 5)])), &hws).as_deref(),
            Some("group g0 has committed nothing for events-2, HW is 3")
        );
        assert!(group_lag(None, &hws).is_some());
        // An empty cluster needs no coordinator.
        assert_eq!(group_lag(None, &offsets(&[(0, 0)])), None);
    }
}
