//! Tunnel mode through the forwarder: the client's packet leaves unchanged
//! inside an outer header to a real behind a router, the same for every
//! packet of its connection; GUE's source port follows the flow; a packet
//! too big for the tunnel is refused with fragmentation needed (packet too
//! big); ICMP errors about the real's replies follow the connection into
//! the tunnel. Frames and checksums are checked from scratch.

mod common;

use common::*;
use sluice_core::flow6::build::{frame6, Spec6};
use sluice_core::tunnel;
use sluice_core::wire::ethernet;
use sluice_core::{DropReason, Ipv4Prefix, MacAddr};
use sluice_lb::{Action, RouteTable, SentError, Snapshot, TunnelView};
use sluice_model::{Forward, Protocol, RealSpec, ServiceSpec};
use std::collections::HashSet;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4};
use std::sync::Arc;

/// The router on port 1's segment that reaches the reals' network.
const ROUTER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 254);

/// Tunnel real `i`, two networks away: 203.0.113.11+i:80.
fn tunnel_real(i: usize) -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::new(203, 0, 113, 11 + i as u8), VPORT)
}

/// The service on VIP:80 with one real forwarded by `fwd`, 203.0.113.0/24
/// routed through [`ROUTER`], and `tunnel` settings.
fn lab(fwd: Forward, t: TunnelView) -> Lab {
    let spec = service_spec("rr", vec![real_spec(tunnel_real(0), fwd, 1)]);
    let mut lab = Lab::new(&[slotted(spec.clone())]);
    lab.snap = snapshot(&[spec], t);
    lab.learn(ROUTER);
    lab.learn(CLIENT_IP);
    lab
}

fn snapshot(specs: &[ServiceSpec], t: TunnelView) -> Snapshot {
    let connected: Vec<(usize, Ipv4Prefix)> = port_bases()
        .iter()
        .enumerate()
        .flat_map(|(i, p)| p.addresses.iter().map(move |a| (i, *a)))
        .collect();
    let statics = [("203.0.113.0/24".parse().unwrap(), ROUTER)];
    let routes = RouteTable::new(&connected, &statics, None).unwrap();
    let services: Vec<_> = specs
        .iter()
        .enumerate()
        .map(|(i, spec)| sluice_lb::model::SlottedService {
            spec: spec.clone(),
            slot: sluice_lb::ServiceSlot(i as u16),
            real_slots: (0..spec.reals.len())
                .map(|j| sluice_lb::RealSlot((10 * i + j) as u16))
                .collect(),
        })
        .collect();
    Snapshot::build(&services, &[], &port_bases(), &Arc::new(routes))
        .unwrap()
        .with_tunnel(t)
}

/// Processes a copy of `frame` on port `rx`, and grows it by the outer
/// header the forwarder asks for (and cuts a first outer fragment), as
/// the worker does.
fn run(lab: &mut Lab, frame: &[u8], rx: usize) -> (Action, Vec<u8>, bool) {
    let (a, f) = lab.run(frame, rx);
    match lab.fwd.take_outer() {
        Some(o) => {
            let mut grown = vec![0u8; o.len()];
            grown.extend_from_slice(&f);
            tunnel::prepend(&mut grown, &o);
            if let Some(len) = o.cut_frame_len() {
                grown.truncate(len);
            }
            (a, grown, true)
        }
        None => (a, f, false),
    }
}

/// RFC 1071 over `b`, from scratch.
fn ones_sum(b: &[u8]) -> u16 {
    let mut s: u32 = b
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

#[test]
fn ipip_carries_the_clients_packet_unchanged_to_a_real_behind_a_router() {
    let mut lab = lab(Forward::Ipip, TunnelView::default());
    let from = client(40000);
    for flags in [SYN, ACK, ACK | PSH, FIN | ACK] {
        let sent = Tcp::new(from, VIP, flags).payload(b"GET / HTTP/1.1\r\n\r\n");
        let (a, f, grown) = run(&mut lab, &sent.frame(), 0);
        assert_eq!(a, Action::Forward { port: 1 }, "flags {flags:#x}");
        assert!(grown);
        // To the router's MAC, from port 1's; IPv4 outside.
        assert_eq!(eth_dst(&f), mac_of(ROUTER));
        assert_eq!(eth_src(&f), PORT1_MAC);
        assert_eq!(ethernet::ethertype(&f), 0x0800);
        let outer = &f[14..34];
        assert_eq!(outer[0], 0x45);
        assert_eq!(outer[9], 4, "IP in IP");
        assert_eq!(ones_sum(outer), 0xffff, "outer header checksum");
        assert_eq!(
            &outer[12..16],
            &PORT1_IP.octets(),
            "from the port's address"
        );
        assert_eq!(&outer[16..20], &tunnel_real(0).ip().octets());
        assert_eq!(outer[6] & 0x40, 0x40, "the client's DF");
        let inner = sent.ip();
        assert_eq!(
            u16::from_be_bytes([outer[2], outer[3]]) as usize,
            20 + inner.len()
        );
        // The client's packet, byte for byte: TTL, addresses, checksums.
        assert_eq!(&f[34..34 + inner.len()], &inner[..]);
    }
    assert_eq!(lab.fwd.table().len(), 1, "one connection");
}

#[test]
fn the_outer_source_is_the_configured_one_and_the_mtu_is_the_tunnels() {
    let t = TunnelView {
        source: Some(Ipv4Addr::new(203, 0, 113, 1)),
        mtu: 9000,
        ..TunnelView::default()
    };
    let mut lab = lab(Forward::Ipip, t);
    // 2000 bytes fit a 9000-byte tunnel.
    let big = Tcp::new(client(40001), VIP, SYN).payload(&[7; 2000]);
    let (a, f, _) = run(&mut lab, &big.frame(), 0);
    assert_eq!(a, Action::Forward { port: 1 });
    assert_eq!(&f[26..30], &[203, 0, 113, 1]);
}

#[test]
fn a_real_the_routes_do_not_reach_is_no_route() {
    let mut lab = lab(Forward::Ipip, TunnelView::default());
    let spec = service_spec("rr", vec![real_spec(tunnel_real(0), Forward::Ipip, 1)]);
    // Without the static route, 203.0.113.11 is nowhere.
    lab.rebuild(&[slotted(spec)], &[]);
    let (a, _, grown) = run(&mut lab, &Tcp::new(client(40002), VIP, SYN).frame(), 0);
    assert_eq!(a, Action::Drop(DropReason::NoRoute));
    assert!(!grown, "no outer header is left for the next packet");
}

#[test]
fn gue_goes_to_the_port_from_a_source_port_of_the_flow() {
    let t = TunnelView {
        gue_port: 5555,
        ..TunnelView::default()
    };
    let mut lab = lab(Forward::Gue, t);
    let mut ports = HashSet::new();
    for c in 0..64u16 {
        let from = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 50 + (c % 8) as u8), 41000 + c);
        lab.learn(*from.ip());
        let mut flow_ports = HashSet::new();
        for flags in [SYN, ACK] {
            let sent = Tcp::new(from, VIP, flags);
            let (a, f, _) = run(&mut lab, &sent.frame(), 0);
            assert_eq!(a, Action::Forward { port: 1 });
            assert_eq!(f[23], 17, "UDP");
            let udp = &f[34..42];
            assert_eq!(u16::from_be_bytes([udp[2], udp[3]]), 5555);
            let inner = sent.ip();
            assert_eq!(
                u16::from_be_bytes([udp[4], udp[5]]) as usize,
                8 + inner.len()
            );
            assert_eq!(
                &f[42..42 + inner.len()],
                &inner[..],
                "GUE variant 1: the packet itself"
            );
            let sport = u16::from_be_bytes([udp[0], udp[1]]);
            assert!(sport >= 49152);
            flow_ports.insert(sport);
        }
        assert_eq!(flow_ports.len(), 1, "one flow, one source port");
        ports.extend(flow_ports);
    }
    assert!(
        ports.len() >= 48,
        "64 flows over {} source ports",
        ports.len()
    );
}

#[test]
fn too_big_for_the_tunnel_is_told_the_mtu_left() {
    for (fwd, left) in [(Forward::Ipip, 1480u16), (Forward::Gue, 1472)] {
        let mut lab = lab(fwd, TunnelView::default());
        // Exactly what fits: 40 bytes of headers (and the MSS option).
        let payload = usize::from(left) - 20 - 24;
        let fits = Tcp::new(client(40003), VIP, SYN).payload(&vec![1; payload]);
        assert_eq!(fits.ip().len(), usize::from(left));
        assert_eq!(
            run(&mut lab, &fits.frame(), 0).0,
            Action::Forward { port: 1 }
        );
        // One byte more, with DF: dropped, and the client told.
        let big = Tcp::new(client(40003), VIP, ACK).payload(&vec![1; payload + 1]);
        let (a, _, grown) = run(&mut lab, &big.frame(), 0);
        assert_eq!(a, Action::Drop(DropReason::TooBigForTunnel));
        assert!(!grown);
        let mut sent = Vec::new();
        lab.fwd
            .take_icmp_errors(|kind, port, f| sent.push((kind, port, f.to_vec())));
        assert_eq!(sent.len(), 1);
        let (kind, port, f) = &sent[0];
        assert_eq!((*kind, *port), (SentError::TooBig { mtu: left }, 0));
        assert_checksums(f);
        assert_eq!((ip_src(f), ip_dst(f)), (PORT0_IP, CLIENT_IP));
        assert_eq!(eth_dst(f), mac_of(CLIENT_IP));
        let m = l4(f);
        assert_eq!((m[0], m[1]), (3, 4), "fragmentation needed");
        assert_eq!(u16::from_be_bytes([m[6], m[7]]), left);
        assert_eq!(&m[8..28], &big.ip()[..20], "quotes the packet");
        // Without DF it may be fragmented: the outer packet leaves in two
        // fragments, nobody told; put together, they carry it whole.
        let loose = big.clone().frag(0);
        let (a, first, _) = run(&mut lab, &loose.frame(), 0);
        assert_eq!(a, Action::Forward { port: 1 });
        let mut more = 0;
        lab.fwd.take_icmp_errors(|_, _, _| more += 1);
        assert_eq!(more, 0);
        let mut tails = Vec::new();
        lab.fwd
            .take_tunnel_tails(|a, f| tails.push((a, f.to_vec())));
        assert_eq!(tails.len(), 1);
        let (ta, tail) = &tails[0];
        assert_eq!(*ta, Action::Forward { port: 1 });
        assert_eq!(first.len(), 14 + 1500, "the first as long as the MTU");
        assert_eq!(eth_dst(tail), mac_of(ROUTER));
        assert_eq!(eth_src(tail), PORT1_MAC);
        let (f1, f2) = (&first[14..], &tail[14..]);
        for f in [f1, f2] {
            assert_eq!(ones_sum(&f[..20]), 0xffff, "outer header checksum");
            assert_eq!(&f[16..20], &tunnel_real(0).ip().octets());
            assert_eq!(u16::from_be_bytes([f[2], f[3]]) as usize, f.len());
        }
        assert_eq!(&f1[4..6], &f2[4..6], "one identification");
        assert_eq!(&f1[6..8], &[0x20, 0], "more fragments, at 0");
        assert_eq!(u16::from_be_bytes([f2[6], f2[7]]), 1480 / 8);
        let mut payload = f1[20..].to_vec();
        payload.extend_from_slice(&f2[20..]);
        let udp = if fwd == Forward::Gue { 8 } else { 0 };
        assert_eq!(&payload[udp..], &loose.ip()[..], "the packet, whole");
        assert_eq!(lab.stats().tunnel_fragmented.get(), 1);
    }
}

#[test]
fn the_next_hop_unknown_holds_the_packet_with_its_outer_header() {
    let mut lab = lab(Forward::Ipip, TunnelView::default());
    let router2 = Ipv4Addr::new(198, 51, 100, 253);
    let spec = service_spec("rr", vec![real_spec(tunnel_real(1), Forward::Ipip, 1)]);
    let connected: Vec<(usize, Ipv4Prefix)> = port_bases()
        .iter()
        .enumerate()
        .flat_map(|(i, p)| p.addresses.iter().map(move |a| (i, *a)))
        .collect();
    let routes = RouteTable::new(&connected, &[], Some(router2)).unwrap();
    lab.snap = Snapshot::build(&[slotted(spec)], &[], &port_bases(), &Arc::new(routes)).unwrap();
    let (a, f, grown) = run(&mut lab, &Tcp::new(client(40004), VIP, SYN).frame(), 0);
    assert_eq!(
        a,
        Action::Hold {
            port: 1,
            next_hop: router2.into()
        }
    );
    assert!(grown, "held frames are already encapsulated");
    assert_eq!(&f[30..34], &tunnel_real(1).ip().octets());
}

#[test]
fn an_icmp_error_about_a_reply_goes_into_the_tunnel() {
    let mut lab = lab(Forward::Gue, TunnelView::default());
    let from = client(40005);
    assert_eq!(
        run(&mut lab, &Tcp::new(from, VIP, SYN).frame(), 0).0,
        Action::Forward { port: 1 }
    );
    // The real answered the client directly; a router on the way says
    // its reply (VIP:80 -> client) was too big.
    let reply = Tcp::new(VIP, from, SYN | ACK).ip();
    let hop = Ipv4Addr::new(192, 0, 2, 254);
    lab.learn(hop);
    let err = icmp_error_frame(
        3,
        4,
        [0, 0, 0x05, 0x00],
        hop,
        VIP_IP,
        &reply[..28],
        PORT0_MAC,
    );
    let (a, f, grown) = run(&mut lab, &err, 0);
    assert_eq!(a, Action::Forward { port: 1 });
    assert!(grown);
    assert_eq!(&f[30..34], &tunnel_real(0).ip().octets());
    // Inside, the error as the router sent it: the real holds the VIP.
    assert_eq!(&f[42..], &err[14..]);
}

#[test]
fn a_packet_after_a_tunnelled_one_gets_no_outer_header() {
    let tunnel = service_spec("rr", vec![real_spec(tunnel_real(0), Forward::Ipip, 1)]);
    let mut nat = nat_spec("rr");
    nat.port = 81;
    let mut lab = lab(Forward::Ipip, TunnelView::default());
    lab.snap = snapshot(&[tunnel, nat], TunnelView::default());
    lab.learn_nat_reals();
    // The tunnelled packet's outer header is not taken (a caller that
    // forgets): the next packet, to a NAT real, must not inherit it.
    let (a, _) = lab.run(&Tcp::new(client(40006), VIP, SYN).frame(), 0);
    assert_eq!(a, Action::Forward { port: 1 });
    let to_nat = SocketAddrV4::new(VIP_IP, 81);
    let (a, f, grown) = run(&mut lab, &Tcp::new(client(40007), to_nat, SYN).frame(), 0);
    assert_eq!(a, Action::Forward { port: 1 });
    assert!(!grown, "NAT frames are not encapsulated");
    assert_eq!(ip_proto(&f), 6);
    assert!((0..3).any(|i| ip_dst(&f) == *nat_real(i).ip()));
}

#[test]
fn ipv6_in_ipv6_and_its_packet_too_big() {
    let v = |s: &str| -> Ipv6Addr { s.parse().unwrap() };
    let vip = v("2001:db8::100");
    let real = v("2001:db8:50::11");
    let mut spec = ServiceSpec::new(Protocol::Tcp, vip.into(), 80);
    let mut r = RealSpec::new(real.into(), 80);
    r.forward = Forward::Ipip;
    spec.reals.push(r);
    let router6 = v("2001:db8:2::fe");
    let mut lab = Lab::new(&[]);
    lab.snap = dual_stack_snapshot(spec, &[("2001:db8:50::/48", "2001:db8:2::fe")])
        .with_tunnel(TunnelView::default());
    let host = MacAddr([2, 0, 0, 0, 0, 0x99]);
    let client6 = v("2001:db8:1::10");
    lab.fwd.learn_remote(router6, mac_of(ROUTER), lab.now);
    lab.fwd.learn_remote(client6, host, lab.now);
    let segment = |payload: usize| {
        let mut f = frame6(&Spec6 {
            proto: 6,
            src: client6,
            dst: vip,
            sport: 40008,
            dport: 80,
            tcp_flags: SYN,
            payload: vec![3; payload],
            ..Spec6::default()
        });
        ethernet::set_macs(&mut f, MacAddr([2, 0, 0, 0, 0, 1]), host);
        f
    };
    let sent = segment(100);
    let (a, f, grown) = run(&mut lab, &sent, 0);
    assert_eq!(a, Action::Forward { port: 1 });
    assert!(grown);
    assert_eq!(ethernet::ethertype(&f), 0x86dd);
    assert_eq!(f[14] >> 4, 6);
    assert_eq!(f[20], 41, "IPv6 in IPv6");
    assert_eq!(&f[22..38], &v("2001:db8:2::1").octets());
    assert_eq!(&f[38..54], &real.octets());
    assert_eq!(&f[54..], &sent[14..], "the client's packet unchanged");
    // 1460 bytes of IPv6 fit a 1500-byte tunnel; 1461 get packet too big.
    let fits = segment(1460 - 40 - 20);
    assert_eq!(run(&mut lab, &fits, 0).0, Action::Forward { port: 1 });
    let big = segment(1461 - 40 - 20);
    assert_eq!(
        run(&mut lab, &big, 0).0,
        Action::Drop(DropReason::TooBigForTunnel)
    );
    let mut sent = Vec::new();
    lab.fwd
        .take_icmp_errors(|kind, _, f| sent.push((kind, f.to_vec())));
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, SentError::TooBig { mtu: 1460 });
    let m = &sent[0].1[54..];
    assert_eq!((m[0], m[1]), (2, 0), "packet too big");
    assert_eq!(&m[4..8], &1460u32.to_be_bytes());
}

/// A client's fragments follow their first into the tunnel: each is
/// encapsulated to the connection's real, and a full-size one (1500
/// bytes, no DF, as fragments are) leaves in two outer fragments.
#[test]
fn fragments_follow_their_first_into_the_tunnel() {
    let mut lab = lab(Forward::Gue, TunnelView::default());
    let from = client(40010);
    assert_eq!(
        run(&mut lab, &Tcp::new(from, VIP, SYN).frame(), 0).0,
        Action::Forward { port: 1 }
    );
    let data = Tcp::new(from, VIP, ACK | PSH).payload(&[4; 2400]).frag(0);
    let ip = data.ip();
    // Cut by hand: 1480 bytes of payload, then the rest (no DF).
    let pieces = [(&ip[20..1500], 0x2000u16), (&ip[1500..], 1480 / 8)];
    let mut tails = 0;
    for (piece, frag) in pieces {
        let f = ipv4_packet(6, CLIENT_IP, VIP_IP, 64, 0x1234, frag, piece);
        let frame = ether(PORT0_MAC, mac_of(CLIENT_IP), ETHERTYPE_IPV4, &f);
        let (a, out, grown) = run(&mut lab, &frame, 0);
        assert_eq!(a, Action::Forward { port: 1 }, "fragment {frag:#x}");
        assert!(grown, "encapsulated");
        assert_eq!(&out[30..34], &tunnel_real(0).ip().octets());
        lab.fwd.take_tunnel_tails(|_, _| tails += 1);
    }
    assert_eq!(tails, 1, "only the full-size first fragment is cut");
    assert_eq!(lab.stats().fragments_followed.get(), 1);
}
