//! Source hashing (`sh`): a table of buckets shared out by weight, indexed by
//! a hash of the client, in the spirit of LVS's `ip_vs_sh` (which uses 256
//! buckets dealt out by weight, in configuration order).
//!
//! # Table
//!
//! The table has `M` buckets, `M` prime (default 4093,
//! [`DEFAULT_SH_TABLE_SIZE`](crate::DEFAULT_SH_TABLE_SIZE)). Each real gets
//! a number of buckets proportional to its configured weight, by the largest
//! remainder method: `floor(M * w / sum(w))` each, and the buckets left over
//! go one each to the reals with the largest remainders (lowest index first
//! on equal remainders). So every real's share is within one bucket of
//! `M * w / sum(w)`, and reals of weight 0 get none (as may a real whose
//! weight is under `sum(w) / M`).
//!
//! The buckets are dealt in configuration order, real 0's first, to the
//! positions `0, s, 2s, ... (mod M)` with `s` close to `M * 0.618`
//! (any `s` visits every position since `M` is prime), which interleaves the
//! reals across the table instead of laying them out in runs.
//!
//! Unlike [`maglev`](crate::maglev), this table depends on the positions of
//! the reals: adding or removing a real reshuffles most clients, as in LVS.
//! Use `mh` where that matters. A lookup, and the fallback when the bucket's
//! real cannot take the connection, are described in
//! [`table`](crate::table).

use std::fmt;

use crate::error::SchedError;
use crate::loads::Loads;
use crate::real::WeightedReal;
use crate::table::{check_reals, SlotTable, TableSize, EMPTY};

/// The immutable part of an sh schedule: the bucket table.
#[derive(Clone, PartialEq, Eq)]
pub struct SourceHashTable {
    table: SlotTable,
}

/// Buckets per real by the largest remainder method: `size` buckets shared
/// in proportion to `weights`. Empty when all weights are 0.
fn apportion(weights: &[u32], size: u32) -> Vec<u32> {
    let total: u128 = weights.iter().map(|&w| u128::from(w)).sum();
    if total == 0 {
        return vec![0; weights.len()];
    }
    let m = u128::from(size);
    let mut counts: Vec<u32> = weights
        .iter()
        .map(|&w| (u128::from(w) * m / total) as u32)
        .collect();
    let given: u32 = counts.iter().sum();
    // Fewer than one left over per weighted real.
    let mut by_remainder: Vec<(u128, usize)> = weights
        .iter()
        .enumerate()
        .filter(|&(_, &w)| w > 0)
        .map(|(i, &w)| (u128::from(w) * m % total, i))
        .collect();
    // Largest remainder first; lowest index first among equals.
    by_remainder.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for &(_, i) in by_remainder.iter().take((size - given) as usize) {
        counts[i] += 1;
    }
    counts
}

impl SourceHashTable {
    /// Builds the bucket table for these reals.
    ///
    /// Errors: more than [`MAX_REALS`](crate::MAX_REALS) reals, or more
    /// reals of positive weight than buckets. With no real of positive weight
    /// every lookup returns `None`.
    pub fn build(reals: &[WeightedReal], size: TableSize) -> Result<Self, SchedError> {
        let positive = reals.iter().filter(|r| r.weight > 0).count();
        check_reals(reals.len(), positive, size)?;
        let weights: Box<[u32]> = reals.iter().map(|r| r.weight).collect();
        if positive == 0 {
            return Ok(SourceHashTable {
                table: SlotTable::new(Vec::new(), weights, size),
            });
        }
        let m = size.get() as usize;
        let counts = apportion(&weights, size.get());
        // s = round(M * (sqrt(5) - 1) / 2), in 1..M.
        let stride = ((m as u128 * 0x9e37_79b9_7f4a_7c15u128 + (1 << 63)) >> 64) as usize;
        let stride = stride.clamp(1, m - 1);
        let mut slots = vec![EMPTY; m];
        let mut pos = 0;
        for (real, &count) in counts.iter().enumerate() {
            for _ in 0..count {
                debug_assert_eq!(slots[pos], EMPTY);
                slots[pos] = real as u16; // real < MAX_REALS, checked above
                pos += stride;
                if pos >= m {
                    pos -= m;
                }
            }
        }
        Ok(SourceHashTable {
            table: SlotTable::new(slots, weights, size),
        })
    }

    /// The table size `M`.
    pub fn size(&self) -> TableSize {
        self.table.size()
    }

    /// The real whose bucket `hash` falls in, usable or not; `None` when no
    /// real has a positive weight.
    #[inline]
    pub fn owner(&self, hash: u64) -> Option<usize> {
        self.table.owner(hash)
    }

    /// The real for `hash`: the bucket's real if it is
    /// [usable](Loads::usable), otherwise the deterministic fallback of
    /// [`table`](crate::table). Allocates nothing.
    #[inline]
    pub fn pick<L: Loads + ?Sized>(&self, hash: u64, loads: &L) -> Option<usize> {
        self.table.pick(hash, loads)
    }

    /// How many buckets each real owns, by real index (allocates).
    pub fn buckets_per_real(&self) -> Vec<u32> {
        self.table.slots_per_real()
    }
}

impl fmt::Debug for SourceHashTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SourceHashTable")
            .field("size", &self.size().get())
            .field("reals", &self.table.weights().len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loads::RealLoad;
    use crate::testutil::SplitMix64;
    use proptest::prelude::*;

    fn reals(weights: &[u32]) -> Vec<WeightedReal> {
        weights
            .iter()
            .enumerate()
            .map(|(i, &w)| WeightedReal::new(i as u64, w))
            .collect()
    }

    fn table(weights: &[u32]) -> SourceHashTable {
        SourceHashTable::build(&reals(weights), TableSize::SH_DEFAULT).unwrap()
    }

    #[test]
    fn apportion_is_exact_to_one_bucket() {
        assert_eq!(apportion(&[1, 1, 1], 7), [3, 2, 2]);
        assert_eq!(apportion(&[1, 2, 4], 7), [1, 2, 4]);
        assert_eq!(apportion(&[0, 5, 0], 13), [0, 13, 0]);
        assert_eq!(apportion(&[0, 0], 13), [0, 0]);
        assert_eq!(apportion(&[1, 1_000_000], 4093), [0, 4093]);
        assert_eq!(apportion(&[u32::MAX, u32::MAX], 7), [4, 3]);
    }

    #[test]
    fn buckets_follow_weights_and_are_interleaved() {
        let t = table(&[1, 2, 3, 0, 4]);
        assert_eq!(t.buckets_per_real(), apportion(&[1, 2, 3, 0, 4], 4093));
        assert_eq!(t.buckets_per_real(), [409, 819, 1228, 0, 1637]);
        // No long runs of one real.
        let owners: Vec<usize> = (0..4093).map(|s| t.table.slot_owner(s).unwrap()).collect();
        let longest = owners
            .chunk_by(|a, b| a == b)
            .map(<[usize]>::len)
            .max()
            .unwrap();
        assert!(longest <= 4, "longest run {longest}");
    }

    #[test]
    fn same_hash_same_real() {
        let t = table(&[3, 1, 2]);
        let loads = [RealLoad::idle(3), RealLoad::idle(1), RealLoad::idle(2)];
        let mut rng = SplitMix64::new(3);
        for _ in 0..10_000 {
            let h = rng.next_u64();
            let r = t.pick(h, &loads[..]).unwrap();
            assert_eq!(t.pick(h, &loads[..]), Some(r));
            assert_eq!(t.owner(h), Some(r));
        }
    }

    #[test]
    fn distribution_of_random_hashes_follows_weights() {
        let weights = [1u32, 2, 3, 4, 0, 10];
        let t = table(&weights);
        let loads: Vec<RealLoad> = weights.iter().map(|&w| RealLoad::idle(w)).collect();
        let mut rng = SplitMix64::new(0xd157);
        let picks = 200_000u32;
        let mut counts = [0u32; 6];
        for _ in 0..picks {
            counts[t.pick(rng.next_u64(), &loads[..]).unwrap()] += 1;
        }
        let total: u32 = weights.iter().sum();
        for (i, (&w, &c)) in weights.iter().zip(&counts).enumerate() {
            let want = f64::from(picks) * f64::from(w) / f64::from(total);
            // 3% of the expected count (several standard deviations).
            let tol = (want * 0.03).max(1.0);
            assert!(
                (f64::from(c) - want).abs() <= tol,
                "real {i}: {c} picks, expected {want:.0} +- {tol:.0} ({counts:?})"
            );
        }
    }

    #[test]
    fn down_real_only_moves_its_clients_spread_over_the_rest() {
        let weights = [1u32, 1, 1, 1, 1];
        let t = table(&weights);
        let up = vec![RealLoad::idle(1); 5];
        let mut down = up.clone();
        down[2].eligible = false;
        let mut rng = SplitMix64::new(11);
        let mut heirs = [0u32; 5];
        for _ in 0..50_000 {
            let h = rng.next_u64();
            let (a, b) = (t.pick(h, &up[..]).unwrap(), t.pick(h, &down[..]).unwrap());
            if a == 2 {
                heirs[b] += 1;
            } else {
                assert_eq!(a, b);
            }
        }
        assert_eq!(heirs[2], 0);
        // ~10000 moved, ~2500 to each of the 4 others.
        for r in [0, 1, 3, 4] {
            assert!((2_000..3_000).contains(&heirs[r]), "{heirs:?}");
        }
    }

    #[test]
    fn errors_and_empty() {
        let small = TableSize::new(7).unwrap();
        assert_eq!(
            SourceHashTable::build(&reals(&[1; 8]), small).unwrap_err(),
            SchedError::TableSmallerThanReals { size: 7, reals: 8 }
        );
        let t = SourceHashTable::build(&reals(&[0, 0]), small).unwrap();
        assert_eq!(t.pick(5, &[RealLoad::idle(1); 2][..]), None);
        assert_eq!(t.owner(5), None);
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 128,
            rng_seed: proptest::test_runner::RngSeed::Fixed(0x5eed_0005),
            ..ProptestConfig::default()
        })]

        #[test]
        fn shares_within_one_bucket(weights in proptest::collection::vec(0u32..1000, 1..40)) {
            let t = table(&weights);
            let counts = t.buckets_per_real();
            let total: u64 = weights.iter().map(|&w| u64::from(w)).sum();
            if total == 0 {
                prop_assert!(counts.iter().all(|&c| c == 0));
            } else {
                prop_assert_eq!(counts.iter().sum::<u32>(), 4093);
                for (&w, &c) in weights.iter().zip(&counts) {
                    let ideal = 4093.0 * w as f64 / total as f64;
                    prop_assert!((f64::from(c) - ideal).abs() < 1.0);
                }
            }
        }
    }
}
