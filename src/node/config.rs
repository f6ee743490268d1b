//! Node configuration. Timer durations are `Option`s: `None` disables a timer, which is how the
//! model checker turns off what it replaces with nondeterminism (it fires any set timer at any time,
//! so, for instance, it models lost heartbeats by firing session expiry rather than by heartbeating).

use super::BugSet;
use crate::log::RetentionPolicy;
use crate::protocol::{Acks, BrokerId, NodeId, Record};
use serde::{Deserialize, Serialize};

/// When a produce with `acks=all` counts as committed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Durability {
    /// Once every ISR member has the record in memory (Kafka's default: no fsync, rely on
    /// replication). Simultaneous power loss of the whole ISR loses acknowledged records.
    Replicated,
    /// Once every ISR member has synced the record to disk.
    Fsync,
}

impl std::str::FromStr for Durability {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "replicated" => Ok(Durability::Replicated),
            "fsync" => Ok(Durability::Fsync),
            _ => Err(format!(
                "unknown durability '{s}'; expected 'replicated' or 'fsync'"
            )),
        }
    }
}

impl std::fmt::Display for Durability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Durability::Replicated => "replicated",
            Durability::Fsync => "fsync",
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TopicSpec {
    pub name: String,
    /// Replica assignment per partition, in election order.
    pub assignment: Vec<Vec<BrokerId>>,
}

impl TopicSpec {
    /// `partitions` partitions with `replication` replicas each, spread round-robin over `brokers`.
    pub fn spread(name: &str, partitions: u32, replication: usize, brokers: &[BrokerId]) -> Self {
        let assignment = (0..partitions as usize)
            .map(|p| {
                (0..replication.min(brokers.len()))
                    .map(|r| brokers[(p + r) % brokers.len()])
                    .collect()
            })
            .collect();
        TopicSpec {
            name: name.to_string(),
            assignment,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct BrokerConfig {
    pub id: BrokerId,
    /// The controllers (the quorum's voters, or the one controller of a model): the broker
    /// talks to whichever is active.
    pub controllers: Vec<NodeId>,
    pub durability: Durability,
    /// `min.insync.replicas`: `acks=all` is refused while the ISR is smaller.
    pub min_insync_replicas: usize,
    /// `None`: heartbeat only when the broker learns it is fenced.
    pub heartbeat_interval_ms: Option<u64>,
    pub register_retry_ms: Option<u64>,
    /// `replica.lag.time.max.ms`.
    pub replica_lag_time_max_ms: Option<u64>,
    /// How long a long-poll fetch waits for data; `None`: until something changes.
    pub fetch_max_wait_ms: Option<u64>,
    pub fetch_timeout_ms: Option<u64>,
    pub fetch_backoff_ms: Option<u64>,
    pub alter_partition_timeout_ms: Option<u64>,
    pub max_fetch_records: usize,
    /// Records per fetch answer to a follower, if not `max_fetch_records`. seedlog cuts an
    /// answer at a record, so a follower may take a producer's batch in pieces (Kafka always
    /// sends a follower whole batches); the simulator makes this small in some runs so that
    /// high watermarks stop inside batches, to test what waits for a batch's last record.
    pub max_replica_fetch_records: Option<usize>,
    /// A fetch answer stops before the record that would take its records past this many bytes
    /// (at least one record goes out). Keeps answers well inside the frame limit whatever the
    /// record sizes; Kafka's `replica.fetch.max.bytes` / `fetch.max.bytes`.
    pub max_fetch_bytes: u64,
    pub retention: RetentionPolicy,
    pub retention_check_ms: Option<u64>,
    /// Group coordinator: a member silent for this long is removed (`session.timeout.ms`).
    pub group_session_timeout_ms: Option<u64>,
    /// Group coordinator: how long a rebalance waits for members to rejoin.
    pub group_rebalance_timeout_ms: Option<u64>,
    /// Compact a `__consumer_offsets` partition once it holds more records than this (and at
    /// least half are superseded); `None`: never.
    pub offsets_compact_after: Option<u64>,
    /// How long to wait for the controller's answer to a request for producer ids before asking
    /// again.
    pub producer_ids_retry_ms: Option<u64>,
    pub bugs: BugSet,
}

impl BrokerConfig {
    /// Defaults for a real or simulated cluster (milliseconds as in Kafka where Kafka has one).
    pub fn new(id: BrokerId, controllers: Vec<NodeId>) -> Self {
        BrokerConfig {
            id,
            controllers,
            durability: Durability::Replicated,
            min_insync_replicas: 1,
            heartbeat_interval_ms: Some(500),
            register_retry_ms: Some(1000),
            replica_lag_time_max_ms: Some(10_000),
            fetch_max_wait_ms: Some(500),
            fetch_timeout_ms: Some(2_000),
            fetch_backoff_ms: Some(100),
            alter_partition_timeout_ms: Some(2_000),
            max_fetch_records: 500,
            max_replica_fetch_records: None,
            max_fetch_bytes: 1 << 20,
            retention: RetentionPolicy::default(),
            retention_check_ms: None,
            group_session_timeout_ms: Some(6_000),
            group_rebalance_timeout_ms: Some(6_000),
            offsets_compact_after: Some(1_000),
            producer_ids_retry_ms: Some(1_000),
            bugs: BugSet::none(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ControllerConfig {
    pub id: NodeId,
    pub brokers: Vec<BrokerId>,
    pub topics: Vec<TopicSpec>,
    pub session_timeout_ms: Option<u64>,
    /// `unclean.leader.election.enable`: with no live ISR member, elect any live replica.
    pub unclean_leader_election: bool,
    /// Producer ids per block given to a broker (`PRODUCER_ID_BLOCK_SIZE` unless a test wants
    /// blocks to run out sooner).
    pub producer_id_block_size: u64,
    /// `auto.leader.rebalance.enable` with `leader.imbalance.check.interval`: this often the
    /// active controller moves each partition's leadership back to its preferred replica (the
    /// first of its assignment) where that replica is live and in the ISR. `None`: never (the
    /// models, to keep their state space).
    #[serde(default)]
    pub leader_rebalance_ms: Option<u64>,
    pub bugs: BugSet,
}

/// Producer ids the controller gives a broker at a time (Kafka's block is 1000 too): a block
/// costs a synced controller change, so it should last a broker many producers.
pub const PRODUCER_ID_BLOCK_SIZE: u64 = 1_000;

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ProducerConfig {
    pub id: NodeId,
    /// Brokers to ask for metadata, tried in order.
    pub bootstrap: Vec<BrokerId>,
    pub topic: String,
    pub acks: Acks,
    /// The records to send, in order: handed to the producer one by one (paced by
    /// `send_interval_ms`), collected into batches per partition, sent up to `max_in_flight`
    /// requests at a time per broker.
    pub records: Vec<Record>,
    /// Keyless records per sticky batch.
    pub sticky_batch: u32,
    /// Seed of the producer's own pseudo-random choices (the sticky partitioner).
    pub seed: u64,
    pub request_timeout_ms: Option<u64>,
    pub retry_backoff_ms: Option<u64>,
    /// `enable.idempotence`: stamp records so retries cannot duplicate them.
    pub idempotent: bool,
    /// The idempotence stamp's producer id. Sequence numbers start at 0 for every producer
    /// session, so it must be unique per session, not per client: a reused id would make a new
    /// session's first record look like a retry of an old one and be "acknowledged" at the old
    /// record's offset. `None` (the simulator, the real client): the producer asks a broker for
    /// one (`InitProducerId`) before it sends anything. `Some`: preset, as the model checker
    /// does, to keep the asking out of its state space.
    pub producer_id: Option<u64>,
    /// Wait this long after finishing one record before sending the next (`None`: at once).
    pub send_interval_ms: Option<u64>,
    /// `delivery.timeout.ms`: give up on a batch this long after it closed (`None`: retry
    /// forever).
    pub delivery_timeout_ms: Option<u64>,
    /// `max.in.flight.requests.per.connection` (1–5; more than 1 keeps order only with
    /// idempotence, as in Kafka).
    pub max_in_flight: usize,
    /// `batch.size`: a partition's open batch closes once its records reach this many bytes.
    pub batch_size_bytes: u64,
    /// `linger.ms`: how long an open batch waits for more records once a request could carry
    /// it (`None`: it goes as soon as a request can carry it).
    pub linger_ms: Option<u64>,
    /// `metadata.max.age.ms`: ask for metadata this often even without an error (`None`: only
    /// after errors). A producer can so learn of a partition's new leader while its requests
    /// are still stuck at the old one, and send the next batches there.
    pub metadata_max_age_ms: Option<u64>,
    /// Bug switches of the client (`retry-out-of-order`).
    pub bugs: BugSet,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ReaderConfig {
    pub id: NodeId,
    pub bootstrap: Vec<BrokerId>,
    pub topic: String,
    pub request_timeout_ms: Option<u64>,
    pub retry_backoff_ms: Option<u64>,
}

/// What a group member does for a partition the group has no committed offset for
/// (`auto.offset.reset`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum OffsetReset {
    /// Start at the log start.
    Earliest,
    /// Start at the high watermark: only records produced from now on.
    Latest,
    /// Stop with an error.
    None,
}

impl std::str::FromStr for OffsetReset {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "earliest" => Ok(OffsetReset::Earliest),
            "latest" => Ok(OffsetReset::Latest),
            "none" => Ok(OffsetReset::None),
            _ => Err(format!(
                "unknown offset reset '{s}'; expected 'earliest', 'latest' or 'none'"
            )),
        }
    }
}

/// A group member's rewinds: after every `every` processed batches, it moves its position
/// `back` offsets before the end of the batch (an application re-reading records).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Rewind {
    pub every: u32,
    pub back: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ConsumerConfig {
    pub id: NodeId,
    pub bootstrap: Vec<BrokerId>,
    pub group: String,
    pub topic: String,
    pub assignor: crate::protocol::Assignor,
    /// Kafka's classic protocol: the group's leader member computes the assignment (with
    /// `assignor`) and the coordinator carries it; otherwise the coordinator assigns.
    pub leader_assigns: bool,
    pub auto_offset_reset: OffsetReset,
    /// Group heartbeats (must be well under the coordinator's session timeout).
    pub heartbeat_interval_ms: Option<u64>,
    pub request_timeout_ms: Option<u64>,
    pub retry_backoff_ms: Option<u64>,
    /// Time the application takes to process one fetched batch (`None`: at once).
    pub process_ms: Option<u64>,
    /// Now and then seek the partition back and re-read (`None`: never). The rewound position
    /// is committed with the next commit, so the group's committed offset can go down.
    pub rewind: Option<Rewind>,
    /// After every this many processed batches, move the partition's position to its latest
    /// offset, which the partition's leader is asked for (Kafka's `seekToEnd`; exercises
    /// ListOffsets under faults; `None`: never). The records skipped are skipped for the group.
    pub seek_end_every: Option<u32>,
    /// After every this many processed batches (when neither a rewind nor a seek to the end is
    /// due), ask the partition's leader for the first offset at or after the timestamp of one of
    /// the batch's records (Kafka's `offsetsForTimes`) and move there: a re-read from about
    /// that record, exercising ListOffsets by time under faults (`None`: never).
    pub seek_time_every: Option<u32>,
    /// Leave the group and stop once this many records are processed and committed.
    pub max_records: Option<u64>,
    /// After a commit whose outcome is unknown (timed out, or refused by a coordinator that may
    /// have written it), re-commit the partition's last acknowledged offset every this many ms
    /// until the next rebalance, as Kafka's auto-commit re-commits consumed positions on its
    /// interval (`None`: never). The unknown commit may still land later, behind newer ones,
    /// and take the group's offset back; a member with nothing new to commit would otherwise
    /// leave it there for good (found by the simulator: seed 30000220).
    pub recommit_ms: Option<u64>,
    /// Application seeks, by partition: once the member first has the partition, it moves there
    /// (forwards or backwards) instead of the committed offset.
    pub seek_to: std::collections::BTreeMap<u32, crate::protocol::Offset>,
    /// Join first for an id only, then with it (`GroupRequest::Join::require_known_member_id`,
    /// Kafka's clients from JoinGroup v4): a join the network repeats or delays adds no member.
    pub require_known_member_id: bool,
    pub bugs: BugSet,
}
