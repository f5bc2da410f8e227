//! Lookup tables shared by the hashing schedulers (sh and mh): the validated
//! prime [`TableSize`], and the slot table with its deterministic fallback
//! for reals that cannot take a connection.
//!
//! # Lookup
//!
//! A 64-bit client hash `h` selects the home slot `(h * M) >> 64` (the high
//! bits of `h`, "fast range" reduction: one multiplication, no division). The
//! slot holds the index of a real.
//!
//! # Fallback when the slot's real is not usable
//!
//! If the real in the home slot is not [usable](Loads::usable) (down,
//! quiesced, over its connection threshold), the lookup re-hashes: probe `k`
//! (for `k = 1, 2, ...,` [`MAX_PROBES`]) looks at the home slot of
//! `fmix64(h + k * 0x9e3779b97f4a7c15)`, a fresh pseudo-random slot
//! independent of the previous ones and of the table's layout (LVS's sh
//! fallback similarly re-hashes with an offset). The first usable real found
//! is returned. If all probes fail (only a small share of the table is usable),
//! the reals themselves are scanned, starting at real `h mod N` and wrapping,
//! for the first usable real with a positive configured weight. So:
//!
//! * a hash whose home real is usable always gets it: one real going down
//!   moves only the connections that were hashed to it;
//! * the connections of a real that is down are spread over the others in
//!   proportion to their share of the table (the probes land on independent
//!   random slots), not piled onto a neighbour;
//! * the result depends only on the hash, the table and which reals are
//!   usable, so every worker (and every Sluice instance with the same
//!   configuration) makes the same choice;
//! * a lookup costs at most `1 + MAX_PROBES` slot reads plus one scan of the
//!   reals, and returns `None` only when no real with a positive configured
//!   weight is usable.

use std::fmt;

use crate::error::SchedError;
use crate::hash::fmix64;
use crate::loads::Loads;

/// The default Maglev table size, 65537 (a prime), as recommended by the
/// Maglev paper for up to a few hundred reals.
pub const DEFAULT_MAGLEV_TABLE_SIZE: u32 = 65_537;

/// The default source-hash table size, 4093 (a prime): 16 times LVS's 256
/// buckets, enough to express weight ratios to within 1/4093 of the total.
pub const DEFAULT_SH_TABLE_SIZE: u32 = 4_093;

/// The smallest table size accepted.
pub const MIN_TABLE_SIZE: u32 = 7;

/// The largest table size accepted, 16777213, the largest prime below 2^24
/// (a 32 MiB table).
pub const MAX_TABLE_SIZE: u32 = 16_777_213;

/// The most reals a schedule accepts: table slots hold 16-bit real indices.
pub const MAX_REALS: usize = 65_535;

/// How many extra slots a lookup probes when the home slot's real is not
/// usable, before scanning the reals.
pub const MAX_PROBES: usize = 32;

/// Added to the hash per fallback probe (2^64 / golden ratio).
const PROBE_STEP: u64 = 0x9e37_79b9_7f4a_7c15;

/// Marks an unfilled slot while a table is being built.
pub(crate) const EMPTY: u16 = u16::MAX;

/// Whether `n` is prime (trial division; `n` is at most 2^32).
pub(crate) fn is_prime(n: u32) -> bool {
    let n = u64::from(n);
    if n < 2 {
        return false;
    }
    let mut d = 2u64;
    while d * d <= n {
        if n % d == 0 {
            return false;
        }
        d += 1;
    }
    true
}

/// The smallest prime at least `n`, if it fits in a `u32`.
pub(crate) fn next_prime(n: u32) -> Option<u32> {
    (n..=u32::MAX).find(|&p| is_prime(p))
}

/// A lookup-table size: a prime between [`MIN_TABLE_SIZE`] and
/// [`MAX_TABLE_SIZE`]. Construct with [`TableSize::new`] (or `TryFrom<u32>`),
/// which rejects anything else with a [`SchedError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TableSize(u32);

impl TableSize {
    /// [`DEFAULT_MAGLEV_TABLE_SIZE`], 65537.
    pub const MAGLEV_DEFAULT: TableSize = TableSize(DEFAULT_MAGLEV_TABLE_SIZE);

    /// [`DEFAULT_SH_TABLE_SIZE`], 4093.
    pub const SH_DEFAULT: TableSize = TableSize(DEFAULT_SH_TABLE_SIZE);

    /// Validates a table size: it must be prime and within
    /// [`MIN_TABLE_SIZE`]`..=`[`MAX_TABLE_SIZE`].
    pub fn new(size: u32) -> Result<Self, SchedError> {
        if size < MIN_TABLE_SIZE {
            return Err(SchedError::TableSizeTooSmall {
                size,
                min: MIN_TABLE_SIZE,
            });
        }
        if size > MAX_TABLE_SIZE {
            return Err(SchedError::TableSizeTooLarge {
                size,
                max: MAX_TABLE_SIZE,
            });
        }
        if !is_prime(size) {
            return Err(SchedError::TableSizeNotPrime {
                size,
                next_prime: next_prime(size).filter(|p| *p <= MAX_TABLE_SIZE),
            });
        }
        Ok(TableSize(size))
    }

    /// The size, in slots.
    pub const fn get(self) -> u32 {
        self.0
    }
}

impl Default for TableSize {
    /// [`TableSize::MAGLEV_DEFAULT`].
    fn default() -> Self {
        TableSize::MAGLEV_DEFAULT
    }
}

impl TryFrom<u32> for TableSize {
    type Error = SchedError;
    fn try_from(size: u32) -> Result<Self, SchedError> {
        TableSize::new(size)
    }
}

impl From<TableSize> for u32 {
    fn from(size: TableSize) -> u32 {
        size.0
    }
}

impl fmt::Display for TableSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// Checks that `count` reals, `positive` of them with a positive weight,
/// fit a table of `size` slots.
pub(crate) fn check_reals(
    count: usize,
    positive: usize,
    size: TableSize,
) -> Result<(), SchedError> {
    if count > MAX_REALS {
        return Err(SchedError::TooManyReals {
            count,
            max: MAX_REALS,
        });
    }
    if positive > size.get() as usize {
        return Err(SchedError::TableSmallerThanReals {
            size: size.get(),
            reals: positive,
        });
    }
    Ok(())
}

/// A filled table of real indices plus the configured weights, with the
/// lookup and fallback described in the module documentation.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct SlotTable {
    /// `size` slots, or none when no real has a positive weight.
    slots: Box<[u16]>,
    /// Configured weight of each real, by index.
    weights: Box<[u32]>,
    size: TableSize,
}

impl SlotTable {
    /// Wraps filled slots (every entry a real index below `weights.len()`,
    /// or no slots at all).
    pub(crate) fn new(slots: Vec<u16>, weights: Box<[u32]>, size: TableSize) -> Self {
        debug_assert!(slots.is_empty() || slots.len() == size.get() as usize);
        debug_assert!(slots.iter().all(|&r| usize::from(r) < weights.len()));
        SlotTable {
            slots: slots.into_boxed_slice(),
            weights,
            size,
        }
    }

    pub(crate) fn size(&self) -> TableSize {
        self.size
    }

    pub(crate) fn weights(&self) -> &[u32] {
        &self.weights
    }

    /// The home slot of a hash.
    #[inline]
    pub(crate) fn home(&self, hash: u64) -> usize {
        ((u128::from(hash) * self.slots.len() as u128) >> 64) as usize
    }

    /// The real in slot `slot`, or `None` when the table is empty or `slot`
    /// is out of range.
    pub(crate) fn slot_owner(&self, slot: usize) -> Option<usize> {
        self.slots.get(slot).map(|&r| usize::from(r))
    }

    /// The real in the home slot of `hash`, usable or not.
    #[inline]
    pub(crate) fn owner(&self, hash: u64) -> Option<usize> {
        if self.slots.is_empty() {
            None
        } else {
            Some(usize::from(self.slots[self.home(hash)]))
        }
    }

    /// How many slots each real owns, by real index.
    pub(crate) fn slots_per_real(&self) -> Vec<u32> {
        let mut counts = vec![0u32; self.weights.len()];
        for &r in self.slots.iter() {
            counts[usize::from(r)] += 1;
        }
        counts
    }

    /// The lookup with fallback (see the module documentation).
    #[inline]
    pub(crate) fn pick<L: Loads + ?Sized>(&self, hash: u64, loads: &L) -> Option<usize> {
        let m = self.slots.len();
        if m == 0 {
            return None;
        }
        let n = self.weights.len().min(loads.len());
        let home = self.home(hash);
        let r = usize::from(self.slots[home]);
        if r < n && loads.usable(r) {
            return Some(r);
        }
        self.fallback(hash, n, loads)
    }

    /// The cold part of [`pick`](Self::pick): probing, then scanning the
    /// reals. `n` is the number of reals known to both the table and
    /// `loads`.
    #[cold]
    #[inline(never)]
    fn fallback<L: Loads + ?Sized>(&self, hash: u64, n: usize, loads: &L) -> Option<usize> {
        for k in 1..=MAX_PROBES as u64 {
            let probe = fmix64(hash.wrapping_add(k.wrapping_mul(PROBE_STEP)));
            let r = usize::from(self.slots[self.home(probe)]);
            if r < n && loads.usable(r) {
                return Some(r);
            }
        }
        if n == 0 {
            return None;
        }
        let start = (hash % n as u64) as usize;
        (start..n)
            .chain(0..start)
            .find(|&r| self.weights[r] > 0 && loads.usable(r))
    }
}

impl fmt::Debug for SlotTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlotTable")
            .field("size", &self.size.get())
            .field("filled", &!self.slots.is_empty())
            .field("weights", &self.weights)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loads::RealLoad;

    #[test]
    fn primes() {
        let small: Vec<u32> = (0..40).filter(|&n| is_prime(n)).collect();
        assert_eq!(small, [2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37]);
        for p in [4093, 65_537, 131_071, 16_777_213, 4_294_967_291] {
            assert!(is_prime(p), "{p}");
        }
        for c in [
            65_535,
            65_536,
            4_294_967_295,
            25,
            49,
            16_777_215,
            999_999_999,
        ] {
            assert!(!is_prime(c), "{c}");
        }
        assert_eq!(next_prime(65_536), Some(65_537));
        assert_eq!(next_prime(4_294_967_292), None);
    }

    #[test]
    fn table_size_validation() {
        assert_eq!(TableSize::new(65_537).map(TableSize::get), Ok(65_537));
        assert_eq!(TableSize::default().get(), 65_537);
        assert_eq!(TableSize::SH_DEFAULT, TableSize::new(4093).unwrap());
        assert_eq!(TableSize::new(7).map(u32::from), Ok(7));
        assert_eq!(
            TableSize::new(MAX_TABLE_SIZE).map(u32::from),
            Ok(MAX_TABLE_SIZE)
        );

        let e = TableSize::new(65_536).unwrap_err();
        assert_eq!(
            e,
            SchedError::TableSizeNotPrime {
                size: 65_536,
                next_prime: Some(65_537)
            }
        );
        assert_eq!(
            e.to_string(),
            "lookup table size 65536 is not a prime number (the next prime is 65537)"
        );
        assert_eq!(
            TableSize::try_from(1000).unwrap_err(),
            SchedError::TableSizeNotPrime {
                size: 1000,
                next_prime: Some(1009)
            }
        );
        for small in [0, 1, 2, 3, 5, 6] {
            let e = TableSize::new(small).unwrap_err();
            assert_eq!(
                e,
                SchedError::TableSizeTooSmall {
                    size: small,
                    min: 7
                }
            );
            assert!(e.to_string().contains("too small (minimum 7)"), "{e}");
        }
        let e = TableSize::new(16_777_259).unwrap_err(); // prime, but too large
        assert_eq!(
            e,
            SchedError::TableSizeTooLarge {
                size: 16_777_259,
                max: MAX_TABLE_SIZE
            }
        );
        assert!(TableSize::new(u32::MAX).is_err());
    }

    #[test]
    fn home_slot_covers_the_table() {
        let size = TableSize::new(11).unwrap();
        let t = SlotTable::new((0..11).collect(), vec![1; 11].into(), size);
        assert_eq!(t.home(0), 0);
        assert_eq!(t.home(u64::MAX), 10);
        let step = u64::MAX / 11 + 1;
        for s in 0..11u64 {
            assert_eq!(t.home(s * step), s as usize);
        }
    }

    #[test]
    fn fallback_is_deterministic_and_finds_any_usable_real() {
        // 3 reals striped over 13 slots; only real 2 usable.
        let size = TableSize::new(13).unwrap();
        let slots: Vec<u16> = (0..13).map(|i| (i % 3) as u16).collect();
        let t = SlotTable::new(slots, vec![1, 1, 1].into(), size);
        let loads = [
            RealLoad::idle(1).eligible(false),
            RealLoad::idle(1).eligible(false),
            RealLoad::idle(1),
        ];
        for h in (0..1000u64).map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15)) {
            assert_eq!(t.pick(h, &loads[..]), Some(2));
        }
        // Nothing usable: None.
        let none = [RealLoad::idle(1).eligible(false); 3];
        assert_eq!(t.pick(12345, &none[..]), None);
        // The real scan only returns reals of positive configured weight.
        let t = SlotTable::new(vec![0; 13], vec![1, 0].into(), size);
        let loads = [RealLoad::idle(1).eligible(false), RealLoad::idle(1)];
        assert_eq!(t.pick(7, &loads[..]), None);
        // Loads shorter than the table's reals: the extra reals are unusable.
        let t = SlotTable::new(vec![1; 13], vec![1, 1].into(), size);
        assert_eq!(t.pick(7, &[RealLoad::idle(1)][..]), Some(0));
    }

    #[test]
    fn empty_table_picks_nothing() {
        let t = SlotTable::new(Vec::new(), vec![0, 0].into(), TableSize::SH_DEFAULT);
        assert_eq!(t.pick(1, &[RealLoad::idle(1); 2][..]), None);
        assert_eq!(t.owner(1), None);
        assert_eq!(t.slots_per_real(), [0, 0]);
    }
}
