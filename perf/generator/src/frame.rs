//! Building the frames the generator sends.
//!
//! For each frame size a [`Template`] holds the constant bytes: Ethernet
//! header (generator's TX MAC to the device's MAC), IPv4 header (to the
//! VIP, DF set, fixed TTL), the layer-4 header's constant fields, and a
//! fill pattern after the stamp, whose checksum sum is computed once. A
//! packet is the template copied into an mbuf, then [`write`] patches the
//! per-packet fields: client address and port, IPv4 id (the sequence
//! number's low bits), the stamp, TCP flags, and both checksums (the IPv4
//! header's in full, the layer-4 one from the pseudo-header, the variable
//! words and the template's precomputed fill sum).
//!
//! Layout: Ethernet (14) | IPv4 (20) | UDP (8) + stamp (18) | fill, or
//! Ethernet | IPv4 | TCP (20, part of the stamp) + stamp (6) | fill.

use crate::scenario::Proto;
use crate::sizes::FCS_LEN;
use crate::stamp::{self, Stamp};
use sluice_core::wire::{checksum, ethernet, ipv4, l4};
use sluice_core::MacAddr;
use std::net::Ipv4Addr;

/// Offset of the IPv4 header.
pub const L3: usize = ethernet::HEADER_LEN;
/// Offset of the layer-4 header.
pub const L4: usize = L3 + ipv4::MIN_HEADER_LEN;
/// TCP flags of data segments: ACK | PSH.
pub const TCP_DATA_FLAGS: u8 = l4::TCP_ACK | 0x08;
/// TCP flags of the first segment of a flow: SYN.
pub const TCP_FIRST_FLAGS: u8 = l4::TCP_SYN;

/// What every generated frame has in common.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameParams {
    /// Source MAC: the generator's TX port.
    pub src_mac: MacAddr,
    /// Destination MAC: the device under test.
    pub dst_mac: MacAddr,
    /// Destination address: the virtual IP.
    pub vip: Ipv4Addr,
    /// Destination port: the virtual port.
    pub vport: u16,
    /// TCP or UDP.
    pub proto: Proto,
    /// IPv4 TTL as sent.
    pub ttl: u8,
}

impl FrameParams {
    /// Offset of the fill (first byte after the stamp).
    fn fill_offset(&self) -> usize {
        match self.proto {
            Proto::Udp => L4 + l4::UDP_HEADER_LEN + stamp::UDP_LEN,
            Proto::Tcp => L4 + l4::TCP_MIN_HEADER_LEN + stamp::TCP_PAYLOAD_LEN,
        }
    }
}

/// The constant bytes of frames of one size.
#[derive(Debug, Clone)]
pub struct Template {
    /// The frame without FCS (size - 4 bytes).
    pub bytes: Vec<u8>,
    /// Frame size with FCS.
    pub size: u16,
    /// Folded checksum sum of the fill.
    fill_sum: u32,
}

impl Template {
    /// The template for frames of `size` bytes (FCS included, 64..=1518).
    pub fn new(p: &FrameParams, size: u16) -> Template {
        let len = (size - FCS_LEN) as usize;
        let fill_at = p.fill_offset();
        assert!(len >= fill_at, "frame size {size} too small for the stamp");
        let mut b = vec![0u8; len];
        ethernet::write_header(&mut b, p.dst_mac, p.src_mac, ethernet::ETHERTYPE_IPV4);
        ipv4::write_header(
            &mut b[L3..],
            (len - L3) as u16,
            0,
            p.ttl,
            p.proto.number(),
            Ipv4Addr::UNSPECIFIED,
            p.vip,
        );
        b[L4 + 2..L4 + 4].copy_from_slice(&p.vport.to_be_bytes());
        match p.proto {
            Proto::Udp => {
                b[L4 + 4..L4 + 6].copy_from_slice(&((len - L4) as u16).to_be_bytes());
            }
            Proto::Tcp => {
                b[L4 + 12] = ((l4::TCP_MIN_HEADER_LEN / 4) as u8) << 4;
                b[L4 + 13] = TCP_DATA_FLAGS;
            }
        }
        for (i, x) in b[fill_at..].iter_mut().enumerate() {
            *x = (i as u8).wrapping_mul(31).wrapping_add(7);
        }
        // fill_at - L4 is even, so the fill's words line up with the
        // segment's and its sum can be added as is.
        let fill_sum = checksum::fold(checksum::sum(&b[fill_at..], 0)) as u32;
        Template {
            bytes: b,
            size,
            fill_sum,
        }
    }
}

/// The per-packet fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fields {
    /// Client address (source).
    pub client_ip: Ipv4Addr,
    /// Client port (source).
    pub client_port: u16,
    /// The stamp; `FLAG_FIRST` makes a TCP packet a SYN.
    pub stamp: Stamp,
}

/// Patches a copy of template `t` in `frame` with `f`'s fields and sets
/// both checksums.
#[inline]
pub fn write(frame: &mut [u8], t: &Template, p: &FrameParams, f: &Fields) {
    let len = t.bytes.len();
    debug_assert_eq!(frame.len(), len);
    let ip = &mut frame[L3..L4];
    ip[4..6].copy_from_slice(&(f.stamp.seq as u16).to_be_bytes());
    ip[12..16].copy_from_slice(&f.client_ip.octets());
    ip[10] = 0;
    ip[11] = 0;
    let c = checksum::checksum(ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let proto = p.proto.number();
    let seg_len = (len - L4) as u16;
    let fill_at = p.fill_offset();
    let seg = &mut frame[L4..fill_at];
    seg[0..2].copy_from_slice(&f.client_port.to_be_bytes());
    let csum_off = match p.proto {
        Proto::Udp => {
            stamp::write_udp(&mut seg[l4::UDP_HEADER_LEN..], &f.stamp);
            l4::UDP_CHECKSUM_OFFSET
        }
        Proto::Tcp => {
            seg[13] = if f.stamp.first() {
                TCP_FIRST_FLAGS
            } else {
                TCP_DATA_FLAGS
            };
            stamp::write_tcp(seg, &f.stamp);
            l4::TCP_CHECKSUM_OFFSET
        }
    };
    seg[csum_off] = 0;
    seg[csum_off + 1] = 0;
    let mut acc = l4::pseudo_header_sum(f.client_ip, p.vip, proto, seg_len);
    acc = checksum::sum(seg, acc);
    acc += t.fill_sum;
    let mut c = !checksum::fold(acc);
    if p.proto == Proto::Udp && c == 0 {
        c = 0xffff;
    }
    seg[csum_off..csum_off + 2].copy_from_slice(&c.to_be_bytes());
}

/// Builds a whole frame into a new buffer (tests, and the odd packet off
/// the hot path).
pub fn build(p: &FrameParams, size: u16, f: &Fields) -> Vec<u8> {
    let t = Template::new(p, size);
    let mut b = t.bytes.clone();
    write(&mut b, &t, p, f);
    b
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_core::flow;

    fn params(proto: Proto) -> FrameParams {
        FrameParams {
            src_mac: MacAddr([2, 0, 0, 0, 0, 1]),
            dst_mac: MacAddr([2, 0, 0, 0, 0, 0xfe]),
            vip: Ipv4Addr::new(192, 0, 2, 100),
            vport: 80,
            proto,
            ttl: 64,
        }
    }

    fn fields(first: bool) -> Fields {
        Fields {
            client_ip: Ipv4Addr::new(198, 18, 3, 4),
            client_port: 4321,
            stamp: Stamp {
                run: 1,
                flags: if first { stamp::FLAG_FIRST } else { 0 },
                slot: 42,
                seq: 0x0102_0304,
                tsc: 99,
            },
        }
    }

    fn l4_checksum_ok(frame: &[u8]) -> bool {
        let p = flow::parse(frame).unwrap();
        let seg = &frame[p.l4..p.ip_end()];
        let off = if p.proto == ipv4::PROTO_UDP {
            l4::UDP_CHECKSUM_OFFSET
        } else {
            l4::TCP_CHECKSUM_OFFSET
        };
        let stored = u16::from_be_bytes([seg[off], seg[off + 1]]);
        stored == l4::segment_checksum(p.src, p.dst, p.proto, seg, off)
    }

    #[test]
    fn udp_frames_of_every_size_are_valid() {
        for size in [64u16, 65, 128, 570, 1517, 1518] {
            let b = build(&params(Proto::Udp), size, &fields(false));
            assert_eq!(b.len(), size as usize - 4);
            let p = flow::parse(&b).unwrap();
            assert_eq!(p.src, Ipv4Addr::new(198, 18, 3, 4));
            assert_eq!((p.sport, p.dport), (4321, 80));
            assert_eq!(p.ttl, 64);
            assert!(l4_checksum_ok(&b), "size {size}");
            let s = stamp::read_udp(&b[L4 + 8..]).unwrap();
            assert_eq!((s.slot, s.seq, s.run), (42, 0x0102_0304, 1));
        }
    }

    #[test]
    fn tcp_syn_then_data() {
        for size in [64u16, 99, 1518] {
            let syn = build(&params(Proto::Tcp), size, &fields(true));
            let data = build(&params(Proto::Tcp), size, &fields(false));
            assert_eq!(flow::parse(&syn).unwrap().tcp_flags, l4::TCP_SYN);
            assert_eq!(flow::parse(&data).unwrap().tcp_flags, TCP_DATA_FLAGS);
            assert!(l4_checksum_ok(&syn) && l4_checksum_ok(&data), "size {size}");
            let s = stamp::read_tcp(&data[L4..], 20).unwrap();
            assert_eq!((s.slot, s.seq, s.tsc), (42, 0x0102_0304, 99));
        }
    }

    #[test]
    fn template_reuse_gives_the_same_bytes() {
        let p = params(Proto::Udp);
        let t = Template::new(&p, 200);
        let mut a = t.bytes.clone();
        write(&mut a, &t, &p, &fields(false));
        let mut other = fields(false);
        other.client_port = 9;
        write(&mut a, &t, &p, &other);
        write(&mut a, &t, &p, &fields(false));
        assert_eq!(a, build(&p, 200, &fields(false)));
    }
}
