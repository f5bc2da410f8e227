//! The receiver's replay window per sender, as IPsec's (RFC 4303 3.4.3):
//! the highest sequence number seen and a bitmap of the 64 below it.
//! Datagrams may be lost or reordered; none may be accepted twice, and
//! none older than the window.

/// One sender's window.
#[derive(Debug, Clone, Default)]
pub struct ReplayWindow {
    highest: u64,
    /// Bit i: `highest - i` was seen.
    seen: u64,
}

/// Width of the window.
pub const WINDOW: u64 = 64;

/// How far behind the receiver's clock a sequence number may be, in
/// microseconds. A sender's sequence numbers are at least its wall clock
/// in microseconds, so a datagram recorded and replayed later than this
/// is refused even by a receiver that restarted and forgot its windows
/// (the appliances' clocks must agree within this: NTP).
pub const MAX_AGE_US: u64 = 60_000_000;

/// Whether `seq` is recent at the receiver's wall clock `now_us`.
pub fn fresh(seq: u64, now_us: u64) -> bool {
    seq.saturating_add(MAX_AGE_US) >= now_us
}

/// The sequence number to send after `last` at wall clock `now_us`: one
/// more, and never behind the clock.
pub fn next_seq(last: u64, now_us: u64) -> u64 {
    (last + 1).max(now_us)
}

impl ReplayWindow {
    /// Accepts `seq` (recording it) unless it was seen or is too old.
    /// Call only once the datagram is authenticated.
    pub fn accept(&mut self, seq: u64) -> bool {
        if seq == 0 {
            return false;
        }
        if seq > self.highest {
            let shift = seq - self.highest;
            self.seen = if shift >= WINDOW {
                0
            } else {
                self.seen << shift
            };
            self.seen |= 1;
            self.highest = seq;
            return true;
        }
        let back = self.highest - seq;
        if back >= WINDOW {
            return false;
        }
        let bit = 1u64 << back;
        if self.seen & bit != 0 {
            return false;
        }
        self.seen |= bit;
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
        // Sending faster than a datagram per microsecond runs ahead of
        // the clock, never behind it.
        assert_eq!(next_seq(now + 10, now), now + 11);
        assert_eq!(next_seq(5, now), now);
    }

    #[test]
    fn replays_and_old_ones_are_refused() {
        let mut w = ReplayWindow::default();
        assert!(w.accept(100));
        assert!(!w.accept(100));
        assert!(w.accept(98), "reordered within the window");
        assert!(!w.accept(98));
        assert!(w.accept(200));
        assert!(!w.accept(100), "older than the window");
        assert!(w.accept(137));
        assert!(!w.accept(0));
    }

    proptest! {
        /// Against a set of everything seen: accepted exactly when new and
        /// within the window of the highest so far.
        #[test]
        fn matches_a_model(seqs in proptest::collection::vec(1u64..300, 1..200)) {
            let mut w = ReplayWindow::default();
            let mut seen = std::collections::BTreeSet::new();
            let mut highest = 0u64;
            for s in seqs {
                let fresh = !seen.contains(&s) && (s > highest || highest - s < WINDOW);
                prop_assert_eq!(w.accept(s), fresh, "seq {}", s);
                if fresh {
                    seen.insert(s);
                    highest = highest.max(s);
                }
            }
        }
    }
}
