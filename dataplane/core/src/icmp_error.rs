//! The ICMP errors the appliance sends as a router would, about a packet
//! it does not forward: time exceeded when a packet's TTL (hop limit)
//! runs out on the way, and fragmentation needed (IPv6: packet too big)
//! when a packet would not fit a tunnel once encapsulated. Each goes to
//! the packet's source, from the address of the port it came in on; never
//! about an ICMP error; and no faster than a token bucket allows (RFC 1812
//! §4.3.2.8, RFC 4443 §2.4 (f)), so that such packets cannot turn the
//! appliance into an amplifier.
//!
//! IPv4 (RFC 792, RFC 1812 §4.3.2) quotes the IP header and the first 8
//! bytes of the payload; ICMPv6 (RFC 4443 §3.3) quotes as much of the
//! packet as keeps the error within the minimum IPv6 MTU, 1280 bytes.

use crate::addr::MacAddr;
use crate::flow::Packet;
use crate::flow6;
use crate::wire::{checksum, ethernet, icmp, icmpv6, ipv4, ipv6};
use std::net::{Ipv4Addr, Ipv6Addr};

/// The longest frame [`write`] produces: Ethernet, IPv4, ICMP header, and
/// a quoted IPv4 header with options plus 8 bytes.
pub const MAX_LEN: usize = ethernet::HEADER_LEN + 20 + icmp::HEADER_LEN + 60 + 8;

/// The longest frame [`write6`] produces: an IPv6 packet of the minimum
/// MTU (1280 bytes) in an Ethernet frame.
pub const MAX_LEN6: usize = ethernet::HEADER_LEN + ipv6::MIN_MTU;

/// The longest frame of either family: the size of an outbox slot.
pub const MAX_FRAME: usize = if MAX_LEN > MAX_LEN6 {
    MAX_LEN
} else {
    MAX_LEN6
};

/// TTL of the errors the appliance sends.
pub const TTL: u8 = 64;

/// What an error says: its ICMP (ICMPv6) type, code, and the four bytes
/// after the checksum (unused, or the MTU).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kind {
    /// Type.
    pub ty: u8,
    /// Code.
    pub code: u8,
    /// The rest of the header.
    pub rest: [u8; 4],
}

/// ICMP time exceeded in transit.
pub const TIME_EXCEEDED: Kind = Kind {
    ty: icmp::TYPE_TIME_EXCEEDED,
    code: 0,
    rest: [0; 4],
};

/// ICMPv6 hop limit exceeded in transit.
pub const TIME_EXCEEDED6: Kind = Kind {
    ty: icmpv6::TYPE_TIME_EXCEEDED,
    code: 0,
    rest: [0; 4],
};

/// The error that tells a source its packet was too big for the next
/// hop, here a tunnel: IPv4's destination unreachable, fragmentation
/// needed, with the next-hop MTU (RFC 1191 §4); IPv6's packet too big
/// with the MTU (RFC 4443 §3.2).
pub fn too_big(v6: bool, mtu: u16) -> Kind {
    if v6 {
        Kind {
            ty: icmpv6::TYPE_PACKET_TOO_BIG,
            code: 0,
            rest: u32::from(mtu).to_be_bytes(),
        }
    } else {
        let m = mtu.to_be_bytes();
        Kind {
            ty: icmp::TYPE_DEST_UNREACHABLE,
            code: icmp::CODE_FRAGMENTATION_NEEDED,
            rest: [0, 0, m[0], m[1]],
        }
    }
}

/// Writes into `out` the time-exceeded error about the packet `p` of
/// `frame`, sent from `from` (MAC `from_mac`) back to the frame's source
/// MAC. Returns its length, or None when no error may be sent about it
/// (it is an ICMP error itself, or not the first fragment).
pub fn write(
    frame: &[u8],
    p: &Packet,
    from: Ipv4Addr,
    from_mac: MacAddr,
    out: &mut [u8; MAX_LEN],
) -> Option<usize> {
    write_kind(frame, p, from, from_mac, TIME_EXCEEDED, out)
}

/// Writes into `out` the ICMP error `kind` about the packet `p` of
/// `frame`, as [`write`] does.
pub fn write_kind(
    frame: &[u8],
    p: &Packet,
    from: Ipv4Addr,
    from_mac: MacAddr,
    kind: Kind,
    out: &mut [u8; MAX_LEN],
) -> Option<usize> {
    let about_error = p.proto == ipv4::PROTO_ICMP && p.icmp.is_none_or(|i| icmp::is_error(i.ty));
    let later_fragment = u16::from_be_bytes([frame[p.l3 + 6], frame[p.l3 + 7]]) & 0x1fff != 0;
    if about_error || later_fragment || from.is_unspecified() {
        return None;
    }
    let quote = (p.ip_header_len + icmp::ERROR_QUOTED_PAYLOAD_LEN).min(p.total_len);
    let l3 = ethernet::HEADER_LEN;
    let l4 = l3 + 20;
    let len = l4 + icmp::HEADER_LEN + quote;
    ethernet::write_header(
        out,
        ethernet::src(frame),
        from_mac,
        ethernet::ETHERTYPE_IPV4,
    );
    ipv4::write_header(
        &mut out[l3..],
        (len - l3) as u16,
        0,
        TTL,
        ipv4::PROTO_ICMP,
        from,
        p.src,
    );
    let m = &mut out[l4..len];
    m[..icmp::HEADER_LEN].copy_from_slice(&header(kind));
    m[icmp::HEADER_LEN..].copy_from_slice(&frame[p.l3..p.l3 + quote]);
    let c = checksum::checksum(m);
    m[icmp::CHECKSUM_OFFSET..icmp::CHECKSUM_OFFSET + 2].copy_from_slice(&c.to_be_bytes());
    Some(len)
}

/// Writes into `out` the ICMPv6 time exceeded (code 0: hop limit
/// exceeded in transit) about the IPv6 packet `p` of `frame`, sent from
/// `from` (MAC `from_mac`) back to the frame's source MAC. Returns its
/// length, or None where RFC 4443 §2.4 (e) forbids an error: about an
/// ICMPv6 error, a packet to a multicast address or sent as link-layer
/// multicast, or from an address that names no single node.
pub fn write6(
    frame: &[u8],
    p: &Packet<Ipv6Addr>,
    from: Ipv6Addr,
    from_mac: MacAddr,
    out: &mut [u8; MAX_LEN6],
) -> Option<usize> {
    write6_kind(frame, p, from, from_mac, TIME_EXCEEDED6, out)
}

/// Writes into `out` the ICMPv6 error `kind` about the IPv6 packet `p`
/// of `frame`, as [`write6`] does.
pub fn write6_kind(
    frame: &[u8],
    p: &Packet<Ipv6Addr>,
    from: Ipv6Addr,
    from_mac: MacAddr,
    kind: Kind,
    out: &mut [u8; MAX_LEN6],
) -> Option<usize> {
    let about_error = p.proto == ipv6::NEXT_ICMPV6 && p.icmp.is_none_or(|i| icmpv6::is_error(i.ty));
    let group_mac = ethernet::dst(frame).0[0] & 1 == 1;
    let no_single_source = p.src.is_unspecified() || ipv6::is_multicast(&p.src);
    if about_error
        || group_mac
        || ipv6::is_multicast(&p.dst)
        || no_single_source
        || from.is_unspecified()
    {
        return None;
    }
    let quote = p
        .total_len
        .min(ipv6::MIN_MTU - ipv6::HEADER_LEN - icmpv6::HEADER_LEN);
    let l3 = ethernet::HEADER_LEN;
    let l4 = l3 + ipv6::HEADER_LEN;
    let len = l4 + icmpv6::HEADER_LEN + quote;
    ethernet::write_header(
        out,
        ethernet::src(frame),
        from_mac,
        ethernet::ETHERTYPE_IPV6,
    );
    ipv6::write_header(
        &mut out[l3..],
        (len - l4) as u16,
        ipv6::NEXT_ICMPV6,
        TTL,
        from,
        p.src,
    );
    let m = &mut out[l4..len];
    m[..icmpv6::HEADER_LEN].copy_from_slice(&header(kind));
    m[icmpv6::HEADER_LEN..].copy_from_slice(&frame[p.l3..p.l3 + quote]);
    let c = flow6::icmpv6_checksum(from, p.src, m);
    m[icmpv6::CHECKSUM_OFFSET..icmpv6::CHECKSUM_OFFSET + 2].copy_from_slice(&c.to_be_bytes());
    Some(len)
}

fn header(k: Kind) -> [u8; 8] {
    let r = k.rest;
    [k.ty, k.code, 0, 0, r[0], r[1], r[2], r[3]]
}

/// A token bucket over a millisecond clock: `per_sec` tokens a second, at
/// most `burst` saved.
#[derive(Debug, Clone)]
pub struct Limiter {
    per_sec: u64,
    burst: u64,
    /// Tokens, in thousandths.
    milli: u64,
    last_ms: u64,
}

impl Limiter {
    /// A full bucket.
    pub fn new(per_sec: u64, burst: u64) -> Limiter {
        Limiter {
            per_sec,
            burst,
            milli: burst * 1000,
            last_ms: 0,
        }
    }

    /// Takes a token at `now_ms`, if there is one.
    pub fn take(&mut self, now_ms: u64) -> bool {
        let elapsed = now_ms.saturating_sub(self.last_ms);
        self.last_ms = self.last_ms.max(now_ms);
        self.milli = (self.milli + elapsed.saturating_mul(self.per_sec)).min(self.burst * 1000);
        if self.milli < 1000 {
            return false;
        }
        self.milli -= 1000;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::build::{frame, Spec};
    use crate::flow::parse;
    use crate::testing::{icmp_checksum, ipv4_header_checksum};

    const FROM: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
    const MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);

    #[test]
    fn quotes_the_header_and_8_bytes_back_to_the_sender() {
        for s in [
            Spec {
                proto: 6,
                ttl: 1,
                ..Spec::default()
            },
            Spec {
                ttl: 1,
                ip_opts: vec![1, 1, 1, 1],
                ..Spec::default()
            },
        ] {
            let f = frame(&s);
            let p = parse(&f).unwrap();
            let mut out = [0u8; MAX_LEN];
            let n = write(&f, &p, FROM, MAC, &mut out).unwrap();
            let e = parse(&out[..n]).unwrap();
            assert_eq!((e.src, e.dst, e.proto, e.ttl), (FROM, s.src, 1, TTL));
            assert_eq!(ethernet::dst(&out), ethernet::src(&f));
            assert_eq!(ethernet::src(&out), MAC);
            let ip = &out[14..34];
            assert_eq!(
                u16::from_be_bytes([ip[10], ip[11]]),
                ipv4_header_checksum(ip)
            );
            let m = &out[e.l4..e.ip_end()];
            assert_eq!((m[0], m[1]), (11, 0));
            assert_eq!(u16::from_be_bytes([m[2], m[3]]), icmp_checksum(m));
            let quoted = p.ip_header_len + 8;
            assert_eq!(&m[8..], &f[14..14 + quoted]);
            // The quote parses as the packet it is about.
            let err = e.icmp.unwrap().error.unwrap();
            assert_eq!((err.inner_src, err.inner_dst), (s.src, s.dst));
        }
    }

    #[test]
    fn never_about_an_icmp_error() {
        let inner = crate::flow::build::ip_packet(&Spec::default());
        let f = crate::flow::build::icmp_error(
            3,
            3,
            [0; 4],
            Ipv4Addr::new(198, 51, 100, 11),
            Ipv4Addr::new(203, 0, 113, 7),
            &inner[..28],
        );
        let p = parse(&f).unwrap();
        assert!(write(&f, &p, FROM, MAC, &mut [0u8; MAX_LEN]).is_none());
    }

    const FROM6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 1);

    #[test]
    fn ipv6_quotes_the_packet_back_to_the_sender() {
        use crate::flow6::build::{checksum6, frame6, Ext, Spec6};
        for s in [
            Spec6 {
                hop_limit: 1,
                ..Spec6::default()
            },
            Spec6 {
                proto: 17,
                hop_limit: 1,
                ext: vec![Ext::HopByHop(6), Ext::DestOpts(14)],
                ..Spec6::default()
            },
            // Longer than the minimum MTU leaves: the quote is cut there.
            Spec6 {
                hop_limit: 1,
                payload: vec![7; 1400],
                ..Spec6::default()
            },
        ] {
            let f = frame6(&s);
            let p = crate::flow6::parse(&f).unwrap();
            let mut out = [0u8; MAX_LEN6];
            let n = write6(&f, &p, FROM6, MAC, &mut out).unwrap();
            assert!(n <= MAX_LEN6);
            let e = crate::flow6::parse(&out[..n]).unwrap();
            assert_eq!((e.src, e.dst, e.proto, e.ttl), (FROM6, s.src, 58, TTL));
            assert_eq!(ethernet::dst(&out), ethernet::src(&f));
            assert_eq!(ethernet::src(&out), MAC);
            let m = &out[e.l4..e.ip_end()];
            assert_eq!((m[0], m[1]), (3, 0));
            assert_eq!(
                u16::from_be_bytes([m[2], m[3]]),
                checksum6(FROM6, s.src, 58, &{
                    let mut z = m.to_vec();
                    z[2..4].fill(0);
                    z
                })
            );
            let quoted = (f.len() - 14).min(1280 - 48);
            assert_eq!(&m[8..], &f[14..14 + quoted]);
            let err = e.icmp.unwrap().error.unwrap();
            assert_eq!((err.inner_src, err.inner_dst), (s.src, s.dst));
            assert_eq!((err.inner_sport, err.inner_dport), (s.sport, s.dport));
        }
    }

    /// RFC 1191 §4: type 3, code 4, the next-hop MTU in the low 16 bits
    /// of the second word; RFC 4443 §3.2: type 2, code 0, the MTU in it.
    #[test]
    fn too_big_carries_the_mtu_where_the_rfcs_put_it() {
        let f = frame(&Spec {
            proto: 6,
            ..Spec::default()
        });
        let p = parse(&f).unwrap();
        let mut out = [0u8; MAX_LEN];
        let n = write_kind(&f, &p, FROM, MAC, too_big(false, 1472), &mut out).unwrap();
        let e = parse(&out[..n]).unwrap();
        let m = &out[e.l4..e.ip_end()];
        assert_eq!(&m[..2], &[3, 4]);
        assert_eq!(&m[4..8], &[0, 0, 0x05, 0xc0]);
        assert_eq!(u16::from_be_bytes([m[2], m[3]]), icmp_checksum(m));
        assert_eq!(&m[8..], &f[14..14 + p.ip_header_len + 8]);

        use crate::flow6::build::{frame6, Spec6};
        let f = frame6(&Spec6::default());
        let p = crate::flow6::parse(&f).unwrap();
        let mut out = [0u8; MAX_LEN6];
        let n = write6_kind(&f, &p, FROM6, MAC, too_big(true, 1452), &mut out).unwrap();
        let e = crate::flow6::parse(&out[..n]).unwrap();
        let m = &out[e.l4..e.ip_end()];
        assert_eq!(&m[..2], &[2, 0]);
        assert_eq!(&m[4..8], &[0, 0, 0x05, 0xac]);
        assert_eq!(e.icmp.unwrap().error.unwrap().inner_dst, p.dst);
    }

    #[test]
    fn ipv6_never_about_an_error_multicast_or_no_single_source() {
        use crate::flow6::build::{frame6, icmp6_error, ip6_packet, Spec6};
        let bad = |f: &[u8]| {
            let p = crate::flow6::parse(f).unwrap();
            assert!(write6(f, &p, FROM6, MAC, &mut [0u8; MAX_LEN6]).is_none());
        };
        let inner = ip6_packet(&Spec6::default());
        bad(&icmp6_error(
            1,
            4,
            [0; 4],
            "2001:db8:2::11".parse().unwrap(),
            "2001:db8:1::7".parse().unwrap(),
            &inner[..48],
        ));
        bad(&frame6(&Spec6 {
            dst: "ff02::1".parse().unwrap(),
            hop_limit: 1,
            ..Spec6::default()
        }));
        bad(&frame6(&Spec6 {
            src: Ipv6Addr::UNSPECIFIED,
            hop_limit: 1,
            ..Spec6::default()
        }));
        let mut group = frame6(&Spec6 {
            hop_limit: 1,
            ..Spec6::default()
        });
        group[..6].copy_from_slice(&[0x33, 0x33, 0, 0, 0, 1]);
        bad(&group);
    }

    #[test]
    fn the_bucket_refills_at_its_rate() {
        let mut l = Limiter::new(10, 3);
        let now = 1_000;
        assert!(l.take(now) && l.take(now) && l.take(now));
        assert!(!l.take(now));
        assert!(!l.take(now + 99));
        assert!(l.take(now + 100));
        assert!(!l.take(now + 100));
        // A long pause saves at most the burst.
        let sent = (0..10).filter(|_| l.take(now + 60_000)).count();
        assert_eq!(sent, 3);
    }
}
