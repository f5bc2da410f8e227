//! `sluicectl conn list` on a worker: the query the control thread posts,
//! and the scan that answers it in slices between bursts, so a table of
//! millions of connections never stalls the packet path for more than one
//! slice.

use sluice_conntrack::{Conn, ConnTable, ScanCursor};
use sluice_proto::{ConnFilter, ConnInfo};

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
    pub found: Vec<Conn>,
    /// Where to send the matches, whether more matched than the limit, and
    /// the worker's clock (for the expiry times).
    pub reply: crossbeam_channel::Sender<ConnAnswer>,
}

/// A worker's answer: its matches, whether more matched than the limit,
/// and its clock in milliseconds when it answered.
pub type ConnAnswer = (Vec<Conn>, bool, u64);

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
    more: bool,
}

impl ConnScan {
    /// Starts answering `query`.
    pub fn new(query: ConnQuery) -> ConnScan {
        ConnScan {
            query,
            cursor: ScanCursor::new(),
            more: false,
        }
    }

    /// Scans one slice of `table`; when the scan is over (end of the table
    /// or the limit reached) sends the answer and returns `true`. Copies
    /// matches into the room the query brought: nothing is allocated.
    pub fn step(&mut self, table: &ConnTable, now_ms: u64) -> bool {
        let limit = limit(&self.query.filter);
        let (filter, found, more) = (&self.query.filter, &mut self.query.found, &mut self.more);
        let end = table.visit(&mut self.cursor, CONN_SCAN_SLICE, |_, c| {
            if *more || !matches(filter, c) {
                return;
            }
            if found.len() >= limit {
                *more = true;
            } else {
                found.push(*c);
            }
        });
        if end || self.more {
            let found = std::mem::take(&mut self.query.found);
            let _ = self.query.reply.try_send((found, self.more, now_ms));
            return true;
        }
        false
    }
}

fn matches(f: &ConnFilter, c: &Conn) -> bool {
    if let Some(k) = &f.service {
        if k.protocol != c.proto() || *c.vip().ip() != k.vip || c.vip().port() != k.port {
            return false;
        }
    }
    !(f.client.is_some_and(|ip| *c.client().ip() != ip)
        || f.real.is_some_and(|ip| *c.real_addr().ip() != ip)
        || f.state
            .as_ref()
            .is_some_and(|s| !s.eq_ignore_ascii_case(c.state().name())))
}

/// A connection as `conn list` shows it (control thread); `now_ms` is the
/// clock of the worker that answered.
pub fn info(c: &Conn, worker: usize, now_ms: u64) -> ConnInfo {
    ConnInfo {
        protocol: c.proto(),
        client: c.client(),
        vip: c.vip(),
        real: c.real_addr(),
        forward: c.fwd(),
        state: c.state().name().to_string(),
        expires_in_secs: c.expires().saturating_sub(now_ms) / 1000,
        worker,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_conntrack::{Forward, NewConn, Protocol, TableConfig};

    #[test]
    fn a_large_table_is_answered_in_slices() {
        let mut t = ConnTable::new(&TableConfig::with_capacity(1 << 17)).unwrap();
        let n = 3 * CONN_SCAN_SLICE as u16 + 100;
        for i in 0..n {
            let new = NewConn {
                proto: Protocol::Tcp,
                client: std::net::SocketAddrV4::new("192.0.2.10".parse().unwrap(), i),
                vip: "192.0.2.100:80".parse().unwrap(),
                real_addr: "198.51.100.11:8080".parse().unwrap(),
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
        assert!(scan.step(&t, 1));
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
        while !scan.step(&t, 1) {
            steps += 1;
            assert!(rx.try_recv().is_err(), "answered before the end");
        }
        assert_eq!(steps, 4, "{n} slots in slices of {CONN_SCAN_SLICE}");
        let (found, more, _) = rx.try_recv().unwrap();
        assert_eq!((found.len(), more), (0, false));
    }
}
