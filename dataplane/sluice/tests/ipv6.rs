//! IPv6 end to end: kernel clients and servers in namespaces on
//! 2001:db8::/32, the appliance between them on net_af_packet. curl
//! reaches HTTP servers behind a NAT66 service and a direct-routing one,
//! and the same NAT reals through an IPv4 service at the same time; the
//! appliance resolves the reals and is resolved by neighbour discovery.

mod common;

use common::*;
use std::collections::BTreeMap;
use std::time::Duration;

/// A tiny HTTP server on [::]:PORT answering its name (Python's own, so
/// the servers are kernel TCP stacks).
const SERVER_PY: &str = r#"
import http.server, socket, sys, threading
name, port = sys.argv[1], int(sys.argv[2])
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        # /big: 64 KiB, in segments as large as the client's MSS allows.
        body = b"x" * 65536 if self.path == "/big" else name.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
class S(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6
    allow_reuse_address = True
# UDP on [::]:5300 answers every datagram with the name too.
def udp():
    u = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    u.bind(("::", 5300))
    while True:
        _, peer = u.recvfrom(2048)
        u.sendto(name.encode(), peer)
# A server agent on [::]:5555: nat12 reports half its capacity.
def agent():
    a = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    a.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    a.bind(("::", 5555))
    a.listen(16)
    reply = b"50%\n" if name == "nat12" else b"up 100%\n"
    while True:
        c, _ = a.accept()
        c.sendall(reply)
        c.close()
threading.Thread(target=udp, daemon=True).start()
threading.Thread(target=agent, daemon=True).start()
S(("::", port), H).serve_forever()
"#;

struct Topo {
    lb: Netns,
    client: Netns,
    reals: Vec<Netns>,
    _switch: Netns,
    lb_ifs: [String; 2],
    servers: Vec<topo::Proc>,
    dir: TempDir,
}

/// A switch namespace with two bridges: the clients' segment
/// (2001:db8:1::/64: the appliance's port 0, a client, a DR real holding
/// the VIP 2001:db8::200 on its loopback) and the servers' segment
/// (2001:db8:2::/64: port 1 and two NAT reals).
fn topo() -> Topo {
    let id = unique_id();
    let (lb, sw, client) = (Netns::new("lb"), Netns::new("sw"), Netns::new("cl"));
    let reals: Vec<Netns> = (0..3).map(|i| Netns::new(&format!("r{i}"))).collect();
    let lb_ifs = [format!("a{id}"), format!("b{id}")];
    for (i, br) in ["br0", "br1"].iter().enumerate() {
        sw.exec(&[
            "ip",
            "link",
            "add",
            br,
            "type",
            "bridge",
            "mcast_snooping",
            "0",
        ]);
        sw.exec(&["ip", "link", "set", br, "up"]);
        let sw_if = format!("s{i}{id}");
        veth(&lb, &lb_ifs[i], &sw, &sw_if);
        sw.exec(&["ip", "link", "set", &sw_if, "master", br]);
    }
    // Each host has an IPv6 address and route, and an IPv4 address (and
    // route): the dual-stack service pair shares the NAT reals.
    let attach = |ns: &Netns, name: &str, br: &str, v6: [&str; 3], v4: [&str; 3]| {
        let (ns_if, sw_if) = (format!("{name}{id}"), format!("t{name}{id}"));
        veth(ns, &ns_if, &sw, &sw_if);
        sw.exec(&["ip", "link", "set", &sw_if, "master", br]);
        ns.enable_ipv6(&ns_if);
        ns.exec(&["ip", "-6", "addr", "add", v6[0], "dev", &ns_if, "nodad"]);
        ns.exec(&[
            "ip", "-6", "route", "add", v6[2], "via", v6[1], "dev", &ns_if,
        ]);
        ns.exec(&["ip", "addr", "add", v4[0], "dev", &ns_if]);
        if !v4[2].is_empty() {
            ns.exec(&["ip", "route", "add", v4[2], "via", v4[1], "dev", &ns_if]);
        }
    };
    let (gw6, clients6) = ("2001:db8:2::1", "default");
    let (gw4, clients4) = ("198.51.100.1", "192.0.2.0/24");
    let vips6 = ["2001:db8:1::1", "2001:db8::/64"];
    attach(
        &client,
        "c",
        "br0",
        ["2001:db8:1::10/64", vips6[0], vips6[1]],
        ["192.0.2.10/24", "", ""],
    );
    attach(
        &reals[0],
        "n",
        "br1",
        ["2001:db8:2::11/64", gw6, clients6],
        ["198.51.100.11/24", gw4, clients4],
    );
    attach(
        &reals[1],
        "m",
        "br1",
        ["2001:db8:2::12/64", gw6, clients6],
        ["198.51.100.12/24", gw4, clients4],
    );
    attach(
        &reals[2],
        "d",
        "br0",
        ["2001:db8:1::21/64", vips6[0], vips6[1]],
        ["192.0.2.21/24", "", ""],
    );
    // The DR real holds the VIP on its loopback (IPv6 neighbour discovery
    // answers only for addresses of the interface asked, so it never
    // claims the VIP on the segment).
    reals[2].enable_ipv6("lo");
    reals[2].exec(&["ip", "-6", "addr", "add", "2001:db8::200/128", "dev", "lo"]);
    let dir = TempDir::new();
    let script = dir.path().join("server.py");
    std::fs::write(&script, SERVER_PY).unwrap();
    let servers = [("nat11", 8080), ("nat12", 8080), ("dr21", 80)]
        .iter()
        .zip(&reals)
        .map(|((name, port), ns)| {
            let c = ns
                .command(&["python3", script.to_str().unwrap(), name, &port.to_string()])
                .spawn()
                .unwrap();
            topo::Proc(c)
        })
        .collect();
    Topo {
        lb,
        client,
        reals,
        _switch: sw,
        lb_ifs,
        servers,
        dir,
    }
}

const SERVICES: &str = r#"
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

[[service]]
protocol = "tcp"
vip = "2001:db8::100"
port = 80
scheduler = "rr"
[[service.real]]
ip = "2001:db8:2::11"
port = 8080
[[service.real]]
ip = "2001:db8:2::12"
port = 8080

[[service]]
protocol = "udp"
vip = "2001:db8::100"
port = 53
scheduler = "rr"
[[service.real]]
ip = "2001:db8:2::11"
port = 5300
[[service.real]]
ip = "2001:db8:2::12"
port = 5300

[[service]]
protocol = "tcp"
vip = "2001:db8::200"
port = 80
scheduler = "rr"
[[service.real]]
ip = "2001:db8:1::21"
port = 80
forward = "dr"
"#;

fn config(t: &Topo, workers: &[u32], lcores: Option<&str>) -> String {
    TestConfig::new()
        .memory_mb(256)
        .workers(workers)
        .lcores(lcores)
        .idle_sleep_us(200)
        .port(
            "client",
            &format!("net_af_packet0,iface={}", t.lb_ifs[0]),
            &["192.0.2.1/24", "2001:db8:1::1/64"],
        )
        .port(
            "servers",
            &format!("net_af_packet1,iface={}", t.lb_ifs[1]),
            &["198.51.100.1/24", "2001:db8:2::1/64"],
        )
        .then(SERVICES)
        .render()
}

/// `n` requests from the client to `url`; the answers counted by name.
fn curl(t: &Topo, url: &str, n: usize) -> BTreeMap<String, usize> {
    let mut seen = BTreeMap::new();
    for _ in 0..n {
        let o = t.client.run(
            &["curl", "-s", "-m", "5", "-g", url],
            Duration::from_secs(10),
        );
        let body = String::from_utf8_lossy(&o.stdout).to_string();
        *seen
            .entry(if o.status.success() {
                body
            } else {
                format!("error {:?}", o.status.code())
            })
            .or_default() += 1;
    }
    seen
}

fn nat66_and_dr(workers: &[u32], lcores: Option<&str>) {
    if !require_root() {
        return;
    }
    let t = topo();
    let d = Daemon::start(Some(&t.lb), &config(&t, workers, lcores));
    let _ = &t.dir;
    // The servers take a moment to listen.
    wait_for(Duration::from_secs(10), || {
        let o = t.reals[0].run(&["ss", "-ltn", "sport = :8080"], Duration::from_secs(5));
        String::from_utf8_lossy(&o.stdout)
            .contains("8080")
            .then_some(())
    })
    .expect("the servers listen");
    let nat = curl(&t, "http://[2001:db8::100]/", 10);
    assert_eq!(
        nat.get("nat11"),
        Some(&5),
        "round robin over both reals: {nat:?}"
    );
    assert_eq!(nat.get("nat12"), Some(&5), "{nat:?}");
    let dr = curl(&t, "http://[2001:db8::200]/", 4);
    assert_eq!(dr.get("dr21"), Some(&4), "{dr:?}");
    // The IPv4 twin of the NAT66 service, on the same reals, at once.
    let v4 = curl(&t, "http://192.0.2.100/", 4);
    assert_eq!(
        (v4.get("nat11"), v4.get("nat12")),
        (Some(&2), Some(&2)),
        "{v4:?}"
    );
    // The connections of both families are listed, IPv6 in RFC 5952 text.
    let conns = d.ctl_json(&["conn", "list", "--limit", "1000"]).to_string();
    assert!(
        conns.contains("[2001:db8:1::10]:") && conns.contains("[2001:db8:2::11]:8080"),
        "{conns}"
    );
    assert!(conns.contains("192.0.2.10:"), "{conns}");
    let s = d.ctl_json(&["stats"]);
    // The client solicited the appliance; the appliance solicited the
    // three IPv6 reals and learned their advertisements (the reals learned the
    // appliance from its solicitations).
    assert!(workers_sum(&s, "/nd_solicits_answered") >= 1, "{s:#}");
    assert!(workers_sum(&s, "/nd_solicits_sent") >= 3, "{s:#}");
    assert!(workers_sum(&s, "/nd_adverts_learned") >= 3, "{s:#}");
    // The IPv4 reals were resolved with ARP, counted apart.
    assert!(workers_sum(&s, "/arp_requests_sent") >= 2, "{s:#}");
    for reason in [
        "bad_l4_checksum",
        "no_connection",
        "spoofed_reply",
        "martian_source",
        "bad_ipv6_extension",
    ] {
        assert_eq!(drops(&s, reason), 0, "{reason}: {s:#}");
    }
    // The table shows socket addresses in RFC 5952 text, brackets and all.
    let table = String::from_utf8_lossy(&d.ctl(&["list"]).stdout).to_string();
    assert!(
        table.contains("[2001:db8::100]:80") && table.contains("[2001:db8:2::11]:8080"),
        "{table}"
    );
    let list = d.ctl_json(&["list"]);
    let text = list.to_string();
    assert!(
        text.contains("2001:db8::100") && text.contains("2001:db8:2::11"),
        "{text}"
    );
    let exit = d.stop();
    assert_eq!(exit.code, Some(0), "{}", exit.log);
    assert!(
        exit.log.contains("every mbuf returned to the pool"),
        "{}",
        exit.log
    );
}

#[test]
fn nat66_and_dr_one_worker() {
    nat66_and_dr(&[1], None);
}

#[test]
fn nat66_and_dr_two_workers() {
    nat66_and_dr(&[1, 2], Some("0@0,1@1,2@0"));
}

/// `n` UDP queries from the client to `[vip]:port`, each from a socket of
/// its own (a new connection each): the answers counted by name.
fn udp_queries(t: &Topo, vip: &str, port: u16, n: usize) -> BTreeMap<String, usize> {
    let py = format!(
        r#"
import socket
for i in range({n}):
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.settimeout(2)
    s.sendto(b"who", ("{vip}", {port}))
    try:
        print(s.recv(2048).decode())
    except socket.timeout:
        print("timeout")
"#
    );
    let o = t.client.run(
        &["python3", "-c", &py],
        Duration::from_secs(10 + 3 * n as u64),
    );
    let mut seen = BTreeMap::new();
    for l in String::from_utf8_lossy(&o.stdout).lines() {
        *seen.entry(l.to_string()).or_default() += 1;
    }
    seen
}

/// Sends from the client, through its kernel, a packet of hop limit 1 to
/// each of `targets` (`udp` datagram or `tcp` connect, VIP, port) and
/// prints the ICMPv6 error each got, as the kernel reports it on the
/// socket's error queue (IPV6_RECVERR): `<offender> <type> <code>`, or
/// `none`.
fn hop_limit_1(t: &Topo, targets: &[(&str, &str, u16)]) -> Vec<String> {
    const PY: &str = r#"
import ipaddress, select, socket, struct, sys
IPV6_RECVERR, IPV6_UNICAST_HOPS = 25, 16
for target in sys.argv[1:]:
    proto, vip, port = target.split(",")
    kind = socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM
    s = socket.socket(socket.AF_INET6, kind)
    s.setsockopt(socket.IPPROTO_IPV6, IPV6_UNICAST_HOPS, 1)
    s.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVERR, 1)
    s.setblocking(False)
    if proto == "udp":
        s.sendto(b"who", (vip, int(port)))
    else:
        s.connect_ex((vip, int(port)))
    p = select.poll()
    p.register(s, select.POLLERR)
    got = "none"
    if p.poll(3000):
        try:
            _, anc, _, _ = s.recvmsg(2048, 512, socket.MSG_ERRQUEUE)
        except OSError:
            anc = []
        for level, ty, data in anc:
            if level == socket.IPPROTO_IPV6 and ty == IPV6_RECVERR:
                _, origin, icmp_type, icmp_code = struct.unpack("=IBBB", data[:7])
                offender = ipaddress.IPv6Address(data[16 + 8:16 + 24])
                got = "%s %d %d" % (offender, icmp_type, icmp_code)
    print(got, flush=True)
    s.close()
"#;
    let args: Vec<String> = targets
        .iter()
        .map(|(p, v, port)| format!("{p},{v},{port}"))
        .collect();
    let mut cmd = vec!["python3", "-c", PY];
    cmd.extend(args.iter().map(String::as_str));
    let o = t
        .client
        .run(&cmd, Duration::from_secs(10 + 5 * targets.len() as u64));
    assert!(
        o.status.success(),
        "hop limit 1: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// UDP over NAT66 balanced by round robin; a packet whose hop limit runs
/// out at the appliance answered with an ICMPv6 time exceeded (as a
/// router would: traceroute6 sees the appliance); the IPv6 table's
/// figures in `stats`.
#[test]
fn udp_and_hop_limit_over_ipv6() {
    if !require_root() {
        return;
    }
    let t = topo();
    let d = Daemon::start(Some(&t.lb), &config(&t, &[1], None));
    let _ = &t.dir;
    wait_for(Duration::from_secs(10), || {
        let o = t.reals[1].run(&["ss", "-lun", "sport = :5300"], Duration::from_secs(5));
        String::from_utf8_lossy(&o.stdout)
            .contains("5300")
            .then_some(())
    })
    .expect("the UDP servers listen");
    let udp = udp_queries(&t, "2001:db8::100", 53, 6);
    assert_eq!(
        (udp.get("nat11"), udp.get("nat12")),
        (Some(&3), Some(&3)),
        "{udp:?}"
    );
    let answers = hop_limit_1(
        &t,
        &[("tcp", "2001:db8::100", 80), ("udp", "2001:db8::100", 53)],
    );
    let s = d.ctl_json(&["stats"]);
    assert_eq!(
        answers,
        ["2001:db8:1::1 3 0", "2001:db8:1::1 3 0"],
        "time exceeded from the appliance's address on the client's side: {s:#}"
    );
    assert!(workers_sum(&s, "/time_exceeded_sent") >= 2, "{s:#}");
    assert!(drops(&s, "ttl_exceeded") >= 2, "{s:#}");
    // Six UDP connections live in the IPv6 table (UDP keeps them for
    // minutes), none in the IPv4 one.
    assert!(workers_sum(&s, "/conntrack6/occupancy") >= 6, "{s:#}");
    assert!(workers_sum(&s, "/conntrack6/inserts") >= 6, "{s:#}");
    assert_eq!(workers_sum(&s, "/conntrack/inserts"), 0, "{s:#}");
    let text = String::from_utf8_lossy(&d.ctl(&["stats"]).stdout).to_string();
    assert!(text.contains("CONNS6"), "{text}");
    let exit = d.stop();
    assert_eq!(exit.code, Some(0), "{}", exit.log);
}

/// A NAT66 service whose reals are checked (TCP, every 300 ms) through the
/// kernel interface of the servers' port, which carries the port's IPv6
/// address; their server agents answer there too (one at 50 %, which
/// halves its effective weight). When one real's server stops, the check
/// takes it out and every request goes to the other.
#[test]
fn failover_by_health_check_over_ipv6() {
    if !require_root() {
        return;
    }
    let mut t = topo();
    let kif = format!("k{}", unique_id());
    let cfg = TestConfig::new()
        .memory_mb(256)
        .workers(&[1])
        .idle_sleep_us(200)
        .port(
            "client",
            &format!("net_af_packet0,iface={}", t.lb_ifs[0]),
            &["192.0.2.1/24", "2001:db8:1::1/64"],
        )
        .port_with(
            "servers",
            &format!("net_af_packet1,iface={}", t.lb_ifs[1]),
            &["198.51.100.1/24", "2001:db8:2::1/64"],
            &format!("kernel_interface = \"{kif}\"\n"),
        )
        .then(
            r#"
[[service]]
protocol = "tcp"
vip = "2001:db8::100"
port = 80
scheduler = "rr"
check = { kind = "tcp", interval_ms = 300, timeout_ms = 200, rise = 1, fall = 2 }
agent = { port = 5555, interval_ms = 300, timeout_ms = 250 }
[[service.real]]
ip = "2001:db8:2::11"
port = 8080
weight = 2
[[service.real]]
ip = "2001:db8:2::12"
port = 8080
weight = 2
"#,
        )
        .render();
    let d = Daemon::start(Some(&t.lb), &cfg);
    let state = |d: &Daemon, i: usize| {
        let l = d.ctl_json(&["list"]);
        let h = &l["result"]["services"][0]["reals"][i]["health"];
        (
            h["state"].as_str().unwrap_or("").to_string(),
            h["available"] == true,
        )
    };
    let both_up = wait_for(Duration::from_secs(15), || {
        (state(&d, 0) == ("up".into(), true) && state(&d, 1) == ("up".into(), true)).then_some(())
    });
    assert!(
        both_up.is_some(),
        "checks over IPv6 never passed: {:?} {:?}",
        state(&d, 0),
        state(&d, 1)
    );
    // The agents answer over IPv6 too: nat12's 50 % halves its weight.
    let eff = |d: &Daemon, i: usize| {
        let l = d.ctl_json(&["list"]);
        l["result"]["services"][0]["reals"][i]["health"]["effective_weight"]
            .as_u64()
            .unwrap_or(99)
    };
    assert!(
        wait_for(Duration::from_secs(15), || (eff(&d, 0) == 2
            && eff(&d, 1) == 1)
            .then_some(()))
        .is_some(),
        "agent weights over IPv6 never applied: {:#}",
        d.ctl_json(&["health", "--json"])
    );
    let before = curl(&t, "http://[2001:db8::100]/", 4);
    assert_eq!(
        (before.get("nat11"), before.get("nat12")),
        (Some(&2), Some(&2)),
        "{before:?}"
    );
    // Real 0's server stops.
    drop(t.servers.remove(0));
    let down = wait_for(Duration::from_secs(15), || {
        (state(&d, 0) == ("down".into(), false)).then_some(())
    });
    assert!(down.is_some(), "never taken out: {:?}", state(&d, 0));
    let after = curl(&t, "http://[2001:db8::100]/", 6);
    assert_eq!(after.get("nat12"), Some(&6), "{after:?}");
    let exit = d.stop();
    assert_eq!(exit.code, Some(0), "{}", exit.log);
}

/// Path MTU discovery through NAT66: a client behind a router whose link
/// towards it carries at most 1280 bytes fetches 64 KiB from a NAT66
/// service. The real sends full-size segments; the router answers them
/// with Packet Too Big to the VIP; the appliance sends it on to the real,
/// translated, and the real sends smaller segments: the download
/// completes.
#[test]
fn path_mtu_discovery_through_a_router() {
    if !require_root() {
        return;
    }
    let t = topo();
    let id = unique_id();
    let (router, far) = (Netns::new("rt"), Netns::new("far"));
    let (r_in, r_out, f_if) = (format!("i{id}"), format!("o{id}"), format!("f{id}"));
    // The router's leg on the clients' segment.
    let sw_leg = format!("u{id}");
    veth(&router, &r_in, &t._switch, &sw_leg);
    t._switch
        .exec(&["ip", "link", "set", &sw_leg, "master", "br0"]);
    // Its narrow link to the far client.
    veth(&router, &r_out, &far, &f_if);
    router.exec(&["ip", "link", "set", &r_out, "mtu", "1280"]);
    for (ns, i) in [
        (&router, r_in.as_str()),
        (&router, r_out.as_str()),
        (&far, f_if.as_str()),
    ] {
        ns.enable_ipv6(i);
    }
    router.exec(&["sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"]);
    router.exec(&[
        "ip",
        "-6",
        "addr",
        "add",
        "2001:db8:1::fe/64",
        "dev",
        &r_in,
        "nodad",
    ]);
    router.exec(&[
        "ip",
        "-6",
        "addr",
        "add",
        "2001:db8:3::1/64",
        "dev",
        &r_out,
        "nodad",
    ]);
    router.exec(&[
        "ip",
        "-6",
        "route",
        "add",
        "2001:db8::/64",
        "via",
        "2001:db8:1::1",
    ]);
    far.exec(&[
        "ip",
        "-6",
        "addr",
        "add",
        "2001:db8:3::10/64",
        "dev",
        &f_if,
        "nodad",
    ]);
    far.exec(&[
        "ip",
        "-6",
        "route",
        "add",
        "default",
        "via",
        "2001:db8:3::1",
    ]);
    let cfg = config(&t, &[1], None).replacen(
        "[[service]]",
        "[routes]\nstatic = [{ prefix = \"2001:db8:3::/64\", via = \"2001:db8:1::fe\" }]\n\n[[service]]",
        1,
    );
    let d = Daemon::start(Some(&t.lb), &cfg);
    wait_for(Duration::from_secs(10), || {
        let o = t.reals[0].run(&["ss", "-ltn", "sport = :8080"], Duration::from_secs(5));
        String::from_utf8_lossy(&o.stdout)
            .contains("8080")
            .then_some(())
    })
    .expect("the servers listen");
    for _ in 0..2 {
        let o = far.run(
            &[
                "curl",
                "-s",
                "-m",
                "10",
                "-g",
                "-o",
                "/dev/null",
                "-w",
                "%{size_download}",
                "http://[2001:db8::100]/big",
            ],
            Duration::from_secs(20),
        );
        let got = String::from_utf8_lossy(&o.stdout).to_string();
        assert_eq!(got, "65536", "the download through the 1280-byte link");
    }
    // The reals learned the path's MTU from the translated Packet Too Big.
    let learned = t.reals[..2].iter().any(|r| {
        r.exec(&["ip", "-6", "route", "get", "2001:db8:3::10"])
            .contains("mtu 1280")
    });
    assert!(learned, "no real learned the path MTU");
    let exit = d.stop();
    assert_eq!(exit.code, Some(0), "{}", exit.log);
}
