//! Per-worker load-balancing counters: per service and per real, packets
//! and bytes in both directions and connections scheduled, plus each
//! real's active/inactive connection gauges. Each worker is the only
//! writer of its block (relaxed load + store); the control thread and the
//! schedulers of every worker read all blocks.

use crate::slot::{RealSlot, ServiceSlot, MAX_REALS, MAX_SERVICES};
use crossbeam_utils::CachePadded;
use sluice_conntrack::Activity;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// A counter written by one thread and read by others.
#[derive(Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds `n` (wrapping). Only the owning worker may call this.
    #[inline(always)]
    pub fn add(&self, n: u64) {
        self.0.store(
            self.0.load(Ordering::Relaxed).wrapping_add(n),
            Ordering::Relaxed,
        );
    }

    /// Subtracts `n` (wrapping; a gauge read as i64 may dip below zero on
    /// one worker when another counted the increment).
    #[inline(always)]
    pub fn sub(&self, n: u64) {
        self.0.store(
            self.0.load(Ordering::Relaxed).wrapping_sub(n),
            Ordering::Relaxed,
        );
    }

    /// Overwrites the value (for gauges the owner publishes).
    #[inline(always)]
    pub fn set(&self, v: u64) {
        self.0.store(v, Ordering::Relaxed);
    }

    /// Current value.
    #[inline(always)]
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    /// Resets to zero (control thread, `zero`).
    pub fn reset(&self) {
        self.0.store(0, Ordering::Relaxed);
    }
}

/// Traffic counters of one service or real on one worker.
#[derive(Default)]
pub struct TrafficCounters {
    /// Connections scheduled.
    pub connections: Counter,
    /// Packets from clients.
    pub packets_in: Counter,
    /// Bytes from clients.
    pub bytes_in: Counter,
    /// Packets to clients.
    pub packets_out: Counter,
    /// Bytes to clients.
    pub bytes_out: Counter,
    /// NAT connections that expired in SYN_RECV without any reply from the
    /// real (passive health detection).
    pub syn_timeouts: Counter,
    /// Connections the real refused: it answered their SYN with a reset
    /// (passive health detection). Resets later in a connection are the
    /// application's business, or provoked by forged segments, and are not
    /// counted.
    pub resets: Counter,
}

impl TrafficCounters {
    /// Counts a packet of `len` bytes from a client.
    #[inline(always)]
    pub fn count_in(&self, len: u64) {
        self.packets_in.add(1);
        self.bytes_in.add(len);
    }

    /// Counts a packet of `len` bytes to a client.
    #[inline(always)]
    pub fn count_out(&self, len: u64) {
        self.packets_out.add(1);
        self.bytes_out.add(len);
    }

    /// Zeroes every counter (control thread, when a slot is given to a new
    /// service or real: nothing refers to it any more, so no worker writes
    /// it concurrently).
    pub fn reset(&self) {
        for c in [
            &self.connections,
            &self.packets_in,
            &self.bytes_in,
            &self.packets_out,
            &self.bytes_out,
            &self.syn_timeouts,
            &self.resets,
        ] {
            c.reset();
        }
    }
}

/// Connections of one real on one worker.
#[derive(Default)]
pub struct Gauge {
    /// Established connections.
    pub active: Counter,
    /// Other connections.
    pub inactive: Counter,
    /// Every connection in the table that refers to this real slot:
    /// counted when the entry is made and when it goes, never moved by
    /// state changes, so a reader can never miss a connection that moves
    /// between active and inactive (the slot is reused only at zero).
    pub entries: Counter,
}

impl Gauge {
    /// Counts a new entry (inactive).
    #[inline]
    pub fn opened(&self) {
        self.entries.add(1);
        self.inactive.add(1);
    }

    /// Moves a connection between the active and inactive counts.
    #[inline]
    pub fn moved(&self, a: Activity) {
        match a {
            Activity::Activated => {
                self.active.add(1);
                self.inactive.sub(1);
            }
            Activity::Deactivated => {
                self.active.sub(1);
                self.inactive.add(1);
            }
            Activity::Unchanged => {}
        }
    }

    /// Uncounts an entry that goes, active or not.
    #[inline]
    pub fn closed(&self, was_active: bool) {
        self.entries.sub(1);
        if was_active {
            self.active.sub(1);
        } else {
            self.inactive.sub(1);
        }
    }
}

/// One worker's load-balancing counters.
pub struct WorkerLbStats {
    /// By service slot.
    pub services: Box<[TrafficCounters]>,
    /// By real slot.
    pub reals: Box<[TrafficCounters]>,
    /// By real slot.
    pub gauges: Box<[Gauge]>,
    /// Packets handed to the owning worker.
    pub handoff_out: Counter,
    /// Packets received from other workers.
    pub handoff_in: Counter,
    /// New connections forwarded without a table entry (table full).
    pub stateless_forwards: Counter,
    /// Packets of connections forwarded without an entry (table full)
    /// that were given one once the table had room.
    pub tableless_adopted: Counter,
    /// Mid-connection TCP segments of no entry scheduled by the service's
    /// hash (`on_miss = "hash"`), an entry made.
    pub hashed_on_miss: Counter,
    /// Connections (new, or changing state) queued to be told to the peer appliances.
    pub sync_queued: Counter,
    /// Connections not told to peers because the worker's sync queue was full.
    pub sync_overflow: Counter,
    /// Connections peers told about, installed (new entries) or updated (state) in this worker's table.
    pub sync_installed: Counter,
    /// Connections peers told about and not installed: their service or real is not here, or the table is full.
    pub sync_unknown: Counter,
    /// ICMP time-exceeded errors sent for packets whose TTL ran out here.
    pub time_exceeded_sent: Counter,
    /// ICMP fragmentation-needed (packet-too-big) errors sent for packets
    /// too big for a tunnel once encapsulated.
    pub too_big_sent: Counter,
    /// Packets too big for a tunnel, which could be fragmented, sent in
    /// two outer fragments.
    pub tunnel_fragmented: Counter,
    /// First fragments whose datagram was remembered, for its later
    /// fragments to follow.
    pub fragments_remembered: Counter,
    /// Of those, remembered in place of a live datagram (the table's set
    /// was full).
    pub fragments_replaced: Counter,
    /// First fragments forwarded without a connection entry (the table
    /// full): not remembered.
    pub fragments_unremembered: Counter,
    /// Later fragments forwarded the way their first went.
    pub fragments_followed: Counter,
    /// Later fragments held because their first had not come yet.
    pub fragments_held: Counter,
    /// SYNs that would open a connection (checksum right).
    pub syns: Counter,
    /// SYNs answered with a SYN cookie.
    pub syn_cookies_sent: Counter,
    /// ACKs whose cookie was valid: connections opened to a real.
    pub syn_cookies_valid: Counter,
    /// ACKs without an entry checked for a cookie in vain.
    pub syn_cookies_invalid: Counter,
    /// Handshakes with reals completed for proxied connections.
    pub syn_proxy_handshakes: Counter,
    /// Gauge: half-open connections (SYN_RECV, unanswered, not proxied).
    pub half_open: Counter,
    /// Full-NAT connections now, each holding a local port (a gauge).
    pub local_ports_in_use: Counter,
    /// PROXY protocol headers put in front of client data.
    pub proxy_headers_sent: Counter,
    /// Gauge: 1 while the SYN proxy is engaged for `auto` services.
    pub syn_proxy_engaged: Counter,
    /// Packets held while resolving a next hop.
    pub held_for_arp: Counter,
    /// ARP requests sent for next hops.
    pub arp_requests_sent: Counter,
    /// IPv6 neighbour solicitations sent for next hops.
    pub nd_solicits_sent: Counter,
}

impl WorkerLbStats {
    /// The counters of service `s`.
    #[inline(always)]
    pub fn service(&self, s: ServiceSlot) -> &TrafficCounters {
        &self.services[s.index()]
    }

    /// The counters of real `r`.
    #[inline(always)]
    pub fn real(&self, r: RealSlot) -> &TrafficCounters {
        &self.reals[r.index()]
    }

    /// The connection gauges of real `r`.
    #[inline(always)]
    pub fn gauge(&self, r: RealSlot) -> &Gauge {
        &self.gauges[r.index()]
    }

    /// A zeroed block.
    pub fn new() -> WorkerLbStats {
        WorkerLbStats {
            services: (0..MAX_SERVICES)
                .map(|_| TrafficCounters::default())
                .collect(),
            reals: (0..MAX_REALS).map(|_| TrafficCounters::default()).collect(),
            gauges: (0..MAX_REALS).map(|_| Gauge::default()).collect(),
            handoff_out: Counter::default(),
            handoff_in: Counter::default(),
            stateless_forwards: Counter::default(),
            tableless_adopted: Counter::default(),
            hashed_on_miss: Counter::default(),
            sync_queued: Counter::default(),
            sync_overflow: Counter::default(),
            sync_installed: Counter::default(),
            sync_unknown: Counter::default(),
            time_exceeded_sent: Counter::default(),
            too_big_sent: Counter::default(),
            tunnel_fragmented: Counter::default(),
            fragments_remembered: Counter::default(),
            fragments_replaced: Counter::default(),
            fragments_unremembered: Counter::default(),
            fragments_followed: Counter::default(),
            fragments_held: Counter::default(),
            syns: Counter::default(),
            syn_cookies_sent: Counter::default(),
            syn_cookies_valid: Counter::default(),
            syn_cookies_invalid: Counter::default(),
            syn_proxy_handshakes: Counter::default(),
            half_open: Counter::default(),
            local_ports_in_use: Counter::default(),
            proxy_headers_sent: Counter::default(),
            syn_proxy_engaged: Counter::default(),
            held_for_arp: Counter::default(),
            arp_requests_sent: Counter::default(),
            nd_solicits_sent: Counter::default(),
        }
    }
}

impl Default for WorkerLbStats {
    fn default() -> Self {
        WorkerLbStats::new()
    }
}

/// Every worker's counters plus per-real flags the control thread sets;
/// shared by all workers (each reads the others' gauges to schedule).
pub struct SharedStats {
    /// One block per worker.
    pub workers: Vec<Arc<CachePadded<WorkerLbStats>>>,
    /// Per real slot: over its upper threshold (set by the control thread
    /// with hysteresis down to the lower threshold).
    overloaded: Box<[AtomicBool]>,
    /// Per real slot: held out of scheduling by health checking (failed
    /// active check, agent down, or passive suspicion).
    down: Box<[AtomicBool]>,
}

impl SharedStats {
    /// Blocks for `n` workers.
    pub fn new(n: usize) -> Arc<SharedStats> {
        Arc::new(SharedStats {
            workers: (0..n)
                .map(|_| Arc::new(CachePadded::new(WorkerLbStats::new())))
                .collect(),
            overloaded: (0..MAX_REALS).map(|_| AtomicBool::new(false)).collect(),
            down: (0..MAX_REALS).map(|_| AtomicBool::new(false)).collect(),
        })
    }

    /// Active connections of real `slot` over all workers.
    #[inline]
    pub fn active(&self, slot: RealSlot) -> u64 {
        self.gauge_sum(slot, |g| &g.active)
    }

    /// Inactive connections of real `slot` over all workers.
    #[inline]
    pub fn inactive(&self, slot: RealSlot) -> u64 {
        self.gauge_sum(slot, |g| &g.inactive)
    }

    /// Table entries that refer to real `slot`, over all workers (each
    /// worker's count moves only when an entry is made or goes).
    #[inline]
    pub fn entries(&self, slot: RealSlot) -> u64 {
        self.gauge_sum(slot, |g| &g.entries)
    }

    /// One gauge of real `slot` summed over the workers. Each worker's
    /// part may dip below zero (a connection counted up on one worker and
    /// down on another), so the sum wraps and is read as signed.
    #[inline]
    fn gauge_sum(&self, slot: RealSlot, which: impl Fn(&Gauge) -> &Counter) -> u64 {
        let s = self
            .workers
            .iter()
            .fold(0u64, |a, w| a.wrapping_add(which(w.gauge(slot)).get()));
        (s as i64).max(0) as u64
    }

    /// Whether real `slot` is over its threshold.
    #[inline]
    pub fn is_overloaded(&self, slot: RealSlot) -> bool {
        self.overloaded[slot.index()].load(Ordering::Relaxed)
    }

    /// Sets whether real `slot` is over its threshold (control thread).
    pub fn set_overloaded(&self, slot: RealSlot, over: bool) {
        self.overloaded[slot.index()].store(over, Ordering::Relaxed);
    }

    /// Whether real `slot` is held out by health checking.
    #[inline]
    pub fn is_down(&self, slot: RealSlot) -> bool {
        self.down[slot.index()].load(Ordering::Relaxed)
    }

    /// Sets whether real `slot` is held out by health checking (control
    /// thread).
    pub fn set_down(&self, slot: RealSlot, down: bool) {
        self.down[slot.index()].store(down, Ordering::Relaxed);
    }

    /// Sum of a traffic counter over workers.
    pub fn sum(&self, f: impl Fn(&WorkerLbStats) -> u64) -> u64 {
        self.workers.iter().map(|w| f(w)).fold(0, u64::wrapping_add)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_clears_every_counter_of_a_slot() {
        let s = SharedStats::new(1);
        let t = &s.workers[0].real(RealSlot(3));
        for c in [
            &t.connections,
            &t.packets_in,
            &t.bytes_in,
            &t.packets_out,
            &t.bytes_out,
            &t.syn_timeouts,
            &t.resets,
        ] {
            c.add(7);
        }
        t.reset();
        for c in [
            &t.connections,
            &t.packets_in,
            &t.bytes_in,
            &t.packets_out,
            &t.bytes_out,
            &t.syn_timeouts,
            &t.resets,
        ] {
            assert_eq!(c.get(), 0);
        }
    }

    #[test]
    fn a_connection_changing_state_is_always_seen_by_the_entries_gauge() {
        // One worker keeps moving its one connection between active and
        // inactive while the control thread reads: the entries gauge never
        // misses it (reading active then inactive can).
        let s = SharedStats::new(1);
        s.workers[0].gauge(RealSlot(7)).opened();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let started = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (s2, stop2, started2) = (s.clone(), stop.clone(), started.clone());
        let worker = std::thread::spawn(move || {
            let g = &s2.workers[0].gauge(RealSlot(7));
            started2.store(true, Ordering::Relaxed);
            while !stop2.load(Ordering::Relaxed) {
                g.active.add(1);
                g.inactive.sub(1);
                g.inactive.add(1);
                g.active.sub(1);
            }
        });
        while !started.load(Ordering::Relaxed) {
            std::thread::yield_now();
        }
        for _ in 0..2_000_000 {
            assert_eq!(s.entries(RealSlot(7)), 1);
        }
        stop.store(true, Ordering::Relaxed);
        worker.join().unwrap();
        s.workers[0].gauge(RealSlot(7)).closed(false);
        assert_eq!(
            (
                s.entries(RealSlot(7)),
                s.active(RealSlot(7)),
                s.inactive(RealSlot(7))
            ),
            (0, 0, 0)
        );
    }

    #[test]
    fn gauges_sum_over_workers_and_never_read_negative() {
        let s = SharedStats::new(2);
        s.workers[0].gauge(RealSlot(5)).active.add(3);
        s.workers[1].gauge(RealSlot(5)).active.add(2);
        assert_eq!(s.active(RealSlot(5)), 5);
        s.workers[1].gauge(RealSlot(5)).inactive.sub(1);
        assert_eq!(s.inactive(RealSlot(5)), 0);
        s.workers[0].gauge(RealSlot(5)).inactive.add(2);
        assert_eq!(s.inactive(RealSlot(5)), 1);
    }
}
