//! Schedulers: pick a real server for a new connection of a virtual service
//! (rr, wrr, lc, wlc, sed, nq, sh, mh), as Linux Virtual Server does. Sans-IO,
//! no DPDK, no unsafe code, no dependencies.
//!
//! # Model
//!
//! * **Build on configuration change.** [`Schedule::build`] takes the
//!   service's [`SchedulerKind`], its reals as [`WeightedReal`]s (a stable
//!   identity and a configured weight, in configuration order) and a
//!   [`ScheduleConfig`] (table sizes, whether to build the consistent
//!   fallback table). It allocates what the scheduler needs (the wrr weights,
//!   the sh bucket table, the Maglev table) and returns an immutable,
//!   `Send + Sync` value to share among workers (e.g. behind an `Arc`).
//! * **A cursor per worker.** Each worker keeps one [`Cursor`] per service,
//!   the only mutable state (the rr / wrr position); no lock, no atomics.
//! * **Pick.** [`Schedule::pick`]`(&mut cursor, hash, &loads)` returns the
//!   index of the real (into the `WeightedReal` slice), or `None` when no real can
//!   take the connection. It allocates nothing, takes no lock and dispatches
//!   on an enum. `hash` is the client hash ([`hash_ipv4`]), read by sh and mh
//!   only ([`SchedulerKind::needs_hash`]). `loads` is the caller's view of the
//!   live state through the [`Loads`] trait: live weight, active and inactive
//!   connections summed over all workers, and eligibility (false when the real
//!   is quiesced, down, or above its connection threshold).
//! * **Fallback without a connection entry.** [`Schedule::consistent_pick`]
//!   picks by Maglev consistent hashing whatever the scheduler, for flows
//!   that cannot get a connection-table entry.
//!
//! # Algorithms
//!
//! | kind | module | picks |
//! |------|--------|-------|
//! | rr   | [`rr`] | the next usable real in turn |
//! | wrr  | [`wrr`] | LVS interleaved weighted round robin (gcd stepping) |
//! | lc   | [`least`] | lowest `active * 256 + inactive` |
//! | wlc  | [`least`] | lowest `(active * 256 + inactive) / weight` |
//! | sed  | [`least`] | lowest `(active + 1) / weight` |
//! | nq   | [`least`] | first real with no active connection, else sed |
//! | sh   | [`sh`] | weighted bucket table indexed by the client hash |
//! | mh   | [`maglev`] | Maglev consistent hashing table, weighted |
//!
//! Every scheduler skips reals that are not [usable](Loads::usable)
//! (ineligible, or of live weight 0). Ties in lc / wlc / sed / nq go to the
//! lowest index. sh and mh fall back deterministically when the real found
//! is not usable (see [`table`]).

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod cursor;
pub mod error;
pub mod hash;
pub mod least;
pub mod loads;
pub mod maglev;
pub mod real;
pub mod rr;
pub mod schedule;
pub mod sh;
pub mod table;
pub mod wrr;

#[cfg(test)]
mod testutil;

pub use cursor::Cursor;
pub use error::SchedError;
pub use hash::{fmix64, hash_ip, hash_ipv4, hash_ipv6, real_identity, DEFAULT_SEED};
pub use least::{conn_overhead, pick_lc, pick_nq, pick_sed, pick_wlc};
pub use loads::{Loads, RealLoad, Restricted};
pub use maglev::MaglevTable;
pub use real::WeightedReal;
pub use schedule::{Schedule, ScheduleConfig};
pub use sh::SourceHashTable;
pub use sluice_model::{ParseKindError, SchedulerKind};
pub use table::{
    TableSize, DEFAULT_MAGLEV_TABLE_SIZE, DEFAULT_SH_TABLE_SIZE, MAX_PROBES, MAX_REALS,
    MAX_TABLE_SIZE, MIN_TABLE_SIZE,
};
pub use wrr::WeightedRoundRobin;
