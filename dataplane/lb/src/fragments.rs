//! Fragments that follow their flow. Only a datagram's first fragment
//! carries the ports that pick its connection; the later ones carry the
//! same (source, destination, protocol, identification). When a first
//! fragment is forwarded, its worker remembers by that key how it went
//! (which real, which rewrite); later fragments look it up and go the
//! same way, rewritten the same, with no reassembly. Steering by the
//! client's address already puts every fragment of a datagram on one
//! worker.
//!
//! The table is a fixed set-associative cache per worker and family
//! ([`FRAGMENT_SETS`] sets of [`FRAGMENT_WAYS`]): it never allocates after
//! construction and never grows; an entry lives [`FRAGMENT_LIFE_MS`] after
//! its first fragment, and [`LAST_FRAGMENT_GRACE_MS`] once its last one
//! (no more fragments) has passed, so that the datagrams of a busy
//! worker replace each other quickly. A first fragment that finds its set
//! full of live entries replaces the oldest (counted by the caller).

use sluice_model::{Forward, IpAddress};

/// Sets of the table.
pub const FRAGMENT_SETS: usize = 2048;
/// Entries per set.
pub const FRAGMENT_WAYS: usize = 4;
/// How long a first fragment's entry lives (the fragments of a datagram
/// travel together; Linux keeps an incomplete datagram 30 s, a load
/// balancer need not).
pub const FRAGMENT_LIFE_MS: u64 = 2_000;
/// Most later fragments a worker holds while their first has not come.
pub const MAX_HELD_FRAGMENTS: usize = 256;
/// How long a later fragment is held for its first.
pub const FRAGMENT_HOLD_MS: u64 = 500;
/// How long it lives once the last fragment has passed (a fragment
/// overtaken by it may still come).
pub const LAST_FRAGMENT_GRACE_MS: u64 = 200;

/// What identifies the fragments of one datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FragmentKey<A: IpAddress> {
    /// Source address.
    pub src: A,
    /// Destination address.
    pub dst: A,
    /// The upper-layer protocol.
    pub proto: u8,
    /// The identification (IPv4's 16 bits, IPv6's 32).
    pub id: u32,
}

/// Which way the datagram went, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FragmentWay<A: IpAddress> {
    /// From a client to the VIP: to `real` by `fwd` (NAT rewrites the
    /// destination address to the real's, full NAT the source to `local`
    /// too).
    ToReal {
        /// The real's address.
        real: A,
        /// How it is reached.
        fwd: Forward,
        /// Full NAT: the local address it leaves from.
        local: A,
    },
    /// From a NAT real to a client: the source address becomes `vip`,
    /// and under full NAT the destination the client's.
    ToClient {
        /// The VIP.
        vip: A,
        /// Full NAT: the client's address.
        client: Option<A>,
    },
}

/// A remembered datagram: its way, the slots it counts under, and until
/// when it is remembered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FragmentEntry<A: IpAddress> {
    /// Which way.
    pub way: FragmentWay<A>,
    /// Its service slot.
    pub service: u16,
    /// Its real slot.
    pub real: u16,
    expires: u64,
}

#[derive(Clone, Copy)]
struct Slot<A: IpAddress> {
    key: FragmentKey<A>,
    entry: FragmentEntry<A>,
}

/// A worker's remembered datagrams of one family.
pub struct FragmentTable<A: IpAddress> {
    slots: Vec<Option<Slot<A>>>,
}

/// What [`FragmentTable::remember`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Remembered {
    /// Into a free (or expired, or its own) entry.
    Stored,
    /// In place of a live datagram's entry: the set was full.
    Replaced,
}

impl<A: IpAddress> Default for FragmentTable<A> {
    fn default() -> Self {
        FragmentTable::new()
    }
}

impl<A: IpAddress> FragmentTable<A> {
    /// An empty table (allocated now, once).
    pub fn new() -> FragmentTable<A> {
        FragmentTable {
            slots: vec![None; FRAGMENT_SETS * FRAGMENT_WAYS],
        }
    }

    fn set(&self, k: &FragmentKey<A>) -> std::ops::Range<usize> {
        // A multiplicative hash of the key's words; the identification
        // varies fastest between datagrams.
        let mut h = u64::from(k.id) ^ (u64::from(k.proto) << 32);
        for w in [k.src.to_bits(), k.dst.to_bits()] {
            h = (h ^ (w as u64) ^ ((w >> 64) as u64)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
        let s = (h >> 40) as usize % FRAGMENT_SETS;
        s * FRAGMENT_WAYS..(s + 1) * FRAGMENT_WAYS
    }

    /// The live entry of `k` at `now`, if any.
    pub fn get(&self, k: &FragmentKey<A>, now: u64) -> Option<FragmentEntry<A>> {
        self.slots[self.set(k)]
            .iter()
            .flatten()
            .find(|s| s.key == *k && s.entry.expires > now)
            .map(|s| s.entry)
    }

    /// Remembers the datagram `k` went `way` (counted under `service`,
    /// `real`) at `now`.
    pub fn remember(
        &mut self,
        k: FragmentKey<A>,
        way: FragmentWay<A>,
        service: u16,
        real: u16,
        now: u64,
    ) -> Remembered {
        let range = self.set(&k);
        let set = &mut self.slots[range];
        let entry = FragmentEntry {
            way,
            service,
            real,
            expires: now + FRAGMENT_LIFE_MS,
        };
        // Its own entry, a free one, an expired one, else the oldest.
        let own = set.iter().position(|s| s.is_some_and(|s| s.key == k));
        let free = || {
            set.iter()
                .position(|s| s.is_none_or(|s| s.entry.expires <= now))
        };
        let (i, how) = match own.or_else(free) {
            Some(i) => (i, Remembered::Stored),
            None => {
                let oldest = (0..set.len())
                    .min_by_key(|&i| set[i].map_or(0, |s| s.entry.expires))
                    .unwrap_or(0);
                (oldest, Remembered::Replaced)
            }
        };
        set[i] = Some(Slot { key: k, entry });
        how
    }

    /// The last fragment of `k` passed at `now`: its entry lives only
    /// [`LAST_FRAGMENT_GRACE_MS`] more.
    pub fn last_seen(&mut self, k: &FragmentKey<A>, now: u64) {
        let range = self.set(k);
        for s in self.slots[range].iter_mut().flatten() {
            if s.key == *k {
                s.entry.expires = s.entry.expires.min(now + LAST_FRAGMENT_GRACE_MS);
            }
        }
    }

    /// Live entries at `now` (a walk of the whole table).
    #[cfg(test)]
    pub fn live(&self, now: u64) -> usize {
        self.slots
            .iter()
            .flatten()
            .filter(|s| s.entry.expires > now)
            .count()
    }
}

#[cfg(test)]
mod tests;
