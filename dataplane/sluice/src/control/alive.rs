//! What the control thread tells systemd (see [`crate::notify`]): the
//! status line every second, and the watchdog fed only while every worker
//! polls.

use super::Control;
use crate::inventory::WorkerEntry;
use crate::notify::Verdict;
use std::time::{Duration, Instant};
use tracing::{error, info};

/// Each worker's polls so far (busy and idle).
pub(super) fn polls(workers: &[WorkerEntry]) -> Vec<u64> {
    workers
        .iter()
        .map(|w| w.counters.busy_polls.get() + w.counters.idle_polls.get())
        .collect()
}

/// Waits (at most `limit`) until every worker has polled once.
fn wait_until_polling(workers: &[WorkerEntry], limit: Duration) -> bool {
    let end = Instant::now() + limit;
    loop {
        if polls(workers).iter().all(|p| *p > 0) {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

impl Control<'_> {
    /// Tells systemd the appliance is ready once every worker polls (the
    /// ports were started before the workers were launched).
    pub(crate) fn announce_ready(&self) {
        if !self.notifier.is_active() {
            return;
        }
        if !wait_until_polling(self.workers, Duration::from_secs(10)) {
            error!("a worker has not polled after 10 s; telling systemd anyway");
        }
        self.notifier.ready(&self.status_line());
    }

    /// The one-line summary systemd shows (`systemctl status`).
    pub(crate) fn status_line(&self) -> String {
        let conns: u64 = self
            .workers
            .iter()
            .map(|w| w.counters.ct.report().occupancy + w.counters.ct6.report().occupancy)
            .sum();
        format!(
            "serving {} services on {} ports with {} workers; {conns} connections",
            self.lb.list(false).services.len(),
            self.ports.len(),
            self.workers.len()
        )
    }

    /// Feeds systemd's watchdog if every worker moved since the last look;
    /// says which did not, once, when one stops.
    pub(crate) fn watchdog_tick(&mut self, now: Instant) {
        let Some(w) = self.watchdog.as_mut() else {
            return;
        };
        match w.tick(now, &polls(self.workers)) {
            Verdict::NotDue => {}
            Verdict::Alive => {
                if !self.stuck.is_empty() {
                    info!("every worker polls again; feeding the watchdog");
                    self.stuck.clear();
                }
                self.notifier.watchdog();
            }
            Verdict::Stuck(stuck) => {
                if stuck != self.stuck {
                    let lcores: Vec<u32> = stuck.iter().map(|i| self.workers[*i].lcore).collect();
                    error!(
                        ?lcores,
                        "workers stopped polling: not feeding systemd's watchdog"
                    );
                    self.notifier
                        .status(&format!("workers on lcores {lcores:?} stopped polling"));
                }
                self.stuck = stuck;
            }
        }
    }
}
