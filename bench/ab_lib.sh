# Shared by the A/B timing scripts (sim_ab.sh, models_ab.sh); sourced, not run.

# Fails unless both arguments after the first are executables; $1 names their kind in the error.
need_binaries() {
    local kind=$1 bin
    shift
    for bin in "$@"; do
        [ -x "$bin" ] || { echo "error: $bin is not an executable $kind binary" >&2; exit 2; }
    done
}

# Fails unless every argument is a positive integer.
need_counts() {
    local n
    for n in "$@"; do
        [[ "$n" =~ ^[1-9][0-9]*$ ]] || { echo "error: counts must be positive integers, got '$n'" >&2; exit 2; }
    done
}

# The median of the numbers on standard input, one per line.
median() { sort -g | awk '{v[NR]=$1} END {print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }
