//! A fixed range of seeds, as in CI: every run clean, and between them every fault kind used.
#![cfg(madsim)]

use seedlog::node::{ClientEvent, Stage};
use sims::faults::{Fault, FaultKind, Target};
use sims::scenario::{Scenario, ScenarioOptions};
use sims::sim::run::run;
use std::collections::BTreeSet;

const SEEDS: std::ops::Range<u64> = 0..80;

/// The fault's name as schedules spell it ("kill", "power-loss", ...).
fn fault_name(f: &Fault) -> String {
    serde_json::to_value(f).expect("encode")["fault"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn fixed_seeds_are_clean_and_cover_every_fault_kind() {
    let mut kinds = BTreeSet::new();
    let mut faults_seen = BTreeSet::new();
    let mut failures = Vec::new();
    let mut group = GroupCoverage::default();
    for seed in SEEDS {
        let sc = Scenario::from_seed(seed, &ScenarioOptions::default());
        kinds.extend(sc.mix.kinds.iter().copied());
        for f in &sc.schedule.events {
            faults_seen.insert(fault_name(&f.fault));
        }
        let o = run(&sc, false);
        group.add(&sc, &o.observed);
        if !o.ok() {
            failures.push(format!(
                "seed {seed}: {:?}",
                &o.problems[..o.problems.len().min(3)]
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "failing seeds:\n{}",
        failures.join("\n")
    );
    assert_eq!(
        kinds.len(),
        FaultKind::ALL.len(),
        "fault kinds drawn: {kinds:?}"
    );
    // Every fault variant of the random mixes (kill, power loss, restart, pause, resume, flip,
    // isolate, split, one-way, heal, loss, latency, back to normal, clock jump, clock drift and
    // its end) actually scheduled somewhere.
    // (`heal-link` belongs to the targeted nemeses: tests/bugs.rs.)
    let all = [
        Fault::Kill { node: 0.into() },
        Fault::PowerLoss {
            node: 0.into(),
            mode: sims::faults::PowerLossMode::AllPending,
        },
        Fault::Restart { node: 0.into() },
        Fault::Pause { node: 0.into() },
        Fault::Resume { node: 0.into() },
        Fault::FlipBit {
            node: 0.into(),
            bit: 0,
            spare_last_replica: false,
        },
        Fault::Isolate { node: 0.into() },
        Fault::Split {
            left: vec![],
            right: vec![],
        },
        Fault::OneWay {
            from: 0.into(),
            to: 1.into(),
        },
        Fault::HealNetwork,
        Fault::Loss { percent: 1 },
        Fault::Latency {
            min_ms: 1,
            max_ms: 2,
        },
        Fault::NetworkNormal,
        Fault::ClockJump {
            node: 0.into(),
            by_ms: 1,
        },
        Fault::ClockDrift {
            node: 0.into(),
            ppm: 1,
        },
        Fault::ClockDriftEnd { node: 0.into() },
    ];
    for f in &all {
        assert!(
            faults_seen.contains(&fault_name(f)),
            "never scheduled: {f:?}"
        );
    }
    // The consumer group was exercised where it matters: members crashed, stale commits were
    // fenced, and coordinators failed over (member ids name the coordinator's leader epoch).
    assert!(group.commits_ok > 0, "{group:?}");
    assert!(group.commits_refused > 0, "{group:?}");
    assert!(group.member_kills > 0, "{group:?}");
    assert!(group.coordinator_moves > 0, "{group:?}");
}

#[derive(Debug, Default)]
struct GroupCoverage {
    commits_ok: usize,
    commits_refused: usize,
    member_kills: usize,
    coordinator_moves: usize,
}

impl GroupCoverage {
    fn add(&mut self, sc: &Scenario, observed: &[sims::sim::cluster::Observed]) {
        let mut epochs = BTreeSet::new();
        for o in observed {
            match &o.event {
                ClientEvent::Commit {
                    stage: Stage::Ok, ..
                } => self.commits_ok += 1,
                ClientEvent::Commit {
                    stage: Stage::Fail(_),
                    ..
                } => self.commits_refused += 1,
                ClientEvent::Assigned { member, .. } => {
                    // "c500-e3-7": joined at the coordinator of leader epoch 3.
                    epochs.extend(member.split('-').nth(1).map(str::to_string));
                }
                _ => {}
            }
        }
        self.coordinator_moves += epochs.len().saturating_sub(1);
        self.member_kills += sc
            .schedule
            .events
            .iter()
            .filter(
                |e| matches!(e.fault, Fault::Kill { node: Target::Node(n) } if n >= sims::scenario::FIRST_MEMBER),
            )
            .count();
    }
}

#[test]
fn a_saved_schedule_replays_to_the_same_trace() {
    let sc = Scenario::from_seed(
        11,
        &ScenarioOptions {
            fault_ms: Some(5_000),
            ..Default::default()
        },
    );
    let json = serde_json::to_string(&sc).expect("encode");
    let back: Scenario = serde_json::from_str(&json).expect("decode");
    assert_eq!(back, sc);
    assert_eq!(run(&sc, false).trace_hash, run(&back, false).trace_hash);
}

#[test]
fn a_saved_nemesis_schedule_replays_to_the_same_failure() {
    // Role targets ("leader#1") are resolved during the run, so the file holds roles, not
    // nodes, and the replay must bind them the same way.
    let sc = Scenario::from_seed(
        6,
        &ScenarioOptions {
            bugs: vec![seedlog::node::Bug::IsrBeforeEpochStart],
            ..Default::default()
        },
    );
    let json = serde_json::to_string(&sc).expect("encode");
    assert!(json.contains(r#""node":"leader#0""#), "{json}");
    // The nemesis's own faults are in it: a per-link heal and a power loss of the last writes
    // (dropped or torn).
    assert!(json.contains(r#""fault":"heal-link""#), "{json}");
    assert!(
        json.contains(r#""lose":"drop-last""#) || json.contains(r#""lose":"tear-last""#),
        "{json}"
    );
    let back: Scenario = serde_json::from_str(&json).expect("decode");
    assert_eq!(back, sc);
    let (a, b) = (run(&sc, false), run(&back, false));
    assert_eq!(a.trace_hash, b.trace_hash);
    assert_eq!(a.problems, b.problems);
    assert!(
        !a.ok(),
        "seed 6 of the G nemesis fails (a broken invariant or a lost record)"
    );
}

/// A nemesis seed that once failed: a producer's InitProducerId timed out as the send phase
/// ended, it stopped asking (nothing left to send), and the probe's records waited for an id
/// for ever (`liveness`, `p1 has 1 records left`).
#[test]
fn a_producer_still_without_an_id_when_the_probe_hands_it_records_asks_again() {
    let sc = Scenario::from_seed(
        50124,
        &ScenarioOptions {
            nemesis: Some(sims::faults::nemesis::Nemesis::LoneLeaderPowerLoss),
            ..Default::default()
        },
    );
    let o = run(&sc, false);
    assert!(o.ok(), "{:?}", o.problems);
}

/// Seeds that once failed, with what they found; kept clean from then on. (A seed's scenario can
/// drift as the code changes; these are cheap extra runs, not the only test of each fix.)
const REGRESSIONS: &[(u64, &str)] = &[
    (
        137,
        "a member processed and committed a fetch answered after it had left its generation",
    ),
    (
        104,
        "a member's fetch-committed had no invoke event, so an answer delayed by a pause read as new",
    ),
    (
        3384,
        "a bit flip right after the controller's pause cut the last in-sync replica: offline",
    ),
    (
        188,
        "a follower looped on a divergence answer once compaction moved the leader's log start",
    ),
    // One cause: an ISR expansion refused for a follower's stale broker epoch waited for a change
    // of that partition, not for the push of the new registration; the ISR stayed the leader
    // alone under min.insync=2 and group commits were refused to the end.
    (752, "an ISR expansion refused once was never proposed again"),
    (2124, "an ISR expansion refused once was never proposed again"),
    (2688, "an ISR expansion refused once was never proposed again"),
    (4610, "an ISR expansion refused once was never proposed again"),
    (7366, "an ISR expansion refused once was never proposed again"),
    (
        17726,
        "a broker missed the controller's pushes (its connection broke) and kept old metadata",
    ),
    // Found once runs drew retention and unclean elections.
    (59, "a retry was appended twice after retention deleted its original"),
    (124, "a retry was appended twice after retention deleted its original"),
    (141, "a retry was appended twice after retention deleted its original"),
    (116, "a group whose log start passed its last record never committed again"),
    (12, "after an unclean election a follower's log lay past the leader's end for good"),
    (808, "a parked fetch answered after retention moved the log start skipped records"),
    (2594, "a parked fetch answered after retention moved the log start skipped records"),
    (445, "replicas that retention had cut at different log starts read as diverged"),
    // A bit flip on the only in-sync replica of a partition: offline by design, which the
    // random mixes now spare (and 502324's leader had kept its followers out of the ISR for
    // two seconds after its proposal went to a controller that was not active).
    (502324, "a bit flip on the only in-sync replica took a partition offline"),
    (505211, "a bit flip on the only in-sync replica took a partition offline"),
    // A follower restarted at the leader's log start never learnt the producer state of the
    // batches retention had deleted; once it led, a retry of one was appended again.
    (506841, "a retry was appended twice by a leader that had restarted at the log start"),
    (507639, "a retry was appended twice by a leader that had restarted at the log start"),
    // The controller committed an ISR expansion whose answer never came; the leader dropped it
    // at the timeout and its high watermark passed the follower (`isr-holds-hw`).
    (
        12970,
        "a leader's high watermark passed a follower the controller had taken into the ISR",
    ),
    // A fetch begun just after a member's seek back, answered before the commit it led to
    // landed: the group check took it for a regression.
    (481354214, "the offset-regression check ignored the commit a seek back led to"),
    // A producer's stalled old connection delivered stale requests, took the route for its
    // answers and closed; the answer to its new request was dropped.
    (47107643, "a closing client connection took the route for the client's answers with it"),
    // A follower 1 600 records behind at the heal, fetching 2 records per answer with fsyncs of
    // up to 52 ms, needed more than the liveness phase while it kept moving.
    (700009160, "a follower still catching up steadily was reported as not live"),
    // A producer's stalled old connection delivered two stale requests just after its new
    // connection carried one; the route followed them, and the answer to the new request went
    // on the old connection, which the producer no longer read.
    (362626071, "a late request on a client's older connection took its answers"),
    // A bit flip the random mix means to spare (the broker is the partition's last in-sync
    // replica) went ahead because the shrink to that broker alone was not yet committed.
    (812243438, "a flip on a broker about to be the only in-sync replica was not spared"),
    // A metadata request timed out on the broker that also led a partition: the producer closed
    // that connection but left its produce requests waiting 2 s for answers that could not come.
    (502590891, "a metadata timeout closed a connection whose produce requests kept waiting"),
    // A late registration of a broker's previous run, whose own registration a deposed
    // controller had made, replaced the live run's: the live one was ignored for good.
    (38620797, "a live broker's registration was ignored after a stale one replaced it"),
    // A registration request of a broker's first run, held 19 s by a partition and delivered
    // in the calm after that run died, was taken for a restart: the live run was fenced.
    (523007066, "a late registration of an earlier run fenced the live broker"),
    // A standby's NotController of an earlier quorum epoch, held back by a cut, sent a broker
    // from the active controller to a standby and back in the calm.
    (49394213, "a late redirect of an earlier epoch moved a broker off the active controller"),
];

#[test]
fn seeds_that_found_bugs_stay_clean() {
    for &(seed, what) in REGRESSIONS {
        let o = run(
            &Scenario::from_seed(seed, &ScenarioOptions::default()),
            false,
        );
        assert!(o.ok(), "seed {seed} ({what}): {:?}", o.problems);
    }
}
