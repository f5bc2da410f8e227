//! Building the frames the generator sends.
//!
//! For each frame size a [`Template`] holds the constant bytes: Ethernet
//! header (generator's TX MAC to the device's MAC), IP header of the run's
//! family (to the VIP, fixed TTL or hop limit; IPv4 with DF set), the
//! layer-4 header's constant fields, and a fill pattern after the stamp,
//! whose checksum sum is computed once. A packet is the template copied
//! into an mbuf, then [`write`] patches the per-packet fields: client
//! address and port, for IPv4 the id (the sequence number's low bits), the
//! stamp, TCP flags, and the checksums (IPv4's header in full, the
//! layer-4 one from the pseudo-header, the variable words and the
//! template's precomputed fill sum).
//!
//! Layout: Ethernet (14) | IPv4 (20) or IPv6 (40) | UDP (8) + stamp (18) |
//! fill, or Ethernet | IP | TCP (20, part of the stamp) + stamp (6) | fill.

use crate::family::GenFamily;
use crate::scenario::Proto;
use crate::sizes::FCS_LEN;
use crate::stamp::{self, Stamp};
use sluice_core::wire::{checksum, ethernet, l4};
use sluice_core::MacAddr;

/// Offset of the IP header.
pub const L3: usize = ethernet::HEADER_LEN;

/// Offset of the layer-4 header in family `A`'s frames.
#[inline(always)]
pub fn l4_offset<A: GenFamily>() -> usize {
    L3 + A::HEADER_LEN
}
/// TCP flags of data segments: ACK | PSH.
pub const TCP_DATA_FLAGS: u8 = l4::TCP_ACK | 0x08;
/// TCP flags of the first segment of a flow: SYN.
pub const TCP_FIRST_FLAGS: u8 = l4::TCP_SYN;

/// What every generated frame has in common.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameParams<A> {
    /// Source MAC: the generator's TX port.
    pub src_mac: MacAddr,
    /// Destination MAC: the device under test.
    pub dst_mac: MacAddr,
    /// Destination address: the virtual IP.
    pub vip: A,
    /// Destination port: the virtual port.
    pub vport: u16,
    /// TCP or UDP.
    pub proto: Proto,
    /// TTL (hop limit) as sent.
    pub ttl: u8,
}

impl<A: GenFamily> FrameParams<A> {
    /// Offset of the fill (first byte after the stamp).
    fn fill_offset(&self) -> usize {
        l4_offset::<A>()
            + match self.proto {
                Proto::Udp => l4::UDP_HEADER_LEN + stamp::UDP_LEN,
                Proto::Tcp => l4::TCP_MIN_HEADER_LEN + stamp::TCP_PAYLOAD_LEN,
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
    pub fn new<A: GenFamily>(p: &FrameParams<A>, size: u16) -> Template {
        let len = (size - FCS_LEN) as usize;
        let fill_at = p.fill_offset();
        assert!(len >= fill_at, "frame size {size} too small for the stamp");
        let mut b = vec![0u8; len];
        ethernet::write_header(&mut b, p.dst_mac, p.src_mac, A::ETHERTYPE);
        let l4_at = l4_offset::<A>();
        A::write_header(
            &mut b[L3..],
            len - l4_at,
            p.proto.number(),
            p.ttl,
            A::UNSPECIFIED,
            p.vip,
        );
        b[l4_at + 2..l4_at + 4].copy_from_slice(&p.vport.to_be_bytes());
        match p.proto {
            Proto::Udp => {
                b[l4_at + 4..l4_at + 6].copy_from_slice(&((len - l4_at) as u16).to_be_bytes());
            }
            Proto::Tcp => {
                b[l4_at + 12] = ((l4::TCP_MIN_HEADER_LEN / 4) as u8) << 4;
                b[l4_at + 13] = TCP_DATA_FLAGS;
            }
        }
        for (i, x) in b[fill_at..].iter_mut().enumerate() {
            *x = (i as u8).wrapping_mul(31).wrapping_add(7);
        }
        // fill_at - l4_at is even, so the fill's words line up with the
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
pub struct Fields<A> {
    /// Client address (source).
    pub client_ip: A,
    /// Client port (source).
    pub client_port: u16,
    /// The stamp; `FLAG_FIRST` makes a TCP packet a SYN.
    pub stamp: Stamp,
}

/// Patches a copy of template `t` in `frame` with `f`'s fields and sets
/// both checksums.
#[inline]
pub fn write<A: GenFamily>(frame: &mut [u8], t: &Template, p: &FrameParams<A>, f: &Fields<A>) {
    let len = t.bytes.len();
    debug_assert_eq!(frame.len(), len);
    let l4_at = l4_offset::<A>();
    let ip = &mut frame[L3..l4_at];
    f.client_ip.write(&mut ip[A::SRC_OFFSET..]);
    if let Some(csum) = A::HEADER_CHECKSUM {
        ip[4..6].copy_from_slice(&(f.stamp.seq as u16).to_be_bytes());
        ip[csum] = 0;
        ip[csum + 1] = 0;
        let c = checksum::checksum(ip);
        ip[csum..csum + 2].copy_from_slice(&c.to_be_bytes());
    }
    let proto = p.proto.number();
    let seg_len = len - l4_at;
    let fill_at = p.fill_offset();
    let seg = &mut frame[l4_at..fill_at];
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
    let mut acc = A::pseudo_header_sum(f.client_ip, p.vip, proto, seg_len);
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
pub fn build<A: GenFamily>(p: &FrameParams<A>, size: u16, f: &Fields<A>) -> Vec<u8> {
    let t = Template::new(p, size);
    let mut b = t.bytes.clone();
    write(&mut b, &t, p, f);
    b
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn params<A: GenFamily>(proto: Proto, vip: A) -> FrameParams<A> {
        FrameParams {
            src_mac: MacAddr([2, 0, 0, 0, 0, 1]),
            dst_mac: MacAddr([2, 0, 0, 0, 0, 0xfe]),
            vip,
            vport: 80,
            proto,
            ttl: 64,
        }
    }

    fn fields<A: GenFamily>(first: bool) -> Fields<A> {
        Fields {
            client_ip: A::client(0x304),
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

    /// The TCP or UDP checksum of `frame`, checked from scratch.
    fn l4_checksum_ok<A: GenFamily>(frame: &[u8]) -> bool {
        let p = A::parse(frame).unwrap();
        let seg = &frame[p.l4..p.ip_end()];
        let off = if p.proto == 17 {
            l4::UDP_CHECKSUM_OFFSET
        } else {
            l4::TCP_CHECKSUM_OFFSET
        };
        let stored = u16::from_be_bytes([seg[off], seg[off + 1]]);
        let mut z = seg.to_vec();
        z[off..off + 2].fill(0);
        let ph = A::pseudo_header_sum(p.src, p.dst, p.proto, seg.len());
        let sum = !checksum::fold(checksum::sum(&z, ph));
        stored == sum || (sum == 0 && stored == 0xffff)
    }

    fn udp_frames_of_every_size_are_valid<A: GenFamily>(vip: A) {
        for size in [86u16, 128, 570, 1517, 1518] {
            let b = build(&params(Proto::Udp, vip), size, &fields::<A>(false));
            assert_eq!(b.len(), size as usize - 4);
            let p = A::parse(&b).unwrap();
            assert_eq!((p.src, p.dst), (A::client(0x304), vip));
            assert_eq!((p.sport, p.dport), (4321, 80));
            assert_eq!(p.ttl, 64);
            assert!(l4_checksum_ok::<A>(&b), "size {size}");
            let s = stamp::read_udp(&b[l4_offset::<A>() + 8..]).unwrap();
            assert_eq!((s.slot, s.seq, s.run), (42, 0x0102_0304, 1));
        }
    }

    fn tcp_syn_then_data<A: GenFamily>(vip: A) {
        for size in [86u16, 99, 1518] {
            let syn = build(&params(Proto::Tcp, vip), size, &fields::<A>(true));
            let data = build(&params(Proto::Tcp, vip), size, &fields::<A>(false));
            assert_eq!(A::parse(&syn).unwrap().tcp_flags, l4::TCP_SYN);
            assert_eq!(A::parse(&data).unwrap().tcp_flags, TCP_DATA_FLAGS);
            assert!(
                l4_checksum_ok::<A>(&syn) && l4_checksum_ok::<A>(&data),
                "size {size}"
            );
            let s = stamp::read_tcp(&data[l4_offset::<A>()..], 20).unwrap();
            assert_eq!((s.slot, s.seq, s.tsc), (42, 0x0102_0304, 99));
        }
    }

    #[test]
    fn ipv4_frames_are_valid() {
        let vip = Ipv4Addr::new(192, 0, 2, 100);
        udp_frames_of_every_size_are_valid(vip);
        tcp_syn_then_data(vip);
        // 64-byte frames fit IPv4.
        let b = build(&params(Proto::Udp, vip), 64, &fields::<Ipv4Addr>(false));
        assert!(l4_checksum_ok::<Ipv4Addr>(&b));
    }

    #[test]
    fn ipv6_frames_are_valid() {
        let vip: Ipv6Addr = "2001:db8::100".parse().unwrap();
        udp_frames_of_every_size_are_valid(vip);
        tcp_syn_then_data(vip);
    }

    #[test]
    fn template_reuse_gives_the_same_bytes() {
        let p = params(Proto::Udp, Ipv4Addr::new(192, 0, 2, 100));
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
