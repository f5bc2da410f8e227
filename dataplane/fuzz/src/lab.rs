//! The appliance the forwarder target runs: two ports, twelve services
//! covering every scheduler and every forwarding method, the PROXY
//! protocol (the two full-NAT services), persistence,
//! thresholds and a quiesced real, two workers (so packets are handed
//! between them) and small tables (so they fill up).
//!
//! Port 0 "client" 192.0.2.1/24 (MAC 02:00:00:00:00:01), port 1 "servers"
//! 198.51.100.1/24 (MAC 02:00:00:00:00:02) with a kernel interface; the
//! VIPs are 192.0.2.100..102; NAT reals 198.51.100.11..13, DR reals
//! 192.0.2.21..22, tunnel reals 203.0.113.50..51 (GUE, IP-in-IP), full-NAT
//! reals on the NAT reals' addresses (port 9000) from the local addresses
//! 198.51.100.200..201; the gateway 192.0.2.254 routes 203.0.113.0/24.

use sluice_conntrack::TableConfig;
use sluice_core::neigh::NudConfig;
use sluice_core::{Ipv4Prefix, MacAddr};
use sluice_lb::model::SlottedService;
use sluice_lb::{
    Forwarder, ForwarderConfig, PortBase, RealSlot, RouteTable, ServiceSlot, SharedStats, Snapshot,
};
use sluice_model::{
    Forward, OnRealRemoval, Persistence, Protocol, ProxyProtocol, RealSpec, SchedulerKind,
    ServiceSpec, SynProxyMode,
};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;

/// Port MACs.
pub const PORT_MACS: [MacAddr; 2] = [
    MacAddr([0x02, 0, 0, 0, 0, 0x01]),
    MacAddr([0x02, 0, 0, 0, 0, 0x02]),
];
/// The VIPs.
pub const VIPS: [Ipv4Addr; 3] = [
    Ipv4Addr::new(192, 0, 2, 100),
    Ipv4Addr::new(192, 0, 2, 101),
    Ipv4Addr::new(192, 0, 2, 102),
];
/// Connections per worker table: small, so the fuzzer fills it.
pub const TABLE_CAPACITY: u32 = 64;

fn nat(ip: [u8; 4], port: u16, weight: u32) -> RealSpec {
    real(ip, port, weight, Forward::Nat)
}

fn real(ip: [u8; 4], port: u16, weight: u32, forward: Forward) -> RealSpec {
    RealSpec {
        ip: std::net::IpAddr::V4(Ipv4Addr::from(ip)),
        port,
        weight,
        forward,
        upper_threshold: 0,
        lower_threshold: 0,
        check: None,
        agent: None,
    }
}

fn service(
    protocol: Protocol,
    vip: usize,
    port: u16,
    scheduler: SchedulerKind,
    reals: Vec<RealSpec>,
) -> ServiceSpec {
    ServiceSpec {
        protocol,
        vip: std::net::IpAddr::V4(VIPS[vip]),
        port,
        scheduler,
        persistence: None,
        on_real_removal: OnRealRemoval::Keep,
        mh_table_size: Some(251),
        check: None,
        agent: None,
        on_real_down: OnRealRemoval::Keep,
        weight_by_latency: false,
        expire_quiescent_template: false,
        passive_health: None,
        syn_proxy: SynProxyMode::Auto,
        on_miss_setting: None,
        local_addresses: Vec::new(),
        proxy_protocol: Default::default(),
        reals,
    }
}

/// The services, one per scheduler, NAT and DR, TCP and UDP.
pub fn services() -> Vec<ServiceSpec> {
    use SchedulerKind::*;
    let (r1, r2, r3) = ([198, 51, 100, 11], [198, 51, 100, 12], [198, 51, 100, 13]);
    let mut sh = service(
        Protocol::Tcp,
        1,
        80,
        Sh,
        vec![nat(r1, 80, 1), nat(r2, 80, 1)],
    );
    sh.persistence = Some(Persistence {
        timeout_secs: 60,
        netmask: Some(24),
    });
    let mut thresholds = nat(r3, 81, 2);
    thresholds.upper_threshold = 2;
    thresholds.lower_threshold = 1;
    let mut wlc = service(
        Protocol::Tcp,
        2,
        81,
        Wlc,
        vec![nat(r1, 81, 1), nat(r2, 81, 0)],
    );
    wlc.persistence = Some(Persistence {
        timeout_secs: 30,
        netmask: Some(32),
    });
    wlc.expire_quiescent_template = true;
    wlc.on_real_removal = OnRealRemoval::End;
    wlc.syn_proxy = SynProxyMode::On;
    vec![
        service(
            Protocol::Tcp,
            0,
            80,
            Rr,
            vec![nat(r1, 8080, 1), nat(r2, 8080, 1), nat(r3, 8080, 1)],
        ),
        service(
            Protocol::Tcp,
            0,
            443,
            Wlc,
            vec![
                real([192, 0, 2, 21], 443, 1, Forward::Dr),
                real([192, 0, 2, 22], 443, 2, Forward::Dr),
            ],
        ),
        service(
            Protocol::Udp,
            0,
            53,
            Mh,
            vec![nat(r1, 5353, 1), nat(r2, 5353, 1)],
        ),
        sh,
        service(
            Protocol::Tcp,
            1,
            81,
            Wrr,
            vec![nat(r1, 81, 3), nat(r2, 81, 1), thresholds],
        ),
        service(
            Protocol::Udp,
            1,
            123,
            Sed,
            vec![nat(r1, 123, 1), nat(r3, 123, 2)],
        ),
        service(
            Protocol::Tcp,
            2,
            80,
            Nq,
            vec![
                real([192, 0, 2, 21], 80, 1, Forward::Dr),
                real([192, 0, 2, 22], 80, 1, Forward::Dr),
            ],
        ),
        wlc,
        service(
            Protocol::Tcp,
            2,
            82,
            Lc,
            vec![nat(r3, 82, 1), nat(r1, 82, 1)],
        ),
        service(
            Protocol::Tcp,
            1,
            8443,
            Mh,
            vec![
                real(TUNNEL_REALS[0], 8443, 1, Forward::Gue),
                real(TUNNEL_REALS[1], 8443, 1, Forward::Ipip),
            ],
        ),
        full_nat(Protocol::Tcp, PROXIED[0].1, vec![r1, r2]),
        full_nat(Protocol::Udp, PROXIED[1].1, vec![r3]),
    ]
}

/// A full-NAT service on VIP 2 whose reals get the PROXY protocol header.
fn full_nat(protocol: Protocol, port: u16, reals: Vec<[u8; 4]>) -> ServiceSpec {
    let reals = reals
        .into_iter()
        .map(|r| real(r, 9000, 1, Forward::FullNat))
        .collect();
    let mut s = service(protocol, 2, port, SchedulerKind::Rr, reals);
    s.local_addresses = LOCAL_ADDRESSES.iter().map(|a| (*a).into()).collect();
    s.proxy_protocol = ProxyProtocol::V2;
    s
}

/// The full-NAT services' local addresses.
pub const LOCAL_ADDRESSES: [Ipv4Addr; 2] = [
    Ipv4Addr::new(198, 51, 100, 200),
    Ipv4Addr::new(198, 51, 100, 201),
];

/// The services whose reals get the PROXY protocol header: (VIP, port).
pub const PROXIED: [(Ipv4Addr, u16); 2] = [
    (Ipv4Addr::new(192, 0, 2, 102), 8081),
    (Ipv4Addr::new(192, 0, 2, 102), 5300),
];

/// The tunnel reals (GUE, then IP-in-IP), behind the gateway.
pub const TUNNEL_REALS: [[u8; 4]; 2] = [[203, 0, 113, 50], [203, 0, 113, 51]];

/// Every configured real's address and port.
pub fn real_addresses() -> Vec<SocketAddrV4> {
    services()
        .iter()
        .flat_map(|s| s.reals.iter())
        .filter_map(|r| match r.ip {
            std::net::IpAddr::V4(ip) => Some(SocketAddrV4::new(ip, r.port)),
            std::net::IpAddr::V6(_) => None,
        })
        .collect()
}

fn slotted() -> Vec<SlottedService> {
    let mut next_real = 0u16;
    services()
        .into_iter()
        .enumerate()
        .map(|(i, spec)| {
            let n = spec.reals.len() as u16;
            let real_slots = (next_real..next_real + n).map(RealSlot).collect();
            next_real += n;
            SlottedService {
                spec,
                slot: ServiceSlot(i as u16),
                real_slots,
            }
        })
        .collect()
}

fn port_bases() -> Vec<PortBase> {
    vec![
        PortBase {
            addresses6: Vec::new(),
            mac: PORT_MACS[0],
            addresses: vec!["192.0.2.1/24".parse().unwrap()],
            kernel: false,
        },
        PortBase {
            addresses6: Vec::new(),
            mac: PORT_MACS[1],
            addresses: vec!["198.51.100.1/24".parse().unwrap()],
            kernel: true,
        },
    ]
}

fn routes() -> RouteTable {
    let connected: Vec<(usize, Ipv4Prefix)> = port_bases()
        .iter()
        .enumerate()
        .flat_map(|(i, p)| p.addresses.iter().map(move |a| (i, *a)))
        .collect();
    RouteTable::new(
        &connected,
        &[(
            "203.0.113.0/24".parse().unwrap(),
            Ipv4Addr::new(192, 0, 2, 254),
        )],
        None,
    )
    .unwrap()
}

/// Real slots in use (one per real of [`services`]).
pub fn real_slots() -> usize {
    services().iter().map(|s| s.reals.len()).sum()
}

/// What does not change between runs, built once per thread: the
/// snapshot, and the counters (the gauges are back at 0 after every run
/// that passes, which the forwarder target asserts; a run that fails ends
/// the fuzzer).
struct Base {
    snap: Arc<Snapshot>,
    shared: Arc<SharedStats>,
}

thread_local! {
    static BASE: Base = Base {
        snap: Arc::new(
            Snapshot::build(&slotted(), &[], &port_bases(), &Arc::new(routes())).unwrap(),
        ),
        shared: SharedStats::new(2),
    };
}

/// Two workers' forwarders over one snapshot.
pub struct Lab {
    /// The configuration both workers run.
    pub snap: Arc<Snapshot>,
    /// Their counters and gauges.
    pub shared: Arc<SharedStats>,
    /// Worker 0 and worker 1.
    pub workers: [Forwarder; 2],
}

impl Lab {
    /// A fresh appliance at time `now`, every real and client neighbour
    /// known to both workers except 198.51.100.13 (so some packets wait
    /// for ARP).
    pub fn new(now: u64) -> Lab {
        let (snap, shared) = BASE.with(|b| (b.snap.clone(), b.shared.clone()));
        let table = TableConfig {
            capacity: TABLE_CAPACITY,
            template_capacity: 16,
            wheel_slots: 256,
            ..TableConfig::default()
        };
        let forwarder = |worker| {
            let cfg = ForwarderConfig {
                // Low, so that short inputs engage it too.
                syn_proxy: sluice_lb::synproxy::SynProxyConfig {
                    threshold: 4,
                    ..Default::default()
                },
                worker,
                workers: 2,
                local_ports: sluice_lb::local_ports::DEFAULT_LOCAL_PORTS,
                table6: table,
                table,
                neighbours: 64,
                neighbour: NudConfig::default(),
            };
            Forwarder::new(&cfg, shared.clone()).unwrap()
        };
        let mut workers = [forwarder(0), forwarder(1)];
        let known: [[u8; 4]; 7] = [
            [198, 51, 100, 11],
            [198, 51, 100, 12],
            [192, 0, 2, 21],
            [192, 0, 2, 22],
            [192, 0, 2, 10],
            [192, 0, 2, 11],
            [192, 0, 2, 254],
        ];
        for w in &mut workers {
            for ip in known {
                w.learn_remote(Ipv4Addr::from(ip), host_mac(Ipv4Addr::from(ip)), now);
            }
        }
        Lab {
            snap,
            shared,
            workers,
        }
    }
}

/// The MAC the lab gives host `ip`: 02:10 and the address.
pub fn host_mac(ip: Ipv4Addr) -> MacAddr {
    let o = ip.octets();
    MacAddr([0x02, 0x10, o[0], o[1], o[2], o[3]])
}
