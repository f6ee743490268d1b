//! Compact one-line renderings of messages, for counterexamples and traces that people read.

use super::{
    ClusterMetadata, CreateTopicRequest, CreateTopicResponse, FetchResponse, GroupAnswer,
    GroupRequest, Message, PartitionState, VoteRequest, VoteResponse,
};
use std::fmt;

fn partition(ps: &PartitionState) -> String {
    let leader = ps.leader.map_or("none".to_string(), |l| l.to_string());
    format!(
        "{} leader={} epoch={} isr={:?} pe={}",
        ps.tp, leader, ps.leader_epoch, ps.isr, ps.partition_epoch
    )
}

fn metadata(md: &ClusterMetadata) -> String {
    let fenced: Vec<String> = md
        .brokers
        .iter()
        .filter(|b| b.fenced)
        .map(|b| b.broker.to_string())
        .collect();
    let parts: Vec<String> = md.partitions.iter().map(partition).collect();
    let mut s = format!("v{} [{}]", md.version, parts.join("; "));
    if !fenced.is_empty() {
        s.push_str(&format!(" fenced={}", fenced.join(",")));
    }
    s
}

fn vote(r: &VoteRequest) -> String {
    format!(
        "epoch={} candidate={} last_epoch={} end={}",
        r.epoch, r.candidate, r.last_epoch, r.end_offset
    )
}

fn vote_response(r: &VoteResponse) -> String {
    let leader = r.leader.map_or("none".to_string(), |l| l.to_string());
    let verdict = if r.granted { "granted" } else { "refused" };
    format!(
        "{verdict} for epoch {} (voter epoch={} leader={leader})",
        r.request_epoch, r.epoch
    )
}

/// A group answer; a committed offset as `Offset(5)`, with ` metadata="..."` only when some was
/// committed (the common case reads as before metadata was kept).
fn answer(a: &GroupAnswer) -> String {
    match a {
        GroupAnswer::Offset { offset, metadata } if metadata.is_empty() => {
            format!("Offset({offset:?})")
        }
        GroupAnswer::Offset { offset, metadata } => {
            format!("Offset({offset:?}) metadata={metadata:?}")
        }
        other => format!("{other:?}"),
    }
}

fn request(r: &GroupRequest) -> String {
    match r {
        GroupRequest::Commit {
            member,
            generation,
            tp,
            offset,
            metadata,
        } => {
            let line = format!("Commit {tp}={offset} member={member} gen={generation}");
            match metadata.is_empty() {
                true => line,
                false => format!("{line} metadata={metadata:?}"),
            }
        }
        other => format!("{other:?}"),
    }
}

fn fetch_response(r: &FetchResponse) -> String {
    let mut s = format!(
        "FetchResponse {} offset={} epoch={} hw={}",
        r.tp, r.fetch_offset, r.leader_epoch, r.high_watermark
    );
    if let Some(e) = r.error {
        s.push_str(&format!(" error={e}"));
    }
    if let Some(d) = r.diverging_epoch {
        let epoch = d.epoch.map_or("none".to_string(), |e| e.to_string());
        s.push_str(&format!(
            " diverging=(epoch {epoch} ends at {})",
            d.end_offset
        ));
    }
    if !r.records.is_empty() {
        let recs: Vec<String> = r.records.iter().map(ToString::to_string).collect();
        s.push_str(&format!(" records=[{}]", recs.join(", ")));
    }
    if !r.producers.is_empty() {
        let ps: Vec<String> = r.producers.iter().map(|p| p.producer.to_string()).collect();
        s.push_str(&format!(" producers=[{}]", ps.join(", ")));
    }
    s
}

fn create_topic(r: &CreateTopicRequest) -> String {
    let or_default = |n: Option<u32>| n.map_or("default".to_string(), |n| n.to_string());
    format!(
        "CreateTopic #{} {} partitions={} rf={}{}",
        r.correlation,
        r.topic,
        or_default(r.partitions),
        or_default(r.replication_factor),
        if r.validate_only {
            " validate_only"
        } else {
            ""
        }
    )
}

fn create_topic_response(r: &CreateTopicResponse) -> String {
    match &r.result {
        Ok(a) => format!(
            "CreateTopicResponse #{} {} ok {a:?}",
            r.correlation, r.topic
        ),
        Err(e) => format!(
            "CreateTopicResponse #{} {} error={e}",
            r.correlation, r.topic
        ),
    }
}

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Message::RegisterBroker {
                broker,
                lost_data,
                incarnation,
            } => {
                write!(f, "RegisterBroker {broker} incarnation={incarnation}")?;
                if *lost_data {
                    write!(f, " lost_data")?;
                }
                Ok(())
            }
            Message::RegisterBrokerResponse {
                broker_epoch,
                metadata_version,
            } => write!(
                f,
                "RegisterBrokerResponse broker_epoch={broker_epoch} at v{metadata_version}"
            ),
            Message::Heartbeat {
                broker,
                broker_epoch,
                metadata_version,
                controller_epoch,
            } => {
                write!(
                    f,
                    "Heartbeat {broker} broker_epoch={broker_epoch} at v{metadata_version}"
                )?;
                match controller_epoch {
                    0 => Ok(()),
                    e => write!(f, " controller_epoch={e}"),
                }
            }
            Message::HeartbeatResponse {
                broker_epoch,
                fenced,
            } => write!(
                f,
                "HeartbeatResponse broker_epoch={broker_epoch} fenced={fenced}"
            ),
            Message::AlterPartition(r) => {
                let isr: Vec<_> = r.new_isr.iter().map(|(b, _)| *b).collect();
                write!(
                    f,
                    "AlterPartition {} isr={:?} epoch={} pe={}",
                    r.tp, isr, r.leader_epoch, r.partition_epoch
                )
            }
            Message::AlterPartitionResponse { tp, result, .. } => match result {
                Ok(ps) => write!(f, "AlterPartitionResponse ok {}", partition(ps)),
                Err(e) => write!(f, "AlterPartitionResponse {tp} error={e}"),
            },
            // A standalone controller (the models') has epoch 0: not shown.
            Message::UpdateMetadata {
                controller_epoch: 0,
                metadata: md,
            } => write!(f, "UpdateMetadata {}", metadata(md)),
            Message::UpdateMetadata {
                controller_epoch,
                metadata: md,
            } => write!(
                f,
                "UpdateMetadata {} controller_epoch={controller_epoch}",
                metadata(md)
            ),
            Message::NotController { leader, epoch } => {
                let l = leader.map_or("none".to_string(), |l| l.to_string());
                write!(f, "NotController leader={l} epoch={epoch}")
            }
            Message::Fetch(r) => {
                let who = r
                    .replica
                    .map_or("consumer".to_string(), |x| format!("replica {}", x.broker));
                let lfe = r
                    .last_fetched_epoch
                    .map_or("none".to_string(), |e| e.to_string());
                let epoch = r
                    .current_leader_epoch
                    .map_or("none".to_string(), |e| e.to_string());
                write!(
                    f,
                    "Fetch {} by {who} offset={} last_epoch={lfe} epoch={epoch}",
                    r.tp, r.fetch_offset
                )
            }
            Message::FetchResponse(r) => f.write_str(&fetch_response(r)),
            Message::Produce(r) => {
                let batches: Vec<String> = r
                    .batches
                    .iter()
                    .map(|b| {
                        let recs: Vec<String> = b.records.iter().map(ToString::to_string).collect();
                        format!("{} b{} [{}]", b.tp, b.batch, recs.join(", "))
                    })
                    .collect();
                write!(
                    f,
                    "Produce acks={:?} #{} {}",
                    r.acks,
                    r.correlation,
                    batches.join("; ")
                )
            }
            Message::ProduceResponse(r) => {
                let results: Vec<String> = r
                    .batches
                    .iter()
                    .map(|b| match b.result {
                        Ok(o) => format!("{} b{} ok offset={o}", b.tp, b.batch),
                        Err(e) => format!("{} b{} error={e}", b.tp, b.batch),
                    })
                    .collect();
                write!(
                    f,
                    "ProduceResponse #{} {}",
                    r.correlation,
                    results.join("; ")
                )
            }
            Message::Metadata { min_version } => write!(f, "Metadata min_version={min_version}"),
            Message::MetadataResponse(md) => write!(f, "MetadataResponse {}", metadata(md)),
            Message::ListOffsets { tp, spec } => write!(f, "ListOffsets {tp} {spec:?}"),
            Message::ListOffsetsResponse {
                tp, spec, result, ..
            } => {
                write!(f, "ListOffsetsResponse {tp} {spec:?} {result:?}")
            }
            Message::CreateTopic(r) => f.write_str(&create_topic(r)),
            Message::ForwardCreateTopic { client, request } => {
                write!(f, "Forward from {client} {}", create_topic(request))
            }
            Message::CreateTopicResponse(r) => f.write_str(&create_topic_response(r)),
            Message::ForwardCreateTopicResponse { client, response } => {
                write!(f, "Forward to {client} {}", create_topic_response(response))
            }
            Message::Group(m) => write!(
                f,
                "Group {} #{} {}",
                m.group,
                m.correlation,
                request(&m.request)
            ),
            Message::GroupResponse(r) => match &r.result {
                Ok(a) => write!(
                    f,
                    "GroupResponse {} #{} {}",
                    r.group,
                    r.correlation,
                    answer(a)
                ),
                Err(e) => write!(f, "GroupResponse {} #{} error={e}", r.group, r.correlation),
            },
            Message::InitProducerId { correlation } => write!(f, "InitProducerId #{correlation}"),
            Message::InitProducerIdResponse {
                correlation,
                result,
            } => match result {
                Ok((id, epoch)) => write!(
                    f,
                    "InitProducerIdResponse #{correlation} ok producer={id} epoch={epoch}"
                ),
                Err(e) => write!(f, "InitProducerIdResponse #{correlation} error={e}"),
            },
            Message::AllocateProducerIds {
                broker,
                broker_epoch,
            } => write!(
                f,
                "AllocateProducerIds {broker} broker_epoch={broker_epoch}"
            ),
            Message::AllocateProducerIdsResponse { result } => match result {
                Ok(b) => write!(
                    f,
                    "AllocateProducerIdsResponse ok {}..{}",
                    b.first,
                    b.first + b.count
                ),
                Err(e) => write!(f, "AllocateProducerIdsResponse error={e}"),
            },
            Message::PreVote(r) => write!(f, "PreVote {}", vote(r)),
            Message::Vote(r) => write!(f, "Vote {}", vote(r)),
            Message::PreVoteResponse(r) => write!(f, "PreVoteResponse {}", vote_response(r)),
            Message::VoteResponse(r) => write!(f, "VoteResponse {}", vote_response(r)),
            Message::BeginQuorumEpoch(b) => {
                write!(f, "BeginQuorumEpoch epoch={} leader={}", b.epoch, b.leader)
            }
            Message::QuorumFetch(r) => write!(
                f,
                "QuorumFetch epoch={} from={} offset={} last_epoch={} hw={}",
                r.epoch, r.replica, r.fetch_offset, r.last_fetched_epoch, r.high_watermark
            ),
            Message::QuorumFetchResponse(r) => f.write_str(&super::quorum::fetch_response(r)),
            Message::QuorumSubmit(r) => write!(f, "QuorumSubmit #{} {}", r.id, r.record),
            Message::QuorumSubmitResponse(r) => match r.result {
                Ok(o) => write!(f, "QuorumSubmitResponse #{} ok at {o}", r.id),
                Err(l) => {
                    let l = l.map_or("none".to_string(), |l| l.to_string());
                    write!(f, "QuorumSubmitResponse #{} not leader (leader {l})", r.id)
                }
            },
        }
    }
}

impl Message {
    /// The message's kind, for reports that name an event without printing all of it.
    pub fn kind(&self) -> &'static str {
        match self {
            Message::RegisterBroker { .. } => "RegisterBroker",
            Message::RegisterBrokerResponse { .. } => "RegisterBrokerResponse",
            Message::Heartbeat { .. } => "Heartbeat",
            Message::HeartbeatResponse { .. } => "HeartbeatResponse",
            Message::AlterPartition(_) => "AlterPartition",
            Message::AlterPartitionResponse { .. } => "AlterPartitionResponse",
            Message::UpdateMetadata { .. } => "UpdateMetadata",
            Message::NotController { .. } => "NotController",
            Message::Fetch(_) => "Fetch",
            Message::FetchResponse(_) => "FetchResponse",
            Message::Produce(_) => "Produce",
            Message::ProduceResponse(_) => "ProduceResponse",
            Message::Metadata { .. } => "Metadata",
            Message::MetadataResponse(_) => "MetadataResponse",
            Message::ListOffsets { .. } => "ListOffsets",
            Message::ListOffsetsResponse { .. } => "ListOffsetsResponse",
            Message::CreateTopic(_) => "CreateTopic",
            Message::ForwardCreateTopic { .. } => "ForwardCreateTopic",
            Message::CreateTopicResponse(_) => "CreateTopicResponse",
            Message::ForwardCreateTopicResponse { .. } => "ForwardCreateTopicResponse",
            Message::Group(_) => "Group",
            Message::GroupResponse(_) => "GroupResponse",
            Message::InitProducerId { .. } => "InitProducerId",
            Message::InitProducerIdResponse { .. } => "InitProducerIdResponse",
            Message::AllocateProducerIds { .. } => "AllocateProducerIds",
            Message::AllocateProducerIdsResponse { .. } => "AllocateProducerIdsResponse",
            Message::PreVote(_) => "PreVote",
            Message::PreVoteResponse(_) => "PreVoteResponse",
            Message::Vote(_) => "Vote",
            Message::VoteResponse(_) => "VoteResponse",
            Message::BeginQuorumEpoch(_) => "BeginQuorumEpoch",
            Message::QuorumFetch(_) => "QuorumFetch",
            Message::QuorumFetchResponse(_) => "QuorumFetchResponse",
            Message::QuorumSubmit(_) => "QuorumSubmit",
            Message::QuorumSubmitResponse(_) => "QuorumSubmitResponse",
        }
    }
}
