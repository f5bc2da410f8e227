//! RFC 2544 throughput search: a binary search over the offered rate for
//! the highest rate whose trial loses no more than a threshold: none for
//! the no-drop rate (NDR), under 0.5 % (by default) for the partial-drop
//! rate (PDR).
//!
//! The search is sans-IO: it proposes rates ([`Search::next`]) and is told
//! each trial's loss ([`Search::record`]). It starts from a trial at the
//! highest rate the generator reaches (measured at full speed): if that
//! passes, it is the answer. Otherwise it bisects between the highest
//! passing rate (initially 0, or a known lower bound such as the NDR when
//! searching for the PDR) and the lowest failing one, until the interval is
//! within `resolution` of the maximum or `max_steps` trials have run.

use serde::Serialize;

/// What is searched for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Goal {
    /// No-drop rate: zero loss.
    Ndr,
    /// Partial-drop rate: loss below a threshold.
    Pdr,
}

/// A binary search for the highest passing rate.
#[derive(Debug, Clone)]
pub struct Search {
    goal: Goal,
    /// Largest loss ratio that passes (0 for NDR; strictly below it passes
    /// for PDR).
    threshold: f64,
    max: u64,
    lo: u64,
    hi: u64,
    steps: u32,
    max_steps: u32,
    resolution: u64,
    done: bool,
}

impl Search {
    /// A search below `max` pps. `pdr_loss` is the PDR's loss threshold as a
    /// ratio (e.g. 0.005); `resolution` a fraction of `max` (e.g. 0.01).
    pub fn new(goal: Goal, max: u64, pdr_loss: f64, max_steps: u32, resolution: f64) -> Search {
        Search {
            goal,
            threshold: if goal == Goal::Ndr { 0.0 } else { pdr_loss },
            max,
            lo: 0,
            hi: max,
            steps: 0,
            max_steps,
            resolution: ((max as f64 * resolution) as u64).max(1),
            done: max == 0,
        }
    }

    /// The goal.
    pub fn goal(&self) -> Goal {
        self.goal
    }

    /// Whether a trial that lost `lost` of `sent` packets passes.
    pub fn passes(&self, sent: u64, lost: u64) -> bool {
        if sent == 0 {
            return false;
        }
        match self.goal {
            Goal::Ndr => lost == 0,
            Goal::Pdr => (lost as f64 / sent as f64) < self.threshold,
        }
    }

    /// A rate already known to pass (e.g. the NDR, for a PDR search).
    pub fn set_lower_bound(&mut self, rate: u64) {
        self.lo = self.lo.max(rate.min(self.hi));
    }

    /// Records the trial at `rate`; the first one should be at `max`.
    pub fn record(&mut self, rate: u64, sent: u64, lost: u64) {
        self.steps += 1;
        if self.passes(sent, lost) {
            self.lo = self.lo.max(rate);
            if rate >= self.hi {
                self.done = true;
            }
        } else {
            self.hi = self.hi.min(rate);
        }
    }

    /// The next rate to try, or None when the search is over.
    pub fn next(&self) -> Option<u64> {
        if self.done
            || self.steps >= self.max_steps
            || self.hi <= self.lo
            || self.hi - self.lo <= self.resolution
        {
            return None;
        }
        if self.steps == 0 {
            return Some(self.max);
        }
        Some(self.lo + (self.hi - self.lo) / 2)
    }

    /// The highest passing rate found (0 if none passed).
    pub fn best(&self) -> u64 {
        self.lo
    }

    /// Trials recorded.
    pub fn steps(&self) -> u32 {
        self.steps
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A device that drops everything above `cap` pps and, for PDR tests,
    /// loses 0.1 % between `soft` and `cap`.
    fn run(mut s: Search, soft: u64, cap: u64) -> (u64, u32) {
        while let Some(rate) = s.next() {
            let sent = rate.max(1) * 10;
            let lost = if rate > cap {
                sent / 10
            } else if rate > soft {
                sent / 1000
            } else {
                0
            };
            s.record(rate, sent, lost);
        }
        (s.best(), s.steps())
    }

    #[test]
    fn ndr_converges_within_resolution() {
        let s = Search::new(Goal::Ndr, 10_000_000, 0.005, 30, 0.001);
        let (best, steps) = run(s, 3_333_333, 6_000_000);
        assert!(best <= 3_333_333 && best > 3_333_333 - 10_000, "{best}");
        assert!(steps <= 30);
    }

    #[test]
    fn pdr_accepts_small_loss() {
        let mut s = Search::new(Goal::Pdr, 10_000_000, 0.005, 30, 0.001);
        s.set_lower_bound(3_000_000);
        let (best, _) = run(s, 3_333_333, 6_000_000);
        assert!(best <= 6_000_000 && best > 6_000_000 - 10_000, "{best}");
    }

    #[test]
    fn max_passing_ends_at_once() {
        let s = Search::new(Goal::Ndr, 1_000_000, 0.005, 10, 0.01);
        assert_eq!(run(s, 2_000_000, 2_000_000), (1_000_000, 1));
    }

    #[test]
    fn steps_are_bounded_and_nothing_passing_gives_zero() {
        let s = Search::new(Goal::Ndr, 1_000_000, 0.005, 5, 0.0);
        assert_eq!(run(s, 0, 0), (0, 5));
        let s = Search::new(Goal::Ndr, 0, 0.005, 5, 0.01);
        assert_eq!(s.next(), None);
        assert!(!s.passes(0, 0));
    }
}
