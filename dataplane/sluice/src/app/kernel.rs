//! A port's kernel interface: a DPDK tap with the port's MAC, brought up in
//! the kernel with the port's addresses, so that health checks and
//! management traffic have a leg on the port's segment.

use super::AppError;
use crate::config::{Config, PortConfig};
use sluice_core::MacAddr;
use sluice_dpdk::{DeviceConfig, Eal, Mempool, Port};
use std::sync::Arc;
use tracing::info;

/// Creates, configures and starts the tap `ifname` for port `index` (one
/// queue pair per worker) and gives it the port's addresses (`pc`'s, IPv4
/// and IPv6) in the kernel.
pub(super) fn open(
    eal: &Eal,
    pool: &Arc<Mempool>,
    cfg: &Config,
    index: usize,
    ifname: &str,
    mac: MacAddr,
    pc: &PortConfig,
) -> Result<Port, AppError> {
    let (addresses, addresses6) = (&pc.addresses, &pc.addresses6);
    let name = format!("net_tap{index}");
    eal.probe_vdev(&format!("{name},iface={ifname},mac={mac}"))?;
    let mut tap = Port::open(eal, &name)?;
    tap.configure(
        &DeviceConfig {
            queues: cfg.dataplane.workers.len() as u16,
            rx_desc: cfg.dataplane.rx_desc.min(512),
            tx_desc: cfg.dataplane.tx_desc.min(512),
            promiscuous: false,
            all_multicast: false,
        },
        pool,
    )?;
    tap.start()?;
    // IPv6 only where the port has IPv6 addresses (no link-local chatter
    // otherwise), never taking router advertisements, and the addresses
    // are the appliance's: no duplicate address detection.
    let v6 = if addresses6.is_empty() { "1" } else { "0" };
    for (key, value) in [("accept_ra", "0"), ("disable_ipv6", v6)] {
        let _ = std::fs::write(format!("/proc/sys/net/ipv6/conf/{ifname}/{key}"), value);
    }
    for a in addresses {
        ip(ifname, &["addr", "replace", &a.to_string(), "dev", ifname])?;
    }
    for a in addresses6 {
        ip(
            ifname,
            &[
                "-6",
                "addr",
                "replace",
                &a.to_string(),
                "dev",
                ifname,
                "nodad",
            ],
        )?;
    }
    ip(ifname, &["link", "set", ifname, "up"])?;
    info!(interface = ifname, %mac, "kernel interface up");
    Ok(tap)
}

/// Runs `ip ARGS`, failing with its error output.
fn ip(ifname: &str, args: &[&str]) -> Result<(), AppError> {
    let o = std::process::Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| AppError::Other(format!("kernel interface {ifname}: cannot run ip: {e}")))?;
    if !o.status.success() {
        return Err(AppError::Other(format!(
            "kernel interface {ifname}: ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&o.stderr).trim()
        )));
    }
    Ok(())
}
