//! The Sluice control protocol, defined once and shared by the daemon and
//! `sluicectl`.
//!
//! Transport: a Unix stream socket. Each request is one line of JSON, each
//! reply one line of JSON; a connection may carry several requests in turn.
//! Every message carries the protocol version ([`PROTOCOL_VERSION`]); a
//! request with another version gets an error reply.
//!
//! ```text
//! -> {"version":2,"request":{"cmd":"status"}}
//! <- {"version":2,"ok":true,"result":{"kind":"status", ...}}
//! <- {"version":2,"ok":false,"error":{"code":"bad_request","message":"..."}}
//! ```

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::IpAddr;

pub mod figures;
mod service;
pub use service::*;
pub use sluice_model::{
    AgentSpec, CheckKind, CheckSpec, DeviceStats, Forward, OnMiss, OnRealRemoval, PassiveHealth,
    Persistence, Protocol, ProxyProtocol, RealPatch, RealSpec, SchedulerKind, ServiceKey,
    ServicePatch, ServiceSpec, StatusMatch, SynProxyMode,
};

/// The protocol version spoken by this build. 2: `service edit` and
/// `real edit` carry patches (only the fields to change) instead of whole
/// specs.
pub const PROTOCOL_VERSION: u32 = 2;

/// Largest request line the daemon accepts, in bytes.
pub const MAX_REQUEST_BYTES: usize = 1024 * 1024;

/// A request envelope.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Request {
    /// Protocol version of the sender.
    pub version: u32,
    /// What is asked.
    pub request: Command,
}

impl Request {
    /// A request of this build's protocol version.
    pub fn new(request: Command) -> Request {
        Request {
            version: PROTOCOL_VERSION,
            request,
        }
    }
}

/// The commands the daemon understands.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "cmd", rename_all = "snake_case", deny_unknown_fields)]
pub enum Command {
    /// Version, uptime, ports and workers.
    Status,
    /// Counters per port and per worker.
    Stats,
    /// Stop the daemon cleanly.
    Shutdown,
    /// Add a virtual service (with the reals it lists).
    ServiceAdd {
        /// The service.
        service: ServiceSpec,
    },
    /// Change some settings of a virtual service: the fields the patch
    /// gives; every other setting, and the reals, stay as they are.
    ServiceEdit {
        /// The key selects the service; the other fields are the changes.
        service: ServicePatch,
    },
    /// Remove a virtual service; its connections end.
    ServiceDel {
        /// Which service.
        key: ServiceKey,
    },
    /// List services with their reals and counters.
    ServiceList {
        /// Counters since start, ignoring `zero` (for metrics, which must
        /// be monotonic).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        raw: bool,
    },
    /// Add a real server to a service.
    RealAdd {
        /// Which service.
        service: ServiceKey,
        /// The real.
        real: RealSpec,
    },
    /// Change some settings of a real (weight, forwarding method,
    /// thresholds): the fields the patch gives; the others stay.
    RealEdit {
        /// Which service.
        service: ServiceKey,
        /// ip and port select the real; the other fields are the changes.
        real: RealPatch,
    },
    /// Reset the reported counters of every service, or of one.
    Zero {
        /// Only this service.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        service: Option<ServiceKey>,
    },
    /// The live configuration, in the configuration file's format.
    Save,
    /// Replace every service by those of a configuration file's text
    /// (the other sections must match the running ones).
    Restore {
        /// The file's text.
        config: String,
    },
    /// Re-read the configuration file the daemon was started with and
    /// apply the difference (as SIGHUP).
    Reload,
    /// Stop announcing a VIP over BGP (maintenance); its traffic moves to
    /// the other appliances.
    VipWithdraw {
        /// The VIP.
        vip: IpAddr,
    },
    /// Announce a VIP withdrawn by `VipWithdraw` again (when its reals
    /// and the dataplane allow).
    VipAnnounce {
        /// The VIP.
        vip: IpAddr,
    },
    /// Connections in the workers' tables.
    ConnList {
        /// Filters and limit.
        #[serde(default)]
        filter: ConnFilter,
    },
    /// Drain a real: no new connections at once; its remaining
    /// connections end when the deadline passes.
    RealDrain {
        /// Which service.
        service: ServiceKey,
        /// The real's address.
        ip: IpAddr,
        /// The real's port.
        port: u16,
        /// Seconds until the remaining connections are ended.
        deadline_secs: u32,
    },
    /// Remove a real from a service.
    RealDel {
        /// Which service.
        service: ServiceKey,
        /// The real's address.
        ip: IpAddr,
        /// The real's port.
        port: u16,
    },
}

/// A reply envelope: `ok` with a `result`, or not `ok` with an `error`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Reply {
    /// Protocol version of the daemon.
    pub version: u32,
    /// Whether the request succeeded.
    pub ok: bool,
    /// The result when `ok`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<ReplyBody>,
    /// The error when not `ok`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorReply>,
}

impl Reply {
    /// A successful reply.
    pub fn ok(body: ReplyBody) -> Reply {
        Reply {
            version: PROTOCOL_VERSION,
            ok: true,
            result: Some(body),
            error: None,
        }
    }

    /// An error reply.
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Reply {
        Reply {
            version: PROTOCOL_VERSION,
            ok: false,
            result: None,
            error: Some(ErrorReply {
                code,
                message: message.into(),
            }),
        }
    }
}

/// Why a request failed.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Not valid JSON, or not a known command.
    BadRequest,
    /// Another protocol version.
    UnsupportedVersion,
    /// Larger than MAX_REQUEST_BYTES.
    TooLarge,
    /// Understood, but refused (invalid arguments, conflicting state).
    Refused,
    /// The daemon failed while serving it.
    Internal,
    /// The peer is neither root nor in the control group.
    PermissionDenied,
}

/// An error reply's body.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ErrorReply {
    /// Machine-readable class.
    pub code: ErrorCode,
    /// Human-readable explanation.
    pub message: String,
}

/// The result of a successful request.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ReplyBody {
    /// Reply to `status`.
    Status(Status),
    /// Reply to `stats`.
    Stats(Stats),
    /// Reply to `shutdown`: the daemon is stopping.
    ShuttingDown,
    /// Reply to `service list`.
    Services(ServiceList),
    /// A change was applied.
    Applied(Applied),
    /// Reply to `save`.
    Config {
        /// The configuration file's text.
        toml: String,
    },
    /// Reply to `conn list`.
    Connections(ConnList),
}

/// Which connections `conn list` shows.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ConnFilter {
    /// Only this service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<ServiceKey>,
    /// Only this client address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<IpAddr>,
    /// Only this real address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub real: Option<IpAddr>,
    /// Only this state (e.g. `ESTABLISHED`, `SYN_RECV`, `UDP`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// At most this many (default 100, at most 10000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

/// One connection.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ConnInfo {
    /// Protocol.
    pub protocol: Protocol,
    /// Client address.
    pub client: std::net::SocketAddr,
    /// Virtual service address.
    pub vip: std::net::SocketAddr,
    /// Real server address.
    pub real: std::net::SocketAddr,
    /// Forwarding method.
    pub forward: Forward,
    /// Full NAT: the local address and port the real sees as the client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local: Option<std::net::SocketAddr>,
    /// State (LVS names).
    pub state: String,
    /// Seconds until it expires.
    pub expires_in_secs: u64,
    /// The worker that owns it.
    pub worker: usize,
}

/// Reply to `conn list`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ConnList {
    /// Connections found (at most the limit).
    pub connections: Vec<ConnInfo>,
    /// Whether more matched than the limit.
    pub truncated: bool,
}

/// What a change did.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Applied {
    /// One line describing the change.
    pub message: String,
    /// The configuration epoch the workers switch to.
    pub epoch: u64,
}

/// Every service with its reals.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ServiceList {
    /// Services, in configuration order.
    pub services: Vec<ServiceInfo>,
}

/// The daemon's status.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Status {
    /// Sluice version.
    pub version: String,
    /// DPDK version.
    pub dpdk_version: String,
    /// Process id.
    pub pid: u32,
    /// Seconds since start.
    pub uptime_secs: u64,
    /// The lcore the control thread runs on.
    pub control_lcore: u32,
    /// Ports.
    pub ports: Vec<PortStatus>,
    /// Workers.
    pub workers: Vec<WorkerStatus>,
    /// BGP announcements, when `[bgp]` is configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bgp: Option<Box<BgpStatus>>,
    /// Connection sync with the peer appliances, when `[sync]` is
    /// configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync: Option<Box<SyncStatus>>,
}

/// Connection sync, as `status` reports it (the workers' own sync
/// counters are in `stats`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct SyncStatus {
    /// Where this appliance listens.
    pub listen: String,
    /// Its peers.
    pub peers: Vec<String>,
    /// This appliance's sender id.
    pub sender: u32,
    /// Datagrams sent (one per peer).
    pub datagrams_sent: u64,
    /// Connection records sent.
    pub conns_sent: u64,
    /// Times the rate limit held records back (they wait).
    pub rate_limited: u64,
    /// Datagrams the socket refused.
    pub send_errors: u64,
    /// Authentic, fresh datagrams received.
    pub datagrams_received: u64,
    /// Connection records they held.
    pub conns_received: u64,
    /// Refused: not sync, another version, malformed.
    pub rejected_malformed: u64,
    /// Refused: authentication failed.
    pub rejected_auth: u64,
    /// Refused: replayed or too old.
    pub rejected_replay: u64,
    /// Records lost on the way to their worker (its ring full).
    pub queue_full: u64,
    /// Peers that joined and asked for every connection.
    #[serde(default)]
    pub requests_received: u64,
}

/// The BGP announcements and BIRD, as `status` reports them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BgpStatus {
    /// BIRD's control socket.
    pub bird_socket: String,
    /// The file Sluice writes for BIRD to include.
    pub include_file: String,
    /// BIRD's greeting (version), or why it cannot be reached.
    pub bird: String,
    /// Whether BIRD has taken the latest announcements.
    pub in_sync: bool,
    /// Seconds since BIRD last took them (None: never).
    #[serde(default)]
    pub applied_secs_ago: Option<u64>,
    /// Why BIRD has not taken the latest ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Every worker polls.
    pub alive: bool,
    /// Every VIP.
    pub vips: Vec<VipAnnouncement>,
}

/// One VIP's announcement.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct VipAnnouncement {
    /// The VIP.
    pub vip: IpAddr,
    /// Announced now.
    pub announced: bool,
    /// Why not, when not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// One port's status.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PortStatus {
    /// Configured name.
    pub name: String,
    /// DPDK port id.
    pub port_id: u16,
    /// Device (PCI address or vdev string).
    pub device: String,
    /// Driver name.
    pub driver: String,
    /// MAC address.
    pub mac: String,
    /// Link is up.
    pub link_up: bool,
    /// Link speed in Mbit/s (0 when unknown).
    pub speed_mbps: u32,
    /// The appliance's addresses on the port, as prefixes.
    pub addresses: Vec<String>,
    /// RX queues.
    pub rx_queues: u16,
    /// TX queues.
    pub tx_queues: u16,
    /// Whether RSS spreads packets over the queues in hardware.
    pub rss: bool,
}

/// One worker's status.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WorkerStatus {
    /// Worker index (also its queue index on every port).
    pub id: usize,
    /// The lcore it runs on.
    pub lcore: u32,
    /// NUMA socket of the lcore.
    pub socket: u32,
}

/// Counters.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Stats {
    /// Per port: the device's counters and the workers' sums.
    pub ports: Vec<PortStats>,
    /// Per worker.
    pub workers: Vec<WorkerStats>,
}

/// Packet and byte counters in both directions.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Traffic {
    /// Packets received.
    pub rx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Packets transmitted.
    pub tx_packets: u64,
    /// Bytes transmitted.
    pub tx_bytes: u64,
}

impl std::ops::Add for Traffic {
    type Output = Traffic;

    fn add(self, o: Traffic) -> Traffic {
        Traffic {
            rx_packets: self.rx_packets + o.rx_packets,
            rx_bytes: self.rx_bytes + o.rx_bytes,
            tx_packets: self.tx_packets + o.tx_packets,
            tx_bytes: self.tx_bytes + o.tx_bytes,
        }
    }
}

impl std::iter::Sum for Traffic {
    fn sum<I: Iterator<Item = Traffic>>(iter: I) -> Traffic {
        iter.fold(Traffic::default(), |a, b| a + b)
    }
}

/// One port's counters.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PortStats {
    /// Configured name.
    pub name: String,
    /// What the workers received and sent on this port.
    pub traffic: Traffic,
    /// The device's own counters (`rte_eth_stats`).
    pub device: DeviceStats,
    /// The device's extended statistics, by DPDK's names.
    pub xstats: BTreeMap<String, u64>,
}

/// One worker's counters.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct WorkerStats {
    /// Worker index.
    pub id: usize,
    /// Its lcore.
    pub lcore: u32,
    /// Totals over all ports.
    pub traffic: Traffic,
    /// ARP requests for our addresses, answered.
    pub arp_requests_answered: u64,
    /// ARP replies to us, learned.
    pub arp_replies_learned: u64,
    /// ICMP echo requests to our addresses, answered.
    pub icmp_echo_answered: u64,
    /// IPv6 neighbour solicitations for our addresses, answered.
    #[serde(default)]
    pub nd_solicits_answered: u64,
    /// IPv6 neighbour advertisements, learned.
    #[serde(default)]
    pub nd_adverts_learned: u64,
    /// ICMPv6 echo requests to our addresses, answered.
    #[serde(default)]
    pub icmpv6_echo_answered: u64,
    /// Polls that received at least one packet.
    pub busy_polls: u64,
    /// Polls that received nothing.
    pub idle_polls: u64,
    /// TSC cycles spent in polls that received packets (cycles per packet
    /// = busy_cycles / rx packets).
    #[serde(default)]
    pub busy_cycles: u64,
    /// TSC frequency, for converting cycles to time.
    #[serde(default)]
    pub tsc_hz: u64,
    /// Drops by reason (every reason present, zero or not).
    pub drops: BTreeMap<String, u64>,
    /// The worker's IPv4 connection table.
    #[serde(default)]
    pub conntrack: ConnTableStats,
    /// The worker's IPv6 connection table.
    #[serde(default)]
    pub conntrack6: ConnTableStats,
    /// Share of polls that received packets over the sliding window
    /// (0.0 idle .. 1.0 saturated).
    #[serde(default)]
    pub busy_share: f64,
    /// Packets per second received over the sliding window.
    #[serde(default)]
    pub rx_pps: f64,
    /// Packets this worker handed to the worker that owns their flow.
    #[serde(default)]
    pub handoff_out: u64,
    /// Packets other workers handed to this one.
    #[serde(default)]
    pub handoff_in: u64,
    /// New connections forwarded by consistent hash without a table entry
    /// (table full).
    #[serde(default)]
    pub stateless_forwards: u64,
    /// Connections forwarded without an entry (table full) given one once
    /// the table had room.
    #[serde(default)]
    pub tableless_adopted: u64,
    /// Mid-connection TCP segments of no entry scheduled by the service's
    /// hash (`on_miss = "hash"`), an entry made.
    #[serde(default)]
    pub hashed_on_miss: u64,
    /// Connections (new, or changing state) queued to be told to the peer appliances.
    #[serde(default)]
    pub sync_queued: u64,
    /// Connections not told to peers because the worker's sync queue was full.
    #[serde(default)]
    pub sync_overflow: u64,
    /// Connections peers told about, installed (new entries) or updated (state) in this worker's table.
    #[serde(default)]
    pub sync_installed: u64,
    /// Connections peers told about and not installed: their service or real is not here, or the table is full.
    #[serde(default)]
    pub sync_unknown: u64,
    /// ICMP time-exceeded errors sent.
    #[serde(default)]
    pub time_exceeded_sent: u64,
    /// ICMP fragmentation-needed (packet-too-big) errors sent.
    #[serde(default)]
    pub too_big_sent: u64,
    /// Packets too big for a tunnel that could be fragmented, sent in two outer fragments.
    #[serde(default)]
    pub tunnel_fragmented: u64,
    /// First fragments whose datagram was remembered, for its later fragments to follow.
    #[serde(default)]
    pub fragments_remembered: u64,
    /// First fragments remembered in place of a live datagram (the worker's fragment table set was full).
    #[serde(default)]
    pub fragments_replaced: u64,
    /// First fragments forwarded without a connection entry (the table full): their later fragments cannot follow.
    #[serde(default)]
    pub fragments_unremembered: u64,
    /// Later fragments forwarded the way their datagram's first fragment went.
    #[serde(default)]
    pub fragments_followed: u64,
    /// Later fragments held because their datagram's first fragment had not come yet.
    #[serde(default)]
    pub fragments_held: u64,
    /// SYNs that would open a connection (checksum right).
    #[serde(default)]
    pub syns: u64,
    /// SYNs answered with a SYN cookie.
    #[serde(default)]
    pub syn_cookies_sent: u64,
    /// ACKs whose cookie was valid.
    #[serde(default)]
    pub syn_cookies_valid: u64,
    /// ACKs checked for a cookie in vain.
    #[serde(default)]
    pub syn_cookies_invalid: u64,
    /// Proxied handshakes completed with reals.
    #[serde(default)]
    pub syn_proxy_handshakes: u64,
    /// Half-open connections now.
    #[serde(default)]
    pub half_open: u64,
    /// Full-NAT connections now, each holding one of the worker's local ports.
    #[serde(default)]
    pub local_ports_in_use: u64,
    /// PROXY protocol headers put in front of client data (each TCP connection's first segment and its retransmissions, every UDP datagram).
    #[serde(default)]
    pub proxy_headers_sent: u64,
    /// 1 while the SYN proxy is engaged for auto services.
    #[serde(default)]
    pub syn_proxy_engaged: u64,
    /// Packets held while a next hop's MAC was being resolved.
    #[serde(default)]
    pub held_for_arp: u64,
    /// ARP requests sent for next hops.
    #[serde(default)]
    pub arp_requests_sent: u64,
    /// IPv6 neighbour solicitations sent for next hops.
    #[serde(default)]
    pub nd_solicits_sent: u64,
}

/// A worker's connection-table figures.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ConnTableStats {
    /// Connections in the table now.
    pub occupancy: u64,
    /// Capacity.
    pub capacity: u64,
    /// Connections inserted.
    pub inserts: u64,
    /// Insertions refused because the table was full.
    pub insert_failures: u64,
    /// Connections expired by timeout.
    pub expiries: u64,
    /// Connections removed (closed, or ended by a real's removal).
    pub removals: u64,
    /// Persistence templates in the table now.
    pub templates: u64,
}

impl Stats {
    /// Sum of every worker's drops, by reason.
    pub fn total_drops(&self) -> BTreeMap<String, u64> {
        let mut t = BTreeMap::new();
        for w in &self.workers {
            for (k, v) in &w.drops {
                *t.entry(k.clone()).or_insert(0) += v;
            }
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_wire_format() {
        let r = Request::new(Command::Status);
        let s = serde_json::to_string(&r).unwrap();
        assert_eq!(s, r#"{"version":2,"request":{"cmd":"status"}}"#);
        assert_eq!(serde_json::from_str::<Request>(&s).unwrap(), r);
        assert!(
            serde_json::from_str::<Request>(r#"{"version":2,"request":{"cmd":"nope"}}"#).is_err()
        );
    }

    #[test]
    fn reply_wire_format() {
        let r = Reply::error(ErrorCode::BadRequest, "no");
        let s = serde_json::to_string(&r).unwrap();
        assert_eq!(
            s,
            r#"{"version":2,"ok":false,"error":{"code":"bad_request","message":"no"}}"#
        );
        let ok = Reply::ok(ReplyBody::ShuttingDown);
        let s = serde_json::to_string(&ok).unwrap();
        assert_eq!(
            s,
            r#"{"version":2,"ok":true,"result":{"kind":"shutting_down"}}"#
        );
        assert_eq!(serde_json::from_str::<Reply>(&s).unwrap(), ok);
    }
}
