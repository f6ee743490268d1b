//! A sweep split over machines: `run --shard K/N` (or the shard a CI system's environment
//! names) with `--json`, and `merge` of the files, must give exactly what one run gives.
#![cfg(madsim)]

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

/// Runs `sims` with `env` set and no shard variable inherited from the test's own environment.
fn sims_env(args: &[&str], env: &[(&str, &str)]) -> (String, i32) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sims"));
    for var in sims::cli::shard::INDEX_VARS
        .iter()
        .chain(&sims::cli::shard::COUNT_VARS)
        .chain(&["SEEDLOG_COMMIT"])
    {
        cmd.env_remove(var);
    }
    let out = cmd
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("run sims");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (text, out.status.code().unwrap_or(-1))
}

fn sims(args: &[&str]) -> (String, i32) {
    sims_env(args, &[])
}

fn last_result_line(text: &str) -> &str {
    text.lines()
        .rfind(|l| l.starts_with("RESULT"))
        .unwrap_or("")
}

/// The lines `run` and `merge` print for seeds: `seed=...` and what follows a failing one.
fn seed_lines(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| l.starts_with("seed=") || l.starts_with("    "))
        .collect()
}

/// A file in a directory of this test's own.
fn tmp(test: &str, name: &str) -> String {
    let dir = std::env::temp_dir().join(format!("seedlog-shard-{}-{test}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir.join(name).to_str().expect("utf-8 path").to_string()
}

/// A `--json` file's records by seed, without what differs between machines and shards (wall
/// time, the shard itself).
fn records(path: &str) -> BTreeMap<u64, Value> {
    std::fs::read_to_string(path)
        .expect("json written")
        .lines()
        .map(|l| {
            let mut v: Value = serde_json::from_str(l).expect("a JSON line");
            let obj = v.as_object_mut().expect("an object");
            obj.remove("wall_ms");
            obj.remove("shard");
            (v["seed"].as_u64().expect("seed"), v)
        })
        .collect()
}

/// Common flags: few, short seeds, with a bug switch so that some seeds fail (which ones moves
/// with the schedules; the test asks the whole run).
const SWEEP: [&str; 8] = [
    "--seeds",
    "6",
    "--first",
    "0",
    "--sim-secs",
    "2",
    "--bug",
    "latest-is-log-end",
];

#[test]
fn a_sharded_sweep_gives_exactly_the_verdicts_and_hashes_of_one_run() {
    let whole = tmp("equal", "whole.jsonl");
    let (one, code) = sims(&[&["run", "--json", &whole][..], &SWEEP].concat());
    assert_eq!(code, 1, "{one}");
    assert!(
        one.contains(" FAILED hash=") && one.contains("ok hash="),
        "the sweep should hold failing and clean seeds:\n{one}"
    );
    // The seeds the whole run failed: a shard fails (exit 1) exactly when it holds one of them.
    let failing: Vec<u64> = (0..6)
        .filter(|s| one.contains(&format!("seed={s} FAILED")))
        .collect();
    let mut files = Vec::new();
    let mut sharded = BTreeMap::new();
    for k in 0..3 {
        let file = tmp("equal", &format!("shard-{k}.jsonl"));
        let shard = format!("{k}/3");
        let (out, code) =
            sims(&[&["run", "--shard", &shard, "--json", &file][..], &SWEEP].concat());
        assert!(
            out.contains(&format!(
                "shard {k}/3 (from --shard): 2 of the seeds 0..6, those with seed % 3 = {k}"
            )),
            "{out}"
        );
        let expected_code = i32::from(failing.iter().any(|s| s % 3 == k));
        assert_eq!(code, expected_code, "{out}");
        assert!(
            last_result_line(&out).ends_with(&format!(" shard={k}/3")),
            "{out}"
        );
        for (seed, rec) in records(&file) {
            assert_eq!(seed % 3, k, "shard {k} ran seed {seed}");
            assert!(sharded.insert(seed, rec).is_none(), "seed {seed} twice");
        }
        files.push(file);
    }
    // Seed by seed: verdict, problems, hash, events, simulated time, coverage, replay command.
    assert_eq!(sharded, records(&whole));

    let args: Vec<&str> = ["merge"]
        .into_iter()
        .chain(files.iter().map(String::as_str))
        .collect();
    let (merged, code) = sims(&args);
    assert_eq!(code, 1, "{merged}");
    assert_eq!(seed_lines(&merged), seed_lines(&one));
    let first = failing[0];
    assert!(
        merged.contains(&format!(
            "replay: cargo sim replay --seed {first} --bug latest-is-log-end --sim-secs 2 --trace"
        )),
        "{merged}"
    );
    // A violation's RESULT line carries no times: merge's is the run's, character for character.
    assert_eq!(last_result_line(&merged), last_result_line(&one));
    assert!(
        last_result_line(&merged).starts_with(&format!(
            "RESULT violation seeds=6 failed={} first_failing_seed={first} problem=latest-above-hw",
            failing.len()
        )),
        "{merged}"
    );
    // So is the coverage table.
    let table = |t: &str| -> Vec<String> {
        t.lines()
            .skip_while(|l| !l.starts_with("coverage over"))
            .take_while(|l| !l.starts_with("RESULT"))
            .map(String::from)
            .collect()
    };
    assert_eq!(table(&merged), table(&one));
}

#[test]
fn the_shard_comes_from_kubernetes_or_buildkite_variables() {
    let flags = ["--seeds", "6", "--sim-secs", "2"];
    let whole = tmp("env", "whole.jsonl");
    let (one, code) = sims(&[&["run", "--json", &whole][..], &flags].concat());
    assert_eq!(code, 0, "{one}");
    assert!(
        !one.contains("shard"),
        "an unsharded run says nothing of shards:\n{one}"
    );
    let mut files = Vec::new();
    for k in 0..3 {
        let file = tmp("env", &format!("k8s-{k}.jsonl"));
        let index = k.to_string();
        // A Kubernetes Indexed Job: the index from Kubernetes, the count from the manifest.
        let env = [
            ("JOB_COMPLETION_INDEX", index.as_str()),
            ("SEEDLOG_SHARD_COUNT", "3"),
        ];
        let (out, code) = sims_env(&[&["run", "--json", &file][..], &flags].concat(), &env);
        assert_eq!(code, 0, "{out}");
        assert!(
            out.contains(&format!(
                "shard {k}/3 (from JOB_COMPLETION_INDEX={k}, SEEDLOG_SHARD_COUNT=3)"
            )),
            "{out}"
        );
        files.push(file);
    }
    let args: Vec<&str> = ["merge"]
        .into_iter()
        .chain(files.iter().map(String::as_str))
        .collect();
    let (merged, code) = sims(&args);
    assert_eq!(code, 0, "{merged}");
    assert_eq!(seed_lines(&merged), seed_lines(&one));
    assert!(
        last_result_line(&merged).starts_with("RESULT ok seeds=6 failed=0"),
        "{merged}"
    );
    // Six short seeds do not reach every situation: required, that fails the merge as it fails
    // a run.
    let (merged, code) = sims(&[&["merge", "--require-coverage"][..], &args[1..]].concat());
    assert_eq!(code, 1, "{merged}");
    assert!(
        last_result_line(&merged)
            .starts_with("RESULT violation seeds=6 failed=0 problem=coverage unreached="),
        "{merged}"
    );

    // Buildkite's parallel jobs name index and count; seeds 1 and 4 are shard 1 of 3.
    let env = [
        ("BUILDKITE_PARALLEL_JOB", "1"),
        ("BUILDKITE_PARALLEL_JOB_COUNT", "3"),
    ];
    let (out, code) = sims_env(&[&["run"][..], &flags].concat(), &env);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("shard 1/3 (from BUILDKITE_PARALLEL_JOB=1, BUILDKITE_PARALLEL_JOB_COUNT=3)"),
        "{out}"
    );
    let seeds: Vec<&str> = seed_lines(&out)
        .iter()
        .filter_map(|l| l.split(' ').next())
        .collect();
    assert_eq!(seeds, ["seed=1", "seed=4"]);
    // --shard-count supplies the count Kubernetes does not give.
    let (out, code) = sims_env(
        &[&["run", "--shard-count", "3"][..], &flags].concat(),
        &[("JOB_COMPLETION_INDEX", "2")],
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("shard 2/3 (from JOB_COMPLETION_INDEX=2, --shard-count=3)"),
        "{out}"
    );
    // --shard wins over the environment, and says so.
    let (out, code) = sims_env(&[&["run", "--shard", "0/3"][..], &flags].concat(), &env);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("shard 0/3 (from --shard, which overrides BUILDKITE_PARALLEL_JOB=1, BUILDKITE_PARALLEL_JOB_COUNT=3)"),
        "{out}"
    );
}

#[test]
fn bad_shards_are_refused_with_exit_2() {
    for (args, env, says) in [
        (vec!["--shard", "3/3"], vec![], "out of range for 3 shards"),
        (vec!["--shard", "0/0"], vec![], "at least 1"),
        (vec!["--shard", "two/3"], vec![], "not a whole number"),
        (vec!["--shard", "1"], vec![], "not K/N"),
        (
            vec!["--shard", "1/3", "--shard-count", "3"],
            vec![],
            "cannot be used with",
        ),
        (
            vec![],
            vec![("JOB_COMPLETION_INDEX", "1")],
            "nothing says how many shards",
        ),
        (
            vec![],
            vec![("SEEDLOG_SHARD_COUNT", "4")],
            "nothing says which one this is",
        ),
        (
            vec![],
            vec![("JOB_COMPLETION_INDEX", "4"), ("SEEDLOG_SHARD_COUNT", "4")],
            "out of range for 4 shards",
        ),
        (
            vec![],
            vec![
                ("BUILDKITE_PARALLEL_JOB", "x"),
                ("BUILDKITE_PARALLEL_JOB_COUNT", "2"),
            ],
            "BUILDKITE_PARALLEL_JOB=x is not a whole number",
        ),
        (
            vec![],
            vec![
                ("BUILDKITE_PARALLEL_JOB", "0"),
                ("BUILDKITE_PARALLEL_JOB_COUNT", "2"),
                ("SEEDLOG_SHARD_COUNT", "3"),
            ],
            "conflicting shard counts",
        ),
    ] {
        let (out, code) = sims_env(&[&["run", "--seeds", "1"][..], &args].concat(), &env);
        assert_eq!(code, 2, "{args:?} {env:?}: {out}");
        assert!(out.contains(says), "{args:?} {env:?}: {out}");
        assert!(!out.contains("seed=0"), "ran a seed anyway: {out}");
    }
}

/// Writes `lines` to a file of the test's own.
fn write(test: &str, name: &str, lines: &[String]) -> String {
    let path = tmp(test, name);
    std::fs::write(&path, lines.join("\n") + "\n").expect("write");
    path
}

#[test]
fn merge_catches_conflicting_duplicates_missing_seeds_and_bad_files() {
    let file = tmp("merge", "run.jsonl");
    let (out, code) = sims(&["run", "--seeds", "3", "--sim-secs", "2", "--json", &file]);
    assert_eq!(code, 0, "{out}");
    let text = std::fs::read_to_string(&file).expect("written");
    let lines: Vec<String> = text.lines().map(String::from).collect();
    assert_eq!(lines.len(), 3);
    // The commit the simulator was built from (in a git checkout), or one named at run time.
    let first: Value = serde_json::from_str(&lines[0]).expect("JSON");
    let commit = first["commit"].as_str().expect("commit");
    match first["commit_from"].as_str() {
        Some("build") => assert!(
            commit.len() >= 40 && commit[..40].chars().all(|c| c.is_ascii_hexdigit()),
            "{commit}"
        ),
        other => assert_eq!((other, commit), (Some("unknown"), "unknown")),
    }
    let labelled = tmp("merge", "labelled.jsonl");
    let (out, code) = sims_env(
        &[
            "run",
            "--seeds",
            "1",
            "--sim-secs",
            "2",
            "--json",
            &labelled,
        ],
        &[("SEEDLOG_COMMIT", "nightly-42")],
    );
    assert_eq!(code, 0, "{out}");
    let v: Value =
        serde_json::from_str(&std::fs::read_to_string(&labelled).expect("written")).expect("JSON");
    assert_eq!(
        (&v["commit"], &v["commit_from"]),
        (&"nightly-42".into(), &"SEEDLOG_COMMIT".into())
    );
    let edit = |line: &str, key: &str, value: Value| -> String {
        let mut v: Value = serde_json::from_str(line).expect("JSON");
        v[key] = value;
        v.to_string()
    };

    // The same file twice: every seed recorded twice, alike.
    let (out, code) = sims(&["merge", &file, &file]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("duplicates: 3 records repeat a seed with the same result"),
        "{out}"
    );
    assert!(
        last_result_line(&out).starts_with("RESULT ok seeds=3 failed=0"),
        "{out}"
    );

    // Seed 1 again with another hash, from the same build: a determinism failure.
    let other = write(
        "merge",
        "other-hash.jsonl",
        &[edit(&lines[1], "hash", "0123456789abcdef".into())],
    );
    let (out, code) = sims(&["merge", &file, &other]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("seed=1 FAILED"), "{out}");
    assert!(
        out.contains("nondeterminism: seed 1 recorded twice with different results"),
        "{out}"
    );
    assert!(
        out.contains("other-hash.jsonl line 1: ok hash=0123456789abcdef"),
        "{out}"
    );
    assert!(
        out.contains("replay: cargo sim replay --seed 1 --sim-secs 2 --trace"),
        "{out}"
    );
    assert_eq!(
        last_result_line(&out),
        "RESULT violation seeds=3 failed=1 first_failing_seed=1 problem=nondeterminism"
    );
    // ... or with another verdict.
    let failed = edit(&lines[2], "verdict", "failed".into());
    let failed = edit(
        &failed,
        "problems",
        serde_json::json!([{"name": "lost-write", "message": "lost-write t-0@1: made up"}]),
    );
    let failed = write("merge", "other-verdict.jsonl", &[failed]);
    let (out, code) = sims(&["merge", &file, &failed]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("nondeterminism: seed 2"), "{out}");
    // From another commit the difference is the build's, and still fails the merge.
    let other_build = write(
        "merge",
        "other-build.jsonl",
        &[edit(
            &edit(&lines[1], "hash", "0123456789abcdef".into()),
            "commit",
            "feedface".into(),
        )],
    );
    let (out, code) = sims(&["merge", &file, &other_build]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("note: the records come from 2 builds"),
        "{out}"
    );
    assert!(
        last_result_line(&out).ends_with("first_failing_seed=1 problem=build-mismatch"),
        "{out}"
    );

    // A seed of the range with no record: incomplete, exit 2, naming it and its shard.
    let partial = write(
        "merge",
        "partial.jsonl",
        &[lines[0].clone(), lines[2].clone()],
    );
    let (out, code) = sims(&["merge", &partial]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("missing: 1 of the 3 seeds of 0..3 have no record (1); shards missing some: 0/1 (1 of 3)"),
        "{out}"
    );
    assert_eq!(
        last_result_line(&out),
        "RESULT error reason=incomplete seeds=2 missing=1 first_missing_seed=1"
    );

    // Bad files: named with the line.
    let garbled = write(
        "merge",
        "garbled.jsonl",
        &[lines[0].clone(), "{\"seed\": 1, \"verdict\"".into()],
    );
    let bad_hash = write(
        "merge",
        "bad-hash.jsonl",
        &[edit(&lines[0], "hash", "xyz".into())],
    );
    let wrong_shard = write(
        "merge",
        "wrong-shard.jsonl",
        &[edit(
            &lines[1],
            "shard",
            serde_json::json!({"index": 0, "count": 2}),
        )],
    );
    let other_sweep = write(
        "merge",
        "other-sweep.jsonl",
        &[edit(
            &lines[1],
            "options",
            serde_json::json!({"bugs": ["dedup-window-1"], "sim_secs": 2, "durability": null}),
        )],
    );
    let empty = write("merge", "empty.jsonl", &[]);
    for (files, says) in [
        (
            vec![garbled.as_str()],
            "garbled.jsonl line 2: not a seed record",
        ),
        (
            vec![bad_hash.as_str()],
            "bad-hash.jsonl line 1: not a valid seed record: hash 'xyz'",
        ),
        (
            vec![wrong_shard.as_str()],
            "wrong-shard.jsonl line 1: not a valid seed record: seed 1 is not in shard 0/2",
        ),
        (
            vec![file.as_str(), other_sweep.as_str()],
            "are of different sweeps (run with --sim-secs 2 and with --bug dedup-window-1 --sim-secs 2)",
        ),
        (
            vec![file.as_str(), "/nonexistent/shard.jsonl"],
            "cannot read /nonexistent/shard.jsonl",
        ),
        (vec![empty.as_str()], "the files hold no seed records"),
    ] {
        let (out, code) = sims(&[&["merge"][..], &files].concat());
        assert_eq!(code, 2, "{files:?}: {out}");
        assert!(out.contains(says), "{files:?}: {out}");
        assert_eq!(
            last_result_line(&out),
            "RESULT error reason=bad-input",
            "{out}"
        );
    }
}

#[test]
fn an_unwritable_json_file_is_refused_before_any_seed_runs() {
    let dir = PathBuf::from(tmp("unwritable", "x")).with_file_name("no-such-dir");
    let path = dir.join("out.jsonl");
    let (out, code) = sims(&[
        "run",
        "--seeds",
        "1",
        "--json",
        path.to_str().expect("utf-8"),
    ]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("cannot write"), "{out}");
    assert!(!out.contains("seed=0"), "{out}");
    assert_eq!(
        last_result_line(&out),
        "RESULT error reason=json-unwritable"
    );
}
