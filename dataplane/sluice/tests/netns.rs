//! End-to-end tests of the foundation on a real topology: a kernel host in
//! one network namespace, `sluice` on net_af_packet attached to a veth in
//! another. The kernel host resolves the appliance with ARP and pings it;
//! the counters must match exactly what was sent.

mod common;

use common::*;
use std::time::Duration;

struct Topo {
    lb: Netns,
    client: Netns,
    lb_if: String,
    client_if: String,
}

fn topo() -> Topo {
    let lb = Netns::new("lb");
    let client = Netns::new("cl");
    let id = unique_id();
    let (lb_if, client_if) = (format!("l{id}"), format!("c{id}"));
    veth(&lb, &lb_if, &client, &client_if);
    client.exec(&["ip", "addr", "add", "192.0.2.10/24", "dev", &client_if]);
    Topo {
        lb,
        client,
        lb_if,
        client_if,
    }
}

fn config(lb_if: &str, workers: &[u32], lcores: Option<&str>) -> TestConfig {
    TestConfig::new()
        .memory_mb(256)
        .workers(workers)
        .lcores(lcores)
        .idle_sleep_us(200)
        .port(
            "client",
            &format!("net_af_packet0,iface={lb_if}"),
            &["192.0.2.1/24", "192.0.2.2/24"],
        )
}

/// Count of "N packets received" in arping's summary.
fn arping_received(out: &str) -> u64 {
    out.lines()
        .find_map(|l| {
            let l = l.trim();
            let idx = l.find(" packets received")?;
            let head = &l[..idx];
            head.rsplit(|c: char| !c.is_ascii_digit())
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

fn ping_received(out: &str) -> u64 {
    out.lines()
        .find_map(|l| {
            let i = l.find(" received")?;
            l[..i].rsplit(' ').next()?.parse().ok()
        })
        .unwrap_or(0)
}

fn arp_and_ping(workers: &[u32], lcores: Option<&str>) {
    if !require_root() {
        return;
    }
    let t = topo();
    let d = Daemon::start(Some(&t.lb), &config(&t.lb_if, workers, lcores).render());
    let mac = check_status(&d, workers.len());
    arp_both_addresses(&t, &mac);
    ping_with_static_neighbours(&t, &mac);
    check_every_packet_accounted_for(&d);
    // Human-readable output works too.
    let o = d.ctl(&["stats"]);
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains("arp_not_for_us"));

    let exit = d.stop();
    assert_eq!(exit.code, Some(0), "{}", exit.log);
    assert!(
        exit.log.contains("every mbuf returned to the pool"),
        "{}",
        exit.log
    );
}

/// The port and workers `status` reports; returns the port's MAC.
fn check_status(d: &Daemon, workers: usize) -> String {
    let status = d.ctl_json(&["status"]);
    let port = &status["result"]["ports"][0];
    assert_eq!(port["driver"], "net_af_packet");
    assert_eq!(port["addresses"][0], "192.0.2.1/24");
    assert_eq!(port["rx_queues"].as_u64(), Some(workers as u64));
    assert_eq!(
        status["result"]["workers"].as_array().unwrap().len(),
        workers
    );
    let mac = port["mac"].as_str().unwrap().to_string();

    mac
}

/// Three ARP requests for each of the appliance's addresses, answered with
/// its MAC; two for another address, unanswered.
fn arp_both_addresses(t: &Topo, mac: &str) {
    for ip in ["192.0.2.1", "192.0.2.2"] {
        let o = t.client.run(
            &["arping", "-c", "3", "-W", "0.2", "-i", &t.client_if, ip],
            Duration::from_secs(15),
        );
        let out = String::from_utf8_lossy(&o.stdout);
        assert_eq!(arping_received(&out), 3, "arping {ip}:\n{out}");
        assert!(
            out.to_lowercase().contains(mac),
            "reply not from {mac}:\n{out}"
        );
    }
    // An address that is not ours gets no answer, and the request is
    // counted as a drop.
    let o = t.client.run(
        &[
            "arping",
            "-c",
            "2",
            "-W",
            "0.2",
            "-i",
            &t.client_if,
            "192.0.2.99",
        ],
        Duration::from_secs(15),
    );
    assert_eq!(arping_received(&String::from_utf8_lossy(&o.stdout)), 0);
}

/// Ten pings answered, four to another address not.
fn ping_with_static_neighbours(t: &Topo, mac: &str) {
    // Ping with a permanent neighbour entry, so the kernel sends no ARP of
    // its own during the test and the counters are exact.
    for ip in ["192.0.2.1", "192.0.2.99"] {
        t.client.exec(&[
            "ip",
            "neigh",
            "replace",
            ip,
            "lladdr",
            mac,
            "nud",
            "permanent",
            "dev",
            &t.client_if,
        ]);
    }
    let o = t.client.run(
        &[
            "ping",
            "-c",
            "10",
            "-i",
            "0.05",
            "-W",
            "2",
            "-s",
            "200",
            "192.0.2.1",
        ],
        Duration::from_secs(30),
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(ping_received(&out), 10, "ping:\n{out}");
    // Echo to an address that is not the appliance's: no reply, dropped.
    let o = t.client.run(
        &["ping", "-c", "4", "-i", "0.05", "-W", "1", "192.0.2.99"],
        Duration::from_secs(30),
    );
    assert_eq!(ping_received(&String::from_utf8_lossy(&o.stdout)), 0);
}

/// Everything received was answered or dropped by reason; nothing else
/// was sent.
fn check_every_packet_accounted_for(d: &Daemon) {
    let s = d.ctl_json(&["stats"]);
    assert_eq!(workers_sum(&s, "/arp_requests_answered"), 6, "{s:#}");
    assert_eq!(workers_sum(&s, "/icmp_echo_answered"), 10, "{s:#}");
    assert_eq!(drops(&s, "arp_not_for_us"), 2, "{s:#}");
    assert_eq!(drops(&s, "not_for_us"), 4, "{s:#}");
    let rx = num(&s, "/result/ports/0/traffic/rx_packets");
    let tx = num(&s, "/result/ports/0/traffic/tx_packets");
    let all_drops: u64 = s["result"]["workers"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|w| {
            w["drops"]
                .as_object()
                .unwrap()
                .values()
                .map(|v| v.as_u64().unwrap())
        })
        .sum();
    assert_eq!(tx, 16, "{s:#}");
    assert_eq!(rx, 16 + all_drops, "{s:#}");
    assert_eq!(workers_sum(&s, "/traffic/rx_packets"), rx);
    assert!(num(&s, "/result/ports/0/device/ipackets") >= rx);
}

#[test]
fn arp_and_ping_one_worker() {
    arp_and_ping(&[1], None);
}

#[test]
fn arp_and_ping_two_workers() {
    // Three lcores on however many CPUs there are: the control lcore and
    // two workers, mapped onto CPUs 0 and 1.
    arp_and_ping(&[1, 2], Some("0@0,1@1,2@0"));
}

/// A port with an IPv6 address: the kernel host resolves it with
/// neighbour discovery (a solicitation to its solicited-node group,
/// answered with an advertisement) and ping6s it; an address the port
/// lacks is never answered.
#[test]
fn neighbour_discovery_and_ping6() {
    if !require_root() {
        return;
    }
    let t = topo();
    t.client.enable_ipv6(&t.client_if);
    t.client.exec(&[
        "ip",
        "-6",
        "addr",
        "add",
        "2001:db8:1::10/64",
        "dev",
        &t.client_if,
        "nodad",
    ]);
    let cfg = TestConfig::new()
        .memory_mb(256)
        .workers(&[1])
        .idle_sleep_us(200)
        .port(
            "client",
            &format!("net_af_packet0,iface={}", t.lb_if),
            &["192.0.2.1/24", "2001:db8:1::1/64"],
        )
        .render();
    let d = Daemon::start(Some(&t.lb), &cfg);
    let status = d.ctl_json(&["status"]);
    assert_eq!(
        status["result"]["ports"][0]["addresses"][1],
        "2001:db8:1::1/64"
    );
    let o = t.client.run(
        &[
            "ping",
            "-6",
            "-c",
            "5",
            "-i",
            "0.05",
            "-W",
            "2",
            "2001:db8:1::1",
        ],
        Duration::from_secs(30),
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(ping_received(&out), 5, "ping -6:\n{out}");
    let neigh = t
        .client
        .exec(&["ip", "-6", "neigh", "show", "2001:db8:1::1"]);
    let mac = status["result"]["ports"][0]["mac"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        neigh.contains(&mac),
        "the host learned the port's MAC: {neigh}"
    );
    let o = t.client.run(
        &[
            "ping",
            "-6",
            "-c",
            "2",
            "-i",
            "0.05",
            "-W",
            "1",
            "2001:db8:1::99",
        ],
        Duration::from_secs(30),
    );
    assert_eq!(ping_received(&String::from_utf8_lossy(&o.stdout)), 0);
    let s = d.ctl_json(&["stats"]);
    assert!(workers_sum(&s, "/nd_solicits_answered") >= 1, "{s:#}");
    assert_eq!(workers_sum(&s, "/icmpv6_echo_answered"), 5, "{s:#}");
    assert!(
        drops(&s, "not_for_us") >= 1,
        "the solicitations for ::99: {s:#}"
    );
    let exit = d.stop();
    assert_eq!(exit.code, Some(0), "{}", exit.log);
}

#[test]
fn sigterm_leaves_nothing_behind() {
    if !require_root() {
        return;
    }
    // With hugepages kept linked (as for dpdk-dumpcap), the daemon's
    // hugepage files exist while it runs and must all be gone after it.
    let t = topo();
    let cfg = config(&t.lb_if, &[1], None)
        .hugepages_for_secondaries()
        .memory_mb(128)
        .render();
    let d = Daemon::start(Some(&t.lb), &cfg);
    let o = t.client.run(
        &["ping", "-c", "3", "-i", "0.05", "-W", "2", "192.0.2.1"],
        Duration::from_secs(15),
    );
    assert_eq!(ping_received(&String::from_utf8_lossy(&o.stdout)), 3);
    let socket = d.socket.clone();
    let runtime = d.runtime_dir();
    assert!(
        runtime.exists(),
        "EAL runtime dir {} should exist while running",
        runtime.display()
    );
    let pages = |prefix: &str| -> Vec<std::path::PathBuf> {
        std::fs::read_dir("/dev/hugepages")
            .map(|rd| {
                rd.flatten()
                    .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
                    .map(|e| e.path())
                    .collect()
            })
            .unwrap_or_default()
    };
    let prefix = d.prefix.clone();
    assert!(
        !pages(&prefix).is_empty(),
        "no hugepage file of {prefix} while running: the leak check below would prove nothing"
    );
    let exit = d.stop();
    assert_eq!(exit.code, Some(0), "{}", exit.log);
    assert!(
        exit.log.contains("every mbuf returned to the pool"),
        "{}",
        exit.log
    );
    assert!(!socket.exists(), "socket file left behind");
    assert!(!runtime.exists(), "EAL runtime dir left behind");
    // Nothing the daemon started is left in its namespace.
    let left = must(&["ip", "netns", "pids", &t.lb.name]);
    assert_eq!(
        left.trim(),
        "",
        "processes left in the appliance's namespace"
    );
    assert_eq!(
        pages(&prefix),
        Vec::<std::path::PathBuf>::new(),
        "hugepage files left"
    );
}

#[test]
fn shutdown_request_stops_the_daemon() {
    if !require_root() {
        return;
    }
    let t = topo();
    let d = Daemon::start(Some(&t.lb), &config(&t.lb_if, &[1], None).render());
    let r = d.ctl_json(&["shutdown"]);
    assert_eq!(r["result"]["kind"], "shutting_down");
    let socket = d.socket.clone();
    assert!(
        wait_for(Duration::from_secs(20), || (!socket.exists()).then_some(())).is_some(),
        "socket still there after shutdown"
    );
    let exit = d.stop();
    assert_eq!(exit.code, Some(0), "{}", exit.log);
}
