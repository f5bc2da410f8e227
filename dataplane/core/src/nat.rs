//! In-place NAT rewrites of frames parsed by [`crate::flow::parse`] (IPv4)
//! or [`crate::flow6::parse`] (IPv6, NAT66), with RFC 1624 incremental
//! checksum updates: the IPv4 header checksum (IPv6 has none), and the TCP
//! or UDP checksum, which also covers the addresses through the
//! pseudo-header, as does the ICMPv6 checksum. Nothing is recomputed from scratch, so a packet that
//! arrived with a bad layer-4 checksum still has a bad one after NAT, and
//! the receiver drops it as it would have.
//!
//! - [`rewrite_destination`]: inbound NAT, VIP:vport to RIP:rport.
//! - [`rewrite_source`]: outbound NAT, RIP:rport to VIP:vport.
//! - [`decrement_ttl`]: the router's TTL (hop limit) decrement.
//! - [`translate_icmp_error_to_client`]: an ICMP error about a packet the
//!   real server received, made to look as if the virtual service sent it.
//! - [`translate_icmp_error_to_real`]: an ICMP error about a NAT reply on
//!   its way to the client, sent on to the real server that sent it.
//!
//! A UDP checksum of 0 means "no checksum" in IPv4 and is left 0 (IPv6's
//! parser refuses it); an updated UDP checksum that comes out as 0 is
//! stored as 0xffff (RFC 768, RFC 8200 8.1).
//!
//! Every function is generic over the [`Address`] family, written once.
//!
//! Every function reads the old values from the frame itself rather than
//! from the [`Packet`], so rewrites can be chained on one parse. The
//! [`Packet`] (and [`IcmpError`]) must come from parsing this very frame:
//! its offsets are trusted.

use crate::family::Address;
use crate::flow::{IcmpError, Packet};
use crate::wire::{checksum, icmp, ipv4, l4};
/// Offset of the source port in a TCP or UDP header.
const L4_SPORT: usize = 0;
/// Offset of the destination port in a TCP or UDP header.
const L4_DPORT: usize = 2;

/// Inbound NAT: sets the destination to `ip`:`port` (VIP:vport to
/// RIP:rport), updating the IP header checksum and the TCP or UDP checksum.
///
/// For protocols other than TCP and UDP only the address is rewritten (an
/// ICMP checksum does not cover the addresses). For a fragment only the
/// address is rewritten too, since its layer-4 header is not known to be
/// present: a later fragment, which follows its first (the dataplane
/// passes a first fragment, ports read, as a whole packet).
pub fn rewrite_destination<A: Address>(frame: &mut [u8], p: &Packet<A>, ip: A, port: u16) {
    rewrite_endpoint(frame, p, A::DST_OFFSET, L4_DPORT, ip, port);
}

/// Outbound NAT: sets the source to `ip`:`port` (RIP:rport to VIP:vport),
/// updating the checksums as [`rewrite_destination`] does.
pub fn rewrite_source<A: Address>(frame: &mut [u8], p: &Packet<A>, ip: A, port: u16) {
    rewrite_endpoint(frame, p, A::SRC_OFFSET, L4_SPORT, ip, port);
}

/// Decrements the TTL (IPv6: the hop limit), updating the IPv4 header
/// checksum. Returns false, with the frame untouched, when it is 1 or 0:
/// the packet must not be forwarded ([`crate::DropReason::TtlExceeded`]).
pub fn decrement_ttl<A: Address>(frame: &mut [u8], p: &Packet<A>) -> bool {
    let ip = &mut frame[p.l3..];
    let old = get16(ip, A::HOP_OFFSET & !1);
    if ip[A::HOP_OFFSET] <= 1 {
        return false;
    }
    ip[A::HOP_OFFSET] -= 1;
    if let Some(csum) = A::HEADER_CHECKSUM {
        let new = get16(ip, A::HOP_OFFSET & !1);
        adjust16(ip, csum, old, new);
    }
    true
}

/// Translates an ICMP error about a packet that a real server received, on
/// its way to the client, so that it refers to the virtual service.
///
/// The quoted packet is the client's packet after inbound NAT,
/// CIP:cport to RIP:rport; its destination becomes `vip`:`vport` again,
/// with the quoted IP header checksum updated, and the quoted TCP or UDP
/// checksum updated when it is among the quoted bytes (a UDP checksum
/// always is, a TCP one only when at least 18 bytes of TCP are quoted, and
/// a UDP checksum of 0 stays 0). The quoted bytes then equal those the
/// client sent, but for what routers changed on the way (the TTL), and but
/// for the one quoted byte of a TCP checksum cut in half by a 17-byte quote
/// (left as it is: its new value depends on the missing byte).
///
/// The outer source becomes `vip` only when it is the quoted destination,
/// that is when the real server itself sent the error; an error from a
/// router between the load balancer and the real server keeps the router's
/// address, which is the truth and what traceroute and path MTU discovery
/// expect. The outer IP checksum is updated accordingly.
///
/// The ICMP checksum is updated incrementally for every quoted byte
/// changed. Everything else is kept: the type, the code, bytes 4..8 of the
/// ICMP header (a fragmentation-needed error's next-hop MTU, a parameter
/// problem's pointer), the rest of the quote and any RFC 4884 extensions.
/// Ports are left alone when the quoted packet is not TCP or UDP or is a
/// non-first fragment.
pub fn translate_icmp_error_to_client<A: Address>(
    frame: &mut [u8],
    p: &Packet<A>,
    e: &IcmpError<A>,
    vip: A,
    vport: u16,
) {
    translate_icmp_error(frame, p, e, Quoted::Destination, vip, vport);
}

/// Translates an ICMP error about a packet that the load balancer sent to
/// a client on a real server's behalf (a NAT reply, VIP:vport to
/// CIP:cport), so that it reaches the real server that sent the reply: a
/// router between the load balancer and the client reports
/// fragmentation-needed or unreachable to the packet's source, the VIP,
/// and path MTU discovery works through NAT only if the real learns of it
/// (IPVS's `ip_vs_in_icmp` does the same).
///
/// The quoted source becomes `rip`:`rport` and the outer destination (the
/// VIP, the quoted source) becomes `rip`, with every checksum updated as
/// [`translate_icmp_error_to_client`] describes; the router's own address
/// stays the outer source.
pub fn translate_icmp_error_to_real<A: Address>(
    frame: &mut [u8],
    p: &Packet<A>,
    e: &IcmpError<A>,
    rip: A,
    rport: u16,
) {
    translate_icmp_error(frame, p, e, Quoted::Source, rip, rport);
}

/// Which end of the quoted packet a translation rewrites.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Quoted {
    Source,
    Destination,
}

/// Rewrites one end of the packet quoted in an ICMP error to `ip`:`port`,
/// and the outer address (source or destination) that equals that end's
/// old address, updating the outer IPv4 checksum, the quoted IPv4 and
/// layer-4 checksums and the ICMP checksum incrementally (for ICMPv6 also
/// for the outer addresses, which its pseudo-header covers).
fn translate_icmp_error<A: Address>(
    frame: &mut [u8],
    p: &Packet<A>,
    e: &IcmpError<A>,
    end: Quoted,
    ip: A,
    port: u16,
) {
    let (addr_off, port_off) = match end {
        Quoted::Source => (A::SRC_OFFSET, L4_SPORT),
        Quoted::Destination => (A::DST_OFFSET, L4_DPORT),
    };
    let old_ip = A::read(&frame[e.inner_l3 + addr_off..]);
    let mut icmp_sum = get16(frame, p.l4 + icmp::CHECKSUM_OFFSET);

    // Outer header: the address the error names as the quoted end's own.
    for outer in [A::SRC_OFFSET, A::DST_OFFSET] {
        if A::read(&frame[p.l3 + outer..]) == old_ip {
            ip.write(&mut frame[p.l3 + outer..]);
            match A::HEADER_CHECKSUM {
                Some(csum) => {
                    let c = A::update(get16(frame, p.l3 + csum), old_ip, ip);
                    set16(frame, p.l3 + csum, c);
                }
                None => icmp_sum = A::update(icmp_sum, old_ip, ip),
            }
        }
    }

    // Quoted packet, with every change also applied to the ICMP checksum.
    let inner = &mut frame[e.inner_l3..p.ip_end()];
    ip.write(&mut inner[addr_off..]);
    icmp_sum = A::update(icmp_sum, old_ip, ip);
    if let Some(csum) = A::HEADER_CHECKSUM {
        let old_ipc = get16(inner, csum);
        let new_ipc = A::update(old_ipc, old_ip, ip);
        set16(inner, csum, new_ipc);
        icmp_sum = checksum::update16(icmp_sum, old_ipc, new_ipc);
    }

    let csum_off = match e.inner_proto {
        _ if e.inner_is_later_fragment => None,
        ipv4::PROTO_TCP => Some(l4::TCP_CHECKSUM_OFFSET),
        ipv4::PROTO_UDP => Some(l4::UDP_CHECKSUM_OFFSET),
        _ => None,
    };
    if let Some(csum_off) = csum_off {
        let seg = &mut inner[e.inner_ip_header_len..];
        let old_port = get16(seg, port_off);
        set16(seg, port_off, port);
        icmp_sum = checksum::update16(icmp_sum, old_port, port);
        if seg.len() >= csum_off + 2 {
            let udp = e.inner_proto == ipv4::PROTO_UDP;
            if let Some((old_c, new_c)) = adjust_l4(seg, csum_off, udp, old_ip, ip, old_port, port)
            {
                icmp_sum = checksum::update16(icmp_sum, old_c, new_c);
            }
        }
    }
    set16(frame, p.l4 + icmp::CHECKSUM_OFFSET, icmp_sum);
}

/// Rewrites the address at `addr_off` in the IP header and, for
/// unfragmented TCP and UDP, the port at `port_off` in the layer-4 header,
/// updating the checksums.
#[inline(always)]
fn rewrite_endpoint<A: Address>(
    frame: &mut [u8],
    p: &Packet<A>,
    addr_off: usize,
    port_off: usize,
    new_ip: A,
    port: u16,
) {
    let hdr = &mut frame[p.l3..];
    let old_ip = A::read(&hdr[addr_off..]);
    new_ip.write(&mut hdr[addr_off..]);
    if let Some(csum) = A::HEADER_CHECKSUM {
        let c = A::update(get16(hdr, csum), old_ip, new_ip);
        set16(hdr, csum, c);
    }
    if p.is_fragment {
        return;
    }
    let (csum_off, udp) = match p.proto {
        ipv4::PROTO_TCP => (l4::TCP_CHECKSUM_OFFSET, false),
        ipv4::PROTO_UDP => (l4::UDP_CHECKSUM_OFFSET, true),
        _ => return,
    };
    let seg = &mut frame[p.l4..p.ip_end()];
    let old_port = get16(seg, port_off);
    set16(seg, port_off, port);
    adjust_l4(seg, csum_off, udp, old_ip, new_ip, old_port, port);
}

/// Updates the TCP or UDP checksum at `seg[csum_off..]` after an address
/// covered by the pseudo-header and a port changed. A UDP checksum of 0
/// (none) is left alone; an updated one of 0 becomes 0xffff. Returns the
/// old and new checksum words when the checksum was changed.
fn adjust_l4<A: Address>(
    seg: &mut [u8],
    csum_off: usize,
    udp: bool,
    old_ip: A,
    new_ip: A,
    old_port: u16,
    new_port: u16,
) -> Option<(u16, u16)> {
    let old = get16(seg, csum_off);
    if udp && old == 0 {
        return None;
    }
    let c = A::update(old, old_ip, new_ip);
    let mut c = checksum::update16(c, old_port, new_port);
    if udp && c == 0 {
        c = 0xffff;
    }
    set16(seg, csum_off, c);
    Some((old, c))
}

/// Updates the checksum at `b[off..]` after a word changed from `old` to
/// `new`.
#[inline(always)]
fn adjust16(b: &mut [u8], off: usize, old: u16, new: u16) -> u16 {
    let c = checksum::update16(get16(b, off), old, new);
    set16(b, off, c);
    c
}

#[inline(always)]
fn get16(b: &[u8], off: usize) -> u16 {
    u16::from_be_bytes([b[off], b[off + 1]])
}

#[inline(always)]
fn set16(b: &mut [u8], off: usize, v: u16) {
    b[off..off + 2].copy_from_slice(&v.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::build::*;
    use crate::flow::{parse, Icmp};
    use proptest::prelude::*;
    use std::net::Ipv4Addr;

    const IP_CHECKSUM: usize = 10;

    const CIP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 7);
    const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 80);
    const RIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
    const ROUTER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 254);
    const CPORT: u16 = 40000;
    const VPORT: u16 = 53;
    const RPORT: u16 = 5353;

    /// Asserts that the IP header checksum and the TCP or UDP checksum of
    /// frame `f` equal checksums computed from scratch, and that the frame
    /// parses to the addresses and ports expected.
    fn assert_checksums_from_scratch(f: &[u8], udp_checksum: bool) {
        let p = parse(f).expect("rewritten frame parses");
        let ip = &f[p.l3..p.l4];
        assert_eq!(get16(ip, IP_CHECKSUM), ip_checksum(ip), "IP checksum");
        let seg = &f[p.l4..p.ip_end()];
        match p.proto {
            ipv4::PROTO_TCP => {
                assert_eq!(get16(seg, 16), l4_checksum(p.src, p.dst, 6, seg));
            }
            ipv4::PROTO_UDP if udp_checksum => {
                assert_eq!(get16(seg, 6), l4_checksum(p.src, p.dst, 17, seg));
            }
            ipv4::PROTO_UDP => assert_eq!(get16(seg, 6), 0),
            _ => {}
        }
    }

    fn udp_spec() -> Spec {
        Spec {
            src: CIP,
            dst: VIP,
            sport: CPORT,
            dport: VPORT,
            ..Spec::default()
        }
    }

    fn tcp_spec() -> Spec {
        Spec {
            proto: 6,
            dport: 80,
            tcp_opts: vec![2, 4, 5, 0xb4],
            ..udp_spec()
        }
    }

    #[test]
    fn destination_nat_tcp_and_udp() {
        for s in [udp_spec(), tcp_spec()] {
            let mut f = frame(&s);
            let p = parse(&f).unwrap();
            rewrite_destination(&mut f, &p, RIP, RPORT);
            assert_checksums_from_scratch(&f, true);
            let q = parse(&f).unwrap();
            assert_eq!((q.src, q.sport, q.dst, q.dport), (CIP, CPORT, RIP, RPORT));
            // The reply, source-NATed back, looks as if the VIP sent it.
            let r = Spec {
                src: RIP,
                dst: CIP,
                sport: RPORT,
                dport: CPORT,
                ..s.clone()
            };
            let mut g = frame(&r);
            let p = parse(&g).unwrap();
            rewrite_source(&mut g, &p, VIP, s.dport);
            assert_checksums_from_scratch(&g, true);
            let expected = Spec {
                src: VIP,
                sport: s.dport,
                ..r
            };
            assert_eq!(g, frame(&expected));
        }
    }

    #[test]
    fn nat_round_trip_restores_the_frame() {
        let orig = frame(&tcp_spec());
        let mut f = orig.clone();
        let p = parse(&f).unwrap();
        rewrite_destination(&mut f, &p, RIP, RPORT);
        rewrite_destination(&mut f, &p, VIP, 80);
        assert_eq!(f, orig);
    }

    #[test]
    fn udp_without_checksum_stays_without() {
        let s = Spec {
            udp_checksum: false,
            ..udp_spec()
        };
        let mut f = frame(&s);
        let p = parse(&f).unwrap();
        rewrite_destination(&mut f, &p, RIP, RPORT);
        assert_eq!(get16(&f[p.l4..], 6), 0);
        rewrite_source(&mut f, &p, Ipv4Addr::new(198, 51, 100, 9), 1);
        assert_eq!(get16(&f[p.l4..], 6), 0);
        assert_checksums_from_scratch(&f, false);
        assert_eq!(parse(&f).unwrap().dport, RPORT);
    }

    #[test]
    fn udp_checksum_that_becomes_zero_is_stored_as_ffff() {
        // Search for a destination port that makes the true checksum 0:
        // from scratch that is 0xffff, and the update must agree.
        let mut f = frame(&udp_spec());
        let p = parse(&f).unwrap();
        let mut hit = false;
        for port in 0..=u16::MAX {
            let mut g = f.clone();
            rewrite_destination(&mut g, &p, RIP, port);
            let seg = &g[p.l4..p.ip_end()];
            let c = get16(seg, 6);
            assert_ne!(c, 0);
            assert_eq!(c, l4_checksum(CIP, RIP, 17, seg));
            if c == 0xffff {
                hit = true;
                // And updating away from 0xffff is right too.
                rewrite_destination(&mut g, &p, RIP, 7);
                assert_checksums_from_scratch(&g, true);
                f = g;
                break;
            }
        }
        assert!(hit, "no port gives a zero checksum");
        assert_eq!(parse(&f).unwrap().dport, 7);
    }

    #[test]
    fn padding_is_ignored_and_kept() {
        for s in [udp_spec(), tcp_spec()] {
            let s = Spec {
                payload: vec![1, 2, 3],
                padding: vec![0xa5; 13],
                ..s
            };
            let mut f = frame(&s);
            let p = parse(&f).unwrap();
            assert_eq!(f.len() - p.ip_end(), 13);
            rewrite_destination(&mut f, &p, RIP, RPORT);
            rewrite_source(&mut f, &p, Ipv4Addr::new(100, 64, 0, 1), 1024);
            assert!(decrement_ttl(&mut f, &p));
            assert_checksums_from_scratch(&f, true);
            assert_eq!(&f[p.ip_end()..], &[0xa5; 13][..]);
        }
    }

    #[test]
    fn ttl_decrement() {
        for (ttl, ok) in [(0u8, false), (1, false), (2, true), (64, true), (255, true)] {
            let orig = frame(&Spec { ttl, ..tcp_spec() });
            let mut f = orig.clone();
            let p = parse(&f).unwrap();
            assert_eq!(decrement_ttl(&mut f, &p), ok);
            if ok {
                assert_eq!(parse(&f).unwrap().ttl, ttl - 1);
                assert_checksums_from_scratch(&f, true);
            } else {
                assert_eq!(f, orig);
            }
        }
    }

    #[test]
    fn fragments_get_only_the_address() {
        let s = Spec {
            frag: 0x2000,
            ..udp_spec()
        };
        let mut f = frame(&s);
        let p = parse(&f).unwrap();
        rewrite_destination(&mut f, &p, RIP, RPORT);
        let mut expected = frame(&Spec { dst: RIP, ..s });
        // The builder's UDP checksum covers RIP; the fragment's must not
        // have changed: only the IP header differs.
        let l4 = p.l4;
        expected[l4..].copy_from_slice(&frame(&udp_spec())[l4..]);
        assert_eq!(f, expected);
        assert!(crate::wire::ipv4::parse(&f[14..]).is_ok());
    }

    #[test]
    fn icmp_gets_only_the_address() {
        let mut m = vec![8, 0, 0, 0, 0, 9, 0, 1, 1, 2, 3];
        let c = inet_checksum(&[&m]);
        m[2..4].copy_from_slice(&c.to_be_bytes());
        let s = Spec {
            proto: 1,
            payload: m.clone(),
            ..udp_spec()
        };
        let mut f = frame(&s);
        let p = parse(&f).unwrap();
        rewrite_destination(&mut f, &p, RIP, RPORT);
        assert_eq!(f, frame(&Spec { dst: RIP, ..s }));
    }

    /// The client's packet `s` as the real server receives it after inbound
    /// NAT (no Ethernet header).
    fn as_received_by_real(s: &Spec) -> Vec<u8> {
        let mut f = frame(s);
        let p = parse(&f).unwrap();
        rewrite_destination(&mut f, &p, RIP, RPORT);
        f[14..].to_vec()
    }

    /// Builds an ICMP error from `from` to the client quoting `quote_len`
    /// bytes of the client packet `s` as the real received it, translates
    /// it, and checks everything. Returns the translated frame and the
    /// parse of it.
    fn check_translation(
        s: &Spec,
        ty: u8,
        code: u8,
        rest: [u8; 4],
        from: Ipv4Addr,
        quote_len: usize,
    ) -> Vec<u8> {
        let client_sent = ip_packet(s);
        let received = as_received_by_real(s);
        let quote = &received[..quote_len];
        let mut f = icmp_error(ty, code, rest, from, CIP, quote);
        let p = parse(&f).unwrap();
        let Some(Icmp {
            error: Some(e),
            ty: pty,
            code: pcode,
        }) = p.icmp
        else {
            panic!("not parsed as an ICMP error");
        };
        assert_eq!((pty, pcode), (ty, code));
        assert_eq!((e.inner_src, e.inner_sport), (CIP, s.sport));
        assert_eq!((e.inner_dst, e.inner_dport), (RIP, RPORT));
        translate_icmp_error_to_client(&mut f, &p, &e, VIP, s.dport);

        // Outer header: from the VIP when the real sent it, else untouched.
        let q = parse(&f).expect("translated frame parses");
        let outer_src = if from == RIP { VIP } else { from };
        assert_eq!((q.src, q.dst), (outer_src, CIP));
        let ip = &f[q.l3..q.l4];
        assert_eq!(get16(ip, IP_CHECKSUM), ip_checksum(ip));
        // ICMP checksum from scratch over the whole message.
        let msg = &f[q.l4..q.ip_end()];
        assert_eq!(get16(msg, 2), inet_checksum(&[&msg[..2], &msg[4..]]));
        assert_eq!(&msg[..2], &[ty, code]);
        assert_eq!(&msg[4..8], &rest);
        // The quote is exactly what the client sent, but for half a TCP
        // checksum.
        let e2 = q.icmp.unwrap().error.unwrap();
        let quoted = &f[e2.inner_l3..q.ip_end()];
        assert_eq!(
            &quoted[..comparable_quote_len(s.proto, e2.inner_ip_header_len, quote_len)],
            &client_sent[..comparable_quote_len(s.proto, e2.inner_ip_header_len, quote_len)]
        );
        assert_eq!((e2.inner_dst, e2.inner_dport), (VIP, s.dport));
        let inner_ip = &f[e2.inner_l3..e2.inner_l4];
        assert_eq!(get16(inner_ip, IP_CHECKSUM), ip_checksum(inner_ip));
        f
    }

    /// How much of a quote of `n` bytes must equal the client's packet: all
    /// of it, but for the first byte of a TCP checksum quoted without its
    /// second byte (offset 16 of the TCP header is the last quoted byte).
    fn comparable_quote_len(proto: u8, ip_header_len: usize, n: usize) -> usize {
        if proto == ipv4::PROTO_TCP && n == ip_header_len + l4::TCP_CHECKSUM_OFFSET + 1 {
            n - 1
        } else {
            n
        }
    }

    #[test]
    fn port_unreachable_for_udp() {
        let s = udp_spec();
        let f = check_translation(&s, 3, 3, [0; 4], RIP, 28);
        // The quoted UDP checksum was adjusted to what the client sent.
        let e = parse(&f).unwrap().icmp.unwrap().error.unwrap();
        let client_seg = &ip_packet(&s)[20..];
        assert_eq!(get16(&f[e.inner_l4..], 6), get16(client_seg, 6));
        assert_eq!(get16(client_seg, 6), l4_checksum(CIP, VIP, 17, client_seg));
        // A longer quote: the whole datagram.
        let whole = ip_packet(&s).len();
        check_translation(&s, 3, 3, [0; 4], RIP, whole);
    }

    #[test]
    fn port_unreachable_for_udp_without_checksum() {
        let s = Spec {
            udp_checksum: false,
            ..udp_spec()
        };
        let f = check_translation(&s, 3, 3, [0; 4], RIP, 28);
        let e = parse(&f).unwrap().icmp.unwrap().error.unwrap();
        assert_eq!(get16(&f[e.inner_l4..], 6), 0);
    }

    #[test]
    fn fragmentation_needed_keeps_mtu() {
        let s = Spec {
            payload: vec![0x5a; 1460],
            ..tcp_spec()
        };
        let rest = [0, 0, 0x05, 0xdc]; // next-hop MTU 1500
                                       // From the real server itself, and from a router on the way to it.
        let f = check_translation(&s, 3, 4, rest, RIP, 28);
        assert_eq!(&f[34 + 4..34 + 8], &rest);
        let f = check_translation(&s, 3, 4, rest, ROUTER, 28);
        assert_eq!(&f[34 + 4..34 + 8], &rest);
        assert_eq!(parse(&f).unwrap().src, ROUTER);
    }

    #[test]
    fn tcp_quotes_of_every_length() {
        // 8 bytes (no TCP checksum), up to the full header and beyond, so
        // the TCP checksum at offset 16 is sometimes quoted (and once cut
        // in half).
        let s = Spec {
            payload: b"GET / HTTP/1.1\r\n".to_vec(),
            ..tcp_spec()
        };
        let whole = ip_packet(&s).len();
        for n in 28..=whole {
            check_translation(&s, 3, 1, [0; 4], RIP, n);
        }
    }

    #[test]
    fn time_exceeded_from_router_and_parameter_problem() {
        let s = Spec {
            ip_opts: vec![1, 1, 1, 1, 1, 1, 1, 0],
            ..udp_spec()
        };
        check_translation(&s, 11, 0, [0; 4], ROUTER, 36);
        check_translation(&s, 12, 0, [20, 0, 0, 0], RIP, 36);
        check_translation(&s, 4, 0, [0; 4], RIP, 40);
    }

    /// A NAT reply as the real sent it (RIP:rport -> CIP:cport) and as it
    /// left the load balancer (VIP:vport -> CIP:cport, one hop less); a
    /// router on the client's side reports it to the VIP, quoting
    /// `quote_len` bytes; translated to the real, the quote is the real's
    /// own packet (with the load balancer's TTL) and the error is addressed
    /// to the real, from the router.
    fn check_translation_to_real(reply: &Spec, quote_len: usize) {
        let as_sent = Spec {
            src: RIP,
            sport: RPORT,
            ..reply.clone()
        };
        let mut on_wire = frame(&as_sent);
        let p = parse(&on_wire).unwrap();
        rewrite_source(&mut on_wire, &p, VIP, VPORT);
        assert!(decrement_ttl(&mut on_wire, &p));
        let quote = &on_wire[14..14 + quote_len];
        let rest = [0, 0, 0x05, 0x78]; // next-hop MTU 1400
        let mut f = icmp_error(3, 4, rest, ROUTER, VIP, quote);
        let p = parse(&f).unwrap();
        let e = p.icmp.unwrap().error.unwrap();
        assert_eq!((e.inner_src, e.inner_sport), (VIP, VPORT));
        translate_icmp_error_to_real(&mut f, &p, &e, RIP, RPORT);

        let q = parse(&f).expect("translated frame parses");
        assert_eq!((q.src, q.dst), (ROUTER, RIP));
        let ip = &f[q.l3..q.l4];
        assert_eq!(get16(ip, IP_CHECKSUM), ip_checksum(ip));
        let msg = &f[q.l4..q.ip_end()];
        assert_eq!(get16(msg, 2), inet_checksum(&[&msg[..2], &msg[4..]]));
        assert_eq!(&msg[..2], &[3, 4]);
        assert_eq!(&msg[4..8], &rest, "the next-hop MTU is kept");
        let e2 = q.icmp.unwrap().error.unwrap();
        assert_eq!((e2.inner_src, e2.inner_sport), (RIP, RPORT));
        assert_eq!((e2.inner_dst, e2.inner_dport), (reply.dst, reply.dport));
        let real_sent = ip_packet(&Spec {
            ttl: as_sent.ttl - 1,
            ..as_sent.clone()
        });
        let n = comparable_quote_len(reply.proto, e2.inner_ip_header_len, quote_len);
        assert_eq!(&f[e2.inner_l3..e2.inner_l3 + n], &real_sent[..n]);
    }

    #[test]
    fn errors_about_replies_go_back_to_the_real() {
        let reply = |proto: u8| Spec {
            proto,
            src: VIP,
            dst: CIP,
            sport: VPORT,
            dport: CPORT,
            payload: vec![0x3c; 1400],
            tcp_opts: if proto == 6 { vec![1, 1, 1, 1] } else { vec![] },
            ..Spec::default()
        };
        for proto in [6u8, 17] {
            let s = reply(proto);
            let whole = ip_packet(&s).len();
            for n in [28, 36, 40, 41, 48, 200, whole] {
                check_translation_to_real(&s, n);
            }
        }
    }

    #[test]
    fn quoted_icmp_keeps_its_bytes() {
        // An error about an echo request: only the address changes.
        let mut m = vec![8, 0, 0, 0, 0, 9, 0, 1];
        let c = inet_checksum(&[&m]);
        m[2..4].copy_from_slice(&c.to_be_bytes());
        let s = Spec {
            proto: 1,
            payload: m,
            ..udp_spec()
        };
        let mut received = frame(&s);
        let p = parse(&received).unwrap();
        rewrite_destination(&mut received, &p, RIP, 0);
        let mut f = icmp_error(3, 1, [0; 4], RIP, CIP, &received[14..]);
        let p = parse(&f).unwrap();
        let e = p.icmp.unwrap().error.unwrap();
        translate_icmp_error_to_client(&mut f, &p, &e, VIP, 9999);
        let e = parse(&f).unwrap().icmp.unwrap().error.unwrap();
        assert_eq!(&f[e.inner_l3..], &ip_packet(&s)[..]);
    }

    fn options(max_words: usize) -> impl Strategy<Value = Vec<u8>> {
        (0..=max_words).prop_flat_map(|w| proptest::collection::vec(any::<u8>(), w * 4))
    }

    fn addr() -> impl Strategy<Value = Ipv4Addr> {
        any::<u32>().prop_map(Ipv4Addr::from)
    }

    prop_compose! {
        fn packet_spec()(
            tcp in any::<bool>(),
            src in addr(), dst in addr(),
            sport in any::<u16>(), dport in any::<u16>(),
            ttl in 2u8..=255, id in any::<u16>(),
            df in any::<bool>(),
            ip_opts in prop_oneof![3 => Just(Vec::new()), 1 => options(10)],
            tcp_opts in options(10),
            tcp_flags in any::<u8>(),
            payload in proptest::collection::vec(any::<u8>(), 0..1400),
            udp_checksum in prop_oneof![9 => Just(true), 1 => Just(false)],
            padding in proptest::collection::vec(any::<u8>(), 0..20),
        ) -> Spec {
            Spec {
                proto: if tcp { 6 } else { 17 },
                src, dst, sport, dport, ttl, id,
                frag: if df { 0x4000 } else { 0 },
                ip_opts, tcp_opts, tcp_flags, payload, udp_checksum, padding,
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        // Inbound NAT then TTL decrement, and outbound NAT, against
        // checksums computed from scratch; bytes outside the rewritten
        // fields are unchanged.
        #[test]
        fn rewrites_match_checksums_from_scratch(
            s in packet_spec(),
            ip1 in addr(), port1 in any::<u16>(),
            ip2 in addr(), port2 in any::<u16>(),
        ) {
            let orig = frame(&s);
            let mut f = orig.clone();
            let p = parse(&f).unwrap();
            rewrite_destination(&mut f, &p, ip1, port1);
            assert_checksums_from_scratch(&f, s.udp_checksum);
            prop_assert!(decrement_ttl(&mut f, &p));
            assert_checksums_from_scratch(&f, s.udp_checksum);
            rewrite_source(&mut f, &p, ip2, port2);
            assert_checksums_from_scratch(&f, s.udp_checksum);

            let q = parse(&f).unwrap();
            prop_assert_eq!((q.src, q.sport, q.dst, q.dport), (ip2, port2, ip1, port1));
            prop_assert_eq!(q.ttl, s.ttl - 1);
            // The frame equals the one built with the new values from
            // scratch, padding included (unless UDP 0/0xffff ambiguity,
            // which the builder resolves the same way).
            let expected = frame(&Spec {
                src: ip2, dst: ip1, sport: port2, dport: port1, ttl: s.ttl - 1,
                ..s.clone()
            });
            prop_assert_eq!(f, expected);
        }

        // Each rewrite on its own, applied to fresh packets.
        #[test]
        fn single_rewrites_match_checksums_from_scratch(
            s in packet_spec(), which in 0u8..3, ip in addr(), port in any::<u16>(),
        ) {
            let mut f = frame(&s);
            let p = parse(&f).unwrap();
            let expected = match which {
                0 => {
                    rewrite_destination(&mut f, &p, ip, port);
                    Spec { dst: ip, dport: port, ..s.clone() }
                }
                1 => {
                    rewrite_source(&mut f, &p, ip, port);
                    Spec { src: ip, sport: port, ..s.clone() }
                }
                _ => {
                    prop_assert!(decrement_ttl(&mut f, &p));
                    Spec { ttl: s.ttl - 1, ..s.clone() }
                }
            };
            assert_checksums_from_scratch(&f, s.udp_checksum);
            prop_assert_eq!(f, frame(&expected));
        }

        // DNAT a random client packet, quote it in a random ICMP error,
        // translate back: the quote equals what the client sent.
        #[test]
        fn icmp_translation_restores_the_client_packet(
            s in packet_spec(),
            vip in addr(), rip in addr(), rport in any::<u16>(),
            router in prop_oneof![Just(None), addr().prop_map(Some)],
            extra in 0usize..64,
            ty in prop_oneof![Just(3u8), Just(4u8), Just(11u8), Just(12u8)],
            code in 0u8..16, rest in any::<[u8; 4]>(),
        ) {
            let s = Spec { dst: vip, padding: Vec::new(), ..s };
            let client_sent = ip_packet(&s);
            let mut g = frame(&s);
            let p = parse(&g).unwrap();
            rewrite_destination(&mut g, &p, rip, rport);
            let hl = p.ip_header_len;
            let n = (hl + 8 + extra).min(client_sent.len());
            let from = router.unwrap_or(rip);
            let mut f = icmp_error(ty, code, rest, from, s.src, &g[14..14 + n]);
            let p = parse(&f).unwrap();
            let e = p.icmp.unwrap().error.unwrap();
            translate_icmp_error_to_client(&mut f, &p, &e, vip, s.dport);
            let q = parse(&f).unwrap();
            prop_assert_eq!(q.src, if from == rip { vip } else { from });
            let ip = &f[q.l3..q.l4];
            prop_assert_eq!(get16(ip, IP_CHECKSUM), ip_checksum(ip));
            let msg = &f[q.l4..q.ip_end()];
            prop_assert_eq!(get16(msg, 2), inet_checksum(&[&msg[..2], &msg[4..]]));
            prop_assert_eq!(&msg[4..8], &rest[..]);
            let m = comparable_quote_len(s.proto, hl, n);
            prop_assert_eq!(&msg[8..8 + m], &client_sent[..m]);
        }
    }
}

#[cfg(test)]
#[path = "nat_v6_tests.rs"]
mod v6_tests;
