//! Named protocol situations a run can reach: a generator that never produces one cannot find
//! its bugs. State machines report each where it happens (`Context::reached`, an effect like
//! `Observe` that costs a push and is dropped by drivers nobody listens to); the simulator's
//! harness adds the disk's own (torn writes, CRC cuts, power losses) and the clocks' (jumps,
//! drift changes), and counts them per seed.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Situation {
    /// The controller elected an in-sync replica.
    CleanElection,
    /// The controller elected a replica outside the ISR (unclean election enabled).
    UncleanElection,
    /// A follower cut records on a diverging-epoch answer.
    TruncationOnDivergence,
    /// A follower restarted its log at the leader's log start (it kept nothing the leader has).
    FollowerRestartAtLogStart,
    /// The controller removed a replica from an ISR.
    IsrShrink,
    /// The controller added a replica to an ISR.
    IsrExpand,
    /// The controller fenced a broker (session expired, or a new incarnation registered).
    BrokerFenced,
    /// A controller became the active one, taking over metadata an earlier active controller
    /// committed, and announced it under its epoch.
    ControllerFailover,
    /// A power loss dropped unsynced writes of a broker holding committed records it had not
    /// synced (simulator harness).
    PowerLossDroppedCommitted,
    /// Recovery cut a torn last write (simulator harness).
    TornWriteRecovered,
    /// Recovery found a frame failing its CRC and cut the log there (simulator harness).
    CrcCut,
    /// A leader moved a partition's log start by retention.
    RetentionDelete,
    /// A committed compaction checkpoint moved `__consumer_offsets`' log start.
    Compaction,
    /// A new coordinator took over a partition with stored groups and rebuilt them.
    CoordinatorFailover,
    /// The coordinator refused a commit from a member of another generation (or none).
    FencedCommit,
    /// A group completed a rebalance into a new generation.
    Rebalance,
    /// A group's leader member computed a generation's assignment (Kafka's classic protocol) and
    /// the coordinator handed it to the members.
    LeaderAssigned,
    /// A leader answered an idempotent producer's retry from its log, appending nothing.
    IdempotentRetryDeduplicated,
    /// A broker held a request naming a leader epoch newer than it knows.
    FetchParkedForNewerEpoch,
    /// A consumer learned its position was below the log start and moved to it.
    ConsumerResetToLogStart,
    /// A node crashed or lost power while a sync it had started was still under way
    /// (simulator harness).
    SyncOutstandingAtCrash,
    /// A leader refused an idempotent producer's batch that did not continue its sequences.
    OutOfOrderSequenceRefused,
    /// A leader refused an idempotent producer's batch of an epoch older than one it has seen.
    ProducerFenced,
    /// A producer resent a batch while a later batch of the same partition was in flight.
    BatchRetriedBehindInFlight,
    /// A producer's batch was refused out of sequence with no earlier batch of its partition
    /// unanswered: nothing can fill the gap, so the batch ends and the producer starts a new
    /// epoch (a producer that kept retrying it would stall that partition for good).
    SequenceGapFinal,
    /// A node's disk stalled its syncs by hundreds of ms (simulator harness, `slow-disk`).
    SlowDisk,
    /// A node's wall clock jumped forward or back (simulator harness).
    ClockJump,
    /// A node's clock changed its rate (simulator harness).
    ClockDrift,
    /// The controller gave a broker a block of producer ids (synced before the answer).
    ProducerIdBlockAllocated,
    /// A controller-quorum voter cut uncommitted entries of its log on a diverging answer.
    QuorumTruncation,
    /// A quorum leader that fewer than a majority fetched from resigned (check-quorum).
    QuorumLeaderResigned,
    /// A voter whose election timer fired could not win (a majority refused its pre-vote) and
    /// left the leader alone.
    PreVoteLost,
    /// A broker moved to another controller: told by a non-active one, or after silence.
    ControllerRedirect,
    /// A controller-quorum voter snapshotted its metadata and dropped the log entries below.
    QuorumSnapshotTaken,
    /// A quorum follower replaced its log with its leader's snapshot (the entries it needed
    /// were gone from the leader's log).
    QuorumSnapshotInstalled,
    /// The controller created a topic at runtime (CreateTopics), committed before answered.
    TopicCreated,
    /// The controller moved a partition's leadership back to its preferred replica, live and
    /// in the ISR, from a leader that is still running (auto leader rebalance).
    PreferredElection,
    /// A group member rejoined with a request for a partition's latest offset (a seek to the
    /// end) in flight, and dropped it: the answer belongs to the old assignment.
    SeekToEndDropped,
}

impl Situation {
    pub const ALL: [Situation; 38] = [
        Situation::CleanElection,
        Situation::UncleanElection,
        Situation::TruncationOnDivergence,
        Situation::FollowerRestartAtLogStart,
        Situation::IsrShrink,
        Situation::IsrExpand,
        Situation::BrokerFenced,
        Situation::ControllerFailover,
        Situation::PowerLossDroppedCommitted,
        Situation::TornWriteRecovered,
        Situation::CrcCut,
        Situation::RetentionDelete,
        Situation::Compaction,
        Situation::CoordinatorFailover,
        Situation::FencedCommit,
        Situation::Rebalance,
        Situation::LeaderAssigned,
        Situation::IdempotentRetryDeduplicated,
        Situation::FetchParkedForNewerEpoch,
        Situation::ConsumerResetToLogStart,
        Situation::SyncOutstandingAtCrash,
        Situation::SlowDisk,
        Situation::OutOfOrderSequenceRefused,
        Situation::ProducerFenced,
        Situation::BatchRetriedBehindInFlight,
        Situation::SequenceGapFinal,
        Situation::ClockJump,
        Situation::ClockDrift,
        Situation::ProducerIdBlockAllocated,
        Situation::QuorumTruncation,
        Situation::QuorumLeaderResigned,
        Situation::PreVoteLost,
        Situation::ControllerRedirect,
        Situation::QuorumSnapshotTaken,
        Situation::QuorumSnapshotInstalled,
        Situation::TopicCreated,
        Situation::PreferredElection,
        Situation::SeekToEndDropped,
    ];

    /// The name reports and JSON use.
    pub fn name(self) -> &'static str {
        match self {
            Situation::CleanElection => "clean-election",
            Situation::UncleanElection => "unclean-election",
            Situation::TruncationOnDivergence => "truncation-on-divergence",
            Situation::FollowerRestartAtLogStart => "follower-restart-at-log-start",
            Situation::IsrShrink => "isr-shrink",
            Situation::IsrExpand => "isr-expand",
            Situation::BrokerFenced => "broker-fenced",
            Situation::ControllerFailover => "controller-failover",
            Situation::PowerLossDroppedCommitted => "power-loss-dropped-committed",
            Situation::TornWriteRecovered => "torn-write-recovered",
            Situation::CrcCut => "crc-cut",
            Situation::RetentionDelete => "retention-delete",
            Situation::Compaction => "compaction",
            Situation::CoordinatorFailover => "coordinator-failover",
            Situation::FencedCommit => "fenced-commit",
            Situation::Rebalance => "rebalance",
            Situation::LeaderAssigned => "leader-assigned",
            Situation::IdempotentRetryDeduplicated => "idempotent-retry-deduplicated",
            Situation::FetchParkedForNewerEpoch => "fetch-parked-for-newer-epoch",
            Situation::ConsumerResetToLogStart => "consumer-reset-to-log-start",
            Situation::SyncOutstandingAtCrash => "sync-outstanding-at-crash",
            Situation::SlowDisk => "slow-disk",
            Situation::OutOfOrderSequenceRefused => "out-of-order-sequence-refused",
            Situation::ProducerFenced => "producer-fenced",
            Situation::BatchRetriedBehindInFlight => "batch-retried-behind-in-flight",
            Situation::SequenceGapFinal => "sequence-gap-final",
            Situation::ClockJump => "clock-jump",
            Situation::ClockDrift => "clock-drift",
            Situation::ProducerIdBlockAllocated => "producer-id-block-allocated",
            Situation::QuorumTruncation => "quorum-truncation",
            Situation::QuorumLeaderResigned => "quorum-leader-resigned",
            Situation::PreVoteLost => "pre-vote-lost",
            Situation::ControllerRedirect => "controller-redirect",
            Situation::QuorumSnapshotTaken => "quorum-snapshot-taken",
            Situation::QuorumSnapshotInstalled => "quorum-snapshot-installed",
            Situation::TopicCreated => "topic-created",
            Situation::PreferredElection => "preferred-election",
            Situation::SeekToEndDropped => "seek-to-end-dropped",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Situation;

    #[test]
    fn every_situation_is_listed_once_with_a_distinct_name() {
        let names: std::collections::BTreeSet<_> =
            Situation::ALL.iter().map(|s| s.name()).collect();
        assert_eq!(names.len(), Situation::ALL.len());
    }
}
