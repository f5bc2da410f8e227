//! Launching the workers: one per configured lcore, each with its queues
//! on every port, its own connection table (with a random hash seed,
//! allocated on the worker's lcore) and a reader of the configuration
//! snapshots; and stopping them again.

use super::AppError;
use crate::config::Config;
use crate::counters::WorkerCounters;
use crate::inventory::WorkerEntry;
use crate::snapshot::Publisher;
use crate::worker::{HandOffs, PollConfig, PortQueues, Rings, Shared, Worker};
use sluice_core::neigh::NudConfig;
use sluice_dpdk::{Eal, LcoreHandle, Mempool, Scope};
use sluice_lb::{Forwarder, ForwarderConfig, SharedStats, Snapshot};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tracing::{error, info, warn};

/// The running workers of one scope.
pub(crate) struct Crew<'scope> {
    pub(crate) entries: Vec<WorkerEntry>,
    handles: Vec<LcoreHandle<'scope>>,
    stop: Arc<AtomicBool>,
}

/// What every worker is started with besides its queues.
pub(crate) struct Common<'a> {
    pub(crate) eal: &'a Eal,
    pub(crate) cfg: &'a Config,
    pub(crate) pool: &'a Arc<Mempool>,
    pub(crate) rings: &'a Arc<Rings>,
    pub(crate) publisher: &'a Arc<Publisher<Snapshot>>,
    pub(crate) stats: &'a Arc<SharedStats>,
    pub(crate) stop: &'a Arc<AtomicBool>,
}

/// Starts one worker per configured lcore; worker `i` polls `queues[i]`.
pub(crate) fn launch<'scope>(
    scope: &'scope Scope<'scope, '_>,
    common: &Common<'_>,
    queues: Vec<Vec<PortQueues<'scope>>>,
) -> Result<Crew<'scope>, AppError> {
    let cfg = common.cfg;
    let mut crew = Crew {
        entries: Vec::new(),
        handles: Vec::new(),
        stop: common.stop.clone(),
    };
    let handoffs = HandOffs::for_workers(cfg.dataplane.workers.len());
    for (id, ((lcore, queues), handoffs)) in cfg
        .dataplane
        .workers
        .iter()
        .zip(queues)
        .zip(handoffs)
        .enumerate()
    {
        let counters = Arc::new(WorkerCounters::new());
        let shared = Shared {
            counters: counters.clone(),
            rings: common.rings.clone(),
            pool: common.pool.clone(),
            stop: common.stop.clone(),
        };
        let config = forwarder_config(cfg, id)?;
        let (stats, reader, poll) = (
            common.stats.clone(),
            common.publisher.reader(id),
            poll_config(cfg),
        );
        crew.handles.push(scope.launch(*lcore, move || {
            // Built here, on the worker's own lcore, so that the kernel's
            // first-touch policy puts its connection table on that core's
            // NUMA node.
            let forwarder = match Forwarder::new(&config, stats) {
                Ok(f) => f,
                Err(e) => {
                    // Not expected: the configuration was checked before.
                    error!(worker = id, "no forwarder: {e}");
                    return 1;
                }
            };
            Worker::new(id, queues, shared, reader, forwarder, handoffs, poll).run()
        })?);
        info!(worker = id, lcore, "worker started");
        crew.entries.push(WorkerEntry {
            lcore: *lcore,
            socket: common.eal.lcore_socket(*lcore),
            counters,
        });
    }
    Ok(crew)
}

impl Crew<'_> {
    /// Stops every worker (each finishes its poll and frees what it holds)
    /// and waits for it.
    pub(crate) fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        for (i, h) in self.handles.into_iter().enumerate() {
            let rc = h.join();
            if rc != 0 {
                warn!(worker = i, rc, "worker exited with an error");
            }
        }
    }
}

fn poll_config(cfg: &Config) -> PollConfig {
    PollConfig {
        burst: cfg.dataplane.burst as usize,
        idle_polls_before_sleep: cfg.dataplane.idle_polls_before_sleep,
        idle_sleep: Duration::from_micros(cfg.dataplane.idle_sleep_us as u64),
    }
}

/// The settings of worker `id`'s forwarder, with its own connection
/// table's (checked here, so that building it on the lcore cannot fail).
fn forwarder_config(cfg: &Config, id: usize) -> Result<ForwarderConfig, AppError> {
    let d = &cfg.dataplane;
    let table = sluice_conntrack::TableConfig {
        capacity: d.connections,
        template_capacity: (d.connections / 4).max(1024),
        // Unpredictable, so that traffic cannot be crafted to collide in
        // the connection indexes.
        hash_seed: random_seed()?,
        timeouts: cfg.timeouts,
        ..Default::default()
    };
    let mut secret = [0u8; 16];
    getrandom::fill(&mut secret)
        .map_err(|e| AppError::Other(format!("no random SYN-cookie key from the OS: {e}")))?;
    table
        .validate()
        .map_err(|e| AppError::Other(format!("connection table: {e}")))?;
    let table6 = sluice_conntrack::TableConfig {
        capacity: d.connections6,
        template_capacity: (d.connections6 / 4).max(1024),
        hash_seed: random_seed()?,
        ..table
    };
    table6
        .validate()
        .map_err(|e| AppError::Other(format!("IPv6 connection table: {e}")))?;
    Ok(ForwarderConfig {
        syn_proxy: sluice_lb::synproxy::SynProxyConfig {
            threshold: d.syn_recv_threshold,
            secret,
        },
        worker: id,
        workers: d.workers.len(),
        local_ports: d.local_ports.clone(),
        table,
        table6,
        neighbours: 4096,
        neighbour: NudConfig {
            reachable_ms: d.neighbour_reachable_secs as u64 * 1000,
            ..NudConfig::default()
        },
    })
}

/// 64 bits from the operating system's random source.
fn random_seed() -> Result<u64, AppError> {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b)
        .map_err(|e| AppError::Other(format!("no random hash seed from the OS: {e}")))?;
    Ok(u64::from_ne_bytes(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_seeds_are_unpredictable() {
        // Two workers of one process got seeds a fixed formula of the PID
        // away from each other; now each is random.
        let seeds: std::collections::HashSet<u64> =
            (0..16).map(|_| random_seed().unwrap()).collect();
        assert_eq!(seeds.len(), 16);
    }
}
