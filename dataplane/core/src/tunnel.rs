//! Tunnel mode (LVS's `-i`, Katran's and Maglev's encapsulation): the
//! client's IP packet goes to the real unchanged, inside an outer header
//! addressed to the real, so the real may be anywhere the routes reach;
//! it decapsulates, holds the VIP on a loopback, and answers the client
//! directly.
//!
//! - IP-in-IP: an outer IPv4 header with protocol 4 (RFC 2003), or an
//!   outer IPv6 header with next header 41 (RFC 2473).
//! - GUE variant 1 (draft-ietf-intarea-gue §4): an outer IP header and a
//!   UDP header to the GUE port, then the inner IP packet itself (its
//!   first nibble, 4 or 6, is the variant-1 header). Linux receives it
//!   with `fou` (`ipproto 4`/`41`) or `gue`. The UDP source port comes
//!   from the inner flow's hash, so that routers' ECMP, which hashes the
//!   outer header, spreads the tunnels as it would the flows.
//!
//! The outer header copies the inner DSCP/ECN (IPv4 TOS, IPv6 traffic
//! class) and, for IPv4, the inner DF bit, as IPVS does; an IPv6 outer
//! header carries the flow hash as its flow label (RFC 6438).
//!
//! A frame grows at the front: [`Outer`] is written beside the frame, and
//! [`prepend`] puts it between the Ethernet header and the inner packet
//! once the frame's buffer has room in front.

use crate::wire::{checksum, ethernet, ipv4, ipv6};
use std::net::{Ipv4Addr, Ipv6Addr};

/// IP protocol number of an IPv4 packet inside IPv4 (or IPv6).
pub const PROTO_IPIP: u8 = 4;
/// IP protocol number of an IPv6 packet inside IPv6 (or IPv4).
pub const PROTO_IPV6: u8 = 41;
/// UDP header length.
pub const UDP_HEADER_LEN: usize = 8;
/// The longest outer header (after the Ethernet header): IPv6 and UDP.
pub const MAX_OUTER: usize = ipv6::HEADER_LEN + UDP_HEADER_LEN;
/// The GUE port when the configuration names none (the one Linux's
/// `ip fou` examples use).
pub const DEFAULT_GUE_PORT: u16 = 6080;
/// The outer TTL (hop limit).
pub const TTL: u8 = 64;

/// How the packet is encapsulated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encap {
    /// IP-in-IP (IPv4 in IPv4, IPv6 in IPv6).
    Ipip,
    /// GUE variant 1 to this UDP port.
    Gue {
        /// The real's GUE port.
        port: u16,
    },
}

impl Encap {
    /// Bytes the encapsulation adds to an IP packet, with an outer IPv6
    /// header when `v6`.
    pub fn overhead(self, v6: bool) -> usize {
        let ip = if v6 { ipv6::HEADER_LEN } else { 20 };
        match self {
            Encap::Ipip => ip,
            Encap::Gue { .. } => ip + UDP_HEADER_LEN,
        }
    }
}

/// An outer header, written and waiting to go in front of its packet.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Outer {
    bytes: [u8; MAX_OUTER],
    len: u8,
    /// For the first of two outer fragments: how many bytes of the inner
    /// packet it carries (0: all of them).
    carries: u16,
}

impl std::fmt::Debug for Outer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Outer({:02x?})", self.bytes())
    }
}

impl Outer {
    /// The header's bytes (outer IP header, then UDP for GUE).
    pub fn bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }

    /// Its length: how far the frame grows.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether it is empty (never, once written).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// For the first of two outer fragments, the length its frame is cut
    /// to once the header is in front: Ethernet, itself, and the part of
    /// the inner packet it carries. None for a whole outer packet.
    pub fn cut_frame_len(&self) -> Option<usize> {
        (self.carries != 0).then(|| ethernet::HEADER_LEN + self.len() + usize::from(self.carries))
    }
}

/// The longest second outer fragment [`fragment4`] writes (an IP packet).
pub const MAX_TAIL: usize = 2048;

/// Splits the IPv4 packet that `outer` (an outer IPv4 header, with UDP for
/// GUE) and `inner` make, too long for `mtu`, into two fragments, as the
/// outer header's sender may when the inner packet may be fragmented
/// (RFC 2003 §5.1): returns the first fragment's outer header (more
/// fragments, its total length cut, [`Outer::cut_frame_len`] saying how
/// much of the frame it keeps) and writes the second fragment, a whole
/// IPv4 packet, into `tail`, returning its length. None when two
/// fragments cannot carry it or `tail` is too short.
pub fn fragment4(
    outer: &Outer,
    inner: &[u8],
    mtu: usize,
    tail: &mut [u8],
) -> Option<(Outer, usize)> {
    let udp = outer.len() - 20;
    let payload = udp + inner.len();
    let per = mtu.checked_sub(20)? / 8 * 8;
    if per <= udp || payload <= per || payload - per > per || 20 + payload - per > tail.len() {
        return None;
    }
    let mut first = *outer;
    first.carries = (per - udp) as u16;
    let h = &mut first.bytes[..20];
    h[2..4].copy_from_slice(&((20 + per) as u16).to_be_bytes());
    h[6] = 0x20;
    h[7] = 0;
    h[10..12].fill(0);
    let c = checksum::checksum(h);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    let rest = &inner[per - udp..];
    let n = 20 + rest.len();
    let t = &mut tail[..n];
    t[..20].copy_from_slice(&outer.bytes[..20]);
    t[2..4].copy_from_slice(&(n as u16).to_be_bytes());
    t[6..8].copy_from_slice(&((per / 8) as u16).to_be_bytes());
    t[10..12].fill(0);
    let c = checksum::checksum(&t[..20]);
    t[10..12].copy_from_slice(&c.to_be_bytes());
    t[20..].copy_from_slice(rest);
    Some((first, n))
}

/// The GUE source port of a flow with hash `hash`: in the dynamic range
/// 49152-65535, as Linux's `udp_flow_src_port` picks it.
pub fn gue_source_port(hash: u32) -> u16 {
    0xc000 | (hash as u16 & 0x3fff)
}

/// Whether an inner packet of `inner_len` bytes still fits a path MTU of
/// `mtu` bytes once encapsulated.
pub fn fits(inner_len: usize, encap: Encap, v6: bool, mtu: usize) -> bool {
    inner_len + encap.overhead(v6) <= mtu
}

/// The MTU a client must use for its packets to fit `mtu` encapsulated.
pub fn inner_mtu(encap: Encap, v6: bool, mtu: usize) -> usize {
    mtu.saturating_sub(encap.overhead(v6))
}

/// The outer IPv4 header (with UDP for GUE) for the inner IPv4 packet
/// `inner` (its IP header and payload, without Ethernet padding), from
/// `src` to `dst`; `id` is the outer identification, `hash` the flow's.
pub fn outer4(
    encap: Encap,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    inner: &[u8],
    id: u16,
    hash: u32,
) -> Outer {
    let mut o = Outer {
        bytes: [0; MAX_OUTER],
        len: encap.overhead(false) as u8,
        carries: 0,
    };
    let total = inner.len() + o.len();
    let (proto, tos, df) = match inner.first().map(|b| b >> 4) {
        Some(6) => (PROTO_IPV6, traffic_class(inner), 0),
        _ => (
            PROTO_IPIP,
            inner.get(1).copied().unwrap_or(0),
            inner.get(6).copied().unwrap_or(0) & 0x40,
        ),
    };
    let h = &mut o.bytes[..20];
    h[0] = 0x45;
    h[1] = tos;
    h[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    h[4..6].copy_from_slice(&id.to_be_bytes());
    h[6] = df;
    h[8] = TTL;
    h[9] = match encap {
        Encap::Ipip => proto,
        Encap::Gue { .. } => ipv4::PROTO_UDP,
    };
    h[12..16].copy_from_slice(&src.octets());
    h[16..20].copy_from_slice(&dst.octets());
    let c = checksum::checksum(h);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    if let Encap::Gue { port } = encap {
        // An IPv4 UDP checksum of zero: none (RFC 768), as tunnels send.
        write_udp(
            &mut o.bytes[20..28],
            gue_source_port(hash),
            port,
            inner.len(),
            0,
        );
    }
    o
}

/// The outer IPv6 header (with UDP for GUE) for the inner IPv6 packet
/// `inner`, from `src` to `dst`; the flow label is the flow's `hash`.
/// GUE over IPv6 carries a real UDP checksum (RFC 8200 §8.1; Linux drops
/// zero ones unless told otherwise), summed over the inner packet.
pub fn outer6(encap: Encap, src: Ipv6Addr, dst: Ipv6Addr, inner: &[u8], hash: u32) -> Outer {
    let mut o = Outer {
        bytes: [0; MAX_OUTER],
        len: encap.overhead(true) as u8,
        carries: 0,
    };
    let payload = inner.len() + o.len() - ipv6::HEADER_LEN;
    let (proto, class) = match inner.first().map(|b| b >> 4) {
        Some(4) => (PROTO_IPIP, inner.get(1).copied().unwrap_or(0)),
        _ => (PROTO_IPV6, traffic_class(inner)),
    };
    let next = match encap {
        Encap::Ipip => proto,
        Encap::Gue { .. } => ipv6::NEXT_UDP,
    };
    ipv6::write_header(&mut o.bytes[..40], payload as u16, next, TTL, src, dst);
    let label = hash & 0x000f_ffff;
    let word = (6u32 << 28) | (u32::from(class) << 20) | label;
    o.bytes[..4].copy_from_slice(&word.to_be_bytes());
    if let Encap::Gue { port } = encap {
        let udp_len = UDP_HEADER_LEN + inner.len();
        let sport = gue_source_port(hash);
        write_udp(&mut o.bytes[40..48], sport, port, inner.len(), 0);
        let mut acc = checksum::sum(&src.octets(), 0);
        acc = checksum::sum(&dst.octets(), acc);
        acc = checksum::sum(&(udp_len as u32).to_be_bytes(), acc);
        acc = checksum::sum(&[0, 0, 0, ipv6::NEXT_UDP], acc);
        acc = checksum::sum(&o.bytes[40..48], acc);
        acc = checksum::sum(inner, acc);
        let c = match !checksum::fold(acc) {
            0 => 0xffff,
            c => c,
        };
        o.bytes[46..48].copy_from_slice(&c.to_be_bytes());
    }
    o
}

fn traffic_class(inner: &[u8]) -> u8 {
    match inner {
        [a, b, ..] => (a << 4) | (b >> 4),
        _ => 0,
    }
}

fn write_udp(u: &mut [u8], sport: u16, dport: u16, inner_len: usize, csum: u16) {
    u[0..2].copy_from_slice(&sport.to_be_bytes());
    u[2..4].copy_from_slice(&dport.to_be_bytes());
    u[4..6].copy_from_slice(&((UDP_HEADER_LEN + inner_len) as u16).to_be_bytes());
    u[6..8].copy_from_slice(&csum.to_be_bytes());
}

/// Puts `outer` between the Ethernet header and the packet of a frame
/// that grew by `outer.len()` bytes at the front: `grown` is the frame's
/// new extent, whose first `outer.len()` bytes are the room made and
/// whose Ethernet header follows them. The Ethernet header moves to the
/// front (its MACs, set or not, go with it) and carries the outer
/// family's EtherType.
pub fn prepend(grown: &mut [u8], outer: &Outer) {
    let n = outer.len();
    grown.copy_within(n..n + ethernet::HEADER_LEN, 0);
    let ethertype = if outer.bytes[0] >> 4 == 6 {
        ethernet::ETHERTYPE_IPV6
    } else {
        ethernet::ETHERTYPE_IPV4
    };
    grown[12..14].copy_from_slice(&ethertype.to_be_bytes());
    grown[ethernet::HEADER_LEN..ethernet::HEADER_LEN + n].copy_from_slice(outer.bytes());
}

#[cfg(test)]
mod tests;
