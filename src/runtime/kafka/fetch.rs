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
    /// The request's `max_bytes`: the most record bytes the response carries over all its
    /// partitions (each partition's answer is capped by the broker itself).
    max_bytes: usize,
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
    // A client sends a positive limit (50 MiB by default); anything else is read as no room
    // beyond the first partition with records.
    let max_bytes = usize::try_from(req.max_bytes).unwrap_or(0);
    Plan {
        requests,
        slots,
        max_bytes,
    }
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
    /// (or, with none, REQUEST_TIMED_OUT: only after the listener's own deadline). Records go in
    /// while the response stays within the request's `max_bytes`, and the first partition's with
    /// records in any case (Kafka's rule, so that a consumer behind a large batch advances); a
    /// partition left out shows its marks and no records, and the client asks again from the
    /// same offset. Without this a fetch of a hundred partitions could be answered with a
    /// hundred times each partition's megabyte, past what clients take in one response.
    pub fn answer(
        &self,
        answers: &BTreeMap<TopicPartition, OurAnswer>,
        marks: &Marks,
        version: i16,
    ) -> anyhow::Result<FetchResponse> {
        let mut resp = FetchResponse::default();
        let mut used = 0usize;
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
                                    let records = encode_entries(&a.records)?;
                                    let fits = used + records.len() <= self.max_bytes;
                                    if used == 0 || fits {
                                        used += records.len();
                                        p.records = Some(records);
                                    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{LogEntry, Record};
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};

    fn request(partitions: i32, max_bytes: i32) -> FetchRequest {
        let mut t = FetchTopic::default();
        t.topic = TopicName(StrBytes::from_static_str("t"));
        t.partitions = (0..partitions)
            .map(|i| {
                let mut p = FetchPartition::default();
                p.partition = i;
                p.partition_max_bytes = 1 << 20;
                p
            })
            .collect();
        let mut req = FetchRequest::default();
        req.max_bytes = max_bytes;
        req.topics = vec![t];
        req
    }

    /// Each partition's answer: one record of 1 000 bytes.
    fn answers(plan: &Plan) -> BTreeMap<TopicPartition, OurAnswer> {
        plan.requests
            .iter()
            .map(|r| {
                let entry = LogEntry {
                    offset: 0,
                    epoch: 0,
                    record: Record::keyed("k", "v".repeat(1_000)),
                    producer: None,
                };
                let answer = OurAnswer {
                    tp: r.tp.clone(),
                    fetch_offset: 0,
                    error: None,
                    leader_epoch: 0,
                    high_watermark: 1,
                    log_start_offset: 0,
                    records: vec![entry],
                    diverging_epoch: None,
                    producers: Vec::new(),
                    connection: 0,
                };
                (r.tp.clone(), answer)
            })
            .collect()
    }

    /// Which partitions of the response carry records.
    fn with_records(req: &FetchRequest) -> Vec<i32> {
        let plan = plan(req, 12, &["t".to_string()]);
        let resp = plan
            .answer(&answers(&plan), &Marks::new(), 12)
            .expect("encodes");
        resp.responses[0]
            .partitions
            .iter()
            .filter(|p| p.records.as_ref().is_some_and(|r| !r.is_empty()))
            .map(|p| p.partition_index)
            .collect()
    }

    /// Records go in while the response stays within the request's `max_bytes`; the first
    /// partition's in any case; the partitions left out still show their high watermark.
    #[test]
    fn a_fetch_response_carries_records_up_to_the_requests_max_bytes() {
        assert_eq!(with_records(&request(4, 50 << 20)), [0, 1, 2, 3]);
        assert_eq!(with_records(&request(4, 2_500)), [0, 1]);
        assert_eq!(with_records(&request(4, 10)), [0], "the first in any case");
        assert_eq!(with_records(&request(4, -1)), [0]);
        let req = request(4, 10);
        let plan = plan(&req, 12, &["t".to_string()]);
        let resp = plan.answer(&answers(&plan), &Marks::new(), 12).unwrap();
        assert!(resp.responses[0]
            .partitions
            .iter()
            .all(|p| p.high_watermark == 1 && p.error_code == 0));
    }
}
