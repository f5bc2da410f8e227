//! IPv4 headers: validation and the fields Sluice reads and rewrites.

use super::checksum;
use std::net::Ipv4Addr;

/// Minimum header length.
pub const MIN_HEADER_LEN: usize = 20;
/// Protocol number of ICMP.
pub const PROTO_ICMP: u8 = 1;
/// Protocol number of TCP.
pub const PROTO_TCP: u8 = 6;
/// Protocol number of UDP.
pub const PROTO_UDP: u8 = 17;

/// Why an IPv4 header was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ipv4Error {
    /// Fewer bytes than the header needs.
    Truncated,
    /// Bad version, header length, or total length.
    BadHeader,
    /// Header checksum mismatch.
    BadChecksum,
}

/// A validated IPv4 header's fields. Offsets are relative to the start of
/// the IPv4 header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Header {
    /// Header length in bytes.
    pub header_len: usize,
    /// Total length (header + payload) in bytes.
    pub total_len: usize,
    /// Time to live.
    pub ttl: u8,
    /// Payload protocol.
    pub protocol: u8,
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// More-fragments flag or a non-zero fragment offset.
    pub is_fragment: bool,
}

/// Validates the IPv4 header at the start of `p` (checksum included).
pub fn parse(p: &[u8]) -> Result<Ipv4Header, Ipv4Error> {
    if p.len() < MIN_HEADER_LEN {
        return Err(Ipv4Error::Truncated);
    }
    if p[0] >> 4 != 4 {
        return Err(Ipv4Error::BadHeader);
    }
    let header_len = ((p[0] & 0x0f) as usize) * 4;
    if header_len < MIN_HEADER_LEN {
        return Err(Ipv4Error::BadHeader);
    }
    if p.len() < header_len {
        return Err(Ipv4Error::Truncated);
    }
    let total_len = u16::from_be_bytes([p[2], p[3]]) as usize;
    if total_len < header_len {
        return Err(Ipv4Error::BadHeader);
    }
    if total_len > p.len() {
        return Err(Ipv4Error::Truncated);
    }
    if !checksum::verify(&p[..header_len]) {
        return Err(Ipv4Error::BadChecksum);
    }
    let frag = u16::from_be_bytes([p[6], p[7]]);
    Ok(Ipv4Header {
        header_len,
        total_len,
        ttl: p[8],
        protocol: p[9],
        src: Ipv4Addr::new(p[12], p[13], p[14], p[15]),
        dst: Ipv4Addr::new(p[16], p[17], p[18], p[19]),
        is_fragment: frag & 0x3fff != 0,
    })
}

/// Sets source and destination and the TTL, and recomputes the header
/// checksum from scratch (used on the appliance's own replies).
pub fn rewrite_for_reply(p: &mut [u8], header_len: usize, src: Ipv4Addr, dst: Ipv4Addr, ttl: u8) {
    p[8] = ttl;
    p[12..16].copy_from_slice(&src.octets());
    p[16..20].copy_from_slice(&dst.octets());
    p[10] = 0;
    p[11] = 0;
    let c = checksum::checksum(&p[..header_len]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
}

/// Writes a minimal 20-byte header (no options, DF set) with its checksum.
pub fn write_header(
    p: &mut [u8],
    total_len: u16,
    id: u16,
    ttl: u8,
    protocol: u8,
    src: Ipv4Addr,
    dst: Ipv4Addr,
) {
    p[0] = 0x45;
    p[1] = 0;
    p[2..4].copy_from_slice(&total_len.to_be_bytes());
    p[4..6].copy_from_slice(&id.to_be_bytes());
    p[6..8].copy_from_slice(&0x4000u16.to_be_bytes());
    p[8] = ttl;
    p[9] = protocol;
    p[10] = 0;
    p[11] = 0;
    p[12..16].copy_from_slice(&src.octets());
    p[16..20].copy_from_slice(&dst.octets());
    let c = checksum::checksum(&p[..20]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> [u8; 20] {
        let mut h = [0u8; 20];
        write_header(
            &mut h,
            20,
            7,
            64,
            PROTO_UDP,
            Ipv4Addr::new(192, 0, 2, 1),
            Ipv4Addr::new(198, 51, 100, 2),
        );
        h
    }

    #[test]
    fn parses_valid_header() {
        let h = parse(&header()).unwrap();
        assert_eq!(h.header_len, 20);
        assert_eq!(h.protocol, PROTO_UDP);
        assert_eq!(h.dst, Ipv4Addr::new(198, 51, 100, 2));
        assert!(!h.is_fragment);
    }

    #[test]
    fn refuses_bad_headers() {
        let mut h = header();
        h[11] ^= 1;
        assert_eq!(parse(&h), Err(Ipv4Error::BadChecksum));
        let mut h = header();
        h[0] = 0x65;
        assert_eq!(parse(&h), Err(Ipv4Error::BadHeader));
        let mut h = header();
        h[0] = 0x44;
        assert_eq!(parse(&h), Err(Ipv4Error::BadHeader));
        let mut h = header();
        h[3] = 40;
        assert_eq!(parse(&h), Err(Ipv4Error::Truncated));
        assert_eq!(parse(&header()[..19]), Err(Ipv4Error::Truncated));
    }

    #[test]
    fn fragments_are_flagged() {
        let mut h = header();
        h[6] = 0x20; // MF
        h[10] = 0;
        h[11] = 0;
        let c = checksum::checksum(&h);
        h[10..12].copy_from_slice(&c.to_be_bytes());
        assert!(parse(&h).unwrap().is_fragment);
    }
}
