//! The daemon under systemd's service protocol, with a datagram socket
//! standing in for systemd's (`NOTIFY_SOCKET`): `READY=1` once it serves,
//! a status line, `WATCHDOG=1` every half `WATCHDOG_USEC` while its worker
//! polls, `STOPPING=1` when it stops. (A worker that stops polling is
//! `notify::Watchdog`'s unit test: nothing here can stall one on purpose.)

mod common;

use common::*;
use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

/// The messages received until `until` holds for one, or `limit` passes.
fn receive_until(
    sock: &UnixDatagram,
    got: &mut Vec<String>,
    limit: Duration,
    mut until: impl FnMut(&str) -> bool,
) -> bool {
    let end = Instant::now() + limit;
    let mut buf = [0u8; 4096];
    while Instant::now() < end {
        if let Ok(n) = sock.recv(&mut buf) {
            let m = String::from_utf8_lossy(&buf[..n]).into_owned();
            let done = until(&m);
            got.push(m);
            if done {
                return true;
            }
        }
    }
    false
}

#[test]
fn ready_status_watchdog_and_stopping_reach_systemds_socket() {
    if !require_root() {
        return;
    }
    let dir = TempDir::new();
    let path = dir.path().join("notify.sock");
    let systemd = UnixDatagram::bind(&path).unwrap();
    systemd
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let d = Daemon::start_with_env(
        None,
        &TestConfig::null_port().render(),
        &[
            ("NOTIFY_SOCKET", path.to_str().unwrap()),
            ("WATCHDOG_USEC", "400000"),
        ],
    );
    let mut got = Vec::new();
    assert!(
        receive_until(&systemd, &mut got, Duration::from_secs(20), |m| m
            .starts_with("READY=1\n")),
        "no READY=1: {got:?}\n{}",
        d.log_text()
    );
    let ready = got.last().unwrap().clone();
    assert!(
        ready.contains("STATUS=serving 0 services on 1 ports with 1 workers; 0 connections"),
        "{ready}"
    );
    // The control socket answers by then.
    assert_eq!(d.ctl_json(&["status"])["ok"], true);
    // Every 200 ms a WATCHDOG=1, with a status line every second.
    let mut pets = 0;
    assert!(
        receive_until(&systemd, &mut got, Duration::from_secs(10), |m| {
            pets += usize::from(m == "WATCHDOG=1");
            pets >= 5
        }),
        "watchdog not fed: {got:?}"
    );
    assert!(
        got.iter().any(|m| m.starts_with("STATUS=serving ")),
        "{got:?}"
    );
    let exit = d.stop();
    assert_eq!(exit.code, Some(0), "{}", exit.log);
    let mut rest = Vec::new();
    assert!(
        receive_until(&systemd, &mut rest, Duration::from_secs(5), |m| m
            .starts_with("STOPPING=1")),
        "no STOPPING=1: {rest:?}"
    );
}

#[test]
fn without_notify_socket_nothing_is_sent_and_nothing_breaks() {
    if !require_root() {
        return;
    }
    // WATCHDOG_USEC alone (no socket) must not make the daemon misbehave;
    // a WATCHDOG_PID naming another process means the watchdog is not ours.
    let d = Daemon::start_with_env(
        None,
        &TestConfig::null_port().render(),
        &[("WATCHDOG_USEC", "100000"), ("WATCHDOG_PID", "1")],
    );
    assert_eq!(d.ctl_json(&["status"])["ok"], true);
    let exit = d.stop();
    assert_eq!(exit.code, Some(0), "{}", exit.log);
}
