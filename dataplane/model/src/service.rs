//! Virtual services and real servers as the configuration file and the
//! control protocol describe them, and the changes `sluicectl edit` makes.

use crate::check::{AgentSpec, CheckSpec};
use crate::scheduler::SchedulerKind;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::IpAddr;

/// Transport protocol of a virtual service.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
#[repr(u8)]
pub enum Protocol {
    /// TCP, IPv4 protocol number 6.
    Tcp = 6,
    /// UDP, IPv4 protocol number 17.
    Udp = 17,
}

impl Protocol {
    /// The protocol for an IPv4 protocol number, if it is TCP or UDP.
    pub fn from_number(n: u8) -> Option<Protocol> {
        match n {
            6 => Some(Protocol::Tcp),
            17 => Some(Protocol::Udp),
            _ => None,
        }
    }

    /// The IPv4 protocol number.
    pub fn number(self) -> u8 {
        self as u8
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        })
    }
}

impl std::str::FromStr for Protocol {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "tcp" => Ok(Protocol::Tcp),
            "udp" => Ok(Protocol::Udp),
            _ => Err(format!("unknown protocol {s:?} (expected tcp or udp)")),
        }
    }
}

/// How packets reach a real server.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
#[repr(u8)]
pub enum Forward {
    /// NAT (ipvsadm -m): addresses rewritten, replies return through
    /// Sluice.
    Nat = 0,
    /// Direct routing (ipvsadm -g): only MACs rewritten, replies go straight
    /// to the client; the real holds the VIP on a loopback.
    Dr = 1,
    /// IP-in-IP tunnel (ipvsadm -i): the client's packet, unchanged, inside
    /// an outer IP header to the real, which may be anywhere the routes
    /// reach; the real decapsulates, holds the VIP, and answers the client
    /// directly.
    Ipip = 2,
    /// The same tunnel over UDP (GUE variant 1: the inner IP packet right
    /// after the UDP header, ipvsadm's `--tun-type gue`), so that the
    /// network's ECMP spreads the tunnels by the UDP source port.
    Gue = 3,
    /// Full NAT (DPVS's `ipvsadm -b`): both ends rewritten, the client's
    /// address and port to a local address and port of the service's
    /// pool (`local_addresses`), so the real may sit anywhere the routes
    /// reach and its replies, addressed to the local address, come back
    /// by ordinary routing.
    FullNat = 4,
}

impl Forward {
    /// Whether the real answers the client itself, past the appliance
    /// (direct routing and the tunnels): only the client's half of the
    /// connection is seen.
    pub fn answers_directly(self) -> bool {
        !self.translates()
    }

    /// Whether the appliance rewrites the connection's addresses and sees
    /// both directions (NAT and full NAT).
    pub fn translates(self) -> bool {
        matches!(self, Forward::Nat | Forward::FullNat)
    }

    /// Whether the client's packet is encapsulated to the real.
    pub fn is_tunnel(self) -> bool {
        matches!(self, Forward::Ipip | Forward::Gue)
    }

    /// The method stored as `n` (its `repr`), if any.
    pub fn from_u8(n: u8) -> Option<Forward> {
        match n {
            0 => Some(Forward::Nat),
            1 => Some(Forward::Dr),
            2 => Some(Forward::Ipip),
            3 => Some(Forward::Gue),
            4 => Some(Forward::FullNat),
            _ => None,
        }
    }
}

impl fmt::Display for Forward {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Forward::Nat => "nat",
            Forward::Dr => "dr",
            Forward::Ipip => "ipip",
            Forward::Gue => "gue",
            Forward::FullNat => "fullnat",
        })
    }
}

impl std::str::FromStr for Forward {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "nat" | "masq" | "masquerading" => Ok(Forward::Nat),
            "dr" | "route" | "direct" | "gatewaying" => Ok(Forward::Dr),
            "ipip" | "tunnel" | "tun" => Ok(Forward::Ipip),
            "gue" => Ok(Forward::Gue),
            "fullnat" | "full_nat" | "fnat" => Ok(Forward::FullNat),
            _ => Err(format!(
                "unknown forwarding method {s:?} (expected nat, dr, ipip, gue or fullnat)"
            )),
        }
    }
}

/// What identifies a virtual service.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServiceKey {
    /// Protocol.
    pub protocol: Protocol,
    /// Virtual IP.
    pub vip: IpAddr,
    /// Virtual port.
    pub port: u16,
}

impl fmt::Display for ServiceKey {
    /// `tcp 192.0.2.100:80`, `tcp [2001:db8::100]:80` (RFC 5952 text).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}",
            self.protocol,
            std::net::SocketAddr::new(self.vip, self.port)
        )
    }
}

/// Source-IP persistence (ipvsadm -p/-M): a client network keeps its real
/// for `timeout_secs` after its last connection.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Persistence {
    /// Seconds a template outlives the client's last connection.
    pub timeout_secs: u32,
    /// Client netmask as a prefix length of the service's address family;
    /// unset, each address on its own (32 for IPv4, 128 for IPv6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netmask: Option<u8>,
}

impl Persistence {
    /// The prefix length clients of `vip`'s family are grouped by.
    pub fn prefix_len(&self, vip: IpAddr) -> u8 {
        let host = if vip.is_ipv4() { 32 } else { 128 };
        self.netmask.unwrap_or(host)
    }
}

/// What happens to a real's connections when it is removed.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum OnRealRemoval {
    /// Existing connections continue until they end (default).
    #[default]
    Keep,
    /// Existing connections are ended at once.
    End,
}

/// When a TCP service's handshakes are proxied with SYN cookies: the
/// appliance answers the SYN itself and opens the connection to a real
/// only once the client's ACK proves its address (NAT reals only: a DR
/// real answers the client directly, past the sequence translation).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum SynProxyMode {
    /// While a worker holds more half-open connections than its threshold
    /// (`dataplane.syn_recv_threshold`): a SYN flood is on (default).
    #[default]
    Auto,
    /// Always.
    On,
    /// Never.
    Off,
}

/// Whether a service tells its reals the client's address with the PROXY
/// protocol (HAProxy's), in front of what the client sends.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum ProxyProtocol {
    /// No (default).
    #[default]
    Off,
    /// Version 2 (binary): in front of a TCP stream's first byte, or of
    /// every UDP datagram.
    V2,
}

impl ProxyProtocol {
    /// Whether it is off (the default).
    pub fn is_off(&self) -> bool {
        *self == ProxyProtocol::Off
    }
}

impl fmt::Display for ProxyProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ProxyProtocol::Off => "off",
            ProxyProtocol::V2 => "v2",
        })
    }
}

impl std::str::FromStr for ProxyProtocol {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "off" => Ok(ProxyProtocol::Off),
            "v2" => Ok(ProxyProtocol::V2),
            "v1" => Err(
                "PROXY protocol v1 is not supported (its text header has an odd \
                         length as often as not): use v2"
                    .into(),
            ),
            _ => Err(format!("{s:?} is not a PROXY protocol version (v2, off)")),
        }
    }
}

impl SynProxyMode {
    /// Whether this is the default.
    pub fn is_auto(&self) -> bool {
        *self == SynProxyMode::Auto
    }
}

impl fmt::Display for SynProxyMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SynProxyMode::Auto => "auto",
            SynProxyMode::On => "on",
            SynProxyMode::Off => "off",
        })
    }
}

impl std::str::FromStr for SynProxyMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(SynProxyMode::Auto),
            "on" => Ok(SynProxyMode::On),
            "off" => Ok(SynProxyMode::Off),
            _ => Err(format!("{s:?} is not a SYN-proxy mode (auto, on, off)")),
        }
    }
}

/// What a service does with a TCP segment that is not a SYN and matches
/// no connection: one of a connection another appliance behind the same
/// ECMP router scheduled, moved here when the set of appliances changed,
/// or a stray.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum OnMiss {
    /// Dropped (counted as `no_connection`), as LVS without sloppy TCP.
    Drop,
    /// Scheduled by the service's hash (sh or mh: the same answer on every
    /// appliance with the same configuration) and an entry made, as
    /// Maglev and Katran do. A stray gets a reset from the real.
    Hash,
}

impl fmt::Display for OnMiss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OnMiss::Drop => "drop",
            OnMiss::Hash => "hash",
        })
    }
}

impl std::str::FromStr for OnMiss {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "drop" => Ok(OnMiss::Drop),
            "hash" => Ok(OnMiss::Hash),
            _ => Err(format!("{s:?} is not an on_miss policy (drop, hash)")),
        }
    }
}

/// A virtual service's settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServiceSpec {
    /// Protocol.
    pub protocol: Protocol,
    /// Virtual IP.
    pub vip: IpAddr,
    /// Virtual port.
    pub port: u16,
    /// Scheduler: rr, wrr, lc, wlc, sed, nq, sh, mh (default wlc).
    #[serde(default)]
    pub scheduler: SchedulerKind,
    /// Source-IP persistence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistence: Option<Persistence>,
    /// Policy for connections of removed reals.
    #[serde(default)]
    pub on_real_removal: OnRealRemoval,
    /// Maglev lookup-table size (a prime; default 65537).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mh_table_size: Option<u32>,
    /// Active health check of every real (port defaults to the real's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<CheckSpec>,
    /// Server agent polled on every real (HAProxy agent-check protocol).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<AgentSpec>,
    /// What happens to a real's connections when it is found down.
    #[serde(default)]
    pub on_real_down: OnRealRemoval,
    /// Scale reals' effective weights by their check latency (the fastest
    /// keeps its weight, a real twice as slow gets half).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub weight_by_latency: bool,
    /// A persistence template whose real is quiesced (weight 0) is dropped
    /// when next used, so the client is scheduled afresh (IPVS's
    /// `expire_quiescent_template`). Off: templates keep sending their
    /// clients to a quiesced real, as LVS does by default.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub expire_quiescent_template: bool,
    /// Passive health detection of the reals from the traffic itself
    /// (connections they leave unanswered or refuse); off unless given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passive_health: Option<PassiveHealth>,
    /// When handshakes are answered with SYN cookies (TCP, NAT reals).
    #[serde(default, skip_serializing_if = "SynProxyMode::is_auto")]
    pub syn_proxy: SynProxyMode,
    /// What a mid-connection TCP segment without an entry gets (default:
    /// `hash` for mh, `drop` for every other scheduler); see
    /// [`ServiceSpec::on_miss`].
    #[serde(default, rename = "on_miss", skip_serializing_if = "Option::is_none")]
    pub on_miss_setting: Option<OnMiss>,
    /// The local addresses full-NAT reals see as the client (DPVS's
    /// `--add-laddr`): a connection to a `fullnat` real leaves from one of
    /// them, on a local port its worker owns.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub local_addresses: Vec<IpAddr>,
    /// The PROXY protocol header in front of what each client sends (NAT
    /// and full-NAT reals), so the real learns the client's address.
    #[serde(default, skip_serializing_if = "ProxyProtocol::is_off")]
    pub proxy_protocol: ProxyProtocol,
    /// The real servers.
    #[serde(default, rename = "real")]
    pub reals: Vec<RealSpec>,
}

/// Passive health settings of a service: a real that fails at least half
/// of the connections it is given in a second (leaves the SYN unanswered,
/// or refuses it with a reset) is held out, but never more than
/// `max_held_out_percent` of the service's reals at once.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PassiveHealth {
    /// The largest share of the service's reals, in percent (1..=100),
    /// that passive detection may hold out at once; a real found failing
    /// beyond it stays in service (when too many look bad, the detection
    /// is more likely wrong than the reals: Envoy's panic threshold).
    #[serde(default = "default_max_held_out_percent")]
    pub max_held_out_percent: u8,
}

impl Default for PassiveHealth {
    fn default() -> Self {
        PassiveHealth {
            max_held_out_percent: default_max_held_out_percent(),
        }
    }
}

fn default_max_held_out_percent() -> u8 {
    50
}

impl PassiveHealth {
    /// How many of `reals` reals may be held out at once (rounded down).
    pub fn max_held_out(&self, reals: usize) -> usize {
        reals * usize::from(self.max_held_out_percent.min(100)) / 100
    }
}

impl ServiceSpec {
    /// A service with every setting at its default (scheduler wlc, no
    /// persistence, no checks) and no reals.
    pub fn new(protocol: Protocol, vip: IpAddr, port: u16) -> ServiceSpec {
        ServiceSpec {
            protocol,
            vip,
            port,
            scheduler: SchedulerKind::default(),
            persistence: None,
            on_real_removal: OnRealRemoval::default(),
            mh_table_size: None,
            check: None,
            agent: None,
            on_real_down: OnRealRemoval::default(),
            weight_by_latency: false,
            expire_quiescent_template: false,
            passive_health: None,
            syn_proxy: SynProxyMode::default(),
            on_miss_setting: None,
            local_addresses: Vec::new(),
            proxy_protocol: Default::default(),
            reals: Vec::new(),
        }
    }

    /// What a TCP segment that is not a SYN and matches no connection
    /// gets: the `on_miss` setting, else `hash` for mh (every appliance
    /// computes the same Maglev table from the same reals) and `drop` for
    /// the others.
    pub fn on_miss(&self) -> OnMiss {
        self.on_miss_setting.unwrap_or(match self.scheduler {
            SchedulerKind::Mh => OnMiss::Hash,
            _ => OnMiss::Drop,
        })
    }

    /// The service's key.
    pub fn key(&self) -> ServiceKey {
        ServiceKey {
            protocol: self.protocol,
            vip: self.vip,
            port: self.port,
        }
    }
}

/// A real server's settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RealSpec {
    /// Address.
    pub ip: IpAddr,
    /// Port (for DR it must equal the service's port).
    pub port: u16,
    /// Weight; 0 quiesces the real (no new connections).
    #[serde(default = "default_weight")]
    pub weight: u32,
    /// Forwarding method.
    #[serde(default = "default_forward")]
    pub forward: Forward,
    /// No new connections while it has this many or more (0: no limit).
    #[serde(default)]
    pub upper_threshold: u32,
    /// Once over the upper threshold, new connections again only when it
    /// is down to this many (0: as soon as it is under the upper one).
    #[serde(default)]
    pub lower_threshold: u32,
    /// This real's own health check, instead of the service's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<CheckSpec>,
    /// This real's own agent, instead of the service's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<AgentSpec>,
}

impl RealSpec {
    /// A NAT real of weight 1, no thresholds, checks or agent.
    pub fn new(ip: IpAddr, port: u16) -> RealSpec {
        RealSpec {
            ip,
            port,
            weight: default_weight(),
            forward: default_forward(),
            upper_threshold: 0,
            lower_threshold: 0,
            check: None,
            agent: None,
        }
    }
}

fn default_weight() -> u32 {
    1
}

fn default_forward() -> Forward {
    Forward::Nat
}

/// Changes to a virtual service (`sluicectl service edit`): every field
/// left out keeps its value, and the reals are untouched.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ServicePatch {
    /// Protocol of the service to change.
    pub protocol: Protocol,
    /// Its virtual IP.
    pub vip: IpAddr,
    /// Its virtual port.
    pub port: u16,
    /// New scheduler.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduler: Option<SchedulerKind>,
    /// New persistence timeout in seconds (turns persistence on); 0 turns
    /// persistence off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistence_timeout_secs: Option<u32>,
    /// New persistence netmask (prefix length); the service must have or
    /// get persistence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistence_netmask: Option<u8>,
    /// New policy for removed reals' connections.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_real_removal: Option<OnRealRemoval>,
    /// New Maglev table size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mh_table_size: Option<u32>,
    /// New policy for the connections of a real found down.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_real_down: Option<OnRealRemoval>,
    /// Scale weights by check latency, or stop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_by_latency: Option<bool>,
    /// Drop templates of quiesced reals, or stop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expire_quiescent_template: Option<bool>,
    /// Passive health on, holding out at most this percentage of the
    /// reals; 0 turns it off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passive_max_held_out_percent: Option<u8>,
    /// New SYN-proxy mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub syn_proxy: Option<SynProxyMode>,
    /// New pool of local addresses (full NAT); an empty list empties it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_addresses: Option<Vec<IpAddr>>,
    /// New PROXY protocol setting (for new connections).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_protocol: Option<ProxyProtocol>,
}

impl ServicePatch {
    /// The key of the service to change.
    pub fn key(&self) -> ServiceKey {
        ServiceKey {
            protocol: self.protocol,
            vip: self.vip,
            port: self.port,
        }
    }

    /// A patch of the service `key` that changes nothing yet.
    pub fn new(key: ServiceKey) -> ServicePatch {
        ServicePatch {
            protocol: key.protocol,
            vip: key.vip,
            port: key.port,
            scheduler: None,
            persistence_timeout_secs: None,
            persistence_netmask: None,
            on_real_removal: None,
            mh_table_size: None,
            on_real_down: None,
            weight_by_latency: None,
            expire_quiescent_template: None,
            passive_max_held_out_percent: None,
            syn_proxy: None,
            local_addresses: None,
            proxy_protocol: None,
        }
    }

    /// Whether the patch changes anything.
    pub fn is_empty(&self) -> bool {
        *self == ServicePatch::new(self.key())
    }

    /// `spec` with the changes applied (reals untouched). Errors when the
    /// netmask is set on a service that has and gets no persistence.
    pub fn apply(&self, spec: &ServiceSpec) -> Result<ServiceSpec, String> {
        let mut s = spec.clone();
        if let Some(x) = self.scheduler {
            s.scheduler = x;
        }
        match (self.persistence_timeout_secs, self.persistence_netmask) {
            (Some(0), Some(_)) => {
                return Err(
                    "a persistence netmask needs persistence (timeout 0 turns it off)".into(),
                )
            }
            (Some(0), None) => s.persistence = None,
            (Some(t), m) => {
                let netmask = m.or(s.persistence.and_then(|p| p.netmask));
                s.persistence = Some(Persistence {
                    timeout_secs: t,
                    netmask,
                });
            }
            (None, Some(m)) => match &mut s.persistence {
                Some(p) => p.netmask = Some(m),
                None => {
                    return Err(format!(
                        "{} has no persistence: give a timeout with the netmask",
                        spec.key()
                    ))
                }
            },
            (None, None) => {}
        }
        if let Some(x) = self.on_real_removal {
            s.on_real_removal = x;
        }
        if let Some(x) = self.mh_table_size {
            s.mh_table_size = Some(x);
        }
        if let Some(x) = self.on_real_down {
            s.on_real_down = x;
        }
        if let Some(x) = self.weight_by_latency {
            s.weight_by_latency = x;
        }
        if let Some(x) = self.expire_quiescent_template {
            s.expire_quiescent_template = x;
        }
        match self.passive_max_held_out_percent {
            Some(0) => s.passive_health = None,
            Some(p) => {
                s.passive_health = Some(PassiveHealth {
                    max_held_out_percent: p,
                })
            }
            None => {}
        }
        if let Some(x) = self.syn_proxy {
            s.syn_proxy = x;
        }
        if let Some(x) = &self.local_addresses {
            s.local_addresses = x.clone();
        }
        if let Some(x) = self.proxy_protocol {
            s.proxy_protocol = x;
        }
        Ok(s)
    }
}

/// Changes to a real server (`sluicectl real edit`): every field left out
/// keeps its value (its checks and agent included).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RealPatch {
    /// Address of the real to change.
    pub ip: IpAddr,
    /// Its port.
    pub port: u16,
    /// New weight (0 quiesces).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
    /// New forwarding method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forward: Option<Forward>,
    /// New upper connection threshold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upper_threshold: Option<u32>,
    /// New lower connection threshold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lower_threshold: Option<u32>,
}

impl RealPatch {
    /// A patch of real `ip:port` that changes nothing yet.
    pub fn new(ip: IpAddr, port: u16) -> RealPatch {
        RealPatch {
            ip,
            port,
            weight: None,
            forward: None,
            upper_threshold: None,
            lower_threshold: None,
        }
    }

    /// Whether the patch changes anything.
    pub fn is_empty(&self) -> bool {
        *self == RealPatch::new(self.ip, self.port)
    }

    /// The changes, for logs and replies: `weight 0, forward dr`.
    pub fn describe(&self) -> String {
        let mut out = Vec::new();
        if let Some(w) = self.weight {
            out.push(format!("weight {w}"));
        }
        if let Some(f) = self.forward {
            out.push(format!("forward {f}"));
        }
        if let Some(x) = self.upper_threshold {
            out.push(format!("upper_threshold {x}"));
        }
        if let Some(x) = self.lower_threshold {
            out.push(format!("lower_threshold {x}"));
        }
        out.join(", ")
    }

    /// `real` with the changes applied.
    pub fn apply(&self, real: &RealSpec) -> RealSpec {
        let mut r = real.clone();
        if let Some(w) = self.weight {
            r.weight = w;
        }
        if let Some(f) = self.forward {
            r.forward = f;
        }
        if let Some(x) = self.upper_threshold {
            r.upper_threshold = x;
        }
        if let Some(x) = self.lower_threshold {
            r.lower_threshold = x;
        }
        r
    }
}
