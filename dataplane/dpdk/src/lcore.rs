//! Running closures on worker lcores (`rte_eal_remote_launch`) and reading
//! the TSC cycle counter.

use crate::eal::Eal;
use crate::error::{DpdkError, Result};
use std::os::raw::{c_int, c_void};

type Job = Box<dyn FnOnce() -> i32 + Send + 'static>;

/// A closure running on a worker lcore; join it with [`LcoreHandle::join`].
pub struct LcoreHandle {
    lcore: u32,
    joined: bool,
}

extern "C" fn trampoline(arg: *mut c_void) -> c_int {
    // SAFETY: arg is the Box<Job> leaked by `launch` for this one call;
    // ownership comes back here exactly once.
    let job: Box<Job> = unsafe { Box::from_raw(arg as *mut Job) };
    // A panic must not unwind into DPDK's C frames.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).unwrap_or(-1)
}

/// Launches `f` on worker lcore `lcore` (which must be enabled and idle,
/// and not the main lcore).
pub fn launch<F>(eal: &Eal, lcore: u32, f: F) -> Result<LcoreHandle>
where
    F: FnOnce() -> i32 + Send + 'static,
{
    if !eal.lcore_enabled(lcore) || lcore == eal.main_lcore() {
        return Err(DpdkError::other(
            format!("launch on lcore {lcore}"),
            "not an enabled worker lcore",
        ));
    }
    let job: Box<Job> = Box::new(Box::new(f));
    let arg = Box::into_raw(job) as *mut c_void;
    // SAFETY: trampoline has the lcore_function_t signature and takes back
    // ownership of arg; lcore is an enabled worker lcore.
    let rc = unsafe { dpdk_sys::rte_eal_remote_launch(Some(trampoline), arg, lcore) };
    if rc < 0 {
        // SAFETY: the launch failed, so trampoline never ran and arg is
        // still ours: reclaim it to free the closure.
        drop(unsafe { Box::from_raw(arg as *mut Job) });
        return Err(DpdkError::from_errno(
            format!("rte_eal_remote_launch(lcore {lcore})"),
            rc,
        ));
    }
    Ok(LcoreHandle {
        lcore,
        joined: false,
    })
}

impl LcoreHandle {
    /// The lcore it runs on.
    pub fn lcore(&self) -> u32 {
        self.lcore
    }

    /// Waits for the closure to return and gives its return code.
    pub fn join(mut self) -> i32 {
        self.joined = true;
        // SAFETY: lcore is a worker lcore we launched on; waiting has no
        // other precondition.
        unsafe { dpdk_sys::rte_eal_wait_lcore(self.lcore) }
    }
}

impl Drop for LcoreHandle {
    fn drop(&mut self) {
        if !self.joined {
            // SAFETY: as in join; a launched lcore must be waited for
            // before the EAL is cleaned up.
            unsafe {
                dpdk_sys::rte_eal_wait_lcore(self.lcore);
            }
        }
    }
}

/// The TSC cycle counter.
#[inline(always)]
pub fn cycles() -> u64 {
    // SAFETY: reading the TSC has no preconditions.
    unsafe { dpdk_sys::sluice_rdtsc() }
}

/// TSC ticks per second, as the EAL measured them.
pub fn cycles_hz() -> u64 {
    // SAFETY: no preconditions after EAL init; returns 0 before it.
    unsafe { dpdk_sys::sluice_tsc_hz() }
}
