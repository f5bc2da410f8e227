//! The generator's DPDK side: setting up ports and ARP
//! ([`ports`]), placing the sending and receiving parts on worker lcores
//! ([`worker`]), steering them through runs ([`control`], [`trials`]) with
//! a progress line ([`progress`]), and assembling the report.
//!
//! One worker lcore sends and receives by default; with two worker lcores
//! in the EAL's core list (and two ports) the sender and the receiver get
//! one each. The main lcore only steers, sleeps and reports.

pub mod control;
pub mod ports;
pub mod progress;
pub mod trials;
pub mod worker;

use control::Shared;
use sluice_core::{Ipv4Prefix, Ipv6Prefix, MacAddr};
use sluice_dpdk::{cycles_hz, lcore, Eal, LcoreHandle, MbufBatch, QueuePair};
use sluice_gen::arp::{self, ArpTable};
use sluice_gen::check::{Checker, Expect};
use sluice_gen::config::{Config, DEFAULT_DUT_MAC};
use sluice_gen::family::GenFamily;
use sluice_gen::flows::{FlowSpace, SenderFlows};
use sluice_gen::frame::{FrameParams, Template};
use sluice_gen::report::{Report, ScenarioInfo};
use sluice_gen::sizes::SizePicker;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use worker::{PortIo, RxPart, TxPart, Worker};

/// Runs the configured measurement or search, in the VIP's family, and
/// returns the report.
pub fn run(cfg: &Config) -> Result<Report, String> {
    match cfg.vip {
        IpAddr::V4(_) => run_family::<Ipv4Addr>(cfg),
        IpAddr::V6(_) => run_family::<Ipv6Addr>(cfg),
    }
}

/// Answers for the clients' addresses on `table` with `mac`.
fn answer_for_clients<A: GenFamily>(table: &mut ArpTable, mac: MacAddr) {
    let len = A::client_prefix_len();
    match A::CLIENT_BASE.to_ip() {
        IpAddr::V4(b) => table.add_prefix(Ipv4Prefix::new(b, len).expect("a valid prefix"), mac),
        IpAddr::V6(b) => table.add_prefix6(Ipv6Prefix::new(b, len).expect("a valid prefix"), mac),
    }
}

fn run_family<A: GenFamily>(cfg: &Config) -> Result<Report, String> {
    let vip = A::of(cfg.vip).expect("the configuration checked the VIP's family");
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone())
            .map_err(|e| format!("cannot handle signal {sig}: {e}"))?;
    }
    let mut io = ports::open(cfg)?;
    let hz = cycles_hz();
    io.wait_links(Duration::from_secs_f64(cfg.link_timeout), &stop)?;
    let same = io.rx == 0;
    let mut queues: Vec<Option<QueuePair<'_>>> = io.queues()?.into_iter().map(Some).collect();
    let tx_mac = io.ports[0].mac;
    let rx_mac = io.ports[io.rx].mac;

    // What each port answers ARP (neighbour solicitations) for.
    let mut tx_arp = ArpTable::new();
    if let Some(gw) = cfg.gateway {
        tx_arp.add(gw, tx_mac);
    }
    if cfg.client_arp {
        answer_for_clients::<A>(&mut tx_arp, tx_mac);
    }
    let mut rx_arp = if same {
        tx_arp.clone()
    } else {
        ArpTable::new()
    };
    for r in &cfg.reals {
        rx_arp.add(r.ip, r.mac);
    }
    if same {
        tx_arp = rx_arp.clone();
    }

    // Announcements, and the device's MAC.
    let pool = io.pool.clone();
    {
        let q = queues[io.rx].as_mut().expect("queues not taken yet");
        let garps: Vec<Vec<u8>> = cfg
            .reals
            .iter()
            .map(|r| arp::gratuitous(r.mac, r.ip))
            .collect();
        let refs: Vec<&[u8]> = garps.iter().map(|g| &g[..]).collect();
        ports::send_frames(&pool, &mut q.tx, &refs);
    }
    let dut_mac = {
        let q = queues[0].as_mut().expect("queues not taken yet");
        if let Some(gw) = cfg.gateway {
            ports::send_frames(&pool, &mut q.tx, &[&arp::gratuitous(tx_mac, gw)]);
        }
        match (cfg.dut_mac, cfg.dut_ip) {
            (Some(m), _) => m,
            (None, Some(ip)) => ports::resolve(
                &pool,
                &mut q.rx,
                &mut q.tx,
                &tx_arp,
                tx_mac,
                cfg.gateway.unwrap_or(A::client(1).to_ip()),
                ip,
                Duration::from_secs(3),
            )?,
            (None, None) => DEFAULT_DUT_MAC,
        }
    };

    let (tx_lcore, rx_lcore) = pick_lcores(&io.eal, cfg, same)?;
    let shared = Arc::new(Shared::new());
    let tx_part = |port| {
        let space = FlowSpace::new(cfg.flows)?;
        let params = FrameParams {
            src_mac: tx_mac,
            dst_mac: dut_mac,
            vip,
            vport: cfg.vport,
            proto: cfg.proto,
            ttl: cfg.ttl,
        };
        let templates = cfg
            .size
            .sizes()
            .iter()
            .map(|&s| Template::new(&params, s))
            .collect();
        Ok::<_, String>(TxPart::new(
            port,
            pool.clone(),
            params,
            templates,
            SizePicker::new(cfg.size),
            SenderFlows::new(space),
            cfg.burst as usize,
            cfg.new_flows_per_sec,
            hz,
        ))
    };
    let rx_part = |port| {
        let space = FlowSpace::new(cfg.flows)?;
        let checker = Checker::new(Expect {
            mode: cfg.mode,
            proto: cfg.proto,
            space,
            tx_mac,
            dut_mac,
            dut_rx_mac: cfg.dut_rx_mac,
            vip,
            vport: cfg.vport,
            reals: cfg.reals.clone(),
            ttl: cfg.ttl,
        });
        Ok::<_, String>(RxPart::new(port, checker, cfg.flows as usize, hz))
    };
    let mut port_io = |i: usize, table: ArpTable| {
        let q = queues[i].take().expect("queues taken once");
        PortIo {
            rxq: q.rx,
            txq: q.tx,
            arp: table,
            out: MbufBatch::with_capacity(32),
        }
    };
    let burst = cfg.burst as usize;
    let workers = if tx_lcore == rx_lcore {
        let mut ps = vec![port_io(0, tx_arp)];
        if !same {
            ps.push(port_io(1, rx_arp));
        }
        let rx_index = ps.len() - 1;
        vec![(
            tx_lcore,
            Worker::new(
                ps,
                Some(tx_part(0)?),
                Some(rx_part(rx_index)?),
                shared.clone(),
                burst,
            ),
        )]
    } else {
        let t = vec![port_io(0, tx_arp)];
        let r = vec![port_io(1, rx_arp)];
        vec![
            (
                tx_lcore,
                Worker::new(t, Some(tx_part(0)?), None, shared.clone(), burst),
            ),
            (
                rx_lcore,
                Worker::new(r, None, Some(rx_part(0)?), shared.clone(), burst),
            ),
        ]
    };
    let mut driver = trials::Driver::new(shared.clone(), stop.clone(), cfg.quiet, cfg.drain);
    let outcome = lcore::scope(&io.eal, |scope| {
        // However this ends, the workers are told to exit before the scope
        // waits for them.
        let _exit = ExitOnDrop(&shared);
        let mut handles: Vec<LcoreHandle> = Vec::new();
        for (lc, w) in workers {
            handles.push(
                scope
                    .launch(lc, move || w.run())
                    .map_err(|e| e.to_string())?,
            );
        }
        let outcome = match cfg.search {
            Some(kind) => driver.search(cfg, kind).map(|s| (None, Some(s))),
            None => driver
                .measure(cfg.rate, cfg.warmup, cfg.duration, "measure")
                .map(|r| (Some(r), None)),
        };
        shared.exit.store(true, Ordering::SeqCst);
        for h in handles {
            h.join();
        }
        outcome
    });
    io.stop();
    let (result, search) = outcome?;

    Ok(Report {
        tool: "sluice-gen",
        version: env!("CARGO_PKG_VERSION"),
        scenario: ScenarioInfo {
            mode: cfg.mode.name(),
            proto: cfg.proto.name(),
            flows: cfg.flows,
            new_flows_per_sec: cfg.new_flows_per_sec,
            size: cfg.size.describe(),
            mean_frame_bytes: cfg.size.mean(),
            vip: cfg.vip.to_string(),
            vport: cfg.vport,
            reals: cfg
                .reals
                .iter()
                .map(|r| SocketAddr::new(r.ip, r.port).to_string())
                .collect(),
            clients: format!("{}/{}", A::CLIENT_BASE, A::client_prefix_len()),
            rate_pps: cfg.rate,
            duration_s: cfg.duration,
            warmup_s: cfg.warmup,
            drain_s: cfg.drain,
            tx_port: cfg.tx_port.clone(),
            rx_port: cfg.rx_port.clone(),
            tx_mac: tx_mac.to_string(),
            rx_mac: rx_mac.to_string(),
            dut_mac: MacAddr::to_string(&dut_mac),
            tx_lcore,
            rx_lcore,
            tsc_hz: hz,
            dpdk: Eal::version(),
        },
        result,
        search,
        interrupted: driver.interrupted(),
        rx_on_tx_port: shared.foreign_tx_port.load(Ordering::Relaxed),
    })
}

/// The TX and RX lcores: as configured, else the first worker lcore sends
/// and the second (if any, and if the ports differ) receives.
fn pick_lcores(eal: &Eal, cfg: &Config, same_port: bool) -> Result<(u32, u32), String> {
    let main = eal.main_lcore();
    let workers: Vec<u32> = (0..1024)
        .filter(|&l| l != main && eal.lcore_enabled(l))
        .collect();
    let tx = match cfg.tx_lcore {
        Some(l) => l,
        None => *workers.first().ok_or(
            "the EAL has no worker lcore: give it at least two cores (e.g. -l 0,1; the first is the main lcore)",
        )?,
    };
    let rx = match cfg.rx_lcore {
        Some(l) => l,
        None if same_port => tx,
        None => workers.iter().copied().find(|&l| l != tx).unwrap_or(tx),
    };
    for l in [tx, rx] {
        if !workers.contains(&l) {
            return Err(format!(
                "lcore {l} is not a worker lcore of the EAL (workers: {workers:?}, main: {main})"
            ));
        }
    }
    if same_port && tx != rx {
        return Err("with one port for TX and RX, sending and receiving share one lcore".into());
    }
    Ok((tx, rx))
}

/// Tells the workers to exit when dropped.
struct ExitOnDrop<'a>(&'a Shared);

impl Drop for ExitOnDrop<'_> {
    fn drop(&mut self) {
        self.0.exit.store(true, Ordering::SeqCst);
    }
}
