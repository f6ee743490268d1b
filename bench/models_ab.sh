#!/usr/bin/env bash
# Model checker speed, A against B in one invocation: two `models` binaries (say, one built from
# main and one from a branch) run the same check in turn, A B A B ..., so a drift in the
# machine's speed touches both alike; each run's states per second (from the RESULT line), wall
# and CPU seconds are printed, then the medians and the median of the pairwise CPU ratios. Both
# must explore the same number of states (exit 1 if not: a speed change must not change the
# model).
#
#   bench/models_ab.sh [--runs N] BIN_A BIN_B [CHECK ARGS...]
#
# Defaults: 5 pairs of `check replication --threads 2`. Build with `cargo build --release -p
# models` (target/release/models) and copy the binary aside before building the other. Not part
# of any test: it prints measurements, it asserts none.
set -euo pipefail
. "$(dirname "$0")/ab_lib.sh"
runs=5
while [ $# -gt 0 ]; do
    case "$1" in
    --runs) runs=$2; shift 2 ;;
    -h | --help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "error: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) break ;;
    esac
done
[ $# -ge 2 ] || { echo "error: give two models binaries, A and B (see --help)" >&2; exit 2; }
a=$1 b=$2
shift 2
args=("$@")
[ ${#args[@]} -gt 0 ] || args=(check replication --threads 2)
need_binaries models "$a" "$b"
need_counts "$runs"
command -v bc >/dev/null || { echo "error: bc is needed (apt-get install bc)" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# One timed run: prints "states states_per_sec wall cpu".
one() {
    local bin=$1 out=$tmp/out
    /usr/bin/time -f '%e %U %S' -o "$tmp/time" "$bin" "${args[@]}" >"$out" 2>&1 ||
        { echo "error: $bin ${args[*]} failed:" >&2; tail -5 "$out" >&2; exit 1; }
    local states rate
    states=$(grep -o 'unique_states=[0-9]*' "$out" | tail -1 | cut -d= -f2)
    rate=$(grep -o 'states_per_sec=[0-9]*' "$out" | tail -1 | cut -d= -f2)
    [ -n "$states" ] && [ -n "$rate" ] || { echo "error: $bin printed no RESULT line:" >&2; tail -3 "$out" >&2; exit 1; }
    read -r wall user sys <"$tmp/time"
    echo "$states $rate $wall $(echo "scale=2; ($user + $sys) / 1" | bc)"
}


echo "A: $a"
echo "B: $b"
echo "check: ${args[*]}, $runs pairs, alternating A B"
printf '%-6s %10s %8s %8s   %10s %8s %8s   %s\n' pair states/s_A wall_A cpu_A states/s_B wall_B cpu_B cpu_A/B
: >"$tmp/rows"
for i in $(seq 1 "$runs"); do
    read -r as ar aw ac <<<"$(one "$a")"
    read -r bs br bw bc_ <<<"$(one "$b")"
    if [ "$as" != "$bs" ]; then
        echo "error: A explored $as states, B $bs: the binaries check different models" >&2
        exit 1
    fi
    ratio=$(echo "scale=3; $ac / $bc_" | bc)
    printf '%-6s %10s %8s %8s   %10s %8s %8s   %s\n' "$i" "$ar" "$aw" "$ac" "$br" "$bw" "$bc_" "$ratio"
    echo "$ar $aw $ac $br $bw $bc_ $ratio" >>"$tmp/rows"
done
col() { awk -v c="$1" '{print $c}' "$tmp/rows" | median; }
printf '%-6s %10s %8s %8s   %10s %8s %8s   %s\n' median "$(col 1)" "$(col 2)" "$(col 3)" "$(col 4)" "$(col 5)" "$(col 6)" "$(col 7)"
echo "unique states: $as (both)"
