//! The progress indicator on stderr: one line rewritten in place (`\r`)
//! when stderr is a terminal, a plain line per second otherwise; nothing
//! with `--quiet`.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// A progress line.
pub struct Progress {
    enabled: bool,
    tty: bool,
    last_print: Instant,
    last: (Instant, u64, u64),
    drawn: bool,
}

impl Progress {
    /// A progress line, off when `quiet`.
    pub fn new(quiet: bool) -> Progress {
        let now = Instant::now();
        Progress {
            enabled: !quiet,
            tty: std::io::stderr().is_terminal(),
            last_print: now,
            last: (now, 0, 0),
            drawn: false,
        }
    }

    /// Starts a new phase: rates restart from these counters.
    pub fn reset(&mut self, tx: u64, rx: u64) {
        self.last = (Instant::now(), tx, rx);
    }

    /// Shows the state if it is time to: `label` and elapsed/total
    /// seconds, the live counters of the run.
    pub fn update(&mut self, label: &str, elapsed: f64, total: f64, tx: u64, rx: u64, bad: u64) {
        if !self.enabled {
            return;
        }
        let now = Instant::now();
        let every = if self.tty {
            Duration::from_millis(250)
        } else {
            Duration::from_secs(1)
        };
        if now.duration_since(self.last_print) < every {
            return;
        }
        let dt = now.duration_since(self.last.0).as_secs_f64();
        if dt < 0.2 {
            // Too soon after a reset for a meaningful rate.
            return;
        }
        let tx_rate = tx.saturating_sub(self.last.1) as f64 / dt / 1e6;
        let rx_rate = rx.saturating_sub(self.last.2) as f64 / dt / 1e6;
        self.last = (now, tx, rx);
        self.last_print = now;
        let line = format!(
            "[{label} {elapsed:5.1}/{total:.1} s] tx {tx_rate:7.3} Mpps  rx {rx_rate:7.3} Mpps  \
             sent {tx}  good {rx}  bad {bad}"
        );
        let mut e = std::io::stderr().lock();
        if self.tty {
            let _ = write!(e, "\r\x1b[K{line}");
            self.drawn = true;
        } else {
            let _ = writeln!(e, "{line}");
        }
        let _ = e.flush();
    }

    /// Ends the line, if one is drawn.
    pub fn finish(&mut self) {
        if self.drawn {
            let _ = writeln!(std::io::stderr());
            self.drawn = false;
        }
    }
}
