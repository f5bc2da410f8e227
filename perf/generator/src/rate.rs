//! Rate control: a token bucket clocked by the TSC. It earns `rate` tokens
//! per second of TSC time (exact integer arithmetic, no drift) and holds at
//! most `cap` of them, so after a stall the sender catches up by at most
//! `cap` packets instead of bursting everything it missed. A rate of 0
//! means unlimited: every request is granted in full.

/// A token bucket on the TSC.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: u64,
    hz: u64,
    cap: u64,
    // Tokens times hz (fractions of a token kept exactly).
    credit: u128,
    last: u64,
}

impl TokenBucket {
    /// `rate` tokens per second (0 = unlimited) on a clock of `hz` ticks
    /// per second, holding at most `cap` tokens, starting empty at `now`.
    pub fn new(rate: u64, hz: u64, cap: u64, now: u64) -> TokenBucket {
        TokenBucket {
            rate,
            hz: hz.max(1),
            cap: cap.max(1),
            credit: 0,
            last: now,
        }
    }

    /// The cap for a sender of `rate` packets/s in bursts of `burst`: four
    /// bursts, or 1 ms worth of packets if that is more (so that a sender
    /// preempted for up to a millisecond still keeps its average rate).
    pub fn default_cap(rate: u64, burst: u64) -> u64 {
        (4 * burst).max(rate / 1000)
    }

    /// The rate (0 = unlimited).
    pub fn rate(&self) -> u64 {
        self.rate
    }

    /// Takes up to `max` tokens at time `now`; returns how many.
    #[inline]
    pub fn take(&mut self, now: u64, max: u64) -> u64 {
        if self.rate == 0 {
            return max;
        }
        let dt = now.saturating_sub(self.last);
        self.last = now;
        let hz = self.hz as u128;
        let cap = self.cap as u128 * hz;
        self.credit = (self.credit + dt as u128 * self.rate as u128).min(cap);
        let n = ((self.credit / hz) as u64).min(max);
        self.credit -= n as u128 * hz;
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn earns_exactly_the_rate() {
        // 1 MHz clock, 1000 tokens/s: one token per 1000 ticks.
        let mut b = TokenBucket::new(1000, 1_000_000, 10, 0);
        assert_eq!(b.take(999, 100), 0);
        assert_eq!(b.take(1000, 100), 1);
        let mut total = 1;
        let mut t = 1000;
        for _ in 0..10_000 {
            t += 337;
            total += b.take(t, 100);
        }
        // Over 3.371 s (plus the first ms): 3371 tokens, +-1.
        assert!((total as i64 - (t / 1000) as i64).abs() <= 1, "{total} {t}");
    }

    #[test]
    fn caps_after_a_stall_and_respects_max() {
        let mut b = TokenBucket::new(1000, 1_000_000, 10, 0);
        assert_eq!(b.take(5_000_000, 100), 10);
        assert_eq!(b.take(5_000_000, 100), 0);
        assert_eq!(b.take(5_004_000, 3), 3);
        assert_eq!(b.take(5_004_000, 3), 1);
    }

    #[test]
    fn zero_is_unlimited() {
        let mut b = TokenBucket::new(0, 1_000_000, 10, 0);
        assert_eq!(b.take(0, 32), 32);
        assert_eq!(TokenBucket::default_cap(100_000, 32), 128);
        assert_eq!(TokenBucket::default_cap(14_880_952, 32), 14_880);
    }
}
