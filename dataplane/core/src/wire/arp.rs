//! ARP for IPv4 over Ethernet (RFC 826): parsing, turning a request into
//! its reply in place, and writing requests and gratuitous announcements.

use crate::addr::MacAddr;
use crate::wire::ethernet;
use std::net::Ipv4Addr;

/// Length of an Ethernet/IPv4 ARP packet.
pub const LEN: usize = 28;
/// ARP request.
pub const OP_REQUEST: u16 = 1;
/// ARP reply.
pub const OP_REPLY: u16 = 2;
/// Length of the ARP frames written here: the 60-byte Ethernet minimum.
pub const FRAME_LEN: usize = 60;

/// A parsed Ethernet/IPv4 ARP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arp {
    /// Operation (1 request, 2 reply).
    pub op: u16,
    /// Sender hardware address.
    pub sha: MacAddr,
    /// Sender protocol address.
    pub spa: Ipv4Addr,
    /// Target hardware address.
    pub tha: MacAddr,
    /// Target protocol address.
    pub tpa: Ipv4Addr,
}

/// Parses the ARP packet at the start of `p`; None if it is too short or
/// not Ethernet/IPv4 ARP.
pub fn parse(p: &[u8]) -> Option<Arp> {
    if p.len() < LEN {
        return None;
    }
    let htype = u16::from_be_bytes([p[0], p[1]]);
    let ptype = u16::from_be_bytes([p[2], p[3]]);
    if htype != 1 || ptype != 0x0800 || p[4] != 6 || p[5] != 4 {
        return None;
    }
    let op = u16::from_be_bytes([p[6], p[7]]);
    if op != OP_REQUEST && op != OP_REPLY {
        return None;
    }
    Some(Arp {
        op,
        sha: MacAddr(p[8..14].try_into().unwrap()),
        spa: Ipv4Addr::new(p[14], p[15], p[16], p[17]),
        tha: MacAddr(p[18..24].try_into().unwrap()),
        tpa: Ipv4Addr::new(p[24], p[25], p[26], p[27]),
    })
}

/// Writes an ARP packet into the first LEN bytes of `p`.
pub fn write(p: &mut [u8], a: &Arp) {
    p[0..2].copy_from_slice(&1u16.to_be_bytes());
    p[2..4].copy_from_slice(&0x0800u16.to_be_bytes());
    p[4] = 6;
    p[5] = 4;
    p[6..8].copy_from_slice(&a.op.to_be_bytes());
    p[8..14].copy_from_slice(&a.sha.0);
    p[14..18].copy_from_slice(&a.spa.octets());
    p[18..24].copy_from_slice(&a.tha.0);
    p[24..28].copy_from_slice(&a.tpa.octets());
}

/// Writes an ARP request for `target` from (`mac`, `ip`) into `buf` (at
/// least 60 bytes), sent to `to` (broadcast to resolve, the neighbour's
/// MAC to probe it), and returns the frame length (60, padded).
pub fn write_request(
    buf: &mut [u8],
    to: MacAddr,
    mac: MacAddr,
    ip: Ipv4Addr,
    target: Ipv4Addr,
) -> usize {
    let len = FRAME_LEN;
    buf[..len].fill(0);
    ethernet::write_header(buf, to, mac, ethernet::ETHERTYPE_ARP);
    write(
        &mut buf[ethernet::HEADER_LEN..],
        &Arp {
            op: OP_REQUEST,
            sha: mac,
            spa: ip,
            tha: MacAddr::ZERO,
            tpa: target,
        },
    );
    len
}

/// Writes a gratuitous ARP (a request for `ip` by `ip`) announcing that
/// `ip` is at `mac`, and returns the frame length.
pub fn write_gratuitous(buf: &mut [u8], mac: MacAddr, ip: Ipv4Addr) -> usize {
    write_request(buf, MacAddr::BROADCAST, mac, ip, ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let a = Arp {
            op: OP_REQUEST,
            sha: MacAddr([2, 0, 0, 0, 0, 1]),
            spa: Ipv4Addr::new(192, 0, 2, 10),
            tha: MacAddr::ZERO,
            tpa: Ipv4Addr::new(192, 0, 2, 1),
        };
        let mut b = [0u8; LEN];
        write(&mut b, &a);
        assert_eq!(parse(&b), Some(a));
        assert_eq!(parse(&b[..27]), None);
        b[1] = 6; // token ring
        assert_eq!(parse(&b), None);
    }

    #[test]
    fn requests_and_announcements_are_padded_frames() {
        let mac = MacAddr([2, 0, 0, 0, 0, 1]);
        let ip = Ipv4Addr::new(192, 0, 2, 1);
        let target = Ipv4Addr::new(192, 0, 2, 9);
        let mut b = [0xaau8; 64];
        assert_eq!(
            write_request(&mut b, MacAddr::BROADCAST, mac, ip, target),
            FRAME_LEN
        );
        assert_eq!(&b[..6], &[0xff; 6], "to broadcast");
        assert_eq!(&b[6..12], &mac.0);
        assert_eq!(&b[12..14], &[0x08, 0x06]);
        let a = parse(&b[ethernet::HEADER_LEN..]).unwrap();
        assert_eq!((a.op, a.sha, a.spa, a.tpa), (OP_REQUEST, mac, ip, target));
        assert!(b[ethernet::HEADER_LEN + LEN..FRAME_LEN]
            .iter()
            .all(|x| *x == 0));
        assert_eq!(b[FRAME_LEN], 0xaa, "nothing written past the frame");
        write_gratuitous(&mut b, mac, ip);
        let g = parse(&b[ethernet::HEADER_LEN..]).unwrap();
        assert_eq!((g.spa, g.tpa, g.tha), (ip, ip, MacAddr::ZERO));
    }
}
