//! Configuration snapshots published to workers, epoch (RCU) style.
//!
//! The control thread builds an immutable snapshot and publishes it; each
//! worker checks the epoch between bursts (one relaxed load), takes the new
//! snapshot when it changed, and acknowledges the epoch it now runs. A
//! replaced snapshot is kept in a retire list by the control thread until
//! every worker has acknowledged a later epoch, so the last reference is
//! always dropped off the packet path, by the control thread.

use arc_swap::ArcSwap;
use crossbeam_utils::CachePadded;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The shared side: current snapshot, epoch, and per-worker acks.
pub struct Publisher<T> {
    current: ArcSwap<T>,
    epoch: CachePadded<AtomicU64>,
    acks: Vec<CachePadded<AtomicU64>>,
    retired: Mutex<Vec<(u64, Arc<T>)>>,
}

/// A worker's handle: its cached snapshot and the epoch it acknowledged.
pub struct Reader<T> {
    publisher: Arc<Publisher<T>>,
    index: usize,
    epoch: u64,
    cached: Arc<T>,
}

impl<T> Publisher<T> {
    /// A publisher for `workers` readers, starting with `initial`.
    pub fn new(initial: T, workers: usize) -> Arc<Publisher<T>> {
        Arc::new(Publisher {
            current: ArcSwap::from_pointee(initial),
            epoch: CachePadded::new(AtomicU64::new(1)),
            acks: (0..workers)
                .map(|_| CachePadded::new(AtomicU64::new(0)))
                .collect(),
            retired: Mutex::new(Vec::new()),
        })
    }

    /// The reader for worker `index` (each index is used once).
    pub fn reader(self: &Arc<Self>, index: usize) -> Reader<T> {
        let cached = self.current.load_full();
        let epoch = self.epoch.load(Ordering::Acquire);
        self.acks[index].store(epoch, Ordering::Release);
        Reader {
            publisher: self.clone(),
            index,
            epoch,
            cached,
        }
    }

    /// The current snapshot (control thread).
    pub fn current(&self) -> Arc<T> {
        self.current.load_full()
    }

    /// The current epoch.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Publishes `next`; returns its epoch. Control thread only.
    pub fn publish(&self, next: T) -> u64 {
        let old = self.current.swap(Arc::new(next));
        let e = self.epoch.fetch_add(1, Ordering::AcqRel) + 1;
        self.retired.lock().unwrap().push((e, old));
        self.reclaim();
        e
    }

    /// Lowest epoch every worker has acknowledged.
    pub fn min_ack(&self) -> u64 {
        self.acks
            .iter()
            .map(|a| a.load(Ordering::Acquire))
            .min()
            .unwrap_or(u64::MAX)
    }

    /// Waits until every worker runs epoch `epoch` or later, for at most
    /// `limit`; returns the workers that still do not (empty when all do).
    /// Workers acknowledge between bursts, so this takes about one burst.
    pub fn wait_for(&self, epoch: u64, limit: std::time::Duration) -> Vec<usize> {
        let deadline = std::time::Instant::now() + limit;
        loop {
            let behind: Vec<usize> = (0..self.acks.len())
                .filter(|i| self.acks[*i].load(Ordering::Acquire) < epoch)
                .collect();
            if behind.is_empty() || std::time::Instant::now() >= deadline {
                return behind;
            }
            std::thread::sleep(std::time::Duration::from_micros(50));
        }
    }

    /// Frees retired snapshots no worker can hold any more. Returns how
    /// many are still waiting.
    pub fn reclaim(&self) -> usize {
        let min = self.min_ack();
        let mut r = self.retired.lock().unwrap();
        r.retain(|(e, _)| *e > min);
        r.len()
    }
}

impl<T> Reader<T> {
    /// Picks up a newer snapshot if one was published and returns the one
    /// to use for the next burst. Called by the worker between bursts.
    #[inline(always)]
    pub fn refresh(&mut self) -> &T {
        let e = self.publisher.epoch.load(Ordering::Acquire);
        if e != self.epoch {
            // Replacing `cached` drops this worker's reference to the old
            // snapshot; the retire list still holds one, so this is never
            // the last reference and frees nothing here.
            self.cached = self.publisher.current.load_full();
            self.epoch = e;
            self.publisher.acks[self.index].store(e, Ordering::Release);
        }
        &self.cached
    }

    /// The epoch of the snapshot in use.
    #[inline(always)]
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The snapshot in use, without checking for a newer one.
    #[inline(always)]
    pub fn get(&self) -> &T {
        &self.cached
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workers_switch_between_bursts_and_old_snapshots_are_reclaimed() {
        let p = Publisher::new(1u32, 2);
        let mut r0 = p.reader(0);
        let mut r1 = p.reader(1);
        assert_eq!(*r0.refresh(), 1);
        p.publish(2);
        // Worker 0 moved on, worker 1 still runs snapshot 1.
        assert_eq!(*r0.refresh(), 2);
        assert_eq!(*r1.get(), 1);
        assert_eq!(p.reclaim(), 1, "snapshot 1 must wait for worker 1");
        assert_eq!(*r1.refresh(), 2);
        assert_eq!(p.reclaim(), 0);
    }

    #[test]
    fn publishing_waits_for_every_worker_to_pick_the_change_up() {
        let p = Publisher::new(1u32, 2);
        let mut r0 = p.reader(0);
        let mut r1 = p.reader(1);
        let e = p.publish(2);
        let short = std::time::Duration::from_millis(20);
        assert_eq!(p.wait_for(e, short), vec![0, 1], "nobody polled yet");
        r0.refresh();
        assert_eq!(p.wait_for(e, short), vec![1]);
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let s = stop.clone();
        let t = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                r1.refresh();
                std::thread::yield_now();
            }
        });
        assert!(p.wait_for(e, std::time::Duration::from_secs(10)).is_empty());
        stop.store(true, Ordering::Relaxed);
        t.join().unwrap();
    }

    #[test]
    fn concurrent_readers_see_whole_snapshots() {
        // A snapshot is a pair that must always be equal; readers on other
        // threads must never see a half-applied one.
        let p = Publisher::new((0u64, 0u64), 2);
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut handles = Vec::new();
        for i in 0..2 {
            let mut r = p.reader(i);
            let stop = stop.clone();
            handles.push(std::thread::spawn(move || {
                let mut seen = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let s = r.refresh();
                    assert_eq!(s.0, s.1);
                    assert!(s.0 >= seen);
                    seen = s.0;
                }
                seen
            }));
        }
        for k in 1..=2000u64 {
            p.publish((k, k));
        }
        stop.store(true, Ordering::Relaxed);
        for h in handles {
            h.join().unwrap();
        }
        // Readers are gone without acking the last epochs; what they held
        // was dropped with them, and reclaim never frees in-use snapshots.
        assert!(p.reclaim() <= 2000);
    }
}
