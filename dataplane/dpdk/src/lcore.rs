//! Running closures on worker lcores (`rte_eal_remote_launch`) and reading
//! the TSC cycle counter.
//!
//! Closures run inside a [`scope`], as with `std::thread::scope`: the scope
//! borrows the [`Eal`], every closure may borrow what outlives the scope
//! (ports, whose queues it polls), and every lcore launched in it has
//! returned before [`scope`] does. So no worker outlives the EAL, a port or
//! a pool it uses.
//!
//! ```no_run
//! # use sluice_dpdk::{lcore, Eal};
//! fn count_on_lcore_1(eal: &Eal) -> i32 {
//!     let outside = 5;
//!     lcore::scope(eal, |scope| scope.launch(1, || outside).unwrap().join())
//! }
//! ```
//!
//! A closure cannot borrow what ends before the scope does:
//!
//! ```compile_fail
//! # use sluice_dpdk::{lcore, Eal};
//! fn borrow_too_short(eal: &Eal) {
//!     lcore::scope(eal, |scope| {
//!         let inside = 5;
//!         scope.launch(1, || inside).unwrap();
//!     });
//! }
//! ```

use crate::eal::Eal;
use crate::error::{DpdkError, Result};
use std::cell::RefCell;
use std::marker::PhantomData;
use std::os::raw::{c_int, c_void};

type Job<'scope> = Box<dyn FnOnce() -> i32 + Send + 'scope>;

/// Launches closures on worker lcores; see [`scope`].
pub struct Scope<'scope, 'eal: 'scope> {
    eal: &'eal Eal,
    launched: RefCell<Vec<u32>>,
    // Invariant in 'scope, as std's Scope is, so that closures cannot
    // borrow anything shorter-lived than the scope.
    _scope: PhantomData<&'scope mut &'scope ()>,
}

/// A closure running on a worker lcore; join it with [`LcoreHandle::join`]
/// (the end of the scope joins it otherwise).
pub struct LcoreHandle<'scope> {
    lcore: u32,
    _scope: PhantomData<&'scope ()>,
}

extern "C" fn trampoline(arg: *mut c_void) -> c_int {
    // SAFETY: arg is the Box<Job> leaked by `Scope::launch` for this one
    // call; ownership comes back here exactly once.
    let job: Box<Job<'static>> = unsafe { Box::from_raw(arg as *mut Job<'static>) };
    // A panic must not unwind into DPDK's C frames.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).unwrap_or(-1)
}

/// Runs `f` with a [`Scope`] on which it can launch closures on worker
/// lcores; waits for every one of them before returning (also when `f`
/// panics).
pub fn scope<'eal, F, R>(eal: &'eal Eal, f: F) -> R
where
    F: for<'scope> FnOnce(&'scope Scope<'scope, 'eal>) -> R,
{
    let scope = Scope {
        eal,
        launched: RefCell::new(Vec::new()),
        _scope: PhantomData,
    };
    /// Waits for every lcore launched in the scope when dropped.
    struct JoinAll<'a, 's, 'e>(&'a Scope<'s, 'e>);
    impl Drop for JoinAll<'_, '_, '_> {
        fn drop(&mut self) {
            for lcore in self.0.launched.borrow_mut().drain(..) {
                // SAFETY: lcore is a worker lcore launched in this scope;
                // waiting has no other precondition, and waiting on one
                // already joined returns at once.
                unsafe {
                    dpdk_sys::rte_eal_wait_lcore(lcore);
                }
            }
        }
    }
    let join_all = JoinAll(&scope);
    let r = f(&scope);
    drop(join_all);
    r
}

impl<'scope> Scope<'scope, '_> {
    /// Launches `f` on worker lcore `lcore` (which must be enabled and
    /// idle, and not the main lcore).
    pub fn launch<F>(&'scope self, lcore: u32, f: F) -> Result<LcoreHandle<'scope>>
    where
        F: FnOnce() -> i32 + Send + 'scope,
    {
        if !self.eal.lcore_enabled(lcore) || lcore == self.eal.main_lcore() {
            return Err(DpdkError::other(
                format!("launch on lcore {lcore}"),
                "not an enabled worker lcore",
            ));
        }
        if self.launched.borrow().contains(&lcore) {
            return Err(DpdkError::other(
                format!("launch on lcore {lcore}"),
                "the lcore already runs a closure of this scope",
            ));
        }
        let job: Job<'scope> = Box::new(f);
        // SAFETY: only the lifetime is erased. The closure may borrow for
        // 'scope, and `scope` waits for this lcore (so for the closure to
        // return and be dropped) before 'scope ends.
        let job: Job<'static> = unsafe { std::mem::transmute::<Job<'scope>, Job<'static>>(job) };
        let arg = Box::into_raw(Box::new(job)) as *mut c_void;
        // SAFETY: trampoline has the lcore_function_t signature and takes back
        // ownership of arg; lcore is an enabled worker lcore.
        let rc = unsafe { dpdk_sys::rte_eal_remote_launch(Some(trampoline), arg, lcore) };
        if rc < 0 {
            // SAFETY: the launch failed, so trampoline never ran and arg is
            // still ours: reclaim it to free the closure.
            drop(unsafe { Box::from_raw(arg as *mut Job<'static>) });
            return Err(DpdkError::from_errno(
                format!("rte_eal_remote_launch(lcore {lcore})"),
                rc,
            ));
        }
        self.launched.borrow_mut().push(lcore);
        Ok(LcoreHandle {
            lcore,
            _scope: PhantomData,
        })
    }
}

impl LcoreHandle<'_> {
    /// The lcore it runs on.
    pub fn lcore(&self) -> u32 {
        self.lcore
    }

    /// Waits for the closure to return and gives its return code.
    pub fn join(self) -> i32 {
        // SAFETY: lcore is a worker lcore launched in a live scope; waiting
        // has no other precondition.
        unsafe { dpdk_sys::rte_eal_wait_lcore(self.lcore) }
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
