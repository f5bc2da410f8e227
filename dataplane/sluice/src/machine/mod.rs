//! The machine under the daemon: what `sluice --check` finds wanting
//! before a start (hugepages, devices and their drivers, CPUs for the
//! lcores, the IOMMU and vfio) and what `sluice --prepare` sets up with
//! DPDK's own tools.
//!
//! [`Machine`] holds the facts, read from `/sys`, `/proc` and `/dev` by
//! [`probe`] under a root directory (so tests give it a made-up tree);
//! [`check`] judges them against a configuration on plain data; [`prepare`]
//! says which commands bring the machine to what the configuration asks.

mod check;
mod lcores;
mod prepare;
mod probe;

pub use check::{check, Finding, Level};
pub use lcores::{parse_cpu_list, parse_lcore_map};
pub use prepare::{prepare_commands, PrepareCommand};
pub use probe::probe;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

/// One hugepage size's pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HugePool {
    /// Page size in KiB.
    pub size_kb: u64,
    /// Pages reserved.
    pub total: u64,
    /// Pages free.
    pub free: u64,
}

/// What the checks need to know about the machine.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Machine {
    /// Hugepage pools, one per size.
    pub hugepages: Vec<HugePool>,
    /// Whether a hugetlbfs is mounted.
    pub hugetlbfs_mounted: bool,
    /// Online CPUs.
    pub cpus: BTreeSet<u32>,
    /// The configured PCI devices that exist, with their driver, if bound.
    pub pci: BTreeMap<String, Option<String>>,
    /// The configured kernel interfaces (of `net_af_packet`, `net_pcap`
    /// vdevs) that exist.
    pub interfaces: BTreeSet<String>,
    /// IOMMU groups the kernel made (0: no IOMMU, or it is off).
    pub iommu_groups: usize,
    /// vfio's unsafe no-IOMMU mode is on.
    pub vfio_noiommu: bool,
    /// `/dev/vfio/vfio` exists (the vfio modules are loaded).
    pub vfio_device: bool,
}

impl Machine {
    /// Free hugepage memory in KiB, of `size_kb` pages or of every size.
    pub fn free_hugepage_kb(&self, size_kb: Option<u64>) -> u64 {
        self.hugepages
            .iter()
            .filter(|p| size_kb.is_none_or(|s| s == p.size_kb))
            .map(|p| p.free * p.size_kb)
            .sum()
    }
}

/// A PCI address in its full form (`0000:03:00.0`): the domain is added to
/// a short one (`03:00.0`), as `/sys/bus/pci/devices` names them.
pub fn full_pci_address(addr: &str) -> String {
    if addr.matches(':').count() == 1 {
        format!("0000:{}", addr.to_ascii_lowercase())
    } else {
        addr.to_ascii_lowercase()
    }
}

/// The kernel interfaces a vdev's arguments name (`iface=`, `rx_iface=`,
/// `tx_iface=`, `rx_iface_in=`), for the vdevs that attach to one.
pub fn vdev_interfaces(args: &str) -> Vec<String> {
    let mut parts = args.split(',');
    let name = parts.next().unwrap_or("");
    if !(name.starts_with("net_af_packet") || name.starts_with("net_pcap")) {
        return Vec::new();
    }
    parts
        .filter_map(|kv| kv.split_once('='))
        .filter(|(k, _)| matches!(*k, "iface" | "rx_iface" | "tx_iface" | "rx_iface_in"))
        .map(|(_, v)| v.to_string())
        .collect()
}
