//! Health and load, end to end: Sluice's own active checks (through its
//! kernel interface), server agents, passive detection and drains, against
//! real servers in namespaces.

mod common;

use common::topo::*;
use common::*;
use std::collections::BTreeMap;
use std::time::Duration;

fn service(check: &str, extra: &str) -> String {
    format!(
        r#"
[[service]]
protocol = "tcp"
vip = "192.0.2.100"
port = 80
scheduler = "rr"
{check}
{extra}
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

/// A real's health state, reported "up" or "down" only once the flag the
/// schedulers read agrees (the control thread applies check results every
/// 100 ms, so the two can differ for that long).
fn real_state(d: &Daemon, i: usize) -> String {
    let l = d.ctl_json(&["list"]);
    let h = &l["result"]["services"][0]["reals"][i]["health"];
    let s = h["state"].as_str().unwrap_or("").to_string();
    match (s.as_str(), h["available"] == true) {
        ("up", false) => "up-pending".into(),
        ("down", true) => "down-pending".into(),
        _ => s,
    }
}

fn ids(t: &LbTopo, n: usize) -> (BTreeMap<String, usize>, usize) {
    let mut m = BTreeMap::new();
    let mut failed = 0;
    for _ in 0..n {
        match t.get("192.0.2.10", "http://192.0.2.100/id") {
            Some(b) => *m.entry(String::from_utf8(b).unwrap()).or_insert(0) += 1,
            None => failed += 1,
        }
    }
    (m, failed)
}

#[test]
fn a_failed_nginx_is_taken_out_and_comes_back() {
    if !require_root() {
        return;
    }
    let mut t = LbTopo::nat(3, 1);
    for i in 0..3 {
        let ip = t.reals[i].ip.clone();
        t.serve_nginx(i, &ip, 8080);
    }
    let check = r#"check = { kind = "http", path = "/id", interval_ms = 300, timeout_ms = 250, rise = 2, fall = 2 }"#;
    let d = Daemon::start(Some(&t.lb), &t.config(&[1], None, &service(check, "")));
    assert!(
        wait_for(Duration::from_secs(20), || (0..3)
            .all(|i| real_state(&d, i) == "up")
            .then_some(()))
        .is_some(),
        "reals never came up: {:#}",
        d.ctl_json(&["list"])
    );
    let (m, failed) = ids(&t, 9);
    assert_eq!((m.len(), failed), (3, 0), "{m:?}");

    stop_real_1_under_traffic(&mut t, &d);

    // Start it again: it comes back and gets traffic.
    let ip = t.reals[1].ip.clone();
    t.serve_nginx(1, &ip, 8080);
    assert!(
        wait_for(Duration::from_secs(20), || (real_state(&d, 1) == "up")
            .then_some(()))
        .is_some(),
        "the restarted real never came back"
    );
    let (m, failed) = ids(&t, 9);
    assert_eq!(failed, 0);
    assert_eq!(m.get("real-1"), Some(&3), "{m:?}");
    // The latency of its checks is reported.
    let h = d.ctl_json(&["health"]);
    assert!(
        h["result"]["services"][0]["reals"][0]["health"]["latency_ewma_ms"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    let o = d.ctl(&["health"]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("http"));
    let exit = d.stop();
    assert_eq!(exit.code, Some(0), "{}", exit.log);
    assert!(
        exit.log.contains("real down") && exit.log.contains("real up"),
        "{}",
        exit.log
    );
}

/// Stops real 1's nginx while a client keeps sending requests: it is
/// marked down, and after that no request fails and none goes to it.
fn stop_real_1_under_traffic(t: &mut LbTopo, d: &Daemon) {
    t.stop_servers(1);
    let mut during_failed = 0;
    let detected = wait_for(Duration::from_secs(20), || {
        if t.get("192.0.2.10", "http://192.0.2.100/id").is_none() {
            during_failed += 1;
        }
        (real_state(d, 1) == "down").then_some(())
    });
    assert!(
        detected.is_some(),
        "the stopped real was never marked down: {:#}",
        d.ctl_json(&["health", "--json"])
    );
    eprintln!("requests failed inside the detection window: {during_failed}");
    // After the detection window: no request fails, none goes to real 1.
    let (m, failed) = ids(t, 30);
    assert_eq!(failed, 0, "requests failed after detection: {m:?}");
    assert!(
        !m.contains_key("real-1"),
        "a down real got new connections: {m:?}"
    );
    assert_eq!(m.values().sum::<usize>(), 30);
    let h = d.ctl_json(&["health"]);
    let r1 = &h["result"]["services"][0]["reals"][1]["health"];
    assert_eq!(r1["last_ok"], false, "{r1:#}");
    assert!(r1["transitions"].as_u64().unwrap() >= 1);
    assert!(r1["last_detail"].as_str().unwrap().len() > 3);
}

#[test]
fn an_agent_at_50_percent_halves_the_share_and_drain_stops_new_connections() {
    if !require_root() {
        return;
    }
    let mut t = LbTopo::nat(3, 1);
    for i in 0..3 {
        let ip = t.reals[i].ip.clone();
        t.serve(i, "http", &ip, 8080);
    }
    let agent0 = t.serve_agent(0, 9999, "50%\n");
    t.serve_agent(1, 9999, "up 100%\n");
    t.serve_agent(2, 9999, "ready\n");
    let svc = service(
        "agent = { port = 9999, interval_ms = 300, timeout_ms = 250 }",
        "",
    )
    .replace("scheduler = \"rr\"", "scheduler = \"wrr\"")
    .replace("port = 8080\n", "port = 8080\nweight = 2\n");
    let d = Daemon::start(Some(&t.lb), &t.config(&[1], None, &svc));
    let eff = |i: usize| {
        let l = d.ctl_json(&["list"]);
        l["result"]["services"][0]["reals"][i]["health"]["effective_weight"]
            .as_u64()
            .unwrap_or(99)
    };
    assert!(
        wait_for(Duration::from_secs(20), || (eff(0) == 1 && eff(1) == 2)
            .then_some(()))
        .is_some(),
        "agent weight never applied: {:#}",
        d.ctl_json(&["health", "--json"])
    );
    // wrr over effective weights 1:2:2, four full cycles.
    let (m, failed) = ids(&t, 20);
    assert_eq!(failed, 0);
    assert_eq!(m.get("real-0"), Some(&4), "{m:?}");
    assert_eq!(m.get("real-1"), Some(&8), "{m:?}");
    assert_eq!(m.get("real-2"), Some(&8), "{m:?}");
    // Garbage from the agent is ignored: the weight stays.
    std::fs::write(&agent0, "banana 12 ?\n").unwrap();
    assert!(
        wait_for(Duration::from_secs(20), || {
            let h = d.ctl_json(&["health"]);
            h["result"]["services"][0]["reals"][0]["health"]["agent_error"]
                .is_string()
                .then_some(())
        })
        .is_some(),
        "garbage not reported"
    );
    assert_eq!(eff(0), 1);
    // drain: no new connections.
    std::fs::write(&agent0, "drain\n").unwrap();
    assert!(wait_for(Duration::from_secs(20), || (eff(0) == 0).then_some(())).is_some());
    let (m, failed) = ids(&t, 12);
    assert_eq!(failed, 0);
    assert!(
        !m.contains_key("real-0"),
        "a draining real got new connections: {m:?}"
    );
}

#[test]
fn passive_detection_marks_a_real_that_drops_syns() {
    if !require_root() {
        return;
    }
    let mut t = LbTopo::nat(3, 1);
    for i in 0..3 {
        let ip = t.reals[i].ip.clone();
        t.serve(i, "http", &ip, 8080);
    }
    let timeouts = "[timeouts]\ntcp_syn_recv = 2\n";
    let passive = "passive_health = { max_held_out_percent = 50 }";
    let d = Daemon::start(
        Some(&t.lb),
        &t.config(&[1], None, &format!("{timeouts}\n{}", service("", passive))),
    );
    // Every real answers once (the appliance learns their MACs).
    let (m, _) = ids(&t, 3);
    assert_eq!(m.len(), 3);
    // Real 2 silently drops everything from now on.
    let ifname = t.reals[2].ns.exec(&[
        "sh",
        "-c",
        "ip -o link | awk -F': ' '/@/ {print $2}' | cut -d@ -f1",
    ]);
    t.reals[2]
        .ns
        .exec(&["ip", "link", "set", "dev", ifname.trim(), "down"]);
    // A burst of connections: a third of the SYNs go unanswered.
    let mut kids: Vec<std::process::Child> = (0..15)
        .map(|_| {
            t.client
                .command(&[
                    "curl",
                    "-s",
                    "-o",
                    "/dev/null",
                    "--max-time",
                    "4",
                    "http://192.0.2.100/id",
                ])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    let suspect = wait_for(Duration::from_secs(30), || {
        (real_state(&d, 2) == "suspect").then_some(())
    });
    for k in kids.iter_mut() {
        let _ = k.kill();
        let _ = k.wait();
    }
    assert!(
        suspect.is_some(),
        "never suspect: {:#}",
        d.ctl_json(&["health", "--json"])
    );
    let h = d.ctl_json(&["health"]);
    let r2 = &h["result"]["services"][0]["reals"][2]["health"];
    assert!(r2["syn_timeouts"].as_u64().unwrap() >= 3, "{r2:#}");
    assert!(r2["suspect_for_secs"].is_u64());
    assert_eq!(r2["available"], false);
    // While suspect it gets no new connection.
    let (m, failed) = ids(&t, 6);
    assert_eq!(failed, 0, "{m:?}");
    assert!(!m.contains_key("real-2"));
    // Real 1 fails too, but half of three reals is one: it stays in
    // service (the detection is more likely wrong than two reals).
    let ifname = t.reals[1].ns.exec(&[
        "sh",
        "-c",
        "ip -o link | awk -F': ' '/@/ {print $2}' | cut -d@ -f1",
    ]);
    t.reals[1]
        .ns
        .exec(&["ip", "link", "set", "dev", ifname.trim(), "down"]);
    // Bursts until a failing real is kept in service: two of three reals
    // fail now, and whichever is held out, the other must stay in.
    let mut kids: Vec<std::process::Child> = Vec::new();
    let kept = wait_for(Duration::from_secs(40), || {
        for _ in 0..6 {
            let k = t
                .client
                .command(&[
                    "curl",
                    "-s",
                    "-o",
                    "/dev/null",
                    "--max-time",
                    "2",
                    "http://192.0.2.100/id",
                ])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap();
            kids.push(k);
        }
        std::thread::sleep(Duration::from_millis(500));
        let states = (real_state(&d, 1), real_state(&d, 2));
        assert!(
            !(states.0 == "suspect" && states.1 == "suspect"),
            "two of three reals held out with a 50 % share"
        );
        d.log_text()
            .contains("share of held-out reals is reached")
            .then_some(())
    });
    for k in kids.iter_mut() {
        let _ = k.kill();
        let _ = k.wait();
    }
    assert!(kept.is_some(), "{}", d.log_text());
}

/// Spoofed SYNs with bad checksums and forged ACKs that make the reals
/// answer with resets: with passive detection on, every real stays in
/// service and every legitimate request succeeds.
#[test]
fn forged_syns_and_acks_take_no_real_out_of_service() {
    if !require_root() {
        return;
    }
    let mut t = LbTopo::nat(3, 1);
    for i in 0..3 {
        let ip = t.reals[i].ip.clone();
        t.serve(i, "http", &ip, 8080);
    }
    let timeouts = "[timeouts]\ntcp_syn_recv = 2\n";
    let passive = "passive_health = { max_held_out_percent = 100 }";
    let d = Daemon::start(
        Some(&t.lb),
        &t.config(&[1], None, &format!("{timeouts}\n{}", service("", passive))),
    );
    let (m, _) = ids(&t, 3);
    assert_eq!(m.len(), 3);
    let st = d.ctl_json(&["status"]);
    let mac = st["result"]["ports"][0]["mac"]
        .as_str()
        .unwrap()
        .to_string();
    // 8 s of attack: per round, 4 SYNs with a bad checksum and 5 SYN +
    // wrong-ACK pairs, each from a spoofed client-segment address.
    let attack = format!(
        r#"
import random, time
from scapy.all import Ether, IP, TCP, sendp, conf
conf.verb = 0
end = time.time() + 8
while time.time() < end:
    frames = []
    for i in range(4):
        src = "192.0.2.%d" % random.randint(150, 199)
        frames.append(Ether(dst="{mac}", src="02:00:00:00:00:0b") / IP(src=src, dst="192.0.2.100") /
                      TCP(sport=random.randint(1024, 65000), dport=80, flags="S", chksum=0x1234))
    for i in range(5):
        src = "192.0.2.%d" % random.randint(150, 199)
        sport = random.randint(1024, 65000)
        ip = IP(src=src, dst="192.0.2.100")
        frames.append(Ether(dst="{mac}", src="02:00:00:00:00:0b") / ip / TCP(sport=sport, dport=80, flags="S", seq=1000))
        frames.append(Ether(dst="{mac}", src="02:00:00:00:00:0b") / ip / TCP(sport=sport, dport=80, flags="A", seq=1001, ack=random.randint(1, 2**31)))
    sendp(frames, iface="{iface}")
    time.sleep(0.05)
"#,
        iface = t.client_if
    );
    let mut attacker = t
        .client
        .command(&["timeout", "60", "/usr/bin/python3", "-c", &attack])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3-scapy");
    std::thread::sleep(Duration::from_secs(1));
    let (m, failed) = ids(&t, 30);
    let fin = wait_finished(&mut attacker, Duration::from_secs(60), || {
        "attacker hung".into()
    });
    assert!(fin.status.success(), "the attack failed: {}", fin.stderr);
    assert_eq!(
        failed, 0,
        "legitimate requests failed during the attack: {m:?}"
    );
    assert_eq!(m.len(), 3, "{m:?}");
    // Past the SYN_RECV timeout of the last forged connection.
    std::thread::sleep(Duration::from_secs(4));
    let stats = d.ctl_json(&["stats"]);
    assert!(drops(&stats, "bad_l4_checksum") >= 40, "{stats:#}");
    let h = d.ctl_json(&["health"]);
    for i in 0..3 {
        let r = &h["result"]["services"][0]["reals"][i]["health"];
        assert_eq!(r["available"], true, "real {i}: {r:#}");
        assert_eq!(r["syn_timeouts"], 0, "real {i}: {r:#}");
        assert_eq!(r["resets"], 0, "real {i}: {r:#}");
        assert_ne!(real_state(&d, i), "suspect");
    }
    let (m, failed) = ids(&t, 6);
    assert_eq!((failed, m.len()), (0, 3), "{m:?}");
}

#[test]
fn drain_with_a_deadline_ends_connections_at_the_deadline() {
    if !require_root() {
        return;
    }
    let mut t = LbTopo::nat(3, 1);
    for i in 0..2 {
        let ip = t.reals[i].ip.clone();
        t.serve(i, "echo", &ip, 9000);
    }
    let svc = r#"
[[service]]
protocol = "tcp"
vip = "192.0.2.100"
port = 9000
scheduler = "rr"
[[service.real]]
ip = "198.51.100.11"
port = 9000
[[service.real]]
ip = "198.51.100.12"
port = 9000
"#;
    let d = Daemon::start(Some(&t.lb), &t.config(&[1], None, svc));
    // 100 echoes 0.1 s apart: 10 s if left alone.
    let mut long = t.client_py_spawn(&["long", "192.0.2.100", "9000", "100", "0.1"]);
    let mine = wait_for(Duration::from_secs(10), || {
        let l = d.ctl_json(&["list"]);
        (0..2).find(|i| num(&l, &format!("/result/services/0/reals/{i}/active")) == 1)
    })
    .expect("long connection not established");
    let o = d.ctl(&[
        "real",
        "drain",
        "-t",
        "192.0.2.100:9000",
        "-r",
        &format!("198.51.100.{}:9000", 11 + mine),
        "--deadline",
        "3s",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // Draining: no new connections to it, the old one still there.
    for _ in 0..4 {
        let id = t.client_py(&["once", "192.0.2.100", "9000"], Duration::from_secs(10));
        assert_eq!(id[0], format!("real-{}", 1 - mine));
    }
    let l = d.ctl_json(&["list"]);
    let r = &l["result"]["services"][0]["reals"][mine];
    assert_eq!(r["active"], 1, "{r:#}");
    assert_eq!(r["health"]["state"], "drain");
    assert!(r["health"]["drain_deadline_secs"].as_u64().unwrap() <= 3);
    // The long connection ends at the deadline, not before: it got about
    // 3 s of echoes after the drain (30 at 0.1 s), and fails long before
    // its 10 s are over.
    let f = wait_finished(&mut long, Duration::from_secs(30), || {
        "drained connection still alive".into()
    });
    let out = f.stdout;
    assert!(!f.status.success(), "the connection should have been ended");
    let echoes = out.lines().count();
    assert!((20..100).contains(&echoes), "{echoes} echoes: {out}");
    assert!(wait_for(Duration::from_secs(10), || {
        let l = d.ctl_json(&["list"]);
        (num(&l, &format!("/result/services/0/reals/{mine}/active")) == 0).then_some(())
    })
    .is_some());
}

#[test]
fn a_hanging_check_blocks_nothing() {
    if !require_root() {
        return;
    }
    let mut t = LbTopo::nat(3, 1);
    for i in 0..3 {
        let ip = t.reals[i].ip.clone();
        t.serve(i, "http", &ip, 8080);
    }
    // The service checks its reals by TCP; real 0 has its own check, a
    // command that hangs (and is killed at its timeout).
    let svc = service(r#"check = { kind = "tcp", interval_ms = 200, timeout_ms = 150 }"#, "").replacen(
        "ip = \"198.51.100.11\"\nport = 8080\n",
        "ip = \"198.51.100.11\"\nport = 8080\ncheck = { kind = \"exec\", command = [\"sleep\", \"30\"], interval_ms = 500, timeout_ms = 300, fall = 1 }\n",
        1,
    );
    let d = Daemon::start(Some(&t.lb), &t.config(&[1], None, &svc));
    let checks = |i: usize| {
        let l = d.ctl_json(&["health"]);
        num(&l, &format!("/result/services/0/reals/{i}/health/checks"))
    };
    assert!(
        wait_for(Duration::from_secs(20), || (real_state_of(&d, 0, 0)
            == "down")
            .then_some(()))
        .is_some(),
        "{:#}",
        d.ctl_json(&["health"])
    );
    let h = d.ctl_json(&["health"]);
    assert_eq!(
        h["result"]["services"][0]["reals"][0]["health"]["check"],
        "exec"
    );
    assert_eq!(
        h["result"]["services"][0]["reals"][1]["health"]["check"],
        "tcp"
    );
    let a = checks(1);
    std::thread::sleep(Duration::from_secs(2));
    let b = checks(1);
    assert!(
        b > a + 3,
        "tcp checks stalled behind a hanging one: {a} -> {b}"
    );
    assert_eq!(real_state_of(&d, 0, 1), "up");
    // The control socket answers throughout.
    let st = d.ctl_json(&["status"]);
    assert_eq!(st["ok"], true);
    // The healthy reals still take every request.
    let (m, failed) = ids(&t, 6);
    assert_eq!(failed, 0);
    assert!(!m.contains_key("real-0"), "{m:?}");
}

fn real_state_of(d: &Daemon, s: usize, i: usize) -> String {
    let l = d.ctl_json(&["list"]);
    l["result"]["services"][s]["reals"][i]["health"]["state"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

#[test]
fn on_real_down_end_ends_a_failed_reals_connections() {
    if !require_root() {
        return;
    }
    // The check looks at port 9001, the service at 9000: stopping a real's
    // check listener fails it while its echo server keeps answering, so
    // only the load balancer can end the connection.
    let mut t = LbTopo::nat(2, 1);
    for i in 0..2 {
        let ip = t.reals[i].ip.clone();
        t.serve(i, "echo", &ip, 9000);
        t.serve(i, "echo", &ip, 9001);
    }
    let svc = r#"
[[service]]
protocol = "tcp"
vip = "192.0.2.100"
port = 9000
scheduler = "rr"
on_real_down = "end"
check = { kind = "tcp", port = 9001, interval_ms = 200, timeout_ms = 150, rise = 1, fall = 1 }
[[service.real]]
ip = "198.51.100.11"
port = 9000
[[service.real]]
ip = "198.51.100.12"
port = 9000
"#;
    let d = Daemon::start(Some(&t.lb), &t.config(&[1], None, svc));
    assert!(
        wait_for(Duration::from_secs(20), || (0..2)
            .all(|i| real_state(&d, i) == "up")
            .then_some(()))
        .is_some(),
        "reals never came up"
    );
    let mut long = t.client_py_spawn(&["long", "192.0.2.100", "9000", "200", "0.1"]);
    let mine = wait_for(Duration::from_secs(10), || {
        let l = d.ctl_json(&["list"]);
        (0..2).find(|i| num(&l, &format!("/result/services/0/reals/{i}/active")) == 1)
    })
    .expect("long connection not established");
    // Its real's check listener (the last process started there) stops.
    t.reals[mine].procs.pop();
    assert!(
        wait_for(Duration::from_secs(20), || (real_state(&d, mine) == "down")
            .then_some(()))
        .is_some(),
        "the real was never marked down"
    );
    // The connection is ended: the client's next echo goes unanswered and
    // it fails long before its 20 s of pings are over.
    let f = wait_finished(&mut long, Duration::from_secs(15), || {
        format!(
            "the connection of a real found down was not ended: {:#}",
            d.ctl_json(&["list"])
        )
    });
    assert!(!f.status.success(), "the connection should have been ended");
    let l = d.ctl_json(&["list"]);
    let r = &l["result"]["services"][0]["reals"][mine];
    assert_eq!((num(r, "/active"), num(r, "/inactive")), (0, 0), "{l:#}");
    // New connections go to the other real.
    for _ in 0..3 {
        let id = t.client_py(&["once", "192.0.2.100", "9000"], Duration::from_secs(10));
        assert_eq!(id[0], format!("real-{}", 1 - mine));
    }
}
