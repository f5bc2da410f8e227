//! Setting up DPDK for the generator: the EAL, one mbuf pool, the TX and
//! RX ports (one RX and one TX queue each, promiscuous), waiting for the
//! links, and the ARP work done from the main lcore before the workers
//! start: gratuitous ARP for the reals (RX port) and the gateway (TX port),
//! and resolving the device's MAC when `--dut-ip` is given.

use sluice_core::MacAddr;
use sluice_dpdk::{DeviceConfig, Eal, Mbuf, MbufBatch, Mempool, Port, QueuePair, RxQueue, TxQueue};
use sluice_gen::arp::{self, ArpOutcome, ArpTable};
use sluice_gen::config::Config;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// An open, started port with one queue pair.
pub struct OpenPort {
    /// The device.
    pub port: Port,
    /// Its MAC.
    pub mac: MacAddr,
}

/// DPDK, set up.
pub struct Io {
    /// The EAL.
    pub eal: Eal,
    /// The mbuf pool.
    pub pool: Arc<Mempool>,
    /// The TX port, then the RX port if it is another device.
    pub ports: Vec<OpenPort>,
    /// Index of the RX port in `ports` (0 when it is the TX port).
    pub rx: usize,
}

/// Initialises the EAL and opens, configures and starts the ports.
pub fn open(cfg: &Config) -> Result<Io, String> {
    let eal = Eal::init("sluice-gen", &cfg.eal_args).map_err(|e| e.to_string())?;
    let socket = eal.lcore_socket(eal.main_lcore()) as i32;
    let cache = 256.min(cfg.mbufs / 8);
    let pool = Arc::new(
        Mempool::new(&eal, "sluice_gen_mbufs", cfg.mbufs, cache, socket)
            .map_err(|e| e.to_string())?,
    );
    let mut ports = Vec::new();
    let names: Vec<&str> = if cfg.tx_port == cfg.rx_port {
        vec![&cfg.tx_port]
    } else {
        vec![&cfg.tx_port, &cfg.rx_port]
    };
    for name in names {
        let mut port = Port::open(&eal, name).map_err(|e| {
            format!("{e} (is {name} among the devices the EAL arguments create or allow?)")
        })?;
        port.configure(
            &DeviceConfig {
                queues: 1,
                rx_desc: cfg.desc,
                tx_desc: cfg.desc,
                promiscuous: true,
                all_multicast: false,
            },
            &pool,
        )
        .map_err(|e| e.to_string())?;
        port.start().map_err(|e| e.to_string())?;
        let mac = MacAddr(port.mac().map_err(|e| e.to_string())?);
        ports.push(OpenPort { port, mac });
    }
    let rx = ports.len() - 1;
    Ok(Io {
        eal,
        pool,
        ports,
        rx,
    })
}

impl Io {
    /// Waits until every port's link is up (memif: the peer connected),
    /// at most `limit`, or until `stop` is set.
    pub fn wait_links(&self, limit: Duration, stop: &AtomicBool) -> Result<(), String> {
        let deadline = Instant::now() + limit;
        loop {
            if stop.load(Ordering::Relaxed) {
                return Err("interrupted while waiting for the links".into());
            }
            let mut down = Vec::new();
            for p in &self.ports {
                if !p.port.link().map(|l| l.up).unwrap_or(false) {
                    down.push(p.port.name().to_string());
                }
            }
            if down.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "link still down after {limit:?} on {} (is the device under test connected?)",
                    down.join(", ")
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The queue pair of every port, in port order; once.
    pub fn queues(&self) -> Result<Vec<QueuePair<'_>>, String> {
        let mut pairs = Vec::new();
        for p in &self.ports {
            let mut q = p.port.queues().map_err(|e| e.to_string())?;
            pairs.push(q.remove(0));
        }
        Ok(pairs)
    }

    /// Stops the ports (no queue exists any more: they borrow the ports).
    pub fn stop(&mut self) {
        for p in &mut self.ports {
            if let Err(e) = p.port.stop() {
                eprintln!("sluice-gen: {e}");
            }
        }
    }
}

/// Sends `frames` on a port from the main lcore; returns how many went.
pub fn send_frames(pool: &Mempool, txq: &mut TxQueue<'_>, frames: &[&[u8]]) -> usize {
    let mut batch = MbufBatch::with_capacity(frames.len().max(1));
    for f in frames {
        let Some(mut m) = Mbuf::alloc(pool) else {
            break;
        };
        if m.set_data(f) {
            let _ = batch.push(m);
        }
    }
    let mut sent = 0;
    for _ in 0..100 {
        sent += txq.tx_burst(&mut batch);
        if batch.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_micros(100));
    }
    sent
}

/// Polls a port once from the main lcore: answers ARP requests and
/// neighbour solicitations for the addresses of `table`, and returns what
/// replies and advertisements taught.
pub fn poll_arp(
    rxq: &mut RxQueue<'_>,
    txq: &mut TxQueue<'_>,
    table: &ArpTable,
) -> Vec<(IpAddr, MacAddr)> {
    let mut batch = MbufBatch::with_capacity(32);
    let mut out = MbufBatch::with_capacity(32);
    let mut learned = Vec::new();
    rxq.rx_burst(&mut batch);
    for mut m in batch.drain() {
        match arp::handle(m.data_mut(), table) {
            ArpOutcome::Replied => {
                let _ = out.push(m);
            }
            ArpOutcome::Learned(ip, mac) => learned.push((ip, mac)),
            ArpOutcome::Ignored => {}
        }
    }
    txq.tx_burst(&mut out);
    learned
}

/// Resolves `target`'s MAC by ARP (IPv6: neighbour discovery) on a port:
/// asks from `mac`/`ip` every 200 ms, answering for `table` meanwhile, for
/// at most `limit`.
#[allow(clippy::too_many_arguments)]
pub fn resolve(
    pool: &Mempool,
    rxq: &mut RxQueue<'_>,
    txq: &mut TxQueue<'_>,
    table: &ArpTable,
    mac: MacAddr,
    ip: IpAddr,
    target: IpAddr,
    limit: Duration,
) -> Result<MacAddr, String> {
    let deadline = Instant::now() + limit;
    let req = arp::request(mac, ip, target);
    let mut next_ask = Instant::now();
    while Instant::now() < deadline {
        if Instant::now() >= next_ask {
            send_frames(pool, txq, &[&req]);
            next_ask = Instant::now() + Duration::from_millis(200);
        }
        for (who, m) in poll_arp(rxq, txq, table) {
            if who == target {
                return Ok(m);
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Err(format!(
        "no ARP reply or neighbour advertisement from {target} within {limit:?} (give --dut-mac instead?)"
    ))
}
