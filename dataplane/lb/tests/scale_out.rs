//! Several appliances behind one ECMP router: a connection's packets may
//! move from the appliance that scheduled its SYN to another one, which has
//! no entry for it. With `on_miss = "hash"` (the default for mh) that
//! appliance sends it to the real the first one chose, and makes an entry.
//! Two forwarders built from the same configuration stand for the two
//! appliances.

mod common;

use common::*;
use sluice_core::DropReason;
use sluice_lb::Action;
use sluice_proto::OnMiss;
use std::net::{Ipv4Addr, SocketAddrV4};

const FWD_SERVERS: Action = Action::Forward { port: 1 };

/// Client `i` of 256: 64 addresses of the client segment (192.0.2.0/24)
/// and of the routed clients' prefix (203.0.113.0/24), four ports each.
fn client_n(i: u32) -> SocketAddrV4 {
    let host = 150 + (i % 64) as u8;
    let ip = if i.is_multiple_of(2) {
        Ipv4Addr::new(192, 0, 2, host)
    } else {
        Ipv4Addr::new(203, 0, 113, host)
    };
    SocketAddrV4::new(ip, 30000 + i as u16)
}

fn appliance(spec: sluice_proto::ServiceSpec) -> Lab {
    let mut lab = Lab::new(&[slotted(spec)]);
    lab.learn_nat_reals();
    lab
}

/// Every connection scheduled on appliance A and moved mid-way to
/// appliance B reaches the same real from B, B makes an entry for it (its
/// next packets are ordinary table hits), and the real's replies through B
/// are translated.
#[test]
fn a_connection_moved_to_another_appliance_reaches_the_same_real() {
    let spec = nat_spec("mh");
    assert_eq!(spec.on_miss(), OnMiss::Hash, "mh hashes misses by default");
    let mut a = appliance(spec.clone());
    let mut b = appliance(spec);
    let mut seen = [0usize; 3];
    for i in 0..256 {
        let c = client_n(i);
        let r = a.syn_to_nat(c);
        seen[r] += 1;
        let (act, f) = a.ack_from(c);
        assert_eq!((act, nat_index(&f)), (FWD_SERVERS, r));
        // The ECMP hash now sends the flow to B.
        let (act, f) = b.ack_from(c);
        assert_eq!(
            (act, nat_index(&f)),
            (FWD_SERVERS, r),
            "client {c} moved to B went to another real"
        );
        assert_checksums(&f);
        let (act, f) = b.ack_from(c);
        assert_eq!((act, nat_index(&f)), (FWD_SERVERS, r));
        if c.ip().octets()[0] == 192 {
            // On the client segment (the routed clients have no route in
            // this lab): the real's reply through B is translated back.
            b.learn(*c.ip());
            let (act, _) = b.reply_from(r, c, ACK);
            assert_eq!(act, Action::Forward { port: 0 }, "reply through B");
        }
    }
    assert!(seen.iter().all(|n| *n > 30), "mh spread: {seen:?}");
    assert_eq!(
        b.stats().hashed_on_miss.get(),
        256,
        "one miss per connection"
    );
    assert_eq!(b.fwd.table().len(), 256);
    assert_eq!(a.stats().hashed_on_miss.get(), 0);
}

/// With `on_miss = "drop"`, or with a scheduler that does not hash, a
/// moved connection's segment is dropped as LVS drops it.
#[test]
fn without_hashing_on_miss_a_moved_connection_is_dropped() {
    let mut spec = nat_spec("mh");
    spec.on_miss_setting = Some(OnMiss::Drop);
    let mut b = appliance(spec);
    assert_eq!(
        b.ack_from(client_n(1)).0,
        Action::Drop(DropReason::NoConnection)
    );
    let mut b = appliance(nat_spec("wrr"));
    assert_eq!(
        b.ack_from(client_n(1)).0,
        Action::Drop(DropReason::NoConnection)
    );
    assert_eq!(b.stats().hashed_on_miss.get(), 0);
    assert_eq!(b.fwd.table().len(), 0);
}

/// sh hashes too, when asked; a scheduler whose choice another appliance
/// cannot repeat is refused with the reason.
#[test]
fn hashing_on_miss_needs_a_hashing_scheduler() {
    let mut spec = nat_spec("sh");
    spec.on_miss_setting = Some(OnMiss::Hash);
    let mut a = appliance(spec.clone());
    let mut b = appliance(spec);
    for i in 0..64 {
        let c = client_n(i);
        let r = a.syn_to_nat(c);
        let (act, f) = b.ack_from(c);
        assert_eq!((act, nat_index(&f)), (FWD_SERVERS, r));
    }
    let mut spec = nat_spec("wrr");
    spec.on_miss_setting = Some(OnMiss::Hash);
    let err = build_snapshot(&[slotted(spec)], &[]).unwrap_err();
    assert!(
        err.contains("needs a hashing scheduler (sh or mh)"),
        "{err}"
    );
}

/// A segment with a bad checksum makes no entry (a real would drop it).
#[test]
fn a_bad_miss_makes_no_entry() {
    let mut b = appliance(nat_spec("mh"));
    let mut f = Tcp::new(client_n(3), VIP, ACK).frame();
    // The TCP checksum: Ethernet 14 + IPv4 20 + offset 16.
    f[50] ^= 0x55;
    let (act, _) = b.run(&f, 0);
    assert_eq!(act, Action::Drop(DropReason::BadL4Checksum));
    assert_eq!(b.fwd.table().len(), 0);
    assert_eq!(b.stats().hashed_on_miss.get(), 0);
}

/// Connection sync, for the schedulers that do not hash: appliance A
/// queues every connection it makes and every state change; installed on
/// appliance B, they send the moved connections to the same reals. B
/// queues nothing back for what it installed.
#[test]
fn synced_connections_reach_the_same_real_on_another_appliance() {
    let spec = nat_spec("wrr");
    let mut a = appliance(spec.clone());
    let mut b = appliance(spec);
    a.fwd.enable_sync(1024);
    b.fwd.enable_sync(1024);
    let mut reals = Vec::new();
    for i in 0..64 {
        let c = client_n(i);
        reals.push(a.syn_to_nat(c));
        a.ack_from(c);
    }
    let mut records = Vec::new();
    a.fwd.take_sync(|r| records.push(r));
    // Each connection: SYN_RECV at the SYN, ESTABLISHED at the ACK.
    assert_eq!(records.len(), 128, "{records:?}");
    assert_eq!(a.stats().sync_queued.get(), 128);
    for r in &records {
        b.fwd.install(&b.snap, r, b.now);
    }
    assert_eq!(b.stats().sync_installed.get(), 128);
    assert_eq!(b.fwd.table().len(), 64);
    let mut back = Vec::new();
    b.fwd.take_sync(|r| back.push(r));
    assert!(back.is_empty(), "installed connections were queued back");
    for (i, r) in reals.iter().enumerate() {
        let c = client_n(i as u32);
        let (act, f) = b.ack_from(c);
        assert_eq!((act, nat_index(&f)), (FWD_SERVERS, *r), "client {c}");
    }
    // A connection on a service B does not have is not installed.
    let mut stray = records[0];
    stray.vip.set_port(81);
    assert_eq!(
        b.fwd.install(&b.snap, &stray, b.now),
        sluice_lb::Installed::Unknown
    );
    assert_eq!(b.stats().sync_unknown.get(), 1);
}

/// Sync is off unless enabled: a forwarder without it queues nothing
/// (and so costs nothing but a test of an `Option`).
#[test]
fn without_sync_nothing_is_queued() {
    let mut a = appliance(nat_spec("wrr"));
    a.syn_to_nat(client_n(1));
    let mut records = Vec::new();
    a.fwd.take_sync(|r| records.push(r));
    assert!(records.is_empty());
}

/// A long connection is told about again when its first expiry comes and
/// it lives on (it carried traffic), so that the peers' copy, made at its
/// last state change, does not expire under it; an idle one is not.
#[test]
fn a_long_connection_is_told_about_again_before_the_peers_copy_expires() {
    let mut a = appliance(nat_spec("wrr"));
    a.fwd.enable_sync(1024);
    // (The expiry wheel starts at the lab's clock.)
    a.housekeeping();
    let (busy, idle) = (client_n(1), client_n(2));
    for c in [busy, idle] {
        a.syn_to_nat(c);
        a.ack_from(c);
    }
    let mut records = Vec::new();
    a.fwd.take_sync(|r| records.push(r));
    assert_eq!(records.len(), 4, "SYN_RECV and ESTABLISHED of each");
    let established = a.fwd.table().timeouts().tcp_established as u64;
    // The busy one carries traffic every minute. Both are told about once
    // more when the handshake's timeout passes (the expiry wheel re-files
    // them then: their state's timeout grew); nothing else meanwhile.
    let mut t = 0;
    while t + 60_000 < established {
        t += 60_000;
        a.now += 60_000;
        a.ack_from(busy);
        a.housekeeping();
    }
    records.clear();
    a.fwd.take_sync(|r| records.push(r));
    assert_eq!(records.len(), 2, "{records:?}");
    records.clear();
    // The busy one's re-filed expiry comes (the handshake's timeout plus
    // the established one: when the copy the peers refreshed would
    // expire): it is told again; the idle one has expired.
    a.now += 60_000 + established - t + 1_000;
    a.housekeeping();
    a.fwd.take_sync(|r| records.push(r));
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0].client, std::net::SocketAddr::V4(busy));
    assert_eq!(a.fwd.table().len(), 1, "the idle one expired");
}

/// Two appliances with sync: A's connections, installed on B, are never
/// told back and never kept alive by B; B's copies expire on their own
/// timeouts. (Before, each re-told the other's copies when the expiry
/// wheel re-filed them, and idle copies lived forever.)
#[test]
fn a_peers_copy_is_never_told_back_and_expires_on_its_own() {
    let spec = nat_spec("wrr");
    let mut a = appliance(spec.clone());
    let mut b = appliance(spec);
    for lab in [&mut a, &mut b] {
        lab.fwd.enable_sync(1024);
        lab.housekeeping();
    }
    let c = client_n(4);
    a.syn_to_nat(c);
    a.ack_from(c);
    let mut records = Vec::new();
    a.fwd.take_sync(|r| records.push(r));
    for r in &records {
        b.fwd.install(&b.snap, r, b.now);
    }
    assert_eq!(b.fwd.table().len(), 1);
    // Half an hour in minute steps: B re-files its copy when the
    // handshake's timeout passes, and tells nobody.
    for _ in 0..30 {
        b.now += 60_000;
        b.housekeeping();
        let mut back = Vec::new();
        b.fwd.take_sync(|r| back.push(r));
        assert!(back.is_empty(), "B told back: {back:?}");
    }
    assert_eq!(b.fwd.table().len(), 0, "the idle copy expired");
    assert_eq!(b.stats().half_open.get(), 0);
}

/// A peer's copy that moves here (a packet arrives for it) becomes this
/// appliance's: later words from the peer do not change it. A copy the
/// peer re-tells with another real (the client reused its port) is
/// replaced.
#[test]
fn a_copy_is_replaced_or_kept_as_its_use_says() {
    let spec = nat_spec("wrr");
    let mut b = appliance(spec);
    b.fwd.enable_sync(1024);
    let c = client_n(5);
    let rec = |real: usize, state: u8| sluice_sync::ConnRecord {
        proto: sluice_conntrack::Protocol::Tcp,
        state,
        fwd: sluice_proto::Forward::Nat,
        client: std::net::SocketAddr::V4(c),
        vip: std::net::SocketAddr::V4(VIP),
        real: std::net::SocketAddr::V4(nat_real(real)),
    };
    const ESTABLISHED: u8 = 1;
    const TIME_WAIT: u8 = 5;
    use sluice_lb::Installed;
    assert_eq!(
        b.fwd.install(&b.snap, &rec(0, TIME_WAIT), b.now),
        Installed::New
    );
    assert_eq!(
        b.fwd.install(&b.snap, &rec(2, ESTABLISHED), b.now),
        Installed::Updated
    );
    let (act, f) = b.ack_from(c);
    assert_eq!((act, nat_index(&f)), (FWD_SERVERS, 2), "the new real");
    // It carried a packet here: B's own now.
    assert_eq!(
        b.fwd.install(&b.snap, &rec(1, ESTABLISHED), b.now),
        Installed::Kept
    );
    let (act, f) = b.ack_from(c);
    assert_eq!((act, nat_index(&f)), (FWD_SERVERS, 2));
    assert_eq!(b.fwd.table().len(), 1);
}

/// A peer's half-open copies are not this appliance's handshakes: they
/// count neither as half-open (which engages the SYN proxy) nor, when
/// they expire unanswered, against the real's passive health.
#[test]
fn a_peers_half_open_copies_count_for_nothing_here() {
    let mut b = appliance(nat_spec("wrr"));
    b.fwd.enable_sync(1024);
    b.housekeeping();
    for i in 0..20 {
        let r = sluice_sync::ConnRecord {
            proto: sluice_conntrack::Protocol::Tcp,
            state: 3, // SYN_RECV
            fwd: sluice_proto::Forward::Nat,
            client: std::net::SocketAddr::V4(client_n(i)),
            vip: std::net::SocketAddr::V4(VIP),
            real: std::net::SocketAddr::V4(nat_real(0)),
        };
        b.fwd.install(&b.snap, &r, b.now);
    }
    assert_eq!(b.stats().half_open.get(), 0);
    b.now += 120_000;
    b.housekeeping();
    assert_eq!(b.fwd.table().len(), 0);
    assert_eq!(b.stats().real(REAL_SLOTS[0]).syn_timeouts.get(), 0);
    assert_eq!(b.stats().half_open.get(), 0);
}

/// While SYN cookies are live, an ACK that is no valid cookie is dropped
/// even on a service that hashes its misses: a flood's ACKs make no
/// entries and reach no real.
#[test]
fn hashing_on_miss_does_not_open_a_door_in_the_syn_proxy() {
    let mut spec = nat_spec("mh");
    spec.syn_proxy = sluice_proto::SynProxyMode::On;
    let mut lab = Lab::with_syn_threshold(&[slotted(spec)], 1);
    lab.learn_nat_reals();
    // A SYN answered with a cookie makes cookies live.
    let c = client_n(9);
    lab.learn(*c.ip());
    let (a, _) = lab.run(&Tcp::new(c, VIP, SYN).frame(), 0);
    assert!(matches!(a, Action::Reply(_)), "{a:?}");
    for i in 10..40 {
        let (a, _) = lab.ack_from(client_n(i));
        assert!(matches!(a, Action::Drop(_) | Action::Reply(_)), "{a:?}");
    }
    assert_eq!(lab.stats().hashed_on_miss.get(), 0);
    assert_eq!(lab.fwd.table().len(), 0);
}

/// A peer that joins asks for every connection: the worker tells all its
/// own (a slice per call), never the copies it holds for other peers.
#[test]
fn a_joining_peer_is_told_every_own_connection() {
    let spec = nat_spec("wrr");
    let mut a = appliance(spec.clone());
    a.fwd.enable_sync(4096);
    let mut reals = Vec::new();
    for i in 0..100 {
        let c = client_n(i);
        reals.push(a.syn_to_nat(c));
        a.ack_from(c);
    }
    // Told when B was not there: lost.
    a.fwd.take_sync(|_| {});
    // A copy A holds for another peer.
    let copy = sluice_sync::ConnRecord {
        proto: sluice_conntrack::Protocol::Tcp,
        state: 1,
        fwd: sluice_proto::Forward::Nat,
        client: std::net::SocketAddr::V4(client_n(200)),
        vip: std::net::SocketAddr::V4(VIP),
        real: std::net::SocketAddr::V4(nat_real(0)),
    };
    a.fwd.install(&a.snap, &copy, a.now);
    let mut cursor = sluice_lb::RetellCursor::default();
    let mut records = Vec::new();
    let mut calls = 0;
    while !a.fwd.retell_all(&mut cursor, 16) {
        a.fwd.take_sync(|r| records.push(r));
        calls += 1;
        assert!(calls < 100, "never done");
    }
    a.fwd.take_sync(|r| records.push(r));
    assert!(calls > 5, "told in slices ({calls})");
    assert_eq!(records.len(), 100, "every own connection, no copy");
    // B, joining, installs them: the connections reach their reals there.
    let mut b = appliance(spec);
    b.fwd.enable_sync(4096);
    for r in &records {
        b.fwd.install(&b.snap, r, b.now);
    }
    for (i, r) in reals.iter().enumerate() {
        let (act, f) = b.ack_from(client_n(i as u32));
        assert_eq!((act, nat_index(&f)), (FWD_SERVERS, *r));
    }
}
