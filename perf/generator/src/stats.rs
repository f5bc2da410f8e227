//! The counters of one run: what the sender sent, what the receiver got and
//! what it made of it, and the latency histogram (TSC ticks converted to
//! nanoseconds, recorded in an HdrHistogram with 3 significant digits).

use crate::check::{Bad, Reject};
use crate::seqtrack::SeqEvent;
use crate::sizes::FCS_LEN;
use hdrhistogram::Histogram;
use serde::Serialize;

/// Latencies above this (60 s) are recorded as this.
pub const LATENCY_MAX_NS: u64 = 60_000_000_000;

/// The sender's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TxCounters {
    /// Packets the TX queue accepted.
    pub packets: u64,
    /// Their bytes, FCS included.
    pub bytes: u64,
    /// Of them, first packets of a flow (TCP SYNs).
    pub first: u64,
    /// Bursts the mempool could not supply.
    pub alloc_failures: u64,
    /// Flows replaced by fresh ones.
    pub new_flows: u64,
}

/// The receiver's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RxCounters {
    /// Frames received on the RX port, ARP excluded.
    pub packets: u64,
    /// Good packets of this run (checks passed).
    pub ok: u64,
    /// Their bytes, FCS included.
    pub ok_bytes: u64,
    /// Good packets seen before (per-flow sequence).
    pub duplicates: u64,
    /// Good packets that came after a later one of their flow.
    pub reordered: u64,
    /// Good packets too far behind to tell (counted in `reordered` too).
    pub late: u64,
    /// Good packets of an earlier run (warm-up, previous trial).
    pub stale: u64,
    /// Frames that are not IPv4 (and not ARP).
    pub ignored: u64,
    /// Bad packets by reason, indexed by `Bad::index`.
    pub bad: [u64; Bad::COUNT],
}

impl RxCounters {
    /// Counts a rejected frame.
    #[inline(always)]
    pub fn reject(&mut self, r: Reject) {
        match r {
            Reject::NotOurs => self.ignored += 1,
            Reject::Bad(b) => self.bad[b.index()] += 1,
        }
    }

    /// Counts a good packet of this run, `len` bytes without FCS.
    #[inline(always)]
    pub fn good(&mut self, len: usize, ev: SeqEvent) {
        self.ok += 1;
        self.ok_bytes += (len + FCS_LEN as usize) as u64;
        match ev {
            SeqEvent::InOrder => {}
            SeqEvent::Reordered => self.reordered += 1,
            SeqEvent::Duplicate => self.duplicates += 1,
            SeqEvent::Late => {
                self.reordered += 1;
                self.late += 1;
            }
        }
    }

    /// All bad packets.
    pub fn bad_total(&self) -> u64 {
        self.bad.iter().sum()
    }

    /// Good packets counted once each.
    pub fn unique_ok(&self) -> u64 {
        self.ok.saturating_sub(self.duplicates)
    }
}

/// Latency percentiles in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LatencySummary {
    /// Packets measured.
    pub samples: u64,
    /// Smallest.
    pub min: u64,
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p99_9: u64,
    /// Largest.
    pub max: u64,
}

/// A latency histogram fed with TSC tick differences.
#[derive(Debug, Clone)]
pub struct Latency {
    hist: Histogram<u64>,
    // ns per tick, as a 32.32 fixed-point multiplier.
    mult: u128,
}

impl Latency {
    /// An empty histogram for a TSC of `hz` ticks per second.
    pub fn new(hz: u64) -> Latency {
        Latency {
            hist: Histogram::new_with_bounds(1, LATENCY_MAX_NS, 3)
                .expect("static histogram bounds are valid"),
            mult: ((1_000_000_000u128) << 32) / hz.max(1) as u128,
        }
    }

    /// Records a latency of `ticks` TSC ticks.
    #[inline(always)]
    pub fn record_ticks(&mut self, ticks: u64) {
        let ns = ((ticks as u128 * self.mult) >> 32) as u64;
        self.hist.saturating_record(ns.clamp(1, LATENCY_MAX_NS));
    }

    /// Forgets every sample.
    pub fn reset(&mut self) {
        self.hist.reset();
    }

    /// Number of samples.
    pub fn len(&self) -> u64 {
        self.hist.len()
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.hist.is_empty()
    }

    /// The percentiles, or None without samples.
    pub fn summary(&self) -> Option<LatencySummary> {
        if self.hist.is_empty() {
            return None;
        }
        let h = &self.hist;
        Some(LatencySummary {
            samples: h.len(),
            min: h.min(),
            mean: h.mean(),
            p50: h.value_at_quantile(0.5),
            p90: h.value_at_quantile(0.9),
            p99: h.value_at_quantile(0.99),
            p99_9: h.value_at_quantile(0.999),
            max: h.max(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_become_nanoseconds() {
        let mut l = Latency::new(2_000_000_000); // 2 GHz: 0.5 ns per tick
        assert!(l.summary().is_none());
        for t in 1..=1000u64 {
            l.record_ticks(t * 2000); // 1..=1000 us
        }
        let s = l.summary().unwrap();
        assert_eq!(s.samples, 1000);
        let near = |v: u64, want: u64| (v as f64 - want as f64).abs() / want as f64 <= 0.002;
        assert!(near(s.min, 1000), "{s:?}");
        assert!(near(s.p50, 500_000), "{s:?}");
        assert!(near(s.p99, 990_000), "{s:?}");
        assert!(near(s.max, 1_000_000), "{s:?}");
        l.record_ticks(u64::MAX >> 8);
        assert!(l.summary().unwrap().max <= LATENCY_MAX_NS + LATENCY_MAX_NS / 500);
        l.reset();
        assert!(l.is_empty());
    }

    #[test]
    fn rx_counting() {
        let mut c = RxCounters::default();
        c.good(60, SeqEvent::InOrder);
        c.good(60, SeqEvent::Duplicate);
        c.good(60, SeqEvent::Late);
        c.reject(Reject::NotOurs);
        c.reject(Reject::Bad(Bad::Ttl));
        assert_eq!((c.ok, c.unique_ok(), c.ok_bytes), (3, 2, 192));
        assert_eq!((c.reordered, c.late, c.duplicates), (1, 1, 1));
        assert_eq!((c.ignored, c.bad_total()), (1, 1));
        assert_eq!(c.bad[Bad::Ttl.index()], 1);
    }
}
