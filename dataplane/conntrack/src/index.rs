//! Bucketised cuckoo hash index mapping key hashes to slab indices.
//!
//! The index stores no keys, only `(fingerprint, entry index)` pairs; the
//! caller confirms a candidate by comparing the key stored in its slab
//! entry.
//!
//! * **Buckets.** A bucket is one 64-byte cache line holding
//!   [`BUCKET_SLOTS`] = 10 slots: ten 16-bit fingerprints followed by ten
//!   32-bit entry indices (60 bytes + 4 of padding). A lookup scans the
//!   fingerprints and touches an entry only on a fingerprint match (a false
//!   match costs one entry read with probability about 20/65535 per lookup).
//! * **Two choices (partial-key cuckoo hashing).** A key hashed to `h` may
//!   sit in its primary bucket `h & mask` or in the alternate bucket
//!   `b ^ (mix(fp) | 1)`, where `fp` is the top 16 bits of `h` (never 0; 0
//!   marks an empty slot). The alternate of a bucket is computable from the
//!   bucket number and the fingerprint alone, so entries can be moved
//!   between their two buckets without reading the slab.
//! * **Insert** uses a free slot of either bucket; if both are full it runs a
//!   bounded breadth-first search (at most [`MAX_BFS`] buckets, each at most
//!   once) for a chain of moves ending at a free slot, then performs the
//!   moves from the free end back, so the index is consistent after every
//!   single move and a failed search changes nothing. The search queue is
//!   allocated once, at construction.
//! * **Delete** clears the slot. There are no tombstones and no chains:
//!   a key is always in one of its two buckets, so deletion never affects
//!   other lookups.
//!
//! Sizing: the bucket count is the power of two at or above
//! `capacity / 8`, so with every entry indexed the load stays at or below
//! 80 % of the slots, where cuckoo insertion with ten-slot buckets practically
//! never fails (the threshold for two choices and ten slots is above 99 %).
//! That is 64 bytes per 8 entries of capacity: 8 bytes per entry per index.

use crate::slab::NIL;

/// Slots per bucket.
pub(crate) const BUCKET_SLOTS: usize = 10;

/// Most buckets a cuckoo insertion examines.
pub(crate) const MAX_BFS: usize = 256;

/// Entries of capacity per bucket when sizing the index.
const ENTRIES_PER_BUCKET: u32 = 8;

/// One cache line of the index.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
pub(crate) struct Bucket {
    fp: [u16; BUCKET_SLOTS],
    idx: [u32; BUCKET_SLOTS],
}

impl Bucket {
    const EMPTY: Bucket = Bucket {
        fp: [0; BUCKET_SLOTS],
        idx: [NIL; BUCKET_SLOTS],
    };

    #[inline]
    fn free_slot(&self) -> Option<usize> {
        self.fp.iter().position(|&f| f == 0)
    }
}

#[derive(Clone, Copy)]
struct BfsNode {
    bucket: u32,
    /// Index of the parent node in the queue (`u16::MAX` for a root).
    parent: u16,
    /// Slot of the parent bucket whose entry moves into this bucket.
    slot: u8,
}

/// The index: buckets plus the preallocated cuckoo search queue.
pub(crate) struct Index {
    buckets: Vec<Bucket>,
    mask: usize,
    bfs: Vec<BfsNode>,
}

#[inline(always)]
fn fingerprint(h: u64) -> u16 {
    let f = (h >> 48) as u16;
    if f == 0 {
        1
    } else {
        f
    }
}

impl Index {
    /// Number of buckets of an index for `capacity` entries.
    fn bucket_count(capacity: u32) -> usize {
        capacity
            .div_ceil(ENTRIES_PER_BUCKET)
            .max(1)
            .next_power_of_two() as usize
    }

    /// Bytes [`Index::new`] allocates for `capacity` entries.
    pub(crate) fn new_size_bytes(capacity: u32) -> usize {
        Index::bucket_count(capacity) * std::mem::size_of::<Bucket>()
            + MAX_BFS * std::mem::size_of::<BfsNode>()
    }

    /// An index sized for `capacity` entries, on huge pages if `huge`.
    pub(crate) fn new(capacity: u32, huge: bool) -> Index {
        let n = Index::bucket_count(capacity);
        Index {
            buckets: sluice_mem::filled(n, Bucket::EMPTY, huge),
            mask: n - 1,
            bfs: Vec::with_capacity(MAX_BFS),
        }
    }

    /// Number of buckets.
    #[cfg(test)]
    pub(crate) fn buckets(&self) -> usize {
        self.buckets.len()
    }

    /// Bytes allocated by the index.
    pub(crate) fn memory_bytes(&self) -> usize {
        self.buckets.len() * std::mem::size_of::<Bucket>()
            + self.bfs.capacity() * std::mem::size_of::<BfsNode>()
    }

    #[inline(always)]
    fn primary(&self, h: u64) -> usize {
        (h as usize) & self.mask
    }

    #[inline(always)]
    fn alt(&self, b: usize, fp: u16) -> usize {
        let t = (u64::from(fp).wrapping_mul(0xC6A4_A793_5BD1_E995) >> 32) as usize;
        (b ^ (t | 1)) & self.mask
    }

    /// The entry index whose hash is `h` and for which `eq` holds.
    #[inline]
    pub(crate) fn find(&self, h: u64, mut eq: impl FnMut(u32) -> bool) -> Option<u32> {
        let fp = fingerprint(h);
        let b1 = self.primary(h);
        let b2 = self.alt(b1, fp);
        for b in [b1, b2] {
            let bk = &self.buckets[b];
            for s in 0..BUCKET_SLOTS {
                if bk.fp[s] == fp && eq(bk.idx[s]) {
                    return Some(bk.idx[s]);
                }
            }
        }
        None
    }

    /// Stage one of a pipelined lookup: asks the CPU for the primary
    /// bucket of hash `h`, where a key almost always sits.
    #[inline]
    pub(crate) fn prefetch(&self, h: u64) {
        sluice_mem::prefetch(&self.buckets[self.primary(h)]);
    }

    /// Stage two: calls `f` with each entry index whose fingerprint
    /// matches `h` in the primary bucket (in cache after stage one); when
    /// none does, asks the CPU for the alternate bucket instead.
    #[inline]
    pub(crate) fn candidates(&self, h: u64, mut f: impl FnMut(u32)) {
        let fp = fingerprint(h);
        let b1 = self.primary(h);
        let bk = &self.buckets[b1];
        let mut found = false;
        for s in 0..BUCKET_SLOTS {
            if bk.fp[s] == fp {
                f(bk.idx[s]);
                found = true;
            }
        }
        if !found {
            sluice_mem::prefetch(&self.buckets[self.alt(b1, fp)]);
        }
    }

    /// Adds entry `idx` with hash `h`. Returns `false`, changing nothing,
    /// if no place could be made.
    pub(crate) fn insert(&mut self, h: u64, idx: u32) -> bool {
        let fp = fingerprint(h);
        let b1 = self.primary(h);
        let b2 = self.alt(b1, fp);
        for b in [b1, b2] {
            if let Some(s) = self.buckets[b].free_slot() {
                self.put(b, s, fp, idx);
                return true;
            }
        }
        self.cuckoo(b1, b2, fp, idx)
    }

    #[inline]
    fn put(&mut self, b: usize, s: usize, fp: u16, idx: u32) {
        self.buckets[b].fp[s] = fp;
        self.buckets[b].idx[s] = idx;
    }

    fn cuckoo(&mut self, b1: usize, b2: usize, fp: u16, idx: u32) -> bool {
        const ROOT: u16 = u16::MAX;
        self.bfs.clear();
        self.bfs.push(BfsNode {
            bucket: b1 as u32,
            parent: ROOT,
            slot: 0,
        });
        if b2 != b1 {
            self.bfs.push(BfsNode {
                bucket: b2 as u32,
                parent: ROOT,
                slot: 0,
            });
        }
        let mut head = 0;
        while head < self.bfs.len() {
            let b = self.bfs[head].bucket as usize;
            if let Some(free) = self.buckets[b].free_slot() {
                // Move entries along the path, from the free end back.
                let mut n = head;
                let mut e = free;
                loop {
                    let node = self.bfs[n];
                    if node.parent == ROOT {
                        self.put(node.bucket as usize, e, fp, idx);
                        return true;
                    }
                    let pb = self.bfs[node.parent as usize].bucket as usize;
                    let ps = node.slot as usize;
                    let (mfp, midx) = (self.buckets[pb].fp[ps], self.buckets[pb].idx[ps]);
                    self.put(node.bucket as usize, e, mfp, midx);
                    e = ps;
                    n = node.parent as usize;
                }
            }
            for s in 0..BUCKET_SLOTS {
                if self.bfs.len() == MAX_BFS {
                    break;
                }
                let a = self.alt(b, self.buckets[b].fp[s]) as u32;
                if self.bfs.iter().any(|n| n.bucket == a) {
                    continue;
                }
                self.bfs.push(BfsNode {
                    bucket: a,
                    parent: head as u16,
                    slot: s as u8,
                });
            }
            head += 1;
        }
        false
    }

    /// Removes entry `idx` with hash `h`; `false` if it was not there.
    pub(crate) fn remove(&mut self, h: u64, idx: u32) -> bool {
        let fp = fingerprint(h);
        let b1 = self.primary(h);
        let b2 = self.alt(b1, fp);
        for b in [b1, b2] {
            let bk = &mut self.buckets[b];
            for s in 0..BUCKET_SLOTS {
                if bk.fp[s] == fp && bk.idx[s] == idx {
                    bk.fp[s] = 0;
                    bk.idx[s] = NIL;
                    return true;
                }
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::FlowHasher;

    #[test]
    fn bucket_is_one_cache_line() {
        assert_eq!(std::mem::size_of::<Bucket>(), 64);
        assert_eq!(std::mem::align_of::<Bucket>(), 64);
    }

    #[test]
    fn alt_is_an_involution() {
        let ix = Index::new(1 << 12, false);
        for b in 0..ix.buckets() {
            for fp in [1u16, 2, 77, 0xffff] {
                let a = ix.alt(b, fp);
                assert_ne!(a, b);
                assert_eq!(ix.alt(a, fp), b);
            }
        }
        // A single bucket is its own alternate.
        let one = Index::new(4, false);
        assert_eq!(one.buckets(), 1);
        assert_eq!(one.alt(0, 5), 0);
    }

    /// Fill to the designed maximum (80 % of slots) with pseudo-random
    /// hashes: every insert succeeds (cuckoo moves included), every key is
    /// found, and removals leave the others findable.
    #[test]
    fn fills_to_capacity_and_deletes_cleanly() {
        let cap = 1u32 << 14;
        let mut ix = Index::new(cap, false);
        let h = FlowHasher::new(9);
        let hash = |i: u32| h.hash_words(u64::from(i), 0);
        let mut moved = 0;
        for i in 0..cap {
            let h = hash(i);
            let b1 = ix.primary(h);
            let b2 = ix.alt(b1, fingerprint(h));
            if ix.buckets[b1].free_slot().is_none() && ix.buckets[b2].free_slot().is_none() {
                moved += 1; // both candidates full: needs cuckoo moves
            }
            assert!(ix.insert(h, i), "insert {i}");
        }
        assert!(moved > 0, "the cuckoo path was never exercised");
        for i in 0..cap {
            assert_eq!(ix.find(hash(i), |x| x == i), Some(i));
        }
        for i in (0..cap).step_by(2) {
            assert!(ix.remove(hash(i), i));
            assert!(!ix.remove(hash(i), i));
        }
        for i in 0..cap {
            let want = (i % 2 == 1).then_some(i);
            assert_eq!(ix.find(hash(i), |x| x == i), want);
        }
    }

    /// Colliding hashes (same primary bucket, same fingerprint) beyond one
    /// bucket's size still all fit, through the alternate bucket and moves.
    #[test]
    fn same_hash_overflows_into_alternate() {
        let mut ix = Index::new(64, false);
        let h = 0xabcd_0000_0000_0003u64;
        for i in 0..2 * BUCKET_SLOTS as u32 {
            assert!(ix.insert(h, i));
        }
        // Both candidate buckets are full of this hash: no more room.
        assert!(!ix.insert(h, 999));
        for i in 0..2 * BUCKET_SLOTS as u32 {
            assert_eq!(ix.find(h, |x| x == i), Some(i));
        }
    }
}
