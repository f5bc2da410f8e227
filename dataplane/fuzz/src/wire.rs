//! The targets that read frames without state: the parsers (IPv4 and
//! IPv6) and the port's ARP, neighbour discovery and echo responder.

use sluice_core::local::{Handled, LocalPort, Verdict};
use sluice_core::testing::icmp_checksum;
use sluice_core::wire::ethernet;
use sluice_core::wire::icmpv6;
use sluice_core::{flow, flow6};
use sluice_core::{hygiene, MacAddr};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The parser: whatever it accepts lies within the frame and the IP total
/// length, headers included.
pub fn parse(data: &[u8]) {
    let Ok(p) = flow::parse(data) else {
        return;
    };
    assert!(p.ip_header_len >= 20 && p.l4 == p.l3 + p.ip_header_len);
    assert!(p.l4 <= p.ip_end() && p.ip_end() <= data.len(), "{p:?}");
    if !p.is_fragment {
        let seg = &data[p.l4..p.ip_end()];
        match p.proto {
            6 => assert!(seg.len() >= 20 && usize::from(seg[12] >> 4) * 4 <= seg.len()),
            17 => {
                let ulen = usize::from(u16::from_be_bytes([seg[4], seg[5]]));
                assert!((8..=seg.len()).contains(&ulen));
            }
            _ => {}
        }
        let _ = hygiene::l4_checksum_ok(data, &p);
    }
    if let Some(e) = p.icmp.and_then(|i| i.error) {
        assert!(e.inner_l4 + 8 <= p.ip_end() && e.inner_l4_len >= 8, "{e:?}");
    }
    parse6(data);
}

/// The IPv6 parser: the same bounds, through the extension headers.
fn parse6(data: &[u8]) {
    let Ok(p) = flow6::parse(data) else {
        return;
    };
    assert!(p.ip_header_len >= 40 && p.l4 == p.l3 + p.ip_header_len);
    assert!(p.l4 <= p.ip_end() && p.ip_end() <= data.len(), "{p:?}");
    if !p.is_fragment {
        let seg = &data[p.l4..p.ip_end()];
        match p.proto {
            6 => assert!(seg.len() >= 20 && usize::from(seg[12] >> 4) * 4 <= seg.len()),
            17 => assert!(seg.len() >= 8 && seg[6..8] != [0, 0], "zero UDP checksum"),
            _ => {}
        }
        let _ = hygiene::l4_checksum_ok(data, &p);
    }
    if let Some(e) = p.icmp.and_then(|i| i.error) {
        assert!(e.inner_l4 + 8 <= p.ip_end() && e.inner_l4_len >= 8, "{e:?}");
    }
}

const MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);

/// The responder: a reply goes back to the sender, from an address of the
/// port, with a correct checksum; nothing of ours is ever learned.
pub fn local(data: &[u8]) {
    let port = LocalPort::new(
        MAC,
        &[Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(192, 0, 2, 100)],
    )
    .with_ipv6(&[
        Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1),
        Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x100),
    ]);
    let mut frame = data.to_vec();
    let out = port.handle(&mut frame);
    match out.learned {
        Some((IpAddr::V4(ip), mac)) => {
            assert!(!port.owns(ip) && !ip.is_unspecified() && !mac.is_multicast())
        }
        Some((IpAddr::V6(ip), mac)) => {
            assert!(!port.owns6(ip) && !ip.is_unspecified() && !mac.is_multicast())
        }
        None => {}
    }
    match out.verdict {
        Verdict::Reply(Handled::ArpRequest) => {
            assert_eq!(ethernet::src(&frame), MAC);
            assert_eq!(u16::from_be_bytes([frame[20], frame[21]]), 2, "op reply");
            let spa = Ipv4Addr::new(frame[28], frame[29], frame[30], frame[31]);
            assert!(port.owns(spa));
        }
        Verdict::Reply(Handled::IcmpEcho) => {
            assert_eq!(ethernet::dst(&frame), ethernet::src(data));
            let p = flow::parse(&frame).expect("the echo reply parses");
            assert!(port.owns(p.src));
            let m = &frame[p.l4..p.ip_end()];
            assert_eq!(icmp_checksum(m), u16::from_be_bytes([m[2], m[3]]));
        }
        Verdict::Reply(Handled::NeighbourSolicit) => {
            assert_eq!(ethernet::src(&frame), MAC);
            let p = flow6::parse(&frame).expect("the advertisement parses");
            let m = &frame[p.l4..p.ip_end()];
            assert!(flow6::icmpv6_checksum_ok(p.src, p.dst, m));
            let nd = icmpv6::parse_nd(m).expect("a valid advertisement");
            assert!(port.owns6(nd.target) && p.src == nd.target && p.ttl == 255);
        }
        Verdict::Reply(Handled::Icmpv6Echo) => {
            assert_eq!(ethernet::dst(&frame), ethernet::src(data));
            let p = flow6::parse(&frame).expect("the echo reply parses");
            assert!(port.owns6(p.src));
            assert!(flow6::icmpv6_checksum_ok(
                p.src,
                p.dst,
                &frame[p.l4..p.ip_end()]
            ));
        }
        _ => assert_eq!(frame, data, "only replies rewrite the frame"),
    }
}
