//! Virtual services and real servers as the control protocol and the
//! configuration file describe them.

use super::*;

/// Transport protocol of a virtual service.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
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
pub enum Forward {
    /// NAT (ipvsadm -m): addresses rewritten, replies return through
    /// Sluice.
    Nat,
    /// Direct routing (ipvsadm -g): only MACs rewritten, replies go straight
    /// to the client; the real holds the VIP on a loopback.
    Dr,
}

impl fmt::Display for Forward {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Forward::Nat => "nat",
            Forward::Dr => "dr",
        })
    }
}

impl std::str::FromStr for Forward {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "nat" | "masq" | "masquerading" => Ok(Forward::Nat),
            "dr" | "route" | "direct" | "gatewaying" => Ok(Forward::Dr),
            _ => Err(format!(
                "unknown forwarding method {s:?} (expected nat or dr)"
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
    pub vip: Ipv4Addr,
    /// Virtual port.
    pub port: u16,
}

impl fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}:{}", self.protocol, self.vip, self.port)
    }
}

/// Source-IP persistence (ipvsadm -p/-M): a client network keeps its real
/// for `timeout_secs` after its last connection.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Persistence {
    /// Seconds a template outlives the client's last connection.
    pub timeout_secs: u32,
    /// Client netmask as a prefix length (32: each address on its own).
    #[serde(default = "default_netmask")]
    pub netmask: u8,
}

fn default_netmask() -> u8 {
    32
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

/// A virtual service's settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServiceSpec {
    /// Protocol.
    pub protocol: Protocol,
    /// Virtual IP.
    pub vip: Ipv4Addr,
    /// Virtual port.
    pub port: u16,
    /// Scheduler: rr, wrr, lc, wlc, sed, nq, sh, mh.
    #[serde(default = "default_scheduler")]
    pub scheduler: String,
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
    pub check: Option<sluice_health::CheckSpec>,
    /// Server agent polled on every real (HAProxy agent-check protocol).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<sluice_health::AgentSpec>,
    /// What happens to a real's connections when it is found down.
    #[serde(default)]
    pub on_real_down: OnRealRemoval,
    /// Scale reals' effective weights by their check latency (the fastest
    /// keeps its weight, a real twice as slow gets half).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub weight_by_latency: bool,
    /// The real servers.
    #[serde(default, rename = "real")]
    pub reals: Vec<RealSpec>,
}

fn default_scheduler() -> String {
    "wlc".into()
}

impl ServiceSpec {
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
    pub ip: Ipv4Addr,
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
    pub check: Option<sluice_health::CheckSpec>,
    /// This real's own agent, instead of the service's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<sluice_health::AgentSpec>,
}

fn default_weight() -> u32 {
    1
}

fn default_forward() -> Forward {
    Forward::Nat
}

/// Packet, byte and connection counters of a service or a real.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct LbCounters {
    /// Connections scheduled.
    pub connections: u64,
    /// Packets from clients.
    pub packets_in: u64,
    /// Bytes from clients.
    pub bytes_in: u64,
    /// Packets to clients (NAT replies).
    pub packets_out: u64,
    /// Bytes to clients.
    pub bytes_out: u64,
}

/// Per-second rates over the daemon's sliding window (a few seconds).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct Rates {
    /// New connections per second.
    pub connections: f64,
    /// Packets per second from clients.
    pub packets_in: f64,
    /// Packets per second to clients.
    pub packets_out: f64,
    /// Bytes per second from clients.
    pub bytes_in: f64,
    /// Bytes per second to clients.
    pub bytes_out: f64,
}

/// A real's health as the appliance sees it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct HealthInfo {
    /// `up`, `down`, `unknown` (no verdict yet; takes traffic), `suspect`
    /// (held out by passive detection), `drain` (draining), or `none`
    /// (not checked).
    pub state: String,
    /// Whether it takes new connections.
    pub available: bool,
    /// Kind of active check.
    pub check: String,
    /// Whether the latest check succeeded.
    pub last_ok: Option<bool>,
    /// What the latest check saw.
    pub last_detail: Option<String>,
    /// Latency of the latest check, in milliseconds.
    pub last_latency_ms: Option<f64>,
    /// EWMA of successful checks' latency, in milliseconds.
    pub latency_ewma_ms: Option<f64>,
    /// Seconds since the state last changed.
    pub since_change_secs: Option<u64>,
    /// Checks run.
    pub checks: u64,
    /// The agent's last reply.
    pub agent_reply: Option<String>,
    /// The agent's weight percentage in force.
    pub agent_weight_percent: Option<u32>,
    /// The agent's last error.
    pub agent_error: Option<String>,
    /// The weight schedulers use now (configured weight scaled by the
    /// agent and by latency; 0 when draining).
    pub effective_weight: u32,
    /// Connections that expired unanswered (SYN_RECV without reply).
    pub syn_timeouts: u64,
    /// Resets the real sent.
    pub resets: u64,
    /// Seconds the passive detection still holds it out.
    pub suspect_for_secs: Option<u64>,
    /// Seconds until a drain's deadline ends its remaining connections.
    pub drain_deadline_secs: Option<u64>,
    /// Availability changes seen by the active checks and the agent.
    pub transitions: u64,
}

/// A real server with its live figures.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RealInfo {
    /// Settings.
    #[serde(flatten)]
    pub spec: RealSpec,
    /// Established connections.
    pub active: u64,
    /// Other connections (handshake, closing, UDP).
    pub inactive: u64,
    /// Over its upper threshold (no new connections).
    pub overloaded: bool,
    /// Counters (since start, or since the last `zero`).
    pub stats: LbCounters,
    /// Rates over the sliding window.
    #[serde(default)]
    pub rates: Rates,
    /// Health.
    #[serde(default)]
    pub health: HealthInfo,
}

/// A virtual service with its reals and live figures.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ServiceInfo {
    /// Protocol.
    pub protocol: Protocol,
    /// Virtual IP.
    pub vip: Ipv4Addr,
    /// Virtual port.
    pub port: u16,
    /// Scheduler.
    pub scheduler: String,
    /// Persistence.
    pub persistence: Option<Persistence>,
    /// Policy for removed reals' connections.
    pub on_real_removal: OnRealRemoval,
    /// Maglev table size, when set.
    pub mh_table_size: Option<u32>,
    /// The active check, when set.
    #[serde(default)]
    pub check: Option<sluice_health::CheckSpec>,
    /// The agent, when set.
    #[serde(default)]
    pub agent: Option<sluice_health::AgentSpec>,
    /// Policy for the connections of a real found down.
    #[serde(default)]
    pub on_real_down: OnRealRemoval,
    /// Effective weights scaled by latency.
    #[serde(default)]
    pub weight_by_latency: bool,
    /// Reals.
    pub reals: Vec<RealInfo>,
    /// Counters (since start, or since the last `zero`).
    pub stats: LbCounters,
    /// Rates over the sliding window.
    #[serde(default)]
    pub rates: Rates,
}
