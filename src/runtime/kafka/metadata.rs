//! Metadata: the broker's cluster metadata (as its state machine answers a seedlog client's
//! Metadata request) in Kafka's shape, with every broker's Kafka address.

use super::errors;
use super::topic_id::topic_id;
use crate::protocol::{ClusterMetadata, NodeId, OFFSETS_TOPIC};
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use std::collections::BTreeSet;
use std::net::SocketAddr;

/// What the listener knows besides the broker's metadata: who it is and where brokers listen.
pub struct Addresses<'a> {
    pub me: NodeId,
    /// Broker id -> its Kafka listener's address.
    pub kafka: &'a std::collections::BTreeMap<NodeId, SocketAddr>,
}

pub const CLUSTER_ID: &str = "seedlog";

pub fn answer(
    req: &MetadataRequest,
    version: i16,
    md: &ClusterMetadata,
    at: &Addresses<'_>,
) -> MetadataResponse {
    let mut resp = MetadataResponse::default();
    // Live brokers with a Kafka address, and always this one (it answers, so it is up): the
    // controller id must be one of the listed brokers, and clients only need someone to ask.
    let mut listed: BTreeSet<NodeId> = md
        .brokers
        .iter()
        .filter(|b| !b.fenced)
        .map(|b| b.broker)
        .collect();
    listed.insert(at.me);
    for id in &listed {
        let Some(addr) = at.kafka.get(id) else {
            continue;
        };
        let mut b = MetadataResponseBroker::default();
        b.node_id = BrokerId(*id as i32);
        b.host = StrBytes::from_string(addr.ip().to_string());
        b.port = i32::from(addr.port());
        resp.brokers.push(b);
    }
    if version >= 1 {
        // Kafka clients use it for admin requests only; ours is this broker (listed above).
        resp.controller_id = BrokerId(at.me as i32);
    }
    if version >= 2 {
        resp.cluster_id = Some(StrBytes::from_static_str(CLUSTER_ID));
    }
    let names: BTreeSet<&str> = md.partitions.iter().map(|p| p.tp.topic.as_str()).collect();
    let wanted: Vec<String> = match &req.topics {
        // Null (and, before v1, empty) means every topic.
        None => names.iter().map(|n| n.to_string()).collect(),
        Some(t) if t.is_empty() && version == 0 => names.iter().map(|n| n.to_string()).collect(),
        Some(t) => t
            .iter()
            .filter_map(|t| match &t.name {
                Some(n) => Some(n.0.to_string()),
                None => names
                    .iter()
                    .find(|n| topic_id(n) == t.topic_id)
                    .map(|n| n.to_string()),
            })
            .collect(),
    };
    for name in wanted {
        resp.topics.push(topic(&name, version, md));
    }
    resp
}

fn topic(name: &str, version: i16, md: &ClusterMetadata) -> MetadataResponseTopic {
    let mut t = MetadataResponseTopic::default();
    t.name = Some(TopicName(StrBytes::from_string(name.to_string())));
    if version >= 10 {
        t.topic_id = topic_id(name);
    }
    if version >= 1 {
        t.is_internal = name == OFFSETS_TOPIC;
    }
    let mut parts: Vec<_> = md
        .partitions
        .iter()
        .filter(|p| p.tp.topic == name)
        .collect();
    if parts.is_empty() {
        t.error_code = errors::UNKNOWN_TOPIC_OR_PARTITION;
        return t;
    }
    parts.sort_by_key(|p| p.tp.partition);
    for p in parts {
        let mut mp = MetadataResponsePartition::default();
        mp.partition_index = p.tp.partition as i32;
        match p.leader {
            Some(l) => mp.leader_id = BrokerId(l as i32),
            None => {
                mp.leader_id = BrokerId(-1);
                mp.error_code = errors::LEADER_NOT_AVAILABLE;
            }
        }
        if version >= 7 {
            mp.leader_epoch = p.leader_epoch as i32;
        }
        mp.replica_nodes = p.replicas.iter().map(|r| BrokerId(*r as i32)).collect();
        mp.isr_nodes = p.isr.iter().map(|r| BrokerId(*r as i32)).collect();
        t.partitions.push(mp);
    }
    t
}
