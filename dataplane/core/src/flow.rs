//! Parsing a received frame into what load balancing needs: the IPv4
//! addresses, the TCP or UDP ports, the TCP flags, and the offsets of each
//! header in the frame, so that [`crate::nat`] can rewrite them in place.
//! Nothing is copied: a [`Packet`] holds offsets into the frame it came from.
//!
//! An ICMP error (destination unreachable, source quench, time exceeded,
//! parameter problem) quotes the IP header and the first 8 bytes of the
//! datagram that caused it; that quoted packet is parsed too
//! ([`IcmpError`]), since it names the connection the error belongs to.
//!
//! The IPv4 total length, not the frame length, bounds the payload: a frame
//! may carry Ethernet padding after the IP packet, which is never read.

use crate::drop_reason::DropReason;
use crate::wire::{checksum, ethernet, icmp, ipv4, l4};
use std::net::{Ipv4Addr, SocketAddrV4};

/// A parsed IPv4 packet (`Packet<Ipv6Addr>`: IPv6, from
/// [`crate::flow6::parse`]). Offsets are from the start of the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<A = Ipv4Addr> {
    /// Offset of the IP header (the Ethernet header length).
    pub l3: usize,
    /// IPv4 header length in bytes, options included; for IPv6, the fixed
    /// header and every extension header walked (so `l3 + ip_header_len`
    /// is always the upper-layer header).
    pub ip_header_len: usize,
    /// IPv4 total length, or IPv6's 40 + payload length, in bytes.
    pub total_len: usize,
    /// IP protocol number (for IPv6 the upper-layer next header).
    pub proto: u8,
    /// Source address.
    pub src: A,
    /// Destination address.
    pub dst: A,
    /// Time to live (IPv6: hop limit).
    pub ttl: u8,
    /// Offset of the layer-4 header (`l3 + ip_header_len`); for a fragment,
    /// of the fragment's payload.
    pub l4: usize,
    /// TCP or UDP source port; 0 for other protocols and for fragments.
    pub sport: u16,
    /// TCP or UDP destination port; 0 for other protocols and for fragments.
    pub dport: u16,
    /// TCP flags; 0 for everything but unfragmented TCP.
    pub tcp_flags: u8,
    /// More-fragments flag set or a non-zero fragment offset. A fragment's
    /// layer-4 header is not parsed (a non-first fragment has none).
    pub is_fragment: bool,
    /// The ICMP header, for unfragmented ICMP (ICMPv6 for IPv6).
    pub icmp: Option<Icmp<A>>,
}

impl<A> Packet<A> {
    /// Offset one past the last byte of the IP packet (`l3 + total_len`);
    /// any bytes after it in the frame are Ethernet padding.
    #[inline(always)]
    pub fn ip_end(&self) -> usize {
        self.l3 + self.total_len
    }

    /// Length of the layer-4 segment (IP payload) in bytes.
    #[inline(always)]
    pub fn l4_len(&self) -> usize {
        self.total_len - self.ip_header_len
    }
}

/// The ICMP header of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Icmp<A = Ipv4Addr> {
    /// ICMP type.
    pub ty: u8,
    /// ICMP code.
    pub code: u8,
    /// For an error message, the packet it quotes.
    pub error: Option<IcmpError<A>>,
}

/// The packet quoted by an ICMP error: its IPv4 header and at least the
/// first 8 bytes of its payload. Offsets are from the start of the frame.
/// The quoted packet is the one that the error's sender received, so its
/// source is the address the error is sent to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IcmpError<A = Ipv4Addr> {
    /// Offset of the quoted IP header (the ICMP header's offset + 8).
    pub inner_l3: usize,
    /// Quoted IP header length in bytes (for IPv6 with the extension
    /// headers walked).
    pub inner_ip_header_len: usize,
    /// Quoted IP protocol number.
    pub inner_proto: u8,
    /// Quoted source address.
    pub inner_src: A,
    /// Quoted destination address.
    pub inner_dst: A,
    /// Quoted TCP or UDP source port; 0 for other protocols and for a
    /// non-first fragment.
    pub inner_sport: u16,
    /// Quoted TCP or UDP destination port; 0 for other protocols and for a
    /// non-first fragment.
    pub inner_dport: u16,
    /// Offset of the quoted layer-4 header.
    pub inner_l4: usize,
    /// Bytes of the quoted layer-4 header and payload present (at least 8;
    /// usually exactly 8, so a TCP checksum is usually not quoted).
    pub inner_l4_len: usize,
    /// The quoted packet has a non-zero fragment offset, so its quoted
    /// payload is not a layer-4 header.
    pub inner_is_later_fragment: bool,
}

/// Parses an Ethernet frame carrying IPv4.
///
/// Checks the Ethernet length and EtherType, the IPv4 header (version,
/// lengths, checksum), and that the TCP (with its options) or UDP header,
/// or the ICMP header, lies within the IP total length. An ICMP error must
/// have a valid checksum and quote at least an IPv4 header and 8 bytes.
/// A TCP data offset below 5 words or beyond the segment is
/// `bad_tcp_header`; a UDP length below 8 or beyond the IP payload is
/// `bad_udp_length`. Other IP protocols are accepted with ports 0: the
/// caller decides. The TCP and UDP checksums are not verified here (see
/// [`crate::hygiene::l4_checksum_ok`]).
pub fn parse(frame: &[u8]) -> Result<Packet, DropReason> {
    if frame.len() < ethernet::HEADER_LEN {
        return Err(DropReason::Truncated);
    }
    if ethernet::ethertype(frame) != ethernet::ETHERTYPE_IPV4 {
        return Err(DropReason::UnsupportedEthertype);
    }
    let l3 = ethernet::HEADER_LEN;
    let h = ipv4::parse(&frame[l3..]).map_err(|e| match e {
        ipv4::Ipv4Error::Truncated => DropReason::Truncated,
        ipv4::Ipv4Error::BadHeader => DropReason::BadIpv4Header,
        ipv4::Ipv4Error::BadChecksum => DropReason::BadIpv4Checksum,
    })?;
    let l4 = l3 + h.header_len;
    let mut p = Packet {
        l3,
        ip_header_len: h.header_len,
        total_len: h.total_len,
        proto: h.protocol,
        src: h.src,
        dst: h.dst,
        ttl: h.ttl,
        l4,
        sport: 0,
        dport: 0,
        tcp_flags: 0,
        is_fragment: h.is_fragment,
        icmp: None,
    };
    if h.is_fragment {
        return Ok(p);
    }
    match h.protocol {
        ipv4::PROTO_ICMP => p.icmp = Some(parse_icmp(frame, l4, p.ip_end())?),
        proto => transport(&frame[l4..p.ip_end()], proto, &mut p)?,
    }
    Ok(p)
}

/// Reads the ports (and TCP flags) of TCP or UDP segment `seg`, the whole
/// IP payload, into `p`, checking that the header lies within it. Other
/// protocols keep ports 0.
#[inline(always)]
pub(crate) fn transport<A>(seg: &[u8], proto: u8, p: &mut Packet<A>) -> Result<(), DropReason> {
    match proto {
        ipv4::PROTO_TCP => {
            if seg.len() < l4::TCP_MIN_HEADER_LEN {
                return Err(DropReason::Truncated);
            }
            let hl = l4::tcp_header_len(seg);
            if hl < l4::TCP_MIN_HEADER_LEN || hl > seg.len() {
                return Err(DropReason::BadTcpHeader);
            }
            (p.sport, p.dport) = l4::ports(seg);
            p.tcp_flags = l4::tcp_flags(seg);
        }
        ipv4::PROTO_UDP => {
            if seg.len() < l4::UDP_HEADER_LEN {
                return Err(DropReason::Truncated);
            }
            let len = l4::udp_length(seg);
            if len < l4::UDP_HEADER_LEN || len > seg.len() {
                return Err(DropReason::BadUdpLength);
            }
            (p.sport, p.dport) = l4::ports(seg);
        }
        _ => {}
    }
    Ok(())
}

/// Parses the ICMP message at `frame[l4..end]`.
fn parse_icmp(frame: &[u8], l4: usize, end: usize) -> Result<Icmp, DropReason> {
    let m = &frame[l4..end];
    if m.len() < icmp::HEADER_LEN {
        return Err(DropReason::BadIcmp);
    }
    let (ty, code) = (m[0], m[1]);
    if !icmp::is_error(ty) {
        return Ok(Icmp {
            ty,
            code,
            error: None,
        });
    }
    if !checksum::verify(m) {
        return Err(DropReason::BadIcmp);
    }
    let inner_l3 = l4 + icmp::HEADER_LEN;
    let error = parse_quoted(frame, inner_l3, end).ok_or(DropReason::BadIcmp)?;
    Ok(Icmp {
        ty,
        code,
        error: Some(error),
    })
}

/// Parses the packet quoted by an ICMP error at `frame[inner_l3..end]`. Its
/// header checksum and total length are not checked: the quote is usually
/// cut short, and is only ever rewritten incrementally.
fn parse_quoted(frame: &[u8], inner_l3: usize, end: usize) -> Option<IcmpError> {
    let q = &frame[inner_l3..end];
    if q.len() < ipv4::MIN_HEADER_LEN || q[0] >> 4 != 4 {
        return None;
    }
    let hl = ((q[0] & 0x0f) as usize) * 4;
    if hl < ipv4::MIN_HEADER_LEN || q.len() < hl + icmp::ERROR_QUOTED_PAYLOAD_LEN {
        return None;
    }
    let proto = q[9];
    let later_fragment = u16::from_be_bytes([q[6], q[7]]) & 0x1fff != 0;
    let (sport, dport) = match proto {
        ipv4::PROTO_TCP | ipv4::PROTO_UDP if !later_fragment => l4::ports(&q[hl..]),
        _ => (0, 0),
    };
    Some(IcmpError {
        inner_l3,
        inner_ip_header_len: hl,
        inner_proto: proto,
        inner_src: Ipv4Addr::new(q[12], q[13], q[14], q[15]),
        inner_dst: Ipv4Addr::new(q[16], q[17], q[18], q[19]),
        inner_sport: sport,
        inner_dport: dport,
        inner_l4: inner_l3 + hl,
        inner_l4_len: q.len() - hl,
        inner_is_later_fragment: later_fragment,
    })
}

/// The protocol number and transport endpoints (source, destination) of
/// an unfragmented IPv4 TCP or UDP frame, read with the fewest checks, or
/// `None`. For looking ahead over a burst (prefetching a connection's
/// entry) only: it checks no checksum or length beyond what it reads, so
/// [`parse`] still decides what the frame is.
#[inline]
pub fn peek_endpoints(frame: &[u8]) -> Option<(u8, SocketAddrV4, SocketAddrV4)> {
    let l3 = ethernet::HEADER_LEN;
    if frame.len() < l3 + ipv4::MIN_HEADER_LEN
        || ethernet::ethertype(frame) != ethernet::ETHERTYPE_IPV4
        || frame[l3] >> 4 != 4
    {
        return None;
    }
    let proto = frame[l3 + 9];
    let fragment = u16::from_be_bytes([frame[l3 + 6], frame[l3 + 7]]) & 0x3fff != 0;
    if fragment || (proto != ipv4::PROTO_TCP && proto != ipv4::PROTO_UDP) {
        return None;
    }
    let l4 = l3 + usize::from(frame[l3] & 0x0f) * 4;
    let ports = frame.get(l4..l4 + 4)?;
    let ip = |o: usize| Ipv4Addr::new(frame[o], frame[o + 1], frame[o + 2], frame[o + 3]);
    Some((
        proto,
        SocketAddrV4::new(ip(l3 + 12), u16::from_be_bytes([ports[0], ports[1]])),
        SocketAddrV4::new(ip(l3 + 16), u16::from_be_bytes([ports[2], ports[3]])),
    ))
}

/// Test packet builders, shared with [`crate::nat`]'s tests. Checksums come
/// from the [`crate::testing`] oracle, independent of
/// [`crate::wire::checksum`].
#[cfg(test)]
pub(crate) mod build {
    use std::net::Ipv4Addr;

    pub use crate::testing::{inet_checksum, ipv4_header_checksum as ip_checksum, l4_checksum};

    /// What to build.
    #[derive(Debug, Clone)]
    pub struct Spec {
        /// 6 (TCP), 17 (UDP), or anything else (payload only).
        pub proto: u8,
        pub src: Ipv4Addr,
        pub dst: Ipv4Addr,
        pub sport: u16,
        pub dport: u16,
        pub ttl: u8,
        pub id: u16,
        /// Flags and fragment offset word.
        pub frag: u16,
        /// IP options, a multiple of 4 bytes, at most 40.
        pub ip_opts: Vec<u8>,
        /// TCP options, a multiple of 4 bytes, at most 40.
        pub tcp_opts: Vec<u8>,
        pub tcp_flags: u8,
        pub payload: Vec<u8>,
        /// Whether UDP carries a checksum (else 0).
        pub udp_checksum: bool,
        /// Ethernet padding bytes after the IP packet.
        pub padding: Vec<u8>,
    }

    impl Default for Spec {
        fn default() -> Spec {
            Spec {
                proto: 17,
                src: Ipv4Addr::new(203, 0, 113, 7),
                dst: Ipv4Addr::new(192, 0, 2, 80),
                sport: 40000,
                dport: 53,
                ttl: 64,
                id: 0x1234,
                frag: 0x4000,
                ip_opts: Vec::new(),
                tcp_opts: Vec::new(),
                tcp_flags: 0x02,
                payload: b"hello sluice".to_vec(),
                udp_checksum: true,
                padding: Vec::new(),
            }
        }
    }

    /// The IP packet (no Ethernet header) described by `s`.
    pub fn ip_packet(s: &Spec) -> Vec<u8> {
        let mut seg = Vec::new();
        match s.proto {
            6 => {
                seg.extend_from_slice(&s.sport.to_be_bytes());
                seg.extend_from_slice(&s.dport.to_be_bytes());
                seg.extend_from_slice(&0x0102_0304u32.to_be_bytes());
                seg.extend_from_slice(&0x0a0b_0c0du32.to_be_bytes());
                seg.push((((20 + s.tcp_opts.len()) / 4) as u8) << 4);
                seg.push(s.tcp_flags);
                seg.extend_from_slice(&[0xfa, 0xf0, 0, 0, 0, 0]);
                seg.extend_from_slice(&s.tcp_opts);
                seg.extend_from_slice(&s.payload);
                let c = l4_checksum(s.src, s.dst, 6, &seg);
                seg[16..18].copy_from_slice(&c.to_be_bytes());
            }
            17 => {
                seg.extend_from_slice(&s.sport.to_be_bytes());
                seg.extend_from_slice(&s.dport.to_be_bytes());
                seg.extend_from_slice(&((8 + s.payload.len()) as u16).to_be_bytes());
                seg.extend_from_slice(&[0, 0]);
                seg.extend_from_slice(&s.payload);
                if s.udp_checksum {
                    let c = l4_checksum(s.src, s.dst, 17, &seg);
                    seg[6..8].copy_from_slice(&c.to_be_bytes());
                }
            }
            _ => seg.extend_from_slice(&s.payload),
        }
        let hl = 20 + s.ip_opts.len();
        let mut ip = vec![0u8; hl];
        ip[0] = 0x40 | (hl / 4) as u8;
        ip[2..4].copy_from_slice(&((hl + seg.len()) as u16).to_be_bytes());
        ip[4..6].copy_from_slice(&s.id.to_be_bytes());
        ip[6..8].copy_from_slice(&s.frag.to_be_bytes());
        ip[8] = s.ttl;
        ip[9] = s.proto;
        ip[12..16].copy_from_slice(&s.src.octets());
        ip[16..20].copy_from_slice(&s.dst.octets());
        ip[20..].copy_from_slice(&s.ip_opts);
        let c = ip_checksum(&ip);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        ip.extend_from_slice(&seg);
        ip
    }

    /// An Ethernet frame around `ip` followed by `padding`.
    pub fn ether(ip: &[u8], padding: &[u8]) -> Vec<u8> {
        let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x08, 0x00];
        f.extend_from_slice(ip);
        f.extend_from_slice(padding);
        f
    }

    /// The Ethernet frame described by `s`.
    pub fn frame(s: &Spec) -> Vec<u8> {
        ether(&ip_packet(s), &s.padding)
    }

    /// A frame carrying an ICMP error from `from` to `to` with `rest` in
    /// bytes 4..8 of the ICMP header, quoting `quoted`.
    pub fn icmp_error(
        ty: u8,
        code: u8,
        rest: [u8; 4],
        from: Ipv4Addr,
        to: Ipv4Addr,
        quoted: &[u8],
    ) -> Vec<u8> {
        let mut m = vec![ty, code, 0, 0];
        m.extend_from_slice(&rest);
        m.extend_from_slice(quoted);
        let c = inet_checksum(&[&m]);
        m[2..4].copy_from_slice(&c.to_be_bytes());
        let s = Spec {
            proto: 1,
            src: from,
            dst: to,
            ttl: 63,
            payload: m,
            ..Spec::default()
        };
        frame(&s)
    }
}

#[cfg(test)]
mod tests {
    use super::build::*;
    use super::*;
    use proptest::prelude::*;

    fn tcp_spec() -> Spec {
        Spec {
            proto: 6,
            sport: 51000,
            dport: 443,
            tcp_flags: l4::TCP_SYN,
            tcp_opts: vec![2, 4, 5, 0xb4, 1, 1, 4, 2],
            ..Spec::default()
        }
    }

    #[test]
    fn parses_tcp_with_options() {
        let s = Spec {
            ip_opts: vec![1, 1, 1, 0],
            ..tcp_spec()
        };
        let f = frame(&s);
        let p = parse(&f).unwrap();
        assert_eq!(p.l3, 14);
        assert_eq!(p.ip_header_len, 24);
        assert_eq!(p.l4, 38);
        assert_eq!(p.total_len, f.len() - 14);
        assert_eq!(p.l4_len(), 20 + 8 + s.payload.len());
        assert_eq!((p.proto, p.src, p.dst, p.ttl), (6, s.src, s.dst, 64));
        assert_eq!((p.sport, p.dport, p.tcp_flags), (51000, 443, l4::TCP_SYN));
        assert!(!p.is_fragment);
        assert_eq!(p.icmp, None);
    }

    #[test]
    fn parses_udp_and_ignores_padding() {
        let s = Spec {
            payload: vec![],
            padding: vec![0xee; 18],
            ..Spec::default()
        };
        let f = frame(&s);
        assert_eq!(f.len(), 60);
        let p = parse(&f).unwrap();
        assert_eq!(p.total_len, 28);
        assert_eq!(p.ip_end(), 42);
        assert_eq!((p.sport, p.dport, p.tcp_flags), (40000, 53, 0));
    }

    #[test]
    fn peek_reads_what_parse_reads_and_nothing_else() {
        for s in [
            tcp_spec(),
            Spec::default(),
            Spec {
                ip_opts: vec![1, 1, 1, 0],
                ..tcp_spec()
            },
        ] {
            let f = frame(&s);
            let p = parse(&f).unwrap();
            let want = (
                p.proto,
                SocketAddrV4::new(p.src, p.sport),
                SocketAddrV4::new(p.dst, p.dport),
            );
            assert_eq!(peek_endpoints(&f), Some(want));
            // Short of the ports: nothing.
            assert_eq!(peek_endpoints(&f[..p.l4 + 3]), None);
        }
        for s in [
            Spec {
                frag: 0x2000,
                ..tcp_spec()
            },
            Spec {
                frag: 0x0010,
                ..Spec::default()
            },
            Spec {
                proto: 47,
                ..Spec::default()
            },
        ] {
            assert_eq!(peek_endpoints(&frame(&s)), None, "{s:?}");
        }
    }

    #[test]
    fn other_protocols_have_no_ports() {
        let s = Spec {
            proto: 47,
            ..Spec::default()
        };
        let p = parse(&frame(&s)).unwrap();
        assert_eq!((p.proto, p.sport, p.dport), (47, 0, 0));
    }

    #[test]
    fn fragments_have_no_ports() {
        // First fragment (MF set) and a later one (offset 185 * 8).
        for frag in [0x2000, 0x00b9, 0x20b9] {
            let s = Spec { frag, ..tcp_spec() };
            let p = parse(&frame(&s)).unwrap();
            assert!(p.is_fragment);
            assert_eq!((p.sport, p.dport, p.tcp_flags), (0, 0, 0));
        }
        // A later fragment too short to hold a TCP header is fine.
        let s = Spec {
            frag: 0x00b9,
            payload: vec![],
            proto: 6,
            ..Spec::default()
        };
        let mut ip = ip_packet(&s);
        ip.truncate(24);
        ip[2..4].copy_from_slice(&24u16.to_be_bytes());
        let c = ip_checksum(&ip[..20]);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        assert!(parse(&ether(&ip, &[])).unwrap().is_fragment);
    }

    #[test]
    fn refuses_by_reason() {
        let good = frame(&tcp_spec());
        assert_eq!(parse(&good[..13]), Err(DropReason::Truncated));
        let mut f = good.clone();
        f[12..14].copy_from_slice(&[0x86, 0xdd]);
        assert_eq!(parse(&f), Err(DropReason::UnsupportedEthertype));
        let mut f = good.clone();
        f[14 + 10] ^= 1;
        assert_eq!(parse(&f), Err(DropReason::BadIpv4Checksum));
        let mut f = good.clone();
        f[14] = 0x65;
        assert_eq!(parse(&f), Err(DropReason::BadIpv4Header));
        // TCP data offset below 5, and beyond the segment.
        for doff in [4u8, 15] {
            let mut f = good.clone();
            f[34 + 12] = doff << 4;
            assert_eq!(parse(&f), Err(DropReason::BadTcpHeader));
        }
    }

    #[test]
    fn a_udp_length_outside_the_payload_is_refused() {
        let good = frame(&Spec::default());
        let payload = good.len() - 34;
        assert!(parse(&good).is_ok());
        for (len, ok) in [
            (0, false),
            (7, false),
            (8, true),
            (payload, true),
            (payload + 1, false),
            (0xffff, false),
        ] {
            let mut f = good.clone();
            f[34 + 4..34 + 6].copy_from_slice(&(len as u16).to_be_bytes());
            let r = parse(&f);
            if ok {
                assert!(r.is_ok(), "length {len}");
            } else {
                assert_eq!(r, Err(DropReason::BadUdpLength), "length {len}");
            }
        }
    }

    #[test]
    fn tcp_header_must_fit_in_total_len_not_frame() {
        // A SYN whose IP total length stops inside the TCP options, with
        // padding after it that would make the frame long enough.
        let s = tcp_spec();
        let mut ip = ip_packet(&Spec {
            payload: vec![],
            ..s
        });
        let short = (ip.len() - 4) as u16;
        ip[2..4].copy_from_slice(&short.to_be_bytes());
        let c = ip_checksum(&ip[..20]);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        assert_eq!(parse(&ether(&ip, &[0; 20])), Err(DropReason::BadTcpHeader));
    }

    #[test]
    fn every_truncation_is_refused_cleanly() {
        let frames = [
            frame(&tcp_spec()),
            frame(&Spec::default()),
            frame(&Spec {
                ip_opts: vec![7; 40],
                tcp_opts: vec![1; 40],
                ..tcp_spec()
            }),
            icmp_error(
                3,
                3,
                [0; 4],
                Ipv4Addr::new(10, 0, 0, 2),
                Ipv4Addr::new(203, 0, 113, 7),
                &ip_packet(&Spec::default())[..28],
            ),
        ];
        for f in &frames {
            assert!(parse(f).is_ok());
            for n in 0..f.len() {
                let r = parse(&f[..n]);
                assert_eq!(r, Err(DropReason::Truncated), "length {n}");
            }
        }
    }

    fn port_unreachable(quote_len: usize) -> (Vec<u8>, Vec<u8>) {
        let inner = ip_packet(&Spec {
            dst: Ipv4Addr::new(10, 0, 0, 2),
            dport: 5353,
            ..Spec::default()
        });
        let f = icmp_error(
            icmp::TYPE_DEST_UNREACHABLE,
            icmp::CODE_PORT_UNREACHABLE,
            [0; 4],
            Ipv4Addr::new(10, 0, 0, 2),
            Ipv4Addr::new(203, 0, 113, 7),
            &inner[..quote_len],
        );
        (f, inner)
    }

    #[test]
    fn parses_icmp_error_quote() {
        let (f, _) = port_unreachable(28);
        let p = parse(&f).unwrap();
        assert_eq!((p.proto, p.sport, p.dport), (1, 0, 0));
        let i = p.icmp.unwrap();
        assert_eq!((i.ty, i.code), (3, 3));
        let e = i.error.unwrap();
        assert_eq!(e.inner_l3, p.l4 + 8);
        assert_eq!(e.inner_ip_header_len, 20);
        assert_eq!(e.inner_l4, e.inner_l3 + 20);
        assert_eq!(e.inner_l4_len, 8);
        assert_eq!(e.inner_proto, ipv4::PROTO_UDP);
        assert_eq!(e.inner_src, Ipv4Addr::new(203, 0, 113, 7));
        assert_eq!(e.inner_dst, Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!((e.inner_sport, e.inner_dport), (40000, 5353));
        assert!(!e.inner_is_later_fragment);
        // The whole quoted datagram.
        let (f, inner) = port_unreachable(40);
        assert_eq!(inner.len(), 40);
        let e = parse(&f).unwrap().icmp.unwrap().error.unwrap();
        assert_eq!(e.inner_l4_len, 20);
    }

    #[test]
    fn refuses_bad_icmp_errors() {
        // Quote shorter than an IP header + 8 bytes.
        for n in [0, 19, 20, 27] {
            let (f, _) = port_unreachable(n);
            assert_eq!(parse(&f), Err(DropReason::BadIcmp), "quote {n}");
        }
        // Bad ICMP checksum.
        let (mut f, _) = port_unreachable(28);
        f[34 + 2] ^= 0x40;
        assert_eq!(parse(&f), Err(DropReason::BadIcmp));
        // Quoted packet not IPv4.
        let (f, inner) = port_unreachable(28);
        let mut q = inner[..28].to_vec();
        q[0] = 0x65;
        let g = icmp_error(3, 3, [0; 4], Ipv4Addr::LOCALHOST, Ipv4Addr::LOCALHOST, &q);
        assert_eq!(parse(&g), Err(DropReason::BadIcmp));
        // Quoted IP options that leave fewer than 8 bytes.
        let mut q = f[42..].to_vec();
        q[0] = 0x46;
        let g = icmp_error(3, 3, [0; 4], Ipv4Addr::LOCALHOST, Ipv4Addr::LOCALHOST, &q);
        assert_eq!(parse(&g), Err(DropReason::BadIcmp));
        // ICMP shorter than its header.
        let s = Spec {
            proto: 1,
            payload: vec![8, 0, 0, 0],
            ..Spec::default()
        };
        assert_eq!(parse(&frame(&s)), Err(DropReason::BadIcmp));
    }

    #[test]
    fn echo_is_not_an_error() {
        let mut m = vec![icmp::TYPE_ECHO_REQUEST, 0, 0, 0, 0, 1, 0, 1];
        let c = inet_checksum(&[&m]);
        m[2..4].copy_from_slice(&c.to_be_bytes());
        let s = Spec {
            proto: 1,
            payload: m,
            ..Spec::default()
        };
        let p = parse(&frame(&s)).unwrap();
        assert_eq!(
            p.icmp,
            Some(Icmp {
                ty: 8,
                code: 0,
                error: None
            })
        );
    }

    #[test]
    fn quoted_later_fragment_has_no_ports() {
        let inner = ip_packet(&Spec {
            frag: 0x0010,
            ..Spec::default()
        });
        let f = icmp_error(
            11,
            1,
            [0; 4],
            Ipv4Addr::new(10, 0, 0, 2),
            Ipv4Addr::new(203, 0, 113, 7),
            &inner[..28],
        );
        let e = parse(&f).unwrap().icmp.unwrap().error.unwrap();
        assert!(e.inner_is_later_fragment);
        assert_eq!((e.inner_sport, e.inner_dport), (0, 0));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(f in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse(&f);
            let _ = peek_endpoints(&f);
        }

        // Arbitrary bytes behind a valid Ethernet + IPv4 header, so parsing
        // reaches the layer-4 and ICMP code.
        #[test]
        fn arbitrary_payloads_never_panic(
            proto in prop_oneof![Just(1u8), Just(6u8), Just(17u8), any::<u8>()],
            frag in prop_oneof![Just(0u16), Just(0x4000u16), any::<u16>()],
            payload in proptest::collection::vec(any::<u8>(), 0..120),
            fix_icmp_checksum in any::<bool>(),
        ) {
            let mut payload = payload;
            if proto == 1 && fix_icmp_checksum && payload.len() >= 4 {
                payload[2] = 0;
                payload[3] = 0;
                let c = inet_checksum(&[&payload]);
                payload[2..4].copy_from_slice(&c.to_be_bytes());
            }
            let s = Spec { proto, frag, payload, ..Spec::default() };
            let f = frame(&s);
            if let Ok(p) = parse(&f) {
                prop_assert!(p.l4 <= p.ip_end() && p.ip_end() <= f.len());
                if let Some(Icmp { error: Some(e), .. }) = p.icmp {
                    prop_assert!(e.inner_l4 + 8 <= p.ip_end());
                    prop_assert_eq!(e.inner_l4 + e.inner_l4_len, p.ip_end());
                }
            }
        }

        #[test]
        fn mutated_frames_never_panic(idx in 0usize..100, val in any::<u8>(), cut in 0usize..100) {
            let mut f = frame(&Spec { ip_opts: vec![1; 8], ..tcp_spec() });
            let i = idx % f.len();
            f[i] = val;
            f.truncate(f.len() - cut % 20);
            let _ = parse(&f);
        }
    }
}
