//! Consumer groups for real: a member of group `g` reads and commits, its process is killed, and
//! a new member of `g` resumes at the committed offset — it reads what was produced since, not
//! the log from the start. Another group starts from the beginning: offsets are per group.

mod common;

use common::{client, command, start_cluster, values, BIN};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

fn offsets(lines: &[String]) -> Vec<u64> {
    lines
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v.get("offset")?.as_u64())
        .collect()
}

#[test]
fn a_killed_member_is_replaced_by_one_that_resumes_at_the_committed_offset() {
    let dir = tempfile::tempdir().expect("temp dir");
    let session = ["--group-session-timeout-ms", "2000"];
    let (_procs, layout) = start_cluster(dir.path(), "events:1:3", &session);
    let produce = |prefix: &str, count: &str| {
        let args = command(
            "produce",
            &layout,
            &["--topic", "events", "--count", count, "--prefix", prefix],
        );
        let (lines, code) = client(&args);
        assert_eq!(code, 0, "produce failed: {lines:?}");
    };
    produce("first-", "30");

    // Member A: no --count, so it would run until its timeout; we kill it once it has committed
    // everything there is.
    let args = command(
        "consume",
        &layout,
        &["--topic", "events", "--group", "g", "--timeout-ms", "60000"],
    );
    let mut a = Command::new(BIN)
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start member A");
    let stdout = a.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut read_by_a = Vec::new();
    loop {
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("member A committed offset 30 within 30 s");
        let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        if v.get("value").is_some() {
            read_by_a.push(line.clone());
        }
        if v["committed"]["offset"].as_u64() == Some(30) {
            break;
        }
    }
    a.kill().expect("kill member A");
    let _ = a.wait();
    assert_eq!(offsets(&read_by_a), (0..30).collect::<Vec<u64>>());

    produce("second-", "10");
    // Member B joins once A's session has expired, fetches the group's committed offset (30) and
    // reads from there: exactly the ten new records.
    let args = command(
        "consume",
        &layout,
        &[
            "--topic",
            "events",
            "--group",
            "g",
            "--count",
            "10",
            "--timeout-ms",
            "30000",
        ],
    );
    let (lines, code) = client(&args);
    assert_eq!(code, 0, "member B failed: {lines:?}");
    assert_eq!(offsets(&lines), (30..40).collect::<Vec<u64>>());
    let expected: Vec<String> = (0..10).map(|n| format!("second-{n}")).collect();
    assert_eq!(values(&lines), expected);

    // A group with no committed offsets starts at the log start (auto.offset.reset=earliest).
    let args = command(
        "consume",
        &layout,
        &[
            "--topic",
            "events",
            "--group",
            "other",
            "--count",
            "40",
            "--timeout-ms",
            "30000",
        ],
    );
    let (lines, code) = client(&args);
    assert_eq!(code, 0, "group 'other' failed: {lines:?}");
    assert_eq!(offsets(&lines), (0..40).collect::<Vec<u64>>());

    // An application seek backwards: group g re-reads from offset 5, and commits where it stops.
    let args = command(
        "consume",
        &layout,
        &[
            "--topic", "events", "--group", "g", "--seek", "0:5", "--count", "3",
        ],
    );
    let (lines, code) = client(&args);
    assert_eq!(code, 0, "seeking member failed: {lines:?}");
    assert_eq!(offsets(&lines), vec![5, 6, 7]);
    let committed = r#"{"committed":{"offset":8,"partition":0}}"#;
    assert!(lines.iter().any(|l| l == committed), "{lines:?}");
}

#[test]
fn no_committed_offset_and_reset_none_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_procs, layout) = start_cluster(dir.path(), "events:1:3", &[]);
    let args = command(
        "consume",
        &layout,
        &[
            "--topic",
            "events",
            "--group",
            "fresh",
            "--offset-reset",
            "none",
            "--timeout-ms",
            "20000",
        ],
    );
    let (code, _, stderr) = common::run_with_deadline(&args, Duration::from_secs(40));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("no committed offset for events-0 in group fresh"),
        "{stderr}"
    );
}

#[test]
fn a_bad_offset_reset_is_a_usage_error() {
    let args = command(
        "consume",
        &["--brokers".into(), "127.0.0.1:1".into()],
        &[
            "--topic",
            "t",
            "--group",
            "g",
            "--offset-reset",
            "sometimes",
        ],
    );
    let (code, _, stderr) = common::run_with_deadline(&args, Duration::from_secs(10));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("expected 'earliest', 'latest' or 'none'"),
        "{stderr}"
    );
    let args = command(
        "consume",
        &["--brokers".into(), "127.0.0.1:1".into()],
        &["--topic", "t", "--group", "g", "--seek", "five"],
    );
    let (code, _, stderr) = common::run_with_deadline(&args, Duration::from_secs(10));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("expected PARTITION:OFFSET"), "{stderr}");
}
