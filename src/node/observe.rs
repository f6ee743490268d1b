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
