//! What the controller quorum's voters and its clients send each other (KIP-595's Vote and
//! Fetch, KIP-996's pre-vote), and the metadata records its log replicates.

use super::{BrokerEpoch, BrokerId, BrokerRegistration, NodeId, Offset, PartitionState};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A quorum epoch (Raft's term). Epoch 0 is "no leader yet"; the first elected leader leads
/// epoch 1, so the last epoch of an empty log is 0.
pub type QuorumEpoch = u32;

/// A change to the cluster's metadata, as the quorum's log holds it. Later sessions extend it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum MetadataRecord {
    /// A newly elected leader's first entry (KRaft's LeaderChangeMessage): it lets the leader
    /// commit in its own epoch before anything is submitted.
    LeaderChange { leader: NodeId, epoch: QuorumEpoch },
    RegisterBroker {
        broker: BrokerId,
        epoch: BrokerEpoch,
    },
    /// A change the active controller made and committed through the log.
    Change(MetadataDelta),
}

/// One change of the cluster's metadata, as the active controller made it: every registration
/// and partition state it touched (whole: each replaces the one with its broker or partition),
/// the counters it moved, and the metadata version it makes. Nothing is ever removed from the
/// metadata, so replacements are all a change needs. Every voter applies the committed changes
/// in log order and so holds the same metadata at each offset.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MetadataDelta {
    pub version: u64,
    pub brokers: Vec<BrokerRegistration>,
    pub partitions: Vec<PartitionState>,
    pub next_broker_epoch: u64,
    pub next_producer_id: u64,
}

/// One entry of the quorum's log: its record and the epoch of the leader that appended it. The
/// offset is its position in the log.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct QuorumEntry {
    pub epoch: QuorumEpoch,
    pub record: MetadataRecord,
}

/// The metadata state at `end_offset`, standing in for the log entries below it (KIP-630): the
/// records that rebuild the state from a new cluster's, and the epoch of the last entry it
/// covers (what a voter's log reports as its last epoch when the snapshot is all it holds).
/// Only committed entries are ever snapshotted, so every voter's snapshot at one offset is the
/// same.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct QuorumSnapshot {
    pub end_offset: Offset,
    pub last_epoch: QuorumEpoch,
    pub records: Vec<MetadataRecord>,
}

/// A (pre-)vote request: the candidate's log end, for the voter's "at least as up to date" test.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct VoteRequest {
    /// The epoch the candidate runs in (for a pre-vote: the one it would run in).
    pub epoch: QuorumEpoch,
    pub candidate: NodeId,
    /// Epoch of the candidate's last entry (0: empty log).
    pub last_epoch: QuorumEpoch,
    pub end_offset: Offset,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct VoteResponse {
    /// The epoch asked about: an answer about another epoch is ignored.
    pub request_epoch: QuorumEpoch,
    /// The voter's epoch, and the leader it knows in it: a candidate behind learns of both.
    pub epoch: QuorumEpoch,
    pub leader: Option<NodeId>,
    pub granted: bool,
}

/// A follower's fetch (KIP-595): what it holds, named by offset and the epoch of its last entry,
/// so the leader can tell where the two logs part.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct QuorumFetchRequest {
    pub epoch: QuorumEpoch,
    pub replica: NodeId,
    /// The follower's log end: every entry below is in its log, and synced (it syncs before it
    /// fetches again), so the leader counts it towards the high watermark.
    pub fetch_offset: Offset,
    pub last_fetched_epoch: QuorumEpoch,
    /// The high watermark the follower knows: a leader with nothing new parks the fetch only
    /// while the follower is up to date with it.
    pub high_watermark: Offset,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum QuorumFetchResult {
    /// Entries from `start`, and the leader's high watermark if it has one in its epoch.
    Entries {
        start: Offset,
        entries: Vec<QuorumEntry>,
        high_watermark: Option<Offset>,
    },
    /// The follower's log parts from the leader's: the leader's largest epoch not above the
    /// follower's last fetched epoch ends at `end_offset` in the leader's log.
    Diverging {
        epoch: QuorumEpoch,
        end_offset: Offset,
    },
    /// The receiver does not lead `epoch`; `epoch` and `leader` say what it knows.
    NotLeader,
    /// The entries the follower needs next are gone from the leader's log (a snapshot replaced
    /// them), or its log parts from the leader's inside them: it replaces its whole log with
    /// this snapshot and fetches from its end (KIP-630's FetchSnapshot, sent whole).
    Snapshot(QuorumSnapshot),
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct QuorumFetchResponse {
    pub epoch: QuorumEpoch,
    pub leader: Option<NodeId>,
    /// The fetch this answers: its `fetch_offset` and `last_fetched_epoch`. The answer holds
    /// for a log that still ends there (by Raft's log matching, the same log); a follower whose
    /// log has moved since takes it for the late answer it is and drops it. Two connections to
    /// the leader are not ordered with each other, so an answer to a fetch left on a replaced
    /// one can arrive after the answers that moved the log.
    pub fetch_offset: Offset,
    pub last_fetched_epoch: QuorumEpoch,
    pub result: QuorumFetchResult,
}

/// A newly elected leader tells every voter it leads `epoch` (KIP-595 BeginQuorumEpoch), so
/// they start fetching without waiting for an election timeout.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct BeginQuorumEpoch {
    pub epoch: QuorumEpoch,
    pub leader: NodeId,
}

/// A client asks the quorum's leader to append a record.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct QuorumSubmit {
    /// Chosen by the client, echoed back.
    pub id: u64,
    pub record: MetadataRecord,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct QuorumSubmitResponse {
    pub id: u64,
    /// The offset the leader appended (and synced) the record at — accepted, not yet committed —
    /// or, from a non-leader, the leader it knows.
    pub result: Result<Offset, Option<NodeId>>,
}

impl fmt::Display for MetadataRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetadataRecord::LeaderChange { leader, epoch } => {
                write!(f, "leader-change({leader}@{epoch})")
            }
            MetadataRecord::RegisterBroker { broker, epoch } => {
                write!(f, "register(broker {broker} epoch {epoch})")
            }
            MetadataRecord::Change(d) => {
                write!(f, "change(v{}", d.version)?;
                for r in &d.brokers {
                    let state = if r.fenced { "fenced" } else { "live" };
                    write!(f, " broker {} epoch {} {state};", r.broker, r.epoch)?;
                }
                for p in &d.partitions {
                    let leader = p.leader.map_or("none".to_string(), |l| l.to_string());
                    write!(
                        f,
                        " {} leader {leader}@{} isr {:?} pe {};",
                        p.tp, p.leader_epoch, p.isr, p.partition_epoch
                    )?;
                }
                write!(
                    f,
                    " next epoch {} next pid {})",
                    d.next_broker_epoch, d.next_producer_id
                )
            }
        }
    }
}

impl fmt::Display for QuorumEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "e{}:{}", self.epoch, self.record)
    }
}

pub(super) fn fetch_response(r: &QuorumFetchResponse) -> String {
    let leader = r.leader.map_or("none".to_string(), |l| l.to_string());
    let what = match &r.result {
        QuorumFetchResult::Entries {
            start,
            entries,
            high_watermark,
        } => {
            let shown: Vec<String> = entries.iter().map(ToString::to_string).collect();
            let hw = high_watermark.map_or("none".to_string(), |h| h.to_string());
            format!("from {start} [{}] hw={hw}", shown.join(", "))
        }
        QuorumFetchResult::Diverging { epoch, end_offset } => {
            format!("diverging (epoch {epoch} ends at {end_offset})")
        }
        QuorumFetchResult::NotLeader => "not leader".to_string(),
        QuorumFetchResult::Snapshot(s) => format!(
            "snapshot to {} (last epoch {}, {} records)",
            s.end_offset,
            s.last_epoch,
            s.records.len()
        ),
    };
    format!(
        "QuorumFetchResponse epoch={} leader={leader} {what}",
        r.epoch
    )
}
