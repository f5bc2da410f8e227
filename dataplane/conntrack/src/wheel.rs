//! Hashed timing wheel with lazy re-slotting, for incremental expiry.
//!
//! Time is cut into ticks of `tick_ms` milliseconds; the wheel has `N`
//! slots (a power of two), slot `t % N` holding the entries due at tick `t`.
//! Each slot is an intrusive doubly linked list threaded through the
//! entries' `next`/`prev` links (no allocation, O(1) link and unlink). A
//! head entry's `prev` is not an entry index but `HEAD | slot`, so an entry
//! can be unlinked without knowing its slot.
//!
//! The wheel keeps a *cursor*: every tick below it has been processed.
//! Invariants:
//!
//! * every linked entry sits in a slot whose next visit (the first tick
//!   `t >= cursor` with `t % N == slot`) comes no later than
//!   `max(cursor, ceil(expires / tick_ms))`: it is never visited too late;
//! * an entry is linked at `clamp(ceil(expires / tick_ms), cursor,
//!   cursor + N - 1)`, so expiries beyond the wheel's horizon (`N` ticks)
//!   land in the farthest slot and are re-slotted when it comes round.
//!
//! Extending an entry's expiry keeps the invariant without touching the
//! wheel: the entry is simply visited early and re-slotted then (*lazy
//! re-slot*). Only shortening an expiry needs an O(1) unlink and re-link.
//!
//! [`Wheel::pop_due`] hands out, one at a time, the entries of slots whose
//! tick has come (`tick <= now / tick_ms`); the owner expires each one whose
//! `expires <= now` and re-links the others. A re-linked entry always lands
//! in a later slot than the one being drained, so a slot drains in a bounded
//! number of steps and the owner can stop after any number of entries (its
//! budget) and resume later. If the clock jumped more than a full turn since
//! the last call, the cursor is fast-forwarded to `now_tick - N + 1`: every
//! slot is then due within one turn, so the walk over empty slots is at most
//! `N` per call. Entries expire at or after their expiry time, at most one
//! tick late (plus whatever backlog the budgets leave).

use crate::slab::{Node, NIL};

/// Marks a `prev` link that names a slot (the entry is its slot's head).
const HEAD: u32 = 0x8000_0000;

/// The timing wheel. Entries live in a slab owned by the caller, which
/// passes it to every call.
pub(crate) struct Wheel {
    heads: Vec<u32>,
    mask: u64,
    tick_ms: u64,
    cursor: u64,
    len: usize,
}

impl Wheel {
    /// A wheel of `slots` slots (a power of two, at least 2) of `tick_ms`
    /// milliseconds (at least 1).
    pub(crate) fn new(slots: u32, tick_ms: u32) -> Wheel {
        assert!(slots.is_power_of_two() && (2..=HEAD).contains(&slots));
        assert!(tick_ms >= 1);
        Wheel {
            heads: vec![NIL; slots as usize],
            mask: u64::from(slots) - 1,
            tick_ms: u64::from(tick_ms),
            cursor: 0,
            len: 0,
        }
    }

    /// Number of linked entries.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Bytes allocated by the wheel.
    pub(crate) fn memory_bytes(&self) -> usize {
        self.heads.len() * std::mem::size_of::<u32>()
    }

    fn slots(&self) -> u64 {
        self.mask + 1
    }

    /// Links entry `i` (not linked yet) at the slot for its `expires`.
    pub(crate) fn link<T: Node>(&mut self, items: &mut [T], i: u32) {
        let due = items[i as usize].expires().div_ceil(self.tick_ms);
        let t = due.clamp(self.cursor, self.cursor + self.mask);
        let s = (t & self.mask) as u32;
        let old = self.heads[s as usize];
        let e = &mut items[i as usize];
        e.set_next(old);
        e.set_prev(HEAD | s);
        if old != NIL {
            items[old as usize].set_prev(i);
        }
        self.heads[s as usize] = i;
        self.len += 1;
    }

    /// Unlinks entry `i` (linked).
    pub(crate) fn unlink<T: Node>(&mut self, items: &mut [T], i: u32) {
        let (p, n) = (items[i as usize].prev(), items[i as usize].next());
        if p & HEAD != 0 {
            self.heads[(p & !HEAD) as usize] = n;
        } else {
            items[p as usize].set_next(n);
        }
        if n != NIL {
            items[n as usize].set_prev(p);
        }
        let e = &mut items[i as usize];
        e.set_next(NIL);
        e.set_prev(NIL);
        self.len -= 1;
    }

    /// Unlinks and returns an entry from the earliest slot whose tick has
    /// come at `now`, or `None` when no slot is due. The caller either
    /// frees the entry or links it again (it then lands in a later slot).
    pub(crate) fn pop_due<T: Node>(&mut self, items: &mut [T], now: u64) -> Option<u32> {
        let now_tick = now / self.tick_ms;
        if self.len == 0 {
            // Nothing linked: moving the cursor is free.
            self.cursor = self.cursor.max(now_tick + 1);
            return None;
        }
        if now_tick >= self.cursor + self.slots() {
            // More than a full turn is due: visit each slot once.
            self.cursor = now_tick + 1 - self.slots();
        }
        while self.cursor <= now_tick {
            let h = self.heads[(self.cursor & self.mask) as usize];
            if h != NIL {
                self.unlink(items, h);
                return Some(h);
            }
            self.cursor += 1;
        }
        None
    }

    /// Whether every slot due at `now` has been drained.
    pub(crate) fn caught_up(&self, now: u64) -> bool {
        self.len == 0 || self.cursor > now / self.tick_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Copy, Debug)]
    struct E {
        live: bool,
        next: u32,
        prev: u32,
        expires: u64,
    }

    impl Node for E {
        const EMPTY: E = E {
            live: false,
            next: NIL,
            prev: NIL,
            expires: 0,
        };
        fn is_live(&self) -> bool {
            self.live
        }
        fn next(&self) -> u32 {
            self.next
        }
        fn set_next(&mut self, v: u32) {
            self.next = v;
        }
        fn prev(&self) -> u32 {
            self.prev
        }
        fn set_prev(&mut self, v: u32) {
            self.prev = v;
        }
        fn expires(&self) -> u64 {
            self.expires
        }
    }

    /// Runs the owner's loop: expire due entries, re-link the others.
    fn drain(w: &mut Wheel, items: &mut [E], now: u64) -> Vec<u32> {
        let mut out = vec![];
        while let Some(i) = w.pop_due(items, now) {
            if items[i as usize].expires <= now {
                out.push(i);
            } else {
                w.link(items, i);
            }
        }
        out.sort();
        out
    }

    fn entries(expiries: &[u64]) -> Vec<E> {
        expiries
            .iter()
            .map(|&x| E {
                live: true,
                expires: x,
                ..E::EMPTY
            })
            .collect()
    }

    #[test]
    fn exact_expiry_with_wraparound() {
        // 8 slots of 1 ms: expiries far past the horizon get re-slotted.
        let mut w = Wheel::new(8, 1);
        let mut items = entries(&[3, 5, 100, 1000, 7, 8]);
        for i in 0..items.len() as u32 {
            w.link(&mut items, i);
        }
        let mut seen = vec![];
        for now in 0..=1000u64 {
            for i in drain(&mut w, &mut items, now) {
                assert_eq!(items[i as usize].expires, now, "entry {i} at {now}");
                seen.push(i);
            }
        }
        seen.sort();
        assert_eq!(seen, vec![0, 1, 2, 3, 4, 5]);
        assert_eq!(w.len(), 0);
    }

    #[test]
    fn unlink_middle_head_and_tail() {
        let mut w = Wheel::new(4, 10);
        let mut items = entries(&[15, 15, 15, 15]);
        for i in 0..4 {
            w.link(&mut items, i);
        }
        w.unlink(&mut items, 2); // middle
        w.unlink(&mut items, 3); // head (linked last)
        w.unlink(&mut items, 0); // tail
        assert_eq!(w.len(), 1);
        assert_eq!(drain(&mut w, &mut items, 20), vec![1]);
    }

    #[test]
    fn clock_jump_visits_each_slot_once() {
        let mut w = Wheel::new(16, 1);
        let mut items = entries(&[5, 6, 1_000_000, 2_000_000]);
        for i in 0..4 {
            w.link(&mut items, i);
        }
        assert_eq!(drain(&mut w, &mut items, 1_500_000), vec![0, 1, 2]);
        assert!(w.caught_up(1_500_000));
        assert_eq!(drain(&mut w, &mut items, 1_999_999), Vec::<u32>::new());
        assert_eq!(drain(&mut w, &mut items, 2_000_000), vec![3]);
    }

    #[test]
    fn coarse_ticks_never_early_at_most_one_tick_late() {
        let mut w = Wheel::new(64, 100);
        let mut items = entries(&[1, 99, 100, 101, 250, 999]);
        for i in 0..items.len() as u32 {
            w.link(&mut items, i);
        }
        for now in 0..2000u64 {
            for i in drain(&mut w, &mut items, now) {
                let e = items[i as usize].expires;
                assert!(e <= now && now < e + 100, "entry {e} at {now}");
            }
        }
        assert_eq!(w.len(), 0);
    }
}
