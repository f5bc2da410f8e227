//! The PROXY protocol through the forwarder: the header, put into the frame
//! as the worker does, sits in front of the client's first byte (and of
//! its retransmissions), later bytes move up by its length, the real's
//! acknowledgments and SACK edges move back, its SYN-ACK's MSS leaves
//! room for the header; every UDP datagram carries one. Checksums are
//! checked from scratch.

mod common;

use common::*;
use sluice_core::proxy_protocol::V2_SIGNATURE;
use sluice_core::DropReason;
use sluice_lb::{Action, Snapshot};
use sluice_model::{Forward, Protocol, ProxyProtocol, ServiceSpec};
use std::net::{IpAddr, Ipv4Addr, SocketAddrV4};
use std::sync::Arc;

const LIP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 200);
const ISN: u32 = 0xffff_fff0; // the stream wraps around soon after

fn spec(fwd: Forward) -> ServiceSpec {
    let mut s = service_spec("rr", vec![real_spec(nat_real(0), fwd, 1)]);
    s.local_addresses = vec![IpAddr::V4(LIP)];
    s.proxy_protocol = ProxyProtocol::V2;
    s
}

fn lab(s: ServiceSpec) -> Lab {
    let mut lab = Lab::new(&[slotted(s)]);
    lab.learn_nat_reals();
    lab.learn(CLIENT_IP);
    lab
}

/// Processes `frame` on `rx` and puts the header in, as the worker does.
fn run(lab: &mut Lab, frame: &[u8], rx: usize) -> (Action, Vec<u8>) {
    let (a, mut f) = lab.run(frame, rx);
    if let Some(ins) = lab.fwd.take_insert() {
        f.extend(std::iter::repeat_n(0, ins.header.len()));
        ins.apply(&mut f);
    }
    (a, f)
}

fn seg(src: SocketAddrV4, dst: SocketAddrV4, flags: u8, seq: u32, ack: u32) -> Tcp {
    let mut t = Tcp::new(src, dst, flags);
    t.seq = seq;
    t.ack = ack;
    t.options = Vec::new();
    t
}

fn seq_of(f: &[u8]) -> u32 {
    u32::from_be_bytes(f[L4 + 4..L4 + 8].try_into().unwrap())
}

fn ack_of(f: &[u8]) -> u32 {
    u32::from_be_bytes(f[L4 + 8..L4 + 12].try_into().unwrap())
}

/// The TCP payload of `f`.
fn payload(f: &[u8]) -> &[u8] {
    let thl = usize::from(f[L4 + 12] >> 4) * 4;
    &l4(f)[thl..]
}

/// The header Sluice must write for `c` to the VIP, from scratch.
fn header(c: SocketAddrV4, stream: bool) -> Vec<u8> {
    let mut h = V2_SIGNATURE.to_vec();
    h.extend_from_slice(&[0x21, if stream { 0x11 } else { 0x12 }, 0, 12]);
    h.extend_from_slice(&c.ip().octets());
    h.extend_from_slice(&VIP_IP.octets());
    h.extend_from_slice(&c.port().to_be_bytes());
    h.extend_from_slice(&VPORT.to_be_bytes());
    h
}

#[test]
fn a_tcp_stream_under_full_nat() {
    let mut lab = lab(spec(Forward::FullNat));
    let c = client(40_000);
    let real = nat_real(0);
    let s0 = ISN.wrapping_add(1);
    let h = header(c, true);
    let n = h.len() as u32;
    assert_eq!(n, 28);

    let mut syn = seg(c, VIP, SYN, ISN, 0);
    syn.options = vec![2, 4, 0x05, 0xb4];
    let (a, f) = run(&mut lab, &syn.frame(), 0);
    assert_eq!(a, Action::Forward { port: 1 });
    assert_eq!(seq_of(&f), ISN, "the SYN is as it was");
    assert!(payload(&f).is_empty());
    let local = SocketAddrV4::new(ip_src(&f), sport(&f));

    // The real's SYN-ACK: its MSS leaves room for the header.
    let mut sa = seg(real, local, SYN | ACK, 5000, s0);
    sa.options = vec![2, 4, 0x05, 0xb4];
    let (a, f) = run(&mut lab, &sa.frame(), 1);
    assert_eq!(a, Action::Forward { port: 0 });
    assert_eq!(ack_of(&f), s0);
    assert_eq!(l4(&f)[20..24], [2, 4, 0x05, 0x98], "MSS 1460 - 28 = 1432");
    assert_checksums(&f);

    // The handshake's ACK carries the header to the real at once.
    let (_, f) = run(&mut lab, &seg(c, VIP, ACK, s0, 5001).frame(), 0);
    assert_eq!((seq_of(&f), payload(&f)), (s0, &h[..]));
    assert_eq!(ip_total_len(&f), 40 + 28);
    assert_checksums(&f);

    // The first data: the header again in front (a retransmission of
    // the same bytes to the real), and again when the client resends it.
    let get = b"GET / HTTP/1.0\r\n\r\n";
    let first = seg(c, VIP, ACK | PSH, s0, 5001).payload(get);
    for _ in 0..2 {
        let (_, f) = run(&mut lab, &first.frame(), 0);
        assert_eq!(seq_of(&f), s0);
        assert_eq!(payload(&f), [&h[..], get].concat());
        assert_checksums(&f);
    }
    // Later bytes move up by the header's length, across the wrap.
    let later = s0.wrapping_add(get.len() as u32);
    let (_, f) = run(&mut lab, &seg(c, VIP, ACK | FIN, later, 5001).frame(), 0);
    assert_eq!(seq_of(&f), later.wrapping_add(n));
    assert!(payload(&f).is_empty());
    assert_checksums(&f);

    // The real acknowledges the header and the request, and SACKs a
    // block of it: the client sees its own numbers.
    let mut ack = seg(real, local, ACK, 5001, later.wrapping_add(n));
    let (e1, e2) = (s0.wrapping_add(n + 4), s0.wrapping_add(n + 8));
    ack.options = [&[1, 1, 5, 10][..], &e1.to_be_bytes(), &e2.to_be_bytes()].concat();
    let (_, f) = run(&mut lab, &ack.frame(), 1);
    assert_eq!(ack_of(&f), later);
    let sack: Vec<u32> = (0..2)
        .map(|i| u32::from_be_bytes(l4(&f)[24 + 4 * i..28 + 4 * i].try_into().unwrap()))
        .collect();
    assert_eq!(sack, [s0.wrapping_add(4), s0.wrapping_add(8)]);
    assert_checksums(&f);
    assert_eq!(lab.stats().proxy_headers_sent.get(), 3);

    // The real has the header: from now on no segment gets it again,
    // even one numbered as the stream's first byte (as one 4 GiB on is),
    // and every number moves, however far on.
    for (seq, data) in [
        (s0, &b"x"[..]),
        (s0.wrapping_add(1 << 31), b"y"),
        (later, b""),
    ] {
        let (_, f) = run(
            &mut lab,
            &seg(c, VIP, ACK | PSH, seq, 5001).payload(data).frame(),
            0,
        );
        assert_eq!(seq_of(&f), seq.wrapping_add(n));
        assert_eq!(payload(&f), data);
        assert_checksums(&f);
    }
    let (_, f) = run(
        &mut lab,
        &seg(real, local, ACK, 5001, s0.wrapping_add(1 << 31)).frame(),
        1,
    );
    assert_eq!(ack_of(&f), s0.wrapping_add(1 << 31).wrapping_sub(n));
    assert_eq!(lab.stats().proxy_headers_sent.get(), 3);
}

#[test]
fn every_udp_datagram_carries_one() {
    let mut s = spec(Forward::Nat);
    s.protocol = Protocol::Udp;
    s.port = 53;
    s.reals[0].port = 5353;
    let mut lab = lab(s);
    let vip = SocketAddrV4::new(VIP_IP, 53);
    let c = client(5000);
    let mut h = header(c, false);
    h[26..28].copy_from_slice(&53u16.to_be_bytes());
    for q in [&b"one"[..], b"two!"] {
        let frame = ether(
            PORT0_MAC,
            mac_of(CLIENT_IP),
            ETHERTYPE_IPV4,
            &udp_ip(c, vip, q, 64, true),
        );
        let (a, f) = run(&mut lab, &frame, 0);
        assert_eq!(a, Action::Forward { port: 1 });
        // NAT: the real sees the client, and the header says so too.
        assert_eq!(ip_src(&f), *c.ip());
        assert_eq!(&l4(&f)[8..], [&h[..], q].concat());
        assert_checksums(&f);
    }
    // Its answers pass unchanged.
    let ans = ether(
        PORT1_MAC,
        mac_of(*nat_real(0).ip()),
        ETHERTYPE_IPV4,
        &udp_ip(
            SocketAddrV4::new(*nat_real(0).ip(), 5353),
            c,
            b"answer",
            64,
            true,
        ),
    );
    let (_, f) = run(&mut lab, &ans, 1);
    assert_eq!(&l4(&f)[8..], b"answer");
    // A datagram the header would push past the MTU is dropped.
    let big = ether(
        PORT0_MAC,
        mac_of(CLIENT_IP),
        ETHERTYPE_IPV4,
        &udp_ip(c, vip, &[7; 1460], 64, true),
    );
    assert_eq!(
        run(&mut lab, &big, 0).0,
        Action::Drop(DropReason::TooBigForProxyHeader)
    );
}

#[test]
fn refused_where_the_shift_could_not_be_taken_back() {
    let err = |s: ServiceSpec| {
        Snapshot::build(&[slotted(s)], &[], &port_bases(), &Arc::new(route_table())).unwrap_err()
    };
    let mut dr = spec(Forward::Dr);
    dr.reals[0].port = VPORT;
    assert!(err(dr).contains("needs NAT or full-NAT reals"));
    let mut proxied = spec(Forward::Nat);
    proxied.syn_proxy = sluice_model::SynProxyMode::On;
    assert!(err(proxied).contains("do not go together"));
    assert_eq!(
        "v1".parse::<ProxyProtocol>().unwrap_err(),
        "PROXY protocol v1 is not supported (its text header has an odd length as often as not): use v2"
    );
}

/// IPv6 full NAT with the PROXY protocol: the 52-byte header of an IPv6
/// client, both addresses rewritten, checksums from scratch.
#[test]
fn ipv6_full_nat_carries_the_ipv6_header() {
    use sluice_core::flow6::build::{checksum6, frame6, Spec6};
    use sluice_core::wire::ethernet;
    use sluice_core::MacAddr;
    use std::net::Ipv6Addr;
    let v = |s: &str| -> Ipv6Addr { s.parse().unwrap() };
    let (vip, real, lip) = (
        v("2001:db8::100"),
        v("2001:db8:2::11"),
        v("2001:db8:2::200"),
    );
    let mut spec = ServiceSpec::new(Protocol::Tcp, vip.into(), 80);
    let mut r = sluice_model::RealSpec::new(real.into(), 8080);
    r.forward = Forward::FullNat;
    spec.reals.push(r);
    spec.local_addresses = vec![lip.into()];
    spec.proxy_protocol = ProxyProtocol::V2;
    let mut lab = Lab::new(&[]);
    lab.snap = dual_stack_snapshot(spec, &[]);
    let host = MacAddr([2, 0, 0, 0, 0, 0x99]);
    let client6 = v("2001:db8:1::10");
    lab.fwd
        .learn_remote(real, MacAddr([2, 0, 0, 0, 0, 0x11]), lab.now);
    lab.fwd.learn_remote(client6, host, lab.now);
    let tcp = |src, dst, sport, dport, flags, seq: u32, payload: &[u8]| {
        let mut f = frame6(&Spec6 {
            proto: 6,
            src,
            dst,
            sport,
            dport,
            tcp_flags: flags,
            payload: payload.to_vec(),
            ..Spec6::default()
        });
        let rx_mac = if src == real {
            [2, 0, 0, 0, 0, 2]
        } else {
            [2, 0, 0, 0, 0, 1]
        };
        ethernet::set_macs(&mut f, MacAddr(rx_mac), host);
        f[58..62].copy_from_slice(&seq.to_be_bytes());
        f[70..72].fill(0);
        let c = checksum6(src, dst, 6, &f[54..]);
        f[70..72].copy_from_slice(&c.to_be_bytes());
        f
    };
    let ok = |f: &[u8]| {
        let (s, d) = (
            Ipv6Addr::from(<[u8; 16]>::try_from(&f[22..38]).unwrap()),
            Ipv6Addr::from(<[u8; 16]>::try_from(&f[38..54]).unwrap()),
        );
        let len = usize::from(u16::from_be_bytes([f[18], f[19]]));
        assert_eq!(len, f.len() - 54);
        assert_eq!(checksum6(s, d, 6, &f[54..]), 0, "TCP checksum");
        (s, d)
    };
    let (a, f) = run(&mut lab, &tcp(client6, vip, 40008, 80, SYN, 99, b""), 0);
    assert_eq!(a, Action::Forward { port: 1 });
    assert_eq!(ok(&f), (lip, real));
    let lport = u16::from_be_bytes([f[54], f[55]]);
    let get = b"GET / HTTP/1.0\r\n\r\n";
    let (a, f) = run(&mut lab, &tcp(client6, vip, 40008, 80, ACK, 100, get), 0);
    assert_eq!(a, Action::Forward { port: 1 });
    assert_eq!(ok(&f), (lip, real));
    let payload = &f[54 + 20..];
    assert_eq!(payload.len(), 52 + get.len());
    assert_eq!(payload[12..16], [0x21, 0x21, 0, 36]);
    assert_eq!(payload[16..32], client6.octets());
    assert_eq!(payload[32..48], vip.octets());
    assert_eq!(payload[48..52], [0x9c, 0x48, 0, 80]);
    assert_eq!(&payload[52..], get);
    // The real's answer reaches the client from the VIP.
    let (a, f) = run(&mut lab, &tcp(real, lip, 8080, lport, ACK, 7, b"200"), 1);
    assert_eq!(a, Action::Forward { port: 0 });
    assert_eq!(ok(&f), (vip, client6));
    assert_eq!(f[54..58], [0, 80, 0x9c, 0x48]);
}

/// Connections whose real gets the PROXY header are never told to peer
/// appliances (a peer would not put the header in), UDP ones included,
/// which are told about when opened; a plain NAT service's are.
#[test]
fn none_is_synced() {
    for (proxy, told) in [(ProxyProtocol::V2, 0), (ProxyProtocol::Off, 1)] {
        let mut s = spec(Forward::Nat);
        s.protocol = Protocol::Udp;
        s.port = 53;
        s.reals[0].port = 5353;
        s.proxy_protocol = proxy;
        let mut lab = lab(s);
        lab.fwd.enable_sync(16);
        let vip = SocketAddrV4::new(VIP_IP, 53);
        let q = ether(
            PORT0_MAC,
            mac_of(CLIENT_IP),
            ETHERTYPE_IPV4,
            &udp_ip(client(5000), vip, b"q", 64, true),
        );
        assert_eq!(run(&mut lab, &q, 0).0, Action::Forward { port: 1 });
        let mut n = 0;
        lab.fwd.take_sync(|_| n += 1);
        assert_eq!(n, told, "{proxy}");
    }
}

/// An ICMP error about a segment the real got shifted (fragmentation
/// needed, from the real itself) reaches the client quoting its own
/// sequence number, or its stack would ignore it.
#[test]
fn an_icmp_error_quotes_the_clients_own_numbers() {
    let mut lab = lab(spec(Forward::FullNat));
    let c = client(40_010);
    let real = nat_real(0);
    let s0 = ISN.wrapping_add(1);
    let (_, f) = run(&mut lab, &seg(c, VIP, SYN, ISN, 0).frame(), 0);
    let local = SocketAddrV4::new(ip_src(&f), sport(&f));
    run(&mut lab, &seg(real, local, SYN | ACK, 5000, s0).frame(), 1);
    run(
        &mut lab,
        &seg(c, VIP, ACK, s0, 5001).payload(b"first").frame(),
        0,
    );
    // The client's bytes from s0 + 5 on, as the real got them: 28 on.
    let later = s0.wrapping_add(5);
    let (_, sent) = run(
        &mut lab,
        &seg(c, VIP, ACK, later, 5001).payload(&[7; 64]).frame(),
        0,
    );
    assert_eq!(seq_of(&sent), later.wrapping_add(28));
    let quote = &sent[L3..L3 + 48];
    let err = icmp_error_frame(3, 4, [0, 0, 5, 0], *real.ip(), LIP, quote, PORT1_MAC);
    let (a, f) = run(&mut lab, &err, 1);
    assert_eq!(a, Action::Forward { port: 0 });
    assert_eq!(ip_dst(&f), *c.ip());
    let q = &l4(&f)[8..];
    let quoted_seq = u32::from_be_bytes(q[24..28].try_into().unwrap());
    assert_eq!(quoted_seq, later);
    assert_checksums(&f);
}
