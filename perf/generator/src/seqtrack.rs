//! Per-flow sequence tracking on receive: duplicates and reordering, in 8
//! bytes per flow (80 MB for 10 million flows).
//!
//! Each slot keeps the next expected sequence number (one past the highest
//! seen) and a 32-bit window of which of the 32 numbers below it were seen.
//! Sequence numbers are 32-bit serial numbers (RFC 1982): "higher" means
//! ahead by less than 2^31, so they may wrap.
//!
//! - A number at or past the expected one is in order (a gap before it is
//!   not counted here: loss is the difference of the totals).
//! - One below it that the window has not seen is reordered (it arrived
//!   after a later one, as RFC 4737 defines it); one the window has seen is
//!   a duplicate.
//! - One more than 32 below is "late": reordered by more than the window
//!   can tell, which may hide a duplicate.

/// What a received sequence number was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqEvent {
    /// The next one, or a later one (some skipped: lost or still to come).
    InOrder,
    /// Below one already seen, not seen before.
    Reordered,
    /// Seen before.
    Duplicate,
    /// More than the window below the highest: reordered or a duplicate.
    Late,
}

/// Window size in sequence numbers.
pub const WINDOW: u32 = 32;

/// Sequence state of every slot.
pub struct SeqTracker {
    // next expected << 32 | window; window 0 means nothing seen yet (after
    // anything is seen, bit 0, "next - 1 seen", is always set).
    state: Vec<u64>,
}

impl SeqTracker {
    /// Tracks `flows` slots.
    pub fn new(flows: usize) -> SeqTracker {
        SeqTracker {
            state: vec![0; flows],
        }
    }

    /// Records `seq` on `slot` (which must be < flows).
    #[inline]
    pub fn record(&mut self, slot: u32, seq: u32) -> SeqEvent {
        let st = &mut self.state[slot as usize];
        let (next, window) = ((*st >> 32) as u32, *st as u32);
        if window == 0 {
            *st = (seq.wrapping_add(1) as u64) << 32 | 1;
            return SeqEvent::InOrder;
        }
        let ahead = seq.wrapping_sub(next) as i32;
        if ahead >= 0 {
            let shift = ahead as u32 + 1;
            let w = if shift >= WINDOW { 0 } else { window << shift };
            *st = (seq.wrapping_add(1) as u64) << 32 | (w | 1) as u64;
            return SeqEvent::InOrder;
        }
        let back = next.wrapping_sub(1).wrapping_sub(seq);
        if back >= WINDOW {
            return SeqEvent::Late;
        }
        let bit = 1u32 << back;
        if window & bit != 0 {
            return SeqEvent::Duplicate;
        }
        *st = (next as u64) << 32 | (window | bit) as u64;
        SeqEvent::Reordered
    }
}

#[cfg(test)]
mod tests {
    use super::SeqEvent::*;
    use super::*;

    #[test]
    fn in_order_gaps_reorders_and_duplicates() {
        let mut t = SeqTracker::new(2);
        assert_eq!(t.record(0, 0), InOrder);
        assert_eq!(t.record(0, 1), InOrder);
        assert_eq!(t.record(0, 1), Duplicate);
        assert_eq!(t.record(0, 4), InOrder); // 2, 3 missing
        assert_eq!(t.record(0, 3), Reordered);
        assert_eq!(t.record(0, 3), Duplicate);
        assert_eq!(t.record(0, 2), Reordered);
        assert_eq!(t.record(0, 0), Duplicate);
        assert_eq!(t.record(0, 5), InOrder);
        // Slot 1 is independent, and may start anywhere.
        assert_eq!(t.record(1, 1000), InOrder);
        assert_eq!(t.record(1, 999), Reordered);
    }

    #[test]
    fn window_edges() {
        let mut t = SeqTracker::new(1);
        assert_eq!(t.record(0, 100), InOrder);
        assert_eq!(t.record(0, 100 + WINDOW), InOrder);
        // 100 is exactly WINDOW below the highest: outside the window.
        assert_eq!(t.record(0, 100), Late);
        assert_eq!(t.record(0, 101), Reordered);
        assert_eq!(t.record(0, 101), Duplicate);
        // A jump larger than the window clears it.
        assert_eq!(t.record(0, 1000), InOrder);
        assert_eq!(t.record(0, 999), Reordered);
    }

    #[test]
    fn wraps_around() {
        let mut t = SeqTracker::new(1);
        assert_eq!(t.record(0, u32::MAX - 1), InOrder);
        assert_eq!(t.record(0, u32::MAX), InOrder);
        assert_eq!(t.record(0, 0), InOrder);
        assert_eq!(t.record(0, 2), InOrder);
        assert_eq!(t.record(0, u32::MAX), Duplicate);
        assert_eq!(t.record(0, 1), Reordered);
    }
}
