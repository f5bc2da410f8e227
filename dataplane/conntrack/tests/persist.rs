//! Persistence templates with connections: masked client lookup, expiry,
//! and templates kept alive while connections refer to them.

mod common;

use std::net::Ipv4Addr;

use common::*;
use sluice_conntrack::*;

const MASK24: Ipv4Addr = Ipv4Addr::new(255, 255, 255, 0);
const PERSIST_MS: u32 = 300_000;

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

/// The data path's persistent scheduling step: reuse the client network's
/// template, or make one for `real`.
fn schedule(t: &mut ConnTable, client: Ipv4Addr, real: u16, now: u64) -> (TemplateId, u16) {
    let tpl = t.templates_mut();
    match tpl.lookup(0, client, MASK24) {
        Some(id) => (id, tpl.get(id).unwrap().real()),
        None => (
            tpl.insert(0, client, MASK24, real, PERSIST_MS, now)
                .unwrap(),
            real,
        ),
    }
}

fn persistent_conn(client: Ipv4Addr, port: u16, real: u16, tpl: TemplateId) -> NewConn {
    NewConn {
        client: std::net::SocketAddrV4::new(client, port),
        ..with_template(conn(0, Protocol::Tcp, Forward::Nat, real), tpl)
    }
}

#[test]
fn clients_of_a_slash_24_share_a_real() {
    let mut t = table(64);
    let (tpl, real) = schedule(&mut t, ip("198.51.100.10"), 3, 0);
    assert_eq!(real, 3);
    let a = t
        .insert(&persistent_conn(ip("198.51.100.10"), 1000, real, tpl), 0)
        .unwrap();
    // Another client of the same /24 would be scheduled to real 5, but the
    // template sends it to 3.
    let (tpl2, real2) = schedule(&mut t, ip("198.51.100.200"), 5, 10);
    assert_eq!((tpl2, real2), (tpl, 3));
    let b = t
        .insert(
            &persistent_conn(ip("198.51.100.200"), 2000, real2, tpl2),
            10,
        )
        .unwrap();
    // A client of another /24 gets its own template.
    let (tpl3, real3) = schedule(&mut t, ip("198.51.101.10"), 5, 10);
    assert_ne!(tpl3, tpl);
    assert_eq!(real3, 5);

    assert_eq!(t.get(a).unwrap().template(), Some(tpl));
    assert!(t.get(b).unwrap().flags().contains(ConnFlags::PERSISTENT));
    let tp = t.templates().get(tpl).unwrap();
    assert_eq!(tp.refs(), 2);
    assert_eq!(tp.client_net(), ip("198.51.100.0"));
    // Scheduling through the template refreshed it.
    assert_eq!(tp.expires(), 10 + u64::from(PERSIST_MS));
}

#[test]
fn unused_template_expires_at_its_timeout() {
    let mut t = table(64);
    let (tpl, _) = schedule(&mut t, ip("203.0.113.9"), 1, 1_000);
    let mut gone = vec![];
    let p = t
        .templates_mut()
        .expire(1_000 + u64::from(PERSIST_MS) - 1, usize::MAX, |id, _| {
            gone.push(id)
        });
    assert_eq!(p.expired, 0);
    t.templates_mut()
        .expire(1_000 + u64::from(PERSIST_MS), usize::MAX, |id, tp| {
            gone.push(id);
            assert_eq!(tp.real(), 1);
        });
    assert_eq!(gone, vec![tpl]);
    assert_eq!(t.templates().lookup(0, ip("203.0.113.9"), MASK24), None);
    assert_eq!(t.templates().stats().expiries, 1);
}

/// LVS semantics: a template whose time is up while connections still use
/// it is held (60 s at a time) until the last connection is gone.
#[test]
fn template_lives_while_connections_use_it() {
    let mut t = table(64);
    let client = ip("192.0.2.77");
    let (tpl, real) = schedule(&mut t, client, 2, 0);
    let id = t
        .insert(&persistent_conn(client, 5555, real, tpl), 0)
        .unwrap();
    t.update(id, Dir::Inbound, TcpFlags::SYN, 0).unwrap();
    t.update(id, Dir::Outbound, TcpFlags::SYN | TcpFlags::ACK, 0)
        .unwrap();
    t.update(id, Dir::Inbound, TcpFlags::ACK, 0).unwrap();

    // Keep the connection busy for 20 minutes, well past the 5-minute
    // persistence timeout, expiring both tables every second.
    let mut expired_templates = 0;
    let mut now = 0;
    while now < 1_200_000 {
        now += 1_000;
        t.update(id, Dir::Inbound, TcpFlags::ACK, now).unwrap();
        t.expire(now, usize::MAX, |_, _| panic!("connection expired"));
        t.templates_mut()
            .expire(now, usize::MAX, |_, _| expired_templates += 1);
    }
    assert_eq!(expired_templates, 0);
    assert_eq!(t.templates().lookup(0, client, MASK24), Some(tpl));
    assert!(t.templates().holds() > 0);
    // A new connection from the same network still goes to the same real.
    assert_eq!(schedule(&mut t, ip("192.0.2.78"), 9, now).1, real);

    // The connection closes; once it has expired the template goes within
    // one hold period.
    t.update(id, Dir::Inbound, TcpFlags::RST, now).unwrap();
    let closed = now;
    let mut conn_gone_at = None;
    while t.templates().lookup(0, client, MASK24).is_some() {
        now += 1_000;
        t.expire(now, usize::MAX, |_, _| conn_gone_at = Some(now));
        t.templates_mut()
            .expire(now, usize::MAX, |_, _| expired_templates += 1);
        assert!(now < closed + 400_000);
    }
    let conn_gone_at = conn_gone_at.unwrap();
    assert_eq!(conn_gone_at, closed + 10_000); // CLOSE timeout
    assert!(now <= conn_gone_at + u64::from(t.timeouts().template_hold));
    assert_eq!(expired_templates, 1);
    assert!(t.templates().is_empty());
}

#[test]
fn removed_template_is_freed_by_its_last_connection() {
    let mut t = table(64);
    let client = ip("198.51.100.1");
    let (tpl, real) = schedule(&mut t, client, 0, 0);
    let id = t.insert(&persistent_conn(client, 1, real, tpl), 0).unwrap();
    assert!(t.templates_mut().remove(tpl));
    assert_eq!(t.templates().lookup(0, client, MASK24), None);
    assert_eq!(t.templates().len(), 1); // still referenced
                                        // A removed template cannot be used for new connections.
    assert_eq!(
        t.insert(&persistent_conn(client, 2, real, tpl), 0),
        Err(InsertError::InvalidTemplate)
    );
    t.remove(id).unwrap();
    assert!(t.templates().is_empty());
}

#[test]
fn connection_expiry_releases_the_template() {
    let mut t = table(64);
    let client = ip("198.51.100.1");
    let (tpl, real) = schedule(&mut t, client, 0, 0);
    for port in 1..=3 {
        t.insert(&persistent_conn(client, port, real, tpl), 0)
            .unwrap();
    }
    assert_eq!(t.templates().get(tpl).unwrap().refs(), 3);
    // NONE times out after 2 s.
    let mut n = 0;
    t.expire(2_000, usize::MAX, |_, c| {
        assert_eq!(c.template(), Some(tpl));
        n += 1;
    });
    assert_eq!(n, 3);
    assert_eq!(t.templates().get(tpl).unwrap().refs(), 0);
    let mut gone = 0;
    t.templates_mut()
        .expire(u64::from(PERSIST_MS), usize::MAX, |_, _| gone += 1);
    assert_eq!(gone, 1);
}
