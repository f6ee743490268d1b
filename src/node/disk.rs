//! Disk effects and the durable images they build. A driver keeps an image per node (two for a
//! simulated disk: what is written and what is synced) and applies `DiskOp`s with these functions,
//! so what "a write" means is decided here once, not in each driver.

use crate::log::{LogError, PartitionLog};
use crate::protocol::{
    ClusterMetadata, LeaderEpoch, LogEntry, NodeId, Offset, ProducerSnapshot, QuorumEntry,
    QuorumEpoch, QuorumSnapshot, TopicPartition,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum DiskOp {
    /// Records appended to a partition's log, as journals were written before `Append` took
    /// its entries as one block. Read, never written: variants are named by position in a
    /// frame, so the old form keeps the first place and its meaning.
    AppendV1 {
        tp: TopicPartition,
        entries: Vec<LogEntry>,
    },
    Truncate {
        tp: TopicPartition,
        offset: Offset,
    },
    AssignEpoch {
        tp: TopicPartition,
        epoch: LeaderEpoch,
        start_offset: Offset,
    },
    SetLogStart {
        tp: TopicPartition,
        offset: Offset,
    },
    /// Empties the log and restarts it at `offset`, which may lie below the old log start: a
    /// follower whose whole log lies past its leader's end (after an unclean election).
    ResetLog {
        tp: TopicPartition,
        offset: Offset,
    },
    /// The controller's state as written before producer ids existed. Read, never written: a
    /// frame names its variant by position and postcard stores no field names, so a field added
    /// to `ControllerImage` would make old frames unreadable (`serde(default)` does not apply to
    /// a format that cannot tell a missing field from a short frame).
    ControllerStateV1(ControllerImageV1),
    /// The controller's whole state: small, and written as one checkpoint.
    ControllerState(ControllerImage),
    /// A quorum voter's epoch and its vote in it (Raft's currentTerm and votedFor).
    QuorumElection {
        epoch: QuorumEpoch,
        voted_for: Option<NodeId>,
    },
    /// Entries appended to a quorum voter's log at `start` (its log end when written).
    QuorumAppend {
        start: Offset,
        entries: Vec<QuorumEntry>,
    },
    /// A quorum voter cuts its log to end at `offset`.
    QuorumTruncate {
        offset: Offset,
    },
    /// A quorum voter's snapshot of what it applied: it replaces the log's entries below its
    /// end, which the log holds.
    QuorumSnapshot {
        snapshot: QuorumSnapshot,
    },
    /// A quorum voter replaces its whole log with its leader's snapshot.
    QuorumInstallSnapshot {
        snapshot: QuorumSnapshot,
    },
    /// `ResetLog` of a follower restarting at its leader's log start, which also takes the
    /// leader's producer state below it (`PartitionLog::install_producers`): one write, so that
    /// no power loss keeps the one without the other. Last, so that older frames keep their
    /// variant numbers.
    RestartWithProducers {
        tp: TopicPartition,
        offset: Offset,
        producers: Vec<ProducerSnapshot>,
    },
    /// Records appended to a partition's log, the entries written as one block
    /// (`protocol::entry_block`). Last, so that older frames keep their variant numbers.
    Append {
        tp: TopicPartition,
        #[serde(with = "crate::protocol::entry_block")]
        entries: Vec<LogEntry>,
    },
}

/// What a broker recovers from: its partitions' logs (records, epoch cache, log start). The high
/// watermark is not persisted; a recovered replica learns it again from its leader.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct BrokerImage {
    pub logs: BTreeMap<TopicPartition, PartitionLog>,
}

impl BrokerImage {
    pub fn apply(&mut self, op: &DiskOp) -> Result<(), LogError> {
        match op {
            DiskOp::Append { tp, entries } | DiskOp::AppendV1 { tp, entries } => {
                self.log(tp).append_entries(entries)
            }
            DiskOp::Truncate { tp, offset } => self.log(tp).truncate_to(*offset),
            DiskOp::AssignEpoch {
                tp,
                epoch,
                start_offset,
            } => {
                self.log(tp).assign_epoch(*epoch, *start_offset);
                Ok(())
            }
            DiskOp::SetLogStart { tp, offset } => {
                self.log(tp).advance_log_start(*offset);
                Ok(())
            }
            DiskOp::ResetLog { tp, offset } => {
                self.log(tp).reset_to(*offset);
                Ok(())
            }
            DiskOp::RestartWithProducers {
                tp,
                offset,
                producers,
            } => {
                let log = self.log(tp);
                log.reset_to(*offset);
                log.install_producers(producers);
                Ok(())
            }
            DiskOp::ControllerState(_)
            | DiskOp::ControllerStateV1(_)
            | DiskOp::QuorumElection { .. }
            | DiskOp::QuorumAppend { .. }
            | DiskOp::QuorumTruncate { .. }
            | DiskOp::QuorumSnapshot { .. }
            | DiskOp::QuorumInstallSnapshot { .. } => Ok(()),
        }
    }

    fn log(&mut self, tp: &TopicPartition) -> &mut PartitionLog {
        self.logs.entry(tp.clone()).or_default()
    }
}

/// What the controller recovers from. It stands in for a metadata quorum, so it syncs every change
/// before acting on it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ControllerImage {
    pub metadata: ClusterMetadata,
    pub next_broker_epoch: u64,
    /// The first producer id of the next block to give: every id below it may be in use. (A
    /// self-describing encoding without it reads 0; postcard frames of that age are
    /// `DiskOp::ControllerStateV1`.)
    #[serde(default)]
    pub next_producer_id: u64,
}

/// `ControllerImage` before producer ids.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ControllerImageV1 {
    pub metadata: ClusterMetadata,
    pub next_broker_epoch: u64,
}

impl ControllerImage {
    pub fn apply(&mut self, op: &DiskOp) {
        match op {
            DiskOp::ControllerState(image) => *self = image.clone(),
            // Such a controller gave no producer ids: none is in use, the counter starts at 0.
            DiskOp::ControllerStateV1(old) => {
                *self = ControllerImage {
                    metadata: old.metadata.clone(),
                    next_broker_epoch: old.next_broker_epoch,
                    next_producer_id: 0,
                }
            }
            _ => {}
        }
    }
}

/// What a quorum voter recovers from: its epoch, its vote in that epoch, its latest snapshot and
/// the log entries after it. The high watermark is not kept: a restarted voter knows the
/// snapshot committed, and learns the rest again from the leader (or, leading, by committing an
/// entry of its own epoch).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct QuorumImage {
    pub epoch: QuorumEpoch,
    pub voted_for: Option<NodeId>,
    /// The entries from the snapshot's end (from 0 without one).
    pub log: Vec<QuorumEntry>,
    #[serde(default)]
    pub snapshot: Option<QuorumSnapshot>,
}

impl QuorumImage {
    /// The offset of the first entry in `log`.
    pub fn start_offset(&self) -> Offset {
        self.snapshot.as_ref().map_or(0, |s| s.end_offset)
    }

    pub fn end_offset(&self) -> Offset {
        self.start_offset() + self.log.len() as Offset
    }

    /// An append that does not start at the log end, or a snapshot of entries the log does not
    /// hold, is refused: the image stays as it was (a voter bug, which the model's properties
    /// and the simulator's checks then see in the recovered log).
    pub fn apply(&mut self, op: &DiskOp) {
        match op {
            DiskOp::QuorumElection { epoch, voted_for } => {
                self.epoch = *epoch;
                self.voted_for = *voted_for;
            }
            DiskOp::QuorumAppend { start, entries } if *start == self.end_offset() => {
                self.log.extend(entries.iter().cloned());
            }
            DiskOp::QuorumTruncate { offset } => {
                let keep = offset.saturating_sub(self.start_offset()) as usize;
                self.log.truncate(keep);
            }
            DiskOp::QuorumSnapshot { snapshot }
                if (self.start_offset()..=self.end_offset()).contains(&snapshot.end_offset) =>
            {
                let drop = (snapshot.end_offset - self.start_offset()) as usize;
                self.log.drain(..drop);
                self.snapshot = Some(snapshot.clone());
            }
            DiskOp::QuorumInstallSnapshot { snapshot } => {
                self.log.clear();
                self.snapshot = Some(snapshot.clone());
            }
            _ => {}
        }
    }
}

impl std::fmt::Display for DiskOp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DiskOp::Append { tp, entries } | DiskOp::AppendV1 { tp, entries } => {
                let shown: Vec<String> = entries.iter().map(|e| e.to_string()).collect();
                write!(f, "append {tp} [{}]", shown.join(", "))
            }
            DiskOp::Truncate { tp, offset } => write!(f, "truncate {tp} to {offset}"),
            DiskOp::AssignEpoch {
                tp,
                epoch,
                start_offset,
            } => write!(f, "epoch {tp} {epoch} starts at {start_offset}"),
            DiskOp::SetLogStart { tp, offset } => write!(f, "log start {tp} = {offset}"),
            DiskOp::ResetLog { tp, offset } => write!(f, "reset log {tp} to start at {offset}"),
            DiskOp::RestartWithProducers {
                tp,
                offset,
                producers,
            } => write!(
                f,
                "reset log {tp} to start at {offset}, with {} producers",
                producers.len()
            ),
            DiskOp::ControllerState(img) => write!(
                f,
                "controller state v{} ({} brokers, {} partitions)",
                img.metadata.version,
                img.metadata.brokers.len(),
                img.metadata.partitions.len()
            ),
            DiskOp::ControllerStateV1(img) => write!(
                f,
                "controller state (v1) v{} ({} brokers, {} partitions)",
                img.metadata.version,
                img.metadata.brokers.len(),
                img.metadata.partitions.len()
            ),
            DiskOp::QuorumElection { epoch, voted_for } => {
                let vote = voted_for.map_or("none".to_string(), |v| v.to_string());
                write!(f, "quorum epoch {epoch} vote {vote}")
            }
            DiskOp::QuorumAppend { start, entries } => {
                let shown: Vec<String> = entries.iter().map(|e| e.to_string()).collect();
                write!(f, "quorum append at {start} [{}]", shown.join(", "))
            }
            DiskOp::QuorumTruncate { offset } => write!(f, "quorum truncate to {offset}"),
            DiskOp::QuorumSnapshot { snapshot } => write!(
                f,
                "quorum snapshot to {} (last epoch {}, {} records)",
                snapshot.end_offset,
                snapshot.last_epoch,
                snapshot.records.len()
            ),
            DiskOp::QuorumInstallSnapshot { snapshot } => write!(
                f,
                "quorum install snapshot to {} (last epoch {}, {} records)",
                snapshot.end_offset,
                snapshot.last_epoch,
                snapshot.records.len()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::Image;

    /// A controller state frame as written before producer ids: variant 5, metadata version 1,
    /// no brokers, no partitions, next broker epoch 1 (postcard: an index, then the fields).
    const OLD_CONTROLLER_STATE: [u8; 5] = [5, 1, 0, 0, 1];

    #[test]
    fn a_controller_state_written_before_producer_ids_still_loads() {
        let op: DiskOp = postcard::from_bytes(&OLD_CONTROLLER_STATE).expect("an old frame");
        let mut image = Image::Empty;
        image.apply(&op).expect("applies");
        let Image::Controller(c) = image else {
            panic!("{image:?}")
        };
        assert_eq!(
            (c.metadata.version, c.next_broker_epoch, c.next_producer_id),
            (1, 1, 0)
        );
        // Why the old layout keeps a variant of its own: postcard cannot tell a field missing at
        // the end from a short frame, so `serde(default)` alone would not read it.
        assert!(postcard::from_bytes::<ControllerImage>(&OLD_CONTROLLER_STATE[1..]).is_err());
    }
}
