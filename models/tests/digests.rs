//! The checker's cached digests (docs/model-checker-speed.md): a message, the history and a
//! node's state are hashed once when made, and two states are the same state exactly when the
//! values behind their digests are equal.

use models::actor::{fingerprint, Msg};
use models::cluster::{build, ModelKind, ModelOptions};
use models::history::{History, Observed};
use seedlog::protocol::{Message, TopicPartition};
use stateright::Model;

#[test]
fn equal_messages_made_apart_are_one_message_and_different_ones_are_not() {
    let a = Msg::new(Message::Metadata { min_version: 1 });
    let b = Msg::new(Message::Metadata { min_version: 1 });
    let c = Msg::new(Message::Metadata { min_version: 2 });
    assert_eq!(a, b);
    assert_eq!(fingerprint(&a), fingerprint(&b));
    assert_ne!(a, c);
    assert_ne!(fingerprint(&a), fingerprint(&c));
    // It reads, and prints, as the message it carries.
    assert_eq!(
        a.to_string(),
        Message::Metadata { min_version: 1 }.to_string()
    );
    assert_eq!(a.into_inner(), Message::Metadata { min_version: 1 });
}

#[test]
fn histories_are_equal_exactly_when_what_they_observed_is() {
    let observed = |offset| {
        let mut o = Observed::default();
        o.acked.insert((TopicPartition::new("t", 0), offset, 0));
        o
    };
    assert_eq!(History::new(observed(0)), History::new(observed(0)));
    assert_eq!(
        fingerprint(&History::new(observed(0))),
        fingerprint(&History::new(observed(0)))
    );
    assert_ne!(History::new(observed(0)), History::new(observed(1)));
    assert_ne!(
        fingerprint(&History::new(observed(0))),
        fingerprint(&History::new(observed(1)))
    );
    assert_ne!(History::new(observed(0)), History::default());
}

/// Every successor of the initial state differs from it in its digest exactly when it differs
/// in value (no step's change is lost to a stale cached digest), and the initial states of two
/// builds of one model are one state.
#[test]
fn a_state_digest_follows_its_value() {
    let m = build(&ModelOptions::defaults(ModelKind::Replication));
    let init = m.init_states().remove(0);
    assert_eq!(
        init,
        build(&ModelOptions::defaults(ModelKind::Replication)).init_states()[0]
    );
    let mut actions = Vec::new();
    m.actions(&init, &mut actions);
    assert!(!actions.is_empty());
    for a in actions {
        let Some(next) = m.next_state(&init, a) else {
            continue;
        };
        assert_eq!(next == init, fingerprint(&next) == fingerprint(&init));
    }
}
