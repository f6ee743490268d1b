#!/usr/bin/env python3
"""Runs the sharded sweeps of docs/ci on this machine, one shard after another, with the
environment the CI system would give each: the Kubernetes Indexed Job's container script with
JOB_COMPLETION_INDEX set by hand (and the manifest's own env), and the GitHub Actions matrix's
step with ${{ matrix.shard }} filled in. Then merges each one's files with `cargo sim merge` and
checks that the merge shows the same seeds, verdicts and trace hashes as one unsharded run.

    python3 docs/ci/dry-run.py [--seeds 200] [--first 0] [--sim-secs 20]

Run from anywhere in the repository; needs PyYAML. The Kubernetes script's `git clone` line is
replaced by a `cd` into this checkout, and its /results by a temporary directory; everything
else runs as written. Exit 0 when both agree with the unsharded run.
"""

import argparse
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SHARD_VARS = ["JOB_COMPLETION_INDEX", "BUILDKITE_PARALLEL_JOB",
              "SEEDLOG_SHARD_COUNT", "BUILDKITE_PARALLEL_JOB_COUNT"]


def run(cmd, env, cwd=ROOT):
    """Runs a bash script; returns (exit code, stdout)."""
    full = {k: v for k, v in os.environ.items() if k not in SHARD_VARS}
    full.update(env)
    p = subprocess.run(["bash", "-c", cmd], cwd=cwd, env=full, text=True,
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    return p.returncode, p.stdout


def seed_lines(text):
    return [l for l in text.splitlines() if l.startswith("seed=") or l.startswith("    ")]


def show(code, out, prefix):
    for line in out.splitlines():
        if line.startswith(("shard ", "RESULT", "missing:", "merged ")):
            print(f"{prefix}{line}")
    print(f"{prefix}exit {code}")


def kubernetes(args, tmp):
    with open(os.path.join(ROOT, "docs/ci/k8s-sweep-job.yaml")) as f:
        job = [d for d in yaml.safe_load_all(f) if d["kind"] == "Job"][0]
    container = job["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"]}
    env.update(SEEDS=str(args.seeds), FIRST=str(args.first))
    script = container["args"][0]
    script = re.sub(r"^git clone .*$", f"cd {ROOT}", script, flags=re.M)
    script = script.replace("/results", tmp)
    script = script.replace("cargo sim run", f"cargo sim run --sim-secs {args.sim_secs}")
    completions = job["spec"]["completions"]
    print(f"Kubernetes Indexed Job: {completions} completions, "
          f"SEEDLOG_SHARD_COUNT={env['SEEDLOG_SHARD_COUNT']}")
    for index in range(completions):
        code, out = run(script, {**env, "JOB_COMPLETION_INDEX": str(index)})
        show(code, out, f"  pod {index}: ")
    return sorted(glob.glob(os.path.join(tmp, "sweep-*.jsonl")))


def github(args, tmp):
    with open(os.path.join(ROOT, "docs/ci/github-actions-sweep.yml")) as f:
        wf = yaml.safe_load(f)
    job = wf["jobs"]["shard"]
    step = next(s for s in job["steps"] if "run" in s and "--shard" in s["run"])
    env = {"SEEDS": str(args.seeds), "FIRST": str(args.first)}
    shards = job["strategy"]["matrix"]["shard"]
    print(f"GitHub Actions matrix: shard {shards}")
    for k in shards:
        cmd = step["run"].replace("${{ matrix.shard }}", str(k))
        cmd = cmd.replace("cargo sim run", f"cargo sim run --sim-secs {args.sim_secs}")
        cmd = re.sub(r"--json (\S+)", rf"--json {tmp}/\1", cmd)
        code, out = run(cmd, env)
        show(code, out, f"  job {k}: ")
    return sorted(glob.glob(os.path.join(tmp, "sweep-*.jsonl")))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, default=200)
    p.add_argument("--first", type=int, default=0)
    p.add_argument("--sim-secs", type=int, default=20)
    args = p.parse_args()
    flags = f"--seeds {args.seeds} --first {args.first} --sim-secs {args.sim_secs}"
    code, whole = run(f"cargo sim run {flags} --jobs $(nproc)", {})
    print(f"one run: cargo sim run {flags}")
    show(code, whole, "  ")
    agree = True
    for name, system in [("Kubernetes", kubernetes), ("GitHub Actions", github)]:
        tmp = tempfile.mkdtemp(prefix="seedlog-dry-run-")
        files = system(args, tmp)
        code, merged = run("cargo sim merge " + " ".join(files), {})
        show(code, merged, "  merge: ")
        same = seed_lines(merged) == seed_lines(whole)
        agree &= same
        n = len([l for l in seed_lines(merged) if l.startswith("seed=")])
        print(f"  {name}: {n} seeds merged from {len(files)} files; same seeds, verdicts and "
              f"hashes as one run: {'yes' if same else 'NO'}")
        shutil.rmtree(tmp)
    sys.exit(0 if agree else 1)


if __name__ == "__main__":
    main()
