//! The appliance: brings up the EAL, the mempool, the ports and the
//! workers from a [`Config`], serves the control socket on the main lcore
//! until asked to stop, then tears everything down in order and proves that
//! every mbuf came back.
//!
//! [`run`] reads top to bottom as the appliance's life: bind the control
//! socket, start DPDK ([`ports`], [`kernel`]), load the services, launch
//! the [`workers`] in an lcore scope, start the servers, hand over to the
//! control thread, then stop and count the mbufs ([`leftovers`] cleans up
//! what DPDK leaves behind).

mod kernel;
mod leftovers;
mod ports;
mod workers;

use crate::config::Config;
use crate::control::{server, Control, ControlServer, Parts, Signals};
use crate::inventory::{Ports, WorkerEntry};
use crate::lb::LbControl;
use crate::metrics::MetricsServer;
use crate::notify::Notifier;
use crate::snapshot::Publisher;
use crate::worker::Rings;
use leftovers::Leftovers;
use sluice_dpdk::{lcore, Eal, Mempool};
use sluice_lb::{SharedStats, Snapshot};
use std::os::unix::net::UnixListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tracing::{error, info, warn};

/// Why the daemon failed.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Control socket problem.
    #[error("control socket {path}: {source}")]
    Socket {
        /// Its path.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// DPDK refused something.
    #[error(transparent)]
    Dpdk(#[from] sluice_dpdk::DpdkError),
    /// Anything else.
    #[error("{0}")]
    Other(String),
}

/// Runs the appliance until SIGINT/SIGTERM or a `shutdown` request.
/// Returns the number of mbufs that did not come back (0 on a clean stop).
pub fn run(cfg: Config, stop: Arc<AtomicBool>, reload: Arc<AtomicBool>) -> Result<u32, AppError> {
    let started = Instant::now();
    let notifier = Notifier::from_env();
    // The socket comes first: a second daemon fails here, before touching
    // DPDK or the devices of the first.
    let listener = server::bind(
        &cfg.control.socket,
        cfg.control.mode,
        cfg.control.group.as_ref().map(|g| g.1),
    )
    .map_err(|e| socket_error(&cfg, e))?;
    let args = cfg.eal_args();
    info!(args = %args.join(" "), "initialising the EAL");
    let eal = Eal::init("sluice", &args)?;
    let leftovers = Leftovers::of(&cfg, &eal);
    let pool = Arc::new(mempool(&eal, &cfg)?);
    let mut ports = Ports::open(&eal, &pool, &cfg)?;
    let nworkers = cfg.dataplane.workers.len();
    let stats = SharedStats::new(nworkers);
    let (lb, first) = load_services(&cfg, &ports, &stats)?;
    let publisher = Publisher::new(first, nworkers);
    let rings = Rings::new(nworkers, cfg.sync.is_some());
    let halt = Arc::new(AtomicBool::new(false));
    let common = workers::Common {
        eal: &eal,
        cfg: &cfg,
        pool: &pool,
        rings: &rings,
        publisher: &publisher,
        stats: &stats,
        stop: &halt,
    };
    lcore::scope(&eal, |scope| -> Result<(), AppError> {
        // Whatever happens in here, the workers stop before the scope
        // waits for them.
        let _halt = StopOnDrop(&halt);
        let crew = workers::launch(scope, &common, ports.queues_by_worker(nworkers)?)?;
        register_dpdk_services(&eal, &crew.entries, &stats);
        let signals = Signals { stop, reload };
        serve(
            listener,
            &cfg,
            &signals,
            Parts {
                config: cfg.clone(),
                lb,
                publisher: &publisher,
                rings: &rings,
                ports: &ports,
                workers: &crew.entries,
                started,
                main_lcore: eal.main_lcore(),
                notifier: &notifier,
                bgp: match &cfg.bgp {
                    Some(b) => Some(
                        crate::control::Announcer::start(b.clone(), crew.entries.len()).map_err(
                            |e| AppError::Other(format!("starting the BGP speaker: {e}")),
                        )?,
                    ),
                    None => None,
                },
                sync: match &cfg.sync {
                    Some(s) => Some(
                        crate::sync::SyncThread::start(
                            s.clone(),
                            rings.clone(),
                            crate::sync::sender_id(s.listen),
                        )
                        .map_err(|e| AppError::Other(format!("starting connection sync: {e}")))?,
                    ),
                    None => None,
                },
            },
        )?;
        crew.stop();
        Ok(())
    })?;
    drop(publisher);
    drop(rings);
    ports.stop();
    drop(ports);
    let leaked = count_leaked(&pool);
    drop(pool);
    drop(eal);
    if leaked == 0 {
        leftovers.remove();
    }
    Ok(leaked)
}

/// Sets the workers' stop flag when dropped.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

fn socket_error(cfg: &Config, source: std::io::Error) -> AppError {
    AppError::Socket {
        path: cfg.control.socket.display().to_string(),
        source,
    }
}

fn mempool(eal: &Eal, cfg: &Config) -> Result<Mempool, AppError> {
    let socket = eal.lcore_socket(eal.main_lcore()) as i32;
    let d = &cfg.dataplane;
    Ok(Mempool::new(
        eal,
        "sluice_mbufs",
        d.mempool_size,
        d.mempool_cache,
        socket,
    )?)
}

/// The control copy of the configured services and the first snapshot.
fn load_services(
    cfg: &Config,
    ports: &Ports,
    stats: &Arc<SharedStats>,
) -> Result<(LbControl, Snapshot), AppError> {
    let routes = ports.routes(cfg)?;
    let routes6 = ports.routes6(cfg)?;
    let workers = cfg.dataplane.workers.len();
    let mut lb = LbControl::new(ports.bases(), routes, stats.clone(), workers)
        .map_err(|e| AppError::Other(format!("cannot start the health-check threads: {e}")))?
        .with_routes6(routes6)
        .with_tunnel(cfg.tunnel)
        .with_local_ports(cfg.dataplane.local_ports.clone());
    for spec in &cfg.services {
        let key = spec.key();
        lb.service_add(spec.clone())
            .map_err(|e| AppError::Other(format!("service {key}: {e}")))?;
    }
    lb.sync_health();
    let first = lb.snapshot().map_err(|e| AppError::Other(e.to_string()))?;
    Ok((lb, first))
}

/// Starts the control socket, the metrics endpoint and DPDK's telemetry
/// and capture, and runs the control thread until it is told to stop.
fn serve(
    listener: UnixListener,
    cfg: &Config,
    signals: &Signals,
    parts: Parts<'_>,
) -> Result<(), AppError> {
    let (requests_tx, requests) = server::channel();
    let access = server::Access {
        group: cfg.control.group.as_ref().map(|g| g.1),
    };
    let socket = ControlServer::start(
        listener,
        cfg.control.socket.clone(),
        requests_tx.clone(),
        access,
    )
    .map_err(|e| socket_error(cfg, e))?;
    server::announce(&cfg.control.socket, cfg.control.mode);
    let metrics = match cfg.metrics {
        Some(addr) => Some(
            MetricsServer::start(addr, requests_tx.clone())
                .map_err(|e| AppError::Other(format!("metrics endpoint {addr}: {e}")))?,
        ),
        None => None,
    };
    drop(requests_tx);
    info!(
        workers = parts.workers.len(),
        ports = parts.ports.len(),
        "sluice is running"
    );
    let notifier = parts.notifier;
    let mut control = Control::new(parts);
    control.announce_ready();
    control.serve(&requests, signals);
    notifier.stopping();
    drop(metrics);
    drop(socket);
    Ok(())
}

/// Sluice's commands on DPDK's telemetry socket, and `dpdk-dumpcap`.
fn register_dpdk_services(eal: &Eal, workers: &[WorkerEntry], stats: &Arc<SharedStats>) {
    let counters = workers.iter().map(|w| w.counters.clone()).collect();
    if let Err(e) = crate::telemetry::register(counters, stats.clone()) {
        warn!("telemetry commands not registered: {e}");
    }
    if let Err(e) = sluice_dpdk::pdump::init(eal) {
        warn!("packet capture (dpdk-dumpcap) not available: {e}");
    }
}

/// Mbufs still out of the pool once everything has stopped.
fn count_leaked(pool: &Mempool) -> u32 {
    let leaked = pool.in_use();
    if leaked == 0 {
        info!(mbufs = pool.size(), "every mbuf returned to the pool");
    } else {
        error!(leaked, "mbufs did not return to the pool");
    }
    leaked
}
