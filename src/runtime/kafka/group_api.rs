//! The consumer-group APIs over the broker: each request becomes the broker's own group
//! requests (see `groups` for the translation of shapes), sent as one synthetic client, and the
//! coordinator's answers become the response.

use super::conn::{millis, Shared, GRACE};
use super::{errors, groups};
use crate::protocol::{
    ErrorCode, GroupAnswer, GroupMessage, GroupRequest, Message, TopicPartition,
};
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{
    BrokerId, FindCoordinatorRequest, FindCoordinatorResponse, GroupId, HeartbeatResponse,
    JoinGroupRequest, JoinGroupResponse, LeaveGroupResponse, OffsetCommitResponse,
    OffsetFetchRequest, OffsetFetchResponse, RequestKind, ResponseKind, SyncGroupResponse,
    TopicName,
};
use kafka_protocol::protocol::StrBytes;
use std::time::Duration;
use tokio::time::{timeout_at, Instant};

/// One group request's topics as asked: per group, per topic, the partitions.
type Asked = Vec<(GroupId, Vec<(TopicName, Vec<i32>)>)>;

/// Answers a group API request (`None` only for a response that cannot be encoded).
pub async fn handle(shared: &Shared, body: RequestKind, version: i16) -> Option<ResponseKind> {
    match body {
        RequestKind::FindCoordinator(req) => Some(ResponseKind::FindCoordinator(
            find_coordinator(shared, &req, version).await,
        )),
        RequestKind::JoinGroup(req) => Some(ResponseKind::JoinGroup(
            join_group(shared, &req, version).await,
        )),
        RequestKind::SyncGroup(req) => {
            let generation = u32::try_from(req.generation_id).unwrap_or(u32::MAX);
            let sync = GroupRequest::Sync {
                member: req.member_id.to_string(),
                generation,
                assignments: groups::assignments(&req.assignments),
            };
            let wait = Duration::from_secs(30);
            let result = group_calls(shared, &req.group_id.0, vec![sync], wait)
                .await
                .pop()
                .flatten();
            let mut resp = SyncGroupResponse::default();
            match &result {
                Some(Ok(GroupAnswer::Assignment { data, .. })) => {
                    resp.assignment = data.clone().into();
                    if version >= 5 {
                        resp.protocol_type = req.protocol_type.clone();
                        resp.protocol_name = req.protocol_name.clone();
                    }
                }
                other => resp.error_code = groups::code(other),
            }
            Some(ResponseKind::SyncGroup(resp))
        }
        RequestKind::Heartbeat(req) => {
            let beat = GroupRequest::Heartbeat {
                member: req.member_id.to_string(),
                generation: u32::try_from(req.generation_id).unwrap_or(u32::MAX),
            };
            let result = group_calls(shared, &req.group_id.0, vec![beat], GRACE)
                .await
                .pop()
                .flatten();
            let mut resp = HeartbeatResponse::default();
            resp.error_code = groups::code(&result);
            Some(ResponseKind::Heartbeat(resp))
        }
        RequestKind::LeaveGroup(req) => {
            let members: Vec<String> = if version >= 3 {
                req.members
                    .iter()
                    .map(|m| m.member_id.to_string())
                    .collect()
            } else {
                vec![req.member_id.to_string()]
            };
            let leaves = members
                .iter()
                .map(|m| GroupRequest::Leave { member: m.clone() })
                .collect();
            let results = group_calls(shared, &req.group_id.0, leaves, GRACE).await;
            let mut resp = LeaveGroupResponse::default();
            for (m, r) in members.iter().zip(&results) {
                if version >= 3 {
                    let mut mr = MemberResponse::default();
                    mr.member_id = StrBytes::from_string(m.clone());
                    mr.error_code = groups::code(r);
                    resp.members.push(mr);
                } else {
                    resp.error_code = groups::code(r);
                }
            }
            Some(ResponseKind::LeaveGroup(resp))
        }
        RequestKind::OffsetCommit(req) => {
            let generation = u32::try_from(req.generation_id_or_member_epoch).unwrap_or(u32::MAX);
            let mut commits = Vec::new();
            let mut resp = OffsetCommitResponse::default();
            for t in &req.topics {
                let mut rt = OffsetCommitResponseTopic::default();
                rt.name = t.name.clone();
                for p in &t.partitions {
                    let mut rp = OffsetCommitResponsePartition::default();
                    rp.partition_index = p.partition_index;
                    match (
                        u32::try_from(p.partition_index),
                        u64::try_from(p.committed_offset),
                    ) {
                        (Ok(index), Ok(offset)) => commits.push(GroupRequest::Commit {
                            member: req.member_id.to_string(),
                            generation,
                            tp: TopicPartition::new(t.name.0.to_string(), index),
                            offset,
                            // Null metadata is kept as empty, as Kafka keeps it.
                            metadata: p
                                .committed_metadata
                                .as_ref()
                                .map(|m| m.to_string())
                                .unwrap_or_default(),
                        }),
                        _ => rp.error_code = errors::INVALID_REQUEST,
                    }
                    rt.partitions.push(rp);
                }
                resp.topics.push(rt);
            }
            let wait = Duration::from_secs(10);
            let mut results = group_calls(shared, &req.group_id.0, commits, wait)
                .await
                .into_iter();
            for rp in resp.topics.iter_mut().flat_map(|t| t.partitions.iter_mut()) {
                if rp.error_code == 0 {
                    rp.error_code = groups::code(&results.next().flatten());
                }
            }
            Some(ResponseKind::OffsetCommit(resp))
        }
        RequestKind::OffsetFetch(req) => Some(ResponseKind::OffsetFetch(
            offset_fetch(shared, &req, version).await,
        )),
        _ => None,
    }
}

/// Sends `requests` for `group` to the broker (correlations 0, 1, ...) and collects their
/// answers, `None` for those not answered within `wait`.
async fn group_calls(
    shared: &Shared,
    group: &str,
    requests: Vec<GroupRequest>,
    wait: Duration,
) -> Vec<Option<Result<GroupAnswer, ErrorCode>>> {
    let mut answers = vec![None; requests.len()];
    if requests.is_empty() {
        return answers;
    }
    let mut client = shared.client();
    for (i, request) in requests.into_iter().enumerate() {
        client.send(Message::Group(GroupMessage {
            group: group.to_string(),
            correlation: i as u64,
            request,
        }));
    }
    let deadline = Instant::now() + wait;
    while answers.iter().any(Option::is_none) {
        match timeout_at(deadline, client.recv()).await {
            Ok(Some(Message::GroupResponse(r))) => {
                if let Some(slot) = answers.get_mut(r.correlation as usize) {
                    *slot = Some(r.result);
                }
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
    answers
}

async fn find_coordinator(
    shared: &Shared,
    req: &FindCoordinatorRequest,
    version: i16,
) -> FindCoordinatorResponse {
    let keys = if version >= 4 {
        req.coordinator_keys.clone()
    } else {
        vec![req.key.clone()]
    };
    let mut resp = FindCoordinatorResponse::default();
    for key in keys {
        // Key type 1 is a transaction coordinator: seedlog has none.
        let found = if req.key_type != 0 {
            Err(groups::COORDINATOR_NOT_AVAILABLE)
        } else {
            let find = vec![GroupRequest::FindCoordinator];
            let result = group_calls(shared, &key, find, GRACE).await.pop().flatten();
            match result {
                Some(Ok(GroupAnswer::Coordinator(b))) => shared
                    .kafka
                    .get(&b)
                    .map(|a| (b, *a))
                    .ok_or(groups::COORDINATOR_NOT_AVAILABLE),
                other => Err(match groups::code(&other) {
                    0 => groups::COORDINATOR_NOT_AVAILABLE,
                    c => c,
                }),
            }
        };
        let (code, node, host, port) = match found {
            Ok((b, a)) => (0, b as i32, a.ip().to_string(), i32::from(a.port())),
            Err(code) => (code, -1, String::new(), -1),
        };
        if version >= 4 {
            let mut c = Coordinator::default();
            c.key = key;
            c.node_id = BrokerId(node);
            c.host = StrBytes::from_string(host);
            c.port = port;
            c.error_code = code;
            resp.coordinators.push(c);
        } else {
            resp.error_code = code;
            resp.node_id = BrokerId(node);
            resp.host = StrBytes::from_string(host);
            resp.port = port;
        }
    }
    resp
}

async fn join_group(shared: &Shared, req: &JoinGroupRequest, version: i16) -> JoinGroupResponse {
    let mut resp = JoinGroupResponse::default();
    resp.member_id = req.member_id.clone();
    // A join waits for the rebalance: up to the coordinator's rebalance timeout.
    let wait = millis(req.rebalance_timeout_ms.max(req.session_timeout_ms)) + GRACE;
    let join = groups::join(req, version);
    let result = group_calls(shared, &req.group_id.0, vec![join], wait)
        .await
        .pop()
        .flatten();
    match &result {
        Some(Ok(answer)) => groups::joined(&mut resp, answer, req, version),
        other => resp.error_code = groups::code(other),
    }
    resp
}

async fn offset_fetch(
    shared: &Shared,
    req: &OffsetFetchRequest,
    version: i16,
) -> OffsetFetchResponse {
    // Up to v7 one group with its topics; from v8 a list of groups.
    let asked: Asked = if version >= 8 {
        req.groups
            .iter()
            .map(|g| {
                let topics = g.topics.iter().flatten();
                let topics = topics.map(|t| (t.name.clone(), t.partition_indexes.clone()));
                (g.group_id.clone(), topics.collect())
            })
            .collect()
    } else {
        let topics = req.topics.iter().flatten();
        let topics = topics.map(|t| (t.name.clone(), t.partition_indexes.clone()));
        vec![(req.group_id.clone(), topics.collect())]
    };
    let mut resp = OffsetFetchResponse::default();
    for (group, topics) in asked {
        let mut calls = Vec::new();
        for (name, parts) in &topics {
            for p in parts {
                let tp =
                    TopicPartition::new(name.0.to_string(), u32::try_from(*p).unwrap_or(u32::MAX));
                calls.push(GroupRequest::FetchOffset { tp });
            }
        }
        let mut results = group_calls(shared, &group.0, calls, GRACE)
            .await
            .into_iter();
        let mut group_error = 0;
        let mut rg = OffsetFetchResponseGroup::default();
        rg.group_id = group.clone();
        for (name, parts) in &topics {
            let mut old = OffsetFetchResponseTopic::default();
            old.name = name.clone();
            let mut new = OffsetFetchResponseTopics::default();
            new.name = name.clone();
            for p in parts {
                let result = results.next().flatten();
                let (offset, metadata, code) = match &result {
                    Some(Ok(GroupAnswer::Offset { offset, metadata })) => {
                        (offset.map_or(-1, |o| o as i64), metadata.as_str(), 0)
                    }
                    other => (-1, "", groups::code(other)),
                };
                if code == errors::kafka_code(ErrorCode::NotCoordinator)
                    || code == errors::kafka_code(ErrorCode::CoordinatorLoadInProgress)
                {
                    // The group's errors, which send the client to find its coordinator again.
                    group_error = code;
                }
                let mut op = OffsetFetchResponsePartition::default();
                op.partition_index = *p;
                op.committed_offset = offset;
                op.metadata = Some(StrBytes::from_string(metadata.to_string()));
                op.error_code = code;
                old.partitions.push(op);
                let mut np = OffsetFetchResponsePartitions::default();
                np.partition_index = *p;
                np.committed_offset = offset;
                np.metadata = Some(StrBytes::from_string(metadata.to_string()));
                np.error_code = code;
                new.partitions.push(np);
            }
            if version >= 8 {
                rg.topics.push(new);
            } else {
                resp.topics.push(old);
            }
        }
        if version >= 8 {
            rg.error_code = group_error;
            resp.groups.push(rg);
        } else {
            if version >= 2 {
                resp.error_code = group_error;
            }
        }
    }
    resp
}
