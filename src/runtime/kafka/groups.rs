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

/// Kafka's MEMBER_ID_REQUIRED: a first join (v4 on) is answered an id to join again with.
pub const MEMBER_ID_REQUIRED: i16 = 79;

/// A JoinGroup as the coordinator's Join. From v4 a client understands MEMBER_ID_REQUIRED, and
/// its first join is only given an id (KIP-394).
pub fn join(req: &JoinGroupRequest, version: i16) -> GroupRequest {
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
        require_known_member_id: version >= 4,
    }
}

/// Fills a JoinGroup response from the coordinator's Joined (or MemberIdRequired) answer.
pub fn joined(
    resp: &mut JoinGroupResponse,
    answer: &GroupAnswer,
    req: &JoinGroupRequest,
    version: i16,
) {
    let (member, generation, leader) = match answer {
        GroupAnswer::Joined {
            member,
            generation,
            leader,
        } => (member, generation, leader),
        GroupAnswer::MemberIdRequired { member } => {
            resp.error_code = MEMBER_ID_REQUIRED;
            resp.member_id = StrBytes::from_string(member.clone());
            return;
        }
        _ => return,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn requires_id(version: i16) -> bool {
        match join(&JoinGroupRequest::default(), version) {
            GroupRequest::Join {
                require_known_member_id,
                ..
            } => require_known_member_id,
            other => panic!("not a join: {other:?}"),
        }
    }

    /// A JoinGroup from v4 knows MEMBER_ID_REQUIRED: its first join is only given an id, sent
    /// back as Kafka does (error 79 with the id in `member_id`); an older client is joined at once.
    #[test]
    fn a_first_join_from_v4_is_answered_member_id_required_with_the_id() {
        assert!(!requires_id(3));
        assert!(requires_id(4) && requires_id(7));
        let mut resp = JoinGroupResponse::default();
        let answer = GroupAnswer::MemberIdRequired {
            member: "c7-e1-3".into(),
        };
        joined(&mut resp, &answer, &JoinGroupRequest::default(), 5);
        assert_eq!(resp.error_code, MEMBER_ID_REQUIRED);
        assert_eq!(resp.member_id.as_str(), "c7-e1-3");
    }
}
