//! The Sluice appliance daemon as a library: configuration, per-core
//! workers, configuration snapshots, counters and the control socket. The
//! `sluice` binary (main.rs) is a thin wrapper around [`app::run`].
//!
//! No unsafe code here: DPDK is reached only through `sluice-dpdk`, and
//! packets are parsed and rewritten by `sluice-core`.
#![forbid(unsafe_code)]

pub mod accept;
pub mod app;
pub mod bgp;
pub mod config;
pub mod conn_list;
pub mod control;
pub mod counters;
pub mod health;
pub mod inventory;
pub mod lb;
pub mod machine;
pub mod metrics;
pub mod notify;
pub mod snapshot;
pub mod sync;
pub mod telemetry;
pub mod worker;
