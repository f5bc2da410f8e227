//! `sluicectl conn list` on a worker: the query the control thread posts,
//! and the scan that answers it in slices between bursts, so a table of
//! millions of connections never stalls the packet path for more than one
//! slice.

use sluice_conntrack::{Conn, ConnTable, ScanCursor};
use sluice_core::family::{IpAddress, SocketAddress};
use sluice_proto::{ConnFilter, ConnInfo};
use std::net::{Ipv6Addr, SocketAddr};

/// A connection of either family, as a worker copies it out.
#[derive(Debug, Clone, Copy)]
pub enum AnyConn {
    /// An IPv4 connection.
    V4(Conn),
    /// An IPv6 connection.
    V6(Conn<Ipv6Addr>),
}

/// Most connections one `conn list` returns.
pub const MAX_CONN_LIST: u32 = 10_000;

/// Table slots one slice of the scan examines.
pub const CONN_SCAN_SLICE: usize = 16_384;

/// A `conn list` request for one worker.
pub struct ConnQuery {
    /// What to show.
    pub filter: ConnFilter,
    /// Where the matches go: made by the control thread with room for
    /// the limit, so the worker never allocates.
    pub found: Vec<AnyConn>,
    /// Where to send the matches, whether more matched than the limit, and
    /// the worker's clock (for the expiry times).
    pub reply: crossbeam_channel::Sender<ConnAnswer>,
}

/// A worker's answer: its matches, whether more matched than the limit,
/// and its clock in milliseconds when it answered.
pub type ConnAnswer = (Vec<AnyConn>, bool, u64);

impl ConnQuery {
    /// A query for `filter`, with its answer's room made now.
    pub fn new(filter: ConnFilter, reply: crossbeam_channel::Sender<ConnAnswer>) -> ConnQuery {
        ConnQuery {
            found: Vec::with_capacity(limit(&filter)),
            filter,
            reply,
        }
    }
}

/// How many connections `filter` asks for.
pub fn limit(filter: &ConnFilter) -> usize {
    filter.limit.unwrap_or(100).min(MAX_CONN_LIST) as usize
}

/// A query being answered on a worker, slice by slice.
pub struct ConnScan {
    query: ConnQuery,
    cursor: ScanCursor,
    /// The IPv4 table is scanned, then the IPv6 one.
    ipv6: bool,
    more: bool,
}

impl ConnScan {
    /// Starts answering `query`.
    pub fn new(query: ConnQuery) -> ConnScan {
        ConnScan {
            query,
            cursor: ScanCursor::new(),
            ipv6: false,
            more: false,
        }
    }

    /// Scans one slice of the IPv4 table, then of the IPv6 one; when the
    /// scan is over (end of both tables or the limit reached) sends the
    /// answer and returns `true`. Copies matches into the room the query
    /// brought: nothing is allocated.
    pub fn step(&mut self, t4: &ConnTable, t6: &ConnTable<Ipv6Addr>, now_ms: u64) -> bool {
        let end = if self.ipv6 {
            self.slice(t6, AnyConn::V6)
        } else {
            let end = self.slice(t4, AnyConn::V4);
            if end && !self.more {
                self.ipv6 = true;
                self.cursor = ScanCursor::new();
            }
            false
        };
        if end || self.more {
            let found = std::mem::take(&mut self.query.found);
            let _ = self.query.reply.try_send((found, self.more, now_ms));
            return true;
        }
        false
    }

    /// One slice of `table`; whether it reached the table's end.
    fn slice<A: IpAddress>(&mut self, table: &ConnTable<A>, wrap: fn(Conn<A>) -> AnyConn) -> bool {
        let limit = limit(&self.query.filter);
        let (filter, found, more) = (&self.query.filter, &mut self.query.found, &mut self.more);
        table.visit(&mut self.cursor, CONN_SCAN_SLICE, |_, c| {
            if *more || !matches(filter, c) {
                return;
            }
            if found.len() >= limit {
                *more = true;
            } else {
                found.push(wrap(*c));
            }
        })
    }
}

fn matches<A: IpAddress>(f: &ConnFilter, c: &Conn<A>) -> bool {
    let (vip, client, real) = (sock(c.vip()), sock(c.client()), sock(c.real_addr()));
    if let Some(k) = &f.service {
        if k.protocol != c.proto() || vip.ip() != k.vip || vip.port() != k.port {
            return false;
        }
    }
    !(f.client.is_some_and(|ip| client.ip() != ip)
        || f.real.is_some_and(|ip| real.ip() != ip)
        || f.state
            .as_ref()
            .is_some_and(|s| !s.eq_ignore_ascii_case(c.state().name())))
}

/// A connection as `conn list` shows it (control thread); `now_ms` is the
/// clock of the worker that answered.
pub fn info(c: &AnyConn, worker: usize, now_ms: u64) -> ConnInfo {
    match c {
        AnyConn::V4(c) => info_of(c, worker, now_ms),
        AnyConn::V6(c) => info_of(c, worker, now_ms),
    }
}

fn info_of<A: IpAddress>(c: &Conn<A>, worker: usize, now_ms: u64) -> ConnInfo {
    ConnInfo {
        protocol: c.proto(),
        client: sock(c.client()),
        vip: sock(c.vip()),
        real: sock(c.real_addr()),
        forward: c.fwd(),
        local: (c.fwd() == sluice_conntrack::Forward::FullNat).then(|| sock(c.local())),
        state: c.state().name().to_string(),
        expires_in_secs: c.expires().saturating_sub(now_ms) / 1000,
        worker,
    }
}

/// A family's socket address as either family's.
fn sock<S: SocketAddress>(s: S) -> SocketAddr {
    SocketAddr::new(s.addr().to_ip(), s.port_number())
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_conntrack::{Forward, NewConn, Protocol, TableConfig};

    #[test]
    fn a_large_table_is_answered_in_slices() {
        let mut t: ConnTable = ConnTable::new(&TableConfig::with_capacity(1 << 17)).unwrap();
        let mut t6: ConnTable<Ipv6Addr> =
            ConnTable::new(&TableConfig::with_capacity(1024)).unwrap();
        t6.insert(
            &NewConn {
                proto: Protocol::Tcp,
                client: "[2001:db8:1::10]:40000"
                    .parse::<std::net::SocketAddrV6>()
                    .unwrap(),
                vip: "[2001:db8::100]:80".parse().unwrap(),
                real_addr: "[2001:db8:2::11]:8080".parse().unwrap(),
                local: None,
                fwd: Forward::Nat,
                service: 0,
                real: 1,
                template: None,
            },
            1,
        )
        .unwrap();
        let n = 3 * CONN_SCAN_SLICE as u16 + 100;
        for i in 0..n {
            let new = NewConn {
                proto: Protocol::Tcp,
                client: std::net::SocketAddrV4::new("192.0.2.10".parse().unwrap(), i),
                vip: "192.0.2.100:80".parse().unwrap(),
                real_addr: "198.51.100.11:8080".parse().unwrap(),
                local: None,
                fwd: Forward::Nat,
                service: 0,
                real: 1,
                template: None,
            };
            t.insert(&new, 1).unwrap();
        }
        let (tx, rx) = crossbeam_channel::bounded(1);
        let filter = ConnFilter {
            limit: Some(MAX_CONN_LIST),
            client: Some("192.0.2.10".parse().unwrap()),
            ..ConnFilter::default()
        };
        let mut scan = ConnScan::new(ConnQuery::new(filter, tx));
        // The limit (10 000) is reached within the first slice.
        assert!(scan.step(&t, &t6, 1));
        let (found, more, _) = rx.try_recv().unwrap();
        assert_eq!((found.len(), more), (MAX_CONN_LIST as usize, true));
        assert_eq!(
            found.capacity(),
            MAX_CONN_LIST as usize,
            "grown on the worker"
        );

        // A filter that matches nothing reads the whole table, one slice
        // per call.
        let (tx, rx) = crossbeam_channel::bounded(1);
        let filter = ConnFilter {
            real: Some("198.51.100.99".parse().unwrap()),
            ..ConnFilter::default()
        };
        let mut scan = ConnScan::new(ConnQuery::new(filter, tx));
        let mut steps = 1;
        while !scan.step(&t, &t6, 1) {
            steps += 1;
            assert!(rx.try_recv().is_err(), "answered before the end");
        }
        assert_eq!(
            steps, 5,
            "{n} slots in slices of {CONN_SCAN_SLICE}, then the IPv6 table"
        );
        let (found, more, _) = rx.try_recv().unwrap();
        assert_eq!((found.len(), more), (0, false));

        // The IPv6 connection is found, and shown in RFC 5952 text.
        let (tx, rx) = crossbeam_channel::bounded(1);
        let filter = ConnFilter {
            client: Some("2001:db8:1::10".parse().unwrap()),
            ..ConnFilter::default()
        };
        let mut scan = ConnScan::new(ConnQuery::new(filter, tx));
        while !scan.step(&t, &t6, 1) {}
        let (found, _, _) = rx.try_recv().unwrap();
        assert_eq!(found.len(), 1);
        let i = info(&found[0], 0, 1);
        assert_eq!(i.client.to_string(), "[2001:db8:1::10]:40000");
        assert_eq!(i.real.to_string(), "[2001:db8:2::11]:8080");
    }
}
