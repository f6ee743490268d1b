//! Records, log entries and the identifiers they are addressed by.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Address of any node: broker, controller or client. One address space, so a driver can route
/// every message by number alone.
pub type NodeId = u32;
/// A broker is a node; the alias documents intent in signatures.
pub type BrokerId = NodeId;
/// Broker-assigned position of a record in a partition. 64-bit, starts at 0, never reused.
pub type Offset = u64;
/// Leader epoch of a partition: bumped by the controller at every leader election.
pub type LeaderEpoch = u32;
/// Epoch of a broker registration: a restarted broker registers anew and gets a larger one.
pub type BrokerEpoch = u64;
/// Epoch of a partition's state (leader and ISR): bumped by every change the controller commits.
pub type PartitionEpoch = u32;

/// One partition of one topic.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: u32,
}

impl TopicPartition {
    pub fn new(topic: impl Into<String>, partition: u32) -> Self {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// A record header: Kafka allows repeated keys, so headers are a list, not a map. A header's
/// value may be null (`None`), which Kafka keeps apart from an empty one.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Header {
    pub key: String,
    pub value: Option<Bytes>,
}

/// What a producer sends: key, value, timestamp (milliseconds, set by the producer) and headers.
/// Key and values are `Bytes`, so a record's copies (the log's, the journal write's, each
/// follower's fetch answer) share one buffer: a clone is a reference count, not a copy.
///
/// Its serialized forms are written by hand (`record_serde.rs`), so that a null value could be
/// added without changing a byte of what non-null records were written as (files, frames and
/// the simulator's trace hashes).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Record {
    pub key: Option<Bytes>,
    /// `None` is Kafka's null value (a tombstone, in a compacted topic's terms); `Some` of an
    /// empty buffer is an empty value. Clients tell them apart, so the log does too.
    pub value: Option<Bytes>,
    pub timestamp: i64,
    pub headers: Vec<Header>,
}

impl Record {
    /// A record with a key and a value, timestamp 0 and no headers.
    pub fn keyed(key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> Self {
        Record {
            key: Some(Bytes::from(key.into())),
            value: Some(Bytes::from(value.into())),
            timestamp: 0,
            headers: Vec::new(),
        }
    }

    /// Approximate on-disk size, used by size-based retention.
    pub fn size_bytes(&self) -> u64 {
        let headers: usize = self
            .headers
            .iter()
            .map(|h| h.key.len() + h.value.as_ref().map_or(0, Bytes::len))
            .sum();
        let key = self.key.as_ref().map_or(0, Bytes::len);
        let value = self.value.as_ref().map_or(0, Bytes::len);
        (key + value + headers + 8) as u64
    }
}

impl fmt::Display for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let value = self
            .value
            .as_deref()
            .map_or_else(|| "(null)".to_string(), show);
        match &self.key {
            Some(k) => write!(f, "{}={}", show(k), value),
            None => write!(f, "{value}"),
        }
    }
}

/// An idempotent producer's identity, epoch and sequence numbers. Stored with every entry (Kafka
/// keeps it in the batch header) so that every replica, and so every future leader, knows the
/// producer's last batches (`log::ProducerState`): a retried batch is answered with its original
/// offsets instead of being appended twice, and a batch out of sequence is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ProducerStamp {
    pub producer: u64,
    /// Bumped by the producer when it can no longer tell which of its sends landed (one was given
    /// up on): sequences restart at 0, and the broker fences sends of older epochs.
    #[serde(default)]
    pub epoch: u16,
    /// Per partition, one per record, from 0 in each epoch. In a request, the batch's first; in
    /// a log entry, the entry's own.
    pub sequence: u64,
    /// In a log entry, the first sequence of the batch it was appended in (batch boundaries);
    /// in a request, equal to `sequence`.
    #[serde(default)]
    pub batch_first: u64,
}

impl ProducerStamp {
    /// The stamp of a request's batch starting at `sequence`.
    pub fn batch(producer: u64, epoch: u16, sequence: u64) -> Self {
        ProducerStamp {
            producer,
            epoch,
            sequence,
            batch_first: sequence,
        }
    }
}

/// One appended batch of an idempotent producer: its sequence range and where it landed (the
/// unit of `log::ProducerState`'s window).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct BatchMeta {
    pub first_seq: u64,
    pub last_seq: u64,
    pub first_offset: Offset,
    pub last_offset: Offset,
}

/// What a partition's log knew of one producer below some offset: its epoch and the batches that
/// began there. A leader hands these to a follower that restarts at the leader's log start, since
/// the deleted entries that carried them cannot be fetched.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ProducerSnapshot {
    pub producer: u64,
    pub epoch: u16,
    /// Oldest first.
    pub batches: Vec<BatchMeta>,
}

/// A record as stored in a partition's log: the offset the leader assigned, the leader epoch in
/// which it was appended, and the producer stamp of an idempotent send.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LogEntry {
    pub offset: Offset,
    pub epoch: LeaderEpoch,
    pub record: Record,
    #[serde(default)]
    pub producer: Option<ProducerStamp>,
}

impl fmt::Display for LogEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}:{}", self.offset, self.epoch, self.record)
    }
}
