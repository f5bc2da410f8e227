//! A poll-mode worker: owns one RX and one TX queue on every port, receives
//! in bursts, classifies each packet with the sans-IO core, transmits the
//! replies in bursts and frees the rest in bulk. It takes no lock, makes no
//! syscall (except the optional idle sleep), and allocates nothing after
//! start.

use crate::counters::WorkerCounters;
use crate::snapshot::Reader;
use crossbeam_utils::CachePadded;
use sluice_core::local::{Handled, LocalPort, Verdict};
use sluice_core::neigh::NeighbourTable;
use sluice_core::DropReason;
use sluice_dpdk::{cycles, cycles_hz, MbufBatch, RxQueue, TxQueue};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// What every worker needs to know, published as one snapshot.
pub struct Dataplane {
    /// The appliance's identity on each port, by port index.
    pub ports: Vec<LocalPort>,
}

/// Tuning of the poll loop.
#[derive(Clone, Copy, Debug)]
pub struct PollConfig {
    /// Packets per RX burst.
    pub burst: usize,
    /// Sleep after this many consecutive empty polls (with idle_sleep).
    pub idle_polls_before_sleep: u32,
    /// Idle sleep; zero disables it.
    pub idle_sleep: Duration,
    /// Age limit of learned neighbours, in seconds.
    pub neighbour_max_age_secs: u64,
}

/// One worker's state; moved onto its lcore.
pub struct Worker {
    /// Worker index.
    pub id: usize,
    rx: Vec<RxQueue>,
    tx: Vec<TxQueue>,
    counters: Arc<CachePadded<WorkerCounters>>,
    snapshot: Reader<Dataplane>,
    stop: Arc<AtomicBool>,
    poll: PollConfig,
}

/// How far ahead of the packet being processed to prefetch.
const PREFETCH_AHEAD: usize = 3;

impl Worker {
    /// A worker with one (rx, tx) queue pair per port, in port order.
    pub fn new(
        id: usize,
        rx: Vec<RxQueue>,
        tx: Vec<TxQueue>,
        counters: Arc<CachePadded<WorkerCounters>>,
        snapshot: Reader<Dataplane>,
        stop: Arc<AtomicBool>,
        poll: PollConfig,
    ) -> Worker {
        Worker {
            id,
            rx,
            tx,
            counters,
            snapshot,
            stop,
            poll,
        }
    }

    // Per-port state lives in parallel arrays (queues, batches, counters)
    // indexed by port: index loops read more plainly than zipped iterators.
    #[allow(clippy::needless_range_loop)]
    /// The poll loop; returns when the stop flag is set, after finishing
    /// the burst in hand. Every mbuf it holds is freed before it returns.
    pub fn run(mut self) -> i32 {
        let nports = self.rx.len();
        let burst = self.poll.burst;
        let mut rx = MbufBatch::with_capacity(burst);
        let mut tx: Vec<MbufBatch> = (0..nports)
            .map(|_| MbufBatch::with_capacity(burst))
            .collect();
        let mut free = MbufBatch::with_capacity(burst * (nports + 1));
        let mut verdicts: Vec<Verdict> = vec![Verdict::Drop(DropReason::Truncated); burst];
        let mut neigh = NeighbourTable::new(4096, self.poll.neighbour_max_age_secs);
        let hz = cycles_hz().max(1);
        let c = self.counters.clone();
        let mut idle_run: u32 = 0;

        while !self.stop.load(Ordering::Relaxed) {
            let snap = self.snapshot.refresh();
            let start = cycles();
            let now_secs = start / hz + 1;
            let mut got = 0usize;
            for p in 0..nports {
                let n = self.rx[p].rx_burst(&mut rx);
                if n == 0 {
                    continue;
                }
                got += n;
                let pc = &c.ports[p];
                pc.rx_packets.add(n as u64);
                let local = &snap.ports[p];
                for i in 0..n.min(PREFETCH_AHEAD) {
                    if let Some(m) = rx.get(i) {
                        m.prefetch();
                    }
                }
                for (i, verdict) in verdicts.iter_mut().enumerate().take(n) {
                    if let Some(m) = rx.get(i + PREFETCH_AHEAD) {
                        m.prefetch();
                    }
                    let m = rx.get_mut(i).expect("i < n");
                    pc.rx_bytes.add(m.pkt_len() as u64);
                    if m.segments() != 1 {
                        *verdict = Verdict::Drop(DropReason::MultiSegment);
                        continue;
                    }
                    let out = local.handle(m.data_mut());
                    if let Some((ip, mac)) = out.learned {
                        neigh.learn(ip, mac, now_secs);
                    }
                    *verdict = out.verdict;
                }
                for (i, m) in rx.drain().enumerate() {
                    match verdicts[i] {
                        Verdict::Reply(h) => {
                            match h {
                                Handled::ArpRequest => c.arp_requests_answered.add(1),
                                Handled::IcmpEcho => c.icmp_echo_answered.add(1),
                                Handled::ArpReply => c.arp_replies_learned.add(1),
                            }
                            if let Err(m) = tx[p].push(m) {
                                c.drop_packet(DropReason::TxFull);
                                let _ = free.push(m);
                            }
                        }
                        Verdict::Consumed(h) => {
                            if h == Handled::ArpReply {
                                c.arp_replies_learned.add(1);
                            }
                            let _ = free.push(m);
                        }
                        Verdict::Drop(r) => {
                            c.drop_packet(r);
                            let _ = free.push(m);
                        }
                    }
                }
                free.free_all();
            }
            // Flush every port's TX batch; whatever the device refused is
            // freed and counted.
            for p in 0..nports {
                if tx[p].is_empty() {
                    continue;
                }
                let bytes: u64 = (0..tx[p].len())
                    .filter_map(|i| tx[p].get(i))
                    .map(|m| m.pkt_len() as u64)
                    .sum();
                let offered = tx[p].len();
                let sent = self.tx[p].tx_burst(&mut tx[p]);
                let unsent_bytes: u64 = (0..tx[p].len())
                    .filter_map(|i| tx[p].get(i))
                    .map(|m| m.pkt_len() as u64)
                    .sum();
                let pc = &c.ports[p];
                pc.tx_packets.add(sent as u64);
                pc.tx_bytes.add(bytes - unsent_bytes);
                if sent < offered {
                    c.drops[DropReason::TxFull.index()].add((offered - sent) as u64);
                    tx[p].free_all();
                }
            }
            if got > 0 {
                idle_run = 0;
                c.busy_polls.add(1);
                c.busy_cycles.add(cycles().wrapping_sub(start));
            } else {
                c.idle_polls.add(1);
                idle_run = idle_run.saturating_add(1);
                if !self.poll.idle_sleep.is_zero() && idle_run >= self.poll.idle_polls_before_sleep
                {
                    std::thread::sleep(self.poll.idle_sleep);
                }
            }
        }
        // Batches free what they still hold when dropped here.
        drop(tx);
        drop(free);
        drop(rx);
        0
    }
}
