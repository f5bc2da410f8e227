//! Results: the figures of a run computed from its counters
//! ([`RunResult`]), the whole report with the scenario and any RFC 2544
//! search ([`Report`], written by `--json`), and the human summary.
//!
//! Loss counts every packet sent that did not come back intact: `lost =
//! tx_packets - (rx_ok - duplicates)`, so bad packets count as lost (and
//! are also listed by reason). Rates divide by the sending time.

use crate::check::Bad;
use crate::rfc2544::Goal;
use crate::sizes::L1_OVERHEAD;
use crate::stats::{LatencySummary, RxCounters, TxCounters};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// The figures of one run (a fixed-rate measurement or a search trial).
#[derive(Debug, Clone, Serialize)]
pub struct RunResult {
    /// Offered rate asked for, packets/s (0: full speed).
    pub target_pps: u64,
    /// Sending time, seconds.
    pub duration_s: f64,
    /// Packets sent.
    pub tx_packets: u64,
    /// Bytes sent, FCS included.
    pub tx_bytes: u64,
    /// Frames received on the RX port (ARP excluded, bad and stale
    /// included).
    pub rx_packets: u64,
    /// Good packets of this run.
    pub rx_ok: u64,
    /// Sent packets/s.
    pub tx_pps: f64,
    /// Good received packets/s.
    pub rx_pps: f64,
    /// tx_pps in millions.
    pub tx_mpps: f64,
    /// rx_pps in millions.
    pub rx_mpps: f64,
    /// Sent bits/s at layer 2 (frames with FCS).
    pub tx_bps_l2: f64,
    /// Sent bits/s at layer 1 (plus preamble and inter-frame gap).
    pub tx_bps_l1: f64,
    /// Good received bits/s at layer 2.
    pub rx_bps_l2: f64,
    /// Good received bits/s at layer 1.
    pub rx_bps_l1: f64,
    /// Packets not received intact.
    pub lost: u64,
    /// lost / tx_packets, percent.
    pub loss_pct: f64,
    /// Duplicates.
    pub duplicates: u64,
    /// Reordered packets.
    pub reordered: u64,
    /// Of them, further behind than the 32-packet window.
    pub reordered_late: u64,
    /// Good packets of an earlier run that arrived during this one.
    pub stale: u64,
    /// Non-IPv4 frames ignored.
    pub ignored: u64,
    /// Bad packets.
    pub bad_total: u64,
    /// Bad packets by reason (every reason listed).
    pub bad: BTreeMap<&'static str, u64>,
    /// Latency of good packets, nanoseconds.
    pub latency_ns: Option<LatencySummary>,
    /// First packets of flows sent (TCP SYNs).
    pub flows_opened: u64,
    /// Flows replaced by fresh ones.
    pub new_flows: u64,
    /// Bursts the mempool could not supply.
    pub tx_alloc_failures: u64,
}

impl RunResult {
    /// Computes a run's figures.
    pub fn compute(
        target_pps: u64,
        duration_s: f64,
        tx: &TxCounters,
        rx: &RxCounters,
        latency: Option<LatencySummary>,
    ) -> RunResult {
        let d = if duration_s > 0.0 {
            duration_s
        } else {
            f64::NAN
        };
        let lost = tx.packets.saturating_sub(rx.unique_ok());
        let per_s = |x: u64| if d.is_nan() { 0.0 } else { x as f64 / d };
        let tx_pps = per_s(tx.packets);
        let rx_pps = per_s(rx.ok);
        RunResult {
            target_pps,
            duration_s,
            tx_packets: tx.packets,
            tx_bytes: tx.bytes,
            rx_packets: rx.packets,
            rx_ok: rx.ok,
            tx_pps,
            rx_pps,
            tx_mpps: tx_pps / 1e6,
            rx_mpps: rx_pps / 1e6,
            tx_bps_l2: per_s(tx.bytes) * 8.0,
            tx_bps_l1: per_s(tx.bytes + tx.packets * L1_OVERHEAD) * 8.0,
            rx_bps_l2: per_s(rx.ok_bytes) * 8.0,
            rx_bps_l1: per_s(rx.ok_bytes + rx.ok * L1_OVERHEAD) * 8.0,
            lost,
            loss_pct: if tx.packets == 0 {
                0.0
            } else {
                lost as f64 * 100.0 / tx.packets as f64
            },
            duplicates: rx.duplicates,
            reordered: rx.reordered,
            reordered_late: rx.late,
            stale: rx.stale,
            ignored: rx.ignored,
            bad_total: rx.bad_total(),
            bad: Bad::ALL
                .iter()
                .map(|b| (b.name(), rx.bad[b.index()]))
                .collect(),
            latency_ns: latency,
            flows_opened: tx.first,
            new_flows: tx.new_flows,
            tx_alloc_failures: tx.alloc_failures,
        }
    }
}

/// The scenario, as run.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioInfo {
    /// dr, nat or swap.
    pub mode: &'static str,
    /// tcp or udp.
    pub proto: &'static str,
    /// Concurrent flows.
    pub flows: u64,
    /// New flows per second (0: a fixed set).
    pub new_flows_per_sec: u64,
    /// Frame size in bytes (FCS included), or "imix".
    pub size: String,
    /// Mean frame size.
    pub mean_frame_bytes: f64,
    /// Virtual service.
    pub vip: String,
    /// Virtual port.
    pub vport: u16,
    /// Reals, `ip:port`.
    pub reals: Vec<String>,
    /// Client range.
    pub clients: String,
    /// Offered rate asked for (0: full speed).
    pub rate_pps: u64,
    /// Measurement time asked for, seconds.
    pub duration_s: f64,
    /// Warm-up before it, seconds.
    pub warmup_s: f64,
    /// Wait for stragglers after sending stops, seconds.
    pub drain_s: f64,
    /// TX port device.
    pub tx_port: String,
    /// RX port device.
    pub rx_port: String,
    /// Generator TX port MAC.
    pub tx_mac: String,
    /// Generator RX port MAC.
    pub rx_mac: String,
    /// Device MAC the frames were sent to.
    pub dut_mac: String,
    /// The lcore sending.
    pub tx_lcore: u32,
    /// The lcore receiving.
    pub rx_lcore: u32,
    /// TSC frequency, Hz.
    pub tsc_hz: u64,
    /// DPDK version.
    pub dpdk: String,
}

/// One trial of a search.
#[derive(Debug, Clone, Serialize)]
pub struct Trial {
    /// Which search it served: max, ndr or pdr.
    pub phase: &'static str,
    /// Offered rate, packets/s (0: full speed).
    pub target_pps: u64,
    /// Sent packets/s achieved.
    pub tx_pps: f64,
    /// Loss, percent.
    pub loss_pct: f64,
    /// Packets lost.
    pub lost: u64,
    /// Whether it passed the search's criterion.
    pub passed: bool,
}

/// The outcome of one search.
#[derive(Debug, Clone, Serialize)]
pub struct SearchOutcome {
    /// ndr or pdr.
    pub goal: Goal,
    /// Loss threshold, percent (0 for NDR; loss must be strictly below it
    /// for PDR).
    pub loss_threshold_pct: f64,
    /// The highest passing offered rate, packets/s (0: none passed).
    pub rate_pps: u64,
    /// In millions.
    pub rate_mpps: f64,
    /// The passing trial's figures, if one passed.
    pub result: Option<RunResult>,
    /// Trials it took (the full-speed trial included).
    pub steps: u32,
}

/// An RFC 2544 search report.
#[derive(Debug, Clone, Serialize)]
pub struct SearchReport {
    /// Seconds per trial.
    pub trial_s: f64,
    /// The full-speed trial, whose sent rate bounds the search.
    pub max: RunResult,
    /// No-drop rate, if searched.
    pub ndr: Option<SearchOutcome>,
    /// Partial-drop rate, if searched.
    pub pdr: Option<SearchOutcome>,
    /// Every trial, in order.
    pub trials: Vec<Trial>,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// "sluice-gen".
    pub tool: &'static str,
    /// Its version.
    pub version: &'static str,
    /// The scenario.
    pub scenario: ScenarioInfo,
    /// The fixed-rate measurement (absent with --search).
    pub result: Option<RunResult>,
    /// The search (with --search).
    pub search: Option<SearchReport>,
    /// Stopped early by a signal.
    pub interrupted: bool,
    /// Non-ARP frames received on the TX port when it is not the RX port
    /// (whole session; they are dropped unchecked).
    pub rx_on_tx_port: u64,
}

fn si(x: f64, unit: &str) -> String {
    let (v, p) = if x >= 1e9 {
        (x / 1e9, "G")
    } else if x >= 1e6 {
        (x / 1e6, "M")
    } else if x >= 1e3 {
        (x / 1e3, "k")
    } else {
        (x, "")
    };
    format!("{v:.3} {p}{unit}")
}

fn us(ns: u64) -> String {
    format!("{:.1} us", ns as f64 / 1000.0)
}

/// A run's figures in a few lines.
pub fn summarize_run(r: &RunResult) -> String {
    let mut s = String::new();
    let target = if r.target_pps == 0 {
        "full speed".to_string()
    } else {
        si(r.target_pps as f64, "pps")
    };
    let _ = writeln!(s, "  offered   {target} for {:.2} s", r.duration_s);
    let _ = writeln!(
        s,
        "  tx        {} packets  {}  {} (L1 {})",
        r.tx_packets,
        si(r.tx_pps, "pps"),
        si(r.tx_bps_l2, "bit/s"),
        si(r.tx_bps_l1, "bit/s")
    );
    let _ = writeln!(
        s,
        "  rx        {} good of {} received  {}  {} (L1 {})",
        r.rx_ok,
        r.rx_packets,
        si(r.rx_pps, "pps"),
        si(r.rx_bps_l2, "bit/s"),
        si(r.rx_bps_l1, "bit/s")
    );
    let _ = writeln!(
        s,
        "  lost      {} ({:.4} %)  duplicates {}  reordered {}  stale {}  ignored {}",
        r.lost, r.loss_pct, r.duplicates, r.reordered, r.stale, r.ignored
    );
    let bad: Vec<String> = r
        .bad
        .iter()
        .filter(|(_, v)| **v > 0)
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    let _ = writeln!(
        s,
        "  bad       {}{}",
        r.bad_total,
        if bad.is_empty() {
            String::new()
        } else {
            format!(" ({})", bad.join(", "))
        }
    );
    match &r.latency_ns {
        Some(l) => {
            let _ = writeln!(
                s,
                "  latency   min {}  p50 {}  p99 {}  p99.9 {}  max {}  ({} samples)",
                us(l.min),
                us(l.p50),
                us(l.p99),
                us(l.p99_9),
                us(l.max),
                l.samples
            );
        }
        None => {
            let _ = writeln!(s, "  latency   no samples");
        }
    }
    s
}

/// `vip:vport` as a socket address: an IPv6 VIP in brackets (RFC 5952).
fn service(vip: &str, vport: u16) -> String {
    match vip.parse::<std::net::IpAddr>() {
        Ok(ip) => std::net::SocketAddr::new(ip, vport).to_string(),
        Err(_) => format!("{vip}:{vport}"),
    }
}

/// The whole report for people.
pub fn summarize(rep: &Report) -> String {
    let sc = &rep.scenario;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "sluice-gen: mode {} {} {} flows (+{}/s), size {}, {} via {} -> {}",
        sc.mode,
        sc.proto,
        sc.flows,
        sc.new_flows_per_sec,
        sc.size,
        service(&sc.vip, sc.vport),
        sc.tx_port,
        sc.rx_port
    );
    if rep.interrupted {
        let _ = writeln!(s, "  (interrupted)");
    }
    if rep.rx_on_tx_port > 0 {
        let _ = writeln!(s, "  {} frames came back on the TX port", rep.rx_on_tx_port);
    }
    if let Some(r) = &rep.result {
        s.push_str(&summarize_run(r));
    }
    if let Some(sr) = &rep.search {
        let _ = writeln!(s, "full-speed trial ({:.1} s):", sr.trial_s);
        s.push_str(&summarize_run(&sr.max));
        for o in [&sr.ndr, &sr.pdr].into_iter().flatten() {
            let name = match o.goal {
                Goal::Ndr => "NDR".to_string(),
                Goal::Pdr => format!("PDR (loss < {} %)", o.loss_threshold_pct),
            };
            let _ = writeln!(
                s,
                "{name}: {} ({:.3} Mpps) after {} trials",
                si(o.rate_pps as f64, "pps"),
                o.rate_mpps,
                o.steps
            );
            if let Some(r) = &o.result {
                s.push_str(&summarize_run(r));
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seqtrack::SeqEvent;

    #[test]
    fn figures_and_json() {
        let tx = TxCounters {
            packets: 1000,
            bytes: 64_000,
            first: 10,
            alloc_failures: 0,
            new_flows: 0,
        };
        let mut rx = RxCounters::default();
        for _ in 0..990 {
            rx.good(60, SeqEvent::InOrder);
        }
        rx.good(60, SeqEvent::Duplicate);
        rx.reject(crate::check::Reject::Bad(Bad::Ttl));
        rx.packets = 992;
        let r = RunResult::compute(500, 2.0, &tx, &rx, None);
        assert_eq!(r.lost, 10);
        assert!((r.loss_pct - 1.0).abs() < 1e-9);
        assert_eq!(r.tx_pps, 500.0);
        assert_eq!(r.tx_bps_l2, 256_000.0);
        assert_eq!(r.tx_bps_l1, (64_000.0 + 20_000.0) * 8.0 / 2.0);
        assert_eq!(r.bad["ttl"], 1);
        assert_eq!(r.bad.len(), Bad::COUNT);
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["lost"], 10);
        assert!(v["latency_ns"].is_null());
        assert!(summarize_run(&r).contains("ttl 1"));
        let z = RunResult::compute(0, 0.0, &TxCounters::default(), &rx, None);
        assert_eq!((z.tx_pps, z.loss_pct), (0.0, 0.0));
    }

    #[test]
    fn services_are_written_as_socket_addresses() {
        assert_eq!(service("192.0.2.100", 80), "192.0.2.100:80");
        assert_eq!(service("2001:db8::100", 80), "[2001:db8::100]:80");
    }
}
