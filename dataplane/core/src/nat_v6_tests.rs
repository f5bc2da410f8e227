//! NAT66: the same rewrites on IPv6 frames, checked against checksums
//! computed from scratch.

use super::*;
use crate::flow6::build::*;
use crate::flow6::{icmpv6_checksum_ok, parse};
use proptest::prelude::*;
use std::net::Ipv6Addr;

fn v6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

/// Whether the TCP or UDP checksum of `f` (parsed as `p`) is right, from
/// scratch.
fn l4_ok(f: &[u8], p: &Packet<Ipv6Addr>) -> bool {
    let seg = &f[p.l4..p.ip_end()];
    let off = if p.proto == 6 { 16 } else { 6 };
    let mut z = seg.to_vec();
    z[off..off + 2].fill(0);
    let c = checksum6(p.src, p.dst, p.proto, &z);
    let c = if c == 0 { 0xffff } else { c };
    let stored = u16::from_be_bytes([seg[off], seg[off + 1]]);
    stored == c || (c == 0xffff && stored == 0)
}

fn ext_strategy() -> impl Strategy<Value = Ext> {
    prop_oneof![
        (0u8..2).prop_map(Ext::HopByHop),
        (0u8..2).prop_map(Ext::DestOpts),
        (0u8..2).prop_map(|n| Ext::Routing {
            segments_left: 0,
            n
        }),
        any::<u32>().prop_map(|id| Ext::Fragment {
            offset: 0,
            more: false,
            id
        }),
        (0u8..2).prop_map(Ext::Auth),
    ]
}

proptest! {
    /// Inbound then outbound NAT66 on random TCP and UDP packets, through
    /// extension headers: after each rewrite the addresses and ports are
    /// the new ones and the checksum equals one computed from scratch;
    /// undoing both restores the frame byte for byte.
    #[test]
    fn nat66_matches_scratch_and_round_trips(
        src in any::<[u8; 16]>(), dst in any::<[u8; 16]>(), rip in any::<[u8; 16]>(),
        sport in any::<u16>(), dport in any::<u16>(), rport in any::<u16>(),
        udp in any::<bool>(),
        ext in proptest::collection::vec(ext_strategy(), 0..3),
        payload in proptest::collection::vec(any::<u8>(), 0..80),
    ) {
        let (rip, dst) = (Ipv6Addr::from(rip), Ipv6Addr::from(dst));
        // Hop-by-hop options may only come first.
        let ext: Vec<Ext> = ext.into_iter().enumerate()
            .filter(|(i, e)| *i == 0 || !matches!(e, Ext::HopByHop(_))).map(|(_, e)| e).collect();
        let s = Spec6 { proto: if udp { 17 } else { 6 }, src: Ipv6Addr::from(src), dst,
                        sport, dport, ext, payload, ..Spec6::default() };
        let orig = frame6(&s);
        let mut f = orig.clone();
        let p = parse(&f).unwrap();
        rewrite_destination(&mut f, &p, rip, rport);
        let q = parse(&f).unwrap();
        prop_assert_eq!((q.dst, q.dport, q.src, q.sport), (rip, rport, p.src, sport));
        prop_assert!(l4_ok(&f, &q), "inbound checksum");
        rewrite_destination(&mut f, &q, dst, dport);
        prop_assert_eq!(&f, &orig);
        rewrite_source(&mut f, &p, rip, rport);
        let r = parse(&f).unwrap();
        prop_assert_eq!((r.src, r.sport), (rip, rport));
        prop_assert!(l4_ok(&f, &r), "outbound checksum");
    }
}

#[test]
fn hop_limit_decrement_has_no_checksum_to_fix() {
    let mut f = frame6(&Spec6 {
        hop_limit: 2,
        ..Spec6::default()
    });
    let orig = f.clone();
    let p = parse(&f).unwrap();
    assert!(decrement_ttl(&mut f, &p));
    assert_eq!(f[14 + 7], 1);
    let diff: Vec<usize> = (0..f.len()).filter(|&i| f[i] != orig[i]).collect();
    assert_eq!(diff, vec![14 + 7], "only the hop limit changes");
    let p = parse(&f).unwrap();
    assert!(!decrement_ttl(&mut f, &p), "hop limit 1 is not forwarded");
    assert_eq!(f[14 + 7], 1);
}

/// Whether the quoted packet of error `q` in `f`, when whole, carries a
/// right TCP or UDP checksum (from scratch).
fn quoted_l4_ok(f: &[u8], e: &IcmpError<Ipv6Addr>, end: usize) -> bool {
    let q = ether6(&f[e.inner_l3..end], &[]);
    l4_ok(&q, &parse(&q).unwrap())
}

/// A Packet Too Big from a router on the client's side about a NAT66 reply
/// (VIP -> client) is sent on to the real with the quote's source made the
/// real's again, the outer destination (the VIP) the real, and every
/// checksum right: the ICMPv6 one, over the new outer destination too, and
/// the quoted segment's when it is quoted whole.
#[test]
fn packet_too_big_is_translated_to_the_real() {
    let (client, vip, rip) = (
        v6("2001:db8:1::7"),
        v6("2001:db8::100"),
        v6("2001:db8:2::11"),
    );
    let router = v6("2001:db8:3::1");
    for (proto, payload, cut) in [
        (6, 1300, Some(1232)),
        (17, 1300, Some(56)),
        (6, 100, None),
        (17, 100, None),
    ] {
        let reply = ip6_packet(&Spec6 {
            proto,
            src: vip,
            dst: client,
            sport: 80,
            dport: 40000,
            ext: vec![Ext::DestOpts(0)],
            payload: vec![7; payload],
            ..Spec6::default()
        });
        let quote = &reply[..cut.unwrap_or(reply.len())];
        let mut f = icmp6_error(2, 0, 1280u32.to_be_bytes(), router, vip, quote);
        let p = parse(&f).unwrap();
        let e = p.icmp.unwrap().error.unwrap();
        translate_icmp_error_to_real(&mut f, &p, &e, rip, 8080);
        let q = parse(&f).expect("the translated error parses (its checksum is right)");
        assert_eq!((q.src, q.dst), (router, rip));
        let qe = q.icmp.unwrap().error.unwrap();
        assert_eq!((qe.inner_src, qe.inner_sport), (rip, 8080));
        assert_eq!((qe.inner_dst, qe.inner_dport), (client, 40000));
        assert!(icmpv6_checksum_ok(q.src, q.dst, &f[q.l4..q.ip_end()]));
        assert_eq!(&f[q.l4 + 4..q.l4 + 8], &1280u32.to_be_bytes(), "MTU kept");
        if cut.is_none() {
            assert!(quoted_l4_ok(&f, &qe, q.ip_end()), "quoted checksum");
        }
    }
}

/// Port unreachable from the real itself about a client's UDP datagram
/// after inbound NAT66 (client -> RIP:rport) goes to the client as if the
/// VIP sent it: outer source and quoted destination become the VIP:vport.
#[test]
fn port_unreachable_from_the_real_is_translated_to_the_client() {
    let (client, vip, rip) = (
        v6("2001:db8:1::7"),
        v6("2001:db8::100"),
        v6("2001:db8:2::11"),
    );
    let datagram = ip6_packet(&Spec6 {
        proto: 17,
        src: client,
        dst: rip,
        sport: 40000,
        dport: 5353,
        payload: vec![1; 30],
        ..Spec6::default()
    });
    let mut f = icmp6_error(1, 4, [0; 4], rip, client, &datagram);
    let p = parse(&f).unwrap();
    let e = p.icmp.unwrap().error.unwrap();
    translate_icmp_error_to_client(&mut f, &p, &e, vip, 53);
    let q = parse(&f).expect("checksum right after translation");
    assert_eq!((q.src, q.dst), (vip, client));
    let qe = q.icmp.unwrap().error.unwrap();
    assert_eq!(
        (qe.inner_src, qe.inner_dst, qe.inner_dport),
        (client, vip, 53)
    );
    assert!(quoted_l4_ok(&f, &qe, q.ip_end()));
    // Every byte but the translated ones is the client's datagram again.
    let sent = ip6_packet(&Spec6 {
        proto: 17,
        src: client,
        dst: vip,
        sport: 40000,
        dport: 53,
        payload: vec![1; 30],
        ..Spec6::default()
    });
    assert_eq!(&f[qe.inner_l3..q.ip_end()], &sent[..]);
}
