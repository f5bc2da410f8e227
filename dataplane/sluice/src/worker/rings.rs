//! The queues between threads that meet on a worker: packets handed to the
//! worker that owns their flow ([`HandOffs`]), neighbours one worker
//! learned for the others, and the control thread's `conn list` queries
//! ([`Rings`]).

use crate::conn_list::ConnQuery;
use crossbeam_queue::ArrayQueue;
use rtrb::{Consumer, Producer, RingBuffer};
use sluice_core::MacAddr;
use sluice_dpdk::Mbuf;
use sluice_sync::ConnRecord;
use std::net::IpAddr;
use std::sync::Arc;

/// Capacity of each worker-to-worker hand-off ring.
pub const HANDOFF_RING: usize = 1024;
/// Capacity of each worker-to-worker neighbour ring.
pub const NEIGHBOUR_RING: usize = 256;
/// Connection records between a worker and the sync thread, each way.
pub const SYNC_RING: usize = 16384;

/// One worker's ends of the hand-off rings: a producer into the ring to
/// every other worker and a consumer of the ring from every other worker.
/// Each ring has exactly one producer and one consumer, each owned by one
/// thread (`rtrb`'s single-producer single-consumer ring: a push or a
/// take is a load and a store, no compare-and-swap), and a worker takes
/// what another handed it a chunk at a time, with one release of the
/// ring's head per chunk. What is left in a ring when both its workers
/// have stopped is freed with the ring.
#[derive(Default)]
pub struct HandOffs {
    to: Vec<Option<Producer<(Mbuf, u8)>>>,
    from: Vec<Option<Consumer<(Mbuf, u8)>>>,
}

impl HandOffs {
    /// The ends of `n` workers, in worker order: worker `i`'s producer
    /// to `j` feeds worker `j`'s consumer from `i`.
    pub fn for_workers(n: usize) -> Vec<HandOffs> {
        let mut ends: Vec<HandOffs> = (0..n)
            .map(|_| HandOffs {
                to: (0..n).map(|_| None).collect(),
                from: (0..n).map(|_| None).collect(),
            })
            .collect();
        for i in 0..n {
            for j in (0..n).filter(|j| *j != i) {
                let (p, c) = RingBuffer::new(HANDOFF_RING);
                ends[i].to[j] = Some(p);
                ends[j].from[i] = Some(c);
            }
        }
        ends
    }

    /// Number of workers.
    pub fn workers(&self) -> usize {
        self.to.len()
    }

    /// Hands `m`, received on port `port`, to worker `to`; gives it back
    /// when the ring is full (or `to` is this worker).
    #[inline]
    pub fn hand_off(&mut self, to: usize, m: Mbuf, port: usize) -> Result<(), Mbuf> {
        match self.to.get_mut(to).and_then(Option::as_mut) {
            Some(p) => p
                .push((m, port as u8))
                .map_err(|rtrb::PushError::Full((m, _))| m),
            None => Err(m),
        }
    }

    /// Takes up to `max` packets worker `from` handed over, in order, and
    /// gives each to `handle` with its port; returns how many.
    #[inline]
    pub fn take_from(
        &mut self,
        from: usize,
        max: usize,
        mut handle: impl FnMut(Mbuf, usize),
    ) -> usize {
        let Some(c) = self.from.get_mut(from).and_then(Option::as_mut) else {
            return 0;
        };
        let n = c.slots().min(max);
        if n == 0 {
            return 0;
        }
        let Ok(chunk) = c.read_chunk(n) else {
            return 0;
        };
        for (m, p) in chunk.into_iter() {
            handle(m, usize::from(p));
        }
        n
    }

    /// Frees what every other worker handed over and this one did not
    /// take (at shutdown).
    pub fn drain(&mut self) {
        for c in self.from.iter_mut().flatten() {
            while c.pop().is_ok() {}
        }
    }
}

/// The rings between workers that are not for packets, and the control
/// thread's queries. Ring `[from][to]` is used by one producer (worker
/// `from`) and one consumer (worker `to`); these are rare, so crossbeam's
/// `ArrayQueue` serves them.
pub struct Rings {
    neighbours: Vec<Vec<ArrayQueue<(IpAddr, MacAddr)>>>,
    /// Control queries, per worker.
    pub queries: Vec<ArrayQueue<ConnQuery>>,
    /// Connection sync's rings, when it is on.
    pub sync: Option<SyncRings>,
}

/// Connection records: per worker, to the sync thread (`out`) and from it
/// (`inbox`, the peers' connections whose clients the worker owns).
pub struct SyncRings {
    /// Worker to sync thread.
    pub out: Vec<ArrayQueue<ConnRecord>>,
    /// Sync thread to worker.
    pub inbox: Vec<ArrayQueue<ConnRecord>>,
    /// Set by the sync thread when a peer joins: the worker tells all its
    /// connections (and clears it).
    pub retell_all: Vec<std::sync::atomic::AtomicBool>,
}

impl Rings {
    /// Rings for `n` workers (and connection sync's, when `sync`).
    pub fn new(n: usize, sync: bool) -> Arc<Rings> {
        let ring = || (0..n).map(|_| ArrayQueue::new(SYNC_RING)).collect();
        Arc::new(Rings {
            neighbours: square(n, NEIGHBOUR_RING),
            queries: (0..n).map(|_| ArrayQueue::new(4)).collect(),
            sync: sync.then(|| SyncRings {
                out: ring(),
                inbox: ring(),
                retell_all: (0..n).map(|_| Default::default()).collect(),
            }),
        })
    }

    /// Number of workers.
    pub fn workers(&self) -> usize {
        self.neighbours.len()
    }

    /// Tells worker `to` that `ip` is at `mac` (dropped when its ring is
    /// full: it will learn it again).
    pub fn share_neighbour(&self, from: usize, to: usize, ip: IpAddr, mac: MacAddr) {
        let _ = self.neighbours[from][to].push((ip, mac));
    }

    /// The next neighbour worker `from` shared with `to`.
    pub fn take_neighbour(&self, from: usize, to: usize) -> Option<(IpAddr, MacAddr)> {
        self.neighbours[from][to].pop()
    }
}

/// `n` x `n` queues of `cap` entries.
fn square<T>(n: usize, cap: usize) -> Vec<Vec<ArrayQueue<T>>> {
    (0..n)
        .map(|_| (0..n).map(|_| ArrayQueue::new(cap)).collect())
        .collect()
}
