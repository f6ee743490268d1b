//! Produce: every partition's record batches become one batch of the broker's own produce
//! request; the broker's answers (base offset or error, per batch) become the partition
//! responses. A payload that fails its checks is answered here and never reaches the broker,
//! so a corrupt batch changes no log.

use super::batch::{decode_payload_within, InflateBudget};
use super::errors;
use crate::protocol::{
    Acks, ErrorCode, Offset, PartitionBatch, ProduceRequest as OurRequest, TopicPartition,
};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use std::collections::BTreeMap;

/// A Kafka produce request, translated: what to send to the broker and how to answer.
pub struct Plan {
    pub acks: Acks,
    /// The broker's request; `None` when no partition passed the checks. The caller takes it
    /// (the records move on to the broker; copying them showed in profiles).
    pub request: Option<OurRequest>,
    /// How many batches the broker will answer.
    awaited: usize,
    /// Per topic, per partition in the request's order: an answer already known, or the id of
    /// the batch the broker will answer.
    slots: Vec<(kafka_protocol::messages::TopicName, Vec<(i32, Slot)>)>,
}

enum Slot {
    Refused(i16),
    Sent(u64),
}

/// Translates `req`. Acks other than 0, 1 and -1 refuse every partition (and are answered).
pub fn plan(req: &ProduceRequest, correlation: u64) -> Plan {
    let (acks, bad_acks) = match req.acks {
        0 => (Acks::None, false),
        1 => (Acks::Leader, false),
        -1 => (Acks::All, false),
        _ => (Acks::All, true),
    };
    let mut batches = Vec::new();
    let mut slots = Vec::new();
    // One budget for the whole request: its partitions' records are all held until answered.
    let mut budget = InflateBudget::per_request();
    for topic in &req.topic_data {
        let mut parts = Vec::new();
        for p in &topic.partition_data {
            let slot = match (u32::try_from(p.index), &p.records) {
                _ if bad_acks => Slot::Refused(errors::INVALID_REQUIRED_ACKS),
                (Err(_), _) => Slot::Refused(errors::UNKNOWN_TOPIC_OR_PARTITION),
                (_, None) => Slot::Refused(errors::CORRUPT_MESSAGE),
                (Ok(_), Some(_))
                    if batches.iter().any(|b: &PartitionBatch| {
                        b.tp.topic == topic.name.0.as_str() && b.tp.partition == p.index as u32
                    }) =>
                {
                    Slot::Refused(errors::INVALID_REQUEST)
                }
                (Ok(index), Some(bytes)) => match decode_payload_within(bytes, &mut budget) {
                    Err(refused) => {
                        tracing::debug!(
                            "produce to {}-{index} refused: {}",
                            &*topic.name.0,
                            refused.why
                        );
                        Slot::Refused(refused.code)
                    }
                    Ok(decoded) => {
                        let id = batches.len() as u64;
                        batches.push(PartitionBatch {
                            tp: TopicPartition::new(topic.name.0.to_string(), index),
                            leader_epoch: None,
                            batch: id,
                            records: decoded.records,
                            producer: decoded.producer,
                        });
                        Slot::Sent(id)
                    }
                },
            };
            parts.push((p.index, slot));
        }
        slots.push((topic.name.clone(), parts));
    }
    let awaited = batches.len();
    let request = (!batches.is_empty()).then_some(OurRequest {
        acks,
        correlation,
        batches,
    });
    Plan {
        acks,
        request,
        awaited,
        slots,
    }
}

impl Plan {
    /// Batch ids the broker still owes an answer for.
    pub fn awaited(&self) -> usize {
        self.awaited
    }

    /// The Kafka response from the broker's answers (`answers` by batch id); a batch the broker
    /// did not answer in time is REQUEST_TIMED_OUT: its outcome is unknown.
    pub fn answer(
        &self,
        answers: &BTreeMap<u64, Result<Offset, ErrorCode>>,
        version: i16,
    ) -> ProduceResponse {
        let mut resp = ProduceResponse::default();
        for (name, parts) in &self.slots {
            let mut t = TopicProduceResponse::default();
            t.name = name.clone();
            for (index, slot) in parts {
                let mut p = PartitionProduceResponse::default();
                p.index = *index;
                let result = match slot {
                    Slot::Refused(code) => Err(*code),
                    Slot::Sent(id) => errors::offset_outcome(answers.get(id)),
                };
                match result {
                    Ok(offset) => p.base_offset = offset as i64,
                    Err(code) => {
                        p.error_code = code;
                        p.base_offset = -1;
                    }
                }
                let _ = version;
                t.partition_responses.push(p);
            }
            resp.responses.push(t);
        }
        resp
    }
}
