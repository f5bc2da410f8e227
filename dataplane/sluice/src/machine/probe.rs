//! Reads the machine's facts from `/sys`, `/proc` and `/dev` under a root
//! directory (`/` on a real machine). Nothing here judges them.

use super::{full_pci_address, lcores::parse_cpu_list, vdev_interfaces, HugePool, Machine};
use crate::config::{Config, Device};
use std::fs;
use std::path::Path;

/// The facts the checks of `cfg` need, read under `root`.
pub fn probe(root: &Path, cfg: &Config) -> Machine {
    let read = |p: &str| fs::read_to_string(root.join(p)).unwrap_or_default();
    let mut m = Machine {
        hugepages: hugepages(root),
        hugetlbfs_mounted: read("proc/mounts")
            .lines()
            .any(|l| l.split_whitespace().nth(2) == Some("hugetlbfs")),
        cpus: parse_cpu_list(&read("sys/devices/system/cpu/online")).unwrap_or_default(),
        iommu_groups: fs::read_dir(root.join("sys/kernel/iommu_groups"))
            .map(|d| d.count())
            .unwrap_or(0),
        vfio_noiommu: read("sys/module/vfio/parameters/enable_unsafe_noiommu_mode").trim() == "Y",
        vfio_device: root.join("dev/vfio/vfio").exists(),
        ..Machine::default()
    };
    for port in &cfg.ports {
        match &port.device {
            Device::Pci(addr) => {
                let addr = full_pci_address(addr);
                let dev = root.join("sys/bus/pci/devices").join(&addr);
                if dev.exists() {
                    let driver = fs::read_link(dev.join("driver"))
                        .ok()
                        .and_then(|l| l.file_name().map(|n| n.to_string_lossy().into_owned()));
                    m.pci.insert(addr, driver);
                }
            }
            Device::Vdev { args, .. } => {
                for iface in vdev_interfaces(args) {
                    if root.join("sys/class/net").join(&iface).exists() {
                        m.interfaces.insert(iface);
                    }
                }
            }
        }
    }
    m
}

/// Every size's pool under `sys/kernel/mm/hugepages/hugepages-<N>kB`.
fn hugepages(root: &Path) -> Vec<HugePool> {
    let Ok(dir) = fs::read_dir(root.join("sys/kernel/mm/hugepages")) else {
        return Vec::new();
    };
    let number = |p: &Path| -> u64 {
        fs::read_to_string(p)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    };
    let mut pools: Vec<HugePool> = dir
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let size_kb = name
                .strip_prefix("hugepages-")?
                .strip_suffix("kB")?
                .parse()
                .ok()?;
            Some(HugePool {
                size_kb,
                total: number(&e.path().join("nr_hugepages")),
                free: number(&e.path().join("free_hugepages")),
            })
        })
        .collect();
    pools.sort_by_key(|p| p.size_kb);
    pools
}
