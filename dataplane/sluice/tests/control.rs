//! The control socket and sluicectl: valid JSON out, clear errors for a
//! stopped daemon, and a daemon that keeps serving whatever clients send.

mod common;

use common::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::time::Duration;

fn exchange(s: &mut UnixStream, line: &[u8]) -> serde_json::Value {
    s.write_all(line).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut buf = String::new();
    r.read_line(&mut buf).unwrap();
    serde_json::from_str(&buf).unwrap_or_else(|e| panic!("reply is not JSON ({e}): {buf:?}"))
}

fn connect(d: &Daemon) -> UnixStream {
    let s = UnixStream::connect(&d.socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s
}

#[test]
fn status_and_stats_are_json_and_socket_is_private() {
    if !require_root() {
        return;
    }
    let d = Daemon::start(None, &TestConfig::null_port().render());
    let mode = std::fs::metadata(&d.socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "socket mode {mode:o}");
    let st = d.ctl_json(&["status"]);
    assert_eq!(st["ok"], true);
    assert_eq!(st["version"], sluice_proto::PROTOCOL_VERSION);
    assert_eq!(st["result"]["kind"], "status");
    assert!(st["result"]["dpdk_version"]
        .as_str()
        .unwrap()
        .contains("22.11"));
    assert_eq!(st["result"]["ports"][0]["name"], "null");
    assert_eq!(st["result"]["ports"][0]["driver"], "net_null");
    assert_eq!(st["result"]["workers"][0]["lcore"], 1);
    assert_eq!(st["result"]["control_lcore"], 0);
    let s = d.ctl_json(&["stats"]);
    assert_eq!(s["result"]["kind"], "stats");
    assert!(s["result"]["workers"][0]["drops"]["not_for_us"].is_u64());
    // Human tables.
    let o = d.ctl(&["status"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success());
    assert!(
        out.contains("net_null") && out.contains("192.0.2.1/24"),
        "{out}"
    );
    let exit = d.stop();
    assert_eq!(exit.code, Some(0), "{}", exit.log);
}

#[test]
fn bad_requests_get_error_replies_and_the_daemon_keeps_serving() {
    if !require_root() {
        return;
    }
    let d = Daemon::start(None, &TestConfig::null_port().render());

    let mut s = connect(&d);
    let r = exchange(&mut s, b"this is not json\n");
    assert_eq!(r["ok"], false);
    assert_eq!(r["error"]["code"], "bad_request");
    // Same connection, still usable.
    let r = exchange(
        &mut s,
        b"{\"version\":7,\"request\":{\"cmd\":\"status\"}}\n",
    );
    assert_eq!(r["error"]["code"], "unsupported_version");
    let r = exchange(
        &mut s,
        b"{\"version\":2,\"request\":{\"cmd\":\"launch_rockets\"}}\n",
    );
    assert_eq!(r["error"]["code"], "bad_request");
    let r = exchange(&mut s, b"{\"version\":2}\n");
    assert_eq!(r["error"]["code"], "bad_request");
    let r = exchange(
        &mut s,
        b"{\"version\":2,\"request\":{\"cmd\":\"status\"}}\n",
    );
    assert_eq!(r["ok"], true);

    oversized_and_half_closed_requests(&d);
    // A client that connects and goes away without a word.
    drop(connect(&d));

    many_clients_at_once(&d);

    let st = d.ctl_json(&["status"]);
    assert_eq!(st["ok"], true);
    let exit = d.stop();
    assert_eq!(exit.code, Some(0), "{}", exit.log);
}

/// An oversized request gets an error reply, then the connection is
/// closed; a request cut short by the end of the stream still gets its
/// reply.
fn oversized_and_half_closed_requests(d: &Daemon) {
    // Oversized: an error reply, then the connection is closed.
    let mut s = connect(d);
    let big = vec![b'x'; 2 * 1024 * 1024];
    // The daemon stops reading after the limit, replies and closes: the
    // rest of the write may fail with a broken pipe.
    let _ = s.write_all(&big);
    let _ = s.write_all(b"\n");
    let mut buf = String::new();
    BufReader::new(s.try_clone().unwrap())
        .read_line(&mut buf)
        .unwrap();
    let r: serde_json::Value = serde_json::from_str(&buf).unwrap();
    assert_eq!(r["error"]["code"], "too_large");

    // Half-closed: a request without newline, then end of stream, still
    // gets its reply.
    let mut s = connect(d);
    s.write_all(b"{\"version\":2,\"request\":{\"cmd\":\"stats\"}}")
        .unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).unwrap();
    let r: serde_json::Value = serde_json::from_str(buf.trim()).unwrap();
    assert_eq!(r["result"]["kind"], "stats");
}

/// Eight clients at once, twenty requests each.
fn many_clients_at_once(d: &Daemon) {
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let path = d.socket.clone();
            std::thread::spawn(move || {
                let mut s = UnixStream::connect(path).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                for _ in 0..20 {
                    let r = exchange(
                        &mut s,
                        b"{\"version\":2,\"request\":{\"cmd\":\"status\"}}\n",
                    );
                    assert_eq!(r["ok"], true);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

#[test]
fn sluicectl_without_a_daemon_fails_clearly() {
    let dir = TempDir::new();
    let sock = dir.path().join("none.sock");
    let o = run(
        &[
            bin("sluicectl").to_str().unwrap(),
            "--socket",
            sock.to_str().unwrap(),
            "status",
        ],
        Duration::from_secs(10),
    );
    assert_eq!(o.status.code(), Some(3));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("cannot reach sluice") && err.contains("is sluice running"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");

    // A stale socket file (nobody listening).
    let l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    drop(l);
    let o = run(
        &[
            bin("sluicectl").to_str().unwrap(),
            "--socket",
            sock.to_str().unwrap(),
            "stats",
            "--json",
        ],
        Duration::from_secs(10),
    );
    assert_eq!(o.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not running"));

    // A usage error.
    let o = run(
        &[bin("sluicectl").to_str().unwrap(), "frobnicate"],
        Duration::from_secs(10),
    );
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn bad_config_is_refused_with_its_location() {
    let dir = TempDir::new();
    let cfg = dir.path().join("bad.toml");
    std::fs::write(
        &cfg,
        TestConfig::null_port()
            .render()
            .replace("@PREFIX@", "x")
            .replace("@SOCKET@", "/tmp/x.sock")
            .replace("192.0.2.1/24", "192.0.2.300/24"),
    )
    .unwrap();
    let sluice = env!("CARGO_BIN_EXE_sluice");
    let o = run(
        &[sluice, "--config", cfg.to_str().unwrap()],
        Duration::from_secs(10),
    );
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("bad.toml")
            && err.contains("port[0].addresses[0]")
            && err.contains("192.0.2.300"),
        "{err}"
    );
    std::fs::write(&cfg, "[dataplane]\nworkers = [1]\nbogus = 3\n").unwrap();
    let o = run(
        &[sluice, "--config", cfg.to_str().unwrap()],
        Duration::from_secs(10),
    );
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("line 3, column 1") && err.contains("bogus"),
        "{err}"
    );
    let o = run(
        &[sluice, "--config", "/nonexistent/sluice.toml"],
        Duration::from_secs(10),
    );
    assert_eq!(o.status.code(), Some(2));
    // --check validates and shows the EAL arguments without starting.
    std::fs::write(
        &cfg,
        TestConfig::null_port()
            .render()
            .replace("@PREFIX@", "x")
            .replace("@SOCKET@", "/tmp/x.sock"),
    )
    .unwrap();
    let o = run(
        &[sluice, "--config", cfg.to_str().unwrap(), "--check"],
        Duration::from_secs(10),
    );
    assert!(o.status.success());
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(out.contains("--vdev net_null0,no-rx=1"), "{out}");
    assert!(out.contains("machine ready"), "{out}");
    // It checks the machine too: a port on an interface that does not
    // exist is named with what to do, and the exit status says not ready.
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(
        &cfg,
        text.replace("net_null0,no-rx=1", "net_af_packet0,iface=sluice-nosuch"),
    )
    .unwrap();
    let o = run(
        &[sluice, "--config", cfg.to_str().unwrap(), "--check"],
        Duration::from_secs(10),
    );
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains("FAIL  port ")
            && out.contains("interface sluice-nosuch, which does not exist"),
        "{out}"
    );
    assert!(out.contains("machine not ready: 1 to fix"), "{out}");
}
