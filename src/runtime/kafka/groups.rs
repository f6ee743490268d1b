//! Consumer groups: FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetCommit
//! and OffsetFetch, each turned into the broker's own group requests (`GroupRequest`), which its
//! group coordinator answers.
//!
//! The coordinator computes the assignment itself (with the range or round-robin assignor, as
//! KIP-848's coordinators do). Kafka's classic protocol has a leader member compute it instead;
//! the listener bridges the two without deciding anything: every member is told that the leader
//! is `LEADER` (a member id no client has), so every client acts as a follower, sends an empty
//! SyncGroup, and receives the coordinator's assignment for it in Kafka's consumer-protocol
//! encoding. The protocol chosen is the first of the client's that the coordinator implements.

use super::errors;
use crate::protocol::{Assignor, GroupAnswer, GroupRequest, TopicPartition};
use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition as AssignedTopic;
use kafka_protocol::messages::{
    ConsumerProtocolAssignment, ConsumerProtocolSubscription, JoinGroupRequest, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

/// The leader every member is shown: no member has this id, so none computes an assignment.
pub const LEADER: &str = "seedlog-coordinator-assigns";
/// Kafka's INCONSISTENT_GROUP_PROTOCOL.
pub const INCONSISTENT_GROUP_PROTOCOL: i16 = 23;
/// Kafka's COORDINATOR_NOT_AVAILABLE.
pub const COORDINATOR_NOT_AVAILABLE: i16 = 15;

/// A JoinGroup as the coordinator's Join, and the protocol name to answer with; `Err` is the
/// Kafka error when the client offers nothing the coordinator implements.
pub fn join(req: &JoinGroupRequest) -> Result<(GroupRequest, StrBytes), i16> {
    if &*req.protocol_type != "consumer" {
        return Err(INCONSISTENT_GROUP_PROTOCOL);
    }
    for p in &req.protocols {
        let assignor = match &*p.name {
            "range" => Assignor::Range,
            "roundrobin" => Assignor::RoundRobin,
            _ => continue,
        };
        let topics = subscription(&p.metadata).ok_or(INCONSISTENT_GROUP_PROTOCOL)?;
        let member = (!req.member_id.is_empty()).then(|| req.member_id.to_string());
        return Ok((
            GroupRequest::Join {
                member,
                topics,
                assignor,
            },
            p.name.clone(),
        ));
    }
    Err(INCONSISTENT_GROUP_PROTOCOL)
}

/// The topics of a consumer-protocol subscription (a version, then the body).
fn subscription(metadata: &Bytes) -> Option<Vec<String>> {
    if metadata.len() < 2 {
        return None;
    }
    let version = i16::from_be_bytes([metadata[0], metadata[1]]).clamp(0, 3);
    let mut body = metadata.slice(2..);
    // Lengths in it were bounded by the request's walk (the metadata is bytes of the request).
    let sub =
        std::panic::catch_unwind(move || ConsumerProtocolSubscription::decode(&mut body, version))
            .ok()?
            .ok()?;
    Some(sub.topics.iter().map(|t| t.to_string()).collect())
}

/// The coordinator's assignment in the consumer-protocol encoding (version 0, which every
/// client reads).
pub fn assignment(partitions: &[TopicPartition]) -> anyhow::Result<Bytes> {
    let mut a = ConsumerProtocolAssignment::default();
    for tp in partitions {
        let index = tp.partition as i32;
        match a
            .assigned_partitions
            .iter_mut()
            .find(|t| &*t.topic.0 == tp.topic.as_str())
        {
            Some(t) => t.partitions.push(index),
            None => {
                let mut t = AssignedTopic::default();
                t.topic = TopicName(StrBytes::from_string(tp.topic.clone()));
                t.partitions = vec![index];
                a.assigned_partitions.push(t);
            }
        }
    }
    let mut buf = BytesMut::new();
    buf.extend_from_slice(&0i16.to_be_bytes());
    a.encode(&mut buf, 0)?;
    Ok(buf.freeze())
}

/// Kafka's code for the outcome of one group request (`None`: no answer in time).
pub fn code(result: &Option<Result<GroupAnswer, crate::protocol::ErrorCode>>) -> i16 {
    match result {
        Some(Ok(_)) => 0,
        Some(Err(e)) => errors::kafka_code(*e),
        None => errors::REQUEST_TIMED_OUT,
    }
}
