//! The `[eal]` section and the EAL arguments a configuration implies.

use super::dataplane::DataplaneConfig;
use super::ports::{Device, PortConfig};
use super::raw::RawEal;
use super::refusal::{refuse, Refusal};

/// EAL settings.
#[derive(Debug, Clone, PartialEq)]
pub struct EalConfig {
    /// Run without hugepages.
    pub no_huge: bool,
    /// Unlink hugepage files once mapped (default): nothing is left in
    /// hugetlbfs after exit, but secondary processes cannot attach.
    pub huge_unlink: bool,
    /// Memory to reserve in MiB (`-m`).
    pub memory_mb: Option<u32>,
    /// Runtime file prefix (`--file-prefix`).
    pub file_prefix: Option<String>,
    /// Explicit lcore-to-CPU map (`--lcores`), else `-l` from the lcores.
    pub lcores: Option<String>,
    /// Further EAL arguments, passed as they are.
    pub extra_args: Vec<String>,
}

/// Checks `[eal]`.
pub(super) fn validate(raw: &RawEal) -> Result<EalConfig, Refusal> {
    if let Some(fp) = &raw.file_prefix {
        if fp.is_empty() || fp.contains('/') {
            return refuse(
                "eal.file_prefix",
                format!("{fp:?} must be a non-empty name without '/'"),
            );
        }
    }
    Ok(EalConfig {
        no_huge: raw.no_huge,
        huge_unlink: raw.huge_unlink.unwrap_or(true),
        memory_mb: raw.memory_mb,
        file_prefix: raw.file_prefix.clone(),
        lcores: raw.lcores.clone(),
        extra_args: raw.extra_args.clone(),
    })
}

/// The EAL arguments for these settings, lcores and ports.
pub(super) fn args(eal: &EalConfig, d: &DataplaneConfig, ports: &[PortConfig]) -> Vec<String> {
    let mut a: Vec<String> = Vec::new();
    match &eal.lcores {
        Some(map) => a.extend(["--lcores".into(), map.clone()]),
        None => {
            let lcores = std::iter::once(d.main_lcore).chain(d.workers.iter().copied());
            let list: Vec<String> = lcores.map(|l| l.to_string()).collect();
            a.extend(["-l".into(), list.join(",")]);
        }
    }
    a.extend(["--main-lcore".into(), d.main_lcore.to_string()]);
    if eal.no_huge {
        a.push("--no-huge".into());
    } else if eal.huge_unlink {
        // Unlink hugepage files as soon as they are mapped: nothing is
        // left in hugetlbfs after the daemon exits, even if it crashes.
        a.push("--huge-unlink".into());
    }
    if let Some(m) = eal.memory_mb {
        a.extend(["-m".into(), m.to_string()]);
    }
    if let Some(fp) = &eal.file_prefix {
        a.extend(["--file-prefix".into(), fp.clone()]);
    }
    for p in ports {
        match &p.device {
            Device::Pci(addr) => a.extend(["-a".into(), addr.clone()]),
            Device::Vdev { args, .. } => a.extend(["--vdev".into(), args.clone()]),
        }
    }
    if !ports.iter().any(|p| matches!(p.device, Device::Pci(_))) {
        a.push("--no-pci".into());
    }
    a.extend(eal.extra_args.iter().cloned());
    a
}
