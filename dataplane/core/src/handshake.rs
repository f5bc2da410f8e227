//! The frames of a proxied TCP handshake, and the sequence-number
//! translation of the connection after it.
//!
//! The appliance answers the client's SYN itself with a SYN cookie
//! ([`answer_syn`]); once the client's ACK proves its address, it opens the
//! connection to the real with a SYN of its own ([`write_syn`]) and
//! completes that handshake by turning the real's SYN-ACK into the ACK the
//! client would have sent ([`answer_syn_ack`]). From then on the real's
//! sequence numbers differ from the cookie by a fixed delta, added to what
//! the real sends ([`shift_seq`]) and taken off the acknowledgments the
//! client sends ([`shift_ack`]); window fields are rescaled where the two
//! ends scale differently ([`set_window`]).
//!
//! In-place rewrites keep the checksums right incrementally (a segment that
//! arrived with a bad checksum still has one); frames built here get
//! checksums computed from scratch.

use crate::addr::MacAddr;
use crate::flow::{IcmpError, Packet};
use crate::syn_cookie::CookieOptions;
use crate::wire::{checksum, ethernet, icmp, ipv4, l4};
use std::net::{Ipv4Addr, SocketAddrV4};

/// Offset of the sequence number in a TCP header.
const SEQ: usize = 4;
/// Offset of the acknowledgment number.
const ACK: usize = 8;
/// Offset of the data offset (high nibble).
const DATA_OFFSET: usize = 12;
/// Offset of the flags.
const FLAGS: usize = 13;
/// Offset of the window.
const WINDOW: usize = 14;
/// Offset of the urgent pointer.
const URGENT: usize = 18;
/// TTL of the packets the appliance makes.
pub const TTL: u8 = 64;
/// Length of the SYN [`write_syn`] makes: Ethernet, IPv4, TCP with MSS and
/// window scale.
pub const SYN_LEN: usize = ethernet::HEADER_LEN + 20 + 20 + 8;
/// The window the appliance's SYN-ACK offers (never scaled, RFC 7323).
pub const SYN_ACK_WINDOW: u16 = 65_535;

fn get32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// The sequence number of TCP packet `p`.
pub fn seq(frame: &[u8], p: &Packet) -> u32 {
    get32(frame, p.l4 + SEQ)
}

/// The acknowledgment number of TCP packet `p`.
pub fn ack(frame: &[u8], p: &Packet) -> u32 {
    get32(frame, p.l4 + ACK)
}

/// The window field of TCP packet `p`.
pub fn window(frame: &[u8], p: &Packet) -> u16 {
    u16::from_be_bytes([frame[p.l4 + WINDOW], frame[p.l4 + WINDOW + 1]])
}

/// Bytes of TCP payload `p` carries.
pub fn payload_len(frame: &[u8], p: &Packet) -> usize {
    p.l4_len()
        .saturating_sub(l4::tcp_header_len(&frame[p.l4..]))
}

/// Replaces a 32-bit field of the TCP header, updating its checksum.
fn set32(frame: &mut [u8], p: &Packet, at: usize, new: u32) {
    let tcp = &mut frame[p.l4..];
    let old = get32(tcp, at);
    tcp[at..at + 4].copy_from_slice(&new.to_be_bytes());
    let c = u16::from_be_bytes([tcp[16], tcp[17]]);
    let c = checksum::update32(c, old, new);
    tcp[16..18].copy_from_slice(&c.to_be_bytes());
}

/// Adds `delta` to the sequence number (a packet from the real, on its
/// way to the client).
pub fn shift_seq(frame: &mut [u8], p: &Packet, delta: u32) {
    let new = seq(frame, p).wrapping_add(delta);
    set32(frame, p, SEQ, new);
}

/// Takes `delta` off the acknowledgment number (a packet from the client,
/// on its way to the real), when the ACK flag is set.
pub fn shift_ack(frame: &mut [u8], p: &Packet, delta: u32) {
    if p.tcp_flags & l4::TCP_ACK != 0 {
        let new = ack(frame, p).wrapping_sub(delta);
        set32(frame, p, ACK, new);
    }
}

/// Takes `delta` off the sequence number quoted in ICMP error `e`: the
/// quote of a packet the appliance sent a proxied connection's client
/// (VIP -> client, its sequence number in the cookie's space), on its way
/// to the real, which checks that the number is one it sent. The quoted
/// TCP checksum (when quoted whole) and the ICMP checksum are updated. A
/// quote too short to hold the sequence number is left alone. Either
/// family (the PROXY protocol's shift uses it for IPv6 too).
pub fn unshift_quoted_seq<A: crate::family::Address>(
    frame: &mut [u8],
    p: &Packet<A>,
    e: &IcmpError<A>,
    delta: u32,
) {
    if e.inner_proto != ipv4::PROTO_TCP || e.inner_is_later_fragment || e.inner_l4_len < SEQ + 4 {
        return;
    }
    let at = e.inner_l4 + SEQ;
    let old = get32(frame, at);
    let new = old.wrapping_sub(delta);
    frame[at..at + 4].copy_from_slice(&new.to_be_bytes());
    let icmp_at = p.l4 + icmp::CHECKSUM_OFFSET;
    let mut icmp_sum = u16::from_be_bytes([frame[icmp_at], frame[icmp_at + 1]]);
    icmp_sum = checksum::update32(icmp_sum, old, new);
    if e.inner_l4_len >= l4::TCP_CHECKSUM_OFFSET + 2 {
        let c_at = e.inner_l4 + l4::TCP_CHECKSUM_OFFSET;
        let old_c = u16::from_be_bytes([frame[c_at], frame[c_at + 1]]);
        let new_c = checksum::update32(old_c, old, new);
        frame[c_at..c_at + 2].copy_from_slice(&new_c.to_be_bytes());
        icmp_sum = checksum::update16(icmp_sum, old_c, new_c);
    }
    frame[icmp_at..icmp_at + 2].copy_from_slice(&icmp_sum.to_be_bytes());
}

/// Sets the sequence number.
pub fn set_seq(frame: &mut [u8], p: &Packet, new: u32) {
    set32(frame, p, SEQ, new);
}

/// Sets the window field, updating the checksum.
pub fn set_window(frame: &mut [u8], p: &Packet, new: u16) {
    let tcp = &mut frame[p.l4..];
    let old = u16::from_be_bytes([tcp[WINDOW], tcp[WINDOW + 1]]);
    tcp[WINDOW..WINDOW + 2].copy_from_slice(&new.to_be_bytes());
    let c = u16::from_be_bytes([tcp[16], tcp[17]]);
    let c = checksum::update16(c, old, new);
    tcp[16..18].copy_from_slice(&c.to_be_bytes());
}

/// A window advertised in units of 2^`from` re-expressed in units of
/// 2^`to`, capped at the field's maximum.
pub fn rescale(window: u16, from: u8, to: u8) -> u16 {
    let bytes = u64::from(window) << from;
    (bytes >> to).min(u64::from(u16::MAX)) as u16
}

/// What the appliance's SYN-ACK offers the client: the MSS and window
/// scale options, each present only when the client's SYN had it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SynAckOptions {
    /// MSS to offer.
    pub mss: Option<u16>,
    /// Window scale to offer.
    pub wscale: Option<u8>,
}

/// Turns the client's SYN `p` (a verified, unfragmented TCP SYN) into the
/// appliance's SYN-ACK, in place: addresses, ports and MACs swapped (sent
/// from `our_mac`), sequence number `cookie`, acknowledging the SYN, with
/// `opts` as options, no IP options and no payload. Returns the length
/// of the IP packet; the frame may be longer (the rest is padding).
///
/// Fits in the SYN: each option offered is one the SYN carried, at least
/// as long.
pub fn answer_syn(
    frame: &mut [u8],
    p: &Packet,
    cookie: u32,
    opts: SynAckOptions,
    our_mac: MacAddr,
) -> usize {
    let client_isn = seq(frame, p);
    let (sport, dport) = (p.sport, p.dport);
    let mut o = [0u8; 8];
    let mut n = 0;
    if let Some(mss) = opts.mss {
        o[..4].copy_from_slice(&[2, 4, (mss >> 8) as u8, mss as u8]);
        n = 4;
    }
    if let Some(ws) = opts.wscale {
        o[n..n + 4].copy_from_slice(&[1, 3, 3, ws]);
        n += 4;
    }
    let peer = ethernet::src(frame);
    ethernet::set_macs(frame, peer, our_mac);
    let tcp_len = 20 + n;
    let l4 = p.l3 + 20;
    write_ip(frame, p.l3, tcp_len, TTL, p.dst, p.src);
    let t = &mut frame[l4..l4 + tcp_len];
    write_tcp(
        t,
        (dport, sport),
        (cookie, client_isn.wrapping_add(1)),
        l4::TCP_SYN | l4::TCP_ACK,
        SYN_ACK_WINDOW,
    );
    t[20..].copy_from_slice(&o[..n]);
    finish_tcp(frame, l4, tcp_len, p.dst, p.src);
    // What is left of the SYN is padding now: nothing of it is sent back.
    frame[l4 + tcp_len..].fill(0);
    20 + tcp_len
}

/// The SYN that opens a proxied connection to its real, as the client's
/// would have: from the client's socket, with its initial sequence number,
/// its window (unscaled, as in any SYN) and the options its cookie held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SynToReal {
    /// CIP:cport.
    pub client: SocketAddrV4,
    /// RIP:rport.
    pub real: SocketAddrV4,
    /// The client's initial sequence number.
    pub isn: u32,
    /// The window to offer.
    pub window: u16,
    /// TTL.
    pub ttl: u8,
    /// The options.
    pub opts: CookieOptions,
}

/// Writes `s` into `out`, MACs left zero for the caller to set. Returns
/// [`SYN_LEN`].
pub fn write_syn(s: &SynToReal, out: &mut [u8; SYN_LEN]) -> usize {
    out[..ethernet::HEADER_LEN].fill(0);
    out[12..14].copy_from_slice(&ethernet::ETHERTYPE_IPV4.to_be_bytes());
    let l3 = ethernet::HEADER_LEN;
    let l4 = l3 + 20;
    let (src, dst) = (*s.client.ip(), *s.real.ip());
    write_ip(out, l3, 28, s.ttl, src, dst);
    let t = &mut out[l4..];
    write_tcp(
        t,
        (s.client.port(), s.real.port()),
        (s.isn, 0),
        l4::TCP_SYN,
        s.window,
    );
    let mss = s.opts.mss;
    t[20..24].copy_from_slice(&[2, 4, (mss >> 8) as u8, mss as u8]);
    match s.opts.wscale {
        Some(ws) => t[24..28].copy_from_slice(&[1, 3, 3, ws]),
        None => t[24..28].copy_from_slice(&[1, 1, 1, 1]),
    }
    finish_tcp(out, l4, 28, src, dst);
    SYN_LEN
}

/// Turns the real's SYN-ACK `p` into the ACK that completes the proxied
/// handshake with it, in place: back to the real (MACs swapped, sent from
/// `our_mac`), from the client's address and port, acknowledging the
/// real's SYN, with window `window` and no options. Returns the length of
/// the IP packet.
pub fn answer_syn_ack(
    frame: &mut [u8],
    p: &Packet,
    client: SocketAddrV4,
    window: u16,
    our_mac: MacAddr,
) -> usize {
    let real_isn = seq(frame, p);
    let next = ack(frame, p);
    let (real_ip, real_port) = (p.src, p.sport);
    let peer = ethernet::src(frame);
    ethernet::set_macs(frame, peer, our_mac);
    let l4 = p.l3 + 20;
    write_ip(frame, p.l3, 20, TTL, *client.ip(), real_ip);
    write_tcp(
        &mut frame[l4..l4 + 20],
        (client.port(), real_port),
        (next, real_isn.wrapping_add(1)),
        l4::TCP_ACK,
        window,
    );
    finish_tcp(frame, l4, 20, *client.ip(), real_ip);
    frame[l4 + 20..].fill(0);
    40
}

/// Turns the real's segment `p` into a reset back to the real, in place
/// (MACs swapped, sent from `our_mac`), from the client's address and
/// port, with the sequence number the segment acknowledged: what a
/// client's stack answers an unacceptable ACK to its SYN with (RFC 9293
/// §3.10.7.3), which ends a TIME_WAIT that answered the SYN so. Returns
/// the length of the IP packet.
pub fn reset_to_real(
    frame: &mut [u8],
    p: &Packet,
    client: SocketAddrV4,
    our_mac: MacAddr,
) -> usize {
    let acked = ack(frame, p);
    let (real_ip, real_port) = (p.src, p.sport);
    let peer = ethernet::src(frame);
    ethernet::set_macs(frame, peer, our_mac);
    let l4 = p.l3 + 20;
    write_ip(frame, p.l3, 20, TTL, *client.ip(), real_ip);
    write_tcp(
        &mut frame[l4..l4 + 20],
        (client.port(), real_port),
        (acked, 0),
        l4::TCP_RST,
        0,
    );
    finish_tcp(frame, l4, 20, *client.ip(), real_ip);
    frame[l4 + 20..].fill(0);
    40
}

/// An IPv4 header without options for a TCP segment of `tcp_len` bytes.
fn write_ip(frame: &mut [u8], l3: usize, tcp_len: usize, ttl: u8, src: Ipv4Addr, dst: Ipv4Addr) {
    ipv4::write_header(
        &mut frame[l3..],
        (20 + tcp_len) as u16,
        0,
        ttl,
        ipv4::PROTO_TCP,
        src,
        dst,
    );
}

/// A TCP header without options (the data offset is 5 until the caller
/// adds some), checksum zero.
fn write_tcp(t: &mut [u8], ports: (u16, u16), seq_ack: (u32, u32), flags: u8, window: u16) {
    t[0..2].copy_from_slice(&ports.0.to_be_bytes());
    t[2..4].copy_from_slice(&ports.1.to_be_bytes());
    t[SEQ..SEQ + 4].copy_from_slice(&seq_ack.0.to_be_bytes());
    t[ACK..ACK + 4].copy_from_slice(&seq_ack.1.to_be_bytes());
    t[DATA_OFFSET] = 5 << 4;
    t[FLAGS] = flags;
    t[WINDOW..WINDOW + 2].copy_from_slice(&window.to_be_bytes());
    t[16..18].fill(0);
    t[URGENT..URGENT + 2].fill(0);
}

/// Sets the data offset to cover `tcp_len` bytes and computes the
/// checksum.
fn finish_tcp(frame: &mut [u8], l4: usize, tcp_len: usize, src: Ipv4Addr, dst: Ipv4Addr) {
    let t = &mut frame[l4..l4 + tcp_len];
    t[DATA_OFFSET] = ((tcp_len / 4) as u8) << 4;
    let c = l4::segment_checksum(src, dst, ipv4::PROTO_TCP, t, l4::TCP_CHECKSUM_OFFSET);
    t[16..18].copy_from_slice(&c.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow;
    use crate::syn_cookie::SynOptions;
    use crate::testing::{ip_checksum_ok, l4_checksum_ok, tcp_frame, TcpSpec};

    const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);
    const VIP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 10);
    const REAL: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 11);
    const OUR: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);

    fn syn_with_options() -> Vec<u8> {
        tcp_frame(&TcpSpec {
            src: SocketAddrV4::new(CLIENT, 40000),
            dst: SocketAddrV4::new(VIP, 80),
            seq: 1000,
            ack: 0,
            flags: l4::TCP_SYN,
            window: 64240,
            options: &[
                2, 4, 5, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7,
            ],
            payload: &[],
            ip_options: &[],
        })
    }

    #[test]
    fn a_quoted_reply_gets_the_reals_sequence_number_back() {
        let reply = tcp_frame(&TcpSpec {
            src: SocketAddrV4::new(VIP, 80),
            dst: SocketAddrV4::new(CLIENT, 40000),
            seq: 5000,
            ack: 77,
            flags: l4::TCP_ACK,
            window: 512,
            options: &[],
            payload: &[0x3c; 100],
            ip_options: &[],
        });
        let ip = &reply[ethernet::HEADER_LEN..];
        let router = Ipv4Addr::new(198, 51, 100, 254);
        // Quotes of 28 bytes (no TCP checksum), 40 and the whole packet.
        for n in [28, 40, ip.len()] {
            let mut f = flow::build::icmp_error(3, 4, [0, 0, 5, 0x78], router, VIP, &ip[..n]);
            let p = flow::parse(&f).unwrap();
            let e = p.icmp.unwrap().error.unwrap();
            unshift_quoted_seq(&mut f, &p, &e, 3000);
            let q = flow::parse(&f).unwrap();
            let e = q.icmp.unwrap().error.unwrap();
            assert_eq!(get32(&f, e.inner_l4 + SEQ), 2000, "quote of {n}");
            let msg = &f[q.l4..q.ip_end()];
            assert_eq!(
                u16::from_be_bytes([msg[2], msg[3]]),
                crate::testing::icmp_checksum(msg),
                "ICMP checksum, quote of {n}"
            );
            if n == ip.len() {
                let seg = &f[e.inner_l4..q.ip_end()];
                let c = crate::testing::l4_checksum(VIP, CLIENT, 6, seg);
                assert_eq!(
                    u16::from_be_bytes([seg[16], seg[17]]),
                    c,
                    "quoted TCP checksum"
                );
            }
        }
        // A quote that ends before the sequence number never gets here:
        // the parser refuses it.
        let f = flow::build::icmp_error(3, 4, [0; 4], router, VIP, &ip[..26]);
        assert!(flow::parse(&f).is_err());
    }

    #[test]
    fn a_syn_becomes_a_syn_ack_with_the_cookie_and_only_the_options_it_had() {
        let mut f = syn_with_options();
        let p = flow::parse(&f).unwrap();
        let opts = SynOptions::parse(&f[p.l4..]);
        assert_eq!(opts.mss, Some(1460));
        let n = answer_syn(
            &mut f,
            &p,
            0xdead_beef,
            SynAckOptions {
                mss: Some(1460),
                wscale: Some(7),
            },
            OUR,
        );
        let q = flow::parse(&f).unwrap();
        assert_eq!(q.total_len, n);
        assert_eq!((q.src, q.dst, q.sport, q.dport), (VIP, CLIENT, 80, 40000));
        assert_eq!(q.tcp_flags, l4::TCP_SYN | l4::TCP_ACK);
        assert_eq!((seq(&f, &q), ack(&f, &q)), (0xdead_beef, 1001));
        assert!(ip_checksum_ok(&f) && l4_checksum_ok(&f));
        assert_eq!(
            SynOptions::parse(&f[q.l4..]),
            SynOptions {
                mss: Some(1460),
                wscale: Some(7)
            }
        );
        assert_eq!(ethernet::src(&f), OUR);
    }

    #[test]
    fn a_syn_with_ip_options_and_no_tcp_options_is_answered_without_either() {
        let mut f = tcp_frame(&TcpSpec {
            src: SocketAddrV4::new(CLIENT, 40000),
            dst: SocketAddrV4::new(VIP, 80),
            seq: 7,
            ack: 0,
            flags: l4::TCP_SYN,
            window: 512,
            options: &[],
            payload: &[],
            ip_options: &[1, 1, 1, 0],
        });
        let p = flow::parse(&f).unwrap();
        let n = answer_syn(
            &mut f,
            &p,
            5,
            SynAckOptions {
                mss: None,
                wscale: None,
            },
            OUR,
        );
        assert_eq!(n, 40);
        let q = flow::parse(&f).unwrap();
        assert_eq!((q.ip_header_len, seq(&f, &q), ack(&f, &q)), (20, 5, 8));
        assert!(ip_checksum_ok(&f) && l4_checksum_ok(&f));
    }

    #[test]
    fn the_syn_to_the_real_carries_the_clients_isn_and_cookie_options() {
        let mut out = [0u8; SYN_LEN];
        let s = SynToReal {
            client: SocketAddrV4::new(CLIENT, 40000),
            real: SocketAddrV4::new(REAL, 8080),
            isn: 1000,
            window: rescale(600, 7, 0),
            ttl: 63,
            opts: CookieOptions {
                mss: 1460,
                wscale: Some(7),
            },
        };
        assert_eq!(write_syn(&s, &mut out), SYN_LEN);
        let q = flow::parse(&out).unwrap();
        assert_eq!(
            (q.src, q.dst, q.sport, q.dport),
            (CLIENT, REAL, 40000, 8080)
        );
        assert_eq!((seq(&out, &q), q.tcp_flags, q.ttl), (1000, l4::TCP_SYN, 63));
        assert_eq!(window(&out, &q), 65535, "600 << 7, capped");
        assert!(ip_checksum_ok(&out) && l4_checksum_ok(&out));
        let o = SynOptions::parse(&out[q.l4..]);
        assert_eq!((o.mss, o.wscale), (Some(1460), Some(7)));
    }

    #[test]
    fn the_reals_syn_ack_becomes_the_ack_that_completes_its_handshake() {
        let mut f = tcp_frame(&TcpSpec {
            src: SocketAddrV4::new(REAL, 8080),
            dst: SocketAddrV4::new(CLIENT, 40000),
            seq: 5_000_000,
            ack: 1001,
            flags: l4::TCP_SYN | l4::TCP_ACK,
            window: 65160,
            options: &[2, 4, 5, 0xb4, 1, 3, 3, 7],
            payload: &[],
            ip_options: &[],
        });
        let p = flow::parse(&f).unwrap();
        let client = SocketAddrV4::new(CLIENT, 40000);
        assert_eq!(answer_syn_ack(&mut f, &p, client, 502, OUR), 40);
        let q = flow::parse(&f).unwrap();
        assert_eq!(
            (q.src, q.dst, q.sport, q.dport),
            (CLIENT, REAL, 40000, 8080)
        );
        assert_eq!((seq(&f, &q), ack(&f, &q)), (1001, 5_000_001));
        assert_eq!((q.tcp_flags, window(&f, &q)), (l4::TCP_ACK, 502));
        assert!(ip_checksum_ok(&f) && l4_checksum_ok(&f));
    }

    #[test]
    fn shifts_keep_the_checksum_right() {
        let mut f = tcp_frame(&TcpSpec {
            src: SocketAddrV4::new(REAL, 8080),
            dst: SocketAddrV4::new(CLIENT, 40000),
            seq: 0xffff_fff0,
            ack: 1001,
            flags: l4::TCP_ACK | l4::TCP_PSH,
            window: 100,
            options: &[],
            payload: b"hello",
            ip_options: &[],
        });
        let p = flow::parse(&f).unwrap();
        shift_seq(&mut f, &p, 0x20);
        shift_ack(&mut f, &p, 1);
        set_window(&mut f, &p, rescale(100, 9, 7));
        assert_eq!((seq(&f, &p), ack(&f, &p)), (0x10, 1000));
        assert_eq!((window(&f, &p), payload_len(&f, &p)), (400, 5));
        assert!(l4_checksum_ok(&f));
        assert_eq!(rescale(u16::MAX, 14, 0), u16::MAX);
        assert_eq!(rescale(1, 0, 7), 0);
    }
}
