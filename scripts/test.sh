#!/usr/bin/env bash
# Runs every Sluice test: installs what is missing, checks formatting and
# lints, builds the workspace, and runs unit, property, golden-packet and
# network-namespace tests, every benchmark's smoke run, the pipeline's
# instruction counts against their committed baseline (perf/icount.py),
# the perf kit's smoke round and the Debian package (built, linted,
# installed and run), then checks that nothing was left behind.
#
# Every step runs even when an earlier one failed (a failed build stops
# what needs the build); failures, skipped tests and the counts are listed
# together at the end, and the exit status is non-zero if anything failed.
#
# Needs root (namespaces, DPDK). Without root, SLUICE_SKIP_NETNS=1 runs what
# needs no root and reports every skipped test as skipped; run as root,
# nothing may skip. Logs: target/test-logs/ (cargo test's output, the
# daemon logs of failed namespace tests, the list of skipped tests).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

source scripts/lib/deps.sh || exit 1
# deps.sh sets -e for itself; here a failure must not end the run.
set +e

as_root=0
[[ $(id -u) -eq 0 ]] && as_root=1
if [[ $as_root -eq 0 && "${SLUICE_SKIP_NETNS:-0}" != 1 ]]; then
    echo "error: scripts/test.sh needs root for its network-namespace tests" >&2
    echo "       (or set SLUICE_SKIP_NETNS=1 to run only what needs no root)" >&2
    exit 1
fi
if [[ $as_root -eq 1 ]]; then
    # Run as root, nothing skips: no escape hatch may be inherited.
    unset SLUICE_SKIP_NETNS SLUICE_SKIP_TMUX
fi

LOGS=$ROOT/target/test-logs
rm -rf "$LOGS"
mkdir -p "$LOGS"
export SLUICE_TEST_LOGS=$LOGS
export SLUICE_SKIP_LOG=$LOGS/skipped.txt
: >"$SLUICE_SKIP_LOG"

failures=()
skipped_steps=()
fail() {
    echo "!! FAILED: $*" >&2
    failures+=("$*")
}

# dpdk-dumpcap attaches to the daemon as a DPDK secondary process, and the
# leak test checks hugepage files: both need hugepages. Reserve some with
# DPDK's own tool when there are too few.
if [[ $as_root -eq 1 ]]; then
    free=$(awk '/HugePages_Free/ {print $2}' /proc/meminfo)
    if [[ "${free:-0}" -lt 128 ]]; then
        echo ">> reserving 256 MiB of 2 MiB hugepages"
        mkdir -p /dev/hugepages
        dpdk-hugepages.py -p 2M --setup 256M || fail "dpdk-hugepages.py could not reserve hugepages"
    fi
fi

echo ">> pktgen scripts (syntax: perf/pktgen/*.pkt against pktgen 23.06's commands, *.lua with luac)"
python3 scripts/lib/check-pktgen.py --self-test || fail "pktgen script checker self-test"
python3 scripts/lib/check-pktgen.py perf/pktgen/*.pkt || fail "pktgen command files (scripts/lib/check-pktgen.py)"
for f in perf/pktgen/*.lua; do luac5.3 -p "$f" || fail "pktgen Lua script $f (luac5.3 -p)"; done

echo ">> cargo fmt --check"
cargo fmt --all -- --check || fail "cargo fmt --check"

echo ">> cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings || fail "cargo clippy"

echo ">> cargo build"
built=1
cargo build --workspace --all-targets --locked || { built=0; fail "cargo build"; }

passed=0 failed=0 ignored=0
failed_tests=()
if [[ $built -eq 1 ]]; then
    echo ">> cargo test"
    # Namespace tests use unique names and may run in parallel.
    cargo test --workspace --locked --no-fail-fast -- --test-threads="${SLUICE_TEST_THREADS:-2}" \
        2>&1 | tee "$LOGS/cargo-test.log"
    [[ ${PIPESTATUS[0]} -eq 0 ]] || fail "cargo test"
    while read -r p f i; do
        passed=$((passed + p)) failed=$((failed + f)) ignored=$((ignored + i))
    done < <(sed -nE 's/^test result: [A-Za-z]+\. ([0-9]+) passed; ([0-9]+) failed; ([0-9]+) ignored.*/\1 \2 \3/p' \
        "$LOGS/cargo-test.log")
    mapfile -t failed_tests < <(sed -nE 's/^test (.*) \.\.\. FAILED$/\1/p' "$LOGS/cargo-test.log" | sort -u)

    echo ">> bench smoke (each benchmark on tiny sizes; it checks every packet's action)"
    cargo test --workspace --locked --bench '*' 2>&1 | tee "$LOGS/bench-smoke.log"
    [[ ${PIPESTATUS[0]} -eq 0 ]] || fail "bench smoke (cargo test --bench '*')"

    echo ">> instruction counts (perf/icount.py: callgrind, each scenario within 5 % of perf/icount-baseline.json)"
    python3 perf/icount.py || fail "instruction counts (perf/icount.py; a change that costs instructions on purpose runs perf/icount.py --update)"

    echo ">> perf kit smoke (generator + Sluice + testpmd over memif; checks loss, bad packets, drops)"
    if [[ $as_root -eq 1 ]]; then
        python3 perf/bench.py --smoke --profile debug || fail "perf kit smoke (perf/bench.py --smoke)"
    else
        echo "SKIPPED: perf kit smoke: needs root"
        skipped_steps+=("perf kit smoke (needs root)")
    fi
fi

if [[ $built -eq 1 ]]; then
    echo ">> Debian package (scripts/package.sh; contents, lintian, dpkg -i, sluice --check, man, systemd-analyze)"
    if [[ $as_root -eq 1 ]]; then
        scripts/lib/check-package.sh || fail "Debian package (scripts/lib/check-package.sh)"
    else
        echo "SKIPPED: Debian package: installing it needs root"
        skipped_steps+=("Debian package (needs root)")
    fi
fi

# Nothing may be left behind by the tests, whatever their outcome.
echo ">> leftovers"
left=$(ip netns list 2>/dev/null | grep -c '^sl-' || true)
if [[ "$left" != 0 ]]; then
    ip netns list | grep '^sl-' >&2
    fail "$left test namespaces were left behind"
fi
stray=$(pgrep -f 'target/debug/(sluice|sluice-gen) ' || true)
if [[ -n "$stray" ]]; then
    ps -o pid,args -p "$(echo $stray | tr ' ' ',')" >&2
    fail "sluice processes were left running"
fi
hp=$(find /dev/hugepages -maxdepth 1 -name 'sltest*' 2>/dev/null | wc -l)
[[ "$hp" == 0 ]] || fail "$hp hugepage files of tests were left in /dev/hugepages"
rt=$(find /var/run/dpdk -maxdepth 1 -name 'sltest*' 2>/dev/null | wc -l)
[[ "$rt" == 0 ]] || fail "$rt EAL runtime directories of tests were left in /var/run/dpdk"

# The summary: what ran, what failed, what was skipped.
# A skipped test returns early, which libtest counts as passed: take it
# back out.
mapfile -t skipped < <(sort -u "$SLUICE_SKIP_LOG")
nskipped=${#skipped[@]}
echo
echo "======================================================================"
echo "tests: $((passed - nskipped)) passed, $failed failed, $nskipped skipped, $ignored ignored"
if ((nskipped + ${#skipped_steps[@]})); then
    echo "skipped (not counted as passed):"
    printf '  %s\n' "${skipped[@]}" "${skipped_steps[@]}"
    [[ $as_root -eq 1 ]] && fail "$((nskipped + ${#skipped_steps[@]})) tests skipped although run as root"
fi
if ((${#failed_tests[@]})); then
    echo "failed tests (logs: $LOGS):"
    printf '  %s\n' "${failed_tests[@]}"
fi
if ((${#failures[@]})); then
    echo "failed steps:"
    printf '  %s\n' "${failures[@]}"
    echo "======================================================================"
    exit 1
fi
echo "all tests passed"
echo "======================================================================"
