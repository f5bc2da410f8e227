//! A spoofed SYN flood (`hping3 -S --flood --rand-source`) at the VIP
//! while a legitimate client makes HTTP requests to nginx reals through
//! it: with the SYN proxy on, the requests succeed, no spoofed SYN reaches
//! a real, no spoofed entry is kept, and every mbuf comes back; left at
//! `auto`, the proxy engages while the flood lasts and lets go after it.

mod common;

use common::capture::{tshark_fields, Capture};
use common::topo::*;
use common::*;
use std::collections::BTreeSet;
use std::process::Stdio;
use std::time::Duration;

/// HTTP/1.0 GETs of /id, one connection each, in sequence, from
/// 192.0.2.10; prints "ok N failed M" and the first errors.
const CLIENT: &str = r#"
import socket, sys
n, ok, errors = int(sys.argv[1]), 0, []
for i in range(n):
    try:
        s = socket.create_connection(("192.0.2.100", 80), timeout=5,
                                     source_address=("192.0.2.10", 0))
        s.sendall(b"GET /id HTTP/1.0\r\nHost: vip\r\n\r\n")
        data = b""
        while True:
            b = s.recv(4096)
            if not b:
                break
            data += b
        s.close()
        if data.startswith(b"HTTP/1.1 200") and b"\r\n\r\nreal-" in data:
            ok += 1
        else:
            errors.append("bad answer %r" % data[:40])
    except OSError as e:
        errors.append(str(e))
print("ok %d failed %d" % (ok, n - ok))
for e in errors[:5]:
    print(e)
"#;

fn service(mode: &str) -> String {
    format!(
        r#"
[[service]]
protocol = "tcp"
vip = "192.0.2.100"
port = 80
scheduler = "rr"
syn_proxy = "{mode}"
[[service.real]]
ip = "198.51.100.11"
port = 8080
[[service.real]]
ip = "198.51.100.12"
port = 8080
[[service.real]]
ip = "198.51.100.13"
port = 8080
"#
    )
}

fn topology() -> LbTopo {
    let mut t = LbTopo::nat(3, 1);
    for i in 0..3 {
        let ip = t.reals[i].ip.clone();
        t.serve_nginx(i, &ip, 8080);
    }
    t
}

/// hping3 flooding the VIP with SYNs from random sources, at low priority
/// (the two cores are shared with the appliance, nginx and the client),
/// for at most `secs`, or until dropped.
fn flood(t: &LbTopo, secs: u32) -> Terminate {
    let child = t
        .client
        .command(&[
            "timeout",
            &secs.to_string(),
            "nice",
            "-n",
            "19",
            "hping3",
            "-q",
            "-S",
            "--flood",
            "--rand-source",
            "-p",
            "80",
            VIP,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("hping3 (apt install hping3)");
    Terminate(child)
}

/// Runs `n` legitimate requests; returns (succeeded, failed, report).
fn requests(t: &LbTopo, n: usize) -> (usize, usize, String) {
    let o = t.client.run(
        &["/usr/bin/python3", "-c", CLIENT, &n.to_string()],
        Duration::from_secs(600),
    );
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    let first = out.lines().next().unwrap_or("");
    let f: Vec<usize> = first
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    assert_eq!(
        f.len(),
        2,
        "client: {out} {}",
        String::from_utf8_lossy(&o.stderr)
    );
    (f[0], f[1], out)
}

fn worker_stat(d: &Daemon, field: &str) -> u64 {
    workers_sum(&d.ctl_json(&["stats"]), field)
}

#[test]
fn a_spoofed_syn_flood_reaches_no_real_and_legitimate_clients_get_through() {
    if !require_root() {
        return;
    }
    let t = topology();
    let d = Daemon::start(Some(&t.lb), &t.config(&[1], None, &service("on")));
    // The appliance learns the reals' MACs.
    let (ok, failed, out) = requests(&t, 6);
    assert_eq!((ok, failed), (6, 0), "{out}");
    let syns_to_reals = "tcp[tcpflags] & tcp-syn != 0 and tcp[tcpflags] & tcp-ack == 0";
    let capture = Capture::start(&t.switch, syns_to_reals, t.dir.path().join("reals.pcapng"));
    let _flood = flood(&t, 300);
    assert!(
        wait_for(Duration::from_secs(20), || {
            (worker_stat(&d, "/syn_cookies_sent") > 10_000).then_some(())
        })
        .is_some(),
        "the flood never got going: {:#}",
        d.ctl_json(&["stats"])
    );
    let (ok, failed, out) = requests(&t, 1000);
    let stats = d.ctl_json(&["stats"]);
    let cookies = workers_sum(&stats, "/syn_cookies_sent");
    // At least 99.9 % of the legitimate requests succeed during the flood.
    assert!(
        failed <= 1,
        "{failed} of 1000 failed during the flood: {out}"
    );
    assert!(ok >= 999);
    // Spoofed connections never got an entry: what the table holds is the
    // legitimate client's.
    let conns = d.ctl_json(&["conn", "list"]);
    let clients: BTreeSet<String> = conns["result"]["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            c["client"]
                .as_str()
                .unwrap()
                .split(':')
                .next()
                .unwrap()
                .to_string()
        })
        .collect();
    assert!(
        clients.iter().all(|c| c == "192.0.2.10"),
        "spoofed entries: {clients:?}"
    );
    assert_eq!(workers_sum(&stats, "/half_open"), 0);
    drop(_flood);
    let file = capture.stop();
    // Every SYN that reached a real came from the legitimate client.
    let sources: BTreeSet<String> = tshark_fields(&file, "tcp.flags.syn == 1", &["ip.src"])
        .into_iter()
        .collect();
    assert_eq!(
        sources,
        BTreeSet::from(["192.0.2.10".to_string()]),
        "SYNs reached the reals from elsewhere"
    );
    let valid = workers_sum(&stats, "/syn_cookies_valid");
    assert!(valid >= 1000, "{valid} valid cookies for 1006 connections");
    println!(
        "flood: {cookies} SYNs answered with cookies during 1000 requests; {ok} succeeded, \
         {failed} failed; {valid} cookies validated, {} invalid",
        workers_sum(&stats, "/syn_cookies_invalid")
    );
    let exit = d.stop();
    assert!(exit.log.contains("every mbuf returned"), "{}", exit.log);
}

#[test]
fn left_at_auto_the_proxy_engages_under_a_flood_and_lets_go_after_it() {
    if !require_root() {
        return;
    }
    let t = topology();
    let extra = format!("[timeouts]\ntcp_syn_recv = 3\n{}", service("auto"));
    let cfg = t
        .config(&[1], None, &extra)
        .replace("[dataplane]\n", "[dataplane]\nsyn_recv_threshold = 200\n");
    assert!(cfg.contains("syn_recv_threshold = 200"), "{cfg}");
    let d = Daemon::start(Some(&t.lb), &cfg);
    let (ok, failed, out) = requests(&t, 6);
    assert_eq!((ok, failed), (6, 0), "{out}");
    assert_eq!(worker_stat(&d, "/syn_proxy_engaged"), 0);
    assert_eq!(
        worker_stat(&d, "/syn_cookies_sent"),
        0,
        "no flood, no cookies"
    );
    let flood = flood(&t, 300);
    assert!(
        wait_for(Duration::from_secs(20), || {
            (worker_stat(&d, "/syn_proxy_engaged") == 1).then_some(())
        })
        .is_some(),
        "never engaged: {:#}",
        d.ctl_json(&["stats"])
    );
    // While the flood lasts -- past the SYN_RECV timeout (3 s) of the
    // entries it made before the proxy engaged, and for at least 10,000
    // SYNs, however fast this machine's hping3 and client are --
    // legitimate requests get through and the half-open entries stay few.
    let engaged = std::time::Instant::now();
    let (mut ok, mut failed, mut out) = (0, 0, String::new());
    // Bounded in time, not in batches: a fast client empties any fixed
    // number of batches before the 5 s have passed.
    while engaged.elapsed() < Duration::from_secs(60) {
        let (o, f, text) = requests(&t, 50);
        (ok, failed) = (ok + o, failed + f);
        if f > 0 {
            out = text;
        }
        if engaged.elapsed() > Duration::from_secs(5)
            && worker_stat(&d, "/syn_cookies_sent") > 10_000
            && ok >= 200
        {
            break;
        }
    }
    assert!(failed == 0, "{failed} of {} failed: {out}", ok + failed);
    let stats = d.ctl_json(&["stats"]);
    assert!(engaged.elapsed() > Duration::from_secs(5), "{stats:#}");
    assert_eq!(workers_sum(&stats, "/syn_proxy_engaged"), 1);
    assert!(workers_sum(&stats, "/half_open") < 400, "{stats:#}");
    assert!(workers_sum(&stats, "/syn_cookies_sent") > 10_000);
    println!(
        "auto: engaged under the flood; {ok} of {} requests succeeded; {} half-open, {} SYN cookies, {} table entries",
        ok + failed,
        workers_sum(&stats, "/half_open"),
        workers_sum(&stats, "/syn_cookies_sent"),
        workers_sum(&stats, "/conntrack/occupancy"),
    );
    drop(flood);
    // After it: the proxy lets go once the half-open entries expire.
    assert!(
        wait_for(Duration::from_secs(30), || {
            (worker_stat(&d, "/syn_proxy_engaged") == 0).then_some(())
        })
        .is_some(),
        "still engaged after the flood: {:#}",
        d.ctl_json(&["stats"])
    );
    let before = worker_stat(&d, "/syn_cookies_sent");
    let (ok2, failed2, out) = requests(&t, 20);
    assert_eq!((ok2, failed2), (20, 0), "{out}");
    assert_eq!(
        worker_stat(&d, "/syn_cookies_sent"),
        before,
        "no cookies once it let go"
    );
    let exit = d.stop();
    assert!(exit.log.contains("every mbuf returned"), "{}", exit.log);
}
