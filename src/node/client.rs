//! What the three clients (producer, reader, group consumer) share about finding the cluster:
//! which bootstrap broker to ask, and which metadata to ask for.

use super::Context;
use crate::protocol::{BrokerId, ClusterMetadata, Message};

/// The bootstrap broker a client asks for metadata (or for its group's coordinator): the same
/// one until a request to it times out or fails, then the next in the list (that one may be
/// down).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Bootstrap {
    index: usize,
}

impl Bootstrap {
    /// The broker to ask now; `None` only for an empty list.
    pub fn current(&self, brokers: &[BrokerId]) -> Option<BrokerId> {
        brokers.get(self.index).copied()
    }

    /// Moves on to the next broker of the list, wrapping around.
    pub fn advance(&mut self, brokers: &[BrokerId]) {
        self.index = (self.index + 1) % brokers.len().max(1);
    }

    /// A request to the current broker went unanswered. As a Kafka client does, its connection
    /// is closed (`Effect::Disconnect`): the answer, and whatever is sent to that broker next,
    /// may be stuck behind a stalled segment on it, and a later request there (a produce once
    /// the broker leads a partition, say) would wait out another timeout. Then the next broker
    /// of the list is asked. Returns the broker whose connection was closed (`None` only for an
    /// empty list): every other request in flight on that connection failed with it, and the
    /// caller fails or re-sends its own, as Kafka's client fails every request of a closed
    /// connection rather than leave each to its own timeout.
    #[must_use = "the requests in flight on the closed connection failed with it"]
    pub fn time_out(&mut self, cx: &mut Context, brokers: &[BrokerId]) -> Option<BrokerId> {
        let closed = self.current(brokers);
        if let Some(to) = closed {
            cx.disconnect(to);
        }
        self.advance(brokers);
        closed
    }
}

/// The metadata request of a client holding `known`: newer than it if the client found it stale
/// (a refused request, a leaderless partition), else any version a broker has from the
/// controller (version 0 is a broker that has heard nothing from the controller yet).
pub fn metadata_request(known: Option<&ClusterMetadata>, stale: bool) -> Message {
    let min_version = match (known, stale) {
        (Some(md), true) => md.version + 1,
        _ => 1,
    };
    Message::Metadata { min_version }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstrap_moves_on_and_wraps_and_survives_an_empty_list() {
        let mut b = Bootstrap::default();
        assert_eq!(b.current(&[4, 5]), Some(4));
        b.advance(&[4, 5]);
        assert_eq!(b.current(&[4, 5]), Some(5));
        b.advance(&[4, 5]);
        assert_eq!(b.current(&[4, 5]), Some(4));
        b.advance(&[]);
        assert_eq!(b.current(&[]), None);
    }

    #[test]
    fn a_timed_out_bootstrap_broker_is_disconnected_before_the_next_is_asked() {
        let mut b = Bootstrap::default();
        let mut cx = Context::new(0);
        assert_eq!(b.time_out(&mut cx, &[4, 5]), Some(4));
        assert_eq!(cx.take_effects(), vec![crate::node::Effect::Disconnect(4)]);
        assert_eq!(b.current(&[4, 5]), Some(5));
        assert_eq!(b.time_out(&mut cx, &[]), None);
        assert!(cx.take_effects().is_empty());
    }

    #[test]
    fn stale_metadata_asks_for_a_newer_version() {
        let md = ClusterMetadata {
            version: 7,
            ..Default::default()
        };
        let v = |m: Message| match m {
            Message::Metadata { min_version } => min_version,
            other => panic!("{other:?}"),
        };
        assert_eq!(v(metadata_request(Some(&md), true)), 8);
        assert_eq!(v(metadata_request(Some(&md), false)), 1);
        assert_eq!(v(metadata_request(None, true)), 1);
    }
}
