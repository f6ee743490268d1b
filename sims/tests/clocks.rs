//! Clocks that disagree. Each node reads its own clock; a jump moves only its wall clock. A
//! broker with retention by age whose clock jumps forward deletes records early — Kafka does the
//! same — and the run must still be judged correctly: the records it deleted are excused only
//! because a consumer was reset past them, and without that reset the checker would call them
//! lost. A broker whose clock is set back deletes nothing while it is.
#![cfg(madsim)]

use seedlog::log::RetentionPolicy;
use seedlog::node::{ClientEvent, Durability, Situation};
use seedlog::protocol::Acks;
use seedlog::runtime::sim_clock::SIM_EPOCH_MS;
use sims::faults::{Fault, FaultKind, FaultSchedule, Role, Target, TimedFault};
use sims::scenario::{Scenario, ScenarioOptions, FIRST_MEMBER, FIRST_PRODUCER};
use sims::sim::cluster::Observed;
use sims::sim::run::{run, Outcome};
use std::collections::{BTreeMap, BTreeSet};

const HOUR_MS: i64 = 3_600_000;

/// One partition, records kept for two minutes (longer than the run: without a clock fault
/// nothing is old enough to go), no reader but the final one, the group's members paused from
/// 5 s to 11 s. If `jump_ms` is set, the leader of `events-0` has its wall clock stepped by it
/// from 6 s to 10 s.
fn scenario(jump_ms: Option<i64>) -> Scenario {
    let mut sc = Scenario::from_seed(
        3,
        &ScenarioOptions {
            fault_ms: Some(12_000),
            bugs: Vec::new(),
            durability: Some(Durability::Fsync),
            nemesis: None,
        },
    );
    sc.partitions = 1;
    sc.readers = 0;
    sc.liveness_ms = 20_000;
    sc.unclean_leader_election = false;
    for p in &mut sc.producers {
        p.acks = Acks::All;
    }
    sc.retention = RetentionPolicy {
        max_age_ms: Some(120_000),
        max_bytes: None,
    };
    sc.retention_check_ms = Some(500);
    let at = TimedFault::at;
    let mut events = Vec::new();
    for m in 0..sc.members {
        let node = (FIRST_MEMBER + m).into();
        events.push(at(5_000, Fault::Pause { node }));
        events.push(at(11_000, Fault::Resume { node }));
    }
    if let Some(by_ms) = jump_ms {
        let leader = Target::role(Role::Leader, 0);
        events.push(at(
            6_000,
            Fault::ClockJump {
                node: leader,
                by_ms,
            },
        ));
        events.push(at(
            10_000,
            Fault::ClockJump {
                node: leader,
                by_ms: -by_ms,
            },
        ));
    }
    events.sort_by_key(|e| e.at_ms);
    sc.schedule = FaultSchedule { events };
    sc.mix.kinds = vec![FaultKind::Pause, FaultKind::ClockJump];
    sc
}

/// Every log start of `events-0` a broker wrote to its disk: (time, broker, offset).
fn log_starts(o: &Outcome) -> Vec<(u64, String, u64)> {
    o.trace
        .events()
        .expect("trace kept")
        .iter()
        .filter_map(|e| {
            let offset = e.what.strip_prefix("persist log start events-0 = ")?;
            Some((e.time_ms, e.node.clone(), offset.parse().ok()?))
        })
        .collect()
}

/// Acknowledged records of `events-0` (offset, value) that no poll returned.
fn unread_acknowledged(observed: &[Observed]) -> BTreeSet<(u64, String)> {
    let mut read = BTreeSet::new();
    let mut acked = BTreeMap::new();
    let mut sending = BTreeMap::new();
    for o in observed {
        match &o.event {
            ClientEvent::SendInvoke { id, value, .. } => {
                sending.insert((o.node, *id), String::from_utf8_lossy(value).into_owned());
            }
            ClientEvent::SendOk { id, offset, .. } => {
                if let Some(v) = sending.remove(&(o.node, *id)) {
                    acked.insert(*offset, v);
                }
            }
            ClientEvent::Polled { records, .. } => {
                read.extend(records.iter().map(|e| e.offset));
            }
            _ => {}
        }
    }
    acked
        .into_iter()
        .filter(|(o, _)| !read.contains(o))
        .collect()
}

/// The offsets consumers were reset to (the log starts they were told of).
fn resets(observed: &[Observed]) -> Vec<u64> {
    observed
        .iter()
        .filter_map(|o| match &o.event {
            ClientEvent::Reset { offset, .. } => Some(*offset),
            _ => None,
        })
        .collect()
}

#[test]
fn a_forward_jump_makes_a_broker_with_age_retention_delete_early_and_the_run_is_judged_right() {
    // Without the jump nothing is two minutes old: nothing goes.
    let control = run(&scenario(None), true);
    assert!(control.ok(), "{:?}", control.problems);
    assert!(
        log_starts(&control).is_empty(),
        "{:?}",
        log_starts(&control)
    );
    assert!(!control.coverage.contains_key(&Situation::RetentionDelete));

    let o = run(&scenario(Some(HOUR_MS)), true);
    assert!(o.ok(), "{:?}", o.problems);
    assert!(o.coverage.contains_key(&Situation::ClockJump));
    assert!(o.coverage.contains_key(&Situation::RetentionDelete));
    // The leader deleted while its clock was an hour ahead, and only then: no record was more
    // than 12 s old by anyone else's clock.
    let starts = log_starts(&o);
    let first = starts.first().expect("retention moved a log start");
    assert!(
        (6_000..=10_500).contains(&first.0),
        "first deletion at {} ms: {starts:?}",
        first.0
    );
    let deleted_to = starts.iter().map(|s| s.2).max().unwrap_or(0);
    assert!(deleted_to > 0);

    // Acknowledged records nobody read: each lies below the log start retention set, and the
    // consumers were told of no log start retention did not set.
    let unread = unread_acknowledged(&o.observed);
    assert!(
        !unread.is_empty(),
        "the early deletion took acknowledged records nobody had read"
    );
    for (offset, value) in &unread {
        assert!(
            *offset < deleted_to,
            "{value} at {offset} unread, but retention deleted only below {deleted_to}"
        );
    }
    let told = resets(&o.observed);
    assert!(!told.is_empty(), "no consumer was reset to the log start");
    let set: BTreeSet<u64> = starts.iter().map(|s| s.2).collect();
    for r in &told {
        assert!(set.contains(r), "reset to {r}, never a log start: {set:?}");
    }

    // The resets are what excuse them: without them the same history loses exactly those.
    let sc = scenario(Some(HOUR_MS));
    let without_resets: Vec<Observed> = o
        .observed
        .iter()
        .filter(|e| !matches!(e.event, ClientEvent::Reset { .. }))
        .cloned()
        .collect();
    let accused: BTreeSet<u64> = sims::sim::history::anomalies(&without_resets, &sc)
        .iter()
        .filter(|a| a.starts_with("unseen") || a.starts_with("lost-write"))
        .filter_map(|a| a.split('@').nth(1)?.split(':').next()?.parse().ok())
        .collect();
    let unread_offsets: BTreeSet<u64> = unread.iter().map(|(o, _)| *o).collect();
    assert_eq!(accused, unread_offsets);
    eprintln!(
        "log starts {:?} ... {:?}; {} acknowledged records unread, offsets {:?}..={:?}; resets {told:?}",
        starts.first(),
        starts.last(),
        unread.len(),
        unread.first().map(|u| u.0),
        unread.last().map(|u| u.0),
    );
}

#[test]
fn a_broker_whose_clock_is_set_back_deletes_nothing_while_it_is() {
    // Records kept for two seconds: the leader deletes all along, except while its clock reads
    // an hour ago (every record is then in its future).
    let short = |jump| {
        let mut sc = scenario(jump);
        sc.retention.max_age_ms = Some(2_000);
        sc
    };
    let o = run(&short(Some(-HOUR_MS)), true);
    assert!(o.ok(), "{:?}", o.problems);
    let starts = log_starts(&o);
    assert!(starts.iter().any(|s| s.0 < 6_000), "{starts:?}");
    assert!(starts.iter().any(|s| s.0 > 10_000), "{starts:?}");
    // The followers copy the leader's log start as they fetch; the leader itself wrote none
    // while it was set back (a little slack for a check already under way at the jump).
    let leader_moves: Vec<_> = starts
        .iter()
        .filter(|s| (6_050..10_000).contains(&s.0))
        .filter(|s| s.1 == starts.first().map_or("", |f| f.1.as_str()))
        .collect();
    assert!(leader_moves.is_empty(), "{leader_moves:?}");
}

/// Record timestamps come from the producer's own clock (its offset and drift), while the
/// history's times are the one true simulated time.
#[test]
fn records_carry_the_producers_clock_and_the_history_true_time() {
    let sc = scenario(None);
    let o = run(&sc, false);
    assert!(o.ok(), "{:?}", o.problems);
    let spec = sc.clock(FIRST_PRODUCER);
    assert_ne!(spec.offset_ms, 0);
    let mut invoked = BTreeMap::new();
    let mut checked = 0;
    for e in &o.observed {
        assert!(
            e.time_ms <= o.sim_ms,
            "{} ms after the run's end",
            e.time_ms
        );
        match &e.event {
            ClientEvent::SendInvoke { value, .. } if e.node == FIRST_PRODUCER => {
                invoked.insert(value.clone(), e.time_ms as i64);
            }
            ClientEvent::Polled { records, .. } => {
                for r in records {
                    let Some(&t) = r.record.value.as_ref().and_then(|v| invoked.get(v)) else {
                        continue;
                    };
                    // The producer's reading when it sent: its offset plus its drifted time
                    // (a retry is stamped again, up to the 10 s delivery timeout later).
                    let expected =
                        SIM_EPOCH_MS + spec.offset_ms + t + t * spec.drift_ppm / 1_000_000;
                    let ts = r.record.timestamp;
                    assert!(
                        (expected - 2..=expected + 11_000).contains(&ts),
                        "stamped {ts}, expected about {expected}"
                    );
                    checked += 1;
                }
            }
            _ => {}
        }
    }
    assert!(checked > 10, "only {checked} records checked");
}
