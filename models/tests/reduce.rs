//! The model `check` runs (`models::reduce`): the client reduction's premise holds over the full
//! model and it refuses to act where the premise fails; the crashes left out are exactly those
//! out of bounds; and the reduced model finds what the full model finds, with fewer states, at
//! the default bounds and where a power loss decides the verdict.

use models::actor::Msg;
use models::check::{check, Action, RunOptions};
use models::cluster::{build, ModelKind, ModelOptions, SeedlogModel};
use models::properties::State;
use models::reduce::{
    drop_crashes_out_of_bounds, eager, fault_out_of_bounds, single_request_chain,
};
use seedlog::node::Bug;
use seedlog::protocol::Message;
use stateright::actor::{ActorModelAction, Id, Network};
use stateright::{Checker, Expectation, HasDiscoveries, Model};
use std::sync::atomic::{AtomicUsize, Ordering};

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
    let clean = agreed_violation(&ModelOptions::defaults(ModelKind::Replication));
    assert_eq!(clean, None);
    assert_eq!(agreed_violation(&bug), Some("acked-not-lost"));
}

/// The first safety property the full actor model violates, after checking that the reduced
/// model (`check`) violates the same one; where neither violates any, that the reduced model
/// reaches every `sometimes` and explores fewer states.
fn agreed_violation(o: &ModelOptions) -> Option<&'static str> {
    let full = build(o)
        .checker()
        .threads(2)
        .finish_when(HasDiscoveries::AnyFailures)
        .spawn_bfs()
        .join();
    let full_violation = full
        .model()
        .properties()
        .into_iter()
        .filter(|p| p.expectation == Expectation::Always)
        .find(|p| full.discovery(p.name).is_some())
        .map(|p| p.name);
    let reduced = bfs(o);
    assert_eq!(
        reduced.violation.as_ref().map(|v| v.property),
        full_violation,
        "{o:?}"
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
    full_violation
}

static PRUNED: AtomicUsize = AtomicUsize::new(0);

/// Whether the steps the reduced model leaves out in `s` are exactly those out of bounds: a
/// crash is kept exactly when its successor is within the bounds, and a fault timer's firing
/// answered as no successor (`fault_out_of_bounds`) has none within them either.
fn pruned_steps_are_out_of_bounds(m: &SeedlogModel, s: &State) -> bool {
    let mut all: Vec<Action> = Vec::new();
    m.actions(s, &mut all);
    let mut kept = all.clone();
    drop_crashes_out_of_bounds(&m.cfg, s, &mut kept);
    let within = |a: &Action| {
        m.next_state(s, a.clone())
            .is_some_and(|next| m.within_boundary(&next))
    };
    all.iter().all(|a| match a {
        ActorModelAction::Crash(_) => {
            if !kept.contains(a) {
                PRUNED.fetch_add(1, Ordering::Relaxed);
            }
            within(a) == kept.contains(a)
        }
        ActorModelAction::Timeout(..) if fault_out_of_bounds(m, s, a) => {
            PRUNED.fetch_add(1, Ordering::Relaxed);
            !within(a)
        }
        _ => true,
    })
}

/// Over every reachable state of models where each budget runs out — crashes, session
/// expiries and ISR evictions in the replication model, member session expiries in the
/// offsets model, election timeouts in the quorum model — the steps left out are out of
/// bounds, so leaving them out changes no state, path or verdict.
#[test]
fn the_steps_left_out_are_exactly_those_out_of_bounds() {
    let mut replication = ModelOptions::defaults(ModelKind::Replication);
    replication.brokers = 2;
    replication.min_insync_replicas = 1;
    replication.crashes = 1;
    let mut offsets = ModelOptions::defaults(ModelKind::Offsets);
    offsets.member_expiries = 1;
    let mut quorum = ModelOptions::defaults(ModelKind::Quorum);
    quorum.records = 1;
    quorum.crashes = 0;
    quorum.expiries = 1;
    quorum.max_epoch = 1;
    for o in [replication, offsets, quorum] {
        PRUNED.store(0, Ordering::Relaxed);
        let m = build(&o).property(
            Expectation::Always,
            "pruned steps are out of bounds",
            pruned_steps_are_out_of_bounds,
        );
        let checker = m.checker().threads(2).spawn_bfs().join();
        assert!(checker.unique_state_count() > 1_000, "{o:?}");
        assert!(
            checker
                .discovery("pruned steps are out of bounds")
                .is_none(),
            "{o:?}"
        );
        // And the pruning is not idle: it leaves steps out in these models.
        assert!(PRUNED.load(Ordering::Relaxed) > 100, "{o:?}");
    }
}

/// Where a crash and a power loss decide the verdict, the reduced model agrees with the full
/// one: a loss only a power loss causes is found by both (`ack-before-sync`, and Kafka's
/// replication-only durability losing the last replica's unsynced record), and the same bounds
/// with `fsync` hold in both, the reduced one in fewer states.
#[test]
fn reduced_model_agrees_where_power_loss_decides() {
    let lone = |bug: Option<Bug>, durability, evictions, expiries, max_changes| {
        let mut o = ModelOptions::defaults(ModelKind::Replication);
        o.brokers = 2;
        o.min_insync_replicas = 1;
        o.crashes = 1;
        o.durability = durability;
        o.evictions = evictions;
        o.expiries = expiries;
        o.max_changes = max_changes;
        o.bugs = bug.into_iter().collect();
        o
    };
    use seedlog::node::Durability::{Fsync, Replicated};
    let cases = [
        (
            lone(Some(Bug::AckBeforeSync), Fsync, 0, 1, 3),
            Some("acked-not-lost"),
        ),
        (lone(None, Replicated, 1, 0, 3), Some("acked-not-lost")),
        (lone(None, Fsync, 0, 1, 1), None),
    ];
    for (o, expected) in cases {
        assert_eq!(agreed_violation(&o), expected, "{o:?}");
    }
}
