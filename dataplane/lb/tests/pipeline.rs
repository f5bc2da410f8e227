//! Sans-IO integration tests of the load-balancing pipeline: frames built
//! by hand (checksums computed from scratch in `common`), fed to
//! [`Forwarder::process`] with a snapshot assembled as the daemon does, and
//! every outcome checked exactly: the action, the bytes of the frame, the
//! counters and gauges in [`SharedStats`], the connection table.

mod common;

use common::*;
use sluice_core::local::Handled;
use sluice_core::{DropReason, MacAddr};
use sluice_lb::{steer, Action, RealSlot, ServiceSlot, SharedStats};
use sluice_proto::OnRealRemoval;
use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddrV4};

const FWD_CLIENT: Action = Action::Forward { port: 0 };
const FWD_SERVERS: Action = Action::Forward { port: 1 };

/// IP length of the TCP segments built here without payload: 20 + 20 + 4
/// (an MSS option).
const SEG_LEN: u64 = 44;

/// Clients of port 0's prefix that [`steer::owner`] gives to `worker` of
/// `workers`.
fn clients_owned_by(worker: usize, workers: usize) -> Vec<Ipv4Addr> {
    (50..=99u8)
        .map(|i| Ipv4Addr::new(192, 0, 2, i))
        .filter(|ip| steer::owner(*ip, workers) == worker)
        .collect()
}

// ---------------------------------------------------------------------------
// 1. NAT inbound
// ---------------------------------------------------------------------------

#[test]
fn nat_inbound_syn_is_rewritten_to_a_real() {
    let mut lab = Lab::nat("rr");
    let syn = Tcp::new(client(40000), VIP, SYN);
    let input = syn.frame();
    assert_eq!(input.len(), 60, "58 bytes padded to 60");
    let (a, f) = lab.run(&input, 0);
    assert_eq!(a, FWD_SERVERS);
    let r = nat_index(&f);
    let real = nat_real(r);

    // Exactly the client's segment, addressed to the real, one hop older,
    // between the servers port and the real: built from scratch, so every
    // checksum matches one computed independently.
    let expected = syn
        .clone()
        .dst(real)
        .ttl(63)
        .macs(mac_of(*real.ip()), PORT1_MAC)
        .frame();
    assert_eq!(f, expected);
    assert_eq!((eth_dst(&f), eth_src(&f)), (mac_of(*real.ip()), PORT1_MAC));
    assert_eq!((ip_src(&f), sport(&f)), (CLIENT_IP, 40000));
    assert_eq!((ip_dst(&f), dport(&f)), (*real.ip(), NAT_REAL_PORT));
    assert_eq!(ttl(&f), 63);
    assert_checksums(&f);

    // Counters: one connection, one packet of 44 IP bytes (not the 60-byte
    // frame), for the service and for that real only.
    let s = lab.stats();
    let svc = &s.service(SVC_SLOT);
    assert_eq!(
        (
            svc.connections.get(),
            svc.packets_in.get(),
            svc.bytes_in.get()
        ),
        (1, 1, SEG_LEN)
    );
    assert_eq!((svc.packets_out.get(), svc.bytes_out.get()), (0, 0));
    for (i, slot) in REAL_SLOTS.iter().enumerate() {
        let c = s.real(*slot);
        let want = if i == r { (1, 1, SEG_LEN) } else { (0, 0, 0) };
        assert_eq!(
            (c.connections.get(), c.packets_in.get(), c.bytes_in.get()),
            want,
            "real {i}"
        );
        let want_inactive = u64::from(i == r);
        assert_eq!(lab.shared.inactive(*slot), want_inactive, "real {i}");
        assert_eq!(lab.shared.active(*slot), 0, "real {i}");
    }
    assert_eq!(s.stateless_forwards.get(), 0);
    assert_eq!(lab.fwd.table().len(), 1);
}

// ---------------------------------------------------------------------------
// 2. NAT outbound reply, then the connection becomes active
// ---------------------------------------------------------------------------

#[test]
fn nat_reply_is_rewritten_to_the_vip_and_ack_activates() {
    let mut lab = Lab::nat("rr");
    let r = lab.syn_to_nat(client(40000));
    let real = nat_real(r);
    let slot = REAL_SLOTS[r];

    let synack = Tcp::new(real, client(40000), SYN | ACK);
    let (a, f) = lab.run(&synack.frame(), 1);
    assert_eq!(a, FWD_CLIENT);
    let expected = synack
        .clone()
        .src(VIP)
        .ttl(63)
        .macs(mac_of(CLIENT_IP), PORT0_MAC)
        .frame();
    assert_eq!(f, expected);
    assert_eq!((ip_src(&f), sport(&f)), (VIP_IP, VPORT));
    assert_eq!((ip_dst(&f), dport(&f)), (CLIENT_IP, 40000));
    assert_checksums(&f);
    let s = lab.stats();
    let svc = &s.service(SVC_SLOT);
    assert_eq!((svc.packets_out.get(), svc.bytes_out.get()), (1, SEG_LEN));
    assert_eq!(
        (s.real(slot).packets_out.get(), s.real(slot).bytes_out.get()),
        (1, SEG_LEN)
    );
    // Still a handshake: inactive.
    assert_eq!((lab.shared.active(slot), lab.shared.inactive(slot)), (0, 1));

    // The client's ACK completes the handshake.
    let (a, f) = lab.ack_from(client(40000));
    assert_eq!(a, FWD_SERVERS);
    assert_eq!(nat_index(&f), r);
    assert_checksums(&f);
    assert_eq!((lab.shared.active(slot), lab.shared.inactive(slot)), (1, 0));
    let svc = &lab.stats().service(SVC_SLOT);
    assert_eq!((svc.connections.get(), svc.packets_in.get()), (1, 2));
    assert_eq!(lab.fwd.table().len(), 1);
}

// ---------------------------------------------------------------------------
// 3. Round robin
// ---------------------------------------------------------------------------

#[test]
fn rr_spreads_nine_syns_three_per_real() {
    let mut lab = Lab::nat("rr");
    let mut count = [0u32; 3];
    let mut order = Vec::new();
    for port in 40000..40009 {
        let r = lab.syn_to_nat(client(port));
        count[r] += 1;
        order.push(r);
    }
    assert_eq!(count, [3, 3, 3], "order {order:?}");
    // In turn: each window of three covers every real.
    for w in order.chunks(3) {
        let set: HashSet<usize> = w.iter().copied().collect();
        assert_eq!(set.len(), 3, "order {order:?}");
    }
    for slot in REAL_SLOTS {
        assert_eq!(lab.stats().real(slot).connections.get(), 3);
        assert_eq!(lab.shared.inactive(slot), 3);
    }
    assert_eq!(lab.fwd.table().len(), 9);
}

// ---------------------------------------------------------------------------
// 4. No connection
// ---------------------------------------------------------------------------

#[test]
fn non_syn_without_connection_is_dropped() {
    let mut lab = Lab::nat("rr");
    for flags in [ACK, ACK | PSH, SYN | ACK, FIN | ACK, RST] {
        let input = Tcp::new(client(40000), VIP, flags).payload(b"data").frame();
        let (a, f) = lab.run(&input, 0);
        assert_eq!(
            a,
            Action::Drop(DropReason::NoConnection),
            "flags {flags:#x}"
        );
        assert_eq!(f, input, "left unchanged");
    }
    assert_eq!(lab.fwd.table().len(), 0);
    let svc = &lab.stats().service(SVC_SLOT);
    assert_eq!((svc.connections.get(), svc.packets_in.get()), (0, 0));
}

// ---------------------------------------------------------------------------
// 5. Unknown next hop
// ---------------------------------------------------------------------------

#[test]
fn unknown_next_hop_holds_then_forwards_once_learned() {
    let mut lab = Lab::new(&[slotted(nat_spec("rr"))]);
    let syn = Tcp::new(client(40000), VIP, SYN).frame();
    let (a, f) = lab.run(&syn, 0);
    let r = nat_index(&f);
    let real = nat_real(r);
    assert_eq!(
        a,
        Action::Hold {
            port: 1,
            next_hop: std::net::IpAddr::V4(*real.ip())
        }
    );
    // Rewritten already (the worker only sets the MACs once resolved).
    assert_eq!(ttl(&f), 63);
    assert_checksums(&f);
    assert_eq!(lab.fwd.neighbour(*real.ip(), lab.now), None);

    lab.fwd
        .learn_remote(*real.ip(), mac_of(*real.ip()), lab.now);
    assert_eq!(
        lab.fwd.neighbour(*real.ip(), lab.now),
        Some(mac_of(*real.ip()))
    );
    // The retransmitted SYN now leaves, to the same real.
    let (a, f) = lab.run(&syn, 0);
    assert_eq!(a, FWD_SERVERS);
    assert_eq!(nat_index(&f), r);
    assert_eq!((eth_dst(&f), eth_src(&f)), (mac_of(*real.ip()), PORT1_MAC));

    // The reply towards a client whose MAC is unknown is held for it.
    let (a, f) = lab.reply_from(r, client(40000), SYN | ACK);
    assert_eq!(
        a,
        Action::Hold {
            port: 0,
            next_hop: std::net::IpAddr::V4(CLIENT_IP)
        }
    );
    assert_eq!(ip_src(&f), VIP_IP);
    lab.learn(CLIENT_IP);
    let (a, f) = lab.reply_from(r, client(40000), SYN | ACK);
    assert_eq!(a, FWD_CLIENT);
    assert_eq!((eth_dst(&f), eth_src(&f)), (mac_of(CLIENT_IP), PORT0_MAC));

    // A client beyond the connected prefixes (no gateway here): its SYN
    // reaches the real, the reply has no route.
    let far = SocketAddrV4::new(Ipv4Addr::new(203, 0, 113, 9), 40000);
    lab.learn_nat_reals();
    let r = lab.syn_to_nat(far);
    let (a, _) = lab.reply_from(r, far, SYN | ACK);
    assert_eq!(a, Action::Drop(DropReason::NoRoute));
}

// ---------------------------------------------------------------------------
// 6. Steering over two workers
// ---------------------------------------------------------------------------

#[test]
fn two_workers_hand_flows_to_the_owner() {
    let shared = SharedStats::new(2);
    let snap = build_snapshot(&[slotted(nat_spec("rr"))], &[]).unwrap();
    let mut w0 = forwarder(&shared, 0, 2, 4096);
    let mut w1 = forwarder(&shared, 1, 2, 4096);
    let now = T0;
    let cip = clients_owned_by(1, 2)[0];
    let other = clients_owned_by(0, 2)[0];
    for w in [&mut w0, &mut w1] {
        for i in 0..3 {
            w.learn_remote(*nat_real(i).ip(), mac_of(*nat_real(i).ip()), now);
        }
        w.learn_remote(cip, mac_of(cip), now);
        w.learn_remote(other, mac_of(other), now);
    }
    let c = SocketAddrV4::new(cip, 40000);

    // Inbound SYN: worker 0 hands it over untouched; worker 1 forwards it.
    let syn = Tcp::new(c, VIP, SYN).frame();
    let mut f = syn.clone();
    assert_eq!(
        w0.process(&snap, &mut f, 0, now),
        Action::HandOff { worker: 1 }
    );
    assert_eq!(f, syn);
    assert_eq!(w0.table().len(), 0);
    assert_eq!(w1.process(&snap, &mut f, 0, now), FWD_SERVERS);
    let r = nat_index(&f);
    assert_eq!(w1.table().len(), 1);
    assert_eq!(shared.workers[1].service(SVC_SLOT).connections.get(), 1);
    assert_eq!(shared.workers[0].service(SVC_SLOT).connections.get(), 0);
    assert_eq!(shared.inactive(REAL_SLOTS[r]), 1);

    // The reply, steered by its destination (the client).
    let reply = Tcp::new(nat_real(r), c, SYN | ACK).frame();
    let mut f = reply.clone();
    assert_eq!(
        w0.process(&snap, &mut f, 1, now),
        Action::HandOff { worker: 1 }
    );
    assert_eq!(f, reply);
    assert_eq!(w1.process(&snap, &mut f, 1, now), FWD_CLIENT);
    assert_eq!((ip_src(&f), sport(&f)), (VIP_IP, VPORT));
    assert_checksums(&f);
    assert_eq!(shared.workers[1].service(SVC_SLOT).packets_out.get(), 1);

    // And the other way round for a client of worker 0.
    let syn = Tcp::new(SocketAddrV4::new(other, 40000), VIP, SYN).frame();
    let mut f = syn.clone();
    assert_eq!(
        w1.process(&snap, &mut f, 0, now),
        Action::HandOff { worker: 0 }
    );
    assert_eq!(f, syn);
    assert_eq!(w0.process(&snap, &mut f, 0, now), FWD_SERVERS);
    assert_eq!((w0.table().len(), w1.table().len()), (1, 1));
}

// ---------------------------------------------------------------------------
// 7. Direct routing
// ---------------------------------------------------------------------------

#[test]
fn dr_changes_only_the_macs() {
    let dr_slots = [RealSlot(20), RealSlot(21), RealSlot(22)];
    let svc = sluice_lb::model::SlottedService {
        spec: dr_spec("rr"),
        slot: ServiceSlot(4),
        real_slots: dr_slots.to_vec(),
    };
    let mut lab = Lab::new(&[svc]);
    lab.learn_dr_reals();
    lab.learn(CLIENT_IP);
    let input = Tcp::new(client(40000), VIP, SYN).frame();
    let (a, f) = lab.run(&input, 0);
    // The reals are on port 0's connected prefix.
    assert_eq!(a, FWD_CLIENT);
    let r = dr_index(&f);
    assert_eq!(
        (eth_dst(&f), eth_src(&f)),
        (mac_of(*dr_real(r).ip()), PORT0_MAC)
    );
    assert_eq!(f[12..], input[12..], "IP header and TCP bytes unchanged");
    assert_eq!(ttl(&f), 64);

    // Later packets of the connection go to the same real, unchanged too.
    let ack = Tcp::new(client(40000), VIP, ACK).payload(b"GET /").frame();
    let (a, f) = lab.run(&ack, 0);
    assert_eq!(a, FWD_CLIENT);
    assert_eq!(dr_index(&f), r);
    assert_eq!(f[12..], ack[12..]);

    let s = lab.stats();
    assert_eq!(s.services[4].connections.get(), 1);
    assert_eq!(s.services[4].packets_in.get(), 2);
    assert_eq!(s.real(dr_slots[r]).connections.get(), 1);
    assert_eq!(lab.fwd.table().len(), 1);
}

// ---------------------------------------------------------------------------
// 8. Table full and under pressure
// ---------------------------------------------------------------------------

/// Capacity of the small tables of the table-full tests (the conntrack
/// `Config` accepts any capacity from 1).
const SMALL: u32 = 20;

fn small_client(i: u32) -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 120 + i as u8), 40000)
}

#[test]
fn table_full_forwards_without_entries() {
    assert!(sluice_conntrack::TableConfig::with_capacity(1)
        .validate()
        .is_ok());
    assert!(sluice_conntrack::TableConfig::with_capacity(0)
        .validate()
        .is_err());

    let mut lab = Lab::with_capacity(&[slotted(nat_spec("rr"))], SMALL);
    lab.learn_nat_reals();
    // Fill to just under 90 %: 17 of 20.
    for i in 0..17 {
        lab.syn_to_nat(small_client(i));
    }
    assert_eq!(lab.fwd.table().len(), 17);
    // A non-SYN without an entry is still refused.
    let stray = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 200), 50000);
    let (a, _) = lab.ack_from(stray);
    assert_eq!(a, Action::Drop(DropReason::NoConnection));
    // 18 of 20 is 90 %: now it is forwarded without an entry.
    lab.syn_to_nat(small_client(17));
    let (a, f) = lab.ack_from(stray);
    assert_eq!(a, FWD_SERVERS);
    nat_index(&f);
    assert_checksums(&f);
    assert_eq!(lab.stats().stateless_forwards.get(), 1);
    assert_eq!(lab.fwd.table().len(), 18);

    // Fill up.
    for i in 18..20 {
        lab.syn_to_nat(small_client(i));
    }
    assert_eq!(lab.fwd.table().len(), 20);
    assert_eq!(lab.stats().stateless_forwards.get(), 1);

    // New SYNs still go out, counted as stateless.
    let svc_before = lab.stats().service(SVC_SLOT).connections.get();
    for i in 20..25 {
        lab.syn_to_nat(small_client(i));
    }
    assert_eq!(lab.fwd.table().len(), 20);
    assert_eq!(lab.stats().stateless_forwards.get(), 6);
    assert_eq!(
        lab.stats().service(SVC_SLOT).connections.get(),
        svc_before + 5
    );
    // Gauges count only connections with an entry.
    let gauges: u64 = REAL_SLOTS.iter().map(|s| lab.shared.inactive(*s)).sum();
    assert_eq!(gauges, 20);

    // Non-SYN packets of a flow without an entry are forwarded too.
    let (a, _) = lab.ack_from(small_client(22));
    assert_eq!(a, FWD_SERVERS);
    assert_eq!(lab.stats().stateless_forwards.get(), 7);

    // And the reply of such a flow is translated back (one service uses
    // the real).
    lab.learn(*small_client(22).ip());
    let (a, f) = lab.reply_from(0, small_client(22), ACK);
    assert_eq!(a, FWD_CLIENT);
    assert_eq!((ip_src(&f), sport(&f)), (VIP_IP, VPORT));
    assert_eq!((ip_dst(&f), dport(&f)), (*small_client(22).ip(), 40000));
    assert_checksums(&f);
    assert_eq!(lab.stats().service(SVC_SLOT).packets_out.get(), 1);
}

/// A connection accepted without an entry while the table was full stays
/// forwarded after the table drains below 90 %: its next packet goes to
/// the same real and gets an entry; its real's replies are translated
/// even when no entry is there. (Before, all of them were dropped as
/// `no_connection` / `not_for_us` from then on.)
#[test]
fn a_connection_forwarded_without_an_entry_survives_the_table_draining() {
    let mut lab = Lab::with_capacity(&[slotted(nat_spec("rr"))], SMALL);
    lab.learn_nat_reals();
    for i in 0..SMALL {
        lab.syn_to_nat(small_client(i));
    }
    // Table full: a new connection goes out without an entry.
    let c = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 150), 41000);
    lab.learn(*c.ip());
    let r = lab.syn_to_nat(c);
    let (a, f) = lab.ack_from(c);
    assert_eq!((a, nat_index(&f)), (FWD_SERVERS, r));
    assert_eq!(lab.fwd.table().len(), SMALL);
    // The fillers (SYN_RECV, no answer) expire: the table drains.
    lab.now += 120_000;
    lab.housekeeping();
    assert_eq!(lab.fwd.table().len(), 0);
    // A stray non-SYN is still refused...
    let stray = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 151), 41000);
    assert_eq!(
        lab.ack_from(stray).0,
        Action::Drop(DropReason::NoConnection)
    );
    // ...and the real's reply to the table-less client is translated back.
    let (a, f) = lab.reply_from(r, c, ACK);
    assert_eq!(a, FWD_CLIENT);
    assert_eq!((ip_src(&f), sport(&f)), (VIP_IP, VPORT));
    assert_checksums(&f);
    // The client's next packet reaches the same real, and gets an entry.
    let (a, f) = lab.ack_from(c);
    assert_eq!((a, nat_index(&f)), (FWD_SERVERS, r));
    assert_checksums(&f);
    assert_eq!(lab.fwd.table().len(), 1);
    assert_eq!(lab.stats().tableless_adopted.get(), 1);
    let (a, _) = lab.reply_from(r, c, ACK);
    assert_eq!(a, FWD_CLIENT);
    assert_eq!(lab.stats().tableless_adopted.get(), 1);
    // Long silent, the flow is forgotten (one to two generations).
    lab.now += 3 * sluice_lb::tableless::GENERATION_MS;
    lab.housekeeping();
    lab.housekeeping();
    lab.now += sluice_lb::tableless::GENERATION_MS;
    lab.housekeeping();
    assert_eq!(lab.fwd.table().len(), 0);
    assert_eq!(lab.ack_from(c).0, Action::Drop(DropReason::NoConnection));
}

/// The design (docs/design.md) and `Schedule::consistent_pick` say a
/// connection that gets no table entry is forwarded by the service's Maglev
/// table, so that every packet of the flow reaches the same real. The
/// pipeline schedules such a SYN with the service's own scheduler (rr here)
/// and only its later packets by the Maglev table: they reach another real
/// for most flows.
#[test]
fn table_full_syn_and_later_packets_reach_the_same_real() {
    let mut lab = Lab::with_capacity(&[slotted(nat_spec("rr"))], SMALL);
    lab.learn_nat_reals();
    for i in 0..SMALL {
        lab.syn_to_nat(small_client(i));
    }
    assert_eq!(lab.fwd.table().len(), SMALL);
    let mut mismatched = Vec::new();
    for i in 0..12u16 {
        let c = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 180), 41000 + i);
        let syn_real = lab.syn_to_nat(c);
        let (a, f) = lab.ack_from(c);
        assert_eq!(a, FWD_SERVERS);
        let ack_real = nat_index(&f);
        if syn_real != ack_real {
            mismatched.push((c, syn_real, ack_real));
        }
    }
    assert!(
        mismatched.is_empty(),
        "(flow, real of the SYN, real of its ACK): {mismatched:?}"
    );
}

/// A reply forwarded without an entry is counted in the service's
/// `packets_out` but not in its `bytes_out`, nor in its real's counters,
/// while every other forwarded packet (the stateless inbound ones included)
/// is counted in packets and bytes, for the service and the real.
#[test]
fn table_full_reply_counts_bytes_like_other_replies() {
    let mut lab = Lab::with_capacity(&[slotted(nat_spec("rr"))], SMALL);
    lab.learn_nat_reals();
    for i in 0..SMALL {
        lab.syn_to_nat(small_client(i));
    }
    let c = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 181), 40000);
    lab.learn(*c.ip());
    let (a, _) = lab.reply_from(0, c, ACK);
    assert_eq!(a, FWD_CLIENT);
    let s = lab.stats();
    let svc = &s.service(SVC_SLOT);
    assert_eq!(svc.packets_out.get(), 1);
    assert_eq!(svc.bytes_out.get(), SEG_LEN, "service bytes_out");
    let real = &s.real(REAL_SLOTS[0]);
    assert_eq!(
        (real.packets_out.get(), real.bytes_out.get()),
        (1, SEG_LEN),
        "real counters"
    );
}

// ---------------------------------------------------------------------------
// 9. ICMP errors from a real
// ---------------------------------------------------------------------------

#[test]
fn icmp_error_from_real_is_translated_to_the_vip() {
    let mut lab = Lab::nat("rr");
    let syn = Tcp::new(client(40000), VIP, SYN);
    let (a, fwd_frame) = lab.run(&syn.frame(), 0);
    assert_eq!(a, FWD_SERVERS);
    let r = nat_index(&fwd_frame);
    let rip = *nat_real(r).ip();
    // What the real received, and quotes.
    let received = fwd_frame[L3..L3 + ip_total_len(&fwd_frame)].to_vec();
    // What the client sent, one hop older (the quote's TTL is the real's).
    let client_sent = syn.clone().ttl(63).ip();

    let cases: [(u8, u8, [u8; 4], usize); 2] = [
        (3, 3, [0; 4], 28),             // port unreachable, 8 bytes quoted
        (3, 4, [0, 0, 0x05, 0xdc], 44), // frag needed (MTU 1500), all of it
    ];
    for (ty, code, rest, quote_len) in cases {
        let err = icmp_error_frame(
            ty,
            code,
            rest,
            rip,
            CLIENT_IP,
            &received[..quote_len],
            PORT1_MAC,
        );
        let (a, f) = lab.run(&err, 1);
        assert_eq!(a, FWD_CLIENT, "type {ty} code {code}");
        assert_eq!((eth_dst(&f), eth_src(&f)), (mac_of(CLIENT_IP), PORT0_MAC));
        assert_eq!((ip_src(&f), ip_dst(&f)), (VIP_IP, CLIENT_IP));
        assert_eq!(ttl(&f), 63);
        assert_eq!(ip_total_len(&f), 20 + 8 + quote_len);
        assert_checksums(&f); // outer IPv4 and ICMP
        let m = l4(&f);
        assert_eq!((m[0], m[1]), (ty, code));
        assert_eq!(m[4..8], rest, "MTU / unused bytes kept");
        let q = &m[8..];
        // The quote now reads VIP:80, as the client sent it.
        assert_eq!(
            Ipv4Addr::new(q[16], q[17], q[18], q[19]),
            VIP_IP,
            "quoted destination"
        );
        assert_eq!(u16::from_be_bytes([q[22], q[23]]), VPORT, "quoted port");
        assert_eq!(
            u16::from_be_bytes([q[10], q[11]]),
            ipv4_header_checksum(&q[..20]),
            "quoted IPv4 checksum"
        );
        assert_eq!(q, &client_sent[..quote_len], "quote = the client's SYN");
        if quote_len >= 40 {
            let seg = &q[20..];
            assert_eq!(
                u16::from_be_bytes([seg[16], seg[17]]),
                l4_checksum(CLIENT_IP, VIP_IP, 6, seg),
                "quoted TCP checksum"
            );
        }
    }
    // An error about an unknown connection is not ours.
    let mut other = received.clone();
    other[20..22].copy_from_slice(&41000u16.to_be_bytes());
    let err = icmp_error_frame(3, 3, [0; 4], rip, CLIENT_IP, &other[..28], PORT1_MAC);
    let (a, _) = lab.run(&err, 1);
    assert_eq!(a, Action::Drop(DropReason::NotForUs));
}

// ---------------------------------------------------------------------------
// 10. Persistence
// ---------------------------------------------------------------------------

#[test]
fn persistence_keeps_a_client_on_one_real_until_the_template_expires() {
    let spec = persistent(nat_spec("rr"), 300, 32);
    let mut lab = Lab::new(&[slotted(spec)]);
    lab.learn_nat_reals();
    let a_ip = CLIENT_IP;
    let b_ip = Ipv4Addr::new(192, 0, 2, 51);

    let ra = lab.syn_to_nat(SocketAddrV4::new(a_ip, 40000));
    for port in 40001..40006 {
        assert_eq!(lab.syn_to_nat(SocketAddrV4::new(a_ip, port)), ra);
    }
    assert_eq!(lab.fwd.table().templates().len(), 1);
    // The scheduler moved once: another client gets the next real, and
    // keeps it.
    let rb = lab.syn_to_nat(SocketAddrV4::new(b_ip, 40000));
    assert_ne!(rb, ra);
    assert_eq!(lab.syn_to_nat(SocketAddrV4::new(b_ip, 40001)), rb);
    assert_eq!(lab.fwd.table().templates().len(), 2);
    assert_eq!(lab.fwd.table().len(), 8);
    let tpl_reals: HashSet<RealSlot> = lab
        .fwd
        .table()
        .templates()
        .iter()
        .map(|(_, t)| RealSlot(t.real()))
        .collect();
    assert_eq!(tpl_reals, HashSet::from([REAL_SLOTS[ra], REAL_SLOTS[rb]]));

    // The SYN_RECV connections (60 s) expire; the templates (300 s) stay.
    lab.now = T0 + 59_000;
    lab.housekeeping();
    assert_eq!(lab.fwd.table().len(), 8);
    lab.now = T0 + 61_000;
    lab.housekeeping();
    assert_eq!(lab.fwd.table().len(), 0);
    for slot in REAL_SLOTS {
        assert_eq!((lab.shared.active(slot), lab.shared.inactive(slot)), (0, 0));
    }
    assert_eq!(lab.fwd.table().templates().len(), 2);

    // Past the persistence timeout, with no connection left: gone.
    lab.now = T0 + 299_000;
    lab.housekeeping();
    assert_eq!(lab.fwd.table().templates().len(), 2);
    lab.now = T0 + 301_000;
    lab.housekeeping();
    assert_eq!(lab.fwd.table().templates().len(), 0);

    // A new connection of A makes a new template.
    lab.syn_to_nat(SocketAddrV4::new(a_ip, 40010));
    assert_eq!(lab.fwd.table().templates().len(), 1);
}

// ---------------------------------------------------------------------------
// 11. Weight 0
// ---------------------------------------------------------------------------

#[test]
fn quiesced_real_gets_no_new_connection_but_keeps_its_own() {
    let mut lab = Lab::nat("rr");
    let q = lab.syn_to_nat(client(40000));
    let mut spec = nat_spec("rr");
    spec.reals[q].weight = 0;
    lab.rebuild(&[slotted(spec)], &[]);

    let mut count = [0u32; 3];
    for port in 40001..40007 {
        count[lab.syn_to_nat(client(port))] += 1;
    }
    assert_eq!(count[q], 0, "{count:?}");
    assert_eq!(count.iter().sum::<u32>(), 6);
    assert!(count.iter().enumerate().all(|(i, c)| i == q || *c == 3));

    // The existing connection still reaches it, both ways.
    let (a, f) = lab.reply_from(q, client(40000), SYN | ACK);
    assert_eq!(a, FWD_CLIENT);
    assert_eq!(ip_src(&f), VIP_IP);
    let (a, f) = lab.ack_from(client(40000));
    assert_eq!(a, FWD_SERVERS);
    assert_eq!(nat_index(&f), q);
    assert_eq!(lab.shared.active(REAL_SLOTS[q]), 1);
}

// ---------------------------------------------------------------------------
// 12. Removal policies
// ---------------------------------------------------------------------------

/// The NAT service without real `gone`, keeping the other reals' slots.
fn without_real(gone: usize, policy: OnRealRemoval) -> sluice_lb::model::SlottedService {
    let mut spec = nat_spec("rr");
    spec.on_real_removal = policy;
    spec.reals.remove(gone);
    let mut slots = REAL_SLOTS.to_vec();
    slots.remove(gone);
    sluice_lb::model::SlottedService {
        spec,
        slot: SVC_SLOT,
        real_slots: slots,
    }
}

#[test]
fn removed_real_with_keep_policy_keeps_its_connections() {
    let mut lab = Lab::nat("rr");
    let mut of = [0u16; 3]; // client port of a connection per real
    for port in 40000..40003 {
        of[lab.syn_to_nat(client(port))] = port;
    }
    let gone = 1;
    lab.rebuild(&[without_real(gone, OnRealRemoval::Keep)], &[]);

    let (a, f) = lab.reply_from(gone, client(of[gone]), SYN | ACK);
    assert_eq!(a, FWD_CLIENT);
    assert_eq!((ip_src(&f), sport(&f)), (VIP_IP, VPORT));
    let (a, f) = lab.ack_from(client(of[gone]));
    assert_eq!(a, FWD_SERVERS);
    assert_eq!(nat_index(&f), gone);
    assert_eq!(lab.shared.active(REAL_SLOTS[gone]), 1);

    let mut count = [0u32; 3];
    for port in 41000..41004 {
        count[lab.syn_to_nat(client(port))] += 1;
    }
    assert_eq!(count[gone], 0, "{count:?}");
    assert_eq!(lab.fwd.table().len(), 7);
}

#[test]
fn removed_real_with_end_policy_ends_its_connections() {
    let mut lab = Lab::nat("rr");
    let mut conns: Vec<Vec<u16>> = vec![Vec::new(); 3];
    for port in 40000..40006 {
        conns[lab.syn_to_nat(client(port))].push(port);
    }
    assert!(conns.iter().all(|c| c.len() == 2), "{conns:?}");
    let gone = 1;
    let gslot = REAL_SLOTS[gone];
    // One of its connections established (active), one not.
    let est = conns[gone][0];
    let (a, _) = lab.reply_from(gone, client(est), SYN | ACK);
    assert_eq!(a, FWD_CLIENT);
    let (a, _) = lab.ack_from(client(est));
    assert_eq!(a, FWD_SERVERS);
    // And a third one.
    let mut port = 40100;
    loop {
        if lab.syn_to_nat(client(port)) == gone {
            break;
        }
        port += 1;
    }
    conns[gone].push(port);
    let total = lab.fwd.table().len();
    let others_before: Vec<u64> = [0, 2]
        .iter()
        .map(|r| lab.shared.inactive(REAL_SLOTS[*r]))
        .collect();
    assert_eq!(
        (lab.shared.active(gslot), lab.shared.inactive(gslot)),
        (1, 2)
    );

    lab.rebuild(
        &[without_real(gone, OnRealRemoval::End)],
        &[drain(SVC_SLOT, gslot, 1)],
    );
    // A packet of one of its connections is dropped and ends it.
    let (a, _) = lab.ack_from(client(conns[gone][1]));
    assert_eq!(a, Action::Drop(DropReason::RealRemoved));
    assert_eq!(lab.fwd.table().len(), total - 1);
    assert_eq!(
        (lab.shared.active(gslot), lab.shared.inactive(gslot)),
        (1, 1)
    );
    // So is a reply from it.
    let (a, _) = lab.reply_from(gone, client(conns[gone][2]), ACK);
    assert_eq!(a, Action::Drop(DropReason::RealRemoved));
    assert_eq!(lab.fwd.table().len(), total - 2);

    // Housekeeping ends the rest.
    lab.housekeeping();
    assert_eq!(lab.fwd.table().len(), total - 3);
    assert_eq!(
        (lab.shared.active(gslot), lab.shared.inactive(gslot)),
        (0, 0)
    );
    assert!(lab
        .fwd
        .table()
        .iter()
        .all(|(_, c)| RealSlot(c.real()) != gslot));
    // The other reals' connections are untouched.
    for (k, r) in [0, 2].into_iter().enumerate() {
        assert_eq!(
            lab.shared.inactive(REAL_SLOTS[r]),
            others_before[k],
            "real {r}"
        );
        let (a, f) = lab.ack_from(client(conns[r][0]));
        assert_eq!(a, FWD_SERVERS);
        assert_eq!(nat_index(&f), r);
    }
    // The ended connection is gone: its packets have no connection now.
    let (a, _) = lab.ack_from(client(est));
    assert_eq!(a, Action::Drop(DropReason::NoConnection));
}

// ---------------------------------------------------------------------------
// 13. Overload
// ---------------------------------------------------------------------------

#[test]
fn overloaded_real_is_never_scheduled() {
    for sched in ["rr", "wrr", "lc", "wlc", "sed", "nq", "sh", "mh"] {
        let mut lab = Lab::nat(sched);
        let hot = 2;
        lab.shared.set_overloaded(REAL_SLOTS[hot], true);
        for i in 0..12u16 {
            // Different client addresses, for the hashing schedulers.
            let c = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 50 + i as u8), 40000 + i);
            assert_ne!(lab.syn_to_nat(c), hot, "{sched}");
        }
        assert_eq!(lab.shared.inactive(REAL_SLOTS[hot]), 0, "{sched}");
        // All of them overloaded: nothing is available.
        for slot in REAL_SLOTS {
            lab.shared.set_overloaded(slot, true);
        }
        let (a, _) = lab.run(&Tcp::new(client(45000), VIP, SYN).frame(), 0);
        assert_eq!(a, Action::Drop(DropReason::NoRealAvailable), "{sched}");
        // Back under the threshold: scheduled again.
        lab.shared.set_overloaded(REAL_SLOTS[hot], false);
        let picked: Vec<usize> = (0..30u8)
            .map(|i| lab.syn_to_nat(SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 150 + i), 45001)))
            .collect();
        assert!(picked.contains(&hot), "{sched}: {picked:?}");
    }
}

// ---------------------------------------------------------------------------
// 14. ARP and ICMP echo for the VIP
// ---------------------------------------------------------------------------

#[test]
fn arp_and_echo_for_the_vip_are_answered() {
    let mut lab = Lab::new(&[slotted(nat_spec("rr"))]);
    let cmac = mac_of(CLIENT_IP);
    let req = arp_frame(
        1,
        MacAddr::BROADCAST,
        cmac,
        CLIENT_IP,
        MacAddr::ZERO,
        VIP_IP,
    );
    let (a, f) = lab.run(&req, 0);
    assert_eq!(a, Action::Reply(Handled::ArpRequest));
    assert_eq!(f, arp_frame(2, cmac, PORT0_MAC, VIP_IP, cmac, CLIENT_IP));
    // The asker was learned, and offered to the other workers.
    assert_eq!(lab.fwd.neighbour(CLIENT_IP, lab.now), Some(cmac));
    let learned: Vec<_> = lab.fwd.take_learned().collect();
    assert_eq!(learned, vec![(CLIENT_IP.into(), cmac)]);

    // The servers' port answers for the VIP as well, with its own MAC.
    let rip = *nat_real(0).ip();
    let req = arp_frame(
        1,
        MacAddr::BROADCAST,
        mac_of(rip),
        rip,
        MacAddr::ZERO,
        VIP_IP,
    );
    let (a, f) = lab.run(&req, 1);
    assert_eq!(a, Action::Reply(Handled::ArpRequest));
    assert_eq!(
        f,
        arp_frame(2, mac_of(rip), PORT1_MAC, VIP_IP, mac_of(rip), rip)
    );

    // Not ours.
    let req = arp_frame(
        1,
        MacAddr::BROADCAST,
        cmac,
        CLIENT_IP,
        MacAddr::ZERO,
        Ipv4Addr::new(192, 0, 2, 77),
    );
    let (a, _) = lab.run(&req, 0);
    assert_eq!(a, Action::Drop(DropReason::ArpNotForUs));

    // ICMP echo to the VIP.
    let echo = icmp_echo_frame(CLIENT_IP, VIP_IP, PORT0_MAC);
    let (a, f) = lab.run(&echo, 0);
    assert_eq!(a, Action::Reply(Handled::IcmpEcho));
    assert_eq!((eth_dst(&f), eth_src(&f)), (cmac, PORT0_MAC));
    assert_eq!((ip_src(&f), ip_dst(&f)), (VIP_IP, CLIENT_IP));
    assert_eq!(ip_proto(&f), 1);
    assert_eq!(ip_total_len(&f), ip_total_len(&echo));
    assert_checksums(&f);
    let (m, orig) = (l4(&f), l4(&echo));
    assert_eq!((m[0], m[1]), (0, 0), "echo reply");
    assert_eq!(m[4..], orig[4..], "identifier, sequence and data kept");
}

// ---------------------------------------------------------------------------
// 15. Fragments and TTL
// ---------------------------------------------------------------------------

#[test]
fn unmatched_fragments_are_held_and_expiring_ttl_is_dropped() {
    let mut lab = Lab::nat("rr");
    // Later fragments (the last, and one with more to come) whose first
    // never came: held for it, unchanged, opening nothing (fragments that
    // follow their first: tests/fragments.rs).
    for frag in [0x00b9u16, 0x20b9] {
        let input = Tcp::new(client(40000), VIP, SYN).frag(frag).frame();
        let (a, f) = lab.run(&input, 0);
        assert_eq!(a, Action::HoldFragment, "{frag:#x}");
        assert_eq!(f, input);
    }
    assert_eq!(lab.fwd.table().len(), 0);

    for t in [1u8, 0] {
        let input = Tcp::new(client(40000 + u16::from(t)), VIP, SYN)
            .ttl(t)
            .frame();
        let (a, _) = lab.run(&input, 0);
        assert_eq!(a, Action::Drop(DropReason::TtlExceeded), "TTL {t}");
    }
    // TTL 2 leaves with 1.
    let (a, f) = lab.run(&Tcp::new(client(40100), VIP, SYN).ttl(2).frame(), 0);
    assert_eq!(a, FWD_SERVERS);
    assert_eq!(ttl(&f), 1);
    assert_checksums(&f);

    // A reply with TTL 1 is not forwarded either.
    let r = nat_index(&f);
    let reply = Tcp::new(nat_real(r), client(40100), SYN | ACK)
        .ttl(1)
        .frame();
    let (a, _) = lab.run(&reply, 1);
    assert_eq!(a, Action::Drop(DropReason::TtlExceeded));
}

/// The TTL is checked only when the packet is rewritten, after the
/// connection was scheduled and inserted: a SYN dropped as `TtlExceeded`
/// leaves a connection entry (60 s in SYN_RECV), a scheduled connection in
/// the counters and an inactive connection on the real's gauge (which lc,
/// wlc, sed and nq read), and moves rr's cursor. A retransmission with a
/// good TTL then finds that entry.
#[test]
fn ttl_exceeded_syn_leaves_no_connection() {
    let mut lab = Lab::nat("rr");
    let (a, _) = lab.run(&Tcp::new(client(40000), VIP, SYN).ttl(1).frame(), 0);
    assert_eq!(a, Action::Drop(DropReason::TtlExceeded));
    assert_eq!(lab.fwd.table().len(), 0, "connection entries");
    assert_eq!(
        lab.stats().service(SVC_SLOT).connections.get(),
        0,
        "connections scheduled"
    );
    let inactive: Vec<u64> = REAL_SLOTS.iter().map(|s| lab.shared.inactive(*s)).collect();
    assert_eq!(inactive, vec![0, 0, 0], "gauges");
}

// ---------------------------------------------------------------------------
// Extra: a UDP NAT round trip (UDP checksums, with and without)
// ---------------------------------------------------------------------------

#[test]
fn udp_nat_round_trip() {
    let udp_slots = [RealSlot(30), RealSlot(31), RealSlot(32)];
    let svc = sluice_lb::model::SlottedService {
        spec: udp_nat_spec(),
        slot: ServiceSlot(5),
        real_slots: udp_slots.to_vec(),
    };
    let mut lab = Lab::new(&[svc]);
    lab.learn_nat_reals();
    lab.learn(CLIENT_IP);
    let vip53 = SocketAddrV4::new(VIP_IP, 53);
    let c = client(40000);
    for with_checksum in [true, false] {
        let q = udp_ip(c, vip53, b"query", 64, with_checksum);
        let input = ether(PORT0_MAC, mac_of(CLIENT_IP), ETHERTYPE_IPV4, &q);
        let (a, f) = lab.run(&input, 0);
        assert_eq!(a, FWD_SERVERS);
        let rip = ip_dst(&f);
        let r = (0..3).find(|&i| *nat_real(i).ip() == rip).unwrap();
        let real = SocketAddrV4::new(rip, 5353);
        let expected = ether(
            mac_of(rip),
            PORT1_MAC,
            ETHERTYPE_IPV4,
            &udp_ip(c, real, b"query", 63, with_checksum),
        );
        assert_eq!(f, expected, "checksum {with_checksum}");
        if with_checksum {
            assert_checksums(&f);
        }

        let reply = udp_ip(real, c, b"answer", 64, with_checksum);
        let input = ether(PORT1_MAC, mac_of(rip), ETHERTYPE_IPV4, &reply);
        let (a, f) = lab.run(&input, 1);
        assert_eq!(a, FWD_CLIENT);
        let expected = ether(
            mac_of(CLIENT_IP),
            PORT0_MAC,
            ETHERTYPE_IPV4,
            &udp_ip(vip53, c, b"answer", 63, with_checksum),
        );
        assert_eq!(f, expected, "checksum {with_checksum}");
        // One connection (UDP: inactive), the same real both times.
        assert_eq!(lab.shared.inactive(udp_slots[r]), 1);
        assert_eq!(lab.shared.active(udp_slots[r]), 0);
    }
    assert_eq!(lab.fwd.table().len(), 1);
    let svc = &lab.stats().services[5];
    assert_eq!((svc.connections.get(), svc.packets_in.get()), (1, 2));
    assert_eq!(
        (svc.bytes_in.get(), svc.bytes_out.get()),
        (2 * (28 + 5), 2 * (28 + 6))
    );
}
