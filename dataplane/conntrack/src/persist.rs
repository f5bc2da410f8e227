//! Persistence templates: client network -> real server, for a timeout.
//!
//! This is LVS's persistence (`ipvsadm -p TIMEOUT -M NETMASK`): once a
//! client of a persistent service has been scheduled to a real server, its
//! later connections to that service go to the same real while the
//! template lives. Clients are grouped by the service's netmask, so with a
//! /24 mask every client of 198.51.100.0/24 shares one template.
//!
//! [`PersistTable`] has the same structure and properties as the connection
//! table: a fixed-capacity slab allocated up front, a bucketised cuckoo
//! index on the key `(service index, client address & netmask)`, and its own
//! timing wheel with lazy re-slotting and budgeted expiry. It lives inside
//! [`ConnTable`](crate::ConnTable) (see
//! [`ConnTable::templates_mut`](crate::ConnTable::templates_mut)) because
//! connections hold references on templates.
//!
//! # Lifetime semantics (as LVS)
//!
//! * A template is created with the service's persistence timeout and
//!   expires `timeout` ms after it was created or last *used*.
//! * It is used, and its expiry extended to at least `now + timeout`, when
//!   a new connection is scheduled through it (inserting a connection with
//!   [`NewConn::template`](crate::NewConn::template) set, like LVS's
//!   `ip_vs_sched_persist`), or explicitly by [`PersistTable::refresh`].
//!   Packets of existing connections do not refresh it.
//! * Every connection inserted with a template holds a reference on it
//!   until the connection is removed or expires (LVS's `n_control`).
//! * When a template's time runs out while connections still refer to it,
//!   it is not removed: its expiry is pushed back by
//!   [`Timeouts::template_hold`](crate::Timeouts::template_hold) (LVS's
//!   `expire_later`, 60 s) and it is checked again then. So a client keeps
//!   its real server for as long as it has connections, plus up to the
//!   hold time after the last one ends.
//! * [`PersistTable::remove`] unhashes the template at once (later lookups
//!   miss, a new template may be created for the same key); the entry itself
//!   is freed when its last connection releases it.

use sluice_model::IpAddress;
use std::net::Ipv4Addr;

use crate::error::InsertError;
use crate::hash::FlowHasher;
use crate::index::Index;
use crate::slab::{Node, Slab, NIL};
use crate::stats::{ExpireProgress, ScanCursor, TableStats};
use crate::wheel::Wheel;

/// Handle of a persistence template.
///
/// Valid until the template is freed; use it right after
/// [`PersistTable::lookup`] or [`PersistTable::insert`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TemplateId(pub(crate) u32);

impl TemplateId {
    /// The slot index (for logs and diagnostics).
    pub fn as_u32(self) -> u32 {
        self.0
    }
}

const LIVE: u8 = 0x80;
const HASHED: u8 = 0x01;

/// One persistence template (40 bytes for IPv4, 48 for IPv6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct Template<A = Ipv4Addr> {
    expires: u64,
    service: u32,
    client: A,
    timeout: u32,
    refs: u32,
    next: u32,
    prev: u32,
    real: u16,
    flags: u8,
}

impl<A: IpAddress> Template<A> {
    /// Service index.
    pub fn service(&self) -> u32 {
        self.service
    }

    /// The client network (client address & netmask).
    pub fn client_net(&self) -> A {
        self.client
    }

    /// The real server index clients of this network go to.
    pub fn real(&self) -> u16 {
        self.real
    }

    /// Persistence timeout, ms.
    pub fn timeout_ms(&self) -> u32 {
        self.timeout
    }

    /// Current expiry time, ms.
    pub fn expires(&self) -> u64 {
        self.expires
    }

    /// Number of connections holding a reference.
    pub fn refs(&self) -> u32 {
        self.refs
    }

    /// Whether lookups find it (`false` once removed while still
    /// referenced).
    pub fn is_hashed(&self) -> bool {
        self.flags & HASHED != 0
    }
}

impl<A: IpAddress> Node for Template<A> {
    const EMPTY: Template<A> = Template {
        expires: 0,
        service: 0,
        client: A::UNSPECIFIED,
        timeout: 0,
        refs: 0,
        next: NIL,
        prev: NIL,
        real: 0,
        flags: 0,
    };
    fn is_live(&self) -> bool {
        self.flags & LIVE != 0
    }
    fn next(&self) -> u32 {
        self.next
    }
    fn set_next(&mut self, v: u32) {
        self.next = v;
    }
    fn prev(&self) -> u32 {
        self.prev
    }
    fn set_prev(&mut self, v: u32) {
        self.prev = v;
    }
    fn expires(&self) -> u64 {
        self.expires
    }
}

/// The masked client address.
#[inline]
fn masked<A: IpAddress>(client: A, netmask: A) -> A {
    client.masked(netmask)
}

/// Fixed-capacity table of persistence templates.
pub struct PersistTable<A = Ipv4Addr> {
    slab: Slab<Template<A>>,
    index: Index,
    wheel: Wheel,
    hasher: FlowHasher,
    hold: u32,
    stats: TableStats,
    holds: u64,
}

impl<A: IpAddress> PersistTable<A> {
    /// A table of `capacity` templates with a wheel of `wheel_slots` slots
    /// of `tick_ms`, holding referenced templates `hold_ms` past their
    /// expiry at a time, on huge pages if `huge`. Parameters are
    /// validated by [`TableConfig`](crate::Config).
    pub(crate) fn new(
        capacity: u32,
        wheel_slots: u32,
        tick_ms: u32,
        seed: u64,
        hold_ms: u32,
        huge: bool,
    ) -> PersistTable<A> {
        PersistTable {
            slab: Slab::new(capacity, huge),
            index: Index::new(capacity, huge),
            wheel: Wheel::new(wheel_slots, tick_ms),
            hasher: FlowHasher::new(seed),
            hold: hold_ms.max(1),
            stats: TableStats {
                capacity,
                ..TableStats::default()
            },
            holds: 0,
        }
    }

    /// Bytes allocated by the table.
    pub fn memory_bytes(&self) -> usize {
        self.slab.capacity() as usize * std::mem::size_of::<Template<A>>()
            + self.index.memory_bytes()
            + self.wheel.memory_bytes()
    }

    /// Templates in use (including removed ones still referenced).
    pub fn len(&self) -> u32 {
        self.slab.len()
    }

    /// Whether no template is in use.
    pub fn is_empty(&self) -> bool {
        self.slab.len() == 0
    }

    /// Fixed capacity.
    pub fn capacity(&self) -> u32 {
        self.slab.capacity()
    }

    /// Counters. `removals` counts [`PersistTable::remove`] calls that
    /// unhashed a template.
    pub fn stats(&self) -> TableStats {
        TableStats {
            occupancy: self.slab.len(),
            ..self.stats
        }
    }

    /// How many times an expiry was postponed because connections still
    /// referred to the template.
    pub fn holds(&self) -> u64 {
        self.holds
    }

    /// Sets the hold time for referenced templates (ms, at least 1).
    pub fn set_hold(&mut self, hold_ms: u32) {
        self.hold = hold_ms.max(1);
    }

    /// The template of `service` for `client`'s network under `netmask`.
    #[inline]
    pub fn lookup(&self, service: u32, client: A, netmask: A) -> Option<TemplateId> {
        let net = masked(client, netmask);
        let h = self.hasher.hash_template(service, net);
        let items = &self.slab.items;
        self.index
            .find(h, |i| {
                let t = &items[i as usize];
                t.client == net && t.service == service
            })
            .map(TemplateId)
    }

    /// The template behind `id`, if it is live.
    pub fn get(&self, id: TemplateId) -> Option<&Template<A>> {
        self.slab.get(id.0)
    }

    /// Creates the template `(service, client & netmask) -> real`, expiring
    /// at `now + timeout_ms`.
    pub fn insert(
        &mut self,
        service: u32,
        client: A,
        netmask: A,
        real: u16,
        timeout_ms: u32,
        now: u64,
    ) -> Result<TemplateId, InsertError> {
        if self.lookup(service, client, netmask).is_some() {
            self.stats.insert_exists += 1;
            return Err(InsertError::Exists);
        }
        let net = masked(client, netmask);
        let Some(i) = self.slab.alloc() else {
            self.stats.insert_full += 1;
            return Err(InsertError::Full);
        };
        let h = self.hasher.hash_template(service, net);
        if !self.index.insert(h, i) {
            self.slab.release(i);
            self.stats.insert_full += 1;
            return Err(InsertError::Full);
        }
        self.slab.items[i as usize] = Template {
            expires: now.saturating_add(u64::from(timeout_ms)),
            service,
            client: net,
            timeout: timeout_ms,
            refs: 0,
            next: NIL,
            prev: NIL,
            real,
            flags: LIVE | HASHED,
        };
        self.wheel.link(&mut self.slab.items, i);
        self.stats.inserts += 1;
        Ok(TemplateId(i))
    }

    /// Extends the template's expiry to at least `now + timeout`. O(1), does
    /// not touch the wheel. `false` if `id` is not live.
    pub fn refresh(&mut self, id: TemplateId, now: u64) -> bool {
        match self.slab.get_mut(id.0) {
            Some(t) => {
                t.expires = t.expires.max(now.saturating_add(u64::from(t.timeout)));
                true
            }
            None => false,
        }
    }

    /// Unhashes the template: lookups miss from now on. It is freed at once
    /// if no connection refers to it, else when the last one goes. `false`
    /// if it was not live and hashed.
    pub fn remove(&mut self, id: TemplateId) -> bool {
        let Some(t) = self.slab.get(id.0) else {
            return false;
        };
        if !t.is_hashed() {
            return false;
        }
        let (service, net, refs) = (t.service, t.client, t.refs);
        let h = self.hasher.hash_template(service, net);
        let removed = self.index.remove(h, id.0);
        debug_assert!(removed);
        self.slab.items[id.0 as usize].flags &= !HASHED;
        self.stats.removals += 1;
        if refs == 0 {
            self.wheel.unlink(&mut self.slab.items, id.0);
            self.slab.release(id.0);
        }
        true
    }

    /// Takes a reference for a new connection and extends the expiry like
    /// [`PersistTable::refresh`]. `false` if `id` is not live and hashed.
    pub(crate) fn acquire(&mut self, id: TemplateId, now: u64) -> bool {
        match self.slab.get_mut(id.0) {
            Some(t) if t.is_hashed() => {
                t.refs += 1;
                t.expires = t.expires.max(now.saturating_add(u64::from(t.timeout)));
                true
            }
            _ => false,
        }
    }

    /// Whether `acquire` would succeed.
    pub(crate) fn can_acquire(&self, id: TemplateId) -> bool {
        self.slab.get(id.0).is_some_and(Template::<A>::is_hashed)
    }

    /// Drops a connection's reference; frees an unhashed template whose
    /// last reference this was.
    pub(crate) fn release(&mut self, id: TemplateId) {
        let Some(t) = self.slab.get_mut(id.0) else {
            debug_assert!(false, "release of a free template");
            return;
        };
        debug_assert!(t.refs > 0);
        t.refs = t.refs.saturating_sub(1);
        if t.refs == 0 && !t.is_hashed() {
            self.wheel.unlink(&mut self.slab.items, id.0);
            self.slab.release(id.0);
        }
    }

    /// Expires templates due at `now`, examining at most `budget`. Each
    /// expired template is passed to `on_expired` after it has been removed.
    /// Templates still referenced are held (see the module docs).
    pub fn expire(
        &mut self,
        now: u64,
        budget: usize,
        mut on_expired: impl FnMut(TemplateId, &Template<A>),
    ) -> ExpireProgress {
        let mut p = ExpireProgress::default();
        while p.examined < budget {
            let Some(i) = self.wheel.pop_due(&mut self.slab.items, now) else {
                break;
            };
            p.examined += 1;
            let t = &mut self.slab.items[i as usize];
            if t.expires > now {
                self.wheel.link(&mut self.slab.items, i);
            } else if t.refs > 0 {
                t.expires = now.saturating_add(u64::from(self.hold));
                self.holds += 1;
                self.wheel.link(&mut self.slab.items, i);
            } else {
                let t = *t;
                let h = self.hasher.hash_template(t.service, t.client);
                if t.is_hashed() {
                    let removed = self.index.remove(h, i);
                    debug_assert!(removed);
                }
                self.slab.release(i);
                self.stats.expiries += 1;
                p.expired += 1;
                on_expired(TemplateId(i), &t);
            }
        }
        p.done = self.wheel.caught_up(now);
        p
    }

    /// Live templates, in slot order. Slow (scans the slab); for the
    /// control plane.
    pub fn iter(&self) -> impl Iterator<Item = (TemplateId, &Template<A>)> + '_ {
        self.slab.iter().map(|(i, t)| (TemplateId(i), t))
    }

    /// Incrementally removes (unhashes) hashed templates for which `pred`
    /// holds, examining at most `budget` slots per call; each removed
    /// template is passed to `on_removed`. Returns `true` when the scan is
    /// complete.
    pub fn remove_matching(
        &mut self,
        cursor: &mut ScanCursor,
        budget: usize,
        mut pred: impl FnMut(&Template<A>) -> bool,
        mut on_removed: impl FnMut(TemplateId, &Template<A>),
    ) -> bool {
        let mut n = 0;
        while cursor.pos < self.slab.high_water() && n < budget {
            let i = cursor.pos;
            cursor.pos += 1;
            n += 1;
            if let Some(t) = self.slab.get(i) {
                if t.is_hashed() && pred(t) {
                    let t = *t;
                    self.remove(TemplateId(i));
                    on_removed(TemplateId(i), &t);
                }
            }
        }
        cursor.pos >= self.slab.high_water()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MASK24: Ipv4Addr = Ipv4Addr::new(255, 255, 255, 0);
    const HOST: Ipv4Addr = Ipv4Addr::new(255, 255, 255, 255);

    fn table(cap: u32) -> PersistTable {
        PersistTable::new(cap, 64, 1, 7, 50, false)
    }

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn template_is_40_bytes() {
        assert_eq!(std::mem::size_of::<Template>(), 40);
    }

    #[test]
    fn masked_lookup_groups_a_slash_24() {
        let mut t = table(16);
        let id = t.insert(1, ip("198.51.100.5"), MASK24, 3, 300, 0).unwrap();
        assert_eq!(t.lookup(1, ip("198.51.100.5"), MASK24), Some(id));
        assert_eq!(t.lookup(1, ip("198.51.100.250"), MASK24), Some(id));
        assert_eq!(t.lookup(1, ip("198.51.101.5"), MASK24), None);
        assert_eq!(t.lookup(2, ip("198.51.100.5"), MASK24), None);
        let tp = t.get(id).unwrap();
        assert_eq!(tp.client_net(), ip("198.51.100.0"));
        assert_eq!((tp.service(), tp.real(), tp.timeout_ms()), (1, 3, 300));
        // Same network again: refused.
        assert_eq!(
            t.insert(1, ip("198.51.100.9"), MASK24, 4, 300, 0),
            Err(InsertError::Exists)
        );
        // Host mask: one template per client.
        let a = t.insert(2, ip("10.0.0.1"), HOST, 1, 300, 0).unwrap();
        let b = t.insert(2, ip("10.0.0.2"), HOST, 2, 300, 0).unwrap();
        assert_ne!(a, b);
        assert_eq!(t.stats().inserts, 3);
        assert_eq!(t.stats().insert_exists, 1);
    }

    #[test]
    fn expires_at_timeout_and_refresh_extends() {
        let mut t = table(16);
        let id = t.insert(1, ip("10.1.1.1"), MASK24, 0, 100, 0).unwrap();
        let mut gone = vec![];
        t.expire(99, usize::MAX, |i, _| gone.push(i));
        assert!(gone.is_empty());
        assert!(t.refresh(id, 50)); // now expires at 150
        t.expire(149, usize::MAX, |i, _| gone.push(i));
        assert!(gone.is_empty());
        let p = t.expire(150, usize::MAX, |i, _| gone.push(i));
        assert_eq!(gone, vec![id]);
        assert!(p.done);
        assert_eq!(t.lookup(1, ip("10.1.1.1"), MASK24), None);
        assert_eq!(t.len(), 0);
        assert_eq!(t.stats().expiries, 1);
        assert!(!t.refresh(id, 200));
    }

    #[test]
    fn referenced_template_is_held_then_expires() {
        let mut t = table(16);
        let id = t.insert(1, ip("10.1.1.1"), MASK24, 0, 100, 0).unwrap();
        assert!(t.acquire(id, 10)); // expires at 110
        let mut gone = 0;
        t.expire(110, usize::MAX, |_, _| gone += 1);
        assert_eq!(gone, 0);
        assert_eq!(t.holds(), 1);
        assert_eq!(t.get(id).unwrap().expires(), 160); // hold 50
        t.release(id);
        t.expire(159, usize::MAX, |_, _| gone += 1);
        assert_eq!(gone, 0);
        t.expire(160, usize::MAX, |_, _| gone += 1);
        assert_eq!(gone, 1);
        assert!(t.is_empty());
    }

    #[test]
    fn remove_while_referenced_defers_free() {
        let mut t = table(16);
        let id = t.insert(1, ip("10.1.1.1"), MASK24, 0, 100, 0).unwrap();
        assert!(t.acquire(id, 0));
        assert!(t.remove(id));
        assert!(!t.remove(id));
        assert_eq!(t.lookup(1, ip("10.1.1.1"), MASK24), None);
        assert!(!t.can_acquire(id));
        assert_eq!(t.len(), 1);
        // A new template for the same network can be made meanwhile.
        let id2 = t.insert(1, ip("10.1.1.1"), MASK24, 1, 100, 0).unwrap();
        assert_ne!(id, id2);
        t.release(id);
        assert_eq!(t.len(), 1);
        assert!(t.get(id).is_none());
        // Removing an unreferenced one frees it at once.
        assert!(t.remove(id2));
        assert!(t.is_empty());
        assert_eq!(t.stats().removals, 2);
    }

    #[test]
    fn full_and_remove_matching() {
        let mut t = table(4);
        for i in 0..4u8 {
            t.insert(
                u32::from(i % 2),
                Ipv4Addr::new(10, 0, i, 1),
                MASK24,
                0,
                100,
                0,
            )
            .unwrap();
        }
        assert_eq!(
            t.insert(9, ip("10.9.9.9"), MASK24, 0, 100, 0),
            Err(InsertError::Full)
        );
        assert_eq!(t.stats().insert_full, 1);
        let mut cur = ScanCursor::new();
        let mut removed = vec![];
        let mut steps = 0;
        while !t.remove_matching(
            &mut cur,
            1,
            |tp| tp.service() == 1,
            |_, tp| removed.push(tp.client_net()),
        ) {
            steps += 1;
            assert!(steps <= 4);
        }
        assert_eq!(removed, vec![ip("10.0.1.0"), ip("10.0.3.0")]);
        assert_eq!(t.len(), 2);
    }
}
