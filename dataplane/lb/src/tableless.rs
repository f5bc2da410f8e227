//! The flows a worker forwarded without a table entry (the table was
//! full), remembered so that they stay forwarded once the table has room
//! again: their later packets are adopted (scheduled by the same
//! consistent hash, an entry made) instead of being dropped as packets of
//! no connection.
//!
//! A flow is a bit in a fixed bitmap, set from its key's hash; two
//! generations rotate every [`GENERATION_MS`], so a flow silent for two
//! generations is forgotten, and memory stays fixed however many flows
//! there were. A false positive (another flow's bit) makes a stray
//! packet of no connection be forwarded to the real the consistent hash
//! picks, which answers it with a reset, rather than dropped.

/// How long one generation lasts. A flow is remembered between one and
/// two generations after its last table-less packet.
pub const GENERATION_MS: u64 = 10 * 60 * 1000;
/// Bits per generation (a power of two): 128 KiB each.
pub const BITS: usize = 1 << 20;

/// Two generations of flow bits.
pub struct Tableless {
    current: Vec<u64>,
    previous: Vec<u64>,
    since: u64,
    /// Whether each generation has a bit set (most of the time neither
    /// has, and lookups stop there).
    current_used: bool,
    previous_used: bool,
}

impl Tableless {
    /// An empty memory (allocates both generations now).
    pub fn new() -> Tableless {
        Tableless {
            current: vec![0; BITS / 64],
            previous: vec![0; BITS / 64],
            since: 0,
            current_used: false,
            previous_used: false,
        }
    }

    /// Starts a new generation when the current one is over (called
    /// between bursts, and before every mark).
    pub fn tick(&mut self, now_ms: u64) {
        if now_ms.saturating_sub(self.since) < GENERATION_MS {
            return;
        }
        self.since = now_ms;
        if !self.current_used && !self.previous_used {
            return;
        }
        std::mem::swap(&mut self.current, &mut self.previous);
        self.previous_used = self.current_used;
        if self.current_used {
            self.current.fill(0);
        }
        self.current_used = false;
    }

    /// Remembers the flow whose key hashes to `hash`.
    pub fn mark(&mut self, hash: u64, now_ms: u64) {
        self.tick(now_ms);
        let (word, bit) = slot(hash);
        self.current[word] |= bit;
        self.current_used = true;
    }

    /// Whether no flow is remembered (the usual case: a lookup can stop).
    #[inline]
    pub fn is_empty(&self) -> bool {
        !self.current_used && !self.previous_used
    }

    /// Whether the flow whose key hashes to `hash` was forwarded table-less
    /// within the last one or two generations.
    #[inline]
    pub fn contains(&self, hash: u64) -> bool {
        if self.is_empty() {
            return false;
        }
        let (word, bit) = slot(hash);
        (self.current[word] | self.previous[word]) & bit != 0
    }
}

impl Default for Tableless {
    fn default() -> Self {
        Tableless::new()
    }
}

#[inline(always)]
fn slot(hash: u64) -> (usize, u64) {
    let i = (hash as usize) & (BITS - 1);
    (i / 64, 1 << (i % 64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_for_one_to_two_generations() {
        let mut t = Tableless::new();
        assert!(!t.contains(42));
        t.mark(42, 1_000);
        assert!(t.contains(42) && !t.contains(43));
        // The first mark started a generation at 1 s; one later, rotated
        // into the previous one, it is still known.
        t.mark(7, 1_000 + GENERATION_MS);
        assert!(t.contains(42) && t.contains(7));
        // Two generations after, gone; the newer one stays a while.
        t.mark(9, 1_000 + 2 * GENERATION_MS);
        assert!(!t.contains(42) && t.contains(7) && t.contains(9));
        // Ticks alone age them out too.
        t.tick(1_000 + 3 * GENERATION_MS);
        assert!(!t.contains(7) && t.contains(9));
        t.tick(1_000 + 4 * GENERATION_MS);
        assert!(!t.contains(9));
    }
}
