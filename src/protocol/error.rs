//! Error codes carried in responses. Names follow Kafka's where Kafka has one.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ErrorCode {
    /// The receiver does not lead this partition (or does not know it). Refresh metadata, retry.
    NotLeaderOrFollower,
    /// The request's leader epoch is older than the receiver's: the sender is behind.
    FencedLeaderEpoch,
    /// The request's leader epoch is newer than the receiver's: the receiver is behind. Retry.
    UnknownLeaderEpoch,
    /// The partition does not exist.
    UnknownTopicOrPartition,
    /// `acks=all` refused up front: the ISR is smaller than `min.insync.replicas`.
    NotEnoughReplicas,
    /// `acks=all` appended, but the ISR shrank below `min.insync.replicas` before the record was
    /// committed. The record may still be committed: the outcome is unknown to the client.
    NotEnoughReplicasAfterAppend,
    /// The fetch offset is outside [log start, log end].
    OffsetOutOfRange,
    /// A new leader has not yet committed everything from earlier epochs, so it cannot tell the
    /// true high watermark (KIP-207); retry.
    OffsetNotAvailable,
    /// A broker epoch in the request is not the registered one (KIP-903).
    StaleBrokerEpoch,
    /// A partition-state change was based on an outdated partition epoch.
    InvalidUpdateVersion,
    /// This broker does not coordinate the group (it does not lead the group's
    /// `__consumer_offsets` partition): find the coordinator again.
    NotCoordinator,
    /// The coordinator is still replaying its `__consumer_offsets` partition; retry.
    CoordinatorLoadInProgress,
    /// No broker knows a leader for the group's `__consumer_offsets` partition right now.
    CoordinatorNotAvailable,
    /// The member id is not (or no longer) in the group: join again without it.
    UnknownMemberId,
    /// The request names a generation other than the group's current one: the member missed a
    /// rebalance and is fenced.
    IllegalGeneration,
    /// The join's protocol type or protocols have nothing in common with the group's members
    /// (or it asks the coordinator to assign in a group whose leader assigns, or the reverse).
    InconsistentGroupProtocol,
    /// The group is rebalancing: rejoin.
    RebalanceInProgress,
    /// Clients cannot write to an internal topic (`__consumer_offsets`): only its coordinator
    /// appends there, so its cache always matches its log.
    InvalidTopic,
    /// The request carries no records, or records the broker cannot take.
    InvalidRecord,
    /// An idempotent producer's batch does not continue its sequences in this partition (a gap,
    /// or a retry older than the broker's window of recent batches): not appended. Retriable
    /// while an earlier batch of the producer is still unanswered (it fills the gap); else the
    /// producer fails the batch and starts a new epoch.
    OutOfOrderSequence,
    /// An idempotent producer's batch carries an epoch older than one the partition has seen:
    /// a late send of an epoch its producer has left. Not appended.
    ProducerFenced,
    /// CreateTopics: a topic of that name exists (or is being created by this controller).
    TopicAlreadyExists,
    /// CreateTopics: the replication factor is below 1 or above the live brokers.
    InvalidReplicationFactor,
    /// CreateTopics: the partition count is below 1.
    InvalidPartitions,
    /// A request for the controller reached no active one in time; the outcome is unknown.
    RequestTimedOut,
    /// A request for the controller reached a controller that is not the active one (its quorum
    /// is electing, or another leads): it did nothing with it. Retriable.
    NotController,
    /// A commit's metadata is longer than the coordinator keeps (`MAX_COMMIT_METADATA`).
    OffsetMetadataTooLarge,
    /// A batch's records would take more than `entry_block::MAX_APPEND_BYTES` in the log's
    /// journal write: not appended (Kafka's `MESSAGE_TOO_LARGE`). Split the batch.
    MessageTooLarge,
}

impl ErrorCode {
    /// Whether a client should refresh its metadata, back off and send the same request again.
    ///
    /// Almost every error is a view that time fixes: a leader moved, an epoch or an ISR is behind,
    /// a broker restarted and has not heard from the controller yet. That last one answers
    /// `UnknownTopicOrPartition` for a partition it will soon host, so that code is retriable too,
    /// as in Kafka. Not retriable are the errors that follow from the request alone, which every
    /// broker gives at every time: no attempt of such a request was ever applied, so a client ends
    /// the operation at once as a definite failure instead of retrying until its timeout. (Group
    /// errors are not decided here: the consumer rejoins or finds its coordinator again.)
    pub fn is_retriable(self) -> bool {
        !matches!(
            self,
            ErrorCode::InvalidTopic
                | ErrorCode::InvalidRecord
                | ErrorCode::OutOfOrderSequence
                | ErrorCode::ProducerFenced
                | ErrorCode::TopicAlreadyExists
                | ErrorCode::InvalidReplicationFactor
                | ErrorCode::InvalidPartitions
                | ErrorCode::OffsetMetadataTooLarge
                | ErrorCode::MessageTooLarge
        )
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}
