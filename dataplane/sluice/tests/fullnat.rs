//! Full NAT end to end: the reals are two routers away, in a network that
//! knows nothing of the clients', with only a default route; kernel
//! clients reach nginx on them through the VIP, and the reals' answers,
//! addressed to the appliance's local addresses, come back by ordinary
//! routing. With two workers, every connection's local port names the
//! worker that owns it, so replies that land on the other worker are
//! handed over.

mod common;

use common::topo::*;
use common::*;
use std::collections::BTreeSet;
use std::time::Duration;

const LOCALS: [&str; 2] = ["198.51.100.200", "198.51.100.201"];

/// TCP VIP:80 to nginx on each real's 8080, and UDP VIP:5353 to each
/// real's 5354, all by full NAT from [`LOCALS`].
fn services(n: usize) -> String {
    let locals = format!("[\"{}\", \"{}\"]", LOCALS[0], LOCALS[1]);
    let mut s = String::from(TUNNEL_ROUTE);
    for (proto, port, rport) in [("tcp", 80, 8080), ("udp", 5353, 5354)] {
        s += &format!(
            "\n[[service]]\nprotocol = \"{proto}\"\nvip = \"{VIP}\"\nport = {port}\n\
             scheduler = \"rr\"\nlocal_addresses = {locals}\n"
        );
        for i in 0..n {
            s += &format!(
                "[[service.real]]\nip = \"203.0.113.{}\"\nport = {rport}\nforward = \"fullnat\"\n",
                11 + i
            );
        }
    }
    s
}

/// The peers nginx on real `i` logged, one "address port" a request.
fn peers(root: &std::path::Path) -> Vec<(String, u16)> {
    let text = std::fs::read_to_string(root.join("peers.log")).unwrap_or_default();
    text.lines()
        .map(|l| {
            let (a, p) = l.split_once(' ').expect("address port");
            (a.to_string(), p.parse().unwrap())
        })
        .collect()
}

fn full_nat(workers: &[u32], lcores: Option<&str>) {
    if !require_root() {
        return;
    }
    let log = "log_format peers '$remote_addr $remote_port'; \
               access_log {root}/peers.log peers;";
    let (t, roots) = LbTopo::far_web("", log);
    // Local ports from a range of its own: 1,000 per local address.
    let config = t.config(workers, lcores, &services(2)).replace(
        "[dataplane]\n",
        "[dataplane]\nlocal_ports = [30000, 30999]\n",
    );
    assert!(config.contains("local_ports"), "{config}");
    let d = Daemon::start(Some(&t.lb), &config);
    let m = t.ids(&d, 12);
    assert_eq!(m.len(), 2, "both reals answered: {m:?}");
    assert!(m.values().all(|v| *v == 6), "{m:?}");
    // 256 KiB from each real, whole.
    for i in 0..2 {
        let body = t
            .get(&format!("192.0.2.{}", 10 + i), "http://192.0.2.100/blob")
            .expect("blob");
        assert!(body == blob(), "blob corrupted through full NAT");
    }
    // UDP, each datagram a flow of its own, answered by both reals.
    let ids = t.client_py(&["udp", VIP, "5353", "8"], Duration::from_secs(60));
    let udp: BTreeSet<String> = ids.into_iter().collect();
    assert_eq!(udp.len(), 2, "{udp:?}");

    // The reals saw only the local addresses, never a client's.
    let mut seen = BTreeSet::new();
    for root in &roots {
        let p = peers(root);
        assert_eq!(p.len(), 7, "{p:?}");
        for (addr, port) in p {
            assert!(LOCALS.contains(&addr.as_str()), "nginx saw {addr}");
            assert!(port >= 1024);
            seen.insert(addr);
        }
    }
    assert_eq!(seen.len(), 2, "both local addresses used: {seen:?}");

    // Every connection's local port names the worker holding it, which
    // is its client's.
    let n = workers.len();
    let c = d.ctl_json(&["conn", "list", "--limit", "1000"]);
    let conns = c["result"]["connections"].as_array().unwrap();
    assert!(conns.len() >= 14, "{c:#}");
    for x in conns {
        assert_eq!(x["forward"], "fullnat", "{x}");
        let local: std::net::SocketAddr = x["local"].as_str().unwrap().parse().unwrap();
        let client: std::net::SocketAddr = x["client"].as_str().unwrap().parse().unwrap();
        let worker = x["worker"].as_u64().unwrap() as usize;
        assert_eq!(
            sluice_lb::local_ports::owner(local.port(), n),
            worker,
            "{x}"
        );
        assert!((30000..=30999).contains(&local.port()), "{x}");
        let std::net::IpAddr::V4(cip) = client.ip() else {
            panic!("{x}")
        };
        assert_eq!(sluice_lb::steer::owner(cip, n), worker, "{x}");
    }
    let s = d.ctl_json(&["stats"]);
    assert_eq!(
        workers_sum(&s, "/local_ports_in_use"),
        conns.len() as u64,
        "{s:#}"
    );
    if n > 1 {
        let handoffs = workers_sum(&s, "/handoff_out");
        assert!(handoffs > 0, "no hand-off with two workers: {s:#}");
    }
    for r in ["local_ports_exhausted", "handoff_full"] {
        assert_eq!(drops(&s, r), 0, "{r}: {s:#}");
    }
    let listing = String::from_utf8_lossy(&d.ctl(&["list"]).stdout).to_string();
    assert!(
        listing.contains("FullNat") && listing.contains("laddr 198.51.100.200,198.51.100.201"),
        "{listing}"
    );
    let stats = String::from_utf8_lossy(&d.ctl(&["list", "--stats"]).stdout).to_string();
    assert!(stats.contains("local ports: "), "{stats}");
    assert!(
        stats.contains(" of 2000 "),
        "two addresses of 1,000 ports: {stats}"
    );
    // `save` writes the mode and the pool back.
    let saved = String::from_utf8_lossy(&d.ctl(&["save"]).stdout).to_string();
    assert!(
        saved.contains("forward = \"fullnat\"")
            && saved.contains("local_addresses = [\"198.51.100.200\", \"198.51.100.201\"]"),
        "{saved}"
    );
    let exit = d.stop();
    assert_eq!(exit.code, Some(0), "{}", exit.log);
}

#[test]
fn reals_two_routers_away_one_worker() {
    full_nat(&[1], None);
}

#[test]
fn reals_two_routers_away_two_workers() {
    full_nat(&[1, 2], Some("0@0,1@1,2@0"));
}
