//! The per-worker connection table: entry slab, inbound and outbound
//! indices, timing wheel, TCP state tracking, and the persistence templates.
//!
//! One table belongs to one worker thread, which is its only writer: every
//! mutating operation takes `&mut self`, and there are no atomics or locks.
//! Nothing allocates after [`ConnTable::new`].
//!
//! * Every connection is in the **inbound index** (key
//!   `(proto, CIP, cport, VIP, vport)`); NAT connections are also in the
//!   **outbound index** (key `(proto, RIP, rport, CIP, cport)`, and under
//!   full NAT `(proto, RIP, rport, LIP, lport)`). DR and tunnel
//!   connections are not: the balancer never sees their replies.
//! * Each packet calls [`ConnTable::update`], which runs the LVS state
//!   machine, sets the expiry to `now + timeout(new state)` and reports
//!   whether the connection moved between active and inactive. Extending an
//!   expiry is a store into the entry; only a shortened expiry (e.g. RST
//!   after ESTABLISHED) re-slots the entry in the wheel, in O(1).
//! * [`ConnTable::expire`] runs the wheel for at most `budget` entries and
//!   hands every expired connection to a callback, so the caller can adjust
//!   the per-real active/inactive counts.

use crate::config::TableConfig;
use crate::entry::{Conn, ConnFlags, ConnId, NewConn};
use crate::error::{InsertError, TableConfigError};
use crate::hash::FlowHasher;
use crate::index::Index;
use crate::key::{FlowKey, Protocol};
use crate::persist::{PersistTable, TemplateId};
use crate::slab::{Slab, NIL};
use crate::stats::{ExpireProgress, ScanCursor, TableStats};
use crate::tcp_state::{next_state, Activity, ConnState, Dir, Table, TcpFlags, TcpState};
use crate::timeouts::Timeouts;
use crate::wheel::Wheel;
use sluice_model::IpAddress;
use std::net::Ipv4Addr;

/// Result of [`ConnTable::update`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StateUpdate {
    /// State before the packet.
    pub old: ConnState,
    /// State after the packet.
    pub new: ConnState,
    /// Whether the connection moved between the active and inactive
    /// counts of its real server.
    pub activity: Activity,
    /// New expiry time.
    pub expires: u64,
    /// The connection was a peer's copy ([`ConnFlags::SYNCED`]) until
    /// this packet, which made it this appliance's (the flag is cleared).
    pub was_synced: bool,
}

/// The connection table of one worker, for one address family (IPv4
/// unless said otherwise; a worker has one per family).
pub struct ConnTable<A = Ipv4Addr> {
    slab: Slab<Conn<A>>,
    inbound: Index,
    outbound: Index,
    wheel: Wheel,
    hasher: FlowHasher,
    timeouts: Timeouts,
    templates: PersistTable<A>,
    stats: TableStats,
}

impl<A: IpAddress> ConnTable<A> {
    /// Builds a table, allocating all its memory (see
    /// [`TableConfig::memory_bytes`]).
    pub fn new(cfg: &TableConfig) -> Result<ConnTable<A>, TableConfigError> {
        cfg.validate()?;
        Ok(ConnTable {
            slab: Slab::new(cfg.capacity, cfg.huge_pages),
            inbound: Index::new(cfg.capacity, cfg.huge_pages),
            outbound: Index::new(cfg.capacity, cfg.huge_pages),
            wheel: Wheel::new(cfg.wheel_slots, cfg.tick_ms),
            hasher: FlowHasher::new(cfg.hash_seed),
            timeouts: cfg.timeouts,
            templates: PersistTable::new(
                cfg.template_capacity,
                cfg.wheel_slots,
                cfg.tick_ms,
                cfg.hash_seed ^ 0x7E3F_1A7E_0000_0001,
                cfg.timeouts.template_hold,
                cfg.huge_pages,
            ),
            stats: TableStats {
                capacity: cfg.capacity,
                ..TableStats::default()
            },
        })
    }

    /// Bytes allocated by the table, templates included.
    pub fn memory_bytes(&self) -> usize {
        self.slab.capacity() as usize * std::mem::size_of::<Conn<A>>()
            + self.inbound.memory_bytes()
            + self.outbound.memory_bytes()
            + self.wheel.memory_bytes()
            + self.templates.memory_bytes()
    }

    /// Connections in the table.
    pub fn len(&self) -> u32 {
        self.slab.len()
    }

    /// Whether the table holds no connection.
    pub fn is_empty(&self) -> bool {
        self.slab.len() == 0
    }

    /// Fixed capacity.
    pub fn capacity(&self) -> u32 {
        self.slab.capacity()
    }

    /// Connection counters (templates: [`PersistTable::stats`]).
    pub fn stats(&self) -> TableStats {
        TableStats {
            occupancy: self.slab.len(),
            ..self.stats
        }
    }

    /// The timeouts in force.
    pub fn timeouts(&self) -> &Timeouts {
        &self.timeouts
    }

    /// Replaces the timeouts. Existing connections keep their expiry until
    /// their next packet.
    pub fn set_timeouts(&mut self, t: Timeouts) {
        self.timeouts = t;
        self.templates.set_hold(t.template_hold);
    }

    /// The hasher of the connection indices.
    pub fn hasher(&self) -> &FlowHasher {
        &self.hasher
    }

    /// The persistence templates.
    pub fn templates(&self) -> &PersistTable<A> {
        &self.templates
    }

    /// The persistence templates, for lookup, insert, refresh, remove and
    /// expiry.
    pub fn templates_mut(&mut self) -> &mut PersistTable<A> {
        &mut self.templates
    }

    /// The connection whose inbound key is `key` (a client -> VIP packet).
    #[inline]
    pub fn lookup_inbound(&self, key: &FlowKey<A>) -> Option<ConnId> {
        let h = self.hasher.hash_flow(key);
        let items = &self.slab.items;
        self.inbound
            .find(h, |i| items[i as usize].matches_inbound(key))
            .map(ConnId)
    }

    /// The NAT connection whose outbound key is `key` (a real -> client
    /// reply).
    #[inline]
    pub fn lookup_outbound(&self, key: &FlowKey<A>) -> Option<ConnId> {
        let h = self.hasher.hash_flow(key);
        let items = &self.slab.items;
        self.outbound
            .find(h, |i| items[i as usize].matches_outbound(key))
            .map(ConnId)
    }

    /// Stage one of looking up a burst of packets: asks the CPU for the
    /// index bucket where `key` (of direction `dir`) is kept, without
    /// waiting for it. Returns the key's hash for stage two,
    /// [`ConnTable::prefetch_entry`]. A hint: lookups are as correct
    /// without it, only slower when the table is bigger than the caches.
    #[inline]
    pub fn prefetch_index(&self, key: &FlowKey<A>, dir: Dir) -> u64 {
        let h = self.hasher.hash_flow(key);
        match dir {
            Dir::Inbound => self.inbound.prefetch(h),
            Dir::Outbound => self.outbound.prefetch(h),
        }
        h
    }

    /// Stage two: reads the bucket stage one asked for and asks the CPU
    /// for the entries it points the hash at, so the lookup that follows
    /// finds bucket and entry in cache.
    #[inline]
    pub fn prefetch_entry(&self, hash: u64, dir: Dir) {
        let items = &self.slab.items;
        let fetch = |i: u32| {
            if let Some(c) = items.get(i as usize) {
                sluice_mem::prefetch(c);
            }
        };
        match dir {
            Dir::Inbound => self.inbound.candidates(hash, fetch),
            Dir::Outbound => self.outbound.candidates(hash, fetch),
        }
    }

    /// The connection behind `id`, if it is live.
    #[inline]
    pub fn get(&self, id: ConnId) -> Option<&Conn<A>> {
        self.slab.get(id.0)
    }

    /// Creates a connection, in state NONE (TCP) or UDP, expiring after the
    /// state's timeout; feed its first packet to [`ConnTable::update`].
    /// A new connection is inactive: count it as such for its real.
    ///
    /// With a template, the connection takes a reference on it and extends
    /// its expiry (see [`PersistTable`]).
    ///
    /// Errors, all counted: [`InsertError::Exists`] if the inbound key, or
    /// for NAT the outbound key, is taken; [`InsertError::InvalidTemplate`];
    /// [`InsertError::Full`].
    pub fn insert(&mut self, new: &NewConn<A::Socket>, now: u64) -> Result<ConnId, InsertError> {
        let in_key = FlowKey::inbound(new.proto, new.client, new.vip);
        let out_key = FlowKey::outbound(new.proto, new.real_addr, new.local.unwrap_or(new.client));
        let nat = new.fwd.translates();
        let h_in = self.hasher.hash_flow(&in_key);
        let h_out = self.hasher.hash_flow(&out_key);
        let items = &self.slab.items;
        let exists = self
            .inbound
            .find(h_in, |i| items[i as usize].matches_inbound(&in_key))
            .is_some()
            || (nat
                && self
                    .outbound
                    .find(h_out, |i| items[i as usize].matches_outbound(&out_key))
                    .is_some());
        if exists {
            self.stats.insert_exists += 1;
            return Err(InsertError::Exists);
        }
        if let Some(t) = new.template {
            if !self.templates.can_acquire(t) {
                return Err(InsertError::InvalidTemplate);
            }
        }
        let Some(i) = self.slab.alloc() else {
            self.stats.insert_full += 1;
            return Err(InsertError::Full);
        };
        if !self.inbound.insert(h_in, i) {
            self.slab.release(i);
            self.stats.insert_full += 1;
            return Err(InsertError::Full);
        }
        if nat && !self.outbound.insert(h_out, i) {
            self.inbound.remove(h_in, i);
            self.slab.release(i);
            self.stats.insert_full += 1;
            return Err(InsertError::Full);
        }
        let state = match new.proto {
            Protocol::Tcp => ConnState::Tcp(TcpState::None),
            Protocol::Udp => ConnState::Udp,
        };
        let expires = now.saturating_add(u64::from(self.timeouts.for_state(state)));
        self.slab.items[i as usize] = Conn::new(new, state, expires);
        self.wheel.link(&mut self.slab.items, i);
        if let Some(t) = new.template {
            self.templates.acquire(t, now);
        }
        self.stats.inserts += 1;
        Ok(ConnId(i))
    }

    /// Sets entry `i`'s expiry, re-slotting it only if it moved earlier.
    #[inline]
    fn set_expiry(&mut self, i: u32, expires: u64) {
        let c = &mut self.slab.items[i as usize];
        let old = c.expires;
        c.expires = expires;
        if expires < old {
            self.wheel.unlink(&mut self.slab.items, i);
            self.wheel.link(&mut self.slab.items, i);
        }
    }

    /// Accounts for one packet of connection `id` at `now`: runs the TCP
    /// state machine for `dir` and `flags` (ignored for UDP), sets the
    /// expiry to `now + timeout(new state)`, and reports the transition.
    ///
    /// The table is chosen as in LVS: Output for outbound packets; for
    /// inbound ones, InputOnly on a DR connection that has never shown a
    /// reply, else Input. An outbound packet sets
    /// [`ConnFlags::SEEN_REPLY`]. `None` if `id` is not live.
    #[inline]
    pub fn update(
        &mut self,
        id: ConnId,
        dir: Dir,
        flags: TcpFlags,
        now: u64,
    ) -> Option<StateUpdate> {
        let c = self.slab.get_mut(id.0)?;
        let old = c.state();
        let new = match old {
            ConnState::Tcp(s) => {
                let table = match dir {
                    Dir::Outbound => Table::Output,
                    Dir::Inbound
                        if c.fwd().answers_directly()
                            && !c.flags().contains(ConnFlags::SEEN_REPLY) =>
                    {
                        Table::InputOnly
                    }
                    Dir::Inbound => Table::Input,
                };
                ConnState::Tcp(next_state(s, table, flags))
            }
            ConnState::Udp => ConnState::Udp,
        };
        if dir == Dir::Outbound {
            c.set_flag(ConnFlags::SEEN_REPLY);
        }
        let was_synced = c.flags().contains(ConnFlags::SYNCED);
        if was_synced {
            c.clear_flag(ConnFlags::SYNCED);
        }
        c.state = new.to_u8();
        let expires = now.saturating_add(u64::from(self.timeouts.for_state(new)));
        self.set_expiry(id.0, expires);
        Some(StateUpdate {
            old,
            new,
            activity: Activity::between(old, new),
            expires,
            was_synced,
        })
    }

    /// Puts connection `id` in `state` with that state's timeout from
    /// `now` (a connection another appliance told about: connection sync).
    /// Returns the state it was in; None if `id` is not live.
    pub fn set_state(&mut self, id: ConnId, state: ConnState, now: u64) -> Option<ConnState> {
        let c = self.slab.get_mut(id.0)?;
        let old = c.state();
        c.state = state.to_u8();
        let expires = now.saturating_add(u64::from(self.timeouts.for_state(state)));
        self.set_expiry(id.0, expires);
        Some(old)
    }

    /// Clears flag `f` of connection `id` (only [`ConnFlags::SYNCED`] is
    /// the caller's to clear). `false` if `id` is not live.
    #[inline]
    pub fn unmark(&mut self, id: ConnId, f: ConnFlags) -> bool {
        match self.slab.get_mut(id.0) {
            Some(c) => {
                c.clear_flag(f);
                true
            }
            None => false,
        }
    }

    /// Sets flag `f` of connection `id` (only [`ConnFlags::SYN_PROXY`],
    /// [`ConnFlags::SYNCED`], [`ConnFlags::PROXY_HEADER`] and
    /// [`ConnFlags::HEADER_ACKED`] are the caller's to set). `false` if `id` is
    /// not live.
    pub fn mark(&mut self, id: ConnId, f: ConnFlags) -> bool {
        match self.slab.get_mut(id.0) {
            Some(c) => {
                c.set_flag(f);
                true
            }
            None => false,
        }
    }

    /// Pushes the expiry of `id` to `now + timeout(current state)` without
    /// a state change (e.g. for an ICMP error relating to the connection).
    /// `false` if `id` is not live.
    pub fn refresh(&mut self, id: ConnId, now: u64) -> bool {
        let Some(c) = self.slab.get(id.0) else {
            return false;
        };
        let expires = now.saturating_add(u64::from(self.timeouts.for_state(c.state())));
        self.set_expiry(id.0, expires);
        true
    }

    /// Unindexes and frees entry `i`; `in_wheel` tells whether it is still
    /// linked in the wheel. Returns the entry as it was.
    fn free(&mut self, i: u32, in_wheel: bool) -> Conn<A> {
        let c = self.slab.items[i as usize];
        let removed = self
            .inbound
            .remove(self.hasher.hash_flow(&c.inbound_key()), i);
        debug_assert!(removed);
        if c.fwd().translates() {
            let removed = self
                .outbound
                .remove(self.hasher.hash_flow(&c.outbound_key()), i);
            debug_assert!(removed);
        }
        if in_wheel {
            self.wheel.unlink(&mut self.slab.items, i);
        }
        if c.template != NIL {
            self.templates.release(TemplateId(c.template));
        }
        self.slab.release(i);
        c
    }

    /// Removes connection `id` and returns it (so the caller can decrement
    /// its real's active or inactive count). `None` if it is not live.
    pub fn remove(&mut self, id: ConnId) -> Option<Conn<A>> {
        self.slab.get(id.0)?;
        self.stats.removals += 1;
        Some(self.free(id.0, true))
    }

    /// Expires connections due at `now`, examining at most `budget` entries
    /// (expired ones, and ones whose expiry was extended and which are
    /// re-slotted). Each expired connection is removed, then passed to
    /// `on_expired`. A connection never expires before its expiry time and
    /// at most one tick after it, unless budgets leave a backlog.
    pub fn expire(
        &mut self,
        now: u64,
        budget: usize,
        on_expired: impl FnMut(ConnId, &Conn<A>),
    ) -> ExpireProgress {
        self.expire_noting(now, budget, on_expired, |_, _| {})
    }

    /// [`expire`](Self::expire), also telling `on_kept` of every
    /// connection found due by an earlier expiry and re-slotted because
    /// its expiry was extended since (by traffic, or by a state with a
    /// longer timeout): once when its handshake's timeout passes, then
    /// about once per its state's timeout while it carries traffic (more
    /// often if that timeout is beyond the wheel's horizon). Connection
    /// sync re-tells the peers about it then, before their copy expires.
    pub fn expire_noting(
        &mut self,
        now: u64,
        budget: usize,
        mut on_expired: impl FnMut(ConnId, &Conn<A>),
        mut on_kept: impl FnMut(ConnId, &Conn<A>),
    ) -> ExpireProgress {
        let mut p = ExpireProgress::default();
        while p.examined < budget {
            let Some(i) = self.wheel.pop_due(&mut self.slab.items, now) else {
                break;
            };
            p.examined += 1;
            if self.slab.items[i as usize].expires > now {
                self.wheel.link(&mut self.slab.items, i);
                on_kept(ConnId(i), &self.slab.items[i as usize]);
            } else {
                let c = self.free(i, false);
                self.stats.expiries += 1;
                p.expired += 1;
                on_expired(ConnId(i), &c);
            }
        }
        p.done = self.wheel.caught_up(now);
        p
    }

    /// Live connections, in slot order. Slow (scans the slab up to its
    /// high-water mark); for the control plane, which filters as it likes.
    pub fn iter(&self) -> impl Iterator<Item = (ConnId, &Conn<A>)> + '_ {
        self.slab.iter().map(|(i, c)| (ConnId(i), c))
    }

    /// Visits live connections from `cursor` on, at most `budget` slab
    /// slots per call, for a control-plane listing done in slices between
    /// bursts. Returns `true` when the scan reached the end. Connections
    /// inserted behind the cursor during the scan are not visited.
    pub fn visit(
        &self,
        cursor: &mut ScanCursor,
        budget: usize,
        mut f: impl FnMut(ConnId, &Conn<A>),
    ) -> bool {
        let end = self.slab.high_water();
        let stop = cursor.pos.saturating_add(budget as u32).min(end);
        while cursor.pos < stop {
            if let Some(c) = self.slab.get(cursor.pos) {
                f(ConnId(cursor.pos), c);
            }
            cursor.pos += 1;
        }
        cursor.pos >= end
    }

    /// Incrementally removes connections for which `pred` holds, examining
    /// at most `budget` slab slots per call; each removed connection is
    /// passed to `on_removed` and counted as a removal. Returns `true` when
    /// the scan is complete. Connections inserted behind the cursor during
    /// the scan are not visited.
    pub fn remove_matching(
        &mut self,
        cursor: &mut ScanCursor,
        budget: usize,
        mut pred: impl FnMut(&Conn<A>) -> bool,
        mut on_removed: impl FnMut(ConnId, &Conn<A>),
    ) -> bool {
        let mut n = 0;
        while cursor.pos < self.slab.high_water() && n < budget {
            let i = cursor.pos;
            cursor.pos += 1;
            n += 1;
            if self.slab.get(i).is_some_and(&mut pred) {
                self.stats.removals += 1;
                let c = self.free(i, true);
                on_removed(ConnId(i), &c);
            }
        }
        cursor.pos >= self.slab.high_water()
    }

    /// Incrementally ends everything of real `real` of service `service`
    /// (an operator removed the real with "end connections"): first its
    /// connections, each passed to `on_removed`, then its persistence
    /// templates (removed as by [`PersistTable::remove`]). Examines at most
    /// `budget` slots per call; returns `true` when done. Stop scheduling
    /// new connections to the real before starting.
    pub fn drain_real(
        &mut self,
        cursor: &mut ScanCursor,
        service: u32,
        real: u16,
        budget: usize,
        on_removed: impl FnMut(ConnId, &Conn<A>),
    ) -> bool {
        let mut left = budget;
        if cursor.phase == 0 {
            let start = cursor.pos;
            let done = self.remove_matching(
                cursor,
                left,
                |c| c.service == service && c.real == real,
                on_removed,
            );
            left -= (cursor.pos - start) as usize;
            if !done {
                return false;
            }
            *cursor = ScanCursor { pos: 0, phase: 1 };
        }
        self.templates.remove_matching(
            cursor,
            left,
            |t| t.service() == service && t.real() == real,
            |_, _| {},
        )
    }
}
