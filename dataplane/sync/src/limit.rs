//! The sender's rate limit: a token bucket of datagrams, refilled with
//! time given by the caller.

/// A token bucket: `rate` tokens per second, at most `burst` saved.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: u32,
    burst: u32,
    /// Thousandths of a token.
    milli: u64,
    last_ms: u64,
}

impl TokenBucket {
    /// A full bucket at `now_ms`.
    pub fn new(rate: u32, burst: u32, now_ms: u64) -> TokenBucket {
        TokenBucket {
            rate,
            burst: burst.max(1),
            milli: u64::from(burst.max(1)) * 1000,
            last_ms: now_ms,
        }
    }

    /// Takes `n` tokens at `now_ms`, all or none; whether it did.
    pub fn take_n(&mut self, n: u32, now_ms: u64) -> bool {
        self.refill(now_ms);
        let want = u64::from(n) * 1000;
        if self.milli >= want {
            self.milli -= want;
            true
        } else {
            false
        }
    }

    fn refill(&mut self, now_ms: u64) {
        let dt = now_ms.saturating_sub(self.last_ms);
        self.last_ms = self.last_ms.max(now_ms);
        let cap = u64::from(self.burst) * 1000;
        self.milli = (self.milli + dt * u64::from(self.rate)).min(cap);
    }

    /// Takes a token at `now_ms`; false when there is none.
    pub fn take(&mut self, now_ms: u64) -> bool {
        let dt = now_ms.saturating_sub(self.last_ms);
        self.last_ms = self.last_ms.max(now_ms);
        let cap = u64::from(self.burst) * 1000;
        self.milli = (self.milli + dt * u64::from(self.rate)).min(cap);
        if self.milli >= 1000 {
            self.milli -= 1000;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_rate() {
        let mut b = TokenBucket::new(100, 10, 0);
        assert_eq!((0..20).filter(|_| b.take(0)).count(), 10);
        // 100 per second: one per 10 ms.
        assert!(!b.take(5));
        assert!(b.take(10));
        let got = (0..1000).filter(|i| b.take(10 + i)).count();
        assert!((99..=100).contains(&got), "{got} in 1 s at 100/s");
        // Idle for long: never more than the burst.
        assert_eq!((0..50).filter(|_| b.take(1_000_000)).count(), 10);
        // All or none.
        let mut b = TokenBucket::new(100, 10, 0);
        assert!(b.take_n(7, 0));
        assert!(!b.take_n(4, 0), "3 left");
        assert!(b.take_n(3, 0));
        assert!(b.take_n(1, 10));
    }
}
