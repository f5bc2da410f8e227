//! What Sluice is configured with, as data: virtual services and their
//! real servers ([`ServiceSpec`], [`RealSpec`]), the changes an operator
//! makes to them ([`ServicePatch`], [`RealPatch`]), health checks and
//! agents ([`CheckSpec`], [`AgentSpec`]) and the scheduler names
//! ([`SchedulerKind`]); and a device's counters ([`DeviceStats`]), which
//! the DPDK layer and the protocol share.
//!
//! The configuration file and the control protocol are made of these
//! types, and the dataplane (`sluice-lb`), the health checker
//! (`sluice-health`), the protocol (`sluice-proto`) and `sluicectl` all
//! share them, so none of those crates imports another's wire or runtime
//! types. This crate has no logic beyond parsing and validating its own
//! values, and depends on nothing but serde.
//!
//! - [`addr`]: the [`IpAddress`] trait over IPv4 and IPv6 addresses.
//! - [`service`]: services, reals, persistence, policies, patches.
//! - [`check`]: health checks and agents, with their defaults and
//!   validation into a ready-to-run [`Probe`].
//! - [`scheduler`]: the LVS scheduler names.
//! - [`device`]: a network device's own counters, which the DPDK layer
//!   reads and the control protocol reports.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod addr;
pub mod check;
pub mod device;
pub mod scheduler;
pub mod service;

pub use addr::{IpAddress, SocketAddress};
pub use check::{AgentSpec, CheckKind, CheckSpec, Probe, SpecError, StatusMatch};
pub use device::DeviceStats;
pub use scheduler::{ParseKindError, SchedulerKind};
pub use service::{
    Forward, OnMiss, OnRealRemoval, PassiveHealth, Persistence, Protocol, ProxyProtocol, RealPatch,
    RealSpec, ServiceKey, ServicePatch, ServiceSpec, SynProxyMode,
};
