//! One frame of `top`: the lines drawn from one reading of the daemon's
//! services and counters, cut to the screen's width and height. Pure, so
//! that `--once` and the tests see exactly what the live view draws.
//!
//! Every line is at most 80 columns whatever the addresses and figures: a
//! 26-column name, seven 6-column figures, and `OVER` after a real over its
//! upper connection threshold.

use crate::units::{clock_utc, human, human_count, percent};
use sluice_proto::{Rates, ServiceList, Stats};
use std::time::{Duration, SystemTime};

/// What one refresh read from the daemon.
#[derive(Debug, Clone)]
pub struct Reading {
    /// When it was fetched.
    pub at: SystemTime,
    /// `service list` (reported counters, rates).
    pub services: ServiceList,
    /// `stats`.
    pub stats: Stats,
}

/// Width of the first column: `TCP  255.255.255.255:65535` or
/// `  -> 255.255.255.255:65535`.
const NAME: usize = 26;

fn traffic_cells(r: &Rates) -> String {
    format!(
        " {:>6} {:>6} {:>6} {:>6} {:>6}",
        human(r.packets_in),
        human(r.packets_out),
        human(r.bytes_in * 8.0),
        human(r.bytes_out * 8.0),
        human(r.connections)
    )
}

/// Every line of the view, uncut. `interactive` adds the key hint.
pub fn lines(s: &Reading, interval: Duration, interactive: bool) -> Vec<String> {
    let mut o = Vec::new();
    let n = s.services.services.len();
    let w = s.stats.workers.len();
    o.push(format!(
        "sluice top  {} UTC  {n} service{}  {w} worker{}  every {}s{}",
        clock_utc(s.at),
        if n == 1 { "" } else { "s" },
        if w == 1 { "" } else { "s" },
        interval.as_secs_f64(),
        if interactive { "  q: quit" } else { "" }
    ));
    // Workers come first: there are few of them, while the services and
    // reals may run past the bottom of the screen.
    o.push(String::new());
    o.push(format!(
        "{:<6} {:>5} {:>6} {:>7} {:>7} {:>7} {:>6} {:>7}",
        "WORKER", "LCORE", "BUSY", "RXp/s", "CONNS", "CAP", "USED", "CONNS6"
    ));
    for wk in &s.stats.workers {
        let ct = wk.conntrack;
        o.push(format!(
            "{:<6} {:>5} {:>6} {:>7} {:>7} {:>7} {:>6} {:>7}",
            wk.id,
            wk.lcore,
            percent(wk.busy_share, 1.0),
            human(wk.rx_pps),
            human_count(ct.occupancy),
            human_count(ct.capacity),
            percent(ct.occupancy as f64, ct.capacity as f64),
            human_count(wk.conntrack6.occupancy)
        ));
    }
    o.push(String::new());
    o.push(format!(
        "{:<NAME$} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6}",
        "PROT SERVICE / -> REAL", "INp/s", "OUTp/s", "INb/s", "OUTb/s", "CONN/s", "ACTIVE", "INACT"
    ));
    if n == 0 {
        o.push("(no services)".into());
    }
    for sv in &s.services.services {
        let active: u64 = sv.reals.iter().map(|r| r.active).sum();
        let inactive: u64 = sv.reals.iter().map(|r| r.inactive).sum();
        let name = format!(
            "{:<4} {}",
            sv.protocol.to_string().to_uppercase(),
            std::net::SocketAddr::new(sv.vip, sv.port)
        );
        o.push(format!(
            "{name:<NAME$}{} {:>6} {:>6}",
            traffic_cells(&sv.rates),
            human_count(active),
            human_count(inactive)
        ));
        for r in &sv.reals {
            let name = format!("  -> {}", std::net::SocketAddr::new(r.spec.ip, r.spec.port));
            o.push(format!(
                "{name:<NAME$}{} {:>6} {:>6}{}",
                traffic_cells(&r.rates),
                human_count(r.active),
                human_count(r.inactive),
                if r.overloaded { " OVER" } else { "" }
            ));
        }
    }
    o
}

/// Cuts `lines` to `width` characters each and to `height` lines, the
/// last of which then says how many were left out.
pub fn fit(mut lines: Vec<String>, width: usize, height: usize) -> Vec<String> {
    if lines.len() > height {
        let keep = height.saturating_sub(1);
        let more = lines.len() - keep;
        lines.truncate(keep);
        if height > 0 {
            lines.push(format!("... {more} more"));
        }
    }
    for l in &mut lines {
        if let Some((i, _)) = l.char_indices().nth(width) {
            l.truncate(i);
        }
    }
    lines
}

/// The frame for a screen of `width` by `height`.
pub fn frame(
    s: &Reading,
    interval: Duration,
    interactive: bool,
    width: usize,
    height: usize,
) -> Vec<String> {
    fit(lines(s, interval, interactive), width, height)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_proto::{
        ConnTableStats, Forward, LbCounters, OnRealRemoval, Protocol, RealInfo, RealSpec,
        ServiceInfo, WorkerStats,
    };

    fn real(i: u8, active: u64) -> RealInfo {
        RealInfo {
            spec: RealSpec {
                ip: std::net::Ipv4Addr::new(255, 255, 255, i).into(),
                port: 65535,
                weight: 1,
                forward: Forward::Nat,
                upper_threshold: 0,
                lower_threshold: 0,
                check: None,
                agent: None,
            },
            active,
            inactive: 3,
            overloaded: i == 2,
            health: Default::default(),
            stats: LbCounters::default(),
            rates: Rates {
                connections: 999.9e12,
                packets_in: 1.5e6,
                packets_out: 999.6,
                bytes_in: 1.25e9,
                bytes_out: 3.0,
            },
        }
    }

    fn reading(reals: u8, workers: usize) -> Reading {
        Reading {
            at: SystemTime::UNIX_EPOCH,
            services: ServiceList {
                services: vec![ServiceInfo {
                    protocol: Protocol::Udp,
                    vip: std::net::Ipv4Addr::new(255, 255, 255, 255).into(),
                    port: 65535,
                    scheduler: sluice_proto::SchedulerKind::Wlc,
                    persistence: None,
                    on_real_removal: OnRealRemoval::Keep,
                    mh_table_size: None,
                    check: None,
                    agent: None,
                    on_real_down: Default::default(),
                    weight_by_latency: false,
                    expire_quiescent_template: false,
                    on_miss: None,
                    passive_health: None,
                    syn_proxy: Default::default(),
                    local_addresses: Vec::new(),
                    local_ports_per_real: 0,
                    reals: (1..=reals).map(|i| real(i, 123_456_789)).collect(),
                    stats: LbCounters::default(),
                    rates: Rates::default(),
                }],
            },
            stats: Stats {
                ports: vec![],
                workers: (0..workers)
                    .map(|id| WorkerStats {
                        id,
                        lcore: 1000 + id as u32,
                        conntrack: ConnTableStats {
                            occupancy: 1_000_000,
                            capacity: 8_000_000,
                            ..Default::default()
                        },
                        busy_share: 1.0,
                        rx_pps: 14.88e6,
                        ..Default::default()
                    })
                    .collect(),
            },
        }
    }

    #[test]
    fn widest_lines_fit_80_columns_uncut() {
        let s = reading(1, 1);
        for l in lines(&s, Duration::from_secs(1), true) {
            assert!(l.len() <= 80, "{} > 80: {l:?}", l.len());
        }
        let l = lines(&s, Duration::from_secs(1), false);
        assert!(l[3].starts_with("0       1000 100.0%   14.9M   1.00M   8.00M  12.5%"));
        assert!(l
            .iter()
            .any(|l| l.starts_with("UDP  255.255.255.255:65535")));
        assert!(l
            .iter()
            .any(|l| l.starts_with("  -> 255.255.255.1:65535    1.50M  1.00k  10.0G")));
    }

    #[test]
    fn cut_to_the_screen() {
        let s = reading(40, 2);
        let f = frame(&s, Duration::from_millis(500), true, 80, 24);
        assert_eq!(f.len(), 24);
        assert!(f.iter().all(|l| l.chars().count() <= 80));
        let all = lines(&s, Duration::from_millis(500), true).len();
        assert_eq!(f[23], format!("... {} more", all - 23));
        let f = frame(&s, Duration::from_secs(1), true, 20, 3);
        assert_eq!(f.len(), 3);
        assert!(f.iter().all(|l| l.chars().count() <= 20));
        assert!(frame(&s, Duration::from_secs(1), true, 80, 0).is_empty());
        let f = frame(&reading(1, 1), Duration::from_secs(1), false, 80, 24);
        assert_eq!(f.len(), 8);
        assert!(f[0].contains("every 1s"));
    }
}
