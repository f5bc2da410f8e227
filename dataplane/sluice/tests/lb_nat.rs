//! Load balancing by NAT, end to end: kernel clients in one namespace,
//! Sluice on net_af_packet, three kernel HTTP/UDP/TCP servers behind a
//! bridge whose default route is Sluice.

mod common;

use common::topo::*;
use common::*;
use std::collections::BTreeMap;
use std::time::Duration;

const HTTP_RR: &str = r#"
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

fn count(ids: &[String]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for i in ids {
        *m.entry(i.clone()).or_insert(0) += 1;
    }
    m
}

fn http_nat(workers: &[u32], lcores: Option<&str>, clients: usize) {
    if !require_root() {
        return;
    }
    let mut t = LbTopo::nat(3, clients);
    for i in 0..3 {
        let ip = t.reals[i].ip.clone();
        t.serve(i, "http", &ip, 8080);
    }
    let d = Daemon::start(Some(&t.lb), &t.config(workers, lcores, HTTP_RR));

    // From each client address, 3*k sequential requests: rr is exactly
    // even for each client (each client's flows meet one worker).
    let k = 4;
    for c in 0..clients {
        let src = format!("192.0.2.{}", 10 + c);
        let mut ids = Vec::new();
        for _ in 0..3 * k {
            let body = t.get(&src, "http://192.0.2.100/id").unwrap_or_else(|| {
                panic!(
                    "request from {src} failed:\n{}\n{:#}",
                    d.log_text(),
                    d.ctl_json(&["stats"])
                )
            });
            ids.push(String::from_utf8(body).unwrap());
        }
        let m = count(&ids);
        assert_eq!(m.len(), 3, "{src}: {m:?}");
        assert!(m.values().all(|v| *v == k), "rr not even for {src}: {m:?}");
    }
    // A 256 KiB body arrives intact through NAT.
    let body = t
        .get("192.0.2.10", "http://192.0.2.100/blob")
        .expect("blob");
    assert_eq!(body.len(), blob().len());
    assert!(body == blob(), "blob corrupted through NAT");

    let l = d.ctl_json(&["list"]);
    let svc = &l["result"]["services"][0];
    let total = (clients * 3 * k + 1) as u64;
    assert_eq!(num(svc, "/stats/connections"), total, "{l:#}");
    assert!(num(svc, "/stats/packets_out") > 0);
    let per_real: u64 = (0..3)
        .map(|i| num(svc, &format!("/reals/{i}/stats/connections")))
        .sum();
    assert_eq!(per_real, total);
    // Human table.
    let o = d.ctl(&["list"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("192.0.2.100:80")
            && out.contains("198.51.100.12:8080")
            && out.contains("Masq"),
        "{out}"
    );

    let s = d.ctl_json(&["stats"]);
    if workers.len() > 1 {
        // Traffic landed on both workers, and replies that arrived on the
        // worker not owning the flow were handed over.
        for w in s["result"]["workers"].as_array().unwrap() {
            assert!(
                num(w, "/traffic/rx_packets") > 0,
                "a worker got nothing: {s:#}"
            );
        }
        let handoffs = workers_sum(&s, "/handoff_out");
        assert!(handoffs > 0, "no hand-off with two workers: {s:#}");
        assert_eq!(handoffs, workers_sum(&s, "/handoff_in"));
    }
    assert!(workers_sum(&s, "/conntrack/inserts") >= total);
    assert_eq!(drops(&s, "handoff_full"), 0);
    let exit = d.stop();
    assert_eq!(exit.code, Some(0), "{}", exit.log);
    assert!(exit.log.contains("every mbuf returned"), "{}", exit.log);
}

#[test]
fn nat_http_rr_one_worker() {
    http_nat(&[1], None, 1);
}

#[test]
fn nat_http_rr_two_workers() {
    http_nat(&[1, 2], Some("0@0,1@1,2@0"), 4);
}

fn three_reals(kind: &str, port: u16, workers: &[u32], extra: &str) -> (LbTopo, Daemon) {
    let mut t = LbTopo::nat(3, 2);
    for i in 0..3 {
        let ip = t.reals[i].ip.clone();
        t.serve(i, kind, &ip, port);
    }
    let d = Daemon::start(Some(&t.lb), &t.config(workers, None, extra));
    (t, d)
}

#[test]
fn nat_wrr_follows_weights() {
    if !require_root() {
        return;
    }
    let svc = HTTP_RR
        .replace("scheduler = \"rr\"", "scheduler = \"wrr\"")
        .replace(
            "ip = \"198.51.100.11\"\nport = 8080",
            "ip = \"198.51.100.11\"\nport = 8080\nweight = 3",
        )
        .replace(
            "ip = \"198.51.100.12\"\nport = 8080",
            "ip = \"198.51.100.12\"\nport = 8080\nweight = 2",
        );
    let (t, d) = three_reals("http", 8080, &[1], &svc);
    // Two full wrr cycles (3+2+1 = 6 each).
    let ids: Vec<String> = (0..12)
        .map(|_| {
            String::from_utf8(t.get("192.0.2.10", "http://192.0.2.100/id").expect("get")).unwrap()
        })
        .collect();
    let m = count(&ids);
    assert_eq!(m.get("real-0"), Some(&6), "{m:?}");
    assert_eq!(m.get("real-1"), Some(&4), "{m:?}");
    assert_eq!(m.get("real-2"), Some(&2), "{m:?}");
    drop(d);
}

/// The real sh must pick for `client` among `reals` (all weight 1, all
/// up): the scheduler crate's own answer, with the pipeline's hash.
fn sh_expected(reals: &[&str], client: &str) -> usize {
    use sluice_sched::{
        hash_ipv4, real_identity, Cursor, RealLoad, Schedule, ScheduleConfig, SchedulerKind,
        WeightedReal, DEFAULT_SEED,
    };
    let specs: Vec<WeightedReal> = reals
        .iter()
        .map(|r| {
            let a: std::net::SocketAddrV4 = r.parse().unwrap();
            WeightedReal::new(real_identity((*a.ip()).into(), a.port()), 1)
        })
        .collect();
    let s = Schedule::build(SchedulerKind::Sh, &specs, &ScheduleConfig::default()).unwrap();
    let ip: std::net::Ipv4Addr = client.parse().unwrap();
    let loads = vec![RealLoad::idle(1); reals.len()];
    s.pick(
        &mut Cursor::default(),
        hash_ipv4(DEFAULT_SEED, u32::from(ip), None),
        &loads[..],
    )
    .unwrap()
}

#[test]
fn nat_sh_and_persistence_keep_a_client_on_one_real() {
    if !require_root() {
        return;
    }
    let sh = HTTP_RR.replace("scheduler = \"rr\"", "scheduler = \"sh\"");
    let persist = HTTP_RR.replace("port = 80\n", "port = 81\n").replace(
        "scheduler = \"rr\"",
        "scheduler = \"rr\"\npersistence = { timeout_secs = 300 }",
    );
    let clients = 8;
    let mut t = LbTopo::nat(3, clients);
    for i in 0..3 {
        let ip = t.reals[i].ip.clone();
        t.serve(i, "http", &ip, 8080);
    }
    let d = Daemon::start(
        Some(&t.lb),
        &t.config(&[1], None, &format!("{sh}\n{persist}")),
    );
    let reals = [
        "198.51.100.11:8080",
        "198.51.100.12:8080",
        "198.51.100.13:8080",
    ];
    let ids = |c: &str, port: u16| -> Vec<String> {
        (0..4)
            .map(|_| {
                String::from_utf8(
                    t.get(c, &format!("http://192.0.2.100:{port}/id"))
                        .expect("get"),
                )
                .unwrap()
            })
            .collect()
    };
    // sh: every client always lands on the real the source hash names,
    // and the clients spread over more than one real.
    let mut used = std::collections::BTreeSet::new();
    for c in 0..clients {
        let client = format!("192.0.2.{}", 10 + c);
        let want = format!("real-{}", sh_expected(&reals, &client));
        let got = ids(&client, 80);
        assert!(
            got.iter().all(|g| *g == want),
            "sh: client {client} went to {got:?}, the source hash says {want}"
        );
        used.insert(want);
    }
    assert!(used.len() >= 2, "8 clients all hashed to {used:?}");
    // Persistence over rr: each client stays on its first real.
    for c in ["192.0.2.10", "192.0.2.11"] {
        let m = count(&ids(c, 81));
        assert_eq!(m.len(), 1, "port 81: client {c} moved between reals: {m:?}");
    }
    // The persistence templates are in the table.
    let s = d.ctl_json(&["stats"]);
    assert_eq!(workers_sum(&s, "/conntrack/templates"), 2, "{s:#}");
}

#[test]
fn nat_udp_service() {
    if !require_root() {
        return;
    }
    let svc = r#"
[[service]]
protocol = "udp"
vip = "192.0.2.100"
port = 5353
scheduler = "rr"
[[service.real]]
ip = "198.51.100.11"
port = 5300
[[service.real]]
ip = "198.51.100.12"
port = 5300
[[service.real]]
ip = "198.51.100.13"
port = 5300
"#;
    let (t, d) = three_reals("udp", 5300, &[1], svc);
    let ids = t.client_py(
        &["udp", "192.0.2.100", "5353", "9"],
        Duration::from_secs(60),
    );
    let m = count(&ids);
    assert_eq!(m.len(), 3, "{m:?}");
    assert!(m.values().all(|v| *v == 3), "{m:?}");
    let l = d.ctl_json(&["list"]);
    assert_eq!(num(&l, "/result/services/0/stats/connections"), 9);
    assert_eq!(num(&l, "/result/services/0/stats/packets_out"), 9);
}

#[test]
fn long_lived_connection_survives_real_changes() {
    if !require_root() {
        return;
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
    let (t, d) = three_reals("echo", 9000, &[1], svc);
    let mut long = t.client_py_spawn(&["long", "192.0.2.100", "9000", "60", "0.1"]);
    // Find which real the long connection is on.
    let mine = wait_for(Duration::from_secs(10), || {
        let l = d.ctl_json(&["list"]);
        (0..2).find(|i| num(&l, &format!("/result/services/0/reals/{i}/active")) == 1)
    })
    .expect("long connection not established");
    check_conn_list_filters(&d, mine);
    change_reals_under_it(&t, &d, mine);
    // The long connection finished every echo on its original real.
    let f = wait_finished(&mut long, Duration::from_secs(30), || {
        "long client hung".into()
    });
    assert!(f.status.success(), "long connection failed: {}", f.stderr);
    let out = f.stdout;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 60, "{out}");
    assert!(lines.iter().all(|l| *l == format!("real-{mine}")), "{out}");
}

/// `conn list` shows the long connection on real `mine`, and its filters
/// select it or not.
fn check_conn_list_filters(d: &Daemon, mine: usize) {
    let mine_ip = format!("198.51.100.{}", 11 + mine);
    let other_ip = format!("198.51.100.{}", 12 - mine);
    let c = d.ctl_json(&[
        "conn",
        "list",
        "--state",
        "ESTABLISHED",
        "--client",
        "192.0.2.10",
    ]);
    let conns = c["result"]["connections"].as_array().unwrap();
    assert_eq!(conns.len(), 1, "{c:#}");
    assert_eq!(conns[0]["real"], format!("{mine_ip}:9000"));
    assert_eq!(conns[0]["vip"], "192.0.2.100:9000");
    assert_eq!(conns[0]["forward"], "nat");
    let c = d.ctl_json(&[
        "conn",
        "list",
        "--real",
        &other_ip,
        "--state",
        "ESTABLISHED",
    ]);
    assert_eq!(
        c["result"]["connections"].as_array().unwrap().len(),
        0,
        "{c:#}"
    );
    let o = d.ctl(&["conn", "list", "-t", "192.0.2.100:9000"]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("ESTABLISHED"));
}

/// Adds a third real, quiesces real `mine` (new connections avoid it), then
/// removes the other original real and `mine` (connections kept).
fn change_reals_under_it(t: &LbTopo, d: &Daemon, mine: usize) {
    let mine_ip = format!("198.51.100.{}", 11 + mine);
    let other_ip = format!("198.51.100.{}", 12 - mine);
    let ctl_ok = |args: &[&str]| {
        let o = d.ctl(args);
        assert!(
            o.status.success(),
            "sluicectl {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    ctl_ok(&[
        "real",
        "add",
        "-t",
        "192.0.2.100:9000",
        "-r",
        "198.51.100.13:9000",
        "-m",
    ]);
    ctl_ok(&[
        "real",
        "edit",
        "-t",
        "192.0.2.100:9000",
        "-r",
        &format!("{mine_ip}:9000"),
        "-w",
        "0",
    ]);
    for _ in 0..6 {
        let id = t.client_py(&["once", "192.0.2.100", "9000"], Duration::from_secs(10));
        assert_ne!(
            id[0],
            format!("real-{mine}"),
            "a quiesced real got a new connection"
        );
    }
    // Remove the other original real, then ours (connections kept).
    ctl_ok(&[
        "real",
        "del",
        "-t",
        "192.0.2.100:9000",
        "-r",
        &format!("{other_ip}:9000"),
    ]);
    ctl_ok(&[
        "real",
        "del",
        "-t",
        "192.0.2.100:9000",
        "-r",
        &format!("{mine_ip}:9000"),
    ]);
    let id = t.client_py(&["once", "192.0.2.100", "9000"], Duration::from_secs(10));
    assert_eq!(id[0], "real-2");
}

#[test]
fn runtime_service_changes_and_refusals() {
    if !require_root() {
        return;
    }
    let (t, d) = three_reals("http", 8080, &[1], "");
    assert!(
        t.get("192.0.2.10", "http://192.0.2.100/id").is_none(),
        "no service yet"
    );
    let ok = |args: &[&str]| {
        let o = d.ctl(args);
        assert!(
            o.status.success(),
            "sluicectl {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    ok(&["service", "add", "-t", "192.0.2.100:80", "-s", "rr"]);
    ok(&[
        "real",
        "add",
        "-t",
        "192.0.2.100:80",
        "-r",
        "198.51.100.12:8080",
    ]);
    assert_eq!(
        t.get("192.0.2.10", "http://192.0.2.100/id").as_deref(),
        Some(&b"real-1"[..])
    );
    // An unknown scheduler is a usage error, caught by sluicectl.
    let o = d.ctl(&["service", "add", "-t", "192.0.2.101:80", "-s", "fastest"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown scheduler"));
    // Refusals: unknown service, DR off-segment, duplicate.
    for bad in [
        vec![
            "real",
            "add",
            "-t",
            "192.0.2.199:80",
            "-r",
            "198.51.100.11:8080",
        ],
        vec![
            "real",
            "add",
            "-t",
            "192.0.2.100:80",
            "-r",
            "203.0.113.5:80",
            "-g",
        ],
        vec!["service", "add", "-t", "192.0.2.100:80"],
    ] {
        let o = d.ctl(&bad);
        assert_eq!(o.status.code(), Some(4), "{bad:?} should be refused");
        assert!(!o.stderr.is_empty());
    }
    ok(&["service", "edit", "-t", "192.0.2.100:80", "-s", "wrr"]);
    let l = d.ctl_json(&["service", "list"]);
    assert_eq!(l["result"]["services"][0]["scheduler"], "wrr");
    assert_eq!(
        l["result"]["services"][0]["reals"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    ok(&["service", "del", "-t", "192.0.2.100:80"]);
    assert!(
        t.get("192.0.2.10", "http://192.0.2.100/id").is_none(),
        "service still answers"
    );
    let l = d.ctl_json(&["list"]);
    assert_eq!(l["result"]["services"].as_array().unwrap().len(), 0);
    let exit = d.stop();
    assert_eq!(exit.code, Some(0), "{}", exit.log);
}

#[test]
fn end_policy_ends_a_removed_reals_connections() {
    if !require_root() {
        return;
    }
    let svc = r#"
[[service]]
protocol = "tcp"
vip = "192.0.2.100"
port = 9000
scheduler = "rr"
on_real_removal = "end"
[[service.real]]
ip = "198.51.100.11"
port = 9000
[[service.real]]
ip = "198.51.100.12"
port = 9000
"#;
    let (t, d) = three_reals("echo", 9000, &[1], svc);
    let mut long = t.client_py_spawn(&["long", "192.0.2.100", "9000", "100", "0.1"]);
    let mine = wait_for(Duration::from_secs(10), || {
        let l = d.ctl_json(&["list"]);
        (0..2).find(|i| num(&l, &format!("/result/services/0/reals/{i}/active")) == 1)
    })
    .expect("long connection not established");
    let o = d.ctl(&[
        "real",
        "del",
        "-t",
        "192.0.2.100:9000",
        "-r",
        &format!("198.51.100.{}:9000", 11 + mine),
    ]);
    assert!(o.status.success());
    // The connection is ended at once: the client's next echo gets no
    // answer and it fails well before its 10 s of pings are over.
    let f = wait_finished(&mut long, Duration::from_secs(20), || {
        "ended connection still alive".into()
    });
    assert!(!f.status.success(), "the connection should have been ended");
    let s = d.ctl_json(&["stats"]);
    assert!(
        drops(&s, "real_removed") > 0 || workers_sum(&s, "/conntrack/removals") > 0,
        "{s:#}"
    );
    // The other real still serves new connections.
    let id = t.client_py(&["once", "192.0.2.100", "9000"], Duration::from_secs(10));
    assert_eq!(id[0], format!("real-{}", 1 - mine));
}

#[test]
fn a_new_vip_is_announced_with_gratuitous_arp() {
    if !require_root() {
        return;
    }
    let (t, d) = three_reals("http", 8080, &[1], "");
    t.client.exec(&[
        "sysctl",
        "-qw",
        &format!("net.ipv4.conf.{}.arp_accept=1", t.client_if),
    ]);
    let mac = d.ctl_json(&["status"])["result"]["ports"][0]["mac"]
        .as_str()
        .unwrap()
        .to_string();
    let o = d.ctl(&["service", "add", "-t", "192.0.2.101:80", "-s", "rr"]);
    assert!(o.status.success());
    let seen = wait_for(Duration::from_secs(10), || {
        let n = t.client.exec(&["ip", "neigh", "show", "192.0.2.101"]);
        n.to_lowercase().contains(&mac).then_some(())
    });
    assert!(
        seen.is_some(),
        "the client never learned the new VIP from a gratuitous ARP"
    );
    // So is a new local address (full NAT: replies come to it).
    let o = d.ctl(&[
        "service",
        "edit",
        "-t",
        "192.0.2.101:80",
        "-z",
        "192.0.2.150",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let seen = wait_for(Duration::from_secs(10), || {
        let n = t.client.exec(&["ip", "neigh", "show", "192.0.2.150"]);
        n.to_lowercase().contains(&mac).then_some(())
    });
    assert!(
        seen.is_some(),
        "the client never learned the new local address from a gratuitous ARP"
    );
}

#[test]
fn the_kernel_reaches_the_reals_through_its_interface() {
    if !require_root() {
        return;
    }
    // The servers port has a kernel interface (a DPDK tap carrying
    // 198.51.100.1/24): the appliance's own kernel reaches the reals
    // through the dataplane, as health checks do.
    let (t, d) = three_reals("http", 8080, &[1], HTTP_RR);
    let o = t.lb.run(
        &[
            "curl",
            "-s",
            "-f",
            "--max-time",
            "5",
            "http://198.51.100.12:8080/id",
        ],
        Duration::from_secs(10),
    );
    assert!(
        o.status.success(),
        "kernel curl failed ({}): {}\n{}",
        String::from_utf8_lossy(&o.stderr),
        t.lb.exec(&["ip", "-s", "link"]),
        d.log_text()
    );
    assert_eq!(String::from_utf8_lossy(&o.stdout), "real-1");
    let o = t.lb.run(
        &["ping", "-c", "2", "-i", "0.2", "-W", "2", "198.51.100.13"],
        Duration::from_secs(10),
    );
    assert!(o.status.success(), "kernel ping failed");
    // Load balancing is unaffected.
    assert_eq!(
        t.get("192.0.2.10", "http://192.0.2.100/id")
            .map(|b| b.len()),
        Some(6)
    );
    let exit = d.stop();
    assert_eq!(exit.code, Some(0), "{}", exit.log);
}

const HTTP_AND_UDP: &str = r#"
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

[[service]]
protocol = "udp"
vip = "192.0.2.100"
port = 5353
scheduler = "rr"
[[service.real]]
ip = "198.51.100.11"
port = 5300
[[service.real]]
ip = "198.51.100.12"
port = 5300
[[service.real]]
ip = "198.51.100.13"
port = 5300
"#;

/// Three reals serving HTTP on 8080 and UDP on 5300.
fn serve_http_and_udp(t: &mut LbTopo) {
    for i in 0..3 {
        let ip = t.reals[i].ip.clone();
        t.serve(i, "http", &ip, 8080);
        t.serve(i, "udp", &ip, 5300);
    }
}

#[test]
fn clients_behind_a_router_with_two_workers_over_tcp_and_udp() {
    if !require_root() {
        return;
    }
    // Every real deployment: clients in another network, behind a router;
    // replies leave by the appliance's default gateway. Two workers, four
    // client addresses: flows of both workers, replies handed over.
    let clients = 4;
    let mut t = LbTopo::routed(3, clients, None);
    serve_http_and_udp(&mut t);
    let d = Daemon::start(
        Some(&t.lb),
        &t.config(
            &[1, 2],
            Some("0@0,1@1,2@0"),
            &format!("{ROUTED_GW}\n{HTTP_AND_UDP}"),
        ),
    );
    let tcp = get_from_every_client(&t, &d, clients);
    let udp = datagrams_from_every_client(&t, clients);
    let l = d.ctl_json(&["list"]);
    assert_eq!(
        num(&l, "/result/services/0/stats/connections"),
        tcp,
        "{l:#}"
    );
    assert_eq!(
        num(&l, "/result/services/1/stats/connections"),
        udp,
        "{l:#}"
    );
    assert_eq!(
        num(&l, "/result/services/1/stats/packets_out"),
        udp,
        "{l:#}"
    );
    // (The table's counters are copied out between bursts every 10 ms.)
    let s = wait_for(Duration::from_secs(5), || {
        let s = d.ctl_json(&["stats"]);
        s["result"]["workers"]
            .as_array()
            .unwrap()
            .iter()
            .all(|w| num(w, "/conntrack/inserts") > 0)
            .then_some(s)
    })
    .expect("a worker made no connection");
    assert!(
        workers_sum(&s, "/handoff_out") > 0,
        "no hand-off with two workers: {s:#}"
    );
    assert_eq!(drops(&s, "no_route"), 0, "{s:#}");
    assert_eq!(drops(&s, "not_for_us"), 0, "{s:#}");
    let exit = d.stop();
    assert_eq!(exit.code, Some(0), "{}", exit.log);
}

/// Three GETs from each of `clients` client addresses; returns how many.
fn get_from_every_client(t: &LbTopo, d: &Daemon, clients: usize) -> u64 {
    let mut tcp = 0;
    for c in 0..clients {
        let src = format!("203.0.113.{}", 10 + c);
        for _ in 0..3 {
            let body = t.get(&src, "http://192.0.2.100/id");
            assert!(
                body.is_some(),
                "GET from {src} failed: {:#}",
                d.ctl_json(&["stats"])
            );
            tcp += 1;
        }
    }
    tcp
}

/// Six datagrams from each of `clients` client addresses, each from a new
/// socket, each answered; returns how many.
fn datagrams_from_every_client(t: &LbTopo, clients: usize) -> u64 {
    let mut udp = 0;
    for c in 0..clients {
        let src = format!("203.0.113.{}", 10 + c);
        let code = format!(
            "import socket\nfor i in range(6):\n s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n s.settimeout(3)\n s.bind(('{src}',0))\n s.sendto(b'd%d'%i,('192.0.2.100',5353))\n d,a=s.recvfrom(4096)\n assert a==('192.0.2.100',5353),a\n assert d.endswith(b':d%d'%i),d\n"
        );
        let o = t
            .client
            .run(&["python3", "-c", &code], Duration::from_secs(30));
        assert!(
            o.status.success(),
            "UDP from {src}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        udp += 6;
    }
    udp
}

/// Sends `n` UDP datagrams to the VIP:5353 from `n` new sockets of the
/// client at 192.0.2.10, each answered.
fn udp_flows(t: &LbTopo, n: usize) {
    let ids = t.client_py(
        &["udp", "192.0.2.100", "5353", &n.to_string()],
        Duration::from_secs(120),
    );
    assert_eq!(ids.len(), n);
}

#[test]
fn a_full_table_forwards_without_entries_and_recovers() {
    if !require_root() {
        return;
    }
    let mut t = LbTopo::nat(3, 1);
    serve_http_and_udp(&mut t);
    for i in 0..3 {
        let ip = t.reals[i].ip.clone();
        t.serve(i, "echo", &ip, 9000);
    }
    let echo = "[[service]]\nprotocol = \"tcp\"\nvip = \"192.0.2.100\"\nport = 9000\n\
                scheduler = \"rr\"\n[[service.real]]\nip = \"198.51.100.11\"\nport = 9000\n\
                [[service.real]]\nip = \"198.51.100.12\"\nport = 9000\n";
    let cfg = t
        .config(
            &[1],
            None,
            &format!("[timeouts]\nudp = 20\n{HTTP_AND_UDP}\n{echo}"),
        )
        .replace("connections = 65536", "connections = 1024")
        .replace("scheduler = \"rr\"", "scheduler = \"mh\"");
    let d = Daemon::start(Some(&t.lb), &cfg);
    // Fill the table with UDP flows.
    udp_flows(&t, 1100);
    let s = d.ctl_json(&["stats"]);
    let cap = num(&s, "/result/workers/0/conntrack/capacity");
    let occ = num(&s, "/result/workers/0/conntrack/occupancy");
    assert!(occ * 10 >= cap * 9, "the table is not full: {occ} of {cap}");
    assert!(
        num(&s, "/result/workers/0/conntrack/insert_failures") > 0,
        "{s:#}"
    );
    // New TCP connections still work, forwarded by the consistent hash
    // without an entry, both ways.
    let stateless = workers_sum(&s, "/stateless_forwards");
    for _ in 0..5 {
        let body = t.get("192.0.2.10", "http://192.0.2.100/blob");
        assert!(
            body.as_deref() == Some(&blob()[..]),
            "{:#}",
            d.ctl_json(&["stats"])
        );
    }
    let s = d.ctl_json(&["stats"]);
    assert!(workers_sum(&s, "/stateless_forwards") > stateless, "{s:#}");
    // A long-lived connection opened now, without an entry, must outlive
    // the table draining: 60 echoes half a second apart.
    let mut long = t.client_py_spawn(&["long", "192.0.2.100", "9000", "60", "0.5"]);
    // The UDP flows expire (20 s): the table recovers and new connections
    // get entries again.
    let empty = wait_for(Duration::from_secs(45), || {
        let s = d.ctl_json(&["stats"]);
        (num(&s, "/result/workers/0/conntrack/occupancy") < cap / 2).then_some(s)
    })
    .expect("the UDP flows never expired");
    let inserts = workers_sum(&empty, "/conntrack/inserts");
    let stateless = workers_sum(&empty, "/stateless_forwards");
    for _ in 0..5 {
        assert!(t.get("192.0.2.10", "http://192.0.2.100/id").is_some());
    }
    // (The table's counters are copied out between bursts every 10 ms.)
    let s = wait_for(Duration::from_secs(5), || {
        let s = d.ctl_json(&["stats"]);
        (workers_sum(&s, "/conntrack/inserts") >= inserts + 5).then_some(s)
    })
    .expect("new connections made no entries");
    // Five, and perhaps the long connection's adoption (when it came after
    // the count above was read).
    let made = workers_sum(&s, "/conntrack/inserts") - inserts;
    assert!((5..=6).contains(&made), "{s:#}");
    assert_eq!(workers_sum(&s, "/stateless_forwards"), stateless, "{s:#}");
    // The table-less connection carried on, adopted once there was room.
    let f = wait_finished(&mut long, Duration::from_secs(90), || {
        "long client hung".into()
    });
    assert!(
        f.status.success(),
        "the table-less connection died when the table drained: {}",
        f.stderr
    );
    assert_eq!(f.stdout.lines().count(), 60);
    let s = d.ctl_json(&["stats"]);
    assert!(workers_sum(&s, "/tableless_adopted") >= 1, "{s:#}");
}

#[test]
fn connections_expire_with_short_timeouts_and_the_gauges_return_to_zero() {
    if !require_root() {
        return;
    }
    let mut t = LbTopo::nat(3, 1);
    serve_http_and_udp(&mut t);
    let timeouts = "[timeouts]\nudp = 2\ntcp_time_wait = 2\ntcp_close = 2\ntcp_fin_wait = 2\ntcp_close_wait = 2\ntcp_last_ack = 2\n";
    let d = Daemon::start(
        Some(&t.lb),
        &t.config(&[1], None, &format!("{timeouts}{HTTP_AND_UDP}")),
    );
    for _ in 0..6 {
        assert!(t.get("192.0.2.10", "http://192.0.2.100/id").is_some());
    }
    udp_flows(&t, 6);
    let busy = |l: &serde_json::Value| -> u64 {
        l["result"]["services"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|s| s["reals"].as_array().unwrap().iter())
            .map(|r| num(r, "/active") + num(r, "/inactive"))
            .sum()
    };
    let l = d.ctl_json(&["list"]);
    assert!(busy(&l) >= 6, "connections not counted: {l:#}");
    // Six HTTP connections and six UDP flows; a client port the kernel
    // reuses for a new connection while the old one's entry lingers (TCP
    // after the server's close) makes one entry serve both, so count what
    // was made: all of it is in the table now, and all of it must expire.
    let s = wait_for(Duration::from_secs(5), || {
        let s = d.ctl_json(&["stats"]);
        (num(&s, "/result/workers/0/conntrack/inserts") >= 11).then_some(s)
    })
    .unwrap_or_else(|| panic!("{:#}", d.ctl_json(&["stats"])));
    let made = num(&s, "/result/workers/0/conntrack/inserts");
    assert_eq!(
        num(&s, "/result/workers/0/conntrack/occupancy"),
        made,
        "{s:#}"
    );
    let done = wait_for(Duration::from_secs(20), || {
        let l = d.ctl_json(&["list"]);
        let s = d.ctl_json(&["stats"]);
        (busy(&l) == 0 && num(&s, "/result/workers/0/conntrack/occupancy") == 0).then_some(s)
    })
    .unwrap_or_else(|| {
        panic!(
            "entries or gauges stayed: {:#}\n{:#}",
            d.ctl_json(&["list"]),
            d.ctl_json(&["stats"])
        )
    });
    assert!(
        num(&done, "/result/workers/0/conntrack/expiries") >= made,
        "{done:#}"
    );
    let c = d.ctl_json(&["conn", "list"]);
    assert_eq!(
        c["result"]["connections"].as_array().unwrap().len(),
        0,
        "{c:#}"
    );
}
