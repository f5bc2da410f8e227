//! Parsing a received frame carrying IPv6 into the same [`Packet`] that
//! IPv4 parses into, with IPv6 addresses: the extension headers are walked
//! (bounded, [`crate::wire::ipv6::walk`]) to the upper-layer header, so
//! that the rest of the pipeline sees TCP, UDP or ICMPv6 at `l4` whatever
//! came between. An ICMPv6 error's quoted packet is parsed the same way.
//!
//! The payload length, not the frame length, bounds the packet: Ethernet
//! padding after it is never read. Differences from IPv4 that the parser
//! enforces: a UDP checksum of 0 is invalid (RFC 8200 8.1), and ICMPv6
//! errors must carry a valid checksum over the pseudo-header.

use crate::drop_reason::DropReason;
use crate::family::Address;
use crate::flow::{transport, Icmp, IcmpError, Packet};
use crate::wire::{ethernet, icmpv6, ipv6, l4};
use std::net::Ipv6Addr;

/// Parses an Ethernet frame carrying IPv6.
///
/// Checks the Ethernet length and EtherType, the fixed header (version,
/// payload length within the frame), the extension chain, and that the
/// TCP or UDP header, or the ICMPv6 header, lies within the payload. A
/// fragment (not an atomic one) is returned with `is_fragment` and ports 0:
/// the caller reads a first fragment's ports itself, and has a later one
/// follow its first.
pub fn parse(frame: &[u8]) -> Result<Packet<Ipv6Addr>, DropReason> {
    if frame.len() < ethernet::HEADER_LEN {
        return Err(DropReason::Truncated);
    }
    if ethernet::ethertype(frame) != ethernet::ETHERTYPE_IPV6 {
        return Err(DropReason::UnsupportedEthertype);
    }
    let l3 = ethernet::HEADER_LEN;
    let h = ipv6::parse(&frame[l3..]).map_err(drop_reason)?;
    let total_len = ipv6::HEADER_LEN + h.payload_len;
    let up = ipv6::walk(&frame[l3..l3 + total_len], h.next_header).map_err(drop_reason)?;
    let mut p = Packet {
        l3,
        ip_header_len: up.offset,
        total_len,
        proto: up.proto,
        src: h.src,
        dst: h.dst,
        ttl: h.hop_limit,
        l4: l3 + up.offset,
        sport: 0,
        dport: 0,
        tcp_flags: 0,
        is_fragment: up.fragment.is_some(),
        icmp: None,
    };
    if p.is_fragment {
        return Ok(p);
    }
    let seg = &frame[p.l4..p.ip_end()];
    match up.proto {
        ipv6::NEXT_ICMPV6 => p.icmp = Some(parse_icmp(frame, &p)?),
        ipv6::NEXT_UDP => {
            transport(seg, up.proto, &mut p)?;
            if seg[l4::UDP_CHECKSUM_OFFSET..l4::UDP_CHECKSUM_OFFSET + 2] == [0, 0] {
                return Err(DropReason::BadL4Checksum);
            }
        }
        proto => transport(seg, proto, &mut p)?,
    }
    Ok(p)
}

fn drop_reason(e: ipv6::Ipv6Error) -> DropReason {
    match e {
        ipv6::Ipv6Error::Truncated => DropReason::Truncated,
        ipv6::Ipv6Error::BadHeader => DropReason::BadIpv6Header,
        ipv6::Ipv6Error::BadExtension => DropReason::BadIpv6Extension,
    }
}

/// Parses the ICMPv6 message of `p`. An error message must have a valid
/// checksum and quote an IPv6 header, its extension headers and 8 bytes of
/// what follows them.
fn parse_icmp(frame: &[u8], p: &Packet<Ipv6Addr>) -> Result<Icmp<Ipv6Addr>, DropReason> {
    let m = &frame[p.l4..p.ip_end()];
    if m.len() < icmpv6::HEADER_LEN {
        return Err(DropReason::BadIcmp);
    }
    let (ty, code) = (m[0], m[1]);
    if !icmpv6::is_error(ty) {
        return Ok(Icmp {
            ty,
            code,
            error: None,
        });
    }
    if !icmpv6_checksum_ok(p.src, p.dst, m) {
        return Err(DropReason::BadIcmp);
    }
    let inner_l3 = p.l4 + icmpv6::HEADER_LEN;
    let error = parse_quoted(&frame[inner_l3..p.ip_end()], inner_l3).ok_or(DropReason::BadIcmp)?;
    Ok(Icmp {
        ty,
        code,
        error: Some(error),
    })
}

/// Whether ICMPv6 message `m` from `src` to `dst` carries a correct
/// checksum (over the pseudo-header, RFC 4443 2.3).
pub fn icmpv6_checksum_ok(src: Ipv6Addr, dst: Ipv6Addr, m: &[u8]) -> bool {
    let stored = u16::from_be_bytes([m[2], m[3]]);
    let computed =
        Ipv6Addr::segment_checksum(src, dst, ipv6::NEXT_ICMPV6, m, icmpv6::CHECKSUM_OFFSET);
    stored == computed || (computed == 0 && stored == 0xffff)
}

/// The ICMPv6 checksum to store in message `m` (its checksum field is
/// skipped) from `src` to `dst`.
pub fn icmpv6_checksum(src: Ipv6Addr, dst: Ipv6Addr, m: &[u8]) -> u16 {
    Ipv6Addr::segment_checksum(src, dst, ipv6::NEXT_ICMPV6, m, icmpv6::CHECKSUM_OFFSET)
}

/// Parses the packet quoted by an ICMPv6 error, `q` (at `inner_l3` in the
/// frame). The quote is usually cut short: its payload length is not
/// checked, and the extension chain is walked as far as `q` reaches.
fn parse_quoted(q: &[u8], inner_l3: usize) -> Option<IcmpError<Ipv6Addr>> {
    if q.len() < ipv6::HEADER_LEN || q[0] >> 4 != 6 {
        return None;
    }
    let up = ipv6::walk(q, q[ipv6::NEXT_HEADER_OFFSET]).ok()?;
    if q.len() < up.offset + 8 {
        return None;
    }
    let later_fragment = up.fragment.is_some_and(|f| f.offset != 0);
    let (sport, dport) = match up.proto {
        ipv6::NEXT_TCP | ipv6::NEXT_UDP if !later_fragment => l4::ports(&q[up.offset..]),
        _ => (0, 0),
    };
    Some(IcmpError {
        inner_l3,
        inner_ip_header_len: up.offset,
        inner_proto: up.proto,
        inner_src: <Ipv6Addr as Address>::read(&q[ipv6::SRC_OFFSET..]),
        inner_dst: <Ipv6Addr as Address>::read(&q[ipv6::DST_OFFSET..]),
        inner_sport: sport,
        inner_dport: dport,
        inner_l4: inner_l3 + up.offset,
        inner_l4_len: q.len() - up.offset,
        inner_is_later_fragment: later_fragment,
    })
}

/// Test frame builders for IPv6, with checksums from the
/// [`crate::testing`] oracle.
#[cfg(any(test, feature = "testing"))]
pub mod build {
    use crate::testing::inet_checksum;
    use std::net::Ipv6Addr;

    /// An extension header to put before the upper layer.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum Ext {
        /// Hop-by-hop options with this many 8-byte units of padding
        /// beyond the first.
        HopByHop(u8),
        /// Destination options, likewise.
        DestOpts(u8),
        /// A routing header.
        Routing {
            /// Segments left.
            segments_left: u8,
            /// Addresses in it.
            n: u8,
        },
        /// A fragment header.
        Fragment {
            /// Offset in 8-byte units.
            offset: u16,
            /// More fragments.
            more: bool,
            /// Identification.
            id: u32,
        },
        /// An authentication header with this many 4-byte units of ICV
        /// beyond the minimum.
        Auth(u8),
    }

    impl Ext {
        fn kind(&self) -> u8 {
            match self {
                Ext::HopByHop(_) => 0,
                Ext::DestOpts(_) => 60,
                Ext::Routing { .. } => 43,
                Ext::Fragment { .. } => 44,
                Ext::Auth(_) => 51,
            }
        }

        fn bytes(&self, next: u8) -> Vec<u8> {
            let mut h = match *self {
                Ext::HopByHop(n) | Ext::DestOpts(n) => {
                    let mut h = vec![next, n, 1, 4 + 8 * n];
                    h.resize(8 + 8 * usize::from(n), 0);
                    h
                }
                Ext::Routing { segments_left, n } => {
                    let mut h = vec![next, 2 * n, 0, segments_left];
                    h.resize(8 + 16 * usize::from(n), 0);
                    h
                }
                Ext::Fragment { offset, more, id } => {
                    let mut h = vec![next, 0];
                    h.extend_from_slice(&((offset << 3) | u16::from(more)).to_be_bytes());
                    h.extend_from_slice(&id.to_be_bytes());
                    h
                }
                Ext::Auth(n) => {
                    let mut h = vec![next, 1 + n];
                    h.resize(12 + 4 * usize::from(n), 0xab);
                    h
                }
            };
            h[0] = next;
            h
        }
    }

    /// What to build.
    #[derive(Debug, Clone)]
    pub struct Spec6 {
        /// 6 (TCP), 17 (UDP), 58 (ICMPv6: `payload` is the message, its
        /// checksum computed here) or anything else (payload only).
        pub proto: u8,
        /// Source address.
        pub src: Ipv6Addr,
        /// Destination address.
        pub dst: Ipv6Addr,
        /// TCP or UDP source port.
        pub sport: u16,
        /// TCP or UDP destination port.
        pub dport: u16,
        /// Hop limit.
        pub hop_limit: u8,
        /// Extension headers, in order.
        pub ext: Vec<Ext>,
        /// TCP flags.
        pub tcp_flags: u8,
        /// The TCP or UDP payload, or the whole upper-layer message.
        pub payload: Vec<u8>,
        /// Ethernet padding after the packet.
        pub padding: Vec<u8>,
    }

    impl Default for Spec6 {
        fn default() -> Spec6 {
            Spec6 {
                proto: 6,
                src: "2001:db8:1::7".parse().unwrap(),
                dst: "2001:db8::100".parse().unwrap(),
                sport: 40000,
                dport: 80,
                hop_limit: 64,
                ext: Vec::new(),
                tcp_flags: 0x02,
                payload: b"hello sluice".to_vec(),
                padding: Vec::new(),
            }
        }
    }

    /// The upper-layer checksum of `seg` from scratch.
    pub fn checksum6(src: Ipv6Addr, dst: Ipv6Addr, proto: u8, seg: &[u8]) -> u16 {
        let mut ph = Vec::new();
        ph.extend_from_slice(&src.octets());
        ph.extend_from_slice(&dst.octets());
        ph.extend_from_slice(&(seg.len() as u32).to_be_bytes());
        ph.extend_from_slice(&[0, 0, 0, proto]);
        inet_checksum(&[&ph, seg])
    }

    /// The IPv6 packet (no Ethernet header) described by `s`.
    pub fn ip6_packet(s: &Spec6) -> Vec<u8> {
        let mut seg = Vec::new();
        match s.proto {
            6 => {
                seg.extend_from_slice(&s.sport.to_be_bytes());
                seg.extend_from_slice(&s.dport.to_be_bytes());
                seg.extend_from_slice(&[1, 2, 3, 4, 10, 11, 12, 13, 0x50, s.tcp_flags]);
                seg.extend_from_slice(&[0xfa, 0xf0, 0, 0, 0, 0]);
                seg.extend_from_slice(&s.payload);
                let c = checksum6(s.src, s.dst, 6, &seg);
                seg[16..18].copy_from_slice(&c.to_be_bytes());
            }
            17 => {
                seg.extend_from_slice(&s.sport.to_be_bytes());
                seg.extend_from_slice(&s.dport.to_be_bytes());
                seg.extend_from_slice(&((8 + s.payload.len()) as u16).to_be_bytes());
                seg.extend_from_slice(&[0, 0]);
                seg.extend_from_slice(&s.payload);
                let c = checksum6(s.src, s.dst, 17, &seg);
                seg[6..8].copy_from_slice(&c.to_be_bytes());
            }
            58 => {
                seg.extend_from_slice(&s.payload);
                seg[2..4].fill(0);
                let c = checksum6(s.src, s.dst, 58, &seg);
                seg[2..4].copy_from_slice(&c.to_be_bytes());
            }
            _ => seg.extend_from_slice(&s.payload),
        }
        let mut chain = Vec::new();
        for (i, e) in s.ext.iter().enumerate() {
            let next = s.ext.get(i + 1).map_or(s.proto, Ext::kind);
            chain.extend_from_slice(&e.bytes(next));
        }
        let first = s.ext.first().map_or(s.proto, Ext::kind);
        let mut ip = vec![0x60, 0, 0, 0];
        ip.extend_from_slice(&((chain.len() + seg.len()) as u16).to_be_bytes());
        ip.extend_from_slice(&[first, s.hop_limit]);
        ip.extend_from_slice(&s.src.octets());
        ip.extend_from_slice(&s.dst.octets());
        ip.extend_from_slice(&chain);
        ip.extend_from_slice(&seg);
        ip
    }

    /// An Ethernet frame around IPv6 packet `ip`, then `padding`.
    pub fn ether6(ip: &[u8], padding: &[u8]) -> Vec<u8> {
        let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x86, 0xdd];
        f.extend_from_slice(ip);
        f.extend_from_slice(padding);
        f
    }

    /// The Ethernet frame described by `s`.
    pub fn frame6(s: &Spec6) -> Vec<u8> {
        ether6(&ip6_packet(s), &s.padding)
    }

    /// An ICMPv6 error of type `ty`, code `code` and `rest` (bytes 4..8)
    /// from `from` to `to`, quoting `quoted`.
    pub fn icmp6_error(
        ty: u8,
        code: u8,
        rest: [u8; 4],
        from: Ipv6Addr,
        to: Ipv6Addr,
        quoted: &[u8],
    ) -> Vec<u8> {
        let mut m = vec![ty, code, 0, 0];
        m.extend_from_slice(&rest);
        m.extend_from_slice(quoted);
        frame6(&Spec6 {
            proto: 58,
            src: from,
            dst: to,
            hop_limit: 63,
            payload: m,
            ..Spec6::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::build::*;
    use super::*;
    use crate::hygiene::l4_checksum_ok;
    use proptest::prelude::*;

    #[test]
    fn tcp_without_extensions() {
        let s = Spec6::default();
        let f = frame6(&s);
        let p = parse(&f).unwrap();
        assert_eq!((p.src, p.dst, p.sport, p.dport), (s.src, s.dst, 40000, 80));
        assert_eq!((p.proto, p.l4, p.ttl, p.tcp_flags), (6, 54, 64, 0x02));
        assert_eq!(p.ip_end(), f.len());
        assert!(l4_checksum_ok(&f, &p));
    }

    #[test]
    fn udp_zero_checksum_is_refused() {
        let mut f = frame6(&Spec6 {
            proto: 17,
            ..Spec6::default()
        });
        assert!(parse(&f).is_ok());
        f[54 + 6..54 + 8].fill(0);
        assert_eq!(parse(&f), Err(DropReason::BadL4Checksum));
    }

    #[test]
    fn padding_is_not_read() {
        let s = Spec6 {
            padding: vec![0xee; 10],
            ..Spec6::default()
        };
        let f = frame6(&s);
        let p = parse(&f).unwrap();
        assert_eq!(p.ip_end(), f.len() - 10);
        assert!(l4_checksum_ok(&f, &p));
    }

    #[test]
    fn fragments_and_refusals() {
        let frag = |offset, more| Spec6 {
            ext: vec![Ext::Fragment {
                offset,
                more,
                id: 9,
            }],
            ..Spec6::default()
        };
        assert!(parse(&frame6(&frag(0, true))).unwrap().is_fragment);
        assert!(parse(&frame6(&frag(100, false))).unwrap().is_fragment);
        let atomic = parse(&frame6(&frag(0, false))).unwrap();
        assert!(!atomic.is_fragment);
        assert_eq!(atomic.dport, 80);
        let routed = Spec6 {
            ext: vec![Ext::Routing {
                segments_left: 1,
                n: 1,
            }],
            ..Spec6::default()
        };
        assert_eq!(parse(&frame6(&routed)), Err(DropReason::BadIpv6Extension));
        let mut v = frame6(&Spec6::default());
        v[14] = 0x40;
        assert_eq!(parse(&v), Err(DropReason::BadIpv6Header));
        let v4 = crate::flow::build::frame(&crate::flow::build::Spec::default());
        assert_eq!(parse(&v4), Err(DropReason::UnsupportedEthertype));
    }

    #[test]
    fn packet_too_big_quoting_a_tcp_segment() {
        let client: Ipv6Addr = "2001:db8:1::7".parse().unwrap();
        let vip: Ipv6Addr = "2001:db8::100".parse().unwrap();
        let router: Ipv6Addr = "2001:db8:2::1".parse().unwrap();
        let quoted = ip6_packet(&Spec6 {
            src: vip,
            dst: client,
            sport: 80,
            dport: 40000,
            ext: vec![Ext::DestOpts(0)],
            payload: vec![0; 1200],
            ..Spec6::default()
        });
        let f = icmp6_error(2, 0, 1280u32.to_be_bytes(), router, vip, &quoted[..1232]);
        let p = parse(&f).unwrap();
        let icmp = p.icmp.unwrap();
        assert_eq!((icmp.ty, icmp.code), (2, 0));
        let e = icmp.error.unwrap();
        assert_eq!((e.inner_src, e.inner_dst), (vip, client));
        assert_eq!(
            (e.inner_sport, e.inner_dport, e.inner_proto),
            (80, 40000, 6)
        );
        assert_eq!(e.inner_ip_header_len, 48);
        assert_eq!(e.inner_l4, p.l4 + 8 + 48);
        // A wrong checksum, or a quote too short for the ports: refused.
        let mut bad = f.clone();
        bad[p.l4 + 2] ^= 1;
        assert_eq!(parse(&bad), Err(DropReason::BadIcmp));
        let short = icmp6_error(2, 0, [0, 0, 5, 0], router, vip, &quoted[..40 + 8 + 4]);
        assert_eq!(parse(&short), Err(DropReason::BadIcmp));
    }

    /// A from-scratch reading of what `parse` should find in a packet
    /// built from `ext`: the upper-layer offset, or the refusal.
    fn expected(ext: &[Ext]) -> Result<(usize, bool), DropReason> {
        let mut off = 40;
        for (i, e) in ext.iter().enumerate() {
            if i >= 8 {
                return Err(DropReason::BadIpv6Extension);
            }
            match *e {
                Ext::HopByHop(_) if i > 0 => return Err(DropReason::BadIpv6Extension),
                Ext::Routing { segments_left, .. } if segments_left > 0 => {
                    return Err(DropReason::BadIpv6Extension)
                }
                Ext::Fragment { offset, more, .. } if offset > 0 || more => {
                    return Ok((off + 8, true))
                }
                _ => {}
            }
            off += match *e {
                Ext::HopByHop(n) | Ext::DestOpts(n) => 8 + 8 * usize::from(n),
                Ext::Routing { n, .. } => 8 + 16 * usize::from(n),
                Ext::Fragment { .. } => 8,
                Ext::Auth(n) => 12 + 4 * usize::from(n),
            };
        }
        Ok((off, false))
    }

    fn ext_strategy() -> impl Strategy<Value = Ext> {
        prop_oneof![
            (0u8..3).prop_map(Ext::HopByHop),
            (0u8..3).prop_map(Ext::DestOpts),
            (0u8..2, 0u8..3).prop_map(|(segments_left, n)| Ext::Routing { segments_left, n }),
            (0u16..3, any::<bool>(), any::<u32>()).prop_map(|(offset, more, id)| Ext::Fragment {
                offset,
                more,
                id
            }),
            (0u8..3).prop_map(Ext::Auth),
        ]
    }

    proptest! {
        /// On random chains of extension headers before TCP or UDP, the
        /// parser finds the upper layer where a from-scratch reading of
        /// the chain does, or refuses it for the same reason; and what it
        /// accepts has a verifiable checksum.
        #[test]
        fn extension_chains_match_a_scratch_reading(
            ext in proptest::collection::vec(ext_strategy(), 0..11),
            udp in any::<bool>(),
            payload in proptest::collection::vec(any::<u8>(), 0..64),
            padding in proptest::collection::vec(any::<u8>(), 0..8),
        ) {
            let s = Spec6 { proto: if udp { 17 } else { 6 }, ext: ext.clone(), payload,
                            padding, ..Spec6::default() };
            let f = frame6(&s);
            match (parse(&f), expected(&ext)) {
                (Ok(p), Ok((off, fragment))) => {
                    prop_assert_eq!(p.ip_header_len, off);
                    prop_assert_eq!(p.is_fragment, fragment);
                    if !fragment {
                        prop_assert_eq!((p.sport, p.dport), (40000, 80));
                        prop_assert!(l4_checksum_ok(&f, &p));
                    }
                }
                (Err(a), Err(b)) => prop_assert_eq!(a, b),
                (a, b) => prop_assert!(false, "parse {:?}, expected {:?}", a, b),
            }
        }

        /// Cutting a packet anywhere never panics and never yields a packet
        /// that reaches past the bytes given.
        #[test]
        fn truncation_is_refused_cleanly(
            ext in proptest::collection::vec(ext_strategy(), 0..4), cut in 0usize..200,
        ) {
            let f = frame6(&Spec6 { ext, ..Spec6::default() });
            let cut = cut.min(f.len());
            if let Ok(p) = parse(&f[..cut]) {
                prop_assert!(p.ip_end() <= cut);
            }
        }
    }
}
