//! Producer ids come from the controller in blocks, which brokers hand out one id at a time. With
//! the `producer-id-reuse` switch the active controller does not commit how far it went: after a
//! failover its successor gives blocks from the start again, so a producer that starts then can get the id of
//! one that ran before. Its first batches carry that producer's id, epoch and sequence numbers,
//! and the leader takes them for retries: it answers them with the other producer's offsets and
//! appends nothing. A fixed scenario sets that up rather than waiting for a seed to. The
//! simulator's cross-node check `producer-ids-committed` now stops the run at the cause — a
//! broker holding a block the quorum never committed — before any producer gets an id.
#![cfg(madsim)]

use seedlog::node::{Bug, Durability, Situation};
use seedlog::protocol::Acks;
use sims::faults::{Fault, FaultKind, FaultSchedule, TimedFault};
use sims::faults::{Role, Target};
use sims::scenario::{ProducerPlan, Scenario, ScenarioOptions, FIRST_PRODUCER};
use sims::sim::run::{run, Outcome};
use std::collections::BTreeMap;

/// One partition and two producers of three records each, no consumers but the final reader.
/// The second producer is paused from the start while the first gets its id from broker 0 (every
/// producer's first bootstrap broker, which asks the controller for the first block) and sends
/// its records. Then the active controller is killed (another takes over) and restarts, and
/// broker 0 restarts too, losing the rest of its
/// block, so that no broker holds ids; then the second producer resumes and asks a broker (its
/// requests timed out while it was paused: it has moved on along its bootstrap list), which asks
/// the new active controller for a block.
fn scenario(bugs: Vec<Bug>) -> Scenario {
    let mut sc = Scenario::from_seed(
        1,
        &ScenarioOptions {
            fault_ms: Some(12_000),
            bugs: Vec::new(),
            durability: Some(Durability::Fsync),
            nemesis: None,
        },
    );
    sc.bugs = bugs;
    sc.partitions = 1;
    sc.readers = 0;
    sc.members = 0;
    sc.liveness_ms = 20_000;
    sc.unclean_leader_election = false;
    sc.retention = Default::default();
    sc.retention_check_ms = None;
    sc.clocks.clear();
    let plan = ProducerPlan {
        acks: Acks::All,
        records: 3,
        interval_ms: 50,
        keys: 2,
        max_in_flight: 1,
        batch_size_bytes: 1,
        linger_ms: None,
        delivery_timeout_ms: 10_000,
        metadata_max_age_ms: None,
        request_timeout_ms: None,
    };
    sc.producers = vec![plan.clone(), plan];
    let second = FIRST_PRODUCER + 1;
    let at = TimedFault::at;
    let node = |id: u32| id.into();
    sc.schedule = FaultSchedule {
        events: vec![
            at(0, Fault::Pause { node: node(second) }),
            at(
                3_000,
                Fault::Kill {
                    node: Target::role(Role::ActiveController, 0),
                },
            ),
            at(
                3_500,
                Fault::Restart {
                    node: Target::role(Role::ActiveController, 0),
                },
            ),
            at(5_000, Fault::Kill { node: node(0) }),
            at(5_500, Fault::Restart { node: node(0) }),
            at(7_000, Fault::Resume { node: node(second) }),
        ],
    };
    sc.mix.kinds = vec![FaultKind::Crash, FaultKind::Pause];
    sc.mix.nemesis = None;
    sc
}

/// The producer id each producer was granted, from the trace: node name -> ids.
fn granted(o: &Outcome) -> BTreeMap<String, Vec<u64>> {
    let mut ids: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for e in o.trace.events().expect("trace kept") {
        let Some((_, rest)) = e.what.split_once("InitProducerIdResponse ") else {
            continue;
        };
        let Some(id) = rest.split_once("producer=").map(|(_, r)| r) else {
            continue;
        };
        let id: Option<u64> = id.split(' ').next().and_then(|n| n.parse().ok());
        ids.entry(e.node.clone()).or_default().extend(id);
    }
    ids
}

#[test]
fn a_controller_that_forgets_its_producer_ids_is_stopped_at_the_uncommitted_block() {
    // As it should be: the restarted controller starts after the first block, the two producers
    // have different ids, and every record lands.
    let clean = run(&scenario(Vec::new()), true);
    assert!(clean.ok(), "{:?}", clean.problems);
    let ids = granted(&clean);
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert_ne!(ids["p0"][0], ids["p1"][0], "{ids:?}");
    assert!(clean
        .coverage
        .contains_key(&Situation::ProducerIdBlockAllocated));
    assert!(!clean
        .coverage
        .contains_key(&Situation::IdempotentRetryDeduplicated));

    // With the switch the allocation is never committed, and the simulator's cross-node check
    // stops the broker that received the block at that step (`producer-ids-committed`), before
    // any producer holds an id from it: the cause, not the later loss, is what it reports.
    let o = run(&scenario(vec![Bug::ProducerIdReuse]), true);
    assert!(granted(&o).is_empty(), "{:?}", granted(&o));
    assert!(
        o.problems.iter().any(|p| p.starts_with("node-invariant")
            && p.contains("producer-ids-committed")
            && p.contains("after delivery of AllocateProducerIdsResponse")),
        "{:?}",
        o.problems
    );
}
