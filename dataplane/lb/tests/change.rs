//! Sans-IO tests of the pipeline at the moment of change: a client that
//! reuses its port (IPVS's connection reuse), reals that are quiesced,
//! found down, removed or drained while connections exist, persistence
//! templates whose real is no longer usable, drains that must finish while
//! snapshots keep coming, two VIPs sharing a real, ICMP errors about
//! replies, and expiry under a sustained connection rate.

mod common;

use common::*;
use sluice_conntrack::{ConnState, TcpState};
use sluice_core::DropReason;
use sluice_lb::model::SlottedService;
use sluice_lb::{Action, RealSlot, ServiceSlot};
use sluice_proto::OnRealRemoval;
use std::net::{Ipv4Addr, SocketAddrV4};

const FWD_CLIENT: Action = Action::Forward { port: 0 };
const FWD_SERVERS: Action = Action::Forward { port: 1 };

/// The state of the connection from client port `port`.
fn state_of(lab: &Lab, port: u16) -> Option<ConnState> {
    lab.fwd
        .table()
        .iter()
        .find(|(_, c)| c.client() == client(port))
        .map(|(_, c)| c.state())
}

/// Establishes the connection from client port `port`; returns its real.
fn establish(lab: &mut Lab, port: u16) -> usize {
    let r = lab.syn_to_nat(client(port));
    assert_eq!(lab.reply_from(r, client(port), SYN | ACK).0, FWD_CLIENT);
    assert_eq!(lab.ack_from(client(port)).0, FWD_SERVERS);
    assert_eq!(
        state_of(lab, port),
        Some(ConnState::Tcp(TcpState::Established))
    );
    r
}

/// Closes the connection from client port `port` (on real `r`) the usual
/// way, leaving its entry in TIME_WAIT.
fn close(lab: &mut Lab, port: u16, r: usize) {
    let fin = Tcp::new(client(port), VIP, FIN | ACK).frame();
    assert_eq!(lab.run(&fin, 0).0, FWD_SERVERS);
    assert_eq!(lab.reply_from(r, client(port), FIN | ACK).0, FWD_CLIENT);
    assert_eq!(lab.ack_from(client(port)).0, FWD_SERVERS);
    assert_eq!(
        state_of(lab, port),
        Some(ConnState::Tcp(TcpState::TimeWait))
    );
}

/// Total (active, inactive) over the three reals.
fn gauges(lab: &Lab) -> (u64, u64) {
    REAL_SLOTS.iter().fold((0, 0), |(a, i), s| {
        (a + lab.shared.active(*s), i + lab.shared.inactive(*s))
    })
}

fn quiesce(lab: &mut Lab, real: usize) {
    let mut spec = nat_spec("rr");
    spec.reals[real].weight = 0;
    lab.rebuild(&[slotted(spec)], &[]);
}

// ---------------------------------------------------------------------------
// Connection reuse (conn_reuse_mode = 1)
// ---------------------------------------------------------------------------

#[test]
fn a_syn_on_a_time_wait_entry_ends_it_and_is_scheduled_afresh() {
    let mut lab = Lab::nat("rr");
    let r = establish(&mut lab, 40000);
    close(&mut lab, 40000, r);
    assert_eq!(gauges(&lab), (0, 1));
    // The same client port again: a new connection, scheduled by rr (the
    // next real), not glued to the old entry's real.
    let again = lab.syn_to_nat(client(40000));
    assert_ne!(again, r, "the reused port stuck to its old real");
    assert_eq!(
        state_of(&lab, 40000),
        Some(ConnState::Tcp(TcpState::SynRecv))
    );
    assert_eq!(lab.fwd.table().len(), 1, "the old entry was ended");
    assert_eq!(gauges(&lab), (0, 1), "the old entry was uncounted");
    assert_eq!(lab.shared.entries(REAL_SLOTS[r]), 0);
    assert_eq!(lab.shared.entries(REAL_SLOTS[again]), 1);
    // Its reply finds the new entry.
    assert_eq!(
        lab.reply_from(again, client(40000), SYN | ACK).0,
        FWD_CLIENT
    );
}

#[test]
fn a_syn_on_a_closed_entry_of_a_quiesced_real_goes_elsewhere() {
    let mut lab = Lab::nat("rr");
    let r = establish(&mut lab, 40000);
    // A reset from the client: CLOSE.
    let rst = Tcp::new(client(40000), VIP, RST).frame();
    assert_eq!(lab.run(&rst, 0).0, FWD_SERVERS);
    assert_eq!(state_of(&lab, 40000), Some(ConnState::Tcp(TcpState::Close)));
    quiesce(&mut lab, r);
    for _ in 0..3 {
        let again = lab.syn_to_nat(client(40000));
        assert_ne!(
            again, r,
            "a quiesced real got a reused port's new connection"
        );
        // Make it reusable again.
        let rst = Tcp::new(client(40000), VIP, RST).frame();
        assert_eq!(lab.run(&rst, 0).0, FWD_SERVERS);
    }
    assert_eq!(lab.fwd.table().len(), 1);
}

#[test]
fn a_syn_on_a_live_entry_of_a_real_that_cannot_take_it_is_rescheduled() {
    // ESTABLISHED entries whose real is down, quiesced, overloaded, or
    // removed (keep policy): a SYN on their key is a new connection (the
    // client lost its old one), and goes to a real that takes it.
    for case in ["down", "quiesced", "overloaded", "removed"] {
        let mut lab = Lab::nat("rr");
        let r = establish(&mut lab, 40000);
        let slot = REAL_SLOTS[r];
        match case {
            "down" => lab.shared.set_down(slot, true),
            "overloaded" => lab.shared.set_overloaded(slot, true),
            "quiesced" => quiesce(&mut lab, r),
            _ => lab.rebuild(&[without_real(r, OnRealRemoval::Keep)], &[]),
        }
        let again = lab.syn_to_nat(client(40000));
        assert_ne!(again, r, "{case}: the SYN went back to its old real");
        assert_eq!(lab.fwd.table().len(), 1, "{case}");
        assert_eq!(gauges(&lab), (0, 1), "{case}: the old entry was uncounted");
    }
}

#[test]
fn a_syn_of_an_ended_real_is_rescheduled_other_packets_are_dropped() {
    let mut lab = Lab::nat("rr");
    let r = establish(&mut lab, 40000);
    let r2 = establish(&mut lab, 40001);
    assert_ne!(r, r2);
    let slot = REAL_SLOTS[r];
    lab.rebuild(
        &[without_real(r, OnRealRemoval::End)],
        &[drain(SVC_SLOT, slot, 1)],
    );
    // A packet of the ended connection: dropped, the entry ends.
    let (a, _) = lab.ack_from(client(40000));
    assert_eq!(a, Action::Drop(DropReason::RealRemoved));
    assert_eq!(lab.fwd.table().len(), 1);
    // Same again, but the client reconnects from the same port first.
    let mut lab = Lab::nat("rr");
    let r = establish(&mut lab, 40000);
    lab.rebuild(
        &[without_real(r, OnRealRemoval::End)],
        &[drain(SVC_SLOT, REAL_SLOTS[r], 1)],
    );
    let again = lab.syn_to_nat(client(40000));
    assert_ne!(again, r);
    assert_eq!(gauges(&lab), (0, 1));
}

#[test]
fn a_retransmitted_syn_stays_on_its_real() {
    let mut lab = Lab::nat("rr");
    let r = lab.syn_to_nat(client(40000));
    for _ in 0..3 {
        assert_eq!(lab.syn_to_nat(client(40000)), r);
    }
    assert_eq!(lab.fwd.table().len(), 1);
    assert_eq!(gauges(&lab), (0, 1));
    let svc = &lab.stats().service(SVC_SLOT);
    assert_eq!(svc.connections.get(), 1, "one connection, four SYNs");
}

/// The NAT service without real `gone`, keeping the other reals' slots.
fn without_real(gone: usize, policy: OnRealRemoval) -> SlottedService {
    let mut spec = nat_spec("rr");
    spec.on_real_removal = policy;
    spec.reals.remove(gone);
    let mut slots = REAL_SLOTS.to_vec();
    slots.remove(gone);
    SlottedService {
        spec,
        slot: SVC_SLOT,
        real_slots: slots,
    }
}

// ---------------------------------------------------------------------------
// Persistence templates whose real is no longer usable
// ---------------------------------------------------------------------------

fn persistent_lab(expire_quiescent: bool) -> Lab {
    let mut spec = persistent(nat_spec("rr"), 300, 32);
    spec.expire_quiescent_template = expire_quiescent;
    let mut lab = Lab::new(&[slotted(spec)]);
    lab.learn_nat_reals();
    lab.learn(CLIENT_IP);
    lab
}

#[test]
fn a_template_whose_real_is_down_is_dropped() {
    let mut lab = persistent_lab(false);
    let r = lab.syn_to_nat(client(40000));
    assert_eq!(lab.syn_to_nat(client(40001)), r, "persistence");
    lab.shared.set_down(REAL_SLOTS[r], true);
    let moved = lab.syn_to_nat(client(40002));
    assert_ne!(moved, r);
    // The new template pins the client to its new real.
    lab.shared.set_down(REAL_SLOTS[r], false);
    assert_eq!(lab.syn_to_nat(client(40003)), moved);
}

#[test]
fn quiesced_templates_stay_unless_the_service_expires_them() {
    for expire in [false, true] {
        let mut lab = persistent_lab(expire);
        let r = lab.syn_to_nat(client(40000));
        let mut spec = persistent(nat_spec("rr"), 300, 32);
        spec.expire_quiescent_template = expire;
        spec.reals[r].weight = 0;
        lab.rebuild(&[slotted(spec)], &[]);
        let next = lab.syn_to_nat(client(40001));
        if expire {
            assert_ne!(next, r, "expire_quiescent_template kept the template");
        } else {
            assert_eq!(next, r, "LVS keeps a quiesced real's template");
        }
    }
}

// ---------------------------------------------------------------------------
// Drains
// ---------------------------------------------------------------------------

#[test]
fn a_drain_finishes_while_snapshots_keep_coming() {
    // A table much larger than one step of the drain scan, and a new
    // snapshot before every housekeeping call (agents and latency weights
    // publish every 100 ms): the scan must resume, not restart.
    let mut lab = Lab::with_capacity(&[slotted(nat_spec("rr"))], 1 << 16);
    lab.learn_nat_reals();
    lab.learn(CLIENT_IP);
    let mut on = [0u64; 3];
    for port in 1000..31000u16 {
        on[lab.syn_to_nat(client(port))] += 1;
    }
    let gone = 1;
    let slot = REAL_SLOTS[gone];
    let drains = [drain(SVC_SLOT, slot, 7)];
    let mut calls = 0;
    while lab.shared.entries(slot) > 0 {
        lab.rebuild(&[without_real(gone, OnRealRemoval::End)], &drains);
        lab.housekeeping();
        calls += 1;
        assert!(calls < 1000, "the drain never finishes");
    }
    assert_eq!(
        lab.fwd.table().len() as u64,
        on[0] + on[2],
        "only the drained real's connections ended"
    );
    assert_eq!(lab.shared.inactive(slot), 0);
}

#[test]
fn a_pair_ended_again_is_scanned_again() {
    // Down under on_real_down = "end" (drain id 1), back up, then down
    // again (drain id 2): the connections made in between end too.
    let mut lab = Lab::nat("rr");
    let r = establish(&mut lab, 40000);
    let slot = REAL_SLOTS[r];
    let spec = || slotted(nat_spec("rr"));
    lab.rebuild(&[spec()], &[drain(SVC_SLOT, slot, 1)]);
    lab.housekeeping();
    assert_eq!(lab.shared.entries(slot), 0);
    lab.rebuild(&[spec()], &[]);
    let mut port = 41000;
    while lab.syn_to_nat(client(port)) != r {
        port += 1;
    }
    assert_eq!(lab.shared.entries(slot), 1);
    lab.rebuild(&[spec()], &[drain(SVC_SLOT, slot, 2)]);
    lab.housekeeping();
    assert_eq!(lab.shared.entries(slot), 0);
}

// ---------------------------------------------------------------------------
// Two VIPs sharing a real: the reply key
// ---------------------------------------------------------------------------

const VIP2: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 101), 80);

/// After a connection from client port 40000 to VIP landed on real `r`:
/// the same service plus one on VIP2:80 (wrr, so that its first pick is
/// `r`, weight 100) with the other real servers of `others` (weight 1).
fn add_vip2(lab: &mut Lab, r: usize, others: &[usize]) {
    add_vip2_proxied(lab, r, others, sluice_model::SynProxyMode::Auto);
}

/// [`add_vip2`] with VIP2's SYN proxy set to `syn_proxy`.
fn add_vip2_proxied(
    lab: &mut Lab,
    r: usize,
    others: &[usize],
    syn_proxy: sluice_model::SynProxyMode,
) {
    let mut second = nat_spec("wrr");
    second.syn_proxy = syn_proxy;
    second.vip = std::net::IpAddr::V4(*VIP2.ip());
    second.reals = std::iter::once((r, 100))
        .chain(others.iter().map(|o| (*o, 1)))
        .map(|(i, w)| real_spec(nat_real(i), sluice_proto::Forward::Nat, w))
        .collect();
    let n = second.reals.len() as u16;
    let second = SlottedService {
        spec: second,
        slot: ServiceSlot(SVC_SLOT.0 + 1),
        real_slots: (100..100 + n).map(RealSlot).collect(),
    };
    lab.rebuild(&[slotted(nat_spec("rr")), second], &[]);
}

#[test]
fn one_client_port_to_two_vips_on_one_real_keeps_the_replies_apart() {
    let mut lab = Lab::nat("rr");
    let r = lab.syn_to_nat(client(40000));
    let other = (r + 1) % 3;
    add_vip2(&mut lab, r, &[other]);
    // The same client port to VIP2: its first pick is real r, whose reply
    // key (r, client:40000) is taken; the other real must serve it.
    let (a, f) = lab.run(&Tcp::new(client(40000), VIP2, SYN).frame(), 0);
    assert_eq!(a, FWD_SERVERS);
    assert_eq!(nat_index(&f), other, "two connections with one reply key");
    // Each real's reply leaves from its own VIP.
    let (a, f) = lab.reply_from(r, client(40000), SYN | ACK);
    assert_eq!(a, FWD_CLIENT);
    assert_eq!((ip_src(&f), sport(&f)), (*VIP.ip(), VIP.port()));
    let (a, f) = lab.reply_from(other, client(40000), SYN | ACK);
    assert_eq!(a, FWD_CLIENT);
    assert_eq!((ip_src(&f), sport(&f)), (*VIP2.ip(), VIP2.port()));
    assert_eq!(lab.stats().stateless_forwards.get(), 0);
    // Without the clash, VIP2 takes real r as wrr says.
    let (a, f) = lab.run(&Tcp::new(client(40001), VIP2, SYN).frame(), 0);
    assert_eq!(a, FWD_SERVERS);
    assert_eq!(nat_index(&f), r);
}

#[test]
fn a_proxied_connection_whose_reply_key_clashes_goes_to_another_real() {
    let mut lab = Lab::nat("rr");
    let r = lab.syn_to_nat(client(40000));
    let other = (r + 1) % 3;
    add_vip2_proxied(&mut lab, r, &[other], sluice_model::SynProxyMode::On);
    let syn = Tcp::new(client(40000), VIP2, SYN);
    let (a, f) = lab.run(&syn.frame(), 0);
    assert_eq!(a, Action::Reply(sluice_core::local::Handled::SynCookie));
    let cookie = u32::from_be_bytes(f[38..42].try_into().unwrap());
    let mut ack = Tcp::new(client(40000), VIP2, ACK);
    ack.seq = syn.seq.wrapping_add(1);
    ack.ack = cookie.wrapping_add(1);
    ack.options.clear();
    let (a, _) = lab.run(&ack.frame(), 0);
    assert_eq!(a, Action::Consumed(sluice_core::local::Handled::Handshake));
    let mut sent = Vec::new();
    lab.fwd.take_syns(|a, f| sent.push((a, f.to_vec())));
    assert_eq!(sent.len(), 1);
    assert_eq!(
        nat_index(&sent[0].1),
        other,
        "two connections with one reply key"
    );
    assert_eq!(lab.fwd.table().len(), 2);
}

#[test]
fn a_reply_key_clash_with_no_other_real_is_dropped_not_misrouted() {
    let mut lab = Lab::nat("rr");
    let r = lab.syn_to_nat(client(40000));
    add_vip2(&mut lab, r, &[]);
    let (a, _) = lab.run(&Tcp::new(client(40000), VIP2, SYN).frame(), 0);
    assert_eq!(a, Action::Drop(DropReason::ReplyKeyClash));
    assert_eq!(lab.fwd.table().len(), 1);
    assert_eq!(lab.stats().stateless_forwards.get(), 0);
    // Another client port is fine.
    let (a, f) = lab.run(&Tcp::new(client(40001), VIP2, SYN).frame(), 0);
    assert_eq!(a, FWD_SERVERS);
    assert_eq!(nat_index(&f), r);
}

// ---------------------------------------------------------------------------
// ICMP errors about replies go to the real
// ---------------------------------------------------------------------------

#[test]
fn fragmentation_needed_for_a_reply_reaches_its_real() {
    let mut lab = Lab::nat("rr");
    let r = establish(&mut lab, 40000);
    // A full-size reply, as it left for the client.
    let reply = Tcp::new(nat_real(r), client(40000), ACK).payload(&[0x55; 1400]);
    let (a, out) = lab.run(&reply.frame(), 1);
    assert_eq!(a, FWD_CLIENT);
    let sent = out[L3..L3 + ip_total_len(&out)].to_vec();
    // A router between the load balancer and the client cannot forward it:
    // fragmentation needed, MTU 1400, addressed to the VIP.
    let router = Ipv4Addr::new(192, 0, 2, 254);
    let rest = [0, 0, 0x05, 0x78];
    for quote_len in [28, 60, sent.len()] {
        let err = icmp_error_frame(3, 4, rest, router, *VIP.ip(), &sent[..quote_len], PORT0_MAC);
        let (a, f) = lab.run(&err, 0);
        assert_eq!(a, FWD_SERVERS, "quote of {quote_len}");
        let real = *nat_real(r).ip();
        assert_eq!((eth_dst(&f), eth_src(&f)), (mac_of(real), PORT1_MAC));
        assert_eq!((ip_src(&f), ip_dst(&f)), (router, real));
        assert_checksums(&f);
        let m = l4(&f);
        assert_eq!(&m[..2], &[3, 4]);
        assert_eq!(m[4..8], rest, "the MTU is kept");
        // The quote is the real's own reply again.
        let q = &m[8..];
        assert_eq!(Ipv4Addr::new(q[12], q[13], q[14], q[15]), real);
        assert_eq!(u16::from_be_bytes([q[20], q[21]]), NAT_REAL_PORT);
        assert_eq!(Ipv4Addr::new(q[16], q[17], q[18], q[19]), CLIENT_IP);
        assert_eq!(
            u16::from_be_bytes([q[10], q[11]]),
            ipv4_header_checksum(&q[..20])
        );
        if quote_len == sent.len() {
            let seg = &q[20..];
            assert_eq!(
                u16::from_be_bytes([seg[16], seg[17]]),
                l4_checksum(real, CLIENT_IP, 6, seg),
                "quoted TCP checksum"
            );
        }
    }
    // About a connection that does not exist: not ours.
    let mut other = sent.clone();
    other[22..24].copy_from_slice(&41000u16.to_be_bytes());
    let err = icmp_error_frame(3, 4, rest, router, *VIP.ip(), &other[..28], PORT0_MAC);
    assert_eq!(lab.run(&err, 0).0, Action::Drop(DropReason::NotForUs));
}

// ---------------------------------------------------------------------------
// Neighbours
// ---------------------------------------------------------------------------

#[test]
fn a_quiet_neighbour_in_use_is_probed_and_stays_usable() {
    // Kernel-like timers: reachable 30 s, delay 5 s, probes 1 s apart.
    let shared = sluice_lb::SharedStats::new(1);
    let cfg = sluice_lb::ForwarderConfig {
        syn_proxy: sluice_lb::synproxy::SynProxyConfig {
            threshold: 0,
            ..Default::default()
        },
        worker: 0,
        workers: 1,
        local_ports: sluice_lb::local_ports::DEFAULT_LOCAL_PORTS,
        table: table_config(1024),
        table6: table_config(1024),
        neighbours: 64,
        neighbour: sluice_core::neigh::NudConfig::default(),
    };
    let mut fwd = sluice_lb::Forwarder::new(&cfg, shared).unwrap();
    let snap = build_snapshot(&[slotted(dr_spec("rr"))], &[]).unwrap();
    let real = *dr_real(0).ip();
    fwd.learn_remote(real, mac_of(real), T0);
    // Five minutes later (the real never sent anything), its traffic still
    // leaves at once, and a unicast probe checks it in the background.
    let later = T0 + 300_000;
    assert_eq!(fwd.neighbour(real, later), Some(mac_of(real)));
    fwd.housekeeping(&snap, later, || true);
    assert!(
        fwd.take_probes().next().is_none(),
        "probed before the delay"
    );
    fwd.housekeeping(&snap, later + 5_000, || true);
    let probes: Vec<_> = fwd.take_probes().collect();
    assert_eq!(probes, vec![(real.into(), mac_of(real))]);
    assert_eq!(fwd.neighbour(real, later + 5_500), Some(mac_of(real)));
    // It answers: reachable again, no more probes.
    fwd.learn_remote(real, mac_of(real), later + 5_600);
    fwd.housekeeping(&snap, later + 9_000, || true);
    assert!(fwd.take_probes().next().is_none());
}
