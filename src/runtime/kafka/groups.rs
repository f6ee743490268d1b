//! Consumer groups: how FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup,
//! OffsetCommit and OffsetFetch map onto the broker's own group requests (`GroupRequest`), which
//! its group coordinator answers.
//!
//! Kafka's classic protocol has the group's leader member compute the assignment, and so does
//! the coordinator here for every Kafka client: a JoinGroup becomes a Join whose leader assigns
//! (`AssignBy::Leader`), carrying the member's protocols with their metadata as opaque bytes; the
//! coordinator chooses the protocol and the leader, the leader's JoinGroup answer lists every
//! member's metadata, and the leader's SyncGroup hands the coordinator the assignment it then
//! gives each member. The listener reads none of these bytes, so any assignor a client ships
//! (range, round-robin, sticky, cooperative-sticky, its own) and any protocol type works.

use super::errors;
use crate::protocol::{AssignBy, GroupAnswer, GroupRequest, ProtocolOffer};
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse};
use kafka_protocol::protocol::StrBytes;

/// Kafka's COORDINATOR_NOT_AVAILABLE.
pub const COORDINATOR_NOT_AVAILABLE: i16 = 15;

/// A JoinGroup as the coordinator's Join.
pub fn join(req: &JoinGroupRequest) -> GroupRequest {
    let protocols = req
        .protocols
        .iter()
        .map(|p| ProtocolOffer {
            name: p.name.to_string(),
            metadata: p.metadata.to_vec(),
        })
        .collect();
    GroupRequest::Join {
        member: (!req.member_id.is_empty()).then(|| req.member_id.to_string()),
        // The coordinator needs no topics when the leader assigns.
        topics: Vec::new(),
        assign: AssignBy::Leader {
            protocol_type: req.protocol_type.to_string(),
            protocols,
        },
    }
}

/// Fills a JoinGroup response from the coordinator's Joined answer.
pub fn joined(
    resp: &mut JoinGroupResponse,
    answer: &GroupAnswer,
    req: &JoinGroupRequest,
    version: i16,
) {
    let GroupAnswer::Joined {
        member,
        generation,
        leader,
    } = answer
    else {
        return;
    };
    resp.generation_id = *generation as i32;
    resp.member_id = StrBytes::from_string(member.clone());
    if version >= 7 {
        resp.protocol_type = Some(req.protocol_type.clone());
    }
    if let Some(l) = leader {
        resp.protocol_name = Some(StrBytes::from_string(l.protocol.clone()));
        resp.leader = StrBytes::from_string(l.leader.clone());
        resp.members = l
            .members
            .iter()
            .map(|(id, metadata)| {
                let mut m = JoinGroupResponseMember::default();
                m.member_id = StrBytes::from_string(id.clone());
                m.metadata = metadata.clone().into();
                m
            })
            .collect();
    }
}

/// The leader's assignment in a SyncGroup, as the coordinator carries it.
pub fn assignments(from: &[SyncGroupRequestAssignment]) -> Vec<(String, Vec<u8>)> {
    from.iter()
        .map(|a| (a.member_id.to_string(), a.assignment.to_vec()))
        .collect()
}

/// Kafka's code for the outcome of one group request (`None`: no answer in time).
pub fn code(result: &Option<Result<GroupAnswer, crate::protocol::ErrorCode>>) -> i16 {
    match result {
        Some(Ok(_)) => 0,
        Some(Err(e)) => errors::kafka_code(*e),
        None => errors::REQUEST_TIMED_OUT,
    }
}
