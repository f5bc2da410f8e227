//! Load-balancing topologies: a client namespace, the appliance, and real
//! servers behind a bridge, with real kernel TCP/UDP servers.

use super::*;
use std::process::Child;

/// A process in a namespace, killed on drop.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One real server host.
pub struct Real {
    pub ns: Netns,
    pub ip: String,
    pub procs: Vec<Proc>,
}

/// NAT: client -- [client port] sluice [servers port] -- bridge -- reals.
/// DR: client, sluice and reals all on one bridge (one segment).
/// Routed: client -- router -- [client port] sluice ..., as NAT.
pub struct LbTopo {
    pub lb: Netns,
    pub client: Netns,
    /// The router between the clients and the appliance, if any (or
    /// beside it, towards the reals).
    pub router: Option<Netns>,
    /// Further routers, kept for as long as the topology.
    pub more: Vec<Netns>,
    pub switch: Netns,
    pub reals: Vec<Real>,
    pub lb_client_if: String,
    pub lb_server_if: Option<String>,
    pub client_if: String,
    pub dir: TempDir,
}

pub const VIP: &str = "192.0.2.100";

/// The appliance's route to the routed topology's clients, as a static
/// route; [`ROUTED_GW`] reaches them through the default gateway instead.
pub const ROUTED: &str = r#"
[routes]
static = [{ prefix = "203.0.113.0/24", via = "192.0.2.254" }]
"#;

/// The routed topology's clients through the default gateway.
pub const ROUTED_GW: &str = r#"
[routes]
gateway = "192.0.2.254"
"#;

/// The appliance's route to the tunnel topology's IPv4 reals.
pub const TUNNEL_ROUTE: &str = r#"
[routes]
static = [{ prefix = "203.0.113.0/24", via = "198.51.100.254" }]
"#;

/// The IPv6 VIP of the tunnel topology.
pub const VIP6: &str = "2001:db8::100";

/// The tunnel topology's configuration (with [`TUNNEL_ROUTE`]) with the
/// ports' IPv6 addresses and the route to the IPv6 reals.
pub fn tunnel_ports6(config: &str) -> String {
    config
        .replace(
            r#"{ prefix = "203.0.113.0/24", via = "198.51.100.254" }"#,
            r#"{ prefix = "203.0.113.0/24", via = "198.51.100.254" },
    { prefix = "2001:db8:3::/64", via = "2001:db8:2::fe" }"#,
        )
        .replace(
            r#"addresses = ["192.0.2.1/24"]"#,
            r#"addresses = ["192.0.2.1/24", "2001:db8:1::1/64"]"#,
        )
        .replace(
            r#"addresses = ["198.51.100.1/24"]"#,
            r#"addresses = ["198.51.100.1/24", "2001:db8:2::1/64"]"#,
        )
}

/// A tunnel endpoint in user space, as `ip link add ... type ipip` or
/// `ip fou add` would be in the kernel: the inner packet of each
/// IP-in-IP or GUE (variant 1) packet goes into `tun0`.
pub const DECAP_PY: &str = r#"
import fcntl, os, socket, struct, sys
kind, port, log = sys.argv[1], int(sys.argv[2]), open(sys.argv[3], "a")
tun = os.open("/dev/net/tun", os.O_RDWR)
# TUNSETIFF, IFF_TUN | IFF_NO_PI
fcntl.ioctl(tun, 0x400454ca, struct.pack("16sH", b"tun0", 0x0001 | 0x1000))
if kind == "ipip":
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, 4)
elif kind == "ipip6":
    # IPv6 in IPv6: an IPv6 raw socket gives the payload, the inner packet.
    s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, 41)
elif kind == "gue6":
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.bind(("::", port))
else:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", port))
log.write("ready\n"); log.flush()
while True:
    b, peer = s.recvfrom(65535)
    if kind == "ipip":
        # The raw socket gives the outer IPv4 header too.
        outer = socket.inet_ntoa(b[12:16])
        b = b[(b[0] & 15) * 4:]
        log.write("%s -\n" % outer)
    elif kind == "ipip6":
        log.write("%s -\n" % peer[0])
    else:
        log.write("%s %d\n" % (peer[0], peer[1]))
    log.flush()
    os.write(tun, b)
"#;

/// Python client helpers.
pub const CLIENT_PY: &str = r#"
import socket, sys, time
mode = sys.argv[1]
if mode == "once":
    s = socket.create_connection((sys.argv[2], int(sys.argv[3])), timeout=5)
    s.sendall(b"hello\n")
    print(s.recv(4096).decode().split(":")[0])
elif mode == "long":
    # One connection, COUNT echoes INTERVAL apart; prints the real's
    # identity for each, fails on any error.
    count, interval = int(sys.argv[4]), float(sys.argv[5])
    s = socket.create_connection((sys.argv[2], int(sys.argv[3])), timeout=5)
    for i in range(count):
        msg = ("ping %d\n" % i).encode()
        s.sendall(msg)
        got = b""
        while not got.endswith(msg):
            b = s.recv(4096)
            if not b:
                sys.exit("connection closed at %d" % i)
            got += b
        print(got.decode().split(":")[0], flush=True)
        time.sleep(interval)
    s.close()
elif mode == "burst":
    # N connections at once from the source addresses given (round robin),
    # each sending one line; prints the real that answered each. Prints
    # "ready" and waits for a line on stdin before it connects, so a test
    # can fire the burst the moment a change returns.
    import threading
    n, srcs = int(sys.argv[4]), sys.argv[5].split(",")
    out = [None] * n
    go = threading.Event()
    def one(i):
        go.wait()
        try:
            s = socket.create_connection((sys.argv[2], int(sys.argv[3])), timeout=5,
                                         source_address=(srcs[i % len(srcs)], 0))
            s.sendall(b"burst\n")
            out[i] = s.recv(4096).decode().split(":")[0]
            s.close()
        except OSError as e:
            out[i] = "error:%s" % e
    ts = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in ts: t.start()
    print("ready", flush=True)
    sys.stdin.readline()
    go.set()
    for t in ts: t.join()
    print("\n".join(out))
elif mode == "from":
    # One connection from a fixed source address and port. By default the
    # socket is reset on close (no TIME_WAIT holds the port, the balancer's
    # entry goes to CLOSE); with "graceful" it closes first, both ways
    # (the entry goes to TIME_WAIT, and the client reuses the port only
    # with net.ipv4.tcp_tw_reuse = 1, a second later).
    import struct
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.settimeout(5)
    s.bind((sys.argv[4], int(sys.argv[5])))
    s.connect((sys.argv[2], int(sys.argv[3])))
    s.sendall(b"from\n")
    print(s.recv(4096).decode().split(":")[0])
    if sys.argv[6:] == ["graceful"]:
        s.shutdown(socket.SHUT_WR)
        while s.recv(4096):
            pass
    else:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
elif mode == "udp":
    # N datagrams, each from a new socket (new source port). The sockets
    # stay open until the last, so the kernel cannot hand a port out twice
    # and each datagram is a flow of its own.
    sockets = []
    for i in range(int(sys.argv[4])):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sockets.append(s)
        s.settimeout(3)
        s.sendto(b"d%d" % i, (sys.argv[2], int(sys.argv[3])))
        data, _ = s.recvfrom(4096)
        assert data.endswith(b":d%d" % i), data
        print(data.decode().split(":")[0])
    for s in sockets:
        s.close()
"#;

/// Python helpers the real servers run.
pub const SERVERS_PY: &str = r#"
import socket, sys, threading, os, http.server, functools
kind, ip, port, ident = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
if kind == "http":
    d = sys.argv[5]
    h = functools.partial(http.server.SimpleHTTPRequestHandler, directory=d)
    class S(http.server.ThreadingHTTPServer):
        allow_reuse_address = True
    http.server.SimpleHTTPRequestHandler.log_message = lambda *a: None
    S((ip, port), h).serve_forever()
elif kind == "udp":
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((ip, port))
    while True:
        data, peer = s.recvfrom(65535)
        s.sendto(ident.encode() + b":" + data, peer)
elif kind == "echo":
    l = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    l.bind((ip, port)); l.listen(64)
    def serve(c):
        with c:
            while True:
                b = c.recv(4096)
                if not b:
                    return
                c.sendall(ident.encode() + b":" + b)
    while True:
        c, _ = l.accept()
        threading.Thread(target=serve, args=(c,), daemon=True).start()
"#;

/// The namespace of real `i` (`r{i}`) and its end of a link whose other
/// end is on bridge `br` in `at`.
fn real_on_bridge(at: &Netns, br: &str, id: &str, i: usize) -> (Netns, String) {
    let ns = Netns::new(&format!("r{i}"));
    let (ri, si) = (format!("r{id}{i}"), format!("w{id}{i}"));
    veth(&ns, &ri, at, &si);
    at.exec(&["ip", "link", "set", &si, "master", br]);
    (ns, ri)
}

/// A directory with the client and server helpers, and `more` scripts.
fn scripts(more: &[(&str, &str)]) -> TempDir {
    let dir = TempDir::new();
    let all = [("servers.py", SERVERS_PY), ("client.py", CLIENT_PY)];
    for (name, text) in all.iter().chain(more) {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

impl LbTopo {
    /// Builds the NAT topology with `n` reals 198.51.100.11.. and a client
    /// with addresses 192.0.2.10..(10+clients-1).
    pub fn nat(n: usize, clients: usize) -> LbTopo {
        let lb = Netns::new("lb");
        let client = Netns::new("cl");
        let switch = Netns::new("sw");
        let id = unique_id();
        let (lc, cc) = (format!("a{id}"), format!("b{id}"));
        veth(&lb, &lc, &client, &cc);
        for i in 0..clients {
            client.exec(&[
                "ip",
                "addr",
                "add",
                &format!("192.0.2.{}/24", 10 + i),
                "dev",
                &cc,
            ]);
        }
        if clients > 0 {
            client.exec(&["ip", "route", "add", "default", "via", "192.0.2.1"]);
        }
        switch.exec(&["ip", "link", "add", "br0", "type", "bridge"]);
        switch.exec(&["ip", "link", "set", "br0", "up"]);
        let ls = format!("s{id}");
        let lsw = format!("t{id}");
        veth(&lb, &ls, &switch, &lsw);
        switch.exec(&["ip", "link", "set", &lsw, "master", "br0"]);
        let mut reals = Vec::new();
        for i in 0..n {
            let (ns, ri) = real_on_bridge(&switch, "br0", &id, i);
            let ip = format!("198.51.100.{}", 11 + i);
            ns.exec(&["ip", "addr", "add", &format!("{ip}/24"), "dev", &ri]);
            ns.exec(&["ip", "route", "add", "default", "via", "198.51.100.1"]);
            reals.push(Real {
                ns,
                ip,
                procs: Vec::new(),
            });
        }
        let dir = scripts(&[]);
        LbTopo {
            lb,
            client,
            router: None,
            more: Vec::new(),
            switch,
            reals,
            lb_client_if: lc,
            lb_server_if: Some(ls),
            client_if: cc,
            dir,
        }
    }

    /// Builds the DR topology: one segment 192.0.2.0/24 with the client
    /// (192.0.2.10..), sluice (192.0.2.1) and `n` reals (192.0.2.21..) that
    /// hold the VIP on `lo` and neither answer nor announce ARP for it.
    pub fn dr(n: usize, clients: usize) -> LbTopo {
        let lb = Netns::new("lb");
        let client = Netns::new("cl");
        let switch = Netns::new("sw");
        let id = unique_id();
        switch.exec(&["ip", "link", "add", "br0", "type", "bridge"]);
        switch.exec(&["ip", "link", "set", "br0", "up"]);
        let (lc, lsw) = (format!("a{id}"), format!("t{id}"));
        veth(&lb, &lc, &switch, &lsw);
        switch.exec(&["ip", "link", "set", &lsw, "master", "br0"]);
        let (cc, csw) = (format!("b{id}"), format!("u{id}"));
        veth(&client, &cc, &switch, &csw);
        switch.exec(&["ip", "link", "set", &csw, "master", "br0"]);
        for i in 0..clients {
            client.exec(&[
                "ip",
                "addr",
                "add",
                &format!("192.0.2.{}/24", 10 + i),
                "dev",
                &cc,
            ]);
        }
        let mut reals = Vec::new();
        for i in 0..n {
            let (ns, ri) = real_on_bridge(&switch, "br0", &id, i);
            let ip = format!("192.0.2.{}", 21 + i);
            ns.exec(&["sysctl", "-qw", "net.ipv4.conf.all.arp_ignore=1"]);
            ns.exec(&["sysctl", "-qw", "net.ipv4.conf.all.arp_announce=2"]);
            ns.exec(&["sysctl", "-qw", &format!("net.ipv4.conf.{ri}.arp_ignore=1")]);
            ns.exec(&[
                "sysctl",
                "-qw",
                &format!("net.ipv4.conf.{ri}.arp_announce=2"),
            ]);
            ns.exec(&["ip", "addr", "add", &format!("{VIP}/32"), "dev", "lo"]);
            ns.exec(&["ip", "addr", "add", &format!("{ip}/24"), "dev", &ri]);
            reals.push(Real {
                ns,
                ip,
                procs: Vec::new(),
            });
        }
        let dir = scripts(&[]);
        LbTopo {
            lb,
            client,
            router: None,
            more: Vec::new(),
            switch,
            reals,
            lb_client_if: lc,
            lb_server_if: None,
            client_if: cc,
            dir,
        }
    }

    /// The NAT topology with the clients behind a router, as every real
    /// deployment has them: clients 203.0.113.10.. (default route
    /// 203.0.113.1, the router), the router's other leg 192.0.2.254 on the
    /// appliance's client segment. `client_mtu` sets the MTU of the
    /// router's client-side link only (the clients keep 1500), so the
    /// router must ask for smaller packets with ICMP. The appliance needs
    /// a route to 203.0.113.0/24 via 192.0.2.254 (see [`ROUTED`]).
    pub fn routed(n: usize, clients: usize, client_mtu: Option<u32>) -> LbTopo {
        let mut t = LbTopo::nat(n, 0);
        let router = Netns::new("rt");
        let id = unique_id();
        // The client leaves the appliance's segment (deleting its end of
        // the pair deletes both) for the router's.
        t.client.exec(&["ip", "link", "del", &t.client_if]);
        let (lr, rl) = (t.lb_client_if.clone(), format!("q{id}"));
        veth(&t.lb, &lr, &router, &rl);
        let (cr, rc) = (format!("b{id}"), format!("p{id}"));
        veth(&t.client, &cr, &router, &rc);
        router.exec(&["ip", "addr", "add", "192.0.2.254/24", "dev", &rl]);
        router.exec(&["ip", "addr", "add", "203.0.113.1/24", "dev", &rc]);
        if let Some(mtu) = client_mtu {
            router.exec(&["ip", "link", "set", &rc, "mtu", &mtu.to_string()]);
        }
        router.exec(&["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
        for i in 0..clients {
            t.client.exec(&[
                "ip",
                "addr",
                "add",
                &format!("203.0.113.{}/24", 10 + i),
                "dev",
                &cr,
            ]);
        }
        t.client
            .exec(&["ip", "route", "add", "default", "via", "203.0.113.1"]);
        t.client_if = cr;
        t.router = Some(router);
        t
    }

    /// The tunnel topology: the reals are a router away from the
    /// appliance, in 203.0.113.0/24 (203.0.113.11..), and answer the
    /// clients through that router, never through the appliance. The
    /// router (`rt`) joins the clients' segment 192.0.2.0/24 (as
    /// 192.0.2.254, on a bridge with the client and the appliance's client
    /// port), the appliance's server port (198.51.100.254, the appliance
    /// 198.51.100.1) and the reals' network (203.0.113.1). Each real holds
    /// the VIP on `lo` and has a TUN device `tun0` that
    /// [`decapsulate`](Self::decapsulate) feeds (the kernel here has no
    /// ipip or fou module). The appliance needs [`TUNNEL_ROUTE`].
    ///
    /// IPv6 too: the clients' segment 2001:db8:1::/64 (client ::10,
    /// router ::fe, the appliance ::1, which the client routes the VIP
    /// 2001:db8::100 through), the servers' leg 2001:db8:2::/64 (the
    /// appliance ::1, the router ::fe) and the reals 2001:db8:3::11.. (the
    /// router ::1), each holding the IPv6 VIP on `lo`
    /// ([`TUNNEL_ROUTE`] and [`tunnel_ports6`] for the appliance).
    pub fn tunnel(n: usize, clients: usize) -> LbTopo {
        let lb = Netns::new("lb");
        let client = Netns::new("cl");
        let switch = Netns::new("sw");
        let router = Netns::new("rt");
        let id = unique_id();
        switch.exec(&["ip", "link", "add", "br0", "type", "bridge"]);
        switch.exec(&["ip", "link", "set", "br0", "up"]);
        let (lc, cc, rc) = (format!("a{id}"), format!("b{id}"), format!("q{id}"));
        for (ns, end, peer) in [
            (&lb, &lc, format!("t{id}")),
            (&client, &cc, format!("u{id}")),
            (&router, &rc, format!("v{id}")),
        ] {
            veth(ns, end, &switch, &peer);
            switch.exec(&["ip", "link", "set", &peer, "master", "br0"]);
        }
        for i in 0..clients {
            let a = format!("192.0.2.{}/24", 10 + i);
            client.exec(&["ip", "addr", "add", &a, "dev", &cc]);
        }
        client.enable_ipv6(&cc);
        let v6 = |ns: &Netns, a: &str, dev: &str| {
            ns.exec(&["ip", "-6", "addr", "add", a, "dev", dev, "nodad"]);
        };
        v6(&client, "2001:db8:1::10/64", &cc);
        client.exec(&[
            "ip",
            "-6",
            "route",
            "add",
            "2001:db8::/64",
            "via",
            "2001:db8:1::1",
        ]);
        for k in ["all", "default"] {
            router.exec(&["sysctl", "-qw", &format!("net.ipv4.conf.{k}.rp_filter=0")]);
        }
        router.exec(&["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
        router.exec(&["ip", "addr", "add", "192.0.2.254/24", "dev", &rc]);
        router.enable_ipv6(&rc);
        router.exec(&["sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"]);
        v6(&router, "2001:db8:1::fe/64", &rc);
        let (ls, rs) = (format!("s{id}"), format!("o{id}"));
        veth(&lb, &ls, &router, &rs);
        router.exec(&["ip", "addr", "add", "198.51.100.254/24", "dev", &rs]);
        router.enable_ipv6(&rs);
        v6(&router, "2001:db8:2::fe/64", &rs);
        router.exec(&["ip", "link", "add", "br1", "type", "bridge"]);
        router.exec(&["ip", "link", "set", "br1", "up"]);
        router.exec(&["ip", "addr", "add", "203.0.113.1/24", "dev", "br1"]);
        router.enable_ipv6("br1");
        v6(&router, "2001:db8:3::1/64", "br1");
        let mut reals = Vec::new();
        for i in 0..n {
            let (ns, ri) = real_on_bridge(&router, "br1", &id, i);
            let ip = format!("203.0.113.{}", 11 + i);
            for k in ["all", "default"] {
                ns.exec(&["sysctl", "-qw", &format!("net.ipv4.conf.{k}.rp_filter=0")]);
            }
            ns.exec(&["ip", "addr", "add", &format!("{ip}/24"), "dev", &ri]);
            ns.exec(&["ip", "route", "add", "default", "via", "203.0.113.1"]);
            ns.exec(&["ip", "addr", "add", &format!("{VIP}/32"), "dev", "lo"]);
            ns.enable_ipv6(&ri);
            ns.enable_ipv6("lo");
            v6(&ns, &format!("2001:db8:3::{}/64", 11 + i), &ri);
            ns.exec(&[
                "ip",
                "-6",
                "route",
                "add",
                "default",
                "via",
                "2001:db8:3::1",
            ]);
            v6(&ns, &format!("{VIP6}/128"), "lo");
            ns.exec(&["ip", "tuntap", "add", "dev", "tun0", "mode", "tun"]);
            ns.exec(&["sysctl", "-qw", "net.ipv4.conf.tun0.rp_filter=0"]);
            ns.enable_ipv6("tun0");
            ns.exec(&["ip", "link", "set", "tun0", "up"]);
            reals.push(Real {
                ns,
                ip,
                procs: Vec::new(),
            });
        }
        let dir = scripts(&[("decap.py", DECAP_PY)]);
        LbTopo {
            lb,
            client,
            router: Some(router),
            more: Vec::new(),
            switch,
            reals,
            lb_client_if: lc,
            lb_server_if: Some(ls),
            client_if: cc,
            dir,
        }
    }

    /// The far topology: the clients as for NAT, and the reals two routers
    /// away, in 203.0.113.0/25 (203.0.113.11..), routed by ordinary
    /// routing and knowing nothing of the clients' network. The first
    /// router (`rt`, 198.51.100.254 on the appliance's server segment)
    /// reaches 203.0.113.0/25 through the second (`ru`, over the link
    /// 203.0.113.248/30), whose bridge holds the reals (203.0.113.1);
    /// each real's default route leads back the same way. The appliance
    /// needs [`TUNNEL_ROUTE`].
    pub fn far(n: usize, clients: usize) -> LbTopo {
        let mut t = LbTopo::nat(0, clients);
        let id = unique_id();
        let (near, far) = (Netns::new("rt"), Netns::new("ru"));
        let (a, b) = (format!("f{id}"), format!("g{id}"));
        veth(&near, &a, &t.switch, &b);
        t.switch.exec(&["ip", "link", "set", &b, "master", "br0"]);
        near.exec(&["ip", "addr", "add", "198.51.100.254/24", "dev", &a]);
        let (c, d) = (format!("h{id}"), format!("k{id}"));
        veth(&near, &c, &far, &d);
        near.exec(&["ip", "addr", "add", "203.0.113.249/30", "dev", &c]);
        far.exec(&["ip", "addr", "add", "203.0.113.250/30", "dev", &d]);
        near.exec(&[
            "ip",
            "route",
            "add",
            "203.0.113.0/25",
            "via",
            "203.0.113.250",
        ]);
        far.exec(&["ip", "route", "add", "default", "via", "203.0.113.249"]);
        for r in [&near, &far] {
            r.exec(&["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
        }
        far.exec(&["ip", "link", "add", "br1", "type", "bridge"]);
        far.exec(&["ip", "link", "set", "br1", "up"]);
        far.exec(&["ip", "addr", "add", "203.0.113.1/25", "dev", "br1"]);
        for i in 0..n {
            let (ns, ri) = real_on_bridge(&far, "br1", &id, i);
            let ip = format!("203.0.113.{}", 11 + i);
            ns.exec(&["ip", "addr", "add", &format!("{ip}/25"), "dev", &ri]);
            ns.exec(&["ip", "route", "add", "default", "via", "203.0.113.1"]);
            t.reals.push(Real {
                ns,
                ip,
                procs: Vec::new(),
            });
        }
        t.router = Some(near);
        t.more = vec![far];
        t
    }

    /// The far topology with two reals, each running nginx on 8080
    /// (`listen_extra` after its address, `http` in its `http` block; see
    /// [`serve_nginx_with`](Self::serve_nginx_with)) and the UDP echo
    /// server on 5354, and 4 client addresses; returns it and nginx's
    /// directories.
    pub fn far_web(listen_extra: &str, http: &str) -> (LbTopo, Vec<std::path::PathBuf>) {
        let mut t = LbTopo::far(2, 4);
        let roots = (0..2)
            .map(|i| {
                let root = t.serve_nginx_with(i, "0.0.0.0", 8080, listen_extra, http);
                t.serve(i, "udp", "0.0.0.0", 5354);
                root
            })
            .collect();
        (t, roots)
    }

    /// GETs `http://VIP/id` `n` times, from the client addresses
    /// 192.0.2.10..13 in turn: how many times each real answered. A failed
    /// request panics with the appliance's figures.
    pub fn ids(&self, d: &Daemon, n: usize) -> std::collections::BTreeMap<String, usize> {
        let mut m = std::collections::BTreeMap::new();
        for i in 0..n {
            let src = format!("192.0.2.{}", 10 + i % 4);
            let body = self
                .get(&src, &format!("http://{VIP}/id"))
                .unwrap_or_else(|| panic!("request {i} failed: {:#}", d.ctl_json(&["stats"])));
            *m.entry(String::from_utf8(body).unwrap()).or_insert(0) += 1;
        }
        m
    }

    /// Starts the user-space tunnel endpoint on real `i`: `kind` "ipip"
    /// (a raw socket for IP protocol 4), "gue" (a UDP socket on `port`),
    /// or "ipip6" and "gue6" for IPv6, takes each tunnelled packet, writes
    /// the inner packet into `tun0`, and logs its outer source address and
    /// UDP source port (one line a packet) to the returned file.
    pub fn decapsulate(&mut self, i: usize, kind: &str, port: u16) -> std::path::PathBuf {
        let log = self.dir.path().join(format!("decap{i}.log"));
        std::fs::write(&log, "").unwrap();
        let script = self.dir.path().join("decap.py");
        let (script, port) = (script.to_str().unwrap(), port.to_string());
        self.keep_on_real(i, &["python3", script, kind, &port, log.to_str().unwrap()]);
        let ready = wait_for(Duration::from_secs(20), || {
            std::fs::read_to_string(&log)
                .ok()
                .filter(|l| l.starts_with("ready"))
        });
        assert!(ready.is_some(), "tunnel endpoint on real {i} did not start");
        log
    }

    /// Starts a server on real `i`: kind "http" (serves a directory with
    /// `id` = "real-i" and `blob`, 256 KiB of fixed pseudo-random bytes),
    /// "udp" or "echo" (both prefix replies with "real-i:"). `bind` is the
    /// address to listen on (the real's own, or the VIP for DR).
    pub fn serve(&mut self, i: usize, kind: &str, bind: &str, port: u16) {
        let ident = format!("real-{i}");
        let www = self.dir.path().join(format!("www{i}"));
        std::fs::create_dir_all(&www).unwrap();
        std::fs::write(www.join("id"), &ident).unwrap();
        std::fs::write(www.join("blob"), blob()).unwrap();
        let script = self.dir.path().join("servers.py");
        let (script, p) = (script.to_str().unwrap(), port.to_string());
        self.keep_on_real(
            i,
            &[
                "python3",
                script,
                kind,
                bind,
                &p,
                &ident,
                www.to_str().unwrap(),
            ],
        );
        // Wait (bounded) until it listens.
        let proto = if kind == "udp" { "-uln" } else { "-tln" };
        let ok = wait_for(Duration::from_secs(20), || {
            let o = self.reals[i].ns.run(
                &["ss", "-H", proto, "sport", "=", &format!(":{port}")],
                Duration::from_secs(5),
            );
            (!String::from_utf8_lossy(&o.stdout).trim().is_empty()).then_some(())
        });
        assert!(ok.is_some(), "server {kind} on real {i} did not start");
    }

    /// Starts nginx on real `i`, listening on `bind:port`, serving `id`
    /// ("real-i") and `blob` like [`serve`](Self::serve)'s http kind.
    pub fn serve_nginx(&mut self, i: usize, bind: &str, port: u16) {
        self.serve_nginx_with(i, bind, port, "", "");
    }

    /// The same with `listen_extra` after the `listen` address (say
    /// `proxy_protocol`) and `http` added to nginx's `http` block (a log
    /// format and an `access_log`, say; `{root}` is nginx's directory,
    /// which it returns).
    pub fn serve_nginx_with(
        &mut self,
        i: usize,
        bind: &str,
        port: u16,
        listen_extra: &str,
        http: &str,
    ) -> std::path::PathBuf {
        let root = self.dir.path().join(format!("nginx{i}"));
        let www = root.join("www");
        std::fs::create_dir_all(&www).unwrap();
        std::fs::write(www.join("id"), format!("real-{i}")).unwrap();
        std::fs::write(www.join("blob"), blob()).unwrap();
        let p = start_nginx(
            &self.reals[i].ns,
            &root,
            &www,
            &format!("{bind}:{port} {listen_extra}"),
            port,
            &http.replace("{root}", &root.display().to_string()),
        );
        self.reals[i].procs.push(p);
        root
    }

    /// Stops every server process of real `i`.
    pub fn stop_servers(&mut self, i: usize) {
        self.reals[i].procs.clear();
    }

    /// Starts a server agent on real `i` at `port`: it answers every
    /// connection with the current contents of the returned file.
    pub fn serve_agent(&mut self, i: usize, port: u16, reply: &str) -> std::path::PathBuf {
        let file = self.dir.path().join(format!("agent{i}.txt"));
        std::fs::write(&file, reply).unwrap();
        let ip = self.reals[i].ip.clone();
        let script = format!(
            "import socket\nl=socket.socket()\nl.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n\
             l.bind(('{ip}',{port}))\nl.listen(16)\nwhile True:\n c,_=l.accept()\n c.sendall(open('{f}','rb').read())\n c.close()\n",
            f = file.display()
        );
        self.keep_on_real(i, &["python3", "-c", &script]);
        file
    }

    /// Starts `cmd` in real `i`'s namespace, quiet, and keeps it with the
    /// real's processes (killed on drop).
    pub fn keep_on_real(&mut self, i: usize, cmd: &[&str]) {
        let child = self.reals[i]
            .ns
            .command(cmd)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {cmd:?} on real {i}: {e}"));
        self.reals[i].procs.push(Proc(child));
    }

    /// The sluice configuration for this topology (ports and addresses),
    /// with `extra` (services, timeouts) appended.
    pub fn config(&self, workers: &[u32], lcores: Option<&str>, extra: &str) -> String {
        let client = format!("net_af_packet0,iface={}", self.lb_client_if);
        let mut c = TestConfig::new()
            .memory_mb(512)
            .workers(workers)
            .lcores(lcores)
            .idle_sleep_us(100)
            .port("client", &client, &["192.0.2.1/24"]);
        if let Some(ls) = &self.lb_server_if {
            c = c.port_with(
                "servers",
                &format!("net_af_packet1,iface={ls}"),
                &["198.51.100.1/24"],
                "kernel_interface = \"sl-servers\"\n",
            );
        }
        c.then(extra).render()
    }

    /// One HTTP GET from the client namespace, from source address `src`;
    /// returns the body or None on failure.
    pub fn get(&self, src: &str, url: &str) -> Option<Vec<u8>> {
        let o = self.client.run(
            &[
                "curl",
                "-s",
                "-f",
                "--max-time",
                "5",
                "--interface",
                src,
                url,
            ],
            Duration::from_secs(10),
        );
        o.status.success().then_some(o.stdout)
    }
}

impl LbTopo {
    /// Runs the client helper in the client namespace; returns its stdout
    /// lines, panicking with its stderr if it fails.
    pub fn client_py(&self, args: &[&str], limit: Duration) -> Vec<String> {
        let script = self.dir.path().join("client.py");
        let mut a = vec!["python3", script.to_str().unwrap()];
        a.extend_from_slice(args);
        let o = self.client.run(&a, limit);
        assert!(
            o.status.success(),
            "client {args:?} failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Starts `n` connections at once from the client addresses `srcs`
    /// to `vip:port`, the moment `trigger` returns (the client is started
    /// and waiting before `trigger` runs); returns the real that answered
    /// each, by count.
    pub fn burst_after(
        &self,
        vip: &str,
        port: u16,
        n: usize,
        srcs: &[String],
        trigger: impl FnOnce(),
    ) -> std::collections::BTreeMap<String, usize> {
        use std::io::{BufRead, BufReader, Read, Write};
        let mut child = self.client_py_spawn_stdin(&[
            "burst",
            vip,
            &port.to_string(),
            &n.to_string(),
            &srcs.join(","),
        ]);
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready", "the burst client did not start");
        trigger();
        child.stdin.take().unwrap().write_all(b"go\n").unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while child.try_wait().unwrap().is_none() {
            assert!(std::time::Instant::now() < deadline, "burst client hung");
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut rest = String::new();
        out.read_to_string(&mut rest).unwrap();
        let mut m = std::collections::BTreeMap::new();
        for id in rest.lines() {
            *m.entry(id.to_string()).or_insert(0) += 1;
        }
        m
    }

    /// Starts the client helper in the background, its stdin a pipe.
    pub fn client_py_spawn_stdin(&self, args: &[&str]) -> std::process::Child {
        let script = self.dir.path().join("client.py");
        let mut a = vec!["timeout", "60", "python3", script.to_str().unwrap()];
        a.extend_from_slice(args);
        self.client
            .command(&a)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn client")
    }

    /// Starts the client helper in the background.
    pub fn client_py_spawn(&self, args: &[&str]) -> std::process::Child {
        let script = self.dir.path().join("client.py");
        let mut a = vec!["python3", script.to_str().unwrap()];
        a.extend_from_slice(args);
        self.client
            .command(&a)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn client")
    }
}

/// Starts nginx in `ns` with its files under `root`, serving `www` on
/// `listen` (an address:port, or a port), with `http` added to its http
/// block; waits (bounded) until `port` is listened on.
pub fn start_nginx(
    ns: &Netns,
    root: &std::path::Path,
    www: &std::path::Path,
    listen: &str,
    port: u16,
    http: &str,
) -> Proc {
    std::fs::create_dir_all(root).unwrap();
    let conf = root.join("nginx.conf");
    std::fs::write(
        &conf,
        format!(
            "daemon off;\nmaster_process off;\nuser root;\npid {r}/nginx.pid;\nerror_log {r}/error.log;\n\
             events {{ worker_connections 1024; }}\n\
             http {{ {log}client_body_temp_path {r}/tmp; proxy_temp_path {r}/tmp;\n\
             fastcgi_temp_path {r}/tmp; uwsgi_temp_path {r}/tmp; scgi_temp_path {r}/tmp;\n\
             default_type text/plain; {http}\n\
             server {{ listen {listen}; root {w}; location / {{ }} }} }}\n",
            r = root.display(),
            w = www.display(),
            log = if http.contains("access_log") {
                ""
            } else {
                "access_log off; "
            },
        ),
    )
    .unwrap();
    let child = ns
        .command(&[
            "nginx",
            "-p",
            root.to_str().unwrap(),
            "-c",
            conf.to_str().unwrap(),
            "-e",
            &format!("{}/error.log", root.display()),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start nginx");
    let p = Proc(child);
    let ok = wait_for(Duration::from_secs(20), || {
        let o = ns.run(
            &["ss", "-H", "-tln", "sport", "=", &format!(":{port}")],
            Duration::from_secs(5),
        );
        (!String::from_utf8_lossy(&o.stdout).trim().is_empty()).then_some(())
    });
    assert!(
        ok.is_some(),
        "nginx in {} did not start: {}",
        ns.name,
        std::fs::read_to_string(root.join("error.log")).unwrap_or_default()
    );
    p
}

/// 256 KiB of deterministic pseudo-random bytes.
pub fn blob() -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..256 * 1024)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
