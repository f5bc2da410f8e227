#!/usr/bin/env bash
# Sluice demo: installs what is missing, builds, brings up a small virtual
# topology in network namespaces, starts the appliance on DPDK's
# net_af_packet driver, shows it answering a real kernel host, prints its
# status and counters, and tears everything down (also on Ctrl-C or error).
#
#   ns sluice-demo-lb                   ns sluice-demo-client
#   +-----------------------+  veth     +----------------------+
#   | sluice (DPDK)         |-----------| kernel host          |
#   |  port "client"        | dlb0  dc0 |  192.0.2.10/24       |
#   |  192.0.2.1/24         |           |                      |
#   +-----------------------+           +----------------------+
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

source scripts/lib/deps.sh
if [[ $(id -u) -ne 0 ]]; then
    echo "error: the demo needs root (network namespaces, DPDK)" >&2
    exit 1
fi

echo ">> building sluice and sluicectl (release)"
cargo build --release --locked -p sluice -p sluicectl
SLUICE=$ROOT/target/release/sluice
CTL=$ROOT/target/release/sluicectl

LB=sluice-demo-lb
CL=sluice-demo-client
WORK=$(mktemp -d /tmp/sluice-demo.XXXXXX)
SOCK=$WORK/sluice.sock
PREFIX=sluice-demo-$$
PID=

cleanup() {
    set +e
    if [[ -n "$PID" ]] && kill -0 "$PID" 2>/dev/null; then
        kill -TERM "$PID"
        for _ in $(seq 1 100); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$PID" 2>/dev/null
    fi
    ip netns del "$LB" 2>/dev/null
    ip netns del "$CL" 2>/dev/null
    rm -rf "/var/run/dpdk/$PREFIX" "$WORK"
}
trap cleanup EXIT INT TERM

echo ">> topology: namespaces $LB and $CL joined by a veth pair"
cleanup_old() { ip netns del "$LB" 2>/dev/null || true; ip netns del "$CL" 2>/dev/null || true; }
cleanup_old
ip netns add "$LB"
ip netns add "$CL"
ip link add dlb0 netns "$LB" type veth peer name dc0 netns "$CL"
for ns in "$LB" "$CL"; do
    ip -n "$ns" link set lo up
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
done
ip -n "$LB" link set dlb0 up
ip -n "$CL" link set dc0 up
ip -n "$CL" addr add 192.0.2.10/24 dev dc0
ip netns exec "$CL" ethtool -K dc0 tx off >/dev/null

cat >"$WORK/sluice.toml" <<TOML
# Demo configuration: no hugepages, one worker, idle back-off so the demo
# does not keep a core busy.
[eal]
no_huge = true
memory_mb = 256
file_prefix = "$PREFIX"

[dataplane]
workers = [1]
idle_sleep_us = 200

[control]
socket = "$SOCK"

[[port]]
name = "client"
device = "net_af_packet0,iface=dlb0"
addresses = ["192.0.2.1/24"]
TOML

echo ">> starting sluice"
ip netns exec "$LB" "$SLUICE" --config "$WORK/sluice.toml" >"$WORK/sluice.log" 2>&1 &
PID=$!
for _ in $(seq 1 300); do
    [[ -S "$SOCK" ]] && "$CTL" --socket "$SOCK" status >/dev/null 2>&1 && break
    kill -0 "$PID" 2>/dev/null || { cat "$WORK/sluice.log"; echo "sluice failed to start" >&2; exit 1; }
    sleep 0.1
done
"$CTL" --socket "$SOCK" status

echo
echo ">> the kernel host resolves the appliance's address with ARP"
ip netns exec "$CL" arping -c 3 -W 0.2 -i dc0 192.0.2.1
echo
echo ">> and pings it"
ip netns exec "$CL" ping -c 5 -i 0.2 192.0.2.1
echo
echo ">> sluicectl stats"
"$CTL" --socket "$SOCK" stats

echo
echo ">> stopping sluice (SIGTERM)"
kill -TERM "$PID"
wait "$PID" && rc=0 || rc=$?
PID=
tail -n 2 "$WORK/sluice.log"
if [[ $rc -ne 0 ]]; then
    echo "sluice exited with $rc" >&2
    exit 1
fi
echo ">> demo finished"
