//! The CLI's contract: exit codes and the last line.

use std::process::Command;

fn models(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_models"))
        .args(args)
        .output()
        .expect("run the models binary");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn unknown_bug_is_a_usage_error() {
    let (code, _, err) = models(&["check", "replication", "--bug", "no-such-bug"]);
    assert_eq!(code, 2);
    assert!(err.contains("unknown bug 'no-such-bug'"), "{err}");
}

#[test]
fn impossible_bounds_are_a_usage_error() {
    let (code, _, err) = models(&[
        "check",
        "replication",
        "--brokers",
        "2",
        "--min-insync",
        "3",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("--min-insync 3"), "{err}");
    let (code, _, _) = models(&["check", "nonsense"]);
    assert_eq!(code, 2);
    let (code, _, err) = models(&["check", "offsets", "--controllers", "3"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("--controllers applies to the replication model only"),
        "{err}"
    );
}

#[test]
fn a_violation_exits_1_with_a_result_line() {
    let (code, out, _) = models(&[
        "check",
        "replication",
        "--bug",
        "ack-before-isr",
        "--threads",
        "1",
    ]);
    assert_eq!(code, 1, "{out}");
    let last = out.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("RESULT violation model=replication property=acked-not-lost depth="),
        "{last}"
    );
}

#[test]
fn a_clean_run_exits_0_with_a_result_line() {
    let (code, out, _) = models(&["check", "partitioning"]);
    assert_eq!(code, 0, "{out}");
    let last = out.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("RESULT ok model=partitioning unique_states="),
        "{last}"
    );
}

/// `--preset target` is the formed start at the target's bounds, searched depth-first with the
/// symmetry reduction; a bound given as well overrides the preset's (here 1 record, to stay
/// quick), and `--preset` is the quorum model's only.
#[test]
fn the_quorum_preset_sets_the_target_bounds_and_search() {
    let (code, out, _) = models(&["check", "quorum", "--preset", "target", "--records", "1"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(
            "model=quorum voters=3 records=1 crashes=1 election_timeouts=1 max_epoch=2 start=formed"
        ),
        "{out}"
    );
    assert!(!out.contains("NEVER REACHED"), "{out}");
    let last = out.lines().last().unwrap_or_default();
    assert!(last.starts_with("RESULT ok model=quorum"), "{last}");
    assert!(!last.contains("exhaustive=false"), "{last}");
    let (code, _, err) = models(&["check", "replication", "--preset", "target"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("--preset applies to the quorum model only"),
        "{err}"
    );
}
