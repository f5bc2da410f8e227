//! The least-connection family: `lc`, `wlc`, `sed` and `nq`, with LVS's
//! formulas (`ip_vs_lc`, `ip_vs_wlc`, `ip_vs_sed`, `ip_vs_nq`).
//!
//! They have no state: each pick scans the live [`Loads`] (connection counts
//! summed over all workers, supplied by the caller) once. Reals that are not
//! [usable](Loads::usable) (ineligible, or live weight 0) are skipped.
//!
//! | kind | cost of real `i` | picks |
//! |------|------------------|-------|
//! | lc   | `active * 256 + inactive` | the lowest cost |
//! | wlc  | `(active * 256 + inactive) / weight` | the lowest cost |
//! | sed  | `(active + 1) / weight` | the lowest cost |
//! | nq   | the first real with `active == 0`; otherwise as sed | |
//!
//! Ratios are compared by cross-multiplication in 128-bit integers
//! (`cost_a * weight_b < cost_b * weight_a`), with no division and no
//! overflow. **Ties go to the lowest index**: a later real replaces the
//! current best only when strictly better, as in LVS.

use crate::loads::Loads;

/// LVS's connection overhead (`ip_vs_dest_conn_overhead`): an active
/// connection counts 256 times as much as an inactive one.
#[inline]
pub const fn conn_overhead(active: u32, inactive: u32) -> u64 {
    (active as u64) * 256 + inactive as u64
}

/// Scans the usable reals for the lowest `cost(i) / weight(i)`; the first
/// one wins ties.
#[inline]
fn min_ratio<L, F>(loads: &L, cost: F) -> Option<usize>
where
    L: Loads + ?Sized,
    F: Fn(&L, usize) -> u64,
{
    let mut best: Option<(usize, u128, u128)> = None;
    for i in 0..loads.len() {
        if !loads.usable(i) {
            continue;
        }
        let c = u128::from(cost(loads, i));
        let w = u128::from(loads.weight(i));
        match best {
            // c / w < bc / bw  <=>  c * bw < bc * w   (weights are positive)
            Some((_, bc, bw)) if c * bw >= bc * w => {}
            _ => best = Some((i, c, w)),
        }
    }
    best.map(|(i, _, _)| i)
}

/// lc: the usable real with the lowest `active * 256 + inactive`, weights
/// ignored (except that weight 0 is skipped); lowest index on ties.
pub fn pick_lc<L: Loads + ?Sized>(loads: &L) -> Option<usize> {
    let mut best: Option<(usize, u64)> = None;
    for i in 0..loads.len() {
        if !loads.usable(i) {
            continue;
        }
        let c = conn_overhead(loads.active(i), loads.inactive(i));
        match best {
            Some((_, bc)) if c >= bc => {}
            _ => best = Some((i, c)),
        }
    }
    best.map(|(i, _)| i)
}

/// wlc: the usable real with the lowest
/// `(active * 256 + inactive) / weight`; lowest index on ties.
pub fn pick_wlc<L: Loads + ?Sized>(loads: &L) -> Option<usize> {
    min_ratio(loads, |l, i| conn_overhead(l.active(i), l.inactive(i)))
}

/// sed: the usable real with the lowest `(active + 1) / weight` (inactive
/// connections ignored); lowest index on ties.
pub fn pick_sed<L: Loads + ?Sized>(loads: &L) -> Option<usize> {
    min_ratio(loads, |l, i| u64::from(l.active(i)) + 1)
}

/// nq: the first usable real with no active connection, if any; otherwise as
/// [`pick_sed`].
pub fn pick_nq<L: Loads + ?Sized>(loads: &L) -> Option<usize> {
    // One pass, as LVS: return at the first idle real, otherwise keep the sed
    // minimum seen so far.
    let mut best: Option<(usize, u128, u128)> = None;
    for i in 0..loads.len() {
        if !loads.usable(i) {
            continue;
        }
        let active = loads.active(i);
        if active == 0 {
            return Some(i);
        }
        let c = u128::from(active) + 1;
        let w = u128::from(loads.weight(i));
        match best {
            Some((_, bc, bw)) if c * bw >= bc * w => {}
            _ => best = Some((i, c, w)),
        }
    }
    best.map(|(i, _, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loads::RealLoad;
    use proptest::prelude::*;

    fn r(weight: u32, active: u32, inactive: u32) -> RealLoad {
        RealLoad::with_conns(weight, active, inactive)
    }

    #[test]
    fn overhead_formula() {
        assert_eq!(conn_overhead(0, 0), 0);
        assert_eq!(conn_overhead(1, 0), 256);
        assert_eq!(conn_overhead(2, 3), 515);
        assert_eq!(conn_overhead(u32::MAX, u32::MAX), (u32::MAX as u64) * 257);
    }

    #[test]
    fn lc_hand_cases() {
        // 1 active = 256 > 255 inactive.
        let l = [r(1, 1, 0), r(1, 0, 255)];
        assert_eq!(pick_lc(&l[..]), Some(1));
        let l = [r(1, 1, 0), r(1, 0, 256)];
        assert_eq!(pick_lc(&l[..]), Some(0), "tie 256 vs 256 -> lowest index");
        // Weights ignored by lc.
        let l = [r(100, 5, 0), r(1, 4, 0)];
        assert_eq!(pick_lc(&l[..]), Some(1));
        // Ineligible / weight 0 skipped even when idle.
        let l = [
            r(1, 0, 0).eligible(false),
            r(0, 0, 0),
            r(3, 9, 9),
            r(3, 8, 300),
        ];
        assert_eq!(pick_lc(&l[..]), Some(2)); // 9*256+9 = 2313 < 8*256+300 = 2348
    }

    #[test]
    fn wlc_hand_cases() {
        // 10 active on weight 5 (512/conn-weight) vs 3 active on weight 1 (768).
        let l = [r(1, 3, 0), r(5, 10, 0)];
        assert_eq!(pick_wlc(&l[..]), Some(1));
        // Same ratio (2*256/1 = 4*256/2) -> lowest index.
        let l = [r(2, 4, 0), r(1, 2, 0)];
        assert_eq!(pick_wlc(&l[..]), Some(0));
        let l = [r(1, 2, 0), r(2, 4, 0)];
        assert_eq!(pick_wlc(&l[..]), Some(0));
        // Inactive counts: (1*256 + 200)/2 = 228 < (0*256 + 250)/1 = 250.
        let l = [r(1, 0, 250), r(2, 1, 200)];
        assert_eq!(pick_wlc(&l[..]), Some(1));
        // All idle -> first usable.
        let l = [
            r(0, 0, 0),
            r(1, 0, 0).eligible(false),
            r(7, 0, 0),
            r(9, 0, 0),
        ];
        assert_eq!(pick_wlc(&l[..]), Some(2));
        // Huge values do not overflow.
        let l = [r(1, u32::MAX, u32::MAX), r(u32::MAX, u32::MAX, u32::MAX)];
        assert_eq!(pick_wlc(&l[..]), Some(1));
    }

    #[test]
    fn sed_hand_cases() {
        // (0+1)/1 = 1 vs (2+1)/4 = 0.75: the heavier one even though busier.
        let l = [r(1, 0, 0), r(4, 2, 0)];
        assert_eq!(pick_sed(&l[..]), Some(1));
        // Inactive ignored: (1+1)/2 = 1 vs (1+1)/2 = 1 -> tie -> index 0.
        let l = [r(2, 1, 1000), r(2, 1, 0)];
        assert_eq!(pick_sed(&l[..]), Some(0));
        // wlc would pick differently here: (256)/2 = 128 vs 0/1 = 0 -> idx 1;
        // sed: 2/2 = 1 vs 1/1 = 1 -> tie -> idx 0.
        let l = [r(2, 1, 0), r(1, 0, 0)];
        assert_eq!(pick_wlc(&l[..]), Some(1));
        assert_eq!(pick_sed(&l[..]), Some(0));
    }

    #[test]
    fn nq_hand_cases() {
        // An idle real wins even if sed prefers another.
        let l = [r(10, 1, 0), r(1, 0, 0)];
        assert_eq!(pick_sed(&l[..]), Some(0)); // 2/10 < 1/1
        assert_eq!(pick_nq(&l[..]), Some(1));
        // The first idle real wins.
        let l = [r(1, 3, 0), r(1, 0, 50), r(9, 0, 0)];
        assert_eq!(pick_nq(&l[..]), Some(1));
        // Idle but ineligible does not count.
        let l = [r(1, 0, 0).eligible(false), r(3, 2, 0), r(1, 1, 0)];
        assert_eq!(pick_nq(&l[..]), Some(1)); // 3/3 = 1 vs 2/1 = 2
                                              // Nobody idle: sed.
        let l = [r(1, 1, 0), r(4, 5, 0), r(2, 1, 0)];
        assert_eq!(pick_nq(&l[..]), Some(2)); // 2, 1.5, 1
    }

    #[test]
    fn none_when_nothing_usable() {
        let empty: [RealLoad; 0] = [];
        let down = [r(1, 0, 0).eligible(false), r(0, 0, 0)];
        for loads in [&empty[..], &down[..]] {
            assert_eq!(pick_lc(loads), None);
            assert_eq!(pick_wlc(loads), None);
            assert_eq!(pick_sed(loads), None);
            assert_eq!(pick_nq(loads), None);
        }
    }

    /// Brute-force reference: the lowest index `i` such that no usable real
    /// has a strictly smaller `cost / weight`, computed with exact rationals
    /// compared pairwise.
    fn reference(loads: &[RealLoad], cost: impl Fn(&RealLoad) -> u128) -> Option<usize> {
        let usable: Vec<usize> = (0..loads.len()).filter(|&i| loads.usable(i)).collect();
        usable.iter().copied().find(|&i| {
            usable.iter().all(|&j| {
                let (ci, wi) = (cost(&loads[i]), u128::from(loads[i].weight));
                let (cj, wj) = (cost(&loads[j]), u128::from(loads[j].weight));
                cj * wi >= ci * wj // j is not strictly better than i
            })
        })
    }

    fn arb_loads() -> impl Strategy<Value = Vec<RealLoad>> {
        proptest::collection::vec(
            (0u32..6, 0u32..8, 0u32..600, proptest::bool::weighted(0.85)),
            0..12,
        )
        .prop_map(|v| {
            v.into_iter()
                .map(|(w, a, i, e)| RealLoad::with_conns(w, a, i).eligible(e))
                .collect()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 512,
            rng_seed: proptest::test_runner::RngSeed::Fixed(0x5eed_0003),
            ..ProptestConfig::default()
        })]

        #[test]
        fn matches_reference(loads in arb_loads()) {
            let lc = reference(&loads, |r| u128::from(conn_overhead(r.active, r.inactive)) * u128::from(r.weight));
            prop_assert_eq!(pick_lc(&loads[..]), lc);
            let wlc = reference(&loads, |r| u128::from(conn_overhead(r.active, r.inactive)));
            prop_assert_eq!(pick_wlc(&loads[..]), wlc);
            let sed = reference(&loads, |r| u128::from(r.active) + 1);
            prop_assert_eq!(pick_sed(&loads[..]), sed);
            let idle = (0..loads.len()).find(|&i| loads.usable(i) && loads[i].active == 0);
            prop_assert_eq!(pick_nq(&loads[..]), idle.or(sed));
        }
    }
}
