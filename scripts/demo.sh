#!/usr/bin/env bash
# Sluice demo: installs what is missing, builds, brings up a virtual
# topology in network namespaces, starts the appliance on DPDK's
# net_af_packet driver, and shows it balancing real HTTP traffic from a
# kernel client over three kernel web servers by NAT, over IPv4 and IPv6
# (NAT66) at once, with its counters.
# Everything is torn down at the end (also on Ctrl-C or error). Each step
# prints a progress line ([step/steps, seconds since the start]); the
# whole demo takes under two minutes on a 2-core machine, building
# included (the dev profile: the packet path's crates are optimised in it
# too, and it builds in half the time of the release profile).
#
#  ns sdemo-client          ns sdemo-lb (sluice)           ns sdemo-sw      ns sdemo-rN
#  192.0.2.10/24 --veth-- [client] 192.0.2.1/24            bridge br0 --- 198.51.100.1N/24
#  gw 192.0.2.1            VIP 192.0.2.100:80               |              python http.server :8080
#                         [servers] 198.51.100.1/24 --veth--+              gw 198.51.100.1
#  2001:db8:1::10/64       2001:db8:1::1/64, VIP [2001:db8::100]:80         2001:db8:2::1N/64
#                          2001:db8:2::1/64                                  gw 2001:db8:2::1
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

T0=$SECONDS
STEPS=10
STEP=0
step() {
    STEP=$((STEP + 1))
    printf '\n[%d/%d %3ds] %s\n' "$STEP" "$STEPS" "$((SECONDS - T0))" "$*"
}

step "installing what is missing (scripts/lib/deps.sh)"
source scripts/lib/deps.sh
source scripts/lib/netns.sh
if [[ $(id -u) -ne 0 ]]; then
    echo "error: the demo needs root (network namespaces, DPDK)" >&2
    exit 1
fi

step "building sluice and sluicectl"
cargo build --locked -p sluice -p sluicectl
SLUICE=$ROOT/target/debug/sluice
CTL=$ROOT/target/debug/sluicectl

NS=(sdemo-lb sdemo-client sdemo-sw sdemo-r1 sdemo-r2 sdemo-r3)
WORK=$(mktemp -d /tmp/sluice-demo.XXXXXX)
SOCK=$WORK/sluice.sock
PREFIX=sluice-demo-$$
PID=

cleanup() {
    set +e
    stop_daemon "$PID"
    delete_netns "${NS[@]}"
    rm -rf "/var/run/dpdk/$PREFIX" "$WORK"
}
trap cleanup EXIT INT TERM
cleanup
PID=

nsx() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

step "topology: a client, the appliance, a bridge and three web servers"
for ns in "${NS[@]}"; do
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    nsx "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
done
ip link add dlbc netns sdemo-lb type veth peer name dcl netns sdemo-client
ip link add dlbs netns sdemo-lb type veth peer name dsw0 netns sdemo-sw
nsx sdemo-sw ip link add br0 type bridge
nsx sdemo-sw ip link set br0 up
nsx sdemo-sw ip link set dsw0 master br0
for i in 1 2 3; do
    ip link add "dr$i" netns "sdemo-r$i" type veth peer name "dsw$i" netns sdemo-sw
    nsx sdemo-sw ip link set "dsw$i" master br0
done
for l in dlbc dlbs; do ip -n sdemo-lb link set "$l" up; done
for i in 0 1 2 3; do ip -n sdemo-sw link set "dsw$i" up; done
ip -n sdemo-client link set dcl up
ip -n sdemo-client addr add 192.0.2.10/24 dev dcl
ip -n sdemo-client route add default via 192.0.2.1
nsx sdemo-client ethtool -K dcl tx off >/dev/null
nsx sdemo-client sysctl -qw net.ipv6.conf.dcl.disable_ipv6=0
ip -n sdemo-client -6 addr add 2001:db8:1::10/64 dev dcl nodad
ip -n sdemo-client -6 route add 2001:db8::/64 via 2001:db8:1::1
for i in 1 2 3; do
    ns=sdemo-r$i
    ip -n "$ns" link set "dr$i" up
    ip -n "$ns" addr add "198.51.100.1$i/24" dev "dr$i"
    ip -n "$ns" route add default via 198.51.100.1
    nsx "$ns" ethtool -K "dr$i" tx off >/dev/null
    nsx "$ns" sysctl -qw "net.ipv6.conf.dr$i.disable_ipv6=0"
    ip -n "$ns" -6 addr add "2001:db8:2::1$i/64" dev "dr$i" nodad
    ip -n "$ns" -6 route add default via 2001:db8:2::1
    mkdir -p "$WORK/www$i"
    echo "hello from real server $i (198.51.100.1$i, 2001:db8:2::1$i)" >"$WORK/www$i/index.html"
    # Bound to ::, Python's server takes IPv4 and IPv6 alike.
    nsx "$ns" python3 -m http.server 8080 --bind :: --directory "$WORK/www$i" \
        >/dev/null 2>&1 &
done

cat >"$WORK/sluice.toml" <<TOML
# Demo configuration: no hugepages, one worker, idle back-off so the demo
# does not keep a core busy.
[eal]
no_huge = true
memory_mb = 512
file_prefix = "$PREFIX"

[dataplane]
workers = [1]
idle_sleep_us = 100
connections = 65536

[control]
socket = "$SOCK"

[[port]]
name = "client"
device = "net_af_packet0,iface=dlbc"
addresses = ["192.0.2.1/24", "2001:db8:1::1/64"]

[[port]]
name = "servers"
device = "net_af_packet1,iface=dlbs"
addresses = ["198.51.100.1/24", "2001:db8:2::1/64"]

[[service]]
protocol = "tcp"
vip = "192.0.2.100"
port = 80
scheduler = "wrr"

[[service.real]]
ip = "198.51.100.11"
port = 8080
weight = 2

[[service.real]]
ip = "198.51.100.12"
port = 8080

[[service.real]]
ip = "198.51.100.13"
port = 8080

# The same servers over IPv6 (NAT66).
[[service]]
protocol = "tcp"
vip = "2001:db8::100"
port = 80
scheduler = "rr"

[[service.real]]
ip = "2001:db8:2::11"
port = 8080

[[service.real]]
ip = "2001:db8:2::12"
port = 8080

[[service.real]]
ip = "2001:db8:2::13"
port = 8080
TOML

step "starting sluice"
ip netns exec sdemo-lb "$SLUICE" --config "$WORK/sluice.toml" >"$WORK/sluice.log" 2>&1 &
PID=$!
wait_for_sluice "$CTL" "$SOCK" "$PID" "$WORK/sluice.log" || exit 1
for i in 1 2 3; do
    for _ in $(seq 1 100); do
        nsx "sdemo-r$i" ss -H -tln sport = :8080 | grep -q . && break
        sleep 0.1
    done
done
"$CTL" --socket "$SOCK" status
echo
"$CTL" --socket "$SOCK" list

step "the client pings the virtual IP (answered by the DPDK dataplane)"
nsx sdemo-client ping -c 3 -i 0.2 192.0.2.100

step "12 HTTP requests from the client to http://192.0.2.100/ (wrr 2:1:1)"
for n in $(seq 1 12); do
    printf '%2d  ' "$n"
    nsx sdemo-client curl -s --max-time 5 http://192.0.2.100/
done

step "IPv6: ping6 the VIP, then 6 requests to http://[2001:db8::100]/ (NAT66, rr)"
nsx sdemo-client ping -6 -c 2 -i 0.2 2001:db8::100
for n in $(seq 1 6); do
    printf '%2d  ' "$n"
    nsx sdemo-client curl -s --max-time 5 -g 'http://[2001:db8::100]/'
done

step "quiesce real 1 (weight 0): the very next requests avoid it"
"$CTL" --socket "$SOCK" real edit -t 192.0.2.100:80 -r 198.51.100.11:8080 -w 0
to_real1=0
for n in $(seq 1 6); do
    printf '%2d  ' "$n"
    reply=$(nsx sdemo-client curl -s --max-time 5 http://192.0.2.100/)
    echo "$reply"
    [[ "$reply" == *"real server 1 "* ]] && to_real1=$((to_real1 + 1))
done
echo "   requests to the quiesced real 1: $to_real1 of 6"
if [[ $to_real1 -ne 0 ]]; then
    echo "error: the quiesced real still took new connections" >&2
    exit 1
fi

echo
"$CTL" --socket "$SOCK" list
echo
step "rates while traffic flows (100 requests in the background)"
(for n in $(seq 1 100); do nsx sdemo-client curl -s -o /dev/null --max-time 5 http://192.0.2.100/; done) &
LOAD=$!
sleep 3
"$CTL" --socket "$SOCK" list --rate
wait "$LOAD" || true
echo
"$CTL" --socket "$SOCK" list --stats
echo
"$CTL" --socket "$SOCK" stats

step "stopping sluice (SIGTERM)"
kill -TERM "$PID"
wait "$PID" && rc=0 || rc=$?
PID=
tail -n 1 "$WORK/sluice.log"
if [[ $rc -ne 0 ]]; then
    echo "sluice exited with $rc" >&2
    exit 1
fi
echo ">> demo finished in $((SECONDS - T0)) s"
