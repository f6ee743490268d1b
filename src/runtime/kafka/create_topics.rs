//! CreateTopics (v2-7): each topic becomes the broker's own `CreateTopic`, which the broker
//! forwards to the active controller; the controller answers once the new topic is committed by
//! the quorum. A topic with a manual replica assignment or topic configs is refused (seedlog has
//! neither); `num_partitions` / `replication_factor` of -1 take the controller's defaults (1
//! partition; 3 replicas, or every live broker if fewer). A topic named twice in one request is
//! refused, as Kafka does. A topic refused with `NotController` (the broker's controller is not
//! the active one: its quorum is electing, as in the first second or two of a new cluster, or
//! leadership moved) was not created, so it is asked again every 250 ms until the request's
//! timeout, as Kafka's brokers retry what they forward; still refused at the timeout, it is
//! NOT_CONTROLLER. No answer within the timeout is REQUEST_TIMED_OUT: the outcome is unknown (the
//! topic may still be created), and that request is not sent again, so a client retrying on its
//! own may be told TOPIC_ALREADY_EXISTS about its own topic, as with Kafka.

use super::errors;
use super::topic_id::topic_id;
use crate::protocol::{BrokerId, CreateTopicRequest, ErrorCode, Message};
use crate::runtime::net::LocalClient;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::time::{timeout_at, Instant};

/// Kafka's INVALID_REPLICA_ASSIGNMENT and INVALID_CONFIG.
const INVALID_REPLICA_ASSIGNMENT: i16 = 39;
const INVALID_CONFIG: i16 = 40;

pub struct Plan {
    /// What to ask the broker, the correlation being the topic's position in the request.
    pub requests: Vec<CreateTopicRequest>,
    /// Per topic of the request, in order: its name, or the error already known with a message.
    slots: Vec<(TopicName, Option<(i16, &'static str)>)>,
}

pub type Answers = BTreeMap<u64, Result<Vec<Vec<BrokerId>>, ErrorCode>>;

/// How long a topic refused with `NotController` waits before it is asked for again.
const NOT_CONTROLLER_BACKOFF: Duration = Duration::from_millis(250);

/// Sends the plan's requests through `client` and gathers the answers until `deadline`, asking
/// again for a topic refused with `NotController` (nothing was done with it) while time is left.
pub async fn exchange(client: &mut LocalClient, plan: &Plan, deadline: Instant) -> Answers {
    for r in &plan.requests {
        client.send(Message::CreateTopic(r.clone()));
    }
    let mut answers = Answers::new();
    // Refused by a controller that is not active: when to ask again.
    let mut again: BTreeMap<u64, Instant> = BTreeMap::new();
    while answers.len() < plan.requests.len() {
        let wake = again.values().min().map_or(deadline, |t| *t.min(&deadline));
        match timeout_at(wake, client.recv()).await {
            Ok(Some(Message::CreateTopicResponse(r))) => {
                let retry_at = Instant::now() + NOT_CONTROLLER_BACKOFF;
                if r.result == Err(ErrorCode::NotController) && retry_at < deadline {
                    again.insert(r.correlation, retry_at);
                } else {
                    again.remove(&r.correlation);
                    answers.insert(r.correlation, r.result);
                }
            }
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(_) if Instant::now() >= deadline => break,
            Err(_) => {
                let now = Instant::now();
                let due: Vec<u64> = again
                    .iter()
                    .filter(|(_, t)| **t <= now)
                    .map(|(c, _)| *c)
                    .collect();
                for c in due {
                    again.remove(&c);
                    if let Some(r) = plan.requests.iter().find(|r| r.correlation == c) {
                        client.send(Message::CreateTopic(r.clone()));
                    }
                }
            }
        }
    }
    // Refused and not asked again in time: the controller was not there, nothing was created.
    for c in again.into_keys() {
        answers.entry(c).or_insert(Err(ErrorCode::NotController));
    }
    answers
}

pub fn plan(req: &CreateTopicsRequest) -> Plan {
    let mut requests = Vec::new();
    let mut slots = Vec::new();
    for (i, t) in req.topics.iter().enumerate() {
        let named = req.topics.iter().filter(|o| o.name == t.name).count();
        let refused = if named > 1 {
            Some((errors::INVALID_REQUEST, "topic named more than once"))
        } else if !t.assignments.is_empty() {
            Some((
                INVALID_REPLICA_ASSIGNMENT,
                "manual replica assignments are not supported",
            ))
        } else if !t.configs.is_empty() {
            Some((INVALID_CONFIG, "topic configs are not supported"))
        } else {
            None
        };
        if refused.is_none() {
            requests.push(CreateTopicRequest {
                correlation: i as u64,
                topic: t.name.0.to_string(),
                partitions: count(i64::from(t.num_partitions)),
                replication_factor: count(i64::from(t.replication_factor)),
                validate_only: req.validate_only,
            });
        }
        slots.push((t.name.clone(), refused));
    }
    Plan { requests, slots }
}

/// -1 is "the default"; other negative counts are passed on as 0, which the controller refuses.
fn count(n: i64) -> Option<u32> {
    match n {
        -1 => None,
        n => Some(u32::try_from(n).unwrap_or(0)),
    }
}

impl Plan {
    pub fn answer(&self, answers: &Answers, version: i16) -> CreateTopicsResponse {
        let mut resp = CreateTopicsResponse::default();
        for (i, (name, refused)) in self.slots.iter().enumerate() {
            let mut t = CreatableTopicResult::default();
            t.name = name.clone();
            t.num_partitions = -1;
            t.replication_factor = -1;
            let outcome = match refused {
                Some((code, why)) => Err((*code, *why)),
                None => match answers.get(&(i as u64)) {
                    Some(Ok(layout)) => Ok(layout),
                    Some(Err(e)) => Err((errors::kafka_code(*e), "")),
                    None => Err((errors::REQUEST_TIMED_OUT, "no answer from the controller")),
                },
            };
            match outcome {
                Ok(layout) => {
                    if version >= 7 {
                        t.topic_id = topic_id(&name.0);
                    }
                    t.num_partitions = layout.len() as i32;
                    t.replication_factor = layout.first().map_or(0, |r| r.len() as i16);
                    t.configs = Some(Vec::new());
                }
                Err((code, why)) => {
                    t.error_code = code;
                    if !why.is_empty() {
                        t.error_message = Some(StrBytes::from_static_str(why));
                    }
                }
            }
            resp.topics.push(t);
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::create_topics_request::{
        CreatableReplicaAssignment, CreatableTopic,
    };

    fn topic(name: &'static str, partitions: i32, rf: i16) -> CreatableTopic {
        let mut t = CreatableTopic::default();
        t.name = TopicName(StrBytes::from_static_str(name));
        t.num_partitions = partitions;
        t.replication_factor = rf;
        t
    }

    #[test]
    fn defaults_duplicates_and_unsupported_shapes() {
        let mut req = CreateTopicsRequest::default();
        let mut manual = topic("m", -1, -1);
        manual.assignments = vec![CreatableReplicaAssignment::default()];
        req.topics = vec![
            topic("a", -1, -1),
            topic("b", 3, 2),
            topic("d", 1, 1),
            topic("d", 1, 1),
            manual,
        ];
        let plan = plan(&req);
        let asked: Vec<_> = plan
            .requests
            .iter()
            .map(|r| (r.correlation, r.partitions, r.replication_factor))
            .collect();
        assert_eq!(asked, vec![(0, None, None), (1, Some(3), Some(2))]);
        let answers = Answers::from([
            (0, Ok(vec![vec![1, 2, 0]])),
            (1, Err(ErrorCode::TopicAlreadyExists)),
        ]);
        let resp = plan.answer(&answers, 7);
        let got: Vec<_> = resp
            .topics
            .iter()
            .map(|t| (t.error_code, t.num_partitions, t.replication_factor))
            .collect();
        assert_eq!(
            got,
            vec![
                (0, 1, 3),
                (36, -1, -1),
                (errors::INVALID_REQUEST, -1, -1),
                (errors::INVALID_REQUEST, -1, -1),
                (INVALID_REPLICA_ASSIGNMENT, -1, -1),
            ]
        );
        assert_eq!(resp.topics[0].topic_id, topic_id("a"));
        // Unanswered: the outcome is unknown.
        let resp = plan.answer(&Answers::new(), 7);
        assert_eq!(resp.topics[0].error_code, errors::REQUEST_TIMED_OUT);
    }
}
