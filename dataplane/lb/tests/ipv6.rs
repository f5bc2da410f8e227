//! IPv6 through the same forwarder: NAT66 both ways, DR, steering, the
//! neighbour to resolve, and Packet Too Big sent on to the real, on frames
//! built from scratch and checked with checksums computed from scratch.

mod common;

use common::*;
use sluice_conntrack::Protocol;
use sluice_core::flow6::build::{checksum6, frame6, icmp6_error, ip6_packet, Ext, Spec6};
use sluice_core::flow6::{icmpv6_checksum_ok, parse};
use sluice_core::wire::ethernet;
use sluice_core::{DropReason, MacAddr};
use sluice_lb::model::SlottedService;
use sluice_lb::route::RouteTable;
use sluice_lb::snapshot::PortBase;
use sluice_lb::{Action, Forwarder, SharedStats, Snapshot};
use sluice_model::{Forward, RealSpec, ServiceSpec};
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;

const PORT0: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
const PORT1: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);
const HOST: MacAddr = MacAddr([2, 0, 0, 0, 0, 0x99]);

fn ip(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

fn client() -> Ipv6Addr {
    ip("2001:db8:1::10")
}

/// Port 0 on the clients' /64 (2001:db8:1::/64, DR reals there too), port
/// 1 on the reals' (2001:db8:2::/64); a NAT service on [2001:db8::100]:80
/// and a DR one on [2001:db8::200]:80.
fn snapshot() -> Snapshot {
    let ports = vec![
        PortBase {
            mac: PORT0,
            addresses: vec!["192.0.2.1/24".parse().unwrap()],
            addresses6: vec!["2001:db8:1::1/64".parse().unwrap()],
            kernel: false,
        },
        PortBase {
            mac: PORT1,
            addresses: vec!["198.51.100.1/24".parse().unwrap()],
            addresses6: vec!["2001:db8:2::1/64".parse().unwrap()],
            kernel: false,
        },
    ];
    let mut nat = ServiceSpec::new(Protocol::Tcp, ip("2001:db8::100").into(), 80);
    nat.scheduler = "rr".parse().unwrap();
    for r in ["2001:db8:2::11", "2001:db8:2::12"] {
        nat.reals.push(RealSpec::new(ip(r).into(), 8080));
    }
    let mut dr = ServiceSpec::new(Protocol::Tcp, ip("2001:db8::200").into(), 80);
    let mut real = RealSpec::new(ip("2001:db8:1::21").into(), 80);
    real.forward = Forward::Dr;
    dr.reals.push(real);
    let services = [slotted(nat), slotted(dr)];
    let services: Vec<SlottedService> = services
        .into_iter()
        .enumerate()
        .map(|(i, mut s)| {
            s.slot = sluice_lb::ServiceSlot(i as u16);
            s.real_slots = (0..s.spec.reals.len())
                .map(|j| sluice_lb::RealSlot((10 * i + j) as u16))
                .collect();
            s
        })
        .collect();
    let connected6: Vec<_> = ports
        .iter()
        .enumerate()
        .flat_map(|(i, p)| p.addresses6.iter().map(move |a| (i, *a)))
        .collect();
    let routes6 = Arc::new(RouteTable::new(&connected6, &[], None).unwrap());
    Snapshot::build(&services, &[], &ports, &Arc::new(route_table()))
        .unwrap()
        .with_routes6(&routes6)
}

fn forwarder_for(workers: usize, worker: usize) -> Forwarder {
    let shared = SharedStats::new(workers);
    forwarder(&shared, worker, workers, 4096)
}

/// A TCP segment from `src` to `dst` arriving on port 0 (or 1).
fn segment(src: (Ipv6Addr, u16), dst: (Ipv6Addr, u16), flags: u8, to: MacAddr) -> Vec<u8> {
    let mut f = frame6(&Spec6 {
        proto: 6,
        src: src.0,
        dst: dst.0,
        sport: src.1,
        dport: dst.1,
        tcp_flags: flags,
        ext: vec![Ext::DestOpts(0)],
        payload: b"GET / HTTP/1.0\r\n\r\n".to_vec(),
        ..Spec6::default()
    });
    ethernet::set_macs(&mut f, to, HOST);
    f
}

/// The TCP checksum of `f` from scratch.
fn tcp_ok(f: &[u8]) -> bool {
    let p = parse(f).unwrap();
    let mut seg = f[p.l4..p.ip_end()].to_vec();
    let stored = u16::from_be_bytes([seg[16], seg[17]]);
    seg[16..18].fill(0);
    stored == checksum6(p.src, p.dst, 6, &seg)
}

#[test]
fn nat66_both_ways_with_the_neighbour_resolved_first() {
    let snap = snapshot();
    let mut fwd = forwarder_for(1, 0);
    let vip = ip("2001:db8::100");
    let mut f = segment((client(), 40000), (vip, 80), 0x02, PORT0);
    // The real's MAC is not known yet: held, with its address to solicit.
    let first = fwd.process(&snap, &mut f.clone(), 0, 1000);
    let Action::Hold {
        port: 1,
        next_hop: IpAddr::V6(real),
    } = first
    else {
        panic!("{first:?}");
    };
    assert!(real == ip("2001:db8:2::11") || real == ip("2001:db8:2::12"));
    let real_mac = MacAddr([2, 0, 0, 0, 0x11, 0x11]);
    fwd.learn_remote(real, real_mac, 1000);
    let client_mac = MacAddr([2, 0, 0, 0, 0x10, 0x10]);
    fwd.learn_remote(client(), client_mac, 1000);
    // The same SYN again (a retransmission): forwarded to the same real.
    assert_eq!(
        fwd.process(&snap, &mut f, 0, 1001),
        Action::Forward { port: 1 }
    );
    let p = parse(&f).unwrap();
    assert_eq!(
        (p.dst, p.dport, p.src, p.sport, p.ttl),
        (real, 8080, client(), 40000, 63)
    );
    assert_eq!((ethernet::dst(&f), ethernet::src(&f)), (real_mac, PORT1));
    assert!(tcp_ok(&f), "inbound checksum");
    // The real's SYN-ACK goes back from the VIP.
    let mut r = segment((real, 8080), (client(), 40000), 0x12, PORT1);
    assert_eq!(
        fwd.process(&snap, &mut r, 1, 1002),
        Action::Forward { port: 0 }
    );
    let p = parse(&r).unwrap();
    assert_eq!((p.src, p.sport, p.dst, p.dport), (vip, 80, client(), 40000));
    assert_eq!(ethernet::dst(&r), client_mac);
    assert!(tcp_ok(&r), "outbound checksum");
    assert_eq!(fwd.table6().len(), 1);
    assert_eq!(fwd.table().len(), 0, "nothing in the IPv4 table");
}

#[test]
fn direct_routing_changes_only_the_macs() {
    let snap = snapshot();
    let mut fwd = forwarder_for(1, 0);
    let real = ip("2001:db8:1::21");
    let real_mac = MacAddr([2, 0, 0, 0, 0x21, 0x21]);
    fwd.learn_remote(real, real_mac, 0);
    let f = segment((client(), 40001), (ip("2001:db8::200"), 80), 0x02, PORT0);
    let mut out = f.clone();
    assert_eq!(
        fwd.process(&snap, &mut out, 0, 10),
        Action::Forward { port: 0 }
    );
    assert_eq!(ethernet::dst(&out), real_mac);
    assert_eq!(
        &out[12..],
        &f[12..],
        "the packet itself is untouched (hop limit too)"
    );
}

#[test]
fn flows_are_steered_by_the_client_address() {
    let snap = snapshot();
    let mut owners = std::collections::BTreeSet::new();
    for i in 0..64u16 {
        let c = Ipv6Addr::from(u128::from(client()) + u128::from(i));
        let f = segment((c, 40000), (ip("2001:db8::100"), 80), 0x02, PORT0);
        let owner = sluice_lb::steer::owner(c, 2);
        owners.insert(owner);
        let other = 1 - owner;
        let mut fwd = forwarder_for(2, other);
        assert_eq!(
            fwd.process(&snap, &mut f.clone(), 0, 1),
            Action::HandOff { worker: owner }
        );
    }
    assert_eq!(owners.len(), 2);
}

#[test]
fn packet_too_big_about_a_reply_goes_to_its_real() {
    let snap = snapshot();
    let mut fwd = forwarder_for(1, 0);
    let vip = ip("2001:db8::100");
    for (a, m) in [
        (ip("2001:db8:2::11"), MacAddr([2, 0, 0, 0, 0x11, 0x11])),
        (ip("2001:db8:2::12"), MacAddr([2, 0, 0, 0, 0x12, 0x12])),
        (client(), MacAddr([2, 0, 0, 0, 0x10, 0x10])),
    ] {
        fwd.learn_remote(a, m, 0);
    }
    let mut syn = segment((client(), 40002), (vip, 80), 0x02, PORT0);
    assert_eq!(
        fwd.process(&snap, &mut syn, 0, 1),
        Action::Forward { port: 1 }
    );
    let real = parse(&syn).unwrap().dst;
    // A router on the clients' segment says the VIP's reply was too big.
    let reply = ip6_packet(&Spec6 {
        proto: 6,
        src: vip,
        dst: client(),
        sport: 80,
        dport: 40002,
        payload: vec![0; 1400],
        ..Spec6::default()
    });
    let router = ip("2001:db8:1::fe");
    let mut ptb = icmp6_error(2, 0, 1280u32.to_be_bytes(), router, vip, &reply[..1232]);
    ethernet::set_macs(&mut ptb, PORT0, HOST);
    assert_eq!(
        fwd.process(&snap, &mut ptb, 0, 2),
        Action::Forward { port: 1 }
    );
    let p = parse(&ptb).unwrap();
    assert_eq!((p.src, p.dst), (router, real));
    assert!(icmpv6_checksum_ok(p.src, p.dst, &ptb[p.l4..p.ip_end()]));
    let e = p.icmp.unwrap().error.unwrap();
    assert_eq!((e.inner_src, e.inner_sport), (real, 8080));
    assert_eq!(&ptb[p.l4 + 4..p.l4 + 8], &1280u32.to_be_bytes());
}

#[test]
fn what_is_not_for_a_service_is_dropped_by_reason() {
    let snap = snapshot();
    let mut fwd = forwarder_for(1, 0);
    // A segment that is no SYN, to the VIP, with no connection.
    let mut f = segment((client(), 40003), (ip("2001:db8::100"), 80), 0x10, PORT0);
    assert_eq!(
        fwd.process(&snap, &mut f, 0, 1),
        Action::Drop(DropReason::NoConnection)
    );
    // From a martian: the VIP itself, and a multicast address.
    for src in ["2001:db8::100", "ff02::1", "::1"] {
        let mut f = segment((ip(src), 40000), (ip("2001:db8::100"), 80), 0x02, PORT0);
        assert_eq!(
            fwd.process(&snap, &mut f, 0, 1),
            Action::Drop(DropReason::MartianSource),
            "{src}"
        );
    }
    // A later fragment whose first has not come: held for it (the
    // worker drops it as fragment_unmatched if it never comes).
    let mut frag = frame6(&Spec6 {
        src: client(),
        dst: ip("2001:db8::100"),
        ext: vec![Ext::Fragment {
            offset: 8,
            more: false,
            id: 1,
        }],
        ..Spec6::default()
    });
    ethernet::set_macs(&mut frag, PORT0, HOST);
    assert_eq!(fwd.process(&snap, &mut frag, 0, 1), Action::HoldFragment);
    // Hop limit 1 through NAT.
    let mut last = frame6(&Spec6 {
        src: client(),
        dst: ip("2001:db8::100"),
        hop_limit: 1,
        ..Spec6::default()
    });
    ethernet::set_macs(&mut last, PORT0, HOST);
    assert_eq!(
        fwd.process(&snap, &mut last, 0, 1),
        Action::Drop(DropReason::TtlExceeded)
    );
}

#[test]
fn hop_limit_running_out_here_is_told_with_icmpv6_time_exceeded() {
    let snap = snapshot();
    let mut fwd = forwarder_for(1, 0);
    let vip = ip("2001:db8::100");
    let mut last = frame6(&Spec6 {
        src: client(),
        dst: vip,
        hop_limit: 1,
        ..Spec6::default()
    });
    ethernet::set_macs(&mut last, PORT0, HOST);
    let sent_frame = last.clone();
    assert_eq!(
        fwd.process(&snap, &mut last, 0, 1),
        Action::Drop(DropReason::TtlExceeded)
    );
    assert_eq!(fwd.table6().len(), 0, "no connection for it");
    let mut sent = Vec::new();
    fwd.take_icmp_errors(|_, port, f| sent.push((port, f.to_vec())));
    assert_eq!(sent.len(), 1);
    let (port, f) = &sent[0];
    assert_eq!(*port, 0, "back out of the port it came in on");
    assert_eq!((ethernet::dst(f), ethernet::src(f)), (HOST, PORT0));
    let p = parse(f).unwrap();
    assert_eq!((p.src, p.dst, p.proto), (ip("2001:db8:1::1"), client(), 58));
    let m = &f[p.l4..p.ip_end()];
    assert_eq!((m[0], m[1]), (3, 0));
    assert!(icmpv6_checksum_ok(p.src, p.dst, m));
    assert_eq!(&m[8..], &sent_frame[14..], "the whole packet quoted");
    // A real's reply that runs out is told to the real, from the
    // appliance's address on its side.
    for (a, mac) in [
        (ip("2001:db8:2::11"), MacAddr([2, 0, 0, 0, 0x11, 0x11])),
        (ip("2001:db8:2::12"), MacAddr([2, 0, 0, 0, 0x12, 0x12])),
        (client(), MacAddr([2, 0, 0, 0, 0x10, 0x10])),
    ] {
        fwd.learn_remote(a, mac, 0);
    }
    let mut syn = segment((client(), 40010), (vip, 80), 0x02, PORT0);
    assert_eq!(
        fwd.process(&snap, &mut syn, 0, 2),
        Action::Forward { port: 1 }
    );
    let real = parse(&syn).unwrap().dst;
    let mut reply = frame6(&Spec6 {
        src: real,
        dst: client(),
        sport: 8080,
        dport: 40010,
        tcp_flags: 0x12,
        hop_limit: 1,
        ..Spec6::default()
    });
    ethernet::set_macs(&mut reply, PORT1, HOST);
    assert_eq!(
        fwd.process(&snap, &mut reply, 1, 3),
        Action::Drop(DropReason::TtlExceeded)
    );
    let mut sent = Vec::new();
    fwd.take_icmp_errors(|_, port, f| sent.push((port, f.to_vec())));
    assert_eq!(sent.len(), 1);
    let p = parse(&sent[0].1).unwrap();
    assert_eq!((sent[0].0, p.src, p.dst), (1, ip("2001:db8:2::1"), real));
}
