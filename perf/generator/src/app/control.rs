//! How the main lcore steers the workers: one atomic *phase word* (run id
//! and phase) that workers poll, acknowledgments back, live counters for
//! the progress line, and end-of-run reports handed over under a mutex
//! (once per run, never on the packet path).
//!
//! A run goes Send (TX sends, stamped with the run id; RX counts only that
//! run's packets) -> Drain (TX stops; RX keeps counting stragglers) ->
//! Report (each side files its counters). Workers acknowledge every phase
//! word they have applied, and the main lcore waits for that (bounded)
//! before it reads anything.

use sluice_gen::stats::{Latency, RxCounters, TxCounters};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What the workers do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Nothing sent; ARP answered; received packets counted as stale.
    Idle = 0,
    /// Sending and counting the run.
    Send = 1,
    /// Not sending; still counting the run.
    Drain = 2,
    /// File the run's counters.
    Report = 3,
}

impl Phase {
    fn from_code(c: u64) -> Phase {
        match c {
            1 => Phase::Send,
            2 => Phase::Drain,
            3 => Phase::Report,
            _ => Phase::Idle,
        }
    }
}

/// Packs a run id and phase.
pub fn word(run: u32, phase: Phase) -> u64 {
    (run as u64) << 8 | phase as u64
}

/// Unpacks a phase word.
pub fn unword(w: u64) -> (u32, Phase) {
    ((w >> 8) as u32, Phase::from_code(w & 0xff))
}

/// What the RX side files at the end of a run.
pub struct RxReport {
    /// Its counters.
    pub counters: RxCounters,
    /// Its latency histogram.
    pub latency: Latency,
}

/// State shared by the main lcore and the workers.
pub struct Shared {
    /// The current phase word.
    pub phase: AtomicU64,
    /// Offered rate for the next Send, pps (0: full speed); written before
    /// the phase word.
    pub rate: AtomicU64,
    /// Workers leave their loops.
    pub exit: AtomicBool,
    /// Last phase word the TX side applied.
    pub tx_ack: AtomicU64,
    /// Last phase word the RX side applied.
    pub rx_ack: AtomicU64,
    /// Packets sent in the current run (progress).
    pub live_tx: AtomicU64,
    /// Good packets received in the current run (progress).
    pub live_rx: AtomicU64,
    /// Bad packets received in the current run (progress).
    pub live_bad: AtomicU64,
    /// Non-ARP frames received on a port that only sends (never reset).
    pub foreign_tx_port: AtomicU64,
    /// The TX side's report.
    pub tx_report: Mutex<Option<TxCounters>>,
    /// The RX side's report.
    pub rx_report: Mutex<Option<RxReport>>,
}

impl Shared {
    /// Idle, run 0.
    pub fn new() -> Shared {
        Shared {
            phase: AtomicU64::new(word(0, Phase::Idle)),
            rate: AtomicU64::new(0),
            exit: AtomicBool::new(false),
            tx_ack: AtomicU64::new(u64::MAX),
            rx_ack: AtomicU64::new(u64::MAX),
            live_tx: AtomicU64::new(0),
            live_rx: AtomicU64::new(0),
            live_bad: AtomicU64::new(0),
            foreign_tx_port: AtomicU64::new(0),
            tx_report: Mutex::new(None),
            rx_report: Mutex::new(None),
        }
    }

    /// Sets the phase word and waits (at most `limit`) until both sides
    /// have applied it.
    pub fn enter(&self, run: u32, phase: Phase, limit: Duration) -> Result<(), String> {
        let w = word(run, phase);
        self.phase.store(w, Ordering::Release);
        let deadline = Instant::now() + limit;
        while self.tx_ack.load(Ordering::Acquire) != w || self.rx_ack.load(Ordering::Acquire) != w {
            if Instant::now() > deadline {
                return Err(format!(
                    "the workers did not enter phase {phase:?} of run {run} within {limit:?}"
                ));
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        Ok(())
    }
}
