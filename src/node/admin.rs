//! The admin client: creates topics at given times (Kafka's AdminClient.createTopics). It sends
//! each `CreateTopic` to a bootstrap broker, which forwards it to the active controller; with no
//! answer in time, or a retriable refusal, it asks the next broker again, until the topic is
//! answered. The outcome it keeps is what the simulator checks against the committed metadata.

use super::client::Bootstrap;
use super::{Context, Timer};
use crate::protocol::NodeId;
use crate::protocol::{BrokerId, CreateTopicRequest, CreateTopicResponse, ErrorCode, Message};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// One topic to create, and when (ms after the admin starts).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TopicToCreate {
    pub name: String,
    pub partitions: u32,
    pub replication_factor: u32,
    pub at_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AdminConfig {
    pub id: NodeId,
    pub bootstrap: Vec<BrokerId>,
    pub topics: Vec<TopicToCreate>,
    /// How long to wait for an answer before asking the next broker.
    pub request_timeout_ms: Option<u64>,
}

/// What the admin was told about one of its topics.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Created {
    /// Created, with each partition's replicas.
    Created(Vec<Vec<BrokerId>>),
    /// A retry was told the topic exists: an earlier attempt, unanswered, created it (the name is
    /// the admin's own), so the topic is committed, whatever its layout.
    Exists,
    /// Refused for good.
    Refused(ErrorCode),
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Admin {
    config: Arc<AdminConfig>,
    bootstrap: Bootstrap,
    /// Topics asked for and not answered, by index: the attempts sent so far.
    pending: BTreeMap<usize, u32>,
    outcomes: BTreeMap<String, Created>,
}

impl Admin {
    pub fn new(config: Arc<AdminConfig>) -> Self {
        Admin {
            config,
            bootstrap: Bootstrap::default(),
            pending: BTreeMap::new(),
            outcomes: BTreeMap::new(),
        }
    }

    /// The answers so far, by topic.
    pub fn outcomes(&self) -> &BTreeMap<String, Created> {
        &self.outcomes
    }

    /// Every topic answered.
    pub fn finished(&self) -> bool {
        self.outcomes.len() == self.config.topics.len()
    }

    pub fn on_start(&mut self, cx: &mut Context) {
        for (i, t) in self.config.topics.iter().enumerate() {
            cx.set_timer(Timer::CreateTopic(i as u32), Some(t.at_ms));
        }
    }

    pub fn on_message(&mut self, cx: &mut Context, _from: NodeId, message: Message) {
        if let Message::CreateTopicResponse(r) = message {
            self.on_answer(cx, r);
        }
    }

    pub fn on_timer(&mut self, cx: &mut Context, timer: Timer) {
        if let Timer::CreateTopic(i) = timer {
            let i = i as usize;
            if self.pending.contains_key(&i) {
                // The last attempt went unanswered: that broker (or its controller) may be
                // gone, or its connection stalled.
                let closed = self.bootstrap.time_out(cx, &self.config.bootstrap);
                if closed.is_some() {
                    self.ask_again_all_but(cx, i);
                }
            }
            let done = self
                .config
                .topics
                .get(i)
                .is_none_or(|t| self.outcomes.contains_key(&t.name));
            if !done {
                self.send(cx, i);
            }
        }
    }

    /// The current broker's connection was closed by topic `i`'s timeout: every other topic's
    /// request failed with it (every request goes to the current broker), and each is asked
    /// again of the next broker now, not after its own timeout.
    fn ask_again_all_but(&mut self, cx: &mut Context, i: usize) {
        let others: Vec<usize> = self.pending.keys().copied().filter(|&j| j != i).collect();
        for j in others {
            self.send(cx, j);
        }
    }

    fn send(&mut self, cx: &mut Context, i: usize) {
        let t = &self.config.topics[i];
        let Some(broker) = self.bootstrap.current(&self.config.bootstrap) else {
            return;
        };
        *self.pending.entry(i).or_default() += 1;
        let request = CreateTopicRequest {
            correlation: i as u64,
            topic: t.name.clone(),
            partitions: Some(t.partitions),
            replication_factor: Some(t.replication_factor),
            validate_only: false,
        };
        cx.send(broker, Message::CreateTopic(request));
        cx.set_timer(Timer::CreateTopic(i as u32), self.config.request_timeout_ms);
    }

    fn on_answer(&mut self, cx: &mut Context, r: CreateTopicResponse) {
        let i = r.correlation as usize;
        let Some(&attempts) = self.pending.get(&i) else {
            return;
        };
        if self.config.topics.get(i).map(|t| &t.name) != Some(&r.topic) {
            return;
        }
        let outcome = match r.result {
            Ok(layout) => Created::Created(layout),
            // The first attempt cannot be told its own topic exists: nobody else creates it.
            Err(ErrorCode::TopicAlreadyExists) if attempts > 1 => Created::Exists,
            Err(e @ (ErrorCode::InvalidTopic | ErrorCode::InvalidPartitions)) => {
                Created::Refused(e)
            }
            Err(ErrorCode::TopicAlreadyExists) => Created::Refused(ErrorCode::TopicAlreadyExists),
            // Too few live brokers, say, for now: the timer asks again.
            Err(_) => return,
        };
        self.pending.remove(&i);
        cx.cancel_timer(Timer::CreateTopic(i as u32));
        self.outcomes.insert(r.topic, outcome);
    }
}

/// Each partition's replicas of `topic` in `metadata`, in partition order (`None`: no such
/// topic). A gap in the partition numbers shows as an empty replica list in its place.
pub fn topic_layout(
    metadata: &crate::protocol::ClusterMetadata,
    topic: &str,
) -> Option<Vec<Vec<BrokerId>>> {
    let count = metadata.partition_count(topic);
    (count > 0).then(|| {
        (0..count)
            .map(|p| {
                metadata
                    .partition_of(topic, p)
                    .map(|ps| ps.replicas.clone())
                    .unwrap_or_default()
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::Effect;

    fn admin() -> Admin {
        Admin::new(Arc::new(AdminConfig {
            id: 600,
            bootstrap: vec![0, 1],
            topics: vec![TopicToCreate {
                name: "new".into(),
                partitions: 2,
                replication_factor: 1,
                at_ms: 100,
            }],
            request_timeout_ms: Some(500),
        }))
    }

    fn sent_to(effects: &[Effect]) -> Vec<NodeId> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Send {
                    to,
                    message: Message::CreateTopic(_),
                } => Some(*to),
                _ => None,
            })
            .collect()
    }

    fn answer(result: Result<Vec<Vec<BrokerId>>, ErrorCode>) -> Message {
        Message::CreateTopicResponse(CreateTopicResponse {
            correlation: 0,
            topic: "new".into(),
            result,
        })
    }

    #[test]
    fn an_unanswered_request_goes_to_the_next_broker_and_a_retry_told_exists_counts() {
        let mut a = admin();
        let mut cx = Context::new(0);
        a.on_start(&mut cx);
        a.on_timer(&mut cx, Timer::CreateTopic(0));
        assert_eq!(sent_to(&cx.take_effects()), vec![0]);
        // No answer: broker 1; then a retriable refusal is retried at the timer.
        a.on_timer(&mut cx, Timer::CreateTopic(0));
        assert_eq!(sent_to(&cx.take_effects()), vec![1]);
        a.on_message(&mut cx, 1, answer(Err(ErrorCode::InvalidReplicationFactor)));
        assert!(!a.finished());
        a.on_message(&mut cx, 1, answer(Err(ErrorCode::TopicAlreadyExists)));
        assert!(a.finished());
        assert_eq!(a.outcomes()["new"], Created::Exists);
    }

    /// Two topics asked of broker 0; one times out, which closes the connection both went
    /// on: both are asked again of broker 1 at once.
    #[test]
    fn a_timeout_asks_again_for_every_topic_on_the_connection_it_closes() {
        let second = TopicToCreate {
            name: "other".into(),
            partitions: 1,
            replication_factor: 1,
            at_ms: 100,
        };
        let mut config = (*admin().config).clone();
        config.topics.push(second);
        let mut a = Admin::new(Arc::new(config));
        let mut cx = Context::new(0);
        a.on_timer(&mut cx, Timer::CreateTopic(0));
        a.on_timer(&mut cx, Timer::CreateTopic(1));
        assert_eq!(sent_to(&cx.take_effects()), vec![0, 0]);
        let mut cx = Context::new(600);
        a.on_timer(&mut cx, Timer::CreateTopic(0));
        let effects = cx.take_effects();
        assert!(effects.contains(&Effect::Disconnect(0)), "{effects:?}");
        let mut asked = sent_to(&effects);
        asked.sort();
        assert_eq!(asked, vec![1, 1], "{effects:?}");
    }

    #[test]
    fn a_first_answer_is_kept() {
        let mut a = admin();
        let mut cx = Context::new(0);
        a.on_timer(&mut cx, Timer::CreateTopic(0));
        a.on_message(&mut cx, 0, answer(Ok(vec![vec![0], vec![1]])));
        assert_eq!(
            a.outcomes()["new"],
            Created::Created(vec![vec![0], vec![1]])
        );
        // A late answer to nothing pending changes nothing.
        a.on_message(&mut cx, 0, answer(Ok(vec![vec![1], vec![0]])));
        assert_eq!(
            a.outcomes()["new"],
            Created::Created(vec![vec![0], vec![1]])
        );
    }
}
