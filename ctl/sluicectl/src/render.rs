//! Human-readable tables for replies.

use sluice_proto::figures::{self, Figure};
use sluice_proto::{Stats, Status};
use std::fmt::Write;

fn uptime(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    if d > 0 {
        format!("{d}d{h}h{m}m")
    } else if h > 0 {
        format!("{h}h{m}m{s}s")
    } else if m > 0 {
        format!("{m}m{s}s")
    } else {
        format!("{s}s")
    }
}

/// The `status` table.
pub fn status(s: &Status) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "sluice {} ({}), pid {}, up {}, control on lcore {}",
        s.version,
        s.dpdk_version,
        s.pid,
        uptime(s.uptime_secs),
        s.control_lcore
    );
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "{:<10} {:>3} {:<15} {:<17} {:<5} {:>6} {:>6} {:<3} ADDRESSES",
        "PORT", "ID", "DRIVER", "MAC", "LINK", "MBIT/S", "QUEUES", "RSS"
    );
    for p in &s.ports {
        let _ = writeln!(
            o,
            "{:<10} {:>3} {:<15} {:<17} {:<5} {:>6} {:>6} {:<3} {}",
            p.name,
            p.port_id,
            p.driver,
            p.mac,
            if p.link_up { "up" } else { "down" },
            p.speed_mbps,
            format!("{}/{}", p.rx_queues, p.tx_queues),
            if p.rss { "yes" } else { "no" },
            if p.addresses.is_empty() {
                "-".to_string()
            } else {
                p.addresses.join(", ")
            }
        );
    }
    let _ = writeln!(o);
    let _ = writeln!(o, "{:<6} {:>5} {:>6}", "WORKER", "LCORE", "SOCKET");
    for w in &s.workers {
        let _ = writeln!(o, "{:<6} {:>5} {:>6}", w.id, w.lcore, w.socket);
    }
    if let Some(b) = &s.bgp {
        bgp_status(&mut o, b);
    }
    if let Some(y) = &s.sync {
        sync_status(&mut o, y);
    }
    o
}

/// The connection-sync part of `status`.
fn sync_status(o: &mut String, y: &sluice_proto::SyncStatus) {
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "connection sync on {} (sender {}) with {}",
        y.listen,
        y.sender,
        y.peers.join(", ")
    );
    let _ = writeln!(
        o,
        "sent: {} datagrams, {} connections (held back by the rate limit {} times, {} send errors)",
        y.datagrams_sent, y.conns_sent, y.rate_limited, y.send_errors
    );
    let _ = writeln!(
        o,
        "received: {} datagrams, {} connections, {} requests for every connection; refused: {} unauthentic, {} replayed, {} malformed; {} lost to full rings",
        y.datagrams_received,
        y.conns_received,
        y.requests_received,
        y.rejected_auth,
        y.rejected_replay,
        y.rejected_malformed,
        y.queue_full
    );
}

/// The BGP part of `status`.
fn bgp_status(o: &mut String, b: &sluice_proto::BgpStatus) {
    let _ = writeln!(o);
    let _ = writeln!(o, "BGP through BIRD at {}: {}", b.bird_socket, b.bird);
    let taken = match (b.in_sync, b.applied_secs_ago) {
        (true, Some(s)) => format!("in sync (taken {} ago)", uptime(s)),
        (true, None) => "in sync".to_string(),
        (false, _) => format!(
            "NOT in sync: {}",
            b.error.as_deref().unwrap_or("being handed over")
        ),
    };
    let _ = writeln!(o, "announcements ({}): {taken}", b.include_file);
    if !b.alive {
        let _ = writeln!(o, "a worker stopped polling: every VIP is withdrawn");
    }
    let _ = writeln!(o, "{:<40} {:<10} REASON", "VIP", "STATE");
    for v in &b.vips {
        let _ = writeln!(
            o,
            "{:<40} {:<10} {}",
            v.vip.to_string(),
            if v.announced {
                "announced"
            } else {
                "withdrawn"
            },
            v.reason.as_deref().unwrap_or("-")
        );
    }
}

/// The port columns of `stats`, by catalogue name.
const PORT_COLUMNS: &[&str] = &[
    "rx_packets",
    "rx_bytes",
    "tx_packets",
    "tx_bytes",
    "device_imissed",
    "device_ierrors",
    "device_oerrors",
];

/// The worker columns of `stats`, by catalogue name.
const WORKER_COLUMNS: &[&str] = &[
    "rx_packets",
    "tx_packets",
    "arp_requests_answered",
    "arp_replies_learned",
    "icmp_echo_answered",
    "busy_polls",
    "idle_polls",
];

/// The figures named in `names`, from `list` (the names are this file's
/// constants, every one in the catalogue: a test says so).
fn columns<T>(list: &'static [Figure<T>], names: &[&str]) -> Vec<&'static Figure<T>> {
    names.iter().filter_map(|n| Figure::find(list, n)).collect()
}

/// A row of right-aligned figures, each as wide as its heading (at least
/// 10 columns).
fn figure_cells<T>(figures: &[&Figure<T>], value: Option<&T>) -> String {
    let mut o = String::new();
    for f in figures {
        let width = f.column.len().max(10);
        match value {
            Some(v) => write!(o, " {:>width$}", (f.get)(v)),
            None => write!(o, " {:>width$}", f.column),
        }
        .expect("writing to a String");
    }
    o
}

/// The `stats` tables: one line per port and per worker, with the
/// catalogue's column headings, then the drops by reason.
pub fn stats(s: &Stats) -> String {
    let mut o = String::new();
    let port = columns(figures::PORT, PORT_COLUMNS);
    let _ = writeln!(o, "{:<10}{}", "PORT", figure_cells(&port, None));
    for p in &s.ports {
        let _ = writeln!(o, "{:<10}{}", p.name, figure_cells(&port, Some(p)));
    }
    let _ = writeln!(o);
    let worker = columns(figures::WORKER, WORKER_COLUMNS);
    let conns = columns(figures::CONNTRACK, &["connections"]);
    let head = figure_cells(&worker, None) + &figure_cells(&conns, None);
    let _ = writeln!(
        o,
        "{:<6} {:>5}{head} {:>10} {:>10}",
        "WORKER", "LCORE", "CONNS6", "DROPS"
    );
    for w in &s.workers {
        let drops: u64 = w.drops.values().sum();
        let conns6 = w.conntrack6.occupancy;
        let cells = figure_cells(&worker, Some(w))
            + &figure_cells(&conns, Some(&w.conntrack))
            + &format!(" {conns6:>10}");
        let _ = writeln!(o, "{:<6} {:>5}{cells} {drops:>10}", w.id, w.lcore);
    }
    let totals = s.total_drops();
    let nonzero: Vec<_> = totals.iter().filter(|(_, v)| **v > 0).collect();
    let _ = writeln!(o);
    if nonzero.is_empty() {
        let _ = writeln!(o, "drops: none");
    } else {
        let _ = writeln!(o, "{:<24} {:>12}", "DROP REASON", "PACKETS");
        for (k, v) in nonzero {
            let _ = writeln!(o, "{k:<24} {v:>12}");
        }
    }
    o
}

/// The `list` table, in the manner of `ipvsadm -Ln` (with `--stats` or
/// `--rate`, of `ipvsadm -Ln --stats` or `--rate`).
pub fn services(l: &sluice_proto::ServiceList, args: &crate::verbs::ListArgs) -> String {
    let mut o = String::new();
    if args.stats || args.rate {
        let heads = if args.rate {
            ["CPS", "InPPS", "OutPPS", "InBPS", "OutBPS"]
        } else {
            ["Conns", "InPkts", "OutPkts", "InBytes", "OutBytes"]
        };
        let _ = writeln!(
            o,
            "{:<5} {:<28} {:>8} {:>10} {:>10} {:>12} {:>12}",
            "Prot", "LocalAddress:Port", heads[0], heads[1], heads[2], heads[3], heads[4]
        );
        let _ = writeln!(o, "  -> RemoteAddress:Port");
    } else {
        let _ = writeln!(
            o,
            "{:<5} {:<28} Scheduler Flags",
            "Prot", "LocalAddress:Port"
        );
        let _ = writeln!(
            o,
            "  -> {:<27} {:<7} {:>6} {:>10} {:>10}",
            "RemoteAddress:Port", "Forward", "Weight", "ActiveConn", "InActConn"
        );
    }
    for s in &l.services {
        let addr = std::net::SocketAddr::new(s.vip, s.port).to_string();
        let proto = s.protocol.to_string().to_uppercase();
        if args.rate {
            let r = s.rates;
            let _ = writeln!(
                o,
                "{:<5} {:<28} {:>8.0} {:>10.0} {:>10.0} {:>12.0} {:>12.0}",
                proto, addr, r.connections, r.packets_in, r.packets_out, r.bytes_in, r.bytes_out
            );
        } else if args.stats {
            let c = s.stats;
            let _ = writeln!(
                o,
                "{:<5} {:<28} {:>8} {:>10} {:>10} {:>12} {:>12}",
                proto, addr, c.connections, c.packets_in, c.packets_out, c.bytes_in, c.bytes_out
            );
            if !s.local_addresses.is_empty() {
                let _ = writeln!(o, "  {}", local_port_use(s));
            }
        } else {
            let mut flags = String::new();
            if let Some(p) = s.persistence {
                let _ = write!(flags, " persistent {}", p.timeout_secs);
                if let Some(m) = p.netmask {
                    let _ = write!(flags, " mask /{m}");
                }
            }
            if s.on_real_removal == sluice_proto::OnRealRemoval::End {
                flags.push_str(" end-on-removal");
            }
            if !s.local_addresses.is_empty() {
                let l: Vec<String> = s.local_addresses.iter().map(|a| a.to_string()).collect();
                let _ = write!(flags, " laddr {}", l.join(","));
            }
            let _ = writeln!(o, "{:<5} {:<28} {}{}", proto, addr, s.scheduler, flags);
        }
        for r in &s.reals {
            let raddr = std::net::SocketAddr::new(r.spec.ip, r.spec.port).to_string();
            if args.rate {
                let t = r.rates;
                let _ = writeln!(
                    o,
                    "  -> {:<29} {:>8.0} {:>10.0} {:>10.0} {:>12.0} {:>12.0}",
                    raddr, t.connections, t.packets_in, t.packets_out, t.bytes_in, t.bytes_out
                );
            } else if args.stats {
                let c = r.stats;
                let _ = writeln!(
                    o,
                    "  -> {:<29} {:>8} {:>10} {:>10} {:>12} {:>12}",
                    raddr, c.connections, c.packets_in, c.packets_out, c.bytes_in, c.bytes_out
                );
            } else {
                let fwd = match r.spec.forward {
                    sluice_proto::Forward::Nat => "Masq",
                    sluice_proto::Forward::Dr => "Route",
                    sluice_proto::Forward::Ipip => "Tunnel",
                    sluice_proto::Forward::Gue => "GUE",
                    sluice_proto::Forward::FullNat => "FullNat",
                };
                let _ = writeln!(
                    o,
                    "  -> {:<27} {:<7} {:>6} {:>10} {:>10}{}",
                    raddr,
                    fwd,
                    r.spec.weight,
                    r.active,
                    r.inactive,
                    health_suffix(r)
                );
            }
        }
    }
    o
}

/// A full-NAT service's local-port use: the ports its connections hold,
/// and, for the real whose port has the most, how close that is to the
/// most one real's port can have (local addresses times local ports).
fn local_port_use(s: &sluice_proto::ServiceInfo) -> String {
    let held = |r: &sluice_proto::RealInfo| r.active + r.inactive;
    let full_nat = s
        .reals
        .iter()
        .filter(|r| r.spec.forward == sluice_proto::Forward::FullNat);
    let total: u64 = full_nat.clone().map(held).sum();
    let busiest = full_nat.map(held).max().unwrap_or(0);
    let pct = if s.local_ports_per_real > 0 {
        busiest as f64 * 100.0 / s.local_ports_per_real as f64
    } else {
        0.0
    };
    format!(
        "local ports: {total} in use; busiest real {busiest} of {} ({pct:.1} %), {} local addresses",
        s.local_ports_per_real,
        s.local_addresses.len()
    )
}

/// What `list` appends to a real's line: its health when not plainly up.
fn health_suffix(r: &sluice_proto::RealInfo) -> String {
    let mut s = String::new();
    if r.overloaded {
        s.push_str(" overloaded");
    }
    use sluice_proto::HealthState::*;
    match r.health.state {
        Unchecked | Up | Unknown => {}
        st => {
            s.push(' ');
            s.push_str(st.as_str());
        }
    }
    if let Some(d) = r.health.drain_deadline_secs {
        s.push_str(&format!(" (deadline {d}s)"));
    }
    if r.health.state.checked() && r.health.effective_weight != r.spec.weight {
        s.push_str(&format!(" eff.weight {}", r.health.effective_weight));
    }
    s
}

/// The `health` table: every real's health state and its latest check.
pub fn health(l: &sluice_proto::ServiceList) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "{:<24} {:<21} {:<7} {:<5} {:>8} {:>8} {:>6} DETAIL",
        "SERVICE", "REAL", "STATE", "CHECK", "LAT-MS", "SINCE-S", "WEIGHT"
    );
    for s in &l.services {
        let svc = format!(
            "{} {}",
            s.protocol,
            std::net::SocketAddr::new(s.vip, s.port)
        );
        for r in &s.reals {
            let h = &r.health;
            let mut detail = h.last_detail.clone().unwrap_or_default();
            if let Some(a) = &h.agent_reply {
                detail.push_str(&format!(" agent:{a}"));
            }
            if let Some(e) = &h.agent_error {
                detail.push_str(&format!(" agent-error:{e}"));
            }
            let _ = writeln!(
                o,
                "{:<24} {:<21} {:<7} {:<5} {:>8} {:>8} {:>6} {}",
                svc,
                std::net::SocketAddr::new(r.spec.ip, r.spec.port).to_string(),
                h.state.as_str(),
                if h.check.is_empty() { "none" } else { &h.check },
                h.last_latency_ms
                    .map(|x| format!("{x:.1}"))
                    .unwrap_or_else(|| "-".into()),
                h.since_change_secs
                    .map(|x| x.to_string())
                    .unwrap_or_else(|| "-".into()),
                h.effective_weight,
                detail.trim()
            );
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_proto::{PortStats, WorkerStats};

    #[test]
    fn every_stats_column_is_in_the_catalogue() {
        assert_eq!(
            columns(figures::PORT, PORT_COLUMNS).len(),
            PORT_COLUMNS.len()
        );
        assert_eq!(
            columns(figures::WORKER, WORKER_COLUMNS).len(),
            WORKER_COLUMNS.len()
        );
    }

    #[test]
    fn stats_heads_columns_with_the_catalogue_and_aligns_them() {
        let mut w = WorkerStats {
            id: 1,
            lcore: 3,
            ..Default::default()
        };
        w.traffic.rx_packets = 1234567;
        w.conntrack.occupancy = 42;
        w.conntrack6.occupancy = 17;
        w.drops.insert("not_for_us".into(), 5);
        let p = PortStats {
            name: "lan0".into(),
            traffic: Default::default(),
            device: Default::default(),
            xstats: Default::default(),
        };
        let t = stats(&Stats {
            ports: vec![p],
            workers: vec![w],
        });
        let lines: Vec<&str> = t.lines().collect();
        assert!(
            lines[0].starts_with("PORT") && lines[0].contains("RX-PKTS"),
            "{t}"
        );
        assert!(lines[0].contains("MISSED"), "{t}");
        let head = lines.iter().find(|l| l.starts_with("WORKER")).unwrap();
        let row = lines.iter().find(|l| l.starts_with('1')).unwrap();
        assert_eq!(head.len(), row.len(), "{t}");
        for col in ["RX-PKTS", "ICMP-ECHO", "CONNS", "CONNS6", "DROPS"] {
            assert!(head.contains(col), "{t}");
        }
        let end = head.find("RX-PKTS").unwrap() + "RX-PKTS".len();
        assert!(row[..end].ends_with("1234567"), "{t}");
        assert!(row.ends_with(" 17          5"), "{t}");
        assert!(row.contains(" 42 "), "{t}");
        assert!(t.contains("not_for_us"), "{t}");
    }
}
