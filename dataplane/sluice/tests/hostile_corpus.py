"""Malformed and hostile frames, one class at a time, sent with scapy.

Usage: hostile_corpus.py SIDE IFACE APPLIANCE_MAC REPEAT
  SIDE: "client" (sent from the client segment) or "server" (from the
  reals' segment, on the switch's port facing the appliance: a Linux bridge
  with br_netfilter would drop a bad IPv4 checksum before the appliance
  sees it).

Sends one class at a time: prints NAME REASON COUNT once it has sent the
class, then waits for a line on standard input before the next, so that the
caller can read the counters in between. REASON is the drop reason the
appliance must count the class under, "forwarded" for a valid packet that
must reach the real, or "absorbed" for what never reaches the appliance
through net_af_packet (the kernel's packet fanout reassembles IPv4
fragments, PACKET_FANOUT_FLAG_DEFRAG, and keeps incomplete ones); COUNT is
how many frames were sent. Every
hostile TCP or UDP packet uses a source port in 6000..6099 so that a capture
on the server side can tell whether any of them got through.
"""

import sys

from scapy.all import (ARP, ICMP, IP, IPv6, TCP, UDP, Dot1Q, Ether, Raw,
                       conf, sendp)

conf.verb = 0
side, iface, lb_mac, repeat = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])

VIP = "192.0.2.100"
CLIENT = "192.0.2.10"
LB_CLIENT = "192.0.2.1"
LB_SERVER = "198.51.100.1"
REAL = "198.51.100.11"
OTHER_MAC = "02:00:00:00:00:99"
SRC_MAC = "02:00:00:00:00:0a"

classes = []


def add(name, reason, frame):
    classes.append((name, reason, bytes(frame)))


def eth(dst=lb_mac):
    # The IPv4 EtherType spelled out: scapy's default for a bare Ether is
    # 0x9000, and some frames here are raw bytes after the header.
    return Ether(dst=dst, src=SRC_MAC, type=0x0800)


def tcp(sport, flags="S", **kw):
    return TCP(sport=sport, dport=80, flags=flags, seq=1000, **kw)


def ip(src=CLIENT, dst=VIP, **kw):
    return IP(src=src, dst=dst, **kw)


if side == "client":
    good_syn = ip() / tcp(6000)
    # Layer 2.
    add("ethernet_header_only", "truncated", Ether(dst=lb_mac, src=SRC_MAC, type=0x0800))
    add("frame_for_another_mac", "not_our_mac", eth(OTHER_MAC) / ip() / tcp(6001))
    add("broadcast_frame", "not_our_mac", eth("ff:ff:ff:ff:ff:ff") / ip() / tcp(6002))
    add("multicast_frame", "not_our_mac", eth("01:00:5e:00:00:01") / ip() / tcp(6003))
    add("vlan_tagged", "unsupported_ethertype",
        Ether(dst=lb_mac, src=SRC_MAC) / Dot1Q(vlan=7) / ip() / tcp(6004))
    # IPv6 to an address the appliance does not have (no IPv6 addresses
    # are configured here).
    add("ipv6", "not_for_us",
        Ether(dst=lb_mac, src=SRC_MAC) / IPv6(src="2001:db8::10", dst="2001:db8::100") / tcp(6005))
    # IPv4 header.
    add("truncated_ipv4", "truncated", bytes(eth()) + bytes(good_syn)[:12])
    b = bytearray(bytes(ip() / tcp(6006)))
    b[0] = 0x44  # IHL 4
    add("ihl_below_5", "bad_ipv4_header", bytes(eth()) + bytes(b))
    b = bytearray(bytes(ip() / Raw(b"")))
    b[0] = 0x4F  # IHL 15 (60 bytes) in a 20-byte packet
    add("ihl_beyond_packet", "truncated", bytes(eth()) + bytes(b))
    add("total_length_above_frame", "truncated", eth() / ip(len=400) / tcp(6007))
    add("total_length_below_header", "bad_ipv4_header", eth() / ip(len=12) / tcp(6008))
    add("bad_ipv4_checksum", "bad_ipv4_checksum", eth() / ip(chksum=0x1234) / tcp(6009))
    # Layer 4.
    add("bad_tcp_checksum_syn", "bad_l4_checksum", eth() / ip() / tcp(6010, chksum=0x1234))
    add("bad_udp_checksum", "bad_l4_checksum",
        eth() / ip() / UDP(sport=6011, dport=53, chksum=0x1234) / Raw(b"q"))
    add("tcp_data_offset_below_5", "bad_tcp_header", eth() / ip() / tcp(6012, dataofs=4))
    add("tcp_data_offset_beyond_segment", "bad_tcp_header", eth() / ip() / tcp(6013, dataofs=15))
    add("udp_length_above_payload", "bad_udp_length",
        eth() / ip() / UDP(sport=6014, dport=53, len=200) / Raw(b"q"))
    add("udp_length_below_8", "bad_udp_length",
        eth() / ip() / UDP(sport=6015, dport=53, len=4) / Raw(b"q"))
    # Fragments.
    add("first_fragment", "absorbed", eth() / ip(flags="MF", frag=0) / tcp(6016))
    add("middle_fragment", "absorbed", eth() / ip(proto=6, flags="MF", frag=100) / Raw(b"x" * 24))
    add("last_fragment", "absorbed", eth() / ip(proto=6, frag=200) / Raw(b"x" * 24))
    # TTL.
    add("ttl_0", "ttl_exceeded", eth() / ip(ttl=0) / tcp(6017))
    add("ttl_1", "ttl_exceeded", eth() / ip(ttl=1) / tcp(6018))
    # Martian and land sources.
    for i, src in enumerate([VIP, LB_CLIENT, "255.255.255.255", "192.0.2.255",
                             "224.0.0.1", "0.0.0.0", "127.0.0.1"]):
        add("source_" + src, "martian_source", eth() / ip(src=src) / tcp(6020 + i))
    # Flags no TCP sends.
    for i, flags in enumerate(["", "FPU", "SF", "SR", "F"]):
        add("tcp_flags_" + (flags or "null"), "bad_tcp_flags", eth() / ip() / tcp(6030 + i, flags=flags))
    # ARP.
    a = bytearray(bytes(Ether(dst="ff:ff:ff:ff:ff:ff", src=SRC_MAC) / ARP(op=1, psrc=CLIENT, pdst=LB_CLIENT, hwsrc=SRC_MAC)))
    a[14 + 4] = 8  # hardware length 8
    add("arp_bad_length", "bad_arp", bytes(a))
    add("arp_bad_opcode", "bad_arp", Ether(dst="ff:ff:ff:ff:ff:ff", src=SRC_MAC) / ARP(op=7, psrc=CLIENT, pdst=LB_CLIENT, hwsrc=SRC_MAC))
    add("gratuitous_arp_for_vip", "arp_claims_our_address",
        Ether(dst="ff:ff:ff:ff:ff:ff", src=OTHER_MAC) / ARP(op=2, psrc=VIP, pdst=VIP, hwsrc=OTHER_MAC))
    add("arp_poisoning_a_real", "arp_wrong_segment",
        Ether(dst="ff:ff:ff:ff:ff:ff", src=OTHER_MAC) / ARP(op=1, psrc=REAL, pdst=LB_CLIENT, hwsrc=OTHER_MAC))
    # ICMP errors.
    add("icmp_error_quoting_garbage", "bad_icmp", eth() / ip(dst=VIP) / ICMP(type=3, code=4) / Raw(b"\x00" * 28))
    add("icmp_error_quoting_another_client", "not_for_us",
        eth() / ip(dst=VIP) / ICMP(type=3, code=4) /
        IP(src=VIP, dst="192.0.2.77") / TCP(sport=80, dport=45678, flags="SA"))
    # A reply "from" the real, sent from the client segment.
    add("reply_spoofed_from_client_side", "spoofed_reply",
        eth() / IP(src=REAL, dst=CLIENT) / TCP(sport=8080, dport=6040, flags="SA"))
    # A valid SYN with IPv4 options (record route): a real client may send
    # it, so it must reach the real, rewritten and well-formed.
    add("syn_with_ip_options", "forwarded",
        eth() / ip(options=[b"\x07\x07\x04\x00\x00\x00\x00"]) / tcp(6050))
else:
    # From a real's segment.
    add("server_frame_for_another_mac", "not_our_mac",
        eth(OTHER_MAC) / IP(src=REAL, dst=CLIENT) / TCP(sport=8080, dport=6060, flags="A"))
    add("server_bad_ipv4_checksum", "bad_ipv4_checksum",
        eth() / IP(src=REAL, dst=CLIENT, chksum=1) / TCP(sport=8080, dport=6061, flags="A"))
    add("server_martian_source", "martian_source",
        eth() / IP(src="127.0.0.1", dst=CLIENT) / TCP(sport=8080, dport=6062, flags="A"))
    add("server_bad_reset_checksum", "not_for_us",
        eth() / IP(src=REAL, dst=CLIENT) / TCP(sport=8080, dport=6063, flags="R", chksum=7))
    add("server_arp_poisoning_the_client", "arp_wrong_segment",
        Ether(dst="ff:ff:ff:ff:ff:ff", src=OTHER_MAC) / ARP(op=1, psrc=CLIENT, pdst=LB_SERVER, hwsrc=OTHER_MAC))

for name, reason, frame in classes:
    sendp([Raw(frame)] * repeat, iface=iface)
    print(name, reason, repeat, flush=True)
    sys.stdin.readline()
