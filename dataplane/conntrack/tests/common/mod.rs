//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::net::{Ipv4Addr, SocketAddrV4};

use sluice_conntrack::{ConnTable, Forward, NewConn, Protocol, TableConfig, TemplateId};

/// A small table with 1 ms ticks (exact expiry) and default timeouts.
pub fn table(capacity: u32) -> ConnTable {
    ConnTable::new(&TableConfig {
        capacity,
        template_capacity: 64,
        tick_ms: 1,
        wheel_slots: 1024,
        ..TableConfig::default()
    })
    .unwrap()
}

pub fn client(i: u32) -> SocketAddrV4 {
    SocketAddrV4::new(
        Ipv4Addr::from(0xC633_6400 + (i >> 12)),
        1024 + (i & 0xfff) as u16,
    )
}

pub fn vip() -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 80)
}

pub fn real_addr(real: u16) -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1 + real as u8), 8080)
}

/// Connection `i` (unique client) of service 0 to `real`.
pub fn conn(i: u32, proto: Protocol, fwd: Forward, real: u16) -> NewConn {
    NewConn {
        proto,
        client: client(i),
        vip: vip(),
        real_addr: real_addr(real),
        local: None,
        fwd,
        service: 0,
        real,
        template: None,
    }
}

pub fn with_template(mut n: NewConn, t: TemplateId) -> NewConn {
    n.template = Some(t);
    n
}
