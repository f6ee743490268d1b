#!/usr/bin/env bash
# Simulator speed, A against B in one invocation: two `sims` binaries (say, one built from main
# and one from a branch) run the same sweep in turn, A B A B ..., so a drift in the machine's
# speed touches both alike; each run's accel (simulated seconds per wall second), CPU seconds and
# simulated seconds per CPU second are printed, then the medians and the median of the pairwise
# CPU ratios. With --callgrind
# it also counts each binary's instructions for a short sweep under valgrind (deterministic:
# immune to the machine's noise), with the events and simulated time each run made (and the
# instructions per simulated second), and checks that both print the same trace hash for every
# seed; --new-schedule says the two are expected to simulate other schedules (a change to when
# tasks wake), so differing hashes are printed, not an error.
#
#   bench/sim_ab.sh [--runs N] [--seeds S] [--jobs J] [--callgrind] [--cg-seeds C]
#                   [--new-schedule] BIN_A BIN_B
#
# Defaults: 5 pairs of `run --seeds 200 --jobs 1` (the standard scenario on one core), and
# `run --seeds 3 --jobs 1` under callgrind. Build a binary with `cargo sim --help` (it lands in
# target/sim/release/sims) and copy it aside before building the other. Not part of any test:
# it prints measurements, it asserts none (a differing trace hash is reported, with exit 1).
set -euo pipefail
. "$(dirname "$0")/ab_lib.sh"
runs=5 seeds=200 jobs=1 callgrind=0 cg_seeds=3 new_schedule=0
while [ $# -gt 0 ]; do
    case "$1" in
    --runs) runs=$2; shift 2 ;;
    --seeds) seeds=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    --callgrind) callgrind=1; shift ;;
    --cg-seeds) cg_seeds=$2; shift 2 ;;
    --new-schedule) new_schedule=1; shift ;;
    -h | --help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "error: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) break ;;
    esac
done
[ $# -eq 2 ] || { echo "error: give two sims binaries, A and B (see --help)" >&2; exit 2; }
a=$1 b=$2
need_binaries sims "$a" "$b"
need_counts "$runs" "$seeds" "$jobs" "$cg_seeds"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# One timed run: prints "accel cpu sim/cpu": accel (simulated seconds per wall second) from the
# RESULT line, CPU seconds (user + system) from /usr/bin/time, and simulated seconds per CPU
# second (what a core does when it is not shared: this machine's other jobs stretch wall time).
one() {
    local bin=$1 out=$tmp/out
    /usr/bin/time -f '%e %U %S' -o "$tmp/time" "$bin" run --seeds "$seeds" --jobs "$jobs" >"$out" 2>&1 ||
        { echo "error: $bin run failed:" >&2; tail -5 "$out" >&2; exit 1; }
    local accel
    accel=$(grep -o 'accel=[0-9]*' "$out" | cut -d= -f2)
    [ -n "$accel" ] || { echo "error: $bin printed no accel:" >&2; tail -3 "$out" >&2; exit 1; }
    local sim cpu
    sim=$(grep -o 'sim_secs=[0-9]*' "$out" | cut -d= -f2)
    read -r _ user sys <"$tmp/time"
    cpu=$(echo "scale=2; ($user + $sys) / 1" | bc)
    echo "$accel $cpu $(echo "scale=0; $sim / $cpu" | bc)"
}


echo "A: $a"
echo "B: $b"
echo "sweep: run --seeds $seeds --jobs $jobs, $runs pairs, alternating A B"
printf '%-6s %8s %8s %8s   %8s %8s %8s   %s\n' pair accel_A cpu_A simcpu_A accel_B cpu_B simcpu_B cpu_A/B
: >"$tmp/rows"
for i in $(seq 1 "$runs"); do
    read -r aa ac as <<<"$(one "$a")"
    read -r ba bc bs <<<"$(one "$b")"
    ratio=$(echo "scale=3; $ac / $bc" | bc)
    printf '%-6s %8s %8s %8s   %8s %8s %8s   %s\n' "$i" "$aa" "$ac" "$as" "$ba" "$bc" "$bs" "$ratio"
    echo "$aa $ac $as $ba $bc $bs $ratio" >>"$tmp/rows"
done
col() { awk -v c="$1" '{print $c}' "$tmp/rows" | median; }
printf '%-6s %8s %8s %8s   %8s %8s %8s   %s\n' median "$(col 1)" "$(col 2)" "$(col 3)" "$(col 4)" "$(col 5)" "$(col 6)" "$(col 7)"

if [ "$callgrind" = 1 ]; then
    command -v valgrind >/dev/null || { echo "error: --callgrind needs valgrind (apt-get install valgrind)" >&2; exit 2; }
    echo "callgrind: run --seeds $cg_seeds --jobs 1"
    for side in A B; do
        bin=$a
        [ "$side" = B ] && bin=$b
        valgrind --tool=callgrind --callgrind-out-file="$tmp/cg.$side" "$bin" run --seeds "$cg_seeds" --jobs 1 \
            >"$tmp/cgout.$side" 2>"$tmp/cgerr.$side" ||
            { echo "error: $bin under callgrind failed:" >&2; tail -5 "$tmp/cgerr.$side" >&2; exit 1; }
        grep -o 'Collected : [0-9]*' "$tmp/cgerr.$side" | awk '{print $3}' >"$tmp/ir.$side"
        grep -o '^seed=[0-9]* [a-z]* hash=[0-9a-f]*' "$tmp/cgout.$side" >"$tmp/hashes.$side" || true
        # Events and simulated milliseconds, summed over the seeds.
        grep -o 'events=[0-9]* sim_ms=[0-9]*' "$tmp/cgout.$side" | tr '=' ' ' |
            awk '{e+=$2; m+=$4} END {print e, m}' >"$tmp/work.$side"
    done
    ia=$(cat "$tmp/ir.A") ib=$(cat "$tmp/ir.B")
    read -r ea ma <"$tmp/work.A"
    read -r eb mb <"$tmp/work.B"
    printf 'instructions A %s  B %s  A/B %s\n' "$ia" "$ib" "$(echo "scale=3; $ia / $ib" | bc)"
    printf 'events       A %s  B %s;  simulated ms A %s  B %s\n' "$ea" "$eb" "$ma" "$mb"
    pa=$(echo "$ia * 1000 / $ma" | bc) pb=$(echo "$ib * 1000 / $mb" | bc)
    printf 'instructions per simulated second A %s  B %s  A/B %s\n' "$pa" "$pb" "$(echo "scale=3; $pa / $pb" | bc)"
    if diff -q "$tmp/hashes.A" "$tmp/hashes.B" >/dev/null; then
        echo "trace hashes: the same for all $cg_seeds seeds"
    elif [ "$new_schedule" = 1 ]; then
        echo "trace hashes differ (expected: --new-schedule)"
    else
        echo "trace hashes differ:"
        diff "$tmp/hashes.A" "$tmp/hashes.B" || true
        exit 1
    fi
fi
