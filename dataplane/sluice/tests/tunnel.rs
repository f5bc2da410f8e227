//! Tunnel mode end to end: the reals are a router away from the appliance,
//! one reached by IP-in-IP, one by GUE; each decapsulates in user space
//! (the kernel here has no ipip or fou module) and answers the client
//! through the router, never through the appliance. A client whose
//! packets are too big for the tunnel learns the tunnel's MTU from the
//! appliance's fragmentation-needed errors (path MTU discovery), and its
//! upload completes.

mod common;

use common::topo::*;
use common::*;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// The reals' tunnel methods: real 0 IP-in-IP, real 1 GUE.
fn service(protocol: &str, port: u16, reals: &[(usize, &str)]) -> String {
    let mut s = format!(
        "[[service]]\nprotocol = \"{protocol}\"\nvip = \"{VIP}\"\nport = {port}\nscheduler = \"rr\"\n"
    );
    for (i, fwd) in reals {
        s += &format!(
            "[[service.real]]\nip = \"203.0.113.{}\"\nport = {port}\nforward = \"{fwd}\"\n",
            11 + i
        );
    }
    s
}

/// The outer source addresses and GUE source ports an endpoint logged.
fn logged(log: &std::path::Path) -> (BTreeSet<String>, BTreeSet<u16>, usize) {
    let text = std::fs::read_to_string(log).unwrap();
    let (mut sources, mut ports, mut n) = (BTreeSet::new(), BTreeSet::new(), 0);
    for line in text.lines().skip(1) {
        let w: Vec<&str> = line.split(' ').collect();
        sources.insert(w[0].to_string());
        if let Ok(p) = w[1].parse() {
            assert_eq!(w[2], "6080", "GUE to the default port");
            ports.insert(p);
        }
        n += 1;
    }
    (sources, ports, n)
}

#[test]
fn ipip_and_gue_reals_behind_a_router_answer_directly() {
    if !require_root() {
        return;
    }
    let mut t = LbTopo::tunnel(2, 4);
    let ipip_log = t.decapsulate(0, "ipip", 0);
    let gue_log = t.decapsulate(1, "gue", 6080);
    for i in 0..2 {
        t.serve(i, "http", VIP, 80);
        t.serve(i, "udp", VIP, 5353);
    }
    let svc = format!(
        "{TUNNEL_ROUTE}\n{}\n{}",
        service("tcp", 80, &[(0, "ipip"), (1, "gue")]),
        service("udp", 5353, &[(0, "ipip"), (1, "gue")])
    );
    let d = Daemon::start(Some(&t.lb), &t.config(&[1, 2], Some("0@0,1@1,2@0"), &svc));
    let mut m = BTreeMap::new();
    for i in 0..12 {
        let src = format!("192.0.2.{}", 10 + i % 4);
        let body = t
            .get(&src, "http://192.0.2.100/id")
            .unwrap_or_else(|| panic!("request {i} failed: {:#}", d.ctl_json(&["stats"])));
        *m.entry(String::from_utf8(body).unwrap()).or_insert(0) += 1;
    }
    assert_eq!(m.len(), 2, "both reals answered: {m:?}");
    assert!(m.values().all(|v| *v == 6), "{m:?}");
    // 256 KiB from each: the answers come back whole, the direct way.
    for _ in 0..2 {
        let body = t
            .get("192.0.2.10", "http://192.0.2.100/blob")
            .expect("blob");
        assert!(body == blob(), "blob corrupted through the tunnel");
    }
    // UDP too, each datagram a flow of its own.
    let ids = t.client_py(&["udp", VIP, "5353", "8"], Duration::from_secs(60));
    let udp: BTreeSet<String> = ids.into_iter().collect();
    assert_eq!(udp.len(), 2, "{udp:?}");
    // Nothing came back through the appliance.
    let l = d.ctl_json(&["list"]);
    for s in 0..2 {
        assert_eq!(
            num(&l, &format!("/result/services/{s}/stats/packets_out")),
            0,
            "{l:#}"
        );
        assert!(num(&l, &format!("/result/services/{s}/stats/packets_in")) > 0);
    }
    let listing = String::from_utf8_lossy(&d.ctl(&["list"]).stdout).to_string();
    assert!(
        listing.contains("Tunnel") && listing.contains("GUE"),
        "{listing}"
    );
    // The outer headers: from the appliance's server-side address; GUE
    // from source ports of the flows (12 connections and 8 datagrams
    // here, several ports), to the GUE port.
    let (sources, ports, n) = logged(&ipip_log);
    assert!(n > 0);
    assert_eq!(sources, BTreeSet::from(["198.51.100.1".to_string()]));
    assert!(ports.is_empty());
    let (sources, ports, n) = logged(&gue_log);
    assert!(n > 0);
    assert_eq!(sources, BTreeSet::from(["198.51.100.1".to_string()]));
    assert!(ports.len() >= 4, "GUE source ports {ports:?}");
    assert!(ports.iter().all(|p| *p >= 49152), "{ports:?}");
    let exit = d.stop();
    assert_eq!(exit.code, Some(0), "{}", exit.log);
}

/// The client uploads 200 KB to an echo server behind each tunnel. Its
/// full-size segments (1500 bytes) do not fit IP-in-IP (1480) or GUE
/// (1472): the appliance drops them and answers fragmentation needed, the
/// client's kernel lowers its path MTU to the VIP, and the upload
/// completes, echoed whole.
#[test]
fn path_mtu_discovery_through_the_tunnels() {
    if !require_root() {
        return;
    }
    let mut t = LbTopo::tunnel(2, 1);
    t.decapsulate(0, "ipip", 0);
    t.decapsulate(1, "gue", 6080);
    t.serve(0, "echo", VIP, 9000);
    t.serve(1, "echo", VIP, 9001);
    let svc = format!(
        "{TUNNEL_ROUTE}\n{}\n{}",
        service("tcp", 9000, &[(0, "ipip")]),
        service("tcp", 9001, &[(1, "gue")])
    );
    let d = Daemon::start(Some(&t.lb), &t.config(&[1], None, &svc));
    let upload = r#"
import socket, sys
s = socket.create_connection(("192.0.2.100", int(sys.argv[1])), timeout=10)
data = bytes(range(256)) * 800
s.sendall(data)
s.shutdown(socket.SHUT_WR)
got = 0
while True:
    b = s.recv(65536)
    if not b:
        break
    got += len(b)
print(got)
"#;
    for (port, mtu) in [("9000", "1480"), ("9001", "1472")] {
        let o = t
            .client
            .run(&["python3", "-c", upload, port], Duration::from_secs(60));
        assert!(
            o.status.success(),
            "upload to {port}: {} {:#}",
            String::from_utf8_lossy(&o.stderr),
            d.ctl_json(&["stats"])
        );
        let got: usize = String::from_utf8_lossy(&o.stdout).trim().parse().unwrap();
        assert!(got >= 204_800, "{got} bytes echoed of 204800");
        // The client's kernel took the tunnel's MTU for the VIP.
        let route = t.client.exec(&["ip", "route", "get", VIP]);
        assert!(route.contains(&format!("mtu {mtu}")), "{route}");
    }
    let stats = d.ctl_json(&["stats"]);
    assert!(workers_sum(&stats, "/too_big_sent") >= 2, "{stats:#}");
    assert!(drops(&stats, "too_big_for_tunnel") >= 2, "{stats:#}");
    let exit = d.stop();
    assert_eq!(exit.code, Some(0), "{}", exit.log);
}
