//! TCP and UDP headers: ports, flags and checksum offsets, and the
//! pseudo-header sum that their checksums cover.

use super::checksum;
use std::net::Ipv4Addr;

/// UDP header length.
pub const UDP_HEADER_LEN: usize = 8;
/// Minimum TCP header length.
pub const TCP_MIN_HEADER_LEN: usize = 20;
/// Offset of the checksum in a UDP header.
pub const UDP_CHECKSUM_OFFSET: usize = 6;
/// Offset of the checksum in a TCP header.
pub const TCP_CHECKSUM_OFFSET: usize = 16;

/// TCP FIN flag.
pub const TCP_FIN: u8 = 0x01;
/// TCP SYN flag.
pub const TCP_SYN: u8 = 0x02;
/// TCP RST flag.
pub const TCP_RST: u8 = 0x04;
/// TCP PSH flag.
pub const TCP_PSH: u8 = 0x08;
/// TCP ACK flag.
pub const TCP_ACK: u8 = 0x10;
/// TCP URG flag.
pub const TCP_URG: u8 = 0x20;
/// Offset of the length in a UDP header.
pub const UDP_LENGTH_OFFSET: usize = 4;

/// Source and destination ports of a TCP or UDP header.
#[inline(always)]
pub fn ports(p: &[u8]) -> (u16, u16) {
    (
        u16::from_be_bytes([p[0], p[1]]),
        u16::from_be_bytes([p[2], p[3]]),
    )
}

/// The header length in bytes given by a TCP header's data offset (not
/// validated: below TCP_MIN_HEADER_LEN for a malformed header).
#[inline(always)]
pub fn tcp_header_len(p: &[u8]) -> usize {
    ((p[12] >> 4) as usize) * 4
}

/// The flags byte of a TCP header.
#[inline(always)]
pub fn tcp_flags(p: &[u8]) -> u8 {
    p[13]
}

/// The length field of a UDP header (header included).
#[inline(always)]
pub fn udp_length(p: &[u8]) -> usize {
    u16::from_be_bytes([p[UDP_LENGTH_OFFSET], p[UDP_LENGTH_OFFSET + 1]]) as usize
}

/// Whether TCP or UDP segment `seg` (the whole IP payload) of an IPv4
/// packet carries a correct checksum. A UDP checksum of 0 means "none" in
/// IPv4 and passes. (Either family: [`crate::Address::verify_segment`].)
pub fn verify_checksum(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, seg: &[u8]) -> bool {
    verify_with(
        pseudo_header_sum(src, dst, protocol, seg.len() as u16),
        protocol,
        seg,
        true,
    )
}

/// Whether segment `seg` adds up with pseudo-header sum `pseudo`; a zero
/// UDP checksum passes when `udp_zero_ok` (IPv4) and fails otherwise
/// (IPv6, RFC 8200 8.1).
pub fn verify_with(pseudo: u32, protocol: u8, seg: &[u8], udp_zero_ok: bool) -> bool {
    let off = if protocol == super::ipv4::PROTO_UDP {
        if seg[UDP_CHECKSUM_OFFSET..UDP_CHECKSUM_OFFSET + 2] == [0, 0] {
            return udp_zero_ok;
        }
        UDP_CHECKSUM_OFFSET
    } else {
        TCP_CHECKSUM_OFFSET
    };
    let stored = u16::from_be_bytes([seg[off], seg[off + 1]]);
    let computed = checksum_with(pseudo, protocol, seg, off);
    // One's complement has two zeros, and a sender may store a computed 0
    // as 0xffff: UDP must (the computation above maps it already), and
    // Linux's software checksum does for TCP too (`CSUM_MANGLED_0`). A
    // receiver that sums the whole segment accepts both, as Linux does.
    stored == computed || (computed == 0 && stored == 0xffff)
}

/// The sum of the IPv4 pseudo-header (not folded, not inverted).
pub fn pseudo_header_sum(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, len: u16) -> u32 {
    let mut b = [0u8; 12];
    b[0..4].copy_from_slice(&src.octets());
    b[4..8].copy_from_slice(&dst.octets());
    b[9] = protocol;
    b[10..12].copy_from_slice(&len.to_be_bytes());
    checksum::sum(&b, 0)
}

/// The checksum of a TCP or UDP segment `seg` of an IPv4 packet (its
/// checksum field zeroed by the caller or not: the field at `csum_off` is
/// skipped).
pub fn segment_checksum(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    protocol: u8,
    seg: &[u8],
    csum_off: usize,
) -> u16 {
    checksum_with(
        pseudo_header_sum(src, dst, protocol, seg.len() as u16),
        protocol,
        seg,
        csum_off,
    )
}

/// The checksum of segment `seg` with pseudo-header sum `pseudo`, the
/// field at `csum_off` skipped; a UDP checksum that comes out 0 is 0xffff.
pub fn checksum_with(pseudo: u32, protocol: u8, seg: &[u8], csum_off: usize) -> u16 {
    let mut acc = checksum::sum(&seg[..csum_off], pseudo);
    acc = checksum::sum(&seg[csum_off + 2..], acc);
    // csum_off is even, so the split keeps 16-bit word alignment.
    let c = !checksum::fold(acc);
    if protocol == super::ipv4::PROTO_UDP && c == 0 {
        0xffff
    } else {
        c
    }
}
