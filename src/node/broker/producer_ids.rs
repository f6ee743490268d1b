//! Producer ids, handed out by any broker (Kafka's InitProducerId): each from a block the
//! controller gave this broker. The block lives in memory only, so a restarted broker asks for a
//! fresh one and never hands out an id twice, while the controller never gives a block twice.
//! Requests that find no id left wait for the next block; the request for it is sent again until
//! an answer comes (the controller may be down, or the request lost with a connection).

use super::Broker;
use crate::node::{Context, Timer};
use crate::protocol::{ErrorCode, Message, NodeId, ProducerIdBlock};

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ProducerIds {
    /// The ids of the current block not handed out yet: `next..end`.
    next: u64,
    end: u64,
    /// Producers waiting for an id, in arrival order, with the correlation of their latest
    /// request: one entry per producer, however often it asked again.
    waiting: Vec<(NodeId, u64)>,
    /// A block has been asked for and not received (the retry timer runs).
    asking: bool,
}

impl ProducerIds {
    /// The end of the block this broker hands ids from (0 before its first).
    pub(super) fn block_end(&self) -> u64 {
        self.end
    }
}

impl Broker {
    pub(super) fn on_init_producer_id(&mut self, cx: &mut Context, from: NodeId, correlation: u64) {
        let ids = &mut self.producer_ids;
        ids.waiting.retain(|(f, _)| *f != from);
        ids.waiting.push((from, correlation));
        self.hand_out_producer_ids(cx);
    }

    /// Answers waiting producers from the current block; asks for a new one if some are left.
    fn hand_out_producer_ids(&mut self, cx: &mut Context) {
        let ids = &mut self.producer_ids;
        while ids.next < ids.end && !ids.waiting.is_empty() {
            let (to, correlation) = ids.waiting.remove(0);
            // Epoch 0: an id is new, so no batch of any epoch carries it yet.
            let result = Ok((ids.next, 0));
            ids.next += 1;
            cx.send(
                to,
                Message::InitProducerIdResponse {
                    correlation,
                    result,
                },
            );
        }
        if !ids.waiting.is_empty() && !ids.asking {
            ids.asking = true;
            self.ask_for_producer_ids(cx);
        }
    }

    /// Sends the request for a block (once registered: the controller serves only a registered
    /// incarnation) and (re)starts its retry timer.
    fn ask_for_producer_ids(&mut self, cx: &mut Context) {
        if let Some(broker_epoch) = self.broker_epoch() {
            let ask = Message::AllocateProducerIds {
                broker: self.config.id,
                broker_epoch,
            };
            self.send_to_controller(cx, ask);
        }
        cx.set_timer(Timer::ProducerIdsRetry, self.config.producer_ids_retry_ms);
    }

    pub(super) fn on_producer_ids_retry(&mut self, cx: &mut Context) {
        if self.producer_ids.asking {
            self.ask_for_producer_ids(cx);
        }
    }

    /// The broker just registered: a block asked for meanwhile can be asked for now rather than
    /// at the next retry.
    pub(super) fn producer_ids_on_registered(&mut self, cx: &mut Context) {
        self.on_producer_ids_retry(cx);
    }

    pub(super) fn on_producer_id_block(
        &mut self,
        cx: &mut Context,
        from: NodeId,
        result: Result<ProducerIdBlock, ErrorCode>,
    ) {
        // An error (a stale broker epoch: a re-registration is under way) changes nothing: the
        // retry asks again in the new incarnation.
        let by_controller = self.answered_by_controller(from);
        let Ok(block) = result else {
            return;
        };
        let ids = &mut self.producer_ids;
        // A second answer (to a retry) while the first block lasts is not needed; its ids are
        // simply never used. Any block is ours to use: the controller gave it to nobody else.
        if !by_controller || ids.next < ids.end {
            return;
        }
        ids.next = block.first;
        ids.end = block.first.saturating_add(block.count);
        ids.asking = false;
        cx.cancel_timer(Timer::ProducerIdsRetry);
        self.hand_out_producer_ids(cx);
    }
}

#[cfg(test)]
mod tests {
    use crate::node::{Broker, BrokerConfig, Context, Controller, ControllerConfig, Effect};
    use crate::node::{Timer, TopicSpec};
    use crate::protocol::{Message, ProducerIdBlock};
    use std::sync::Arc;

    /// Broker 0 of a one-broker cluster, registered (as bootstrapped) and started.
    fn broker() -> Broker {
        let controller = Controller::bootstrapped(Arc::new(ControllerConfig {
            id: 9,
            brokers: vec![0],
            topics: vec![TopicSpec::spread("t", 1, 1, &[0])],
            session_timeout_ms: None,
            unclean_leader_election: false,
            producer_id_block_size: 2,
            leader_rebalance_ms: None,
            bugs: Default::default(),
        }));
        let config = Arc::new(BrokerConfig::new(0, vec![9]));
        let mut b = Broker::bootstrapped(config, controller.metadata().clone());
        b.on_start(&mut Context::new(0));
        b
    }

    fn ask(b: &mut Broker, producer: u32, correlation: u64) -> Vec<Effect> {
        let mut cx = Context::new(0);
        b.on_message(&mut cx, producer, Message::InitProducerId { correlation });
        cx.take_effects()
    }

    fn give(b: &mut Broker, first: u64, count: u64) -> Vec<Effect> {
        let mut cx = Context::new(0);
        let result = Ok(ProducerIdBlock { first, count });
        b.on_message(&mut cx, 9, Message::AllocateProducerIdsResponse { result });
        cx.take_effects()
    }

    /// The ids answered: (producer, correlation, id).
    fn granted(effects: &[Effect]) -> Vec<(u32, u64, u64)> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Send {
                    to,
                    message:
                        Message::InitProducerIdResponse {
                            correlation,
                            result: Ok((id, 0)),
                        },
                } => Some((*to, *correlation, *id)),
                _ => None,
            })
            .collect()
    }

    fn asked_controller(effects: &[Effect]) -> bool {
        effects.iter().any(|e| {
            matches!(
                e,
                Effect::Send {
                    to: 9,
                    message: Message::AllocateProducerIds { broker: 0, .. }
                }
            )
        })
    }

    /// A block must come from what the controller committed: one reaching past the committed
    /// blocks is reported (`producer-ids-committed`), as is none before the first block.
    #[test]
    fn a_block_past_the_committed_ones_is_a_broken_invariant() {
        let mut b = broker();
        let md = b.metadata().clone();
        let rule = |b: &Broker, next| {
            b.check_against_committed(&md, Some(next))
                .map_err(|v| v.rule)
        };
        assert_eq!(rule(&b, 0), Ok(()));
        ask(&mut b, 200, 1);
        give(&mut b, 40, 2);
        assert_eq!(rule(&b, 42), Ok(()));
        assert_eq!(rule(&b, 41), Err("producer-ids-committed"));
        assert_eq!(b.check_against_committed(&md, None), Ok(()));
    }

    #[test]
    fn requests_wait_for_a_block_then_are_answered_from_it() {
        let mut b = broker();
        // No block at start: the first request asks the controller and waits.
        let first = ask(&mut b, 200, 1);
        assert!(asked_controller(&first));
        assert!(granted(&first).is_empty());
        // A second producer waits too, without a second request to the controller; the first
        // asking again keeps one place in the queue.
        let more = [ask(&mut b, 201, 1), ask(&mut b, 200, 2)].concat();
        assert!(!asked_controller(&more) && granted(&more).is_empty());
        // No answer in time: the request goes again.
        let mut cx = Context::new(0);
        b.on_timer(&mut cx, Timer::ProducerIdsRetry);
        assert!(asked_controller(&cx.take_effects()));
        // The block comes: both are answered, in arrival order, the first at its latest request.
        let answered = give(&mut b, 40, 2);
        assert_eq!(granted(&answered), vec![(201, 1, 40), (200, 2, 41)]);
        assert!(answered.contains(&Effect::CancelTimer(Timer::ProducerIdsRetry)));
        // The block is used up: the next request asks for another.
        let third = ask(&mut b, 202, 1);
        assert!(asked_controller(&third) && granted(&third).is_empty());
        assert_eq!(granted(&give(&mut b, 60, 2)), vec![(202, 1, 60)]);
        // A duplicate answer while ids are left changes nothing.
        assert!(give(&mut b, 80, 2).is_empty());
        assert_eq!(granted(&ask(&mut b, 203, 1)), vec![(203, 1, 61)]);
    }

    #[test]
    fn a_restarted_broker_asks_for_a_new_block() {
        let mut b = broker();
        ask(&mut b, 200, 1);
        assert_eq!(granted(&give(&mut b, 0, 2)), vec![(200, 1, 0)]);
        // The block was in memory only: the restarted broker holds none, and does not hand out
        // id 1 of its old block.
        let mut b = Broker::recover(b.config_arc(), Default::default(), 1);
        let mut cx = Context::new(0);
        b.on_start(&mut cx);
        let effects = ask(&mut b, 201, 1);
        assert!(granted(&effects).is_empty());
        // Not registered yet: the request waits for the registration, then goes.
        assert!(!asked_controller(&effects));
        let mut cx = Context::new(0);
        let registered = Message::RegisterBrokerResponse {
            broker_epoch: 7,
            metadata_version: 0,
        };
        b.on_message(&mut cx, 9, registered);
        assert!(asked_controller(&cx.take_effects()));
        assert_eq!(granted(&give(&mut b, 2, 2)), vec![(201, 1, 2)]);
    }
}
