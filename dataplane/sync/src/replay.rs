//! The receiver's replay protection per sender: the sequence numbers of
//! its last [`WINDOW`] datagrams. Sequence numbers follow the sender's
//! clock in microseconds, so datagrams a few milliseconds apart differ by
//! thousands: the window counts datagrams, not numbers, and a datagram
//! reordered behind up to [`WINDOW`] later ones is still accepted. None is
//! accepted twice, none older than the window, and none too far from the
//! receiver's clock ([`fresh`]).

use std::collections::BTreeSet;

/// One sender's window: the last [`WINDOW`] sequence numbers accepted.
#[derive(Debug, Clone, Default)]
pub struct ReplayWindow {
    seen: BTreeSet<u64>,
}

/// Datagrams remembered per sender.
pub const WINDOW: usize = 1024;

/// How far from the receiver's clock a sequence number may be, in
/// microseconds, either way. A sender's sequence numbers are at least its
/// wall clock in microseconds, so a datagram recorded and replayed later
/// than this is refused even by a receiver that restarted and forgot its
/// windows (the appliances' clocks must agree within this: NTP).
pub const MAX_AGE_US: u64 = 60_000_000;

/// Whether `seq` is within [`MAX_AGE_US`] of the receiver's wall clock
/// `now_us`.
pub fn fresh(seq: u64, now_us: u64) -> bool {
    seq.saturating_add(MAX_AGE_US) >= now_us && seq <= now_us.saturating_add(MAX_AGE_US)
}

/// The sequence number to send after `last` at wall clock `now_us`: one
/// more, and never behind the clock.
pub fn next_seq(last: u64, now_us: u64) -> u64 {
    (last + 1).max(now_us)
}

impl ReplayWindow {
    /// Accepts `seq` (recording it) unless it was seen, or is older than
    /// every one of a full window. Call only once the datagram is
    /// authenticated.
    pub fn accept(&mut self, seq: u64) -> bool {
        if seq == 0 || self.seen.contains(&seq) {
            return false;
        }
        if self.seen.len() >= WINDOW {
            match self.seen.first() {
                Some(&oldest) if seq < oldest => return false,
                _ => {}
            }
            self.seen.pop_first();
        }
        self.seen.insert(seq);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn stale_sequence_numbers_are_refused() {
        let now = 1_800_000_000_000_000;
        assert!(fresh(now, now));
        assert!(fresh(now - MAX_AGE_US, now));
        assert!(!fresh(now - MAX_AGE_US - 1, now));
        assert!(fresh(now + 5_000_000, now), "a clock a little ahead");
        assert!(!fresh(now + MAX_AGE_US + 1, now), "a clock far ahead");
        // Sending faster than a datagram per microsecond runs ahead of
        // the clock, never behind it.
        assert_eq!(next_seq(now + 10, now), now + 11);
        assert_eq!(next_seq(5, now), now);
    }

    #[test]
    fn replays_and_old_ones_are_refused() {
        let mut w = ReplayWindow::default();
        assert!(w.accept(100_000));
        assert!(!w.accept(100_000));
        assert!(w.accept(98_000), "reordered, far apart in microseconds");
        assert!(!w.accept(98_000));
        for i in 0..WINDOW as u64 {
            assert!(w.accept(200_000 + i * 5_000));
        }
        assert!(!w.accept(99_000), "older than the whole window");
        assert!(!w.accept(0));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Against a model: every number accepted so far; accepted exactly
        /// when new and, once WINDOW are remembered, above the smallest of
        /// the WINDOW largest accepted.
        #[test]
        fn matches_a_model(seqs in proptest::collection::vec(1u64..3000, 1..2500)) {
            let mut w = ReplayWindow::default();
            let mut accepted = std::collections::BTreeSet::new();
            for s in seqs {
                let floor = accepted.iter().rev().nth(WINDOW - 1).copied();
                let fresh = !accepted.contains(&s) && floor.is_none_or(|f| s > f);
                prop_assert_eq!(w.accept(s), fresh, "seq {}", s);
                if fresh {
                    accepted.insert(s);
                }
            }
        }
    }
}
