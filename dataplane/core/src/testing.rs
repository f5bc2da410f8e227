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
