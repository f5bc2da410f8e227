//! systemd's service notification protocol (`sd_notify(3)`), written out:
//! one datagram per message to the Unix socket `$NOTIFY_SOCKET` names (a
//! path, or `@name` in the abstract namespace). With no such variable,
//! every call does nothing, so the daemon runs the same outside systemd.
//!
//! The daemon says `READY=1` once its ports are started and every worker
//! has polled, `STATUS=` with a one-line summary every second,
//! `STOPPING=1` when it begins to stop, and — when systemd set
//! `$WATCHDOG_USEC` for this process — `WATCHDOG=1` twice per watchdog
//! interval, but only while every worker makes progress ([`Watchdog`]):
//! a worker stuck in a loop gets the appliance restarted.

use std::io;
use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

/// Where notifications go, if anywhere.
#[derive(Debug)]
pub struct Notifier {
    socket: Option<(UnixDatagram, std::os::unix::net::SocketAddr)>,
    watchdog: Option<Duration>,
}

impl Notifier {
    /// From `$NOTIFY_SOCKET` and `$WATCHDOG_USEC` (with `$WATCHDOG_PID`, if
    /// set, naming this process); a notifier that sends nothing without
    /// them. A socket that cannot be reached is reported and ignored.
    pub fn from_env() -> Notifier {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let socket = var("NOTIFY_SOCKET").and_then(|path| match address(&path) {
            Ok(addr) => UnixDatagram::unbound().ok().map(|s| (s, addr)),
            Err(e) => {
                tracing::warn!("NOTIFY_SOCKET={path}: {e}; not notifying systemd");
                None
            }
        });
        let ours = var("WATCHDOG_PID").is_none_or(|p| p == std::process::id().to_string());
        let watchdog = var("WATCHDOG_USEC")
            .and_then(|u| u.parse::<u64>().ok())
            .filter(|u| *u > 0 && ours)
            .map(Duration::from_micros);
        Notifier { socket, watchdog }
    }

    /// A notifier that sends nothing.
    pub fn none() -> Notifier {
        Notifier {
            socket: None,
            watchdog: None,
        }
    }

    /// Whether anything is sent (systemd gave a socket).
    pub fn is_active(&self) -> bool {
        self.socket.is_some()
    }

    /// The watchdog interval systemd asked for, if it asked.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.socket.as_ref().and(self.watchdog)
    }

    /// Sends `state` (newline-separated `KEY=value` lines).
    pub fn send(&self, state: &str) {
        if let Some((s, addr)) = &self.socket {
            if let Err(e) = s.send_to_addr(state.as_bytes(), addr) {
                tracing::debug!("notifying systemd ({state:?}): {e}");
            }
        }
    }

    /// Ready, with the first status line.
    pub fn ready(&self, status: &str) {
        self.send(&format!("READY=1\nSTATUS={}", one_line(status)));
    }

    /// The one-line status.
    pub fn status(&self, status: &str) {
        self.send(&format!("STATUS={}", one_line(status)));
    }

    /// Stopping.
    pub fn stopping(&self) {
        self.send("STOPPING=1\nSTATUS=stopping");
    }

    /// Alive.
    pub fn watchdog(&self) {
        self.send("WATCHDOG=1");
    }
}

fn one_line(s: &str) -> String {
    s.replace('\n', " ")
}

/// The socket address `NOTIFY_SOCKET` names.
fn address(path: &str) -> io::Result<std::os::unix::net::SocketAddr> {
    match path.strip_prefix('@') {
        Some(name) => {
            use std::os::linux::net::SocketAddrExt;
            std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
        }
        None if path.starts_with('/') => std::os::unix::net::SocketAddr::from_pathname(path),
        None => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "neither an absolute path nor @abstract",
        )),
    }
}

/// What the watchdog says at a tick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Not time to look yet.
    NotDue,
    /// Every worker moved since the last look: tell systemd.
    Alive,
    /// These workers (indices) did not move since the last look.
    Stuck(Vec<usize>),
}

/// Feeds systemd's watchdog only while every worker makes progress: every
/// half interval it compares each worker's poll count with the count at
/// the previous look. A worker that polled at all moved; one that did not
/// in half the interval is stuck (a poll takes microseconds, an idle sleep
/// a few hundred of them).
#[derive(Debug)]
pub struct Watchdog {
    every: Duration,
    last: Option<Instant>,
    seen: Vec<u64>,
}

impl Watchdog {
    /// For systemd's `interval`, over `workers` workers.
    pub fn new(interval: Duration, workers: usize) -> Watchdog {
        Watchdog {
            every: interval / 2,
            last: None,
            seen: vec![0; workers],
        }
    }

    /// At `now`, with each worker's poll count.
    pub fn tick(&mut self, now: Instant, polls: &[u64]) -> Verdict {
        if self
            .last
            .is_some_and(|l| now.duration_since(l) < self.every)
        {
            return Verdict::NotDue;
        }
        let stuck: Vec<usize> = polls
            .iter()
            .zip(&self.seen)
            .enumerate()
            .filter(|(_, (now, before))| now <= before)
            .map(|(i, _)| i)
            .collect();
        self.seen = polls.to_vec();
        self.last = Some(now);
        if stuck.is_empty() {
            Verdict::Alive
        } else {
            Verdict::Stuck(stuck)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watchdog_is_fed_only_while_every_worker_polls() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut w = Watchdog::new(ms(1000), 2);
        assert_eq!(w.tick(t0, &[5, 9]), Verdict::Alive);
        assert_eq!(w.tick(t0 + ms(499), &[6, 10]), Verdict::NotDue);
        assert_eq!(w.tick(t0 + ms(500), &[6, 10]), Verdict::Alive);
        // Worker 1 stops polling: named at the next look, and at every
        // look after, until it moves again.
        assert_eq!(w.tick(t0 + ms(1000), &[7, 10]), Verdict::Stuck(vec![1]));
        assert_eq!(w.tick(t0 + ms(1500), &[8, 10]), Verdict::Stuck(vec![1]));
        assert_eq!(w.tick(t0 + ms(1600), &[9, 10]), Verdict::NotDue);
        assert_eq!(w.tick(t0 + ms(2000), &[9, 11]), Verdict::Alive);
        // A worker that has never polled is stuck from the first look.
        let mut w = Watchdog::new(ms(200), 2);
        assert_eq!(w.tick(t0, &[0, 3]), Verdict::Stuck(vec![0]));
    }

    #[test]
    fn notifications_reach_a_path_socket_and_nothing_breaks_without_one() {
        let dir = std::env::temp_dir().join(format!("sluice-notify-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify.sock");
        let systemd = UnixDatagram::bind(&path).unwrap();
        systemd
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let n = Notifier {
            socket: Some((
                UnixDatagram::unbound().unwrap(),
                address(path.to_str().unwrap()).unwrap(),
            )),
            watchdog: Some(Duration::from_secs(10)),
        };
        let mut buf = [0u8; 256];
        let mut next = || {
            let k = systemd.recv(&mut buf).unwrap();
            String::from_utf8_lossy(&buf[..k]).into_owned()
        };
        n.ready("2 workers\nup");
        assert_eq!(next(), "READY=1\nSTATUS=2 workers up");
        n.watchdog();
        assert_eq!(next(), "WATCHDOG=1");
        n.stopping();
        assert_eq!(next(), "STOPPING=1\nSTATUS=stopping");
        assert_eq!(n.watchdog_interval(), Some(Duration::from_secs(10)));
        let _ = std::fs::remove_dir_all(&dir);
        // No socket: silent, and no watchdog.
        let none = Notifier::none();
        none.ready("x");
        assert_eq!(none.watchdog_interval(), None);
        assert!(n.is_active() && !none.is_active());
        assert!(address("relative").is_err());
        assert!(address("@sluice-abstract").is_ok());
    }
}
