//! The Prometheus/OpenMetrics endpoint of a running daemon: real figures
//! with the right names and labels, both formats, HTTP errors, promtool's
//! approval, and a clean stop.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The metrics endpoint and a service, after the null port.
const SECTIONS: &str = r#"
[metrics]
enabled = true
listen = "127.0.0.1:@METRICS_PORT@"

[[service]]
protocol = "tcp"
vip = "192.0.2.100"
port = 80
scheduler = "rr"
[[service.real]]
ip = "192.0.2.21"
port = 80
forward = "nat"
[[service.real]]
ip = "192.0.2.22"
port = 80
weight = 3
forward = "nat"
"#;

const PROMTOOL: &str = "/usr/bin/promtool";

/// A TCP port free right now on 127.0.0.1.
fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// `curl -s -f` with extra arguments; Some(stdout) on success.
fn curl(args: &[&str], url: &str) -> Option<String> {
    let mut cmd = vec!["curl", "-s", "-f", "--max-time", "20"];
    cmd.extend_from_slice(args);
    cmd.push(url);
    let o = run(&cmd, Duration::from_secs(30));
    o.status
        .success()
        .then(|| String::from_utf8_lossy(&o.stdout).into_owned())
}

/// The HTTP status curl sees (without -f).
fn http_code(args: &[&str], url: &str) -> String {
    let mut cmd = vec![
        "curl",
        "-s",
        "--max-time",
        "20",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
    ];
    cmd.extend_from_slice(args);
    cmd.push(url);
    let o = run(&cmd, Duration::from_secs(30));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The value of the sample whose line starts with `prefix` (name and
/// labels exactly), panicking with the exposition if there is none.
fn value(text: &str, prefix: &str) -> f64 {
    let line = text
        .lines()
        .find(|l| l.starts_with(prefix) && l[prefix.len()..].starts_with(' '))
        .unwrap_or_else(|| panic!("no sample {prefix} in:\n{text}"));
    line[prefix.len()..]
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("bad value in {line:?}: {e}"))
}

fn has_line(text: &str, want: &str) {
    assert!(
        text.lines().any(|l| l == want),
        "missing line {want:?} in:\n{text}"
    );
}

/// Pipes `text` into `promtool check metrics`; panics with its output if
/// it objects.
fn promtool_check(text: &str) {
    let mut child = Command::new("timeout")
        .args(["30", PROMTOOL, "check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(
        o.status.success(),
        "promtool check metrics failed ({}):\n{}{}\n--- exposition ---\n{text}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Sends raw bytes and returns the whole response.
fn raw_http(port: u16, request: &[u8]) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(request).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn metrics_endpoint_serves_real_figures_in_both_formats() {
    if !require_root() {
        return;
    }
    let port = free_port();
    let d = Daemon::start(
        None,
        &TestConfig::null_port()
            .then(SECTIONS)
            .render()
            .replace("@METRICS_PORT@", &port.to_string()),
    );
    let url = format!("http://127.0.0.1:{port}/metrics");

    // The endpoint opens just after the control socket.
    let text = wait_for(Duration::from_secs(20), || curl(&[], &url))
        .unwrap_or_else(|| panic!("no scrape from {url}:\n{}", d.log_text()));

    check_daemon(&text, &d);
    let idle1 = check_worker(&text);
    check_drops_and_table(&text, &d);
    check_port(&text, &d);
    check_service_and_reals(&text);
    check_families_once(&text);

    // Counters move on: the worker keeps polling.
    std::thread::sleep(Duration::from_millis(300));
    let text2 = curl(&[], &url).expect("second scrape");
    let idle2 = value(&text2, &format!("sluice_worker_idle_polls_total{WORKER}"));
    assert!(idle2 > idle1, "idle polls {idle1} then {idle2}");

    // promtool's verdict (scripts/lib/deps.sh installs it: never skipped).
    assert!(
        Path::new(PROMTOOL).exists(),
        "{PROMTOOL} is missing: install the prometheus package (scripts/lib/deps.sh does)"
    );
    promtool_check(&text2);

    check_formats(&url, &text2);
    check_http_errors(port, &url);
    check_stop(d, port);
}

/// The labels of worker 0 on lcore 1.
const WORKER: &str = r#"{worker="0",lcore="1"}"#;
/// The labels of the service.
const SERVICE: &str = r#"protocol="tcp",vip="192.0.2.100",port="80""#;

/// The daemon's own families.
fn check_daemon(text: &str, d: &Daemon) {
    let st = d.ctl_json(&["status"]);
    let version = st["result"]["version"].as_str().unwrap();
    let dpdk = st["result"]["dpdk_version"].as_str().unwrap();

    // The daemon.
    has_line(text, "# TYPE sluice_up gauge");
    has_line(text, "sluice_up 1");
    has_line(text, "# TYPE sluice_info gauge");
    has_line(
        text,
        &format!(r#"sluice_info{{version="{version}",dpdk_version="{dpdk}"}} 1"#),
    );
    // Present with a number (value() panics otherwise).
    value(text, "sluice_uptime_seconds");
}

/// Every worker family, with worker 0's samples; returns its idle polls.
fn check_worker(text: &str) -> f64 {
    let w = WORKER;
    // The worker (worker 0 on lcore 1).
    for name in [
        "sluice_worker_rx_packets_total",
        "sluice_worker_rx_bytes_total",
        "sluice_worker_tx_packets_total",
        "sluice_worker_tx_bytes_total",
        "sluice_worker_busy_polls_total",
        "sluice_worker_idle_polls_total",
        "sluice_worker_arp_requests_answered_total",
        "sluice_worker_arp_replies_learned_total",
        "sluice_worker_icmp_echo_answered_total",
        "sluice_worker_handoff_out_total",
        "sluice_worker_handoff_in_total",
        "sluice_worker_stateless_forwards_total",
        "sluice_worker_held_for_arp_total",
        "sluice_worker_arp_requests_sent_total",
    ] {
        has_line(text, &format!("# TYPE {name} counter"));
        // A sample for this worker, with a number (value() panics otherwise).
        value(text, &format!("{name}{w}"));
    }
    // net_null with no-rx: nothing received, but the worker polls.
    assert_eq!(
        value(text, &format!("sluice_worker_rx_packets_total{w}")),
        0.0
    );
    let idle1 = value(text, &format!("sluice_worker_idle_polls_total{w}"));
    assert!(idle1 > 0.0, "no idle polls counted:\n{text}");
    let ratio = value(text, &format!("sluice_worker_busy_ratio{w}"));
    assert!((0.0..=1.0).contains(&ratio), "busy ratio {ratio}");
    idle1
}

/// Drops by reason and the connection table, against `stats`.
fn check_drops_and_table(text: &str, d: &Daemon) {
    // Drops by reason: every reason the daemon reports, for worker 0.
    has_line(text, "# TYPE sluice_worker_drops_total counter");
    let stats = d.ctl_json(&["stats"]);
    let reasons = stats["result"]["workers"][0]["drops"]
        .as_object()
        .expect("drops")
        .clone();
    assert!(reasons.len() >= 10, "{reasons:?}");
    for reason in reasons.keys() {
        value(
            text,
            &format!(r#"sluice_worker_drops_total{{worker="0",reason="{reason}"}}"#),
        );
    }
    has_line(
        text,
        r#"sluice_worker_drops_total{worker="0",reason="not_for_us"} 0"#,
    );

    // The connection table.
    let cap = num(&stats, "/result/workers/0/conntrack/capacity");
    assert!(cap > 0);
    has_line(
        text,
        &format!(r#"sluice_conntrack_capacity{{worker="0"}} {cap}"#),
    );
    has_line(text, r#"sluice_conntrack_connections{worker="0"} 0"#);
    has_line(text, r#"sluice_conntrack_templates{worker="0"} 0"#);
    for name in [
        "sluice_conntrack_inserts_total",
        "sluice_conntrack_insert_failures_total",
        "sluice_conntrack_expiries_total",
        "sluice_conntrack_removals_total",
    ] {
        has_line(text, &format!("# TYPE {name} counter"));
        has_line(text, &format!(r#"{name}{{worker="0"}} 0"#));
    }
}

/// The port's families, against `status`.
fn check_port(text: &str, d: &Daemon) {
    let st = d.ctl_json(&["status"]);
    let link_up = st["result"]["ports"][0]["link_up"].as_bool().unwrap();
    // The port.
    for name in [
        "sluice_port_rx_packets_total",
        "sluice_port_rx_bytes_total",
        "sluice_port_tx_packets_total",
        "sluice_port_tx_bytes_total",
        "sluice_port_device_ipackets_total",
        "sluice_port_device_opackets_total",
        "sluice_port_device_ibytes_total",
        "sluice_port_device_obytes_total",
        "sluice_port_device_imissed_total",
        "sluice_port_device_ierrors_total",
        "sluice_port_device_oerrors_total",
        "sluice_port_device_rx_nombuf_total",
    ] {
        has_line(text, &format!("# TYPE {name} counter"));
        // A sample for this port, with a number (value() panics otherwise).
        value(text, &format!(r#"{name}{{port="null"}}"#));
    }
    has_line(
        text,
        &format!(r#"sluice_port_link_up{{port="null"}} {}"#, link_up as u8),
    );
}

/// The service's and its two reals' families.
fn check_service_and_reals(text: &str) {
    let svc = SERVICE;
    // The service and its two reals.
    for name in [
        "sluice_service_connections_total",
        "sluice_service_packets_in_total",
        "sluice_service_packets_out_total",
        "sluice_service_bytes_in_total",
        "sluice_service_bytes_out_total",
    ] {
        has_line(text, &format!("# TYPE {name} counter"));
        has_line(text, &format!("{name}{{{svc}}} 0"));
    }
    for real in ["192.0.2.21:80", "192.0.2.22:80"] {
        let l = format!(r#"{{{svc},real="{real}"}}"#);
        for name in [
            "sluice_real_connections_total",
            "sluice_real_packets_in_total",
            "sluice_real_packets_out_total",
            "sluice_real_bytes_in_total",
            "sluice_real_bytes_out_total",
            "sluice_real_active_connections",
            "sluice_real_inactive_connections",
            "sluice_real_overloaded",
        ] {
            has_line(text, &format!("{name}{l} 0"));
        }
    }
    has_line(text, "# TYPE sluice_real_weight gauge");
    has_line(
        text,
        &format!(r#"sluice_real_weight{{{svc},real="192.0.2.21:80"}} 1"#),
    );
    has_line(
        text,
        &format!(r#"sluice_real_weight{{{svc},real="192.0.2.22:80"}} 3"#),
    );
    // Health: these reals have no checks, so they count as up.
    has_line(
        text,
        &format!(r#"sluice_real_up{{{svc},real="192.0.2.21:80"}} 1"#),
    );
    has_line(text, "# TYPE sluice_real_health_transitions_total counter");
}

/// Every family announced once, with HELP and TYPE, before its samples.
fn check_families_once(text: &str) {
    let mut families = std::collections::HashSet::new();
    let mut current = String::new();
    for line in text.lines() {
        if let Some(r) = line.strip_prefix("# HELP ") {
            current = r.split(' ').next().unwrap().to_string();
            assert!(families.insert(current.clone()), "{current} twice");
        } else if let Some(r) = line.strip_prefix("# TYPE ") {
            assert_eq!(r.split(' ').next().unwrap(), current, "{line}");
        } else {
            let name = line.split(['{', ' ']).next().unwrap();
            assert_eq!(name, current, "sample {line:?} outside its family");
        }
    }
}

/// Content types, and OpenMetrics when asked for (as Prometheus asks).
fn check_formats(url: &str, text2: &str) {
    let (w, svc) = (WORKER, SERVICE);
    let ct = |args: &[&str]| {
        let mut a = vec!["-o", "/dev/null", "-w", "%{content_type}"];
        a.extend_from_slice(args);
        curl(&a, url).expect("content type")
    };
    assert_eq!(ct(&[]), "text/plain; version=0.0.4; charset=utf-8");
    let om_accept = "Accept: application/openmetrics-text; version=1.0.0";
    assert_eq!(
        ct(&["-H", om_accept]),
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    let om = curl(&["-H", om_accept], url).expect("OpenMetrics scrape");
    assert!(om.ends_with("# EOF\n"), "no final # EOF:\n{om}");
    has_line(&om, "# TYPE sluice_worker_rx_packets counter");
    has_line(&om, "# TYPE sluice info");
    has_line(
        &om,
        &format!(r#"sluice_service_connections_total{{{svc}}} 0"#),
    );
    assert!(value(&om, &format!("sluice_worker_rx_packets_total{w}")) == 0.0);
    // What Prometheus itself sends.
    let prom_accept = "Accept: application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    assert!(curl(&["-H", prom_accept], url)
        .expect("scrape")
        .ends_with("# EOF\n"));
    assert!(!text2.contains("# EOF"));
}

/// HTTP errors and the index page; the endpoint keeps serving.
fn check_http_errors(port: u16, url: &str) {
    let base = format!("http://127.0.0.1:{port}");
    assert_eq!(http_code(&[], &format!("{base}/nope")), "404");
    assert_eq!(http_code(&["-X", "POST"], url), "405");
    assert_eq!(http_code(&["-I"], url), "200");
    let index = curl(&[], &format!("{base}/")).expect("index");
    assert!(index.contains("/metrics"), "{index}");
    let r = raw_http(port, b"this is not http\r\n\r\n");
    assert!(r.starts_with("HTTP/1.1 400 "), "{r}");
    let mut big = b"GET /metrics HTTP/1.1\r\n".to_vec();
    while big.len() < 10_000 {
        big.extend_from_slice(b"X-Padding: 0123456789012345678901234567890123456789\r\n");
    }
    big.extend_from_slice(b"\r\n");
    let r = raw_http(port, &big);
    assert!(r.starts_with("HTTP/1.1 431 "), "{r}");
    // Still serving.
    assert!(curl(&[], url).expect("scrape").contains("\nsluice_up 1\n"));
}

/// A client that connects and says nothing does not hold up the stop.
fn check_stop(d: Daemon, port: u16) {
    let idle = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let t = Instant::now();
    let exit = d.stop();
    assert_eq!(exit.code, Some(0), "{}", exit.log);
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "stop took {:?}",
        t.elapsed()
    );
    drop(idle);
    assert!(
        exit.log.contains("metrics endpoint listening"),
        "{}",
        exit.log
    );
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the metrics port is still open after the daemon stopped"
    );
}
