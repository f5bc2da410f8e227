//! Judges the machine against a configuration: every finding says what was
//! looked at and, when it is wanting, what to run.

use super::{full_pci_address, lcores::parse_lcore_map, vdev_interfaces, Machine};
use crate::config::{Config, Device, PCI_DRIVERS};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// How a finding bears on a start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// As the configuration needs.
    Ok,
    /// Works, but not as it should run in production.
    Warn,
    /// The daemon would not start (or not run) as configured.
    Fail,
}

/// One thing `--check` looked at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Ok, warning or failure.
    pub level: Level,
    /// What was found.
    pub what: String,
    /// What to run (or change) about it.
    pub fix: Option<String>,
}

impl Finding {
    fn ok(what: impl Into<String>) -> Finding {
        Finding {
            level: Level::Ok,
            what: what.into(),
            fix: None,
        }
    }

    fn wanting(level: Level, what: impl Into<String>, fix: impl Into<String>) -> Finding {
        Finding {
            level,
            what: what.into(),
            fix: Some(fix.into()),
        }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tag = match self.level {
            Level::Ok => "ok  ",
            Level::Warn => "warn",
            Level::Fail => "FAIL",
        };
        write!(f, "{tag}  {}", self.what)?;
        if let Some(fix) = &self.fix {
            write!(f, "\n      fix: {fix}")?;
        }
        Ok(())
    }
}

/// Everything about `m` that bears on running `cfg`.
pub fn check(cfg: &Config, m: &Machine) -> Vec<Finding> {
    let mut out = hugepages(cfg, m);
    out.extend(lcores(cfg, m));
    out.extend(devices(cfg, m));
    out.extend(iommu(cfg, m));
    out
}

fn hugepages(cfg: &Config, m: &Machine) -> Vec<Finding> {
    if cfg.eal.no_huge {
        return vec![Finding::wanting(
            Level::Warn,
            "hugepages: not used (eal.no_huge): fine for tests, slower and not for production",
            "set [machine] hugepages_mb, run `sluice --prepare`, and remove eal.no_huge",
        )];
    }
    let mut out = Vec::new();
    let size = cfg.machine.hugepage_size.as_ref();
    let p = size.map_or(String::new(), |(name, _)| format!("-p {name} "));
    let need = cfg.eal.memory_mb.or(cfg.machine.hugepages_mb);
    let reserve = need.unwrap_or(1024);
    if !m.hugetlbfs_mounted {
        out.push(Finding::wanting(
            Level::Fail,
            "hugepages: no hugetlbfs is mounted",
            format!("dpdk-hugepages.py {p}--setup {reserve}M (or `sluice --prepare`)"),
        ));
    }
    let free_mb = m.free_hugepage_kb(size.map(|(_, kb)| *kb)) / 1024;
    let pages = size.map_or("hugepages".to_string(), |(n, _)| format!("{n} hugepages"));
    match need {
        Some(need) if free_mb < u64::from(need) => out.push(Finding::wanting(
            Level::Fail,
            format!("hugepages: {free_mb} MiB of {pages} free, {need} MiB needed"),
            format!("dpdk-hugepages.py {p}--reserve {need}M (or `sluice --prepare`)"),
        )),
        None if free_mb == 0 => out.push(Finding::wanting(
            Level::Fail,
            format!("hugepages: none free ({pages})"),
            format!("dpdk-hugepages.py {p}--setup {reserve}M, and set eal.memory_mb"),
        )),
        _ => out.push(Finding::ok(format!(
            "hugepages: {free_mb} MiB of {pages} free{}",
            need.map_or(String::new(), |n| format!(", {n} MiB needed"))
        ))),
    }
    out
}

/// Each lcore's CPUs: the map's, else the lcore's own number.
fn lcore_cpus(cfg: &Config) -> Option<BTreeMap<u32, BTreeSet<u32>>> {
    match &cfg.eal.lcores {
        Some(map) => parse_lcore_map(map),
        None => Some(
            std::iter::once(cfg.dataplane.main_lcore)
                .chain(cfg.dataplane.workers.iter().copied())
                .map(|l| (l, BTreeSet::from([l])))
                .collect(),
        ),
    }
}

fn lcores(cfg: &Config, m: &Machine) -> Vec<Finding> {
    let online = list(&m.cpus);
    let Some(map) = lcore_cpus(cfg) else {
        return vec![Finding::wanting(
            Level::Fail,
            format!(
                "lcores: cannot read the map eal.lcores = {:?}",
                cfg.eal.lcores
            ),
            "write it as DPDK's --lcores takes it, e.g. \"0@0,1@2,2@3\"",
        )];
    };
    let d = &cfg.dataplane;
    let mut out = Vec::new();
    let main_cpus = map.get(&d.main_lcore).cloned().unwrap_or_default();
    for (role, l) in
        std::iter::once(("main", d.main_lcore)).chain(d.workers.iter().map(|w| ("worker", *w)))
    {
        let Some(cpus) = map.get(&l) else {
            out.push(Finding::wanting(
                Level::Fail,
                format!("lcores: {role} lcore {l} is not in eal.lcores"),
                format!("add {l}@<cpu> to eal.lcores"),
            ));
            continue;
        };
        let missing: BTreeSet<u32> = cpus.difference(&m.cpus).copied().collect();
        if !missing.is_empty() {
            out.push(Finding::wanting(
                Level::Fail,
                format!(
                    "lcores: {role} lcore {l} on CPU {}, which this machine does not have \
                     (online: {online})",
                    list(&missing)
                ),
                "choose CPUs among the online ones (/sys/devices/system/cpu/online)",
            ));
        } else if role == "worker" && !cpus.is_disjoint(&main_cpus) {
            out.push(Finding::wanting(
                Level::Warn,
                format!(
                    "lcores: worker lcore {l} shares CPU {} with the main lcore",
                    list(cpus)
                ),
                "give each worker a CPU of its own: a polling worker starves what shares it",
            ));
        } else {
            out.push(Finding::ok(format!(
                "lcores: {role} lcore {l} on CPU {}",
                list(cpus)
            )));
        }
    }
    out
}

fn devices(cfg: &Config, m: &Machine) -> Vec<Finding> {
    let driver = &cfg.machine.pci_driver;
    let mut out = Vec::new();
    for port in &cfg.ports {
        let name = &port.name;
        match &port.device {
            Device::Pci(addr) => {
                let addr = full_pci_address(addr);
                out.push(match m.pci.get(&addr) {
                    None => Finding::wanting(
                        Level::Fail,
                        format!("port {name}: no PCI device {addr}"),
                        "dpdk-devbind.py --status lists the machine's network devices",
                    ),
                    Some(Some(d)) if PCI_DRIVERS.contains(&d.as_str()) || bifurcated(d) => {
                        Finding::ok(format!("port {name}: {addr} bound to {d}"))
                    }
                    Some(bound) => Finding::wanting(
                        Level::Fail,
                        format!(
                            "port {name}: {addr} is bound to {}, not to a DPDK driver",
                            bound.as_deref().unwrap_or("no driver")
                        ),
                        format!(
                            "modprobe {driver} && dpdk-devbind.py --bind={driver} {addr} \
                             (or `sluice --prepare`)"
                        ),
                    ),
                });
            }
            Device::Vdev { name: vdev, args } => {
                let ifaces = vdev_interfaces(args);
                let missing: Vec<&String> = ifaces
                    .iter()
                    .filter(|i| !m.interfaces.contains(*i))
                    .collect();
                out.push(if missing.is_empty() {
                    Finding::ok(format!("port {name}: virtual device {vdev}"))
                } else {
                    Finding::wanting(
                        Level::Fail,
                        format!(
                            "port {name}: {vdev} attaches to interface {}, which does not exist",
                            missing
                                .iter()
                                .map(|s| s.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                        "create it or name an existing one (ip link show)",
                    )
                });
            }
        }
    }
    out
}

/// Drivers DPDK drives in place, beside the kernel's own (Mellanox).
fn bifurcated(driver: &str) -> bool {
    matches!(driver, "mlx4_core" | "mlx5_core")
}

fn iommu(cfg: &Config, m: &Machine) -> Vec<Finding> {
    let vfio = cfg
        .ports
        .iter()
        .filter_map(|p| match &p.device {
            Device::Pci(a) => Some(full_pci_address(a)),
            Device::Vdev { .. } => None,
        })
        .any(|a| match m.pci.get(&a) {
            Some(Some(d)) if PCI_DRIVERS.contains(&d.as_str()) || bifurcated(d) => d == "vfio-pci",
            // Unbound or on a kernel driver: it will be bound to this one.
            _ => cfg.machine.pci_driver == "vfio-pci",
        });
    if !vfio {
        return Vec::new();
    }
    let mut out = Vec::new();
    if !m.vfio_device {
        out.push(Finding::wanting(
            Level::Fail,
            "vfio: /dev/vfio/vfio is missing (the vfio modules are not loaded)",
            "modprobe vfio-pci",
        ));
    }
    out.push(if m.iommu_groups > 0 {
        Finding::ok(format!("iommu: {} groups", m.iommu_groups))
    } else if m.vfio_noiommu {
        Finding::wanting(
            Level::Warn,
            "iommu: none; vfio runs in its unsafe no-IOMMU mode (no DMA protection)",
            "enable the IOMMU (intel_iommu=on or amd_iommu=on, and iommu=pt, on the kernel \
             command line)",
        )
    } else {
        Finding::wanting(
            Level::Fail,
            "iommu: no IOMMU groups, so vfio-pci cannot take a device",
            "add intel_iommu=on iommu=pt (or amd_iommu=on iommu=pt) to the kernel command \
             line and reboot; without an IOMMU: echo 1 > \
             /sys/module/vfio/parameters/enable_unsafe_noiommu_mode, or \
             [machine] pci_driver = \"uio_pci_generic\"",
        )
    });
    out
}

/// A CPU set as a list (`0, 2, 5`).
fn list(set: &BTreeSet<u32>) -> String {
    let v: Vec<String> = set.iter().map(|c| c.to_string()).collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}
