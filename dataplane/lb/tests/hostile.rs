//! Packets an attacker sends: frames for other MACs, martian and land
//! sources, invalid TCP flags, bad checksums, UDP lengths that lie, ARP
//! poisoning across segments and claims on our addresses, replies and ICMP
//! errors spoofed from the wrong side. Each is dropped under its reason and
//! leaves no connection, no scheduler move and no health signal behind,
//! while the legitimate packet next to it still goes through.

mod common;

use common::*;
use sluice_core::{DropReason, MacAddr};
use sluice_lb::Action;
use std::net::{Ipv4Addr, SocketAddrV4};

fn dropped(lab: &mut Lab, frame: &[u8], rx: usize, why: DropReason) {
    let (a, _) = lab.run(frame, rx);
    assert_eq!(a, Action::Drop(why));
}

#[test]
fn a_syn_in_a_frame_for_another_mac_is_not_balanced() {
    let mut lab = Lab::nat("rr");
    let other_host = mac_of(Ipv4Addr::new(192, 0, 2, 99));
    for dst in [
        other_host,
        MacAddr::BROADCAST,
        MacAddr([0x01, 0, 0x5e, 0, 0, 1]),
    ] {
        let syn = Tcp::new(client(40000), VIP, SYN).macs(dst, mac_of(CLIENT_IP));
        dropped(&mut lab, &syn.frame(), 0, DropReason::NotOurMac);
    }
    // An ARP request for the VIP sent to another host's MAC is not ours
    // to answer either.
    let cmac = mac_of(CLIENT_IP);
    let arp = arp_frame(1, other_host, cmac, CLIENT_IP, MacAddr::ZERO, VIP_IP);
    dropped(&mut lab, &arp, 0, DropReason::NotOurMac);
    assert_eq!(lab.fwd.table().len(), 0);
    lab.syn_to_nat(client(40000));
    assert_eq!(lab.fwd.table().len(), 1);
}

#[test]
fn martian_and_land_sources_never_reach_a_real() {
    let mut lab = Lab::nat("rr");
    for src in [
        "255.255.255.255",
        "192.0.2.255",
        "198.51.100.255",
        "224.0.0.1",
        "0.0.0.0",
        "127.0.0.1",
        "192.0.2.1",
        "198.51.100.1",
        "192.0.2.100",
    ] {
        let src = SocketAddrV4::new(src.parse().unwrap(), 40000);
        let syn = Tcp::new(src, VIP, SYN).macs(PORT0_MAC, mac_of(CLIENT_IP));
        dropped(&mut lab, &syn.frame(), 0, DropReason::MartianSource);
        let udp = ether(
            PORT0_MAC,
            mac_of(CLIENT_IP),
            ETHERTYPE_IPV4,
            &udp_ip(src, VIP, b"x", 64, true),
        );
        dropped(&mut lab, &udp, 0, DropReason::MartianSource);
    }
    assert_eq!(lab.fwd.table().len(), 0);
    assert_eq!(lab.stats().service(SVC_SLOT).connections.get(), 0);
}

#[test]
fn flag_combinations_no_tcp_sends_are_dropped() {
    let mut lab = Lab::nat("rr");
    let xmas = FIN | SYN | RST | PSH | ACK | 0x20;
    for flags in [
        0,
        SYN | FIN,
        SYN | RST,
        FIN,
        xmas,
        FIN | PSH | 0x20,
        SYN | FIN | ACK,
    ] {
        let f = Tcp::new(client(40001), VIP, flags).frame();
        dropped(&mut lab, &f, 0, DropReason::BadTcpFlags);
    }
    assert_eq!(lab.fwd.table().len(), 0);
    // PSH does not matter: SYN+PSH opens a connection as SYN does.
    let (a, _) = lab.run(&Tcp::new(client(40001), VIP, SYN | PSH).frame(), 0);
    assert_eq!(a, Action::Forward { port: 1 });
    // A real's reply with invalid flags is dropped too.
    let (a, _) = lab.reply_from(0, client(40001), SYN | FIN | ACK);
    assert_eq!(a, Action::Drop(DropReason::BadTcpFlags));
}

/// `f` with one bit of its TCP or UDP checksum flipped.
fn bad_checksum(mut f: Vec<u8>, offset_in_l4: usize) -> Vec<u8> {
    f[L4 + offset_in_l4] ^= 0x01;
    f
}

#[test]
fn a_syn_with_a_bad_checksum_opens_nothing_and_counts_no_timeout() {
    let mut lab = Lab::nat("rr");
    for port in 40000..40010 {
        let f = bad_checksum(Tcp::new(client(port), VIP, SYN).frame(), 16);
        dropped(&mut lab, &f, 0, DropReason::BadL4Checksum);
    }
    assert_eq!(lab.fwd.table().len(), 0);
    // Long after: no SYN went unanswered, as far as passive health knows.
    lab.now += 600_000;
    lab.housekeeping();
    for r in REAL_SLOTS {
        assert_eq!(lab.stats().real(r).syn_timeouts.get(), 0);
    }
    // The round robin did not move: the next three SYNs go to 0, 1, 2.
    let picks: Vec<usize> = (0..3).map(|i| lab.syn_to_nat(client(41000 + i))).collect();
    assert_eq!(picks, [0, 1, 2]);
}

#[test]
fn a_udp_datagram_with_a_bad_checksum_opens_no_flow() {
    let mut lab = Lab::new(&[slotted(udp_nat_spec())]);
    lab.learn_nat_reals();
    let vip = SocketAddrV4::new(VIP_IP, 53);
    let ip = udp_ip(client(5000), vip, b"query", 64, true);
    let good = ether(PORT0_MAC, mac_of(CLIENT_IP), ETHERTYPE_IPV4, &ip);
    dropped(
        &mut lab,
        &bad_checksum(good.clone(), 6),
        0,
        DropReason::BadL4Checksum,
    );
    assert_eq!(lab.fwd.table().len(), 0);
    // No checksum at all (0) is allowed in IPv4.
    let ip = udp_ip(client(5001), vip, b"query", 64, false);
    let none = ether(PORT0_MAC, mac_of(CLIENT_IP), ETHERTYPE_IPV4, &ip);
    assert_eq!(lab.run(&none, 0).0, Action::Forward { port: 1 });
    assert_eq!(lab.run(&good, 0).0, Action::Forward { port: 1 });
    assert_eq!(lab.fwd.table().len(), 2);
}

#[test]
fn udp_lengths_that_lie_are_dropped() {
    let mut lab = Lab::new(&[slotted(udp_nat_spec())]);
    lab.learn_nat_reals();
    let vip = SocketAddrV4::new(VIP_IP, 53);
    for len in [0u16, 7, 14, 200] {
        let mut ip = udp_ip(client(5000), vip, b"query", 64, false);
        ip[20 + 4..20 + 6].copy_from_slice(&len.to_be_bytes());
        let f = ether(PORT0_MAC, mac_of(CLIENT_IP), ETHERTYPE_IPV4, &ip);
        dropped(&mut lab, &f, 0, DropReason::BadUdpLength);
    }
    assert_eq!(lab.fwd.table().len(), 0);
}

#[test]
fn a_forged_reset_from_the_real_side_feeds_no_health_and_ends_nothing() {
    let mut lab = Lab::nat("rr");
    let c = client(40000);
    let i = lab.syn_to_nat(c);
    let rst = bad_checksum(Tcp::new(nat_real(i), c, RST | ACK).frame(), 16);
    dropped(&mut lab, &rst, 1, DropReason::BadL4Checksum);
    assert_eq!(lab.stats().real(REAL_SLOTS[i]).resets.get(), 0);
    // The connection is still there: the real's genuine reset answering
    // the SYN goes through, and counts as a refused connection.
    let (a, f) = lab.reply_from(i, c, RST | ACK);
    assert_eq!(a, Action::Forward { port: 0 });
    assert_eq!(ip_src(&f), VIP_IP);
    assert_eq!(lab.stats().real(REAL_SLOTS[i]).resets.get(), 1);
}

#[test]
fn only_a_reset_answering_the_syn_counts_as_a_refusal() {
    // A forged segment (an ACK with a wrong sequence number) makes a real
    // answer with a reset after it has accepted the connection: that is
    // not the real failing, and must not feed passive health.
    let mut lab = Lab::nat("rr");
    let c = client(40000);
    let i = lab.syn_to_nat(c);
    assert_eq!(
        lab.reply_from(i, c, SYN | ACK).0,
        Action::Forward { port: 0 }
    );
    assert_eq!(lab.ack_from(c).0, Action::Forward { port: 1 });
    assert_eq!(lab.reply_from(i, c, RST).0, Action::Forward { port: 0 });
    assert_eq!(lab.stats().real(REAL_SLOTS[i]).resets.get(), 0);
    // A reset instead of a SYN-ACK is a refusal.
    let c2 = client(40001);
    let j = lab.syn_to_nat(c2);
    assert_eq!(
        lab.reply_from(j, c2, RST | ACK).0,
        Action::Forward { port: 0 }
    );
    assert_eq!(lab.stats().real(REAL_SLOTS[j]).resets.get(), 1);
}

#[test]
fn arp_on_one_segment_cannot_redirect_another() {
    let mut lab = Lab::nat("rr");
    let attacker = MacAddr([0x02, 0xba, 0xd0, 0, 0, 1]);
    let real0 = *nat_real(0).ip();
    // "who-has 192.0.2.1 tell 198.51.100.11" from the attacker, on the
    // client segment; and its unsolicited reply form.
    for op in [1, 2] {
        let poison = arp_frame(
            op,
            MacAddr::BROADCAST,
            attacker,
            real0,
            MacAddr::ZERO,
            PORT0_IP,
        );
        dropped(&mut lab, &poison, 0, DropReason::ArpWrongSegment);
        let unicast = arp_frame(op, PORT0_MAC, attacker, real0, MacAddr::ZERO, PORT0_IP);
        dropped(&mut lab, &unicast, 0, DropReason::ArpWrongSegment);
    }
    assert_eq!(lab.fwd.neighbour(real0, lab.now), Some(mac_of(real0)));
    // Real 0's traffic still goes to real 0's MAC.
    let (a, f) = lab.run(&Tcp::new(client(40000), VIP, SYN).frame(), 0);
    assert_eq!(a, Action::Forward { port: 1 });
    assert_eq!(nat_index(&f), 0);
    assert_eq!(eth_dst(&f), mac_of(real0));
    // The same ARP on the real's own segment is how a real's MAC changes.
    let moved = MacAddr([0x02, 0x10, 0, 0, 0, 0x11]);
    let arp = arp_frame(1, MacAddr::BROADCAST, moved, real0, MacAddr::ZERO, PORT1_IP);
    assert!(matches!(lab.run(&arp, 1).0, Action::Reply(_)));
    assert_eq!(lab.fwd.neighbour(real0, lab.now), Some(moved));
}

#[test]
fn arp_claiming_a_vip_or_an_appliance_address_is_ignored() {
    let mut lab = Lab::nat("rr");
    let attacker = MacAddr([0x02, 0xba, 0xd0, 0, 0, 1]);
    for (ip, rx) in [(VIP_IP, 0), (PORT0_IP, 0), (PORT1_IP, 1), (VIP_IP, 1)] {
        // Gratuitous request and reply.
        for op in [1, 2] {
            let garp = arp_frame(op, MacAddr::BROADCAST, attacker, ip, MacAddr::ZERO, ip);
            dropped(&mut lab, &garp, rx, DropReason::ArpClaimsOurAddress);
        }
        assert_eq!(lab.fwd.neighbour(ip, lab.now), None);
    }
}

#[test]
fn a_reply_spoofed_from_the_client_side_is_dropped() {
    let mut lab = Lab::nat("rr");
    let c = client(40000);
    let i = lab.syn_to_nat(c);
    // The real's address and port, sent from the client segment.
    let spoof = Tcp::new(nat_real(i), c, ACK).macs(PORT0_MAC, mac_of(CLIENT_IP));
    dropped(&mut lab, &spoof.frame(), 0, DropReason::SpoofedReply);
    let rst = Tcp::new(nat_real(i), c, RST).macs(PORT0_MAC, mac_of(CLIENT_IP));
    dropped(&mut lab, &rst.frame(), 0, DropReason::SpoofedReply);
    assert_eq!(lab.stats().real(REAL_SLOTS[i]).resets.get(), 0);
    assert_eq!(lab.fwd.table().len(), 1);
    // The real's own reply still goes through.
    assert_eq!(
        lab.reply_from(i, c, SYN | ACK).0,
        Action::Forward { port: 0 }
    );
}

#[test]
fn an_icmp_error_from_the_wrong_side_is_dropped() {
    let mut lab = Lab::nat("rr");
    let c = client(40000);
    let i = lab.syn_to_nat(c);
    // "Port unreachable" quoting the client's packet to the real: it can
    // only come from the real's side; sent from the client side, dropped.
    let quoted = &Tcp::new(c, nat_real(i), SYN).ip()[..28];
    let forged = icmp_error_frame(3, 3, [0; 4], CLIENT_IP, CLIENT_IP, quoted, PORT0_MAC);
    let forged = {
        let mut f = forged;
        f[6..12].copy_from_slice(&mac_of(Ipv4Addr::new(192, 0, 2, 66)).0);
        f
    };
    dropped(&mut lab, &forged, 0, DropReason::SpoofedReply);
    // From the real, on its segment, it is translated for the client.
    let real_ip = *nat_real(i).ip();
    let genuine = icmp_error_frame(3, 3, [0; 4], real_ip, CLIENT_IP, quoted, PORT1_MAC);
    assert_eq!(lab.run(&genuine, 1).0, Action::Forward { port: 0 });
}

#[test]
fn direct_routing_never_forwards_a_ttl_of_zero() {
    // Found by fuzzing: DR leaves the TTL as it is, so a TTL of 0 went out.
    let mut lab = Lab::new(&[slotted(dr_spec("rr"))]);
    lab.learn_dr_reals();
    lab.learn(CLIENT_IP);
    let f = Tcp::new(client(40000), VIP, SYN).ttl(0).frame();
    dropped(&mut lab, &f, 0, DropReason::TtlExceeded);
    assert_eq!(lab.fwd.table().len(), 0);
    let (a, out) = lab.run(&Tcp::new(client(40001), VIP, SYN).ttl(1).frame(), 0);
    assert_eq!(a, Action::Forward { port: 0 });
    assert_eq!(ttl(&out), 1, "DR leaves the TTL to the real");
}

/// Every time-exceeded error the forwarder queued: (port, frame).
fn time_exceeded(lab: &mut Lab) -> Vec<(usize, Vec<u8>)> {
    let mut out = Vec::new();
    lab.fwd
        .take_icmp_errors(|_, port, f| out.push((port, f.to_vec())));
    out
}

#[test]
fn a_packet_whose_ttl_runs_out_here_gets_time_exceeded_like_a_routers() {
    let mut lab = Lab::nat("rr");
    let syn = Tcp::new(client(40000), VIP, SYN).ttl(1).frame();
    dropped(&mut lab, &syn, 0, DropReason::TtlExceeded);
    let sent = time_exceeded(&mut lab);
    assert_eq!(sent.len(), 1);
    let (port, f) = &sent[0];
    assert_eq!(*port, 0, "back out of the port it came in on");
    assert_eq!((eth_dst(f), eth_src(f)), (mac_of(CLIENT_IP), PORT0_MAC));
    assert_eq!(
        (ip_src(f), ip_dst(f), ip_proto(f)),
        (PORT0_IP, CLIENT_IP, 1)
    );
    assert_checksums(f);
    let m = l4(f);
    assert_eq!((m[0], m[1]), (11, 0));
    assert_eq!(&m[8..], &syn[L3..L3 + 28], "quotes the header and 8 bytes");
    // A real's reply that expires is reported to the real, from the
    // appliance's address on its side.
    let c = client(40001);
    let i = lab.syn_to_nat(c);
    let reply = Tcp::new(nat_real(i), c, SYN | ACK).ttl(1).frame();
    dropped(&mut lab, &reply, 1, DropReason::TtlExceeded);
    let sent = time_exceeded(&mut lab);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, 1);
    assert_eq!(
        (ip_src(&sent[0].1), ip_dst(&sent[0].1)),
        (PORT1_IP, *nat_real(i).ip())
    );
    // Never about an ICMP error.
    let quoted = &Tcp::new(c, nat_real(i), SYN).ip()[..28];
    let err = icmp_error_frame(
        3,
        3,
        [0; 4],
        *nat_real(i).ip(),
        CLIENT_IP,
        quoted,
        PORT1_MAC,
    );
    let mut err = err;
    err[L3 + 8] = 1;
    let c8 = sluice_core::testing::ipv4_header_checksum(&err[L3..L4]);
    err[L3 + 10..L3 + 12].copy_from_slice(&c8.to_be_bytes());
    dropped(&mut lab, &err, 1, DropReason::TtlExceeded);
    assert!(time_exceeded(&mut lab).is_empty());
}

#[test]
fn time_exceeded_is_rate_limited() {
    let mut lab = Lab::nat("rr");
    let mut sent = 0;
    for port in 0..100u16 {
        let syn = Tcp::new(client(41000 + port), VIP, SYN).ttl(1).frame();
        dropped(&mut lab, &syn, 0, DropReason::TtlExceeded);
        sent += time_exceeded(&mut lab).len();
    }
    assert_eq!(sent as u64, sluice_lb::pipeline::ICMP_ERRORS_BURST);
    // A second later, the bucket has refilled by its rate (up to the burst).
    lab.now += 1000;
    let mut more = 0;
    for port in 0..100u16 {
        let syn = Tcp::new(client(42000 + port), VIP, SYN).ttl(1).frame();
        dropped(&mut lab, &syn, 0, DropReason::TtlExceeded);
        more += time_exceeded(&mut lab).len();
    }
    assert_eq!(more as u64, sluice_lb::pipeline::ICMP_ERRORS_BURST);
}
