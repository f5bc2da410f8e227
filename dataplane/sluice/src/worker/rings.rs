//! The queues between threads that meet on a worker: packets handed to the
//! worker that owns their flow, neighbours one worker learned for the
//! others, and the control thread's `conn list` queries.

use crate::conn_list::ConnQuery;
use crossbeam_queue::ArrayQueue;
use sluice_core::MacAddr;
use sluice_dpdk::Mbuf;
use std::net::Ipv4Addr;
use std::sync::Arc;

/// Capacity of each worker-to-worker hand-off ring.
pub const HANDOFF_RING: usize = 1024;
/// Capacity of each worker-to-worker neighbour ring.
pub const NEIGHBOUR_RING: usize = 256;

/// The rings between workers. Ring `[from][to]` is used by one producer
/// (worker `from`) and one consumer (worker `to`); the queue type itself
/// (crossbeam's `ArrayQueue`) would allow more.
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
            handoff: square(n, HANDOFF_RING),
            neighbours: square(n, NEIGHBOUR_RING),
            queries: (0..n).map(|_| ArrayQueue::new(4)).collect(),
        })
    }

    /// Number of workers.
    pub fn workers(&self) -> usize {
        self.handoff.len()
    }

    /// Hands `m`, received on port `port`, from worker `from` to `to`;
    /// gives it back when the ring is full.
    pub fn hand_off(&self, from: usize, to: usize, m: Mbuf, port: usize) -> Result<(), Mbuf> {
        self.handoff[from][to]
            .push((m, port as u8))
            .map_err(|(m, _)| m)
    }

    /// The next packet worker `from` handed to `to`, with its port.
    pub fn take_handed(&self, from: usize, to: usize) -> Option<(Mbuf, usize)> {
        self.handoff[from][to].pop().map(|(m, p)| (m, p as usize))
    }

    /// Tells worker `to` that `ip` is at `mac` (dropped when its ring is
    /// full: it will learn it again).
    pub fn share_neighbour(&self, from: usize, to: usize, ip: Ipv4Addr, mac: MacAddr) {
        let _ = self.neighbours[from][to].push((ip, mac));
    }

    /// The next neighbour worker `from` shared with `to`.
    pub fn take_neighbour(&self, from: usize, to: usize) -> Option<(Ipv4Addr, MacAddr)> {
        self.neighbours[from][to].pop()
    }
}

/// `n` x `n` queues of `cap` entries.
fn square<T>(n: usize, cap: usize) -> Vec<Vec<ArrayQueue<T>>> {
    (0..n)
        .map(|_| (0..n).map(|_| ArrayQueue::new(cap)).collect())
        .collect()
}
