//! [`Schedule`]: the immutable, shareable scheduling data of one virtual
//! service, built when its configuration changes, and the enum dispatch that
//! picks a real for a new connection.
//!
//! # Use from a worker
//!
//! ```
//! use sluice_sched::{Cursor, RealLoad, WeightedReal, Schedule, ScheduleConfig, SchedulerKind};
//! use std::net::{IpAddr, Ipv4Addr};
//!
//! // Control plane, on configuration change: build, then publish (e.g. in an
//! // Arc swapped into the workers' view).
//! let reals: Vec<WeightedReal> = [(1, 3), (2, 1)]
//!     .iter()
//!     .map(|&(host, weight)| {
//!         let ip = IpAddr::V4(Ipv4Addr::new(10, 0, 0, host));
//!         WeightedReal::new(sluice_sched::real_identity(ip, 80), weight)
//!     })
//!     .collect();
//! let kind: SchedulerKind = "wrr".parse().unwrap();
//! let schedule = Schedule::build(kind, &reals, &ScheduleConfig::default()).unwrap();
//!
//! // Worker: one cursor per service, owned by the worker.
//! let mut cursor = Cursor::new();
//! // Live state, indexed like `reals` (normally the caller's own `Loads`).
//! let loads = [RealLoad::idle(3), RealLoad::idle(1)];
//! let client = u32::from(Ipv4Addr::new(192, 0, 2, 7));
//! let hash = if schedule.kind().needs_hash() {
//!     sluice_sched::hash_ipv4(sluice_sched::DEFAULT_SEED, client, None)
//! } else {
//!     0
//! };
//! let picks: Vec<usize> = (0..4)
//!     .map(|_| schedule.pick(&mut cursor, hash, &loads[..]).unwrap())
//!     .collect();
//! assert_eq!(picks, [0, 0, 0, 1]);
//!
//! // Connection table full: no entry will be created, so pick by consistent
//! // hash of the flow, which every later packet of the flow repeats.
//! let flow_hash = sluice_sched::hash_ipv4(sluice_sched::DEFAULT_SEED, client, Some(40000));
//! let real = schedule.consistent_pick(flow_hash, &loads[..]);
//! assert!(real.is_some());
//! ```

use crate::cursor::Cursor;
use crate::error::SchedError;
use crate::least;
use crate::loads::{Loads, Restricted};
use crate::maglev::{check_distinct_identities, MaglevTable};
use crate::real::WeightedReal;
use crate::rr;
use crate::sh::SourceHashTable;
use crate::table::{TableSize, MAX_REALS};
use crate::wrr::WeightedRoundRobin;
use sluice_model::SchedulerKind;

/// Build-time options of a [`Schedule`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ScheduleConfig {
    /// Size of Maglev tables (for `mh`, and for the consistent fallback).
    /// Default 65537.
    pub maglev_table_size: TableSize,
    /// Size of `sh` bucket tables. Default 4093.
    pub sh_table_size: TableSize,
    /// Whether to build a Maglev table for services whose scheduler is not
    /// `mh`, for [`Schedule::consistent_pick`] (the "no connection entry"
    /// fallback). An `mh` service always has one, its own. Default `true`;
    /// costs 2 bytes per slot (128 KiB at the default size) and the build
    /// time of the table per service.
    pub consistent_table: bool,
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        ScheduleConfig {
            maglev_table_size: TableSize::MAGLEV_DEFAULT,
            sh_table_size: TableSize::SH_DEFAULT,
            consistent_table: true,
        }
    }
}

/// The per-kind immutable data.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Algo {
    Rr,
    Wrr(WeightedRoundRobin),
    Lc,
    Wlc,
    Sed,
    Nq,
    Sh(SourceHashTable),
    /// The table is `Schedule::maglev`.
    Mh,
}

/// The immutable scheduling data of one service: `Send + Sync`, built once
/// per configuration change and shared by all workers, each of which keeps
/// its own [`Cursor`].
///
/// Picking allocates nothing, takes no lock and dispatches on an enum (no
/// trait object). Real indices returned are indices into the `reals` slice
/// the schedule was built from; the [`Loads`] passed to the pick functions
/// must be indexed the same way (keep a schedule and the live state of its
/// reals in the same snapshot). Should `loads` be longer, the extra entries
/// are ignored; should it be shorter, the missing reals count as unusable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    kind: SchedulerKind,
    len: usize,
    algo: Algo,
    /// The `mh` table, or the consistent-fallback table, if built.
    maglev: Option<MaglevTable>,
}

impl Schedule {
    /// Builds the schedule of a service with these reals (in configuration
    /// order) and scheduler.
    ///
    /// Errors: more than [`MAX_REALS`] reals; for tables (`sh`, `mh`, and the
    /// consistent table when `config.consistent_table`), more reals of
    /// positive weight than slots; when a Maglev table is built, two reals
    /// with the same identity.
    pub fn build(
        kind: SchedulerKind,
        reals: &[WeightedReal],
        config: &ScheduleConfig,
    ) -> Result<Self, SchedError> {
        if reals.len() > MAX_REALS {
            return Err(SchedError::TooManyReals {
                count: reals.len(),
                max: MAX_REALS,
            });
        }
        let algo = match kind {
            SchedulerKind::Rr => Algo::Rr,
            SchedulerKind::Wrr => {
                Algo::Wrr(WeightedRoundRobin::new(reals.iter().map(|r| r.weight)))
            }
            SchedulerKind::Lc => Algo::Lc,
            SchedulerKind::Wlc => Algo::Wlc,
            SchedulerKind::Sed => Algo::Sed,
            SchedulerKind::Nq => Algo::Nq,
            SchedulerKind::Sh => Algo::Sh(SourceHashTable::build(reals, config.sh_table_size)?),
            SchedulerKind::Mh => Algo::Mh,
        };
        let maglev = if kind == SchedulerKind::Mh || config.consistent_table {
            Some(MaglevTable::build(reals, config.maglev_table_size)?)
        } else {
            // Keep the identity contract the same whatever the options.
            check_distinct_identities(reals)?;
            None
        };
        Ok(Schedule {
            kind,
            len: reals.len(),
            algo,
            maglev,
        })
    }

    /// The scheduler kind.
    pub fn kind(&self) -> SchedulerKind {
        self.kind
    }

    /// Number of reals the schedule was built from.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the schedule was built from no real.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Picks the real for a new connection; `None` when no real can take it.
    ///
    /// * `cursor`: the calling worker's cursor for this service (advanced by
    ///   rr and wrr, untouched by the others);
    /// * `hash`: the client hash (e.g. [`hash_ipv4`](crate::hash_ipv4)),
    ///   read by sh and mh only, see [`SchedulerKind::needs_hash`];
    /// * `loads`: the live state of the reals, indexed like the reals the
    ///   schedule was built from. rr, wrr, sh and mh read only
    ///   [`usable`](Loads::usable); lc, wlc, sed and nq also read the
    ///   weights and connection counts.
    ///
    /// Allocates nothing and takes no lock.
    #[inline]
    pub fn pick<L: Loads + ?Sized>(
        &self,
        cursor: &mut Cursor,
        hash: u64,
        loads: &L,
    ) -> Option<usize> {
        debug_assert_eq!(
            loads.len(),
            self.len,
            "loads must describe the schedule's reals"
        );
        match &self.algo {
            Algo::Rr => rr::pick(cursor, &Restricted::first(loads, self.len)),
            Algo::Wrr(wrr) => wrr.pick(cursor, loads),
            Algo::Lc => least::pick_lc(&Restricted::first(loads, self.len)),
            Algo::Wlc => least::pick_wlc(&Restricted::first(loads, self.len)),
            Algo::Sed => least::pick_sed(&Restricted::first(loads, self.len)),
            Algo::Nq => least::pick_nq(&Restricted::first(loads, self.len)),
            Algo::Sh(sh) => sh.pick(hash, loads),
            Algo::Mh => self.maglev.as_ref().and_then(|t| t.pick(hash, loads)),
        }
    }

    /// Picks a real by Maglev consistent hashing whatever the service's
    /// scheduler: the fallback for a connection that gets no entry in the
    /// connection table (table full), so that every packet of the flow, on
    /// every worker, goes to the same real as long as the reals and their
    /// usability do not change. Pass a hash of the whole flow key (e.g. client
    /// address and port).
    ///
    /// For `mh` services this is the same table as [`pick`](Self::pick).
    /// Returns `None` when no real is usable, or when the service has no
    /// Maglev table (`config.consistent_table` was `false` and the kind is
    /// not `mh`, see [`has_consistent_table`](Self::has_consistent_table)).
    #[inline]
    pub fn consistent_pick<L: Loads + ?Sized>(&self, hash: u64, loads: &L) -> Option<usize> {
        self.maglev.as_ref().and_then(|t| t.pick(hash, loads))
    }

    /// Whether [`consistent_pick`](Self::consistent_pick) has a table to use.
    pub fn has_consistent_table(&self) -> bool {
        self.maglev.is_some()
    }

    /// The Maglev table (of `mh`, or for the consistent fallback), if built.
    pub fn maglev(&self) -> Option<&MaglevTable> {
        self.maglev.as_ref()
    }

    /// The wrr data, for a `wrr` schedule.
    pub fn wrr(&self) -> Option<&WeightedRoundRobin> {
        match &self.algo {
            Algo::Wrr(w) => Some(w),
            _ => None,
        }
    }

    /// The sh bucket table, for an `sh` schedule.
    pub fn source_hash(&self) -> Option<&SourceHashTable> {
        match &self.algo {
            Algo::Sh(t) => Some(t),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loads::RealLoad;
    use crate::testutil::SplitMix64;

    fn reals(weights: &[u32]) -> Vec<WeightedReal> {
        weights
            .iter()
            .enumerate()
            .map(|(i, &w)| WeightedReal::new(crate::hash::fmix64(i as u64 + 1), w))
            .collect()
    }

    fn build(kind: SchedulerKind, weights: &[u32]) -> Schedule {
        Schedule::build(kind, &reals(weights), &ScheduleConfig::default()).unwrap()
    }

    #[test]
    fn schedule_is_send_and_sync() {
        fn check<T: Send + Sync + 'static>() {}
        check::<Schedule>();
        check::<Cursor>();
    }

    #[test]
    fn dispatch_reaches_each_algorithm() {
        let weights = [2, 1, 3];
        let loads = [
            RealLoad::with_conns(2, 4, 0),
            RealLoad::with_conns(1, 1, 0),
            RealLoad::with_conns(3, 9, 0),
        ];
        let mut c = Cursor::new();
        let seq = |kind, c: &mut Cursor| -> Vec<usize> {
            let s = build(kind, &weights);
            (0..6).map(|_| s.pick(c, 0, &loads[..]).unwrap()).collect()
        };
        assert_eq!(seq(SchedulerKind::Rr, &mut c), [0, 1, 2, 0, 1, 2]);
        let mut c = Cursor::new();
        assert_eq!(seq(SchedulerKind::Wrr, &mut c), [2, 0, 2, 0, 1, 2]);
        // lc: 1024, 256, 2304 -> 1. wlc: 512, 256, 768 -> 1.
        // sed: 5/2, 2/1, 10/3 -> 1 (2.0 < 2.5). nq: nobody idle -> sed.
        for kind in [
            SchedulerKind::Lc,
            SchedulerKind::Wlc,
            SchedulerKind::Sed,
            SchedulerKind::Nq,
        ] {
            assert_eq!(
                build(kind, &weights).pick(&mut c, 0, &loads[..]),
                Some(1),
                "{kind}"
            );
        }
        let sh = build(SchedulerKind::Sh, &weights);
        let mh = build(SchedulerKind::Mh, &weights);
        let mut rng = SplitMix64::new(5);
        for _ in 0..100 {
            let h = rng.next_u64();
            assert_eq!(
                sh.pick(&mut c, h, &loads[..]),
                sh.source_hash().unwrap().owner(h)
            );
            assert_eq!(
                mh.pick(&mut c, h, &loads[..]),
                mh.maglev().unwrap().owner(h)
            );
            assert_eq!(
                mh.pick(&mut c, h, &loads[..]),
                mh.consistent_pick(h, &loads[..])
            );
        }
    }

    #[test]
    fn consistent_pick_for_every_kind() {
        let weights = [1, 1, 1, 1];
        let loads = [RealLoad::idle(1); 4];
        let mh = build(SchedulerKind::Mh, &weights);
        for kind in SchedulerKind::ALL {
            let s = build(kind, &weights);
            assert!(s.has_consistent_table());
            let mut rng = SplitMix64::new(9);
            for _ in 0..1000 {
                let h = rng.next_u64();
                // Same reals, same table: same answer whatever the kind.
                assert_eq!(
                    s.consistent_pick(h, &loads[..]),
                    mh.consistent_pick(h, &loads[..])
                );
            }
        }
        let no_table = ScheduleConfig {
            consistent_table: false,
            ..ScheduleConfig::default()
        };
        let s = Schedule::build(SchedulerKind::Wlc, &reals(&weights), &no_table).unwrap();
        assert!(!s.has_consistent_table());
        assert_eq!(s.consistent_pick(1, &loads[..]), None);
        // mh always has its table.
        let s = Schedule::build(SchedulerKind::Mh, &reals(&weights), &no_table).unwrap();
        assert!(s.has_consistent_table());
    }

    #[test]
    fn configurable_table_sizes() {
        let config = ScheduleConfig {
            maglev_table_size: TableSize::new(251).unwrap(),
            sh_table_size: TableSize::new(13).unwrap(),
            consistent_table: true,
        };
        let s = Schedule::build(SchedulerKind::Sh, &reals(&[1, 1]), &config).unwrap();
        assert_eq!(s.maglev().unwrap().size().get(), 251);
        assert_eq!(s.source_hash().unwrap().size().get(), 13);
        assert_eq!(s.source_hash().unwrap().buckets_per_real(), [7, 6]);
        // Too many reals for a table: a clear error.
        let e = Schedule::build(SchedulerKind::Sh, &reals(&[1; 14]), &config).unwrap_err();
        assert_eq!(
            e,
            SchedError::TableSmallerThanReals {
                size: 13,
                reals: 14
            }
        );
        assert_eq!(
            e.to_string(),
            "lookup table size 13 is smaller than the number of reals with a positive weight (14); \
             use a prime at least 100 times larger than the number of reals"
        );
    }

    #[test]
    fn duplicate_identities_rejected_for_every_kind() {
        let dup = [WeightedReal::new(1, 1), WeightedReal::new(1, 1)];
        for consistent_table in [true, false] {
            let config = ScheduleConfig {
                consistent_table,
                ..ScheduleConfig::default()
            };
            for kind in SchedulerKind::ALL {
                let e = Schedule::build(kind, &dup, &config).unwrap_err();
                assert!(matches!(e, SchedError::DuplicateIdentity { .. }), "{kind}");
                assert!(e.to_string().contains("same identity"), "{e}");
            }
        }
    }

    #[test]
    fn empty_service_picks_nothing() {
        let loads: Vec<RealLoad> = Vec::new();
        for kind in SchedulerKind::ALL {
            let s = build(kind, &[]);
            assert!(s.is_empty());
            assert_eq!(s.pick(&mut Cursor::new(), 7, &loads[..]), None, "{kind}");
            assert_eq!(s.consistent_pick(7, &loads[..]), None);
        }
    }

    #[test]
    fn nothing_usable_picks_nothing() {
        let loads = [RealLoad::idle(1).eligible(false), RealLoad::idle(0)];
        for kind in SchedulerKind::ALL {
            let s = build(kind, &[1, 1]);
            assert_eq!(s.pick(&mut Cursor::new(), 7, &loads[..]), None, "{kind}");
            assert_eq!(s.consistent_pick(7, &loads[..]), None, "{kind}");
        }
    }

    #[test]
    fn every_kind_picks_only_usable_reals() {
        let weights = [3, 0, 2, 5, 1, 4];
        let mut rng = SplitMix64::new(77);
        for kind in SchedulerKind::ALL {
            let s = build(kind, &weights);
            let mut c = Cursor::starting_at(3);
            for round in 0..500 {
                let loads: Vec<RealLoad> = weights
                    .iter()
                    .map(|&w| {
                        RealLoad::with_conns(w, rng.below(5) as u32, rng.below(300) as u32)
                            .eligible(rng.below(4) != 0)
                    })
                    .collect();
                let any = (0..loads.len()).any(|i| loads.usable(i));
                match s.pick(&mut c, rng.next_u64(), &loads[..]) {
                    Some(r) => assert!(loads.usable(r), "{kind} round {round} picked {r}"),
                    None => assert!(!any, "{kind} round {round}: None with a usable real"),
                }
            }
        }
    }
}
