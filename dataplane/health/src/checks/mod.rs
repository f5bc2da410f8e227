//! One attempt of each kind of check, synchronous, bounded in time.
//!
//! Every attempt has a deadline of `timeout` from its start. Each socket
//! operation gets the time left as its own timeout (connect, every write,
//! every read), so a server that accepts and never answers, or trickles
//! bytes, fails the attempt at the deadline; an `exec` child still running
//! at the deadline is killed (with its process group) and reaped. So a
//! worker thread is never held longer than the attempt's timeout (plus a
//! few milliseconds).
//!
//! - [`tcp`] — connect.
//! - [`http`] — HTTP/1.0 GET, status and body match.
//! - [`udp`] — request/reply.
//! - [`exec`] — external command.

pub mod exec;
pub mod http;
pub mod tcp;
pub mod udp;

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;

use sluice_model::check::Probe;

/// The outcome of one check attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckResult {
    /// Whether the check passed.
    pub ok: bool,
    /// What happened, for operators: `"connected"`, `"HTTP 503, expected
    /// 200"`, `"timeout after 1000 ms (connect)"`, `"exit status 1"`, ...
    pub detail: String,
    /// How long the attempt took (for a timeout: about the timeout).
    pub latency: Duration,
    /// When the attempt finished.
    pub at: SystemTime,
}

/// What a check attempt needs to know about its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckContext {
    /// The real server (its IP and service port).
    pub real: SocketAddr,
    /// The address to check: the real's IP and the check port.
    pub addr: SocketAddr,
    /// The virtual service the real belongs to.
    pub vip: SocketAddr,
    /// Bound on the whole attempt.
    pub timeout: Duration,
}

/// Runs one attempt of `probe`. `cancel`, when set, makes an `exec` check
/// kill its child early (used by [`Monitor::stop`](crate::Monitor::stop));
/// socket checks are bounded by their timeout anyway. [`Probe::None`]
/// passes at once.
pub fn run(probe: &Probe, ctx: &CheckContext, cancel: Option<&AtomicBool>) -> CheckResult {
    let start = Instant::now();
    let deadline = Deadline::new(start, ctx.timeout);
    let outcome = match probe {
        Probe::None => Ok("no check".to_string()),
        Probe::Tcp => tcp::check(ctx.addr, &deadline),
        Probe::Http {
            path,
            host,
            expect_status,
            expect_body,
        } => {
            let default_host;
            let host = match host {
                Some(h) => h.as_str(),
                None => {
                    // RFC 3986: an IPv6 literal goes in brackets.
                    default_host = match (ctx.addr.port(), ctx.addr.ip()) {
                        (80, std::net::IpAddr::V4(ip)) => ip.to_string(),
                        (80, std::net::IpAddr::V6(ip)) => format!("[{ip}]"),
                        _ => ctx.addr.to_string(),
                    };
                    &default_host
                }
            };
            http::check(
                ctx.addr,
                &http::Request { path, host },
                expect_status,
                expect_body.as_deref(),
                &deadline,
            )
        }
        Probe::Udp { send, expect } => udp::check(ctx.addr, send, expect.as_deref(), &deadline),
        Probe::Exec { argv } => exec::check(argv, &exec::env_for(ctx), &deadline, cancel),
    };
    let latency = start.elapsed();
    let (ok, detail) = match outcome {
        Ok(d) => (true, d),
        Err(d) => (false, d),
    };
    CheckResult {
        ok,
        detail,
        latency,
        at: SystemTime::now(),
    }
}

/// The end of an attempt's time budget.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    start: Instant,
    end: Instant,
    timeout: Duration,
}

impl Deadline {
    /// A deadline `timeout` after `start`.
    pub fn new(start: Instant, timeout: Duration) -> Self {
        Deadline {
            start,
            end: start + timeout,
            timeout,
        }
    }

    /// A deadline `timeout` from now.
    pub fn after(timeout: Duration) -> Self {
        Self::new(Instant::now(), timeout)
    }

    /// The time left, or a `TimedOut` error once none is (a zero timeout
    /// would mean "no timeout" to some socket calls).
    pub fn remaining(&self) -> io::Result<Duration> {
        let left = self.end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            Err(io::Error::new(io::ErrorKind::TimedOut, "deadline passed"))
        } else {
            Ok(left)
        }
    }

    /// Whether the deadline has passed.
    pub fn passed(&self) -> bool {
        Instant::now() >= self.end
    }

    /// Time since the attempt started.
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// The attempt's whole timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }
}

/// Formats an I/O error of step `what` for [`CheckResult::detail`],
/// spelling timeouts (which Linux reports as `WouldBlock` on sockets with a
/// read timeout) uniformly.
pub(crate) fn io_detail(what: &str, e: &io::Error, deadline: &Deadline) -> String {
    match e.kind() {
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => format!(
            "timeout after {} ms ({what})",
            deadline.timeout().as_millis()
        ),
        _ => format!("{what}: {e}"),
    }
}

/// Whether `haystack` contains `needle` (an empty needle always matches).
pub(crate) fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contains_bytes() {
        assert!(contains(b"hello world", b"o w"));
        assert!(contains(b"abc", b""));
        assert!(!contains(b"ab", b"abc"));
        assert!(!contains(b"hello", b"world"));
    }

    #[test]
    fn deadline_remaining() {
        let d = Deadline::after(Duration::from_secs(10));
        assert!(d.remaining().unwrap() > Duration::from_secs(9));
        assert!(!d.passed());
        let d = Deadline::new(
            Instant::now() - Duration::from_secs(1),
            Duration::from_millis(5),
        );
        assert!(d.passed());
        assert_eq!(d.remaining().unwrap_err().kind(), io::ErrorKind::TimedOut);
        let msg = io_detail("read", &d.remaining().unwrap_err(), &d);
        assert_eq!(msg, "timeout after 5 ms (read)");
    }
}
