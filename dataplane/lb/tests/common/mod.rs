//! Helpers for the pipeline's integration tests: a two-port topology, the
//! services under test, a [`Lab`] holding one worker's forwarder and its
//! snapshot, and frames built by hand with checksums computed here from
//! scratch (independently of `sluice_core::wire::checksum`).
//!
//! Topology: port 0 "client" 192.0.2.1/24 (MAC 02:00:00:00:00:01), port 1
//! "servers" 198.51.100.1/24 (MAC 02:00:00:00:00:02), no gateway. The
//! service is TCP 192.0.2.100:80, with NAT reals 198.51.100.11..13:8080 or
//! DR reals 192.0.2.21..23:80. Every host's MAC is derived from its
//! address ([`mac_of`]).

#![allow(dead_code)]

use sluice_conntrack::TableConfig;
use sluice_core::neigh::NudConfig;
use sluice_core::{Ipv4Prefix, MacAddr};
use sluice_lb::model::SlottedService;
use sluice_lb::synproxy::SynProxyConfig;
use sluice_lb::{
    Action, Drain, Forwarder, ForwarderConfig, PortBase, RealSlot, RouteTable, ServiceSlot,
    SharedStats, Snapshot, WorkerLbStats,
};
use sluice_proto::{Forward, OnRealRemoval, Persistence, Protocol, RealSpec, ServiceSpec};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;

// ---------------------------------------------------------------------------
// Topology
// ---------------------------------------------------------------------------

pub const PORT0_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x01]);
pub const PORT1_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x02]);
pub const PORT0_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
pub const PORT1_IP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);

pub const VIP_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 100);
pub const VPORT: u16 = 80;
pub const VIP: SocketAddrV4 = SocketAddrV4::new(VIP_IP, VPORT);
pub const NAT_REAL_PORT: u16 = 8080;

/// The usual client (on port 0's prefix).
pub const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 50);

/// Slot of the service under test (not 0, so that slots and positions
/// differ).
pub const SVC_SLOT: ServiceSlot = ServiceSlot(3);
/// Slots of its three reals, in configuration order.
pub const REAL_SLOTS: [RealSlot; 3] = [RealSlot(10), RealSlot(11), RealSlot(12)];

/// A start time far from 0 (0 marks an empty neighbour slot).
pub const T0: u64 = 1_000_000;

/// Neighbours stay REACHABLE a day, so that tests advancing the clock by
/// minutes keep their neighbours without probing them.
pub const NEIGHBOUR_AGE_MS: u64 = 86_400_000;

/// NAT real `i` (0..3): 198.51.100.11+i:8080.
pub fn nat_real(i: usize) -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, 11 + i as u8), NAT_REAL_PORT)
}

/// DR real `i` (0..3): 192.0.2.21+i:80.
pub fn dr_real(i: usize) -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 21 + i as u8), VPORT)
}

/// The MAC of host `ip` in these tests: 02:10 followed by the address.
pub fn mac_of(ip: Ipv4Addr) -> MacAddr {
    let o = ip.octets();
    MacAddr([0x02, 0x10, o[0], o[1], o[2], o[3]])
}

/// A client socket of [`CLIENT_IP`].
pub fn client(port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(CLIENT_IP, port)
}

pub fn port_bases() -> Vec<PortBase> {
    vec![
        PortBase {
            addresses6: Vec::new(),
            mac: PORT0_MAC,
            addresses: vec!["192.0.2.1/24".parse().unwrap()],
            kernel: false,
        },
        PortBase {
            addresses6: Vec::new(),
            mac: PORT1_MAC,
            addresses: vec!["198.51.100.1/24".parse().unwrap()],
            kernel: false,
        },
    ]
}

/// Connected prefixes of both ports, no static route, no gateway.
pub fn route_table() -> RouteTable {
    let connected: Vec<(usize, Ipv4Prefix)> = port_bases()
        .iter()
        .enumerate()
        .flat_map(|(i, p)| p.addresses.iter().map(move |a| (i, *a)))
        .collect();
    RouteTable::new(&connected, &[], None).unwrap()
}

/// Both ports with an IPv6 prefix too: 2001:db8:1::1/64 on port 0,
/// 2001:db8:2::1/64 on port 1.
pub fn dual_stack_ports() -> Vec<PortBase> {
    let mut ports = port_bases();
    for (p, a) in ports
        .iter_mut()
        .zip(["2001:db8:1::1/64", "2001:db8:2::1/64"])
    {
        p.addresses6 = vec![a.parse().unwrap()];
    }
    ports
}

/// A snapshot of `spec` on [`dual_stack_ports`], the IPv6 routes being
/// the connected prefixes and `statics6` (prefix, next hop).
pub fn dual_stack_snapshot(spec: ServiceSpec, statics6: &[(&str, &str)]) -> Snapshot {
    let ports = dual_stack_ports();
    let connected6: Vec<_> = ports
        .iter()
        .enumerate()
        .flat_map(|(i, p)| p.addresses6.iter().map(move |a| (i, *a)))
        .collect();
    let statics6: Vec<_> = statics6
        .iter()
        .map(|(p, via)| (p.parse().unwrap(), via.parse().unwrap()))
        .collect();
    let routes6 = RouteTable::new(&connected6, &statics6, None).unwrap();
    Snapshot::build(&[slotted(spec)], &[], &ports, &Arc::new(route_table()))
        .unwrap()
        .with_routes6(&Arc::new(routes6))
}

/// Builds a snapshot of `services` on this topology, as the daemon does.
pub fn build_snapshot(services: &[SlottedService], drains: &[Drain]) -> Result<Snapshot, String> {
    Snapshot::build(services, drains, &port_bases(), &Arc::new(route_table()))
}

/// Drain `id` of real slot `real` of service slot `service`.
pub fn drain(service: ServiceSlot, real: RealSlot, id: u64) -> Drain {
    Drain { service, real, id }
}

pub fn real_spec(addr: SocketAddrV4, forward: Forward, weight: u32) -> RealSpec {
    RealSpec {
        ip: std::net::IpAddr::V4(*addr.ip()),
        port: addr.port(),
        weight,
        forward,
        upper_threshold: 0,
        lower_threshold: 0,
        check: None,
        agent: None,
    }
}

/// TCP VIP:80 with the given reals.
pub fn service_spec(scheduler: &str, reals: Vec<RealSpec>) -> ServiceSpec {
    ServiceSpec {
        protocol: Protocol::Tcp,
        vip: std::net::IpAddr::V4(VIP_IP),
        port: VPORT,
        scheduler: scheduler.parse().unwrap(),
        persistence: None,
        on_real_removal: OnRealRemoval::Keep,
        mh_table_size: None,
        check: None,
        agent: None,
        on_real_down: Default::default(),
        weight_by_latency: false,
        expire_quiescent_template: false,
        passive_health: None,
        syn_proxy: Default::default(),
        on_miss_setting: None,
        local_addresses: Vec::new(),
        proxy_protocol: Default::default(),
        reals,
    }
}

/// The NAT service with its three reals, weight 1.
pub fn nat_spec(scheduler: &str) -> ServiceSpec {
    service_spec(
        scheduler,
        (0..3)
            .map(|i| real_spec(nat_real(i), Forward::Nat, 1))
            .collect(),
    )
}

/// The DR service with its three reals, weight 1.
pub fn dr_spec(scheduler: &str) -> ServiceSpec {
    service_spec(
        scheduler,
        (0..3)
            .map(|i| real_spec(dr_real(i), Forward::Dr, 1))
            .collect(),
    )
}

pub fn persistent(mut spec: ServiceSpec, timeout_secs: u32, netmask: u8) -> ServiceSpec {
    spec.persistence = Some(Persistence {
        timeout_secs,
        netmask: Some(netmask),
    });
    spec
}

/// `spec` in slot [`SVC_SLOT`], its reals in [`REAL_SLOTS`] (first ones).
pub fn slotted(spec: ServiceSpec) -> SlottedService {
    let n = spec.reals.len();
    SlottedService {
        spec,
        slot: SVC_SLOT,
        real_slots: REAL_SLOTS[..n].to_vec(),
    }
}

pub fn table_config(capacity: u32) -> TableConfig {
    TableConfig {
        capacity,
        template_capacity: 1024,
        ..TableConfig::default()
    }
}

pub fn forwarder(
    shared: &Arc<SharedStats>,
    worker: usize,
    workers: usize,
    capacity: u32,
) -> Forwarder {
    forwarder_with(shared, worker, workers, table_config(capacity))
}

/// A forwarder whose SYN proxy never engages by itself (the tests that
/// pile up half-open connections on purpose are about other things).
pub fn forwarder_with(
    shared: &Arc<SharedStats>,
    worker: usize,
    workers: usize,
    table: TableConfig,
) -> Forwarder {
    let proxy = SynProxyConfig {
        threshold: 0,
        ..SynProxyConfig::default()
    };
    forwarder_with_proxy(shared, worker, workers, table, proxy)
}

pub fn forwarder_with_proxy(
    shared: &Arc<SharedStats>,
    worker: usize,
    workers: usize,
    table: TableConfig,
    syn_proxy: SynProxyConfig,
) -> Forwarder {
    let cfg = ForwarderConfig {
        syn_proxy,
        worker,
        workers,
        local_ports: sluice_lb::local_ports::DEFAULT_LOCAL_PORTS,
        table6: table,
        table,
        neighbours: 1024,
        neighbour: NudConfig {
            reachable_ms: NEIGHBOUR_AGE_MS,
            ..NudConfig::default()
        },
    };
    Forwarder::new(&cfg, shared.clone()).unwrap()
}

/// One worker (of one) with its snapshot and clock.
pub struct Lab {
    pub shared: Arc<SharedStats>,
    pub snap: Snapshot,
    pub fwd: Forwarder,
    pub now: u64,
}

impl Lab {
    /// A single worker with a table of `capacity` connections, running
    /// `services`.
    pub fn with_capacity(services: &[SlottedService], capacity: u32) -> Lab {
        Lab::with_table(services, table_config(capacity))
    }

    /// A single worker with a table configured by `table`.
    pub fn with_table(services: &[SlottedService], table: TableConfig) -> Lab {
        let shared = SharedStats::new(1);
        let fwd = forwarder_with(&shared, 0, 1, table);
        Lab {
            snap: build_snapshot(services, &[]).unwrap(),
            shared,
            fwd,
            now: T0,
        }
    }

    pub fn new(services: &[SlottedService]) -> Lab {
        Lab::with_capacity(services, 4096)
    }

    /// A single worker whose SYN proxy engages at `threshold` half-open
    /// connections.
    pub fn with_syn_threshold(services: &[SlottedService], threshold: u32) -> Lab {
        let shared = SharedStats::new(1);
        let proxy = SynProxyConfig {
            threshold,
            ..SynProxyConfig::default()
        };
        let fwd = forwarder_with_proxy(&shared, 0, 1, table_config(4096), proxy);
        Lab {
            snap: build_snapshot(services, &[]).unwrap(),
            shared,
            fwd,
            now: T0,
        }
    }

    /// The NAT service, `scheduler`, all neighbours (client and reals)
    /// known.
    pub fn nat(scheduler: &str) -> Lab {
        let mut lab = Lab::new(&[slotted(nat_spec(scheduler))]);
        lab.learn_nat_reals();
        lab.learn(CLIENT_IP);
        lab
    }

    pub fn process(&mut self, frame: &mut [u8], rx_port: usize) -> Action {
        self.fwd.process(&self.snap, frame, rx_port, self.now)
    }

    /// Processes a copy of `frame`; returns the action and the copy.
    pub fn run(&mut self, frame: &[u8], rx_port: usize) -> (Action, Vec<u8>) {
        let mut f = frame.to_vec();
        let a = self.process(&mut f, rx_port);
        (a, f)
    }

    pub fn rebuild(&mut self, services: &[SlottedService], drains: &[Drain]) {
        self.snap = build_snapshot(services, drains).unwrap();
    }

    /// Housekeeping with all the time it wants.
    pub fn housekeeping(&mut self) -> sluice_lb::pipeline::Housekeeping {
        self.fwd.housekeeping(&self.snap, self.now, || true)
    }

    /// Tells the forwarder `ip` is at [`mac_of`]`(ip)`.
    pub fn learn(&mut self, ip: Ipv4Addr) {
        self.fwd.learn_remote(ip, mac_of(ip), self.now);
    }

    pub fn learn_nat_reals(&mut self) {
        for i in 0..3 {
            self.learn(*nat_real(i).ip());
        }
    }

    pub fn learn_dr_reals(&mut self) {
        for i in 0..3 {
            self.learn(*dr_real(i).ip());
        }
    }

    pub fn stats(&self) -> &WorkerLbStats {
        &self.shared.workers[0]
    }

    /// Sends a SYN from `from` to the VIP on port 0 and returns the NAT real
    /// it was forwarded to (index 0..3); panics unless it was forwarded.
    pub fn syn_to_nat(&mut self, from: SocketAddrV4) -> usize {
        let (a, f) = self.run(&Tcp::new(from, VIP, SYN).frame(), 0);
        assert_eq!(a, Action::Forward { port: 1 }, "SYN from {from}");
        nat_index(&f)
    }

    /// Sends a client ACK (no payload) on port 0 and returns the action and
    /// the frame.
    pub fn ack_from(&mut self, from: SocketAddrV4) -> (Action, Vec<u8>) {
        self.run(&Tcp::new(from, VIP, ACK).frame(), 0)
    }

    /// The reply `flags` from NAT real `i` to `to`, on port 1.
    pub fn reply_from(&mut self, i: usize, to: SocketAddrV4, flags: u8) -> (Action, Vec<u8>) {
        self.run(&Tcp::new(nat_real(i), to, flags).frame(), 1)
    }
}

/// Which NAT real a forwarded frame is addressed to.
pub fn nat_index(f: &[u8]) -> usize {
    let dst = SocketAddrV4::new(ip_dst(f), dport(f));
    (0..3)
        .find(|&i| nat_real(i) == dst)
        .unwrap_or_else(|| panic!("{dst} is not a NAT real"))
}

/// Which DR real a forwarded frame is addressed to (by its MAC).
pub fn dr_index(f: &[u8]) -> usize {
    let mac = eth_dst(f);
    (0..3)
        .find(|&i| mac_of(*dr_real(i).ip()) == mac)
        .unwrap_or_else(|| panic!("{mac} is not a DR real's MAC"))
}

// ---------------------------------------------------------------------------
// Checksums, from scratch: sluice-core's test oracle
// ---------------------------------------------------------------------------

pub use sluice_core::testing::{icmp_checksum, ipv4_header_checksum, l4_checksum};

fn be16(b: &[u8], off: usize) -> u16 {
    u16::from_be_bytes([b[off], b[off + 1]])
}

// ---------------------------------------------------------------------------
// Frame builders
// ---------------------------------------------------------------------------

pub const FIN: u8 = 0x01;
pub const SYN: u8 = 0x02;
pub const RST: u8 = 0x04;
pub const PSH: u8 = 0x08;
pub const ACK: u8 = 0x10;

pub const ETHERTYPE_IPV4: u16 = 0x0800;
pub const ETHERTYPE_ARP: u16 = 0x0806;

/// An Ethernet frame, padded with zeros to the 60-byte minimum.
pub fn ether(dst: MacAddr, src: MacAddr, ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(60.max(14 + payload.len()));
    f.extend_from_slice(&dst.0);
    f.extend_from_slice(&src.0);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    if f.len() < 60 {
        f.resize(60, 0);
    }
    f
}

/// An IPv4 packet (20-byte header, checksum from scratch) around `payload`.
pub fn ipv4_packet(
    proto: u8,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    ttl: u8,
    id: u16,
    frag: u16,
    payload: &[u8],
) -> Vec<u8> {
    let mut ip = vec![0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&((20 + payload.len()) as u16).to_be_bytes());
    ip[4..6].copy_from_slice(&id.to_be_bytes());
    ip[6..8].copy_from_slice(&frag.to_be_bytes());
    ip[8] = ttl;
    ip[9] = proto;
    ip[12..16].copy_from_slice(&src.octets());
    ip[16..20].copy_from_slice(&dst.octets());
    let c = ipv4_header_checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    ip.extend_from_slice(payload);
    ip
}

/// A TCP segment or its frame. Defaults: TTL 64, DF set, an MSS option,
/// no payload, MACs from [`mac_of`] the source to the receiving port's MAC
/// (port 0 for the VIP and port 0's prefix, else port 1).
#[derive(Debug, Clone)]
pub struct Tcp {
    pub src: SocketAddrV4,
    pub dst: SocketAddrV4,
    pub flags: u8,
    pub seq: u32,
    pub ack: u32,
    pub ttl: u8,
    pub id: u16,
    pub frag: u16,
    pub options: Vec<u8>,
    pub payload: Vec<u8>,
    pub dst_mac: MacAddr,
    pub src_mac: MacAddr,
}

impl Tcp {
    pub fn new(src: SocketAddrV4, dst: SocketAddrV4, flags: u8) -> Tcp {
        // A frame from a server-side host arrives on port 1, else port 0.
        let on_port1 = src.ip().octets()[..3] == [198, 51, 100];
        Tcp {
            src,
            dst,
            flags,
            seq: 0x1000_0000 ^ u32::from(src.port()),
            ack: if flags & ACK != 0 { 0x2000_0001 } else { 0 },
            ttl: 64,
            id: 0x1234,
            frag: 0x4000,
            options: vec![2, 4, 0x05, 0xb4],
            payload: Vec::new(),
            dst_mac: if on_port1 { PORT1_MAC } else { PORT0_MAC },
            src_mac: mac_of(*src.ip()),
        }
    }

    pub fn segment(&self) -> Vec<u8> {
        let mut seg = Vec::new();
        seg.extend_from_slice(&self.src.port().to_be_bytes());
        seg.extend_from_slice(&self.dst.port().to_be_bytes());
        seg.extend_from_slice(&self.seq.to_be_bytes());
        seg.extend_from_slice(&self.ack.to_be_bytes());
        seg.push((((20 + self.options.len()) / 4) as u8) << 4);
        seg.push(self.flags);
        seg.extend_from_slice(&64_240u16.to_be_bytes());
        seg.extend_from_slice(&[0, 0, 0, 0]);
        seg.extend_from_slice(&self.options);
        seg.extend_from_slice(&self.payload);
        let c = l4_checksum(*self.src.ip(), *self.dst.ip(), 6, &seg);
        seg[16..18].copy_from_slice(&c.to_be_bytes());
        seg
    }

    pub fn ip(&self) -> Vec<u8> {
        ipv4_packet(
            6,
            *self.src.ip(),
            *self.dst.ip(),
            self.ttl,
            self.id,
            self.frag,
            &self.segment(),
        )
    }

    pub fn frame(&self) -> Vec<u8> {
        ether(self.dst_mac, self.src_mac, ETHERTYPE_IPV4, &self.ip())
    }

    pub fn ttl(mut self, ttl: u8) -> Tcp {
        self.ttl = ttl;
        self
    }

    pub fn frag(mut self, frag: u16) -> Tcp {
        self.frag = frag;
        self
    }

    pub fn macs(mut self, dst: MacAddr, src: MacAddr) -> Tcp {
        self.dst_mac = dst;
        self.src_mac = src;
        self
    }

    pub fn src(mut self, src: SocketAddrV4) -> Tcp {
        self.src = src;
        self
    }

    pub fn dst(mut self, dst: SocketAddrV4) -> Tcp {
        self.dst = dst;
        self
    }

    pub fn payload(mut self, p: &[u8]) -> Tcp {
        self.payload = p.to_vec();
        self
    }
}

/// An ICMP error from `from` to `to` on port `rx`'s side, with `rest` as
/// bytes 4..8 of the header, quoting `quoted`.
pub fn icmp_error_frame(
    ty: u8,
    code: u8,
    rest: [u8; 4],
    from: Ipv4Addr,
    to: Ipv4Addr,
    quoted: &[u8],
    dst_mac: MacAddr,
) -> Vec<u8> {
    let mut m = vec![ty, code, 0, 0];
    m.extend_from_slice(&rest);
    m.extend_from_slice(quoted);
    let c = icmp_checksum(&m);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    let ip = ipv4_packet(1, from, to, 64, 0x4321, 0, &m);
    ether(dst_mac, mac_of(from), ETHERTYPE_IPV4, &ip)
}

/// An ICMP echo request from `from` to `to`.
pub fn icmp_echo_frame(from: Ipv4Addr, to: Ipv4Addr, dst_mac: MacAddr) -> Vec<u8> {
    let mut m = vec![8, 0, 0, 0, 0xbe, 0xef, 0, 7];
    m.extend_from_slice(b"sluice ping payload");
    let c = icmp_checksum(&m);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    let ip = ipv4_packet(1, from, to, 64, 0x0777, 0x4000, &m);
    ether(dst_mac, mac_of(from), ETHERTYPE_IPV4, &ip)
}

/// An ARP packet (request: op 1, reply: op 2) in a broadcast or unicast
/// frame.
pub fn arp_frame(
    op: u16,
    eth_dst: MacAddr,
    sha: MacAddr,
    spa: Ipv4Addr,
    tha: MacAddr,
    tpa: Ipv4Addr,
) -> Vec<u8> {
    let mut a = Vec::with_capacity(28);
    a.extend_from_slice(&1u16.to_be_bytes());
    a.extend_from_slice(&0x0800u16.to_be_bytes());
    a.push(6);
    a.push(4);
    a.extend_from_slice(&op.to_be_bytes());
    a.extend_from_slice(&sha.0);
    a.extend_from_slice(&spa.octets());
    a.extend_from_slice(&tha.0);
    a.extend_from_slice(&tpa.octets());
    ether(eth_dst, sha, ETHERTYPE_ARP, &a)
}

// ---------------------------------------------------------------------------
// Frame readers (20-byte IPv4 headers: every frame here has one)
// ---------------------------------------------------------------------------

pub const L3: usize = 14;
pub const L4: usize = 34;

pub fn eth_dst(f: &[u8]) -> MacAddr {
    MacAddr(f[0..6].try_into().unwrap())
}

pub fn eth_src(f: &[u8]) -> MacAddr {
    MacAddr(f[6..12].try_into().unwrap())
}

pub fn ip_total_len(f: &[u8]) -> usize {
    be16(f, L3 + 2) as usize
}

pub fn ttl(f: &[u8]) -> u8 {
    f[L3 + 8]
}

pub fn ip_proto(f: &[u8]) -> u8 {
    f[L3 + 9]
}

pub fn ip_src(f: &[u8]) -> Ipv4Addr {
    Ipv4Addr::new(f[26], f[27], f[28], f[29])
}

pub fn ip_dst(f: &[u8]) -> Ipv4Addr {
    Ipv4Addr::new(f[30], f[31], f[32], f[33])
}

pub fn sport(f: &[u8]) -> u16 {
    be16(f, L4)
}

pub fn dport(f: &[u8]) -> u16 {
    be16(f, L4 + 2)
}

/// The IP payload (layer-4 segment or ICMP message), padding excluded.
pub fn l4(f: &[u8]) -> &[u8] {
    &f[L4..L3 + ip_total_len(f)]
}

/// Asserts that the IPv4 header checksum and the TCP, UDP or ICMP checksum
/// of `f` equal those computed from scratch.
pub fn assert_checksums(f: &[u8]) {
    assert_eq!(f[L3], 0x45, "a 20-byte IPv4 header");
    let hdr = &f[L3..L4];
    assert_eq!(
        be16(hdr, 10),
        ipv4_header_checksum(hdr),
        "IPv4 header checksum"
    );
    let seg = l4(f);
    match ip_proto(f) {
        6 => assert_eq!(
            be16(seg, 16),
            l4_checksum(ip_src(f), ip_dst(f), 6, seg),
            "TCP checksum"
        ),
        17 => assert_eq!(
            be16(seg, 6),
            l4_checksum(ip_src(f), ip_dst(f), 17, seg),
            "UDP checksum"
        ),
        1 => assert_eq!(be16(seg, 2), icmp_checksum(seg), "ICMP checksum"),
        p => panic!("unexpected protocol {p}"),
    }
}

/// A UDP datagram's IPv4 packet (TTL `ttl`, DF clear), with its checksum
/// computed from scratch, or 0 (none) when `with_checksum` is false.
pub fn udp_ip(
    src: SocketAddrV4,
    dst: SocketAddrV4,
    payload: &[u8],
    ttl: u8,
    with_checksum: bool,
) -> Vec<u8> {
    let mut seg = Vec::with_capacity(8 + payload.len());
    seg.extend_from_slice(&src.port().to_be_bytes());
    seg.extend_from_slice(&dst.port().to_be_bytes());
    seg.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    seg.extend_from_slice(&[0, 0]);
    seg.extend_from_slice(payload);
    if with_checksum {
        let c = l4_checksum(*src.ip(), *dst.ip(), 17, &seg);
        seg[6..8].copy_from_slice(&c.to_be_bytes());
    }
    ipv4_packet(17, *src.ip(), *dst.ip(), ttl, 0x5151, 0, &seg)
}

/// A UDP service VIP:53 with NAT reals 198.51.100.11..13:5353.
pub fn udp_nat_spec() -> ServiceSpec {
    ServiceSpec {
        protocol: Protocol::Udp,
        vip: std::net::IpAddr::V4(VIP_IP),
        port: 53,
        scheduler: sluice_model::SchedulerKind::Rr,
        persistence: None,
        on_real_removal: OnRealRemoval::Keep,
        mh_table_size: None,
        check: None,
        agent: None,
        on_real_down: Default::default(),
        weight_by_latency: false,
        expire_quiescent_template: false,
        passive_health: None,
        syn_proxy: Default::default(),
        on_miss_setting: None,
        local_addresses: Vec::new(),
        proxy_protocol: Default::default(),
        reals: (0..3)
            .map(|i| {
                let r = nat_real(i);
                real_spec(SocketAddrV4::new(*r.ip(), 5353), Forward::Nat, 1)
            })
            .collect(),
    }
}
