#!/usr/bin/env python3
"""A syntax check of perf/pktgen's command files without pktgen: every
line must be a pktgen-dpdk 23.06 command this grammar knows, with the
arguments that command takes there (the keywords of `enable`, the fields
of `range` and `set`, the thirteen arguments of `seq`, addresses that
parse). It catches what broke the scripts before, such as `enable 0
imix` (23.06 has no such keyword). The Lua scripts are checked with
`luac5.3 -p` by scripts/test.sh.

    check-pktgen.py FILE.pkt...       # exit 1 with each bad line named
    check-pktgen.py --self-test
"""

import ipaddress
import re
import sys

# `enable|disable <ports> <what>` in 23.06.1 (app/cli-functions.c).
ENABLE = {"process", "mpls", "qinq", "gre", "gre_eth", "vlan", "random", "latency",
          "pcap", "blink", "rx_tap", "tx_tap", "icmp", "range", "capture", "bonding",
          "vxlan", "rate", "lat"}
PAGES = {"main", "range", "seq", "sequence", "latency", "lat", "stats", "xstats", "config",
         "cfg", "pcap", "cpu", "rnd", "log", "rate", "random"}
FLAGS = {"urg", "ack", "psh", "rst", "syn", "fin", "all"}


def ports(s):
    return s == "all" or re.fullmatch(r"\d+(-\d+)?(,\d+(-\d+)?)*", s) is not None


def mac(s):
    return re.fullmatch(r"([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}", s) is not None


def ip(s, prefix=False):
    try:
        (ipaddress.ip_interface if prefix else ipaddress.ip_address)(s)
        return True
    except ValueError:
        return False


def num(s):
    return re.fullmatch(r"\d+(\.\d+)?", s) is not None


def check_range(a):
    if len(a) < 3 or not ports(a[0]):
        return "range <ports> <field> ..."
    f = a[1:]
    if f[0] in ("dst", "src") and len(f) == 4 and f[2] in ("start", "min", "max", "inc"):
        kind, v = f[1], f[3]
        ok = {"mac": mac, "ip": ip, "port": str.isdigit}.get(kind)
        return None if ok and ok(v) else f"bad {f[0]} {kind} value {v!r}"
    if f[0] == "proto" and len(f) == 2 and f[1] in ("udp", "tcp"):
        return None
    if f[0] == "size" and len(f) == 3 and f[1] in ("start", "min", "max", "inc") and f[2].isdigit():
        return None
    if f[0] == "tcp" and len(f) == 4 and f[1] == "flag" and f[2] in ("set", "clr") and f[3] in FLAGS:
        return None
    return f"unknown range field: {' '.join(f)}"


def check_set(a):
    if len(a) < 3 or not ports(a[0]):
        return "set <ports> <what> <value>"
    k, v = a[1], a[2:]
    if k in ("dst", "src") and len(v) == 2:
        if v[0] == "mac":
            return None if mac(v[1]) else f"bad MAC {v[1]!r}"
        if v[0] == "ip":
            return None if ip(v[1], prefix=(k == "src")) else f"bad address {v[1]!r}"
    simple = {"dport": str.isdigit, "sport": str.isdigit, "size": str.isdigit, "rate": num,
              "ttl": str.isdigit, "count": str.isdigit, "seq_cnt": str.isdigit,
              "proto": lambda x: x in ("udp", "tcp", "icmp"),
              "type": lambda x: x in ("ipv4", "ipv6", "arp", "vlan")}
    if k in simple and len(v) == 1 and simple[k](v[0]):
        return None
    if k == "tcp" and len(v) == 3 and v[0] == "flag" and v[1] in ("set", "clr") and v[2] in FLAGS:
        return None
    return f"unknown set: {' '.join(a[1:])}"


def check_seq(a):
    # seq <n> <ports> <dmac> <smac> <dip> <sip/nn> <sport> <dport> ipv4|ipv6 udp|tcp|icmp <vlan> <size>
    if len(a) != 12:
        return f"seq takes 12 arguments, not {len(a)}"
    n, p, dmac, smac, dip, sip, sport, dport, fam, proto, vlan, size = a
    checks = [(n.isdigit() and int(n) < 16, "sequence number 0..15"), (ports(p), "ports"),
              (mac(dmac), "dst MAC"), (mac(smac), "src MAC"), (ip(dip), "dst address"),
              (ip(sip, prefix=True), "src address/len"), (sport.isdigit(), "sport"),
              (dport.isdigit(), "dport"), (fam in ("ipv4", "ipv6"), "ipv4|ipv6"),
              (proto in ("udp", "tcp", "icmp"), "udp|tcp|icmp"), (vlan.isdigit(), "vlan"),
              (size.isdigit() and 64 <= int(size) <= 1518, "size 64..1518")]
    bad = [what for ok, what in checks if not ok]
    return f"seq: bad {', '.join(bad)}" if bad else None


def check_line(line):
    w = line.split()
    cmd, a = w[0], w[1:]
    if cmd in ("start", "stop"):
        return None if len(a) >= 1 and ports(a[0]) else f"{cmd} <ports>"
    if cmd in ("reset", "clear", "clr"):
        return None if len(a) <= 1 and (not a or ports(a[0])) else f"{cmd} [ports]"
    if cmd in ("enable", "disable"):
        if len(a) == 2 and ports(a[0]) and a[1] in ENABLE:
            return None
        return f"{cmd}: unknown keyword {' '.join(a[1:])!r} (pktgen 23.06 knows {', '.join(sorted(ENABLE))})"
    if cmd == "page":
        return None if len(a) == 1 and (a[0] in PAGES or a[0].isdigit()) else f"unknown page {a}"
    if cmd == "range":
        return check_range(a)
    if cmd == "set":
        return check_set(a)
    if cmd in ("seq", "sequence"):
        return check_seq(a)
    if cmd == "latency":
        return None if len(a) == 3 and ports(a[0]) and a[1] == "rate" and a[2].isdigit() else "latency <ports> rate <us>"
    if cmd == "delay":
        return None if len(a) == 1 and a[0].isdigit() else "delay <ms>"
    return f"unknown command {cmd!r}"


def check_file(path):
    problems = []
    with open(path) as f:
        for n, raw in enumerate(f, 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            p = check_line(line)
            if p:
                problems.append(f"{path}:{n}: {line}: {p}")
    return problems


def self_test():
    bad = ["enable 0 imix", "set 0 dst ip 192.0.2.300", "range 0 src ip bogus 1.2.3.4",
           "seq 0 0 02:00:00:00:00:01 192.0.2.100 1 80 ipv4 udp 1 64", "frobnicate 0"]
    good = ["enable 1 process", "range 0 src ip inc 0.0.0.1", "set 0 src ip 198.18.0.1/15",
            "seq 3 0 02:00:00:00:00:01 02:00:00:00:00:10 192.0.2.100 198.18.0.1/15 1027 80 ipv4 udp 1 64",
            "range 0 tcp flag set syn", "set 0 rate 0.1", "latency 0 rate 1000", "page latency"]
    for line in bad:
        assert check_line(line), f"accepted {line!r}"
    for line in good:
        assert check_line(line) is None, f"refused {line!r}: {check_line(line)}"
    print("check-pktgen: self-test ok")


def main():
    if sys.argv[1:] == ["--self-test"]:
        self_test()
        return
    problems = [p for path in sys.argv[1:] for p in check_file(path)]
    for p in problems:
        print(p, file=sys.stderr)
    print(f"check-pktgen: {len(sys.argv) - 1} files, {len(problems)} problems")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
