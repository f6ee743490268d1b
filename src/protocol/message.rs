//! Messages between nodes: controller <-> broker (registration, liveness, partition state),
//! broker <-> broker (replication fetch) and client <-> broker (produce, fetch, metadata, offsets,
//! producer ids).
//! Requests carry every epoch the receiver needs to fence stale senders.

use super::{
    BeginQuorumEpoch, BrokerEpoch, BrokerId, ErrorCode, GroupMessage, GroupResponse, LeaderEpoch,
    LogEntry, NodeId, Offset, PartitionEpoch, ProducerSnapshot, ProducerStamp, QuorumEpoch,
    QuorumFetchRequest, QuorumFetchResponse, QuorumSubmit, QuorumSubmitResponse, Record,
    TopicPartition, VoteRequest, VoteResponse,
};
use serde::{Deserialize, Serialize};

/// A partition's leader and ISR as committed by the controller.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PartitionState {
    pub tp: TopicPartition,
    /// Assignment order: elections take the first eligible replica in this order.
    pub replicas: Vec<BrokerId>,
    pub leader: Option<BrokerId>,
    pub leader_epoch: LeaderEpoch,
    /// In-sync replicas, sorted. Never empty: when the last member is fenced it stays, with no
    /// leader, so that it (and only it) can lead again without an unclean election.
    pub isr: Vec<BrokerId>,
    pub partition_epoch: PartitionEpoch,
}

/// A broker's registration with the controller.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct BrokerRegistration {
    pub broker: BrokerId,
    pub epoch: BrokerEpoch,
    /// Fenced brokers are not eligible for leadership or ISR membership.
    pub fenced: bool,
    /// The process that registered (`RegisterBroker::incarnation`): the same one asking again
    /// is answered this registration, not given a new one.
    #[serde(default)]
    pub incarnation: u64,
}

/// The controller's view of the cluster, pushed to brokers on every change and served by any broker
/// to clients. `version` only grows, so a broker can ignore an older push that arrives late.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ClusterMetadata {
    pub version: u64,
    pub brokers: Vec<BrokerRegistration>,
    pub partitions: Vec<PartitionState>,
}

impl ClusterMetadata {
    /// Keeps `md` in `slot` unless `slot` already holds a newer version (an answer to an older
    /// request can arrive late).
    pub fn keep_newer(slot: &mut Option<ClusterMetadata>, md: ClusterMetadata) {
        if slot.as_ref().is_none_or(|m| md.version >= m.version) {
            *slot = Some(md);
        }
    }

    pub fn partition(&self, tp: &TopicPartition) -> Option<&PartitionState> {
        self.partition_of(&tp.topic, tp.partition)
    }

    /// `partition` without building a `TopicPartition` (a producer looks partitions up on
    /// every event).
    pub fn partition_of(&self, topic: &str, partition: u32) -> Option<&PartitionState> {
        self.partitions
            .iter()
            .find(|p| p.tp.partition == partition && p.tp.topic == topic)
    }

    pub fn registration(&self, broker: BrokerId) -> Option<&BrokerRegistration> {
        self.brokers.iter().find(|b| b.broker == broker)
    }

    /// Number of partitions of `topic` (0 if unknown).
    pub fn partition_count(&self, topic: &str) -> u32 {
        self.partitions
            .iter()
            .filter(|p| p.tp.topic == topic)
            .count() as u32
    }
}

/// A leader asks the controller to change a partition's ISR (KIP-497 AlterPartition).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AlterPartitionRequest {
    pub tp: TopicPartition,
    pub leader: BrokerId,
    pub leader_broker_epoch: BrokerEpoch,
    pub leader_epoch: LeaderEpoch,
    /// The partition epoch the change was computed from; a mismatch means it is outdated.
    pub partition_epoch: PartitionEpoch,
    /// The proposed ISR with each member's broker epoch as the leader last saw it (KIP-903).
    pub new_isr: Vec<(BrokerId, BrokerEpoch)>,
}

/// Producer ids `first..first + count`, given by the controller to one broker, which hands them
/// out one per `InitProducerId`. The controller never gives an id twice: it syncs the end of each
/// block it gives before it answers, and starts the next block there, also after a restart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ProducerIdBlock {
    pub first: u64,
    pub count: u64,
}

/// How many acknowledgements a producer waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Acks {
    /// `acks=0`: no response at all.
    None,
    /// `acks=1`: the leader's local append.
    Leader,
    /// `acks=all`: the record is committed (below the high watermark).
    All,
}

/// A producer's request to one broker: one batch for each of several partitions that broker
/// leads (Kafka's produce request), all with the same `acks`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ProduceRequest {
    pub acks: Acks,
    /// Chosen by the client to match the answers; echoed back.
    pub correlation: u64,
    /// At most one batch per partition.
    pub batches: Vec<PartitionBatch>,
}

/// One partition's batch in a produce request.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PartitionBatch {
    pub tp: TopicPartition,
    /// The leader epoch the client's metadata names; a broker that has not caught up with it waits
    /// instead of answering "not leader".
    pub leader_epoch: Option<LeaderEpoch>,
    /// Chosen by the client to name this batch among its own; echoed in the batch's answer. A
    /// client that resends a batch under a reused correlation can still tell which batch an
    /// answer — possibly to an earlier attempt — is about.
    pub batch: u64,
    pub records: Vec<Record>,
    /// Set by an idempotent producer: the leader answers a retry of a batch it already has with
    /// the original offsets instead of appending it again.
    #[serde(default)]
    pub producer: Option<ProducerStamp>,
}

/// Answers to some of a produce request's batches. A broker answers at once the batches it can
/// (refused, or done with `acks=1` already) and each waiting batch when it is done, so a request
/// may be answered in several responses; it is complete when every batch has its answer.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ProduceResponse {
    pub correlation: u64,
    pub batches: Vec<BatchResult>,
}

/// The outcome of one batch: the offset of its first record, or why it was refused.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct BatchResult {
    pub tp: TopicPartition,
    pub batch: u64,
    pub result: Result<Offset, ErrorCode>,
}

impl ProduceRequest {
    /// The same error for every batch (a request the broker cannot take at all).
    pub fn refuse_all(&self, error: ErrorCode) -> ProduceResponse {
        ProduceResponse {
            correlation: self.correlation,
            batches: self
                .batches
                .iter()
                .map(|b| BatchResult {
                    tp: b.tp.clone(),
                    batch: b.batch,
                    result: Err(error),
                })
                .collect(),
        }
    }
}

/// A follower replica identifies itself in its fetches; consumers send none.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ReplicaId {
    pub broker: BrokerId,
    pub broker_epoch: BrokerEpoch,
    /// How many connections to leaders this incarnation has dropped after a fetch went
    /// unanswered: two connections are not ordered with each other, so a fetch (or an answer)
    /// of a dropped one can arrive after those of its successor. The leader ignores fetches of
    /// older connections than the newest it has seen, and the follower answers of other ones.
    #[serde(default)]
    pub connection: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FetchRequest {
    pub tp: TopicPartition,
    pub replica: Option<ReplicaId>,
    /// The follower's log end offset: proof that it holds everything below.
    pub fetch_offset: Offset,
    /// Epoch of the follower's last record, checked for divergence (KIP-101/279/595).
    pub last_fetched_epoch: Option<LeaderEpoch>,
    /// The sender's idea of the current leader epoch; older is fenced, newer is unknown (KIP-320).
    pub current_leader_epoch: Option<LeaderEpoch>,
    /// End of the follower's synced prefix; counts for the high watermark with `fsync` durability.
    pub synced_offset: Offset,
    /// The high watermark the sender knows: a long poll also answers when the HW moves past it.
    pub known_hw: Offset,
}

impl FetchRequest {
    /// The connection number a follower's fetch names, which its answer echoes (0 for
    /// consumers).
    pub fn connection(&self) -> u64 {
        self.replica.map_or(0, |r| r.connection)
    }

    /// A consumer's fetch (no replica identity, nothing synced, no long-poll watermark): the
    /// reader and the group consumer send the same shape.
    pub fn by_consumer(
        tp: TopicPartition,
        fetch_offset: Offset,
        leader_epoch: LeaderEpoch,
    ) -> Self {
        FetchRequest {
            tp,
            replica: None,
            fetch_offset,
            last_fetched_epoch: None,
            current_leader_epoch: Some(leader_epoch),
            synced_offset: 0,
            known_hw: 0,
        }
    }
}

/// The end of a leader epoch in a replica's log: the answer to "where does my epoch end in yours".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct EpochEndOffset {
    /// The largest epoch <= the one asked about, `None` if the log has no such epoch.
    pub epoch: Option<LeaderEpoch>,
    /// Exclusive end of that epoch: the start of the next epoch, or the log end offset.
    pub end_offset: Offset,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FetchResponse {
    pub tp: TopicPartition,
    /// Echo of the request's fetch offset, to match the response.
    pub fetch_offset: Offset,
    pub error: Option<ErrorCode>,
    pub leader_epoch: LeaderEpoch,
    pub high_watermark: Offset,
    pub log_start_offset: Offset,
    /// One block of bytes on a wire (`entry_block`): a fetch answer is most of a broker's traffic.
    #[serde(with = "super::entry_block")]
    pub records: Vec<LogEntry>,
    /// Set when the follower's log diverges from the leader's at its last fetched epoch.
    pub diverging_epoch: Option<EpochEndOffset>,
    /// To a follower told to restart at the log start (out of range below it, or no epoch in
    /// common): the leader's producer state below its log start, which the follower cannot
    /// fetch. Without it, a follower that later led took a retry of a deleted batch for a new
    /// one and appended it twice. Empty otherwise.
    pub producers: Vec<ProducerSnapshot>,
    /// Echo of a follower's fetch's connection number (`ReplicaId::connection`; 0 to consumers).
    #[serde(default)]
    pub connection: u64,
}

/// A client's request to create a topic (Kafka's CreateTopics, one topic). Any broker takes it
/// and forwards it to the controller it believes active, which alone creates topics.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CreateTopicRequest {
    /// Chosen by the client to match the answer; echoed back.
    pub correlation: u64,
    pub topic: String,
    /// `None`: the controller's default (1).
    pub partitions: Option<u32>,
    /// `None`: the controller's default (3, or every live broker if fewer).
    pub replication_factor: Option<u32>,
    /// Check and answer as if created, create nothing (Kafka's `validate_only`).
    pub validate_only: bool,
}

/// The controller's answer, sent once the topic's creation is committed by the quorum: each
/// partition's replicas in partition order (the first replica leads first), or why not.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CreateTopicResponse {
    pub correlation: u64,
    pub topic: String,
    pub result: Result<Vec<Vec<BrokerId>>, ErrorCode>,
}

/// Which offset a ListOffsets request asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum OffsetSpec {
    /// The log start offset.
    Earliest,
    /// The high watermark: the next offset a consumer can read.
    Latest,
    /// The first offset below the high watermark whose record's timestamp is at least this
    /// (milliseconds); the high watermark if there is none (Kafka answers -1 then).
    Timestamp(i64),
    /// The first offset below the high watermark holding the largest timestamp of the committed
    /// records the leader still has (Kafka's max timestamp, -3); the high watermark if it has
    /// none. Kafka takes the largest over the whole log and answers nothing when that record is
    /// not committed yet; this looks at committed records only, so an answer never names a
    /// record a failover may still cut, and a committed record is found whatever is written
    /// after it.
    MaxTimestamp,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Message {
    /// Broker -> controller at boot: asks for a new broker epoch.
    RegisterBroker {
        broker: BrokerId,
        /// Recovery cut records this broker once held durably (a corrupt log): it must not
        /// stay the last in-sync replica (KIP-966's unclean-shutdown rule).
        #[serde(default)]
        lost_data: bool,
        /// Names this run of the broker's process, different at every start (Kafka's
        /// incarnation id): a registration repeated by the same run — a retry whose answer was
        /// lost, or a request the network delivers late — is answered the registration it
        /// already has, instead of fencing the live broker under a new epoch.
        #[serde(default)]
        incarnation: u64,
    },
    /// The new epoch, and the metadata version that registered it: the broker ignores any older
    /// metadata (pushes queued for its previous incarnation).
    RegisterBrokerResponse {
        broker_epoch: BrokerEpoch,
        metadata_version: u64,
    },
    /// Broker -> controller, periodically: keeps the session alive, and says which metadata
    /// version the broker holds, so that a broker that missed pushes (a connection that broke
    /// while they were queued) is sent the current metadata.
    Heartbeat {
        broker: BrokerId,
        broker_epoch: BrokerEpoch,
        metadata_version: u64,
        /// The controller epoch of the metadata the broker holds: a broker that missed a new
        /// active controller's announcement (same version, older epoch) is sent it again.
        controller_epoch: QuorumEpoch,
    },
    HeartbeatResponse {
        /// Echo of the heartbeat's broker epoch: an answer to a heartbeat of an older
        /// registration says nothing about the current one.
        broker_epoch: BrokerEpoch,
        fenced: bool,
    },
    AlterPartition(AlterPartitionRequest),
    AlterPartitionResponse {
        tp: TopicPartition,
        /// Echo of the request's partition epoch: a leader matches the answer to its proposal
        /// by it, so a late answer to an older proposal is not taken for the current one.
        request_partition_epoch: PartitionEpoch,
        result: Result<PartitionState, ErrorCode>,
    },
    /// Controller -> brokers on every change of registrations or partition state, and when a
    /// controller becomes the active one. `controller_epoch` is the quorum epoch of the
    /// controller that sends it: a broker ignores metadata from an epoch older than one it has
    /// seen, so a deposed controller is never followed again.
    UpdateMetadata {
        controller_epoch: QuorumEpoch,
        metadata: ClusterMetadata,
    },
    /// A controller that is not the active one answers a broker's request with the leader of
    /// the quorum it knows (`None`: it knows none), for the broker to try next, and the quorum
    /// epoch it is in: an answer the network held back names the leader of an epoch the broker
    /// may have left behind, and is ignored.
    NotController {
        leader: Option<NodeId>,
        epoch: QuorumEpoch,
    },
    Fetch(FetchRequest),
    FetchResponse(FetchResponse),
    Produce(ProduceRequest),
    ProduceResponse(ProduceResponse),
    /// Client -> any broker: who leads what. The broker answers once its metadata is at least
    /// `min_version`, so a client that saw a stale view waits for news instead of polling.
    Metadata {
        min_version: u64,
    },
    MetadataResponse(ClusterMetadata),
    ListOffsets {
        tp: TopicPartition,
        spec: OffsetSpec,
    },
    ListOffsetsResponse {
        tp: TopicPartition,
        spec: OffsetSpec,
        result: Result<Offset, ErrorCode>,
        /// For `OffsetSpec::Timestamp` and `MaxTimestamp`: the timestamp of the record found
        /// (`None`: no record at or after the time, or none committed; the offset is then the
        /// high watermark).
        #[serde(default)]
        timestamp: Option<i64>,
        /// The answering leader's epoch (with an offset; Kafka's `leader_epoch`).
        #[serde(default)]
        leader_epoch: Option<LeaderEpoch>,
        /// The answering leader's log start (with an offset). Kafka's answer does not carry
        /// it; the simulated clients record it, so the history checker knows which offsets
        /// below an answer by time the leader still held (and should have found).
        #[serde(default)]
        log_start: Option<Offset>,
        /// The answering leader's high watermark (with an offset), for the same reason: which
        /// committed records an answer by max timestamp looked at.
        #[serde(default)]
        high_watermark: Option<Offset>,
    },
    /// Client -> any broker: create a topic. The broker forwards it to the controller.
    CreateTopic(CreateTopicRequest),
    /// Broker -> its controller: a client's `CreateTopic`; the answer comes back to the broker
    /// (`client` echoed), which hands it on.
    ForwardCreateTopic {
        client: NodeId,
        request: CreateTopicRequest,
    },
    ForwardCreateTopicResponse {
        client: NodeId,
        response: CreateTopicResponse,
    },
    /// Broker -> client: the controller's answer.
    CreateTopicResponse(CreateTopicResponse),
    /// Client -> a group's coordinator (or any broker, to find it).
    Group(GroupMessage),
    GroupResponse(GroupResponse),
    /// Client -> any broker: an idempotent producer asks for its producer id (Kafka's
    /// InitProducerId). Ids are unique cluster-wide and never reused, so a new producer's
    /// sequence numbers cannot be taken for retries of another's batches.
    InitProducerId {
        correlation: u64,
    },
    /// The producer id and its first epoch (0).
    InitProducerIdResponse {
        correlation: u64,
        result: Result<(u64, u16), ErrorCode>,
    },
    /// Broker -> controller: the broker has no producer ids left to hand out (it has none after
    /// a start: blocks live in its memory only) and asks for a block.
    AllocateProducerIds {
        broker: BrokerId,
        broker_epoch: BrokerEpoch,
    },
    /// A block, once the controller has synced that it gave it; `StaleBrokerEpoch` if the
    /// request's broker epoch is not the broker's registered one.
    AllocateProducerIdsResponse {
        result: Result<ProducerIdBlock, ErrorCode>,
    },
    /// Controller quorum: a prospective candidate asks whether it could win an election in the
    /// next epoch, without bumping any epoch (KIP-996).
    PreVote(VoteRequest),
    PreVoteResponse(VoteResponse),
    /// Controller quorum: a candidate asks for a voter's vote in its epoch (KIP-595 Vote).
    Vote(VoteRequest),
    VoteResponse(VoteResponse),
    /// Controller quorum: the new leader announces itself to every voter.
    BeginQuorumEpoch(BeginQuorumEpoch),
    /// Controller quorum: a follower fetches the leader's log (KIP-595 Fetch); also the leader's
    /// proof that the follower is there.
    QuorumFetch(QuorumFetchRequest),
    QuorumFetchResponse(QuorumFetchResponse),
    /// Client -> a quorum voter: append this record (a non-leader names the leader it knows).
    QuorumSubmit(QuorumSubmit),
    QuorumSubmitResponse(QuorumSubmitResponse),
}
