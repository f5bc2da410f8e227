//! The client's address at the real, end to end: nginx behind full NAT,
//! two routers away, listens with `proxy_protocol` and logs the address
//! and port the PROXY protocol v2 header carried, for many connections
//! while the first router drops 5 % of what it forwards (both ways), so
//! first segments, the header with them, are retransmitted and SACKed.
//! Every request is answered whole, and every log line names the client
//! and the very port it used. UDP datagrams carry the header too. One
//! worker and two.

mod common;

use common::topo::*;
use common::*;
use std::collections::BTreeSet;
use std::time::Duration;

const LOCALS: &str = "[\"198.51.100.200\", \"198.51.100.201\"]";

fn services() -> String {
    let mut s = String::from(TUNNEL_ROUTE);
    for (proto, port, rport) in [("tcp", 80, 8080), ("udp", 5353, 5354)] {
        s += &format!(
            "\n[[service]]\nprotocol = \"{proto}\"\nvip = \"{VIP}\"\nport = {port}\n\
             scheduler = \"rr\"\nlocal_addresses = {LOCALS}\nproxy_protocol = \"v2\"\n"
        );
        for i in 0..2 {
            s += &format!(
                "[[service.real]]\nip = \"203.0.113.{}\"\nport = {rport}\nforward = \"fullnat\"\n",
                11 + i
            );
        }
    }
    s
}

/// Drops `percent` % of what `ns` forwards, both ways; returns how to
/// read how many it dropped.
fn lossy(ns: &Netns, percent: u32) {
    ns.exec(&["nft", "add", "table", "inet", "loss"]);
    ns.exec(&[
        "nft",
        "add",
        "chain",
        "inet",
        "loss",
        "lossy",
        "{ type filter hook forward priority 0; }",
    ]);
    ns.exec(&[
        "nft",
        "add",
        "rule",
        "inet",
        "loss",
        "lossy",
        "numgen",
        "random",
        "mod",
        "100",
        "<",
        &percent.to_string(),
        "counter",
        "drop",
    ]);
}

/// How many packets the loss rule dropped.
fn dropped(ns: &Netns) -> u64 {
    let out = ns.exec(&["nft", "list", "table", "inet", "loss"]);
    let w: Vec<&str> = out.split_whitespace().collect();
    let i = w.iter().position(|x| *x == "packets").expect("a counter");
    w[i + 1].parse().unwrap()
}

/// GET `path` from `src`:`port` (curl's own port, so the log can be
/// matched), allowing time for retransmissions.
fn get(t: &LbTopo, src: &str, port: u16, path: &str) -> Option<Vec<u8>> {
    let o = t.client.run(
        &[
            "curl",
            "-s",
            "-f",
            "--max-time",
            "30",
            "--interface",
            src,
            "--local-port",
            &port.to_string(),
            &format!("http://{VIP}{path}"),
        ],
        Duration::from_secs(40),
    );
    o.status.success().then_some(o.stdout)
}

/// Sends 8 datagrams from fixed ports and checks each echo: the header in
/// front of the datagram names its client and the VIP. Prints each port.
const UDP_CHECK: &str = r#"
import socket, struct, sys
sig = b"\r\n\r\n\0\r\nQUIT\n"
for i in range(8):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("192.0.2.10", 41000 + i))
    s.settimeout(5)
    got = None
    for _ in range(5):  # the routers drop some
        s.sendto(b"d%d" % i, ("192.0.2.100", 5353))
        try:
            got, _ = s.recvfrom(4096)
            break
        except socket.timeout:
            pass
    assert got, "no answer"
    ident, rest = got.split(b":", 1)
    h = rest[:28]
    assert h[:12] == sig and h[12] == 0x21 and h[13] == 0x12, h
    src, dst = socket.inet_ntoa(h[16:20]), socket.inet_ntoa(h[20:24])
    sport, dport = struct.unpack("!HH", h[24:28])
    assert (src, sport, dst, dport) == ("192.0.2.10", 41000 + i, "192.0.2.100", 5353), (src, sport, dst, dport)
    assert rest[28:] == b"d%d" % i, rest
    print(ident.decode())
"#;

#[test]
fn nginx_logs_every_client_through_full_nat_with_loss_one_worker() {
    nginx_logs_every_client(&[1], None);
}

#[test]
fn nginx_logs_every_client_through_full_nat_with_loss_two_workers() {
    nginx_logs_every_client(&[1, 2], Some("0@0,1@1,2@0"));
}

fn nginx_logs_every_client(workers: &[u32], lcores: Option<&str>) {
    if !require_root() {
        return;
    }
    let log = "log_format pp '$proxy_protocol_addr $proxy_protocol_port $remote_addr'; \
               access_log {root}/pp.log pp;";
    let (t, roots) = LbTopo::far_web("proxy_protocol", log);
    let d = Daemon::start(Some(&t.lb), &t.config(workers, lcores, &services()));
    lossy(t.router.as_ref().unwrap(), 5);

    let mut want = BTreeSet::new();
    for i in 0..60u16 {
        let (src, port) = (format!("192.0.2.{}", 10 + i % 4), 42_000 + i);
        let body = get(&t, &src, port, "/id")
            .unwrap_or_else(|| panic!("request {i} failed: {:#}", d.ctl_json(&["stats"])));
        assert!(body == b"real-0" || body == b"real-1", "{body:?}");
        want.insert(format!("{src} {port}"));
    }
    // Large answers: the real's segments lost and SACKed, mapped back.
    for i in 0..4u16 {
        let (src, port) = (format!("192.0.2.{}", 10 + i), 43_000 + i);
        let body = get(&t, &src, port, "/blob").expect("blob");
        assert!(body == blob(), "blob corrupted");
        want.insert(format!("{src} {port}"));
    }
    // Every request was logged once, with its client's address and port,
    // from a local address.
    let mut logged = BTreeSet::new();
    for root in &roots {
        let text = std::fs::read_to_string(root.join("pp.log")).unwrap();
        for line in text.lines() {
            let w: Vec<&str> = line.split(' ').collect();
            assert!(LOCALS.contains(w[2]), "{line}");
            assert!(logged.insert(format!("{} {}", w[0], w[1])), "twice: {line}");
        }
        let errors = std::fs::read_to_string(root.join("error.log")).unwrap_or_default();
        assert!(!errors.contains("broken header"), "{errors}");
    }
    assert_eq!(logged, want);

    // UDP: each datagram's header names its client.
    let script = t.dir.path().join("udp_check.py");
    std::fs::write(&script, UDP_CHECK).unwrap();
    let o = t.client.run(
        &["python3", script.to_str().unwrap()],
        Duration::from_secs(120),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let reals: BTreeSet<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(reals.len(), 2, "{reals:?}");

    let lost = dropped(t.router.as_ref().unwrap());
    assert!(lost > 20, "the router dropped only {lost} packets");
    let s = d.ctl_json(&["stats"]);
    assert!(workers_sum(&s, "/proxy_headers_sent") >= 64 + 8, "{s:#}");
    for r in [
        "too_big_for_proxy_header",
        "no_tailroom",
        "local_ports_exhausted",
    ] {
        assert_eq!(drops(&s, r), 0, "{r}: {s:#}");
    }
    let exit = d.stop();
    assert_eq!(exit.code, Some(0), "{}", exit.log);
}
