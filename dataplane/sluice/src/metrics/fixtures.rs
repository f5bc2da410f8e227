//! Sample daemon answers shared by the metrics tests.

use super::exposition::Format;
use sluice_proto::{
    ConnTableStats, DeviceStats, Forward, LbCounters, OnRealRemoval, PortStats, PortStatus,
    Protocol, RealInfo, RealSpec, ServiceInfo, ServiceList, Stats, Status, Traffic, WorkerStats,
    WorkerStatus,
};
use std::collections::BTreeMap;

pub(super) fn status(port_name: &str) -> Status {
    Status {
        version: "0.1.0".into(),
        dpdk_version: "DPDK 22.11.4".into(),
        pid: 42,
        uptime_secs: 77,
        control_lcore: 0,
        ports: vec![PortStatus {
            name: port_name.into(),
            port_id: 0,
            device: "net_null0".into(),
            driver: "net_null".into(),
            mac: "02:00:00:00:00:01".into(),
            link_up: true,
            speed_mbps: 10000,
            addresses: vec!["192.0.2.1/24".into()],
            rx_queues: 1,
            tx_queues: 1,
            rss: false,
        }],
        workers: vec![WorkerStatus {
            id: 0,
            lcore: 3,
            socket: 0,
        }],
        bgp: None,
        sync: None,
    }
}

pub(super) fn stats(port_name: &str) -> Stats {
    let mut drops = BTreeMap::new();
    drops.insert("not_for_us".to_string(), 5);
    drops.insert("tx_full".to_string(), 0);
    Stats {
        ports: vec![PortStats {
            name: port_name.into(),
            traffic: Traffic {
                rx_packets: 10,
                rx_bytes: 1000,
                tx_packets: 9,
                tx_bytes: 900,
            },
            device: DeviceStats {
                ipackets: 11,
                opackets: 9,
                ibytes: 1100,
                obytes: 900,
                imissed: 1,
                ierrors: 2,
                oerrors: 3,
                rx_nombuf: 4,
            },
            xstats: BTreeMap::new(),
        }],
        workers: vec![WorkerStats {
            lcore: 3,
            traffic: Traffic {
                rx_packets: 10,
                rx_bytes: 1000,
                tx_packets: 9,
                tx_bytes: 900,
            },
            arp_requests_answered: 1,
            arp_replies_learned: 2,
            icmp_echo_answered: 3,
            busy_polls: 123,
            idle_polls: 456,
            drops,
            conntrack: ConnTableStats {
                occupancy: 7,
                capacity: 65536,
                inserts: 20,
                insert_failures: 1,
                expiries: 12,
                removals: 1,
                templates: 2,
            },
            conntrack6: ConnTableStats {
                occupancy: 3,
                capacity: 16384,
                inserts: 5,
                ..ConnTableStats::default()
            },
            busy_share: 0.25,
            rx_pps: 3.5,
            handoff_out: 4,
            handoff_in: 5,
            stateless_forwards: 6,
            held_for_arp: 8,
            arp_requests_sent: 9,
            ..Default::default()
        }],
    }
}

pub(super) fn services() -> ServiceList {
    let real = |ip: [u8; 4], weight, active, overloaded, conns| RealInfo {
        spec: RealSpec {
            ip: ip.into(),
            port: 8080,
            weight,
            forward: Forward::Nat,
            upper_threshold: 0,
            lower_threshold: 0,
            check: None,
            agent: None,
        },
        active,
        inactive: 1,
        overloaded,
        health: Default::default(),
        stats: LbCounters {
            connections: conns,
            packets_in: 100,
            bytes_in: 6000,
            packets_out: 90,
            bytes_out: 50000,
        },
        rates: Default::default(),
    };
    ServiceList {
        services: vec![ServiceInfo {
            protocol: Protocol::Tcp,
            vip: [192, 0, 2, 100].into(),
            port: 80,
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
            reals: vec![
                real([198, 51, 100, 11], 3, 4, false, 30),
                real([198, 51, 100, 12], 0, 0, true, 12),
            ],
            stats: LbCounters {
                connections: 42,
                packets_in: 200,
                bytes_in: 12000,
                packets_out: 180,
                bytes_out: 100000,
            },
            rates: Default::default(),
        }],
    }
}

pub(super) fn sample() -> (Status, Stats, ServiceList) {
    (status("lan0"), stats("lan0"), services())
}

pub(super) fn lines(s: &str) -> Vec<&str> {
    s.lines().collect()
}

/// Checks the structure: every sample belongs to the family declared by
/// the HELP and TYPE lines just before it; no family appears twice.
pub(super) fn check_structure(text: &str, format: Format) {
    let om = format == Format::OpenMetrics;
    let mut helped: Option<String> = None;
    let mut current: Option<(String, String)> = None;
    let mut seen = std::collections::HashSet::new();
    let mut samples = 0;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap().to_string();
            assert!(seen.insert(name.clone()), "family {name} twice");
            helped = Some(name);
            current = None;
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut it = rest.split(' ');
            let name = it.next().unwrap().to_string();
            let ty = it.next().unwrap().to_string();
            assert_eq!(
                helped.as_deref(),
                Some(name.as_str()),
                "TYPE without HELP: {line}"
            );
            current = Some((name, ty));
        } else if line.starts_with("# UNIT ") {
            assert!(om, "UNIT in 0.0.4: {line}");
            let (fam, _) = current.as_ref().expect("UNIT after TYPE");
            let unit = line.rsplit(' ').next().unwrap();
            assert!(fam.ends_with(&format!("_{unit}")), "{line}");
        } else if line == "# EOF" {
            assert!(om);
        } else {
            assert!(!line.starts_with('#'), "unknown comment {line}");
            let name = line.split(['{', ' ']).next().unwrap();
            let (fam, ty) = current
                .as_ref()
                .unwrap_or_else(|| panic!("sample without HELP/TYPE: {line}"));
            let ok = match (om, ty.as_str()) {
                (false, "counter") => name == fam && name.ends_with("_total"),
                (true, "counter") => name == format!("{fam}_total"),
                (true, "info") => name == format!("{fam}_info"),
                (_, "gauge") => name == fam && !name.ends_with("_total"),
                _ => false,
            };
            assert!(ok, "sample {name} does not belong to {fam} ({ty})");
            // The value parses as a number.
            let v = line.rsplit(' ').next().unwrap();
            assert!(v.parse::<f64>().is_ok(), "bad value in {line}");
            samples += 1;
        }
    }
    assert!(samples > 50, "only {samples} samples");
    if om {
        assert!(text.ends_with("# EOF\n"), "no final # EOF");
        assert_eq!(text.matches("# EOF").count(), 1);
    } else {
        assert!(!text.contains("# EOF"));
    }
}
