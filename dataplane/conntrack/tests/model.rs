//! Model test: random sequences of insert / lookup (both directions) /
//! update / remove / clock advance / budgeted expire, run against the table
//! and against a `std::collections::HashMap` model, must agree on every
//! result and every counter.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4};

use proptest::prelude::*;
use sluice_conntrack::tcp_state::{next_state, Table};
use sluice_conntrack::*;

/// Small address domains so that keys collide often.
#[derive(Clone, Copy, Debug)]
struct Addr {
    c: u8,
    cport: u8,
    v: u8,
    udp: bool,
}

impl Addr {
    fn proto(self) -> Protocol {
        if self.udp {
            Protocol::Udp
        } else {
            Protocol::Tcp
        }
    }
    fn client(self) -> SocketAddrV4 {
        SocketAddrV4::new(
            Ipv4Addr::new(198, 51, 100, self.c),
            40_000 + u16::from(self.cport),
        )
    }
    fn vip(self) -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1 + self.v), 80)
    }
    fn in_key(self) -> FlowKey {
        FlowKey::inbound(self.proto(), self.client(), self.vip())
    }
}

fn real_addr(r: u8) -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1 + r), 8080)
}

#[derive(Clone, Debug)]
enum Op {
    Insert { a: Addr, r: u8, dr: bool },
    LookupIn(Addr),
    LookupOut { a: Addr, r: u8 },
    Update { a: Addr, outbound: bool, flags: u8 },
    Remove(Addr),
    Advance(u16),
    Expire(usize),
}

fn addr() -> impl Strategy<Value = Addr> {
    (0u8..3, 0u8..2, 0u8..2, any::<bool>()).prop_map(|(c, cport, v, udp)| Addr { c, cport, v, udp })
}

fn op() -> impl Strategy<Value = Op> {
    let flags = prop::sample::select(vec![0x02u8, 0x12, 0x10, 0x11, 0x01, 0x04, 0x14, 0x18, 0x00]);
    prop_oneof![
        4 => (addr(), 0u8..3, any::<bool>()).prop_map(|(a, r, dr)| Op::Insert { a, r, dr }),
        2 => addr().prop_map(Op::LookupIn),
        2 => (addr(), 0u8..3).prop_map(|(a, r)| Op::LookupOut { a, r }),
        8 => (addr(), any::<bool>(), flags).prop_map(|(a, outbound, flags)| Op::Update { a, outbound, flags }),
        1 => addr().prop_map(Op::Remove),
        3 => (0u16..60).prop_map(Op::Advance),
        3 => prop_oneof![Just(usize::MAX), 0usize..6].prop_map(Op::Expire),
    ]
}

#[derive(Clone, Copy, Debug)]
struct MConn {
    out_key: FlowKey,
    nat: bool,
    real: u16,
    state: ConnState,
    seen_reply: bool,
    expires: u64,
}

#[derive(Default)]
struct Model {
    conns: HashMap<FlowKey, MConn>,
    by_out: HashMap<FlowKey, FlowKey>,
    inserts: u64,
    full: u64,
    exists: u64,
    expiries: u64,
    removals: u64,
}

impl Model {
    fn drop_conn(&mut self, in_key: &FlowKey) -> MConn {
        let c = self.conns.remove(in_key).unwrap();
        if c.nat {
            self.by_out.remove(&c.out_key);
        }
        c
    }
}

/// Short timeouts (ms) so that things expire within a test case.
fn timeouts() -> Timeouts {
    let mut t = Timeouts::default();
    for (i, s) in TcpState::ALL.into_iter().enumerate() {
        t.set_tcp(s, 5 + 13 * i as u32 % 70);
    }
    t.tcp_established = 90;
    t.tcp_close = 4;
    t.udp = 40;
    t
}

fn check_conn(c: &Conn, m: &MConn) {
    assert_eq!(c.state(), m.state);
    assert_eq!(c.expires(), m.expires);
    assert_eq!(c.real(), m.real);
    assert_eq!(c.fwd() == Forward::Nat, m.nat);
    assert_eq!(c.flags().contains(ConnFlags::SEEN_REPLY), m.seen_reply);
    assert_eq!(c.outbound_key(), m.out_key);
}

fn run(capacity: u32, tick_ms: u32, wheel_slots: u32, ops: Vec<Op>) {
    let to = timeouts();
    let mut t = ConnTable::new(&TableConfig {
        capacity,
        template_capacity: 4,
        tick_ms,
        wheel_slots,
        hash_seed: 0x1234,
        timeouts: to,
        huge_pages: false,
    })
    .unwrap();
    let mut m = Model::default();
    let mut now: u64 = 1_000;

    for op in ops {
        match op {
            Op::Insert { a, r, dr } => {
                let fwd = if dr { Forward::Dr } else { Forward::Nat };
                let new = NewConn {
                    proto: a.proto(),
                    client: a.client(),
                    vip: a.vip(),
                    real_addr: real_addr(r),
                    local: None,
                    fwd,
                    service: u32::from(a.v),
                    real: u16::from(r),
                    template: None,
                };
                let in_key = a.in_key();
                let out_key = FlowKey::outbound(a.proto(), real_addr(r), a.client());
                let want =
                    if m.conns.contains_key(&in_key) || (!dr && m.by_out.contains_key(&out_key)) {
                        Err(InsertError::Exists)
                    } else if m.conns.len() == capacity as usize {
                        Err(InsertError::Full)
                    } else {
                        Ok(())
                    };
                let got = t.insert(&new, now);
                assert_eq!(got.map(|_| ()), want);
                match want {
                    Ok(()) => {
                        let state = if a.udp {
                            ConnState::Udp
                        } else {
                            ConnState::Tcp(TcpState::None)
                        };
                        m.inserts += 1;
                        m.conns.insert(
                            in_key,
                            MConn {
                                out_key,
                                nat: !dr,
                                real: u16::from(r),
                                state,
                                seen_reply: false,
                                expires: now + u64::from(to.for_state(state)),
                            },
                        );
                        if !dr {
                            m.by_out.insert(out_key, in_key);
                        }
                    }
                    Err(InsertError::Exists) => m.exists += 1,
                    Err(_) => m.full += 1,
                }
            }
            Op::LookupIn(a) => {
                let got = t.lookup_inbound(&a.in_key());
                match m.conns.get(&a.in_key()) {
                    Some(mc) => check_conn(t.get(got.expect("missing inbound")).unwrap(), mc),
                    None => assert_eq!(got, None),
                }
            }
            Op::LookupOut { a, r } => {
                let k = FlowKey::outbound(a.proto(), real_addr(r), a.client());
                let got = t.lookup_outbound(&k);
                match m.by_out.get(&k) {
                    Some(in_key) => {
                        let c = t.get(got.expect("missing outbound")).unwrap();
                        assert_eq!(c.inbound_key(), *in_key);
                        check_conn(c, &m.conns[in_key]);
                    }
                    None => assert_eq!(got, None),
                }
            }
            Op::Update { a, outbound, flags } => {
                let in_key = a.in_key();
                let Some(mc) = m.conns.get_mut(&in_key) else {
                    assert_eq!(t.lookup_inbound(&in_key), None);
                    continue;
                };
                // Replies are found by the outbound key (NAT only).
                let id = if outbound && mc.nat {
                    t.lookup_outbound(&mc.out_key).unwrap()
                } else {
                    t.lookup_inbound(&in_key).unwrap()
                };
                let dir = if outbound {
                    Dir::Outbound
                } else {
                    Dir::Inbound
                };
                let old = mc.state;
                let new = match old {
                    ConnState::Tcp(s) => {
                        let table = if outbound {
                            Table::Output
                        } else if !mc.nat && !mc.seen_reply {
                            Table::InputOnly
                        } else {
                            Table::Input
                        };
                        ConnState::Tcp(next_state(s, table, TcpFlags::from_bits(flags)))
                    }
                    ConnState::Udp => ConnState::Udp,
                };
                mc.state = new;
                mc.seen_reply |= outbound;
                mc.expires = now + u64::from(to.for_state(new));
                let u = t.update(id, dir, TcpFlags::from_bits(flags), now).unwrap();
                assert_eq!((u.old, u.new, u.expires), (old, new, mc.expires));
                assert_eq!(u.activity, Activity::between(old, new));
                check_conn(t.get(id).unwrap(), mc);
            }
            Op::Remove(a) => match t.lookup_inbound(&a.in_key()) {
                Some(id) => {
                    let c = t.remove(id).unwrap();
                    let mc = m.drop_conn(&a.in_key());
                    check_conn(&c, &mc);
                    m.removals += 1;
                }
                None => assert!(!m.conns.contains_key(&a.in_key())),
            },
            Op::Advance(d) => now += u64::from(d),
            Op::Expire(budget) => {
                let mut expired = vec![];
                let p = t.expire(now, budget, |_, c| expired.push(*c));
                assert!(p.examined <= budget);
                assert_eq!(p.expired, expired.len());
                for c in &expired {
                    assert!(c.expires() <= now, "expired early");
                    let mc = m.drop_conn(&c.inbound_key());
                    check_conn(c, &mc);
                    m.expiries += 1;
                }
                if p.done {
                    // Everything due by the last whole tick is gone.
                    let now_tick = now / u64::from(tick_ms);
                    for mc in m.conns.values() {
                        assert!(mc.expires.div_ceil(u64::from(tick_ms)) > now_tick);
                    }
                }
            }
        }
        let s = t.stats();
        assert_eq!(s.occupancy as usize, m.conns.len());
        assert_eq!(
            (
                s.inserts,
                s.insert_full,
                s.insert_exists,
                s.expiries,
                s.removals
            ),
            (m.inserts, m.full, m.exists, m.expiries, m.removals)
        );
    }

    // Everything expires eventually, and the table agrees with the model on
    // what was left.
    let mut left = 0;
    let p = t.expire(now + 1_000_000, usize::MAX, |_, c| {
        m.drop_conn(&c.inbound_key());
        left += 1;
    });
    assert!(p.done);
    assert!(m.conns.is_empty());
    assert!(t.is_empty());
    assert_eq!(t.iter().count(), 0);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn table_matches_hashmap_model(
        capacity in prop_oneof![Just(1u32), 2u32..12, Just(64)],
        tick_ms in prop::sample::select(vec![1u32, 3, 10]),
        wheel_slots in prop::sample::select(vec![2u32, 8, 64]),
        ops in prop::collection::vec(op(), 1..400),
    ) {
        run(capacity, tick_ms, wheel_slots, ops);
    }
}
