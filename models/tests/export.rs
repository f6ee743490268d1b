//! `check replication ... --bug X --export-schedule FILE`: each replication bug switch's
//! counterexample as a simulator scenario. The files are kept in
//! `tests/fixtures/model-schedules/`, where `sims/tests/model_schedules.rs` replays them; this
//! test checks they are what the exporter writes today (`UPDATE_MODEL_SCHEDULES=1` rewrites
//! them), and the command's errors.

use std::path::PathBuf;
use std::process::Command;

fn models(args: &[&str]) -> (String, i32) {
    let out = Command::new(env!("CARGO_BIN_EXE_models"))
        .args(args)
        .output()
        .expect("run models");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (text, out.status.code().unwrap_or(-1))
}

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("models-export-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir.join(name)
}

fn fixture(bug: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/model-schedules")
        .join(format!("{bug}.json"))
}

/// Each replication bug switch with the README's command for it (one thread: the same path on
/// every run).
const BUGS: &[(&str, &str)] = &[
    ("ack-before-isr", "--bug ack-before-isr --threads 1"),
    (
        "unclean-election",
        "--bug unclean-election --brokers 2 --min-insync 1 --durability fsync --crashes 1 \
         --expiries 2 --evictions 1 --max-changes 4 --threads 1",
    ),
    (
        "truncate-to-hw",
        "--bug truncate-to-hw --durability fsync --expiries 2 --max-changes 4 --threads 1",
    ),
    (
        "retry-out-of-order",
        "--bug retry-out-of-order --records 2 --max-in-flight 2 --no-reader --threads 1",
    ),
    (
        "dedup-window-1",
        "--bug dedup-window-1 --records 2 --max-in-flight 2 --no-reader --threads 1",
    ),
    (
        "ack-before-sync",
        "--bug ack-before-sync --brokers 2 --min-insync 1 --durability fsync --crashes 1 \
         --max-changes 3 --threads 1",
    ),
    // Random walks (one thread: the same walks on every run), as in the README.
    (
        "isr-before-epoch-start",
        "--bug isr-before-epoch-start --crashes 1 --expiries 1 --evictions 0 --max-changes 3 \
         --no-reader --search random --seed 4 --threads 1 --max-states 2000000",
    ),
    // Exported, but not reproducible in the simulator (its warnings say why; README).
    (
        "hw-from-stale-epoch",
        "--bug hw-from-stale-epoch --min-insync 1 --durability fsync --crashes 1 --expiries 2 \
         --evictions 1 --max-changes 5 --no-reader --search random --seed 1 --threads 1 \
         --max-states 2000000",
    ),
];

#[test]
fn every_replication_bug_exports_its_counterexample() {
    for (bug, args) in BUGS {
        let out_file = temp(&format!("{bug}.json"));
        let mut argv = vec!["check", "replication"];
        argv.extend(args.split(' '));
        argv.extend(["--export-schedule", out_file.to_str().expect("utf-8")]);
        let (out, code) = models(&argv);
        assert_eq!(code, 1, "{bug}: {out}");
        assert!(out.contains("schedule exported to"), "{bug}: {out}");
        let written = std::fs::read_to_string(&out_file).expect("exported");
        let json: serde_json::Value = serde_json::from_str(&written).expect("JSON");
        let switch: seedlog::node::Bug = bug.parse().expect("a bug switch");
        assert_eq!(json["bugs"], serde_json::json!([switch]), "{bug}");
        assert_eq!(
            json["from_model"]["command"],
            format!("cargo check-model check replication {args}"),
            "{bug}"
        );
        let kept = fixture(bug);
        if std::env::var_os("UPDATE_MODEL_SCHEDULES").is_some() {
            std::fs::write(&kept, &written).expect("update the fixture");
        } else {
            let before = std::fs::read_to_string(&kept).unwrap_or_default();
            assert!(
                before == written,
                "{bug}: the exported schedule differs from {} (UPDATE_MODEL_SCHEDULES=1 \
                 rewrites it; then run `cargo sim-test --test model_schedules`)",
                kept.display()
            );
        }
    }
}

#[test]
fn export_errors_are_named() {
    // Not the replication model.
    let file = temp("offsets.json");
    let (out, code) = models(&[
        "check",
        "offsets",
        "--export-schedule",
        file.to_str().expect("utf-8"),
    ]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("--export-schedule applies to the replication model only"),
        "{out}"
    );
    assert!(!file.exists());
    // A file that cannot be written.
    let (out, code) = models(&[
        "check",
        "replication",
        "--bug",
        "ack-before-isr",
        "--threads",
        "1",
        "--export-schedule",
        "/nonexistent/dir/schedule.json",
    ]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("error: cannot write /nonexistent/dir/schedule.json"),
        "{out}"
    );
    // No violation: nothing to export.
    let file = temp("none.json");
    let (out, _) = models(&[
        "check",
        "replication",
        "--threads",
        "1",
        "--export-schedule",
        file.to_str().expect("utf-8"),
    ]);
    assert!(
        out.contains("nothing exported: no violation was found"),
        "{out}"
    );
    assert!(!file.exists());
}
