//! The daemon under systemd's service protocol, with a datagram socket
//! standing in for systemd's (`NOTIFY_SOCKET`): `READY=1` once it serves,
//! a status line, `WATCHDOG=1` every half `WATCHDOG_USEC` while its worker
//! polls, `STOPPING=1` when it stops. (A worker that stops polling is
//! `notify::Watchdog`'s unit test: nothing here can stall one on purpose.)

mod common;

use common::*;
use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

/// The datagrams received (as bytes) until `until` holds for one, or
/// `limit` passes.
fn receive_until(
    sock: &UnixDatagram,
    got: &mut Vec<Vec<u8>>,
    limit: Duration,
    mut until: impl FnMut(&[u8]) -> bool,
) -> bool {
    let end = Instant::now() + limit;
    let mut buf = [0u8; 8192];
    while Instant::now() < end {
        if let Ok(n) = sock.recv(&mut buf) {
            let m = buf[..n].to_vec();
            let done = until(&m);
            got.push(m);
            if done {
                return true;
            }
        }
    }
    false
}

/// The notifications, as text.
fn texts(got: &[Vec<u8>]) -> Vec<String> {
    got.iter()
        .map(|m| String::from_utf8_lossy(m).into_owned())
        .collect()
}

/// A datagram socket standing in for systemd's, in `dir`.
fn stand_in(dir: &TempDir) -> (UnixDatagram, String) {
    let path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    (sock, path.to_str().unwrap().to_string())
}

#[test]
fn ready_status_watchdog_and_stopping_reach_systemds_socket() {
    if !require_root() {
        return;
    }
    let dir = TempDir::new();
    let (systemd, path) = stand_in(&dir);
    let d = Daemon::start_with_env(
        None,
        &TestConfig::null_port().render(),
        &[("NOTIFY_SOCKET", &path), ("WATCHDOG_USEC", "400000")],
    );
    let mut got = Vec::new();
    assert!(
        receive_until(&systemd, &mut got, Duration::from_secs(20), |m| m
            .starts_with(b"READY=1\n")),
        "no READY=1: {:?}\n{}",
        texts(&got),
        d.log_text()
    );
    let ready = texts(&got).pop().unwrap();
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
            pets += usize::from(m == b"WATCHDOG=1");
            pets >= 5
        }),
        "watchdog not fed: {:?}",
        texts(&got)
    );
    assert!(
        got.iter().any(|m| m.starts_with(b"STATUS=serving ")),
        "{:?}",
        texts(&got)
    );
    let exit = d.stop();
    assert_eq!(exit.code, Some(0), "{}", exit.log);
    let mut rest = Vec::new();
    assert!(
        receive_until(&systemd, &mut rest, Duration::from_secs(5), |m| m
            .starts_with(b"STOPPING=1")),
        "no STOPPING=1: {:?}",
        texts(&rest)
    );
}

/// A watchdog that systemd set for another process (`WATCHDOG_PID`) is
/// not fed: READY=1 and status lines come, WATCHDOG=1 never.
#[test]
fn a_watchdog_meant_for_another_process_is_left_alone() {
    if !require_root() {
        return;
    }
    let dir = TempDir::new();
    let (systemd, path) = stand_in(&dir);
    let d = Daemon::start_with_env(
        None,
        &TestConfig::null_port().render(),
        &[
            ("NOTIFY_SOCKET", &path),
            ("WATCHDOG_USEC", "100000"),
            ("WATCHDOG_PID", "1"),
        ],
    );
    let mut got = Vec::new();
    assert!(
        receive_until(&systemd, &mut got, Duration::from_secs(20), |m| m
            .starts_with(b"READY=1\n")),
        "no READY=1: {:?}",
        texts(&got)
    );
    // Twenty of its 50 ms periods and more: two status lines at least.
    let mut statuses = 0;
    receive_until(&systemd, &mut got, Duration::from_millis(2500), |m| {
        statuses += usize::from(m.starts_with(b"STATUS="));
        false
    });
    assert!(statuses >= 2, "{:?}", texts(&got));
    assert!(
        !got.iter().any(|m| m == b"WATCHDOG=1"),
        "fed another process's watchdog: {:?}",
        texts(&got)
    );
    let exit = d.stop();
    assert_eq!(exit.code, Some(0), "{}", exit.log);
}

/// The fields of one entry in journald's native protocol: `KEY=value\n`,
/// or `KEY\n`, a 64-bit little-endian length, the value and `\n`.
fn journal_fields(entry: &[u8]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = entry;
    while let Some(nl) = rest.iter().position(|b| *b == b'\n') {
        let line = &rest[..nl];
        if let Some(eq) = line.iter().position(|b| *b == b'=') {
            let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
            out.push((text(&line[..eq]), text(&line[eq + 1..])));
            rest = &rest[nl + 1..];
            continue;
        }
        let key = String::from_utf8_lossy(line).into_owned();
        let body = &rest[nl + 1..];
        if body.len() < 8 {
            break;
        }
        let len = u64::from_le_bytes(body[..8].try_into().unwrap()) as usize;
        let value = String::from_utf8_lossy(&body[8..8 + len]).into_owned();
        out.push((key, value));
        rest = &body[(8 + len + 1).min(body.len())..];
    }
    out
}

/// `--log-format journald` writes journal entries with every field: the
/// daemon runs in a mount namespace whose /run/systemd/journal is a
/// directory of this test, where a datagram socket stands in for
/// journald's.
#[test]
fn journald_entries_carry_the_events_fields() {
    if !require_root() {
        return;
    }
    let dir = TempDir::new();
    let journal = dir.path().join("journal");
    std::fs::create_dir(&journal).unwrap();
    let journald = UnixDatagram::bind(journal.join("socket")).unwrap();
    journald
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let socket = dir.path().join("sluice.sock");
    let cfg = dir.path().join("sluice.toml");
    let text = TestConfig::null_port()
        .render()
        .replace("@SOCKET@", socket.to_str().unwrap())
        .replace("@PREFIX@", &format!("sltest{}", unique_id()))
        .replace("@DIR@", dir.path().to_str().unwrap());
    std::fs::write(&cfg, text).unwrap();
    // A private /run (tmpfs) holds the stand-in; nothing outside changes.
    let script = "mount -t tmpfs tmpfs /run && mkdir -p /run/systemd/journal && \
                  mount --bind \"$1\" /run/systemd/journal && \
                  exec \"$2\" --config \"$3\" --log-format journald";
    let log = dir.path().join("sluice.log");
    let child = std::process::Command::new("unshare")
        .args(["-m", "--", "sh", "-c", script, "sh"])
        .arg(&journal)
        .arg(env!("CARGO_BIN_EXE_sluice"))
        .arg(&cfg)
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::fs::File::create(dir.path().join("sluice.err")).unwrap())
        .spawn()
        .expect("unshare");
    let mut daemon = Terminate(child);
    let mut got = Vec::new();
    let running = receive_until(&journald, &mut got, Duration::from_secs(30), |m| {
        m.windows(17).any(|w| w == b"sluice is running")
    });
    let stderr = std::fs::read_to_string(dir.path().join("sluice.err")).unwrap_or_default();
    assert!(
        running,
        "no 'sluice is running' entry: {:?}\n{stderr}",
        texts(&got)
    );
    let entry = journal_fields(got.last().unwrap());
    for (key, value) in [
        ("MESSAGE", "sluice is running"),
        ("PRIORITY", "5"),
        ("SYSLOG_IDENTIFIER", "sluice"),
        ("F_WORKERS", "1"),
        ("F_PORTS", "1"),
    ] {
        assert!(
            entry.iter().any(|(k, v)| k == key && v == value),
            "{key}={value} missing: {entry:?}"
        );
    }
    let o = run(
        &[
            bin("sluicectl").to_str().unwrap(),
            "--socket",
            socket.to_str().unwrap(),
            "shutdown",
        ],
        Duration::from_secs(20),
    );
    assert!(o.status.success(), "{o:?}");
    let done = wait_finished(&mut daemon.0, Duration::from_secs(20), || stderr.clone());
    assert!(done.status.success(), "{}: {stderr}", done.status);
}
