//! Bounded exhaustive checks of both models, and one test per bug switch showing the checker finds
//! the violation it should, with the counterexample kept as a snapshot.

use models::check::{check, Outcome, RunOptions, Search};
use models::cluster::{ModelKind, ModelOptions};
use seedlog::node::{Bug, Durability};
use seedlog::protocol::partitioner::default_partition;

/// Single-threaded BFS: the shortest counterexample, found the same way on every run.
fn run(o: &ModelOptions) -> Outcome {
    let run = RunOptions {
        threads: 1,
        max_depth: None,
        search: Search::Bfs,
    };
    check(o, &run, |_| {})
}

/// Two brokers, `min.insync.replicas=1`, one record, `fsync` durability: the smallest cluster in
/// which the historical bugs show, with no loss that Kafka's design accepts.
fn small(bug: Option<Bug>) -> ModelOptions {
    let mut o = ModelOptions::defaults(ModelKind::Replication);
    o.brokers = 2;
    o.min_insync_replicas = 1;
    o.durability = Durability::Fsync;
    o.records = 1;
    o.bugs = bug.into_iter().collect();
    o
}

fn assert_violation(o: &ModelOptions, property: &str) -> String {
    let out = run(o);
    let v = out
        .violation
        .unwrap_or_else(|| panic!("no violation found for {o:?}: {} states", out.unique_states));
    assert_eq!(v.property, property, "{}", v.trace);
    v.trace
}

/// Runs the model to completion and requires every safety property to hold and every `sometimes`
/// property to be reached.
fn assert_holds(o: &ModelOptions) -> Outcome {
    let out = run(o);
    assert!(
        out.violation.is_none(),
        "{:?}",
        out.violation.map(|v| v.trace)
    );
    assert!(
        out.unreached.is_empty(),
        "never reached: {:?}",
        out.unreached
    );
    out
}

#[test]
fn replication_model_holds_at_default_bounds() {
    let out = assert_holds(&ModelOptions::defaults(ModelKind::Replication));
    assert!(
        out.unique_states > 10_000,
        "explored only {}",
        out.unique_states
    );
}

#[test]
fn partitioning_model_holds_at_default_bounds() {
    assert_holds(&ModelOptions::defaults(ModelKind::Partitioning));
}

#[test]
fn partitioning_model_keys_land_in_different_partitions() {
    // The model's keys "a" and "d" must split across its two partitions, or per-key checks are
    // vacuous.
    assert_ne!(default_partition(b"a", 2), default_partition(b"d", 2));
}

#[test]
fn bug_ack_before_isr_loses_an_acknowledged_record() {
    let trace = assert_violation(&small(Some(Bug::AckBeforeIsr)), "acked-not-lost");
    insta::assert_snapshot!(trace);
}

#[test]
fn bug_unclean_election_loses_an_acknowledged_record() {
    let mut o = small(Some(Bug::UncleanElection));
    o.crashes = 1;
    o.expiries = 2;
    o.evictions = 1;
    o.max_changes = 4;
    let trace = assert_violation(&o, "acked-not-lost");
    insta::assert_snapshot!(trace);
}

#[test]
fn bug_truncate_to_hw_loses_an_acknowledged_record() {
    // Three brokers: the leader is fenced, the new leader's follower truncates to its stale high
    // watermark, then the new leader is fenced too and the truncated follower takes over.
    let mut o = ModelOptions::defaults(ModelKind::Replication);
    o.durability = Durability::Fsync;
    o.expiries = 2;
    o.max_changes = 4;
    o.bugs = vec![Bug::TruncateToHw];
    let trace = assert_violation(&o, "acked-not-lost");
    insta::assert_snapshot!(trace);
}

/// Kafka's accepted loss (K, and J, "last replica standing"): the ISR shrinks to the leader, which
/// acknowledges alone and loses its page cache in a power failure; as the last ISR member it is
/// elected again without the record.
fn power_loss_of_the_last_isr_member(durability: Durability) -> ModelOptions {
    let mut o = small(None);
    o.durability = durability;
    o.crashes = 1;
    o.expiries = 0;
    o.evictions = 1;
    o.max_changes = 3;
    o
}

#[test]
fn replicated_durability_loses_acknowledged_records_on_power_loss() {
    let o = power_loss_of_the_last_isr_member(Durability::Replicated);
    let trace = assert_violation(&o, "acked-not-lost");
    insta::assert_snapshot!(trace);
}

#[test]
fn fsync_durability_survives_the_same_power_loss() {
    assert_holds(&power_loss_of_the_last_isr_member(Durability::Fsync));
}
