//! Benchmark of the sans-IO packet pipeline, [`Forwarder::process`], with
//! no I/O: frames are prebuilt in memory and handed to the pipeline one by
//! one, as a worker does with the mbufs of a received burst.
//!
//! Scenarios (one worker, one TCP service 192.0.2.100:80, 8 reals, "rr"):
//!
//! * baseline: a plain 5-tuple swap of each frame (MACs, IPv4 source and
//!   destination, TCP ports), what dpdk-testpmd's `5tswap` forwarding mode
//!   does, on the same frames; once in place and once after copying a
//!   pristine frame into a scratch buffer;
//! * DR, established flows: client -> VIP ACKs cycling through 1k and then
//!   1M connections (the frame is changed in place, only its MACs, and its
//!   destination MAC set back to the port's before each pass);
//! * NAT, established flows: client -> VIP ACKs (inbound) and real ->
//!   client ACKs (outbound replies), 1k and 1M connections. NAT rewrites
//!   the frame and decrements its TTL, so every packet is first copied from
//!   a pristine frame into a scratch buffer; the "copy + swap" baseline pays
//!   the same copy;
//! * new connections: SYNs from distinct clients to the NAT service into an
//!   empty table, reported as connections per second;
//! * SYN cookies: the same SYNs to the service with `syn_proxy = "on"`,
//!   each answered in place with a SYN-ACK carrying a cookie (what a
//!   spoofed SYN flood costs while the proxy is engaged).
//!
//! Packets visit the flows in a fixed pseudo-random order unrelated to the
//! order the connections were created in, so that connection entries are
//! not read sequentially. Everything is deterministic (no clock but the
//! one timing the runs; the pipeline's `now_ms` stays constant).
//!
//! `cargo bench -p sluice-lb` runs it in full (cargo passes `--bench`);
//! without `--bench` (`cargo test --benches`) it runs a small smoke test.
//! Figures are recorded in `perf/RESULTS.md`.

use sluice_conntrack::TableConfig;
use sluice_core::local::Handled;
use sluice_core::wire::{ethernet, ipv4, l4};
use sluice_core::{Ipv4Prefix, MacAddr};
use sluice_lb::model::SlottedService;
use sluice_lb::{Action, Forwarder, ForwarderConfig, PortBase, RouteTable, SharedStats, Snapshot};
use sluice_model::SynProxyMode;
use sluice_proto::{Forward, OnRealRemoval, Protocol, RealSpec, ServiceSpec};
use std::hint::black_box;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Bytes per frame: a TCP segment without payload (54 bytes) padded to the
/// Ethernet minimum of 60 (without FCS), as a NIC delivers it.
const FRAME_LEN: usize = 60;
/// Frames are stored one per 64-byte cache line.
const STRIDE: usize = 64;

const PORT0_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x01]);
const PORT1_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x02]);
const GW: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 254);
const GW_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0xfe, 0xfe]);
const VIP: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 100), 80);
const REALS: u8 = 8;
const NAT_REAL_PORT: u16 = 8080;

const TCP_SYN: u8 = l4::TCP_SYN;
const TCP_ACK: u8 = l4::TCP_ACK;

/// Forwarding method of the service under test.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    /// Reals 198.51.100.11.. on the server port, port 8080.
    Nat,
    /// Reals 192.0.2.21.. on the client port, port 80.
    Dr,
    /// Reals 198.51.100.11.. on the server port, port 80, by GUE.
    Gue,
    /// Reals 198.51.100.11.. on the server port, port 8080, by full NAT
    /// from 198.51.100.200.
    FullNat,
}

fn nat_real(i: u8) -> Ipv4Addr {
    Ipv4Addr::new(198, 51, 100, 11 + i)
}

fn dr_real(i: u8) -> Ipv4Addr {
    Ipv4Addr::new(192, 0, 2, 21 + i)
}

fn real_mac(ip: Ipv4Addr) -> MacAddr {
    let o = ip.octets();
    MacAddr([0x02, 0, 0, 0x01, o[2], o[3]])
}

/// The client of flow `i`: 16 ports per address, addresses counting up
/// from `base` (clients are behind the gateway).
fn client(base: Ipv4Addr, i: u32) -> SocketAddrV4 {
    SocketAddrV4::new(
        Ipv4Addr::from(u32::from(base) + 1 + (i >> 4)),
        40_000 + (i & 15) as u16,
    )
}

const CLIENTS: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 0);
const NEW_CLIENTS: Ipv4Addr = Ipv4Addr::new(11, 0, 0, 0);

/// Writes a TCP segment without payload, with valid IPv4 and TCP
/// checksums, padded to [`FRAME_LEN`].
#[allow(clippy::too_many_arguments)]
fn write_tcp(
    f: &mut [u8],
    dst_mac: MacAddr,
    src_mac: MacAddr,
    src: SocketAddrV4,
    dst: SocketAddrV4,
    flags: u8,
    seq: u32,
    ack: u32,
) {
    let f = &mut f[..FRAME_LEN];
    f.fill(0);
    ethernet::write_header(f, dst_mac, src_mac, ethernet::ETHERTYPE_IPV4);
    let ip = &mut f[ethernet::HEADER_LEN..];
    ipv4::write_header(
        ip,
        40,
        seq as u16,
        64,
        ipv4::PROTO_TCP,
        *src.ip(),
        *dst.ip(),
    );
    let tcp = &mut ip[20..40];
    tcp[0..2].copy_from_slice(&src.port().to_be_bytes());
    tcp[2..4].copy_from_slice(&dst.port().to_be_bytes());
    tcp[4..8].copy_from_slice(&seq.to_be_bytes());
    tcp[8..12].copy_from_slice(&ack.to_be_bytes());
    tcp[12] = 0x50;
    tcp[13] = flags;
    tcp[14..16].copy_from_slice(&64_240u16.to_be_bytes());
    let c = l4::segment_checksum(
        *src.ip(),
        *dst.ip(),
        ipv4::PROTO_TCP,
        tcp,
        l4::TCP_CHECKSUM_OFFSET,
    );
    tcp[16..18].copy_from_slice(&c.to_be_bytes());
}

fn ip_at(f: &[u8], off: usize) -> Ipv4Addr {
    Ipv4Addr::new(f[off], f[off + 1], f[off + 2], f[off + 3])
}

fn port_at(f: &[u8], off: usize) -> u16 {
    u16::from_be_bytes([f[off], f[off + 1]])
}

/// The source and destination of a frame written by [`write_tcp`].
fn endpoints(f: &[u8]) -> (SocketAddrV4, SocketAddrV4) {
    (
        SocketAddrV4::new(ip_at(f, 26), port_at(f, 34)),
        SocketAddrV4::new(ip_at(f, 30), port_at(f, 36)),
    )
}

/// Frames stored back to back, one per [`STRIDE`] bytes.
#[derive(Clone)]
struct Frames {
    buf: Vec<u8>,
}

impl Frames {
    fn new(n: usize) -> Frames {
        Frames {
            buf: vec![0; n * STRIDE],
        }
    }

    fn len(&self) -> usize {
        self.buf.len() / STRIDE
    }

    fn get_mut(&mut self, i: usize) -> &mut [u8] {
        &mut self.buf[i * STRIDE..i * STRIDE + FRAME_LEN]
    }
}

/// A deterministic permutation of `0..n` (xorshift64* Fisher-Yates).
fn permutation(n: u32, seed: u64) -> Vec<u32> {
    let mut v: Vec<u32> = (0..n).collect();
    let mut x = seed | 1;
    for i in (1..v.len()).rev() {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        let r = x.wrapping_mul(0x2545_f491_4f6c_dd1d);
        v.swap(i, (r % (i as u64 + 1)) as usize);
    }
    v
}

/// What dpdk-testpmd's `5tswap` mode does to a frame: swap the MACs, the
/// IPv4 addresses and the TCP/UDP ports in place (no checksum changes are
/// needed: a swap keeps every sum). Kept out of line, like the pipeline's
/// `process`, so both pay one call per packet.
#[inline(never)]
fn five_tuple_swap(f: &mut [u8]) -> bool {
    if f.len() < ethernet::HEADER_LEN + ipv4::MIN_HEADER_LEN
        || ethernet::ethertype(f) != ethernet::ETHERTYPE_IPV4
    {
        return false;
    }
    let mut mac = [0u8; 6];
    mac.copy_from_slice(&f[0..6]);
    f.copy_within(6..12, 0);
    f[6..12].copy_from_slice(&mac);
    let l3 = ethernet::HEADER_LEN;
    let mut a = [0u8; 4];
    a.copy_from_slice(&f[l3 + 12..l3 + 16]);
    f.copy_within(l3 + 16..l3 + 20, l3 + 12);
    f[l3 + 16..l3 + 20].copy_from_slice(&a);
    let proto = f[l3 + 9];
    let l4 = l3 + (f[l3] & 0x0f) as usize * 4;
    if (proto == ipv4::PROTO_TCP || proto == ipv4::PROTO_UDP) && f.len() >= l4 + 4 {
        let mut p = [0u8; 2];
        p.copy_from_slice(&f[l4..l4 + 2]);
        f.copy_within(l4 + 2..l4 + 4, l4);
        f[l4 + 2..l4 + 4].copy_from_slice(&p);
    }
    true
}

/// The snapshot the daemon would build for `mode`: two ports, routes with
/// a default gateway on the client side, one service.
fn snapshot(mode: Mode) -> Snapshot {
    snapshot_with(mode, SynProxyMode::Auto)
}

fn snapshot_with(mode: Mode, syn_proxy: SynProxyMode) -> Snapshot {
    let reals = (0..REALS)
        .map(|i| RealSpec {
            ip: match mode {
                Mode::Nat | Mode::Gue | Mode::FullNat => std::net::IpAddr::V4(nat_real(i)),
                Mode::Dr => std::net::IpAddr::V4(dr_real(i)),
            },
            port: match mode {
                Mode::Nat | Mode::FullNat => NAT_REAL_PORT,
                Mode::Dr | Mode::Gue => VIP.port(),
            },
            weight: 1,
            forward: match mode {
                Mode::Nat => Forward::Nat,
                Mode::Dr => Forward::Dr,
                Mode::Gue => Forward::Gue,
                Mode::FullNat => Forward::FullNat,
            },
            upper_threshold: 0,
            lower_threshold: 0,
            check: None,
            agent: None,
        })
        .collect();
    let spec = ServiceSpec {
        protocol: Protocol::Tcp,
        vip: std::net::IpAddr::V4(*VIP.ip()),
        port: VIP.port(),
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
        syn_proxy,
        on_miss_setting: None,
        local_addresses: match mode {
            Mode::FullNat => vec![std::net::IpAddr::V4(Ipv4Addr::new(198, 51, 100, 200))],
            _ => Vec::new(),
        },
        proxy_protocol: Default::default(),
        reals,
    };
    let prefixes = [
        Ipv4Prefix::new(Ipv4Addr::new(192, 0, 2, 1), 24).unwrap(),
        Ipv4Prefix::new(Ipv4Addr::new(198, 51, 100, 1), 24).unwrap(),
    ];
    let routes =
        RouteTable::new(&[(0, prefixes[0]), (1, prefixes[1])], &[], Some(GW)).expect("routes");
    let ports: Vec<PortBase> = [(PORT0_MAC, prefixes[0]), (PORT1_MAC, prefixes[1])]
        .iter()
        .map(|(mac, p)| PortBase {
            addresses6: Vec::new(),
            mac: *mac,
            addresses: vec![*p],
            kernel: false,
        })
        .collect();
    Snapshot::build(
        &[SlottedService {
            spec,
            slot: sluice_lb::ServiceSlot(0),
            real_slots: (0..REALS as u16).map(sluice_lb::RealSlot).collect(),
        }],
        &[],
        &ports,
        &Arc::new(routes),
    )
    .expect("snapshot")
}

/// Worker 0 of 1, with a table of `capacity` connections and every next
/// hop (the reals, the gateway towards the clients) already resolved.
fn forwarder(capacity: u32, now: u64) -> Forwarder {
    forwarder_on(capacity, now, true)
}

/// The same, its table on huge pages or not.
fn forwarder_on(capacity: u32, now: u64, huge_pages: bool) -> Forwarder {
    let cfg = ForwarderConfig {
        syn_proxy: sluice_lb::synproxy::SynProxyConfig {
            threshold: 0,
            ..Default::default()
        },
        worker: 0,
        workers: 1,
        local_ports: sluice_lb::local_ports::DEFAULT_LOCAL_PORTS,
        table6: TableConfig::with_capacity(1024),
        table: TableConfig {
            capacity,
            huge_pages,
            ..TableConfig::default()
        },
        neighbours: 4096,
        neighbour: sluice_core::neigh::NudConfig {
            reachable_ms: 3_600_000,
            ..Default::default()
        },
    };
    let mut f = Forwarder::new(&cfg, SharedStats::new(1)).expect("forwarder");
    learn_neighbours(&mut f, now);
    f
}

fn learn_neighbours(f: &mut Forwarder, now: u64) {
    f.learn_remote(GW, GW_MAC, now);
    for i in 0..REALS {
        f.learn_remote(nat_real(i), real_mac(nat_real(i)), now);
        f.learn_remote(dr_real(i), real_mac(dr_real(i)), now);
    }
}

/// A service, its worker, and the real each established flow went to.
struct Bed {
    mode: Mode,
    snap: Snapshot,
    fwd: Forwarder,
    /// Per flow (by index), the real it was scheduled to (NAT: the
    /// rewritten destination of its SYN).
    reals: Vec<SocketAddrV4>,
    /// Full NAT: per flow, the local address and port it left from.
    locals: Vec<SocketAddrV4>,
}

const NOW: u64 = 1_000_000;

impl Bed {
    fn new(mode: Mode, capacity: u32, huge_pages: bool) -> Bed {
        Bed {
            mode,
            snap: snapshot(mode),
            fwd: forwarder_on(capacity, NOW, huge_pages),
            reals: Vec::new(),
            locals: Vec::new(),
        }
    }

    /// Opens flows `range` with a SYN each.
    fn establish(&mut self, range: Range<u32>) {
        let want = Action::Forward {
            port: match self.mode {
                Mode::Nat | Mode::Gue | Mode::FullNat => 1,
                Mode::Dr => 0,
            },
        };
        let mut f = [0u8; FRAME_LEN];
        for i in range {
            assert_eq!(i as usize, self.reals.len());
            let c = client(CLIENTS, i);
            write_tcp(&mut f, PORT0_MAC, GW_MAC, c, VIP, TCP_SYN, i, 0);
            let a = self.fwd.process(&self.snap, &mut f, 0, NOW);
            assert_eq!(a, want, "SYN of flow {i} ({:?})", self.mode);
            let (_, dst) = endpoints(&f);
            match self.mode {
                Mode::Nat => {
                    assert_ne!(dst, VIP, "NAT SYN not rewritten");
                    self.reals.push(dst);
                }
                Mode::Dr => {
                    assert_eq!(dst, VIP, "DR SYN rewritten");
                    assert_ne!(&f[0..6], &GW_MAC.0, "DR SYN not sent to a real");
                    self.reals.push(dst);
                }
                Mode::FullNat => {
                    let (src, _) = endpoints(&f);
                    assert_ne!(src, c, "full-NAT SYN from its client");
                    self.reals.push(dst);
                    self.locals.push(src);
                }
                Mode::Gue => {
                    assert_eq!(dst, VIP, "tunnelled SYN rewritten");
                    assert!(self.fwd.take_outer().is_some(), "SYN not encapsulated");
                    self.reals.push(dst);
                }
            }
        }
        assert_eq!(self.fwd.table().len() as usize, self.reals.len());
    }
}

/// Client -> VIP ACKs of the flows in `order`.
fn ack_frames(order: &[u32]) -> Frames {
    let mut fr = Frames::new(order.len());
    for (j, &i) in order.iter().enumerate() {
        let c = client(CLIENTS, i);
        write_tcp(fr.get_mut(j), PORT0_MAC, GW_MAC, c, VIP, TCP_ACK, i + 1, 1);
    }
    fr
}

/// Real -> client ACKs (NAT replies) of the flows in `order`.
fn reply_frames(order: &[u32], reals: &[SocketAddrV4], locals: &[SocketAddrV4]) -> Frames {
    let mut fr = Frames::new(order.len());
    for (j, &i) in order.iter().enumerate() {
        // (Full NAT: the real answers the local address.)
        let c = locals
            .get(i as usize)
            .copied()
            .unwrap_or_else(|| client(CLIENTS, i));
        let r = reals[i as usize];
        write_tcp(
            fr.get_mut(j),
            PORT1_MAC,
            real_mac(*r.ip()),
            r,
            c,
            TCP_ACK,
            7,
            i + 2,
        );
    }
    fr
}

/// Timing settings.
#[derive(Clone, Copy)]
struct Plan {
    /// Length of one timed run.
    run: Duration,
    /// Timed runs (the median is reported).
    runs: usize,
    /// Established-flow table sizes.
    sizes: [u32; 2],
    /// Table capacity for the established-flow scenarios.
    capacity: u32,
    /// SYNs per new-connection run, and the table capacity for them.
    syns: u32,
    syn_capacity: u32,
}

const FULL: Plan = Plan {
    run: Duration::from_millis(300),
    runs: 5,
    sizes: [1 << 10, 1 << 20],
    capacity: 1 << 21,
    syns: 1 << 21,
    syn_capacity: 1 << 22,
};

const SMOKE: Plan = Plan {
    run: Duration::from_millis(2),
    runs: 1,
    sizes: [1 << 6, 1 << 10],
    capacity: 1 << 12,
    syns: 1 << 12,
    syn_capacity: 1 << 14,
};

/// Median, min and max nanoseconds per packet of the timed runs.
#[derive(Clone, Copy)]
struct Timing {
    median: f64,
    min: f64,
    max: f64,
}

/// Times `pass` (one pass over `pkts` packets, returning how many packets
/// got an unexpected action): warm-up for a quarter of a run, then
/// `plan.runs` runs of whole passes lasting about `plan.run` each.
fn measure(plan: &Plan, pkts: usize, mut pass: impl FnMut() -> u64) -> Timing {
    let mut bad = 0;
    let t = Instant::now();
    let mut warm = 0u32;
    while warm == 0 || t.elapsed() < plan.run / 4 {
        bad += pass();
        warm += 1;
    }
    let per_pass = t.elapsed().as_secs_f64() / f64::from(warm);
    let passes = ((plan.run.as_secs_f64() / per_pass).ceil() as usize).max(1);
    let mut ns: Vec<f64> = (0..plan.runs)
        .map(|_| {
            let t0 = Instant::now();
            for _ in 0..passes {
                bad += pass();
            }
            t0.elapsed().as_nanos() as f64 / (passes * pkts) as f64
        })
        .collect();
    assert_eq!(bad, 0, "packets with an unexpected action");
    ns.sort_by(|a, b| a.total_cmp(b));
    Timing {
        median: ns[ns.len() / 2],
        min: ns[0],
        max: ns[ns.len() - 1],
    }
}

/// One line of the final table.
struct Row {
    name: String,
    flows: String,
    t: Timing,
    /// Index of the baseline row it is compared with.
    baseline: Option<usize>,
    unit: &'static str,
}

fn report(rows: &mut Vec<Row>, row: Row) -> usize {
    let ratio = row
        .baseline
        .map(|b| format!("  {:.1}x baseline", row.t.median / rows[b].t.median))
        .unwrap_or_default();
    println!(
        "  {:<60} {:>9}  {:>8.2} ns/{}  {:>7.2} M{}/s  (runs {:.2}..{:.2}){ratio}",
        row.name,
        row.flows,
        row.t.median,
        row.unit,
        1e3 / row.t.median,
        row.unit,
        row.t.min,
        row.t.max,
    );
    rows.push(row);
    rows.len() - 1
}

fn flows_label(n: u32) -> String {
    if n >= 1 << 20 && n.trailing_zeros() >= 20 {
        format!("{}Mi", n >> 20)
    } else if n >= 1 << 10 && n.trailing_zeros() >= 10 {
        format!("{}Ki", n >> 10)
    } else {
        n.to_string()
    }
}

/// Packets per burst in the burst scenarios (a typical RX burst).
const BURST: usize = 32;

/// Scenarios 1 to 4: baselines, DR and NAT on established flows, each
/// one packet at a time (`process`) and in bursts of [`BURST`]
/// (`process_burst`). With `huge_pages` false, only the largest size and
/// only the pipeline rows, tables on 4 KiB pages (the TLB's share).
fn established(plan: &Plan, rows: &mut Vec<Row>, huge_pages: bool) {
    let mut dr = Bed::new(Mode::Dr, plan.capacity, huge_pages);
    let mut nat = Bed::new(Mode::Nat, plan.capacity, huge_pages);
    let mut open = 0;
    let sizes: &[u32] = if huge_pages {
        &plan.sizes
    } else {
        &plan.sizes[plan.sizes.len() - 1..]
    };
    let pages = if huge_pages { "" } else { ", 4 KiB pages" };
    for &n in sizes {
        let t = Instant::now();
        dr.establish(open..n);
        nat.establish(open..n);
        open = n;
        let order = permutation(n, 0x5105_ce00 ^ u64::from(n));
        let pristine = ack_frames(&order);
        let replies = reply_frames(&order, &nat.reals, &nat.locals);
        let label = flows_label(n);
        println!(
            "{label} flows: {} connections per table (DR, NAT){pages}, setup {:.2} s, {} MiB of this process on huge pages",
            n,
            t.elapsed().as_secs_f64(),
            sluice_mem::huge_page_bytes().unwrap_or(0) >> 20,
        );
        let pkts = pristine.len();

        // Check one pass of each scenario's output before timing.
        check_outputs(&mut dr, &mut nat, &pristine, &replies, &order);

        let (b_inplace, b_copy) = if huge_pages {
            baselines(plan, rows, &pristine, &label)
        } else {
            // Compared with the rows of the same flows on huge pages.
            let find = |name: &str| rows.iter().position(|r| r.name == name && r.flows == label);
            (
                find("baseline: 5-tuple swap, in place"),
                find("baseline: copy + 5-tuple swap"),
            )
        };
        let row = |name: &str, t: Timing, baseline: Option<usize>| Row {
            name: format!("{name}{pages}"),
            flows: label.clone(),
            t,
            baseline,
            unit: "pkt",
        };

        let mut frames = pristine.clone();
        let (snap, fwd) = (&dr.snap, &mut dr.fwd);
        let want = Action::Forward { port: 0 };
        let t = measure(plan, pkts, || {
            let mut bad = 0;
            for f in frames.buf.chunks_exact_mut(STRIDE) {
                // The last pass sent it to a real's MAC; it comes
                // in addressed to the port again.
                f[..6].copy_from_slice(&PORT0_MAC.0);
                let a = fwd.process(snap, &mut f[..FRAME_LEN], 0, NOW);
                bad += u64::from(a != want);
            }
            bad
        });
        report(rows, row("DR client->VIP ACK, in place", t, b_inplace));
        let mut slices: Vec<&mut [u8]> = frames
            .buf
            .chunks_exact_mut(STRIDE)
            .map(|f| &mut f[..FRAME_LEN])
            .collect();
        let mut actions = [want; BURST];
        let t = measure(plan, pkts, || {
            let mut bad = 0;
            for burst in slices.chunks_mut(BURST) {
                for f in burst.iter_mut() {
                    f[..6].copy_from_slice(&PORT0_MAC.0);
                }
                fwd.process_burst(snap, burst, 0, NOW, &mut actions);
                bad += actions[..burst.len()]
                    .iter()
                    .filter(|a| **a != want)
                    .count() as u64;
            }
            bad
        });
        report(
            rows,
            row("DR client->VIP ACK, in place, bursts", t, b_inplace),
        );
        drop(slices);
        drop(frames);

        let (snap, fwd) = (&nat.snap, &mut nat.fwd);
        for (name, input, rx, want) in [
            ("NAT client->VIP ACK, copy + process", &pristine, 0, 1),
            ("NAT real->client ACK, copy + process", &replies, 1, 0),
        ] {
            let want = Action::Forward { port: want };
            let t = measure(plan, pkts, || {
                let mut bad = 0;
                let mut s = [0u8; FRAME_LEN];
                for f in input.buf.chunks_exact(STRIDE) {
                    s.copy_from_slice(&f[..FRAME_LEN]);
                    let a = fwd.process(snap, &mut s, rx, NOW);
                    bad += u64::from(a != want);
                }
                black_box(&s);
                bad
            });
            report(rows, row(name, t, b_copy));
            let mut actions = [want; BURST];
            let t = measure(plan, pkts, || {
                let mut bad = 0;
                let mut s = [[0u8; FRAME_LEN]; BURST];
                for burst in input.buf.chunks(STRIDE * BURST) {
                    let k = burst.len() / STRIDE;
                    for (d, f) in s.iter_mut().zip(burst.chunks_exact(STRIDE)) {
                        d.copy_from_slice(&f[..FRAME_LEN]);
                    }
                    fwd.process_burst(snap, &mut s[..k], rx, NOW, &mut actions);
                    bad += actions[..k].iter().filter(|a| **a != want).count() as u64;
                }
                black_box(&s);
                bad
            });
            report(rows, row(&format!("{name}, bursts"), t, b_copy));
        }
    }
    for b in [&dr, &nat] {
        assert_eq!(b.fwd.table().len(), plan.sizes[1], "{:?} table", b.mode);
        assert_eq!(b.fwd.stats().stateless_forwards.get(), 0);
        assert_eq!(b.fwd.stats().held_for_arp.get(), 0);
    }
}

/// The two baselines on `pristine`; returns their rows.
fn baselines(
    plan: &Plan,
    rows: &mut Vec<Row>,
    pristine: &Frames,
    label: &str,
) -> (Option<usize>, Option<usize>) {
    let pkts = pristine.len();
    let mut swap = pristine.clone();
    let b_inplace = report(
        rows,
        Row {
            name: "baseline: 5-tuple swap, in place".into(),
            flows: label.to_string(),
            t: measure(plan, pkts, || {
                let mut bad = 0;
                for f in swap.buf.chunks_exact_mut(STRIDE) {
                    bad += u64::from(!five_tuple_swap(&mut f[..FRAME_LEN]));
                }
                bad
            }),
            baseline: None,
            unit: "pkt",
        },
    );
    black_box(&swap);
    let b_copy = report(
        rows,
        Row {
            name: "baseline: copy + 5-tuple swap".into(),
            flows: label.to_string(),
            t: measure(plan, pkts, || {
                let mut bad = 0;
                let mut s = [0u8; FRAME_LEN];
                for f in pristine.buf.chunks_exact(STRIDE) {
                    s.copy_from_slice(&f[..FRAME_LEN]);
                    bad += u64::from(!five_tuple_swap(&mut s));
                }
                black_box(&s);
                bad
            }),
            baseline: None,
            unit: "pkt",
        },
    );
    (Some(b_inplace), Some(b_copy))
}

/// Runs each scenario once on copies and checks what comes out: DR keeps
/// the addresses and sends to the flow's real; NAT rewrites to the real
/// and back to the VIP.
fn check_outputs(dr: &mut Bed, nat: &mut Bed, acks: &Frames, replies: &Frames, order: &[u32]) {
    let mut s = [0u8; FRAME_LEN];
    for (j, &i) in order.iter().enumerate() {
        let f = &acks.buf[j * STRIDE..j * STRIDE + FRAME_LEN];
        let c = client(CLIENTS, i);

        s.copy_from_slice(f);
        let a = dr.fwd.process(&dr.snap, &mut s, 0, NOW);
        assert_eq!(a, Action::Forward { port: 0 }, "DR ACK of flow {i}");
        assert_eq!(endpoints(&s), (c, VIP));
        assert_eq!(&s[6..12], &PORT0_MAC.0);
        assert_ne!(&s[0..6], &GW_MAC.0);

        s.copy_from_slice(f);
        let a = nat.fwd.process(&nat.snap, &mut s, 0, NOW);
        assert_eq!(a, Action::Forward { port: 1 }, "NAT ACK of flow {i}");
        let r = nat.reals[i as usize];
        assert_eq!(endpoints(&s), (c, r));
        assert_eq!(&s[0..6], &real_mac(*r.ip()).0);
        assert!(sluice_core::flow::parse(&s).is_ok());

        s.copy_from_slice(&replies.buf[j * STRIDE..j * STRIDE + FRAME_LEN]);
        let a = nat.fwd.process(&nat.snap, &mut s, 1, NOW);
        assert_eq!(a, Action::Forward { port: 0 }, "NAT reply of flow {i}");
        assert_eq!(endpoints(&s), (VIP, c));
        assert_eq!(&s[0..6], &GW_MAC.0);
        assert!(sluice_core::flow::parse(&s).is_ok());
    }
}

/// Scenario 5: SYNs from distinct clients to the NAT service into an empty
/// table. Run 0 fills a freshly allocated table (its pages are touched for
/// the first time); the timed runs reuse the table after expiring every
/// connection, as a long-running worker does.
#[inline(never)]
fn new_connections(plan: &Plan, rows: &mut Vec<Row>, bursts: bool) {
    let n = plan.syns;
    let snap = snapshot(Mode::Nat);
    let t = Instant::now();
    let mut fwd = forwarder(plan.syn_capacity, NOW);
    let syns = syn_frames(n);
    println!(
        "new connections: {n} SYNs into a table of {} (setup {:.2} s)",
        plan.syn_capacity,
        t.elapsed().as_secs_f64()
    );
    let mut ns = Vec::new();
    let mut drain_ns = Vec::new();
    for run in 0..=plan.runs {
        // Each run starts after the previous run's connections expired.
        let now = NOW + run as u64 * 200_000;
        learn_neighbours(&mut fwd, now);
        assert_eq!(fwd.table().len(), 0);
        let t0 = Instant::now();
        let bad = syn_pass(
            &mut fwd,
            &snap,
            &syns,
            now,
            bursts,
            Action::Forward { port: 1 },
        );
        let el = t0.elapsed();
        assert_eq!(bad, 0, "SYNs with an unexpected action");
        assert_eq!(fwd.table().len(), n, "connections created");
        assert_eq!(fwd.stats().stateless_forwards.get(), 0);
        ns.push(el.as_nanos() as f64 / f64::from(n));
        // Expire them all (SYN_RECV lasts 60 s).
        let t1 = Instant::now();
        let later = now + 100_000;
        let mut calls = 0u64;
        while !fwd.table().is_empty() {
            fwd.housekeeping(&snap, later, || false);
            calls += 1;
            assert!(calls < 4 * u64::from(n), "expiry does not progress");
        }
        drain_ns.push(t1.elapsed().as_nanos() as f64 / f64::from(n));
    }
    let cold = ns.remove(0);
    println!(
        "  (run 0, fresh table: {cold:.1} ns/conn = {:.2} M conn/s; expiring them: {:.1} ns/conn)",
        1e3 / cold,
        drain_ns[0]
    );
    ns.sort_by(|a, b| a.total_cmp(b));
    report(
        rows,
        Row {
            name: format!(
                "NAT new connection (SYN), copy + process{}",
                if bursts { ", bursts" } else { "" }
            ),
            flows: format!("{}->{}", flows_label(n), flows_label(plan.syn_capacity)),
            t: Timing {
                median: ns[ns.len() / 2],
                min: ns[0],
                max: ns[ns.len() - 1],
            },
            baseline: None,
            unit: "conn",
        },
    );
}

/// One pass of `syns` through `fwd`, one by one or in bursts of
/// [`BURST`], each copied into a scratch buffer first; returns how many
/// got another action than `want`.
fn syn_pass(
    fwd: &mut Forwarder,
    snap: &Snapshot,
    syns: &Frames,
    now: u64,
    bursts: bool,
    want: Action,
) -> u64 {
    let mut bad = 0u64;
    if bursts {
        let mut s = [[0u8; FRAME_LEN]; BURST];
        let mut actions = [want; BURST];
        for burst in syns.buf.chunks(STRIDE * BURST) {
            let k = burst.len() / STRIDE;
            for (d, f) in s.iter_mut().zip(burst.chunks_exact(STRIDE)) {
                d.copy_from_slice(&f[..FRAME_LEN]);
            }
            fwd.process_burst(snap, &mut s[..k], 0, now, &mut actions);
            bad += actions[..k].iter().filter(|a| **a != want).count() as u64;
        }
        black_box(&s);
    } else {
        let mut s = [0u8; FRAME_LEN];
        for f in syns.buf.chunks_exact(STRIDE) {
            s.copy_from_slice(&f[..FRAME_LEN]);
            let a = fwd.process(snap, &mut s, 0, now);
            bad += u64::from(a != want);
        }
        black_box(&s);
    }
    bad
}

/// `n` SYNs from distinct clients to the VIP.
fn syn_frames(n: u32) -> Frames {
    let mut syns = Frames::new(n as usize);
    for i in 0..n {
        let c = client(NEW_CLIENTS, i);
        write_tcp(
            syns.get_mut(i as usize),
            PORT0_MAC,
            GW_MAC,
            c,
            VIP,
            TCP_SYN,
            i,
            0,
        );
    }
    syns
}

/// SYNs to a service proxied at all times: each answered with a cookie in
/// place, nothing entered in the table.
#[inline(never)]
fn syn_cookies(plan: &Plan, rows: &mut Vec<Row>, bursts: bool) {
    let n = plan.syns;
    let snap = snapshot_with(Mode::Nat, SynProxyMode::On);
    let mut fwd = forwarder(plan.syn_capacity, NOW);
    let syns = syn_frames(n);
    println!("SYN cookies: {n} SYNs to a service with syn_proxy = \"on\"");
    let mut ns = Vec::new();
    for _ in 0..=plan.runs {
        let t0 = Instant::now();
        let want = Action::Reply(Handled::SynCookie);
        let bad = syn_pass(&mut fwd, &snap, &syns, NOW, bursts, want);
        let el = t0.elapsed();
        assert_eq!(bad, 0, "SYNs not answered with a cookie");
        assert_eq!(fwd.table().len(), 0, "a cookie leaves nothing behind");
        ns.push(el.as_nanos() as f64 / f64::from(n));
    }
    ns.remove(0);
    ns.sort_by(|a, b| a.total_cmp(b));
    report(
        rows,
        Row {
            name: format!(
                "NAT SYN answered with a cookie, copy + process{}",
                if bursts { ", bursts" } else { "" }
            ),
            flows: flows_label(n),
            t: Timing {
                median: ns[ns.len() / 2],
                min: ns[0],
                max: ns[ns.len() - 1],
            },
            baseline: None,
            unit: "pkt",
        },
    );
}

fn machine() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = info
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| "unknown CPU".into());
    let cpus = info.lines().filter(|l| l.starts_with("processor")).count();
    format!("{model}, {cpus} logical CPUs (from /proc/cpuinfo)")
}

/// Scenarios of the instruction count (`--icount NAME`, run under
/// callgrind by perf/icount.py).
const ICOUNT_SCENARIOS: &[&str] = &[
    "dr_ack",
    "dr_ack_burst",
    "gue_ack",
    "fullnat_in",
    "fullnat_out",
    "nat_in",
    "nat_in_burst",
    "nat_out",
    "nat_out_burst",
    "conn_new",
    "conn_new_burst",
    "syn_cookie",
];

/// Flows (and SYNs) of an instruction-count scenario: small, since
/// callgrind runs some 50 times slower than the CPU; instructions per
/// packet hardly depend on the table's size.
const ICOUNT_FLOWS: u32 = 4096;

/// What callgrind counts: everything inside this function (perf/icount.py
/// passes `--toggle-collect=*icount_measured*`). Returns what `f` returns.
#[inline(never)]
fn icount_measured<F: FnMut() -> u64>(mut f: F) -> u64 {
    f()
}

/// Sets up scenario `name` and runs two passes of its packets inside
/// [`icount_measured`]; prints how many packets that was. Every packet
/// must get the scenario's action. The burst scenarios always look ahead
/// (whatever the table's size), so their count includes that work.
/// `conn_new`: one pass of a SYN and an ACK from each of
/// [`ICOUNT_FLOWS`] new clients, then every connection expired; it
/// prints the connections too (its unit).
fn icount(name: &str) {
    let n = ICOUNT_FLOWS;
    let burst = name.ends_with("_burst");
    let (mut bed, frames, rx, want) = match name.trim_end_matches("_burst") {
        "dr_ack" | "gue_ack" | "nat_in" | "nat_out" | "fullnat_in" | "fullnat_out" => {
            let mode = match &name[..3] {
                "dr_" => Mode::Dr,
                "gue" => Mode::Gue,
                "ful" => Mode::FullNat,
                _ => Mode::Nat,
            };
            let mut bed = Bed::new(mode, 4 * n, true);
            bed.establish(0..n);
            let order = permutation(n, 0x1c0u64);
            let (frames, rx, port) = match name.trim_end_matches("_burst") {
                "dr_ack" => (ack_frames(&order), 0, 0),
                "nat_in" | "gue_ack" | "fullnat_in" => (ack_frames(&order), 0, 1),
                _ => (reply_frames(&order, &bed.reals, &bed.locals), 1, 0),
            };
            (bed, frames, rx, Action::Forward { port })
        }
        "conn_new" => (
            Bed::new(Mode::Nat, 4 * n, true),
            new_conn_frames(n),
            0,
            Action::Forward { port: 1 },
        ),
        "syn_cookie" => {
            let mut bed = Bed::new(Mode::Nat, 4 * n, true);
            bed.snap = snapshot_with(Mode::Nat, SynProxyMode::On);
            (bed, syn_frames(n), 0, Action::Reply(Handled::SynCookie))
        }
        _ => panic!("no scenario {name}; scenarios: {ICOUNT_SCENARIOS:?}"),
    };
    if burst {
        bed.fwd.look_ahead_from(0);
    }
    let conns = name.starts_with("conn_new");
    let passes = if conns { 1 } else { 2 };
    let mut actions = [want; BURST];
    let mut s = [[0u8; FRAME_LEN]; BURST];
    let (snap, fwd) = (&bed.snap, &mut bed.fwd);
    let mut now = NOW;
    let bad = icount_measured(|| {
        let mut bad = 0;
        for _ in 0..passes {
            for chunk in frames.buf.chunks(STRIDE * BURST) {
                let k = chunk.len() / STRIDE;
                for (d, f) in s.iter_mut().zip(chunk.chunks_exact(STRIDE)) {
                    d.copy_from_slice(&f[..FRAME_LEN]);
                }
                if burst {
                    fwd.process_burst(snap, &mut s[..k], rx, now, &mut actions);
                } else {
                    for (a, f) in actions.iter_mut().zip(s[..k].iter_mut()) {
                        *a = fwd.process(snap, f, rx, now);
                    }
                }
                bad += actions[..k].iter().filter(|a| **a != want).count() as u64;
            }
            if conns {
                // Past the ESTABLISHED timeout: every connection expires.
                now += 1_000_000;
                while !fwd.table().is_empty() {
                    fwd.housekeeping(snap, now, || true);
                }
            }
        }
        bad
    });
    black_box(&s);
    assert_eq!(bad, 0, "{name}: packets with an unexpected action");
    println!("packets: {}", passes * frames.len());
    if conns {
        println!("connections: {n}");
    }
}

/// A SYN from each of `n` new clients, then an ACK from each.
fn new_conn_frames(n: u32) -> Frames {
    let mut fr = Frames::new(2 * n as usize);
    for i in 0..n {
        let c = client(NEW_CLIENTS, i);
        let at = i as usize;
        write_tcp(fr.get_mut(at), PORT0_MAC, GW_MAC, c, VIP, TCP_SYN, i, 0);
        let at = (n + i) as usize;
        write_tcp(fr.get_mut(at), PORT0_MAC, GW_MAC, c, VIP, TCP_ACK, i + 1, 1);
    }
    fr
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--icount") {
        match args.get(i + 1) {
            Some(name) => icount(name),
            None => println!("scenarios: {}", ICOUNT_SCENARIOS.join(" ")),
        }
        return;
    }
    let full = args.iter().any(|a| a == "--bench");
    let plan = if full { FULL } else { SMOKE };
    println!("sluice-lb pipeline benchmark: Forwarder::process, no I/O, one worker, one core");
    println!("machine: {}", machine());
    if !full {
        println!("smoke test (no --bench): tiny sizes, figures meaningless; use `cargo bench -p sluice-lb`");
    }
    println!(
        "service tcp {VIP} rr, {REALS} reals; {FRAME_LEN}-byte TCP ACK frames; median of {} runs of ~{} ms",
        plan.runs,
        plan.run.as_millis()
    );
    let t = Instant::now();
    if !full {
        // The instruction-count scenarios run too, natively, so that the
        // smoke test checks their packets' actions.
        for name in ICOUNT_SCENARIOS {
            icount(name);
        }
    }
    let mut rows = Vec::new();
    established(&plan, &mut rows, true);
    established(&plan, &mut rows, false);
    for bursts in [false, true] {
        new_connections(&plan, &mut rows, bursts);
        syn_cookies(&plan, &mut rows, bursts);
    }

    println!();
    println!("| scenario | flows | ns/pkt | Mpps | vs baseline | runs min..max ns |");
    println!("|---|---|---:|---:|---:|---|");
    for r in &rows {
        let ratio = r
            .baseline
            .map(|b| format!("{:.1}x", r.t.median / rows[b].t.median))
            .unwrap_or_else(|| "-".into());
        println!(
            "| {} | {} | {:.2} | {:.2}{} | {} | {:.2}..{:.2} |",
            r.name,
            r.flows,
            r.t.median,
            1e3 / r.t.median,
            if r.unit == "conn" { " M conn/s" } else { "" },
            ratio,
            r.t.min,
            r.t.max
        );
    }
    println!();
    println!("NAT rows and the copy baseline include a {FRAME_LEN}-byte copy of a pristine frame into a scratch buffer per packet");
    println!(
        "(NAT rewrites and decrements the TTL in place); DR rows compare with the in-place swap."
    );
    println!("total {:.1} s", t.elapsed().as_secs_f64());
}
