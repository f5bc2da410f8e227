//! IPv6 headers (RFC 8200): the fixed header, and the walk along the
//! extension-header chain to the upper-layer header.
//!
//! The walk knows the extension headers a load balancer meets: hop-by-hop
//! options (only first, as RFC 8200 requires), routing (only with no
//! segments left: Sluice is not a hop of a source route), fragment (an
//! atomic fragment, offset 0 without more fragments, RFC 6946, is walked
//! through; any other fragment ends the walk, since Sluice does not
//! reassemble), destination options and the authentication header. ESP
//! and "no next header" end the walk as upper layers with no ports. At
//! most [`MAX_EXTENSION_HEADERS`] are walked: a longer chain, a header
//! that runs past the payload, or a misplaced hop-by-hop header is an
//! error, never a guess.

use std::net::Ipv6Addr;

/// Length of the fixed header.
pub const HEADER_LEN: usize = 40;
/// The minimum MTU every IPv6 link carries (RFC 8200 §5).
pub const MIN_MTU: usize = 1280;
/// Offset of the payload length.
pub const PAYLOAD_LEN_OFFSET: usize = 4;
/// Offset of the next-header field of the fixed header.
pub const NEXT_HEADER_OFFSET: usize = 6;
/// Offset of the hop limit.
pub const HOP_LIMIT_OFFSET: usize = 7;
/// Offset of the source address.
pub const SRC_OFFSET: usize = 8;
/// Offset of the destination address.
pub const DST_OFFSET: usize = 24;

/// Hop-by-hop options header.
pub const NEXT_HOP_BY_HOP: u8 = 0;
/// TCP.
pub const NEXT_TCP: u8 = 6;
/// UDP.
pub const NEXT_UDP: u8 = 17;
/// Routing header.
pub const NEXT_ROUTING: u8 = 43;
/// Fragment header.
pub const NEXT_FRAGMENT: u8 = 44;
/// Encapsulating security payload (opaque: ends the walk).
pub const NEXT_ESP: u8 = 50;
/// Authentication header.
pub const NEXT_AH: u8 = 51;
/// ICMPv6.
pub const NEXT_ICMPV6: u8 = 58;
/// No next header.
pub const NEXT_NONE: u8 = 59;
/// Destination options header.
pub const NEXT_DEST_OPTS: u8 = 60;

/// The most extension headers walked before the packet is refused. Real
/// traffic carries zero to three; eight leaves room for every legitimate
/// combination of RFC 8200's recommended order.
pub const MAX_EXTENSION_HEADERS: usize = 8;

/// Why an IPv6 header or its extension chain was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ipv6Error {
    /// Fewer bytes than the fixed header, or than the payload length says.
    Truncated,
    /// A version other than 6.
    BadHeader,
    /// An extension header that runs past the payload, a hop-by-hop header
    /// that is not first, a routing header with segments left, or more
    /// than [`MAX_EXTENSION_HEADERS`] of them.
    BadExtension,
}

/// The fixed header's fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Header {
    /// Payload length in bytes (extension headers included).
    pub payload_len: usize,
    /// The first next-header value.
    pub next_header: u8,
    /// Hop limit.
    pub hop_limit: u8,
    /// Source address.
    pub src: Ipv6Addr,
    /// Destination address.
    pub dst: Ipv6Addr,
}

/// The fragment header of a fragment, or of an atomic fragment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fragment {
    /// Fragment offset in 8-byte units.
    pub offset: u16,
    /// More fragments follow.
    pub more: bool,
    /// Identification.
    pub id: u32,
}

/// Where the extension chain ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Upper {
    /// The upper-layer protocol (the last next-header value).
    pub proto: u8,
    /// Offset of the upper-layer header from the start of the IPv6 header
    /// (40 plus the extension headers' lengths); for a fragment, of the
    /// fragment's data.
    pub offset: usize,
    /// A fragment (not an atomic one): the upper-layer header is not
    /// parsed, and after a non-zero offset is not even there.
    pub fragment: Option<Fragment>,
    /// Extension headers walked.
    pub extensions: u8,
}

/// Reads the fixed header at the start of `p`: version, and a payload that
/// fits in `p` (anything after it is Ethernet padding).
pub fn parse(p: &[u8]) -> Result<Ipv6Header, Ipv6Error> {
    if p.len() < HEADER_LEN {
        return Err(Ipv6Error::Truncated);
    }
    if p[0] >> 4 != 6 {
        return Err(Ipv6Error::BadHeader);
    }
    let payload_len = usize::from(u16::from_be_bytes([p[4], p[5]]));
    if HEADER_LEN + payload_len > p.len() {
        return Err(Ipv6Error::Truncated);
    }
    Ok(Ipv6Header {
        payload_len,
        next_header: p[NEXT_HEADER_OFFSET],
        hop_limit: p[HOP_LIMIT_OFFSET],
        src: address(p, SRC_OFFSET),
        dst: address(p, DST_OFFSET),
    })
}

/// Writes a fixed header without extensions at the start of `p`: traffic
/// class and flow label 0, `payload_len` bytes after it of `next_header`.
pub fn write_header(
    p: &mut [u8],
    payload_len: u16,
    next_header: u8,
    hop_limit: u8,
    src: Ipv6Addr,
    dst: Ipv6Addr,
) {
    p[..4].copy_from_slice(&[0x60, 0, 0, 0]);
    p[PAYLOAD_LEN_OFFSET..PAYLOAD_LEN_OFFSET + 2].copy_from_slice(&payload_len.to_be_bytes());
    p[NEXT_HEADER_OFFSET] = next_header;
    p[HOP_LIMIT_OFFSET] = hop_limit;
    p[SRC_OFFSET..SRC_OFFSET + 16].copy_from_slice(&src.octets());
    p[DST_OFFSET..DST_OFFSET + 16].copy_from_slice(&dst.octets());
}

/// The address at `p[off..off + 16]`.
#[inline(always)]
pub fn address(p: &[u8], off: usize) -> Ipv6Addr {
    let b: [u8; 16] = p[off..off + 16].try_into().unwrap();
    Ipv6Addr::from(b)
}

/// Walks the extension chain of the IPv6 packet `p` (fixed header and
/// payload, without padding) from next-header value `first`, to the
/// upper-layer header. A quoted packet (inside an ICMPv6 error) may be cut
/// short: the walk then fails with `Truncated` only if a header it must
/// read is missing.
pub fn walk(p: &[u8], first: u8) -> Result<Upper, Ipv6Error> {
    let mut next = first;
    let mut off = HEADER_LEN;
    for n in 0..=MAX_EXTENSION_HEADERS {
        let len = match next {
            NEXT_HOP_BY_HOP if n > 0 => return Err(Ipv6Error::BadExtension),
            NEXT_HOP_BY_HOP | NEXT_DEST_OPTS | NEXT_ROUTING | NEXT_AH | NEXT_FRAGMENT => {
                extension_len(p, off, next)?
            }
            _ => {
                return Ok(Upper {
                    proto: next,
                    offset: off,
                    fragment: None,
                    extensions: n as u8,
                })
            }
        };
        if n == MAX_EXTENSION_HEADERS {
            break;
        }
        let h = &p[off..off + len];
        match next {
            NEXT_ROUTING if h[3] != 0 => return Err(Ipv6Error::BadExtension),
            NEXT_FRAGMENT => {
                let word = u16::from_be_bytes([h[2], h[3]]);
                let f = Fragment {
                    offset: word >> 3,
                    more: word & 1 == 1,
                    id: u32::from_be_bytes([h[4], h[5], h[6], h[7]]),
                };
                if f.offset != 0 || f.more {
                    return Ok(Upper {
                        proto: h[0],
                        offset: off + len,
                        fragment: Some(f),
                        extensions: n as u8 + 1,
                    });
                }
            }
            _ => {}
        }
        next = h[0];
        off += len;
    }
    Err(Ipv6Error::BadExtension)
}

/// The length of extension header `kind` at `p[off..]`, checked to lie
/// within `p`.
fn extension_len(p: &[u8], off: usize, kind: u8) -> Result<usize, Ipv6Error> {
    if p.len() < off + 8 {
        return Err(Ipv6Error::Truncated);
    }
    let len = match kind {
        NEXT_FRAGMENT => 8,
        NEXT_AH => (usize::from(p[off + 1]) + 2) * 4,
        _ => (usize::from(p[off + 1]) + 1) * 8,
    };
    if p.len() < off + len {
        return Err(Ipv6Error::Truncated);
    }
    Ok(len)
}

/// Whether `a` is a multicast address (ff00::/8).
#[inline(always)]
pub fn is_multicast(a: &Ipv6Addr) -> bool {
    a.octets()[0] == 0xff
}

/// The solicited-node multicast address of `a` (ff02::1:ffXX:XXXX, RFC
/// 4291 2.7.1), to which neighbour solicitations for `a` are sent.
pub fn solicited_node(a: &Ipv6Addr) -> Ipv6Addr {
    let o = a.octets();
    Ipv6Addr::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | u16::from(o[13]),
        u16::from_be_bytes([o[14], o[15]]),
    )
}

/// The Ethernet multicast MAC of IPv6 multicast address `a`
/// (33:33 and its last four bytes, RFC 2464 7).
pub fn multicast_mac(a: &Ipv6Addr) -> [u8; 6] {
    let o = a.octets();
    [0x33, 0x33, o[12], o[13], o[14], o[15]]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(next: u8, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0x60, 0, 0, 0];
        p.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        p.extend_from_slice(&[next, 64]);
        p.extend_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
        p.extend_from_slice(&"2001:db8::100".parse::<Ipv6Addr>().unwrap().octets());
        p.extend_from_slice(payload);
        p
    }

    #[test]
    fn fixed_header() {
        let p = header(NEXT_TCP, &[0; 20]);
        let h = parse(&p).unwrap();
        assert_eq!(h.payload_len, 20);
        assert_eq!(h.next_header, NEXT_TCP);
        assert_eq!(h.hop_limit, 64);
        assert_eq!(h.dst, "2001:db8::100".parse::<Ipv6Addr>().unwrap());
        assert_eq!(parse(&p[..59]), Err(Ipv6Error::Truncated));
        let mut v4 = p.clone();
        v4[0] = 0x45;
        assert_eq!(parse(&v4), Err(Ipv6Error::BadHeader));
    }

    #[test]
    fn no_extensions() {
        let p = header(NEXT_UDP, &[0; 8]);
        let u = walk(&p, NEXT_UDP).unwrap();
        assert_eq!(
            (u.proto, u.offset, u.fragment, u.extensions),
            (17, 40, None, 0)
        );
    }

    #[test]
    fn hop_by_hop_then_dest_opts_then_tcp() {
        let mut ext = vec![NEXT_DEST_OPTS, 0, 1, 4, 0, 0, 0, 0];
        ext.extend_from_slice(&[NEXT_TCP, 1]);
        ext.extend_from_slice(&[1, 12]);
        ext.extend_from_slice(&[0; 12]);
        ext.extend_from_slice(&[0; 20]);
        let p = header(NEXT_HOP_BY_HOP, &ext);
        let u = walk(&p, NEXT_HOP_BY_HOP).unwrap();
        assert_eq!(
            (u.proto, u.offset, u.extensions),
            (NEXT_TCP, 40 + 8 + 16, 2)
        );
    }

    #[test]
    fn hop_by_hop_not_first_is_refused() {
        let mut ext = vec![NEXT_HOP_BY_HOP, 0, 0, 0, 0, 0, 0, 0];
        ext.extend_from_slice(&[NEXT_TCP, 0, 0, 0, 0, 0, 0, 0]);
        let p = header(NEXT_DEST_OPTS, &ext);
        assert_eq!(walk(&p, NEXT_DEST_OPTS), Err(Ipv6Error::BadExtension));
    }

    #[test]
    fn routing_header_with_segments_left_is_refused() {
        let ext = [NEXT_TCP, 2, 4, 1, 0, 0, 0, 0]
            .iter()
            .copied()
            .chain([0; 16])
            .collect::<Vec<_>>();
        let p = header(NEXT_ROUTING, &ext);
        assert_eq!(walk(&p, NEXT_ROUTING), Err(Ipv6Error::BadExtension));
        let mut done = ext.clone();
        done[3] = 0;
        let p = header(NEXT_ROUTING, &done);
        assert_eq!(walk(&p, NEXT_ROUTING).unwrap().offset, 40 + 24);
    }

    #[test]
    fn fragments() {
        // Atomic fragment: walked through.
        let mut ext = vec![NEXT_UDP, 0, 0, 0, 0, 0, 0, 7];
        ext.extend_from_slice(&[0; 8]);
        let p = header(NEXT_FRAGMENT, &ext);
        let u = walk(&p, NEXT_FRAGMENT).unwrap();
        assert_eq!((u.proto, u.offset, u.fragment), (NEXT_UDP, 48, None));
        // First fragment (more set) and a later one.
        ext[3] = 1;
        let p = header(NEXT_FRAGMENT, &ext);
        let f = walk(&p, NEXT_FRAGMENT).unwrap().fragment.unwrap();
        assert_eq!((f.offset, f.more, f.id), (0, true, 7));
        ext[2..4].copy_from_slice(&(185u16 << 3).to_be_bytes());
        let p = header(NEXT_FRAGMENT, &ext);
        let f = walk(&p, NEXT_FRAGMENT).unwrap().fragment.unwrap();
        assert_eq!((f.offset, f.more), (185, false));
    }

    #[test]
    fn a_chain_past_the_bound_is_refused() {
        let mut ext = Vec::new();
        for _ in 0..MAX_EXTENSION_HEADERS {
            ext.extend_from_slice(&[NEXT_DEST_OPTS, 0, 1, 4, 0, 0, 0, 0]);
        }
        let mut ok = ext.clone();
        let last = ok.len() - 8;
        ok[last] = NEXT_NONE;
        assert_eq!(
            walk(&header(NEXT_DEST_OPTS, &ok), NEXT_DEST_OPTS)
                .unwrap()
                .extensions,
            8
        );
        ext.extend_from_slice(&[NEXT_NONE, 0, 1, 4, 0, 0, 0, 0]);
        assert_eq!(
            walk(&header(NEXT_DEST_OPTS, &ext), NEXT_DEST_OPTS),
            Err(Ipv6Error::BadExtension)
        );
    }

    #[test]
    fn an_extension_past_the_payload_is_truncated() {
        let p = header(NEXT_DEST_OPTS, &[NEXT_TCP, 3, 0, 0, 0, 0, 0, 0]);
        assert_eq!(walk(&p, NEXT_DEST_OPTS), Err(Ipv6Error::Truncated));
        let p = header(NEXT_DEST_OPTS, &[NEXT_TCP, 0, 0]);
        assert_eq!(walk(&p, NEXT_DEST_OPTS), Err(Ipv6Error::Truncated));
    }

    #[test]
    fn solicited_node_and_multicast_mac() {
        let a: Ipv6Addr = "2001:db8::1:2a3b:4c5d".parse().unwrap();
        let s = solicited_node(&a);
        assert_eq!(s, "ff02::1:ff3b:4c5d".parse::<Ipv6Addr>().unwrap());
        assert!(is_multicast(&s));
        assert_eq!(multicast_mac(&s), [0x33, 0x33, 0xff, 0x3b, 0x4c, 0x5d]);
    }
}
