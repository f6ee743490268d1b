//! Which controller the broker talks to. The controllers form a quorum and only its leader, the
//! active controller, answers brokers; the others answer `NotController` with the leader they
//! know. The broker keeps one target: it moves to the leader it is told of, to the sender of
//! metadata from a newer controller epoch, or — after a few heartbeat (or registration)
//! intervals with no word back — to the next controller in its list. Metadata from a controller
//! epoch older than one it has seen is refused: a deposed controller is never followed again.

use super::Broker;
use crate::node::{Bug, Context, Situation};
use crate::protocol::{ClusterMetadata, Message, NodeId, QuorumEpoch};

/// Periodic requests (heartbeats, or registrations while registering) sent to a controller that
/// has said nothing since, before the broker tries another. Only periodic requests count: they
/// come one per interval, so the count measures silence in time. Counting every request made a
/// burst — a new leader proposing the ISRs of many partitions at once — move the broker off a
/// healthy controller in mid-burst, to come back only when another controller named it.
const UNANSWERED_BEFORE_MOVING_ON: u32 = 3;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ControllerLink {
    target: NodeId,
    /// The newest controller epoch whose metadata the broker took.
    epoch: QuorumEpoch,
    unanswered: u32,
}

impl ControllerLink {
    /// Starts with the controller at `id`'s position in the list, so that brokers spread their
    /// first guesses over the controllers.
    pub fn new(controllers: &[NodeId], id: NodeId) -> Self {
        let target = match controllers.len() {
            0 => id,
            n => controllers[id as usize % n],
        };
        ControllerLink {
            target,
            epoch: 0,
            unanswered: 0,
        }
    }

    /// A bootstrapped broker's link: it follows `target`, active in controller epoch `epoch`,
    /// whose metadata it holds.
    pub fn following(target: NodeId, epoch: QuorumEpoch) -> Self {
        ControllerLink {
            target,
            epoch,
            unanswered: 0,
        }
    }

    pub fn target(&self) -> NodeId {
        self.target
    }

    pub fn epoch(&self) -> QuorumEpoch {
        self.epoch
    }
}

impl Broker {
    /// Sends `message` to the controller the broker believes active. Whether that one is silent
    /// is judged by the periodic requests alone (`send_periodic_to_controller`).
    pub(super) fn send_to_controller(&self, cx: &mut Context, message: Message) {
        cx.send(self.controller.target, message);
    }

    /// Sends one of the broker's periodic requests (a heartbeat, or a registration while
    /// registering) to the controller the broker believes active, moving on to the next one
    /// first if this one has let `UNANSWERED_BEFORE_MOVING_ON` of them go by without a word.
    pub(super) fn send_periodic_to_controller(&mut self, cx: &mut Context, message: Message) {
        let link = &mut self.controller;
        // With one controller there is nowhere to move to, and nothing to count (the models run
        // one: a counter would only split their states).
        if self.config.controllers.len() > 1 {
            if link.unanswered >= UNANSWERED_BEFORE_MOVING_ON {
                // Its answers may be stuck on a stalled connection: when the broker comes back
                // to it, a new one carries them (`Effect::Disconnect`).
                if !self.config.bugs.has(Bug::KeepStalledLinks) {
                    cx.disconnect(link.target);
                }
                link.target = next_after(&self.config.controllers, link.target);
                link.unanswered = 0;
                cx.reached(Situation::ControllerRedirect);
            }
            link.unanswered += 1;
        }
        cx.send(link.target, message);
    }

    /// Whether an answer from `from` comes from the controller the broker talks to; any message
    /// from it shows it is there.
    pub(super) fn answered_by_controller(&mut self, from: NodeId) -> bool {
        if from == self.controller.target {
            self.controller.unanswered = 0;
            true
        } else {
            false
        }
    }

    /// The controller asked is not the active one. If it names a leader, the broker sends its
    /// request there at once; if it knows none (an election is under way), the broker moves on
    /// to the next controller and lets its timers retry, rather than circle the quorum at the
    /// network's speed until a leader is elected. A leader not active yet names itself: the
    /// broker stays, and its timers retry.
    ///
    /// An answer from a quorum epoch older than the controller epoch the broker follows was
    /// held back by the network (sent while the controller was not yet active, say, and
    /// delivered seconds after a partition healed): it names a leader of the past, and is
    /// ignored — nor does it count as a word from the controller, so a voter left behind in an
    /// old epoch is left, after its silence, like one that says nothing. Followed, it sent the
    /// broker away from the active controller and back, in the calm after a run (seed
    /// 49394213).
    pub(super) fn on_not_controller(
        &mut self,
        cx: &mut Context,
        from: NodeId,
        leader: Option<NodeId>,
        epoch: QuorumEpoch,
    ) {
        if epoch < self.controller.epoch {
            return;
        }
        if !self.answered_by_controller(from) || leader == Some(from) {
            return;
        }
        let controllers = &self.config.controllers;
        match leader.filter(|l| controllers.contains(l)) {
            Some(named) => {
                self.controller.target = named;
                cx.reached(Situation::ControllerRedirect);
                self.retry_controller_request(cx);
                self.resend_isr_proposals(cx);
            }
            None => self.controller.target = next_after(controllers, from),
        }
    }

    /// Whether to take `md` from `from`: a controller, with a newer controller epoch, or the same
    /// epoch and a newer version. Taking it makes `from` the broker's controller.
    pub(super) fn accept_metadata(
        &mut self,
        from: NodeId,
        epoch: QuorumEpoch,
        md: &ClusterMetadata,
    ) -> bool {
        let newer = (epoch, md.version) > (self.controller.epoch, self.metadata.version);
        if !self.config.controllers.contains(&from) || !newer {
            return false;
        }
        self.controller.epoch = epoch;
        self.controller.target = from;
        self.controller.unanswered = 0;
        true
    }
}

fn next_after(controllers: &[NodeId], current: NodeId) -> NodeId {
    match controllers.iter().position(|c| *c == current) {
        Some(i) => controllers[(i + 1) % controllers.len()],
        None => controllers.first().copied().unwrap_or(current),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::{BrokerConfig, BrokerImage, Effect, Timer};
    use std::sync::Arc;

    const CONTROLLERS: [NodeId; 3] = [100, 101, 102];

    /// Broker 0, registering; returns it and where its first registration went.
    fn broker() -> (Broker, NodeId) {
        let config = BrokerConfig::new(0, CONTROLLERS.to_vec());
        let mut b = Broker::recover(Arc::new(config), BrokerImage::default(), 0);
        let mut cx = Context::new(0);
        b.on_start(&mut cx);
        (b, registered_at(&cx.take_effects()).expect("registers"))
    }

    fn registered_at(effects: &[Effect]) -> Option<NodeId> {
        sent_to(effects, "RegisterBroker").first().copied()
    }

    /// Where every message the broker sent went, for messages of the kind `name`.
    fn sent_to(effects: &[Effect], name: &str) -> Vec<NodeId> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Send { to, message } if message.kind() == name => Some(*to),
                _ => None,
            })
            .collect()
    }

    fn push(b: &mut Broker, from: NodeId, epoch: QuorumEpoch, version: u64) -> bool {
        let metadata = ClusterMetadata {
            version,
            ..Default::default()
        };
        let mut cx = Context::new(0);
        b.on_message(
            &mut cx,
            from,
            Message::UpdateMetadata {
                controller_epoch: epoch,
                metadata,
            },
        );
        b.metadata().version == version && b.controller().epoch() == epoch
    }

    #[test]
    fn a_non_active_controller_sends_the_broker_to_the_leader_it_names() {
        let (mut b, first) = broker();
        assert_eq!(first, 100);
        let mut cx = Context::new(0);
        let not = Message::NotController {
            leader: Some(102),
            epoch: 0,
        };
        b.on_message(&mut cx, 100, not);
        assert_eq!(registered_at(&cx.take_effects()), Some(102));
        // A leader not active yet names itself: no immediate resend (the retry timer does it).
        b.on_message(
            &mut cx,
            102,
            Message::NotController {
                leader: Some(102),
                epoch: 0,
            },
        );
        assert_eq!(registered_at(&cx.take_effects()), None);
        assert_eq!(b.controller().target(), 102);
        // No leader known: the next controller, at the next retry only.
        b.on_message(
            &mut cx,
            102,
            Message::NotController {
                leader: None,
                epoch: 0,
            },
        );
        assert_eq!(registered_at(&cx.take_effects()), None);
        assert_eq!(b.controller().target(), 100);
        b.on_message(
            &mut cx,
            100,
            Message::NotController {
                leader: Some(102),
                epoch: 0,
            },
        );
        assert_eq!(registered_at(&cx.take_effects()), Some(102));
        // A stale answer from a controller the broker left is ignored.
        b.on_message(
            &mut cx,
            101,
            Message::NotController {
                leader: Some(100),
                epoch: 0,
            },
        );
        assert_eq!(b.controller().target(), 102);
    }

    #[test]
    fn a_topic_creation_is_handed_to_the_controller_and_its_answer_back() {
        use crate::protocol::{CreateTopicRequest, CreateTopicResponse};
        let (mut b, target) = broker();
        let request = CreateTopicRequest {
            correlation: 3,
            topic: "new".into(),
            partitions: None,
            replication_factor: None,
            validate_only: false,
        };
        let mut cx = Context::new(0);
        b.on_message(&mut cx, 7, Message::CreateTopic(request.clone()));
        let forwarded = cx.take_effects().into_iter().any(|e| {
            e == Effect::Send {
                to: target,
                message: Message::ForwardCreateTopic {
                    client: 7,
                    request: request.clone(),
                },
            }
        });
        assert!(forwarded);
        let response = CreateTopicResponse {
            correlation: 3,
            topic: "new".into(),
            result: Ok(vec![vec![0]]),
        };
        let answer = Message::ForwardCreateTopicResponse {
            client: 7,
            response: response.clone(),
        };
        let relayed = |effects: Vec<Effect>| {
            effects.into_iter().any(|e| {
                e == Effect::Send {
                    to: 7,
                    message: Message::CreateTopicResponse(response.clone()),
                }
            })
        };
        // From a node that is no controller: not handed on.
        b.on_message(&mut cx, 55, answer.clone());
        assert!(!relayed(cx.take_effects()));
        // From a controller the broker has since moved away from (a refusal of its heartbeat
        // moved it on first): handed on all the same.
        assert_ne!(target, 102);
        b.on_message(&mut cx, 102, answer.clone());
        assert!(relayed(cx.take_effects()));
        b.on_message(&mut cx, target, answer);
        assert!(relayed(cx.take_effects()));
    }

    /// A `NotController` from an epoch older than the one the broker follows was held back by
    /// the network: it names a leader of the past and is ignored, and it is no word from the
    /// controller either (seed 49394213: one sent the broker from the active controller to a
    /// standby and back, in the calm).
    #[test]
    fn a_redirect_from_an_older_epoch_is_ignored_and_is_no_answer() {
        let (mut b, first) = broker();
        assert_eq!(first, 100);
        assert!(push(&mut b, 100, 3, 5));
        let mut cx = Context::new(0);
        let stale = |epoch| Message::NotController {
            leader: Some(101),
            epoch,
        };
        b.on_message(&mut cx, 100, stale(2));
        assert_eq!(registered_at(&cx.take_effects()), None);
        assert_eq!(b.controller().target(), 100);
        // Silence all the same: after the periodic requests it lets pass, the broker moves on.
        let mut targets = Vec::new();
        for _ in 0..4 {
            b.on_timer(&mut cx, Timer::RegisterRetry);
            b.on_message(&mut cx, 100, stale(2));
            targets.push(registered_at(&cx.take_effects()).expect("retries"));
        }
        assert_eq!(targets, vec![100, 100, 100, 101]);
        // A redirect of the epoch it follows, or a newer one, is followed.
        b.on_message(&mut cx, 101, stale(3));
        assert_eq!(b.controller().target(), 101);
        let newer = Message::NotController {
            leader: Some(102),
            epoch: 4,
        };
        b.on_message(&mut cx, 101, newer);
        assert_eq!(registered_at(&cx.take_effects()), Some(102));
    }

    #[test]
    fn a_silent_controller_is_left_for_the_next() {
        let (mut b, _) = broker();
        let mut cx = Context::new(0);
        let mut targets = Vec::new();
        for _ in 0..6 {
            b.on_timer(&mut cx, Timer::RegisterRetry);
            targets.push(registered_at(&cx.take_effects()).expect("retries"));
        }
        assert_eq!(targets, vec![100, 100, 101, 101, 101, 102]);
    }

    #[test]
    fn a_burst_of_requests_stays_with_the_controller_and_silent_heartbeats_move_on() {
        use crate::protocol::CreateTopicRequest;
        let (mut b, target) = broker();
        let mut cx = Context::new(0);
        let registered = Message::RegisterBrokerResponse {
            broker_epoch: 1,
            metadata_version: 0,
        };
        b.on_message(&mut cx, target, registered);
        cx.take_effects();
        // Ten requests at once (as a new leader's ISR proposals for ten partitions come): all go
        // to the controller the broker follows, however long it takes to answer.
        for correlation in 0..10 {
            let request = CreateTopicRequest {
                correlation,
                topic: format!("t{correlation}"),
                partitions: None,
                replication_factor: None,
                validate_only: false,
            };
            b.on_message(&mut cx, 7, Message::CreateTopic(request));
        }
        assert_eq!(
            sent_to(&cx.take_effects(), "ForwardCreateTopic"),
            vec![target; 10]
        );
        // Heartbeats measure the silence: the fourth unanswered one goes to the next controller,
        // and an answer from there resets the count.
        let mut heartbeats = Vec::new();
        for _ in 0..4 {
            b.on_timer(&mut cx, Timer::Heartbeat);
            heartbeats.extend(sent_to(&cx.take_effects(), "Heartbeat"));
        }
        assert_eq!(heartbeats, vec![target, target, target, 101]);
        b.on_message(
            &mut cx,
            101,
            Message::NotController {
                leader: Some(101),
                epoch: 0,
            },
        );
        for _ in 0..3 {
            b.on_timer(&mut cx, Timer::Heartbeat);
            assert_eq!(sent_to(&cx.take_effects(), "Heartbeat"), vec![101]);
        }
    }

    #[test]
    fn metadata_from_an_older_controller_epoch_is_refused() {
        let (mut b, _) = broker();
        assert!(push(&mut b, 101, 2, 5));
        assert_eq!(b.controller().target(), 101, "the sender is the active one");
        // Same epoch, older version; an older epoch even with a newer version; a non-controller.
        assert!(!push(&mut b, 101, 2, 4));
        assert!(!push(&mut b, 100, 1, 9));
        assert!(!push(&mut b, 7, 3, 9));
        assert_eq!(b.controller().target(), 101);
        // A newer epoch is taken even at the same version (a new controller announcing itself).
        assert!(push(&mut b, 102, 3, 5));
        assert_eq!(b.controller().target(), 102);
    }
}
