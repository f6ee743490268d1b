//! Histories written by hand (not by our code) in the documented format, checked by the library.

use seedlog::history::{check, parse_history};

fn load(name: &str) -> String {
    let path = format!(
        "{}/tests/fixtures/histories/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn anomaly_names(name: &str) -> Vec<&'static str> {
    let events = parse_history(&load(name)).expect("a well-formed history");
    let mut names: Vec<&str> = check(&events).anomalies.iter().map(|a| a.name).collect();
    names.dedup();
    names
}

#[test]
fn a_valid_hand_written_history_passes() {
    // With an unknown-outcome send that landed, a failed send, seeks back and forth, and extra
    // fields ("client", "error", "lag") the checker does not know.
    let events = parse_history(&load("valid.jsonl")).expect("parse");
    let report = check(&events);
    assert!(report.is_ok(), "{}", report.render());
    assert_eq!(report.stats.sends_ok, 2);
    assert_eq!(report.stats.sends_unknown, 1);
    assert_eq!(report.stats.sends_failed, 1);
}

#[test]
fn a_hand_written_lost_write_is_found() {
    // c0 read offset 2 right after offset 0: offset 1 (acknowledged) was never given to it.
    assert_eq!(
        anomaly_names("lost-write.jsonl"),
        vec!["lost-write", "poll-skip"]
    );
}

#[test]
fn a_skip_and_a_rewritten_offset_are_found() {
    let names = anomaly_names("skip-and-rewrite.jsonl");
    assert_eq!(names, vec!["inconsistent-offsets", "poll-skip"]);
}

#[test]
fn a_valid_hand_written_group_history_passes() {
    // A reset seek, a commit whose completion leaves the offset to its invoke, a rebalance
    // handing the partition over, a refused stale commit with a lower offset, a commit of
    // unknown outcome that landed, and fields ("generation", "reason") the checker ignores.
    let events = parse_history(&load("group-valid.jsonl")).expect("parse");
    let report = check(&events);
    assert!(report.is_ok(), "{}", report.render());
    assert_eq!(report.stats.commits_ok, 1);
    assert_eq!(report.stats.commits_failed, 1);
    assert_eq!(report.stats.commits_unknown, 1);
    assert_eq!(report.stats.fetches_committed, 3);
}

#[test]
fn a_hand_written_offset_regression_is_found() {
    // A stale member's commit of 1, invoked before and accepted after the group committed 3.
    // Concurrent with the commit of 3, so not itself out of order, but the fetch after both
    // sees the committed offset gone back.
    let events = parse_history(&load("group-offset-regression.jsonl")).expect("parse");
    let report = check(&events);
    let names: Vec<&str> = report.anomalies.iter().map(|a| a.name).collect();
    assert_eq!(names, vec!["offset-regression"], "{}", report.render());
    assert_eq!(report.anomalies[0].subject, "billing orders-0");
}

#[test]
fn a_hand_written_at_least_once_violation_is_found() {
    let events = parse_history(&load("group-at-least-once.jsonl")).expect("parse");
    let report = check(&events);
    let subjects: Vec<String> = report
        .anomalies
        .iter()
        .map(|a| format!("{} {}", a.name, a.subject))
        .collect();
    assert_eq!(
        subjects,
        vec![
            "at-least-once billing orders-0@0",
            "at-least-once billing orders-0@1"
        ],
        "{}",
        report.render()
    );
}

#[test]
fn a_malformed_history_names_the_line() {
    let err = parse_history(&load("malformed.jsonl")).expect_err("malformed");
    assert_eq!(err.line, 2);
    assert!(err.to_string().contains("offset"), "{err}");
}
