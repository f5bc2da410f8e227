//! What the control protocol reports of services and reals: counters,
//! rates, health, and the live listing.

use super::*;
use sluice_model::{
    AgentSpec, CheckSpec, OnRealRemoval, Persistence, Protocol, RealSpec, SchedulerKind,
    SynProxyMode,
};
use std::fmt;

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

/// A real's health state, as `list` and `health` show it.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum HealthState {
    /// Its check passes.
    Up,
    /// Its check fails, or its agent holds it down or in maintenance.
    Down,
    /// Checked, no verdict yet: it takes traffic.
    Unknown,
    /// Held out by passive detection (connections left unanswered or
    /// refused).
    Suspect,
    /// Draining (by the operator or its agent): no new connections.
    Drain,
    /// Not checked.
    #[default]
    #[serde(rename = "none")]
    Unchecked,
}

impl HealthState {
    /// The name on the wire and in tables.
    pub fn as_str(self) -> &'static str {
        match self {
            HealthState::Up => "up",
            HealthState::Down => "down",
            HealthState::Unknown => "unknown",
            HealthState::Suspect => "suspect",
            HealthState::Drain => "drain",
            HealthState::Unchecked => "none",
        }
    }

    /// Whether a check or an agent watches the real.
    pub fn checked(self) -> bool {
        self != HealthState::Unchecked
    }
}

impl fmt::Display for HealthState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A real's health as the appliance sees it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct HealthInfo {
    /// Its state.
    pub state: HealthState,
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
    /// Connections the real refused (answered the SYN with a reset).
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
    pub vip: IpAddr,
    /// Virtual port.
    pub port: u16,
    /// Scheduler.
    pub scheduler: SchedulerKind,
    /// Persistence.
    pub persistence: Option<Persistence>,
    /// Policy for removed reals' connections.
    pub on_real_removal: OnRealRemoval,
    /// Maglev table size, when set.
    pub mh_table_size: Option<u32>,
    /// The active check, when set.
    #[serde(default)]
    pub check: Option<CheckSpec>,
    /// The agent, when set.
    #[serde(default)]
    pub agent: Option<AgentSpec>,
    /// Policy for the connections of a real found down.
    #[serde(default)]
    pub on_real_down: OnRealRemoval,
    /// Effective weights scaled by latency.
    #[serde(default)]
    pub weight_by_latency: bool,
    /// Templates of quiesced reals are dropped when next used.
    #[serde(default)]
    pub expire_quiescent_template: bool,
    /// Passive health, when on.
    #[serde(default)]
    pub passive_health: Option<PassiveHealth>,
    /// When handshakes are answered with SYN cookies.
    #[serde(default)]
    pub syn_proxy: SynProxyMode,
    /// What a mid-connection TCP segment of no entry gets (the policy in
    /// force, default or set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_miss: Option<sluice_model::OnMiss>,
    /// Full NAT: the local addresses its connections leave from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub local_addresses: Vec<IpAddr>,
    /// Full NAT: how many connections can reach one real's port at once
    /// (local addresses times local ports).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub local_ports_per_real: u64,
    /// Reals.
    pub reals: Vec<RealInfo>,
    /// Counters (since start, or since the last `zero`).
    pub stats: LbCounters,
    /// Rates over the sliding window.
    #[serde(default)]
    pub rates: Rates,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}
