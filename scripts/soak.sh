#!/usr/bin/env bash
# The long soak: mixed traffic through one NAT appliance for SECS seconds
# (default 600) with weight edits every second and reloads every fifth
# (dataplane/sluice/tests/soak.rs). Fails on any failed request, lost
# echo, more than 1 % of datagrams unanswered, resident memory that grows
# after the first third of the run, a table that does not empty after the
# traffic, or an mbuf not back in the pool. Prints the figures. Needs
# root. `scripts/test.sh` runs the same test for 40 s.
#
#   scripts/soak.sh [SECS]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-600}
[[ $(id -u) -eq 0 ]] || { echo "soak: needs root (network namespaces)" >&2; exit 1; }
source scripts/lib/deps.sh
cargo build --workspace --locked
SLUICE_SOAK_SECS=$secs cargo test --locked -p sluice --test soak -- --nocapture --test-threads=1 2>&1 |
    grep -E 'soak [0-9]+ s:|test result|panicked|FAILED' -A3
exit "${PIPESTATUS[0]}"
