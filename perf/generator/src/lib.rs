//! The sans-IO core of `sluice-gen`, Sluice's traffic generator: everything
//! that decides what to send and judges what comes back, on plain bytes and
//! plain numbers, with no DPDK, so it is unit-tested on its own. The binary
//! (`src/main.rs`, `src/app/`) drives it with `sluice-dpdk`.
//!
//! - [`cli`], [`config`]: options (flags and TOML) and their validation.
//! - [`scenario`]: modes of the device under test, protocols, reals.
//! - [`family`]: what differs between IPv4 and IPv6 runs (headers, the
//!   clients' prefix).
//! - [`flows`]: client addresses and ports per flow, flow replacement, the
//!   sender's per-flow state.
//! - [`stamp`]: the magic, run, flow, sequence number and TSC every packet
//!   carries.
//! - [`sizes`]: fixed sizes and IMIX.
//! - [`frame`]: building frames from per-size templates.
//! - [`check`]: checking returned packets (checksums from scratch,
//!   addresses, MACs, TTL) for each mode.
//! - [`seqtrack`]: per-flow duplicate and reorder detection.
//! - [`rate`]: the TSC token bucket.
//! - [`rfc2544`]: NDR/PDR binary search.
//! - [`arp`]: answering ARP and neighbour solicitations for the reals and
//!   the clients' gateway.
//! - [`stats`], [`report`]: counters, latency histogram, results (JSON and
//!   human).
#![forbid(unsafe_code)]

pub mod arp;
pub mod check;
pub mod cli;
pub mod config;
pub mod family;
pub mod flows;
pub mod frame;
pub mod rate;
pub mod report;
pub mod rfc2544;
pub mod scenario;
pub mod seqtrack;
pub mod sizes;
pub mod stamp;
pub mod stats;
