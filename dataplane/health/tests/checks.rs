//! One attempt of each check kind against real sockets and processes on
//! 127.0.0.1.

mod common;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use common::*;
use sluice_health::checks;
use sluice_health::{CheckContext, CheckKind, CheckResult, CheckSpec, StatusMatch};

fn ctx(addr: std::net::SocketAddr, timeout_ms: u64) -> CheckContext {
    CheckContext {
        real: addr,
        addr,
        vip: "192.0.2.10:80".parse().unwrap(),
        timeout: Duration::from_millis(timeout_ms),
    }
}

fn run(spec: &CheckSpec, addr: std::net::SocketAddr) -> CheckResult {
    let probe = spec.probe().expect("valid spec");
    checks::run(&probe, &ctx(spec.check_addr(addr), spec.timeout_ms), None)
}

fn http(f: impl FnOnce(&mut CheckSpec)) -> CheckSpec {
    let mut s = CheckSpec::new(CheckKind::Http);
    f(&mut s);
    s
}

/// Reals may be IPv6: the checks reach them the same way, and the HTTP
/// check's default Host header puts the address in brackets.
#[test]
fn ipv6_reals_are_checked() {
    let l = TcpListener::bind("[::1]:0").unwrap();
    let r = run(&CheckSpec::new(CheckKind::Tcp), l.local_addr().unwrap());
    assert!(r.ok, "{r:?}");
    let (addr, seen) = http_server_on(
        "[::1]:0",
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        true,
    );
    let r = run(&http(|_| {}), addr);
    assert!(r.ok, "{r:?}");
    let req = seen.lock().unwrap().concat();
    assert!(
        req.contains(&format!("Host: [::1]:{}\r\n", addr.port())),
        "{req}"
    );
}

#[test]
fn tcp_up_and_refused() {
    let l = TcpListener::bind(local(0)).unwrap();
    let r = run(&CheckSpec::new(CheckKind::Tcp), addr_of(&l));
    assert!(r.ok, "{r:?}");
    assert_eq!(r.detail, "connected");
    let r = run(&CheckSpec::new(CheckKind::Tcp), closed_port());
    assert!(!r.ok);
    assert!(r.detail.contains("refused"), "{}", r.detail);
}

#[test]
fn tcp_port_override() {
    let l = TcpListener::bind(local(0)).unwrap();
    let mut spec = CheckSpec::new(CheckKind::Tcp);
    spec.port = Some(addr_of(&l).port());
    assert!(run(&spec, closed_port()).ok);
}

#[test]
fn http_status_match() {
    let (addr, seen) = http_server("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", true);
    let r = run(&http(|s| s.path = Some("/healthz".into())), addr);
    assert!(r.ok, "{r:?}");
    assert_eq!(r.detail, "HTTP 200");
    let head = seen.lock().unwrap()[0].clone();
    assert!(head.starts_with("GET /healthz HTTP/1.0\r\n"), "{head}");
    assert!(head.contains(&format!("\r\nHost: {addr}\r\n")), "{head}");

    let r = run(&http(|s| s.host = Some("www.example.com".into())), addr);
    assert!(r.ok);
    assert!(seen.lock().unwrap()[1].contains("\r\nHost: www.example.com\r\n"));

    let (addr, _) = http_server("HTTP/1.0 503 Service Unavailable\r\n\r\n", true);
    let r = run(&http(|_| {}), addr);
    assert!(!r.ok);
    assert_eq!(r.detail, "HTTP 503, expected 200");

    let (addr, _) = http_server("HTTP/1.1 302 Found\r\nLocation: /x\r\n\r\n", true);
    assert!(!run(&http(|_| {}), addr).ok);
    let r = run(
        &http(|s| s.expect_status = Some(StatusMatch::parse("200-399").unwrap())),
        addr,
    );
    assert!(r.ok, "{r:?}");
}

#[test]
fn http_body_match_and_mismatch() {
    let (addr, _) = http_server(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nstatus: alive and well\n",
        true,
    );
    let r = run(&http(|s| s.expect_body = Some("alive".into())), addr);
    assert!(r.ok, "{r:?}");
    assert_eq!(r.detail, "HTTP 200, body matched");
    let r = run(&http(|s| s.expect_body = Some("dead".into())), addr);
    assert!(!r.ok);
    assert_eq!(r.detail, "HTTP 200, body does not contain \"dead\"");
}

#[test]
fn http_body_end_by_content_length() {
    // The server keeps the connection open after the body: the check must
    // decide from Content-Length, not wait for the timeout.
    let (addr, _) = http_server("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", false);
    let mut spec = http(|s| s.expect_body = Some("world".into()));
    spec.timeout_ms = 1500;
    let r = run(&spec, addr);
    assert!(!r.ok);
    assert!(r.detail.contains("does not contain"), "{}", r.detail);
    spec.expect_body = Some("ell".into());
    assert!(run(&spec, addr).ok);
}

#[test]
fn http_server_that_never_answers_times_out() {
    let addr = hanging_server();
    let mut spec = http(|_| {});
    spec.timeout_ms = 200;
    let start = Instant::now();
    let r = run(&spec, addr);
    let took = start.elapsed();
    assert!(!r.ok);
    assert!(r.detail.starts_with("timeout after 200 ms"), "{}", r.detail);
    assert!(took >= Duration::from_millis(150), "{took:?}");
    assert!(took < Duration::from_secs(3), "{took:?}");
}

#[test]
fn http_garbage_and_refused() {
    let (addr, _) = http_server("SSH-2.0-OpenSSH_9.0\r\n\r\n", true);
    let r = run(&http(|_| {}), addr);
    assert!(!r.ok);
    assert!(
        r.detail.starts_with("malformed status line"),
        "{}",
        r.detail
    );
    let (addr, _) = http_server("", true);
    let r = run(&http(|_| {}), addr);
    assert_eq!(r.detail, "connection closed without a response");
    assert!(!run(&http(|_| {}), closed_port()).ok);
}

fn udp(send: &str, expect: Option<&str>) -> CheckSpec {
    let mut s = CheckSpec::new(CheckKind::Udp);
    s.send = Some(send.into());
    s.expect = expect.map(Into::into);
    s.timeout_ms = 500;
    s
}

#[test]
fn udp_echo_and_expect() {
    let echo = udp_server(|d| d.to_vec());
    let r = run(&udp("ping\n", None), echo);
    assert!(r.ok, "{r:?}");
    assert_eq!(r.detail, "reply of 5 bytes");
    assert!(run(&udp("ping\n", Some("ing")), echo).ok);
    let r = run(&udp("ping\n", Some("pong")), echo);
    assert!(!r.ok);
    assert!(
        r.detail.contains("does not contain \"pong\""),
        "{}",
        r.detail
    );
    let pong = udp_server(|d| {
        if d == b"ping" {
            b"pong".to_vec()
        } else {
            b"?".to_vec()
        }
    });
    assert!(run(&udp("ping", Some("pong")), pong).ok);
    assert!(!run(&udp("pang", Some("pong")), pong).ok);
}

#[test]
fn udp_against_nothing_fails() {
    // A closed UDP port: ICMP port unreachable, reported at once.
    let port = {
        let s = std::net::UdpSocket::bind(local(0)).unwrap();
        s.local_addr().unwrap().port()
    };
    let r = run(&udp("ping", None), local(port));
    assert!(!r.ok);
    assert!(
        r.detail.contains("refused") || r.detail.contains("timeout"),
        "{}",
        r.detail
    );
    // A socket that swallows datagrams: timeout.
    let silent = std::net::UdpSocket::bind(local(0)).unwrap();
    let addr = silent.local_addr().unwrap();
    let r = run(&udp("ping", None), addr);
    assert!(!r.ok);
    assert!(r.detail.starts_with("timeout after 500 ms"), "{}", r.detail);
}

fn exec(argv: &[&str], timeout_ms: u64) -> CheckSpec {
    let mut s = CheckSpec::new(CheckKind::Exec);
    s.command = Some(argv.iter().map(|a| a.to_string()).collect());
    s.timeout_ms = timeout_ms;
    s
}

#[test]
fn exec_true_false_and_missing() {
    let any = local(80);
    let r = run(&exec(&["true"], 1500), any);
    assert!(r.ok, "{r:?}");
    let r = run(&exec(&["false"], 1500), any);
    assert!(!r.ok);
    assert_eq!(r.detail, "exit status 1");
    let r = run(&exec(&["/nonexistent/sluice-check"], 1500), any);
    assert!(!r.ok);
    assert!(r.detail.starts_with("spawn"), "{}", r.detail);
}

#[test]
fn exec_environment() {
    let mut spec = exec(
        &[
            "/bin/sh",
            "-c",
            r#"test "$SLUICE_REAL_IP" = 127.0.0.1 && test "$SLUICE_REAL_PORT" = 8080 \
               && test "$SLUICE_CHECK_PORT" = 9000 && test "$SLUICE_VIP" = 192.0.2.10 \
               && test "$SLUICE_VPORT" = 80 && test "$SLUICE_TIMEOUT_MS" = 1500"#,
        ],
        1500,
    );
    spec.port = Some(9000);
    let real = local(8080);
    let probe = spec.probe().unwrap();
    let ctx = CheckContext {
        real,
        addr: spec.check_addr(real),
        vip: "192.0.2.10:80".parse().unwrap(),
        timeout: spec.timeout(),
    };
    let r = checks::run(&probe, &ctx, None);
    assert!(r.ok, "{r:?}");
}

#[test]
fn exec_timeout_kills_child() {
    let pidfile = scratch("exec-timeout.pid");
    let spec = exec(
        &[
            "/bin/sh",
            "-c",
            &format!("echo $$ > {}; exec sleep 10", pidfile.display()),
        ],
        200,
    );
    let start = Instant::now();
    let r = run(&spec, local(80));
    let took = start.elapsed();
    assert!(!r.ok);
    assert!(
        r.detail.starts_with("timeout after 200 ms; killed pid"),
        "{}",
        r.detail
    );
    assert!(took < Duration::from_secs(3), "{took:?}");
    let pid = read_pid(&pidfile);
    assert!(r.detail.ends_with(&format!("pid {pid}")), "{}", r.detail);
    assert!(process_gone(pid), "pid {pid} still running");
    let _ = std::fs::remove_file(pidfile);
}

#[test]
fn exec_timeout_kills_process_group() {
    // A shell wrapper whose child would outlive it: the group is killed.
    let pidfile = scratch("exec-group.pid");
    let spec = exec(
        &[
            "/bin/sh",
            "-c",
            &format!("sleep 10 & echo $! > {}; wait", pidfile.display()),
        ],
        300,
    );
    let r = run(&spec, local(80));
    assert!(!r.ok);
    let pid = read_pid(&pidfile);
    assert!(
        wait_until(Duration::from_secs(3), || process_gone(pid)),
        "grandchild {pid} still running"
    );
    let _ = std::fs::remove_file(pidfile);
}
