#!/usr/bin/env bash
# Every test of seedlog, in its two builds:
#  1. the normal build: library unit tests and proptests, the history checker and its hand-written
#     fixtures, the real 3-process cluster, the model checker's bounded checks and bug switches;
#  2. the simulator build (`--cfg madsim`, in target/sim): determinism in one and two processes, a
#     fixed range of seeds covering every fault kind, the bug switches the simulator must catch,
#     and the snapshot of a fixed-seed trace.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace --release
cargo sim-test
