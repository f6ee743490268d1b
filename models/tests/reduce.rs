//! The client reduction (`models::reduce`): its premise holds over the full model, it refuses to
//! act where the premise fails, and it finds what the full model finds with fewer states.

use models::actor::Msg;
use models::check::{check, Action, RunOptions};
use models::cluster::{build, ModelKind, ModelOptions, SeedlogModel};
use models::properties::State;
use models::reduce::{eager, single_request_chain};
use seedlog::node::Bug;
use seedlog::protocol::Message;
use stateright::actor::{ActorModelAction, Id, Network};
use stateright::{Checker, Expectation, Model};

fn premise(m: &SeedlogModel, s: &State) -> bool {
    single_request_chain(&m.cfg, s)
}

fn bfs(o: &ModelOptions) -> models::check::Outcome {
    check(o, &RunOptions::exhaustive_bfs(), |_| {})
}

#[test]
fn clients_keep_a_single_request_chain_in_the_full_model() {
    // The default bounds, and a smaller cluster with a crash (restarts, power loss, a client's
    // request lost with its broker).
    let mut crash = ModelOptions::defaults(ModelKind::Replication);
    crash.brokers = 2;
    crash.min_insync_replicas = 1;
    crash.crashes = 1;
    for o in [ModelOptions::defaults(ModelKind::Replication), crash] {
        let m = build(&o).property(Expectation::Always, "single request chain", premise);
        let checker = m.checker().threads(2).spawn_bfs().join();
        assert!(checker.unique_state_count() > 10_000);
        assert!(
            checker.discovery("single request chain").is_none(),
            "a client had two messages in flight ({o:?})"
        );
    }
}

/// A state where the reader has two answers in flight: the premise fails, and the reduction
/// leaves every step to the checker.
#[test]
fn no_reduction_where_a_client_has_two_messages_in_flight() {
    let o = ModelOptions::defaults(ModelKind::Replication);
    let m = build(&o);
    let reader = m.cfg.reader.expect("the default model has a reader");
    let mut s = m.init_states().remove(0);
    let answer = Msg::new(Message::Metadata { min_version: 1 });
    let Network::Ordered(channels) = &mut s.network else {
        panic!("the models use ordered networks");
    };
    // The reader's first fetch has been delivered (and parked at the leader)...
    channels.retain(|(src, _), _| usize::from(*src) != reader);
    // ...and, impossibly, two brokers answer it.
    for from in [0usize, 1] {
        channels
            .entry((Id::from(from), Id::from(reader)))
            .or_default()
            .push_back(answer.clone());
    }
    let mut actions: Vec<Action> = Vec::new();
    m.actions(&s, &mut actions);
    assert!(!single_request_chain(&m.cfg, &s));
    assert_eq!(eager(&m.cfg, &s, &actions), None);

    // With one of them only, the reduction picks its delivery.
    let Network::Ordered(channels) = &mut s.network else {
        unreachable!()
    };
    channels.remove(&(Id::from(1usize), Id::from(reader)));
    actions.clear();
    m.actions(&s, &mut actions);
    assert!(single_request_chain(&m.cfg, &s));
    let i = eager(&m.cfg, &s, &actions).expect("the answer goes first");
    assert!(
        matches!(&actions[i], ActorModelAction::Deliver { dst, .. } if usize::from(*dst) == reader)
    );
}

/// The reduced model (what `check` runs) reaches the same verdicts as the full actor model, with
/// fewer states.
#[test]
fn reduced_model_agrees_with_the_full_model() {
    let mut bug = ModelOptions::defaults(ModelKind::Replication);
    bug.bugs = vec![Bug::AckBeforeIsr];
    for o in [ModelOptions::defaults(ModelKind::Replication), bug] {
        let full = build(&o).checker().threads(2).spawn_bfs().join();
        let full_violation = full
            .model()
            .properties()
            .into_iter()
            .filter(|p| p.expectation == Expectation::Always)
            .find(|p| full.discovery(p.name).is_some())
            .map(|p| p.name);
        let reduced = bfs(&o);
        assert_eq!(
            reduced.violation.as_ref().map(|v| v.property),
            full_violation,
            "{:?}",
            o.bugs
        );
        if full_violation.is_none() {
            assert!(reduced.unreached.is_empty(), "{:?}", reduced.unreached);
            assert!(
                reduced.unique_states < full.unique_state_count(),
                "reduced {} vs full {}",
                reduced.unique_states,
                full.unique_state_count()
            );
        }
    }
}
