//! The calm after the run: once the cluster has converged and the probes were acknowledged, it is
//! left alone for `SETTLE_MS` and then `CALM_MS`, with no faults and no new writes. A healthy
//! cluster stays as it is:
//! the leaders keep leading, the brokers keep their controller, the members keep their
//! generation. Anything that reacts to a fault happening then is a reaction to no fault — a
//! heartbeat that stopped renewing a session, a timer never reset, a counter never cleared —
//! which the history cannot show (the cluster recovers each time, and every record still
//! arrives) and the convergence check cannot either (it looks once, and the churn is periodic).
//! So the run counts the protocol situations that only a fault should bring about, before and
//! after the calm, and reports any that happened (`unstable`).
//!
//! The calm also gives the controller's periodic preferred-leader election its turn: at its end,
//! every partition whose preferred replica is live and in sync must be led by it (`unbalanced`).

use seedlog::node::Situation;
use seedlog::protocol::ClusterMetadata;
use std::collections::BTreeMap;

/// How long the converged cluster is left alone before the calm is judged: what the faults
/// set in motion finishes first (a partition led away from its preferred replica is moved back;
/// a member expelled while cut off rejoins; requests the network held are delivered).
pub const SETTLE_MS: u64 = 3_000;

/// How long the calm that is judged lasts: longer than every session timeout of the simulated
/// cluster (brokers' controller sessions 2 s, group sessions 3 s), so a timer that is never
/// renewed fires at least once within it.
pub const CALM_MS: u64 = 4_000;

/// What only a fault (a crash, a partition, a stalled disk, a lost message) should bring about,
/// and a timer or counter that is never reset brings about again and again. Left out on purpose:
/// what a calm cluster does by design (retention and compaction moving log starts, snapshots,
/// preferred-leader elections moving leadership back, a follower rejoining the ISR, producer id
/// blocks); and what a request of before the heal that the network delivers late still causes
/// (refused or fenced produces and commits, truncations of a stale tail). A registration or a
/// first group join delivered late causes nothing: the controller answers a broker's run the
/// registration it has (`RegisterBroker::incarnation`), and a first join is only given an id.
pub const DISRUPTIONS: [Situation; 8] = [
    Situation::BrokerFenced,
    Situation::IsrShrink,
    Situation::ControllerFailover,
    Situation::ControllerRedirect,
    Situation::QuorumLeaderResigned,
    Situation::PreVoteLost,
    Situation::Rebalance,
    Situation::CoordinatorFailover,
];

/// How often one disruption must happen in the calm to count: the churn this looks for repeats
/// (a session never renewed expires every session timeout), while a late echo of the faults
/// happens once.
pub const REPEATS: u64 = 2;

/// Disruptions an election during the calm or the settling brings about by design: the
/// coordinator moves with the leadership of its `__consumer_offsets` partition, and its groups
/// rebalance onto it.
const AFTER_ELECTION: [Situation; 2] = [Situation::Rebalance, Situation::CoordinatorFailover];

/// The problem line for a calm that was not one, from the situation counts when the settling
/// began, when the calm began and when it ended.
pub fn judge(
    settling: &BTreeMap<Situation, u64>,
    before: &BTreeMap<Situation, u64>,
    after: &BTreeMap<Situation, u64>,
) -> Option<String> {
    let count = |m: &BTreeMap<Situation, u64>, s| m.get(&s).copied().unwrap_or(0);
    // An election since the settling began moves a coordinator whose groups rebalance.
    let elected = [Situation::PreferredElection, Situation::CleanElection]
        .iter()
        .any(|&s| count(after, s) > count(settling, s));
    let seen: Vec<String> = DISRUPTIONS
        .iter()
        .filter(|s| !(elected && AFTER_ELECTION.contains(s)))
        .filter_map(|&s| {
            let n = count(after, s).saturating_sub(count(before, s));
            (n >= REPEATS).then(|| format!("{s:?} x{n}"))
        })
        .collect();
    (!seen.is_empty()).then(|| {
        format!(
            "unstable: in {CALM_MS} ms without faults, {SETTLE_MS} ms after converging, the \
             cluster reacted as if to one, again and again: {}",
            seen.join(", ")
        )
    })
}

/// What a preferred-leader election may take beyond one rebalance interval: the controller
/// commits the move through its quorum (milliseconds in a calm cluster).
pub const REBALANCE_SLACK_MS: u64 = 1_000;

/// After the calm, with preferred-leader elections on (`leader_rebalance_ms`): every partition
/// whose preferred replica (the first of its assignment) is live and in its ISR is led by it.
/// The cluster converged with every replica in every ISR, and has had the settling and the calm
/// since — more than one rebalance interval and the slack, else nothing is asked — so the
/// controller's periodic rebalance has had its turn. A rebalance that stops running (a timer
/// not re-armed after it fires, or not armed by a newly active controller) leaves leadership
/// wherever the faults moved it: every record still arrives, but the load stays on the brokers
/// that took over, and no other check sees it.
pub fn unbalanced(md: &ClusterMetadata, leader_rebalance_ms: Option<u64>) -> Option<String> {
    let interval = leader_rebalance_ms?;
    if interval + REBALANCE_SLACK_MS > SETTLE_MS + CALM_MS {
        return None;
    }
    let stray: Vec<String> = md
        .partitions
        .iter()
        .filter_map(|ps| {
            let (&preferred, leader) = (ps.replicas.first()?, ps.leader?);
            let live = md.registration(preferred).is_some_and(|r| !r.fenced);
            let movable = leader != preferred && live && ps.isr.contains(&preferred);
            movable.then(|| format!("{} led by b{leader}, not b{preferred}", ps.tp))
        })
        .collect();
    (!stray.is_empty()).then(|| {
        format!(
            "unbalanced: after {} ms of calm, with a preferred-leader election every \
             {interval} ms, partitions are led away from their preferred replica though it is \
             live and in sync: {}",
            SETTLE_MS + CALM_MS,
            stray.join(", ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(pairs: &[(Situation, u64)]) -> BTreeMap<Situation, u64> {
        pairs.iter().copied().collect()
    }

    #[test]
    fn a_calm_with_no_disruption_passes() {
        let before = counts(&[(Situation::Rebalance, 3), (Situation::RetentionDelete, 1)]);
        // Retention and preferred elections are what a calm cluster does.
        let after = counts(&[
            (Situation::Rebalance, 3),
            (Situation::RetentionDelete, 4),
            (Situation::PreferredElection, 1),
        ]);
        assert_eq!(judge(&before, &before, &after), None);
    }

    #[test]
    fn a_repeated_disruption_during_the_calm_is_named_with_its_count() {
        let settling = counts(&[(Situation::Rebalance, 1)]);
        let before = counts(&[(Situation::Rebalance, 3)]);
        let after = counts(&[
            (Situation::Rebalance, 5),
            (Situation::ControllerRedirect, 3),
        ]);
        let line = judge(&settling, &before, &after).expect("unstable");
        assert!(line.starts_with("unstable: "), "{line}");
        assert!(line.contains("Rebalance x2"), "{line}");
        assert!(line.contains("ControllerRedirect x3"), "{line}");
        // Once is an echo of the faults, not churn.
        let once = counts(&[(Situation::Rebalance, 4)]);
        assert_eq!(judge(&settling, &before, &once), None);
    }

    /// An election (preferred or not), in the calm or while settling, moves a coordinator, and
    /// its groups rebalance: excused. The other disruptions still count.
    #[test]
    fn a_rebalance_after_an_election_is_excused() {
        for election in [Situation::PreferredElection, Situation::CleanElection] {
            let settling = counts(&[(election, 2)]);
            let before = counts(&[(election, 3)]);
            let after = counts(&[
                (election, 3),
                (Situation::CoordinatorFailover, 2),
                (Situation::Rebalance, 2),
            ]);
            assert_eq!(judge(&settling, &before, &after), None);
            let mut redirected = after.clone();
            redirected.insert(Situation::ControllerRedirect, 2);
            let line = judge(&settling, &before, &redirected).expect("unstable");
            let named = line.contains("ControllerRedirect x2") && !line.contains("Rebalance");
            assert!(named, "{line}");
            // Without an election since the settling began, the same rebalances are churn.
            assert!(judge(&before, &before, &after).is_some());
        }
    }

    /// Metadata of three brokers and one partition assigned `[0, 1, 2]`, led by `leader`, with
    /// `isr`; broker 0 fenced if `fenced`.
    fn led_by(leader: u32, isr: &[u32], fenced: bool) -> ClusterMetadata {
        use seedlog::protocol::{BrokerRegistration, PartitionState, TopicPartition};
        let brokers = (0..3)
            .map(|b| BrokerRegistration {
                broker: b,
                epoch: u64::from(b) + 1,
                fenced: fenced && b == 0,
                incarnation: 1,
            })
            .collect();
        let partition = PartitionState {
            tp: TopicPartition::new("events", 0),
            replicas: vec![0, 1, 2],
            leader: Some(leader),
            leader_epoch: 3,
            isr: isr.to_vec(),
            partition_epoch: 5,
        };
        ClusterMetadata {
            version: 9,
            brokers,
            partitions: vec![partition],
        }
    }

    /// Led away from a preferred replica that is live and in sync, after more than a rebalance
    /// interval: named. Led by it, or with it out of the ISR or fenced, or with rebalancing off
    /// or slower than the calm is long: not.
    #[test]
    fn a_partition_led_away_from_its_live_in_sync_preferred_replica_is_unbalanced() {
        let line = unbalanced(&led_by(1, &[0, 1, 2], false), Some(2_000)).expect("unbalanced");
        assert!(line.starts_with("unbalanced: "), "{line}");
        assert!(line.contains("events-0 led by b1, not b0"), "{line}");
        assert_eq!(unbalanced(&led_by(0, &[0, 1, 2], false), Some(2_000)), None);
        assert_eq!(unbalanced(&led_by(1, &[1, 2], false), Some(2_000)), None);
        assert_eq!(unbalanced(&led_by(1, &[0, 1, 2], true), Some(2_000)), None);
        assert_eq!(unbalanced(&led_by(1, &[0, 1, 2], false), None), None);
        let slowest = SETTLE_MS + CALM_MS - REBALANCE_SLACK_MS;
        assert!(unbalanced(&led_by(1, &[0, 1, 2], false), Some(slowest)).is_some());
        assert_eq!(
            unbalanced(&led_by(1, &[0, 1, 2], false), Some(slowest + 1)),
            None
        );
    }

    /// Nothing a calm cluster does by design is counted as a disruption.
    #[test]
    fn what_a_calm_cluster_does_by_design_is_no_disruption() {
        for s in [
            Situation::RetentionDelete,
            Situation::Compaction,
            Situation::QuorumSnapshotTaken,
            Situation::PreferredElection,
            Situation::IsrExpand,
            Situation::ProducerIdBlockAllocated,
            Situation::CleanElection,
        ] {
            assert!(!DISRUPTIONS.contains(&s), "{s:?}");
        }
        // A fenced broker and a replica leaving an ISR are reactions to a fault: a registration
        // the network delivered late fences nothing since registrations name their run.
        for s in [Situation::BrokerFenced, Situation::IsrShrink] {
            assert!(DISRUPTIONS.contains(&s), "{s:?}");
        }
    }
}
