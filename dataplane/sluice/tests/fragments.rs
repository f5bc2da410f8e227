//! Fragments end to end, through NAT: a kernel client sends 3000-byte UDP
//! datagrams to the VIP (its kernel fragments them) and a kernel real
//! answers each with 4000 bytes (its kernel fragments them too); every
//! answer comes back whole, checked byte for byte by the client.
//!
//! The appliance's ports are `net_pcap` on the namespace interfaces
//! here, not `net_af_packet`: the latter's packet fanout reassembles
//! fragments in the kernel before the appliance sees them, which would
//! test the kernel, not Sluice.

mod common;

use common::topo::*;
use common::*;
use std::time::Duration;

/// The real's server: answers each datagram with `answer` bytes: the
/// real's name, the request's length, then a pattern.
const BIG_UDP_SERVER: &str = r#"
import socket, sys
ident, port, answer = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", port))
while True:
    data, peer = s.recvfrom(65535)
    head = ("%s:%d:" % (ident, len(data))).encode()
    body = bytes((i * 7 + 3) % 256 for i in range(answer - len(head)))
    s.sendto(head + body, peer)
"#;

/// The client: `n` datagrams of `size` bytes, each from a new socket;
/// checks each answer whole; prints the real of each.
const BIG_UDP_CLIENT: &str = r#"
import socket, sys
vip, port, n, size, answer = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
for i in range(n):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(3)
    payload = bytes((i + j) % 256 for j in range(size))
    for attempt in range(3):
        s.sendto(payload, (vip, port))
        try:
            data, _ = s.recvfrom(65535)
            break
        except socket.timeout:
            continue
    else:
        sys.exit("datagram %d: no answer" % i)
    ident, length, rest = data.split(b":", 2)
    head = len(ident) + len(length) + 2
    want = bytes((k * 7 + 3) % 256 for k in range(answer - head))
    if len(data) != answer or int(length) != size or rest != want:
        sys.exit("datagram %d: answer of %d bytes, damaged" % (i, len(data)))
    print(ident.decode())
    s.close()
"#;

#[test]
fn big_udp_datagrams_and_answers_through_nat_arrive_whole() {
    if !require_root() {
        return;
    }
    let mut t = LbTopo::nat(2, 1);
    let server = t.dir.path().join("big_udp_server.py");
    std::fs::write(&server, BIG_UDP_SERVER).unwrap();
    for i in 0..2 {
        let ident = format!("real-{i}");
        t.keep_on_real(
            i,
            &["python3", server.to_str().unwrap(), &ident, "5353", "4000"],
        );
    }
    let svc = r#"
[[service]]
protocol = "udp"
vip = "192.0.2.100"
port = 53
scheduler = "rr"
[[service.real]]
ip = "198.51.100.11"
port = 5353
[[service.real]]
ip = "198.51.100.12"
port = 5353
"#;
    let cfg = t
        .config(&[1], None, svc)
        .replace("net_af_packet0,iface=", "net_pcap0,iface=")
        .replace("net_af_packet1,iface=", "net_pcap1,iface=");
    assert!(cfg.contains("net_pcap0,iface=") && cfg.contains("net_pcap1,iface="));
    let d = Daemon::start(Some(&t.lb), &cfg);
    let client = t.dir.path().join("big_udp_client.py");
    std::fs::write(&client, BIG_UDP_CLIENT).unwrap();
    let o = t.client.run(
        &[
            "python3",
            client.to_str().unwrap(),
            VIP,
            "53",
            "20",
            "3000",
            "4000",
        ],
        Duration::from_secs(120),
    );
    assert!(
        o.status.success(),
        "{} {:#}",
        String::from_utf8_lossy(&o.stderr),
        d.ctl_json(&["stats"])
    );
    let ids: Vec<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(ids.len(), 20);
    assert!(
        ids.contains(&"real-0".to_string()) && ids.contains(&"real-1".to_string()),
        "{ids:?}"
    );
    // Each request is 3 fragments and each answer 3: the first of each
    // remembered, the other two followed.
    let s = d.ctl_json(&["stats"]);
    let remembered = workers_sum(&s, "/fragments_remembered");
    let followed = workers_sum(&s, "/fragments_followed");
    assert!(
        remembered >= 40,
        "{remembered} first fragments remembered: {s:#}"
    );
    assert!(followed >= 80, "{followed} later fragments followed: {s:#}");
    assert_eq!(drops(&s, "fragment_unmatched"), 0, "{s:#}");
    let exit = d.stop();
    assert_eq!(exit.code, Some(0), "{}", exit.log);
}
