//! A poll-mode worker: owns one RX and one TX queue on every port, receives
//! in bursts, runs the sans-IO [`Forwarder`] on each packet, and moves the
//! mbuf where the forwarder says: out of a port, to the worker that owns
//! the flow (hand-off rings), into the hold queue while a next hop is
//! resolved, or back to the pool. It takes no lock and makes no syscall
//! (except the optional idle sleep); the only allocations after start are
//! mbufs from the pool for ARP requests and gratuitous ARP.

use crate::conn_list::{ConnQuery, ConnScan};
use crate::counters::WorkerCounters;
use crate::snapshot::Reader;
use crossbeam_queue::ArrayQueue;
use crossbeam_utils::CachePadded;
use sluice_core::local::Handled;
use sluice_core::{DropReason, MacAddr};
use sluice_dpdk::{cycles, cycles_hz, Mbuf, MbufBatch, Mempool, RxQueue, TxQueue};
use sluice_lb::pipeline::{arp_request, gratuitous_arp, HousekeepingTimer};
use sluice_lb::{Action, Forwarder, Snapshot};
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Tuning of the poll loop.
#[derive(Clone, Copy, Debug)]
pub struct PollConfig {
    /// Packets per RX burst.
    pub burst: usize,
    /// Sleep after this many consecutive empty polls (with idle_sleep).
    pub idle_polls_before_sleep: u32,
    /// Idle sleep; zero disables it.
    pub idle_sleep: Duration,
}

/// Capacity of each worker-to-worker hand-off ring.
pub const HANDOFF_RING: usize = 1024;
/// Most packets held while next hops are resolved.
pub const MAX_HELD: usize = 256;
/// A held packet is dropped when its next hop stays unresolved this long.
pub const HOLD_MS: u64 = 3000;
/// ARP requests for one next hop are sent at most this often.
pub const ARP_RETRY_MS: u64 = 500;
/// Longest a housekeeping run (expiry, drains) may take, in microseconds;
/// a run that has not caught up by then continues at the next poll.
pub const HOUSEKEEPING_BUDGET_US: u64 = 50;

/// The rings between workers: packets handed to a flow's owner, and
/// neighbours learned by one worker for all the others. Ring [from][to] has
/// one producer and one consumer. Plus one small queue of control queries
/// per worker.
pub struct Rings {
    handoff: Vec<Vec<ArrayQueue<(Mbuf, u8)>>>,
    neighbours: Vec<Vec<ArrayQueue<(Ipv4Addr, MacAddr)>>>,
    /// Control queries, per worker.
    pub queries: Vec<ArrayQueue<ConnQuery>>,
}

impl Rings {
    /// Rings for `n` workers.
    pub fn new(n: usize) -> Arc<Rings> {
        Arc::new(Rings {
            handoff: (0..n)
                .map(|_| (0..n).map(|_| ArrayQueue::new(HANDOFF_RING)).collect())
                .collect(),
            neighbours: (0..n)
                .map(|_| (0..n).map(|_| ArrayQueue::new(256)).collect())
                .collect(),
            queries: (0..n).map(|_| ArrayQueue::new(4)).collect(),
        })
    }
}

/// One worker's state; moved onto its lcore.
pub struct Worker {
    id: usize,
    rx: Vec<RxQueue>,
    tx: Vec<TxQueue>,
    counters: Arc<CachePadded<WorkerCounters>>,
    snapshot: Reader<Snapshot>,
    forwarder: Forwarder,
    rings: Arc<Rings>,
    pool: Arc<Mempool>,
    stop: Arc<AtomicBool>,
    poll: PollConfig,
    kernel: Vec<Option<(RxQueue, TxQueue)>>,
}

struct Held {
    mbuf: Mbuf,
    port: usize,
    next_hop: Ipv4Addr,
    since: u64,
    /// When an ARP request for `next_hop` last went out (for any packet
    /// held for it: all of them are updated together).
    asked: u64,
}

/// Per-poll scratch state of a worker.
struct Out {
    tx: Vec<MbufBatch>,
    /// Per port: frames for the kernel interface.
    ktx: Vec<MbufBatch>,
    free: MbufBatch,
    held: Vec<Held>,
}

impl Worker {
    /// A worker with one (rx, tx) queue pair per port, in port order.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: usize,
        rx: Vec<RxQueue>,
        tx: Vec<TxQueue>,
        counters: Arc<CachePadded<WorkerCounters>>,
        snapshot: Reader<Snapshot>,
        forwarder: Forwarder,
        rings: Arc<Rings>,
        pool: Arc<Mempool>,
        stop: Arc<AtomicBool>,
        poll: PollConfig,
        kernel: Vec<Option<(RxQueue, TxQueue)>>,
    ) -> Worker {
        Worker {
            id,
            rx,
            tx,
            counters,
            snapshot,
            forwarder,
            rings,
            pool,
            stop,
            poll,
            kernel,
        }
    }

    /// The poll loop; returns when the stop flag is set, after finishing
    /// the burst in hand. Every mbuf it holds is freed before it returns.
    // Per-port state lives in parallel arrays (queues, batches, counters)
    // indexed by port: index loops read more plainly than zipped iterators.
    #[allow(clippy::needless_range_loop)]
    pub fn run(self) -> i32 {
        let Worker {
            id,
            mut rx,
            mut tx,
            counters: c,
            mut snapshot,
            mut forwarder,
            rings,
            pool,
            stop,
            poll,
            mut kernel,
        } = self;
        let nports = rx.len();
        let nworkers = rings.handoff.len();
        let burst = poll.burst;
        let mut batch = MbufBatch::with_capacity(burst);
        // What one poll can queue for one port: a burst from every port,
        // from the kernel interface and from every other worker, plus held
        // packets and ARP requests (one per held packet at most).
        let out_cap = burst * (nports + nworkers + 1) + 2 * MAX_HELD;
        let mut out = Out {
            tx: (0..nports)
                .map(|_| MbufBatch::with_capacity(out_cap))
                .collect(),
            ktx: (0..nports)
                .map(|_| MbufBatch::with_capacity(out_cap))
                .collect(),
            free: MbufBatch::with_capacity(out_cap),
            held: Vec::with_capacity(MAX_HELD),
        };
        let hz_ms = (cycles_hz() / 1000).max(1);
        let housekeeping_budget = (cycles_hz() / 1_000_000).max(1) * HOUSEKEEPING_BUDGET_US;
        let mut idle_run: u32 = 0;
        let mut epoch = 0u64;
        let mut vips: Vec<Ipv4Addr> = Vec::new();
        let mut housekeeping = HousekeepingTimer::default();
        let mut scan: Option<ConnScan> = None;

        while !stop.load(Ordering::Relaxed) {
            snapshot.refresh();
            let e = snapshot.epoch();
            let snap = snapshot.get();
            let start = cycles();
            let now = start / hz_ms + 1;
            if e != epoch {
                epoch = e;
                // Worker 0 announces new virtual IPs on every port.
                if id == 0 {
                    for vip in snap.services.vips() {
                        if !vips.contains(vip) {
                            for (p, port) in snap.ports.iter().enumerate() {
                                send_arp(&pool, &mut out, p, |b| gratuitous_arp(b, port.mac, *vip));
                            }
                        }
                    }
                    vips.clear();
                    vips.extend_from_slice(snap.services.vips());
                }
            }
            // Neighbours other workers learned.
            for from in 0..nworkers {
                if from == id {
                    continue;
                }
                for _ in 0..64 {
                    match rings.neighbours[from][id].pop() {
                        Some((ip, mac)) => forwarder.learn_remote(ip, mac, now),
                        None => break,
                    }
                }
            }
            let mut got = 0usize;
            for p in 0..nports {
                let n = rx[p].rx_burst(&mut batch);
                if n == 0 {
                    continue;
                }
                got += n;
                let pc = &c.ports[p];
                pc.rx_packets.add(n as u64);
                for i in 0..n.min(3) {
                    if let Some(m) = batch.get(i) {
                        m.prefetch();
                    }
                }
                for i in 0..n {
                    if let Some(m) = batch.get(i + 3) {
                        m.prefetch();
                    }
                    if let Some(m) = batch.get(i) {
                        pc.rx_bytes.add(m.pkt_len() as u64);
                    }
                }
                for m in batch.drain() {
                    handle(
                        m,
                        p,
                        id,
                        snap,
                        &mut forwarder,
                        &rings,
                        &c,
                        &pool,
                        &mut out,
                        now,
                    );
                }
            }
            // What the kernel sends on a port's segment goes out unchanged.
            for p in 0..nports {
                if let Some((krx, _)) = kernel.get_mut(p).and_then(|k| k.as_mut()) {
                    let n = krx.rx_burst(&mut batch);
                    if n > 0 {
                        got += n;
                        c.kernel_tx.add(n as u64);
                        for m in batch.drain() {
                            if let Err(m) = out.tx[p].push(m) {
                                c.drop_packet(DropReason::TxFull);
                                let _ = out.free.push(m);
                            }
                        }
                    }
                }
            }
            // Packets other workers handed to this one.
            for from in 0..nworkers {
                if from == id {
                    continue;
                }
                for _ in 0..burst {
                    match rings.handoff[from][id].pop() {
                        Some((m, p)) => {
                            got += 1;
                            forwarder.stats().handoff_in.add(1);
                            handle(
                                m,
                                p as usize,
                                id,
                                snap,
                                &mut forwarder,
                                &rings,
                                &c,
                                &pool,
                                &mut out,
                                now,
                            );
                        }
                        None => break,
                    }
                }
            }
            // Held packets whose next hop is now known go out; stale ones
            // are dropped.
            if !out.held.is_empty() {
                let mut i = 0;
                while i < out.held.len() {
                    let h = &out.held[i];
                    if let Some(mac) = forwarder.neighbour(h.next_hop, now) {
                        let mut h = out.held.swap_remove(i);
                        let src = snap.ports[h.port].mac;
                        sluice_core::wire::ethernet::set_macs(h.mbuf.data_mut(), mac, src);
                        if let Err(m) = out.tx[h.port].push(h.mbuf) {
                            c.drop_packet(DropReason::TxFull);
                            let _ = out.free.push(m);
                        }
                    } else if now.saturating_sub(h.since) > HOLD_MS {
                        let h = out.held.swap_remove(i);
                        c.drop_packet(DropReason::NeighbourUnresolved);
                        if let Err(m) = out.free.push(h.mbuf) {
                            drop(m);
                        }
                    } else {
                        if now.saturating_sub(h.asked) >= ARP_RETRY_MS {
                            let (port, nh) = (h.port, h.next_hop);
                            ask(&pool, &mut out, snap, port, nh, now, &forwarder);
                        }
                        i += 1;
                    }
                }
            }
            // Share what this worker learned.
            if nworkers > 1 {
                for (ip, mac) in forwarder.take_learned() {
                    for to in 0..nworkers {
                        if to != id {
                            let _ = rings.neighbours[id][to].push((ip, mac));
                        }
                    }
                }
            } else {
                forwarder.take_learned().for_each(drop);
            }
            out.free.free_all();
            // Flush every port's TX batch; what the device refused is freed
            // and counted.
            for p in 0..nports {
                let b = &mut out.tx[p];
                if b.is_empty() {
                    continue;
                }
                let bytes: u64 = (0..b.len())
                    .filter_map(|i| b.get(i))
                    .map(|m| m.pkt_len() as u64)
                    .sum();
                let offered = b.len();
                let sent = tx[p].tx_burst(b);
                let unsent_bytes: u64 = (0..b.len())
                    .filter_map(|i| b.get(i))
                    .map(|m| m.pkt_len() as u64)
                    .sum();
                let pc = &c.ports[p];
                pc.tx_packets.add(sent as u64);
                pc.tx_bytes.add(bytes - unsent_bytes);
                if sent < offered {
                    c.drops[DropReason::TxFull.index()].add((offered - sent) as u64);
                    b.free_all();
                }
            }
            // A control query: one slice of this worker's table per poll.
            if scan.is_none() {
                scan = rings.queries[id].pop().map(ConnScan::new);
            }
            if scan
                .as_mut()
                .is_some_and(|s| s.step(forwarder.table(), now))
            {
                scan = None;
            }
            for p in 0..nports {
                let b = &mut out.ktx[p];
                if b.is_empty() {
                    continue;
                }
                let offered = b.len();
                let sent = match kernel.get_mut(p).and_then(|k| k.as_mut()) {
                    Some((_, ktx)) => ktx.tx_burst(b),
                    None => 0,
                };
                c.kernel_rx.add(sent as u64);
                if sent < offered {
                    c.drops[DropReason::TxFull.index()].add((offered - sent) as u64);
                    b.free_all();
                }
            }
            if housekeeping.due(now) {
                let deadline = cycles().wrapping_add(housekeeping_budget);
                let h = forwarder.housekeeping(snap, now, || cycles() < deadline);
                housekeeping.ran(now, h);
                send_probes(&pool, &mut out, snap, &mut forwarder);
                let st = forwarder.table().stats();
                c.ct_occupancy.set(st.occupancy as u64);
                c.ct_capacity.set(st.capacity as u64);
                c.ct_inserts.set(st.inserts);
                c.ct_insert_failures.set(st.insert_full);
                c.ct_expiries.set(st.expiries);
                c.ct_removals.set(st.removals);
                c.ct_templates
                    .set(forwarder.table().templates().len() as u64);
            }
            if got > 0 {
                idle_run = 0;
                c.busy_polls.add(1);
                c.busy_cycles.add(cycles().wrapping_sub(start));
            } else {
                c.idle_polls.add(1);
                idle_run = idle_run.saturating_add(1);
                if !poll.idle_sleep.is_zero() && idle_run >= poll.idle_polls_before_sleep {
                    std::thread::sleep(poll.idle_sleep);
                }
            }
        }
        // Everything still held goes back to the pool: batches free on drop,
        // held packets and this worker's incoming rings explicitly.
        out.held.clear();
        for from in 0..nworkers {
            while rings.handoff[from][id].pop().is_some() {}
        }
        drop(out);
        drop(batch);
        0
    }
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn handle(
    mut m: Mbuf,
    rx_port: usize,
    id: usize,
    snap: &Snapshot,
    forwarder: &mut Forwarder,
    rings: &Rings,
    c: &WorkerCounters,
    pool: &Mempool,
    out: &mut Out,
    now: u64,
) {
    if m.segments() != 1 {
        c.drop_packet(DropReason::MultiSegment);
        let _ = out.free.push(m);
        return;
    }
    match forwarder.process(snap, m.data_mut(), rx_port, now) {
        Action::Forward { port } => {
            if let Err(m) = out.tx[port].push(m) {
                c.drop_packet(DropReason::TxFull);
                let _ = out.free.push(m);
            }
        }
        Action::Reply(h) => {
            match h {
                Handled::ArpRequest => c.arp_requests_answered.add(1),
                Handled::IcmpEcho => c.icmp_echo_answered.add(1),
                Handled::ArpReply => c.arp_replies_learned.add(1),
            }
            if let Err(m) = out.tx[rx_port].push(m) {
                c.drop_packet(DropReason::TxFull);
                let _ = out.free.push(m);
            }
        }
        Action::Consumed(h) => {
            if h == Handled::ArpReply {
                c.arp_replies_learned.add(1);
            }
            let _ = out.free.push(m);
        }
        Action::Hold { port, next_hop } => {
            if out.held.len() >= MAX_HELD {
                c.drop_packet(DropReason::HoldQueueFull);
                let _ = out.free.push(m);
                return;
            }
            forwarder.stats().held_for_arp.add(1);
            // Ask now unless a packet already held for this next hop did.
            let asked = out
                .held
                .iter()
                .filter(|h| h.next_hop == next_hop)
                .map(|h| h.asked)
                .max();
            out.held.push(Held {
                mbuf: m,
                port,
                next_hop,
                since: now,
                asked: asked.unwrap_or(0),
            });
            if asked.is_none_or(|a| now.saturating_sub(a) >= ARP_RETRY_MS) {
                ask(pool, out, snap, port, next_hop, now, forwarder);
            }
        }
        Action::ToKernel => {
            if let Err(m) = out.ktx[rx_port].push(m) {
                c.drop_packet(DropReason::TxFull);
                let _ = out.free.push(m);
            }
        }
        Action::HandOff { worker } => match rings.handoff[id][worker].push((m, rx_port as u8)) {
            Ok(()) => forwarder.stats().handoff_out.add(1),
            Err((m, _)) => {
                c.drop_packet(DropReason::HandoffFull);
                let _ = out.free.push(m);
            }
        },
        Action::Drop(r) => {
            c.drop_packet(r);
            let _ = out.free.push(m);
        }
    }
}

/// Sends an ARP request for `nh` on `port` and records the time on every
/// packet held for it, so the next request waits ARP_RETRY_MS.
fn ask(
    pool: &Mempool,
    out: &mut Out,
    snap: &Snapshot,
    port: usize,
    nh: Ipv4Addr,
    now: u64,
    f: &Forwarder,
) {
    for h in out.held.iter_mut().filter(|h| h.next_hop == nh) {
        h.asked = now;
    }
    let Some(pv) = snap.ports.get(port) else {
        return;
    };
    // The source address: the port's own address on the next hop's prefix
    // (any of its addresses if none matches).
    let src = pv.source_for(nh);
    if send_arp(pool, out, port, |b| {
        arp_request(b, MacAddr::BROADCAST, pv.mac, src, nh)
    }) {
        f.stats().arp_requests_sent.add(1);
    }
}

/// Sends the unicast ARP probes the neighbour timers asked for, each on
/// the port whose prefix holds the neighbour.
fn send_probes(pool: &Mempool, out: &mut Out, snap: &Snapshot, f: &mut Forwarder) {
    let mut sent = 0;
    for (ip, mac) in f.take_probes() {
        let Some(port) = snap.routes.is_connected(ip) else {
            continue;
        };
        let pv = &snap.ports[port];
        let src = pv.source_for(ip);
        if send_arp(pool, out, port, |b| arp_request(b, mac, pv.mac, src, ip)) {
            sent += 1;
        }
    }
    f.stats().arp_requests_sent.add(sent);
}

/// Allocates an mbuf, lets `fill` write a frame, and queues it on `port`.
fn send_arp(
    pool: &Mempool,
    out: &mut Out,
    port: usize,
    fill: impl FnOnce(&mut [u8]) -> usize,
) -> bool {
    let mut buf = [0u8; 64];
    let len = fill(&mut buf);
    let Some(mut m) = Mbuf::alloc(pool) else {
        return false;
    };
    if !m.set_data(&buf[..len]) {
        return false;
    }
    out.tx[port].push(m).is_ok()
}
