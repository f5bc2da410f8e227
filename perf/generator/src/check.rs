//! Checking a packet that came back from the device under test.
//!
//! Every check is made on the packet's own bytes, computed from scratch: the
//! IPv4 header checksum and the TCP/UDP checksum (pseudo-header included,
//! IPv4's or IPv6's) are summed over the whole header and segment, not
//! updated. Then the
//! stamp is read, and the addresses, ports, MACs, TTL and TCP flags are
//! compared with what the scenario's [`Mode`] says the device must have
//! made of the packet the generator sent:
//!
//! | mode | destination MAC | source MAC | IP src:port | IP dst:port | TTL (hop limit) |
//! |---|---|---|---|---|---|
//! | `swap` | generator TX port | the device MAC sent to | VIP:vport | client | as sent |
//! | `dr` | one real's MAC | device RX MAC (if given) | client | VIP:vport | as sent |
//! | `nat` | the chosen real's MAC | device RX MAC (if given) | client | a real's RIP:rport | sent - 1 |
//! | `ipip`, `gue` | the chosen real's MAC | device RX MAC (if given) | client | VIP:vport | as sent |
//! | `fullnat` | the chosen real's MAC | device RX MAC (if given) | not a client; port 1024 or above | a real's RIP:rport | sent - 1 |
//!
//! In the tunnel modes the packet sent comes back inside an outer header
//! to one of the reals (its MAC the frame's destination): IPv4 with
//! protocol 4, or IPv6 with next header 41, or either with UDP to port
//! 6080 (GUE variant 1), checksums right, lengths consistent; the inner
//! packet is then checked as for `dr`.
//!
//! The client `ip:port` must be one of ours and belong to the slot the stamp
//! names ([`FlowSpace`]); under full NAT the client is not in the packet,
//! and the stamp alone names the flow. The result is the stamp, or why the packet is bad
//! ([`Bad`], with stable names for reports).

use crate::family::GenFamily;
use crate::flows::FlowSpace;
use crate::frame::{TCP_DATA_FLAGS, TCP_FIRST_FLAGS};
use crate::scenario::{Mode, Proto, Real};
use crate::stamp::{self, Stamp, StampError};
use sluice_core::wire::{ethernet, ipv4, l4};
use sluice_core::{DropReason, MacAddr};
use std::collections::HashMap;
use std::net::IpAddr;

/// Why a returned packet is bad.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Bad {
    /// Too short for its headers or the stamp.
    Truncated,
    /// Malformed IP header (version, lengths, IPv6 extension headers).
    IpHeader,
    /// IPv4 header checksum wrong.
    IpChecksum,
    /// A fragment.
    Fragment,
    /// Not the protocol sent.
    Proto,
    /// TCP or UDP checksum wrong.
    L4Checksum,
    /// No generator stamp (magic missing): foreign or mangled.
    NoMagic,
    /// The stamp's slot is out of range, or the client address is not the
    /// slot's.
    FlowId,
    /// Addresses or ports not what the mode makes of them.
    Tuple,
    /// Wrong destination MAC.
    MacDst,
    /// Wrong source MAC.
    MacSrc,
    /// Wrong TTL.
    Ttl,
    /// TCP flags changed.
    TcpFlags,
    /// A tunnel mode's outer header wrong: not the encapsulation, not to a
    /// real, lengths or checksums inconsistent.
    Tunnel,
}

impl Bad {
    /// Number of reasons.
    pub const COUNT: usize = 14;
    /// Every reason, in report order.
    pub const ALL: [Bad; Bad::COUNT] = [
        Bad::Truncated,
        Bad::IpHeader,
        Bad::IpChecksum,
        Bad::Fragment,
        Bad::Proto,
        Bad::L4Checksum,
        Bad::NoMagic,
        Bad::FlowId,
        Bad::Tuple,
        Bad::MacDst,
        Bad::MacSrc,
        Bad::Ttl,
        Bad::TcpFlags,
        Bad::Tunnel,
    ];

    /// Stable snake_case name.
    pub fn name(self) -> &'static str {
        match self {
            Bad::Truncated => "truncated",
            Bad::IpHeader => "ip_header",
            Bad::IpChecksum => "ip_checksum",
            Bad::Fragment => "fragment",
            Bad::Proto => "proto",
            Bad::L4Checksum => "l4_checksum",
            Bad::NoMagic => "no_magic",
            Bad::FlowId => "flow_id",
            Bad::Tuple => "tuple",
            Bad::MacDst => "mac_dst",
            Bad::MacSrc => "mac_src",
            Bad::Ttl => "ttl",
            Bad::TcpFlags => "tcp_flags",
            Bad::Tunnel => "tunnel",
        }
    }

    /// Index into a `[u64; COUNT]` counter array.
    #[inline(always)]
    pub fn index(self) -> usize {
        self as usize
    }
}

/// Why a received frame was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reject {
    /// Not of the run's family (ARP and neighbour discovery are handled
    /// before checking; LLDP, the other family and the like are not the
    /// generator's and are ignored).
    NotOurs,
    /// A bad packet.
    Bad(Bad),
}

impl From<Bad> for Reject {
    fn from(b: Bad) -> Reject {
        Reject::Bad(b)
    }
}

/// What the checker expects.
#[derive(Debug, Clone)]
pub struct Expect<A> {
    /// What the device does.
    pub mode: Mode,
    /// Protocol sent.
    pub proto: Proto,
    /// The flows.
    pub space: FlowSpace,
    /// Generator TX port MAC (source of sent frames).
    pub tx_mac: MacAddr,
    /// Device MAC the frames were sent to.
    pub dut_mac: MacAddr,
    /// Device MAC on the return side (source of returned frames in DR/NAT),
    /// checked when known.
    pub dut_rx_mac: Option<MacAddr>,
    /// Virtual IP.
    pub vip: A,
    /// Virtual port.
    pub vport: u16,
    /// The reals.
    pub reals: Vec<Real>,
    /// TTL as sent.
    pub ttl: u8,
}

thread_local! {
    /// A tunnelled packet's inner frame, rebuilt to be checked (one
    /// buffer a thread, grown once).
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Checks returned packets against an [`Expect`].
#[derive(Debug, Clone)]
pub struct Checker<A> {
    e: Expect<A>,
    by_addr: HashMap<(A, u16), usize>,
}

impl<A: GenFamily> Checker<A> {
    /// A checker for `e` (reals of the other family are never expected).
    pub fn new(e: Expect<A>) -> Checker<A> {
        let by_addr = e
            .reals
            .iter()
            .enumerate()
            .filter_map(|(i, r)| Some(((A::of(r.ip)?, r.port), i)))
            .collect();
        Checker { e, by_addr }
    }

    /// What it expects.
    pub fn expect(&self) -> &Expect<A> {
        &self.e
    }

    /// Checks `frame`; the stamp of a good packet.
    pub fn check(&self, frame: &[u8]) -> Result<Stamp, Reject> {
        match self.e.mode {
            Mode::Ipip | Mode::Gue => self.check_tunnelled(frame),
            mode => self.check_as(frame, mode),
        }
    }

    /// A tunnel mode's frame: its outer header, then the inner packet
    /// (copied behind the frame's Ethernet header) as direct routing's.
    fn check_tunnelled(&self, frame: &[u8]) -> Result<Stamp, Reject> {
        const GUE_PORT: u16 = 6080;
        if frame.len() < ethernet::HEADER_LEN {
            return Err(Bad::Truncated.into());
        }
        if ethernet::ethertype(frame) != A::ETHERTYPE {
            return Err(Reject::NotOurs);
        }
        let o = &frame[ethernet::HEADER_LEN..];
        let v6 = A::BITS == 128;
        let ip_len = if v6 { 40 } else { 20 };
        if o.len() < ip_len + 8 {
            return Err(Bad::Truncated.into());
        }
        let (total, proto, dst) = if v6 {
            let payload = u16::from_be_bytes([o[4], o[5]]) as usize;
            (
                40 + payload,
                o[6],
                IpAddr::from(<[u8; 16]>::try_from(&o[24..40]).unwrap()),
            )
        } else {
            if o[0] != 0x45 || sluice_core::wire::checksum::checksum(&o[..20]) != 0 {
                return Err(Bad::Tunnel.into());
            }
            let total = u16::from_be_bytes([o[2], o[3]]) as usize;
            (
                total,
                o[9],
                IpAddr::from(<[u8; 4]>::try_from(&o[16..20]).unwrap()),
            )
        };
        if total > o.len() {
            return Err(Bad::Truncated.into());
        }
        let inner_proto = if v6 { 41 } else { 4 };
        let inner_at = match (self.e.mode, proto) {
            (Mode::Ipip, p) if p == inner_proto => ip_len,
            (Mode::Gue, ipv4::PROTO_UDP) => {
                let u = &o[ip_len..ip_len + 8];
                let udp_len = u16::from_be_bytes([u[4], u[5]]) as usize;
                if u16::from_be_bytes([u[2], u[3]]) != GUE_PORT || udp_len != total - ip_len {
                    return Err(Bad::Tunnel.into());
                }
                ip_len + 8
            }
            _ => return Err(Bad::Tunnel.into()),
        };
        let Some(real) = self.e.reals.iter().find(|r| r.ip == dst) else {
            return Err(Bad::Tunnel.into());
        };
        if ethernet::dst(frame) != real.mac {
            return Err(Bad::MacDst.into());
        }
        let inner = &o[inner_at..total];
        SCRATCH.with(|b| {
            let mut b = b.borrow_mut();
            b.clear();
            b.extend_from_slice(&frame[..ethernet::HEADER_LEN]);
            b.extend_from_slice(inner);
            self.check_as(&b, Mode::Dr)
        })
    }

    /// Checks `frame` as `mode` makes it.
    fn check_as(&self, frame: &[u8], mode: Mode) -> Result<Stamp, Reject> {
        let e = &self.e;
        if frame.len() < ethernet::HEADER_LEN {
            return Err(Bad::Truncated.into());
        }
        if ethernet::ethertype(frame) != A::ETHERTYPE {
            return Err(Reject::NotOurs);
        }
        let p = A::parse(frame).map_err(|r| match r {
            DropReason::Truncated => Bad::Truncated,
            DropReason::BadIpv4Header | DropReason::BadIpv6Header => Bad::IpHeader,
            DropReason::BadIpv6Extension => Bad::IpHeader,
            DropReason::BadIpv4Checksum => Bad::IpChecksum,
            DropReason::BadL4Checksum => Bad::L4Checksum,
            _ => Bad::Proto,
        })?;
        if p.proto != e.proto.number() {
            return Err(Bad::Proto.into());
        }
        if p.is_fragment {
            return Err(Bad::Fragment.into());
        }
        let seg = &frame[p.l4..p.ip_end()];
        let (csum_off, st) = match e.proto {
            Proto::Udp => (
                l4::UDP_CHECKSUM_OFFSET,
                stamp::read_udp(&seg[l4::UDP_HEADER_LEN..]),
            ),
            Proto::Tcp => (
                l4::TCP_CHECKSUM_OFFSET,
                stamp::read_tcp(seg, l4::tcp_header_len(seg)),
            ),
        };
        let stored = u16::from_be_bytes([seg[csum_off], seg[csum_off + 1]]);
        if stored != A::segment_checksum(p.src, p.dst, p.proto, seg, csum_off) {
            return Err(Bad::L4Checksum.into());
        }
        let st = st.map_err(|x| match x {
            StampError::Short => Bad::Truncated,
            StampError::Magic => Bad::NoMagic,
        })?;
        if st.slot as u64 >= e.space.flows() {
            return Err(Bad::FlowId.into());
        }
        if e.proto == Proto::Tcp {
            let want = if st.first() {
                TCP_FIRST_FLAGS
            } else {
                TCP_DATA_FLAGS
            };
            if p.tcp_flags != want {
                return Err(Bad::TcpFlags.into());
            }
        }
        let (dst_mac, src_mac) = (ethernet::dst(frame), ethernet::src(frame));
        let (client, ttl) = match mode {
            Mode::Swap => {
                if (p.src, p.sport) != (e.vip, e.vport) {
                    return Err(Bad::Tuple.into());
                }
                if dst_mac != e.tx_mac {
                    return Err(Bad::MacDst.into());
                }
                if src_mac != e.dut_mac {
                    return Err(Bad::MacSrc.into());
                }
                ((p.dst, p.dport), e.ttl)
            }
            Mode::Dr | Mode::Ipip | Mode::Gue => {
                if (p.dst, p.dport) != (e.vip, e.vport) {
                    return Err(Bad::Tuple.into());
                }
                if !e.reals.iter().any(|r| r.mac == dst_mac) {
                    return Err(Bad::MacDst.into());
                }
                self.check_src_mac(src_mac)?;
                ((p.src, p.sport), e.ttl)
            }
            Mode::Nat | Mode::FullNat => {
                let Some(&i) = self.by_addr.get(&(p.dst, p.dport)) else {
                    return Err(Bad::Tuple.into());
                };
                if dst_mac != e.reals[i].mac {
                    return Err(Bad::MacDst.into());
                }
                self.check_src_mac(src_mac)?;
                if mode == Mode::FullNat {
                    // From a local address, never a client's.
                    if p.sport < 1024 || FlowSpace::is_client(p.src) {
                        return Err(Bad::Tuple.into());
                    }
                    if p.ttl != e.ttl.wrapping_sub(1) {
                        return Err(Bad::Ttl.into());
                    }
                    return Ok(st);
                }
                ((p.src, p.sport), e.ttl.wrapping_sub(1))
            }
        };
        let Some(key) = FlowSpace::key_of(client.0, client.1) else {
            return Err(Bad::Tuple.into());
        };
        if e.space.slot_of(key) != st.slot {
            return Err(Bad::FlowId.into());
        }
        if p.ttl != ttl {
            return Err(Bad::Ttl.into());
        }
        Ok(st)
    }

    fn check_src_mac(&self, src: MacAddr) -> Result<(), Reject> {
        match self.e.dut_rx_mac {
            Some(m) if m != src => Err(Bad::MacSrc.into()),
            None if src.is_multicast() => Err(Bad::MacSrc.into()),
            _ => Ok(()),
        }
    }
}

/// Helpers for the tests of this crate: the expected transformations of
/// each mode, applied by hand.
#[cfg(test)]
pub(crate) mod dut {
    use super::*;

    /// testpmd's 5tswap: MACs, IPs and ports swapped (checksums unchanged:
    /// a swap does not change a one's complement sum).
    pub fn swap<A: GenFamily>(frame: &mut [u8]) {
        let p = A::parse(frame).unwrap();
        let (d, s) = (ethernet::dst(frame), ethernet::src(frame));
        ethernet::set_macs(frame, s, d);
        let ip = &mut frame[p.l3..];
        p.dst.write(&mut ip[A::SRC_OFFSET..]);
        p.src.write(&mut ip[A::DST_OFFSET..]);
        let seg = &mut frame[p.l4..];
        let (sp, dp) = (seg[0..2].to_vec(), seg[2..4].to_vec());
        seg[0..2].copy_from_slice(&dp);
        seg[2..4].copy_from_slice(&sp);
    }

    /// A load balancer's NAT to `real`, with sluice_core's own rewrites.
    pub fn nat<A: GenFamily>(frame: &mut [u8], real: &Real, dut_mac: MacAddr) {
        let p = A::parse(frame).unwrap();
        assert!(sluice_core::nat::decrement_ttl(frame, &p));
        let ip = A::of(real.ip).expect("a real of the family");
        sluice_core::nat::rewrite_destination(frame, &p, ip, real.port);
        ethernet::set_macs(frame, real.mac, dut_mac);
    }

    /// Direct routing to `real`: MACs only.
    pub fn dr(frame: &mut [u8], real: &Real, dut_mac: MacAddr) {
        ethernet::set_macs(frame, real.mac, dut_mac);
    }

    /// Tunnel mode to `real`: the packet inside an outer header from
    /// `src`, with sluice_core's own encapsulation.
    pub fn tunnel<A: GenFamily>(
        frame: &[u8],
        real: &Real,
        src: IpAddr,
        gue: bool,
        dut_mac: MacAddr,
    ) -> Vec<u8> {
        use sluice_core::tunnel::{self, Encap};
        let p = A::parse(frame).unwrap();
        let inner = &frame[p.l3..p.ip_end()];
        let encap = if gue {
            Encap::Gue { port: 6080 }
        } else {
            Encap::Ipip
        };
        let outer = match (src, real.ip) {
            (IpAddr::V4(s), IpAddr::V4(d)) => tunnel::outer4(encap, s, d, inner, 1, 7),
            (IpAddr::V6(s), IpAddr::V6(d)) => tunnel::outer6(encap, s, d, inner, 7),
            _ => panic!("one family"),
        };
        let mut f = vec![0u8; outer.len()];
        f.extend_from_slice(&frame[..p.ip_end()]);
        tunnel::prepend(&mut f, &outer);
        ethernet::set_macs(&mut f, real.mac, dut_mac);
        f
    }
}

#[cfg(test)]
mod tests {
    use super::dut;
    use super::*;
    use crate::frame::{self, Fields, FrameParams};
    use crate::scenario::parse_reals;
    use crate::stamp::FLAG_FIRST;
    use sluice_core::wire::checksum;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const TX_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
    const DUT_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 0xfe]);
    const DUT_RX_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 0xfd]);
    const L4: usize = frame::L3 + 20;

    fn setup_for<A: GenFamily>(
        mode: Mode,
        proto: Proto,
        vip: A,
        reals: &str,
    ) -> (Checker<A>, FrameParams<A>) {
        let e = Expect {
            mode,
            proto,
            space: FlowSpace::new(1000).unwrap(),
            tx_mac: TX_MAC,
            dut_mac: DUT_MAC,
            dut_rx_mac: Some(DUT_RX_MAC),
            vip,
            vport: 80,
            reals: parse_reals(reals).unwrap(),
            ttl: 64,
        };
        let p = FrameParams {
            src_mac: TX_MAC,
            dst_mac: DUT_MAC,
            vip: e.vip,
            vport: e.vport,
            proto,
            ttl: e.ttl,
        };
        (Checker::new(e), p)
    }

    fn setup(mode: Mode, proto: Proto) -> (Checker<Ipv4Addr>, FrameParams<Ipv4Addr>) {
        setup_for(
            mode,
            proto,
            Ipv4Addr::new(192, 0, 2, 100),
            "198.51.100.11-198.51.100.18:8080",
        )
    }

    fn setup6(mode: Mode, proto: Proto) -> (Checker<Ipv6Addr>, FrameParams<Ipv6Addr>) {
        setup_for(
            mode,
            proto,
            "2001:db8::100".parse().unwrap(),
            "2001:db8:2::11-2001:db8:2::18:8080",
        )
    }

    fn packet<A: GenFamily>(
        c: &Checker<A>,
        p: &FrameParams<A>,
        size: u16,
        slot: u32,
        first: bool,
    ) -> Vec<u8> {
        let sp = c.expect().space;
        let (ip, port) = FlowSpace::client(sp.key(slot, 3));
        frame::build(
            p,
            size,
            &Fields {
                client_ip: ip,
                client_port: port,
                stamp: Stamp {
                    run: 2,
                    flags: if first { FLAG_FIRST } else { 0 },
                    slot,
                    seq: 77,
                    tsc: 1234,
                },
            },
        )
    }

    fn corrupt_l4_checksum<A: GenFamily>(f: &mut [u8]) {
        let p = A::parse(f).unwrap();
        let off = if p.proto == 17 { 6 } else { 16 };
        f[p.l4 + off] ^= 0x40;
    }

    /// The same packet, TCP checksum redone after a change.
    fn fix_tcp_checksum<A: GenFamily>(f: &mut [u8]) {
        let pp = A::parse(f).unwrap();
        let cs = A::segment_checksum(pp.src, pp.dst, pp.proto, &f[pp.l4..pp.ip_end()], 16);
        f[pp.l4 + 16..pp.l4 + 18].copy_from_slice(&cs.to_be_bytes());
    }

    #[test]
    fn swap_is_accepted_and_corruption_is_not() {
        for proto in [Proto::Udp, Proto::Tcp] {
            let (c, p) = setup(Mode::Swap, proto);
            for size in [64, 570, 1518] {
                let mut f = packet(&c, &p, size, 5, size == 64);
                dut::swap::<Ipv4Addr>(&mut f);
                let st = c.check(&f).unwrap();
                assert_eq!((st.slot, st.seq, st.run, st.tsc), (5, 77, 2, 1234));
                let mut bad = f.clone();
                corrupt_l4_checksum::<Ipv4Addr>(&mut bad);
                assert_eq!(c.check(&bad), Err(Reject::Bad(Bad::L4Checksum)));
                let mut bad = f.clone();
                bad[frame::L3 + 10] ^= 1;
                assert_eq!(c.check(&bad), Err(Reject::Bad(Bad::IpChecksum)));
                // A payload bit flip breaks the layer-4 checksum too.
                let mut bad = f.clone();
                let last = bad.len() - 1;
                bad[last] ^= 0x80;
                assert_eq!(c.check(&bad), Err(Reject::Bad(Bad::L4Checksum)));
            }
            // Unswapped: wrong tuple.
            let f = packet(&c, &p, 64, 5, false);
            assert_eq!(c.check(&f), Err(Reject::Bad(Bad::Tuple)));
            // MACs not swapped.
            let mut f = packet(&c, &p, 64, 5, false);
            dut::swap::<Ipv4Addr>(&mut f);
            ethernet::set_macs(&mut f, DUT_MAC, TX_MAC);
            assert_eq!(c.check(&f), Err(Reject::Bad(Bad::MacDst)));
        }
    }

    #[test]
    fn nat_is_accepted_and_mistakes_are_not() {
        for proto in [Proto::Udp, Proto::Tcp] {
            let (c, p) = setup(Mode::Nat, proto);
            let reals = c.expect().reals.clone();
            for (i, real) in reals.iter().enumerate() {
                let mut f = packet(&c, &p, 128, i as u32, false);
                dut::nat::<Ipv4Addr>(&mut f, real, DUT_RX_MAC);
                assert_eq!(c.check(&f).unwrap().slot, i as u32);
            }
            // MAC of another real.
            let mut f = packet(&c, &p, 128, 1, false);
            dut::nat::<Ipv4Addr>(&mut f, &reals[0], DUT_RX_MAC);
            ethernet::set_macs(&mut f, reals[1].mac, DUT_RX_MAC);
            assert_eq!(c.check(&f), Err(Reject::Bad(Bad::MacDst)));
            // Not translated.
            let mut f = packet(&c, &p, 128, 1, false);
            dut::dr(&mut f, &reals[0], DUT_RX_MAC);
            assert_eq!(c.check(&f), Err(Reject::Bad(Bad::Tuple)));
            // Translated, TTL not decremented (header checksum redone).
            let mut f = packet(&c, &p, 128, 1, false);
            dut::nat::<Ipv4Addr>(&mut f, &reals[0], DUT_RX_MAC);
            f[frame::L3 + 8] += 1;
            f[frame::L3 + 10] = 0;
            f[frame::L3 + 11] = 0;
            let cs = checksum::checksum(&f[frame::L3..L4]);
            f[frame::L3 + 10..frame::L3 + 12].copy_from_slice(&cs.to_be_bytes());
            assert_eq!(c.check(&f), Err(Reject::Bad(Bad::Ttl)));
            // Wrong source MAC.
            let mut f = packet(&c, &p, 128, 1, false);
            dut::nat::<Ipv4Addr>(&mut f, &reals[0], DUT_MAC);
            assert_eq!(c.check(&f), Err(Reject::Bad(Bad::MacSrc)));
            // Corrupted checksum.
            let mut f = packet(&c, &p, 128, 1, false);
            dut::nat::<Ipv4Addr>(&mut f, &reals[0], DUT_RX_MAC);
            corrupt_l4_checksum::<Ipv4Addr>(&mut f);
            assert_eq!(c.check(&f), Err(Reject::Bad(Bad::L4Checksum)));
        }
    }

    /// Full NAT: from a local address to a real, TTL one less; the flow
    /// by its stamp. A packet still from its client (NAT, not full NAT),
    /// or from a well-known port, is refused.
    #[test]
    fn full_nat_is_accepted_and_nat_is_not() {
        for proto in [Proto::Udp, Proto::Tcp] {
            let (c, p) = setup(Mode::FullNat, proto);
            let reals = c.expect().reals.clone();
            let local = |f: &mut Vec<u8>, port: u16| {
                let q = Ipv4Addr::parse(f).unwrap();
                let lip = Ipv4Addr::new(198, 51, 100, 200);
                sluice_core::nat::rewrite_source(f, &q, lip, port);
            };
            for (i, real) in reals.iter().enumerate() {
                let mut f = packet(&c, &p, 128, i as u32, false);
                dut::nat::<Ipv4Addr>(&mut f, real, DUT_RX_MAC);
                local(&mut f, 1026 + i as u16);
                assert_eq!(c.check(&f).unwrap().slot, i as u32);
            }
            let mut f = packet(&c, &p, 128, 1, false);
            dut::nat::<Ipv4Addr>(&mut f, &reals[0], DUT_RX_MAC);
            assert_eq!(c.check(&f), Err(Reject::Bad(Bad::Tuple)));
            local(&mut f, 80);
            assert_eq!(c.check(&f), Err(Reject::Bad(Bad::Tuple)));
        }
    }

    /// IPv6: NAT66, DR and swap accepted; the hop limit, the tuple, the
    /// checksums and the other family are checked as for IPv4.
    #[test]
    fn ipv6_is_checked_as_ipv4_is() {
        for proto in [Proto::Udp, Proto::Tcp] {
            let (c, p) = setup6(Mode::Nat, proto);
            let reals = c.expect().reals.clone();
            for (i, real) in reals.iter().enumerate() {
                let mut f = packet(&c, &p, 128, i as u32, i == 0);
                dut::nat::<Ipv6Addr>(&mut f, real, DUT_RX_MAC);
                assert_eq!(c.check(&f).unwrap().slot, i as u32);
            }
            let mut f = packet(&c, &p, 128, 1, false);
            dut::dr(&mut f, &reals[0], DUT_RX_MAC);
            assert_eq!(c.check(&f), Err(Reject::Bad(Bad::Tuple)));
            let mut f = packet(&c, &p, 128, 1, false);
            dut::nat::<Ipv6Addr>(&mut f, &reals[0], DUT_RX_MAC);
            f[frame::L3 + 7] += 1;
            assert_eq!(c.check(&f), Err(Reject::Bad(Bad::Ttl)));
            let mut f = packet(&c, &p, 128, 1, false);
            dut::nat::<Ipv6Addr>(&mut f, &reals[0], DUT_RX_MAC);
            corrupt_l4_checksum::<Ipv6Addr>(&mut f);
            assert_eq!(c.check(&f), Err(Reject::Bad(Bad::L4Checksum)));

            let (c, p) = setup6(Mode::Dr, proto);
            let mut f = packet(&c, &p, 84, 9, true);
            dut::dr(&mut f, &c.expect().reals[3], DUT_RX_MAC);
            assert_eq!(c.check(&f).unwrap().slot, 9);

            let (c, p) = setup6(Mode::Swap, proto);
            let mut f = packet(&c, &p, 1518, 5, false);
            dut::swap::<Ipv6Addr>(&mut f);
            assert_eq!(c.check(&f).unwrap().slot, 5);
        }
        // An IPv4 frame to an IPv6 run is not ours.
        let (c4, p4) = setup(Mode::Swap, Proto::Udp);
        let (c6, _) = setup6(Mode::Swap, Proto::Udp);
        let mut f = packet(&c4, &p4, 128, 5, false);
        dut::swap::<Ipv4Addr>(&mut f);
        assert_eq!(c6.check(&f), Err(Reject::NotOurs));
    }

    /// IP-in-IP and GUE: the packet as sent inside a well-formed outer
    /// header to a real is accepted, in both families; a wrong outer
    /// header, the other encapsulation, a real's address that is not one,
    /// or a changed inner packet is not.
    #[test]
    fn tunnels_are_accepted_and_mistakes_are_not() {
        let src4: IpAddr = "198.51.100.1".parse().unwrap();
        for proto in [Proto::Udp, Proto::Tcp] {
            for (mode, gue) in [(Mode::Ipip, false), (Mode::Gue, true)] {
                let (c, p) = setup(mode, proto);
                let reals = c.expect().reals.clone();
                for size in [64, 1400] {
                    let f = packet(&c, &p, size, 4, false);
                    let t = dut::tunnel::<Ipv4Addr>(&f, &reals[2], src4, gue, DUT_RX_MAC);
                    assert_eq!(c.check(&t).unwrap().slot, 4, "{mode:?} {proto:?} {size}");
                    // The other encapsulation.
                    let t = dut::tunnel::<Ipv4Addr>(&f, &reals[2], src4, !gue, DUT_RX_MAC);
                    assert_eq!(c.check(&t), Err(Reject::Bad(Bad::Tunnel)));
                }
                let f = packet(&c, &p, 128, 4, false);
                // Not encapsulated at all.
                let mut plain = f.clone();
                dut::dr(&mut plain, &reals[0], DUT_RX_MAC);
                assert!(c.check(&plain).is_err());
                // An outer header checksum broken.
                let mut t = dut::tunnel::<Ipv4Addr>(&f, &reals[0], src4, gue, DUT_RX_MAC);
                t[frame::L3 + 11] ^= 1;
                assert_eq!(c.check(&t), Err(Reject::Bad(Bad::Tunnel)));
                // To a host that is not a real.
                let mut nobody = reals[0];
                nobody.ip = "198.51.100.99".parse().unwrap();
                let t = dut::tunnel::<Ipv4Addr>(&f, &nobody, src4, gue, DUT_RX_MAC);
                assert_eq!(c.check(&t), Err(Reject::Bad(Bad::Tunnel)));
                // To a real's address but another real's MAC.
                let mut t = dut::tunnel::<Ipv4Addr>(&f, &reals[0], src4, gue, DUT_RX_MAC);
                ethernet::set_macs(&mut t, reals[1].mac, DUT_RX_MAC);
                assert_eq!(c.check(&t), Err(Reject::Bad(Bad::MacDst)));
                // The inner TTL changed (its header checksum redone).
                let mut g = f.clone();
                g[frame::L3 + 8] -= 1;
                g[frame::L3 + 10..frame::L3 + 12].fill(0);
                let cs = checksum::checksum(&g[frame::L3..L4]);
                g[frame::L3 + 10..frame::L3 + 12].copy_from_slice(&cs.to_be_bytes());
                let t = dut::tunnel::<Ipv4Addr>(&g, &reals[0], src4, gue, DUT_RX_MAC);
                assert_eq!(c.check(&t), Err(Reject::Bad(Bad::Ttl)));
                // IPv6 in IPv6, and GUE over IPv6.
                let (c6, p6) = setup6(mode, proto);
                let f6 = packet(&c6, &p6, 128, 6, true);
                let real6 = c6.expect().reals[1];
                let src6: IpAddr = "2001:db8:2::1".parse().unwrap();
                let t = dut::tunnel::<Ipv6Addr>(&f6, &real6, src6, gue, DUT_RX_MAC);
                assert_eq!(c6.check(&t).unwrap().slot, 6);
            }
        }
    }

    #[test]
    fn dr_is_accepted() {
        let (c, p) = setup(Mode::Dr, Proto::Tcp);
        let real = c.expect().reals[3];
        let mut f = packet(&c, &p, 64, 9, true);
        dut::dr(&mut f, &real, DUT_RX_MAC);
        assert!(c.check(&f).unwrap().first());
        // Untouched: the destination MAC is the device's, not a real's.
        let f = packet(&c, &p, 64, 9, true);
        assert_eq!(c.check(&f), Err(Reject::Bad(Bad::MacDst)));
    }

    #[test]
    fn flow_and_flag_mismatches() {
        let (c, p) = setup(Mode::Swap, Proto::Tcp);
        // Stamp slot 5, client address of slot 6.
        let mut f = packet(&c, &p, 64, 5, false);
        let (ip, port) = FlowSpace::client(c.expect().space.key(6, 0));
        let mut f2 = frame::build(
            &p,
            64,
            &Fields {
                client_ip: ip,
                client_port: port,
                stamp: stamp::read_tcp(&f[L4..], 20).unwrap(),
            },
        );
        dut::swap::<Ipv4Addr>(&mut f2);
        assert_eq!(c.check(&f2), Err(Reject::Bad(Bad::FlowId)));
        // SYN flag cleared on the first packet (checksum fixed up).
        let mut g = packet(&c, &p, 64, 5, true);
        dut::swap::<Ipv4Addr>(&mut g);
        g[L4 + 13] = frame::TCP_DATA_FLAGS;
        fix_tcp_checksum::<Ipv4Addr>(&mut g);
        assert_eq!(c.check(&g), Err(Reject::Bad(Bad::TcpFlags)));
        // Not ours: magic gone (checksum fixed up).
        dut::swap::<Ipv4Addr>(&mut f);
        f[L4 + 14] = 0;
        fix_tcp_checksum::<Ipv4Addr>(&mut f);
        assert_eq!(c.check(&f), Err(Reject::Bad(Bad::NoMagic)));
    }

    #[test]
    fn non_ip_and_short_frames() {
        let (c, _) = setup(Mode::Swap, Proto::Udp);
        let mut arp = vec![0u8; 60];
        arp[12] = 0x08;
        arp[13] = 0x06;
        assert_eq!(c.check(&arp), Err(Reject::NotOurs));
        assert_eq!(c.check(&arp[..10]), Err(Reject::Bad(Bad::Truncated)));
        let names: std::collections::HashSet<_> = Bad::ALL.iter().map(|b| b.name()).collect();
        assert_eq!(names.len(), Bad::COUNT);
        for (i, b) in Bad::ALL.iter().enumerate() {
            assert_eq!(b.index(), i);
        }
    }
}
