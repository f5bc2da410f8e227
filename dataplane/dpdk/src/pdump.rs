//! Packet capture: initialising DPDK's pdump framework in the primary
//! process so that `dpdk-dumpcap` (a secondary process) can capture on
//! Sluice's ports. Capture taps the ports' RX/TX burst callbacks, which run
//! inside the rx/tx burst calls the workers already make.

use crate::eal::Eal;
use crate::error::{check, Result};

/// Enables capture by `dpdk-dumpcap` for the life of the process.
pub fn init(_eal: &Eal) -> Result<()> {
    // SAFETY: called once after EAL init in the primary process.
    let rc = unsafe { dpdk_sys::rte_pdump_init() };
    check(|| "rte_pdump_init".to_string(), rc).map(|_| ())
}
