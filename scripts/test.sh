#!/usr/bin/env bash
# Runs every Sluice test: installs what is missing, checks formatting and
# lints, builds the workspace, and runs unit, property, golden-packet and
# network-namespace tests. Needs root (namespaces, DPDK); without root the
# namespace tests fail unless SLUICE_SKIP_NETNS=1.
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/lib/deps.sh

if [[ $(id -u) -ne 0 && "${SLUICE_SKIP_NETNS:-0}" != 1 ]]; then
    echo "error: scripts/test.sh needs root for its network-namespace tests" >&2
    echo "       (or set SLUICE_SKIP_NETNS=1 to run only what needs no root)" >&2
    exit 1
fi

# dpdk-dumpcap attaches to the daemon as a DPDK secondary process, which
# needs the primary's memory in hugepages: reserve a few if there are none.
if [[ $(id -u) -eq 0 ]]; then
    free=$(awk '/HugePages_Free/ {print $2}' /proc/meminfo)
    if [[ "${free:-0}" -lt 128 ]]; then
        echo ">> reserving 256 MiB of 2 MiB hugepages"
        mkdir -p /dev/hugepages
        dpdk-hugepages.py -p 2M --setup 256M || echo "warning: no hugepages; the capture test will fail"
    fi
fi

echo ">> cargo fmt --check"
cargo fmt --all -- --check

echo ">> cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo ">> cargo build"
cargo build --workspace --all-targets --locked

echo ">> cargo test"
# Namespace tests use unique names and may run in parallel.
cargo test --workspace --locked -- --test-threads="${SLUICE_TEST_THREADS:-2}"

echo ">> perf kit smoke (generator + Sluice + testpmd over memif; no timing assertions)"
if [[ $(id -u) -eq 0 ]]; then
    python3 perf/bench.py --smoke --profile debug
fi

# Nothing may be left behind by the tests.
left=$(ip netns list 2>/dev/null | grep -c '^sl-' || true)
if [[ "$left" != 0 ]]; then
    echo "error: $left test namespaces were left behind" >&2
    ip netns list | grep '^sl-' >&2
    exit 1
fi
echo ">> all tests passed"
