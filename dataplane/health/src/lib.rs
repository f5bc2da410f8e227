//! Sluice's built-in active health checks and server-agent load feedback,
//! the keepalived / HAProxy part of the appliance. Plain std Rust: no DPDK,
//! no unsafe code.
//!
//! The daemon runs the checks from its control plane through the kernel's
//! network stack (the appliance gives the kernel an interface on each data
//! segment), so a check is an ordinary socket or process:
//!
//! | kind   | up when                                                        |
//! |--------|----------------------------------------------------------------|
//! | `tcp`  | a TCP connection to the check port is established               |
//! | `http` | `GET path` answers an expected status (and body substring)      |
//! | `udp`  | a datagram `send` gets a reply (containing `expect`, if set)    |
//! | `exec` | the command exits with status 0 before the timeout              |
//! | `none` | always (no check runs)                                          |
//!
//! # Modules
//!
//! - [`spec`] — the configuration ([`CheckSpec`], [`AgentSpec`]), as
//!   deserialized from a TOML `check = { ... }` / `agent = { ... }` table,
//!   its defaults and its validation into a ready-to-run [`Probe`].
//! - [`state`] — the rise/fall state machine ([`RiseFall`]) and the
//!   latency EWMA, pure and separately tested.
//! - [`checks`] — one attempt of each kind of check, every socket operation
//!   and child process bounded by the attempt's timeout.
//! - [`agent`] — the HAProxy agent-check text protocol: the reply parser
//!   ([`parse_agent_reply`]), the poll, and the agent's persistent state
//!   ([`AgentStatus`]).
//! - [`monitor`] — the [`Monitor`]: a scheduler thread and a bounded pool of
//!   worker threads checking a set of [`Target`]s, with
//!   [`Monitor::snapshot`] and a channel of [`Transition`]s.
//!
//! # Semantics in short
//!
//! * A target starts [`State::Unknown`], which **counts as up**, so that a
//!   restart of the appliance does not blackhole traffic: it only goes
//!   [`State::Down`] after `fall` consecutive failed checks (and becomes
//!   [`State::Up`], without changing availability, after `rise` successes).
//! * Up → down after `fall` consecutive failures, down → up after `rise`
//!   consecutive successes, as keepalived and HAProxy do.
//! * The agent can take a target out (`down`, `fail`, `stopped`, `maint`) or
//!   drain it (`drain`, weight 0) and scales its weight (`NN%`); a target is
//!   *available* when its check state counts as up and its agent does not
//!   hold it down or in maintenance ([`TargetStatus::is_available`]). A
//!   [`Transition`] is emitted whenever availability changes.
//! * Agent connection failures and unparseable replies are recorded
//!   ([`AgentStatus::last_error`]) and otherwise ignored: the last good
//!   values stay in force.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod agent;
pub mod checks;
pub mod monitor;
pub mod state;

pub use agent::{
    parse_agent_reply, AgentAdmin, AgentMode, AgentOper, AgentReply, AgentStatus,
    MAX_WEIGHT_PERCENT,
};
pub use checks::{CheckContext, CheckResult};
pub use monitor::{Monitor, Target, TargetStatus, Transition, DEFAULT_POOL_SIZE};
pub use sluice_model::check::{
    self as spec, AgentSpec, CheckKind, CheckSpec, Probe, SpecError, StatusMatch,
};
pub use state::{RiseFall, State, EWMA_ALPHA};
