//! Maglev consistent hashing (`mh`), with weights: the lookup table of
//! Eisenbud et al., "Maglev: A Fast and Reliable Software Network Load
//! Balancer" (NSDI 2016), section 3.4.
//!
//! # Population
//!
//! The table has `M` slots, `M` prime (default 65537). Each real with a
//! positive weight gets a permutation of the slots from its
//! [identity](crate::WeightedReal::identity) (never from its position in the
//! configuration):
//!
//! ```text
//! offset = fmix64(identity ^ OFFSET_SEED) mod M
//! skip   = fmix64(identity ^ SKIP_SEED) mod (M - 1) + 1
//! permutation[j] = (offset + j * skip) mod M
//! ```
//!
//! Since `M` is prime and `1 <= skip < M`, this visits every slot. The reals
//! then take turns; on its turn a real claims the next slot of its
//! permutation that is still empty, until the table is full.
//!
//! Weights (as Katran's "MaglevV2"): in each round every real adds its weight
//! to an accumulator and takes a turn when the accumulator reaches the
//! largest weight `W` (subtracting `W`). A real of weight `w` thus takes
//! `w / W` turns per round, and (with `N` reals) its number of slots is
//! within about `1 + N * w / sum(weights)` of its ideal share
//! `M * w / sum(weights)`. With equal weights this is the
//! paper's algorithm exactly. Reals of weight 0 take no turn and own no slot.
//!
//! Turns within a round go in order of identity, so the table depends only
//! on the set of `(identity, weight)` pairs: reordering the configuration
//! changes nothing, and adding or removing a real moves few slots besides
//! the ones it gains or loses (the paper's "minimal disruption" property).
//! Measured with `M = 65537` and 5 to 50 reals of equal weight (see the
//! tests, which require at most 1%): removing a real moves its own slots plus
//! 0.1% to 0.45% of the table; adding one moves its new share (`M / (N + 1)`
//! slots, to within one) plus 0.1% to 0.45%.
//!
//! Building costs `O(M log M)` slot probes for equal weights; it allocates
//! the table and O(reals) state, and is meant to run when the configuration
//! changes. A lookup is one multiplication and one read; see
//! [`table`](crate::table) for the fallback when the real found cannot take
//! the connection.

use std::fmt;

use crate::error::SchedError;
use crate::hash::fmix64;
use crate::loads::Loads;
use crate::real::WeightedReal;
use crate::table::{check_reals, SlotTable, TableSize, EMPTY};

/// Seed of the hash giving a real's permutation offset.
const OFFSET_SEED: u64 = 0x6d61_676c_6576_0001;
/// Seed of the hash giving a real's permutation skip.
const SKIP_SEED: u64 = 0x6d61_676c_6576_0002;

/// A Maglev lookup table: an immutable map from client hash to real, built
/// from the reals' identities and weights.
#[derive(Clone, PartialEq, Eq)]
pub struct MaglevTable {
    table: SlotTable,
}

/// Per-real population state.
struct Turn {
    /// The real's index in the configuration.
    real: u16,
    weight: u64,
    /// Accumulated weight, for weighted turns.
    acc: u64,
    /// Next slot of the permutation to try.
    pos: usize,
    skip: usize,
}

impl MaglevTable {
    /// Builds the table for these reals (index `i` of the table's answers is
    /// `reals[i]`).
    ///
    /// Errors: more than [`MAX_REALS`](crate::MAX_REALS) reals, more reals
    /// of positive weight than slots, or two reals with the same identity.
    /// With no real of positive weight the table is empty and every lookup
    /// returns `None`.
    pub fn build(reals: &[WeightedReal], size: TableSize) -> Result<Self, SchedError> {
        let m = size.get() as usize;
        let mut order: Vec<usize> = (0..reals.len()).filter(|&i| reals[i].weight > 0).collect();
        check_reals(reals.len(), order.len(), size)?;
        check_distinct_identities(reals)?;
        let weights: Box<[u32]> = reals.iter().map(|r| r.weight).collect();
        if order.is_empty() {
            return Ok(MaglevTable {
                table: SlotTable::new(Vec::new(), weights, size),
            });
        }

        order.sort_unstable_by_key(|&i| reals[i].identity);
        let max_weight = order
            .iter()
            .map(|&i| u64::from(reals[i].weight))
            .max()
            .unwrap_or(1);
        let mut turns: Vec<Turn> = order
            .iter()
            .map(|&i| {
                let id = reals[i].identity;
                Turn {
                    real: i as u16, // i < MAX_REALS, checked above
                    weight: u64::from(reals[i].weight),
                    acc: 0,
                    pos: (fmix64(id ^ OFFSET_SEED) % m as u64) as usize,
                    skip: (fmix64(id ^ SKIP_SEED) % (m as u64 - 1)) as usize + 1,
                }
            })
            .collect();

        let mut slots = vec![EMPTY; m];
        let mut filled = 0;
        // Each round, the real(s) of the largest weight take a turn, and a
        // turn always fills a slot, so this terminates after at most M rounds.
        'rounds: loop {
            for t in turns.iter_mut() {
                t.acc += t.weight;
                if t.acc < max_weight {
                    continue;
                }
                t.acc -= max_weight;
                let mut c = t.pos;
                while slots[c] != EMPTY {
                    c += t.skip;
                    if c >= m {
                        c -= m;
                    }
                }
                slots[c] = t.real;
                t.pos = c + t.skip;
                if t.pos >= m {
                    t.pos -= m;
                }
                filled += 1;
                if filled == m {
                    break 'rounds;
                }
            }
        }
        Ok(MaglevTable {
            table: SlotTable::new(slots, weights, size),
        })
    }

    /// The table size `M`.
    pub fn size(&self) -> TableSize {
        self.table.size()
    }

    /// Number of reals the table was built from (including weight 0 ones).
    pub fn len(&self) -> usize {
        self.table.weights().len()
    }

    /// Whether the table was built from no real at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The real that owns the home slot of `hash`, usable or not; `None` when
    /// no real has a positive weight.
    #[inline]
    pub fn owner(&self, hash: u64) -> Option<usize> {
        self.table.owner(hash)
    }

    /// The real for `hash`: the owner of its home slot if it is
    /// [usable](Loads::usable), otherwise the deterministic fallback
    /// described in [`table`](crate::table). Allocates nothing.
    #[inline]
    pub fn pick<L: Loads + ?Sized>(&self, hash: u64, loads: &L) -> Option<usize> {
        self.table.pick(hash, loads)
    }

    /// The real owning slot `slot`, for inspection; `None` when out of range
    /// or the table is empty.
    pub fn slot_owner(&self, slot: usize) -> Option<usize> {
        self.table.slot_owner(slot)
    }

    /// How many slots each real owns, by real index (allocates; for
    /// statistics and tests).
    pub fn slots_per_real(&self) -> Vec<u32> {
        self.table.slots_per_real()
    }
}

impl fmt::Debug for MaglevTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MaglevTable")
            .field("size", &self.size().get())
            .field("reals", &self.len())
            .finish()
    }
}

/// Rejects two reals with the same identity: they would have the same
/// permutation, and the table would depend on their order.
pub(crate) fn check_distinct_identities(reals: &[WeightedReal]) -> Result<(), SchedError> {
    let mut by_id: Vec<(u64, usize)> = reals
        .iter()
        .enumerate()
        .map(|(i, r)| (r.identity, i))
        .collect();
    by_id.sort_unstable();
    match by_id.windows(2).find(|w| w[0].0 == w[1].0) {
        Some(w) => Err(SchedError::DuplicateIdentity {
            identity: w[0].0,
            first: w[0].1,
            second: w[1].1,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::real_identity;
    use crate::loads::RealLoad;
    use crate::testutil::SplitMix64;
    use proptest::prelude::*;
    use std::net::{IpAddr, Ipv4Addr};

    const M: u32 = 65_537;

    fn id(n: u32) -> u64 {
        real_identity(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n)), 80)
    }

    /// Reals with identities `id(first..first + n)` and weight 1.
    fn equal(ids: impl IntoIterator<Item = u32>) -> Vec<WeightedReal> {
        ids.into_iter()
            .map(|n| WeightedReal::new(id(n), 1))
            .collect()
    }

    fn build(reals: &[WeightedReal], m: u32) -> MaglevTable {
        MaglevTable::build(reals, TableSize::new(m).unwrap()).unwrap()
    }

    /// Slot owners as identities, so tables built from different lists can
    /// be compared.
    fn owners(t: &MaglevTable, reals: &[WeightedReal]) -> Vec<u64> {
        (0..t.size().get() as usize)
            .map(|s| reals[t.slot_owner(s).unwrap()].identity)
            .collect()
    }

    #[test]
    fn every_slot_filled_and_equal_shares() {
        for n in [1u32, 2, 3, 7, 10, 50, 100] {
            let reals = equal(0..n);
            let t = build(&reals, M);
            let counts = t.slots_per_real();
            assert_eq!(counts.iter().sum::<u32>(), M);
            // Plain Maglev: shares within one slot of each other at most
            // `ceil(M / n)` apart (every round hands out one slot each).
            let (lo, hi) = (*counts.iter().min().unwrap(), *counts.iter().max().unwrap());
            assert!(hi - lo <= 1, "n={n} {counts:?}");
        }
    }

    #[test]
    fn weighted_shares_within_a_few_percent() {
        let cases: &[&[u32]] = &[
            &[1, 2, 3, 4],
            &[1, 1, 1, 10],
            &[100, 50, 25, 25, 0, 1],
            &[7, 13, 29, 31, 37, 41, 43, 47],
            &[65_535, 1],
            &[3; 20],
        ];
        for &weights in cases {
            let reals: Vec<WeightedReal> = weights
                .iter()
                .enumerate()
                .map(|(i, &w)| WeightedReal::new(id(i as u32), w))
                .collect();
            let t = build(&reals, M);
            let counts = t.slots_per_real();
            assert_eq!(counts.iter().sum::<u32>(), M);
            let total: u64 = weights.iter().map(|&w| u64::from(w)).sum();
            for (i, (&w, &c)) in weights.iter().zip(&counts).enumerate() {
                let want = f64::from(M) * w as f64 / total as f64;
                if w == 0 {
                    assert_eq!(c, 0, "{weights:?}");
                } else {
                    // Within 2% of the ideal share, or 2 slots for tiny ones.
                    let tol = (want * 0.02).max(2.0);
                    assert!(
                        (f64::from(c) - want).abs() <= tol,
                        "{weights:?} real {i}: {c} slots, ideal {want:.1}"
                    );
                }
            }
        }
    }

    #[test]
    fn depends_on_identities_not_positions() {
        let reals: Vec<WeightedReal> = (0..12)
            .map(|i| WeightedReal::new(id(i), 1 + i % 4))
            .collect();
        let t = build(&reals, M);
        let mut shuffled = reals.clone();
        SplitMix64::new(7).shuffle(&mut shuffled);
        let u = build(&shuffled, M);
        assert_eq!(owners(&t, &reals), owners(&u, &shuffled));
        // Adding a weight-0 real changes nothing either.
        let mut with_zero = reals.clone();
        with_zero.insert(3, WeightedReal::new(id(99), 0));
        let v = build(&with_zero, M);
        assert_eq!(owners(&t, &reals), owners(&v, &with_zero));
    }

    #[test]
    fn same_hash_same_real() {
        let reals = equal(0..10);
        let t = build(&reals, M);
        let again = build(&reals, M);
        let loads = [RealLoad::idle(1); 10];
        let mut rng = SplitMix64::new(1);
        for _ in 0..10_000 {
            let h = rng.next_u64();
            let r = t.pick(h, &loads[..]).unwrap();
            assert_eq!(Some(r), t.owner(h));
            assert_eq!(t.pick(h, &loads[..]), Some(r));
            assert_eq!(again.pick(h, &loads[..]), Some(r));
        }
    }

    /// Slots whose owner differs between two tables, compared by identity.
    fn moved(a: &[u64], b: &[u64]) -> usize {
        a.iter().zip(b).filter(|(x, y)| x != y).count()
    }

    /// The paper's disruption property, measured. Removing one real of N
    /// must move its own slots (~M/N) and at most 1% of the table besides;
    /// adding one must move ~M/(N+1) (the new real's share) plus at most 1%.
    #[test]
    fn minimal_disruption_on_remove_and_add() {
        let m = M as usize;
        let one_percent = m / 100; // 655 slots
        for n in [5u32, 10, 20, 50] {
            let base = equal(0..n);
            let t = owners(&build(&base, M), &base);

            // Remove each of a few reals in turn.
            for victim in [0, n / 2, n - 1] {
                let fewer: Vec<WeightedReal> = base
                    .iter()
                    .copied()
                    .filter(|r| r.identity != id(victim))
                    .collect();
                let u = owners(&build(&fewer, M), &fewer);
                let own = t.iter().filter(|&&o| o == id(victim)).count();
                let total = moved(&t, &u);
                // Every slot of the victim must move; count the others.
                assert!(total >= own);
                let extra = total - own;
                eprintln!(
                    "N={n} remove #{victim}: {own} own slots moved, {extra} others ({:.2}%)",
                    extra as f64 * 100.0 / m as f64
                );
                assert!(
                    extra <= one_percent,
                    "N={n} remove #{victim}: {own} own slots, {extra} others moved (> {one_percent})"
                );
            }

            // Add one real.
            let mut more = base.clone();
            more.push(WeightedReal::new(id(1000), 1));
            let u = owners(&build(&more, M), &more);
            let gained = u.iter().filter(|&&o| o == id(1000)).count();
            let total = moved(&t, &u);
            let ideal = m / (n as usize + 1);
            assert!(
                gained.abs_diff(ideal) <= 1,
                "N={n} add: new real got {gained} slots, ideal {ideal}"
            );
            assert!(total >= gained);
            let extra = total - gained;
            eprintln!(
                "N={n} add: {gained} slots to the new real, {extra} others ({:.2}%)",
                extra as f64 * 100.0 / m as f64
            );
            assert!(
                extra <= one_percent,
                "N={n} add: {gained} slots to the new real, {extra} others moved (> {one_percent})"
            );
            assert!(total.abs_diff(ideal) <= one_percent + 1);
        }
    }

    #[test]
    fn ineligible_real_loses_only_its_own_hashes() {
        let reals = equal(0..8);
        let t = build(&reals, M);
        let mut loads = [RealLoad::idle(1); 8];
        loads[3].eligible = false;
        let all_up = [RealLoad::idle(1); 8];
        let mut rng = SplitMix64::new(42);
        let mut moved_to = [0u32; 8];
        let mut moved = 0;
        for _ in 0..80_000 {
            let h = rng.next_u64();
            let before = t.pick(h, &all_up[..]).unwrap();
            let after = t.pick(h, &loads[..]).unwrap();
            assert_ne!(after, 3);
            if before == 3 {
                moved += 1;
                moved_to[after] += 1;
                assert_eq!(t.pick(h, &loads[..]), Some(after), "deterministic");
            } else {
                assert_eq!(before, after, "only the down real's hashes move");
            }
        }
        // About 1/8 moved, spread over the 7 others (no single heir).
        assert!((9_000..11_000).contains(&moved), "{moved}");
        for (r, &c) in moved_to.iter().enumerate() {
            if r != 3 {
                assert!((1_100..1_800).contains(&c), "{moved_to:?}");
            }
        }
    }

    #[test]
    fn errors() {
        let size = TableSize::new(7).unwrap();
        let e = MaglevTable::build(&equal(0..8), size).unwrap_err();
        assert_eq!(e, SchedError::TableSmallerThanReals { size: 7, reals: 8 });
        // Weight 0 reals do not count.
        let mut reals = equal(0..7);
        reals.push(WeightedReal::new(id(50), 0));
        assert!(MaglevTable::build(&reals, size).is_ok());

        let dup = [
            WeightedReal::new(5, 1),
            WeightedReal::new(6, 1),
            WeightedReal::new(5, 2),
        ];
        let e = MaglevTable::build(&dup, size).unwrap_err();
        assert_eq!(
            e,
            SchedError::DuplicateIdentity {
                identity: 5,
                first: 0,
                second: 2
            }
        );

        let many = vec![WeightedReal::new(0, 0); crate::MAX_REALS + 1];
        assert!(matches!(
            MaglevTable::build(&many, TableSize::default()),
            Err(SchedError::TooManyReals { .. })
        ));
    }

    #[test]
    fn empty_or_all_zero_weights() {
        let t = build(&[], 7);
        assert!(t.is_empty());
        assert_eq!(t.pick(1, &[RealLoad::idle(1)][..]), None);
        let t = build(&[WeightedReal::new(1, 0), WeightedReal::new(2, 0)], 7);
        assert_eq!(t.owner(1), None);
        assert_eq!(t.slots_per_real(), [0, 0]);
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 48,
            rng_seed: proptest::test_runner::RngSeed::Fixed(0x5eed_0004),
            ..ProptestConfig::default()
        })]

        /// Any weights over a small prime table: full, proportional, and the
        /// pick is usable whenever some weighted real is.
        #[test]
        fn small_tables(
            weights in proptest::collection::vec(0u32..20, 1..20),
            eligible in proptest::collection::vec(any::<bool>(), 20),
            hashes in proptest::collection::vec(any::<u64>(), 50),
        ) {
            let reals: Vec<WeightedReal> =
                weights.iter().enumerate().map(|(i, &w)| WeightedReal::new(id(i as u32), w)).collect();
            let t = build(&reals, 4093);
            let counts = t.slots_per_real();
            let total: u32 = weights.iter().sum();
            if total == 0 {
                prop_assert!(counts.iter().all(|&c| c == 0));
            } else {
                prop_assert_eq!(counts.iter().sum::<u32>(), 4093);
                for (&w, &c) in weights.iter().zip(&counts) {
                    let want = 4093.0 * f64::from(w) / f64::from(total);
                    prop_assert!((f64::from(c) - want).abs() <= want * 0.05 + 2.0);
                }
            }
            let loads: Vec<RealLoad> = weights
                .iter()
                .zip(&eligible)
                .map(|(&w, &e)| RealLoad::idle(w).eligible(e))
                .collect();
            let any = (0..loads.len()).any(|i| loads.usable(i));
            for h in hashes {
                match t.pick(h, &loads[..]) {
                    Some(r) => prop_assert!(loads.usable(r)),
                    None => prop_assert!(!any),
                }
            }
        }
    }
}
