#!/usr/bin/env bash
# A lab for the pktgen scripts on one machine: pktgen-dpdk's two ports
# (net_af_packet on veths, in namespace pglab-gen) cabled to Sluice's two
# ports (namespace pglab-lb), Sluice in DR or NAT, then one command file
# run by pktgen for SECONDS and measured by report.lua; prints pktgen's
# port counters beside Sluice's own (`sluicectl list --stats`, `stats`).
# A virtual wire on a shared machine: the figures say the scripts work
# and what they send, not line rate.
#
#   perf/pktgen/lab.sh PKTGEN dr|nat SCRIPT [SECONDS]
#   e.g. perf/pktgen/lab.sh ~/Pktgen-DPDK/build/app/pktgen nat perf/pktgen/vip-64b-flows.pkt 10
#
# Needs root, a built pktgen (perf/README.md), and release binaries of
# sluice and sluicectl (cargo build --release -p sluice -p sluicectl).
# pktgen runs without hugepages (--no-huge -m 3000: it sets aside about
# 1.2 GB per port). Everything is removed at the end, also on failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
source scripts/lib/netns.sh

[[ $# -ge 3 ]] || { sed -n '2,16p' "$0" >&2; exit 2; }
PKTGEN=$(realpath "$1")
MODE=$2
SCRIPT=$(realpath "$3")
SECONDS_RUN=${4:-10}
[[ $MODE == dr || $MODE == nat ]] || { echo "mode: dr or nat" >&2; exit 2; }
[[ -x $PKTGEN ]] || { echo "no pktgen at $PKTGEN" >&2; exit 2; }
SLUICE=$ROOT/target/release/sluice
CTL=$ROOT/target/release/sluicectl
[[ -x $SLUICE && -x $CTL ]] || { echo "build sluice and sluicectl (release) first" >&2; exit 2; }

NS=(pglab-lb pglab-gen)
PID=
WORK=
cleanup() {
    set +e
    stop_daemon "$PID"
    delete_netns "${NS[@]}"
    rm -rf /var/run/dpdk/pglab-lb /var/run/dpdk/pglab-gen
    [[ -z "$WORK" || -n "${KEEP:-}" ]] || rm -rf "$WORK"
}
trap cleanup EXIT INT TERM
cleanup
WORK=$(mktemp -d /tmp/pglab.XXXXXX)
SOCK=$WORK/sluice.sock

for ns in "${NS[@]}"; do
    ip netns add "$ns"
    ip -n "$ns" link set lo up
done
# Wire 0: pktgen port 0 <-> Sluice "client"; wire 1: pktgen port 1 <->
# Sluice "servers". Sluice's client port has the MAC the scripts name.
for i in 0 1; do
    ip link add "pgg$i" netns pglab-gen type veth peer name "pgl$i" netns pglab-lb
    ip -n pglab-gen link set "pgg$i" up
    ip -n pglab-lb link set "pgl$i" up
    for ns_if in "pglab-gen pgg$i" "pglab-lb pgl$i"; do
        set -- $ns_if
        ip netns exec "$1" ethtool -K "$2" tx off rx off >/dev/null 2>&1 || true
        ip netns exec "$1" sysctl -qw "net.ipv6.conf.$2.disable_ipv6=1"
    done
done
ip -n pglab-lb link set pgl0 address 02:00:00:00:00:01

if [[ $MODE == dr ]]; then fwd=dr; rport=80; lport=1028; else fwd=nat; rport=8080; lport=1028; fi
reals() {
    local port=$1
    for i in 11 12 13 14 15 16 17 18; do
        printf '[[service.real]]\nip = "198.51.100.%s"\nport = %s\nforward = "%s"\n' "$i" "$port" "$fwd"
    done
}
cat >"$WORK/sluice.toml" <<TOML
[eal]
no_huge = true
memory_mb = 1024
file_prefix = "pglab-lb"
# Two CPUs for two polling workers (Sluice's and pktgen's): Sluice's
# worker (lcore 1) on CPU 0, pktgen's (its lcore 1) on CPU 1; the main
# lcores, mostly asleep, share them.
lcores = "0@1,1@0"

[dataplane]
main_lcore = 0
workers = [1]
mempool_size = 32767
connections = 1048576

[control]
socket = "$SOCK"

[[port]]
name = "client"
device = "net_af_packet0,iface=pgl0"
addresses = ["192.0.2.1/24"]

[[port]]
name = "servers"
device = "net_af_packet1,iface=pgl1"
addresses = ["198.51.100.1/24"]

[routes]
gateway = "192.0.2.254"

# The scripts' UDP and TCP traffic to the VIP.
[[service]]
protocol = "udp"
vip = "192.0.2.100"
port = 80
scheduler = "mh"
$(reals "$rport")

[[service]]
protocol = "tcp"
vip = "192.0.2.100"
port = 80
scheduler = "mh"
syn_proxy = "off"
$(reals "$rport")

# pktgen's latency probes: UDP to port 1028, measured where they arrive
# (port 1), so the real keeps port 1028 in NAT too.
[[service]]
protocol = "udp"
vip = "192.0.2.100"
port = 1028
scheduler = "mh"
$(reals "$lport")
TOML

ip netns exec pglab-lb "$SLUICE" --config "$WORK/sluice.toml" >"$WORK/sluice.log" 2>&1 &
PID=$!
wait_for_sluice "$CTL" "$SOCK" "$PID" "$WORK/sluice.log" || exit 1

echo ">> pktgen: $(basename "$SCRIPT") for ${SECONDS_RUN}s, Sluice in $MODE"
report=$WORK/pktgen-report.txt
files="-f $SCRIPT -f $ROOT/perf/pktgen/report.lua"
limit=$((SECONDS_RUN + 90))
if [[ $SCRIPT == *.lua ]]; then
    # rfc2544.lua measures itself: its CSV is the report.
    files="-f $SCRIPT"
    limit=${RFC2544_LIMIT:-1800}
fi
# pktgen needs a terminal: `script` gives it one; its screen goes to a log.
(cd "$WORK" && PKTGEN_SECONDS=$SECONDS_RUN PKTGEN_REPORT=$report \
    RFC2544_CSV=$report RFC2544_QUIT=1 \
    ip netns exec pglab-gen timeout --foreground "$limit" \
    script -qfec "$PKTGEN -l 0,1 --no-huge -m 3000 --no-pci --file-prefix pglab-gen \
        --vdev net_af_packet0,iface=pgg0 --vdev net_af_packet1,iface=pgg1 -- \
        -P -T -m '[1].0, [1].1' $files" /dev/null \
    </dev/null >"$WORK/pktgen.screen" 2>&1) || true
[[ -s $report ]] || { echo "pktgen wrote no report; its screen:" >&2; tail -c 3000 "$WORK/pktgen.screen" >&2; exit 1; }
cat "$report"
[[ $SCRIPT == *.lua ]] && { grep -a -E '^(  size|size|frame)' "$WORK/pktgen.screen" | sed 's/\x1b\[[0-9;?]*[a-zA-Z]//g' | tail -60; }
echo ">> Sluice"
"$CTL" --socket "$SOCK" list --stats
"$CTL" --socket "$SOCK" stats
"$CTL" --socket "$SOCK" stats --json >"$WORK/stats.json"
[[ $SCRIPT == *.lua ]] && exit 0
# The wire: the kernel's counters of each veth end, to tell loss on the
# virtual wire and in the af_packet receive rings from loss in Sluice.
for x in "pglab-gen pgg0" "pglab-lb pgl0" "pglab-lb pgl1" "pglab-gen pgg1"; do
    set -- $x
    for c in tx_packets tx_dropped rx_packets rx_dropped; do
        echo "$2 $c $(ip netns exec "$1" cat "/sys/class/net/$2/statistics/$c")"
    done
done >"$WORK/wire.txt"
python3 - "$WORK/stats.json" "$report" "$WORK/wire.txt" <<'PY'
import json, sys
st = json.load(open(sys.argv[1]))["result"]
w = st["workers"]
conns = sum(x["conntrack"]["occupancy"] for x in w)
drops = {}
for x in w:
    for k, v in x["drops"].items():
        if v:
            drops[k] = drops.get(k, 0) + v
ports = {}
for line in open(sys.argv[2]):
    f = line.split()
    if f[0] == "port":
        ports[int(f[1])] = {f[i]: f[i + 1] for i in range(2, len(f) - 1, 2)}
wire = {}
for line in open(sys.argv[3]):
    i, c, v = line.split()
    wire[(i, c)] = int(v)
sp = {p["name"]: p for p in st["ports"]}
sent, got = int(ports[0]["opackets"]), int(ports[1]["ipackets"])
s_rx, s_tx = sp["client"]["traffic"]["rx_packets"], sp["servers"]["traffic"]["tx_packets"]
print(f"pktgen port 0 sent      {sent}")
print(f"  veth dropped on send  {wire[('pgg0', 'tx_dropped')]}")
print(f"  reached Sluice's veth {wire[('pgl0', 'rx_packets')]}")
print(f"Sluice received         {s_rx}  (lost in its af_packet ring: {wire[('pgl0', 'rx_packets')] - s_rx})")
print(f"Sluice sent to reals    {s_tx}  (connections {conns}; drops {drops or 'none'})")
print(f"  reached pktgen's veth {wire[('pgg1', 'rx_packets')]}")
print(f"pktgen port 1 received  {got}  (lost in its af_packet ring: {wire[('pgg1', 'rx_packets')] - got}; "
      f"imissed {ports[1]['imissed']} ierrors {ports[1]['ierrors']} rx_nombuf {ports[1]['rx_nombuf']})")
print(f"end to end: {max(0.0, 100.0 * (sent - got) / sent) if sent else 0:.2f} % lost")
PY
