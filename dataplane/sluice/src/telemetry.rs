//! Sluice's counters on DPDK's telemetry socket: `dpdk-telemetry.py -f
//! <file-prefix>` then `/sluice/stats`, `/sluice/drops` or
//! `/sluice/worker,<id>`.

use crate::counters::WorkerCounters;
use crossbeam_utils::CachePadded;
use sluice_core::DropReason;
use sluice_dpdk::telemetry;
use sluice_lb::SharedStats;
use std::sync::Arc;

/// One worker's counters as telemetry entries.
fn worker_entries(c: &WorkerCounters, lb: &sluice_lb::WorkerLbStats) -> Vec<(String, u64)> {
    let mut v = Vec::new();
    let (mut rxp, mut rxb, mut txp, mut txb) = (0, 0, 0, 0);
    for p in c.ports.iter() {
        rxp += p.rx_packets.get();
        rxb += p.rx_bytes.get();
        txp += p.tx_packets.get();
        txb += p.tx_bytes.get();
    }
    v.push(("rx_packets".into(), rxp));
    v.push(("rx_bytes".into(), rxb));
    v.push(("tx_packets".into(), txp));
    v.push(("tx_bytes".into(), txb));
    v.push(("drops".into(), c.drops.iter().map(|d| d.get()).sum()));
    v.push((
        "arp_requests_answered".into(),
        c.arp_requests_answered.get(),
    ));
    v.push(("icmp_echo_answered".into(), c.icmp_echo_answered.get()));
    v.push(("busy_polls".into(), c.busy_polls.get()));
    v.push(("idle_polls".into(), c.idle_polls.get()));
    v.push(("busy_cycles".into(), c.busy_cycles.get()));
    v.push(("connections".into(), c.ct_occupancy.get()));
    v.push(("connection_capacity".into(), c.ct_capacity.get()));
    v.push(("connection_inserts".into(), c.ct_inserts.get()));
    v.push(("connection_expiries".into(), c.ct_expiries.get()));
    v.push(("handoff_out".into(), lb.handoff_out.get()));
    v.push(("handoff_in".into(), lb.handoff_in.get()));
    v.push(("stateless_forwards".into(), lb.stateless_forwards.get()));
    v
}

/// Registers Sluice's telemetry commands.
pub fn register(
    workers: Vec<Arc<CachePadded<WorkerCounters>>>,
    shared: Arc<SharedStats>,
) -> sluice_dpdk::Result<()> {
    let (w1, s1) = (workers.clone(), shared.clone());
    telemetry::register(
        "/sluice/stats",
        "Sluice totals over all workers: packets, bytes, drops, connections",
        Box::new(move |_| {
            let mut total: Vec<(String, u64)> = Vec::new();
            for (i, w) in w1.iter().enumerate() {
                for (k, v) in worker_entries(w, &s1.workers[i]) {
                    match total.iter_mut().find(|(n, _)| *n == k) {
                        Some(e) => e.1 += v,
                        None => total.push((k, v)),
                    }
                }
            }
            total.push(("workers".into(), w1.len() as u64));
            total
        }),
    )?;
    let w2 = workers.clone();
    telemetry::register(
        "/sluice/drops",
        "Sluice drops by reason, summed over workers",
        Box::new(move |_| {
            DropReason::ALL
                .iter()
                .map(|r| {
                    (
                        r.name().to_string(),
                        w2.iter().map(|w| w.drops[r.index()].get()).sum(),
                    )
                })
                .collect()
        }),
    )?;
    telemetry::register(
        "/sluice/worker",
        "One Sluice worker's counters. Parameter: worker id",
        Box::new(move |p| {
            let i: usize = p.trim().parse().unwrap_or(usize::MAX);
            match workers.get(i) {
                Some(w) => worker_entries(w, &shared.workers[i]),
                None => Vec::new(),
            }
        }),
    )
}
