//! Kafka's classic protocol on the member's side, for groups whose leader member assigns
//! (`ConsumerConfig::leader_assigns`): what a member offers when it joins, and the leader's work
//! between its join and its sync. The coordinator only carries these bytes; this file is the one
//! place that reads and writes them (JSON: the topics a member reads, and each member's
//! partitions).

use super::Consumer;
use crate::node::coordinator::assign;
use crate::protocol::{
    AssignBy, Assignor, ClusterMetadata, LeaderJoin, MemberId, ProtocolOffer, TopicPartition,
};
use std::collections::BTreeMap;

/// The protocol type of seedlog's own consumers.
pub const PROTOCOL_TYPE: &str = "consumer";

/// The name a protocol goes by on the wire.
fn protocol_name(assignor: Assignor) -> &'static str {
    match assignor {
        Assignor::Range => "range",
        Assignor::RoundRobin => "roundrobin",
    }
}

impl Consumer {
    /// How this member asks to be assigned when it joins.
    pub(super) fn assign_by(&self) -> AssignBy {
        if !self.config.leader_assigns {
            return AssignBy::Coordinator(self.config.assignor);
        }
        let topics = vec![self.config.topic.clone()];
        AssignBy::Leader {
            protocol_type: PROTOCOL_TYPE.into(),
            protocols: vec![ProtocolOffer {
                name: protocol_name(self.config.assignor).into(),
                metadata: serde_json::to_vec(&topics).unwrap_or_default(),
            }],
        }
    }
}

/// The topics a member said it reads (nothing, for metadata this version cannot read).
fn subscription(metadata: &[u8]) -> Vec<String> {
    serde_json::from_slice(metadata).unwrap_or_default()
}

/// The topics the members of `join` read that `md` does not know the size of: the leader needs
/// newer metadata before it can assign them.
pub(super) fn unknown_topics(join: &LeaderJoin, md: Option<&ClusterMetadata>) -> bool {
    join.members.iter().any(|(_, m)| {
        subscription(m)
            .iter()
            .any(|t| md.is_none_or(|md| md.partition_count(t) == 0))
    })
}

/// The leader's assignment for every member, encoded for the coordinator to carry.
pub(super) fn assignments(join: &LeaderJoin, md: &ClusterMetadata) -> Vec<(MemberId, Vec<u8>)> {
    let assignor = join.protocol.parse().unwrap_or(Assignor::Range);
    let subscriptions: BTreeMap<MemberId, Vec<String>> = join
        .members
        .iter()
        .map(|(id, m)| (id.clone(), subscription(m)))
        .collect();
    let counts = subscriptions
        .values()
        .flatten()
        .map(|t| (t.clone(), md.partition_count(t)))
        .collect();
    assign(assignor, &subscriptions, &counts)
        .into_iter()
        .map(|(id, parts)| (id, serde_json::to_vec(&parts).unwrap_or_default()))
        .collect()
}

/// A member's share as the leader encoded it (nothing, for bytes this version cannot read).
pub(super) fn share(data: &[u8]) -> Vec<TopicPartition> {
    serde_json::from_slice(data).unwrap_or_default()
}
