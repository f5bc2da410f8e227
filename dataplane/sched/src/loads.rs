//! [`Loads`]: how a scheduler sees the live state of a service's reals
//! (weight, connection counts, eligibility), supplied by the caller.
//!
//! The caller owns the live state: the connection counts summed over all
//! workers, the health-check verdicts, the upper connection thresholds. The
//! schedulers only read it, through this trait, so that this crate needs no
//! knowledge of how the counters are stored (per-worker atomics, a snapshot,
//! ...). Implementations should be cheap: the least-connection schedulers call
//! the accessors once or twice per real on every pick.

/// Live state of the reals of one service, indexed like the
/// [`WeightedReal`](crate::WeightedReal)s the [`Schedule`](crate::Schedule) was built
/// from (index `i` here is the `i`-th real of the configuration).
pub trait Loads {
    /// Number of reals.
    fn len(&self) -> usize;

    /// Whether there are no reals.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Current weight of real `i`. The least-connection schedulers (lc, wlc,
    /// sed, nq) divide by it; every scheduler skips a real whose live weight
    /// is 0.
    fn weight(&self, i: usize) -> u32;

    /// Active (established) connections to real `i`, summed over all workers.
    fn active(&self, i: usize) -> u32;

    /// Inactive (e.g. TIME_WAIT, half-open) connections to real `i`, summed
    /// over all workers.
    fn inactive(&self, i: usize) -> u32;

    /// Whether real `i` may take a new connection. The caller returns `false`
    /// when the real is quiesced (weight 0), marked down by health checks, or
    /// at or above its upper connection threshold.
    fn eligible(&self, i: usize) -> bool;

    /// Whether real `i` may be picked: [`eligible`](Self::eligible) and a
    /// positive live [`weight`](Self::weight). This is the test every
    /// scheduler applies.
    #[inline]
    fn usable(&self, i: usize) -> bool {
        self.eligible(i) && self.weight(i) > 0
    }
}

/// A plain snapshot of one real's live state; `[RealLoad]` and
/// `Vec<RealLoad>` implement [`Loads`]. Handy for tests, the control plane
/// and callers that copy the counters into a scratch array before picking.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct RealLoad {
    /// Current weight.
    pub weight: u32,
    /// Active connections.
    pub active: u32,
    /// Inactive connections.
    pub inactive: u32,
    /// Whether the real may take new connections.
    pub eligible: bool,
}

impl RealLoad {
    /// A real with this weight, no connections, eligible when the weight is
    /// positive.
    pub const fn idle(weight: u32) -> Self {
        RealLoad {
            weight,
            active: 0,
            inactive: 0,
            eligible: weight > 0,
        }
    }

    /// A real with this weight and these connection counts, eligible when the
    /// weight is positive.
    pub const fn with_conns(weight: u32, active: u32, inactive: u32) -> Self {
        RealLoad {
            weight,
            active,
            inactive,
            eligible: weight > 0,
        }
    }

    /// The same real, with `eligible` set as given.
    pub const fn eligible(self, eligible: bool) -> Self {
        RealLoad { eligible, ..self }
    }
}

impl Loads for [RealLoad] {
    #[inline]
    fn len(&self) -> usize {
        <[RealLoad]>::len(self)
    }
    #[inline]
    fn weight(&self, i: usize) -> u32 {
        self[i].weight
    }
    #[inline]
    fn active(&self, i: usize) -> u32 {
        self[i].active
    }
    #[inline]
    fn inactive(&self, i: usize) -> u32 {
        self[i].inactive
    }
    #[inline]
    fn eligible(&self, i: usize) -> bool {
        self[i].eligible
    }
}

/// Another [`Loads`] seen through limits: only its first `len` reals, and
/// none that `excluded(i)` names (they become ineligible).
pub struct Restricted<'a, L: ?Sized, F> {
    loads: &'a L,
    len: usize,
    excluded: F,
}

impl<'a, L: Loads + ?Sized> Restricted<'a, L, fn(usize) -> bool> {
    /// The first `len` reals of `loads`: a longer `Loads` cannot make a
    /// scheduler return an index the schedule does not know.
    pub fn first(loads: &'a L, len: usize) -> Restricted<'a, L, impl Fn(usize) -> bool> {
        Restricted {
            loads,
            len,
            excluded: |_| false,
        }
    }
}

impl<'a, L: Loads + ?Sized, F: Fn(usize) -> bool> Restricted<'a, L, F> {
    /// `loads` without the reals `excluded(i)` names.
    pub fn without(loads: &'a L, excluded: F) -> Restricted<'a, L, F> {
        Restricted {
            loads,
            len: usize::MAX,
            excluded,
        }
    }
}

impl<L: Loads + ?Sized, F: Fn(usize) -> bool> Loads for Restricted<'_, L, F> {
    #[inline]
    fn len(&self) -> usize {
        self.len.min(self.loads.len())
    }
    #[inline]
    fn weight(&self, i: usize) -> u32 {
        self.loads.weight(i)
    }
    #[inline]
    fn active(&self, i: usize) -> u32 {
        self.loads.active(i)
    }
    #[inline]
    fn inactive(&self, i: usize) -> u32 {
        self.loads.inactive(i)
    }
    #[inline]
    fn eligible(&self, i: usize) -> bool {
        self.loads.eligible(i) && !(self.excluded)(i)
    }
    #[inline]
    fn usable(&self, i: usize) -> bool {
        self.loads.usable(i) && !(self.excluded)(i)
    }
}

impl<T: Loads + ?Sized> Loads for &T {
    #[inline]
    fn len(&self) -> usize {
        (**self).len()
    }
    #[inline]
    fn weight(&self, i: usize) -> u32 {
        (**self).weight(i)
    }
    #[inline]
    fn active(&self, i: usize) -> u32 {
        (**self).active(i)
    }
    #[inline]
    fn inactive(&self, i: usize) -> u32 {
        (**self).inactive(i)
    }
    #[inline]
    fn eligible(&self, i: usize) -> bool {
        (**self).eligible(i)
    }
    #[inline]
    fn usable(&self, i: usize) -> bool {
        (**self).usable(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restricted_cuts_the_length_and_leaves_out_the_excluded() {
        let loads = [RealLoad::idle(1), RealLoad::idle(2), RealLoad::idle(0)];
        let first = Restricted::first(&loads[..], 2);
        assert_eq!(Loads::len(&first), 2);
        assert_eq!(first.weight(1), 2);
        assert!(first.usable(0) && first.usable(1));
        let longer = Restricted::first(&loads[..], 9);
        assert_eq!(Loads::len(&longer), 3);
        let without = Restricted::without(&loads[..], |i| i == 1);
        assert_eq!(Loads::len(&without), 3);
        assert!(without.usable(0) && !without.usable(1) && !without.eligible(1));
        assert!(!without.usable(2), "weight 0 stays unusable");
    }

    #[test]
    fn usable_needs_eligible_and_positive_weight() {
        let loads = vec![
            RealLoad::idle(1),
            RealLoad::idle(0),
            RealLoad::idle(3).eligible(false),
            RealLoad::idle(0).eligible(true),
        ];
        let usable: Vec<bool> = (0..loads.len()).map(|i| loads.usable(i)).collect();
        assert_eq!(usable, [true, false, false, false]);
        let by_ref = &loads;
        assert_eq!(Loads::len(&by_ref.as_slice()), 4);
        assert!(by_ref.usable(0));
        assert!(!Loads::is_empty(loads.as_slice()));
    }
}
