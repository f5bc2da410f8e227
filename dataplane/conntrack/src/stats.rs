//! Counters and progress reports of the incremental operations.

/// Counters of a table (connections or persistence templates).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TableStats {
    /// Entries in use now.
    pub occupancy: u32,
    /// Fixed capacity.
    pub capacity: u32,
    /// Successful inserts.
    pub inserts: u64,
    /// Inserts refused because the table was full.
    pub insert_full: u64,
    /// Inserts refused because the key already existed.
    pub insert_exists: u64,
    /// Entries removed by expiry.
    pub expiries: u64,
    /// Entries removed explicitly (remove, remove-matching, drain).
    pub removals: u64,
}

/// What one bounded `expire` call did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExpireProgress {
    /// Entries examined (expired, or found extended and re-slotted, or, for
    /// templates, held). Never more than the budget.
    pub examined: usize,
    /// Entries expired and passed to the callback.
    pub expired: usize,
    /// Every entry due at `now` has been handled; `false` means the budget
    /// ran out first and the caller should call again soon.
    pub done: bool,
}

/// Position of an incremental scan (remove-matching, drain). Start with
/// `ScanCursor::default()` and pass the same cursor to every step.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScanCursor {
    pub(crate) pos: u32,
    pub(crate) phase: u8,
}

impl ScanCursor {
    /// A cursor at the start.
    pub fn new() -> ScanCursor {
        ScanCursor::default()
    }
}
