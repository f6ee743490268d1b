//! Fetch: each partition asked for becomes one consumer fetch of the broker's own (it reads
//! below the high watermark only, long-polls when there is nothing, fences stale leader epochs);
//! the broker's answers become the partition data, records re-encoded as batches.

use super::encode::encode_entries;
use super::errors;
use super::topic_id::{topic_by_id, topic_id};
use crate::protocol::{FetchRequest as OurFetch, FetchResponse as OurAnswer, TopicPartition};
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{FetchRequest, FetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use std::collections::BTreeMap;
use uuid::Uuid;

/// The first version that names topics by id only.
const TOPIC_IDS: i16 = 13;

pub struct Plan {
    pub requests: Vec<OurFetch>,
    slots: Vec<TopicSlots>,
}

/// A topic of the request (name, id) and its partitions in the request's order.
type TopicSlots = (TopicName, Uuid, Vec<(i32, Slot)>);

enum Slot {
    Refused(i16),
    Sent(TopicPartition),
}

/// The last high watermark and log start the broker reported for a partition: what a response
/// shows for a partition whose long poll is still parked when another partition's data goes out.
pub type Marks = BTreeMap<TopicPartition, (i64, i64)>;

/// Translates `req`; `topics` are the topic names the broker's metadata knows (for ids).
pub fn plan(req: &FetchRequest, version: i16, topics: &[String]) -> Plan {
    let mut requests: Vec<OurFetch> = Vec::new();
    let mut slots = Vec::new();
    for t in &req.topics {
        let name = if version >= TOPIC_IDS {
            topic_by_id(t.topic_id, topics.iter().map(String::as_str))
        } else {
            Some(t.topic.0.clone())
        };
        let mut parts = Vec::new();
        for p in &t.partitions {
            let slot = match (
                &name,
                u32::try_from(p.partition),
                u64::try_from(p.fetch_offset),
            ) {
                (None, _, _) => Slot::Refused(errors::UNKNOWN_TOPIC_ID),
                (_, Err(_), _) => Slot::Refused(errors::UNKNOWN_TOPIC_OR_PARTITION),
                (_, _, Err(_)) => Slot::Refused(errors::OFFSET_OUT_OF_RANGE),
                (Some(n), Ok(index), Ok(offset)) => {
                    let tp = TopicPartition::new(n.to_string(), index);
                    if requests.iter().any(|r| r.tp == tp) {
                        Slot::Refused(errors::INVALID_REQUEST)
                    } else {
                        requests.push(OurFetch {
                            tp: tp.clone(),
                            replica: None,
                            fetch_offset: offset,
                            last_fetched_epoch: None,
                            current_leader_epoch: u32::try_from(p.current_leader_epoch).ok(),
                            synced_offset: 0,
                            known_hw: 0,
                        });
                        Slot::Sent(tp)
                    }
                }
            };
            parts.push((p.partition, slot));
        }
        let id = match &name {
            Some(n) => topic_id(n),
            None => t.topic_id,
        };
        let name = TopicName(name.unwrap_or_else(|| StrBytes::from_static_str("")));
        slots.push((name, id, parts));
    }
    Plan { requests, slots }
}

impl Plan {
    /// Whether the response can go out now: every partition answered, or some partition has
    /// records or an error (`min_bytes` of 1, what clients send) or the client's wait is over,
    /// and every partition still parked has marks to show.
    pub fn ready(
        &self,
        answers: &BTreeMap<TopicPartition, OurAnswer>,
        marks: &Marks,
        waited: bool,
    ) -> bool {
        let pending: Vec<&TopicPartition> = self
            .requests
            .iter()
            .map(|r| &r.tp)
            .filter(|tp| !answers.contains_key(*tp))
            .collect();
        if pending.is_empty() {
            return true;
        }
        let news = answers
            .values()
            .any(|a| a.error.is_some() || !a.records.is_empty());
        (news || waited) && pending.iter().all(|tp| marks.contains_key(*tp))
    }

    /// The Kafka response. A partition with no answer yet shows no records and its last marks
    /// (or, with none, REQUEST_TIMED_OUT: only after the listener's own deadline).
    pub fn answer(
        &self,
        answers: &BTreeMap<TopicPartition, OurAnswer>,
        marks: &Marks,
        version: i16,
    ) -> anyhow::Result<FetchResponse> {
        let mut resp = FetchResponse::default();
        for (name, id, parts) in &self.slots {
            let mut t = FetchableTopicResponse::default();
            if version >= TOPIC_IDS {
                t.topic_id = *id;
            } else {
                t.topic = name.clone();
            }
            for (index, slot) in parts {
                let mut p = PartitionData::default();
                p.partition_index = *index;
                p.high_watermark = -1;
                p.last_stable_offset = -1;
                p.log_start_offset = -1;
                match slot {
                    Slot::Refused(code) => p.error_code = *code,
                    Slot::Sent(tp) => match answers.get(tp) {
                        Some(a) => {
                            p.high_watermark = a.high_watermark as i64;
                            p.log_start_offset = a.log_start_offset as i64;
                            match a.error {
                                Some(e) => p.error_code = errors::kafka_code(e),
                                None if !a.records.is_empty() => {
                                    p.records = Some(encode_entries(&a.records)?)
                                }
                                None => {}
                            }
                        }
                        None => match marks.get(tp) {
                            Some((hw, start)) => {
                                p.high_watermark = *hw;
                                p.log_start_offset = *start;
                            }
                            None => p.error_code = errors::REQUEST_TIMED_OUT,
                        },
                    },
                }
                // No transactions: everything below the high watermark is stable.
                p.last_stable_offset = p.high_watermark;
                if version < 5 {
                    p.log_start_offset = -1;
                }
                t.partitions.push(p);
            }
            resp.responses.push(t);
        }
        Ok(resp)
    }
}
