//! Insert, lookup in both directions, remove, slot reuse, full table,
//! iteration and budgeted drains, through the public API.

mod common;

use std::collections::HashSet;
use std::mem::size_of;

use common::*;
use sluice_conntrack::*;

#[test]
fn entry_fits_a_cache_line() {
    assert!(size_of::<Conn>() <= 64);
    assert_eq!(size_of::<Conn>(), 56);
    assert!(size_of::<Template>() <= 64);
}

#[test]
fn full_nat_replies_are_found_by_the_local_address() {
    let mut t = table(64);
    let lip = "198.51.100.200:1026".parse().unwrap();
    let mut fnat = conn(1, Protocol::Tcp, Forward::FullNat, 0);
    fnat.local = Some(lip);
    let id = t.insert(&fnat, 0).unwrap();
    let reply = FlowKey::outbound(Protocol::Tcp, fnat.real_addr, lip);
    assert_eq!(t.lookup_outbound(&reply), Some(id));
    // The real never sees the client's address: no key of it.
    let by_client = FlowKey::outbound(Protocol::Tcp, fnat.real_addr, fnat.client);
    assert_eq!(t.lookup_outbound(&by_client), None);
    let c = t.get(id).unwrap();
    assert_eq!(
        (c.local(), c.client(), c.fwd()),
        (lip, fnat.client, Forward::FullNat)
    );
    assert_eq!(c.outbound_key(), reply);
    // The same local port to the same real is taken; to another real it
    // is free (ports are per (LIP, RIP, rport)).
    let mut again = conn(2, Protocol::Tcp, Forward::FullNat, 0);
    again.local = Some(lip);
    assert_eq!(t.insert(&again, 0), Err(InsertError::Exists));
    let mut other = conn(3, Protocol::Tcp, Forward::FullNat, 1);
    other.local = Some(lip);
    assert!(t.insert(&other, 0).is_ok());
    t.remove(id).unwrap();
    assert_eq!(t.lookup_outbound(&reply), None);
    assert!(t.insert(&again, 0).is_ok());
}

#[test]
fn insert_and_lookup_both_directions() {
    let mut t = table(64);
    let nat = conn(1, Protocol::Tcp, Forward::Nat, 0);
    let dr = conn(2, Protocol::Tcp, Forward::Dr, 1);
    let a = t.insert(&nat, 0).unwrap();
    let b = t.insert(&dr, 0).unwrap();
    assert_ne!(a, b);

    let in_a = FlowKey::inbound(Protocol::Tcp, nat.client, nat.vip);
    let out_a = FlowKey::outbound(Protocol::Tcp, nat.real_addr, nat.client);
    assert_eq!(t.lookup_inbound(&in_a), Some(a));
    assert_eq!(t.lookup_outbound(&out_a), Some(a));
    // Keys are direction-specific.
    assert_eq!(t.lookup_inbound(&out_a), None);
    assert_eq!(t.lookup_outbound(&in_a), None);
    // Protocol is part of the key.
    let udp = FlowKey {
        proto: Protocol::Udp,
        ..in_a
    };
    assert_eq!(t.lookup_inbound(&udp), None);

    // DR: inbound only; the balancer never sees its replies.
    let in_b = FlowKey::inbound(Protocol::Tcp, dr.client, dr.vip);
    assert_eq!(t.lookup_inbound(&in_b), Some(b));
    let out_b = FlowKey::outbound(Protocol::Tcp, dr.real_addr, dr.client);
    assert_eq!(t.lookup_outbound(&out_b), None);

    let c = t.get(a).unwrap();
    assert_eq!(c.client(), nat.client);
    assert_eq!(c.vip(), nat.vip);
    assert_eq!(c.real_addr(), nat.real_addr);
    assert_eq!((c.fwd(), c.service(), c.real()), (Forward::Nat, 0, 0));
    assert_eq!(c.state(), ConnState::Tcp(TcpState::None));
    assert!(!c.is_active());
    assert_eq!(c.expires(), u64::from(t.timeouts().tcp_none));
    assert_eq!(c.inbound_key(), in_a);
    assert_eq!(c.outbound_key(), out_a);
    assert_eq!(t.get(b).unwrap().fwd(), Forward::Dr);
    assert_eq!(t.len(), 2);
}

#[test]
fn duplicate_keys_are_refused() {
    let mut t = table(64);
    let n = conn(1, Protocol::Tcp, Forward::Nat, 0);
    t.insert(&n, 0).unwrap();
    assert_eq!(t.insert(&n, 0), Err(InsertError::Exists));
    // Another VIP, same real and client port: the NAT reply would be
    // ambiguous, so it is refused too.
    let mut other_vip = n;
    other_vip.vip = "192.0.2.99:80".parse().unwrap();
    assert_eq!(t.insert(&other_vip, 0), Err(InsertError::Exists));
    // As DR it has no outbound key: accepted.
    other_vip.fwd = Forward::Dr;
    t.insert(&other_vip, 0).unwrap();
    // Same addresses, other protocol: a different connection.
    let mut udp = n;
    udp.proto = Protocol::Udp;
    t.insert(&udp, 0).unwrap();
    let s = t.stats();
    assert_eq!((s.inserts, s.insert_exists, s.occupancy), (3, 2, 3));
}

#[test]
fn remove_unindexes_and_counts() {
    let mut t = table(64);
    let n = conn(5, Protocol::Tcp, Forward::Nat, 2);
    let id = t.insert(&n, 0).unwrap();
    let removed = t.remove(id).unwrap();
    assert_eq!(removed.client(), n.client);
    assert_eq!(removed.real(), 2);
    assert_eq!(t.get(id), None);
    assert_eq!(t.remove(id), None);
    assert_eq!(t.lookup_inbound(&removed.inbound_key()), None);
    assert_eq!(t.lookup_outbound(&removed.outbound_key()), None);
    assert_eq!(t.update(id, Dir::Inbound, TcpFlags::SYN, 1), None);
    assert!(!t.refresh(id, 1));
    let s = t.stats();
    assert_eq!((s.occupancy, s.removals, s.inserts), (0, 1, 1));
    // Nothing left to expire.
    let mut n_exp = 0;
    assert!(t.expire(10_000_000, usize::MAX, |_, _| n_exp += 1).done);
    assert_eq!(n_exp, 0);
    // The same key can be inserted again.
    t.insert(&n, 0).unwrap();
}

#[test]
fn freed_slots_are_reused() {
    let mut t = table(4);
    let ids: Vec<ConnId> = (0..4)
        .map(|i| {
            t.insert(&conn(i, Protocol::Udp, Forward::Nat, 0), 0)
                .unwrap()
        })
        .collect();
    assert_eq!(
        t.insert(&conn(9, Protocol::Udp, Forward::Nat, 0), 0),
        Err(InsertError::Full)
    );
    t.remove(ids[1]).unwrap();
    let again = t
        .insert(&conn(10, Protocol::Udp, Forward::Nat, 0), 0)
        .unwrap();
    assert_eq!(again, ids[1]);
    assert_eq!(t.get(again).unwrap().client(), client(10));
    // Everybody else is still where they were.
    for (i, id) in [(0, ids[0]), (2, ids[2]), (3, ids[3]), (10, again)] {
        let key = FlowKey::inbound(Protocol::Udp, client(i), vip());
        assert_eq!(t.lookup_inbound(&key), Some(id));
    }
    assert_eq!(
        t.lookup_inbound(&FlowKey::inbound(Protocol::Udp, client(1), vip())),
        None
    );
}

#[test]
fn full_table_errors_without_panic() {
    for cap in [1u32, 64, 1000] {
        let mut t = table(cap);
        for i in 0..cap {
            t.insert(&conn(i, Protocol::Tcp, Forward::Nat, (i % 7) as u16), 0)
                .unwrap_or_else(|e| panic!("cap {cap} insert {i}: {e}"));
        }
        for i in cap..cap + 3 {
            assert_eq!(
                t.insert(&conn(i, Protocol::Tcp, Forward::Nat, 0), 0),
                Err(InsertError::Full)
            );
        }
        let s = t.stats();
        assert_eq!(s.occupancy, cap);
        assert_eq!(s.capacity, cap);
        assert_eq!(s.inserts, u64::from(cap));
        assert_eq!(s.insert_full, 3);
        // All still found.
        for i in 0..cap {
            let k = FlowKey::inbound(Protocol::Tcp, client(i), vip());
            assert!(t.lookup_inbound(&k).is_some());
        }
        // Room again after a removal.
        let id = t
            .lookup_inbound(&FlowKey::inbound(Protocol::Tcp, client(0), vip()))
            .unwrap();
        t.remove(id);
        t.insert(&conn(cap + 10, Protocol::Tcp, Forward::Nat, 0), 0)
            .unwrap();
    }
}

#[test]
fn iter_lists_live_connections() {
    let mut t = table(100);
    let ids: Vec<ConnId> = (0..50)
        .map(|i| {
            t.insert(&conn(i, Protocol::Tcp, Forward::Dr, (i % 5) as u16), 0)
                .unwrap()
        })
        .collect();
    for id in ids.iter().step_by(3) {
        t.remove(*id);
    }
    let listed: HashSet<ConnId> = t.iter().map(|(id, _)| id).collect();
    let want: HashSet<ConnId> = ids
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 3 != 0)
        .map(|(_, id)| *id)
        .collect();
    assert_eq!(listed, want);
    // A caller-side filter, as `conn list --real 2` would do.
    let on_real_2 = t.iter().filter(|(_, c)| c.real() == 2).count();
    assert_eq!(
        on_real_2,
        (0..50).filter(|i| i % 5 == 2 && i % 3 != 0).count()
    );
}

#[test]
fn drain_real_is_budgeted_and_exact() {
    let mut t = table(512);
    let mask = "255.255.255.0".parse().unwrap();
    for r in 0..3u16 {
        let ip = std::net::Ipv4Addr::new(203, 0, 113 + r as u8, 1);
        t.templates_mut().insert(0, ip, mask, r, 1000, 0).unwrap();
    }
    for i in 0..300 {
        t.insert(&conn(i, Protocol::Tcp, Forward::Nat, (i % 3) as u16), 0)
            .unwrap();
    }
    let mut cursor = ScanCursor::new();
    let mut removed = vec![];
    let mut calls = 0;
    loop {
        calls += 1;
        let before = removed.len();
        let done = t.drain_real(&mut cursor, 0, 1, 16, |_, c| removed.push(*c));
        assert!(removed.len() - before <= 16);
        if done {
            break;
        }
        assert!(calls < 1000);
    }
    // 300 connection slots + 3 template slots at 16 per call.
    assert!(calls >= 300 / 16);
    assert_eq!(removed.len(), 100);
    assert!(removed.iter().all(|c| c.real() == 1 && c.service() == 0));
    assert_eq!(t.len(), 200);
    assert!(t.iter().all(|(_, c)| c.real() != 1));
    assert_eq!(t.stats().removals, 100);
    let reals: Vec<u16> = t.templates().iter().map(|(_, tp)| tp.real()).collect();
    assert_eq!(reals, vec![0, 2]);
}

#[test]
fn remove_matching_by_service() {
    let mut t = table(64);
    for i in 0..40 {
        let mut n = conn(i, Protocol::Udp, Forward::Dr, 0);
        n.service = i % 4;
        t.insert(&n, 0).unwrap();
    }
    let mut cursor = ScanCursor::new();
    let mut n = 0;
    while !t.remove_matching(&mut cursor, 7, |c| c.service() == 3, |_, _| n += 1) {}
    assert_eq!(n, 10);
    assert_eq!(t.len(), 30);
}

#[test]
fn default_config_allocates_everything_up_front() {
    let cfg = TableConfig::default();
    let t: ConnTable = ConnTable::new(&cfg).unwrap();
    assert_eq!(t.capacity(), 1 << 22);
    assert_eq!(t.memory_bytes(), cfg.memory_bytes());
    // 72 bytes per connection: 56 of entry + 2 x 8 of index.
    assert!(cfg.memory_bytes() < (1 << 22) * 72 + (16 << 20));
    assert!(t.is_empty());
    assert!(ConnTable::<std::net::Ipv4Addr>::new(&TableConfig::with_capacity(0)).is_err());
}
