//! [`Cursor`]: the small mutable state a worker keeps per service for the
//! round-robin schedulers (rr, wrr).
//!
//! The immutable [`Schedule`](crate::Schedule) is shared by all workers; each
//! worker owns one `Cursor` per service and passes it by `&mut` to
//! [`Schedule::pick`](crate::Schedule::pick), so picking needs no lock and no
//! atomic. Workers therefore run independent rotations: each worker's own
//! sequence is exactly rr / wrr, and the sum over workers is fair as well,
//! because each worker's share is.
//!
//! A cursor stays valid when the schedule is rebuilt (reals added or removed,
//! weights changed): positions past the end wrap to the first real, and a wrr
//! current weight that does not fit the new weights is reset as LVS does
//! (`ip_vs_wrr_dest_changed`). Keeping the cursor across rebuilds is
//! therefore fine, and so is replacing it with a fresh one.

/// Per-worker rotation state for rr and wrr. Other schedulers leave it alone.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Cursor {
    /// Index of the first real to consider on the next pick (one past the
    /// last real picked). May be out of range; the schedulers wrap it.
    pub(crate) next: usize,
    /// wrr's current weight (`mark->cw` in LVS); 0 means "not started".
    pub(crate) cw: u32,
}

impl Cursor {
    /// A fresh cursor: rr starts with real 0, wrr at the start of its cycle.
    pub const fn new() -> Self {
        Cursor { next: 0, cw: 0 }
    }

    /// A fresh cursor whose rotation starts at real `index` (wrapped modulo
    /// the number of reals when used). Giving each worker a different start,
    /// e.g. its worker number, keeps workers from all sending their first
    /// connections to real 0.
    pub const fn starting_at(index: usize) -> Self {
        Cursor { next: index, cw: 0 }
    }
}
