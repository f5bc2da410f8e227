//! The `[machine]` section: the hugepages to reserve and the driver to bind
//! PCI ports to before the daemon starts. `sluice --prepare` does both with
//! DPDK's own tools (`dpdk-hugepages.py`, `dpdk-devbind.py`); `sluice
//! --check` compares the machine with them.

use super::raw::RawMachine;
use super::refusal::{refuse, Refusal};

/// Drivers a PCI port can be bound to for DPDK to drive it.
pub const PCI_DRIVERS: [&str; 3] = ["vfio-pci", "uio_pci_generic", "igb_uio"];

/// Hugepage sizes `hugepage_size` may name, with their size in KiB.
const SIZES: [(&str, u64); 2] = [("2M", 2048), ("1G", 1 << 20)];

/// Machine preparation settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineConfig {
    /// Hugepage memory to reserve, MiB (`None`: leave the machine's).
    pub hugepages_mb: Option<u32>,
    /// Hugepage size to reserve, as `dpdk-hugepages.py -p` takes it
    /// (`None`: the machine's default size).
    pub hugepage_size: Option<(String, u64)>,
    /// Driver PCI ports are bound to.
    pub pci_driver: String,
}

/// Checks `[machine]`.
pub(super) fn validate(raw: &RawMachine) -> Result<MachineConfig, Refusal> {
    if raw.hugepages_mb == Some(0) {
        return refuse(
            "machine.hugepages_mb",
            "0 reserves nothing; leave it out, or set eal.no_huge",
        );
    }
    let hugepage_size = match raw.hugepage_size.as_deref() {
        None => None,
        Some(s) => match SIZES.iter().find(|(name, _)| name.eq_ignore_ascii_case(s)) {
            Some((name, kb)) => Some((name.to_string(), *kb)),
            None => {
                return refuse(
                    "machine.hugepage_size",
                    format!("{s:?} is not a hugepage size: \"2M\" or \"1G\""),
                )
            }
        },
    };
    let pci_driver = raw.pci_driver.as_deref().unwrap_or(PCI_DRIVERS[0]);
    if !PCI_DRIVERS.contains(&pci_driver) {
        return refuse(
            "machine.pci_driver",
            format!(
                "{pci_driver:?} is not a DPDK driver: one of {}",
                PCI_DRIVERS.join(", ")
            ),
        );
    }
    Ok(MachineConfig {
        hugepages_mb: raw.hugepages_mb,
        hugepage_size,
        pci_driver: pci_driver.to_string(),
    })
}
