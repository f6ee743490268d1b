#!/usr/bin/env bash
# Real produce rate: starts a controller (a quorum of one) and three brokers of the `seedlog`
# binary on 127.0.0.1 (topic `bench` with 1 partition replicated 3 ways, min.insync.replicas=2),
# produces COUNT records of 100 bytes with acks=all, and prints the rate. Run it from the repository root after
# `cargo build --release`:
#
#   scripts/bench-produce.sh [replicated|fsync] [COUNT] [BIN]
#
# BIN (default target/release/seedlog) lets the same benchmark time an older build (one that takes
# `--controllers`: builds from before the controller quorum took `--controller`); PRODUCE_ARGS
# passes options to the producer (e.g. PRODUCE_ARGS="--batch-size 65536 --linger-ms 10"). The last line
# is `BENCH durability=... records=N secs=S records_per_sec=R`; exit 1 if the produce failed.
set -euo pipefail

durability=${1:-replicated}
count=${2:-2000}
bin=${3:-target/release/seedlog}
case "$durability" in replicated | fsync) ;; *)
    echo "usage: $0 [replicated|fsync] [COUNT] [BIN]" >&2
    exit 2
    ;;
esac
[ -x "$bin" ] || {
    echo "$bin: not built (cargo build --release)" >&2
    exit 2
}

dir=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$dir"
}
trap cleanup EXIT

# Ports from the process id, so two benchmarks on one machine do not collide.
base=$((20000 + ($$ % 2000) * 5))
brokers="127.0.0.1:$base,127.0.0.1:$((base + 1)),127.0.0.1:$((base + 2))"
layout=(--brokers "$brokers")
node_layout=("${layout[@]}" --controllers "127.0.0.1:$((base + 3))")

wait_ready() { # file
    for _ in $(seq 1 100); do
        grep -q READY "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "node did not start: $(cat "$1")" >&2
    exit 1
}

"$bin" controller --id 100 "${node_layout[@]}" --topic bench:1:3 --data-dir "$dir/ctl" >"$dir/ctl.out" 2>&1 &
pids+=($!)
wait_ready "$dir/ctl.out"
for i in 0 1 2; do
    "$bin" broker --id $i "${node_layout[@]}" --data-dir "$dir/b$i" --min-insync-replicas 2 \
        --durability "$durability" >"$dir/b$i.out" 2>&1 &
    pids+=($!)
    wait_ready "$dir/b$i.out"
done

# A warm-up record: metadata, leader election and connections are not part of the rate.
"$bin" produce "${layout[@]}" --topic bench --count 1 --prefix warmup- --timeout-ms 30000 >/dev/null

# 100-byte values: a 10-byte prefix and a counter, padded.
prefix=$(printf 'x%.0s' $(seq 1 90))
start=$(date +%s%N)
# shellcheck disable=SC2086 # PRODUCE_ARGS is a list of options, split on purpose.
if ! "$bin" produce "${layout[@]}" --topic bench --count "$count" --prefix "$prefix" \
    --timeout-ms 600000 ${PRODUCE_ARGS:-} >"$dir/produce.out" 2>"$dir/produce.err"; then
    tail -3 "$dir/produce.out" "$dir/produce.err" >&2
    exit 1
fi
end=$(date +%s%N)
secs=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
rate=$(awk -v n="$count" -v s="$secs" 'BEGIN { printf "%.0f", n / s }')
echo "BENCH durability=$durability records=$count secs=$secs records_per_sec=$rate"
