//! Owned packet buffers. An [`Mbuf`] has exactly one owner and returns to
//! its pool when dropped; an [`MbufBatch`] is a fixed-capacity array of them
//! used for receive and transmit bursts. Transmit ownership is exact: what
//! the driver accepted leaves the batch, what it refused stays in it, to be
//! sent again or freed in bulk.

use std::ptr::NonNull;

/// One single-owner packet buffer. Layout-compatible with `*mut rte_mbuf`,
/// so a slice of them can be handed to rx/tx burst functions directly.
#[repr(transparent)]
pub struct Mbuf {
    raw: NonNull<dpdk_sys::rte_mbuf>,
}

// SAFETY: an Mbuf is the only reference to its rte_mbuf, and mbufs may be
// freed from any lcore (mempools are MP/MC), so moving it between threads
// is sound. It is deliberately not Sync.
unsafe impl Send for Mbuf {}

impl Mbuf {
    /// The packet's first segment as bytes.
    #[inline(always)]
    pub fn data(&self) -> &[u8] {
        // SAFETY: self owns the mbuf; buf_addr + data_off is the start of
        // data_len initialised bytes inside the mbuf's buffer (DPDK's
        // invariant for the first segment).
        unsafe {
            let m = self.raw.as_ref();
            std::slice::from_raw_parts(
                (m.buf_addr as *const u8).add(m.data_off as usize),
                m.data_len as usize,
            )
        }
    }

    /// The packet's first segment as mutable bytes.
    #[inline(always)]
    pub fn data_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `data`; &mut self guarantees exclusive access and no
        // other reference to the buffer exists (single owner, refcnt 1 for
        // mbufs received from a port or allocated by us).
        unsafe {
            let m = self.raw.as_mut();
            std::slice::from_raw_parts_mut(
                (m.buf_addr as *mut u8).add(m.data_off as usize),
                m.data_len as usize,
            )
        }
    }

    /// Grows the packet at the front by `n` bytes of its headroom (as
    /// `rte_pktmbuf_prepend` does, in Rust: no call) and returns the whole
    /// first segment, the `n` new bytes first; None, unchanged, when the
    /// headroom is shorter than `n`.
    #[inline(always)]
    pub fn prepend(&mut self, n: usize) -> Option<&mut [u8]> {
        // SAFETY: we own the mbuf; the new start stays inside its buffer
        // (data_off >= n is checked), and the slice covers the old data
        // plus the n bytes before it, all inside the buffer. The headroom
        // is initialised memory (the mempool's buffers live in hugepage
        // memory, zeroed when mapped), and the caller overwrites it.
        unsafe {
            let m = self.raw.as_mut();
            if (m.data_off as usize) < n {
                return None;
            }
            m.data_off -= n as u16;
            m.data_len += n as u16;
            m.pkt_len += n as u32;
        }
        Some(self.data_mut())
    }

    /// Grows the packet (one segment) at the end by `n` bytes of its
    /// tailroom (as `rte_pktmbuf_append` does, in Rust: no call) and
    /// returns the whole packet, the `n` new bytes last; None, unchanged,
    /// when the tailroom is shorter than `n` or it has more segments.
    #[inline(always)]
    pub fn append(&mut self, n: usize) -> Option<&mut [u8]> {
        // SAFETY: we own the mbuf; the new end stays inside its buffer
        // (data_off + data_len + n <= buf_len is checked). The tailroom is
        // initialised memory (hugepage memory, zeroed when mapped), and
        // the caller overwrites it.
        unsafe {
            let m = self.raw.as_mut();
            let end = m.data_off as usize + m.data_len as usize + n;
            if m.nb_segs != 1 || end > m.buf_len as usize {
                return None;
            }
            m.data_len += n as u16;
            m.pkt_len += n as u32;
        }
        Some(self.data_mut())
    }

    /// Cuts the packet (one segment) to its first `len` bytes; false,
    /// unchanged, when it is shorter or of more segments.
    #[inline(always)]
    pub fn trim_to(&mut self, len: usize) -> bool {
        // SAFETY: we own the mbuf; only its lengths shrink, within the data
        // it already holds.
        unsafe {
            let m = self.raw.as_mut();
            if m.nb_segs != 1 || len > m.data_len as usize {
                return false;
            }
            m.data_len = len as u16;
            m.pkt_len = len as u32;
        }
        true
    }

    /// Total packet length over all segments.
    #[inline(always)]
    pub fn pkt_len(&self) -> u32 {
        // SAFETY: reading a plain field of an mbuf we own.
        unsafe { self.raw.as_ref().pkt_len }
    }

    /// Number of segments; Sluice processes single-segment packets only.
    #[inline(always)]
    pub fn segments(&self) -> u16 {
        // SAFETY: reading a plain field of an mbuf we own.
        unsafe { self.raw.as_ref().nb_segs }
    }

    /// The port the packet was received on.
    #[inline(always)]
    pub fn port(&self) -> u16 {
        // SAFETY: reading a plain field of an mbuf we own.
        unsafe { self.raw.as_ref().port }
    }

    /// Hints the CPU to fetch the start of the packet data into cache.
    #[inline(always)]
    pub fn prefetch(&self) {
        // SAFETY: computing the address reads two fields of an mbuf we own;
        // a prefetch never faults, whatever the address.
        #[cfg(target_arch = "x86_64")]
        unsafe {
            let m = self.raw.as_ref();
            let p = (m.buf_addr as *const i8).add(m.data_off as usize);
            std::arch::x86_64::_mm_prefetch(p, std::arch::x86_64::_MM_HINT_T0);
        }
    }

    /// Allocates an empty mbuf from `pool` (off the hot path: tests and
    /// control-plane packet origination).
    pub fn alloc(pool: &crate::Mempool) -> Option<Mbuf> {
        // SAFETY: pool is a live mempool of pktmbufs.
        let raw = unsafe { dpdk_sys::sluice_pktmbuf_alloc(pool.as_ptr()) };
        NonNull::new(raw).map(|raw| Mbuf { raw })
    }

    /// Replaces the packet's contents with `bytes` (single segment). Returns
    /// false if they do not fit in the buffer.
    pub fn set_data(&mut self, bytes: &[u8]) -> bool {
        // SAFETY: we own the mbuf; the length is checked against the space
        // after data_off before copying into the buffer.
        unsafe {
            let m = self.raw.as_mut();
            let room = m.buf_len as usize - m.data_off as usize;
            if bytes.len() > room || m.nb_segs != 1 {
                return false;
            }
            let dst = (m.buf_addr as *mut u8).add(m.data_off as usize);
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), dst, bytes.len());
            m.data_len = bytes.len() as u16;
            m.pkt_len = bytes.len() as u32;
        }
        true
    }
}

impl Drop for Mbuf {
    fn drop(&mut self) {
        // SAFETY: self is the only owner; the mbuf goes back to its pool
        // exactly once. The hot path frees in bulk via MbufBatch instead.
        unsafe { dpdk_sys::sluice_pktmbuf_free(self.raw.as_ptr()) }
    }
}

/// A fixed-capacity batch of owned mbufs. Its storage is allocated once at
/// construction; push, rx and tx never allocate.
pub struct MbufBatch {
    mbufs: Vec<Mbuf>,
    cap: usize,
}

impl MbufBatch {
    /// A batch holding at most `cap` mbufs.
    pub fn with_capacity(cap: usize) -> MbufBatch {
        MbufBatch {
            mbufs: Vec::with_capacity(cap),
            cap,
        }
    }

    /// Capacity given at construction.
    #[inline(always)]
    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// Number of mbufs held.
    #[inline(always)]
    pub fn len(&self) -> usize {
        self.mbufs.len()
    }

    /// Whether the batch holds no mbuf.
    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.mbufs.is_empty()
    }

    /// Adds an mbuf; gives it back when the batch is full.
    #[inline(always)]
    pub fn push(&mut self, m: Mbuf) -> Result<(), Mbuf> {
        if self.mbufs.len() >= self.cap {
            return Err(m);
        }
        self.mbufs.push(m);
        Ok(())
    }

    /// The mbuf at `i`.
    #[inline(always)]
    pub fn get(&self, i: usize) -> Option<&Mbuf> {
        self.mbufs.get(i)
    }

    /// The mbuf at `i`, mutably.
    #[inline(always)]
    pub fn get_mut(&mut self, i: usize) -> Option<&mut Mbuf> {
        self.mbufs.get_mut(i)
    }

    /// Takes every mbuf out, in order.
    #[inline(always)]
    pub fn drain(&mut self) -> std::vec::Drain<'_, Mbuf> {
        self.mbufs.drain(..)
    }

    /// Returns every mbuf to its pool with one bulk call.
    #[inline]
    pub fn free_all(&mut self) {
        let n = self.mbufs.len();
        if n == 0 {
            return;
        }
        // SAFETY: Mbuf is repr(transparent) over a non-null *mut rte_mbuf,
        // so the Vec's buffer is an array of n valid mbuf pointers, each
        // owned by this batch. rte_pktmbuf_free_bulk frees all n; set_len(0)
        // then forgets them without running Mbuf::drop (no double free).
        unsafe {
            dpdk_sys::rte_pktmbuf_free_bulk(
                self.mbufs.as_mut_ptr() as *mut *mut dpdk_sys::rte_mbuf,
                n as u32,
            );
            self.mbufs.set_len(0);
        }
    }

    /// Fills the empty batch with `n` fresh mbufs from `pool` in one bulk
    /// call (`rte_pktmbuf_alloc_bulk`): each is reset, empty (length 0,
    /// one segment, default headroom), ready for [`Mbuf::set_data`].
    /// All or nothing: returns false, with the batch still empty, when the
    /// pool cannot supply `n` mbufs. `n` is capped at the batch's capacity;
    /// a batch that is not empty is freed first.
    pub fn alloc_from(&mut self, pool: &crate::Mempool, n: usize) -> bool {
        self.free_all();
        let n = n.min(self.cap).min(u32::MAX as usize);
        if n == 0 {
            return true;
        }
        // SAFETY: the batch is empty and its buffer has room for cap >= n
        // mbuf pointers; pool is a live pktmbuf pool. On success (rc 0)
        // rte_pktmbuf_alloc_bulk wrote n valid, reset mbuf pointers that we
        // now own (Mbuf is repr(transparent) over such a pointer), so
        // set_len(n) takes them over; on failure it wrote nothing we own and
        // the length stays 0.
        unsafe {
            let rc = dpdk_sys::sluice_pktmbuf_alloc_bulk(
                pool.as_ptr(),
                self.mbufs.as_mut_ptr() as *mut *mut dpdk_sys::rte_mbuf,
                n as u32,
            );
            if rc != 0 {
                return false;
            }
            self.mbufs.set_len(n);
        }
        true
    }

    /// Raw receive: fills the empty batch from `f`, which writes up to `cap`
    /// mbuf pointers and returns how many it wrote.
    ///
    /// # Safety
    ///
    /// `f` must write, at the start of the buffer it is given, as many
    /// pointers as it returns (at most `cap`), each a valid mbuf that the
    /// batch then owns (no other owner frees or sends it).
    #[inline(always)]
    pub(crate) unsafe fn fill_with(
        &mut self,
        f: impl FnOnce(*mut *mut dpdk_sys::rte_mbuf, u16) -> u16,
    ) {
        debug_assert!(self.mbufs.is_empty());
        self.free_all();
        let cap = self.cap.min(u16::MAX as usize) as u16;
        let n = f(self.mbufs.as_mut_ptr() as *mut *mut dpdk_sys::rte_mbuf, cap);
        let n = (n as usize).min(self.cap);
        // SAFETY: the batch was empty with capacity >= cap; the caller
        // promises that `f` wrote n <= cap valid, owned mbuf pointers at the
        // start of the buffer, and Mbuf is repr(transparent) over such a
        // pointer.
        unsafe { self.mbufs.set_len(n) }
    }

    /// Raw transmit: offers every mbuf to `f`, which returns how many it
    /// took (the first ones). Those leave the batch without being freed;
    /// the rest stay, in order.
    ///
    /// # Safety
    ///
    /// `f` must take ownership of exactly the first mbufs it reports as
    /// taken (at most the `n` it is given) and must not touch the others.
    #[inline(always)]
    pub(crate) unsafe fn send_with(
        &mut self,
        f: impl FnOnce(*mut *mut dpdk_sys::rte_mbuf, u16) -> u16,
    ) -> usize {
        let n = self.mbufs.len().min(u16::MAX as usize) as u16;
        if n == 0 {
            return 0;
        }
        let sent = (f(self.mbufs.as_mut_ptr() as *mut *mut dpdk_sys::rte_mbuf, n) as usize)
            .min(n as usize);
        // Ownership of the first `sent` mbufs passed to `f` (the caller's
        // promise): remove them without dropping, keep the refused ones.
        for m in self.mbufs.drain(..sent) {
            std::mem::forget(m);
        }
        sent
    }
}

impl Drop for MbufBatch {
    fn drop(&mut self) {
        self.free_all();
    }
}
