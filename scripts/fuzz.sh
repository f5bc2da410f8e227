#!/usr/bin/env bash
# Runs the coverage-guided fuzz targets (dataplane/fuzz, built by cargo-fuzz
# from fuzz/) for RUNS executions each (default 10 million), starting from
# the committed corpus in fuzz/corpus/<target>/, then minimises that corpus
# (cargo fuzz cmin) so what is committed stays small. Prints each target's
# executions, speed, coverage and findings; a finding (a crash file in
# fuzz/artifacts/<target>/) makes the script fail.
#
#   scripts/fuzz.sh [RUNS] [TARGET...]
#
# cargo-fuzz comes from scripts/lib/deps.sh (asked for here); it works on
# stable Rust with `-s none` (no sanitizer: the targets are safe Rust and
# assert their invariants themselves). `scripts/test.sh` does not run this: it replays
# the corpus with `cargo test -p sluice-fuzz`.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=${1:-10000000}
shift || true
targets=("$@")
if ((${#targets[@]} == 0)); then
    targets=(forwarder parse local control config agent)
fi
SLUICE_DEPS_FUZZ=1 source scripts/lib/deps.sh

cargo run -q -p sluice-fuzz --bin fuzz-seeds -- fuzz/corpus
cd fuzz
cargo fuzz build -s none -O
failed=0
for t in "${targets[@]}"; do
    log=$(mktemp)
    echo ">> $t: $runs runs"
    if ! cargo fuzz run -s none -O "$t" -- -runs="$runs" -print_final_stats=1 -max_len=4096 >"$log" 2>&1; then
        echo "!! $t: a finding; see fuzz/artifacts/$t/"
        grep -E "panicked|assertion" -A3 "$log" | head -20 || true
        failed=1
    fi
    grep -E "^#[0-9]+.*DONE" "$log" | tail -1 || true
    grep -E "stat::(number_of_executed_units|average_exec_per_sec|new_units_added)" "$log" || true
    if ! cargo fuzz cmin -s none -O "$t" >"$log" 2>&1; then
        echo "!! $t: cmin failed:"
        tail -5 "$log"
        failed=1
    fi
    rm -f "$log"
    echo "   corpus: $(ls "corpus/$t" | wc -l) files, $(du -sh "corpus/$t" | cut -f1)"
done
exit "$failed"
