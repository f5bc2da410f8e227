//! The IPv6 connection table: the same table written once over the address
//! family, with 104-byte entries. Inserts, lookups in both directions, the
//! state machine, expiry and persistence templates on a /64, checked
//! against a map; and the bytes per connection of each family.

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV6};

use proptest::prelude::*;
use sluice_conntrack::tcp_state::{ConnState, Dir, TcpFlags, TcpState};
use sluice_conntrack::*;

fn table(capacity: u32) -> ConnTable<Ipv6Addr> {
    ConnTable::new(&TableConfig {
        capacity,
        template_capacity: 64,
        tick_ms: 1,
        wheel_slots: 1024,
        ..TableConfig::default()
    })
    .unwrap()
}

fn sock(addr: u128, port: u16) -> SocketAddrV6 {
    SocketAddrV6::new(Ipv6Addr::from(addr), port, 0, 0)
}

const VIP: u128 = 0x2001_0db8_0000_0000_0000_0000_0000_0100;
const CLIENTS: u128 = 0x2001_0db8_0001_0000_0000_0000_0000_0000;
const REALS: u128 = 0x2001_0db8_0002_0000_0000_0000_0000_0000;

fn conn(client: u128, cport: u16, real: u16, fwd: Forward) -> NewConn<SocketAddrV6> {
    NewConn {
        proto: Protocol::Tcp,
        client: sock(client, cport),
        vip: sock(VIP, 80),
        real_addr: sock(REALS | u128::from(real), 8080),
        local: None,
        fwd,
        service: 0,
        real,
        template: None,
    }
}

proptest! {
    /// Random IPv6 clients (anywhere in the address, so both halves
    /// vary) into a table, against a map: every connection is found by its
    /// inbound key and, for NAT, by its outbound key; removed ones are not.
    #[test]
    fn lookups_agree_with_a_map(
        clients in proptest::collection::vec((any::<u128>(), any::<u16>(), 0u16..4, any::<bool>()), 1..200),
        remove_every in 2usize..5,
    ) {
        let mut t = table(1024);
        let mut model = HashMap::new();
        for (c, port, real, dr) in clients {
            let fwd = if dr { Forward::Dr } else { Forward::Nat };
            let n = conn(c, port, real, fwd);
            let key = FlowKey::inbound(n.proto, n.client, n.vip);
            if model.contains_key(&key) {
                prop_assert_eq!(t.insert(&n, 0), Err(InsertError::Exists));
                continue;
            }
            let id = t.insert(&n, 0).unwrap();
            model.insert(key, (id, n));
        }
        let keys: Vec<_> = model.keys().copied().collect();
        for (i, k) in keys.iter().enumerate() {
            if i % remove_every == 0 {
                let (id, _) = model.remove(k).unwrap();
                prop_assert!(t.remove(id).is_some());
            }
        }
        prop_assert_eq!(t.len() as usize, model.len());
        for (k, (id, n)) in &model {
            prop_assert_eq!(t.lookup_inbound(k), Some(*id));
            let c = t.get(*id).unwrap();
            prop_assert_eq!((c.client(), c.vip(), c.real_addr()), (n.client, n.vip, n.real_addr));
            let out = FlowKey::outbound(n.proto, n.real_addr, n.client);
            let found = t.lookup_outbound(&out);
            if n.fwd == Forward::Nat {
                prop_assert_eq!(found, Some(*id));
            } else {
                prop_assert_eq!(found, None);
            }
        }
        for k in &keys {
            if !model.contains_key(k) {
                prop_assert_eq!(t.lookup_inbound(k), None);
            }
        }
    }
}

#[test]
fn handshake_and_expiry_as_for_ipv4() {
    let mut t = table(64);
    let n = conn(CLIENTS | 7, 40000, 1, Forward::Nat);
    let id = t.insert(&n, 0).unwrap();
    t.update(id, Dir::Inbound, TcpFlags::SYN, 0).unwrap();
    assert_eq!(
        t.get(id).unwrap().state(),
        ConnState::Tcp(TcpState::SynRecv)
    );
    for (dir, flags) in [(Dir::Outbound, 0x12), (Dir::Inbound, 0x10)] {
        t.update(id, dir, TcpFlags::from_bits(flags), 10).unwrap();
    }
    assert_eq!(
        t.get(id).unwrap().state(),
        ConnState::Tcp(TcpState::Established)
    );
    let mut expired = Vec::new();
    let far = 10 + 16 * 60 * 1000;
    t.expire(far, usize::MAX, |_, c| expired.push(c.client()));
    assert_eq!(expired, vec![n.client]);
    assert!(t.is_empty());
}

#[test]
fn persistence_groups_clients_of_a_slash_64() {
    let mut t = table(64);
    let mask = Ipv6Addr::from(u128::MAX << 64);
    let a = Ipv6Addr::from(CLIENTS | 0x1234);
    let b = Ipv6Addr::from(CLIENTS | 0xffff_0000_0000_0001);
    let other = Ipv6Addr::from(CLIENTS | 1 << 64);
    let tpl = t.templates_mut().insert(0, a, mask, 3, 60_000, 0).unwrap();
    assert_eq!(t.templates().lookup(0, b, mask), Some(tpl));
    assert_eq!(
        t.templates().get(tpl).unwrap().client_net(),
        Ipv6Addr::from(CLIENTS)
    );
    assert_eq!(t.templates().lookup(0, other, mask), None);
    assert_eq!(t.templates().lookup(1, a, mask), None);
}

/// Bytes per connection of each family, as built (the figure docs/design.md
/// states): the slab entry plus two index slots and the wheel's share.
#[test]
fn bytes_per_connection() {
    let cfg = TableConfig {
        capacity: 1 << 16,
        template_capacity: 1 << 10,
        ..TableConfig::default()
    };
    let v4 = ConnTable::<Ipv4Addr>::new(&cfg).unwrap().memory_bytes();
    let v6 = ConnTable::<Ipv6Addr>::new(&cfg).unwrap().memory_bytes();
    assert_eq!(v4, cfg.memory_bytes_of::<Ipv4Addr>());
    assert_eq!(v6, cfg.memory_bytes_of::<Ipv6Addr>());
    let per = |b: usize| b as f64 / f64::from(cfg.capacity);
    println!(
        "bytes per connection: IPv4 {:.1}, IPv6 {:.1}",
        per(v4),
        per(v6)
    );
    // The entries differ by 48 bytes (four addresses); templates by 8.
    assert_eq!(v6 - v4, (1 << 16) * 48 + (1 << 10) * 8);
}
