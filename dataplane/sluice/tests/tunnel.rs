//! Tunnel mode end to end: the reals are a router away from the appliance,
//! one reached by IP-in-IP, one by GUE (over IPv4, and over IPv6 for IPv6
//! reals); each decapsulates in user space
//! (the kernel here has no ipip or fou module) and answers the client
//! through the router, never through the appliance. A client whose
//! packets are too big for the tunnel learns the tunnel's MTU from the
//! appliance's fragmentation-needed errors (path MTU discovery), and its
//! upload completes.

mod common;

use common::topo::*;
use common::*;
use std::collections::BTreeSet;
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
/// (That GUE came to the default port is shown by the endpoint hearing
/// it at all: its socket is bound to 6080.)
fn logged(log: &std::path::Path) -> (BTreeSet<String>, BTreeSet<u16>, usize) {
    let text = std::fs::read_to_string(log).unwrap();
    let (mut sources, mut ports, mut n) = (BTreeSet::new(), BTreeSet::new(), 0);
    for line in text.lines().skip(1) {
        let w: Vec<&str> = line.split(' ').collect();
        sources.insert(w[0].to_string());
        if let Ok(p) = w[1].parse() {
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
    let m = t.ids(&d, 12);
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

/// The IPv6 reals' servers: on [::]:PORT, TCP answers each connection's
/// first line with the real's name, UDP each datagram.
const SERVER6_PY: &str = r#"
import socket, sys, threading
name, port = sys.argv[1].encode(), int(sys.argv[2])
def udp():
    u = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    u.bind(("::", port))
    while True:
        _, peer = u.recvfrom(2048)
        u.sendto(name, peer)
threading.Thread(target=udp, daemon=True).start()
t = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
t.bind(("::", port))
t.listen(64)
while True:
    c, _ = t.accept()
    c.recv(1024)
    c.sendall(name)
    c.close()
"#;

/// The client: `n` TCP connections and `n` UDP datagrams to the IPv6 VIP,
/// each a flow of its own; prints who answered each.
const CLIENT6_PY: &str = r#"
import socket, sys
vip, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for i in range(n):
    s = socket.create_connection((vip, port), timeout=5)
    s.sendall(b"hello\n")
    print("tcp", s.recv(64).decode())
    s.close()
    u = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    u.settimeout(3)
    u.sendto(b"q", (vip, port))
    print("udp", u.recvfrom(64)[0].decode())
    u.close()
"#;

/// IPv6 reals a router away: one reached by IPv6 in IPv6, one by GUE over
/// IPv6 (its UDP checksum computed, as Linux wants it), each unwrapped in
/// user space, answering TCP and UDP directly.
#[test]
fn ipv6_reals_in_ipv6_tunnels_answer_directly() {
    if !require_root() {
        return;
    }
    let mut t = LbTopo::tunnel(2, 1);
    let ipip_log = t.decapsulate(0, "ipip6", 0);
    let gue_log = t.decapsulate(1, "gue6", 6080);
    let script = t.dir.path().join("server6.py");
    std::fs::write(&script, SERVER6_PY).unwrap();
    for i in 0..2 {
        let child = t.reals[i]
            .ns
            .command(&[
                "python3",
                script.to_str().unwrap(),
                &format!("real-{i}"),
                "7000",
            ])
            .stdin(std::process::Stdio::null())
            .spawn()
            .expect("server");
        t.reals[i].procs.push(Proc(child));
    }
    let mut svc = format!("{TUNNEL_ROUTE}\n");
    for proto in ["tcp", "udp"] {
        svc += &format!(
            "[[service]]\nprotocol = \"{proto}\"\nvip = \"{VIP6}\"\nport = 7000\nscheduler = \"rr\"\n\
             [[service.real]]\nip = \"2001:db8:3::11\"\nport = 7000\nforward = \"ipip\"\n\
             [[service.real]]\nip = \"2001:db8:3::12\"\nport = 7000\nforward = \"gue\"\n"
        );
    }
    let cfg = tunnel_ports6(&t.config(&[1], None, &svc));
    let d = Daemon::start(Some(&t.lb), &cfg);
    let client = t.dir.path().join("client6.py");
    std::fs::write(&client, CLIENT6_PY).unwrap();
    let mut ok = None;
    // The first connection may wait for neighbour discovery on the way.
    for _ in 0..3 {
        let o = t.client.run(
            &["python3", client.to_str().unwrap(), VIP6, "7000", "6"],
            Duration::from_secs(60),
        );
        if o.status.success() {
            ok = Some(String::from_utf8_lossy(&o.stdout).to_string());
            break;
        }
        eprintln!("client: {}", String::from_utf8_lossy(&o.stderr));
    }
    let out = ok.unwrap_or_else(|| {
        panic!(
            "IPv6 through the tunnels failed: {:#}",
            d.ctl_json(&["stats"])
        )
    });
    let answers: BTreeSet<&str> = out.lines().collect();
    for want in ["tcp real-0", "tcp real-1", "udp real-0", "udp real-1"] {
        assert!(answers.contains(want), "{want} in {answers:?}");
    }
    let l = d.ctl_json(&["list"]);
    for s in 0..2 {
        assert_eq!(
            num(&l, &format!("/result/services/{s}/stats/packets_out")),
            0,
            "{l:#}"
        );
    }
    // From the appliance's server-side IPv6 address, GUE to its port.
    let (sources, _, n) = logged(&ipip_log);
    assert!(n > 0);
    assert_eq!(sources, BTreeSet::from(["2001:db8:2::1".to_string()]));
    let (sources, ports, n) = logged(&gue_log);
    assert!(n > 0);
    assert_eq!(sources, BTreeSet::from(["2001:db8:2::1".to_string()]));
    assert!(ports.iter().all(|p| *p >= 49152), "{ports:?}");
    let exit = d.stop();
    assert_eq!(exit.code, Some(0), "{}", exit.log);
}

/// A client's 1500-byte UDP datagrams without DF do not fit either tunnel
/// (1520 and 1528 bytes encapsulated): they may be fragmented, so the
/// appliance sends each outer packet in two fragments; the real's kernel
/// puts them together before unwrapping, and every datagram is answered.
#[test]
fn datagrams_without_df_cross_in_two_outer_fragments() {
    if !require_root() {
        return;
    }
    let mut t = LbTopo::tunnel(2, 1);
    t.decapsulate(0, "ipip", 0);
    t.decapsulate(1, "gue", 6080);
    for i in 0..2 {
        t.serve(i, "udp", VIP, 5353);
    }
    let svc = format!(
        "{TUNNEL_ROUTE}\n{}",
        service("udp", 5353, &[(0, "ipip"), (1, "gue")])
    );
    let d = Daemon::start(Some(&t.lb), &t.config(&[1], None, &svc));
    let client = r#"
import socket, sys
for i in range(10):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    # IP_MTU_DISCOVER = IP_PMTUDISC_DONT: no DF
    s.setsockopt(socket.IPPROTO_IP, 10, 0)
    s.settimeout(3)
    data = bytes((i + j) % 256 for j in range(1472))
    for attempt in range(3):
        s.sendto(data, ("192.0.2.100", 5353))
        try:
            got, _ = s.recvfrom(4096)
            break
        except socket.timeout:
            continue
    else:
        sys.exit("datagram %d: no answer" % i)
    ident, echoed = got.split(b":", 1)
    if echoed != data:
        sys.exit("datagram %d: damaged" % i)
    print(ident.decode())
"#;
    let o = t
        .client
        .run(&["python3", "-c", client], Duration::from_secs(60));
    assert!(
        o.status.success(),
        "{} {:#}",
        String::from_utf8_lossy(&o.stderr),
        d.ctl_json(&["stats"])
    );
    let ids: BTreeSet<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(ids.len(), 2, "both tunnels: {ids:?}");
    let s = d.ctl_json(&["stats"]);
    assert!(workers_sum(&s, "/tunnel_fragmented") >= 10, "{s:#}");
    assert_eq!(drops(&s, "too_big_for_tunnel"), 0, "{s:#}");
    let exit = d.stop();
    assert_eq!(exit.code, Some(0), "{}", exit.log);
}
