//! Status and statistics: what the ports and workers are, their counters,
//! and each worker's busy share and packet rate over the last seconds.

use super::Control;
use crate::lb::RATE_WINDOW;
use sluice_dpdk::{DpdkError, Eal};
use sluice_proto::{self as proto, ErrorCode, Reply, ReplyBody};
use std::collections::VecDeque;
use std::time::Instant;

/// One worker's (busy polls, idle polls, rx packets) at a sample.
type Sample = (u64, u64, u64);

/// Every worker's counters, sampled once a second.
#[derive(Default)]
pub(super) struct Samples {
    window: VecDeque<(Instant, Vec<Sample>)>,
}

impl Samples {
    fn push(&mut self, values: Vec<Sample>) {
        self.window.push_back((Instant::now(), values));
        while self.window.len() > RATE_WINDOW + 1 {
            self.window.pop_front();
        }
    }

    /// (busy share, rx packets/s) of worker `i` over the window.
    fn rates(&self, i: usize) -> (f64, f64) {
        let (Some((ta, a)), Some((tb, b))) = (self.window.front(), self.window.back()) else {
            return (0.0, 0.0);
        };
        let (Some(va), Some(vb)) = (a.get(i), b.get(i)) else {
            return (0.0, 0.0);
        };
        let busy = vb.0.saturating_sub(va.0) as f64;
        let idle = vb.1.saturating_sub(va.1) as f64;
        let share = if busy + idle > 0.0 {
            busy / (busy + idle)
        } else {
            0.0
        };
        let dt = tb.duration_since(*ta).as_secs_f64();
        let pps = if dt > 0.0 {
            vb.2.saturating_sub(va.2) as f64 / dt
        } else {
            0.0
        };
        (share, pps)
    }
}

impl Control<'_> {
    /// Samples the services' and the workers' counters for rates.
    pub(super) fn sample(&mut self) {
        self.lb.sample();
        let values = self
            .workers
            .iter()
            .map(|w| {
                let c = &w.counters;
                let rx = c.ports.iter().map(|p| p.rx_packets.get()).sum();
                (c.busy_polls.get(), c.idle_polls.get(), rx)
            })
            .collect();
        self.samples.push(values);
    }

    /// The daemon, its ports and its workers.
    pub(super) fn status(&self) -> proto::Status {
        proto::Status {
            version: env!("CARGO_PKG_VERSION").to_string(),
            dpdk_version: Eal::version(),
            pid: std::process::id(),
            uptime_secs: self.started.elapsed().as_secs(),
            control_lcore: self.main_lcore,
            ports: self.ports.entries.iter().map(port_status).collect(),
            workers: self
                .workers
                .iter()
                .enumerate()
                .map(|(id, w)| proto::WorkerStatus {
                    id,
                    lcore: w.lcore,
                    socket: w.socket,
                })
                .collect(),
            bgp: self.bgp_status(),
            sync: self.sync.as_ref().map(sync_status),
        }
    }

    /// The `stats` reply.
    pub(super) fn stats_reply(&self) -> Reply {
        match self.stats() {
            Ok(s) => Reply::ok(ReplyBody::Stats(s)),
            Err(e) => Reply::error(ErrorCode::Internal, e.to_string()),
        }
    }

    fn stats(&self) -> Result<proto::Stats, DpdkError> {
        let mut ports = Vec::new();
        for (i, p) in self.ports.entries.iter().enumerate() {
            let t = self.workers.iter().map(|w| w.counters.traffic(i)).sum();
            ports.push(port_stats(p, t)?);
        }
        let workers = (0..self.workers.len())
            .map(|id| self.worker_stats(id))
            .collect();
        Ok(proto::Stats { ports, workers })
    }

    fn worker_stats(&self, id: usize) -> proto::WorkerStats {
        let w = &self.workers[id];
        let lb = &self.lb.shared().workers[id];
        let (busy_share, rx_pps) = self.samples.rates(id);
        proto::WorkerStats {
            id,
            lcore: w.lcore,
            busy_share,
            rx_pps,
            ..w.counters.report(lb, self.ports.len())
        }
    }
}

fn port_status(p: &crate::inventory::PortEntry) -> proto::PortStatus {
    let link = p.port.link().ok();
    proto::PortStatus {
        name: p.name.clone(),
        port_id: p.port.id(),
        device: p.device.clone(),
        driver: p.driver.clone(),
        mac: p.mac.to_string(),
        link_up: link.map(|l| l.up).unwrap_or(false),
        speed_mbps: link.map(|l| l.speed_mbps).unwrap_or(0),
        addresses: p
            .addresses
            .iter()
            .map(|a| a.to_string())
            .chain(p.addresses6.iter().map(|a| a.to_string()))
            .collect(),
        rx_queues: p.queues,
        tx_queues: p.queues,
        rss: p.rss,
    }
}

fn port_stats(
    p: &crate::inventory::PortEntry,
    traffic: proto::Traffic,
) -> Result<proto::PortStats, DpdkError> {
    Ok(proto::PortStats {
        name: p.name.clone(),
        traffic,
        device: p.port.stats()?,
        xstats: p.port.xstats().unwrap_or_default().into_iter().collect(),
    })
}

/// What `status` shows of connection sync.
fn sync_status(s: &crate::sync::SyncThread) -> Box<proto::SyncStatus> {
    use std::sync::atomic::Ordering::Relaxed;
    let c = &s.counters;
    Box::new(proto::SyncStatus {
        listen: s.config.listen.to_string(),
        peers: s.config.peers.iter().map(|p| p.to_string()).collect(),
        sender: s.sender,
        datagrams_sent: c.datagrams_sent.load(Relaxed),
        conns_sent: c.conns_sent.load(Relaxed),
        rate_limited: c.rate_limited.load(Relaxed),
        send_errors: c.send_errors.load(Relaxed),
        datagrams_received: c.datagrams_received.load(Relaxed),
        conns_received: c.conns_received.load(Relaxed),
        rejected_malformed: c.rejected_malformed.load(Relaxed),
        rejected_auth: c.rejected_auth.load(Relaxed),
        rejected_replay: c.rejected_replay.load(Relaxed),
        queue_full: c.queue_full.load(Relaxed),
        requests_received: c.requests_received.load(Relaxed),
    })
}
