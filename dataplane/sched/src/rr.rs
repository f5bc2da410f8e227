//! Round robin (`rr`): the reals in turn, skipping those that cannot take a
//! connection, as LVS's `ip_vs_rr`.
//!
//! There is no immutable part beyond the number of reals; the position lives
//! in the worker's [`Cursor`]. A pick scans at most once around the reals, so
//! it costs O(number of reals) in the worst case (many ineligible reals) and
//! O(1) when all are eligible.

use crate::cursor::Cursor;
use crate::loads::Loads;

/// Picks the first [usable](Loads::usable) real at or after the cursor's
/// position, wrapping around, and moves the cursor just past it. Returns
/// `None`, leaving the cursor unchanged, when no real is usable.
///
/// Over `k * N` picks with all `N` reals usable, each real is picked exactly
/// `k` times.
#[inline]
pub fn pick<L: Loads + ?Sized>(cursor: &mut Cursor, loads: &L) -> Option<usize> {
    let n = loads.len();
    if n == 0 {
        return None;
    }
    let start = if cursor.next < n {
        cursor.next
    } else {
        cursor.next % n
    };
    let mut i = start;
    for _ in 0..n {
        if loads.usable(i) {
            cursor.next = i + 1;
            return Some(i);
        }
        i += 1;
        if i == n {
            i = 0;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loads::RealLoad;
    use proptest::prelude::*;

    fn counts(loads: &[RealLoad], cursor: &mut Cursor, picks: usize) -> Vec<usize> {
        let mut counts = vec![0; loads.len()];
        for _ in 0..picks {
            counts[pick(cursor, loads).unwrap()] += 1;
        }
        counts
    }

    #[test]
    fn rotates_in_order() {
        let loads = [RealLoad::idle(1); 3];
        let mut c = Cursor::new();
        let seq: Vec<usize> = (0..7).map(|_| pick(&mut c, &loads[..]).unwrap()).collect();
        assert_eq!(seq, [0, 1, 2, 0, 1, 2, 0]);
    }

    #[test]
    fn exactly_even_over_whole_rounds() {
        for n in 1..=9 {
            let loads = vec![RealLoad::idle(1); n];
            let mut c = Cursor::new();
            assert_eq!(counts(&loads, &mut c, 25 * n), vec![25; n]);
            // Starting elsewhere changes nothing over whole rounds.
            let mut c = Cursor::starting_at(n + 2);
            assert_eq!(counts(&loads, &mut c, 7 * n), vec![7; n]);
        }
    }

    #[test]
    fn weights_do_not_matter_only_usability() {
        let loads = [RealLoad::idle(1), RealLoad::idle(100), RealLoad::idle(7)];
        assert_eq!(counts(&loads, &mut Cursor::new(), 30), [10, 10, 10]);
    }

    #[test]
    fn skips_ineligible_and_zero_weight() {
        let loads = [
            RealLoad::idle(1),
            RealLoad::idle(1).eligible(false),
            RealLoad::idle(0),
            RealLoad::idle(1),
            RealLoad::idle(0).eligible(true), // eligible but quiesced
        ];
        let mut c = Cursor::new();
        let seq: Vec<usize> = (0..6).map(|_| pick(&mut c, &loads[..]).unwrap()).collect();
        assert_eq!(seq, [0, 3, 0, 3, 0, 3]);
    }

    #[test]
    fn none_when_nothing_eligible() {
        let mut c = Cursor::starting_at(1);
        let empty: [RealLoad; 0] = [];
        assert_eq!(pick(&mut c, &empty[..]), None);
        let loads = [RealLoad::idle(0), RealLoad::idle(5).eligible(false)];
        assert_eq!(pick(&mut c, &loads[..]), None);
        assert_eq!(c, Cursor::starting_at(1), "cursor untouched");
    }

    #[test]
    fn resumes_after_reals_come_back() {
        let mut loads = [RealLoad::idle(1); 4];
        let mut c = Cursor::new();
        assert_eq!(pick(&mut c, &loads[..]), Some(0));
        loads[1].eligible = false;
        assert_eq!(pick(&mut c, &loads[..]), Some(2));
        loads[1].eligible = true;
        assert_eq!(pick(&mut c, &loads[..]), Some(3));
        assert_eq!(pick(&mut c, &loads[..]), Some(0));
        assert_eq!(pick(&mut c, &loads[..]), Some(1));
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 128,
            rng_seed: proptest::test_runner::RngSeed::Fixed(0x5eed_0001),
            ..ProptestConfig::default()
        })]

        /// With any eligibility mask, k rounds over the eligible reals give
        /// each eligible real exactly k picks and ineligible ones none.
        #[test]
        fn even_over_eligible_subset(
            mask in proptest::collection::vec(any::<bool>(), 1..40),
            start in 0usize..64,
            rounds in 1usize..6,
        ) {
            let loads: Vec<RealLoad> =
                mask.iter().map(|&e| RealLoad::idle(1).eligible(e)).collect();
            let eligible = mask.iter().filter(|&&e| e).count();
            let mut c = Cursor::starting_at(start);
            if eligible == 0 {
                prop_assert_eq!(pick(&mut c, &loads[..]), None);
            } else {
                let got = counts(&loads, &mut c, rounds * eligible);
                let want: Vec<usize> =
                    mask.iter().map(|&e| if e { rounds } else { 0 }).collect();
                prop_assert_eq!(got, want);
            }
        }
    }
}
