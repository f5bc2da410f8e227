//! Fragments through the forwarder: a datagram's first fragment is
//! balanced by its ports, its later fragments follow it to the same real
//! with the same rewrite, in order or not; replies fragmented by a NAT
//! real come back as the VIP's; every fragment of a datagram is owned by
//! one worker. The fragments are cut here from whole datagrams, and what
//! leaves is put together again and its checksum computed from scratch.

mod common;

use common::*;
use sluice_core::flow6::build::{ip6_packet, Spec6};
use sluice_core::wire::ethernet;
use sluice_core::{DropReason, MacAddr};
use sluice_lb::{Action, Forwarder, SharedStats};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4};

const DNS_VIP: SocketAddrV4 = SocketAddrV4::new(VIP_IP, 53);

/// The fragments of IPv4 datagram `ip` (20-byte header) with at most
/// `chunk` bytes of payload each (a multiple of 8), as frames to `dst_mac`
/// from `src`'s MAC.
fn fragments(ip: &[u8], chunk: usize, dst_mac: MacAddr) -> Vec<Vec<u8>> {
    let (src, dst) = (ip_at(ip, 12), ip_at(ip, 16));
    let payload = &ip[20..];
    let pieces: Vec<&[u8]> = payload.chunks(chunk).collect();
    pieces
        .iter()
        .enumerate()
        .map(|(i, piece)| {
            let more = if i + 1 < pieces.len() { 0x2000 } else { 0 };
            let frag = more | (i * chunk / 8) as u16;
            let id = u16::from_be_bytes([ip[4], ip[5]]);
            let f = ipv4_packet(ip[9], src, dst, ip[8], id, frag, piece);
            ether(dst_mac, mac_of(src), ETHERTYPE_IPV4, &f)
        })
        .collect()
}

fn ip_at(b: &[u8], off: usize) -> Ipv4Addr {
    Ipv4Addr::new(b[off], b[off + 1], b[off + 2], b[off + 3])
}

/// Puts forwarded fragments (frames) together again: the header of the
/// first (its IP header checksum checked on each), the payloads by offset.
fn reassemble(frames: &[Vec<u8>]) -> (Ipv4Addr, Ipv4Addr, Vec<u8>) {
    let mut parts: Vec<(usize, &[u8])> = Vec::new();
    for f in frames {
        let ip = &f[14..];
        assert_eq!(
            ipv4_header_checksum(&ip[..20]),
            u16::from_be_bytes([ip[10], ip[11]])
        );
        let total = u16::from_be_bytes([ip[2], ip[3]]) as usize;
        let off = (u16::from_be_bytes([ip[6], ip[7]]) & 0x1fff) as usize * 8;
        parts.push((off, &ip[20..total]));
    }
    parts.sort_by_key(|p| p.0);
    let mut payload = Vec::new();
    for (off, p) in parts {
        assert_eq!(off, payload.len(), "a hole or an overlap");
        payload.extend_from_slice(p);
    }
    let ip = &frames[0][14..];
    (ip_at(ip, 12), ip_at(ip, 16), payload)
}

/// A UDP datagram's IP packet of `len` bytes of data, DF clear.
fn big_udp(src: SocketAddrV4, dst: SocketAddrV4, len: usize, id: u16) -> Vec<u8> {
    let data: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
    let mut ip = udp_ip(src, dst, &data, 64, true);
    ip[4..6].copy_from_slice(&id.to_be_bytes());
    ip[10..12].fill(0);
    let c = ipv4_header_checksum(&ip[..20]);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    ip
}

fn udp_lab() -> Lab {
    let mut lab = Lab::new(&[slotted(udp_nat_spec())]);
    lab.learn_nat_reals();
    lab.learn(CLIENT_IP);
    lab
}

/// The datagram's checksum over the pseudo-header of `src` and `dst`.
fn udp_ok(src: Ipv4Addr, dst: Ipv4Addr, seg: &[u8]) -> bool {
    let stored = u16::from_be_bytes([seg[6], seg[7]]);
    let mut zero = seg.to_vec();
    zero[6..8].fill(0);
    stored == l4_checksum(src, dst, 17, &zero)
}

#[test]
fn a_clients_fragments_follow_the_first_to_its_real() {
    let mut lab = udp_lab();
    let ip = big_udp(client(5000), DNS_VIP, 3000, 0x4242);
    let frags = fragments(&ip, 1480, PORT0_MAC);
    assert_eq!(frags.len(), 3);
    let mut out = Vec::new();
    for f in &frags {
        let (a, o) = lab.run(f, 0);
        assert_eq!(a, Action::Forward { port: 1 });
        assert_eq!(ttl(&o), 63, "NAT decrements the TTL of every fragment");
        out.push(o);
    }
    let (src, dst, seg) = reassemble(&out);
    assert_eq!(src, CLIENT_IP);
    assert!((0..3).any(|i| dst == *nat_real(i).ip()), "{dst}");
    // Every fragment to the same real, and its MAC.
    assert!(out.iter().all(|o| eth_dst(o) == mac_of(dst)));
    assert_eq!(
        u16::from_be_bytes([seg[2], seg[3]]),
        5353,
        "the port, in the first"
    );
    assert!(udp_ok(src, dst, &seg), "the datagram's checksum, updated");
    assert_eq!(&seg[8..], &ip[28..], "the data unchanged");
    let s = lab.stats();
    assert_eq!(
        (s.fragments_remembered.get(), s.fragments_followed.get()),
        (1, 2)
    );
    assert_eq!(lab.fwd.table().len(), 1, "one connection");
}

#[test]
fn fragments_before_their_first_wait_and_then_follow() {
    let mut lab = udp_lab();
    let ip = big_udp(client(5001), DNS_VIP, 4000, 0x0101);
    let frags = fragments(&ip, 1480, PORT0_MAC);
    // The last, then the middle one: held (unchanged).
    for f in [&frags[2], &frags[1]] {
        let (a, o) = lab.run(f, 0);
        assert_eq!(a, Action::HoldFragment);
        assert_eq!(&o, f);
    }
    let learned = lab.fwd.fragments_learned();
    let (a, first) = lab.run(&frags[0], 0);
    assert_eq!(a, Action::Forward { port: 1 });
    assert!(
        lab.fwd.fragments_learned() > learned,
        "held fragments are woken"
    );
    let mut out = vec![first];
    for f in [&frags[2], &frags[1]] {
        let (a, o) = lab.run(f, 0);
        assert_eq!(a, Action::Forward { port: 1 });
        out.push(o);
    }
    let (src, dst, seg) = reassemble(&out);
    assert!(udp_ok(src, dst, &seg));
    // Another datagram of the same flow (another identification) is
    // balanced by its own first fragment, to the same connection.
    let ip2 = big_udp(client(5001), DNS_VIP, 2000, 0x0102);
    let frags2 = fragments(&ip2, 1480, PORT0_MAC);
    let (a, o) = lab.run(&frags2[1], 0);
    assert_eq!(a, Action::HoldFragment, "not the first datagram's");
    let (_, f0) = lab.run(&frags2[0], 0);
    assert_eq!(ip_dst(&f0), dst);
    let (a, o2) = lab.run(&o, 0);
    assert_eq!(a, Action::Forward { port: 1 });
    assert_eq!(ip_dst(&o2), dst);
}

#[test]
fn a_nat_reals_fragmented_reply_comes_back_from_the_vip() {
    let mut lab = udp_lab();
    let (a, q) = lab.run(
        &ether(
            PORT0_MAC,
            mac_of(CLIENT_IP),
            ETHERTYPE_IPV4,
            &udp_ip(client(5002), DNS_VIP, b"q", 64, true),
        ),
        0,
    );
    assert_eq!(a, Action::Forward { port: 1 });
    let real = SocketAddrV4::new(ip_dst(&q), dport(&q));
    // A 4000-byte answer, fragmented by the real's kernel.
    let reply = big_udp(real, client(5002), 4000, 0x7777);
    let frags = fragments(&reply, 1480, PORT1_MAC);
    let mut out = Vec::new();
    // Out of order, too: the last first.
    for f in [&frags[2], &frags[0], &frags[1]] {
        let (a, o) = lab.run(f, 1);
        if a == Action::HoldFragment {
            continue;
        }
        assert_eq!(a, Action::Forward { port: 0 });
        out.push(o);
    }
    let (a, o) = lab.run(&frags[2], 1);
    assert_eq!(a, Action::Forward { port: 0 });
    out.push(o);
    let (src, dst, seg) = reassemble(&out);
    assert_eq!((src, dst), (VIP_IP, CLIENT_IP));
    assert_eq!(
        u16::from_be_bytes([seg[0], seg[1]]),
        53,
        "from the VIP's port"
    );
    assert!(udp_ok(src, dst, &seg), "the answer's checksum, updated");
    assert_eq!(&seg[8..], &reply[28..]);
    // A fragment claiming the same datagram from the client side: spoofed.
    let mut spoof = frags[1].clone();
    spoof[0..6].copy_from_slice(&PORT0_MAC.0);
    assert_eq!(lab.run(&spoof, 0).0, Action::Drop(DropReason::SpoofedReply));
}

#[test]
fn every_fragment_of_a_datagram_is_owned_by_the_first_ones_worker() {
    let shared = SharedStats::new(2);
    let mut w: Vec<Forwarder> = (0..2).map(|i| forwarder(&shared, i, 2, 4096)).collect();
    let snap = build_snapshot(&[slotted(udp_nat_spec())], &[]).unwrap();
    for f in w.iter_mut() {
        for i in 0..3 {
            f.learn_remote(*nat_real(i).ip(), mac_of(*nat_real(i).ip()), T0);
        }
    }
    for c in 0..16u8 {
        let from = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 30 + c), 6000);
        for f in w.iter_mut() {
            f.learn_remote(*from.ip(), mac_of(*from.ip()), T0);
        }
        let ip = big_udp(from, DNS_VIP, 2000, u16::from(c));
        let mut owners = Vec::new();
        for f in fragments(&ip, 1480, PORT0_MAC) {
            // Whichever worker RSS gave it to, one owner takes it.
            for (i, fw) in w.iter_mut().enumerate() {
                let mut g = f.clone();
                match fw.process(&snap, &mut g, 0, T0) {
                    Action::HandOff { worker } => assert_ne!(worker, i),
                    Action::Forward { port: 1 } => owners.push(i),
                    a => panic!("{a:?}"),
                }
            }
        }
        assert_eq!(owners.len(), 2, "each fragment forwarded once");
        assert_eq!(owners[0], owners[1], "by one worker");
    }
}

#[test]
fn direct_routing_and_tcp_fragments() {
    let mut lab = Lab::new(&[slotted(dr_spec("rr"))]);
    lab.learn_dr_reals();
    lab.learn(CLIENT_IP);
    let syn = Tcp::new(client(7000), VIP, SYN);
    let (a, s) = lab.run(&syn.frame(), 0);
    assert_eq!(a, Action::Forward { port: 0 });
    let real_mac = eth_dst(&s);
    // The client's data segment, fragmented (flags in its first).
    let data = Tcp::new(client(7000), VIP, ACK | PSH)
        .payload(&[9; 2400])
        .frag(0);
    let frags = fragments(&data.ip(), 1480, PORT0_MAC);
    for f in &frags {
        let (a, o) = lab.run(f, 0);
        assert_eq!(a, Action::Forward { port: 0 });
        assert_eq!(eth_dst(&o), real_mac, "the connection's real");
        assert_eq!(&o[14..], &f[14..], "direct routing: the packet unchanged");
    }
    // A first fragment too short for the TCP header (RFC 1858): dropped.
    let tiny = fragments(&data.ip(), 8, PORT0_MAC);
    assert_eq!(
        lab.run(&tiny[0], 0).0,
        Action::Drop(DropReason::Ipv4Fragment)
    );
    // Invalid flags in a first fragment are refused as in a whole segment.
    let xmas = Tcp::new(client(7001), VIP, FIN | SYN)
        .payload(&[1; 2000])
        .frag(0);
    let f = fragments(&xmas.ip(), 1480, PORT0_MAC);
    assert_eq!(lab.run(&f[0], 0).0, Action::Drop(DropReason::BadTcpFlags));
}

#[test]
fn ipv6_fragments_follow_their_first() {
    use sluice_core::flow6::parse;
    let v = |s: &str| -> Ipv6Addr { s.parse().unwrap() };
    let mut spec = udp_nat_spec();
    spec.vip = v("2001:db8::100").into();
    for (i, r) in spec.reals.iter_mut().enumerate() {
        r.ip = v(&format!("2001:db8:2::{}", 11 + i)).into();
    }
    let mut lab = Lab::new(&[]);
    lab.snap = dual_stack_snapshot(spec, &[]);
    let client6 = v("2001:db8:1::10");
    for i in 0..3 {
        let r = v(&format!("2001:db8:2::{}", 11 + i));
        lab.fwd
            .learn_remote(r, MacAddr([2, 0, 0, 0, 0x22, i as u8]), lab.now);
    }
    // A UDP datagram's first fragment (its header and 1024 bytes) and the
    // rest, by hand: fixed header, fragment header, payload.
    let whole = ip6_packet(&Spec6 {
        proto: 17,
        src: client6,
        dst: v("2001:db8::100"),
        sport: 5003,
        dport: 53,
        payload: vec![5; 1800],
        ..Spec6::default()
    });
    let upper = &whole[40..];
    let frag6 = |off: usize, more: bool, piece: &[u8]| {
        let mut p = whole[..40].to_vec();
        p[4..6].copy_from_slice(&((8 + piece.len()) as u16).to_be_bytes());
        p[6] = 44;
        let word = (off as u16 / 8) << 3 | u16::from(more);
        p.extend_from_slice(&[17, 0]);
        p.extend_from_slice(&word.to_be_bytes());
        p.extend_from_slice(&0xabcd_0001u32.to_be_bytes());
        p.extend_from_slice(piece);
        let mut f = PORT0_MAC.0.to_vec();
        f.extend_from_slice(&[2, 0, 0, 0, 0, 0x99, 0x86, 0xdd]);
        f.extend_from_slice(&p);
        f
    };
    let second = frag6(1024, false, &upper[1024..]);
    assert_eq!(lab.run(&second, 0).0, Action::HoldFragment);
    let (a, first) = lab.run(&frag6(0, true, &upper[..1024]), 0);
    assert_eq!(a, Action::Forward { port: 1 });
    let real = parse(&first).unwrap().dst;
    assert_eq!(&first[14 + 48 + 2..14 + 48 + 4], &5353u16.to_be_bytes());
    let (a, rest) = lab.run(&second, 0);
    assert_eq!(a, Action::Forward { port: 1 });
    assert_eq!(parse(&rest).unwrap().dst, real, "to the first's real");
    assert_eq!(ethernet::dst(&rest), ethernet::dst(&first));
    assert_eq!(&rest[14 + 48..], &upper[1024..]);
}
