//! The catalogue of Sluice's figures: every worker, connection-table, port,
//! service and real counter with the one name every view uses for it: its
//! field in `stats --json`, its metric family (`sluice_worker_<name>`,
//! `sluice_conntrack_<name>`, ...), its DPDK telemetry key, and the column
//! `sluicectl` heads it with. The metrics endpoint, the telemetry commands
//! and `sluicectl` all read their names and help from here.

use crate::{ConnTableStats, LbCounters, PortStats, WorkerStats};

/// Whether a figure only grows (a counter) or moves both ways (a gauge).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FigureKind {
    /// Only grows (restarts with the daemon).
    Counter,
    /// Goes up and down.
    Gauge,
}

/// One figure of type `T`.
pub struct Figure<T> {
    /// Its name: the field in `stats --json`, the telemetry key, and the
    /// last part of the metric family's name.
    pub name: &'static str,
    /// Its column heading in `sluicectl`'s tables.
    pub column: &'static str,
    /// What it counts, for metric HELP lines.
    pub help: &'static str,
    /// Counter or gauge.
    pub kind: FigureKind,
    /// Its value.
    pub get: fn(&T) -> u64,
}

impl<T> Figure<T> {
    /// The figure named `name` in `list`.
    pub fn find(list: &'static [Figure<T>], name: &str) -> Option<&'static Figure<T>> {
        list.iter().find(|f| f.name == name)
    }
}

type Text = &'static str;

const fn figure<T>(
    kind: FigureKind,
    name: Text,
    column: Text,
    help: Text,
    get: fn(&T) -> u64,
) -> Figure<T> {
    Figure {
        name,
        column,
        help,
        kind,
        get,
    }
}

const fn counter<T>(name: Text, column: Text, help: Text, get: fn(&T) -> u64) -> Figure<T> {
    figure(FigureKind::Counter, name, column, help, get)
}

const fn gauge<T>(name: Text, column: Text, help: Text, get: fn(&T) -> u64) -> Figure<T> {
    figure(FigureKind::Gauge, name, column, help, get)
}

/// A worker's counters (`sluice_worker_<name>`).
pub const WORKER: &[Figure<WorkerStats>] = &[
    counter(
        "rx_packets",
        "RX-PKTS",
        "Packets received by the worker, over every port.",
        |w| w.traffic.rx_packets,
    ),
    counter(
        "rx_bytes",
        "RX-BYTES",
        "Bytes received by the worker, over every port.",
        |w| w.traffic.rx_bytes,
    ),
    counter(
        "tx_packets",
        "TX-PKTS",
        "Packets transmitted by the worker, over every port.",
        |w| w.traffic.tx_packets,
    ),
    counter(
        "tx_bytes",
        "TX-BYTES",
        "Bytes transmitted by the worker, over every port.",
        |w| w.traffic.tx_bytes,
    ),
    counter(
        "busy_polls",
        "BUSY-POLLS",
        "Polls that received at least one packet.",
        |w| w.busy_polls,
    ),
    counter(
        "idle_polls",
        "IDLE-POLLS",
        "Polls that received nothing.",
        |w| w.idle_polls,
    ),
    counter(
        "busy_cycles",
        "BUSY-CYCLES",
        "TSC cycles spent in polls that received packets.",
        |w| w.busy_cycles,
    ),
    counter(
        "arp_requests_answered",
        "ARP-ANS",
        "ARP requests for the appliance's addresses, answered.",
        |w| w.arp_requests_answered,
    ),
    counter(
        "arp_replies_learned",
        "ARP-LRN",
        "ARP replies to the appliance, learned.",
        |w| w.arp_replies_learned,
    ),
    counter(
        "icmp_echo_answered",
        "ICMP-ECHO",
        "ICMP echo requests to the appliance's addresses, answered.",
        |w| w.icmp_echo_answered,
    ),
    counter(
        "nd_solicits_answered",
        "ND-ANS",
        "IPv6 neighbour solicitations for the appliance's addresses, answered.",
        |w| w.nd_solicits_answered,
    ),
    counter(
        "nd_adverts_learned",
        "ND-LRN",
        "IPv6 neighbour advertisements, learned.",
        |w| w.nd_adverts_learned,
    ),
    counter(
        "icmpv6_echo_answered",
        "ICMP6-ECHO",
        "ICMPv6 echo requests to the appliance's addresses, answered.",
        |w| w.icmpv6_echo_answered,
    ),
    counter(
        "handoff_out",
        "HANDOFF-OUT",
        "Packets this worker handed to the worker that owns their flow.",
        |w| w.handoff_out,
    ),
    counter(
        "handoff_in",
        "HANDOFF-IN",
        "Packets other workers handed to this worker.",
        |w| w.handoff_in,
    ),
    counter(
        "stateless_forwards",
        "STATELESS",
        "New connections forwarded by consistent hash without a table entry (table full).",
        |w| w.stateless_forwards,
    ),
    counter(
        "tableless_adopted",
        "ADOPTED",
        "Connections forwarded without an entry (table full) given one once the table had room.",
        |w| w.tableless_adopted,
    ),
    counter(
        "hashed_on_miss",
        "MISS-HASH",
        "Mid-connection TCP segments of no entry scheduled by the service's hash (on_miss = hash), an entry made: connections moved here from another appliance.",
        |w| w.hashed_on_miss,
    ),
    counter(
        "sync_queued",
        "SYNC-OUT",
        "Connections (new, or changing state) queued to be told to the peer appliances.",
        |w| w.sync_queued,
    ),
    counter(
        "sync_overflow",
        "SYNC-LOST",
        "Connections not told to peers because the worker's sync queue was full.",
        |w| w.sync_overflow,
    ),
    counter(
        "sync_installed",
        "SYNC-IN",
        "Connections peers told about, installed (new entries) or updated (state) in this worker's table.",
        |w| w.sync_installed,
    ),
    counter(
        "sync_unknown",
        "SYNC-UNKNOWN",
        "Connections peers told about and not installed: their service or real is not here, or the table is full.",
        |w| w.sync_unknown,
    ),
    counter(
        "time_exceeded_sent",
        "TTL-ICMP",
        "ICMP time-exceeded errors sent for packets whose TTL ran out here (rate-limited).",
        |w| w.time_exceeded_sent,
    ),
    counter(
        "too_big_sent",
        "TOO-BIG",
        "ICMP fragmentation-needed (packet-too-big) errors sent for packets too big for a tunnel once encapsulated (rate-limited).",
        |w| w.too_big_sent,
    ),
    counter(
        "tunnel_fragmented",
        "TUN-FRAG",
        "Packets too big for a tunnel that could be fragmented, sent in two outer fragments.",
        |w| w.tunnel_fragmented,
    ),
    counter(
        "fragments_remembered",
        "FRAG-FIRST",
        "First fragments whose datagram was remembered, for its later fragments to follow.",
        |w| w.fragments_remembered,
    ),
    counter(
        "fragments_replaced",
        "FRAG-REPL",
        "First fragments remembered in place of a live datagram (the worker's fragment table set was full).",
        |w| w.fragments_replaced,
    ),
    counter(
        "fragments_unremembered",
        "FRAG-UNREM",
        "First fragments forwarded without a connection entry (the table full): their later fragments cannot follow.",
        |w| w.fragments_unremembered,
    ),
    counter(
        "fragments_followed",
        "FRAG-FOLLOW",
        "Later fragments forwarded the way their datagram's first fragment went.",
        |w| w.fragments_followed,
    ),
    counter(
        "fragments_held",
        "FRAG-HELD",
        "Later fragments held because their datagram's first fragment had not come yet.",
        |w| w.fragments_held,
    ),
    counter(
        "syns",
        "SYNS",
        "SYNs to virtual services that would open a connection (checksum right).",
        |w| w.syns,
    ),
    counter(
        "syn_cookies_sent",
        "COOKIES",
        "SYNs answered with a SYN cookie by the SYN proxy.",
        |w| w.syn_cookies_sent,
    ),
    counter(
        "syn_cookies_valid",
        "COOKIE-OK",
        "ACKs carrying a valid SYN cookie: proxied connections opened to a real.",
        |w| w.syn_cookies_valid,
    ),
    counter(
        "syn_cookies_invalid",
        "COOKIE-BAD",
        "ACKs without a connection checked for a SYN cookie in vain.",
        |w| w.syn_cookies_invalid,
    ),
    counter(
        "syn_proxy_handshakes",
        "PROXIED",
        "Proxied handshakes completed with reals.",
        |w| w.syn_proxy_handshakes,
    ),
    gauge(
        "half_open",
        "HALF-OPEN",
        "Half-open connections now: SYN_RECV entries whose client has not completed the handshake (what a SYN flood leaves).",
        |w| w.half_open,
    ),
    counter(
        "proxy_headers_sent",
        "PROXYHDR",
        "PROXY protocol headers put in front of client data (each TCP connection's first segment and its retransmissions, every UDP datagram).",
        |w| w.proxy_headers_sent,
    ),
    gauge(
        "local_ports_in_use",
        "LPORTS",
        "Full-NAT connections now, each holding one of the worker's local ports.",
        |w| w.local_ports_in_use,
    ),
    gauge(
        "syn_proxy_engaged",
        "SYNPROXY",
        "1 while the SYN proxy is engaged for services left at syn_proxy = auto (a SYN flood is on).",
        |w| w.syn_proxy_engaged,
    ),
    counter(
        "held_for_arp",
        "HELD",
        "Packets held while a next hop's MAC address was being resolved.",
        |w| w.held_for_arp,
    ),
    counter(
        "arp_requests_sent",
        "ARP-SENT",
        "ARP requests sent for next hops (to resolve them and to re-check them).",
        |w| w.arp_requests_sent,
    ),
    counter(
        "nd_solicits_sent",
        "ND-SENT",
        "IPv6 neighbour solicitations sent for next hops (to resolve them and to re-check them).",
        |w| w.nd_solicits_sent,
    ),
];

/// A worker's connection table: the IPv4 one is `sluice_conntrack_<name>`
/// (the field of `stats --json` is `conntrack.<field>`, see
/// [`conntrack_field`]), the IPv6 one `sluice_conntrack6_<name>`
/// (`conntrack6.<field>`).
pub const CONNTRACK: &[Figure<ConnTableStats>] = &[
    gauge(
        "connections",
        "CONNS",
        "Connections in the worker's table now.",
        |t| t.occupancy,
    ),
    gauge(
        "capacity",
        "CAPACITY",
        "Capacity of the worker's connection table.",
        |t| t.capacity,
    ),
    gauge(
        "templates",
        "TEMPLATES",
        "Persistence templates in the worker's table now.",
        |t| t.templates,
    ),
    counter(
        "inserts",
        "INSERTS",
        "Connections inserted into the worker's table.",
        |t| t.inserts,
    ),
    counter(
        "insert_failures",
        "INSERT-FAIL",
        "Insertions refused because the worker's table was full.",
        |t| t.insert_failures,
    ),
    counter(
        "expiries",
        "EXPIRIES",
        "Connections expired by timeout.",
        |t| t.expiries,
    ),
    counter(
        "removals",
        "REMOVALS",
        "Connections removed (closed, or ended by a real's removal).",
        |t| t.removals,
    ),
];

/// The field of `stats --json`'s `conntrack` that a [`CONNTRACK`] figure
/// reads (the table's own names: `occupancy` is the metric `connections`).
pub fn conntrack_field(name: &str) -> &str {
    match name {
        "connections" => "occupancy",
        other => other,
    }
}

/// A port's counters (`sluice_port_<name>`).
pub const PORT: &[Figure<PortStats>] = &[
    counter(
        "rx_packets",
        "RX-PKTS",
        "Packets the workers received on the port.",
        |p| p.traffic.rx_packets,
    ),
    counter(
        "rx_bytes",
        "RX-BYTES",
        "Bytes the workers received on the port.",
        |p| p.traffic.rx_bytes,
    ),
    counter(
        "tx_packets",
        "TX-PKTS",
        "Packets the workers transmitted on the port.",
        |p| p.traffic.tx_packets,
    ),
    counter(
        "tx_bytes",
        "TX-BYTES",
        "Bytes the workers transmitted on the port.",
        |p| p.traffic.tx_bytes,
    ),
    counter(
        "device_ipackets",
        "DEV-RX",
        "Packets received, as the device counts them.",
        |p| p.device.ipackets,
    ),
    counter(
        "device_opackets",
        "DEV-TX",
        "Packets sent, as the device counts them.",
        |p| p.device.opackets,
    ),
    counter(
        "device_ibytes",
        "DEV-RX-BYTES",
        "Bytes received, as the device counts them.",
        |p| p.device.ibytes,
    ),
    counter(
        "device_obytes",
        "DEV-TX-BYTES",
        "Bytes sent, as the device counts them.",
        |p| p.device.obytes,
    ),
    counter(
        "device_imissed",
        "MISSED",
        "Packets dropped by the device because its RX queues were full.",
        |p| p.device.imissed,
    ),
    counter(
        "device_ierrors",
        "RX-ERR",
        "Receive errors counted by the device.",
        |p| p.device.ierrors,
    ),
    counter(
        "device_oerrors",
        "TX-ERR",
        "Transmit errors counted by the device.",
        |p| p.device.oerrors,
    ),
    counter(
        "device_rx_nombuf",
        "NOMBUF",
        "RX buffer allocation failures counted by the device.",
        |p| p.device.rx_nombuf,
    ),
];

/// A service's or a real's counters (`sluice_service_<name>`,
/// `sluice_real_<name>`); the help says what, the metric adds whose.
pub const LB: &[Figure<LbCounters>] = &[
    counter("connections", "Conns", "Connections scheduled", |c| {
        c.connections
    }),
    counter("packets_in", "InPkts", "Packets from clients", |c| {
        c.packets_in
    }),
    counter(
        "packets_out",
        "OutPkts",
        "Packets to clients (NAT replies)",
        |c| c.packets_out,
    ),
    counter("bytes_in", "InBytes", "Bytes from clients", |c| c.bytes_in),
    counter(
        "bytes_out",
        "OutBytes",
        "Bytes to clients (NAT replies)",
        |c| c.bytes_out,
    ),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DeviceStats, Traffic};
    use serde_json::Value;
    use std::collections::BTreeMap;

    /// A value of `T` whose every number is distinct (1, 2, 3, ...), as
    /// JSON, and back.
    fn numbered<T: serde::Serialize + serde::de::DeserializeOwned>(t: &T) -> (T, Value) {
        fn number(v: &mut Value, next: &mut u64) {
            match v {
                Value::Number(_) => {
                    *next += 1;
                    *v = Value::from(*next);
                }
                Value::Object(m) => m.values_mut().for_each(|x| number(x, next)),
                Value::Array(a) => a.iter_mut().for_each(|x| number(x, next)),
                _ => {}
            }
        }
        let mut v = serde_json::to_value(t).unwrap();
        number(&mut v, &mut 0);
        (serde_json::from_value(v.clone()).unwrap(), v)
    }

    /// Each figure of `list` reads the JSON field of its name (under
    /// `prefix`), so the catalogue and the wire agree.
    fn agrees<T>(list: &[Figure<T>], t: &T, json: &Value, field: impl Fn(&str) -> String) {
        for f in list {
            let at = field(f.name);
            let want = json
                .pointer(&at)
                .and_then(Value::as_u64)
                .unwrap_or_else(|| panic!("no field {at} for figure {}", f.name));
            assert_eq!((f.get)(t), want, "figure {} reads another field", f.name);
        }
        let mut names: Vec<_> = list.iter().map(|f| f.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), list.len(), "a name twice");
    }

    #[test]
    fn every_figure_is_the_field_of_its_name() {
        let w = WorkerStats {
            lcore: 1,
            ..Default::default()
        };
        let (w, json) = numbered(&w);
        let traffic = ["rx_packets", "rx_bytes", "tx_packets", "tx_bytes"];
        agrees(WORKER, &w, &json, |n| {
            if traffic.contains(&n) {
                format!("/traffic/{n}")
            } else {
                format!("/{n}")
            }
        });
        agrees(CONNTRACK, &w.conntrack, &json, |n| {
            format!("/conntrack/{}", conntrack_field(n))
        });
        agrees(CONNTRACK, &w.conntrack6, &json, |n| {
            format!("/conntrack6/{}", conntrack_field(n))
        });
        let p = PortStats {
            name: "p".into(),
            traffic: Traffic::default(),
            device: DeviceStats::default(),
            xstats: BTreeMap::new(),
        };
        let (p, json) = numbered(&p);
        agrees(PORT, &p, &json, |n| match n.strip_prefix("device_") {
            Some(d) => format!("/device/{d}"),
            None => format!("/traffic/{n}"),
        });
        let (c, json) = numbered(&LbCounters::default());
        agrees(LB, &c, &json, |n| format!("/{n}"));
    }
}
