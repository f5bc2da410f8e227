//! The SYN proxy: a SYN is answered with a cookie and leaves nothing
//! behind; only an ACK carrying a valid cookie opens a connection to a
//! real, whose handshake the appliance completes; after it, every packet's
//! sequence numbers and windows are translated both ways. `auto` services
//! are proxied only while half-open connections pile up.

mod common;

use common::*;
use sluice_core::flow::{self, Packet};
use sluice_core::handshake;
use sluice_core::local::Handled;
use sluice_core::syn_cookie::SynOptions;
use sluice_core::testing::{ip_checksum_ok, l4_checksum_ok};
use sluice_core::DropReason;
use sluice_lb::Action;
use sluice_model::SynProxyMode;
use std::net::SocketAddrV4;

const THRESHOLD: u32 = 100;

fn proxied(mode: SynProxyMode) -> Lab {
    let mut spec = nat_spec("rr");
    spec.syn_proxy = mode;
    let mut lab = Lab::with_syn_threshold(&[slotted(spec)], THRESHOLD);
    lab.learn_nat_reals();
    lab.learn(CLIENT_IP);
    lab
}

fn parsed(f: &[u8]) -> Packet {
    let p = flow::parse(f).expect("parses");
    assert!(ip_checksum_ok(f) && l4_checksum_ok(f), "checksums");
    p
}

/// (seq, ack, window) of a TCP frame.
fn numbers(f: &[u8]) -> (u32, u32, u16) {
    let p = parsed(f);
    (
        handshake::seq(f, &p),
        handshake::ack(f, &p),
        handshake::window(f, &p),
    )
}

fn seq_ack(f: &[u8]) -> (u32, u32) {
    let (s, a, _) = numbers(f);
    (s, a)
}

fn syns_sent(lab: &mut Lab) -> Vec<(Action, Vec<u8>)> {
    let mut v = Vec::new();
    lab.fwd.take_syns(|a, f| v.push((a, f.to_vec())));
    v
}

/// The client's SYN (MSS 1460, window scale 7), answered with a cookie:
/// returns the cookie.
fn cookie_for(lab: &mut Lab, from: SocketAddrV4, isn: u32) -> u32 {
    let mut syn = Tcp::new(from, VIP, SYN);
    syn.seq = isn;
    syn.options = vec![2, 4, 0x05, 0xb4, 1, 3, 3, 7];
    let (a, f) = lab.run(&syn.frame(), 0);
    assert_eq!(a, Action::Reply(Handled::SynCookie));
    let p = parsed(&f);
    assert_eq!(
        (p.src, p.dst, p.sport, p.dport),
        (VIP_IP, *from.ip(), VPORT, from.port())
    );
    assert_eq!(p.tcp_flags, SYN | ACK);
    assert_eq!((eth_dst(&f), eth_src(&f)), (mac_of(*from.ip()), PORT0_MAC));
    let o = SynOptions::parse(&f[p.l4..p.ip_end()]);
    assert_eq!((o.mss, o.wscale), (Some(1460), Some(7)));
    let (cookie, acked, _) = numbers(&f);
    assert_eq!(acked, isn.wrapping_add(1));
    cookie
}

fn client_segment(from: SocketAddrV4, seq: u32, ack: u32, flags: u8, data: &[u8]) -> Vec<u8> {
    let mut t = Tcp::new(from, VIP, flags).payload(data);
    t.seq = seq;
    t.ack = ack;
    t.options.clear();
    t.frame()
}

fn real_segment(i: usize, to: SocketAddrV4, seq: u32, ack: u32, flags: u8, opts: &[u8]) -> Vec<u8> {
    let mut t = Tcp::new(nat_real(i), to, flags);
    t.seq = seq;
    t.ack = ack;
    t.options = opts.to_vec();
    t.frame()
}

#[test]
fn a_proxied_connection_reaches_its_real_only_after_the_clients_ack_and_is_translated_both_ways() {
    let mut lab = proxied(SynProxyMode::On);
    let c = client(40000);
    let isn = 0xffff_fff0; // wraps during the connection
    let cookie = cookie_for(&mut lab, c, isn);
    assert_eq!(lab.fwd.table().len(), 0, "a SYN leaves nothing behind");
    assert!(syns_sent(&mut lab).is_empty());
    assert_eq!(lab.stats().syn_cookies_sent.get(), 1);

    // The ACK proves the client's address: the real gets the SYN.
    let ack = client_segment(c, isn.wrapping_add(1), cookie.wrapping_add(1), ACK, &[]);
    let (a, _) = lab.run(&ack, 0);
    assert_eq!(a, Action::Consumed(Handled::Handshake));
    assert_eq!(lab.fwd.table().len(), 1);
    assert_eq!(lab.stats().syn_cookies_valid.get(), 1);
    let syns = syns_sent(&mut lab);
    assert_eq!(syns.len(), 1);
    assert_eq!(syns[0].0, Action::Forward { port: 1 });
    let s = &syns[0].1;
    let p = parsed(s);
    let real = nat_index(s);
    assert_eq!((p.src, p.sport, p.tcp_flags), (*c.ip(), c.port(), SYN));
    assert_eq!(numbers(s).0, isn, "the client's own ISN");
    let o = SynOptions::parse(&s[p.l4..p.ip_end()]);
    assert_eq!((o.mss, o.wscale), (Some(1460), Some(7)));
    assert_eq!(eth_dst(s), mac_of(*nat_real(real).ip()));

    // The request that follows at once waits for the real.
    let get = client_segment(
        c,
        isn.wrapping_add(1),
        cookie.wrapping_add(1),
        ACK | PSH,
        b"GET /",
    );
    assert_eq!(lab.run(&get, 0).0, Action::Park);

    // The real answers (window scale 9): it gets the handshake's ACK.
    let r_isn = 0x1234_5678;
    let syn_ack = real_segment(
        real,
        c,
        r_isn,
        isn.wrapping_add(1),
        SYN | ACK,
        &[1, 3, 3, 9],
    );
    let (a, f) = lab.run(&syn_ack, 1);
    assert_eq!(a, Action::Reply(Handled::Handshake));
    let p = parsed(&f);
    assert_eq!(
        (p.src, p.dst, p.dport, p.tcp_flags),
        (*c.ip(), *nat_real(real).ip(), nat_real(real).port(), ACK)
    );
    assert_eq!(seq_ack(&f), (isn.wrapping_add(1), r_isn + 1));
    assert_eq!(lab.fwd.handshakes_completed(), 1);

    // The parked request goes now, acknowledging the real's numbers.
    let (a, f) = lab.run(&get, 0);
    assert_eq!(a, Action::Forward { port: 1 });
    assert_eq!(nat_index(&f), real);
    assert_eq!(seq_ack(&f), (isn.wrapping_add(1), r_isn + 1));

    // The real's answer reaches the client in the cookie's numbers, its
    // window rescaled from 2^9 to the 2^7 the client was offered.
    let mut reply = Tcp::new(nat_real(real), c, ACK | PSH).payload(b"200 OK");
    reply.seq = r_isn + 1;
    reply.ack = isn.wrapping_add(6);
    reply.options.clear();
    let (a, f) = lab.run(&reply.frame(), 1);
    assert_eq!(a, Action::Forward { port: 0 });
    let p = parsed(&f);
    assert_eq!((p.src, p.sport), (VIP_IP, VPORT));
    let (seq, ack, win) = numbers(&f);
    assert_eq!((seq, ack), (cookie.wrapping_add(1), isn.wrapping_add(6)));
    assert_eq!(win, handshake::rescale(64_240, 9, 7));
    assert_eq!(
        lab.stats().half_open.get(),
        0,
        "a proxied connection is never half-open"
    );

    // A router on the client's side cannot forward that reply: its error
    // reaches the real quoting the real's own sequence number, which the
    // real checks before it lowers its path MTU.
    let sent = &f[14..14 + p.total_len];
    let router = std::net::Ipv4Addr::new(192, 0, 2, 254);
    for n in [28, sent.len()] {
        let err = icmp_error_frame(3, 4, [0, 0, 2, 0], router, VIP_IP, &sent[..n], PORT0_MAC);
        let (a, g) = lab.run(&err, 0);
        assert_eq!(a, Action::Forward { port: 1 }, "quote of {n}");
        let q = flow::parse(&g).expect("parses");
        let e = q.icmp.unwrap().error.unwrap();
        assert_eq!(q.dst, *nat_real(real).ip());
        let quoted_seq = u32::from_be_bytes(g[e.inner_l4 + 4..e.inner_l4 + 8].try_into().unwrap());
        assert_eq!(quoted_seq, r_isn + 1, "quote of {n}");
        let m = &g[q.l4..q.ip_end()];
        assert_eq!(u16::from_be_bytes([m[2], m[3]]), icmp_checksum(m));
    }
}

#[test]
fn an_ack_without_a_valid_cookie_opens_nothing_and_cookies_expire() {
    let mut lab = proxied(SynProxyMode::On);
    let c = client(40001);
    let cookie = cookie_for(&mut lab, c, 1000);
    for (seq, ack) in [
        (1001, cookie),
        (1002, cookie.wrapping_add(1)),
        (1001, cookie ^ 0x100),
    ] {
        let forged = client_segment(c, seq, ack, ACK, &[]);
        assert_eq!(
            lab.run(&forged, 0).0,
            Action::Drop(DropReason::NoConnection)
        );
    }
    // Another client cannot use it.
    let other = client_segment(client(40002), 1001, cookie.wrapping_add(1), ACK, &[]);
    assert_eq!(lab.run(&other, 0).0, Action::Drop(DropReason::NoConnection));
    assert_eq!(lab.stats().syn_cookies_invalid.get(), 4);
    // Nor the client itself, three minutes later.
    lab.now += 180_000;
    let late = client_segment(c, 1001, cookie.wrapping_add(1), ACK, &[]);
    assert_eq!(lab.run(&late, 0).0, Action::Drop(DropReason::NoConnection));
    assert_eq!(lab.fwd.table().len(), 0);
    assert!(syns_sent(&mut lab).is_empty());
}

#[test]
fn a_syn_without_options_is_answered_without_and_the_real_is_told_the_smallest_mss() {
    let mut lab = proxied(SynProxyMode::On);
    let c = client(40003);
    let mut syn = Tcp::new(c, VIP, SYN);
    syn.options.clear();
    let (a, f) = lab.run(&syn.frame(), 0);
    assert_eq!(a, Action::Reply(Handled::SynCookie));
    let p = parsed(&f);
    assert_eq!(
        p.total_len, 40,
        "no options: what hping3 sends gets none back"
    );
    let cookie = numbers(&f).0;
    let ack = client_segment(c, syn.seq + 1, cookie.wrapping_add(1), ACK, &[]);
    assert_eq!(lab.run(&ack, 0).0, Action::Consumed(Handled::Handshake));
    let s = syns_sent(&mut lab).pop().unwrap().1;
    let p = parsed(&s);
    let o = SynOptions::parse(&s[p.l4..p.ip_end()]);
    assert_eq!((o.mss, o.wscale), (Some(536), None));
}

#[test]
fn a_real_refusing_a_proxied_connection_resets_the_client_and_counts_as_a_refusal() {
    let mut lab = proxied(SynProxyMode::On);
    let c = client(40004);
    let cookie = cookie_for(&mut lab, c, 77);
    let ack = client_segment(c, 78, cookie.wrapping_add(1), ACK, &[]);
    lab.run(&ack, 0);
    let real = nat_index(&syns_sent(&mut lab)[0].1);
    let rst = real_segment(real, c, 0, 78, RST | ACK, &[]);
    let (a, f) = lab.run(&rst, 1);
    assert_eq!(a, Action::Forward { port: 0 });
    let p = parsed(&f);
    assert_eq!((p.src, p.tcp_flags & RST), (VIP_IP, RST));
    assert_eq!(
        numbers(&f).0,
        cookie.wrapping_add(1),
        "in the client's window"
    );
    assert_eq!(lab.stats().real(REAL_SLOTS[real]).resets.get(), 1);
}

#[test]
fn a_time_wait_on_the_real_that_answers_the_syn_with_an_ack_is_reset_and_the_syn_sent_again() {
    let mut lab = proxied(SynProxyMode::On);
    let c = client(40006);
    let cookie = cookie_for(&mut lab, c, 500);
    let ack = client_segment(c, 501, cookie.wrapping_add(1), ACK, &[]);
    lab.run(&ack, 0);
    let syn = syns_sent(&mut lab);
    let real = nat_index(&syn[0].1);
    // The real still holds these addresses and ports in TIME_WAIT from an
    // earlier connection whose sequence numbers were higher: it answers
    // with an ACK of that connection's end.
    let tw_ack = real_segment(real, c, 9_000, 70_000, ACK, &[]);
    for round in 1..=3 {
        let (a, f) = lab.run(&tw_ack, 1);
        assert_eq!(a, Action::Reply(Handled::Handshake), "round {round}");
        let p = parsed(&f);
        assert_eq!(
            (p.src, p.sport, p.dst, p.dport, p.tcp_flags),
            (
                *c.ip(),
                c.port(),
                *nat_real(real).ip(),
                nat_real(real).port(),
                RST
            ),
            "a reset from the client"
        );
        assert_eq!(numbers(&f).0, 70_000, "at the sequence number acknowledged");
        assert_eq!(
            (eth_dst(&f), eth_src(&f)),
            (mac_of(*nat_real(real).ip()), PORT1_MAC)
        );
        let again = syns_sent(&mut lab);
        assert_eq!(again.len(), 1, "the SYN again, round {round}");
        assert_eq!(again[0].1, syn[0].1);
    }
    // Bounded: after three, it waits for the client's next packet.
    assert_eq!(
        lab.run(&tw_ack, 1).0,
        Action::Drop(DropReason::HandshakePending)
    );
    assert!(syns_sent(&mut lab).is_empty());
    // The real answers at last.
    let syn_ack = real_segment(real, c, 1, 501, SYN | ACK, &[]);
    assert_eq!(lab.run(&syn_ack, 1).0, Action::Reply(Handled::Handshake));
    assert_eq!(lab.stats().syn_proxy_handshakes.get(), 1);
}

#[test]
fn while_the_real_has_not_answered_its_other_packets_are_dropped_and_a_late_client_packet_resends_the_syn(
) {
    let mut lab = proxied(SynProxyMode::On);
    let c = client(40005);
    let cookie = cookie_for(&mut lab, c, 5);
    let ack = client_segment(c, 6, cookie.wrapping_add(1), ACK, &[]);
    lab.run(&ack, 0);
    let real = nat_index(&syns_sent(&mut lab)[0].1);
    // A stray ACK from the real, or one for another ISN: not the answer.
    let stray = real_segment(real, c, 9, 6, ACK, &[]);
    assert_eq!(
        lab.run(&stray, 1).0,
        Action::Drop(DropReason::HandshakePending)
    );
    let wrong = real_segment(real, c, 9, 99, SYN | ACK, &[]);
    assert_eq!(
        lab.run(&wrong, 1).0,
        Action::Drop(DropReason::HandshakePending)
    );
    // An empty ACK from the client has nothing to deliver; a second later
    // it also sends the SYN again.
    assert_eq!(
        lab.run(&ack, 0).0,
        Action::Drop(DropReason::HandshakePending)
    );
    assert!(syns_sent(&mut lab).is_empty());
    lab.now += 1000;
    assert_eq!(
        lab.run(&ack, 0).0,
        Action::Drop(DropReason::HandshakePending)
    );
    assert_eq!(syns_sent(&mut lab).len(), 1);
    // The real never answers: the connection expires as an unanswered SYN
    // (passive health hears of it) and nothing is left.
    lab.now += 120_000;
    lab.housekeeping();
    assert_eq!(lab.fwd.table().len(), 0);
    assert_eq!(lab.stats().real(REAL_SLOTS[real]).syn_timeouts.get(), 1);
}

#[test]
fn auto_proxies_only_while_half_open_connections_pile_up() {
    let mut lab = proxied(SynProxyMode::Auto);
    let threshold = THRESHOLD as u16;
    // A flood of spoofed SYNs: each real answers its share with a SYN-ACK
    // (as a NAT real does, through us), and the client never completes
    // the handshake, so every entry stays half-open.
    for port in 0..threshold {
        let from = SocketAddrV4::new(CLIENT_IP, 1000 + port);
        let i = lab.syn_to_nat(from);
        let (a, _) = lab.reply_from(i, from, SYN | ACK);
        assert_eq!(a, Action::Forward { port: 0 });
    }
    assert_eq!(lab.stats().half_open.get(), u64::from(threshold));
    let (a, _) = lab.run(&Tcp::new(client(50000), VIP, SYN).frame(), 0);
    assert_eq!(a, Action::Reply(Handled::SynCookie));
    lab.housekeeping();
    assert_eq!(lab.stats().syn_proxy_engaged.get(), 1);
    // A client that completes its handshake is no longer half-open.
    let (a, _) = lab.ack_from(client(1000));
    assert_eq!(a, Action::Forward { port: 1 });
    assert_eq!(lab.stats().half_open.get(), u64::from(threshold) - 1);
    // The flood stops; the half-open entries expire; after a quiet second
    // new connections go straight to the reals again.
    lab.now += 61_000;
    while !lab.housekeeping().caught_up {}
    assert_eq!(lab.stats().half_open.get(), 0);
    lab.now += 1_000;
    lab.housekeeping();
    assert_eq!(lab.stats().syn_proxy_engaged.get(), 0);
    lab.syn_to_nat(client(50001));
}

#[test]
fn proxying_is_refused_for_dr_reals_and_udp_and_never_used_for_them() {
    let mut dr = dr_spec("rr");
    dr.syn_proxy = SynProxyMode::On;
    let e = build_snapshot(&[slotted(dr.clone())], &[]).unwrap_err();
    assert!(e.contains("needs NAT reals"), "{e}");
    let mut udp = udp_nat_spec();
    udp.syn_proxy = SynProxyMode::On;
    assert!(build_snapshot(&[slotted(udp)], &[]).is_err());
    // Left at auto, a DR service is never proxied, whatever the flood.
    dr.syn_proxy = SynProxyMode::Auto;
    let mut lab = Lab::with_syn_threshold(&[slotted(dr)], THRESHOLD);
    lab.learn_dr_reals();
    for port in 0..2 * THRESHOLD as u16 {
        let (a, _) = lab.run(&Tcp::new(client(port + 1), VIP, SYN).frame(), 0);
        assert!(matches!(a, Action::Forward { .. }), "{a:?}");
    }
}
