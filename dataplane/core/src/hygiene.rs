//! What no honest packet looks like: sources no host may use, TCP flag
//! combinations no TCP stack sends, and segments whose checksum does not
//! add up. The pipeline drops such packets before they can create a
//! connection, reach a real or feed passive health.

use crate::family::Address;
use crate::flow::Packet;
use crate::wire::{ipv4, l4};
use std::net::Ipv4Addr;

/// Whether `ip` is a source no host may send from, whatever the network:
/// 0.0.0.0/8 ("this network"), 127.0.0.0/8 (loopback), 224.0.0.0/4
/// (multicast) and 240.0.0.0/4 (reserved, with the limited broadcast
/// 255.255.255.255) — the classes the kernel's martian filter refuses on
/// every interface. Subnet broadcasts and the appliance's own addresses
/// depend on the configuration; the pipeline checks those.
#[inline(always)]
pub fn is_martian_source(ip: Ipv4Addr) -> bool {
    let first = ip.octets()[0];
    first == 0 || first == 127 || first >= 224
}

/// Whether a TCP header's flags are a combination TCP sends, as
/// netfilter's `tcp_valid_flags`: with PSH, ECE and CWR ignored, one of
/// SYN, SYN+URG, SYN+ACK, RST, RST+ACK, FIN+ACK, FIN+ACK+URG, ACK, ACK+URG.
/// NULL, SYN+FIN, SYN+RST, FIN alone and XMAS (FIN+PSH+URG) are not.
#[inline(always)]
pub fn valid_tcp_flags(flags: u8) -> bool {
    const FIN: u8 = l4::TCP_FIN;
    const SYN: u8 = l4::TCP_SYN;
    const RST: u8 = l4::TCP_RST;
    const ACK: u8 = l4::TCP_ACK;
    const URG: u8 = l4::TCP_URG;
    matches!(
        flags & (FIN | SYN | RST | ACK | URG),
        SYN | 0x22 /* SYN|URG */
            | 0x12 /* SYN|ACK */
            | RST
            | 0x14 /* RST|ACK */
            | 0x11 /* FIN|ACK */
            | 0x31 /* FIN|ACK|URG */
            | ACK
            | 0x30 /* ACK|URG */
    )
}

/// Whether the TCP or UDP segment of unfragmented packet `p` in `frame`
/// carries a correct checksum (a UDP checksum of 0, "none", passes).
/// Other protocols and fragments pass: there is nothing to verify.
pub fn l4_checksum_ok<A: Address>(frame: &[u8], p: &Packet<A>) -> bool {
    if p.is_fragment {
        return true;
    }
    let seg = &frame[p.l4..p.ip_end()];
    match p.proto {
        ipv4::PROTO_TCP => A::verify_segment(p.src, p.dst, p.proto, seg),
        // The checksum covers the UDP length (which the parser has checked
        // lies within the payload; a length that does not fails).
        ipv4::PROTO_UDP => seg
            .get(..l4::udp_length(seg))
            .filter(|d| d.len() >= l4::UDP_HEADER_LEN)
            .is_some_and(|d| A::verify_segment(p.src, p.dst, p.proto, d)),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::build::{frame, Spec};
    use crate::flow::parse;

    #[test]
    fn martian_classes() {
        for ip in [
            "0.0.0.0",
            "0.1.2.3",
            "127.0.0.1",
            "127.255.255.254",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
        ] {
            assert!(is_martian_source(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "1.0.0.0",
            "192.0.2.10",
            "203.0.113.7",
            "223.255.255.255",
            "126.0.0.1",
        ] {
            assert!(!is_martian_source(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn tcp_flags_as_netfilter() {
        // F S R P A U
        let valid = [0x02, 0x22, 0x12, 0x04, 0x14, 0x11, 0x31, 0x10, 0x30];
        for f in 0u8..=0xff {
            let core = f & 0x37;
            assert_eq!(valid_tcp_flags(f), valid.contains(&core), "flags {f:#04x}");
        }
        for bad in [0x00, 0x03, 0x06, 0x01, 0x29, 0x3f] {
            assert!(!valid_tcp_flags(bad), "{bad:#04x}");
        }
        // PSH, ECE and CWR do not matter.
        assert!(valid_tcp_flags(0x18) && valid_tcp_flags(0xc2) && valid_tcp_flags(0x19));
    }

    fn tcp() -> Spec {
        Spec {
            proto: 6,
            ..Spec::default()
        }
    }

    #[test]
    fn checksums_verify_and_a_flipped_bit_fails() {
        for s in [tcp(), Spec::default()] {
            let f = frame(&s);
            let p = parse(&f).unwrap();
            assert!(l4_checksum_ok(&f, &p));
            // Every byte of the segment, and the pseudo-header's addresses.
            for i in (p.l4..p.ip_end()).chain(26..34) {
                let mut g = f.clone();
                g[i] ^= 0x10;
                let q = crate::flow::Packet {
                    src: Ipv4Addr::new(g[26], g[27], g[28], g[29]),
                    dst: Ipv4Addr::new(g[30], g[31], g[32], g[33]),
                    ..p
                };
                assert!(!l4_checksum_ok(&g, &q), "proto {} byte {i}", s.proto);
            }
        }
    }

    #[test]
    fn a_tcp_checksum_of_zero_may_be_stored_as_0xffff() {
        // Find a segment whose checksum computes to 0 (1 in 65536), as
        // Linux then sends it: with 0xffff in the field.
        let mut s = tcp();
        s.payload = vec![0, 0];
        let (f, p) = (0..=u16::MAX)
            .find_map(|w| {
                s.payload = w.to_be_bytes().to_vec();
                let f = frame(&s);
                let p = parse(&f).unwrap();
                let c = p.l4 + l4::TCP_CHECKSUM_OFFSET;
                (f[c..c + 2] == [0, 0]).then_some((f, p))
            })
            .expect("a payload whose checksum is 0");
        assert!(l4_checksum_ok(&f, &p));
        let c = p.l4 + l4::TCP_CHECKSUM_OFFSET;
        let mut g = f.clone();
        g[c..c + 2].copy_from_slice(&[0xff, 0xff]);
        assert!(l4_checksum_ok(&g, &p), "-0 is 0");
        g[c..c + 2].copy_from_slice(&[0xff, 0xfe]);
        assert!(!l4_checksum_ok(&g, &p));
    }

    #[test]
    fn a_udp_checksum_of_zero_means_none() {
        let f = frame(&Spec {
            udp_checksum: false,
            ..Spec::default()
        });
        let p = parse(&f).unwrap();
        assert_eq!(&f[p.l4 + 6..p.l4 + 8], &[0, 0]);
        assert!(l4_checksum_ok(&f, &p));
    }

    #[test]
    fn a_udp_length_short_of_the_payload_covers_only_its_bytes() {
        let s = Spec::default();
        let mut f = frame(&s);
        let p = parse(&f).unwrap();
        // Trailing bytes beyond the UDP length are not summed: shrink the
        // length by 2 and recompute the checksum over what it covers.
        let len = p.l4_len() - 2;
        f[p.l4 + 4..p.l4 + 6].copy_from_slice(&(len as u16).to_be_bytes());
        f[p.l4 + 6..p.l4 + 8].copy_from_slice(&[0, 0]);
        let c = crate::testing::l4_checksum(p.src, p.dst, 17, &f[p.l4..p.l4 + len]);
        f[p.l4 + 6..p.l4 + 8].copy_from_slice(&c.to_be_bytes());
        let p = parse(&f).unwrap();
        assert!(l4_checksum_ok(&f, &p));
        f[p.ip_end() - 1] ^= 0xff;
        assert!(l4_checksum_ok(&f, &p));
    }
}
