//! Sluice's counters on DPDK's telemetry socket: `dpdk-telemetry.py -f
//! <file-prefix>` then `/sluice/stats`, `/sluice/drops` or
//! `/sluice/worker,<id>`. The keys are the catalogue's names
//! ([`sluice_proto::figures`]): the same as `stats --json` and the metric
//! families; the IPv6 connection table's figures end in 6 (`connections6`).

use crate::config::MAX_PORTS;
use crate::counters::WorkerCounters;
use crossbeam_utils::CachePadded;
use sluice_core::DropReason;
use sluice_dpdk::telemetry;
use sluice_lb::{SharedStats, WorkerLbStats};
use sluice_proto::figures;
use std::sync::Arc;

/// One worker's counters as telemetry entries, named as the catalogue
/// ([`figures`]) names them, and its drops in total.
fn worker_entries(c: &WorkerCounters, lb: &WorkerLbStats) -> Vec<(String, u64)> {
    let stats = c.report(lb, MAX_PORTS);
    let mut v: Vec<(String, u64)> = figures::WORKER
        .iter()
        .map(|f| (f.name.to_string(), (f.get)(&stats)))
        .collect();
    for f in figures::CONNTRACK {
        v.push((f.name.to_string(), (f.get)(&stats.conntrack)));
        v.push((format!("{}6", f.name), (f.get)(&stats.conntrack6)));
    }
    v.push(("drops".into(), stats.drops.values().sum()));
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
