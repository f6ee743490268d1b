//! The simulator CLI's contract: last line `RESULT ...`, exit 0 / 1 / 2.

mod common;
use common::sims;

fn fixture(name: &str) -> String {
    format!(
        "{}/../tests/fixtures/histories/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn last_result_line(text: &str) -> &str {
    text.lines()
        .rfind(|l| l.starts_with("RESULT"))
        .unwrap_or("")
}

#[test]
fn check_history_ok_violation_and_malformed() {
    let (out, code) = sims(&["check-history", &fixture("valid.jsonl")]);
    assert_eq!(code, 0, "{out}");
    assert!(
        last_result_line(&out).starts_with("RESULT ok events=18"),
        "{out}"
    );

    let (out, code) = sims(&["check-history", &fixture("lost-write.jsonl")]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("lost-write t-0@1"), "{out}");
    assert_eq!(
        last_result_line(&out),
        "RESULT violation anomalies=2 kinds=lost-write:1,poll-skip:1"
    );

    let (out, code) = sims(&["check-history", &fixture("malformed.jsonl")]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("line 2"), "{out}");

    let (out, code) = sims(&["check-history", "/nonexistent/history.jsonl"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("cannot read"), "{out}");
}

#[test]
fn bad_arguments_exit_2() {
    for args in [
        vec!["run", "--seeds", "0"],
        vec!["run", "--bug", "no-such-bug"],
        vec!["replay"],
        vec!["frobnicate"],
        vec![
            "schedule",
            "--seed",
            "1",
            "--bug",
            "isr-before-epoch-start",
            "--bug",
            "ack-before-isr",
        ],
        vec!["run", "--nemesis", "no-such-nemesis"],
        // A switch hunted by one nemesis, with another named.
        vec![
            "schedule",
            "--seed",
            "1",
            "--bug",
            "vote-not-durable",
            "--nemesis",
            "figure-8",
        ],
    ] {
        let (out, code) = sims(&args);
        assert_eq!(code, 2, "{args:?}: {out}");
    }
}

/// The scenario `schedule ARGS` prints, parsed.
fn schedule(args: &[&str]) -> serde_json::Value {
    let (out, code) = sims(&[&["schedule"], args].concat());
    assert_eq!(code, 0, "{out}");
    let json: String = out
        .lines()
        .take_while(|l| !l.starts_with("RESULT"))
        .collect();
    serde_json::from_str(&json).expect("scenario JSON")
}

#[test]
fn schedule_prints_the_scenario_as_json() {
    let v = schedule(&["--seed", "4", "--sim-secs", "5"]);
    assert_eq!(v["seed"], 4);
    assert!(v["schedule"]["events"].is_array());
}

/// `--nemesis` draws the schedule from that nemesis without any bug switch (the scenario names
/// it), and a failing seed's replay command carries the flag.
#[test]
fn a_nemesis_runs_without_a_bug_switch() {
    let v = schedule(&["--seed", "3", "--nemesis", "controller-storm"]);
    assert_eq!(v["mix"]["nemesis"], "controller-storm", "{v}");
    assert_eq!(v["bugs"], serde_json::json!([]), "{v}");
    let plain = schedule(&["--seed", "3"]);
    assert!(plain["mix"].get("nemesis").is_none(), "{plain}");
}

/// The peak resident memory a `run` reports, in MB.
#[cfg(madsim)]
fn peak_mb(out: &str) -> u64 {
    out.lines()
        .find_map(|l| l.strip_prefix("memory: peak resident "))
        .and_then(|l| l.trim_end_matches(" MB").parse().ok())
        .unwrap_or_else(|| panic!("no memory line in:\n{out}"))
}

/// A sweep's memory is flat in its number of seeds: every run's tasks are freed when it ends.
/// (Tasks left pending when a run's runtime was dropped kept about 3 MB per seed: 120 seeds
/// then peaked some 300 MB above 20.)
#[cfg(madsim)]
#[test]
fn a_longer_sweep_does_not_use_more_memory() {
    let (short, code) = sims(&["run", "--seeds", "20", "--jobs", "1"]);
    assert_eq!(code, 0, "{short}");
    let (long, code) = sims(&["run", "--seeds", "120", "--jobs", "1"]);
    assert_eq!(code, 0, "{long}");
    let (a, b) = (peak_mb(&short), peak_mb(&long));
    assert!(b <= a + 40, "20 seeds peaked at {a} MB, 120 at {b} MB");
}

/// `run` ends with the coverage table; with --require-coverage a situation no seed reached fails
/// the sweep, and --coverage-json writes the same table.
#[cfg(madsim)]
#[test]
fn coverage_is_reported_and_can_be_required() {
    let json = std::env::temp_dir().join(format!("seedlog-coverage-{}.json", std::process::id()));
    let json_arg = json.to_str().expect("utf-8 path");
    // One seed cannot reach every situation (no single run has both kinds of election).
    let args = [
        "run",
        "--seeds",
        "1",
        "--require-coverage",
        "--coverage-json",
        json_arg,
    ];
    let (out, code) = sims(&args);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("coverage over 1 seeds"), "{out}");
    assert!(out.contains("NEVER REACHED"), "{out}");
    let result = last_result_line(&out);
    assert!(
        result.starts_with("RESULT violation seeds=1 failed=0 problem=coverage unreached="),
        "{out}"
    );
    let table: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("written")).expect("JSON");
    assert_eq!(table["seeds"], 1);
    assert_eq!(table["situations"]["clean-election"]["seeds"], 1, "{table}");
    assert_eq!(
        table["situations"]["unclean-election"]["seeds"], 0,
        "{table}"
    );
    let _ = std::fs::remove_file(&json);
    // Without the flag the same sweep is clean.
    let (out, code) = sims(&["run", "--seeds", "1"]);
    assert_eq!(code, 0, "{out}");
}

/// A reader that stops early (`sims replay --trace | head`) ends the simulator quietly, as it
/// would `cat`: no panic message for the closed pipe. (Simulator build only: the normal build's
/// `sims` prints one line and refuses to run.)
#[cfg(madsim)]
#[test]
fn a_closed_pipe_ends_the_output_without_a_panic() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_sims"))
        .args(["replay", "--seed", "1", "--trace"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run sims");
    let mut first = String::new();
    let mut out = BufReader::new(child.stdout.take().expect("piped"));
    out.read_line(&mut first).expect("a first line");
    assert!(first.starts_with("seed 1:"), "{first}");
    // The trace is over a megabyte: closing the pipe here leaves most of it unwritten.
    drop(out);
    let done = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!done.status.success(), "it cannot have written everything");
}
