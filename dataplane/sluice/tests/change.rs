//! Behaviour at the moment of change, end to end: an operator's change is
//! in force for the very next connection after `sluicectl` returns, edits
//! change only what they say, a client that reuses its port is scheduled
//! afresh as IPVS does (`conn_reuse_mode = 1`), and path MTU discovery
//! works through NAT for clients behind a router.

mod common;

use common::topo::*;
use common::*;
use std::collections::BTreeMap;
use std::time::Duration;

const ECHO: &str = r#"
[[service]]
protocol = "tcp"
vip = "192.0.2.100"
port = 9000
scheduler = "wrr"
[[service.real]]
ip = "198.51.100.11"
port = 9000
weight = 3
[[service.real]]
ip = "198.51.100.12"
port = 9000
[[service.real]]
ip = "198.51.100.13"
port = 9000
"#;

fn ok(d: &Daemon, args: &[&str]) -> String {
    let o = d.ctl(args);
    assert!(
        o.status.success(),
        "sluicectl {args:?}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn echo_topology(
    workers: &[u32],
    lcores: Option<&str>,
    clients: usize,
    extra: &str,
) -> (LbTopo, Daemon) {
    let mut t = LbTopo::nat(3, clients);
    for i in 0..3 {
        let ip = t.reals[i].ip.clone();
        t.serve(i, "echo", &ip, 9000);
    }
    let d = Daemon::start(Some(&t.lb), &t.config(workers, lcores, extra));
    (t, d)
}

/// `n` connections at once from the client addresses 192.0.2.10.. (of
/// `clients`), fired the moment `change` returns; the real that answered
/// each.
fn burst_after(
    t: &LbTopo,
    n: usize,
    clients: usize,
    change: impl FnOnce(),
) -> BTreeMap<String, usize> {
    let srcs: Vec<String> = (0..clients)
        .map(|i| format!("192.0.2.{}", 10 + i))
        .collect();
    let m = t.burst_after("192.0.2.100", 9000, n, &srcs, change);
    assert!(
        !m.keys().any(|k| k.starts_with("error")),
        "connections failed: {m:?}"
    );
    assert_eq!(m.values().sum::<usize>(), n, "{m:?}");
    m
}

#[test]
fn weight_changes_apply_to_the_very_next_connections() {
    if !require_root() {
        return;
    }
    // Two workers, four client addresses: connections land on both.
    let (t, d) = echo_topology(&[1, 2], Some("0@0,1@1,2@0"), 4, ECHO);
    let edit = |w: &str| {
        ok(
            &d,
            &[
                "real",
                "edit",
                "-t",
                "192.0.2.100:9000",
                "-r",
                "198.51.100.11:9000",
                "-w",
                w,
            ],
        );
    };
    let before = burst_after(&t, 30, 4, || {});
    assert!(before.get("real-0").copied().unwrap_or(0) > 0, "{before:?}");
    for round in 0..3 {
        // Quiesce the heaviest real; the next 50 connections, sent at once
        // the moment sluicectl returns, must all avoid it.
        let m = burst_after(&t, 50, 4, || edit("0"));
        assert_eq!(
            m.get("real-0"),
            None,
            "round {round}: a quiesced real got new connections: {m:?}"
        );
        // Weight 3 again: the very next connections include it.
        let m = burst_after(&t, 50, 4, || edit("3"));
        assert!(
            m.get("real-0").copied().unwrap_or(0) > 0,
            "round {round}: a real given weight 3 got nothing: {m:?}"
        );
    }
    // Drain and undrain take effect at once too.
    let m = burst_after(&t, 50, 4, || {
        ok(
            &d,
            &[
                "real",
                "drain",
                "-t",
                "192.0.2.100:9000",
                "-r",
                "198.51.100.11:9000",
                "--deadline",
                "60s",
            ],
        );
    });
    assert_eq!(
        m.get("real-0"),
        None,
        "a draining real got new connections: {m:?}"
    );
    let m = burst_after(&t, 50, 4, || edit("3"));
    assert!(m.get("real-0").copied().unwrap_or(0) > 0, "{m:?}");
}

/// The configuration `save` prints, as lines.
fn saved(d: &Daemon) -> Vec<String> {
    ok(d, &["save"]).lines().map(str::to_string).collect()
}

/// The lines that differ between two saves of the same length.
fn changed_lines(a: &[String], b: &[String]) -> Vec<(String, String)> {
    assert_eq!(a.len(), b.len(), "{a:#?}\n{b:#?}");
    a.iter()
        .zip(b)
        .filter(|(x, y)| x != y)
        .map(|(x, y)| (x.clone(), y.clone()))
        .collect()
}

/// A service with a check, an agent, persistence and policies, and a DR
/// real with thresholds and its own check.
const EDITABLE: &str = r#"
[[service]]
protocol = "tcp"
vip = "192.0.2.100"
port = 80
scheduler = "wlc"
persistence = { timeout_secs = 120, netmask = 32 }
on_real_removal = "end"
on_real_down = "end"
check = { kind = "exec", command = ["/bin/true"], interval_ms = 60000 }

[[service.real]]
ip = "192.0.2.21"
port = 80
weight = 4
forward = "dr"
upper_threshold = 100
lower_threshold = 50
check = { kind = "exec", command = ["/bin/true"], interval_ms = 60000 }

[[service.real]]
ip = "192.0.2.22"
port = 80
"#;

#[test]
fn edits_change_only_the_fields_given() {
    if !require_root() {
        return;
    }
    // No traffic needed: a daemon on net_null with a DR real that has
    // thresholds and its own check, and a service with a check, an agent,
    // persistence and policies.
    let cfg = TestConfig::null_port().then(EDITABLE).render();
    let d = Daemon::start(None, &cfg);
    let s0 = saved(&d);
    ok(
        &d,
        &[
            "real",
            "edit",
            "-t",
            "192.0.2.100:80",
            "-r",
            "192.0.2.21:80",
            "-w",
            "0",
        ],
    );
    let s1 = saved(&d);
    assert_eq!(
        changed_lines(&s0, &s1),
        vec![("weight = 4".into(), "weight = 0".into())],
        "real edit -w 0 changed more than the weight"
    );
    ok(
        &d,
        &[
            "real",
            "edit",
            "-t",
            "192.0.2.100:80",
            "-r",
            "192.0.2.21:80",
            "-x",
            "200",
        ],
    );
    let s2 = saved(&d);
    assert_eq!(
        changed_lines(&s1, &s2),
        vec![(
            "upper_threshold = 100".into(),
            "upper_threshold = 200".into()
        )]
    );
    ok(&d, &["service", "edit", "-t", "192.0.2.100:80", "-s", "rr"]);
    let s3 = saved(&d);
    assert_eq!(
        changed_lines(&s2, &s3),
        vec![(r#"scheduler = "wlc""#.into(), r#"scheduler = "rr""#.into())],
        "service edit -s rr changed more than the scheduler"
    );
    // Persistence off is a change of its own.
    ok(
        &d,
        &["service", "edit", "-t", "192.0.2.100:80", "--no-persistent"],
    );
    let s4 = ok(&d, &["save"]);
    assert!(!s4.contains("persistence"), "{s4}");
    assert!(
        s4.contains("on_real_down = \"end\"") && s4.contains("/bin/true"),
        "{s4}"
    );
    // An edit that says nothing is refused by sluicectl.
    let o = d.ctl(&[
        "real",
        "edit",
        "-t",
        "192.0.2.100:80",
        "-r",
        "192.0.2.21:80",
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("nothing to change"));
}

/// One connection from `src`:`sport`; the real that answered (its
/// number). It is reset on close (the port can be reused at once, the
/// balancer's entry is in CLOSE), or with `graceful` closed the usual way
/// (the entry is in TIME_WAIT; the client namespace needs tcp_tw_reuse to
/// use the port again, a second later).
fn from_port(t: &LbTopo, src: &str, sport: u16, graceful: bool) -> usize {
    let mut args = vec!["from", "192.0.2.100", "9000", src];
    let sport = sport.to_string();
    args.push(&sport);
    if graceful {
        args.push("graceful");
    }
    let id = t.client_py(&args, Duration::from_secs(20))[0].clone();
    id.trim_start_matches("real-")
        .parse()
        .unwrap_or_else(|_| panic!("not a real's answer: {id}"))
}

/// `sluicectl real edit -t VIP:9000 -r 198.51.100.(11+i):9000 -w w`.
fn set_weight(d: &Daemon, i: usize, w: u32) {
    let rip = format!("198.51.100.{}:9000", 11 + i);
    let w = w.to_string();
    ok(
        d,
        &[
            "real",
            "edit",
            "-t",
            "192.0.2.100:9000",
            "-r",
            &rip,
            "-w",
            &w,
        ],
    );
}

const RR_CHECKED: &str = r#"
[[service]]
protocol = "tcp"
vip = "192.0.2.100"
port = 9000
scheduler = "rr"
check = { kind = "tcp", interval_ms = 200, timeout_ms = 150, rise = 1, fall = 1 }
[[service.real]]
ip = "198.51.100.11"
port = 9000
[[service.real]]
ip = "198.51.100.12"
port = 9000
"#;

#[test]
fn a_client_reusing_its_port_is_scheduled_afresh() {
    if !require_root() {
        return;
    }
    let (mut t, d) = echo_topology(&[1], None, 1, RR_CHECKED);
    let state = |i: usize| {
        let l = d.ctl_json(&["list"]);
        l["result"]["services"][0]["reals"][i]["health"].clone()
    };
    let up = wait_for(Duration::from_secs(20), || {
        (0..2).all(|i| state(i)["state"] == "up").then_some(())
    });
    assert!(up.is_some(), "reals never came up");
    let src = "192.0.2.10";
    t.client.exec(&["sysctl", "-qw", "net.ipv4.tcp_tw_reuse=1"]);

    // Quiesced, the old entry in CLOSE: the reused port must not go back
    // to it (3 times).
    let i = from_port(&t, src, 45000, false);
    set_weight(&d, i, 0);
    for n in 0..3 {
        assert_eq!(
            from_port(&t, src, 45000, false),
            1 - i,
            "reconnection {n} went to the quiesced real"
        );
    }
    set_weight(&d, i, 1);

    // Quiesced, the old entry in TIME_WAIT: the same.
    let i = from_port(&t, src, 45010, true);
    let tw = wait_for(Duration::from_secs(5), || {
        let c = d.ctl_json(&["conn", "list", "--client", src, "--state", "TIME_WAIT"]);
        (!c["result"]["connections"].as_array().unwrap().is_empty()).then_some(())
    });
    assert!(tw.is_some(), "the graceful close left no TIME_WAIT entry");
    set_weight(&d, i, 0);
    for n in 0..2 {
        std::thread::sleep(Duration::from_millis(1100));
        assert_eq!(
            from_port(&t, src, 45010, true),
            1 - i,
            "reconnection {n} after TIME_WAIT went to the quiesced real"
        );
    }
    set_weight(&d, i, 1);

    // Down (its server stopped, its check failing): the same.
    let j = from_port(&t, src, 45001, false);
    t.stop_servers(j);
    let down = wait_for(Duration::from_secs(20), || {
        (state(j)["available"] == false).then_some(())
    });
    assert!(down.is_some(), "the stopped real was never marked down");
    for n in 0..2 {
        assert_eq!(
            from_port(&t, src, 45001, false),
            1 - j,
            "reconnection {n} went to the real that is down"
        );
    }
    let ip = t.reals[j].ip.clone();
    t.serve(j, "echo", &ip, 9000);
    let back = wait_for(Duration::from_secs(20), || {
        (state(j)["available"] == true).then_some(())
    });
    assert!(back.is_some(), "the restarted real never came back");

    // Removed (its connections kept): the same.
    let k = from_port(&t, src, 45002, false);
    let rip = format!("198.51.100.{}:9000", 11 + k);
    ok(&d, &["real", "del", "-t", "192.0.2.100:9000", "-r", &rip]);
    assert_eq!(from_port(&t, src, 45002, false), 1 - k);
    let s = d.ctl_json(&["stats"]);
    assert_eq!(drops(&s, "real_removed"), 0, "{s:#}");
}

#[test]
fn path_mtu_discovery_works_through_nat_for_clients_behind_a_router() {
    if !require_root() {
        return;
    }
    // The router's link to the clients has an MTU of 1400; the clients
    // and the reals have 1500. A 256 KiB reply only arrives if the
    // router's "fragmentation needed" (sent to the VIP) reaches the real.
    let mut t = LbTopo::routed(3, 1, Some(1400));
    for i in 0..3 {
        let ip = t.reals[i].ip.clone();
        t.serve(i, "http", &ip, 8080);
    }
    let svc = r#"
[[service]]
protocol = "tcp"
vip = "192.0.2.100"
port = 80
scheduler = "rr"
[[service.real]]
ip = "198.51.100.11"
port = 8080
[[service.real]]
ip = "198.51.100.12"
port = 8080
[[service.real]]
ip = "198.51.100.13"
port = 8080
"#;
    let d = Daemon::start(
        Some(&t.lb),
        &t.config(&[1], None, &format!("{ROUTED}\n{svc}")),
    );
    for n in 0..3 {
        let body = t.get("203.0.113.10", "http://192.0.2.100/blob");
        assert!(
            body.as_deref() == Some(&blob()[..]),
            "transfer {n} through the 1400-byte link failed ({} bytes): {:#}",
            body.map(|b| b.len()).unwrap_or(0),
            d.ctl_json(&["stats"])
        );
    }
    // Every real learned the smaller path MTU towards the client.
    for r in &t.reals {
        let route = r.ns.exec(&["ip", "route", "get", "203.0.113.10"]);
        assert!(route.contains("mtu 1400"), "{}: {route}", r.ip);
    }
}
