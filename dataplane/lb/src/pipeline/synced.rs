//! Connection sync's part of the [`Forwarder`] (see `sluice-sync`): the
//! connections this worker makes or that change state, queued for the
//! peer appliances, and the peers' connections installed in this worker's
//! table, so that a connection moved here by the router finds its real
//! whatever the scheduler.

use super::family::Family;
use super::{half_open, Forwarder};
use crate::slot::RealSlot;
use crate::snapshot::Snapshot;
use crate::stats::WorkerLbStats;
use sluice_conntrack::{
    Activity, Conn, ConnFlags, ConnId, ConnState, NewConn, Protocol, ScanCursor,
};
use sluice_model::{Forward, SocketAddress};
use sluice_sync::ConnRecord;
use std::net::SocketAddr;

/// A fixed ring of records waiting to be taken by the worker loop;
/// allocated once, full means the record is lost (and counted).
pub(super) struct Outbox {
    records: Vec<ConnRecord>,
    cap: usize,
}

/// Where [`Forwarder::retell_all`] is in the tables.
#[derive(Debug, Default)]
pub struct RetellCursor {
    v4: ScanCursor,
    v6: ScanCursor,
    v4_done: bool,
}

/// What became of a peer's connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Installed {
    /// A new entry.
    New,
    /// The peer's copy that was there took the peer's state (or, when
    /// the peer had sent it to another real since, was replaced).
    Updated,
    /// This appliance carries the connection itself (it moved here): the
    /// peer's word does not change it.
    Kept,
    /// No such service or real here, or a state that is no state.
    Unknown,
    /// The table is full.
    Full,
}

impl Forwarder {
    /// Turns connection sync on: from now on, every connection made and
    /// every state change is queued (at most `capacity` between two calls
    /// of [`take_sync`](Self::take_sync)).
    pub fn enable_sync(&mut self, capacity: usize) {
        self.sync_out = Some(Outbox {
            records: Vec::with_capacity(capacity),
            cap: capacity,
        });
    }

    /// Hands every queued record to `send`, then forgets them.
    pub fn take_sync(&mut self, mut send: impl FnMut(ConnRecord)) {
        if let Some(o) = &mut self.sync_out {
            for r in o.records.drain(..) {
                send(r);
            }
        }
    }

    /// Queues connection `id` for the peers, when sync is on (at a state
    /// change: kept out of line, off the packet path's registers).
    #[cold]
    #[inline(never)]
    pub(super) fn tell_peers<A: Family>(&mut self, id: ConnId) {
        if let Some(c) = self.fam.of::<A>().conns.get(id) {
            retell(&mut self.sync_out, &self.stats, c);
        }
    }

    /// Queues, for a peer that just joined, this appliance's own
    /// connections (never a peer's copy, nor one not yet in any state),
    /// examining at most `budget` slots of the tables from `cursor` on
    /// (IPv4, then IPv6); true once both are done. A no-op without sync.
    pub fn retell_all(&mut self, cursor: &mut RetellCursor, budget: usize) -> bool {
        let (stats, out) = (&self.stats, &mut self.sync_out);
        if out.is_none() {
            return true;
        }
        if !cursor.v4_done {
            cursor.v4_done = self.fam.v4.conns.visit(&mut cursor.v4, budget, |_, c| {
                if own(c) {
                    retell(out, stats, c);
                }
            });
            return false;
        }
        self.fam.v6.conns.visit(&mut cursor.v6, budget, |_, c| {
            if own(c) {
                retell(out, stats, c);
            }
        })
    }

    /// Installs a connection a peer told about: a new entry to the same
    /// real in the peer's state (expiring on that state's timeout here),
    /// or the peer's state on the entry already here. Nothing is queued
    /// back to the peers.
    pub fn install(&mut self, snap: &Snapshot, r: &ConnRecord, now_ms: u64) -> Installed {
        let got = match r.client.ip() {
            std::net::IpAddr::V4(_) => self.install_in::<std::net::Ipv4Addr>(snap, r, now_ms),
            std::net::IpAddr::V6(_) => self.install_in::<std::net::Ipv6Addr>(snap, r, now_ms),
        };
        match got {
            Installed::New | Installed::Updated => self.stats.sync_installed.add(1),
            Installed::Unknown | Installed::Full => self.stats.sync_unknown.add(1),
            Installed::Kept => {}
        }
        got
    }

    fn install_in<A: Family>(&mut self, snap: &Snapshot, r: &ConnRecord, now: u64) -> Installed {
        let sock = |s: SocketAddr| A::from_ip(s.ip()).map(|ip| ip.socket(s.port()));
        let (Some(client), Some(vip), Some(real)) = (sock(r.client), sock(r.vip), sock(r.real))
        else {
            return Installed::Unknown;
        };
        let Some(state) = ConnState::from_code(r.proto == Protocol::Tcp, r.state) else {
            return Installed::Unknown;
        };
        // Full-NAT connections are never told (see retell).
        if r.fwd == Forward::FullNat {
            return Installed::Unknown;
        }
        let services = A::services(snap);
        let Some(svc) = services.lookup(r.proto.number(), vip.addr(), vip.port_number()) else {
            return Installed::Unknown;
        };
        let Some(rs) = svc.reals.iter().find(|x| x.addr == real && x.fwd == r.fwd) else {
            return Installed::Unknown;
        };
        let key = sluice_conntrack::FlowKey::inbound(r.proto, client, vip);
        let mut replaced = false;
        if let Some(id) = self.fam.of::<A>().conns.lookup_inbound(&key) {
            let Some(c) = self.fam.of::<A>().conns.get(id) else {
                return Installed::Unknown;
            };
            if !c.flags().contains(ConnFlags::SYNCED) {
                return Installed::Kept;
            }
            if c.real_addr() == real && c.fwd() == r.fwd && c.service() == u32::from(svc.slot.0) {
                self.put_state::<A>(id, state, now);
                return Installed::Updated;
            }
            // The client reused its port and the peer chose another real:
            // the old copy goes.
            self.remove::<A>(id);
            replaced = true;
        }
        let new = NewConn {
            proto: r.proto,
            client,
            vip,
            real_addr: real,
            local: None,
            fwd: r.fwd,
            service: u32::from(svc.slot.0),
            real: rs.slot.0,
            template: None,
        };
        let slot = rs.slot;
        let Ok(id) = self.fam.of_mut::<A>().conns.insert(&new, now) else {
            return Installed::Full;
        };
        self.stats.gauge(slot).opened();
        self.fam.of_mut::<A>().conns.mark(id, ConnFlags::SYNCED);
        self.put_state::<A>(id, state, now);
        if replaced {
            Installed::Updated
        } else {
            Installed::New
        }
    }

    /// Puts entry `id` in `state`, keeping the gauges true.
    fn put_state<A: Family>(&mut self, id: ConnId, state: ConnState, now: u64) {
        let conns = &mut self.fam.of_mut::<A>().conns;
        let was_half_open = conns.get(id).is_some_and(half_open);
        let Some(old) = conns.set_state(id, state, now) else {
            return;
        };
        let Some(c) = self.fam.of::<A>().conns.get(id) else {
            return;
        };
        self.stats
            .gauge(RealSlot(c.real()))
            .moved(Activity::between(old, state));
        match (was_half_open, half_open(c)) {
            (false, true) => self.stats.half_open.add(1),
            (true, false) => self.stats.half_open.sub(1),
            _ => {}
        }
    }
}

/// Queues `c` for the peers in `out` (when sync is on), counting it or
/// its loss in `stats`.
#[inline]
pub(super) fn retell<A: Family>(out: &mut Option<Outbox>, stats: &WorkerLbStats, c: &Conn<A>) {
    let Some(o) = out else {
        return;
    };
    // A full-NAT connection's local port is this appliance's: a peer's
    // workers own other ports and could not bring its replies home, so
    // such connections are not synced (they start over on a failover).
    // So is one whose real is told the client's address with the PROXY
    // protocol: a peer would not know where its stream starts.
    if c.fwd() == Forward::FullNat || c.flags().contains(ConnFlags::PROXY_HEADER) {
        return;
    }
    if o.records.len() >= o.cap {
        stats.sync_overflow.add(1);
        return;
    }
    let sock = |s: A::Socket| SocketAddr::new(s.addr().to_ip(), s.port_number());
    o.records.push(ConnRecord {
        proto: c.proto(),
        state: c.state().code(),
        fwd: c.fwd(),
        client: sock(c.client()),
        vip: sock(c.vip()),
        real: sock(c.real_addr()),
    });
    stats.sync_queued.add(1);
}

/// Whether `c` is this appliance's to tell about: not a peer's copy, and
/// in some state already.
fn own<A: sluice_model::IpAddress>(c: &Conn<A>) -> bool {
    !c.flags().contains(ConnFlags::SYNCED)
        && c.state() != ConnState::Tcp(sluice_conntrack::TcpState::None)
}
