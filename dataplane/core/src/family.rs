//! The two address families behind one trait, so that parsing results,
//! NAT rewrites and checksum updates are written once and instantiated for
//! IPv4 and IPv6: [`Address`] is implemented by [`Ipv4Addr`] and
//! [`Ipv6Addr`] and says where a family keeps its addresses and hop count,
//! whether its header has a checksum, and what its pseudo-header sums to.

use crate::wire::{checksum, ethernet, ipv4, ipv6, l4};
pub use sluice_model::{IpAddress, SocketAddress};
use std::net::{Ipv4Addr, Ipv6Addr};

/// An IP address of one family ([`IpAddress`]), and that family's header
/// layout.
pub trait Address: IpAddress {
    /// EtherType of the family.
    const ETHERTYPE: u16;
    /// Address length in bytes.
    const LEN: usize;
    /// Offset of the source address in the IP header.
    const SRC_OFFSET: usize;
    /// Offset of the destination address in the IP header.
    const DST_OFFSET: usize;
    /// Offset of the TTL (IPv4) or hop limit (IPv6).
    const HOP_OFFSET: usize;
    /// Offset of the header checksum; IPv6 has none.
    const HEADER_CHECKSUM: Option<usize>;
    /// The family's ICMP protocol number (1 or 58).
    const ICMP: u8;
    /// The family's ICMP echo request type (8 or 128).
    const ICMP_ECHO_REQUEST: u8;
    /// Whether a UDP checksum of 0 means "none" (IPv4) rather than being
    /// invalid (IPv6, RFC 8200 8.1).
    const UDP_CHECKSUM_OPTIONAL: bool;

    /// The address at the start of `b`.
    fn read(b: &[u8]) -> Self;
    /// Writes the address at the start of `b`.
    fn write(self, b: &mut [u8]);
    /// Updates checksum `hc` after the address changed from `old` to `new`
    /// (RFC 1624 over each of its 16-bit words).
    fn update(hc: u16, old: Self, new: Self) -> u16;
    /// The unfolded sum of the TCP/UDP/ICMPv6 pseudo-header for a segment
    /// of `len` bytes of protocol `proto` from `src` to `dst`.
    fn pseudo_header_sum(src: Self, dst: Self, proto: u8, len: usize) -> u32;

    /// The checksum of a TCP, UDP (or ICMPv6) segment `seg` from `src` to
    /// `dst`, the field at `csum_off` skipped.
    fn segment_checksum(src: Self, dst: Self, proto: u8, seg: &[u8], csum_off: usize) -> u16 {
        l4::checksum_with(
            Self::pseudo_header_sum(src, dst, proto, seg.len()),
            proto,
            seg,
            csum_off,
        )
    }

    /// Whether TCP or UDP segment `seg` from `src` to `dst` adds up (a zero
    /// UDP checksum passes in IPv4 only).
    fn verify_segment(src: Self, dst: Self, proto: u8, seg: &[u8]) -> bool {
        let pseudo = Self::pseudo_header_sum(src, dst, proto, seg.len());
        l4::verify_with(pseudo, proto, seg, Self::UDP_CHECKSUM_OPTIONAL)
    }
}

impl Address for Ipv4Addr {
    const ETHERTYPE: u16 = ethernet::ETHERTYPE_IPV4;
    const LEN: usize = 4;
    const SRC_OFFSET: usize = 12;
    const DST_OFFSET: usize = 16;
    const HOP_OFFSET: usize = 8;
    const HEADER_CHECKSUM: Option<usize> = Some(10);
    const ICMP: u8 = ipv4::PROTO_ICMP;
    const ICMP_ECHO_REQUEST: u8 = crate::wire::icmp::TYPE_ECHO_REQUEST;
    const UDP_CHECKSUM_OPTIONAL: bool = true;

    #[inline(always)]
    fn read(b: &[u8]) -> Self {
        Ipv4Addr::new(b[0], b[1], b[2], b[3])
    }

    #[inline(always)]
    fn write(self, b: &mut [u8]) {
        b[..4].copy_from_slice(&self.octets());
    }

    #[inline(always)]
    fn update(hc: u16, old: Self, new: Self) -> u16 {
        checksum::update32(hc, u32::from(old), u32::from(new))
    }

    #[inline]
    fn pseudo_header_sum(src: Self, dst: Self, proto: u8, len: usize) -> u32 {
        crate::wire::l4::pseudo_header_sum(src, dst, proto, len as u16)
    }
}

impl Address for Ipv6Addr {
    const ETHERTYPE: u16 = ethernet::ETHERTYPE_IPV6;
    const LEN: usize = 16;
    const SRC_OFFSET: usize = ipv6::SRC_OFFSET;
    const DST_OFFSET: usize = ipv6::DST_OFFSET;
    const HOP_OFFSET: usize = ipv6::HOP_LIMIT_OFFSET;
    const HEADER_CHECKSUM: Option<usize> = None;
    const ICMP: u8 = ipv6::NEXT_ICMPV6;
    const ICMP_ECHO_REQUEST: u8 = crate::wire::icmpv6::TYPE_ECHO_REQUEST;
    const UDP_CHECKSUM_OPTIONAL: bool = false;

    #[inline(always)]
    fn read(b: &[u8]) -> Self {
        ipv6::address(b, 0)
    }

    #[inline(always)]
    fn write(self, b: &mut [u8]) {
        b[..16].copy_from_slice(&self.octets());
    }

    #[inline(always)]
    fn update(hc: u16, old: Self, new: Self) -> u16 {
        // ~HC' = ~HC + sum(~m) + sum(m'), over the eight words at once:
        // the sum of the complements is the complement of the sum.
        let old = checksum::fold(checksum::sum(&old.octets(), 0));
        let new = checksum::fold(checksum::sum(&new.octets(), 0));
        let s = u32::from(!hc) + u32::from(!old) + u32::from(new);
        !checksum::fold(s)
    }

    #[inline]
    fn pseudo_header_sum(src: Self, dst: Self, proto: u8, len: usize) -> u32 {
        let mut acc = checksum::sum(&src.octets(), 0);
        acc = checksum::sum(&dst.octets(), acc);
        acc = checksum::sum(&(len as u32).to_be_bytes(), acc);
        checksum::sum(&[0, 0, 0, proto], acc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The checksum of `words` computed from scratch, 16 bits at a time.
    fn scratch(words: &[u16]) -> u16 {
        let mut s: u32 = words.iter().map(|&w| u32::from(w)).sum();
        while s > 0xffff {
            s = (s & 0xffff) + (s >> 16);
        }
        !(s as u16)
    }

    fn words(a: &Ipv6Addr) -> Vec<u16> {
        a.segments().to_vec()
    }

    proptest! {
        /// An incremental update after an IPv6 address change equals the
        /// checksum computed again from scratch (up to the two zeros of
        /// ones' complement, which a receiver accepts alike).
        #[test]
        fn ipv6_update_matches_scratch(
            old in any::<[u8; 16]>(), new in any::<[u8; 16]>(),
            rest in proptest::collection::vec(any::<u16>(), 1..20),
        ) {
            let (old, new) = (Ipv6Addr::from(old), Ipv6Addr::from(new));
            let before = [words(&old), rest.clone()].concat();
            let after = [words(&new), rest].concat();
            let updated = <Ipv6Addr as Address>::update(scratch(&before), old, new);
            let expected = scratch(&after);
            prop_assert!(updated == expected || (updated ^ expected == 0xffff
                && (updated == 0 || expected == 0)),
                "updated {updated:04x}, from scratch {expected:04x}");
        }

        /// The IPv6 pseudo-header sum is RFC 8200 8.1's: source,
        /// destination, 32-bit length, three zero bytes and next header.
        #[test]
        fn ipv6_pseudo_header(src in any::<[u8; 16]>(), dst in any::<[u8; 16]>(),
                              proto in any::<u8>(), len in 0usize..70000) {
            let mut w = words(&Ipv6Addr::from(src));
            w.extend(words(&Ipv6Addr::from(dst)));
            w.extend([(len >> 16) as u16, len as u16, 0, u16::from(proto)]);
            let s = <Ipv6Addr as Address>::pseudo_header_sum(
                Ipv6Addr::from(src), Ipv6Addr::from(dst), proto, len);
            prop_assert_eq!(!checksum::fold(s), scratch(&w));
        }
    }
}
