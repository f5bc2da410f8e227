//! A poll-mode worker: owns one RX and one TX queue on every port, receives
//! in bursts, runs the sans-IO [`Forwarder`] on each packet, and moves the
//! mbuf where the forwarder says: out of a port, up to the port's kernel
//! interface, to the worker that owns the flow (hand-off rings), into the
//! hold queue while a next hop is resolved, or back to the pool.
//!
//! Every decision (what a packet becomes, when to ask ARP, when a held
//! packet expires, which VIP to announce, when to expire connections) is
//! made by the sans-IO crates; this file only moves mbufs. It takes no lock
//! and makes no syscall (except the optional idle sleep); after start it
//! allocates nothing but mbufs from the pool, for ARP requests.

mod rings;

pub use rings::{HandOffs, Rings, SyncRings, HANDOFF_RING, SYNC_RING};

use crate::conn_list::ConnScan;
use crate::counters::WorkerCounters;
use crate::snapshot::Reader;
use crossbeam_utils::CachePadded;
use sluice_core::local::Handled;
use sluice_core::local6;
use sluice_core::tunnel;
use sluice_core::wire::arp;
use sluice_core::wire::ethernet;
use sluice_core::{DropReason, MacAddr};
use sluice_dpdk::{cycles, cycles_hz, Mbuf, MbufBatch, Mempool, QueuePair, RxQueue, TxQueue};
use sluice_lb::fragments::{FRAGMENT_HOLD_MS, MAX_HELD_FRAGMENTS};
use sluice_lb::hold::{Announcer, HoldQueue, Holding, Release, MAX_HELD};
use sluice_lb::park::{ParkQueue, MAX_PARKED};
use sluice_lb::pipeline::HousekeepingTimer;
use sluice_lb::pipeline::SYN_OUTBOX;
use sluice_lb::{
    Action, Forwarder, Lookahead, RetellCursor, SentError, Snapshot, WorkerLbStats, MAX_BURST,
};
use std::net::{IpAddr, Ipv6Addr};
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

/// Table slots a worker examines per poll when telling a joining peer all
/// its connections.
const SYNC_RETELL_ALL_STEP: usize = 1024;

/// Room in a worker's sync queue for the connections a housekeeping run
/// re-tells (beyond that they are counted as lost).
const SYNC_RETELLS: usize = 8192;

/// Peers' connections a worker installs per poll at most (the rest wait
/// for the next poll).
const SYNC_INSTALLS_PER_POLL: usize = 256;

/// Longest a housekeeping run (expiry, drains) may take, in microseconds;
/// a run that has not caught up by then continues at the next poll.
pub const HOUSEKEEPING_BUDGET_US: u64 = 50;

/// A worker's queues on one port, and on the port's kernel interface;
/// they borrow the ports, which outlive the worker.
pub struct PortQueues<'port> {
    /// The port's RX queue of this worker.
    pub rx: RxQueue<'port>,
    /// The port's TX queue of this worker.
    pub tx: TxQueue<'port>,
    /// The kernel interface's queue pair of this worker, if the port has
    /// one.
    pub kernel: Option<QueuePair<'port>>,
}

/// What every worker shares with the control thread and the others.
#[derive(Clone)]
pub struct Shared {
    /// This worker's counters (the control thread reads them).
    pub counters: Arc<CachePadded<WorkerCounters>>,
    /// The rings between workers.
    pub rings: Arc<Rings>,
    /// The mbuf pool (for ARP requests).
    pub pool: Arc<Mempool>,
    /// Set to stop.
    pub stop: Arc<AtomicBool>,
}

/// One worker; moved onto its lcore.
pub struct Worker<'port> {
    snapshot: Reader<Snapshot>,
    burst: MbufBatch,
    engine: Engine<'port>,
}

/// Everything a worker owns but its snapshot reader and its RX batch.
struct Engine<'port> {
    id: usize,
    ports: Vec<PortQueues<'port>>,
    shared: Shared,
    lb: Arc<CachePadded<WorkerLbStats>>,
    forwarder: Forwarder,
    /// This worker's ends of the packet hand-off rings.
    handoffs: HandOffs,
    /// Per packet of the RX burst being handled: where its connection is
    /// indexed (stages 2 and 3 of `poll_rx`).
    ahead: [Lookahead; MAX_BURST],
    poll: PollConfig,
    out: Out,
    held: HoldQueue<Mbuf>,
    /// Client packets waiting for a proxied handshake with a real.
    parked: ParkQueue<Mbuf>,
    /// Later fragments waiting for their datagram's first fragment.
    fragments: ParkQueue<Mbuf>,
    /// Parked packets and held fragments being tried again (room for all
    /// of both).
    retry: Vec<(Mbuf, usize, u64)>,
    announcer: Announcer,
    announcer6: Announcer<Ipv6Addr>,
    epoch: u64,
    housekeeping: HousekeepingTimer,
    scan: Option<ConnScan>,
    /// Where the telling of every connection to a joining peer is.
    retelling: Option<RetellCursor>,
    idle_run: u32,
    hz_ms: u64,
    housekeeping_budget: u64,
}

/// What one poll sends, passes up to the kernel, or frees.
struct Out {
    /// Per port: frames to send.
    tx: Vec<MbufBatch>,
    /// Per port: frames for the kernel interface.
    ktx: Vec<MbufBatch>,
    /// Frames to free, with one call per poll.
    free: MbufBatch,
}

impl Out {
    /// Queues `m` on `port`, or drops it as `tx_full`.
    fn send(&mut self, port: usize, m: Mbuf, c: &WorkerCounters) {
        if let Err(m) = self.tx[port].push(m) {
            self.discard(m, DropReason::TxFull, c);
        }
    }

    /// Queues `m` for `port`'s kernel interface, or drops it as `tx_full`.
    fn pass_up(&mut self, port: usize, m: Mbuf, c: &WorkerCounters) {
        if let Err(m) = self.ktx[port].push(m) {
            self.discard(m, DropReason::TxFull, c);
        }
    }

    /// Frees `m` with the poll's other drops and counts why.
    fn discard(&mut self, m: Mbuf, why: DropReason, c: &WorkerCounters) {
        c.drop_packet(why);
        // The free batch has room for everything one poll can handle; a
        // push that fails frees the mbuf at once instead.
        let _ = self.free.push(m);
    }

    /// Allocates an mbuf, copies `frame` into it, and queues it on `port`.
    fn send_frame(&mut self, pool: &Mempool, port: usize, frame: &[u8]) -> bool {
        let Some(mut m) = Mbuf::alloc(pool) else {
            return false;
        };
        m.set_data(frame) && self.tx[port].push(m).is_ok()
    }

    /// Allocates an mbuf, lets `fill` write a frame, and queues it on
    /// `port`.
    fn send_arp(
        &mut self,
        pool: &Mempool,
        port: usize,
        fill: impl FnOnce(&mut [u8]) -> usize,
    ) -> bool {
        let mut buf = [0u8; local6::ND_FRAME_LEN];
        let len = fill(&mut buf);
        self.send_frame(pool, port, &buf[..len])
    }

    /// Asks for `nh`'s MAC on `port`: an ARP request, or for IPv6 a
    /// neighbour solicitation, to `to` (broadcast to resolve, the
    /// neighbour's MAC to probe), from the port's address on the next
    /// hop's prefix.
    fn ask(
        &mut self,
        pool: &Mempool,
        snap: &Snapshot,
        port: usize,
        nh: IpAddr,
        to: MacAddr,
    ) -> bool {
        let Some(pv) = snap.ports.get(port) else {
            return false;
        };
        match nh {
            IpAddr::V4(nh) => {
                let src = pv.source_for(nh);
                self.send_arp(pool, port, |b| arp::write_request(b, to, pv.mac, src, nh))
            }
            IpAddr::V6(nh) => {
                let src = pv.source_for6(nh);
                let known = (to != MacAddr::BROADCAST).then_some(to);
                self.send_arp(pool, port, |b| local6::solicit(b, pv.mac, src, nh, known))
            }
        }
    }
}

impl<'port> Worker<'port> {
    /// Worker `id` with its queues on every port, in port order.
    pub fn new(
        id: usize,
        ports: Vec<PortQueues<'port>>,
        shared: Shared,
        snapshot: Reader<Snapshot>,
        mut forwarder: Forwarder,
        handoffs: HandOffs,
        poll: PollConfig,
    ) -> Worker<'port> {
        let (nports, nworkers) = (ports.len(), shared.rings.workers());
        if shared.rings.sync.is_some() {
            // What one poll makes at most: a state change per packet, and
            // the re-tellings of a housekeeping run.
            forwarder.enable_sync(
                poll.burst * (nports + nworkers + 1) + MAX_PARKED + SYN_OUTBOX + SYNC_RETELLS,
            );
        }
        // What one poll can queue for one port: a burst from every port,
        // from the kernel interface and from every other worker, plus held
        // packets and ARP requests (one per held packet at most).
        let cap = poll.burst * (nports + nworkers + 1) + 2 * MAX_HELD + MAX_PARKED + SYN_OUTBOX;
        let batches = || (0..nports).map(|_| MbufBatch::with_capacity(cap)).collect();
        let hz = cycles_hz();
        Worker {
            snapshot,
            burst: MbufBatch::with_capacity(poll.burst),
            engine: Engine {
                id,
                ports,
                shared,
                lb: forwarder.stats_handle(),
                forwarder,
                handoffs,
                ahead: [Lookahead::default(); MAX_BURST],
                poll,
                out: Out {
                    tx: batches(),
                    ktx: batches(),
                    free: MbufBatch::with_capacity(cap),
                },
                held: HoldQueue::new(),
                parked: ParkQueue::default(),
                fragments: ParkQueue::new(MAX_HELD_FRAGMENTS, FRAGMENT_HOLD_MS),
                retry: Vec::with_capacity(MAX_PARKED + MAX_HELD_FRAGMENTS),
                announcer: Announcer::default(),
                announcer6: Announcer::default(),
                epoch: 0,
                housekeeping: HousekeepingTimer::default(),
                scan: None,
                retelling: None,
                idle_run: 0,
                hz_ms: (hz / 1000).max(1),
                housekeeping_budget: (hz / 1_000_000).max(1) * HOUSEKEEPING_BUDGET_US,
            },
        }
    }

    /// The poll loop; returns when the stop flag is set, after finishing
    /// the poll in hand. Every mbuf it holds is freed before it returns.
    pub fn run(self) -> i32 {
        let Worker {
            mut snapshot,
            mut burst,
            engine: mut e,
        } = self;
        while !e.shared.stop.load(Ordering::Relaxed) {
            snapshot.refresh();
            let snap = snapshot.get();
            let start = cycles();
            let now = start / e.hz_ms + 1;
            e.announce(snap, snapshot.epoch());
            e.learn_from_others(now);
            let got = e.poll_rx(&mut burst, snap, now)
                + e.poll_kernel(&mut burst)
                + e.poll_handoff(snap, now);
            e.retry_parked(snap, now);
            e.send_syns(snap, now);
            e.release_held(snap, now);
            e.send_icmp_errors();
            e.share_learned();
            e.exchange_sync(snap, now);
            e.out.free.free_all();
            e.flush_tx();
            e.flush_kernel();
            e.serve_queries(now);
            e.housekeeping(snap, now);
            e.account(got, start);
        }
        e.shutdown();
        0
    }
}

impl Engine<'_> {
    /// On a new snapshot, worker 0 announces the VIPs that are new with a
    /// gratuitous ARP on every port.
    fn announce(&mut self, snap: &Snapshot, epoch: u64) {
        if epoch == self.epoch {
            return;
        }
        self.epoch = epoch;
        if self.id != 0 {
            return;
        }
        let (out, pool) = (&mut self.out, &self.shared.pool);
        // VIPs and full NAT's local addresses (replies come to those).
        let ours = [snap.services.vips(), snap.services.local_addresses()].concat();
        self.announcer.update(&ours, |vip| {
            for (p, port) in snap.ports.iter().enumerate() {
                out.send_arp(pool, p, |b| arp::write_gratuitous(b, port.mac, vip));
            }
        });
        // IPv6: the ports' own addresses once (the first snapshot), then
        // every new VIP, with an unsolicited neighbour advertisement.
        let mut own6: Vec<Ipv6Addr> = snap
            .ports
            .iter()
            .flat_map(|p| p.addresses6.iter().map(|a| a.addr))
            .collect();
        own6.extend_from_slice(snap.services6.vips());
        own6.extend_from_slice(snap.services6.local_addresses());
        self.announcer6.update(&own6, |addr| {
            for (p, port) in snap.ports.iter().enumerate() {
                if !port.addresses6.is_empty() {
                    out.send_arp(pool, p, |b| local6::unsolicited_advert(b, port.mac, addr));
                }
            }
        });
    }

    /// Connection sync: this worker's new connections and state changes
    /// to the sync thread, and the peers' connections whose clients it
    /// owns into its table.
    fn exchange_sync(&mut self, snap: &Snapshot, now: u64) {
        let Some(s) = &self.shared.rings.sync else {
            return;
        };
        let (out, inbox) = (&s.out[self.id], &s.inbox[self.id]);
        if s.retell_all[self.id].swap(false, Ordering::Relaxed) {
            self.retelling = Some(RetellCursor::default());
        }
        // A peer joined: every connection, a slice per poll, while the
        // ring to the sync thread has room.
        if let Some(cursor) = self.retelling.as_mut() {
            if out.len() < SYNC_RING / 2 && self.forwarder.retell_all(cursor, SYNC_RETELL_ALL_STEP)
            {
                self.retelling = None;
            }
        }
        let mut lost = 0;
        self.forwarder.take_sync(|r| {
            if out.push(r).is_err() {
                lost += 1;
            }
        });
        if lost > 0 {
            self.lb.sync_overflow.add(lost);
        }
        for _ in 0..SYNC_INSTALLS_PER_POLL {
            let Some(r) = inbox.pop() else {
                break;
            };
            self.forwarder.install(snap, &r, now);
        }
    }

    /// Neighbours the other workers learned.
    fn learn_from_others(&mut self, now: u64) {
        let id = self.id;
        for from in (0..self.shared.rings.workers()).filter(|f| *f != id) {
            for _ in 0..64 {
                let Some((ip, mac)) = self.shared.rings.take_neighbour(from, self.id) else {
                    break;
                };
                self.forwarder.learn_remote(ip, mac, now);
            }
        }
    }

    /// One burst from every port, each packet handled. Returns the count.
    fn poll_rx(&mut self, burst: &mut MbufBatch, snap: &Snapshot, now: u64) -> usize {
        let mut got = 0;
        for p in 0..self.ports.len() {
            let n = self.ports[p].rx.rx_burst(burst);
            if n == 0 {
                continue;
            }
            got += n;
            // Stage 1: the data of every packet of the burst is prefetched
            // (and its bytes counted); stages 2 and 3 ask for each
            // packet's index bucket, then its connection entry
            // (`Forwarder::look_ahead`, `prefetch_entry`); stage 4 handles
            // them, their lookups hitting the cache.
            let mut bytes = 0;
            for i in 0..n {
                if let Some(m) = burst.get(i) {
                    m.prefetch();
                    bytes += m.pkt_len() as u64;
                }
            }
            let pc = &self.shared.counters.ports[p];
            pc.rx_packets.add(n as u64);
            pc.rx_bytes.add(bytes);
            if self.forwarder.looks_ahead() {
                for (i, la) in self.ahead.iter_mut().enumerate().take(n) {
                    if let Some(m) = burst.get(i) {
                        *la = self.forwarder.look_ahead(snap, m.data());
                    }
                }
                for la in &self.ahead[..n.min(MAX_BURST)] {
                    self.forwarder.prefetch_entry(*la);
                }
            }
            for m in burst.drain() {
                self.handle(m, p, snap, now);
            }
        }
        got
    }

    /// What the kernel sends on a port's segment goes out unchanged.
    fn poll_kernel(&mut self, burst: &mut MbufBatch) -> usize {
        let mut got = 0;
        for p in 0..self.ports.len() {
            let Some(kernel) = self.ports[p].kernel.as_mut() else {
                continue;
            };
            let n = kernel.rx.rx_burst(burst);
            got += n;
            let c = &self.shared.counters;
            c.kernel_tx.add(n as u64);
            for m in burst.drain() {
                self.out.send(p, m, c);
            }
        }
        got
    }

    /// Packets other workers handed to this one, a burst from each.
    fn poll_handoff(&mut self, snap: &Snapshot, now: u64) -> usize {
        let (mut got, id, burst) = (0, self.id, self.poll.burst);
        // Out of `self` while its packets are handled (a handed packet is
        // never handed on: this worker owns its flow).
        let mut handoffs = std::mem::take(&mut self.handoffs);
        for from in (0..handoffs.workers()).filter(|f| *f != id) {
            got += handoffs.take_from(from, burst, |m, p| self.handle(m, p, snap, now));
        }
        self.handoffs = handoffs;
        self.lb.handoff_in.add(got as u64);
        got
    }

    /// Moves one packet where the forwarder says.
    fn handle(&mut self, m: Mbuf, rx_port: usize, snap: &Snapshot, now: u64) {
        self.handle_parked_since(m, rx_port, snap, now, None);
    }

    /// Moves one packet where the forwarder says; if it parks it, it has
    /// been parked since `since` (None: it is new).
    fn handle_parked_since(
        &mut self,
        mut m: Mbuf,
        rx_port: usize,
        snap: &Snapshot,
        now: u64,
        parked_since: Option<u64>,
    ) {
        let c = &self.shared.counters;
        let since = parked_since.unwrap_or(now);
        if m.segments() != 1 {
            return self.out.discard(m, DropReason::MultiSegment, c);
        }
        let mut action = self.forwarder.process(snap, m.data_mut(), rx_port, now);
        if let Some(outer) = self.forwarder.take_outer() {
            // To a tunnel real: the outer header goes in front.
            action = match m.prepend(outer.len()) {
                Some(grown) => {
                    tunnel::prepend(grown, &outer);
                    // The first of two outer fragments keeps its part.
                    if let Some(len) = outer.cut_frame_len() {
                        m.trim_to(len);
                    }
                    action
                }
                None => Action::Drop(DropReason::NoHeadroom),
            };
        }
        if let Some(insert) = self.forwarder.take_insert() {
            // The PROXY protocol header goes in front of the payload.
            action = match m.append(insert.header.len()) {
                Some(grown) => {
                    insert.apply(grown);
                    action
                }
                None => Action::Drop(DropReason::NoTailroom),
            };
        }
        match action {
            Action::Forward { port } => self.out.send(port, m, c),
            Action::Reply(h) => {
                count_local(c, h);
                self.out.send(rx_port, m, c);
            }
            Action::Consumed(h) => {
                count_local(c, h);
                let _ = self.out.free.push(m);
            }
            Action::Hold { port, next_hop } => self.hold(m, port, next_hop, snap, now),
            Action::Park => {
                if let Err(m) = self.parked.park(m, rx_port, since) {
                    self.out.discard(m, DropReason::HandshakePending, c);
                }
            }
            Action::HoldFragment => {
                if parked_since.is_none() {
                    self.lb.fragments_held.add(1);
                }
                if let Err(m) = self.fragments.park(m, rx_port, since) {
                    self.out.discard(m, DropReason::FragmentHoldFull, c);
                }
            }
            Action::ToKernel => self.out.pass_up(rx_port, m, c),
            Action::HandOff { worker } => match self.handoffs.hand_off(worker, m, rx_port) {
                Ok(()) => self.lb.handoff_out.add(1),
                Err(m) => self.out.discard(m, DropReason::HandoffFull, c),
            },
            Action::Drop(r) => self.out.discard(m, r, c),
        }
    }

    /// Parked packets go through the forwarder again when a handshake
    /// completed, held fragments when a first fragment was remembered;
    /// those kept too long are dropped.
    fn retry_parked(&mut self, snap: &Snapshot, now: u64) {
        if self.parked.is_empty() && self.fragments.is_empty() {
            return;
        }
        let (completions, learned) = (
            self.forwarder.handshakes_completed(),
            self.forwarder.fragments_learned(),
        );
        let Engine {
            parked,
            fragments,
            retry,
            out,
            shared,
            ..
        } = self;
        let c = &shared.counters;
        parked.take_due(completions, now, retry, |m| {
            out.discard(m, DropReason::HandshakePending, c)
        });
        fragments.take_due(learned, now, retry, |m| {
            out.discard(m, DropReason::FragmentUnmatched, c)
        });
        let mut retry = std::mem::take(&mut self.retry);
        for (m, port, since) in retry.drain(..) {
            self.handle_parked_since(m, port, snap, now, Some(since));
        }
        self.retry = retry;
    }

    /// Sends the frames the forwarder wrote itself: the SYNs of proxied
    /// connections to their reals, and the second outer fragments of
    /// packets too big for a tunnel; or holds them while the next hop's
    /// MAC is resolved.
    fn send_syns(&mut self, snap: &Snapshot, now: u64) {
        let Engine {
            forwarder,
            out,
            shared,
            held,
            lb,
            ..
        } = self;
        let (pool, c) = (&shared.pool, &shared.counters);
        let mut send = |a: Action, frame: &[u8]| match a {
            Action::Forward { port } => {
                out.send_frame(pool, port, frame);
            }
            Action::Hold { port, next_hop } => {
                let Some(mut m) = Mbuf::alloc(pool) else {
                    return;
                };
                if !m.set_data(frame) {
                    return;
                }
                match held.hold(m, port, next_hop, now) {
                    Holding::Full(m) => out.discard(m, DropReason::HoldQueueFull, c),
                    Holding::Held { ask } => {
                        lb.held_for_arp.add(1);
                        if ask && out.ask(pool, snap, port, next_hop, MacAddr::BROADCAST) {
                            count_ask(lb, next_hop);
                        }
                    }
                }
            }
            _ => {}
        };
        forwarder.take_syns(&mut send);
        forwarder.take_tunnel_tails(&mut send);
    }

    /// Holds a packet until its next hop is resolved, asking ARP for it.
    fn hold(&mut self, m: Mbuf, port: usize, next_hop: IpAddr, snap: &Snapshot, now: u64) {
        match self.held.hold(m, port, next_hop, now) {
            Holding::Full(m) => {
                self.out
                    .discard(m, DropReason::HoldQueueFull, &self.shared.counters)
            }
            Holding::Held { ask } => {
                self.lb.held_for_arp.add(1);
                if ask
                    && self
                        .out
                        .ask(&self.shared.pool, snap, port, next_hop, MacAddr::BROADCAST)
                {
                    count_ask(&self.lb, next_hop);
                }
            }
        }
    }

    /// Held packets whose next hop is now known go out; stale ones are
    /// dropped; next hops that stay silent are asked again.
    fn release_held(&mut self, snap: &Snapshot, now: u64) {
        let Engine {
            held,
            forwarder,
            out,
            shared,
            lb,
            ..
        } = self;
        held.release(
            now,
            |nh| forwarder.neighbour(nh, now),
            |r| match r {
                Release::Send {
                    mut frame,
                    port,
                    mac,
                } => {
                    ethernet::set_macs(frame.data_mut(), mac, snap.ports[port].mac);
                    out.send(port, frame, &shared.counters);
                }
                Release::Expired(m) => {
                    out.discard(m, DropReason::NeighbourUnresolved, &shared.counters)
                }
                Release::Ask { port, next_hop } => {
                    if out.ask(&shared.pool, snap, port, next_hop, MacAddr::BROADCAST) {
                        count_ask(lb, next_hop);
                    }
                }
            },
        );
    }

    /// Shares what this worker learned with the others.
    fn share_learned(&mut self) {
        let (id, rings) = (self.id, &self.shared.rings);
        for (ip, mac) in self.forwarder.take_learned() {
            for to in (0..rings.workers()).filter(|t| *t != id) {
                rings.share_neighbour(id, to, ip, mac);
            }
        }
    }

    /// Offers every port's batch to its TX queue; what the device refused
    /// is freed and counted.
    fn flush_tx(&mut self) {
        for (p, b) in self.out.tx.iter_mut().enumerate() {
            if b.is_empty() {
                continue;
            }
            let (offered, bytes) = (b.len(), bytes_of(b));
            let sent = self.ports[p].tx.tx_burst(b);
            let c = &self.shared.counters;
            c.ports[p].tx_packets.add(sent as u64);
            c.ports[p].tx_bytes.add(bytes - bytes_of(b));
            if sent < offered {
                c.drops[DropReason::TxFull.index()].add((offered - sent) as u64);
                b.free_all();
            }
        }
    }

    /// Frames for the kernel go up its interface.
    fn flush_kernel(&mut self) {
        for (p, b) in self.out.ktx.iter_mut().enumerate() {
            if b.is_empty() {
                continue;
            }
            let offered = b.len();
            let sent = match self.ports[p].kernel.as_mut() {
                Some(kernel) => kernel.tx.tx_burst(b),
                None => 0,
            };
            let c = &self.shared.counters;
            c.kernel_rx.add(sent as u64);
            if sent < offered {
                c.drops[DropReason::TxFull.index()].add((offered - sent) as u64);
                b.free_all();
            }
        }
    }

    /// A control query: one slice of this worker's table per poll.
    fn serve_queries(&mut self, now: u64) {
        if self.scan.is_none() {
            self.scan = self.shared.rings.queries[self.id].pop().map(ConnScan::new);
        }
        if let Some(scan) = self.scan.as_mut() {
            if scan.step(self.forwarder.table(), self.forwarder.table6(), now) {
                self.scan = None;
            }
        }
    }

    /// Expiry, drains and neighbour probes, when due, within the time
    /// budget; then the table's figures for the control thread.
    fn housekeeping(&mut self, snap: &Snapshot, now: u64) {
        if !self.housekeeping.due(now) {
            return;
        }
        let deadline = cycles().wrapping_add(self.housekeeping_budget);
        let h = self
            .forwarder
            .housekeeping(snap, now, || cycles() < deadline);
        self.housekeeping.ran(now, h);
        self.send_probes(snap);
        let c = &self.shared.counters;
        let (t4, t6) = (self.forwarder.table(), self.forwarder.table6());
        c.ct.set(&t4.stats(), t4.templates().len());
        c.ct6.set(&t6.stats(), t6.templates().len());
    }

    /// Sends the ICMP time-exceeded errors the forwarder queued.
    fn send_icmp_errors(&mut self) {
        let Engine {
            forwarder,
            out,
            shared,
            lb,
            ..
        } = self;
        forwarder.take_icmp_errors(|kind, port, frame| {
            if out.send_frame(&shared.pool, port, frame) {
                match kind {
                    SentError::TimeExceeded => lb.time_exceeded_sent.add(1),
                    SentError::TooBig { .. } => lb.too_big_sent.add(1),
                }
            }
        });
    }

    /// Sends the unicast ARP probes the neighbour timers asked for, each on
    /// the port whose prefix holds the neighbour.
    fn send_probes(&mut self, snap: &Snapshot) {
        let Engine {
            forwarder,
            out,
            shared,
            lb,
            ..
        } = self;
        for (ip, mac) in forwarder.take_probes() {
            let port = match ip {
                IpAddr::V4(a) => snap.routes.is_connected(a),
                IpAddr::V6(a) => snap.routes6.is_connected(a),
            };
            let sent = port.is_some_and(|port| out.ask(&shared.pool, snap, port, ip, mac));
            if sent {
                count_ask(lb, ip);
            }
        }
    }

    /// Busy and idle polls, and the optional idle sleep.
    fn account(&mut self, got: usize, start: u64) {
        let c = &self.shared.counters;
        if got > 0 {
            self.idle_run = 0;
            c.busy_polls.add(1);
            c.busy_cycles.add(cycles().wrapping_sub(start));
            return;
        }
        c.idle_polls.add(1);
        self.idle_run = self.idle_run.saturating_add(1);
        let poll = &self.poll;
        if !poll.idle_sleep.is_zero() && self.idle_run >= poll.idle_polls_before_sleep {
            std::thread::sleep(poll.idle_sleep);
        }
    }

    /// Frees everything this worker still holds: batches free on drop,
    /// held packets and this worker's incoming rings explicitly.
    fn shutdown(mut self) {
        self.held.drain().for_each(drop);
        self.parked.drain().for_each(drop);
        self.fragments.drain().for_each(drop);
        self.handoffs.drain();
    }
}

/// Counts a request for a next hop's MAC: an ARP request or a neighbour
/// solicitation.
fn count_ask(lb: &WorkerLbStats, next_hop: IpAddr) {
    match next_hop {
        IpAddr::V4(_) => lb.arp_requests_sent.add(1),
        IpAddr::V6(_) => lb.nd_solicits_sent.add(1),
    }
}

/// Counts a packet the port's own stack handled (ARP, neighbour
/// discovery, ICMP and ICMPv6 echo).
fn count_local(c: &WorkerCounters, h: Handled) {
    match h {
        Handled::ArpRequest => c.arp_requests_answered.add(1),
        Handled::IcmpEcho => c.icmp_echo_answered.add(1),
        Handled::ArpReply => c.arp_replies_learned.add(1),
        Handled::NeighbourSolicit => c.nd_solicits_answered.add(1),
        Handled::NeighbourAdvert => c.nd_adverts_learned.add(1),
        Handled::Icmpv6Echo => c.icmpv6_echo_answered.add(1),
        // Counted by the load balancer (syn_cookies_sent, syn_cookies_valid).
        Handled::SynCookie | Handled::Handshake => {}
    }
}

/// The bytes of every frame in `b`.
fn bytes_of(b: &MbufBatch) -> u64 {
    (0..b.len())
        .filter_map(|i| b.get(i))
        .map(|m| m.pkt_len() as u64)
        .sum()
}
