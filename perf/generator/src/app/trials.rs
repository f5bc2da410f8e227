//! Runs from the main lcore: a measurement at one offered rate (with its
//! warm-up, drain and report), and the RFC 2544 searches built from such
//! trials. The workers do the packet work; this only moves the phase word,
//! sleeps, shows progress, and turns the filed counters into results.

use super::control::{Phase, Shared};
use super::progress::Progress;
use sluice_gen::cli::SearchArg;
use sluice_gen::config::Config;
use sluice_gen::report::{RunResult, SearchOutcome, SearchReport, Trial};
use sluice_gen::rfc2544::{Goal, Search};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long the workers may take to apply a phase.
const ACK_LIMIT: Duration = Duration::from_secs(5);

/// Drives runs.
pub struct Driver {
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    progress: Progress,
    next_run: u32,
    drain: f64,
}

impl Driver {
    /// A driver; `stop` is set by SIGINT/SIGTERM.
    pub fn new(shared: Arc<Shared>, stop: Arc<AtomicBool>, quiet: bool, drain: f64) -> Driver {
        Driver {
            shared,
            stop,
            progress: Progress::new(quiet),
            next_run: 1,
            drain,
        }
    }

    /// Whether a signal asked to stop.
    pub fn interrupted(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    fn new_run(&mut self) -> u32 {
        let r = self.next_run;
        // Stamps carry the run's low 8 bits; 0 would read as "no run".
        self.next_run = if (r + 1) & 0xff == 0 { r + 2 } else { r + 1 };
        r
    }

    /// Sends at `rate` as run `run` for `secs` (less if interrupted);
    /// returns when the TX side started.
    fn send_for(&mut self, run: u32, rate: u64, secs: f64, label: &str) -> Result<Instant, String> {
        let sh = self.shared.clone();
        sh.rate.store(rate, Ordering::Release);
        sh.live_tx.store(0, Ordering::Relaxed);
        sh.live_rx.store(0, Ordering::Relaxed);
        sh.live_bad.store(0, Ordering::Relaxed);
        sh.enter(run, Phase::Send, ACK_LIMIT)?;
        let t0 = Instant::now();
        self.progress.reset(0, 0);
        loop {
            let el = t0.elapsed().as_secs_f64();
            if el >= secs || self.interrupted() {
                break;
            }
            self.show(label, el, secs);
            std::thread::sleep(Duration::from_secs_f64((secs - el).clamp(0.0, 0.05)));
        }
        Ok(t0)
    }

    fn show(&mut self, label: &str, elapsed: f64, total: f64) {
        let sh = &self.shared;
        self.progress.update(
            label,
            elapsed,
            total,
            sh.live_tx.load(Ordering::Relaxed),
            sh.live_rx.load(Ordering::Relaxed),
            sh.live_bad.load(Ordering::Relaxed),
        );
    }

    /// One measurement at `rate` (0: full speed): warm-up (if any), `secs`
    /// of sending, the drain time, then the counters.
    pub fn measure(
        &mut self,
        rate: u64,
        warmup: f64,
        secs: f64,
        label: &str,
    ) -> Result<RunResult, String> {
        if warmup > 0.0 {
            let r = self.new_run();
            self.send_for(r, rate, warmup, "warm-up")?;
        }
        let run = self.new_run();
        let t0 = self.send_for(run, rate, secs, label)?;
        let sh = self.shared.clone();
        // Sending time: from the TX side's Send acknowledgment to its Drain
        // one.
        sh.enter(run, Phase::Drain, ACK_LIMIT)?;
        let duration = t0.elapsed().as_secs_f64();
        std::thread::sleep(Duration::from_secs_f64(self.drain));
        sh.enter(run, Phase::Report, ACK_LIMIT)?;
        let tx = sh
            .tx_report
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .ok_or("the TX side filed no report")?;
        let rx = sh
            .rx_report
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .ok_or("the RX side filed no report")?;
        sh.enter(run, Phase::Idle, ACK_LIMIT)?;
        self.progress.finish();
        Ok(RunResult::compute(
            rate,
            duration,
            &tx,
            &rx.counters,
            rx.latency.summary(),
        ))
    }

    /// The RFC 2544 search(es) `kind`.
    pub fn search(&mut self, cfg: &Config, kind: SearchArg) -> Result<SearchReport, String> {
        let mut trials = Vec::new();
        let max = self.measure(0, cfg.warmup, cfg.trial, "max")?;
        let max_pps = max.tx_pps as u64;
        trials.push(Trial {
            phase: "max",
            target_pps: 0,
            tx_pps: max.tx_pps,
            loss_pct: max.loss_pct,
            lost: max.lost,
            passed: max.lost == 0,
        });
        let mut ndr = None;
        if matches!(kind, SearchArg::Ndr | SearchArg::Both) {
            let s = Search::new(
                Goal::Ndr,
                max_pps,
                cfg.pdr_loss,
                cfg.search_steps,
                cfg.resolution,
            );
            ndr = Some(self.bisect(cfg, s, &max, &mut trials)?);
        }
        let mut pdr = None;
        if matches!(kind, SearchArg::Pdr | SearchArg::Both) && !self.interrupted() {
            let mut s = Search::new(
                Goal::Pdr,
                max_pps,
                cfg.pdr_loss,
                cfg.search_steps,
                cfg.resolution,
            );
            if let Some(n) = &ndr {
                s.set_lower_bound(n.rate_pps);
            }
            let mut o = self.bisect(cfg, s, &max, &mut trials)?;
            if o.result.is_none() {
                // The NDR trial passes the PDR criterion too.
                if let Some(n) = &ndr {
                    o.rate_pps = n.rate_pps;
                    o.rate_mpps = n.rate_mpps;
                    o.result = n.result.clone();
                }
            }
            pdr = Some(o);
        }
        Ok(SearchReport {
            trial_s: cfg.trial,
            max,
            ndr,
            pdr,
            trials,
        })
    }

    fn bisect(
        &mut self,
        cfg: &Config,
        mut s: Search,
        max: &RunResult,
        trials: &mut Vec<Trial>,
    ) -> Result<SearchOutcome, String> {
        let goal = s.goal();
        let name = match goal {
            Goal::Ndr => "ndr",
            Goal::Pdr => "pdr",
        };
        let max_pps = max.tx_pps as u64;
        let mut best: Option<RunResult> = None;
        if s.passes(max.tx_packets, max.lost) {
            best = Some(max.clone());
        }
        s.record(max_pps, max.tx_packets, max.lost);
        while let Some(rate) = s.next() {
            if self.interrupted() {
                break;
            }
            let r = self.measure(rate, cfg.warmup, cfg.trial, name)?;
            let passed = s.passes(r.tx_packets, r.lost);
            trials.push(Trial {
                phase: name,
                target_pps: rate,
                tx_pps: r.tx_pps,
                loss_pct: r.loss_pct,
                lost: r.lost,
                passed,
            });
            s.record(rate, r.tx_packets, r.lost);
            let better = match &best {
                None => true,
                Some(b) => rate >= b.target_pps,
            };
            if passed && better {
                best = Some(r);
            }
        }
        let rate = s.best();
        Ok(SearchOutcome {
            goal,
            loss_threshold_pct: match goal {
                Goal::Ndr => 0.0,
                Goal::Pdr => cfg.pdr_loss * 100.0,
            },
            rate_pps: rate,
            rate_mpps: rate as f64 / 1e6,
            result: best,
            steps: s.steps(),
        })
    }
}
