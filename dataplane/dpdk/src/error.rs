//! The error type of the DPDK layer: which call failed and DPDK's reason.

use std::ffi::CStr;

/// A failed DPDK call.
#[derive(Debug, thiserror::Error)]
#[error("{op} failed: {reason} (errno {errno})")]
pub struct DpdkError {
    /// The operation that failed, e.g. `rte_eth_dev_configure(port 0)`.
    pub op: String,
    /// The positive errno value DPDK reported.
    pub errno: i32,
    /// DPDK's text for that errno.
    pub reason: String,
}

/// Result of a DPDK-layer operation.
pub type Result<T> = std::result::Result<T, DpdkError>;

impl DpdkError {
    /// Builds an error from a (positive or negative) errno.
    pub fn from_errno(op: impl Into<String>, errno: i32) -> Self {
        let errno = errno.abs();
        // SAFETY: rte_strerror accepts any int and returns a pointer to a
        // static or thread-local NUL-terminated string that outlives this call.
        let reason = unsafe { CStr::from_ptr(dpdk_sys::rte_strerror(errno)) }
            .to_string_lossy()
            .into_owned();
        DpdkError {
            op: op.into(),
            errno,
            reason,
        }
    }

    /// Builds an error from `rte_errno` after a call that signals failure
    /// through it (returning NULL or -1).
    pub fn last(op: impl Into<String>) -> Self {
        // SAFETY: reading the calling thread's rte_errno has no preconditions.
        let errno = unsafe { dpdk_sys::sluice_errno() };
        Self::from_errno(op, errno)
    }

    /// An error that did not come from DPDK's errno.
    pub fn other(op: impl Into<String>, reason: impl Into<String>) -> Self {
        DpdkError {
            op: op.into(),
            errno: libc::EINVAL,
            reason: reason.into(),
        }
    }
}

/// Turns a negative return code into an error.
pub(crate) fn check(op: impl FnOnce() -> String, rc: i32) -> Result<i32> {
    if rc < 0 {
        Err(DpdkError::from_errno(op(), rc))
    } else {
        Ok(rc)
    }
}
