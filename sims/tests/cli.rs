//! The simulator CLI's contract: last line `RESULT ...`, exit 0 / 1 / 2.

use std::process::Command;

fn sims(args: &[&str]) -> (String, i32) {
    let out = Command::new(env!("CARGO_BIN_EXE_sims"))
        .args(args)
        .output()
        .expect("run sims");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (text, out.status.code().unwrap_or(-1))
}

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
    ] {
        let (out, code) = sims(&args);
        assert_eq!(code, 2, "{args:?}: {out}");
    }
}

#[test]
fn schedule_prints_the_scenario_as_json() {
    let (out, code) = sims(&["schedule", "--seed", "4", "--sim-secs", "5"]);
    assert_eq!(code, 0, "{out}");
    let json: String = out
        .lines()
        .take_while(|l| !l.starts_with("RESULT"))
        .collect();
    let v: serde_json::Value = serde_json::from_str(&json).expect("scenario JSON");
    assert_eq!(v["seed"], 4);
    assert!(v["schedule"]["events"].is_array());
}
