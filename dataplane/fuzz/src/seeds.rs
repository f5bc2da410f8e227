//! Starting inputs for each target: valid, interesting cases the fuzzer
//! mutates from, and that `cargo test` always replays.

use crate::frames::templates;

/// A forwarder step: header flags, template, clock advance, payload.
fn step(flags: u8, template: u8, advance: u8, payload: &[u8]) -> Vec<u8> {
    let mut s = vec![flags, template, advance, payload.len() as u8];
    s.extend_from_slice(payload);
    s
}

/// Repair both checksums and address the port.
const CLEAN: u8 = 0x83;

fn forwarder() -> Vec<Vec<u8>> {
    let n = templates().len() as u8;
    let mut out: Vec<Vec<u8>> = (0..n).map(|t| step(CLEAN, t, 0, &[])).collect();
    // A connection's life: SYN, the real's SYN-ACK, the client's data, a
    // reset; on both workers; then housekeeping much later.
    let mut life = Vec::new();
    for flags in [CLEAN, CLEAN | 0x10] {
        life.extend(step(flags, 0, 1, &[]));
        life.extend(step(flags, 10, 1, &[]));
        life.extend(step(flags, 1, 1, &[]));
        life.extend(step(flags, 11, 1, &[]));
    }
    life.extend(step(CLEAN | 0x08, 0, 255, &[]));
    out.push(life);
    // Many clients: fill the table (the client port is byte 14 + 20 + 1).
    let mut fill = Vec::new();
    for i in 0..64u8 {
        fill.extend(step(CLEAN, 0, 0, &[35, i, 29, i]));
    }
    out.push(fill);
    // A UDP flow and its answer, an ICMP error each way, ARP.
    let mut mixed = Vec::new();
    for t in [8, 12, 17, 18, 15, 16, 14, 13] {
        mixed.extend(step(CLEAN, t, 2, &[]));
    }
    out.push(mixed);
    // A proxied connection (the wlc service is syn_proxy = "on"): SYN,
    // the client's ACK to the cookie, its request (parked), the real's
    // SYN-ACK, the request again; then a flood of SYNs to an auto service
    // (the lab engages at 4 half-open) and the ACK to the last cookie.
    let mut proxied = Vec::new();
    for (t, advance) in [(6, 1), (0xf0, 1), (0xf1, 0), (0xf2, 1), (0xf1, 1)] {
        proxied.extend(step(CLEAN, t, advance, &[]));
    }
    for i in 0..8u8 {
        proxied.extend(step(CLEAN, 0, 0, &[35, i, 29, i]));
    }
    proxied.extend(step(CLEAN, 0xf0, 1, &[]));
    proxied.extend(step(CLEAN, 0xf2, 1, &[]));
    out.push(proxied);
    // Fragments of a UDP query (template 8) and of its answer (template
    // 12): the later one before the first (held, then followed), then a
    // first fragment and its later one in order. Bytes 20 and 21 are the
    // IPv4 flags and offset (MF; an offset of 8 bytes).
    let first = [20, 0x20];
    let later = [20, 0x00, 21, 0x01];
    let mut fragments = Vec::new();
    for (t, parts) in [
        (8, [&later[..], &first[..]]),
        (12, [&first[..], &later[..]]),
    ] {
        for part in parts {
            fragments.extend(step(CLEAN, t, 0, part));
        }
    }
    out.push(fragments);
    // The big segment to the tunnel service (the last template) without
    // DF: too big for the tunnel, sent in two outer fragments.
    out.push(step(CLEAN, n - 1, 0, &[20, 0x00]));
    // Full NAT with the PROXY protocol: the SYN, the real's SYN-ACK to
    // the local address it came from, the client's ACK with data (the
    // header in front), the real's answer again; a datagram (always a
    // header); on both workers.
    let mut full_nat = Vec::new();
    for flags in [CLEAN, CLEAN | 0x10] {
        full_nat.extend(step(flags, n - 6, 1, &[]));
        full_nat.extend(step(CLEAN, 0xf3, 1, &[]));
        full_nat.extend(step(flags, n - 5, 1, &[]));
        full_nat.extend(step(CLEAN, 0xf3, 1, &[]));
        full_nat.extend(step(flags, n - 4, 1, &[]));
    }
    out.push(full_nat);
    // Raw bytes, and a truncated SYN.
    out.push(step(0x04, 0, 0, &[0xff; 20]));
    out.push(step(CLEAN | 0x20, 0, 0, &[40]));
    out
}

/// IPv6 frames for the parsers and the responder: TCP and UDP through
/// extension headers, a fragment, a Packet Too Big, neighbour
/// solicitations (for the port's address, duplicate address detection)
/// and an advertisement, and an echo request.
fn ipv6() -> Vec<Vec<u8>> {
    use sluice_core::flow6::build::{frame6, icmp6_error, ip6_packet, Ext, Spec6};
    use sluice_core::local6::{solicit, unsolicited_advert, write_nd_frame, ND_FRAME_LEN};
    use sluice_core::MacAddr;
    use std::net::Ipv6Addr;
    let ours: Ipv6Addr = "2001:db8::1".parse().unwrap();
    let host: Ipv6Addr = "2001:db8::a".parse().unwrap();
    let tcp = Spec6::default();
    let mut out = vec![
        frame6(&tcp),
        frame6(&Spec6 {
            ext: vec![Ext::HopByHop(0), Ext::DestOpts(1), Ext::Auth(0)],
            ..Spec6::default()
        }),
        frame6(&Spec6 {
            proto: 17,
            ext: vec![Ext::Routing {
                segments_left: 0,
                n: 1,
            }],
            ..Spec6::default()
        }),
        frame6(&Spec6 {
            ext: vec![Ext::Fragment {
                offset: 0,
                more: true,
                id: 1,
            }],
            ..Spec6::default()
        }),
        icmp6_error(2, 0, 1280u32.to_be_bytes(), host, ours, &ip6_packet(&tcp)),
        frame6(&Spec6 {
            proto: 58,
            src: host,
            dst: ours,
            payload: vec![128, 0, 0, 0, 0, 1, 0, 1, b'p', b'i', b'n', b'g'],
            ..Spec6::default()
        }),
    ];
    let host_mac = MacAddr([2, 0, 0, 0, 0, 0x0a]);
    let mut f = vec![0u8; ND_FRAME_LEN];
    solicit(&mut f, host_mac, host, ours, None);
    out.push(f.clone());
    let group = sluice_core::wire::ipv6::solicited_node(&ours);
    let dad = sluice_core::wire::icmpv6::Nd {
        ty: sluice_core::wire::icmpv6::TYPE_NEIGHBOUR_SOLICIT,
        flags: 0,
        target: ours,
        mac: None,
    };
    let mut d = vec![0u8; ND_FRAME_LEN];
    let n = write_nd_frame(
        &mut d,
        host_mac,
        MacAddr([0x33, 0x33, 0xff, 0, 0, 1]),
        Ipv6Addr::UNSPECIFIED,
        group,
        &dad,
    );
    out.push(d[..n].to_vec());
    unsolicited_advert(&mut f, host_mac, host);
    out.push(f);
    out
}

fn text(lines: &[&str]) -> Vec<Vec<u8>> {
    lines.iter().map(|l| l.as_bytes().to_vec()).collect()
}

/// The seeds of target `name`.
pub fn seeds(name: &str) -> Vec<Vec<u8>> {
    match name {
        "forwarder" => forwarder(),
        "parse" | "local" => templates()
            .into_iter()
            .map(|(_, f)| f)
            .chain(ipv6())
            .collect(),
        "control" => text(&[
            r#"{"version":2,"request":{"cmd":"status"}}"#,
            r#"{"version":2,"request":{"cmd":"stats"}}"#,
            r#"{"version":2,"request":{"cmd":"list","stats":true}}"#,
            r#"{"version":2,"request":{"cmd":"add_service","spec":{"protocol":"tcp","vip":"192.0.2.100","port":80,"scheduler":"rr","real":[{"ip":"198.51.100.11","port":8080}]}}}"#,
            r#"{"version":1,"request":{"cmd":"status"}}"#,
        ]),
        "config" => text(&[
            "[eal]\nfile_prefix = \"x\"\n[dataplane]\nworkers = [1]\n[control]\nsocket = \"/tmp/s.sock\"\n[[port]]\nname = \"client\"\ndevice = \"net_null0\"\naddresses = [\"192.0.2.1/24\"]\n[[service]]\nprotocol = \"tcp\"\nvip = \"192.0.2.100\"\nport = 80\nscheduler = \"wrr\"\npassive_health = { max_held_out_percent = 50 }\npersistence = { timeout_secs = 60, netmask = 24 }\n[[service.real]]\nip = \"192.0.2.11\"\nport = 80\nweight = 3\n",
        ]),
        "agent" => text(&["75%\n", "drain", "up ready 100% maxconn:10 # hi", "down#", "maint,50%"]),
        _ => Vec::new(),
    }
}
