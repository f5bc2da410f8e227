//! The rise/fall state machine of one target, and the latency EWMA. Pure:
//! no clock, no I/O, so it is tested on its own.
//!
//! As keepalived and HAProxy: an up target goes down after `fall`
//! consecutive failed checks; a down target comes up after `rise`
//! consecutive successful checks. A target starts [`State::Unknown`], which
//! counts as up: after an appliance restart, traffic keeps flowing to the
//! reals until the checks have actually seen `fall` failures.

use std::time::Duration;

use serde::Serialize;

/// The check state of a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Not yet confirmed either way (the initial state). Counts as up: it
    /// becomes [`State::Down`] after `fall` consecutive failures, or
    /// [`State::Up`] after `rise` consecutive successes.
    Unknown,
    /// Up.
    Up,
    /// Down: comes up after `rise` consecutive successes.
    Down,
}

impl State {
    /// Whether traffic may go to a target in this state: `Up` and `Unknown`.
    pub fn counts_as_up(self) -> bool {
        !matches!(self, State::Down)
    }

    /// `"unknown"`, `"up"` or `"down"`.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Unknown => "unknown",
            State::Up => "up",
            State::Down => "down",
        }
    }
}

/// Rise/fall hysteresis over a target's check results.
///
/// [`record`](Self::record) feeds one result and says when the target's
/// up-ness ([`State::counts_as_up`]) flips. `Unknown → Up` changes the
/// state but not the up-ness, so it returns `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RiseFall {
    rise: u32,
    fall: u32,
    state: State,
    consecutive_ok: u32,
    consecutive_fail: u32,
}

impl RiseFall {
    /// A fresh machine in [`State::Unknown`]. `rise` and `fall` below 1 are
    /// taken as 1.
    pub fn new(rise: u32, fall: u32) -> Self {
        Self::with_state(rise, fall, State::Unknown)
    }

    /// A machine starting in `state` with empty streaks.
    pub fn with_state(rise: u32, fall: u32, state: State) -> Self {
        RiseFall {
            rise: rise.max(1),
            fall: fall.max(1),
            state,
            consecutive_ok: 0,
            consecutive_fail: 0,
        }
    }

    /// Records one check result. Returns `Some(true)` when the target has
    /// just come up (`Down → Up`), `Some(false)` when it has just gone down
    /// (`Up`/`Unknown → Down`), `None` otherwise (including `Unknown → Up`).
    pub fn record(&mut self, ok: bool) -> Option<bool> {
        if ok {
            self.consecutive_ok = self.consecutive_ok.saturating_add(1);
            self.consecutive_fail = 0;
            if self.state != State::Up && self.consecutive_ok >= self.rise {
                let was_down = self.state == State::Down;
                self.state = State::Up;
                return was_down.then_some(true);
            }
        } else {
            self.consecutive_fail = self.consecutive_fail.saturating_add(1);
            self.consecutive_ok = 0;
            if self.state != State::Down && self.consecutive_fail >= self.fall {
                self.state = State::Down;
                return Some(false);
            }
        }
        None
    }

    /// Changes `rise` and `fall` (below 1 taken as 1), keeping the state and
    /// the streaks; a streak already past a new threshold acts on the next
    /// result.
    pub fn set_thresholds(&mut self, rise: u32, fall: u32) {
        self.rise = rise.max(1);
        self.fall = fall.max(1);
    }

    /// Forgets the current streaks, keeping the state.
    pub fn reset_streaks(&mut self) {
        self.consecutive_ok = 0;
        self.consecutive_fail = 0;
    }

    /// Forces the state (e.g. `Up` for a target with no check), clearing
    /// the streaks.
    pub fn force(&mut self, state: State) {
        self.state = state;
        self.reset_streaks();
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Consecutive successes ending with the latest result (0 after a
    /// failure).
    pub fn consecutive_ok(&self) -> u32 {
        self.consecutive_ok
    }

    /// Consecutive failures ending with the latest result (0 after a
    /// success).
    pub fn consecutive_fail(&self) -> u32 {
        self.consecutive_fail
    }

    /// The rise threshold.
    pub fn rise(&self) -> u32 {
        self.rise
    }

    /// The fall threshold.
    pub fn fall(&self) -> u32 {
        self.fall
    }
}

/// Weight of the newest sample in the latency EWMA.
pub const EWMA_ALPHA: f64 = 0.3;

/// One step of the latency exponentially weighted moving average:
/// `alpha * sample + (1 - alpha) * prev` with alpha [`EWMA_ALPHA`] (0.3);
/// the first sample (`prev` `None`) is taken as is.
pub fn ewma(prev: Option<Duration>, sample: Duration) -> Duration {
    match prev {
        None => sample,
        Some(prev) => Duration::from_secs_f64(
            EWMA_ALPHA * sample.as_secs_f64() + (1.0 - EWMA_ALPHA) * prev.as_secs_f64(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn run(h: &mut RiseFall, seq: &str) -> Vec<Option<bool>> {
        seq.chars().map(|c| h.record(c == '+')).collect()
    }

    #[test]
    fn unknown_counts_as_up_until_fall() {
        let mut h = RiseFall::new(2, 3);
        assert_eq!(h.state(), State::Unknown);
        assert!(h.state().counts_as_up());
        assert_eq!(run(&mut h, "--"), [None, None]);
        assert_eq!(h.state(), State::Unknown);
        assert_eq!(h.consecutive_fail(), 2);
        assert_eq!(run(&mut h, "-"), [Some(false)]);
        assert_eq!(h.state(), State::Down);
        assert!(!h.state().counts_as_up());
    }

    #[test]
    fn unknown_to_up_is_not_a_transition() {
        let mut h = RiseFall::new(2, 3);
        assert_eq!(run(&mut h, "+"), [None]);
        assert_eq!(h.state(), State::Unknown);
        assert_eq!(run(&mut h, "+"), [None]);
        assert_eq!(h.state(), State::Up);
    }

    #[test]
    fn rise_and_fall() {
        let mut h = RiseFall::new(2, 3);
        // A broken streak does not count.
        assert_eq!(
            run(&mut h, "--+---"),
            [None, None, None, None, None, Some(false)]
        );
        assert_eq!(run(&mut h, "+-+"), [None, None, None]);
        assert_eq!(h.state(), State::Down);
        assert_eq!(run(&mut h, "+"), [Some(true)]);
        assert_eq!(h.state(), State::Up);
        assert_eq!(run(&mut h, "++++--+--"), [None; 9]);
        assert_eq!(h.consecutive_fail(), 2);
        assert_eq!(run(&mut h, "-"), [Some(false)]);
        // Further failures do not re-announce.
        assert_eq!(run(&mut h, "---"), [None; 3]);
        assert_eq!(h.consecutive_fail(), 6);
    }

    #[test]
    fn rise_fall_one() {
        let mut h = RiseFall::new(1, 1);
        assert_eq!(
            run(&mut h, "-+-+"),
            [Some(false), Some(true), Some(false), Some(true)]
        );
        let mut h = RiseFall::new(0, 0);
        assert_eq!((h.rise(), h.fall()), (1, 1));
        assert_eq!(run(&mut h, "-"), [Some(false)]);
    }

    #[test]
    fn thresholds_and_force() {
        let mut h = RiseFall::new(5, 5);
        run(&mut h, "---");
        h.set_thresholds(5, 2);
        assert_eq!(h.state(), State::Unknown);
        assert_eq!(run(&mut h, "-"), [Some(false)]);
        h.force(State::Up);
        assert_eq!((h.state(), h.consecutive_fail()), (State::Up, 0));
    }

    #[test]
    fn ewma_steps() {
        let ms = Duration::from_millis;
        assert_eq!(ewma(None, ms(10)), ms(10));
        let e = ewma(Some(ms(10)), ms(20));
        assert!((e.as_secs_f64() - 0.013).abs() < 1e-9, "{e:?}");
    }

    /// Reference model: the state after a sequence, computed from the
    /// sequence's runs.
    fn model(rise: u32, fall: u32, seq: &[bool]) -> State {
        let mut state = State::Unknown;
        for end in 1..=seq.len() {
            let last = seq[end - 1];
            let run = seq[..end].iter().rev().take_while(|&&r| r == last).count() as u32;
            if last && run >= rise && state != State::Up {
                state = State::Up;
            }
            if !last && run >= fall && state != State::Down {
                state = State::Down;
            }
        }
        state
    }

    proptest! {
        #[test]
        fn matches_model(rise in 1u32..5, fall in 1u32..5, seq in proptest::collection::vec(any::<bool>(), 0..64)) {
            let mut h = RiseFall::new(rise, fall);
            let mut up = true;
            for (i, &ok) in seq.iter().enumerate() {
                let before = h.state();
                let t = h.record(ok);
                // A transition flips up-ness, and only then.
                prop_assert_eq!(t.is_some(), before.counts_as_up() != h.state().counts_as_up());
                if let Some(now_up) = t {
                    prop_assert_eq!(now_up, !up);
                    up = now_up;
                    // Caused by a streak of the right length.
                    let need = if now_up { rise } else { fall } as usize;
                    prop_assert!(i + 1 >= need);
                    prop_assert!(seq[i + 1 - need..=i].iter().all(|&r| r == now_up));
                }
                prop_assert_eq!(h.state(), model(rise, fall, &seq[..=i]));
            }
            prop_assert_eq!(up, h.state().counts_as_up());
        }
    }
}
