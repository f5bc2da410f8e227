//! The targets that read frames without state: the parser and the port's
//! ARP and ICMP echo responder.

use sluice_core::flow;
use sluice_core::local::{Handled, LocalPort, Verdict};
use sluice_core::testing::icmp_checksum;
use sluice_core::wire::ethernet;
use sluice_core::{hygiene, MacAddr};
use std::net::Ipv4Addr;

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
}

const MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);

/// The responder: a reply goes back to the sender, from an address of the
/// port, with a correct checksum; nothing of ours is ever learned.
pub fn local(data: &[u8]) {
    let port = LocalPort::new(
        MAC,
        &[Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(192, 0, 2, 100)],
    );
    let mut frame = data.to_vec();
    let out = port.handle(&mut frame);
    if let Some((ip, mac)) = out.learned {
        assert!(!port.owns(ip) && !ip.is_unspecified() && !mac.is_multicast());
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
        _ => assert_eq!(frame, data, "only replies rewrite the frame"),
    }
}
