//! What clients tell their driver about the operations they perform, for the history a checker
//! reads. A client reports an operation's start and its outcome; the driver adds who and when.
//! The protocol never reads these back: they exist for observers (the simulator's history, a CLI's
//! output) and are ignored by the model checker, which watches messages instead.

use crate::protocol::{LeaderEpoch, LogEntry, Offset, TopicPartition};
use bytes::Bytes;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ClientEvent {
    /// A producer starts sending one record (retries of it are the same operation). `id` names
    /// the record among the producer's (its index in the workload): a producer has many records
    /// in flight, and each outcome names the record it is about.
    SendInvoke {
        id: u64,
        topic: String,
        key: Option<Bytes>,
        value: Bytes,
    },
    /// The record is acknowledged at this partition and offset.
    SendOk {
        id: u64,
        partition: u32,
        offset: Offset,
    },
    /// The record was definitely not appended: a broker refused its batch with an error no
    /// retry can change (`ErrorCode::is_retriable`), which every attempt of it met or would have
    /// met, or the producer refused it unsent (a record larger than one append may take).
    SendFail { id: u64, reason: String },
    /// The producer gave up on the record; it may or may not have been appended.
    SendInfo { id: u64, reason: String },
    /// A consumer received records of one partition (possibly none is not reported). A group
    /// member reports them once processed, and names its group.
    Polled {
        tp: TopicPartition,
        records: Vec<LogEntry>,
        group: Option<String>,
    },
    /// A consumer moved its position without reading (a seek, or an `auto.offset.reset` to the
    /// latest offset).
    Seek {
        tp: TopicPartition,
        offset: Offset,
        group: Option<String>,
    },
    /// A consumer's fetch was out of range and the broker's answer gave the partition's log start,
    /// `offset`; the consumer moved there. Records below it were deleted (by retention) — the
    /// only thing that excuses an acknowledged record nobody read, so it is reported apart from
    /// seeks.
    Reset {
        tp: TopicPartition,
        offset: Offset,
        group: Option<String>,
    },
    /// A group member commits `offset` (the next offset to read) for `tp`: the start, then the
    /// outcome (retries are new operations).
    Commit {
        stage: Stage,
        group: String,
        tp: TopicPartition,
        offset: Offset,
    },
    /// A group member asks for the group's committed offset of `tp`; `offset` is the answer
    /// (`None` when the group has none, or before the answer).
    FetchCommitted {
        stage: Stage,
        group: String,
        tp: TopicPartition,
        offset: Option<Offset>,
    },
    /// A consumer asks `tp`'s leader for the partition's latest offset (Kafka's ListOffsets
    /// with `LATEST`: the high watermark, where the next committed record will go), for an
    /// `auto.offset.reset` to the latest offset or a seek to the end; `offset` is the answer.
    LatestOffset {
        stage: Stage,
        tp: TopicPartition,
        offset: Option<Offset>,
        /// The answering leader's epoch, with the answer.
        leader_epoch: Option<LeaderEpoch>,
        group: Option<String>,
    },
    /// A request for the first offset of `tp` whose record's timestamp is at least `timestamp`
    /// (Kafka's ListOffsets by time), for a seek there. The `ok` carries the answer: `offset`,
    /// the found record's timestamp (`None`: no record at or after the time below the high
    /// watermark, which is then the offset), and the leader's log start.
    OffsetForTime {
        stage: Stage,
        tp: TopicPartition,
        timestamp: i64,
        offset: Option<Offset>,
        record_timestamp: Option<i64>,
        log_start: Option<Offset>,
        /// The answering leader's epoch, with the answer.
        leader_epoch: Option<LeaderEpoch>,
        group: Option<String>,
    },
    /// A request for the first offset of `tp` holding the largest timestamp of its committed
    /// records (Kafka's ListOffsets by max timestamp), for a seek there. The `ok` carries the
    /// answer: `offset`, that timestamp (`None`: no committed record left, and the offset is the
    /// high watermark), and the leader's log start and high watermark, the range it looked at.
    OffsetForMaxTimestamp {
        stage: Stage,
        tp: TopicPartition,
        offset: Option<Offset>,
        record_timestamp: Option<i64>,
        log_start: Option<Offset>,
        high_watermark: Option<Offset>,
        /// The answering leader's epoch, with the answer.
        leader_epoch: Option<LeaderEpoch>,
        group: Option<String>,
    },
    /// A group member got its assignment for a generation (for the trace; not a history event).
    Assigned {
        group: String,
        member: String,
        generation: u32,
        partitions: Vec<TopicPartition>,
    },
    /// A consumer stopped on an error the application must handle (e.g. no committed offset and
    /// `auto.offset.reset=none`).
    ConsumerError { reason: String },
}

/// Where an operation with a start and an outcome is.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Stage {
    Invoke,
    Ok,
    /// Definitely did not happen.
    Fail(String),
    /// May or may not have happened.
    Info(String),
}

fn stage_text(s: &Stage) -> String {
    match s {
        Stage::Invoke => "invoke".into(),
        Stage::Ok => "ok".into(),
        Stage::Fail(r) => format!("failed: {r}"),
        Stage::Info(r) => format!("unknown: {r}"),
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

impl std::fmt::Display for ClientEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientEvent::SendInvoke {
                id,
                topic,
                key,
                value,
            } => match key {
                Some(k) => write!(f, "send #{id} {topic} {}={}", text(k), text(value)),
                None => write!(f, "send #{id} {topic} {}", text(value)),
            },
            ClientEvent::SendOk {
                id,
                partition,
                offset,
            } => {
                write!(f, "send #{id} ok partition={partition} offset={offset}")
            }
            ClientEvent::SendFail { id, reason } => write!(f, "send #{id} failed: {reason}"),
            ClientEvent::SendInfo { id, reason } => {
                write!(f, "send #{id} outcome unknown: {reason}")
            }
            ClientEvent::Polled { tp, records, .. } => {
                let shown: Vec<String> = records.iter().map(|e| e.to_string()).collect();
                write!(f, "polled {tp} [{}]", shown.join(", "))
            }
            ClientEvent::Seek { tp, offset, .. } => write!(f, "seek {tp} to {offset}"),
            ClientEvent::Reset { tp, offset, .. } => {
                write!(f, "reset {tp} to the log start {offset}")
            }
            ClientEvent::Commit {
                stage,
                group,
                tp,
                offset,
            } => write!(f, "commit {group} {tp}={offset} {}", stage_text(stage)),
            ClientEvent::FetchCommitted {
                stage,
                group,
                tp,
                offset,
            } => {
                let o = offset.map_or("none".to_string(), |o| o.to_string());
                write!(f, "fetch-committed {group} {tp} {} {o}", stage_text(stage))
            }
            ClientEvent::LatestOffset {
                stage, tp, offset, ..
            } => {
                let o = offset.map_or(String::new(), |o| format!(" {o}"));
                write!(f, "latest-offset {tp} {}{o}", stage_text(stage))
            }
            ClientEvent::OffsetForTime {
                stage,
                tp,
                timestamp,
                offset,
                ..
            } => {
                let o = offset.map_or(String::new(), |o| format!(" {o}"));
                write!(
                    f,
                    "offset-for-time {tp} {timestamp} {}{o}",
                    stage_text(stage)
                )
            }
            ClientEvent::OffsetForMaxTimestamp {
                stage, tp, offset, ..
            } => {
                let o = offset.map_or(String::new(), |o| format!(" {o}"));
                write!(f, "offset-for-max-timestamp {tp} {}{o}", stage_text(stage))
            }
            ClientEvent::Assigned {
                group,
                member,
                generation,
                partitions,
            } => {
                let tps: Vec<String> = partitions.iter().map(|tp| tp.to_string()).collect();
                write!(
                    f,
                    "assigned {group} member={member} gen={generation} [{}]",
                    tps.join(" ")
                )
            }
            ClientEvent::ConsumerError { reason } => write!(f, "consumer error: {reason}"),
        }
    }
}
