//! What `sluice --prepare` runs before a start (systemd's `ExecStartPre=`):
//! DPDK's own tools, never a reimplementation of them, and only where the
//! machine is not yet as the configuration's `[machine]` section asks.

use super::{full_pci_address, Machine};
use crate::config::{Config, Device};
use std::fmt;

/// One command to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrepareCommand {
    /// Why.
    pub why: String,
    /// Program and arguments.
    pub argv: Vec<String>,
}

impl fmt::Display for PrepareCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.argv.join(" "))
    }
}

fn command(why: String, argv: &[&str]) -> PrepareCommand {
    PrepareCommand {
        why,
        argv: argv.iter().map(|s| s.to_string()).collect(),
    }
}

/// The commands that bring `m` to what `cfg` asks, in order.
pub fn prepare_commands(cfg: &Config, m: &Machine) -> Vec<PrepareCommand> {
    let mut out = Vec::new();
    if let (false, Some(mb)) = (cfg.eal.no_huge, cfg.machine.hugepages_mb) {
        let size = cfg.machine.hugepage_size.as_ref();
        let reserved_kb: u64 = m
            .hugepages
            .iter()
            .filter(|p| size.is_none_or(|(_, kb)| *kb == p.size_kb))
            .map(|p| p.total * p.size_kb)
            .sum();
        if reserved_kb < u64::from(mb) * 1024 || !m.hugetlbfs_mounted {
            let amount = format!("{mb}M");
            let mut argv = vec!["dpdk-hugepages.py"];
            if let Some((name, _)) = size {
                argv.extend(["-p", name.as_str()]);
            }
            if !m.hugetlbfs_mounted {
                argv.push("--mount");
            }
            argv.extend(["--reserve", amount.as_str()]);
            out.push(command(
                format!("reserve {mb} MiB of hugepages (machine.hugepages_mb)"),
                &argv,
            ));
        }
    }
    let driver = cfg.machine.pci_driver.as_str();
    let mut loaded = false;
    for port in &cfg.ports {
        let Device::Pci(addr) = &port.device else {
            continue;
        };
        let addr = full_pci_address(addr);
        // A device that is not there is for `--check` to report.
        match m.pci.get(&addr) {
            None => continue,
            Some(Some(d)) if d == driver => continue,
            Some(_) => {}
        }
        if !loaded {
            out.push(command(format!("load {driver}"), &["modprobe", driver]));
            loaded = true;
        }
        let bind = format!("--bind={driver}");
        out.push(command(
            format!("bind port {} to {driver}", port.name),
            &["dpdk-devbind.py", bind.as_str(), addr.as_str()],
        ));
    }
    out
}
