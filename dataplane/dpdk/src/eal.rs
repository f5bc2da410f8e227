//! EAL initialisation and cleanup. The EAL can be initialised once per
//! process; [`Eal`] is the proof that it was, and cleans it up on drop.

use crate::error::{DpdkError, Result};
use std::ffi::{CStr, CString};
use std::os::raw::c_char;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

static INITIALISED: AtomicBool = AtomicBool::new(false);

/// A handle on the initialised EAL. Mempools and ports hold a clone, so
/// `rte_eal_cleanup` runs only when the last of them is gone.
#[derive(Clone)]
pub struct Eal {
    _inner: Arc<EalInner>,
}

struct EalInner;

impl Eal {
    /// Initialises the EAL with `args` (without the program name).
    pub fn init(program: &str, args: &[String]) -> Result<Eal> {
        if INITIALISED.swap(true, Ordering::SeqCst) {
            return Err(DpdkError::other(
                "rte_eal_init",
                "the EAL is already initialised in this process",
            ));
        }
        let mut owned: Vec<CString> = Vec::with_capacity(args.len() + 1);
        for a in std::iter::once(program).chain(args.iter().map(String::as_str)) {
            owned.push(CString::new(a).map_err(|_| {
                DpdkError::other("rte_eal_init", format!("argument {a:?} contains NUL"))
            })?);
        }
        // The EAL may keep pointers into argv for the life of the process
        // (it permutes the array and stores some values), so argv and its
        // strings are leaked deliberately: one small allocation per process.
        let owned: &'static mut [CString] = Box::leak(owned.into_boxed_slice());
        let argv: &'static mut [*mut c_char] = Box::leak(
            owned
                .iter()
                .map(|s| s.as_ptr() as *mut c_char)
                .collect::<Vec<_>>()
                .into_boxed_slice(),
        );
        // SAFETY: argv holds argc valid NUL-terminated strings that live for
        // the rest of the process; rte_eal_init is called once (guarded by
        // INITIALISED) from the main thread.
        let rc = unsafe { dpdk_sys::rte_eal_init(argv.len() as i32, argv.as_mut_ptr()) };
        if rc < 0 {
            INITIALISED.store(false, Ordering::SeqCst);
            return Err(DpdkError::last("rte_eal_init"));
        }
        Ok(Eal {
            _inner: Arc::new(EalInner),
        })
    }

    /// DPDK's version string, e.g. `DPDK 22.11.11`.
    pub fn version() -> String {
        // SAFETY: rte_version returns a pointer to a static string.
        unsafe { CStr::from_ptr(dpdk_sys::rte_version()) }
            .to_string_lossy()
            .into_owned()
    }

    /// The EAL's runtime directory (`/var/run/dpdk/<file-prefix>` for
    /// root), where its config, multi-process and telemetry sockets live.
    pub fn runtime_dir(&self) -> std::path::PathBuf {
        // SAFETY: valid after rte_eal_init; returns a pointer to a static
        // NUL-terminated string.
        let p = unsafe { CStr::from_ptr(dpdk_sys::rte_eal_get_runtime_dir()) };
        std::path::PathBuf::from(p.to_string_lossy().into_owned())
    }

    /// Probes a virtual device after start (hotplug), e.g.
    /// `net_tap0,iface=sl-client,mac=02:00:00:00:00:01`.
    pub fn probe_vdev(&self, devargs: &str) -> Result<()> {
        let c = CString::new(devargs)
            .map_err(|_| DpdkError::other("rte_dev_probe", "devargs contain NUL"))?;
        // SAFETY: c is a valid C string for the call; the EAL is initialised.
        let rc = unsafe { dpdk_sys::rte_dev_probe(c.as_ptr()) };
        if rc < 0 {
            return Err(DpdkError::from_errno(
                format!("rte_dev_probe({devargs})"),
                rc,
            ));
        }
        Ok(())
    }

    /// The id of the main (control) lcore.
    pub fn main_lcore(&self) -> u32 {
        // SAFETY: valid after rte_eal_init, which `self` proves happened.
        unsafe { dpdk_sys::rte_get_main_lcore() }
    }

    /// Whether `lcore` is enabled in this EAL's core list.
    pub fn lcore_enabled(&self, lcore: u32) -> bool {
        // SAFETY: rte_lcore_is_enabled accepts any id and bounds-checks it.
        unsafe { dpdk_sys::rte_lcore_is_enabled(lcore) != 0 }
    }

    /// The NUMA socket of `lcore`.
    pub fn lcore_socket(&self, lcore: u32) -> u32 {
        // SAFETY: rte_lcore_to_socket_id bounds-checks nothing for ids past
        // RTE_MAX_LCORE, so the id is checked first.
        if lcore >= dpdk_sys::RTE_MAX_LCORE {
            return 0;
        }
        // SAFETY: lcore < RTE_MAX_LCORE, the size of the table it indexes.
        unsafe { dpdk_sys::rte_lcore_to_socket_id(lcore) }
    }
}

impl Drop for EalInner {
    fn drop(&mut self) {
        // SAFETY: the EAL was initialised (an EalInner exists only after a
        // successful rte_eal_init); this is the last handle, and every
        // mempool and port holds one, so none of them is alive any more.
        unsafe {
            dpdk_sys::rte_eal_cleanup();
        }
    }
}
