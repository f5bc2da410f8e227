//! The control plane: the Unix socket ([`server`]), and the control thread
//! that answers every request one at a time, so control operations are
//! serialised without locks shared with the workers.
//!
//! [`Control::serve`] is the control thread's loop: a request, then the
//! periodic work (reclaiming old snapshots, SIGHUP, rate samples, overload
//! and health). The answers are grouped by area: [`changes`] (services and
//! reals), [`files`] (save, reload, restore), [`conns`] (the connection
//! list), [`observe`] (status and statistics), [`health`] (overload and
//! health-check results turned into snapshots).

mod alive;
mod bgp;
mod changes;
mod conns;
mod files;
mod health;
mod observe;
pub mod server;

pub(crate) use bgp::Announcer;
pub use server::{ControlServer, Pending};

use crate::config::Config;
use crate::inventory::{Ports, WorkerEntry};
use crate::lb::LbControl;
use crate::notify::{Notifier, Watchdog};
use crate::snapshot::Publisher;
use crate::worker::Rings;
use crossbeam_channel::{Receiver, RecvTimeoutError};
use server::Peer;
use sluice_lb::Snapshot;
use sluice_proto::{Command, Reply, ReplyBody};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::{info, warn};

/// How long the loop waits for a request before its periodic work.
const POLL: Duration = Duration::from_millis(100);
/// How often worker and service rates are sampled.
const SAMPLE_EVERY: Duration = Duration::from_secs(1);
/// How often overload and health results are looked at.
const HEALTH_EVERY: Duration = Duration::from_millis(100);

/// The signals the loop watches.
pub struct Signals {
    /// SIGINT/SIGTERM: stop.
    pub stop: Arc<AtomicBool>,
    /// SIGHUP: reload the configuration file.
    pub reload: Arc<AtomicBool>,
}

/// The control thread's state.
pub(crate) struct Control<'a> {
    config: Config,
    lb: LbControl,
    publisher: &'a Publisher<Snapshot>,
    rings: &'a Rings,
    ports: &'a Ports,
    workers: &'a [WorkerEntry],
    started: Instant,
    main_lcore: u32,
    samples: observe::Samples,
    /// systemd's notification socket (or nothing).
    notifier: &'a Notifier,
    /// Feeds systemd's watchdog, when it asked for one.
    watchdog: Option<Watchdog>,
    /// The workers the watchdog last found stuck.
    stuck: Vec<usize>,
    /// Who asked for the request being answered.
    peer: Peer,
    /// The BGP announcements, when `[bgp]` is configured.
    bgp: Option<bgp::Announcer>,
    /// Connection sync, when `[sync]` is configured.
    sync: Option<crate::sync::SyncThread>,
}

/// What the control thread works with, built by the app.
pub(crate) struct Parts<'a> {
    pub(crate) config: Config,
    pub(crate) lb: LbControl,
    pub(crate) publisher: &'a Publisher<Snapshot>,
    pub(crate) rings: &'a Rings,
    pub(crate) ports: &'a Ports,
    pub(crate) workers: &'a [WorkerEntry],
    pub(crate) started: Instant,
    pub(crate) main_lcore: u32,
    pub(crate) notifier: &'a Notifier,
    /// The BGP announcements, started by the app.
    pub(crate) bgp: Option<bgp::Announcer>,
    /// The sync thread, started by the app.
    pub(crate) sync: Option<crate::sync::SyncThread>,
}

impl<'a> Control<'a> {
    /// The control thread over `parts`.
    pub(crate) fn new(parts: Parts<'a>) -> Control<'a> {
        Control {
            config: parts.config,
            lb: parts.lb,
            publisher: parts.publisher,
            rings: parts.rings,
            ports: parts.ports,
            workers: parts.workers,
            started: parts.started,
            main_lcore: parts.main_lcore,
            samples: observe::Samples::default(),
            notifier: parts.notifier,
            watchdog: parts
                .notifier
                .watchdog_interval()
                .map(|i| Watchdog::new(i, parts.workers.len())),
            stuck: Vec::new(),
            peer: Peer::INTERNAL,
            bgp: parts.bgp,
            sync: parts.sync,
        }
    }

    /// Answers requests until a signal, a `shutdown` request, or the end
    /// of every request channel.
    pub(crate) fn serve(&mut self, requests: &Receiver<Pending>, signals: &Signals) {
        let mut last_sample = Instant::now() - SAMPLE_EVERY;
        let mut last_health = Instant::now();
        while !signals.stop.load(Ordering::Relaxed) {
            match requests.recv_timeout(POLL) {
                Ok(pending) => {
                    if self.answer_pending(pending) {
                        self.bgp_drain();
                        return;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            self.publisher.reclaim();
            if signals.reload.swap(false, Ordering::Relaxed) {
                self.reload_on_signal();
            }
            if last_sample.elapsed() >= SAMPLE_EVERY {
                last_sample = Instant::now();
                self.sample();
                if self.stuck.is_empty() && self.notifier.is_active() {
                    self.notifier.status(&self.status_line());
                }
            }
            self.watchdog_tick(Instant::now());
            if last_health.elapsed() >= HEALTH_EVERY {
                last_health = Instant::now();
                self.health_tick();
                self.bgp_tick(Instant::now());
            }
        }
        info!("signal received, stopping");
        self.bgp_drain();
    }

    /// Answers one request; true when it asked the daemon to stop.
    fn answer_pending(&mut self, p: Pending) -> bool {
        let stopping = p.command == Command::Shutdown;
        let _ = p.reply.send(self.answer(&p.command, p.peer));
        if stopping {
            info!("shutdown requested over the control socket");
        }
        stopping
    }

    /// The reply to `c` from `peer`.
    fn answer(&mut self, c: &Command, peer: Peer) -> Reply {
        self.peer = peer;
        match c {
            Command::ServiceAdd { .. }
            | Command::ServiceEdit { .. }
            | Command::ServiceDel { .. }
            | Command::RealAdd { .. }
            | Command::RealEdit { .. }
            | Command::RealDrain { .. }
            | Command::RealDel { .. } => self.change(c),
            Command::Zero { service } => self.zero(service.as_ref()),
            Command::Save => self.save(),
            Command::Reload => self.reload(),
            Command::Restore { config } => self.restore(config),
            Command::ConnList { filter } => self.conn_list(filter),
            Command::ServiceList { raw } => Reply::ok(ReplyBody::Services(self.lb.list(*raw))),
            Command::Status => Reply::ok(ReplyBody::Status(self.status())),
            Command::Stats => self.stats_reply(),
            Command::Shutdown => Reply::ok(ReplyBody::ShuttingDown),
            Command::VipWithdraw { vip } => self.vip_hold(*vip, true),
            Command::VipAnnounce { vip } => self.vip_hold(*vip, false),
        }
    }

    /// SIGHUP: reloads the file, as `sluicectl reload` does.
    fn reload_on_signal(&mut self) {
        info!("SIGHUP: reloading {}", self.config.file.display());
        self.peer = Peer::INTERNAL;
        let r = self.reload();
        if let (false, Some(e)) = (r.ok, r.error) {
            warn!("reload refused: {}", e.message);
        }
    }
}
