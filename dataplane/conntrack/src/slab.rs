//! Fixed-capacity entry slab with an intrusive free list.
//!
//! All entries are allocated (and written, so the pages are faulted in) when
//! the slab is built; [`Slab::alloc`] and [`Slab::release`] never allocate.
//! Slots are handed out first from a LIFO free list of released slots (a
//! freed slot is reused first, while it is still in cache), then from a
//! bump pointer over never-used slots, so building the slab does not need to
//! thread a free list through millions of entries.
//!
//! The free list is threaded through the entries' `next` link, which is the
//! timing-wheel link while an entry is live (an entry is never in the wheel
//! and on the free list at once).

/// Index value meaning "no entry".
pub(crate) const NIL: u32 = u32::MAX;

/// An entry that can live in a [`Slab`] and in a
/// [`Wheel`](crate::wheel::Wheel).
pub(crate) trait Node: Copy {
    /// A free entry.
    const EMPTY: Self;
    /// Whether the entry is in use.
    fn is_live(&self) -> bool;
    /// Next link (wheel list or free list).
    fn next(&self) -> u32;
    /// Sets the next link.
    fn set_next(&mut self, v: u32);
    /// Previous link (wheel list).
    fn prev(&self) -> u32;
    /// Sets the previous link.
    fn set_prev(&mut self, v: u32);
    /// Expiry time.
    fn expires(&self) -> u64;
}

/// Fixed-capacity storage of `T` addressed by `u32` indices.
pub(crate) struct Slab<T> {
    pub(crate) items: Vec<T>,
    free: u32,
    bump: u32,
    len: u32,
}

impl<T: Node> Slab<T> {
    /// A slab of `capacity` free entries (`capacity < u32::MAX`), on
    /// huge pages if `huge` (see [`sluice_mem::filled`]).
    pub(crate) fn new(capacity: u32, huge: bool) -> Self {
        Slab {
            items: sluice_mem::filled(capacity as usize, T::EMPTY, huge),
            free: NIL,
            bump: 0,
            len: 0,
        }
    }

    /// Number of live entries.
    pub(crate) fn len(&self) -> u32 {
        self.len
    }

    /// Total number of entries.
    pub(crate) fn capacity(&self) -> u32 {
        self.items.len() as u32
    }

    /// One past the highest index ever handed out: every live entry is
    /// below it, so scans can stop there.
    pub(crate) fn high_water(&self) -> u32 {
        self.bump
    }

    /// Takes a free slot, or `None` when all are in use. The slot still
    /// holds `T::EMPTY`; the caller fills it.
    pub(crate) fn alloc(&mut self) -> Option<u32> {
        let i = if self.free != NIL {
            let i = self.free;
            self.free = self.items[i as usize].next();
            i
        } else if self.bump < self.capacity() {
            self.bump += 1;
            self.bump - 1
        } else {
            return None;
        };
        self.len += 1;
        Some(i)
    }

    /// Returns slot `i` to the free list. It must be allocated.
    pub(crate) fn release(&mut self, i: u32) {
        let e = &mut self.items[i as usize];
        *e = T::EMPTY;
        e.set_next(self.free);
        self.free = i;
        self.len -= 1;
    }

    /// The live entry at `i`.
    pub(crate) fn get(&self, i: u32) -> Option<&T> {
        self.items.get(i as usize).filter(|e| e.is_live())
    }

    /// The live entry at `i`, mutably.
    pub(crate) fn get_mut(&mut self, i: u32) -> Option<&mut T> {
        self.items.get_mut(i as usize).filter(|e| e.is_live())
    }

    /// Live entries with their indices, in index order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u32, &T)> + '_ {
        self.items[..self.bump as usize]
            .iter()
            .enumerate()
            .filter(|(_, e)| e.is_live())
            .map(|(i, e)| (i as u32, e))
    }
}
