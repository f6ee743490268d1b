//! What a node asks its driver to do. Effects are data; a node never assumes one happened until the
//! driver says so (a delivered response, a fired timer, `on_persisted`).

use super::{ClientEvent, DiskOp, Situation};
use crate::protocol::{
    BrokerId, Message, NodeId, Offset, QuorumEntry, QuorumEpoch, QuorumSnapshot, TopicPartition,
};
use serde::{Deserialize, Serialize};

/// Identifies a sync request in `on_persisted`. A node numbers its syncs in increasing order;
/// drivers complete them in that order, and may answer several with one `on_persisted` naming
/// the highest (one disk sync covers every write made before it).
pub type SyncToken = u64;

/// Every timer any node sets. Drivers treat the value as an opaque, comparable key: setting a timer
/// that is already set restarts it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Timer {
    /// Broker: send the periodic heartbeat to the controller.
    Heartbeat,
    /// Broker: registration got no answer; ask again.
    RegisterRetry,
    /// Controller: no heartbeat from this broker within the session timeout.
    SessionExpiry(BrokerId),
    /// Leader: this follower has not caught up within `replica.lag.time.max.ms`.
    FollowerLag {
        tp: TopicPartition,
        replica: BrokerId,
    },
    /// Follower: wait before fetching again after an error.
    FetchBackoff(TopicPartition),
    /// Follower or reader: a fetch got no answer in time.
    FetchTimeout(TopicPartition),
    /// Leader: a parked long-poll fetch has waited long enough; answer it empty.
    FetchMaxWait { tp: TopicPartition, from: NodeId },
    /// Broker: requests waiting for newer metadata have waited long enough; answer them.
    ParkedExpiry,
    /// Leader: an ISR change got no answer in time.
    AlterPartitionTimeout(TopicPartition),
    /// Broker: apply retention.
    Retention,
    /// Client: wait before refreshing metadata and retrying.
    ClientBackoff,
    /// Client: a request got no answer in time.
    ClientRequestTimeout,
    /// Producer: time to hand over the next record (pacing).
    SendPace,
    /// Producer: this batch has waited (`delivery.timeout.ms`) too long; give up on it.
    DeliveryTimeout(u64),
    /// Producer: the open batch of this partition has lingered long enough; close it.
    Linger(u32),
    /// Producer: the produce request with this correlation got no answer in time.
    ProduceTimeout(u64),
    /// Producer: the metadata is `metadata.max.age.ms` old; ask again.
    MetadataMaxAge,
    /// Coordinator: the rebalance of this group has waited long enough for members to rejoin.
    GroupRebalance(String),
    /// Coordinator: this member sent nothing within the session timeout.
    MemberSession { group: String, member: String },
    /// Consumer: send the next group heartbeat.
    GroupHeartbeat,
    /// Consumer: processing of the records in hand is done.
    Process,
    /// Consumer: re-commit the last acknowledged offsets of partitions with a commit of unknown
    /// outcome (`ConsumerConfig::recommit_ms`).
    Recommit,
    /// Producer: its InitProducerId got no answer in time; ask the next bootstrap broker.
    InitProducerIdTimeout,
    /// Broker: its request for a block of producer ids got no answer in time; ask again.
    ProducerIdsRetry,
    /// Quorum voter (not leading): no successful fetch, or no election won, within the election
    /// timeout (randomized per firing): ask for pre-votes.
    QuorumElection,
    /// Quorum follower: its fetch got no answer in time; fetch again.
    QuorumFetchTimeout,
    /// Quorum leader: a parked fetch from this voter has waited long enough; answer it empty.
    QuorumFetchWait(NodeId),
    /// Quorum leader: check that a majority fetched since the last check, else resign.
    QuorumCheck,
    /// Admin: time to ask for this topic (by index), first or again.
    CreateTopic(u32),
    /// Controller: move leadership back to preferred replicas (`leader_rebalance_ms`).
    LeaderRebalance,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Effect {
    Send {
        to: NodeId,
        message: Message,
    },
    SetTimer {
        timer: Timer,
        after_ms: u64,
    },
    CancelTimer(Timer),
    /// Write to the node's disk image. Writes apply in order; a process crash keeps them (page
    /// cache), a power loss may drop any not yet covered by a completed `Sync`.
    Persist(DiskOp),
    /// Make every earlier `Persist` durable, then call `on_persisted(n)` with some `n >= token`:
    /// every sync up to `n` is complete. The node goes on handling events meanwhile; a crash
    /// before the completion may lose what the sync was to make durable.
    Sync(SyncToken),
    /// A client reports an operation for the history; drivers without observers drop it.
    Observe(ClientEvent),
    /// The node reached a named protocol situation (coverage); drivers without a listener drop it.
    Reached(Situation),
    /// Close the connection to this peer, as a Kafka client does when a request on it times out.
    /// What was already handed to the network may still arrive, and may arrive after what the
    /// next connection carries (two connections are not ordered with each other); answers still
    /// to come on the old one are lost, so the node treats every request in flight to that peer
    /// as failed. The next `Send` to the peer opens a new connection. Drivers whose network has
    /// no connections (the models' ordered channels) ignore it.
    Disconnect(NodeId),
    /// A quorum voter hands a committed entry to its state machine, in offset order (starting
    /// again from 0 after a restart: the log is replayed). `epoch` is the voter's epoch when it
    /// learned the entry was committed. Drivers that host no metadata state machine drop it.
    Apply {
        offset: Offset,
        entry: QuorumEntry,
        epoch: QuorumEpoch,
    },
    /// A quorum voter took a snapshot of its state machine's state (`installed: false`: the
    /// state machine gave it), or replaced its log with its leader's (`installed: true`): the
    /// state machine must then replace its state with the snapshot's, and goes on applying
    /// from its end. Drivers that host no metadata state machine drop it.
    Snapshot {
        snapshot: QuorumSnapshot,
        installed: bool,
    },
}

/// Handed to every entry point: the current time and the effects the node produces.
#[derive(Debug, Default)]
pub struct Context {
    /// The node's wall clock in ms (record timestamps, retention by age). Not monotonic: the
    /// clock may be set back. Timers, not `now_ms`, measure durations.
    pub now_ms: u64,
    pub effects: Vec<Effect>,
}

impl Context {
    pub fn new(now_ms: u64) -> Self {
        Context {
            now_ms,
            effects: Vec::new(),
        }
    }

    /// `now_ms` as a signed record timestamp (Kafka's are `long`). `now_ms` is the node's wall
    /// clock, which may jump back (a reading earlier than the one before) or far ahead; a
    /// reading past `i64::MAX` saturates rather than wrapping to a time before 1970.
    pub fn timestamp_ms(&self) -> i64 {
        i64::try_from(self.now_ms).unwrap_or(i64::MAX)
    }

    pub fn send(&mut self, to: NodeId, message: Message) {
        self.effects.push(Effect::Send { to, message });
    }

    /// Sets (or restarts) `timer`; `None` means the timer is disabled in this configuration.
    pub fn set_timer(&mut self, timer: Timer, after_ms: Option<u64>) {
        if let Some(after_ms) = after_ms {
            self.effects.push(Effect::SetTimer { timer, after_ms });
        }
    }

    pub fn cancel_timer(&mut self, timer: Timer) {
        self.effects.push(Effect::CancelTimer(timer));
    }

    pub fn persist(&mut self, op: DiskOp) {
        self.effects.push(Effect::Persist(op));
    }

    pub fn sync(&mut self, token: SyncToken) {
        self.effects.push(Effect::Sync(token));
    }

    pub fn reached(&mut self, situation: Situation) {
        self.effects.push(Effect::Reached(situation));
    }

    pub fn disconnect(&mut self, peer: NodeId) {
        self.effects.push(Effect::Disconnect(peer));
    }

    pub fn observe(&mut self, event: ClientEvent) {
        self.effects.push(Effect::Observe(event));
    }

    pub fn take_effects(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.effects)
    }
}

/// The first fetch among a step's effects: what node tests of followers and clients look for.
#[cfg(test)]
pub(crate) fn sent_fetch(effects: &[Effect]) -> Option<&crate::protocol::FetchRequest> {
    effects.iter().find_map(|e| match e {
        Effect::Send {
            message: Message::Fetch(f),
            ..
        } => Some(f),
        _ => None,
    })
}

/// The broker the first metadata request among `effects` went to, if any (for tests).
#[cfg(test)]
pub(crate) fn sent_metadata_to(effects: &[Effect]) -> Option<NodeId> {
    effects.iter().find_map(|e| match e {
        Effect::Send {
            to,
            message: Message::Metadata { .. },
        } => Some(*to),
        _ => None,
    })
}
