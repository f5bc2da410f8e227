//! The poll loop on a worker lcore. A worker owns whole ports (their RX and
//! TX queue) and the sending part, the receiving part, or both:
//!
//! - every owned port is polled; ARP requests and neighbour solicitations
//!   for the port's addresses are turned into replies in the received mbuf
//!   and sent back on it;
//! - the receiving part checks each other frame of the RX port
//!   ([`Checker`]), tracks sequence numbers and records latency;
//! - the sending part allocates a burst in bulk when the token bucket
//!   allows, copies the templates in, stamps and checksums each packet, and
//!   offers the burst to the TX queue; what the queue refuses is retried
//!   before anything new is built.
//!
//! Nothing here allocates or locks on the packet path; the phase word is
//! polled every 64 iterations, and a report is filed under a mutex once per
//! run.

use super::control::{unword, Phase, RxReport, Shared};
use sluice_dpdk::{cycles, MbufBatch, Mempool, RxQueue, TxQueue};
use sluice_gen::arp::{self, ArpOutcome, ArpTable};
use sluice_gen::check::Checker;
use sluice_gen::family::GenFamily;
use sluice_gen::flows::{FlowSpace, SenderFlows};
use sluice_gen::frame::{self, Fields, FrameParams, Template};
use sluice_gen::rate::TokenBucket;
use sluice_gen::seqtrack::SeqTracker;
use sluice_gen::sizes::SizePicker;
use sluice_gen::stamp::{self, Stamp, FLAG_FIRST};
use sluice_gen::stats::{Latency, RxCounters, TxCounters};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Largest burst.
pub const MAX_BURST: usize = 256;

/// A port owned by a worker.
pub struct PortIo<'port> {
    /// Its RX queue.
    pub rxq: RxQueue<'port>,
    /// Its TX queue.
    pub txq: TxQueue<'port>,
    /// The addresses it answers ARP and neighbour solicitations for.
    pub arp: ArpTable,
    /// ARP replies waiting to be sent.
    pub out: MbufBatch,
}

/// The sending part.
pub struct TxPart<A> {
    /// Index of its port in the worker's ports.
    pub port: usize,
    /// Where mbufs come from.
    pub pool: Arc<Mempool>,
    /// What every frame has in common.
    pub params: FrameParams<A>,
    /// One template per frame size.
    pub templates: Vec<Template>,
    /// Which template next.
    pub picker: SizePicker,
    /// Per-flow state.
    pub flows: SenderFlows,
    /// Packets per burst.
    pub burst: usize,
    /// Flows replaced per second.
    pub new_flows_per_sec: u64,
    /// TSC Hz.
    pub hz: u64,
    batch: MbufBatch,
    lens: [u16; MAX_BURST],
    lens_off: usize,
    bucket: TokenBucket,
    replace: TokenBucket,
    counters: TxCounters,
    run: u32,
    sending: bool,
}

impl<A: GenFamily> TxPart<A> {
    /// A sending part, idle.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        port: usize,
        pool: Arc<Mempool>,
        params: FrameParams<A>,
        templates: Vec<Template>,
        picker: SizePicker,
        flows: SenderFlows,
        burst: usize,
        new_flows_per_sec: u64,
        hz: u64,
    ) -> TxPart<A> {
        let burst = burst.clamp(1, MAX_BURST);
        TxPart {
            port,
            pool,
            params,
            templates,
            picker,
            flows,
            burst,
            new_flows_per_sec,
            hz,
            batch: MbufBatch::with_capacity(burst),
            lens: [0; MAX_BURST],
            lens_off: 0,
            bucket: TokenBucket::new(0, hz, 1, 0),
            replace: TokenBucket::new(0, hz, 1, 0),
            counters: TxCounters::default(),
            run: 0,
            sending: false,
        }
    }

    fn start(&mut self, run: u32, rate: u64, now: u64) {
        self.batch.free_all();
        self.lens_off = 0;
        self.counters = TxCounters::default();
        self.run = run;
        self.bucket = TokenBucket::new(
            rate,
            self.hz,
            TokenBucket::default_cap(rate, self.burst as u64),
            now,
        );
        let nf = self.new_flows_per_sec;
        self.replace = TokenBucket::new(nf, self.hz, (nf / 1000).max(16), now);
        self.sending = true;
    }

    fn stop(&mut self) {
        self.batch.free_all();
        self.lens_off = 0;
        self.sending = false;
    }

    fn offer(&mut self, txq: &mut TxQueue<'_>, shared: &Shared) {
        let n = self.batch.len();
        let sent = txq.tx_burst(&mut self.batch);
        let lens = &self.lens[self.lens_off..self.lens_off + sent];
        self.counters.packets += sent as u64;
        self.counters.bytes += lens.iter().map(|&l| l as u64).sum::<u64>();
        self.lens_off = if sent == n { 0 } else { self.lens_off + sent };
        shared
            .live_tx
            .store(self.counters.packets, Ordering::Relaxed);
    }

    /// Sends what the bucket allows.
    #[inline]
    fn poll(&mut self, txq: &mut TxQueue<'_>, shared: &Shared, now: u64) {
        if !self.sending {
            return;
        }
        if !self.batch.is_empty() {
            self.offer(txq, shared);
            return;
        }
        if self.new_flows_per_sec > 0 {
            let r = self.replace.take(now, 1 << 16);
            for _ in 0..r {
                self.flows.replace_next();
            }
            self.counters.new_flows += r;
        }
        let n = self.bucket.take(now, self.burst as u64) as usize;
        if n == 0 {
            return;
        }
        if !self.batch.alloc_from(&self.pool, n) {
            self.counters.alloc_failures += 1;
            return;
        }
        let tsc = cycles() & stamp::TSC_MASK;
        let run = self.run as u8;
        for i in 0..n {
            let pick = self.flows.next_pick();
            let t = &self.templates[self.picker.next_index()];
            let (client_ip, client_port) = FlowSpace::client(pick.key);
            let f = Fields {
                client_ip,
                client_port,
                stamp: Stamp {
                    run,
                    flags: if pick.first { FLAG_FIRST } else { 0 },
                    slot: pick.slot,
                    seq: pick.seq,
                    tsc,
                },
            };
            let m = self
                .batch
                .get_mut(i)
                .expect("the batch holds the n mbufs just allocated");
            // A fresh mbuf has 2 KiB of room; templates are at most 1514.
            let fits = m.set_data(&t.bytes);
            debug_assert!(fits);
            frame::write(m.data_mut(), t, &self.params, &f);
            self.lens[i] = t.size;
            self.counters.first += pick.first as u64;
        }
        self.lens_off = 0;
        self.offer(txq, shared);
    }
}

/// The receiving part.
pub struct RxPart<A> {
    /// Index of its port in the worker's ports.
    pub port: usize,
    /// The checks.
    pub checker: Checker<A>,
    /// Per-flow sequence state.
    pub tracker: SeqTracker,
    counters: RxCounters,
    latency: Latency,
    run: u32,
}

impl<A: GenFamily> RxPart<A> {
    /// A receiving part counting nothing yet (run 0).
    pub fn new(port: usize, checker: Checker<A>, flows: usize, hz: u64) -> RxPart<A> {
        RxPart {
            port,
            checker,
            tracker: SeqTracker::new(flows),
            counters: RxCounters::default(),
            latency: Latency::new(hz),
            run: 0,
        }
    }

    #[inline]
    fn process(&mut self, frame: &[u8], now: u64) {
        self.counters.packets += 1;
        match self.checker.check(frame) {
            Err(r) => self.counters.reject(r),
            Ok(st) => {
                if self.run == 0 || st.run != self.run as u8 {
                    self.counters.stale += 1;
                    return;
                }
                let ev = self.tracker.record(st.slot, st.seq);
                self.counters.good(frame.len(), ev);
                self.latency
                    .record_ticks(stamp::elapsed(now & stamp::TSC_MASK, st.tsc));
            }
        }
    }
}

/// One worker lcore's work.
pub struct Worker<'port, A> {
    ports: Vec<PortIo<'port>>,
    tx: Option<TxPart<A>>,
    rx: Option<RxPart<A>>,
    shared: Arc<Shared>,
    rx_batch: MbufBatch,
    trash: MbufBatch,
    phase_seen: u64,
}

impl<'port, A: GenFamily> Worker<'port, A> {
    /// A worker over `ports` with the given parts.
    pub fn new(
        ports: Vec<PortIo<'port>>,
        tx: Option<TxPart<A>>,
        rx: Option<RxPart<A>>,
        shared: Arc<Shared>,
        burst: usize,
    ) -> Worker<'port, A> {
        let burst = burst.clamp(1, MAX_BURST);
        Worker {
            ports,
            tx,
            rx,
            shared,
            rx_batch: MbufBatch::with_capacity(burst),
            trash: MbufBatch::with_capacity(burst),
            phase_seen: u64::MAX,
        }
    }

    /// Runs until told to exit; returns 0.
    pub fn run(mut self) -> i32 {
        let mut iter: u32 = 0;
        loop {
            if iter & 63 == 0 {
                if self.shared.exit.load(Ordering::Relaxed) {
                    break;
                }
                let w = self.shared.phase.load(Ordering::Acquire);
                if w != self.phase_seen {
                    self.apply(w);
                    self.phase_seen = w;
                }
            }
            iter = iter.wrapping_add(1);
            self.poll_ports();
            if let Some(tx) = self.tx.as_mut() {
                let txq = &mut self.ports[tx.port].txq;
                tx.poll(txq, &self.shared, cycles());
            }
        }
        if let Some(tx) = self.tx.as_mut() {
            tx.stop();
        }
        0
    }

    fn apply(&mut self, w: u64) {
        let (run, phase) = unword(w);
        let sh = &self.shared;
        if let Some(tx) = self.tx.as_mut() {
            match phase {
                Phase::Send => {
                    if !tx.sending || tx.run != run {
                        tx.start(run, sh.rate.load(Ordering::Acquire), cycles());
                    }
                }
                _ => tx.stop(),
            }
            if phase == Phase::Report {
                *sh.tx_report.lock().unwrap_or_else(|e| e.into_inner()) = Some(tx.counters);
            }
            sh.tx_ack.store(w, Ordering::Release);
        }
        if let Some(rx) = self.rx.as_mut() {
            if phase == Phase::Send && rx.run != run {
                rx.run = run;
                rx.counters = RxCounters::default();
                rx.latency.reset();
            }
            if phase == Phase::Report {
                *sh.rx_report.lock().unwrap_or_else(|e| e.into_inner()) = Some(RxReport {
                    counters: rx.counters.clone(),
                    latency: rx.latency.clone(),
                });
            }
            sh.rx_ack.store(w, Ordering::Release);
        }
    }

    #[inline]
    fn poll_ports(&mut self) {
        let Worker {
            ports,
            rx,
            shared,
            rx_batch,
            trash,
            ..
        } = self;
        for (i, port) in ports.iter_mut().enumerate() {
            if port.rxq.rx_burst(rx_batch) == 0 {
                continue;
            }
            let now = cycles();
            let mut rx_here = rx.as_mut().filter(|r| r.port == i);
            for mut m in rx_batch.drain() {
                let data = m.data();
                if arp::is_resolution(data) {
                    if arp::handle(m.data_mut(), &port.arp) == ArpOutcome::Replied {
                        // A full reply batch drops the reply (Mbuf::drop).
                        let _ = port.out.push(m);
                    }
                    continue;
                }
                match rx_here.as_deref_mut() {
                    Some(r) => r.process(data, now),
                    None => {
                        shared.foreign_tx_port.fetch_add(1, Ordering::Relaxed);
                    }
                }
                if let Err(m) = trash.push(m) {
                    drop(m);
                }
            }
            trash.free_all();
            if let Some(r) = rx_here {
                shared.live_rx.store(r.counters.ok, Ordering::Relaxed);
                shared
                    .live_bad
                    .store(r.counters.bad_total(), Ordering::Relaxed);
            }
            if !port.out.is_empty() {
                port.txq.tx_burst(&mut port.out);
                port.out.free_all();
            }
        }
    }
}
