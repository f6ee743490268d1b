//! Bug switches: each reintroduces a historical Kafka bug (ids as in `docs/bugs.md`, which also
//! says which tests find each one) so tests can show that the model checker and the simulator find
//! it. All are off by default.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Bug {
    /// (B) A replica that becomes follower truncates to its high watermark instead of asking the
    /// leader where its epoch ends (Kafka before KIP-101).
    TruncateToHw,
    /// (A) The controller elects an out-of-sync replica when no ISR member is live.
    UncleanElection,
    /// `acks=all` is answered after the leader's own append, before the ISR has the record.
    AckBeforeIsr,
    /// (F) The leader accepts fetches from followers in an older leader epoch and counts their
    /// offsets for the high watermark (Kafka before KIP-320).
    HwFromStaleEpoch,
    /// (G) A follower rejoins the ISR before reaching the start of the leader's epoch.
    IsrBeforeEpochStart,
    /// (J) A broker whose recovery cut durable records stays the last ISR member and can be
    /// elected again (Kafka before KIP-966).
    LastReplicaStanding,
    /// (M) A consumer commits the offsets of records before processing them: a crash in between
    /// skips them.
    CommitBeforeProcess,
    /// (N) The group coordinator accepts offset commits from unknown members and stale
    /// generations, so a fenced member's late commit moves the group's offset.
    AcceptStaleGeneration,
    /// With `fsync` durability the leader counts its own write as durable as soon as it is
    /// written, before the sync it asked for completes.
    AckBeforeSync,
    /// The leader remembers only an idempotent producer's last batch, not its last five: a
    /// retry of an older batch still in flight is not recognised (Redpanda, Jepsen 2022).
    DedupWindow1,
    /// The leader appends an idempotent producer's batch that does not continue its sequences
    /// (a gap), so a batch resent after a failure can land behind later ones.
    NoSequenceGapCheck,
    /// The producer resends a batch that failed with a retriable error after the batches
    /// behind it (renumbering their sequences in the new order) instead of before them.
    RetryOutOfOrder,
    /// The controller does not persist how far it has handed out producer ids: after a restart
    /// it gives the same blocks again, so two producers can share an id, and a leader takes one
    /// producer's batches for retries of the other's.
    ProducerIdReuse,
    /// Controller quorum: a voter grants its vote without checking that the candidate's log is at
    /// least as up to date as its own, so a leader can be elected without a committed entry.
    VoteWithoutLogCheck,
    /// Controller quorum: the leader advances the high watermark over entries of earlier epochs
    /// by counting the replicas that hold them (Raft's Figure 8), instead of only once a
    /// majority holds an entry of its own epoch.
    CommitPreviousEpochByCount,
    /// Controller quorum: a voter answers a vote before the vote is synced; a power loss then
    /// lets it vote again, for another candidate, in the same epoch.
    VoteNotDurable,
    /// Controller quorum: no pre-vote: a voter that times out bumps the epoch at once, so one cut
    /// off from the others disturbs a stable leader when it comes back (a liveness cost).
    NoPrevote,
    /// Controller quorum: a voter snapshots through its log end rather than through what it
    /// applied, so the snapshot claims entries that are not committed (nor in the state it
    /// holds): a follower installing it never applies them, and if they are later cut, the
    /// snapshot holds a log the quorum never committed.
    SnapshotPastCommit,
    /// Kafka's classic group protocol: the coordinator answers a generation's syncs as soon as
    /// its record is stored, without waiting for the leader's assignment, so the members get
    /// empty shares and the group's partitions go unread until the next rebalance.
    SyncBeforeAssignment,
    /// The controller answers CreateTopics as soon as it has decided, before the quorum commits
    /// the new topic: a controller failover then loses a topic its client was told exists.
    CreateTopicBeforeCommit,
    /// The controller's leader rebalance hands leadership to the preferred replica whenever it
    /// is live, in the ISR or not (taking it into the ISR): a replica back from a crash, still
    /// catching up, leads, and the records it lacks are cut from the others.
    PreferredOutOfIsr,
    /// (I) The controller takes a member into the ISR on a proposal naming an older
    /// incarnation of it than the registered one (Kafka before KIP-903): the leader saw the old
    /// incarnation catch up, the broker lost power and registered again without those
    /// records, and the stale proposal puts the new incarnation in the ISR.
    StaleBrokerEpoch,
    /// (H) The leader computes its high watermark over the committed ISR only, not counting an
    /// ISR expansion in flight (Kafka before KIP-497): the controller can commit the bigger ISR,
    /// with a member below the high watermark, and then elect it.
    HwIgnoresPendingIsr,
    /// A follower restarting at its leader's log start journals its emptied log but not the
    /// producer state the leader handed it (below the log start, where no entry rebuilds it).
    /// It runs correctly until it crashes; recovered, it has forgotten those producers, and as
    /// leader it refuses their next batches as out of order (a retry of a first batch it
    /// appends again).
    ProducersNotJournaled,
    /// The leader judges a follower lagging only while it is below the high watermark, not
    /// below the leader's log end. The high watermark waits for every ISR member, so a follower
    /// that stops fetching is never below it and never leaves the ISR: acks=all writes stall
    /// for as long as it is gone. Nothing is lost; only availability suffers.
    LagFromHighWatermark,
    /// acks=all writes (and offset commits) are refused unless the ISR has more than
    /// `min.insync.replicas` members, not at least that many: with one replica of three lost
    /// and `min.insync.replicas=2`, every write is refused although two copies would be made.
    MinInsyncExclusive,
    /// A partition's latest offset (ListOffsets `LATEST`) is answered with the leader's log end
    /// instead of its high watermark: records not yet committed are counted, and a consumer
    /// that seeks there skips offsets a failover may give to other records.
    LatestIsLogEnd,
    /// With `fsync` durability, a broker recovering from its disk counts every record it read
    /// back as synced. After a process crash the page cache survives, so some of what it reads
    /// is not durable yet; it reports all of it as synced to its leader, whose high watermark
    /// and ISR then count on records one power loss can take.
    RecoveryCountsUnsynced,
    /// A group member whose position retention deleted moves to the high watermark instead of
    /// the log start, and reports that as the log start: it skips the retained records between
    /// them, and its report excuses them as deleted.
    ResetToHighWatermark,
    /// An idempotent producer whose batch is refused for good (out of sequence, say) goes on in
    /// the same epoch instead of starting a new one: its next batches continue the sequences
    /// after the gap the refused one left, and every leader refuses them too, for good.
    NoEpochBumpAfterRefusal,
    /// A group coordinator rebuilt from its offsets partition (after a failover) keeps each
    /// partition's highest committed offset instead of its last: a group that committed a lower
    /// offset (reset back to re-read) is given the higher one again.
    ReplayKeepsHighestOffset,
    /// Controller quorum: a voter ranks logs by length before last epoch, so a deposed leader
    /// whose uncommitted tail outgrew the new leader's log is elected, and its tail overwrites
    /// entries the new leader committed. Raft ranks by last epoch first.
    VoteByLogLength,
    /// Controller quorum (also brokers leaving a silent controller, followers whose fetch timed
    /// out, and group consumers): a node whose request to a peer goes unanswered for a timeout
    /// keeps its connection instead of opening a new one. After a partition heals, a connection that
    /// stalled in it carries nothing until TCP's retransmission backoff runs out (seconds), so
    /// two live, connected controllers can go seconds without electing. Nothing is lost; only
    /// availability suffers.
    KeepStalledLinks,
    /// A group member that rejoins its group drops the fetch it has in flight but not its
    /// request for a partition's latest offset (a seek to the end): the late answer moves the
    /// partition's position in the new assignment, past records nobody processed.
    KeepStaleListOffsets,
    /// ListOffsets by time finds the first record whose timestamp is after the time asked, not
    /// at or after it: a consumer seeking to a record's own time lands past it (and past every
    /// record of the same millisecond).
    TimeLookupStrict,
    /// ListOffsets by time searches the leader's whole log, not only its committed records: a
    /// consumer can be sent to a record a failover may still take back.
    TimeLookupPastHw,
    /// ListOffsets by max timestamp answers the last of the records sharing the largest
    /// timestamp, not the first (the records of a batch share their millisecond): like Kafka's
    /// KAFKA-16310, which answered the offset of the batch's last record.
    MaxTimestampLastTie,
    /// The group coordinator answers a member's heartbeat without renewing its session: a
    /// member that only heartbeats (nothing to commit) is expelled every session timeout and
    /// rejoins, and the group rebalances again and again with no fault at all. Nothing is lost
    /// and every record is still read; only the cluster's calm shows it.
    MemberSessionNotRenewed,
    /// The controller's preferred-leader rebalance runs once per term: its timer is not armed
    /// again after it fires, so leadership stays wherever failovers moved it. Nothing is lost and
    /// every record arrives; only the check after the calm (`unbalanced`) sees it.
    RebalanceNotRearmed,
    /// The partition leader does not answer the fetches it parked when its log or high
    /// watermark moves: each waits out its long-poll (`fetch.max.wait.ms`), so every acks=all
    /// write is acknowledged hundreds of milliseconds late. Nothing is lost or refused; only
    /// the timed probe round after the heal (`slow`) sees it.
    ParkedFetchNotWoken,
    /// The group coordinator answers an offset fetch from its cache at once, as Kafka does,
    /// instead of behind a read barrier: a coordinator deposed without hearing it yet (cut off
    /// from the controller, its followers gone to the new leader) serves an offset the new
    /// coordinator has moved past, or none at all.
    OffsetFetchFromCache,
}

impl Bug {
    pub const ALL: [Bug; 41] = [
        Bug::TruncateToHw,
        Bug::UncleanElection,
        Bug::AckBeforeIsr,
        Bug::HwFromStaleEpoch,
        Bug::IsrBeforeEpochStart,
        Bug::LastReplicaStanding,
        Bug::CommitBeforeProcess,
        Bug::AcceptStaleGeneration,
        Bug::AckBeforeSync,
        Bug::DedupWindow1,
        Bug::NoSequenceGapCheck,
        Bug::RetryOutOfOrder,
        Bug::ProducerIdReuse,
        Bug::VoteWithoutLogCheck,
        Bug::CommitPreviousEpochByCount,
        Bug::VoteNotDurable,
        Bug::NoPrevote,
        Bug::SnapshotPastCommit,
        Bug::SyncBeforeAssignment,
        Bug::CreateTopicBeforeCommit,
        Bug::PreferredOutOfIsr,
        Bug::StaleBrokerEpoch,
        Bug::HwIgnoresPendingIsr,
        Bug::ProducersNotJournaled,
        Bug::LagFromHighWatermark,
        Bug::MinInsyncExclusive,
        Bug::LatestIsLogEnd,
        Bug::RecoveryCountsUnsynced,
        Bug::ResetToHighWatermark,
        Bug::NoEpochBumpAfterRefusal,
        Bug::ReplayKeepsHighestOffset,
        Bug::VoteByLogLength,
        Bug::KeepStalledLinks,
        Bug::KeepStaleListOffsets,
        Bug::TimeLookupStrict,
        Bug::TimeLookupPastHw,
        Bug::MaxTimestampLastTie,
        Bug::MemberSessionNotRenewed,
        Bug::RebalanceNotRearmed,
        Bug::ParkedFetchNotWoken,
        Bug::OffsetFetchFromCache,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Bug::TruncateToHw => "truncate-to-hw",
            Bug::UncleanElection => "unclean-election",
            Bug::AckBeforeIsr => "ack-before-isr",
            Bug::HwFromStaleEpoch => "hw-from-stale-epoch",
            Bug::IsrBeforeEpochStart => "isr-before-epoch-start",
            Bug::LastReplicaStanding => "last-replica-standing",
            Bug::CommitBeforeProcess => "commit-before-process",
            Bug::AcceptStaleGeneration => "accept-stale-generation",
            Bug::AckBeforeSync => "ack-before-sync",
            Bug::DedupWindow1 => "dedup-window-1",
            Bug::NoSequenceGapCheck => "no-sequence-gap-check",
            Bug::RetryOutOfOrder => "retry-out-of-order",
            Bug::ProducerIdReuse => "producer-id-reuse",
            Bug::VoteWithoutLogCheck => "vote-without-log-check",
            Bug::CommitPreviousEpochByCount => "commit-previous-epoch-by-count",
            Bug::VoteNotDurable => "vote-not-durable",
            Bug::NoPrevote => "no-prevote",
            Bug::SnapshotPastCommit => "snapshot-past-commit",
            Bug::SyncBeforeAssignment => "sync-before-assignment",
            Bug::CreateTopicBeforeCommit => "create-topic-before-commit",
            Bug::PreferredOutOfIsr => "preferred-out-of-isr",
            Bug::StaleBrokerEpoch => "stale-broker-epoch",
            Bug::HwIgnoresPendingIsr => "hw-ignores-pending-isr",
            Bug::ProducersNotJournaled => "producers-not-journaled",
            Bug::LagFromHighWatermark => "lag-from-high-watermark",
            Bug::MinInsyncExclusive => "min-insync-exclusive",
            Bug::LatestIsLogEnd => "latest-is-log-end",
            Bug::RecoveryCountsUnsynced => "recovery-counts-unsynced",
            Bug::ResetToHighWatermark => "reset-to-high-watermark",
            Bug::NoEpochBumpAfterRefusal => "no-epoch-bump-after-refusal",
            Bug::ReplayKeepsHighestOffset => "replay-keeps-highest-offset",
            Bug::VoteByLogLength => "vote-by-log-length",
            Bug::KeepStalledLinks => "keep-stalled-links",
            Bug::KeepStaleListOffsets => "keep-stale-list-offsets",
            Bug::TimeLookupStrict => "time-lookup-strict",
            Bug::TimeLookupPastHw => "time-lookup-past-hw",
            Bug::MaxTimestampLastTie => "max-timestamp-last-tie",
            Bug::MemberSessionNotRenewed => "member-session-not-renewed",
            Bug::RebalanceNotRearmed => "rebalance-not-rearmed",
            Bug::ParkedFetchNotWoken => "parked-fetch-not-woken",
            Bug::OffsetFetchFromCache => "offset-fetch-from-cache",
        }
    }
}

impl std::fmt::Display for Bug {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Bug {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Bug::ALL.into_iter().find(|b| b.name() == s).ok_or_else(|| {
            let names: Vec<_> = Bug::ALL.iter().map(|b| b.name()).collect();
            format!("unknown bug '{s}'; known bugs: {}", names.join(", "))
        })
    }
}

/// The switches turned on for a node.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct BugSet(BTreeSet<Bug>);

impl BugSet {
    pub fn none() -> Self {
        Self::default()
    }

    pub fn with(mut self, bug: Bug) -> Self {
        self.0.insert(bug);
        self
    }

    pub fn has(&self, bug: Bug) -> bool {
        self.0.contains(&bug)
    }
}

impl FromIterator<Bug> for BugSet {
    fn from_iter<I: IntoIterator<Item = Bug>>(iter: I) -> Self {
        BugSet(iter.into_iter().collect())
    }
}
