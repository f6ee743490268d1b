//! ListOffsets: earliest (-2), latest (-1) and a time (>= 0) become the broker's own ListOffsets
//! (log start, high watermark, or the first committed record at or after the time, from the
//! partition's leader). A time no committed record reaches is answered offset -1, timestamp -1,
//! as Kafka does. Max timestamp (-3, from version 7 as KIP-734 defines it) becomes the broker's
//! `MaxTimestamp`: the first committed record holding the largest timestamp, with that
//! timestamp (-1, -1 when no committed record is left). Other negative times, and -3 below
//! version 7, are refused.

use super::errors;
use crate::protocol::{ErrorCode, LeaderEpoch, Offset, OffsetSpec, TopicPartition};
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse, TopicName};
use std::collections::BTreeMap;

pub type Key = (TopicPartition, OffsetSpec);

/// The broker's answer for one key: the offset or its error, and what came with it.
pub struct Found {
    pub result: Result<Offset, ErrorCode>,
    /// For a lookup by time, the timestamp of the record found (none found: the answer is -1).
    pub timestamp: Option<i64>,
    /// The answering leader's epoch, which clients use to detect a stale answer after a leader
    /// change (KIP-207); only v4 and later carry it.
    pub leader_epoch: Option<LeaderEpoch>,
}

pub struct Plan {
    pub requests: Vec<Key>,
    slots: Vec<TopicSlots>,
}

/// A topic of the request and, per partition in order, what was asked or the error already known.
type TopicSlots = (TopicName, Vec<(i32, Result<Key, i16>)>);

pub fn plan(req: &ListOffsetsRequest, version: i16) -> Plan {
    let mut requests = Vec::new();
    let mut slots = Vec::new();
    for t in &req.topics {
        let mut parts = Vec::new();
        for p in &t.partitions {
            let spec = match p.timestamp {
                -2 => Ok(OffsetSpec::Earliest),
                -1 => Ok(OffsetSpec::Latest),
                -3 if version >= 7 => Ok(OffsetSpec::MaxTimestamp),
                t if t >= 0 => Ok(OffsetSpec::Timestamp(t)),
                _ => Err(errors::UNSUPPORTED_FOR_MESSAGE_FORMAT),
            };
            let slot = match (u32::try_from(p.partition_index), spec) {
                (Err(_), _) => Err(errors::UNKNOWN_TOPIC_OR_PARTITION),
                (_, Err(e)) => Err(e),
                (Ok(i), Ok(spec)) => {
                    let key = (TopicPartition::new(t.name.0.to_string(), i), spec);
                    if !requests.contains(&key) {
                        requests.push(key.clone());
                    }
                    Ok(key)
                }
            };
            parts.push((p.partition_index, slot));
        }
        slots.push((t.name.clone(), parts));
    }
    Plan { requests, slots }
}

impl Plan {
    /// `answers`: the broker's answer for each key asked (a key without one timed out).
    pub fn answer(&self, answers: &BTreeMap<Key, Found>, version: i16) -> ListOffsetsResponse {
        let mut resp = ListOffsetsResponse::default();
        for (name, parts) in &self.slots {
            let mut t = ListOffsetsTopicResponse::default();
            t.name = name.clone();
            for (index, slot) in parts {
                let mut p = ListOffsetsPartitionResponse::default();
                p.partition_index = *index;
                let found = slot.as_ref().ok().and_then(|key| answers.get(key));
                let result = match slot {
                    Err(code) => Err(*code),
                    Ok(key) => errors::offset_outcome(found.map(|f| &f.result)).map(|o| (key, o)),
                };
                p.timestamp = -1;
                // Older versions have no field for it, and an encoder refuses a value it
                // cannot write: the whole answer would be lost.
                if let (Ok(_), Some(f), 4..) = (&result, found, version) {
                    p.leader_epoch = f.leader_epoch.map_or(-1, |e| e as i32);
                }
                match result {
                    Ok(((_, OffsetSpec::Timestamp(_) | OffsetSpec::MaxTimestamp), o)) => {
                        match found.and_then(|f| f.timestamp) {
                            Some(t) => {
                                p.offset = o as i64;
                                p.timestamp = t;
                            }
                            None => p.offset = -1,
                        }
                    }
                    Ok((_, o)) => p.offset = o as i64,
                    Err(code) => {
                        p.error_code = code;
                        p.offset = -1;
                    }
                }
                t.partitions.push(p);
            }
            resp.topics.push(t);
        }
        resp
    }
}
