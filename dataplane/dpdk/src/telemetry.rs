//! Commands on DPDK's telemetry socket, so `dpdk-telemetry.py` (and any
//! telemetry client) can read Sluice's own counters next to DPDK's.
//! A command answers with a dictionary of unsigned counters.

use crate::error::{check, DpdkError, Result};
use std::collections::HashMap;
use std::ffi::{CStr, CString};
use std::os::raw::{c_char, c_int};
use std::sync::{Mutex, OnceLock};

/// Produces a command's answer from its parameters (the text after the
/// comma, e.g. `1` in `/sluice/worker,1`).
pub type Handler = Box<dyn Fn(&str) -> Vec<(String, u64)> + Send + Sync>;

/// Most entries DPDK 22.11 accepts in one telemetry dictionary.
pub const MAX_ENTRIES: usize = 256;

fn handlers() -> &'static Mutex<HashMap<String, Handler>> {
    static H: OnceLock<Mutex<HashMap<String, Handler>>> = OnceLock::new();
    H.get_or_init(|| Mutex::new(HashMap::new()))
}

unsafe extern "C" fn trampoline(
    cmd: *const c_char,
    params: *const c_char,
    info: *mut dpdk_sys::rte_tel_data,
) -> c_int {
    let run = || -> Option<Vec<(CString, u64)>> {
        // SAFETY: DPDK passes the NUL-terminated command it matched.
        let cmd = unsafe { CStr::from_ptr(cmd) }
            .to_string_lossy()
            .into_owned();
        let params = if params.is_null() {
            String::new()
        } else {
            // SAFETY: when not NULL, params is a NUL-terminated string
            // valid for the duration of the callback.
            unsafe { CStr::from_ptr(params) }
                .to_string_lossy()
                .into_owned()
        };
        let map = handlers().lock().ok()?;
        let h = map.get(&cmd)?;
        Some(
            h(&params)
                .into_iter()
                .take(MAX_ENTRIES)
                .filter_map(|(k, v)| CString::new(k).ok().map(|k| (k, v)))
                .collect(),
        )
    };
    let Ok(Some(entries)) = std::panic::catch_unwind(run) else {
        return -1;
    };
    // SAFETY: info is the reply buffer DPDK passes to this callback; the
    // names are valid C strings that DPDK copies into it.
    unsafe {
        dpdk_sys::rte_tel_data_start_dict(info);
        for (k, v) in &entries {
            dpdk_sys::rte_tel_data_add_dict_u64(info, k.as_ptr(), *v);
        }
    }
    0
}

/// Registers `cmd` (e.g. `/sluice/stats`) with its help text.
pub fn register(cmd: &str, help: &str, handler: Handler) -> Result<()> {
    let c =
        CString::new(cmd).map_err(|_| DpdkError::other("telemetry register", "NUL in command"))?;
    let h =
        CString::new(help).map_err(|_| DpdkError::other("telemetry register", "NUL in help"))?;
    handlers()
        .lock()
        .map_err(|_| DpdkError::other("telemetry register", "handler table poisoned"))?
        .insert(cmd.to_string(), handler);
    // The strings are leaked: DPDK keeps the registration for the life of
    // the process (a few bytes per command).
    let (c, h): (&'static CStr, &'static CStr) = (
        Box::leak(c.into_boxed_c_str()),
        Box::leak(h.into_boxed_c_str()),
    );
    let (cp, hp) = (c.as_ptr(), h.as_ptr());
    // SAFETY: c and h are valid for the life of the process; trampoline
    // has the telemetry_cb signature and catches panics.
    let rc = unsafe { dpdk_sys::rte_telemetry_register_cmd(cp, Some(trampoline), hp) };
    check(|| format!("rte_telemetry_register_cmd({cmd})"), rc).map(|_| ())
}
