//! Full NAT through the forwarder: a client's packet leaves from a local
//! address and port to a real behind a router, and the real's reply to
//! that address comes back to the client from the VIP; checksums are
//! checked from scratch both ways. Replies find their worker by the local
//! port alone; local ports are taken per (LIP, RIP, rport), run out, and
//! come free once their connection's TIME_WAIT is over.

mod common;

use common::*;
use sluice_core::{DropReason, Ipv4Prefix};
use sluice_lb::local_ports::{self, DEFAULT_LOCAL_PORTS};
use sluice_lb::model::SlottedService;
use sluice_lb::stats::SharedStats;
use sluice_lb::{Action, Forwarder, ForwarderConfig, RouteTable, Snapshot};
use sluice_model::{Forward, Protocol, ServiceSpec};
use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddrV4};
use std::ops::RangeInclusive;
use std::sync::Arc;

/// The router on port 1's segment that reaches the reals' network.
const ROUTER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 254);
/// The service's local addresses, on port 1's segment.
const LIP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 200);
const LIP2: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 201);

/// Full-NAT real `i`, two networks away: 203.0.113.11+i:8080.
fn far_real(i: usize) -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::new(203, 0, 113, 11 + i as u8), 8080)
}

/// VIP:80 with `reals` full-NAT reals and `locals` as its local addresses.
fn spec(reals: usize, locals: &[Ipv4Addr]) -> ServiceSpec {
    let mut s = service_spec(
        "rr",
        (0..reals)
            .map(|i| real_spec(far_real(i), Forward::FullNat, 1))
            .collect(),
    );
    s.local_addresses = locals.iter().map(|a| IpAddr::V4(*a)).collect();
    s
}

fn snapshot(specs: &[ServiceSpec]) -> Result<Snapshot, String> {
    let connected: Vec<(usize, Ipv4Prefix)> = port_bases()
        .iter()
        .enumerate()
        .flat_map(|(i, p)| p.addresses.iter().map(move |a| (i, *a)))
        .collect();
    let statics = [("203.0.113.0/24".parse().unwrap(), ROUTER)];
    let routes = RouteTable::new(&connected, &statics, None).unwrap();
    let services: Vec<SlottedService> = specs.iter().cloned().map(slotted).collect();
    Snapshot::build(&services, &[], &port_bases(), &Arc::new(routes))
}

/// Worker `worker` of `workers`, allocating local ports from `ports`.
fn worker(
    shared: &Arc<SharedStats>,
    worker: usize,
    workers: usize,
    ports: RangeInclusive<u16>,
) -> Forwarder {
    let cfg = ForwarderConfig {
        worker,
        workers,
        local_ports: ports,
        table: table_config(4096),
        table6: table_config(1024),
        neighbours: 64,
        neighbour: sluice_core::neigh::NudConfig {
            reachable_ms: NEIGHBOUR_AGE_MS,
            ..Default::default()
        },
        syn_proxy: sluice_lb::synproxy::SynProxyConfig {
            threshold: 0,
            ..Default::default()
        },
    };
    let mut f = Forwarder::new(&cfg, shared.clone()).unwrap();
    for ip in [ROUTER, CLIENT_IP] {
        f.learn_remote(ip, mac_of(ip), T0);
    }
    for i in 10..40 {
        let ip = Ipv4Addr::new(192, 0, 2, i);
        f.learn_remote(ip, mac_of(ip), T0);
    }
    f
}

fn lab(spec: ServiceSpec, ports: RangeInclusive<u16>) -> Lab {
    let shared = SharedStats::new(1);
    Lab {
        snap: snapshot(&[spec]).unwrap(),
        fwd: worker(&shared, 0, 1, ports),
        shared,
        now: T0,
    }
}

/// A segment of the real's reply to `to`, as the router hands it over.
fn reply(real: SocketAddrV4, to: SocketAddrV4, flags: u8) -> Tcp {
    Tcp::new(real, to, flags).macs(PORT1_MAC, mac_of(ROUTER))
}

fn src_of(f: &[u8]) -> SocketAddrV4 {
    SocketAddrV4::new(ip_src(f), sport(f))
}

fn dst_of(f: &[u8]) -> SocketAddrV4 {
    SocketAddrV4::new(ip_dst(f), dport(f))
}

#[test]
fn both_ends_are_rewritten_both_ways() {
    let mut lab = lab(spec(1, &[LIP]), DEFAULT_LOCAL_PORTS);
    let c = client(40_000);
    let syn = Tcp::new(c, VIP, SYN).payload(b"");
    let (a, f) = lab.run(&syn.frame(), 0);
    assert_eq!(a, Action::Forward { port: 1 });
    // To the router, from LIP:lport to RIP:rport, one hop less.
    assert_eq!(eth_dst(&f), mac_of(ROUTER));
    assert_eq!(eth_src(&f), PORT1_MAC);
    assert_eq!(dst_of(&f), far_real(0));
    let local = src_of(&f);
    assert_eq!(*local.ip(), LIP);
    assert!(DEFAULT_LOCAL_PORTS.contains(&local.port()));
    assert_eq!(ttl(&f), 63);
    assert_checksums(&f);
    // The TCP header past the ports, the options, the sequence numbers:
    // unchanged but for the checksum.
    let (sent, out) = (syn.frame(), f.clone());
    assert_eq!(out[L4 + 4..L4 + 16], sent[L4 + 4..L4 + 16]);
    assert_eq!(out[L4 + 18..], sent[L4 + 18..]);

    // The real answers the local address: the client hears the VIP.
    let (a, f) = lab.run(&reply(far_real(0), local, SYN | ACK).frame(), 1);
    assert_eq!(a, Action::Forward { port: 0 });
    assert_eq!(eth_dst(&f), mac_of(CLIENT_IP));
    assert_eq!((src_of(&f), dst_of(&f)), (VIP, c));
    assert_checksums(&f);

    // Later packets of the connection keep the same local port.
    let data = Tcp::new(c, VIP, ACK | PSH).payload(b"GET / HTTP/1.0\r\n\r\n");
    let (a, f) = lab.run(&data.frame(), 0);
    assert_eq!(a, Action::Forward { port: 1 });
    assert_eq!((src_of(&f), dst_of(&f)), (local, far_real(0)));
    assert_eq!(l4(&f)[20 + 4..], data.segment()[24..]);
    assert_checksums(&f);
    let st = lab.stats();
    assert_eq!(st.local_ports_in_use.get(), 1);

    // Another client gets another local port.
    let (_, g) = lab.run(&Tcp::new(client(40_001), VIP, SYN).frame(), 0);
    assert_ne!(src_of(&g), local);
    assert_eq!(lab.stats().local_ports_in_use.get(), 2);
}

#[test]
fn udp_both_ways() {
    let mut s = spec(1, &[LIP]);
    s.protocol = Protocol::Udp;
    s.port = 53;
    s.reals[0].port = 5353;
    let mut lab = lab(s, DEFAULT_LOCAL_PORTS);
    let vip = SocketAddrV4::new(VIP_IP, 53);
    let real = SocketAddrV4::new(*far_real(0).ip(), 5353);
    let q = ether(
        PORT0_MAC,
        mac_of(CLIENT_IP),
        ETHERTYPE_IPV4,
        &udp_ip(client(5000), vip, b"question", 64, true),
    );
    let (a, f) = lab.run(&q, 0);
    assert_eq!(a, Action::Forward { port: 1 });
    assert_eq!(dst_of(&f), real);
    let local = src_of(&f);
    assert_eq!(*local.ip(), LIP);
    assert_checksums(&f);
    let ans = ether(
        PORT1_MAC,
        mac_of(ROUTER),
        ETHERTYPE_IPV4,
        &udp_ip(real, local, b"answer", 64, true),
    );
    let (a, f) = lab.run(&ans, 1);
    assert_eq!(a, Action::Forward { port: 0 });
    assert_eq!((src_of(&f), dst_of(&f)), (vip, client(5000)));
    assert_checksums(&f);
    assert_eq!(&l4(&f)[8..], b"answer");
}

#[test]
fn replies_find_their_worker_by_the_local_port() {
    let spec = spec(2, &[LIP, LIP2]);
    let snap = snapshot(std::slice::from_ref(&spec)).unwrap();
    let shared = SharedStats::new(3);
    let mut workers: Vec<Forwarder> = (0..3)
        .map(|w| worker(&shared, w, 3, DEFAULT_LOCAL_PORTS))
        .collect();
    let mut locals = HashSet::new();
    for i in 0..60u16 {
        let c = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 10 + (i % 30) as u8), 30_000 + i);
        let owner = sluice_lb::steer::owner(*c.ip(), 3);
        let mut f = Tcp::new(c, VIP, SYN).frame();
        // Any other worker hands the client's packet to its owner.
        let other = (owner + 1) % 3;
        assert_eq!(
            workers[other].process(&snap, &mut f.clone(), 0, T0),
            Action::HandOff { worker: owner }
        );
        assert_eq!(
            workers[owner].process(&snap, &mut f, 0, T0),
            Action::Forward { port: 1 }
        );
        let (local, real) = (src_of(&f), dst_of(&f));
        assert!(locals.insert((local, real)), "{local} to {real} twice");
        // The port names the owner ...
        assert_eq!(local_ports::owner(local.port(), 3), owner);
        // ... so whichever worker the reply reaches hands it there.
        let r = reply(real, local, SYN | ACK).frame();
        for (w, fw) in workers.iter_mut().enumerate() {
            let mut g = r.clone();
            let a = fw.process(&snap, &mut g, 1, T0);
            if w == owner {
                assert_eq!(a, Action::Forward { port: 0 });
                assert_eq!((src_of(&g), dst_of(&g)), (VIP, c));
            } else {
                assert_eq!(a, Action::HandOff { worker: owner });
            }
        }
        // So is an ICMP error about the client's packet as it left.
        let sent = Tcp::new(local, real, ACK).ip();
        let err = icmp_error_frame(3, 4, [0, 0, 5, 0], ROUTER, LIP, &sent[..28], PORT1_MAC);
        let other = (owner + 2) % 3;
        assert_eq!(
            workers[other].process(&snap, &mut err.clone(), 1, T0),
            Action::HandOff { worker: owner }
        );
    }
    // Both local addresses were used.
    let lips: HashSet<Ipv4Addr> = locals.iter().map(|(l, _)| *l.ip()).collect();
    assert_eq!(lips.len(), 2);
}

/// Opens a connection from `c` and returns the local address it left
/// from, or the action when it was not forwarded.
fn open(lab: &mut Lab, c: SocketAddrV4) -> Result<(SocketAddrV4, SocketAddrV4), Action> {
    let (a, f) = lab.run(&Tcp::new(c, VIP, SYN).frame(), 0);
    match a {
        Action::Forward { .. } => Ok((src_of(&f), dst_of(&f))),
        a => Err(a),
    }
}

#[test]
fn local_ports_run_out_per_real_and_come_free_after_time_wait() {
    // Four ports, one address, two reals (round robin).
    let mut lab = lab(spec(2, &[LIP]), 5000..=5003);
    let mut by_real: Vec<Vec<SocketAddrV4>> = vec![Vec::new(), Vec::new()];
    let mut clients = Vec::new();
    for i in 0..8u16 {
        let c = client(41_000 + i);
        let (local, real) = open(&mut lab, c).unwrap();
        // Established: it outlives what follows.
        lab.run(&reply(real, local, SYN | ACK).frame(), 1);
        lab.run(&Tcp::new(c, VIP, ACK).frame(), 0);
        let r = (real == far_real(1)) as usize;
        by_real[r].push(local);
        clients.push((c, local, real));
    }
    // Each real's connections hold all four ports: the same ports serve
    // both reals at once.
    for ports in &mut by_real {
        ports.sort();
        let want: Vec<_> = (5000..=5003).map(|p| SocketAddrV4::new(LIP, p)).collect();
        assert_eq!(*ports, want);
    }
    assert_eq!(lab.stats().local_ports_in_use.get(), 8);
    // The next connection finds none: dropped and counted.
    assert_eq!(
        open(&mut lab, client(42_000)),
        Err(Action::Drop(DropReason::LocalPortsExhausted))
    );
    // One connection closes (FIN both ways, last ACK): TIME_WAIT keeps
    // its port.
    let (c, local, real) = clients[0];
    for (seg, rx) in [
        (Tcp::new(c, VIP, FIN | ACK).frame(), 0),
        (reply(real, local, FIN | ACK).frame(), 1),
        (Tcp::new(c, VIP, ACK).frame(), 0),
    ] {
        assert!(matches!(lab.run(&seg, rx).0, Action::Forward { .. }));
    }
    let state = |lab: &Lab| {
        let (_, conn) = lab
            .fwd
            .table()
            .iter()
            .find(|(_, x)| x.local() == local)
            .unwrap();
        conn.state()
    };
    assert_eq!(
        state(&lab),
        sluice_conntrack::ConnState::Tcp(sluice_conntrack::TcpState::TimeWait)
    );
    lab.now += 1000;
    lab.housekeeping();
    assert_eq!(
        open(&mut lab, client(42_001)),
        Err(Action::Drop(DropReason::LocalPortsExhausted))
    );
    // Past TIME_WAIT (2 minutes, as LVS) the port is free again, for
    // that real; the other real's ports are all still held.
    lab.now += 121_000;
    lab.housekeeping();
    let mut reopened = None;
    for i in 0..2u16 {
        if let Ok(x) = open(&mut lab, client(42_100 + i)) {
            reopened = Some(x);
        }
    }
    assert_eq!(reopened, Some((local, real)));
}

#[test]
fn what_is_not_a_reply_of_ours_is_dropped() {
    let mut lab = lab(spec(1, &[LIP]), DEFAULT_LOCAL_PORTS);
    let (local, real) = open(&mut lab, client(40_000)).unwrap();
    // From the client's side: spoofed.
    let spoof = Tcp::new(real, local, ACK).macs(PORT0_MAC, mac_of(CLIENT_IP));
    assert_eq!(
        lab.run(&spoof.frame(), 0).0,
        Action::Drop(DropReason::SpoofedReply)
    );
    // To another local port, or from another port of the real: none.
    let other = SocketAddrV4::new(LIP, local.port() ^ 1);
    assert_eq!(
        lab.run(&reply(real, other, ACK).frame(), 1).0,
        Action::Drop(DropReason::NotForUs)
    );
    let stray = SocketAddrV4::new(*real.ip(), 9);
    assert_eq!(
        lab.run(&reply(stray, local, ACK).frame(), 1).0,
        Action::Drop(DropReason::NotForUs)
    );
    // A packet claiming to come from the local address is a martian.
    let land = Tcp::new(local, VIP, SYN).macs(PORT0_MAC, mac_of(CLIENT_IP));
    assert_eq!(
        lab.run(&land.frame(), 0).0,
        Action::Drop(DropReason::MartianSource)
    );
    // The appliance answers ARP for it on the reals' side.
    let who_has = arp_frame(
        1,
        sluice_core::MacAddr::BROADCAST,
        mac_of(ROUTER),
        ROUTER,
        sluice_core::MacAddr([0; 6]),
        LIP,
    );
    let (a, answer) = lab.run(&who_has, 1);
    assert!(matches!(a, Action::Reply(_)), "{a:?}");
    // (the ARP reply's sender address: the local address)
    assert_eq!(answer[28..32], LIP.octets());
}

#[test]
fn a_service_is_refused_without_usable_local_addresses() {
    let err = |s: ServiceSpec| snapshot(&[s]).unwrap_err();
    assert!(err(spec(1, &[])).contains("full NAT needs local_addresses"));
    assert!(err(spec(1, &[VIP_IP])).contains("cannot be a local address"));
    assert!(err(spec(1, &[LIP, LIP])).contains("listed twice"));
    // The port's own address (refused at the snapshot, so a change made
    // at run time is refused as the configuration file is).
    assert!(err(spec(1, &[PORT1_IP])).contains("a port's own address"));
    let mut v6 = spec(1, &[]);
    v6.local_addresses = vec!["2001:db8::1".parse().unwrap()];
    assert!(err(v6).contains("is IPv6"));
    // A local address that is another service's VIP.
    let mut other = spec(1, &[LIP2]);
    other.vip = IpAddr::V4(LIP);
    let mut one = spec(1, &[LIP]);
    one.vip = IpAddr::V4(VIP_IP);
    let e = Snapshot::build(
        &[
            slotted(one),
            SlottedService {
                slot: sluice_lb::ServiceSlot(9),
                real_slots: vec![sluice_lb::RealSlot(30)],
                ..slotted(other)
            },
        ],
        &[],
        &port_bases(),
        &Arc::new(route_table()),
    )
    .unwrap_err();
    assert!(e.contains("both a virtual IP and a local address"), "{e}");
    // SYN proxy "on" does not translate full NAT's sequence numbers.
    let mut proxied = spec(1, &[LIP]);
    proxied.syn_proxy = sluice_model::SynProxyMode::On;
    assert!(err(proxied).contains("needs NAT reals"));
}

/// The quoted packet of ICMP error frame `f`: its IPv4 source and
/// destination sockets.
fn quoted(f: &[u8]) -> (SocketAddrV4, SocketAddrV4) {
    let q = &f[L4 + 8..];
    let sock = |a: usize, p: usize| {
        SocketAddrV4::new(
            Ipv4Addr::new(q[a], q[a + 1], q[a + 2], q[a + 3]),
            u16::from_be_bytes([q[20 + p], q[21 + p]]),
        )
    };
    (sock(12, 0), sock(16, 2))
}

#[test]
fn icmp_errors_are_translated_both_ways() {
    let mut lab = lab(spec(1, &[LIP]), DEFAULT_LOCAL_PORTS);
    let c = client(40_000);
    let (local, real) = open(&mut lab, c).unwrap();
    // A router between the appliance and the real: the client's packet
    // (as it left, LIP:lport -> RIP:rport) was too big.
    let sent = Tcp::new(local, real, ACK).payload(&[1; 64]).ip();
    let err = icmp_error_frame(
        3,
        4,
        [0, 0, 0x05, 0x00],
        ROUTER,
        LIP,
        &sent[..48],
        PORT1_MAC,
    );
    let (a, f) = lab.run(&err, 1);
    assert_eq!(a, Action::Forward { port: 0 });
    // The client hears it about its own packet, to the VIP, from the
    // router, at its own address; the MTU stays.
    assert_eq!((ip_src(&f), ip_dst(&f)), (ROUTER, *c.ip()));
    assert_eq!(quoted(&f), (c, VIP));
    assert_eq!(l4(&f)[4..8], [0, 0, 0x05, 0x00]);
    assert_checksums(&f);
    let q = &f[L4 + 8..L4 + 28];
    assert_eq!(u16::from_be_bytes([q[10], q[11]]), ipv4_header_checksum(q));

    // A router on the client's side: the reply (VIP -> client) was too
    // big. The real hears it about its own packet, to the local address.
    let hop = Ipv4Addr::new(192, 0, 2, 254);
    lab.learn(hop);
    lab.learn(ROUTER);
    let reply = Tcp::new(VIP, c, ACK).payload(&[2; 64]).ip();
    let err = icmp_error_frame(
        3,
        4,
        [0, 0, 0x05, 0x00],
        hop,
        VIP_IP,
        &reply[..48],
        PORT0_MAC,
    );
    let (a, f) = lab.run(&err, 0);
    assert_eq!(a, Action::Forward { port: 1 });
    assert_eq!((ip_src(&f), ip_dst(&f)), (hop, *real.ip()));
    assert_eq!(quoted(&f), (real, local));
    assert_checksums(&f);
}

/// A segment met mid-stream (another appliance's connection, under mh's
/// `on_miss = "hash"`) is not taken over by full NAT: the real knows it by
/// another local port. Nothing is opened and no local port taken.
#[test]
fn a_connection_met_mid_stream_is_not_taken_over() {
    let mut s = spec(2, &[LIP]);
    s.scheduler = sluice_model::SchedulerKind::Mh;
    let mut lab = lab(s, DEFAULT_LOCAL_PORTS);
    let (a, _) = lab.run(&Tcp::new(client(40_000), VIP, ACK).frame(), 0);
    assert_eq!(a, Action::Drop(DropReason::NoConnection));
    assert_eq!(lab.fwd.table().len(), 0);
    assert_eq!(lab.stats().local_ports_in_use.get(), 0);
}

/// A later fragment to a local address must come from the real's side,
/// as its first did; from there, with one worker, it waits for its first.
#[test]
fn a_later_fragment_to_a_local_address_from_the_client_side_is_spoofed() {
    let mut lab = lab(spec(1, &[LIP]), DEFAULT_LOCAL_PORTS);
    let (local, real) = open(&mut lab, client(40_000)).unwrap();
    let later = Tcp::new(real, local, ACK).frag(0x0001);
    let from_client = later.clone().macs(PORT0_MAC, mac_of(CLIENT_IP));
    assert_eq!(
        lab.run(&from_client.frame(), 0).0,
        Action::Drop(DropReason::SpoofedReply)
    );
    assert_eq!(
        lab.run(&reply(real, local, ACK).frag(0x0001).frame(), 1).0,
        Action::HoldFragment
    );
}
