//! Sluice's metric families, built from the daemon's `status`, `stats` and
//! raw service list. The names and help of the worker, connection-table,
//! port, service and real counters come from the catalogue
//! (`sluice_proto::figures`), which `stats --json`, DPDK telemetry and
//! `sluicectl` share.

use super::exposition::{Exposition, Format, Kind, Labels, Value};
use sluice_proto::figures::{self, Figure, FigureKind};
use sluice_proto::{RealInfo, ServiceInfo, ServiceList, Stats, Status, WorkerStats};

fn service_labels(s: &ServiceInfo) -> Labels {
    vec![
        ("protocol", s.protocol.to_string()),
        ("vip", s.vip.to_string()),
        ("port", s.port.to_string()),
    ]
}

fn real_labels(s: &ServiceInfo, r: &RealInfo) -> Labels {
    let mut l = service_labels(s);
    l.push((
        "real",
        std::net::SocketAddr::new(r.spec.ip, r.spec.port).to_string(),
    ));
    l
}

fn kind(k: FigureKind) -> Kind {
    match k {
        FigureKind::Counter => Kind::Counter,
        FigureKind::Gauge => Kind::Gauge,
    }
}

/// One family per figure of `list`, named `<prefix>_<name>`, with a
/// sample per item of `items`.
fn catalogue<T, I>(
    e: &mut Exposition,
    prefix: &str,
    list: &[Figure<T>],
    items: &[I],
    labels: impl Fn(&I) -> Labels,
    value: impl Fn(&I) -> &T,
) {
    for f in list {
        let family = e.family(format!("{prefix}_{}", f.name), kind(f.kind), f.help);
        for i in items {
            family.sample(labels(i), (f.get)(value(i)));
        }
    }
}

/// Renders the daemon's figures as an exposition in `format`. `services`
/// should be the raw list (counters since start), as counters must not go
/// back.
pub fn render(status: &Status, stats: &Stats, services: &ServiceList, format: Format) -> String {
    let mut e = Exposition::default();
    daemon(&mut e, status);
    workers(&mut e, stats);
    ports(&mut e, status, stats);
    lb(&mut e, services);
    reals(&mut e, services);
    scale_out(&mut e, status);
    e.write(format)
}

/// The BGP announcements and connection sync, when configured.
fn scale_out(e: &mut Exposition, status: &Status) {
    if let Some(b) = &status.bgp {
        e.gauge(
            "sluice_bgp_bird_in_sync",
            "Whether BIRD has taken the latest announcements.",
        )
        .sample(vec![], b.in_sync);
        let f = e.gauge(
            "sluice_bgp_vip_announced",
            "Whether the VIP is announced (0: withdrawn, the reason in the label).",
        );
        for v in &b.vips {
            let reason = v.reason.clone().unwrap_or_default();
            f.sample(
                vec![("vip", v.vip.to_string()), ("reason", reason)],
                v.announced,
            );
        }
    }
    let Some(y) = &status.sync else {
        return;
    };
    let counters: [(&str, &str, u64); 11] = [
        (
            "datagrams_sent",
            "Sync datagrams sent (one per peer).",
            y.datagrams_sent,
        ),
        (
            "conns_sent",
            "Connection records sent to the peers.",
            y.conns_sent,
        ),
        (
            "rate_limited",
            "Times the rate limit held sync records back (they wait for the next tick).",
            y.rate_limited,
        ),
        (
            "send_errors",
            "Sync datagrams the socket refused.",
            y.send_errors,
        ),
        (
            "datagrams_received",
            "Authentic, fresh sync datagrams received.",
            y.datagrams_received,
        ),
        (
            "conns_received",
            "Connection records received from the peers.",
            y.conns_received,
        ),
        (
            "rejected_auth",
            "Sync datagrams refused: authentication failed.",
            y.rejected_auth,
        ),
        (
            "rejected_replay",
            "Sync datagrams refused: replayed, or too old.",
            y.rejected_replay,
        ),
        (
            "rejected_malformed",
            "Sync datagrams refused: not sync, another version, malformed.",
            y.rejected_malformed,
        ),
        (
            "queue_full",
            "Received connection records lost: their worker's ring was full.",
            y.queue_full,
        ),
        (
            "requests_received",
            "Peers that joined and asked for every connection.",
            y.requests_received,
        ),
    ];
    for (name, help, n) in counters {
        e.counter(format!("sluice_sync_{name}"), help)
            .sample(vec![], n);
    }
    e.gauge("sluice_sync_peers", "Peers configured.")
        .sample(vec![], y.peers.len() as u64);
}

/// The daemon itself.
fn daemon(e: &mut Exposition, status: &Status) {
    e.gauge(
        "sluice_up",
        "Whether the Sluice daemon answers (always 1 when scraped).",
    )
    .sample(vec![], 1u64);
    e.family(
        "sluice",
        Kind::Info,
        "Sluice and DPDK versions of the running daemon.",
    )
    .sample(
        vec![
            ("version", status.version.clone()),
            ("dpdk_version", status.dpdk_version.clone()),
        ],
        1u64,
    );
    e.gauge("sluice_uptime_seconds", "Seconds since the daemon started.")
        .sample(vec![], status.uptime_secs);
}

/// The workers: their counters, drops by reason, busy share, and their
/// connection tables.
fn workers(e: &mut Exposition, stats: &Stats) {
    let wl = |w: &WorkerStats| -> Labels {
        vec![("worker", w.id.to_string()), ("lcore", w.lcore.to_string())]
    };
    catalogue(
        e,
        "sluice_worker",
        figures::WORKER,
        &stats.workers,
        wl,
        |w| w,
    );
    let f = e.counter(
        "sluice_worker_drops",
        "Packets dropped by the worker, by reason.",
    );
    for w in &stats.workers {
        for (reason, n) in &w.drops {
            f.sample(
                vec![("worker", w.id.to_string()), ("reason", reason.clone())],
                *n,
            );
        }
    }
    let f = e.gauge(
        "sluice_worker_busy_ratio",
        "Share of the worker's polls that received packets over the last seconds (0 idle, 1 saturated).",
    );
    for w in &stats.workers {
        f.sample(wl(w), w.busy_share);
    }
    let id = |w: &WorkerStats| -> Labels { vec![("worker", w.id.to_string())] };
    catalogue(
        e,
        "sluice_conntrack",
        figures::CONNTRACK,
        &stats.workers,
        id,
        |w| &w.conntrack,
    );
    catalogue(
        e,
        "sluice_conntrack6",
        figures::CONNTRACK,
        &stats.workers,
        id,
        |w| &w.conntrack6,
    );
}

/// The ports: the workers' traffic, the devices' counters, the links.
fn ports(e: &mut Exposition, status: &Status, stats: &Stats) {
    let name = |p: &sluice_proto::PortStats| -> Labels { vec![("port", p.name.clone())] };
    catalogue(e, "sluice_port", figures::PORT, &stats.ports, name, |p| p);
    let f = e.gauge("sluice_port_link_up", "Whether the port's link is up.");
    for p in &status.ports {
        f.sample(vec![("port", p.name.clone())], p.link_up);
    }
}

/// Every virtual service's and real's counters.
fn lb(e: &mut Exposition, services: &ServiceList) {
    for f in figures::LB {
        let family = e.counter(
            format!("sluice_service_{}", f.name),
            format!("{}, to and from the virtual service (since start).", f.help),
        );
        for s in &services.services {
            family.sample(service_labels(s), (f.get)(&s.stats));
        }
    }
    for f in figures::LB {
        let family = e.counter(
            format!("sluice_real_{}", f.name),
            format!("{}, to and from the real server (since start).", f.help),
        );
        for s in &services.services {
            for r in &s.reals {
                family.sample(real_labels(s, r), (f.get)(&r.stats));
            }
        }
    }
}

type RealFigure = (&'static str, &'static str, Kind, fn(&RealInfo) -> Value);

/// What the appliance knows of each real besides its counters.
const REAL: &[RealFigure] = &[
    (
        "sluice_real_up",
        "Whether the real server takes new connections (health checks, agent, passive detection).",
        Kind::Gauge,
        |r| (!r.health.state.checked() || r.health.available).into(),
    ),
    (
        "sluice_real_effective_weight",
        "The weight schedulers use now (agent, latency and drain applied).",
        Kind::Gauge,
        |r| r.health.effective_weight.into(),
    ),
    (
        "sluice_real_check_latency_seconds",
        "EWMA of the real server's successful health-check latency (0 when not checked).",
        Kind::Gauge,
        |r| Value::Float(r.health.latency_ewma_ms.unwrap_or(0.0) / 1000.0),
    ),
    (
        "sluice_real_active_connections",
        "Established connections to the real server.",
        Kind::Gauge,
        |r| r.active.into(),
    ),
    (
        "sluice_real_inactive_connections",
        "Other connections to the real server (handshake, closing, UDP).",
        Kind::Gauge,
        |r| r.inactive.into(),
    ),
    (
        "sluice_real_weight",
        "The real server's weight (0: quiesced).",
        Kind::Gauge,
        |r| r.spec.weight.into(),
    ),
    (
        "sluice_real_overloaded",
        "Whether the real server is over its upper connection threshold (no new connections).",
        Kind::Gauge,
        |r| r.overloaded.into(),
    ),
    (
        "sluice_real_health_transitions",
        "Availability changes seen by the real server's health checks and agent.",
        Kind::Counter,
        |r| r.health.transitions.into(),
    ),
    (
        "sluice_real_syn_timeouts",
        "NAT connections to the real server that expired unanswered (passive detection).",
        Kind::Counter,
        |r| r.health.syn_timeouts.into(),
    ),
    (
        "sluice_real_resets",
        "Connections the real server refused with a reset (passive detection).",
        Kind::Counter,
        |r| r.health.resets.into(),
    ),
];

/// Every real's state: health, weights, connections.
fn reals(e: &mut Exposition, services: &ServiceList) {
    for (name, help, k, get) in REAL {
        let family = e.family(*name, *k, *help);
        for s in &services.services {
            for r in &s.reals {
                family.sample(real_labels(s, r), get(r));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{check_structure, lines, sample, services, stats, status};
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn bgp_and_sync_figures_when_configured() {
        let (mut st, s, sv) = sample();
        let t = render(&st, &s, &sv, Format::Prometheus);
        assert!(!t.contains("sluice_bgp_") && !t.contains("sluice_sync_"));
        st.bgp = Some(Box::new(sluice_proto::BgpStatus {
            bird_socket: "/run/bird/bird.ctl".into(),
            include_file: "/run/sluice/bird.conf".into(),
            bird: "BIRD 2.0.12 ready.".into(),
            in_sync: true,
            applied_secs_ago: Some(3),
            error: None,
            alive: true,
            vips: vec![
                sluice_proto::VipAnnouncement {
                    vip: "192.0.2.10".parse().unwrap(),
                    announced: true,
                    reason: None,
                },
                sluice_proto::VipAnnouncement {
                    vip: "2001:db8::10".parse().unwrap(),
                    announced: false,
                    reason: Some("no usable real".into()),
                },
            ],
        }));
        st.sync = Some(Box::new(sluice_proto::SyncStatus {
            peers: vec!["198.51.100.12:8848".into()],
            conns_sent: 42,
            rejected_auth: 2,
            ..Default::default()
        }));
        for format in [Format::Prometheus, Format::OpenMetrics] {
            let t = render(&st, &s, &sv, format);
            check_structure(&t, format);
            let l = lines(&t);
            for want in [
                "sluice_bgp_bird_in_sync 1".to_string(),
                r#"sluice_bgp_vip_announced{vip="192.0.2.10",reason=""} 1"#.into(),
                r#"sluice_bgp_vip_announced{vip="2001:db8::10",reason="no usable real"} 0"#.into(),
                "sluice_sync_conns_sent_total 42".into(),
                "sluice_sync_rejected_auth_total 2".into(),
                "sluice_sync_peers 1".into(),
            ] {
                assert!(l.contains(&want.as_str()), "{want} missing:\n{t}");
            }
        }
    }

    #[test]
    fn prometheus_text_has_the_daemon_worker_and_port_lines() {
        let (st, s, sv) = sample();
        let t = render(&st, &s, &sv, Format::Prometheus);
        check_structure(&t, Format::Prometheus);
        let l = lines(&t);
        for want in [
            "# HELP sluice_up Whether the Sluice daemon answers (always 1 when scraped).",
            "# TYPE sluice_up gauge",
            "sluice_up 1",
            "# TYPE sluice_info gauge",
            r#"sluice_info{version="0.1.0",dpdk_version="DPDK 22.11.4"} 1"#,
            "sluice_uptime_seconds 77",
            "# TYPE sluice_worker_rx_packets_total counter",
            r#"sluice_worker_rx_packets_total{worker="0",lcore="3"} 10"#,
            r#"sluice_worker_rx_bytes_total{worker="0",lcore="3"} 1000"#,
            r#"sluice_worker_tx_packets_total{worker="0",lcore="3"} 9"#,
            r#"sluice_worker_tx_bytes_total{worker="0",lcore="3"} 900"#,
            r#"sluice_worker_busy_polls_total{worker="0",lcore="3"} 123"#,
            r#"sluice_worker_idle_polls_total{worker="0",lcore="3"} 456"#,
            r#"sluice_worker_arp_requests_answered_total{worker="0",lcore="3"} 1"#,
            r#"sluice_worker_arp_replies_learned_total{worker="0",lcore="3"} 2"#,
            r#"sluice_worker_icmp_echo_answered_total{worker="0",lcore="3"} 3"#,
            r#"sluice_worker_handoff_out_total{worker="0",lcore="3"} 4"#,
            r#"sluice_worker_handoff_in_total{worker="0",lcore="3"} 5"#,
            r#"sluice_worker_stateless_forwards_total{worker="0",lcore="3"} 6"#,
            r#"sluice_worker_held_for_arp_total{worker="0",lcore="3"} 8"#,
            r#"sluice_worker_arp_requests_sent_total{worker="0",lcore="3"} 9"#,
            "# TYPE sluice_worker_drops_total counter",
            r#"sluice_worker_drops_total{worker="0",reason="not_for_us"} 5"#,
            r#"sluice_worker_drops_total{worker="0",reason="tx_full"} 0"#,
            "# TYPE sluice_worker_busy_ratio gauge",
            r#"sluice_worker_busy_ratio{worker="0",lcore="3"} 0.25"#,
            "# TYPE sluice_conntrack_connections gauge",
            r#"sluice_conntrack_connections{worker="0"} 7"#,
            r#"sluice_conntrack_capacity{worker="0"} 65536"#,
            r#"sluice_conntrack_templates{worker="0"} 2"#,
            "# TYPE sluice_conntrack_inserts_total counter",
            r#"sluice_conntrack_inserts_total{worker="0"} 20"#,
            r#"sluice_conntrack_insert_failures_total{worker="0"} 1"#,
            r#"sluice_conntrack_expiries_total{worker="0"} 12"#,
            r#"sluice_conntrack_removals_total{worker="0"} 1"#,
            r#"sluice_conntrack6_connections{worker="0"} 3"#,
            r#"sluice_conntrack6_capacity{worker="0"} 16384"#,
            r#"sluice_conntrack6_inserts_total{worker="0"} 5"#,
            r#"sluice_port_rx_packets_total{port="lan0"} 10"#,
            r#"sluice_port_tx_bytes_total{port="lan0"} 900"#,
            r#"sluice_port_device_ipackets_total{port="lan0"} 11"#,
            r#"sluice_port_device_opackets_total{port="lan0"} 9"#,
            r#"sluice_port_device_ibytes_total{port="lan0"} 1100"#,
            r#"sluice_port_device_obytes_total{port="lan0"} 900"#,
            r#"sluice_port_device_imissed_total{port="lan0"} 1"#,
            r#"sluice_port_device_ierrors_total{port="lan0"} 2"#,
            r#"sluice_port_device_oerrors_total{port="lan0"} 3"#,
            r#"sluice_port_device_rx_nombuf_total{port="lan0"} 4"#,
            "# TYPE sluice_port_link_up gauge",
            r#"sluice_port_link_up{port="lan0"} 1"#,
        ] {
            assert!(l.contains(&want), "missing line {want:?} in:\n{t}");
        }
        // No UNIT lines, no OpenMetrics-only types.
        assert!(!t.contains("# UNIT") && !t.contains(" info\n"));
        // Rates are left to Prometheus.
        assert!(!t.contains("pps"));
    }

    #[test]
    fn ipv6_addresses_are_labelled_in_rfc_5952_text() {
        let (st, s, mut sv) = sample();
        let mut v6 = sv.services[0].clone();
        v6.vip = "2001:db8::100".parse().unwrap();
        v6.reals[0].spec.ip = "2001:db8:2::11".parse().unwrap();
        v6.reals.truncate(1);
        sv.services.push(v6);
        let t = render(&st, &s, &sv, Format::Prometheus);
        let want = r#"sluice_real_connections_total{protocol="tcp",vip="2001:db8::100",port="80",real="[2001:db8:2::11]:8080"} 30"#;
        assert!(lines(&t).contains(&want), "{t}");
    }

    #[test]
    fn prometheus_text_has_the_service_and_real_lines() {
        let (st, s, sv) = sample();
        let t = render(&st, &s, &sv, Format::Prometheus);
        let l = lines(&t);
        for want in [
            "# TYPE sluice_service_connections_total counter",
            r#"sluice_service_connections_total{protocol="tcp",vip="192.0.2.100",port="80"} 42"#,
            r#"sluice_service_packets_in_total{protocol="tcp",vip="192.0.2.100",port="80"} 200"#,
            r#"sluice_service_packets_out_total{protocol="tcp",vip="192.0.2.100",port="80"} 180"#,
            r#"sluice_service_bytes_in_total{protocol="tcp",vip="192.0.2.100",port="80"} 12000"#,
            r#"sluice_service_bytes_out_total{protocol="tcp",vip="192.0.2.100",port="80"} 100000"#,
            r#"sluice_real_connections_total{protocol="tcp",vip="192.0.2.100",port="80",real="198.51.100.11:8080"} 30"#,
            r#"sluice_real_connections_total{protocol="tcp",vip="192.0.2.100",port="80",real="198.51.100.12:8080"} 12"#,
            r#"sluice_real_packets_in_total{protocol="tcp",vip="192.0.2.100",port="80",real="198.51.100.11:8080"} 100"#,
            r#"sluice_real_packets_out_total{protocol="tcp",vip="192.0.2.100",port="80",real="198.51.100.11:8080"} 90"#,
            r#"sluice_real_bytes_in_total{protocol="tcp",vip="192.0.2.100",port="80",real="198.51.100.11:8080"} 6000"#,
            r#"sluice_real_bytes_out_total{protocol="tcp",vip="192.0.2.100",port="80",real="198.51.100.11:8080"} 50000"#,
            "# TYPE sluice_real_active_connections gauge",
            r#"sluice_real_active_connections{protocol="tcp",vip="192.0.2.100",port="80",real="198.51.100.11:8080"} 4"#,
            r#"sluice_real_inactive_connections{protocol="tcp",vip="192.0.2.100",port="80",real="198.51.100.11:8080"} 1"#,
            r#"sluice_real_weight{protocol="tcp",vip="192.0.2.100",port="80",real="198.51.100.11:8080"} 3"#,
            r#"sluice_real_weight{protocol="tcp",vip="192.0.2.100",port="80",real="198.51.100.12:8080"} 0"#,
            r#"sluice_real_overloaded{protocol="tcp",vip="192.0.2.100",port="80",real="198.51.100.11:8080"} 0"#,
            r#"sluice_real_overloaded{protocol="tcp",vip="192.0.2.100",port="80",real="198.51.100.12:8080"} 1"#,
        ] {
            assert!(l.contains(&want), "missing line {want:?} in:\n{t}");
        }
        // Health: a real without checks counts as up at its weight.
        assert!(t.contains("# TYPE sluice_real_up gauge"), "{t}");
        assert!(
            t.contains("# TYPE sluice_real_health_transitions_total counter"),
            "{t}"
        );
    }

    #[test]
    fn openmetrics_names_families_without_total_and_ends_with_eof() {
        let (st, s, sv) = sample();
        let t = render(&st, &s, &sv, Format::OpenMetrics);
        check_structure(&t, Format::OpenMetrics);
        let l = lines(&t);
        for want in [
            "# TYPE sluice_up gauge",
            "sluice_up 1",
            "# TYPE sluice info",
            r#"sluice_info{version="0.1.0",dpdk_version="DPDK 22.11.4"} 1"#,
            "# TYPE sluice_uptime_seconds gauge",
            "# UNIT sluice_uptime_seconds seconds",
            "# HELP sluice_worker_rx_packets Packets received by the worker, over every port.",
            "# TYPE sluice_worker_rx_packets counter",
            r#"sluice_worker_rx_packets_total{worker="0",lcore="3"} 10"#,
            "# TYPE sluice_worker_rx_bytes counter",
            "# UNIT sluice_worker_rx_bytes bytes",
            "# TYPE sluice_worker_drops counter",
            r#"sluice_worker_drops_total{worker="0",reason="not_for_us"} 5"#,
            "# TYPE sluice_service_connections counter",
            r#"sluice_service_connections_total{protocol="tcp",vip="192.0.2.100",port="80"} 42"#,
        ] {
            assert!(l.contains(&want), "missing line {want:?} in:\n{t}");
        }
        assert!(!l
            .iter()
            .any(|x| x.starts_with("# TYPE") && x.contains("_total ")));
        assert_eq!(l.last(), Some(&"# EOF"));
    }

    #[test]
    fn every_family_has_help_and_type_and_samples_are_contiguous() {
        let (st, s, sv) = sample();
        for format in [Format::Prometheus, Format::OpenMetrics] {
            let t = render(&st, &s, &sv, format);
            let mut helps = HashMap::new();
            let mut types = HashMap::new();
            for line in t.lines() {
                if let Some(r) = line.strip_prefix("# HELP ") {
                    let (n, h) = r.split_once(' ').unwrap();
                    assert!(!h.is_empty());
                    helps.insert(n.to_string(), ());
                }
                if let Some(r) = line.strip_prefix("# TYPE ") {
                    types.insert(r.split(' ').next().unwrap().to_string(), ());
                }
            }
            assert_eq!(helps.len(), types.len());
            for line in t.lines().filter(|l| !l.starts_with('#')) {
                let name = line.split(['{', ' ']).next().unwrap();
                let fam = match format {
                    Format::Prometheus => name,
                    Format::OpenMetrics => name
                        .strip_suffix("_total")
                        .or_else(|| name.strip_suffix("_info"))
                        .unwrap_or(name),
                };
                assert!(helps.contains_key(fam), "{format:?}: no HELP for {name}");
                assert!(types.contains_key(fam), "{format:?}: no TYPE for {name}");
            }
        }
    }

    #[test]
    fn label_values_are_escaped() {
        let weird = "a\"b\\c\nd";
        let (st, s, sv) = (status(weird), stats(weird), services());
        for format in [Format::Prometheus, Format::OpenMetrics] {
            let t = render(&st, &s, &sv, format);
            assert!(
                t.lines()
                    .any(|l| l == r#"sluice_port_device_ipackets_total{port="a\"b\\c\nd"} 11"#),
                "{t}"
            );
            assert!(
                t.lines()
                    .any(|l| l == r#"sluice_port_link_up{port="a\"b\\c\nd"} 1"#),
                "{t}"
            );
            // The raw newline never reaches the output.
            assert!(!t.contains("c\nd"));
            check_structure(&t, format);
        }
    }

    #[test]
    fn empty_families_are_left_out() {
        let (st, s, _) = sample();
        let t = render(
            &st,
            &s,
            &ServiceList { services: vec![] },
            Format::Prometheus,
        );
        assert!(!t.contains("sluice_service_") && !t.contains("sluice_real_"));
        assert!(t.contains("sluice_up 1"));
    }
}
