//! Oracles for tests, here and in the crates above (with the `testing`
//! feature): the Internet checksums computed the plain way, a 64-bit sum of
//! big-endian words folded at the end, independently of
//! [`crate::wire::checksum`]'s incremental and unrolled code, so that a test
//! checks one against the other.

use std::net::Ipv4Addr;

/// The Internet checksum of the concatenation of `parts` (an odd last
/// byte padded with 0), folded and complemented.
pub fn inet_checksum(parts: &[&[u8]]) -> u16 {
    let bytes: Vec<u8> = parts.iter().flat_map(|p| p.iter().copied()).collect();
    let mut total: u64 = 0;
    for pair in bytes.chunks(2) {
        let hi = u64::from(pair[0]);
        let lo = u64::from(pair.get(1).copied().unwrap_or(0));
        total += (hi << 8) | lo;
    }
    while total > 0xffff {
        total = (total & 0xffff) + (total >> 16);
    }
    !(total as u16)
}

/// The IPv4 header checksum of `hdr`, the stored one ignored.
pub fn ipv4_header_checksum(hdr: &[u8]) -> u16 {
    inet_checksum(&[&hdr[..10], &[0, 0], &hdr[12..]])
}

/// The TCP (6) or UDP (17) checksum of `seg` from scratch (pseudo-header
/// and segment, the stored checksum ignored), 0 sent as 0xffff for UDP.
pub fn l4_checksum(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, seg: &[u8]) -> u16 {
    let off = if proto == 6 { 16 } else { 6 };
    let mut pseudo = Vec::new();
    pseudo.extend_from_slice(&src.octets());
    pseudo.extend_from_slice(&dst.octets());
    pseudo.extend_from_slice(&[0, proto]);
    pseudo.extend_from_slice(&(seg.len() as u16).to_be_bytes());
    let c = inet_checksum(&[&pseudo, &seg[..off], &[0, 0], &seg[off + 2..]]);
    if proto == 17 && c == 0 {
        0xffff
    } else {
        c
    }
}

/// The ICMP checksum of message `m`, the stored one ignored.
pub fn icmp_checksum(m: &[u8]) -> u16 {
    inet_checksum(&[&m[..2], &[0, 0], &m[4..]])
}

/// A TCP segment in an Ethernet frame, for tests.
#[derive(Debug, Clone, Copy)]
pub struct TcpSpec<'a> {
    /// Source socket.
    pub src: std::net::SocketAddrV4,
    /// Destination socket.
    pub dst: std::net::SocketAddrV4,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number.
    pub ack: u32,
    /// Flags.
    pub flags: u8,
    /// Window.
    pub window: u16,
    /// TCP options (a multiple of 4 bytes).
    pub options: &'a [u8],
    /// Payload.
    pub payload: &'a [u8],
    /// IPv4 options (a multiple of 4 bytes).
    pub ip_options: &'a [u8],
}

/// The frame of `s`, MACs 02:..:02 to 02:..:01, TTL 64, checksums right.
pub fn tcp_frame(s: &TcpSpec) -> Vec<u8> {
    let ihl = 20 + s.ip_options.len();
    let thl = 20 + s.options.len();
    let total = ihl + thl + s.payload.len();
    let mut f = vec![0u8; 14 + total];
    f[..6].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
    f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    let ip = &mut f[14..14 + ihl];
    ip[0] = 0x40 | (ihl / 4) as u8;
    ip[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    ip[8] = 64;
    ip[9] = 6;
    ip[12..16].copy_from_slice(&s.src.ip().octets());
    ip[16..20].copy_from_slice(&s.dst.ip().octets());
    ip[20..].copy_from_slice(s.ip_options);
    let c = ipv4_header_checksum(ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let t = &mut f[14 + ihl..];
    t[0..2].copy_from_slice(&s.src.port().to_be_bytes());
    t[2..4].copy_from_slice(&s.dst.port().to_be_bytes());
    t[4..8].copy_from_slice(&s.seq.to_be_bytes());
    t[8..12].copy_from_slice(&s.ack.to_be_bytes());
    t[12] = ((thl / 4) as u8) << 4;
    t[13] = s.flags;
    t[14..16].copy_from_slice(&s.window.to_be_bytes());
    t[20..thl].copy_from_slice(s.options);
    t[thl..].copy_from_slice(s.payload);
    let c = l4_checksum(*s.src.ip(), *s.dst.ip(), 6, t);
    t[16..18].copy_from_slice(&c.to_be_bytes());
    f
}

/// The IPv4 header of Ethernet `frame` (no VLAN tag), found from scratch.
fn ipv4_header(frame: &[u8]) -> &[u8] {
    let ihl = usize::from(frame[14] & 0x0f) * 4;
    &frame[14..14 + ihl]
}

/// Whether the IPv4 header checksum of Ethernet `frame` is right.
pub fn ip_checksum_ok(frame: &[u8]) -> bool {
    let h = ipv4_header(frame);
    ipv4_header_checksum(h) == u16::from_be_bytes([h[10], h[11]])
}

/// Whether the TCP or UDP checksum of Ethernet `frame` is right, the
/// segment's extent taken from the IPv4 total length.
pub fn l4_checksum_ok(frame: &[u8]) -> bool {
    let h = ipv4_header(frame);
    let total = usize::from(u16::from_be_bytes([h[2], h[3]]));
    let (src, dst, proto) = (
        Ipv4Addr::new(h[12], h[13], h[14], h[15]),
        Ipv4Addr::new(h[16], h[17], h[18], h[19]),
        h[9],
    );
    let seg = &frame[14 + h.len()..14 + total];
    let off = if proto == 6 { 16 } else { 6 };
    let (computed, stored) = (
        l4_checksum(src, dst, proto, seg),
        u16::from_be_bytes([seg[off], seg[off + 1]]),
    );
    // Both one's-complement zeros are right (an incremental update may
    // give either).
    computed == stored || (computed == 0 && stored == 0xffff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_1071_example_and_odd_lengths() {
        // RFC 1071 section 3: the sum of 0001 f203 f4f5 f6f7 is ddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(inet_checksum(&[&data]), !0xddf2);
        assert_eq!(inet_checksum(&[&data[..3], &data[3..]]), !0xddf2);
        assert_eq!(inet_checksum(&[&[0xab]]), !0xab00);
    }
}
