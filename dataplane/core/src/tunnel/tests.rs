//! The outer headers, byte by byte against RFC 791/2003/2473/768/8200
//! written out here from scratch, and the frame they go in front of.

use super::*;

/// An inner IPv4 TCP packet: TOS 0xb8 (EF), DF, 40 bytes of TCP.
fn inner4(df: bool) -> Vec<u8> {
    let mut p = vec![0u8; 60];
    p[0] = 0x45;
    p[1] = 0xb8;
    p[2..4].copy_from_slice(&60u16.to_be_bytes());
    p[6] = if df { 0x40 } else { 0 };
    p[8] = 63;
    p[9] = 6;
    p[12..16].copy_from_slice(&[203, 0, 113, 7]);
    p[16..20].copy_from_slice(&[192, 0, 2, 100]);
    let c = checksum::checksum(&p[..20]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    for (i, b) in p[20..].iter_mut().enumerate() {
        *b = i as u8;
    }
    p
}

/// An inner IPv6 UDP packet, traffic class 0x2e, 30 bytes of payload.
fn inner6() -> Vec<u8> {
    let mut p = vec![0u8; 70];
    p[0] = 0x62;
    p[1] = 0xe0;
    p[4..6].copy_from_slice(&30u16.to_be_bytes());
    p[6] = 17;
    p[7] = 60;
    p[8..24].copy_from_slice(&"2001:db8:1::7".parse::<Ipv6Addr>().unwrap().octets());
    p[24..40].copy_from_slice(&"2001:db8::100".parse::<Ipv6Addr>().unwrap().octets());
    for (i, b) in p[40..].iter_mut().enumerate() {
        *b = (i * 7) as u8;
    }
    p
}

const SRC: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
const REAL: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 50);

fn src6() -> Ipv6Addr {
    "2001:db8:ff::1".parse().unwrap()
}

fn real6() -> Ipv6Addr {
    "2001:db8:50::50".parse().unwrap()
}

/// RFC 1071, one 16-bit word at a time.
fn ones_sum(words: &[u8]) -> u16 {
    let mut s: u32 = 0;
    for c in words.chunks(2) {
        s += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

#[test]
fn ipip_over_ipv4_is_rfc_2003s_outer_header() {
    let inner = inner4(true);
    let o = outer4(Encap::Ipip, SRC, REAL, &inner, 0x1234, 99);
    let b = o.bytes();
    assert_eq!(b.len(), 20);
    let mut want = vec![
        0x45, 0xb8, 0, 80, 0x12, 0x34, 0x40, 0, 64, 4, 0, 0, 198, 51, 100, 1, 203, 0, 113, 50,
    ];
    let c = !ones_sum(&want);
    want[10..12].copy_from_slice(&c.to_be_bytes());
    assert_eq!(b, &want[..]);
    // DF is the inner packet's: without it, none outside either.
    let o = outer4(Encap::Ipip, SRC, REAL, &inner4(false), 1, 99);
    assert_eq!(o.bytes()[6], 0);
    assert_eq!(ones_sum(o.bytes()), 0xffff);
}

#[test]
fn gue_over_ipv4_is_udp_to_the_port_from_a_port_of_the_flow() {
    let inner = inner4(true);
    let o = outer4(Encap::Gue { port: 6080 }, SRC, REAL, &inner, 7, 0xdead_beef);
    let b = o.bytes();
    assert_eq!(b.len(), 28);
    assert_eq!(b[9], 17, "UDP");
    assert_eq!(u16::from_be_bytes([b[2], b[3]]), 88, "total length");
    assert_eq!(ones_sum(&b[..20]), 0xffff, "header checksum");
    let sport = u16::from_be_bytes([b[20], b[21]]);
    assert_eq!(sport, 0xc000 | (0xbeef & 0x3fff));
    assert_eq!(u16::from_be_bytes([b[22], b[23]]), 6080);
    assert_eq!(u16::from_be_bytes([b[24], b[25]]), 68, "UDP length");
    assert_eq!(&b[26..28], &[0, 0], "no UDP checksum over IPv4");
    // Other flows take other source ports, all in the dynamic range; one
    // flow always the same.
    let ports: std::collections::HashSet<u16> = (0..64u32)
        .map(|h| gue_source_port(h.wrapping_mul(0x9e37_79b9)))
        .collect();
    assert!(ports.len() > 60, "{ports:?}");
    assert!(ports.iter().all(|p| *p >= 49152));
    assert_eq!(gue_source_port(5), gue_source_port(5));
}

#[test]
fn ipip_over_ipv6_is_rfc_2473s_outer_header() {
    let inner = inner6();
    let o = outer6(Encap::Ipip, src6(), real6(), &inner, 0xabc_de123);
    let b = o.bytes();
    assert_eq!(b.len(), 40);
    // Version 6, the inner traffic class 0x2e, the hash as flow label
    // (its low 20 bits, 0xde123).
    assert_eq!(&b[..4], &[0x62, 0xed, 0xe1, 0x23]);
    assert_eq!(
        u16::from_be_bytes([b[4], b[5]]),
        70,
        "payload: the inner packet"
    );
    assert_eq!(b[6], 41, "IPv6 in IPv6");
    assert_eq!(b[7], 64);
    assert_eq!(&b[8..24], &src6().octets());
    assert_eq!(&b[24..40], &real6().octets());
}

#[test]
fn gue_over_ipv6_carries_a_udp_checksum_over_the_inner_packet() {
    let inner = inner6();
    let o = outer6(Encap::Gue { port: 5555 }, src6(), real6(), &inner, 42);
    let b = o.bytes();
    assert_eq!(b.len(), 48);
    assert_eq!(b[6], 17);
    assert_eq!(u16::from_be_bytes([b[4], b[5]]), 78);
    assert_eq!(u16::from_be_bytes([b[42], b[43]]), 5555);
    // RFC 8200 §8.1: pseudo-header, UDP header, payload sum to all ones.
    let mut all = Vec::new();
    all.extend_from_slice(&src6().octets());
    all.extend_from_slice(&real6().octets());
    all.extend_from_slice(&78u32.to_be_bytes());
    all.extend_from_slice(&[0, 0, 0, 17]);
    all.extend_from_slice(&b[40..48]);
    all.extend_from_slice(&inner);
    assert_eq!(ones_sum(&all), 0xffff);
    assert_ne!(&b[46..48], &[0, 0]);
}

#[test]
fn prepend_moves_the_ethernet_header_and_inserts_the_outer_one() {
    let inner = inner4(true);
    let mut eth = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00];
    let o = outer4(Encap::Gue { port: 6080 }, SRC, REAL, &inner, 7, 1);
    // The frame in its buffer, with the room made in front.
    let mut buf = vec![0xeeu8; o.len()];
    buf.append(&mut eth.clone());
    buf.extend_from_slice(&inner);
    prepend(&mut buf, &o);
    assert_eq!(&buf[..14], &eth[..]);
    assert_eq!(&buf[14..14 + o.len()], o.bytes());
    assert_eq!(&buf[14 + o.len()..], &inner[..]);
    // An IPv6 outer header names IPv6 in the Ethernet header.
    let inner = inner6();
    let o = outer6(Encap::Ipip, src6(), real6(), &inner, 1);
    let mut buf = vec![0u8; o.len()];
    eth[12..14].copy_from_slice(&[0x86, 0xdd]);
    buf.append(&mut eth.clone());
    buf.extend_from_slice(&inner);
    prepend(&mut buf, &o);
    assert_eq!(&buf[12..14], &[0x86, 0xdd]);
    assert_eq!(&buf[14 + 40..], &inner[..]);
}

#[test]
fn the_mtu_left_for_the_client() {
    assert!(fits(1480, Encap::Ipip, false, 1500));
    assert!(!fits(1481, Encap::Ipip, false, 1500));
    assert!(fits(1472, Encap::Gue { port: 1 }, false, 1500));
    assert!(!fits(1473, Encap::Gue { port: 1 }, false, 1500));
    assert_eq!(inner_mtu(Encap::Ipip, true, 1500), 1460);
    assert_eq!(inner_mtu(Encap::Gue { port: 1 }, true, 1500), 1452);
}

/// A packet that may be fragmented and does not fit is cut in two outer
/// fragments (RFC 791): the first as long as the MTU allows (its payload
/// a multiple of 8), more fragments set; the second the rest; together
/// the outer packet's payload, UDP header included.
#[test]
fn an_outer_packet_too_long_is_cut_in_two_fragments() {
    for (encap, udp) in [(Encap::Ipip, 0), (Encap::Gue { port: 6080 }, 8)] {
        let mut inner = inner4(false);
        inner.resize(1500, 0x33);
        inner[2..4].copy_from_slice(&1500u16.to_be_bytes());
        let outer = outer4(encap, SRC, REAL, &inner, 0x0bad, 9);
        let mut tail = [0u8; MAX_TAIL];
        let (first, n) = fragment4(&outer, &inner, 1500, &mut tail).unwrap();
        // The first fragment's frame, as the worker makes it.
        let mut grown = vec![0u8; first.len()];
        grown.extend_from_slice(&[2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 8, 0]);
        grown.extend_from_slice(&inner);
        prepend(&mut grown, &first);
        grown.truncate(first.cut_frame_len().unwrap());
        assert_eq!(grown.len(), 14 + 1500);
        let f1 = &grown[14..];
        assert_eq!(ones_sum(&f1[..20]), 0xffff);
        assert_eq!(u16::from_be_bytes([f1[2], f1[3]]), 1500);
        assert_eq!(&f1[6..8], &[0x20, 0], "more fragments, offset 0");
        let f2 = &tail[..n];
        assert_eq!(ones_sum(&f2[..20]), 0xffff);
        assert_eq!(u16::from_be_bytes([f2[2], f2[3]]) as usize, n);
        assert_eq!(
            u16::from_be_bytes([f2[6], f2[7]]),
            1480 / 8,
            "the last, at 1480"
        );
        assert_eq!(&f1[4..6], &f2[4..6], "one identification");
        assert_eq!(f1[9], f2[9]);
        // Put together: the unfragmented outer packet's payload.
        let mut whole = f1[20..].to_vec();
        whole.extend_from_slice(&f2[20..]);
        let mut want = outer.bytes()[20..].to_vec();
        want.extend_from_slice(&inner);
        assert_eq!(whole, want);
        assert_eq!(whole.len(), udp + 1500);
    }
    // What fits needs no cutting; what two fragments cannot carry is not cut.
    let inner = inner4(false);
    let outer = outer4(Encap::Ipip, SRC, REAL, &inner, 1, 1);
    assert!(fragment4(&outer, &inner, 1500, &mut [0u8; MAX_TAIL]).is_none());
    assert_eq!(outer.cut_frame_len(), None);
    let mut huge = inner4(false);
    huge.resize(2000, 0);
    let outer = outer4(Encap::Ipip, SRC, REAL, &huge, 1, 1);
    assert!(fragment4(&outer, &huge, 600, &mut [0u8; MAX_TAIL]).is_none());
}
