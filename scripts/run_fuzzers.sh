#!/usr/bin/env bash
# Runs every libFuzzer target of a fuzz build for SECONDS each (see `make fuzz`).
#   scripts/run_fuzzers.sh BUILD_DIR SECONDS
# Each target starts from its seeds (fuzz/seeds/<name>/) and keeps what it learns in
# fuzz/corpus-<name>/ (git-ignored), so later runs go deeper. Crash inputs are written to
# BUILD_DIR/fuzz-artifacts/<name>/. Prints the executions and crashes of each target; exits
# non-zero if any target crashed.
set -uo pipefail

if [[ $# -ne 2 ]]; then
    echo "usage: $0 BUILD_DIR SECONDS" >&2
    exit 2
fi
build_dir=$1
seconds=$2
root=$(cd "$(dirname "$0")/.." && pwd)

# Largest input per target: headers and motion files of interest are small; longer inputs only
# slow the search down.
max_len_for() {
    case $1 in
        fuzz_safetensors) echo 4096 ;;
        fuzz_motion_file) echo 8192 ;;
        *) echo 4096 ;;
    esac
}

shopt -s nullglob
targets=("$build_dir"/fuzz/fuzz_*)
if [[ ${#targets[@]} -eq 0 ]]; then
    echo "no fuzz targets in $build_dir/fuzz (build the fuzz_targets target first)" >&2
    exit 2
fi

failed=0
summary=()
for target in "${targets[@]}"; do
    [[ -x $target && -f $target ]] || continue
    name=$(basename "$target")
    short=${name#fuzz_}
    corpus="$root/fuzz/corpus-$short"
    seeds="$root/fuzz/seeds/$short"
    artifacts="$build_dir/fuzz-artifacts/$name"
    log="$build_dir/fuzz-artifacts/$name.log"
    mkdir -p "$corpus" "$artifacts/previous"
    # Crash inputs of earlier runs are kept aside, so that the count below is this run's.
    find "$artifacts" -maxdepth 1 -type f -exec mv -t "$artifacts/previous/" {} +
    args=(-max_total_time="$seconds" -max_len="$(max_len_for "$name")" -timeout=10
          -rss_limit_mb=4096 -print_final_stats=1 -artifact_prefix="$artifacts/")
    [[ -f "$root/fuzz/$short.dict" ]] && args+=(-dict="$root/fuzz/$short.dict")
    dirs=("$corpus")
    [[ -d $seeds ]] && dirs+=("$seeds")

    echo "== $name: ${seconds}s"
    # One worker: the machines this runs on are small and shared.
    OMP_NUM_THREADS=1 "$target" "${args[@]}" "${dirs[@]}" >"$log" 2>&1
    status=$?
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    [[ -z $runs ]] && runs=$(grep -o 'Done [0-9]* runs' "$log" | grep -o '[0-9]*' | tail -1)
    crashes=$(find "$artifacts" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'leak-*' \
              -o -name 'timeout-*' -o -name 'oom-*' \) | wc -l)
    if [[ $status -ne 0 || $crashes -gt 0 ]]; then
        failed=1
        echo "   FAILED (exit $status): see $log"
        grep -m 5 -E 'ERROR|SUMMARY|runtime error|Test unit written' "$log" | sed 's/^/   /'
    fi
    line="$name: ${runs:-?} executions, $crashes crash input(s), corpus $(ls "$corpus" | wc -l) files"
    echo "   $line"
    summary+=("$line")
done

echo "== summary"
printf '   %s\n' "${summary[@]}"
exit $failed
