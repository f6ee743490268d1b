//! Hand-made histories: one per anomaly, each showing the checker names exactly it, and valid
//! histories (seeks, indeterminate and failed sends, gaps, several clients) that must pass.

use super::*;
use proptest::prelude::*;

const T: &str = "t";

fn send(p: &str, key: &str, value: &str, partition: u32, offset: u64) -> Vec<Event> {
    vec![
        Event::send(p, EventType::Invoke, 0, T, Some(key), value),
        Event::send_ok(p, 0, T, Some(key), value, partition, offset),
    ]
}

fn send_ending(p: &str, key: &str, value: &str, kind: EventType) -> Vec<Event> {
    vec![
        Event::send(p, EventType::Invoke, 0, T, Some(key), value),
        Event::send(p, kind, 0, T, Some(key), value),
    ]
}

fn rec(partition: u32, offset: u64, key: &str, value: &str) -> PolledRecord {
    PolledRecord {
        topic: T.into(),
        partition,
        offset,
        key: Some(key.into()),
        value: value.into(),
        timestamp: None,
    }
}

fn poll(c: &str, records: Vec<PolledRecord>) -> Vec<Event> {
    vec![
        Event::poll(c, EventType::Invoke, 0, vec![]),
        Event::poll(c, EventType::Ok, 0, records),
    ]
}

fn names(events: Vec<Vec<Event>>) -> Vec<&'static str> {
    let events: Vec<Event> = events.into_iter().flatten().collect();
    let report = check(&events);
    let mut names: Vec<&str> = report.anomalies.iter().map(|a| a.name).collect();
    names.dedup();
    names
}

/// A producer writing a0..a2 to partition 0 and a consumer reading them all.
fn base() -> Vec<Vec<Event>> {
    vec![
        send("p0", "k", "a0", 0, 0),
        send("p0", "k", "a1", 0, 1),
        send("p0", "k", "a2", 0, 2),
    ]
}

#[test]
fn a_correct_history_passes() {
    let mut h = base();
    h.push(poll("c0", vec![rec(0, 0, "k", "a0"), rec(0, 1, "k", "a1")]));
    h.push(poll("c0", vec![rec(0, 2, "k", "a2")]));
    assert_eq!(names(h), Vec::<&str>::new());
}

#[test]
fn lost_write() {
    // c0 reads past offset 1 without ever being given a1 (which is also a poll-skip).
    let mut h = base();
    h.push(poll("c0", vec![rec(0, 0, "k", "a0")]));
    h.push(poll("c0", vec![rec(0, 2, "k", "a2")]));
    let found = names(h);
    assert!(found.contains(&"lost-write"), "{found:?}");
}

/// c0 reads a0, `moves` (a seek or a reset to offset 2), then reads a2: nobody reads a1.
fn jump_over_a1(moves: Event) -> Vec<Vec<Event>> {
    around_a1(vec![moves])
}

/// c0 reads a0, then `middle` (any events, possibly none), then reads a2.
fn around_a1(middle: Vec<Event>) -> Vec<Vec<Event>> {
    let mut h = base();
    h.push(poll("c0", vec![rec(0, 0, "k", "a0")]));
    h.push(middle);
    h.push(poll("c0", vec![rec(0, 2, "k", "a2")]));
    h
}

/// The anomalies of `around_a1(middle)` when c1 reads a1 (so a1 is not lost: only c0's poll
/// checks can object).
fn c0_around_a1_read_by_c1(middle: Vec<Event>) -> Vec<&'static str> {
    let mut h = around_a1(middle);
    h.push(poll("c1", vec![rec(0, 1, "k", "a1")]));
    names(h)
}

#[test]
fn a_forward_seek_is_no_excuse_for_a_lost_write() {
    // Jumping over a1 does not delete it; reading past it shows it lost. (A forward seek once
    // excused it.)
    let found = names(jump_over_a1(Event::seek("c0", 0, T, 0, 2)));
    assert_eq!(found, vec!["lost-write"]);
}

#[test]
fn a_record_below_an_observed_log_start_is_not_lost() {
    // c0's fetch at 1 was out of range: the log starts at 2, retention deleted a1.
    assert_eq!(
        names(jump_over_a1(Event::reset("c0", 0, T, 0, 2))),
        Vec::<&str>::new()
    );
    // A log start at 1 deleted nothing at 1: a1 was there, and nobody read it.
    let found = names(jump_over_a1(Event::reset("c0", 0, T, 0, 1)));
    assert!(found.contains(&"lost-write"), "{found:?}");
    // Another partition's log start excuses nothing here.
    let found = names(jump_over_a1(Event::reset("c0", 0, T, 1, 2)));
    assert!(found.contains(&"lost-write"), "{found:?}");
}

#[test]
fn a_log_start_observed_before_the_send_excuses_nothing() {
    // c1 saw the log start at 5 before p0 even sent a1: a record acknowledged below a log start
    // already in place was not deleted by it.
    let h = vec![
        vec![Event::reset("c1", 10, T, 0, 5)],
        vec![Event::send("p0", EventType::Invoke, 20, T, Some("k"), "a1")],
        vec![Event::send_ok("p0", 30, T, Some("k"), "a1", 0, 1)],
        vec![Event::reset("c2", 40, T, 0, 5)],
    ];
    // c2's observation, after the send, excuses it; without it, a1 is unseen.
    assert_eq!(names(h.clone()), Vec::<&str>::new());
    assert_eq!(names(h[..3].to_vec()), vec!["unseen"]);
}

#[test]
fn a_resume_past_a_record_is_no_excuse_for_its_loss_either() {
    // A group member resumes at the committed offset 2 and reads a2; nobody ever read a1.
    let mut h = base();
    h.push(poll("c0", vec![rec(0, 0, "k", "a0")]));
    h.push(vec![Event::fetch_committed(
        "m0",
        EventType::Ok,
        0,
        "g",
        T,
        0,
        Some(2),
    )]);
    h.push(poll("m0", vec![rec(0, 2, "k", "a2")]));
    let found = names(h);
    assert!(found.contains(&"lost-write"), "{found:?}");
}

#[test]
fn unseen_is_excused_only_by_an_observed_log_start() {
    let mut h = base();
    h.push(poll("c0", vec![rec(0, 0, "k", "a0"), rec(0, 1, "k", "a1")]));
    h.push(vec![Event::seek("c1", 0, T, 0, 3)]);
    assert_eq!(names(h.clone()), vec!["unseen"]);
    h.push(vec![Event::reset("c1", 0, T, 0, 3)]);
    assert_eq!(names(h), Vec::<&str>::new());
}

#[test]
fn unseen() {
    let mut h = base();
    h.push(poll("c0", vec![rec(0, 0, "k", "a0"), rec(0, 1, "k", "a1")]));
    assert_eq!(names(h), vec!["unseen"]);
}

#[test]
fn inconsistent_offsets() {
    let mut h = base();
    h.push(poll(
        "c0",
        vec![
            rec(0, 0, "k", "a0"),
            rec(0, 1, "k", "a1"),
            rec(0, 2, "k", "a2"),
        ],
    ));
    // Another consumer reads a different record at offset 1: a log rewritten under it.
    h.push(send("p1", "j", "b0", 0, 3));
    h.push(poll("c1", vec![rec(0, 0, "k", "a0"), rec(0, 1, "j", "b0")]));
    let found = names(h);
    assert!(found.contains(&"inconsistent-offsets"), "{found:?}");
    assert!(
        found.contains(&"duplicate"),
        "b0 is also at two offsets: {found:?}"
    );
}

#[test]
fn duplicate() {
    let mut h = base();
    h.push(poll(
        "c0",
        vec![
            rec(0, 0, "k", "a0"),
            rec(0, 1, "k", "a1"),
            rec(0, 2, "k", "a2"),
            rec(0, 3, "k", "a1"),
        ],
    ));
    assert_eq!(names(h), vec!["duplicate"]);
}

#[test]
fn nonmonotonic_poll() {
    let mut h = base();
    h.push(poll(
        "c0",
        vec![
            rec(0, 0, "k", "a0"),
            rec(0, 1, "k", "a1"),
            rec(0, 2, "k", "a2"),
        ],
    ));
    h.push(poll("c0", vec![rec(0, 1, "k", "a1")]));
    assert_eq!(names(h), vec!["nonmonotonic-poll"]);
}

#[test]
fn poll_skip() {
    let mut h = base();
    h.push(poll("c0", vec![rec(0, 0, "k", "a0")]));
    h.push(poll("c0", vec![rec(0, 2, "k", "a2")]));
    h.push(poll(
        "c1",
        vec![
            rec(0, 0, "k", "a0"),
            rec(0, 1, "k", "a1"),
            rec(0, 2, "k", "a2"),
        ],
    ));
    assert_eq!(names(h), vec!["poll-skip"]);
}

#[test]
fn nonmonotonic_send() {
    let h = vec![
        send("p0", "k", "a0", 0, 5),
        send("p0", "j", "a1", 0, 4),
        poll("c0", vec![rec(0, 4, "j", "a1"), rec(0, 5, "k", "a0")]),
    ];
    assert_eq!(names(h), vec!["nonmonotonic-send"]);
}

/// Equal counts as going back: a producer's two sends of one key acknowledged at the same
/// offset are out of order in the partition and for the key (whatever else the history says
/// about the offset holding two values).
#[test]
fn a_send_acknowledged_at_its_predecessors_offset_is_out_of_order() {
    let h = vec![
        send("p0", "k", "a0", 0, 5),
        send("p0", "k", "a1", 0, 5),
        poll("c0", vec![rec(0, 5, "k", "a0")]),
    ];
    let found = names(h);
    for anomaly in ["nonmonotonic-send", "per-key-order"] {
        assert!(found.contains(&anomaly), "{anomaly} not in {found:?}");
    }
}

#[test]
fn per_key_partition() {
    let h = vec![
        send("p0", "k", "a0", 0, 0),
        send("p0", "k", "a1", 1, 0),
        poll("c0", vec![rec(0, 0, "k", "a0"), rec(1, 0, "k", "a1")]),
    ];
    assert_eq!(names(h), vec!["per-key-partition"]);
}

#[test]
fn per_key_order() {
    // Two processes' sends interleave; p0's own k-records are acknowledged out of send order
    // (its second send, invoked later, got the lower offset). Acknowledgement order per
    // partition is still increasing, so only per-key-order is at fault.
    let h = vec![
        vec![Event::send("p0", EventType::Invoke, 0, T, Some("k"), "a0")],
        vec![Event::send("p1", EventType::Invoke, 0, T, Some("k"), "a1")],
        vec![Event::send_ok("p0", 0, T, Some("k"), "a0", 0, 1)],
        vec![Event::send_ok("p1", 0, T, Some("k"), "a1", 0, 0)],
        vec![Event::send("p0", EventType::Invoke, 0, T, Some("k"), "a2")],
        vec![Event::send_ok("p0", 0, T, Some("k"), "a2", 0, 0)],
        poll("c0", vec![rec(0, 0, "k", "a1"), rec(0, 1, "k", "a0")]),
    ];
    let found = names(h);
    assert!(found.contains(&"per-key-order"), "{found:?}");
}

/// Per-key order is judged in send order, not acknowledgement order: p0 sends a0 then a1 (key
/// k, both in flight), a1 is acknowledged first, at 5, and a0 then, at 6. The acknowledgements
/// follow the partition's order, but the key's records landed against the order they were sent.
#[test]
fn per_key_order_follows_send_order_not_acknowledgement_order() {
    let h = vec![
        vec![Event::send("p0", EventType::Invoke, 0, T, Some("k"), "a0")],
        vec![Event::send("p0", EventType::Invoke, 0, T, Some("k"), "a1")],
        vec![Event::send_ok("p0", 0, T, Some("k"), "a1", 0, 5)],
        vec![Event::send_ok("p0", 0, T, Some("k"), "a0", 0, 6)],
        poll("c0", vec![rec(0, 5, "k", "a1"), rec(0, 6, "k", "a0")]),
    ];
    assert_eq!(names(h), vec!["per-key-order"]);
}

#[test]
fn aborted_read() {
    let mut h = base();
    h.push(send_ending("p1", "k", "x", EventType::Fail));
    h.push(poll(
        "c0",
        vec![
            rec(0, 0, "k", "a0"),
            rec(0, 1, "k", "a1"),
            rec(0, 2, "k", "a2"),
            rec(0, 3, "k", "x"),
        ],
    ));
    assert_eq!(names(h), vec!["aborted-read"]);
}

#[test]
fn valid_histories_with_seeks_unknown_and_failed_sends_and_gaps_pass() {
    let h = vec![
        send("p0", "k", "a0", 0, 0),
        send_ending("p0", "k", "lost-in-flight", EventType::Info),
        send_ending("p0", "k", "landed-anyway", EventType::Info),
        send_ending("p0", "k", "refused", EventType::Fail),
        send("p0", "k", "a3", 0, 2),
        send("p1", "j", "b0", 1, 0),
        // An invoke never completed: unknown, and it did land.
        vec![Event::send("p1", EventType::Invoke, 0, T, Some("j"), "b1")],
        poll(
            "c0",
            vec![rec(0, 0, "k", "a0"), rec(0, 1, "k", "landed-anyway")],
        ),
        poll(
            "c0",
            vec![
                rec(0, 2, "k", "a3"),
                rec(1, 0, "j", "b0"),
                rec(1, 1, "j", "b1"),
            ],
        ),
        // Backwards seek, then re-read.
        vec![Event::seek("c0", 0, T, 0, 1)],
        poll(
            "c0",
            vec![rec(0, 1, "k", "landed-anyway"), rec(0, 2, "k", "a3")],
        ),
        // A consumer starting after retention moved the log start: a seek, then offset 2.
        vec![Event::seek("c1", 0, T, 0, 2)],
        poll("c1", vec![rec(0, 2, "k", "a3")]),
        // Forward seek over records is not a skip.
        vec![Event::seek("c2", 0, T, 0, 0)],
        poll("c2", vec![rec(0, 0, "k", "a0")]),
        vec![Event::seek("c2", 0, T, 0, 2)],
        poll("c2", vec![rec(0, 2, "k", "a3")]),
    ];
    let events: Vec<Event> = h.into_iter().flatten().collect();
    let report = check(&events);
    assert!(report.is_ok(), "{}", report.render());
    assert_eq!(report.stats.sends_unknown, 3);
    assert_eq!(report.stats.sends_failed, 1);
    assert!(report.result_line().starts_with("RESULT ok events="));
}

#[test]
fn one_anomaly_per_subject_with_totals() {
    let mut h = base();
    h.push(send("p0", "k", "a3", 0, 3));
    h.push(poll("c0", vec![rec(0, 3, "k", "a3")]));
    // a0, a1, a2 all lost: three subjects, one line each.
    let events: Vec<Event> = h.into_iter().flatten().collect();
    let report = check(&events);
    assert_eq!(report.counts().get("lost-write"), Some(&3));
    assert_eq!(
        report.result_line(),
        "RESULT violation anomalies=3 kinds=lost-write:3"
    );
}

/// An ideal log: sends append in order; some are acknowledged, some end unknown (landed or
/// not), some fail (never land). Consumers poll and seek over what landed.
fn ideal_history(plan: &[(u8, u8)], polls: &[(u8, u8)]) -> Vec<Event> {
    let mut events = Vec::new();
    let mut log: Vec<Vec<String>> = vec![Vec::new(), Vec::new()];
    for (i, &(outcome, part)) in plan.iter().enumerate() {
        let p = u32::from(part % 2);
        let value = format!("v{i}");
        let key = format!("k{p}");
        events.push(Event::send(
            "p0",
            EventType::Invoke,
            0,
            T,
            Some(&key),
            &value,
        ));
        match outcome % 4 {
            0 | 1 => {
                log[p as usize].push(value.clone());
                let offset = log[p as usize].len() as u64 - 1;
                events.push(Event::send_ok("p0", 0, T, Some(&key), &value, p, offset));
            }
            2 => {
                if i % 2 == 0 {
                    log[p as usize].push(value.clone());
                }
                events.push(Event::send("p0", EventType::Info, 0, T, Some(&key), &value));
            }
            _ => events.push(Event::send("p0", EventType::Fail, 0, T, Some(&key), &value)),
        }
    }
    for (c, (seek_to, part)) in polls.iter().enumerate() {
        let p = u32::from(part % 2);
        let entries = &log[p as usize];
        let from = usize::from(*seek_to) % (entries.len() + 1);
        let name = format!("c{c}");
        events.push(Event::seek(&name, 0, T, p, from as u64));
        let records = entries[from..]
            .iter()
            .enumerate()
            .map(|(i, v)| rec(p, (from + i) as u64, &format!("k{p}"), v))
            .collect();
        events.push(Event::poll(&name, EventType::Ok, 0, records));
    }
    // Final reads of everything.
    for (p, entries) in log.iter().enumerate() {
        let records = entries
            .iter()
            .enumerate()
            .map(|(o, v)| rec(p as u32, o as u64, &format!("k{p}"), v))
            .collect();
        events.push(Event::poll("final", EventType::Ok, 0, records));
    }
    events
}

proptest! {
    #[test]
    fn ideal_logs_pass_and_a_changed_read_is_caught(
        plan in proptest::collection::vec((any::<u8>(), any::<u8>()), 1..30),
        polls in proptest::collection::vec((any::<u8>(), any::<u8>()), 0..5),
    ) {
        let events = ideal_history(&plan, &polls);
        let report = check(&events);
        prop_assert!(report.is_ok(), "{}", report.render());
        // Change one acknowledged record in the final reads: its offset now has two values.
        let acked: std::collections::BTreeSet<String> = events
            .iter()
            .filter(|e| e.kind == EventType::Ok && e.f == Op::Send)
            .filter_map(|e| e.value.clone())
            .collect();
        let mut bad = events.clone();
        let target = bad.iter_mut().rev().filter(|e| e.process == "final").find_map(|e| {
            e.records.as_mut()?.iter_mut().find(|r| acked.contains(&r.value))
        });
        if let Some(r) = target {
            r.value = "tampered".into();
            let report = check(&bad);
            prop_assert!(
                report.anomalies.iter().any(|a| a.name == "inconsistent-offsets"),
                "tampering went unnoticed: {}", report.render()
            );
        }
    }
}

// Consumer groups. Group histories are timed (real-time order matters to `offset-regression`):
// each helper's invoke is at `at`, its completion at `at + 1`. All on partition 0 of `t`.

const G: &str = "g";

fn commit(c: &str, at: u64, offset: u64, kind: EventType) -> Vec<Event> {
    vec![
        Event::commit(c, EventType::Invoke, at, G, T, 0, offset),
        Event::commit(c, kind, at + 1, G, T, 0, offset),
    ]
}

fn fetch(c: &str, at: u64, committed: Option<u64>) -> Vec<Event> {
    vec![
        Event::fetch_committed(c, EventType::Invoke, at, G, T, 0, None),
        Event::fetch_committed(c, EventType::Ok, at + 1, G, T, 0, committed),
    ]
}

/// A group member's poll returning (and processing) `offsets` of the five-record log.
fn gpoll(c: &str, at: u64, offsets: std::ops::Range<u64>) -> Vec<Event> {
    gpoll_ending(c, at, offsets, EventType::Ok)
}

fn gpoll_ending(c: &str, at: u64, offsets: std::ops::Range<u64>, kind: EventType) -> Vec<Event> {
    let records = offsets.map(|o| rec(0, o, "k", &format!("a{o}"))).collect();
    vec![
        Event::poll(c, EventType::Invoke, at, vec![]).in_group(G),
        Event::poll(c, kind, at + 1, records).in_group(G),
    ]
}

fn gseek(c: &str, at: u64, offset: u64) -> Vec<Event> {
    vec![Event::seek(c, at, T, 0, offset).in_group(G)]
}

/// a0..a4 at offsets 0..4 of partition 0, all read by a reader outside the group (so the
/// single-consumer checks stay quiet and only the group checks speak).
fn five_records() -> Vec<Vec<Event>> {
    let mut h = base();
    h.push(send("p0", "k", "a3", 0, 3));
    h.push(send("p0", "k", "a4", 0, 4));
    h.push(poll(
        "reader",
        (0..5).map(|o| rec(0, o, "k", &format!("a{o}"))).collect(),
    ));
    h
}

fn group_report(parts: Vec<Vec<Event>>) -> Report {
    let mut h = five_records();
    h.extend(parts);
    let events: Vec<Event> = h.into_iter().flatten().collect();
    check(&events)
}

fn group_names(parts: Vec<Vec<Event>>) -> Vec<&'static str> {
    let mut h = five_records();
    h.extend(parts);
    names(h)
}

fn subjects(report: &Report, name: &str) -> Vec<String> {
    report
        .anomalies
        .iter()
        .filter(|a| a.name == name)
        .map(|a| a.subject.clone())
        .collect()
}

#[test]
fn at_least_once() {
    // c1's poll of 0..2 reached the client but c1 crashed before processing it (the poll never
    // ended ok), yet its commit of 3 went through; c2 takes over at 3.
    let report = group_report(vec![
        fetch("c1", 10, None),
        gseek("c1", 12, 0),
        gpoll_ending("c1", 20, 0..3, EventType::Info),
        commit("c1", 30, 3, EventType::Ok),
        fetch("c2", 40, Some(3)),
        gpoll("c2", 50, 3..5),
        commit("c2", 60, 5, EventType::Ok),
    ]);
    let names: Vec<&str> = report.anomalies.iter().map(|a| a.name).collect();
    assert_eq!(names, vec!["at-least-once"; 3], "{}", report.render());
    assert_eq!(
        subjects(&report, "at-least-once"),
        vec!["g t-0@0", "g t-0@1", "g t-0@2"]
    );
    let detail = &report.anomalies[0].detail;
    assert!(
        detail.contains("final committed offset 5") && detail.contains("by c2"),
        "{detail}"
    );
}

#[test]
fn a_rewind_does_not_excuse_records_nobody_processed() {
    // As in `at_least_once`, but c2 later seeks back to re-read 3: a backward seek skips
    // nothing, so 0..2 are still reported. (It once excused everything below the seek target.)
    let report = group_report(vec![
        fetch("c1", 10, None),
        gseek("c1", 12, 0),
        gpoll_ending("c1", 20, 0..3, EventType::Info),
        commit("c1", 30, 3, EventType::Ok),
        fetch("c2", 40, Some(3)),
        gpoll("c2", 50, 3..5),
        gseek("c2", 55, 3),
        gpoll("c2", 56, 3..5),
        commit("c2", 60, 5, EventType::Ok),
    ]);
    assert_eq!(
        subjects(&report, "at-least-once"),
        vec!["g t-0@0", "g t-0@1", "g t-0@2"],
        "{}",
        report.render()
    );
}

/// c1 processes 0..1 and stalls; the group moves on without it: c2 resets to 0, processes
/// everything and commits 5. Then c1's late commit of 2 ends `ending`, and c3 fetches.
fn fenced_member(ending: EventType, fetched: u64) -> Vec<Vec<Event>> {
    vec![
        fetch("c1", 10, None),
        gseek("c1", 12, 0),
        gpoll("c1", 20, 0..2),
        fetch("c2", 30, None),
        gseek("c2", 32, 0),
        gpoll("c2", 40, 0..5),
        commit("c2", 50, 5, EventType::Ok),
        commit("c1", 60, 2, ending),
        fetch("c3", 70, Some(fetched)),
    ]
}

#[test]
fn offset_regression() {
    // The broker accepted the fenced member's stale commit: the committed offset went 5 -> 2.
    // (The resets to 0 were before the commit of 5, so they do not excuse it.)
    let report = group_report(fenced_member(EventType::Ok, 2));
    assert_eq!(
        report.anomalies.iter().map(|a| a.name).collect::<Vec<_>>(),
        vec!["offset-regression"],
        "{}",
        report.render()
    );
    let a = &report.anomalies[0];
    assert_eq!(a.subject, "g t-0");
    assert!(
        a.detail.contains("commit of 2 by c1") && a.detail.contains("commit of 5 by c2"),
        "{a}"
    );
    // Only the fetch shows it when the late commit's outcome is unknown.
    let report = group_report(fenced_member(EventType::Info, 2));
    assert_eq!(subjects(&report, "offset-regression"), vec!["g t-0"]);
    assert!(
        report.anomalies[0]
            .detail
            .contains("fetch-committed returning 2 by c3"),
        "{}",
        report.render()
    );
}

/// c1 reads 0..5 and commits 5, then rewinds to 2 and commits 2 (an application resetting
/// the group back; the commit ends `rewind_commit`, at 51 if it completes); then `after`.
fn rewound_commit(rewind_commit: EventType, after: Vec<Vec<Event>>) -> Vec<Vec<Event>> {
    let mut h = vec![
        fetch("c1", 10, None),
        gseek("c1", 12, 0),
        gpoll("c1", 20, 0..5),
        commit("c1", 30, 5, EventType::Ok),
        gseek("c1", 40, 2),
        commit("c1", 50, 2, rewind_commit),
    ];
    h.extend(after);
    h
}

/// A commit of a lower offset is the group's offset from then on: a fetch after it that
/// returns the higher one it overwrote read a stale value (a coordinator that rebuilt its
/// state keeping the highest offset, not the last). The regression check cannot see this:
/// the offset did not move back.
#[test]
fn a_fetch_of_an_overwritten_offset_is_stale() {
    let fetched = |v| vec![fetch("c2", 60, Some(v))];
    let report = group_report(rewound_commit(EventType::Ok, fetched(5)));
    assert_eq!(
        report.anomalies.iter().map(|a| a.name).collect::<Vec<_>>(),
        vec!["stale-offset"],
        "{}",
        report.render()
    );
    let a = &report.anomalies[0];
    assert_eq!(a.subject, "g t-0");
    assert!(
        a.detail.starts_with("fetch-committed returning 5 by c2")
            && a.detail
                .contains("by the commit of 2 by c1 (invoked 50 ns, ok 51 ns)"),
        "{a}"
    );
    // The last write read back, or a rewind whose outcome is unknown (it may not have
    // landed), or one that failed: no anomaly.
    assert!(group_names(rewound_commit(EventType::Ok, fetched(2))).is_empty());
    assert!(group_names(rewound_commit(EventType::Info, fetched(5))).is_empty());
    assert!(group_names(rewound_commit(EventType::Fail, fetched(5))).is_empty());
}

/// Concurrency never makes a stale read: a fetch that began before the overwriting commit
/// completed may return either value, and a later commit of the same offset again makes it
/// current.
#[test]
fn a_fetch_concurrent_with_the_overwrite_or_after_a_rewrite_is_not_stale() {
    // Invoked at 51, as the commit of 2 completed: not after it.
    let concurrent = vec![fetch("c2", 51, Some(5))];
    assert!(group_names(rewound_commit(EventType::Ok, concurrent)).is_empty());
    let rewritten = vec![
        gpoll("c1", 55, 2..5),
        commit("c1", 60, 5, EventType::Ok),
        fetch("c2", 70, Some(5)),
    ];
    assert!(group_names(rewound_commit(EventType::Ok, rewritten)).is_empty());
}

/// c1 commits 2 (`first` ending, invoked at `first_at`), commits 2 again and then 3, both `ok`;
/// c2 then fetches 2.
fn delayed_commit(first: EventType, first_at: u64) -> Vec<Vec<Event>> {
    vec![
        fetch("c1", 10, None),
        gseek("c1", 12, 0),
        gpoll("c1", 20, 0..3),
        commit("c1", first_at, 2, first),
        commit("c1", 40, 2, EventType::Ok),
        commit("c1", 50, 3, EventType::Ok),
        fetch("c2", 60, Some(2)),
    ]
}

/// A commit of unknown outcome may land at any time after its invoke: one invoked before the
/// higher commit completed (a delayed request of the same member, which the coordinator applies
/// when it arrives, as Kafka's does) may land after it, so the group's offset may read lower
/// again. One invoked after it is the member moving the offset back itself: a regression.
#[test]
fn a_delayed_commit_of_unknown_outcome_may_take_the_offset_back() {
    assert!(group_names(delayed_commit(EventType::Info, 30)).is_empty());
    // Failed, it did not happen: the `ok` commit of 2 before the commit of 3 cannot explain it
    // (and the fetch read an overwritten value).
    assert_eq!(
        group_names(delayed_commit(EventType::Fail, 30)),
        vec!["offset-regression", "stale-offset"]
    );
    // Invoked after the commit of 3 completed, with no seek back: a regression if it lands.
    let mut late = delayed_commit(EventType::Ok, 30);
    late[3] = commit("c1", 55, 2, EventType::Info);
    assert_eq!(group_names(late), vec!["offset-regression"]);
    // An `ok` commit of 2 concurrent with the commit of 3 may have landed after it too.
    let mut concurrent = delayed_commit(EventType::Ok, 30);
    concurrent[3] = vec![
        Event::commit("c1", EventType::Invoke, 49, G, T, 0, 2),
        Event::commit("c1", EventType::Ok, 52, G, T, 0, 2),
    ];
    assert!(group_names(concurrent).is_empty());
}

/// A delayed commit explains what a fetch reads, not what a member writes: a member that
/// commits the lower offset again after the higher one, with no seek, goes back itself. One
/// that first fetched the lower offset resumed there, and may commit it.
#[test]
fn a_delayed_commit_excuses_reads_and_the_commits_of_a_member_that_resumed_from_them() {
    let mut own = delayed_commit(EventType::Info, 30);
    own[6] = commit("c1", 60, 2, EventType::Ok);
    assert_eq!(group_names(own), vec!["offset-regression"]);
    let mut resumed = delayed_commit(EventType::Info, 30);
    resumed.push(commit("c2", 70, 2, EventType::Ok));
    assert!(group_names(resumed).is_empty());
    // Without the fetch, c2's commit of 2 after the commit of 3 is a regression.
    let mut unfetched = delayed_commit(EventType::Info, 30);
    unfetched[6] = commit("c2", 70, 2, EventType::Ok);
    assert_eq!(group_names(unfetched), vec!["offset-regression"]);
    // Another member's delayed commit is a stale member's, which the coordinator must fence.
    let mut other = delayed_commit(EventType::Info, 30);
    other[3] = commit("c3", 30, 2, EventType::Info);
    assert_eq!(group_names(other), vec!["offset-regression"]);
}

#[test]
fn a_vanished_commit_is_an_offset_regression() {
    let h = vec![
        fetch("c1", 10, None),
        gseek("c1", 12, 0),
        gpoll("c1", 20, 0..3),
        commit("c1", 30, 3, EventType::Ok),
        fetch("c2", 40, None),
    ];
    assert_eq!(group_names(h), vec!["offset-regression"]);
}

#[test]
fn a_refused_stale_commit_passes() {
    let report = group_report(fenced_member(EventType::Fail, 5));
    assert!(report.is_ok(), "{}", report.render());
    assert_eq!(report.stats.commits_ok, 1);
    assert_eq!(report.stats.commits_failed, 1);
    assert_eq!(report.stats.fetches_committed, 3);
}

#[test]
fn a_commit_of_unknown_outcome_may_have_landed_or_not() {
    for fetched in [3, 5] {
        let report = group_report(vec![
            fetch("c1", 10, None),
            gseek("c1", 12, 0),
            gpoll("c1", 20, 0..3),
            commit("c1", 30, 3, EventType::Ok),
            gpoll("c1", 40, 3..5),
            commit("c1", 50, 5, EventType::Info),
            fetch("c2", 60, Some(fetched)),
        ]);
        assert!(report.is_ok(), "fetched {fetched}: {}", report.render());
        assert_eq!(report.stats.commits_unknown, 1);
    }
}

/// c1 processes everything and commits 5, then `seek` (if any) happens, then it reprocesses
/// offset 2 and commits 3, which c2 then fetches.
fn rewind(seek: Vec<Event>) -> Vec<Vec<Event>> {
    vec![
        fetch("c1", 10, None),
        gseek("c1", 12, 0),
        gpoll("c1", 20, 0..5),
        commit("c1", 30, 5, EventType::Ok),
        seek,
        gpoll("c1", 50, 2..3),
        commit("c1", 60, 3, EventType::Ok),
        fetch("c2", 70, Some(3)),
    ]
}

#[test]
fn a_backward_seek_then_a_lower_commit_passes() {
    assert_eq!(group_names(rewind(gseek("c1", 40, 2))), Vec::<&str>::new());
    // Without the seek, or with one by a process outside the group, the same commits regress.
    let found = group_names(rewind(vec![]));
    assert!(found.contains(&"offset-regression"), "{found:?}");
    let found = group_names(rewind(vec![Event::seek("reader", 40, T, 0, 2)]));
    assert!(found.contains(&"offset-regression"), "{found:?}");
    // A seek to above the lower commit does not explain it either.
    let found = group_names(rewind(gseek("c1", 40, 4)));
    assert!(found.contains(&"offset-regression"), "{found:?}");
}

/// c1 owns the partition, processes 0..2 (`first_poll` its ending), commits 3 and is revoked;
/// c2 resumes from the committed offset, processes 3..4 and commits 5; c1 fetches it later.
fn handover(first_poll: EventType) -> Vec<Vec<Event>> {
    vec![
        fetch("c1", 10, None),
        gseek("c1", 12, 0),
        gpoll_ending("c1", 20, 0..3, first_poll),
        commit("c1", 30, 3, EventType::Ok),
        fetch("c2", 40, Some(3)),
        gpoll("c2", 50, 3..5),
        commit("c2", 60, 5, EventType::Ok),
        fetch("c1", 70, Some(5)),
    ]
}

#[test]
fn a_rebalance_handing_a_partition_over_passes() {
    let report = group_report(handover(EventType::Ok));
    assert!(report.is_ok(), "{}", report.render());
    assert_eq!(
        group_names(handover(EventType::Info)),
        vec!["at-least-once"]
    );
}

#[test]
fn a_group_with_no_commits_passes() {
    let h = vec![
        fetch("c1", 10, None),
        gseek("c1", 12, 0),
        gpoll("c1", 20, 0..3),
        fetch("c2", 30, None),
    ];
    assert_eq!(group_names(h), Vec::<&str>::new());
}

#[test]
fn a_forward_seek_excuses_the_records_it_skips() {
    // auto.offset.reset=latest: c1 starts at 3 and never reads 0..2.
    let group = |reset: Vec<Event>| {
        vec![
            fetch("c1", 10, None),
            reset,
            gpoll("c1", 20, 3..5),
            commit("c1", 30, 5, EventType::Ok),
        ]
    };
    assert_eq!(group_names(group(gseek("c1", 12, 3))), Vec::<&str>::new());
    let report = group_report(group(vec![]));
    assert_eq!(
        subjects(&report, "at-least-once"),
        vec!["g t-0@0", "g t-0@1", "g t-0@2"]
    );
}

#[test]
fn only_real_time_order_makes_a_regression() {
    // c2's commit of 3 was invoked before c1's commit of 5 completed: the broker may have
    // applied them in either order. Invoked after it, it is a regression.
    let group = |c2_invoked: u64| {
        vec![
            fetch("c1", 10, None),
            gseek("c1", 12, 0),
            gpoll("c1", 14, 0..5),
            vec![Event::commit("c1", EventType::Invoke, 20, G, T, 0, 5)],
            vec![Event::commit(
                "c2",
                EventType::Invoke,
                c2_invoked,
                G,
                T,
                0,
                3,
            )],
            vec![Event::commit("c1", EventType::Ok, 30, G, T, 0, 5)],
            vec![Event::commit("c2", EventType::Ok, 40, G, T, 0, 3)],
        ]
    };
    assert_eq!(group_names(group(25)), Vec::<&str>::new());
    assert_eq!(group_names(group(31)), vec!["offset-regression"]);
}

#[test]
fn a_resume_at_the_committed_offset_repositions_but_reading_below_it_is_still_caught() {
    // c1 read 0..2, the partition went to c2 and came back: c1 resumes at the committed 4.
    // Reading 4 after 1 is no poll-skip; reading 2 after resuming at 4 is a nonmonotonic poll.
    let ok = group_names(vec![
        gpoll("c1", 10, 0..2),
        fetch("c1", 20, Some(4)),
        gpoll("c1", 30, 4..5),
    ]);
    assert!(!ok.contains(&"poll-skip"), "{ok:?}");
    let bad = group_names(vec![
        gpoll("c1", 10, 0..2),
        fetch("c1", 20, Some(4)),
        gpoll("c1", 30, 2..3),
    ]);
    assert!(bad.contains(&"nonmonotonic-poll"), "{bad:?}");
}

// Operations that ended `info` may have happened: they may excuse, never accuse, in every check.

fn info(e: Event) -> Vec<Event> {
    vec![e.ending(EventType::Info)]
}

#[test]
fn an_info_seek_may_excuse_a_poll_skip_or_a_rewind() {
    // c0 reads a0, maybe seeks to 2, reads a2: a skip only if the seek did not happen.
    let skip = c0_around_a1_read_by_c1;
    assert_eq!(
        skip(info(Event::seek("c0", 0, T, 0, 2))),
        Vec::<&str>::new()
    );
    assert_eq!(skip(vec![]), vec!["poll-skip"]);
    // Rereading a1 after maybe seeking back to it is no nonmonotonic poll.
    let reread = |seek: Vec<Event>| {
        let mut h = base();
        h.push(poll("c0", vec![rec(0, 0, "k", "a0"), rec(0, 1, "k", "a1")]));
        h.push(poll("c0", vec![rec(0, 2, "k", "a2")]));
        h.push(seek);
        h.push(poll("c0", vec![rec(0, 1, "k", "a1")]));
        names(h)
    };
    assert_eq!(
        reread(info(Event::seek("c0", 0, T, 0, 1))),
        Vec::<&str>::new()
    );
    assert_eq!(reread(vec![]), vec!["nonmonotonic-poll"]);
}

#[test]
fn an_info_seek_never_accuses() {
    // c0 reads a0, a1, maybe seeks to 3 (past the log end), then reads a2: had the seek
    // happened, a2 would be below it; it may not have.
    let h = |seek: Event| {
        let mut h = base();
        h.push(poll("c0", vec![rec(0, 0, "k", "a0"), rec(0, 1, "k", "a1")]));
        h.push(vec![seek]);
        h.push(poll("c0", vec![rec(0, 2, "k", "a2")]));
        names(h)
    };
    assert_eq!(
        h(Event::seek("c0", 0, T, 0, 3).ending(EventType::Info)),
        Vec::<&str>::new()
    );
    assert_eq!(h(Event::seek("c0", 0, T, 0, 3)), vec!["nonmonotonic-poll"]);
    // Nor one back to 0 (had it happened, a1 right after it would skip a0): maybe c0 stayed.
    let mut jump = base();
    jump.push(poll("c0", vec![rec(0, 0, "k", "a0")]));
    jump.push(info(Event::seek("c0", 0, T, 0, 0)));
    jump.push(poll("c0", vec![rec(0, 1, "k", "a1"), rec(0, 2, "k", "a2")]));
    assert_eq!(names(jump), Vec::<&str>::new());
}

#[test]
fn an_info_reset_may_excuse_a_record_below_it() {
    let h = jump_over_a1(Event::reset("c0", 0, T, 0, 2).ending(EventType::Info));
    assert_eq!(names(h), Vec::<&str>::new());
    // A failed one did not happen: nobody learned the log start.
    let h = jump_over_a1(Event::reset("c0", 0, T, 0, 2).ending(EventType::Fail));
    assert!(names(h).contains(&"lost-write"));
}

#[test]
fn records_an_info_poll_returned_may_have_been_read_but_accuse_nothing() {
    let ending = |kind: EventType| {
        vec![
            Event::poll("c0", EventType::Invoke, 0, vec![]),
            Event {
                records: Some(vec![rec(0, 0, "k", "a0"), rec(0, 2, "k", "a2")]),
                ..Event::poll("c0", kind, 0, vec![])
            },
        ]
    };
    // a1 is acknowledged at 1 and never read; a2 only by the info poll: unseen (nothing above
    // a1 was surely read), not lost; a2 itself possibly read.
    let mut h = base();
    h.push(ending(EventType::Info));
    assert_eq!(names(h), vec!["unseen"]);
    let mut h = base();
    h.push(ending(EventType::Ok));
    let found = names(h);
    assert!(found.contains(&"lost-write"), "{found:?}");
    assert!(found.contains(&"poll-skip"), "{found:?}");
    // Reading a failed send, or another value at an acknowledged offset: only `ok` polls count.
    let mut h = base();
    h.push(send_ending("p1", "k", "x", EventType::Fail));
    h.push(poll(
        "c1",
        vec![
            rec(0, 0, "k", "a0"),
            rec(0, 1, "k", "a1"),
            rec(0, 2, "k", "a2"),
        ],
    ));
    let odd = |kind: EventType| {
        vec![Event {
            records: Some(vec![rec(0, 1, "k", "x")]),
            ..Event::poll("c0", kind, 0, vec![])
        }]
    };
    let mut bad = h.clone();
    h.push(odd(EventType::Info));
    assert_eq!(names(h), Vec::<&str>::new());
    bad.push(odd(EventType::Ok));
    let found = names(bad);
    assert!(
        found.contains(&"aborted-read") && found.contains(&"inconsistent-offsets"),
        "{found:?}"
    );
}

#[test]
fn an_info_poll_may_have_moved_the_consumer() {
    // c0 reads a0, maybe reads a1 (its poll ended info), then reads a2.
    let h = c0_around_a1_read_by_c1;
    let maybe_read = |kind| {
        vec![Event {
            records: Some(vec![rec(0, 1, "k", "a1")]),
            ..Event::poll("c0", kind, 0, vec![])
        }]
    };
    assert_eq!(h(maybe_read(EventType::Info)), Vec::<&str>::new());
    assert_eq!(h(maybe_read(EventType::Fail)), vec!["poll-skip"]);
}

// Completions take what they omit from their invokes.

#[test]
fn an_info_seek_completion_is_about_what_its_invoke_asked() {
    // The completion says only "info"; the invoke says where to.
    let text = |invoke_offset: &str| {
        format!(
            r#"{{"process":"p0","type":"invoke","f":"send","time_ns":1,"topic":"t","key":"k","value":"a0"}}
{{"process":"p0","type":"ok","f":"send","time_ns":2,"partition":0,"offset":0}}
{{"process":"p0","type":"invoke","f":"send","time_ns":3,"topic":"t","key":"k","value":"a1"}}
{{"process":"p0","type":"ok","f":"send","time_ns":4,"partition":0,"offset":1}}
{{"process":"p0","type":"invoke","f":"send","time_ns":5,"topic":"t","key":"k","value":"a2"}}
{{"process":"p0","type":"ok","f":"send","time_ns":6,"partition":0,"offset":2}}
{{"process":"c0","type":"ok","f":"poll","time_ns":7,"records":[{{"topic":"t","partition":0,"offset":0,"value":"a0"}}]}}
{{"process":"c0","type":"invoke","f":"seek","time_ns":8,"topic":"t","partition":0{invoke_offset}}}
{{"process":"c0","type":"info","f":"seek","time_ns":9}}
{{"process":"c0","type":"ok","f":"poll","time_ns":10,"records":[{{"topic":"t","partition":0,"offset":2,"value":"a2"}}]}}
{{"process":"c1","type":"ok","f":"poll","time_ns":11,"records":[{{"topic":"t","partition":0,"offset":1,"value":"a1"}}]}}
"#
        )
    };
    let check_text = |t: String| {
        let events = parse_history(&t).expect("parse");
        let report = check(&events);
        let names: Vec<&str> = report.anomalies.iter().map(|a| a.name).collect();
        (names, report.stats)
    };
    let (found, stats) = check_text(text(r#","offset":2"#));
    assert_eq!(found, Vec::<&str>::new());
    assert_eq!(stats.sends_ok, 3);
    // Without the invoke's offset, the seek is no possible position.
    let (found, _) = check_text(text(""));
    assert_eq!(found, vec!["poll-skip"]);
}

// Assignments and unknown operations.

fn assign(c: &str, kind: EventType, partitions: Option<Vec<u32>>) -> Vec<Event> {
    let partitions = partitions.map(|ps| {
        ps.into_iter()
            .map(|partition| Partition {
                topic: T.into(),
                partition,
            })
            .collect()
    });
    vec![Event::assign(c, kind, 0, partitions)]
}

#[test]
fn an_assignment_without_the_partition_ends_its_tracking() {
    // As Jepsen's checker: c0 reads a0, is assigned `assigned`, then reads a2.
    let h = c0_around_a1_read_by_c1;
    assert_eq!(
        h(assign("c0", EventType::Ok, Some(vec![1]))),
        Vec::<&str>::new()
    );
    assert_eq!(
        h(assign("c0", EventType::Info, Some(vec![1]))),
        Vec::<&str>::new()
    );
    // A list the checker cannot read keeps nothing either.
    assert_eq!(h(assign("c0", EventType::Ok, None)), Vec::<&str>::new());
    // One that keeps partition 0, or that failed, keeps the tracking: the skip is caught.
    assert_eq!(
        h(assign("c0", EventType::Ok, Some(vec![0, 1]))),
        vec!["poll-skip"]
    );
    assert_eq!(
        h(assign("c0", EventType::Fail, Some(vec![1]))),
        vec!["poll-skip"]
    );
    let subscribe = vec![Event {
        f: Op::Subscribe,
        topics: Some(vec![T.into()]),
        ..Event::assign("c0", EventType::Ok, 0, None)
    }];
    assert_eq!(h(subscribe), vec!["poll-skip"]);
}

#[test]
fn an_assignment_without_the_partition_ends_the_tracking_of_sends_too() {
    // Jepsen's nonmonotonic-send case: p0 sends c@3, d@4, then a@1, b@2.
    let h = |between: Vec<Event>| {
        names(vec![
            send("p0", "k", "c", 0, 3),
            send("p0", "k", "d", 0, 4),
            between,
            send("p0", "j", "a", 0, 1),
            send("p0", "j", "b", 0, 2),
            poll(
                "c0",
                vec![
                    rec(0, 1, "j", "a"),
                    rec(0, 2, "j", "b"),
                    rec(0, 3, "k", "c"),
                    rec(0, 4, "k", "d"),
                ],
            ),
        ])
    };
    assert_eq!(h(vec![]), vec!["nonmonotonic-send"]);
    assert_eq!(
        h(assign("p0", EventType::Ok, Some(vec![0]))),
        vec!["nonmonotonic-send"]
    );
    assert_eq!(
        h(assign("p0", EventType::Info, Some(vec![1]))),
        Vec::<&str>::new()
    );
}

#[test]
fn unknown_operations_are_counted_and_skipped_whatever_they_carry() {
    // Jepsen-style lines: integer processes and values, a nemesis, a client operation this
    // checker does not know, an assign whose value is a list of keys (one partition each).
    let text = r#"{"process":0,"type":"invoke","f":"send","time_ns":1,"topic":"t","key":7,"value":1}
{"process":0,"type":"ok","f":"send","time_ns":2,"partition":0,"offset":0}
{"process":1,"type":"invoke","f":"assign","time_ns":3,"value":[7,8]}
{"process":1,"type":"ok","f":"assign","time_ns":4,"value":[7,8]}
{"process":"nemesis","type":"info","f":"start-partition","time_ns":5,"value":{"n1":["n2"]}}
{"process":2,"type":"invoke","f":"debug-topic-partitions","time_ns":6,"value":[["poll"],["send",7,2]]}
{"process":2,"type":"ok","f":"debug-topic-partitions","time_ns":7,"value":{"7":[0,1]}}
{"process":1,"type":"ok","f":"poll","time_ns":8,"records":[{"topic":"t","partition":0,"offset":0,"key":7,"value":1}]}
"#;
    let events = parse_history(text).expect("parse");
    assert_eq!(events[0].process, "0");
    assert_eq!(events[0].value.as_deref(), Some("1"));
    let keys: Vec<String> = events[2]
        .partitions
        .iter()
        .flatten()
        .map(|p| format!("{}-{}", p.topic, p.partition))
        .collect();
    assert_eq!(keys, vec!["7-0", "8-0"]);
    let report = check(&events);
    assert!(report.is_ok(), "{}", report.render());
    // The debug operation and the nemesis operation; the assign is known.
    assert_eq!(report.stats.ignored, 2);
    assert!(
        report.result_line().ends_with(" ignored=2"),
        "{}",
        report.result_line()
    );
}

// Resets reposition the consumer, like seeks.

#[test]
fn after_a_reset_reads_start_at_the_log_start() {
    // c0 is reset to the log start 1 after reading a0: it must read a1 next, not a0 again
    // and not a2.
    let h = |reads: Vec<PolledRecord>| {
        let mut h = base();
        h.push(poll("c0", vec![rec(0, 0, "k", "a0")]));
        h.push(vec![Event::reset("c0", 0, T, 0, 1)]);
        h.push(poll("c0", reads));
        h.push(poll("c1", vec![rec(0, 1, "k", "a1"), rec(0, 2, "k", "a2")]));
        h.push(poll("c2", vec![rec(0, 0, "k", "a0")]));
        names(h)
    };
    assert_eq!(h(vec![rec(0, 1, "k", "a1")]), Vec::<&str>::new());
    assert_eq!(h(vec![rec(0, 0, "k", "a0")]), vec!["nonmonotonic-poll"]);
    assert_eq!(h(vec![rec(0, 2, "k", "a2")]), vec!["poll-skip"]);
}

#[test]
fn a_reset_back_below_what_was_read_is_spurious() {
    // c0 read a0..a2 and is reset to the log start: forward (retention deleted what it had not
    // read) is fine, back to a record it read means a position inside the log was called out
    // of range.
    let h = |start: u64, before: Vec<Event>| {
        let mut h = base();
        h.push(before);
        h.push(vec![Event::reset("c0", 0, T, 0, start)]);
        names(h)
    };
    let read = |c: &str| {
        poll(
            c,
            vec![
                rec(0, 0, "k", "a0"),
                rec(0, 1, "k", "a1"),
                rec(0, 2, "k", "a2"),
            ],
        )
    };
    assert_eq!(h(0, read("c0")), vec!["spurious-reset"]);
    assert_eq!(h(2, read("c0")), vec!["spurious-reset"]);
    assert_eq!(h(3, read("c0")), Vec::<&str>::new());
    assert_eq!(h(4, read("c0")), Vec::<&str>::new());
    // Nothing known of c0's position (another consumer read), or a seek put it anywhere.
    assert_eq!(h(0, read("c1")), Vec::<&str>::new());
    let mut seeked = read("c0");
    seeked.push(Event::seek("c0", 0, T, 0, 9));
    assert_eq!(h(0, seeked), Vec::<&str>::new());
}

#[test]
fn a_members_reset_to_the_log_start_excuses_what_it_jumped_over() {
    // c1 resumes at the committed 0; the log starts at 3 (a0..a2 deleted): it is reset there,
    // processes 3..4 and commits 5. The same with a reset by a non-member is at-least-once.
    let group = |reset: Vec<Event>| {
        vec![
            fetch("c1", 10, Some(0)),
            reset,
            gpoll("c1", 20, 3..5),
            commit("c1", 30, 5, EventType::Ok),
        ]
    };
    let reset = |c: &str| vec![Event::reset(c, 12, T, 0, 3).in_group(G)];
    assert_eq!(group_names(group(reset("c1"))), Vec::<&str>::new());
    let report = group_report(group(vec![Event::reset("reader", 12, T, 0, 3)]));
    assert_eq!(
        subjects(&report, "at-least-once"),
        vec!["g t-0@0", "g t-0@1", "g t-0@2"]
    );
}

#[test]
fn a_member_s_info_poll_with_records_may_have_processed_them() {
    // As in `at_least_once`, but c1's unfinished poll says which records it returned: maybe
    // processed, so not reported. (Without records, `at_least_once` reports them.)
    let records = (0..3).map(|o| rec(0, o, "k", &format!("a{o}"))).collect();
    let report = group_report(vec![
        fetch("c1", 10, None),
        gseek("c1", 12, 0),
        vec![
            Event::poll("c1", EventType::Invoke, 20, vec![]).in_group(G),
            Event {
                records: Some(records),
                ..Event::poll("c1", EventType::Info, 21, vec![]).in_group(G)
            },
        ],
        commit("c1", 30, 3, EventType::Ok),
        fetch("c2", 40, Some(3)),
        gpoll("c2", 50, 3..5),
        commit("c2", 60, 5, EventType::Ok),
    ]);
    assert!(report.is_ok(), "{}", report.render());
}

/// The duplicate check sorts values by their first bytes as a number, then by the values:
/// that must be the values' own order, or a value's sightings would not be one run.
#[test]
fn value_prefixes_order_as_the_values_do() {
    let values = [
        "",
        "\0",
        "a",
        "a\0",
        "ab",
        "abcdefg",
        "abcdefgh",
        "abcdefgh\0",
        "abcdefghi",
        "abcdefgz",
        "p0-10",
        "p0-9",
        "p10-1",
        "p1-100000",
        "é",
        "z",
    ];
    for a in values {
        for b in values {
            let (pa, pb) = (super::checker::prefix(a), super::checker::prefix(b));
            assert!(pa >= pb || a < b, "{a:?} {b:?}");
            assert_eq!((pa, a).cmp(&(pb, b)), a.cmp(b), "{a:?} {b:?}");
        }
    }
}

/// `base`, read by c9.
fn base_read() -> Vec<Vec<Event>> {
    let mut h = base();
    h.push(poll(
        "c9",
        vec![
            rec(0, 0, "k", "a0"),
            rec(0, 1, "k", "a1"),
            rec(0, 2, "k", "a2"),
        ],
    ));
    h
}

/// c0 asks for the latest offset of partition 0 and is told `answer`.
fn latest(c: &str, answer: u64) -> Vec<Event> {
    vec![
        Event::latest_offset(c, EventType::Invoke, 0, T, 0, None),
        Event::latest_offset(c, EventType::Ok, 0, T, 0, Some(answer)),
    ]
}

#[test]
fn latest_ahead_a_record_sent_after_the_answer_landed_below_it() {
    // c0 is told the latest offset is 4: a0..a2 and a record at 3 nobody had committed. A
    // failover took that record back, and a3, sent after the answer, landed at 3, below it.
    let mut h = base_read();
    h.push(latest("c0", 4));
    h.push(send("p0", "k", "a3", 0, 3));
    h.push(poll("c9", vec![rec(0, 3, "k", "a3")]));
    assert_eq!(names(h), vec!["latest-ahead"]);
}

#[test]
fn latest_ahead_shows_in_reads_too() {
    // a3's send never completed, but c1 read it at offset 3, below the answer 4.
    let mut h = base_read();
    h.push(latest("c0", 4));
    h.push(vec![Event::send(
        "p0",
        EventType::Invoke,
        0,
        T,
        Some("k"),
        "a3",
    )]);
    h.push(poll("c9", vec![rec(0, 3, "k", "a3")]));
    let events: Vec<Event> = h.into_iter().flatten().collect();
    let report = check(&events);
    assert_eq!(report.anomalies.len(), 1, "{}", report.render());
    assert_eq!(report.anomalies[0].name, "latest-ahead");
    assert_eq!(report.anomalies[0].subject, "t-0@3");
    assert_eq!(report.stats.latest_offsets, 1);
}

#[test]
fn latest_offsets_at_or_below_what_comes_next_pass() {
    // b0 and a3 are sent before c1 is told 5 and land below it (at 3 and 4); a4, sent after,
    // lands at 5, the answer itself. c0's answer 1 is an old high watermark (a deposed leader
    // that did not know it yet): lower than records acknowledged before, which is no anomaly.
    let mut h = base_read();
    h.push(vec![Event::send(
        "p1",
        EventType::Invoke,
        0,
        T,
        Some("j"),
        "b0",
    )]);
    h.push(vec![Event::send(
        "p0",
        EventType::Invoke,
        0,
        T,
        Some("k"),
        "a3",
    )]);
    h.push(latest("c0", 1));
    h.push(latest("c1", 5));
    h.push(vec![Event::send_ok("p0", 0, T, Some("k"), "a3", 0, 3)]);
    h.push(vec![Event::send_ok("p1", 0, T, Some("j"), "b0", 0, 4)]);
    h.push(send("p0", "k", "a4", 0, 5));
    h.push(poll(
        "c9",
        vec![
            rec(0, 3, "k", "a3"),
            rec(0, 4, "j", "b0"),
            rec(0, 5, "k", "a4"),
        ],
    ));
    assert_eq!(names(h), Vec::<&str>::new());
}

#[test]
fn a_failed_or_unknown_latest_answer_accuses_nothing() {
    let mut h = base_read();
    h.push(vec![
        Event::latest_offset("c0", EventType::Invoke, 0, T, 0, None),
        Event::latest_offset("c0", EventType::Info, 0, T, 0, Some(9)),
    ]);
    h.push(vec![
        Event::latest_offset("c1", EventType::Invoke, 0, T, 0, None),
        Event::latest_offset("c1", EventType::Fail, 0, T, 0, Some(9)),
    ]);
    h.push(send("p0", "k", "a3", 0, 3));
    h.push(poll("c9", vec![rec(0, 3, "k", "a3")]));
    assert_eq!(names(h), Vec::<&str>::new());
}

#[test]
fn an_ok_latest_offset_without_its_answer_is_malformed() {
    let lines = [
        r#"{"process":"c0","type":"invoke","f":"latest-offset","time_ns":0,"topic":"t","partition":0}"#,
        r#"{"process":"c0","type":"ok","f":"latest-offset","time_ns":1}"#,
    ];
    let err = parse_history(&lines.join("\n")).unwrap_err();
    assert!(err.message.contains("offset"), "{err}");
}

/// A record at the last offset a u64 can name is read and committed past without overflow
/// (in a debug build, an overflow would panic): the checks stay where they were.
#[test]
fn a_record_at_the_highest_offset_is_checked_without_overflow() {
    let top = u64::MAX;
    let events: Vec<Event> = [
        send("p0", "k", "a0", 0, top),
        vec![
            Event::poll("c1", EventType::Invoke, 10, vec![]).in_group(G),
            Event::poll("c1", EventType::Ok, 11, vec![rec(0, top, "k", "a0")]).in_group(G),
        ],
        commit("c1", 20, top, EventType::Ok),
        fetch("c2", 30, Some(top)),
    ]
    .concat();
    let report = check(&events);
    assert!(report.anomalies.is_empty(), "{}", report.render());
    // A record just below it, acknowledged and never read, is still caught: below the
    // group's committed offset, no member processed it.
    let mut skipped = send("p0", "k", "a1", 0, top - 1);
    skipped.extend(events);
    let report = check(&skipped);
    assert!(
        subjects(&report, "at-least-once").contains(&format!("g t-0@{}", top - 1)),
        "{}",
        report.render()
    );
}

// Rebalances: a group member's assignment starts its positions afresh.

/// The group gives `c` partition 0 of `t` (a new generation), at `at`.
fn gassign(c: &str, at: u64) -> Vec<Event> {
    let given = vec![Partition {
        topic: T.into(),
        partition: 0,
    }];
    vec![Event::assign(c, EventType::Ok, at, Some(given)).in_group(G)]
}

/// m0's first generation: given partition 0 at 0, it resumes at 0, reads 0..2 and commits 2.
fn first_generation() -> Vec<Vec<Event>> {
    let mut h = first_reads();
    h.push(commit("m0", 5, 2, EventType::Ok));
    h
}

/// m0 is given partition 0 at 0, resumes at the committed 0 and reads 0..2.
fn first_reads() -> Vec<Vec<Event>> {
    vec![
        gassign("m0", 0),
        fetch("m0", 1, Some(0)),
        gpoll("m0", 3, 0..2),
    ]
}

/// `c` asks for the latest offset of partition 0 at `at`; the answer, `answer`, comes at `ok_at`
/// and `c` seeks there.
fn seek_to_end(c: &str, at: u64, ok_at: u64, answer: u64) -> (Vec<Event>, Vec<Event>) {
    let ask = vec![Event::latest_offset(c, EventType::Invoke, at, T, 0, None).in_group(G)];
    let answered = vec![
        Event::latest_offset(c, EventType::Ok, ok_at, T, 0, Some(answer)).in_group(G),
        Event::seek(c, ok_at, T, 0, answer).in_group(G),
    ];
    (ask, answered)
}

#[test]
fn a_member_resuming_after_each_assignment_passes() {
    // m0 reads 0..2 and commits 2; a rebalance gives it the partition again: it fetches the
    // committed offset and reads on from there. Then it seeks to the end (asked and answered in
    // the same generation) and reads on from 5... nothing, the log ends at 5.
    let (ask, answered) = seek_to_end("m0", 40, 41, 5);
    let h = vec![
        gassign("m0", 0),
        fetch("m0", 1, None),
        gseek("m0", 2, 0),
        gpoll("m0", 3, 0..2),
        commit("m0", 5, 2, EventType::Ok),
        gassign("m0", 10),
        fetch("m0", 11, Some(2)),
        gpoll("m0", 13, 2..5),
        commit("m0", 15, 5, EventType::Ok),
        ask,
        answered,
    ];
    assert_eq!(group_names(h), Vec::<&str>::new());
}

#[test]
fn poll_without_resume_a_member_read_on_from_the_generation_before() {
    // The rebalance at 10 gives m0 the partition again, but it reads on at 2 without fetching
    // the committed offset (a position of the old generation it kept).
    let mut h = first_generation();
    h.extend([
        gassign("m0", 10),
        gpoll("m0", 13, 2..5),
        commit("m0", 15, 5, EventType::Ok),
    ]);
    let report = group_report(h);
    assert_eq!(
        subjects(&report, "poll-without-resume"),
        vec!["m0 t-0"],
        "{}",
        report.render()
    );
    assert_eq!(report.anomalies.len(), 1, "{}", report.render());
}

#[test]
fn poll_without_resume_needs_a_group_assignment_and_any_repositioning_clears_it() {
    let reads_after = |between: Vec<Vec<Event>>| {
        let mut h = first_reads();
        h.push(gassign("m0", 10));
        h.extend(between);
        h.push(gpoll("m0", 13, 2..5));
        group_names(h)
    };
    // A seek, a reset, or a fetch-committed that ended `info` (it may have happened).
    assert_eq!(reads_after(vec![gseek("m0", 11, 2)]), Vec::<&str>::new());
    let reset = Event::reset("m0", 11, T, 0, 2).in_group(G);
    assert_eq!(reads_after(vec![vec![reset]]), Vec::<&str>::new());
    let unknown = vec![
        Event::fetch_committed("m0", EventType::Invoke, 11, G, T, 0, None),
        Event::fetch_committed("m0", EventType::Info, 12, G, T, 0, Some(2)),
    ];
    assert_eq!(reads_after(vec![unknown]), Vec::<&str>::new());
    // Nothing in between: the anomaly.
    assert_eq!(reads_after(vec![]), vec!["poll-without-resume"]);
    // An application's own `assign` (no group) or an assignment that ended `info` is no
    // generation: the consumer keeps its position.
    let mut own = first_reads();
    own.push(assign("m0", EventType::Ok, Some(vec![0])));
    own.push(vec![
        Event::assign("m0", EventType::Info, 10, None).in_group(G)
    ]);
    own.push(gpoll("m0", 13, 2..5));
    assert_eq!(group_names(own), Vec::<&str>::new());
}

#[test]
fn stale_seek_an_answer_asked_for_before_a_rebalance_moved_the_new_generation() {
    // m0 asks for the end at 6; the group reassigns it at 10, it resumes at the committed 2,
    // and then the old answer arrives and it seeks to 5, skipping 2..5.
    let (ask, answered) = seek_to_end("m0", 6, 14, 5);
    let mut h = first_generation();
    h.extend([ask, gassign("m0", 10), fetch("m0", 11, Some(2)), answered]);
    let report = group_report(h);
    assert_eq!(
        subjects(&report, "stale-seek"),
        vec!["m0 t-0"],
        "{}",
        report.render()
    );
    assert!(
        report.anomalies[0].detail.contains("new assignment"),
        "{}",
        report.render()
    );
}

#[test]
fn stale_seek_judges_seeks_to_a_time_as_seeks_to_the_end() {
    // m0 looks up the first offset at a time, or that of the largest timestamp, at 6; the group
    // reassigns it at 10 and it resumes at 2; the old answer arrives and it seeks to 5.
    let by_time = |kind, at, answer: Option<u64>| {
        Event::offset_for_time(
            "m0",
            kind,
            at,
            T,
            0,
            1_000,
            answer.map(|o| (o, Some(1_000), None)),
        )
        .in_group(G)
    };
    let by_max = |kind, at, answer: Option<u64>| {
        let answer = answer.map(|offset| super::event::MaxTimestampAnswer {
            offset,
            record_timestamp: Some(1_000),
            log_start: None,
            high_watermark: None,
        });
        Event::offset_for_max_timestamp("m0", kind, at, T, 0, answer).in_group(G)
    };
    let lookups: [&dyn Fn(EventType, u64, Option<u64>) -> Event; 2] = [&by_time, &by_max];
    for lookup in lookups {
        let ask = vec![lookup(EventType::Invoke, 6, None)];
        let answered = vec![
            lookup(EventType::Ok, 14, Some(5)),
            Event::seek("m0", 14, T, 0, 5).in_group(G),
        ];
        let mut h = first_generation();
        h.extend([ask.clone(), gassign("m0", 10), fetch("m0", 11, Some(2))]);
        h.push(answered.clone());
        let report = group_report(h);
        assert_eq!(
            subjects(&report, "stale-seek"),
            vec!["m0 t-0"],
            "{}",
            report.render()
        );
        // Asked in the new generation: the member's own choice.
        let mut h = first_generation();
        h.extend([gassign("m0", 10), fetch("m0", 11, Some(2)), ask, answered]);
        assert_eq!(group_names(h), Vec::<&str>::new());
    }
}

#[test]
fn stale_seek_is_seen_by_a_resume_alone_and_only_for_the_seek_the_answer_led_to() {
    // Without assignment events: a resume of the partition after the ask voids it too.
    let (ask, answered) = seek_to_end("m0", 6, 14, 5);
    let read = || vec![fetch("m0", 1, Some(0)), gpoll("m0", 3, 0..2)];
    let mut resumed = read();
    resumed.extend([ask.clone(), fetch("m0", 11, Some(2))]);
    let mut h = resumed.clone();
    h.push(answered.clone());
    assert_eq!(group_names(h), vec!["stale-seek"]);
    // The same answer, dropped (the member seeks elsewhere, or nowhere): not judged.
    let mut h = resumed.clone();
    h.push(vec![
        Event::latest_offset("m0", EventType::Ok, 14, T, 0, Some(5)).in_group(G),
        Event::seek("m0", 14, T, 0, 2).in_group(G),
    ]);
    assert_eq!(group_names(h), Vec::<&str>::new());
    // A resume that ended `info` is no evidence.
    let mut h = read();
    h.push(ask);
    h.push(vec![
        Event::fetch_committed("m0", EventType::Invoke, 11, G, T, 0, None),
        Event::fetch_committed("m0", EventType::Info, 12, G, T, 0, Some(2)),
    ]);
    h.push(answered);
    assert_eq!(group_names(h), Vec::<&str>::new());
}

#[test]
fn rebalance_checks_read_completions_through_their_invokes() {
    // Completions that omit the partition take it from their invoke: a fetch-committed so
    // written repositions, and an answer so written is still the one asked before the rebalance.
    let fetch_bare = |at: u64| {
        vec![
            Event::fetch_committed("m0", EventType::Invoke, at, G, T, 0, None),
            Event {
                topic: None,
                partition: None,
                ..Event::fetch_committed("m0", EventType::Ok, at + 1, G, T, 0, Some(2))
            },
        ]
    };
    let mut h = first_reads();
    h.extend([gassign("m0", 10), fetch_bare(11), gpoll("m0", 13, 2..5)]);
    assert_eq!(group_names(h), Vec::<&str>::new());
    let (ask, _) = seek_to_end("m0", 6, 14, 5);
    let mut h = first_reads();
    h.extend([ask, gassign("m0", 10), fetch_bare(11)]);
    h.push(vec![
        Event {
            topic: None,
            partition: None,
            ..Event::latest_offset("m0", EventType::Ok, 14, T, 0, Some(5))
        },
        // A seek written as an invoke and its completion.
        Event::seek("m0", 14, T, 0, 5)
            .in_group(G)
            .ending(EventType::Invoke),
        Event {
            topic: None,
            partition: None,
            ..Event::seek("m0", 15, T, 0, 5).in_group(G)
        },
    ]);
    let report = group_report(h);
    assert_eq!(
        subjects(&report, "stale-seek"),
        vec!["m0 t-0"],
        "{}",
        report.render()
    );
}

#[test]
fn a_fetch_of_the_committed_offset_asked_before_the_rebalance_does_not_start_the_next_one() {
    // m0 asks for the committed offset at 8; the rebalance comes at 10; the answer, at 12,
    // belongs to the generation before: reading from it is reading on without a resume.
    let mut h = first_generation();
    h.extend([
        vec![Event::fetch_committed(
            "m0",
            EventType::Invoke,
            8,
            G,
            T,
            0,
            None,
        )],
        gassign("m0", 10),
        vec![Event::fetch_committed(
            "m0",
            EventType::Ok,
            12,
            G,
            T,
            0,
            Some(2),
        )],
        gpoll("m0", 13, 2..5),
    ]);
    assert_eq!(group_names(h), vec!["poll-without-resume"]);
}
