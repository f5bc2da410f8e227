use super::*;
use crate::testing::{ip_checksum_ok, l4_checksum_ok, tcp_frame, TcpSpec};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4};

/// The IPv4 TCP header, field by field as the specification (section
/// 2.2) lays it out.
#[test]
fn v2_header_bytes_for_ipv4_and_ipv6() {
    let h = v2(true, (&[192, 0, 2, 10], 40000), (&[192, 0, 2, 100], 80));
    let want: Vec<u8> = [
        // signature: \r\n\r\n\0\r\nQUIT\n
        &b"\r\n\r\n\0\r\nQUIT\n"[..],
        // version 2 | PROXY; AF_INET | STREAM; 12 address bytes
        &[0x21, 0x11, 0x00, 0x0c],
        // source, destination address
        &[192, 0, 2, 10, 192, 0, 2, 100],
        // source port 40000 (0x9c40), destination port 80
        &[0x9c, 0x40, 0x00, 0x50],
    ]
    .concat();
    assert_eq!(h.bytes(), &want[..]);
    assert_eq!(h.len(), 28);
    let c6: Ipv6Addr = "2001:db8:1::10".parse().unwrap();
    let v6: Ipv6Addr = "2001:db8::100".parse().unwrap();
    let h = v2(false, (&c6.octets(), 5353), (&v6.octets(), 53));
    assert_eq!(h.len(), 52);
    // AF_INET6 | DGRAM, 36 address bytes.
    assert_eq!(h.bytes()[12..16], [0x21, 0x22, 0x00, 0x24]);
    assert_eq!(h.bytes()[16..32], c6.octets());
    assert_eq!(h.bytes()[32..48], v6.octets());
    assert_eq!(h.bytes()[48..52], [0x14, 0xe9, 0x00, 0x35]);
}

#[test]
fn placing_client_segments_and_mapping_acks_across_wrap_around() {
    for s0 in [1000u32, u32::MAX - 10] {
        let s = Shift {
            s0,
            len: 28,
            acked: false,
        };
        assert_eq!(s.place(s0.wrapping_sub(1), true), Placement::AsItIs);
        assert_eq!(s.place(s0, false), Placement::HeaderInFront);
        assert_eq!(
            s.place(s0.wrapping_add(100), false),
            Placement::Shifted(s0.wrapping_add(128))
        );
        // A keepalive probe one byte back stays.
        assert_eq!(s.place(s0.wrapping_sub(1), false), Placement::AsItIs);
        // The real's acks: the handshake, inside the header, past it.
        assert_eq!(s.to_client(s0), s0);
        assert_eq!(s.to_client(s0.wrapping_add(10)), s0);
        assert_eq!(s.to_client(s0.wrapping_add(28)), s0);
        assert_eq!(s.to_client(s0.wrapping_add(1028)), s0.wrapping_add(1000));
        assert!(!s.acknowledges_header(s0.wrapping_add(27)));
        assert!(s.acknowledges_header(s0.wrapping_add(28)));
    }
}

/// Once the real has the header, every client byte moves by its length
/// however far the stream has gone: 2 GiB and 4 GiB on, the first byte's
/// number comes round again and is no first segment.
#[test]
fn a_long_stream_keeps_its_shift() {
    let s0 = 7_000u32;
    let s = Shift {
        s0,
        len: 28,
        acked: true,
    };
    for far in [1u32 << 31, (1 << 31) + 5, u32::MAX, 0] {
        let seq = s0.wrapping_add(far);
        assert_eq!(
            s.place(seq, false),
            Placement::Shifted(seq.wrapping_add(28))
        );
        let ack = seq.wrapping_add(28);
        assert_eq!(s.to_client(ack), seq);
    }
    // Unacknowledged, the same numbers would be taken for the stream's
    // start or for bytes before it.
    let early = Shift { acked: false, ..s };
    assert_eq!(early.place(s0, false), Placement::HeaderInFront);
    assert_eq!(
        early.place(s0.wrapping_add(1 << 31), false),
        Placement::AsItIs
    );
}

fn segment(options: &[u8], flags: u8, payload: &[u8]) -> Vec<u8> {
    tcp_frame(&TcpSpec {
        src: SocketAddrV4::new(Ipv4Addr::new(203, 0, 113, 11), 8080),
        dst: SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, 200), 1026),
        seq: 7,
        ack: 5028,
        flags,
        window: 500,
        options,
        payload,
        ip_options: &[],
    })
}

#[test]
fn acks_and_sack_blocks_are_mapped_checksum_kept_right() {
    // NOP NOP SACK(2 blocks), then a timestamp left alone.
    let opts = [
        1, 1, 5, 18, 0, 0, 0x13, 0xec, 0, 0, 0x17, 0xd4, 0, 0, 0x1b, 0xbc, 0, 0, 0x1f, 0xa4, 1, 1,
        8, 10, 0, 0, 0, 1, 0, 0, 0, 2,
    ];
    let mut f = segment(&opts, l4::TCP_ACK, b"");
    let s = Shift {
        s0: 1000,
        len: 28,
        acked: false,
    };
    map_acks(&mut f[34..], |a| s.to_client(a));
    let seg = &f[34..];
    assert_eq!(get32(seg, 8), 5000);
    let edges: Vec<u32> = (0..4).map(|i| get32(seg, 24 + 4 * i)).collect();
    assert_eq!(edges, [5100 - 28, 6100 - 28, 7100 - 28, 8100 - 28]);
    assert_eq!(seg[40..52], opts[20..32], "timestamp untouched");
    assert!(l4_checksum_ok(&f));
}

#[test]
fn mss_is_lowered_never_raised() {
    let syn_ack = l4::TCP_SYN | l4::TCP_ACK;
    let mut f = segment(&[2, 4, 0x05, 0xb4, 1, 3, 3, 7], syn_ack, b"");
    assert!(lower_mss(&mut f[34..], 28, 1432));
    assert_eq!(f[34 + 22..34 + 24], (1432u16).to_be_bytes());
    assert!(l4_checksum_ok(&f));
    // A real offering less (1400, behind a smaller MTU) is lowered by
    // the header's length too; the cap never raises it.
    let mut small = segment(&[2, 4, 0x05, 0x78, 1, 3, 3, 7], syn_ack, b"");
    assert!(lower_mss(&mut small[34..], 28, 1432));
    assert_eq!(small[34 + 22..34 + 24], (1372u16).to_be_bytes());
    assert!(l4_checksum_ok(&small));
    assert!(!lower_mss(&mut f[34..], 0, 1460));
    let mut none = segment(&[1, 3, 3, 7], l4::TCP_SYN, b"");
    assert!(!lower_mss(&mut none[34..], 28, 1000));
}

/// The header put in front of a TCP payload the way the worker does it
/// (lengths and checksums first, then the bytes moved), against the
/// packet built from scratch with the header in its payload.
#[test]
fn growing_a_segment_matches_the_packet_built_whole() {
    let h = v2(true, (&[192, 0, 2, 10], 40000), (&[192, 0, 2, 100], 80));
    for payload in [&b""[..], b"GET / HTTP/1.0\r\n\r\n", b"odd"] {
        let mut f = segment(&[1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2], l4::TCP_ACK, payload);
        let at = 14 + 20 + 32;
        grow_segment(
            &mut f,
            Lengths {
                ip_len: 16,
                ip_checksum: Some(24),
                l4: 34,
                udp: false,
            },
            h.bytes(),
        );
        let mut grown = f[..at].to_vec();
        grown.extend_from_slice(h.bytes());
        grown.extend_from_slice(&f[at..]);
        let whole = [h.bytes(), payload].concat();
        let want = segment(&[1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2], l4::TCP_ACK, &whole);
        assert_eq!(grown, want);
        assert!(ip_checksum_ok(&grown) && l4_checksum_ok(&grown));
    }
}

#[test]
fn growing_a_datagram_keeps_its_checksum_right_or_absent() {
    let h = v2(false, (&[192, 0, 2, 10], 5000), (&[192, 0, 2, 100], 53));
    for with_sum in [true, false] {
        let payload = b"question?";
        let mut seg = vec![0u8; 8];
        seg[0..2].copy_from_slice(&5000u16.to_be_bytes());
        seg[2..4].copy_from_slice(&5353u16.to_be_bytes());
        seg[4..6].copy_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        seg.extend_from_slice(payload);
        let (src, dst) = (
            Ipv4Addr::new(198, 51, 100, 200),
            Ipv4Addr::new(203, 0, 113, 11),
        );
        if with_sum {
            let c = crate::testing::l4_checksum(src, dst, 17, &seg);
            seg[6..8].copy_from_slice(&c.to_be_bytes());
        }
        let mut f = vec![0u8; 34];
        f[12..14].copy_from_slice(&[0x08, 0]);
        f[14] = 0x45;
        f[16..18].copy_from_slice(&((20 + seg.len()) as u16).to_be_bytes());
        f[22] = 64;
        f[23] = 17;
        f[26..30].copy_from_slice(&src.octets());
        f[30..34].copy_from_slice(&dst.octets());
        let c = crate::testing::ipv4_header_checksum(&f[14..34]);
        f[24..26].copy_from_slice(&c.to_be_bytes());
        f.extend_from_slice(&seg);
        let lengths = Lengths {
            ip_len: 16,
            ip_checksum: Some(24),
            l4: 34,
            udp: true,
        };
        grow_segment(&mut f, lengths, h.bytes());
        let at = 42;
        let mut grown = f[..at].to_vec();
        grown.extend_from_slice(h.bytes());
        grown.extend_from_slice(&f[at..]);
        assert!(ip_checksum_ok(&grown));
        assert_eq!(
            usize::from(u16::from_be_bytes([grown[38], grown[39]])),
            8 + h.len() + payload.len()
        );
        if with_sum {
            assert!(l4_checksum_ok(&grown));
        } else {
            assert_eq!(grown[40..42], [0, 0]);
        }
    }
}
