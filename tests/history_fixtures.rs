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
fn a_hand_written_stale_offset_is_found() {
    // The group committed 3, then 1 (rewound to re-read); a fetch after both is given 3. The
    // offset did not move back from what was last seen, so only `stale-offset` names it.
    let report = report_of("group-stale-offset.jsonl");
    let names: Vec<&str> = report.anomalies.iter().map(|a| a.name).collect();
    assert_eq!(names, vec!["stale-offset"], "{}", report.render());
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

fn report_of(name: &str) -> seedlog::history::Report {
    check(&parse_history(&load(name)).expect("a well-formed history"))
}

fn subjects(name: &str) -> Vec<String> {
    report_of(name)
        .anomalies
        .iter()
        .map(|a| format!("{} {}", a.name, a.subject))
        .collect()
}

#[test]
fn records_below_an_observed_log_start_were_deleted_not_lost() {
    // A late reader's fetch at 0 was out of range; it was reset to the log start 2 (with a
    // "reason" the checker ignores). order-1 and order-2, nobody read, are excused.
    let report = report_of("log-start-reset.jsonl");
    assert!(report.is_ok(), "{}", report.render());
    assert_eq!(report.stats.resets, 1);
}

#[test]
fn a_forward_seek_over_records_excuses_nothing() {
    // The same history with a seek to 2 instead of the reset: order-1 and order-2 are lost.
    assert_eq!(
        subjects("forward-seek-lost-write.jsonl"),
        vec!["lost-write orders-0@0", "lost-write orders-0@1"]
    );
}

#[test]
fn a_log_start_seen_before_a_send_does_not_excuse_it() {
    // The send was invoked after the reset completed: a record acknowledged at 3 cannot have
    // been deleted by a log start of 5 already in place. (Its completion carries only the
    // partition and offset; the rest comes from its invoke.)
    assert_eq!(subjects("stale-log-start.jsonl"), vec!["unseen orders-0@3"]);
}

#[test]
fn info_operations_may_excuse() {
    // consumer-1 jumps from 0 to 2 by a seek that timed out (its completion names nothing: the
    // invoke says where): no poll-skip. e2 was returned only by consumer-2's poll that ended
    // info: maybe read, so not lost.
    let report = report_of("info-excuses.jsonl");
    assert!(report.is_ok(), "{}", report.render());
    assert_eq!(report.stats.sends_ok, 4);
}

#[test]
fn info_operations_never_accuse() {
    // A poll that ended info returned a failed send's value at an acknowledged offset (no
    // aborted-read, no inconsistent-offsets), and consumer-1 read on from where it was after a
    // seek past the log end that may not have happened (no nonmonotonic-poll).
    let report = report_of("info-never-accuses.jsonl");
    assert!(report.is_ok(), "{}", report.render());
    assert_eq!(report.stats.sends_failed, 1);
}

#[test]
fn jepsen_s_poll_skip_case_translated() {
    // jepsen.tests.kafka's poll-skip test as our history: integer processes, keys as topics, and
    // a transaction of sends written as Jepsen's micro-operations (read as five sends of
    // unknown outcome). Process 0 skips c@3 and f@6; f, acknowledged and never read below g@7,
    // is also a lost write.
    let report = report_of("jepsen-poll-skip.jsonl");
    let subjects: Vec<String> = report
        .anomalies
        .iter()
        .map(|a| format!("{} {}", a.name, a.subject))
        .collect();
    assert_eq!(subjects, vec!["lost-write x-0@6", "poll-skip 0 x-0"]);
    assert_eq!(report.stats.ignored, 0);
    assert_eq!(report.stats.sends_unknown, 5);
    // The same with a subscribe and an (info) assign leaving out x in between: no skip.
    assert_eq!(
        anomaly_names("jepsen-poll-skip-reassigned.jsonl"),
        vec!["lost-write"]
    );
}

#[test]
fn jepsen_s_poll_skip_case_in_jepsen_s_own_shape() {
    // The same case as Jepsen writes it: sends and polls as micro-operations in `value`, `time`
    // for `time_ns`, keywords with and without their colon, a transaction whose info
    // completion carries no value (it takes its invoke's). The same anomalies.
    assert_eq!(
        subjects("jepsen-shaped-poll-skip.jsonl"),
        subjects("jepsen-poll-skip.jsonl")
    );
    let report = report_of("jepsen-shaped-poll-skip.jsonl");
    assert_eq!(report.anomalies.len(), 2);
    assert_eq!(report.stats.sends_unknown, 5);
    assert_eq!(report.stats.ignored, 0);
}

#[test]
fn jepsen_s_own_edn_files_are_read_as_they_are() {
    // The poll-skip case as Jepsen writes history.edn: one map per line, some tagged as Op
    // records, comments, a nemesis's operations (skipped, counted). The same anomalies as the
    // JSON conversion.
    assert_eq!(
        subjects("jepsen-poll-skip.edn"),
        subjects("jepsen-shaped-poll-skip.jsonl")
    );
    let report = report_of("jepsen-poll-skip.edn");
    assert_eq!(report.anomalies.len(), 2, "{}", report.render());
    assert_eq!((report.stats.sends_unknown, report.stats.ignored), (5, 2));
    // A whole history as one vector, logs named by integers: the aborted read again.
    let edn = report_of("jepsen-aborted-read.edn");
    let json = report_of("jepsen-shaped-aborted-read.jsonl");
    assert_eq!(edn.render(), json.render());
    assert_eq!(edn.anomalies.len(), 1);
}

#[test]
fn a_malformed_edn_history_names_the_line() {
    // An operation that is not an event (no `f`), on line 3 of its file.
    let text =
        "; two operations\n{:process 0, :type :invoke, :f :poll, :time 1, :value [[:poll]]}\n\
                {:process 0, :type :ok, :time 2}\n";
    let e = parse_history(text).unwrap_err();
    assert_eq!(e.line, 3, "{}", e.message);
    // EDN that does not parse: a map left open on line 2.
    let e =
        parse_history("{:process 0, :type :invoke, :f :poll, :time 1}\n{:process 0\n").unwrap_err();
    assert_eq!(e.line, 2, "{}", e.message);
}

#[test]
fn a_failed_jepsen_transaction_read_later_is_an_aborted_read() {
    // A transaction of two sends failed (neither happened), yet its first value is read at
    // offset 0 of key 5, below an acknowledged send. Keys are integers; the consumer's assign
    // lists keys.
    let report = report_of("jepsen-shaped-aborted-read.jsonl");
    let names: Vec<&str> = report.anomalies.iter().map(|a| a.name).collect();
    assert_eq!(names, vec!["aborted-read"], "{}", report.render());
    assert_eq!(report.stats.sends_failed, 2);
    assert_eq!(report.stats.sends_ok, 1);
}

#[test]
fn a_latest_offset_that_counted_uncommitted_records_is_found() {
    // billing-1 was told the latest offset is 3 while offset 2 held a record nobody had
    // committed; the leader failed, and order-4, sent after the answer, took offset 2.
    assert_eq!(
        subjects("latest-ahead.jsonl"),
        vec!["latest-ahead orders-0@2"]
    );
    // The same history with the answer at 2 (the high watermark) passes.
    let text = load("latest-ahead.jsonl").replace(
        r#""type":"ok","f":"latest-offset","time_ns":7000,"offset":3"#,
        r#""type":"ok","f":"latest-offset","time_ns":7000,"offset":2"#,
    );
    let report = check(&parse_history(&text).expect("parse"));
    assert!(report.is_ok(), "{}", report.render());
    assert_eq!(report.stats.latest_offsets, 1);
}

#[test]
fn an_answer_by_time_past_a_record_of_that_time_is_found() {
    // billing-1 asks for the first offset at or after the time of order-2 (offset 1) and is
    // told 2: the leader searched for a later timestamp.
    assert_eq!(
        subjects("wrong-time-offset.jsonl"),
        vec!["wrong-time-offset orders-0@2"]
    );
    // The same history with the right answer (offset 1, order-2's timestamp) passes.
    let text = load("wrong-time-offset.jsonl").replace(
        r#""offset":2,"record_timestamp":1700000003000"#,
        r#""offset":1,"record_timestamp":1700000002000"#,
    );
    let report = check(&parse_history(&text).expect("parse"));
    assert!(report.is_ok(), "{}", report.render());
    assert_eq!(report.stats.offsets_for_time, 1);
}

#[test]
fn an_answer_by_max_timestamp_past_the_first_of_the_largest_is_found() {
    // order-1 (offset 0) and order-3 (offset 2) share the largest timestamp; billing-1 asks for
    // the first offset holding it and is told 2, as Kafka's KAFKA-16310 answered the last
    // record of the batch.
    assert_eq!(
        subjects("wrong-max-timestamp.jsonl"),
        vec!["wrong-max-timestamp orders-0@2"]
    );
    // The same history with the right answer (offset 0) passes.
    let text =
        load("wrong-max-timestamp.jsonl").replace(r#""offset":2,"record"#, r#""offset":0,"record"#);
    let report = check(&parse_history(&text).expect("parse"));
    assert!(report.is_ok(), "{}", report.render());
    assert_eq!(report.stats.offsets_for_max_timestamp, 1);
    // Naming order-2 with its own, smaller timestamp is wrong too: larger ones lie on both
    // sides of it, below the leader's high watermark 3.
    let text = load("wrong-max-timestamp.jsonl").replace(
        r#""offset":2,"record_timestamp":1700000003000"#,
        r#""offset":1,"record_timestamp":1700000001000"#,
    );
    let report = check(&parse_history(&text).expect("parse"));
    let names: Vec<&str> = report.anomalies.iter().map(|a| a.name).collect();
    assert_eq!(names, ["wrong-max-timestamp"], "{}", report.render());
}

#[test]
fn a_seek_applying_an_answer_asked_for_before_a_rebalance_is_found() {
    // billing-1 asks for the latest offset in generation 1; a rebalance gives it the partition
    // again and it resumes at the committed 2; then the old answer, 4, moves it past order-3 and
    // order-4, which no member processes.
    assert_eq!(
        subjects("group-stale-seek.jsonl"),
        vec!["stale-seek billing-1 orders-0"]
    );
    // Asked after the rebalance (the same answer), the seek is the application's own choice.
    let text = load("group-stale-seek.jsonl").replace(
        r#""type":"invoke","f":"latest-offset","time_ns":3000"#,
        r#""type":"invoke","f":"latest-offset","time_ns":3750"#,
    );
    let lines: Vec<&str> = text.lines().collect();
    let ask = lines
        .iter()
        .position(|l| l.contains("3750"))
        .expect("the ask");
    let mut moved: Vec<&str> = lines.clone();
    let line = moved.remove(ask);
    let answer = moved
        .iter()
        .position(|l| l.contains(r#""ok","f":"latest-offset""#))
        .expect("the answer");
    moved.insert(answer, line);
    let report = check(&parse_history(&moved.join("\n")).expect("parse"));
    assert!(report.is_ok(), "{}", report.render());
}

#[test]
fn a_member_reading_on_after_a_rebalance_without_resuming_is_found() {
    // Given the partition again by a rebalance, billing-1 reads on at 2 without fetching the
    // group's committed offset.
    assert_eq!(
        subjects("group-poll-without-resume.jsonl"),
        vec!["poll-without-resume billing-1 orders-0"]
    );
    // With the fetch of the committed offset (2) in between, it passes.
    let text = load("group-poll-without-resume.jsonl").replace(
        r#"{"process":"billing-1","type":"invoke","f":"poll","time_ns":3600"#,
        concat!(
            r#"{"process":"billing-1","type":"invoke","f":"fetch-committed","time_ns":3510,"group":"billing","topic":"orders","partition":0}"#,
            "\n",
            r#"{"process":"billing-1","type":"ok","f":"fetch-committed","time_ns":3520,"group":"billing","topic":"orders","partition":0,"offset":2}"#,
            "\n",
            r#"{"process":"billing-1","type":"invoke","f":"poll","time_ns":3600"#
        ),
    );
    let report = check(&parse_history(&text).expect("parse"));
    assert!(report.is_ok(), "{}", report.render());
}

#[test]
fn a_fetch_overlapping_the_commit_a_rewind_led_to_is_no_regression() {
    // billing-1 commits 3, seeks back to 2 and commits 2. The auditor's first fetch began after
    // the seek but before that commit landed, so it may see 3 and its next fetch 2: the commit
    // carried the rewind. (The simulator's seed 481354214 was flagged this way.)
    let report = check(&parse_history(&load("group-rewind-in-flight.jsonl")).expect("parse"));
    assert!(report.is_ok(), "{}", report.render());
    assert_eq!(report.stats.fetches_committed, 3);
    // Sent only after that fetch returned 3, the commit of 2 is itself a lower observation
    // after a higher one, explained the same way: the member's own seek back.
    let text = load("group-rewind-in-flight.jsonl").replace(
        r#""type":"invoke","f":"commit","time_ns":2700"#,
        r#""type":"invoke","f":"commit","time_ns":2730"#,
    );
    let mut lines: Vec<&str> = text.lines().collect();
    let sent = lines
        .iter()
        .position(|l| l.contains(r#""time_ns":2730"#))
        .expect("the commit of 2");
    let line = lines.remove(sent);
    let answered = lines
        .iter()
        .position(|l| l.contains(r#""time_ns":2720"#))
        .expect("the first fetch's answer");
    lines.insert(answered + 1, line);
    let report = check(&parse_history(&lines.join("\n")).expect("parse"));
    assert!(report.is_ok(), "{}", report.render());
    // Landed before the first fetch began, the commit of 2 leaves no excuse for reading 3 and
    // then 2.
    let text = load("group-rewind-in-flight.jsonl").replace(
        r#""type":"ok","f":"commit","time_ns":2750"#,
        r#""type":"ok","f":"commit","time_ns":2705"#,
    );
    let lines: Vec<&str> = text.lines().collect();
    let (landed, rest): (Vec<&str>, Vec<&str>) = lines.iter().partition(|l| l.contains("2705"));
    let mut moved = rest;
    let fetch = moved
        .iter()
        .position(|l| l.contains(r#""time_ns":2710"#))
        .expect("the first fetch");
    moved.insert(fetch, landed[0]);
    let report = check(&parse_history(&moved.join("\n")).expect("parse"));
    let names: Vec<&str> = report.anomalies.iter().map(|a| a.name).collect();
    assert!(names.contains(&"offset-regression"), "{}", report.render());
}
