//! What clients tell their driver about the operations they perform, for the history a checker
//! reads. A client reports an operation's start and its outcome; the driver adds who and when.
//! The protocol never reads these back: they exist for observers (the simulator's history, a CLI's
//! output) and are ignored by the model checker, which watches messages instead.

use crate::protocol::{LogEntry, Offset, TopicPartition};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ClientEvent {
    /// A producer starts sending one record (retries of it are the same operation).
    SendInvoke {
        topic: String,
        key: Option<Vec<u8>>,
        value: Vec<u8>,
    },
    /// The record is acknowledged at this partition and offset.
    SendOk { partition: u32, offset: Offset },
    /// The producer gave up on the record and no attempt can have reached a leader.
    SendFail { reason: String },
    /// The producer gave up on the record; it may or may not have been appended.
    SendInfo { reason: String },
    /// A consumer received records of one partition (possibly none is not reported).
    Polled {
        tp: TopicPartition,
        records: Vec<LogEntry>,
    },
    /// A consumer moved its position without reading (a seek, or a jump to the log start after
    /// retention removed what it had not read).
    Seek { tp: TopicPartition, offset: Offset },
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

impl std::fmt::Display for ClientEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientEvent::SendInvoke { topic, key, value } => match key {
                Some(k) => write!(f, "send {topic} {}={}", text(k), text(value)),
                None => write!(f, "send {topic} {}", text(value)),
            },
            ClientEvent::SendOk { partition, offset } => {
                write!(f, "send ok partition={partition} offset={offset}")
            }
            ClientEvent::SendFail { reason } => write!(f, "send failed: {reason}"),
            ClientEvent::SendInfo { reason } => write!(f, "send outcome unknown: {reason}"),
            ClientEvent::Polled { tp, records } => {
                let shown: Vec<String> = records.iter().map(|e| e.to_string()).collect();
                write!(f, "polled {tp} [{}]", shown.join(", "))
            }
            ClientEvent::Seek { tp, offset } => write!(f, "seek {tp} to {offset}"),
        }
    }
}
