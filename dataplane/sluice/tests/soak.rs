//! A soak: mixed traffic for a while, with the configuration changing
//! under it, and nothing may leak. Through one NAT appliance (one worker)
//! to three reals:
//!
//! - wrk keeps HTTP/1.1 connections to nginx on VIP:80 (`wlc`, SYN proxy
//!   left at auto) busy;
//! - a second wrk opens a new connection per request to VIP:81, which is
//!   always SYN-proxied;
//! - a UDP client sends datagrams, each from a new port (a new flow), to
//!   VIP:53;
//! - one long-lived TCP connection to an echo service on VIP:7 exchanges a
//!   line every half second;
//! - hping3 sends spoofed SYNs from random sources to VIP:80, 500 a second,
//!   so the proxy engages and lets go by itself;
//! - every second a weight changes, every fifth second the file is
//!   reloaded.
//!
//! Then: wrk saw no socket error and no non-2xx answer, every echo came
//! back, at least 99 % of the datagrams were answered, the daemon's
//! resident memory did not grow after the first third of the run, the
//! table and every gauge go back to empty once the traffic stops, and at
//! shutdown every mbuf is back in the pool.
//!
//! `SLUICE_SOAK_SECS` sets how long the traffic runs (default 40 s, what
//! `scripts/test.sh` runs); `scripts/soak.sh` runs it for 10 minutes.

mod common;

use common::topo::*;
use common::*;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

const SERVICES: &str = r#"
[timeouts]
tcp_syn_recv = 5
tcp_fin_wait = 2
tcp_time_wait = 2
tcp_close = 2
tcp_close_wait = 2
tcp_last_ack = 2
udp = 5

[[service]]
protocol = "tcp"
vip = "192.0.2.100"
port = 80
scheduler = "wlc"
[[service.real]]
ip = "198.51.100.11"
port = 8080
[[service.real]]
ip = "198.51.100.12"
port = 8080
[[service.real]]
ip = "198.51.100.13"
port = 8080

[[service]]
protocol = "tcp"
vip = "192.0.2.100"
port = 81
scheduler = "rr"
syn_proxy = "on"
[[service.real]]
ip = "198.51.100.11"
port = 8080
[[service.real]]
ip = "198.51.100.12"
port = 8080
[[service.real]]
ip = "198.51.100.13"
port = 8080

[[service]]
protocol = "udp"
vip = "192.0.2.100"
port = 53
scheduler = "mh"
[[service.real]]
ip = "198.51.100.11"
port = 5353
[[service.real]]
ip = "198.51.100.12"
port = 5353
[[service.real]]
ip = "198.51.100.13"
port = 5353

[[service]]
protocol = "tcp"
vip = "192.0.2.100"
port = 7
scheduler = "lc"
[[service.real]]
ip = "198.51.100.11"
port = 7007
[[service.real]]
ip = "198.51.100.12"
port = 7007
[[service.real]]
ip = "198.51.100.13"
port = 7007
"#;

/// For SECS seconds, a datagram at a time, each from a new socket, to
/// VIP:53; prints "sent N answered M".
const UDP_CLIENT: &str = r#"
import socket, sys, time
end = time.time() + float(sys.argv[1])
sent = answered = 0
while time.time() < end:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2)
    sent += 1
    msg = b"q%d" % sent
    try:
        s.sendto(msg, ("192.0.2.100", 53))
        data, _ = s.recvfrom(4096)
        if data.endswith(b":" + msg):
            answered += 1
    except OSError:
        pass
    s.close()
    time.sleep(0.005)
print("sent %d answered %d" % (sent, answered))
"#;

fn soak_secs() -> u64 {
    std::env::var("SLUICE_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(40)
}

/// The daemon's resident memory, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .expect("VmRSS")
}

fn spawn(t: &LbTopo, args: &[&str]) -> Child {
    t.client
        .command(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

/// The drops by reason that are not 0, and the ports' counters: what a
/// failure report needs.
fn losses(stats: &serde_json::Value) -> String {
    let mut out = Vec::new();
    for w in stats["result"]["workers"].as_array().expect("workers") {
        for (k, v) in w["drops"].as_object().expect("drops") {
            if v.as_u64() != Some(0) {
                out.push(format!("{k} {v}"));
            }
        }
    }
    format!(
        "drops: {}; ports: {}",
        out.join(", "),
        stats["result"]["ports"]
    )
}

/// wrk's request count, having checked it saw no error.
fn wrk_requests(name: &str, w: &Finished, stats: &serde_json::Value) -> u64 {
    let why = || format!("{name}: {}\n{}", w.stdout, losses(stats));
    assert!(w.status.success(), "{}{}", why(), w.stderr);
    assert!(!w.stdout.contains("Socket errors"), "{}", why());
    assert!(!w.stdout.contains("Non-2xx"), "{}", why());
    w.stdout
        .lines()
        .find(|l| l.contains("requests in"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{name}: no request count: {}", w.stdout))
}

#[test]
fn mixed_traffic_with_changes_leaks_nothing() {
    if !require_root() {
        return;
    }
    let secs = soak_secs();
    let mut t = LbTopo::nat(3, 1);
    for i in 0..3 {
        let ip = t.reals[i].ip.clone();
        t.serve_nginx(i, &ip, 8080);
        t.serve(i, "udp", &ip, 5353);
        t.serve(i, "echo", &ip, 7007);
    }
    let d = Daemon::start(Some(&t.lb), &t.config(&[1], None, SERVICES));
    assert!(t.get("192.0.2.10", "http://192.0.2.100/id").is_some());
    assert!(t.get("192.0.2.10", "http://192.0.2.100:81/id").is_some());

    let d_s = format!("{secs}s");
    let limit = (secs + 60).to_string();
    let mut wrk = spawn(
        &t,
        &[
            "timeout",
            &limit,
            "wrk",
            "-t1",
            "-c8",
            "-d",
            &d_s,
            "http://192.0.2.100/id",
        ],
    );
    let mut wrk_new = spawn(
        &t,
        &[
            "timeout",
            &limit,
            "wrk",
            "-t1",
            "-c4",
            "-d",
            &d_s,
            "-H",
            "Connection: close",
            "http://192.0.2.100:81/id",
        ],
    );
    let mut udp = spawn(
        &t,
        &[
            "timeout",
            &limit,
            "python3",
            "-c",
            UDP_CLIENT,
            &secs.to_string(),
        ],
    );
    let script = t.dir.path().join("client.py");
    let echoes = secs * 2;
    let mut echo = spawn(
        &t,
        &[
            "timeout",
            &limit,
            "python3",
            script.to_str().unwrap(),
            "long",
            "192.0.2.100",
            "7",
            &echoes.to_string(),
            "0.5",
        ],
    );
    let flood = Terminate(spawn(
        &t,
        &[
            "timeout",
            &secs.to_string(),
            "nice",
            "-n",
            "19",
            "hping3",
            "-q",
            "-S",
            "-i",
            "u2000",
            "--rand-source",
            "-p",
            "80",
            "192.0.2.100",
        ],
    ));

    // The churn, and the resident memory after the first third.
    let start = Instant::now();
    let mut rss = Vec::new();
    let mut changes = 0u64;
    let mut engaged_seen = false;
    while start.elapsed() < Duration::from_secs(secs) {
        std::thread::sleep(Duration::from_secs(1));
        changes += 1;
        let o = if changes.is_multiple_of(5) {
            d.ctl(&["reload"])
        } else {
            let w = (changes % 4 + 1).to_string();
            d.ctl(&[
                "real",
                "edit",
                "-t",
                "192.0.2.100:80",
                "-r",
                "198.51.100.11:8080",
                "-w",
                &w,
            ])
        };
        assert!(
            o.status.success(),
            "change {changes}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let stats = d.ctl_json(&["stats"]);
        engaged_seen |= workers_sum(&stats, "/syn_proxy_engaged") == 1;
        if start.elapsed() >= Duration::from_secs(secs / 3) {
            rss.push(rss_kib(d.pid()));
        }
    }
    drop(flood);

    let w = wait_finished(&mut wrk, Duration::from_secs(90), || "wrk hung".into());
    let w_new = wait_finished(&mut wrk_new, Duration::from_secs(90), || "wrk hung".into());
    let after = d.ctl_json(&["stats"]);
    let kept = wrk_requests("wrk (keep-alive)", &w, &after);
    let fresh = wrk_requests("wrk (a connection per request)", &w_new, &after);
    let u = wait_finished(&mut udp, Duration::from_secs(90), || {
        "udp client hung".into()
    });
    let n: Vec<u64> = u
        .stdout
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    assert_eq!(n.len(), 2, "udp client: {}{}", u.stdout, u.stderr);
    let (sent, answered) = (n[0], n[1]);
    assert!(answered * 100 >= sent * 99, "udp: {}", u.stdout);
    let e = wait_finished(&mut echo, Duration::from_secs(90), || "echo hung".into());
    assert!(e.status.success(), "echo connection: {}", e.stderr);
    assert_eq!(e.stdout.lines().count() as u64, echoes, "{}", e.stdout);

    let (first, last) = (rss[0], *rss.last().unwrap());
    let max = *rss.iter().max().unwrap();
    let stats = d.ctl_json(&["stats"]);
    let cookies = workers_sum(&stats, "/syn_cookies_sent");
    let proxied = workers_sum(&stats, "/syn_proxy_handshakes");
    println!(
        "soak {secs} s: wrk {kept} keep-alive requests, {fresh} on new proxied connections; \
         {answered}/{sent} datagrams answered; {echoes} echoes; {changes} changes; \
         {cookies} SYN cookies, {proxied} proxied handshakes, proxy engaged at auto: {engaged_seen}; \
         resident memory after a third {first} KiB, at the end {last} KiB, at most {max} KiB"
    );
    assert!(proxied >= fresh, "every request to :81 was proxied");
    // Resident memory may settle (pages of the pool and the table touched
    // for the first time) but not keep growing: at most 1 MiB more than
    // after the first third.
    assert!(max <= first + 1024, "resident memory grew: {rss:?}");

    // Once the traffic stops, the table empties and the gauges fall to 0.
    let settled = wait_for(Duration::from_secs(30), || {
        let s = d.ctl_json(&["stats"]);
        let occupancy = workers_sum(&s, "/conntrack/occupancy");
        let half_open = workers_sum(&s, "/half_open");
        (occupancy == 0 && half_open == 0).then_some(())
    });
    assert!(
        settled.is_some(),
        "the table did not empty: {:#}",
        d.ctl_json(&["stats"])
    );
    let list = d.ctl_json(&["list"]);
    for svc in list["result"]["services"].as_array().expect("services") {
        for r in svc["reals"].as_array().expect("reals") {
            assert_eq!((num(r, "/active"), num(r, "/inactive")), (0, 0), "{svc:#}");
        }
    }
    let exit = d.stop();
    assert_eq!(exit.code, Some(0), "{}", exit.log);
    assert!(exit.log.contains("every mbuf returned"), "{}", exit.log);
}
