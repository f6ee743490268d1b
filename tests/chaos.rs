//! `seedlog chaos` end to end: a cluster of processes, confluent-kafka clients, process faults on
//! a seeded schedule, the history checker. A run of a correct build passes (and its consumer
//! group's members rebalanced and committed); a run with brokers
//! started with the `ack-before-isr` bug switch (acks=all answered before the followers have the
//! record) loses acknowledged records when a leader is killed, and the run says so; so does a run
//! whose brokers answer lookups by time and by max timestamp past the first matching record.
//! Bad arguments are refused with exit 2.
//!
//! The clients are installed by tests/kafka/setup.sh; if they cannot be, the test fails.

mod common;

use common::{kafka_clients, run_with_deadline};
use std::time::Duration;

fn chaos(extra: &[&str]) -> (Option<i32>, String, String) {
    let python = kafka_clients();
    let mut args: Vec<String> = vec!["chaos".into(), "--python".into()];
    args.push(python.display().to_string());
    args.extend(extra.iter().map(|a| a.to_string()));
    let (code, stdout, stderr) = run_with_deadline(&args, Duration::from_secs(420));
    eprintln!("{stdout}{stderr}");
    (code, stdout, stderr)
}

fn result_line(stdout: &str) -> &str {
    stdout
        .lines()
        .rfind(|l| l.starts_with("RESULT"))
        .unwrap_or_else(|| panic!("no RESULT line:\n{stdout}"))
}

/// The number after `name=` in a RESULT line.
fn field(line: &str, name: &str) -> u64 {
    line.split(' ')
        .find_map(|w| w.strip_prefix(&format!("{name}=")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name}= in {line}"))
}

#[test]
fn a_chaos_run_of_the_real_build_passes() {
    let (code, stdout, _) = chaos(&["--seed", "1", "--duration", "20"]);
    let result = result_line(&stdout);
    assert!(result.starts_with("RESULT ok seed=1 "), "{result}");
    assert_eq!(code, Some(0), "{result}");
    assert!(field(result, "faults") > 0, "no fault injected: {result}");
    assert!(field(result, "sends_ok") > 0, "{result}");
    // The group's members rebalanced and committed, so the group checks had work to judge.
    let done = stdout
        .lines()
        .find(|l| l.starts_with("DRIVER done"))
        .unwrap_or_else(|| panic!("no DRIVER done line:\n{stdout}"));
    assert!(field(done, "assignments") >= 3, "no rebalance: {done}");
    assert!(field(done, "commits") > 0, "no commit: {done}");
}

#[test]
fn a_chaos_run_catches_acks_before_the_isr_has_the_record() {
    let dir = tempfile::tempdir().expect("temp dir");
    let run_dir = dir.path().join("run");
    let run_dir = run_dir.display().to_string();
    let (code, stdout, _) = chaos(&[
        "--seed",
        "1",
        "--duration",
        "20",
        "--faults",
        "kill",
        "--controllers",
        "1",
        "--bug",
        "ack-before-isr",
        "--dir",
        &run_dir,
    ]);
    let result = result_line(&stdout);
    assert!(result.starts_with("RESULT violation seed=1 "), "{result}");
    assert_eq!(code, Some(1), "{result}");
    // Acknowledged records the final reads did not find, from processes that really ran.
    assert!(
        result.contains("unseen") || result.contains("lost-write"),
        "{result}"
    );
    assert!(stdout.contains(&format!("kept {run_dir}")), "{stdout}");
    assert!(dir.path().join("run/history.jsonl").exists());
}

#[test]
fn a_chaos_run_catches_lookups_past_the_first_matching_record() {
    // The looker asks for records' own times and for the largest timestamp; with these switches
    // the brokers answer the record after the first of that millisecond, or the last of the
    // largest, and the answers are held against the records the clients read.
    let (code, stdout, _) = chaos(&[
        "--seed",
        "3",
        "--duration",
        "20",
        "--bug",
        "time-lookup-strict",
        "--bug",
        "max-timestamp-last-tie",
    ]);
    let result = result_line(&stdout);
    assert!(result.starts_with("RESULT violation seed=3 "), "{result}");
    assert_eq!(code, Some(1), "{result}");
    assert!(
        result.contains("wrong-time-offset") || result.contains("wrong-max-timestamp"),
        "{result}"
    );
}

#[test]
fn bad_chaos_arguments_are_refused() {
    for (args, expect) in [
        (vec!["--faults", "freeze"], "unknown fault 'freeze'"),
        (vec!["--duration", "2"], "--duration"),
        (vec!["--bug", "no-such-bug"], "unknown bug"),
        (
            vec!["--python", "/nonexistent/python"],
            "cannot import confluent_kafka",
        ),
    ] {
        let mut all = vec!["chaos".to_string()];
        all.extend(args.iter().map(|a| a.to_string()));
        let (code, stdout, stderr) = run_with_deadline(&all, Duration::from_secs(30));
        assert_eq!(code, Some(2), "{args:?}: {stdout}{stderr}");
        assert!(stderr.contains(expect), "{args:?}: {stderr}");
    }
}
