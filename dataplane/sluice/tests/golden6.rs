//! IPv6 golden packets through net_pcap: neighbour solicitations and
//! echo answered, a NAT66 SYN, a Packet Too Big about a reply translated
//! for its real, and a hop limit running out, each compared byte for byte
//! with frames built here from scratch (checksums from sluice-core's test
//! oracle, written independently of its checksum code); every other frame
//! is counted as a drop under its reason.

mod common;

use common::*;
use std::net::Ipv6Addr;
use std::path::Path;
use std::time::Duration;

/// The pcap PMD's made-up MAC for its first device ("pcap", 0).
const PORT_MAC: [u8; 6] = [0x02, 0x70, 0x63, 0x61, 0x70, 0x00];
const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0a];
const REAL_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x11];
const ROUTER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0xfe];
const ALL_NODES_MAC: [u8; 6] = [0x33, 0x33, 0, 0, 0, 1];

const OURS: &str = "2001:db8:1::1";
const CLIENT: &str = "2001:db8:1::a";
const REAL: &str = "2001:db8:1::11";
const ROUTER: &str = "2001:db8:1::fe";
const VIP: &str = "2001:db8::100";

const PAYLOAD: &[u8] = b"golden ping6 payload 0123456789";

fn a(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

/// The Internet checksum over the IPv6 pseudo-header and `seg`, as stored.
fn sum6(src: &str, dst: &str, next: u8, seg: &[u8]) -> [u8; 2] {
    let mut ph = Vec::new();
    ph.extend_from_slice(&a(src).octets());
    ph.extend_from_slice(&a(dst).octets());
    ph.extend_from_slice(&(seg.len() as u32).to_be_bytes());
    ph.extend_from_slice(&[0, 0, 0, next]);
    sluice_core::testing::inet_checksum(&[&ph, seg]).to_be_bytes()
}

fn frame(dst: [u8; 6], src: [u8; 6], ip: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&[0x86, 0xdd]);
    f.extend_from_slice(ip);
    f
}

/// An IPv6 packet with no extension headers.
fn ip6(src: &str, dst: &str, hops: u8, next: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x60, 0, 0, 0];
    p.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    p.extend_from_slice(&[next, hops]);
    p.extend_from_slice(&a(src).octets());
    p.extend_from_slice(&a(dst).octets());
    p.extend_from_slice(payload);
    p
}

/// An ICMPv6 message, its checksum computed.
fn icmp6(src: &str, dst: &str, ty: u8, code: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![ty, code, 0, 0];
    m.extend_from_slice(body);
    let c = sum6(src, dst, 58, &m);
    m[2..4].copy_from_slice(&c);
    m
}

/// A neighbour solicitation (135) or advertisement (136) body: flags,
/// target, and a link-layer address option (1 source, 2 target).
fn nd_body(flags: u8, target: &str, opt: u8, mac: [u8; 6]) -> Vec<u8> {
    let mut b = vec![flags, 0, 0, 0];
    b.extend_from_slice(&a(target).octets());
    b.extend_from_slice(&[opt, 1]);
    b.extend_from_slice(&mac);
    b
}

/// A TCP segment with no options, its checksum computed.
fn tcp(src: (&str, u16), dst: (&str, u16), seq: u32, flags: u8, data: &[u8]) -> Vec<u8> {
    let mut s = Vec::new();
    s.extend_from_slice(&src.1.to_be_bytes());
    s.extend_from_slice(&dst.1.to_be_bytes());
    s.extend_from_slice(&seq.to_be_bytes());
    s.extend_from_slice(&[0, 0, 0, 0, 0x50, flags, 0xfa, 0xf0, 0, 0, 0, 0]);
    s.extend_from_slice(data);
    let c = sum6(src.0, dst.0, 6, &s);
    s[16..18].copy_from_slice(&c);
    s
}

/// A neighbour solicitation from `src` (at `mac`) for `target`, to the
/// target's solicited-node group.
fn solicit(src: &str, mac: [u8; 6], target: &str, hops: u8) -> Vec<u8> {
    let t = a(target).octets();
    let group = format!("ff02::1:ff{:02x}:{:02x}{:02x}", t[13], t[14], t[15]);
    let dst_mac = [0x33, 0x33, 0xff, t[13], t[14], t[15]];
    let m = icmp6(src, &group, 135, 0, &nd_body(0, target, 1, mac));
    frame(dst_mac, mac, &ip6(src, &group, hops, 58, &m))
}

/// The advertisement of our address answering `to`'s solicitation.
fn advert_to(to: &str, to_mac: [u8; 6]) -> Vec<u8> {
    let m = icmp6(OURS, to, 136, 0, &nd_body(0x60, OURS, 2, PORT_MAC));
    frame(to_mac, PORT_MAC, &ip6(OURS, to, 255, 58, &m))
}

/// An unsolicited advertisement of `addr` to all nodes (override set).
fn unsolicited(addr: &str) -> Vec<u8> {
    let m = icmp6(addr, "ff02::1", 136, 0, &nd_body(0x20, addr, 2, PORT_MAC));
    frame(ALL_NODES_MAC, PORT_MAC, &ip6(addr, "ff02::1", 255, 58, &m))
}

fn echo(src: &str, dst: &str, ty: u8, hops: u8) -> Vec<u8> {
    let mut body = vec![0xbe, 0xef, 0, 1];
    body.extend_from_slice(PAYLOAD);
    ip6(src, dst, hops, 58, &icmp6(src, dst, ty, 0, &body))
}

/// The client's SYN to the VIP from `port`, with hop limit `hops`.
fn syn(port: u16, hops: u8) -> Vec<u8> {
    let seg = tcp((CLIENT, port), (VIP, 80), 1000, 0x02, b"");
    ip6(CLIENT, VIP, hops, 6, &seg)
}

/// The reply the real sent for the client's connection from port 40000
/// (a SYN-ACK with data, too big for the client's path), as the real sent
/// it and as it left the appliance, from the VIP.
fn reply(from: (&str, u16)) -> Vec<u8> {
    let seg = tcp(from, (CLIENT, 40000), 5000, 0x12, &[0x5a; 64]);
    ip6(from.0, CLIENT, 64, 6, &seg)
}

/// A Packet Too Big (MTU 1280) from the router to `to`, quoting `quoted`.
fn too_big(to: &str, hops: u8, quoted: &[u8]) -> Vec<u8> {
    let mut body = 1280u32.to_be_bytes().to_vec();
    body.extend_from_slice(quoted);
    ip6(ROUTER, to, hops, 58, &icmp6(ROUTER, to, 2, 0, &body))
}

/// Frames in, and the frames each must produce (in order), after the
/// announcements.
fn answered() -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
    let client_syn = syn(40000, 64);
    let seg = tcp((CLIENT, 40000), (REAL, 8080), 1000, 0x02, b"");
    let to_real = ip6(CLIENT, REAL, 63, 6, &seg);
    let expiring = syn(40001, 1);
    let mut quote = Vec::new();
    quote.extend_from_slice(&[0; 4]);
    quote.extend_from_slice(&expiring);
    vec![
        // The client solicits our address: advertised, solicited.
        (
            solicit(CLIENT, CLIENT_MAC, OURS, 255),
            Some(advert_to(CLIENT, CLIENT_MAC)),
        ),
        // It pings it: the echo comes back.
        (
            frame(PORT_MAC, CLIENT_MAC, &echo(CLIENT, OURS, 128, 64)),
            Some(frame(CLIENT_MAC, PORT_MAC, &echo(OURS, CLIENT, 129, 64))),
        ),
        // The real solicits us too (and so is learned).
        (
            solicit(REAL, REAL_MAC, OURS, 255),
            Some(advert_to(REAL, REAL_MAC)),
        ),
        // NAT66: the SYN to the VIP goes to the real, hop limit one less.
        (
            frame(PORT_MAC, CLIENT_MAC, &client_syn),
            Some(frame(REAL_MAC, PORT_MAC, &to_real)),
        ),
        // A router says the VIP's reply was too big: the real hears it,
        // about the packet it sent.
        (
            frame(PORT_MAC, ROUTER_MAC, &too_big(VIP, 64, &reply((VIP, 80)))),
            Some(frame(
                REAL_MAC,
                PORT_MAC,
                &too_big(REAL, 63, &reply((REAL, 8080))),
            )),
        ),
        // A SYN whose hop limit runs out here: time exceeded, quoting it.
        (
            frame(PORT_MAC, CLIENT_MAC, &expiring),
            Some(frame(
                CLIENT_MAC,
                PORT_MAC,
                &ip6(OURS, CLIENT, 64, 58, &icmp6(OURS, CLIENT, 3, 0, &quote)),
            )),
        ),
    ]
}

/// Frames dropped, each for its reason.
fn dropped() -> Vec<(Vec<u8>, &'static str)> {
    let mut bad_sum = echo(CLIENT, OURS, 128, 64);
    bad_sum[40 + 2] ^= 0xff;
    let mut fragment = syn(40002, 64);
    // A fragment header (more fragments follow) before the TCP header,
    // cut after 8 bytes of it: a first fragment too short for its TCP
    // header (RFC 1858), which no flow can be told from.
    fragment[6] = 44;
    fragment.splice(40..40, [6, 0, 0, 1, 0, 0, 0, 7]);
    fragment.truncate(40 + 8 + 8);
    let len = (fragment.len() - 40) as u16;
    fragment[4..6].copy_from_slice(&len.to_be_bytes());
    let mut routed = syn(40003, 64);
    // A routing header (type 3) with a segment left.
    routed[6] = 43;
    routed.splice(40..40, [6, 0, 3, 1, 0, 0, 0, 0]);
    let len = (routed.len() - 40) as u16;
    routed[4..6].copy_from_slice(&len.to_be_bytes());
    let claim = icmp6(
        CLIENT,
        "ff02::1",
        136,
        0,
        &nd_body(0x20, OURS, 2, CLIENT_MAC),
    );
    vec![
        (
            solicit(CLIENT, CLIENT_MAC, "2001:db8:1::99", 255),
            "not_for_us",
        ),
        (solicit(CLIENT, CLIENT_MAC, OURS, 64), "bad_nd"),
        (frame(PORT_MAC, CLIENT_MAC, &bad_sum), "bad_icmp"),
        (frame(PORT_MAC, CLIENT_MAC, &fragment), "ipv6_fragment"),
        (frame(PORT_MAC, CLIENT_MAC, &routed), "bad_ipv6_extension"),
        (
            frame(
                ALL_NODES_MAC,
                CLIENT_MAC,
                &ip6(CLIENT, "ff02::1", 255, 58, &claim),
            ),
            "nd_claims_our_address",
        ),
    ]
}

#[test]
fn neighbour_discovery_echo_nat66_and_errors_golden_packets() {
    if !require_root() {
        return;
    }
    let dir = TempDir::new();
    let inp = dir.path().join("in.pcap");
    let out = dir.path().join("out.pcap");
    let answered = answered();
    let dropped = dropped();
    let mut frames: Vec<Vec<u8>> = answered.iter().map(|(f, _)| f.clone()).collect();
    frames.extend(dropped.iter().map(|(f, _)| f.clone()));
    pcap::write(&inp, &frames);
    let (stats, mac) = run_pcap(&inp, &out, frames.len() as u64);
    assert_eq!(mac, PORT_MAC, "the MAC the frames were built for");
    let sent = pcap::read(&out);
    // The announcements: our address and the VIP, to all nodes.
    let (announced, rest): (Vec<_>, Vec<_>) =
        sent.into_iter().partition(|f| f[..6] == ALL_NODES_MAC);
    let mut want = vec![unsolicited(OURS), unsolicited(VIP)];
    let mut got = announced;
    want.sort();
    got.sort();
    assert_eq!(got, want, "unsolicited advertisements");
    let expected: Vec<Vec<u8>> = answered.into_iter().filter_map(|(_, o)| o).collect();
    assert_eq!(rest.len(), expected.len(), "frames out: {rest:02x?}");
    for (i, (g, w)) in rest.iter().zip(&expected).enumerate() {
        assert_eq!(g, w, "frame {i} differs:\n got {g:02x?}\nwant {w:02x?}");
    }
    for (_, reason) in &dropped {
        let want = dropped.iter().filter(|(_, r)| r == reason).count() as u64;
        assert_eq!(drops(&stats, reason), want, "{reason}: {stats:#}");
    }
    assert_eq!(workers_sum(&stats, "/nd_solicits_answered"), 2);
    assert_eq!(workers_sum(&stats, "/icmpv6_echo_answered"), 1);
    assert_eq!(workers_sum(&stats, "/time_exceeded_sent"), 1);
}

/// Runs the daemon on a pcap port reading `inp` and writing `out`, with a
/// NAT66 service, until it has received `n` frames; returns its statistics
/// and its port's MAC.
fn run_pcap(inp: &Path, out: &Path, n: u64) -> (serde_json::Value, [u8; 6]) {
    let pcap_port = format!(
        "net_pcap0,rx_pcap={},tx_pcap={}",
        inp.display(),
        out.display()
    );
    let cfg = TestConfig::new()
        .small_rings()
        .idle_sleep_us(500)
        .port("pcap", &pcap_port, &["2001:db8:1::1/64"])
        .then(&format!(
            r#"
[[service]]
protocol = "tcp"
vip = "{VIP}"
port = 80
[[service.real]]
ip = "{REAL}"
port = 8080
"#
        ))
        .render();
    let d = Daemon::start(None, &cfg);
    let stats = wait_for(Duration::from_secs(30), || {
        let s = d.ctl_json(&["stats"]);
        (num(&s, "/result/ports/0/traffic/rx_packets") >= n).then_some(s)
    })
    .expect("the daemon did not receive every frame of the pcap");
    let st = d.ctl_json(&["status"]);
    let m = st["result"]["ports"][0]["mac"]
        .as_str()
        .unwrap()
        .to_string();
    let mac: Vec<u8> = m
        .split(':')
        .map(|b| u8::from_str_radix(b, 16).unwrap())
        .collect();
    let exit = d.stop();
    assert_eq!(exit.code, Some(0), "{}", exit.log);
    (stats, mac.try_into().unwrap())
}
