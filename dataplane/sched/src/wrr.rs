//! Weighted round robin (`wrr`): LVS's interleaved algorithm
//! (`ip_vs_wrr_schedule`), with gcd stepping.
//!
//! The immutable part holds the configured weights, their maximum `max` and
//! their greatest common divisor `di` (reals of weight 0 are ignored for
//! both). The worker's [`Cursor`] holds the position and the current weight
//! `cw`. As in LVS, `cw` starts at `mw = max - (di - 1)`; a pick returns the
//! next real, from the position on, whose weight is at least `cw`; when the
//! end of the list is reached `cw` drops by `di` (back to `mw` once it would
//! reach 0) and the scan restarts at the first real.
//!
//! One cycle (`cw` going once from `mw` down to 1) is `sum(weights) / di`
//! picks long and gives each real exactly `weight / di` picks, so any
//! `sum(weights)` consecutive picks starting at a cycle boundary give each
//! real exactly its weight. Reals of weight 0 are never picked. The sequence
//! is interleaved by weight level, e.g. weights `4, 3, 2` give
//! `A A B A B C A B C`, but a real much heavier than the others is picked
//! in a row: `5, 1, 1` gives `A A A A A B C`, exactly as LVS does.
//!
//! Reals that are not [usable](Loads::usable) at pick time are skipped, as
//! LVS skips overloaded ones. Where LVS would run whole passes that find
//! nothing (all the heavy reals are down), this implementation jumps `cw`
//! straight to the next level that some usable real reaches, which yields the
//! same picks in bounded time: a pick costs at most about three scans of the
//! reals, never `max / di` of them.

use crate::cursor::Cursor;
use crate::loads::Loads;

/// The immutable part of a wrr schedule: the weights as configured, their
/// maximum and their gcd.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WeightedRoundRobin {
    weights: Box<[u32]>,
    /// `max - (di - 1)`, LVS's `mark->mw`; 0 when no weight is positive.
    mw: u32,
    /// gcd of the positive weights, LVS's `mark->di`; 1 when none is.
    di: u32,
}

/// Greatest common divisor (Euclid).
const fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        let t = a % b;
        a = b;
        b = t;
    }
    a
}

impl WeightedRoundRobin {
    /// Builds the schedule data for reals with these configured weights, in
    /// configuration order.
    pub fn new<I: IntoIterator<Item = u32>>(weights: I) -> Self {
        let weights: Box<[u32]> = weights.into_iter().collect();
        let max = weights.iter().copied().max().unwrap_or(0);
        let di = weights
            .iter()
            .copied()
            .filter(|&w| w > 0)
            .fold(0, gcd)
            .max(1);
        let mw = if max == 0 { 0 } else { max - (di - 1) };
        WeightedRoundRobin { weights, mw, di }
    }

    /// The configured weights.
    pub fn weights(&self) -> &[u32] {
        &self.weights
    }

    /// The gcd of the positive weights (1 when none is positive).
    pub fn gcd(&self) -> u32 {
        self.di
    }

    /// Length of one full cycle, `sum(weights) / gcd`, in picks, when every
    /// real is usable. Each real is picked `weight / gcd` times per cycle.
    pub fn cycle_len(&self) -> u64 {
        self.weights.iter().map(|&w| u64::from(w)).sum::<u64>() / u64::from(self.di)
    }

    /// Picks the next real, advancing `cursor`. Returns `None` when no real
    /// with a positive configured weight is [usable](Loads::usable).
    ///
    /// `loads` is only asked about usability; the weights that drive the
    /// rotation are the configured ones (rebuild the schedule when they
    /// change). Real `i` of `loads` must be real `i` of the configuration.
    pub fn pick<L: Loads + ?Sized>(&self, cursor: &mut Cursor, loads: &L) -> Option<usize> {
        let n = self.weights.len().min(loads.len());
        if n == 0 || self.mw == 0 {
            return None;
        }
        let di = self.di;
        // Normalise a fresh cursor, or one left by another schedule, as
        // LVS's ip_vs_wrr_dest_changed does.
        if cursor.cw == 0 || cursor.cw > self.mw {
            cursor.cw = self.mw;
        } else if di > 1 {
            cursor.cw = (cursor.cw / di) * di + 1;
        }
        if cursor.next > n {
            cursor.next %= n;
        }
        // A full pass that finds nothing is followed by a jump to a level
        // some usable real reaches, so the next full pass must succeed;
        // the bound only matters if usability changes under our feet.
        let mut failed_full_passes = 0;
        loop {
            let full = cursor.next == 0;
            let mut max_usable = 0;
            for i in cursor.next..n {
                let w = self.weights[i];
                if w == 0 || !loads.usable(i) {
                    continue;
                }
                if w >= cursor.cw {
                    cursor.next = i + 1;
                    return Some(i);
                }
                max_usable = max_usable.max(w);
            }
            cursor.next = 0;
            if full {
                failed_full_passes += 1;
                if max_usable == 0 || failed_full_passes > 2 {
                    return None;
                }
                // LVS would step cw down pass after empty pass; the first
                // level it would find something at is the largest level
                // (levels are 1 mod di) not above max_usable.
                cursor.cw = ((max_usable - 1) / di) * di + 1;
            } else if cursor.cw > di {
                cursor.cw -= di;
            } else {
                cursor.cw = self.mw;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loads::RealLoad;
    use proptest::prelude::*;

    fn loads_for(weights: &[u32]) -> Vec<RealLoad> {
        weights.iter().map(|&w| RealLoad::idle(w)).collect()
    }

    fn sequence(weights: &[u32], picks: usize) -> Vec<usize> {
        let wrr = WeightedRoundRobin::new(weights.iter().copied());
        let loads = loads_for(weights);
        let mut c = Cursor::new();
        (0..picks)
            .map(|_| wrr.pick(&mut c, &loads[..]).unwrap())
            .collect()
    }

    fn counts(weights: &[u32], picks: usize) -> Vec<u64> {
        let mut counts = vec![0; weights.len()];
        for r in sequence(weights, picks) {
            counts[r] += 1;
        }
        counts
    }

    /// A straight transcription of LVS's ip_vs_wrr_schedule (all reals
    /// available), as a reference.
    fn lvs_reference(weights: &[u32], picks: usize) -> Vec<usize> {
        let max = *weights.iter().max().unwrap() as i64;
        let di = weights
            .iter()
            .copied()
            .filter(|&w| w > 0)
            .fold(0, gcd)
            .max(1) as i64;
        let mw = max - (di - 1);
        let mut cw = mw;
        let mut cl: i64 = -1; // list head
        let n = weights.len() as i64;
        let mut out = Vec::new();
        while out.len() < picks {
            loop {
                cl += 1;
                if cl == n {
                    cl = -1;
                    cw -= di;
                    if cw <= 0 {
                        cw = mw;
                    }
                    continue;
                }
                if weights[cl as usize] as i64 >= cw {
                    out.push(cl as usize);
                    break;
                }
            }
        }
        out
    }

    #[test]
    fn lvs_sequences() {
        // A heavy real is picked in a row: this is what LVS does.
        assert_eq!(
            sequence(&[5, 1, 1], 14),
            [0, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 0, 1, 2]
        );
        // Interleaved by weight level.
        assert_eq!(sequence(&[4, 3, 2], 9), [0, 0, 1, 0, 1, 2, 0, 1, 2]);
        assert_eq!(sequence(&[1, 2, 3], 6), [2, 1, 2, 0, 1, 2]);
        // gcd 2: mw = 6 - 1 = 5, levels 5, 3, 1.
        assert_eq!(sequence(&[6, 4, 2], 6), [0, 0, 1, 0, 1, 2]);
        // Zero weight never appears.
        assert_eq!(sequence(&[2, 0, 1], 6), [0, 0, 2, 0, 0, 2]);
    }

    #[test]
    fn not_all_of_one_real_in_a_row_when_weights_are_close() {
        let seq = sequence(&[4, 3, 2], 9);
        let longest_run = seq
            .chunk_by(|a, b| a == b)
            .map(|run| run.len())
            .max()
            .unwrap();
        assert_eq!(longest_run, 2);
    }

    #[test]
    fn full_cycle_counts_equal_weights() {
        let cases: &[&[u32]] = &[
            &[1],
            &[1, 1, 1],
            &[5, 1, 1],
            &[4, 3, 2],
            &[6, 4, 2],    // gcd 2
            &[9, 6, 3, 3], // gcd 3
            &[10, 20, 30], // gcd 10
            &[3, 0, 2, 7], // a zero weight
            &[100, 1],
            &[0, 8, 0, 12], // gcd 4 with zeros
        ];
        for &weights in cases {
            let wrr = WeightedRoundRobin::new(weights.iter().copied());
            let sum: u64 = weights.iter().map(|&w| u64::from(w)).sum();
            let g = u64::from(wrr.gcd());
            assert_eq!(wrr.cycle_len(), sum / g);
            // One cycle: weight / gcd each.
            let per_cycle: Vec<u64> = weights.iter().map(|&w| u64::from(w) / g).collect();
            assert_eq!(
                counts(weights, (sum / g) as usize),
                per_cycle,
                "{weights:?}"
            );
            // sum(weights) picks (gcd cycles): exactly the weights.
            let exact: Vec<u64> = weights.iter().map(|&w| u64::from(w)).collect();
            assert_eq!(counts(weights, sum as usize), exact, "{weights:?}");
            // And it matches LVS pick for pick over several cycles.
            assert_eq!(
                sequence(weights, 3 * sum as usize),
                lvs_reference(weights, 3 * sum as usize),
                "{weights:?}"
            );
        }
    }

    #[test]
    fn none_when_no_weight_or_nothing_usable() {
        let wrr = WeightedRoundRobin::new([0, 0]);
        assert_eq!(wrr.pick(&mut Cursor::new(), &loads_for(&[0, 0])[..]), None);
        let wrr = WeightedRoundRobin::new([]);
        assert_eq!(wrr.pick(&mut Cursor::new(), &loads_for(&[])[..]), None);
        let wrr = WeightedRoundRobin::new([3, 2]);
        let down = [
            RealLoad::idle(3).eligible(false),
            RealLoad::idle(2).eligible(false),
        ];
        let mut c = Cursor::new();
        assert_eq!(wrr.pick(&mut c, &down[..]), None);
        // Still works afterwards.
        assert_eq!(wrr.pick(&mut c, &loads_for(&[3, 2])[..]), Some(0));
    }

    #[test]
    fn skips_unusable_reals_and_only_light_ones_left() {
        // The heavy real is down: the light ones alternate, without the
        // (max / di) empty passes LVS would make.
        let wrr = WeightedRoundRobin::new([1000, 1, 1]);
        let mut loads = loads_for(&[1000, 1, 1]);
        loads[0].eligible = false;
        let mut c = Cursor::new();
        let seq: Vec<usize> = (0..6)
            .map(|_| wrr.pick(&mut c, &loads[..]).unwrap())
            .collect();
        assert_eq!(seq, [1, 2, 1, 2, 1, 2]);
        // It comes back: the cycle resumes.
        loads[0].eligible = true;
        let seq: Vec<usize> = (0..1002)
            .map(|_| wrr.pick(&mut c, &loads[..]).unwrap())
            .collect();
        assert_eq!(seq.iter().filter(|&&r| r == 0).count(), 1000);
    }

    #[test]
    fn cursor_survives_a_rebuild() {
        let old = WeightedRoundRobin::new([6, 4, 2]);
        let mut c = Cursor::new();
        for _ in 0..4 {
            old.pick(&mut c, &loads_for(&[6, 4, 2])[..]).unwrap();
        }
        // Fewer reals, other weights: picks still follow the new weights
        // over whole cycles once the first partial one is over.
        let new = WeightedRoundRobin::new([1, 3]);
        let loads = loads_for(&[1, 3]);
        let mut counts = [0u32; 2];
        for _ in 0..(4 + 40) {
            counts[new.pick(&mut c, &loads[..]).unwrap()] += 1;
        }
        assert!((10..=12).contains(&counts[0]), "{counts:?}");
        assert!((32..=34).contains(&counts[1]), "{counts:?}");
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 128,
            rng_seed: proptest::test_runner::RngSeed::Fixed(0x5eed_0002),
            ..ProptestConfig::default()
        })]

        /// Any weights: sum(weights) picks give exactly the weights, and the
        /// sequence is LVS's.
        #[test]
        fn exact_counts_and_lvs_order(
            weights in proptest::collection::vec(0u32..12, 1..12),
            scale in 1u32..4,
        ) {
            let weights: Vec<u32> = weights.iter().map(|w| w * scale).collect();
            let sum: u64 = weights.iter().map(|&w| u64::from(w)).sum();
            prop_assume!(sum > 0);
            let want: Vec<u64> = weights.iter().map(|&w| u64::from(w)).collect();
            prop_assert_eq!(counts(&weights, sum as usize), want);
            prop_assert_eq!(
                sequence(&weights, 2 * sum as usize),
                lvs_reference(&weights, 2 * sum as usize)
            );
        }

        /// Whatever is eligible, a pick returns a usable real of positive
        /// weight, or None exactly when there is none.
        #[test]
        fn picks_only_usable(
            reals in proptest::collection::vec((0u32..10, any::<bool>()), 1..16),
            picks in 1usize..50,
        ) {
            let wrr = WeightedRoundRobin::new(reals.iter().map(|r| r.0));
            let loads: Vec<RealLoad> =
                reals.iter().map(|&(w, e)| RealLoad::idle(w).eligible(e)).collect();
            let any = reals.iter().any(|&(w, e)| w > 0 && e);
            let mut c = Cursor::new();
            for _ in 0..picks {
                match wrr.pick(&mut c, &loads[..]) {
                    Some(i) => prop_assert!(reals[i].0 > 0 && reals[i].1),
                    None => prop_assert!(!any),
                }
            }
        }
    }
}
