//! The appliance: brings up the EAL, the mempool, the ports and the
//! workers from a [`Config`], serves the control socket on the main lcore
//! until asked to stop, then tears everything down in order and proves that
//! every mbuf came back.

use crate::config::Config;
use crate::control::{server, ControlServer, Pending};
use crate::counters::WorkerCounters;
use crate::lb::LbControl;
use crate::snapshot::Publisher;
use crate::worker::{PollConfig, PortQueues, Rings, Shared as WorkerShared, Worker};
use crossbeam_utils::CachePadded;
use sluice_core::neigh::NudConfig;
use sluice_core::{DropReason, MacAddr};
use sluice_dpdk::{lcore, Eal, Mempool, Port, PortConfig as DevPortConfig};
use sluice_lb::{Forwarder, ForwarderConfig, PortBase, RouteTable, SharedStats, Snapshot};
use sluice_proto::{self as proto, Command, ErrorCode, Reply, ReplyBody};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::{error, info, warn};

/// A port as the control thread knows it.
struct PortEntry {
    port: Port,
    name: String,
    device: String,
    driver: String,
    mac: MacAddr,
    addresses: Vec<String>,
    queues: u16,
    rss: bool,
}

struct WorkerEntry {
    lcore: u32,
    socket: u32,
    counters: Arc<CachePadded<WorkerCounters>>,
}

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
pub fn run(
    cfg: Config,
    signal_stop: Arc<AtomicBool>,
    signal_reload: Arc<AtomicBool>,
) -> Result<u32, AppError> {
    let started = Instant::now();
    let sock_err = |source| AppError::Socket {
        path: cfg.control.socket.display().to_string(),
        source,
    };
    // The socket comes first: a second daemon fails here, before touching
    // DPDK or the devices of the first.
    let listener = server::bind(
        &cfg.control.socket,
        cfg.control.mode,
        cfg.control.group.as_ref().map(|g| g.1),
    )
    .map_err(sock_err)?;

    let cfg_no_huge = cfg.eal.no_huge;
    let cfg_huge_unlink = cfg.eal.huge_unlink;
    let file_prefix = cfg.eal.file_prefix.clone().unwrap_or_else(|| "rte".into());
    let args = cfg.eal_args();
    info!(args = %args.join(" "), "initialising the EAL");
    let eal = Eal::init("sluice", &args)?;
    let main_lcore = eal.main_lcore();
    let runtime_dir = eal.runtime_dir();
    let socket = eal.lcore_socket(main_lcore) as i32;
    let pool = Arc::new(Mempool::new(
        &eal,
        "sluice_mbufs",
        cfg.dataplane.mempool_size,
        cfg.dataplane.mempool_cache,
        socket,
    )?);

    let nworkers = cfg.dataplane.workers.len();
    let mut ports = Vec::new();
    let mut queues: Vec<Vec<(sluice_dpdk::RxQueue, sluice_dpdk::TxQueue)>> =
        (0..nworkers).map(|_| Vec::new()).collect();
    type KernelQueues = Option<(sluice_dpdk::RxQueue, sluice_dpdk::TxQueue)>;
    let mut kqueues: Vec<Vec<KernelQueues>> = (0..nworkers).map(|_| Vec::new()).collect();
    let mut taps: Vec<Port> = Vec::new();
    let mut bases = Vec::new();
    for pc in &cfg.ports {
        let mut port = Port::open(&eal, pc.device.port_name())?;
        let info = port.info()?;
        let (rxq, txq, rss) = port.configure(
            &DevPortConfig {
                rx_queues: nworkers as u16,
                tx_queues: nworkers as u16,
                rx_desc: cfg.dataplane.rx_desc,
                tx_desc: cfg.dataplane.tx_desc,
                promiscuous: pc.promiscuous,
            },
            &pool,
        )?;
        port.start()?;
        let mac = MacAddr(port.mac()?);
        for (w, (r, t)) in rxq.into_iter().zip(txq).enumerate() {
            queues[w].push((r, t));
        }
        match &pc.kernel_interface {
            None => {
                for k in kqueues.iter_mut() {
                    k.push(None);
                }
            }
            Some(ifname) => {
                let tap = open_kernel_interface(
                    &eal,
                    &pool,
                    taps.len(),
                    ifname,
                    mac,
                    &pc.addresses,
                    nworkers as u16,
                    &cfg,
                )?;
                let (tap, rxq, txq) = tap;
                for (w, (r, t)) in rxq.into_iter().zip(txq).enumerate() {
                    kqueues[w].push(Some((r, t)));
                }
                taps.push(tap);
            }
        }
        bases.push(PortBase {
            mac,
            addresses: pc.addresses.clone(),
            kernel: pc.kernel_interface.is_some(),
        });
        info!(port = %pc.name, device = %pc.device.describe(), driver = %info.driver, %mac, rss, "port started");
        ports.push(PortEntry {
            port,
            name: pc.name.clone(),
            device: pc.device.describe().to_string(),
            driver: info.driver,
            mac,
            addresses: pc.addresses.iter().map(|a| a.to_string()).collect(),
            queues: nworkers as u16,
            rss,
        });
    }

    let connected: Vec<_> = cfg
        .ports
        .iter()
        .enumerate()
        .flat_map(|(i, p)| p.addresses.iter().map(move |a| (i, *a)))
        .collect();
    let statics: Vec<_> = cfg.routes.iter().map(|r| (r.prefix, r.via)).collect();
    let routes = RouteTable::new(&connected, &statics, cfg.gateway).map_err(AppError::Other)?;
    let shared = SharedStats::new(nworkers);
    let mut lb = LbControl::new(bases, routes, shared.clone(), nworkers)
        .map_err(|e| AppError::Other(format!("cannot start the health-check threads: {e}")))?;
    for spec in &cfg.services {
        let key = spec.key();
        lb.service_add(spec.clone())
            .map_err(|e| AppError::Other(format!("service {key}: {e}")))?;
    }
    lb.sync_health();
    let first: Snapshot = lb.snapshot().map_err(AppError::Other)?;
    let publisher = Publisher::new(first, nworkers);
    let rings = Rings::new(nworkers);
    let stop = Arc::new(AtomicBool::new(false));
    let poll = PollConfig {
        burst: cfg.dataplane.burst as usize,
        idle_polls_before_sleep: cfg.dataplane.idle_polls_before_sleep,
        idle_sleep: Duration::from_micros(cfg.dataplane.idle_sleep_us as u64),
    };
    let mut workers = Vec::new();
    let mut handles = Vec::new();
    let mut kqueues = kqueues.into_iter();
    for (id, (lc, qs)) in cfg.dataplane.workers.iter().zip(queues).enumerate() {
        let kq = kqueues.next().unwrap_or_default();
        let counters = Arc::new(WorkerCounters::new());
        let port_queues = qs
            .into_iter()
            .zip(kq)
            .map(|((rx, tx), kernel)| PortQueues { rx, tx, kernel })
            .collect();
        let table = sluice_conntrack::TableConfig {
            capacity: cfg.dataplane.connections,
            template_capacity: (cfg.dataplane.connections / 4).max(1024),
            // Unpredictable, so that traffic cannot be crafted to collide
            // in the connection indexes.
            hash_seed: random_seed()?,
            timeouts: cfg.timeouts,
            ..Default::default()
        };
        let forwarder = Forwarder::new(
            &ForwarderConfig {
                worker: id,
                workers: nworkers,
                table,
                neighbours: 4096,
                neighbour: NudConfig {
                    reachable_ms: cfg.dataplane.neighbour_reachable_secs as u64 * 1000,
                    ..NudConfig::default()
                },
            },
            shared.clone(),
        )
        .map_err(AppError::Other)?;
        let w = Worker::new(
            id,
            port_queues,
            WorkerShared {
                counters: counters.clone(),
                rings: rings.clone(),
                pool: pool.clone(),
                stop: stop.clone(),
            },
            publisher.reader(id),
            forwarder,
            poll,
        );
        let h = lcore::launch(&eal, *lc, move || w.run())?;
        info!(worker = id, lcore = lc, "worker started");
        workers.push(WorkerEntry {
            lcore: *lc,
            socket: eal.lcore_socket(*lc),
            counters,
        });
        handles.push(h);
    }

    if let Err(e) = crate::telemetry::register(
        workers.iter().map(|w| w.counters.clone()).collect(),
        shared.clone(),
    ) {
        warn!("telemetry commands not registered: {e}");
    }
    if let Err(e) = sluice_dpdk::pdump::init(&eal) {
        warn!("packet capture (dpdk-dumpcap) not available: {e}");
    }
    let (requests_tx, requests) = server::channel();
    let access = server::Access {
        group: cfg.control.group.as_ref().map(|g| g.1),
    };
    let server = ControlServer::start(
        listener,
        cfg.control.socket.clone(),
        requests_tx.clone(),
        access,
    )
    .map_err(sock_err)?;
    server::announce(&cfg.control.socket, cfg.control.mode);
    let metrics = match cfg.metrics {
        Some(addr) => Some(
            crate::metrics::MetricsServer::start(addr, requests_tx.clone())
                .map_err(|e| AppError::Other(format!("metrics endpoint {addr}: {e}")))?,
        ),
        None => None,
    };
    drop(requests_tx);
    info!(workers = nworkers, ports = ports.len(), "sluice is running");

    let mut ctx = Control {
        ports: &ports,
        workers: &workers,
        started,
        main_lcore,
        lb,
        publisher: &publisher,
        peer: server::Peer::INTERNAL,
        worker_samples: std::collections::VecDeque::new(),
        config: cfg.clone(),
        rings: rings.clone(),
    };
    let mut last_sample = Instant::now() - Duration::from_secs(10);
    let mut last_overload = Instant::now();
    loop {
        if signal_stop.load(Ordering::Relaxed) {
            info!("signal received, stopping");
            break;
        }
        match requests.recv_timeout(Duration::from_millis(100)) {
            Ok(Pending {
                command,
                peer,
                reply,
            }) => {
                let stopping = command == Command::Shutdown;
                let _ = reply.send(ctx.answer(&command, peer));
                if stopping {
                    info!("shutdown requested over the control socket");
                    break;
                }
            }
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
        }
        publisher.reclaim();
        if signal_reload.swap(false, Ordering::Relaxed) {
            info!("SIGHUP: reloading {}", ctx.config.file.display());
            let r = ctx.answer(&Command::Reload, server::Peer::INTERNAL);
            if !r.ok {
                if let Some(e) = r.error {
                    warn!("reload refused: {}", e.message);
                }
            }
        }
        if last_sample.elapsed() >= Duration::from_secs(1) {
            last_sample = Instant::now();
            ctx.sample();
        }
        if last_overload.elapsed() >= Duration::from_millis(100) {
            last_overload = Instant::now();
            ctx.lb.update_overload();
            if let Some((snap, what)) = ctx.lb.health_tick() {
                let epoch = publisher.publish(snap);
                info!(change = %what, epoch, by = "health", "configuration changed");
            }
        }
    }
    drop(ctx);

    // Teardown: workers finish their burst and free what they hold, then
    // ports stop and close (drivers return their mbufs), then the pool is
    // checked.
    stop.store(true, Ordering::SeqCst);
    for (i, h) in handles.into_iter().enumerate() {
        let rc = h.join();
        if rc != 0 {
            warn!(worker = i, rc, "worker exited with an error");
        }
    }
    drop(metrics);
    drop(server);
    drop(publisher);
    drop(rings);
    for mut t in taps {
        if let Err(e) = t.stop() {
            error!("kernel interface stop failed: {e}");
        }
    }
    for mut p in ports {
        if let Err(e) = p.port.stop() {
            error!(port = %p.name, "stop failed: {e}");
        }
        drop(p);
    }
    let leaked = pool.in_use();
    if leaked == 0 {
        info!(mbufs = pool.size(), "every mbuf returned to the pool");
    } else {
        error!(leaked, "mbufs did not return to the pool");
    }
    drop(pool);
    drop(eal);
    // The EAL leaves its runtime directory (config, memory maps, sockets)
    // behind; it belongs to this process alone (unique file prefix), so it
    // goes too.
    if leaked == 0 {
        if !cfg_no_huge && !cfg_huge_unlink {
            remove_hugepage_files(&file_prefix);
        }
        if let Err(e) = std::fs::remove_dir_all(&runtime_dir) {
            warn!(dir = %runtime_dir.display(), "cannot remove the EAL runtime directory: {e}");
        }
    }
    Ok(leaked)
}

/// Per-worker poll and packet counts sampled once a second.
struct WorkerSample {
    at: Instant,
    /// (busy polls, idle polls, rx packets) per worker.
    values: Vec<(u64, u64, u64)>,
}

struct Control<'a> {
    config: Config,
    rings: Arc<Rings>,
    worker_samples: std::collections::VecDeque<WorkerSample>,
    ports: &'a [PortEntry],
    workers: &'a [WorkerEntry],
    started: Instant,
    main_lcore: u32,
    lb: LbControl,
    publisher: &'a Publisher<Snapshot>,
    peer: server::Peer,
}

impl Control<'_> {
    fn sample(&mut self) {
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
        self.worker_samples.push_back(WorkerSample {
            at: Instant::now(),
            values,
        });
        while self.worker_samples.len() > crate::lb::RATE_WINDOW + 1 {
            self.worker_samples.pop_front();
        }
    }

    /// (busy share, rx packets/s) of worker `i` over the window.
    fn worker_rates(&self, i: usize) -> (f64, f64) {
        let (Some(a), Some(b)) = (self.worker_samples.front(), self.worker_samples.back()) else {
            return (0.0, 0.0);
        };
        let dt = b.at.duration_since(a.at).as_secs_f64();
        let (Some(va), Some(vb)) = (a.values.get(i), b.values.get(i)) else {
            return (0.0, 0.0);
        };
        let busy = vb.0.saturating_sub(va.0) as f64;
        let idle = vb.1.saturating_sub(va.1) as f64;
        let share = if busy + idle > 0.0 {
            busy / (busy + idle)
        } else {
            0.0
        };
        let pps = if dt > 0.0 {
            vb.2.saturating_sub(va.2) as f64 / dt
        } else {
            0.0
        };
        (share, pps)
    }

    /// Publishes a change and answers only once every worker runs it, so
    /// the very next packet after the reply sees it (a wedged worker is
    /// waited for at most [`PICKUP_WAIT`], and named in the reply).
    fn apply(&mut self, what: String, r: Result<Snapshot, String>) -> Reply {
        let peer = self.peer;
        match r {
            Ok(snap) => {
                let epoch = self.publisher.publish(snap);
                let lagging = self.publisher.wait_for(epoch, PICKUP_WAIT);
                self.lb.sync_health();
                info!(change = %what, epoch, uid = peer.uid, pid = peer.pid, by = %peer, "configuration changed");
                let message = if lagging.is_empty() {
                    what
                } else {
                    warn!(epoch, workers = ?lagging, "workers have not picked up the change");
                    format!("{what} (not yet picked up by workers {lagging:?})")
                };
                Reply::ok(ReplyBody::Applied(proto::Applied { message, epoch }))
            }
            Err(e) => {
                warn!(change = %what, uid = peer.uid, pid = peer.pid, by = %peer, "change refused: {e}");
                Reply::error(ErrorCode::Refused, e)
            }
        }
    }

    /// Applies the services of `new` (reload, restore) if its other
    /// sections match the running configuration.
    fn replace_config(&mut self, mut new: Config, what: &str) -> Reply {
        let diff = self.config.static_differences(&new);
        if !diff.is_empty() {
            let msg = format!(
                "{what}: {} changed; only [[service]] sections apply without a restart",
                diff.join(", ")
            );
            warn!(uid = self.peer.uid, by = %self.peer, "{msg}");
            return Reply::error(ErrorCode::Refused, msg);
        }
        match self.lb.replace(&new.services) {
            Ok((snap, summary)) => {
                new.file = self.config.file.clone();
                self.config = new;
                self.apply(format!("{what}: {summary}"), Ok(snap))
            }
            Err(e) => self.apply(what.to_string(), Err(e)),
        }
    }

    /// Asks every worker for its matching connections and merges them.
    fn conn_list(&self, filter: &proto::ConnFilter) -> Reply {
        use crate::conn_list::{info, limit, ConnQuery};
        let limit = limit(filter);
        let mut all = Vec::new();
        let mut truncated = false;
        let mut waiting = Vec::new();
        for (i, q) in self.rings.queries.iter().enumerate() {
            let (tx, rx) = crossbeam_channel::bounded(1);
            if q.push(ConnQuery::new(filter.clone(), tx)).is_err() {
                return Reply::error(
                    ErrorCode::Internal,
                    format!("worker {i} is busy with other queries"),
                );
            }
            waiting.push((i, rx));
        }
        for (i, rx) in waiting {
            match rx.recv_timeout(Duration::from_secs(5)) {
                Ok((found, more, now)) => {
                    truncated |= more;
                    all.extend(found.iter().map(|c| info(c, i, now)));
                }
                Err(_) => {
                    return Reply::error(ErrorCode::Internal, format!("worker {i} did not answer"))
                }
            }
        }
        if all.len() > limit {
            all.truncate(limit);
            truncated = true;
        }
        Reply::ok(ReplyBody::Connections(proto::ConnList {
            connections: all,
            truncated,
        }))
    }

    fn answer(&mut self, c: &Command, peer: server::Peer) -> Reply {
        self.peer = peer;
        match c {
            Command::ServiceAdd { service } => {
                let what = format!("service add {}", service.key());
                let r = self.lb.service_add(service.clone());
                self.apply(what, r)
            }
            Command::ServiceEdit { service } => {
                let what = format!("service edit {}", service.key());
                let r = self.lb.service_edit(service);
                self.apply(what, r)
            }
            Command::ServiceDel { key } => {
                let what = format!("service del {key}");
                let r = self.lb.service_del(key);
                self.apply(what, r)
            }
            Command::RealAdd { service, real } => {
                let what = format!(
                    "real add {service} {}:{} weight {} {}",
                    real.ip, real.port, real.weight, real.forward
                );
                let r = self.lb.real_add(service, real.clone());
                self.apply(what, r)
            }
            Command::RealEdit { service, real } => {
                let what = format!(
                    "real edit {service} {}:{} {}",
                    real.ip,
                    real.port,
                    real.describe()
                );
                let r = self.lb.real_edit(service, real);
                self.apply(what, r)
            }
            Command::RealDrain {
                service,
                ip,
                port,
                deadline_secs,
            } => {
                let what = format!("real drain {service} {ip}:{port} deadline {deadline_secs}s");
                let r = self.lb.real_drain(service, *ip, *port, *deadline_secs);
                self.apply(what, r)
            }
            Command::RealDel { service, ip, port } => {
                let what = format!("real del {service} {ip}:{port}");
                let r = self.lb.real_del(service, *ip, *port);
                self.apply(what, r)
            }
            Command::Zero { service } => match self.lb.zero(service.as_ref()) {
                Ok(m) => {
                    info!(uid = peer.uid, by = %peer, "{m}");
                    Reply::ok(ReplyBody::Applied(proto::Applied {
                        message: m,
                        epoch: self.publisher.epoch(),
                    }))
                }
                Err(e) => Reply::error(ErrorCode::Refused, e),
            },
            Command::Save => Reply::ok(ReplyBody::Config {
                toml: self.config.to_toml(&self.lb.specs()),
            }),
            Command::Reload => {
                let path = self.config.file.clone();
                match Config::load(&path) {
                    Ok(new) => self.replace_config(new, "reload"),
                    Err(e) => {
                        warn!(uid = peer.uid, by = %peer, "reload refused: {e}");
                        Reply::error(ErrorCode::Refused, format!("configuration refused: {e}"))
                    }
                }
            }
            Command::Restore { config } => {
                match Config::parse(std::path::Path::new("restore"), config) {
                    Ok(new) => self.replace_config(new, "restore"),
                    Err(e) => {
                        warn!(uid = peer.uid, by = %peer, "restore refused: {e}");
                        Reply::error(ErrorCode::Refused, format!("configuration refused: {e}"))
                    }
                }
            }
            Command::ConnList { filter } => self.conn_list(filter),
            Command::ServiceList { raw } => Reply::ok(ReplyBody::Services(self.lb.list(*raw))),
            Command::Status => Reply::ok(ReplyBody::Status(self.status())),
            Command::Stats => match self.stats() {
                Ok(s) => Reply::ok(ReplyBody::Stats(s)),
                Err(e) => Reply::error(ErrorCode::Internal, e.to_string()),
            },
            Command::Shutdown => Reply::ok(ReplyBody::ShuttingDown),
        }
    }

    fn status(&self) -> proto::Status {
        proto::Status {
            version: env!("CARGO_PKG_VERSION").to_string(),
            dpdk_version: Eal::version(),
            pid: std::process::id(),
            uptime_secs: self.started.elapsed().as_secs(),
            control_lcore: self.main_lcore,
            ports: self
                .ports
                .iter()
                .map(|p| {
                    let link = p.port.link().ok();
                    proto::PortStatus {
                        name: p.name.clone(),
                        port_id: p.port.id(),
                        device: p.device.clone(),
                        driver: p.driver.clone(),
                        mac: p.mac.to_string(),
                        link_up: link.map(|l| l.up).unwrap_or(false),
                        speed_mbps: link.map(|l| l.speed_mbps).unwrap_or(0),
                        addresses: p.addresses.clone(),
                        rx_queues: p.queues,
                        tx_queues: p.queues,
                        rss: p.rss,
                    }
                })
                .collect(),
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
        }
    }

    fn stats(&self) -> Result<proto::Stats, sluice_dpdk::DpdkError> {
        let mut ports = Vec::new();
        for (i, p) in self.ports.iter().enumerate() {
            let mut t = proto::Traffic::default();
            for w in self.workers {
                let pc = &w.counters.ports[i];
                t.rx_packets += pc.rx_packets.get();
                t.rx_bytes += pc.rx_bytes.get();
                t.tx_packets += pc.tx_packets.get();
                t.tx_bytes += pc.tx_bytes.get();
            }
            let s = p.port.stats()?;
            let xstats: BTreeMap<String, u64> =
                p.port.xstats().unwrap_or_default().into_iter().collect();
            ports.push(proto::PortStats {
                name: p.name.clone(),
                traffic: t,
                device: proto::DeviceStats {
                    ipackets: s.ipackets,
                    opackets: s.opackets,
                    ibytes: s.ibytes,
                    obytes: s.obytes,
                    imissed: s.imissed,
                    ierrors: s.ierrors,
                    oerrors: s.oerrors,
                    rx_nombuf: s.rx_nombuf,
                },
                xstats,
            });
        }
        let workers = self
            .workers
            .iter()
            .enumerate()
            .map(|(id, w)| {
                let c = &w.counters;
                let lbw = &self.lb.shared().workers[id];
                let mut t = proto::Traffic::default();
                for pc in c.ports.iter().take(self.ports.len()) {
                    t.rx_packets += pc.rx_packets.get();
                    t.rx_bytes += pc.rx_bytes.get();
                    t.tx_packets += pc.tx_packets.get();
                    t.tx_bytes += pc.tx_bytes.get();
                }
                let (busy_share, rx_pps) = self.worker_rates(id);
                proto::WorkerStats {
                    busy_share,
                    rx_pps,
                    id,
                    lcore: w.lcore,
                    traffic: t,
                    arp_requests_answered: c.arp_requests_answered.get(),
                    arp_replies_learned: c.arp_replies_learned.get(),
                    icmp_echo_answered: c.icmp_echo_answered.get(),
                    busy_polls: c.busy_polls.get(),
                    idle_polls: c.idle_polls.get(),
                    busy_cycles: c.busy_cycles.get(),
                    tsc_hz: sluice_dpdk::cycles_hz(),
                    drops: DropReason::ALL
                        .iter()
                        .map(|r| (r.name().to_string(), c.drops[r.index()].get()))
                        .collect(),
                    conntrack: proto::ConnTableStats {
                        occupancy: c.ct_occupancy.get(),
                        capacity: c.ct_capacity.get(),
                        inserts: c.ct_inserts.get(),
                        insert_failures: c.ct_insert_failures.get(),
                        expiries: c.ct_expiries.get(),
                        removals: c.ct_removals.get(),
                        templates: c.ct_templates.get(),
                    },
                    handoff_out: lbw.handoff_out.get(),
                    handoff_in: lbw.handoff_in.get(),
                    stateless_forwards: lbw.stateless_forwards.get(),
                    held_for_arp: lbw.held_for_arp.get(),
                    arp_requests_sent: lbw.arp_requests_sent.get(),
                }
            })
            .collect();
        Ok(proto::Stats { ports, workers })
    }
}

/// How long a change waits for every worker to pick it up.
const PICKUP_WAIT: Duration = Duration::from_secs(1);

/// 64 bits from the operating system's random source.
fn random_seed() -> Result<u64, AppError> {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b)
        .map_err(|e| AppError::Other(format!("no random hash seed from the OS: {e}")))?;
    Ok(u64::from_ne_bytes(b))
}

/// Removes this process's hugepage files (`<prefix>map_<n>` in every
/// hugetlbfs mount), which DPDK leaves behind when they were kept linked
/// for secondary processes (`huge_unlink = false`).
fn remove_hugepage_files(prefix: &str) {
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    let want = format!("{prefix}map_");
    for line in mounts.lines() {
        let mut f = line.split_whitespace();
        let (Some(_), Some(dir), Some(fstype)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        if fstype != "hugetlbfs" {
            continue;
        }
        let Ok(rd) = std::fs::read_dir(dir) else {
            continue;
        };
        for e in rd.flatten() {
            let name = e.file_name();
            let name = name.to_string_lossy();
            if name
                .strip_prefix(&want)
                .is_some_and(|n| n.chars().all(|c| c.is_ascii_digit()))
            {
                if let Err(err) = std::fs::remove_file(e.path()) {
                    warn!(file = %e.path().display(), "cannot remove a hugepage file: {err}");
                }
            }
        }
    }
}

/// Creates the kernel interface of a port: a DPDK tap with the port's MAC,
/// brought up in the kernel with the port's addresses. Returns the tap and
/// one queue pair per worker.
#[allow(clippy::too_many_arguments)]
fn open_kernel_interface(
    eal: &Eal,
    pool: &Arc<Mempool>,
    index: usize,
    ifname: &str,
    mac: MacAddr,
    addresses: &[sluice_core::Ipv4Prefix],
    queues: u16,
    cfg: &Config,
) -> Result<(Port, Vec<sluice_dpdk::RxQueue>, Vec<sluice_dpdk::TxQueue>), AppError> {
    let name = format!("net_tap{index}");
    eal.probe_vdev(&format!("{name},iface={ifname},mac={mac}"))?;
    let mut tap = Port::open(eal, &name)?;
    let (rxq, txq, _) = tap.configure(
        &DevPortConfig {
            rx_queues: queues,
            tx_queues: queues,
            rx_desc: cfg.dataplane.rx_desc.min(512),
            tx_desc: cfg.dataplane.tx_desc.min(512),
            promiscuous: false,
        },
        pool,
    )?;
    tap.start()?;
    let ip = |args: &[&str]| -> Result<(), AppError> {
        let o = std::process::Command::new("ip")
            .args(args)
            .output()
            .map_err(|e| {
                AppError::Other(format!("kernel interface {ifname}: cannot run ip: {e}"))
            })?;
        if !o.status.success() {
            return Err(AppError::Other(format!(
                "kernel interface {ifname}: ip {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&o.stderr).trim()
            )));
        }
        Ok(())
    };
    let _ = std::fs::write(
        format!("/proc/sys/net/ipv6/conf/{ifname}/disable_ipv6"),
        "1",
    );
    for a in addresses {
        ip(&["addr", "replace", &a.to_string(), "dev", ifname])?;
    }
    ip(&["link", "set", ifname, "up"])?;
    info!(interface = ifname, %mac, "kernel interface up");
    Ok((tap, rxq, txq))
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
