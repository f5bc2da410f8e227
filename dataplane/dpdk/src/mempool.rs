//! Packet-buffer pools (`rte_pktmbuf_pool_create`) and their occupancy,
//! which the daemon checks at shutdown to prove no mbuf leaked.

use crate::eal::Eal;
use crate::error::{DpdkError, Result};
use std::ffi::CString;
use std::ptr::NonNull;

/// A pool of packet buffers. It is shared by every worker (DPDK mempools are
/// multi-producer/multi-consumer with per-lcore caches).
pub struct Mempool {
    raw: NonNull<dpdk_sys::rte_mempool>,
    size: u32,
    _eal: Eal,
}

// SAFETY: rte_mempool is designed for concurrent use from every lcore
// (lockless ring plus per-lcore caches); the pointer stays valid until drop.
unsafe impl Send for Mempool {}
// SAFETY: see Send; the methods taking &self only read counters.
unsafe impl Sync for Mempool {}

impl Mempool {
    /// Creates a pool of `size` mbufs with a per-lcore cache of `cache` and
    /// the default data room (2048 bytes plus headroom).
    pub fn new(eal: &Eal, name: &str, size: u32, cache: u32, socket: i32) -> Result<Mempool> {
        let cname = CString::new(name)
            .map_err(|_| DpdkError::other("rte_pktmbuf_pool_create", "name contains NUL"))?;
        // SAFETY: cname is a valid C string for the call; the EAL is
        // initialised (`eal` proves it); the arguments are plain values.
        let raw = unsafe {
            dpdk_sys::rte_pktmbuf_pool_create(
                cname.as_ptr(),
                size,
                cache,
                0,
                dpdk_sys::RTE_MBUF_DEFAULT_BUF_SIZE as u16,
                socket,
            )
        };
        NonNull::new(raw)
            .map(|raw| Mempool {
                raw,
                size,
                _eal: eal.clone(),
            })
            .ok_or_else(|| DpdkError::last(format!("rte_pktmbuf_pool_create({name}, {size})")))
    }

    /// The number of mbufs the pool was created with.
    pub fn size(&self) -> u32 {
        self.size
    }

    /// Mbufs currently in the pool (including per-lcore caches).
    pub fn available(&self) -> u32 {
        // SAFETY: self.raw is a live mempool; the call only reads counters.
        unsafe { dpdk_sys::rte_mempool_avail_count(self.raw.as_ptr()) }
    }

    /// Mbufs currently taken from the pool.
    pub fn in_use(&self) -> u32 {
        // SAFETY: as in `available`.
        unsafe { dpdk_sys::rte_mempool_in_use_count(self.raw.as_ptr()) }
    }

    pub(crate) fn as_ptr(&self) -> *mut dpdk_sys::rte_mempool {
        self.raw.as_ptr()
    }
}

impl Drop for Mempool {
    fn drop(&mut self) {
        // A pool is freed only when every mbuf is back in it: freeing it
        // earlier would leave live mbufs pointing into freed memory. A pool
        // with mbufs outstanding is leaked instead (and the daemon reports
        // the leak before it gets here).
        if self.in_use() != 0 {
            return;
        }
        // SAFETY: every mbuf is back in the pool and ports hold an Arc to
        // the pool, so nothing references it; the pointer came from
        // rte_pktmbuf_pool_create and is freed once.
        unsafe { dpdk_sys::rte_mempool_free(self.raw.as_ptr()) }
    }
}
