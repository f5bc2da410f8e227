//! What the EAL leaves behind a process and the daemon removes after a
//! clean stop: its runtime directory, and the hugepage files it kept linked
//! for secondary processes (`huge_unlink = false`).

use crate::config::Config;
use sluice_dpdk::Eal;
use std::path::PathBuf;
use tracing::warn;

/// Where this process's EAL files are.
pub(super) struct Leftovers {
    runtime_dir: PathBuf,
    /// The hugepage file prefix, when the files stay linked.
    hugepage_prefix: Option<String>,
}

impl Leftovers {
    /// The files `eal`, started from `cfg`, will leave.
    pub(super) fn of(cfg: &Config, eal: &Eal) -> Leftovers {
        let linked = !cfg.eal.no_huge && !cfg.eal.huge_unlink;
        let prefix = cfg.eal.file_prefix.clone().unwrap_or_else(|| "rte".into());
        Leftovers {
            runtime_dir: eal.runtime_dir(),
            hugepage_prefix: linked.then_some(prefix),
        }
    }

    /// Removes them. The runtime directory (config, memory maps, sockets)
    /// belongs to this process alone (a unique file prefix), so it goes
    /// whole.
    pub(super) fn remove(self) {
        if let Some(prefix) = &self.hugepage_prefix {
            remove_hugepage_files(prefix);
        }
        if let Err(e) = std::fs::remove_dir_all(&self.runtime_dir) {
            warn!(dir = %self.runtime_dir.display(), "cannot remove the EAL runtime directory: {e}");
        }
    }
}

/// Removes this process's hugepage files (`<prefix>map_<n>` in every
/// hugetlbfs mount).
fn remove_hugepage_files(prefix: &str) {
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    let want = format!("{prefix}map_");
    for line in mounts.lines() {
        let mut f = line.split_whitespace();
        let (Some(_), Some(dir), Some("hugetlbfs")) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        let Ok(rd) = std::fs::read_dir(dir) else {
            continue;
        };
        for e in rd.flatten() {
            let name = e.file_name();
            let ours = name
                .to_string_lossy()
                .strip_prefix(&want)
                .is_some_and(|n| n.chars().all(|c| c.is_ascii_digit()));
            if ours {
                if let Err(err) = std::fs::remove_file(e.path()) {
                    warn!(file = %e.path().display(), "cannot remove a hugepage file: {err}");
                }
            }
        }
    }
}
