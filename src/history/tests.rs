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
    let mut h = base();
    h.push(poll("c0", vec![rec(0, 0, "k", "a0")]));
    h.push(vec![Event::seek("c0", 0, T, 0, 2)]);
    h.push(poll("c0", vec![rec(0, 2, "k", "a2")]));
    assert_eq!(names(h), vec!["lost-write"]);
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
