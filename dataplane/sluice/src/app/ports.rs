//! Bringing up the ports: each configured device opened, given one queue
//! pair per worker and started, with its kernel interface (a DPDK tap) when
//! it has one; and closing them again.

use super::AppError;
use crate::config::{Config, PortConfig};
use crate::inventory::{PortEntry, Ports};
use crate::worker::PortQueues;
use sluice_core::MacAddr;
use sluice_dpdk::{DeviceConfig, Eal, Mempool, Port, QueuePair};
use sluice_lb::{PortBase, RouteTable};
use std::net::Ipv6Addr;
use std::sync::Arc;
use tracing::{error, info};

impl Ports {
    /// Opens, configures and starts every configured port.
    pub(super) fn open(eal: &Eal, pool: &Arc<Mempool>, cfg: &Config) -> Result<Ports, AppError> {
        let mut entries = Vec::new();
        for pc in &cfg.ports {
            entries.push(open_port(eal, pool, cfg, pc, entries.len())?);
        }
        Ok(Ports { entries })
    }

    /// How many there are.
    /// What the forwarder knows of each port.
    pub(super) fn bases(&self) -> Vec<PortBase> {
        self.entries
            .iter()
            .map(|e| PortBase {
                mac: e.mac,
                addresses: e.addresses.clone(),
                addresses6: e.addresses6.clone(),
                kernel: e.kernel.is_some(),
            })
            .collect()
    }

    /// The IPv6 connected prefixes of every port, then the IPv6 routes.
    pub(super) fn routes6(&self, cfg: &Config) -> Result<RouteTable<Ipv6Addr>, AppError> {
        let connected: Vec<_> = self
            .entries
            .iter()
            .enumerate()
            .flat_map(|(i, e)| e.addresses6.iter().map(move |a| (i, *a)))
            .collect();
        let statics: Vec<_> = cfg.routes6.iter().map(|r| (r.prefix, r.via)).collect();
        RouteTable::new(&connected, &statics, cfg.gateway6).map_err(AppError::Other)
    }

    /// The connected prefixes of every port, then the configured routes.
    pub(super) fn routes(&self, cfg: &Config) -> Result<RouteTable, AppError> {
        let connected: Vec<_> = self
            .entries
            .iter()
            .enumerate()
            .flat_map(|(i, e)| e.addresses.iter().map(move |a| (i, *a)))
            .collect();
        let statics: Vec<_> = cfg.routes.iter().map(|r| (r.prefix, r.via)).collect();
        RouteTable::new(&connected, &statics, cfg.gateway).map_err(AppError::Other)
    }

    /// Every port's queues, dealt out: entry `w` holds worker `w`'s queues
    /// on every port, in port order. Once per run: queues are handed out
    /// once.
    pub(super) fn queues_by_worker(
        &self,
        workers: usize,
    ) -> Result<Vec<Vec<PortQueues<'_>>>, AppError> {
        let mut dealt: Vec<Vec<PortQueues<'_>>> = (0..workers).map(|_| Vec::new()).collect();
        for e in &self.entries {
            let mut kernel: Vec<Option<QueuePair<'_>>> = match &e.kernel {
                Some(k) => k.queues()?.into_iter().map(Some).collect(),
                None => (0..workers).map(|_| None).collect(),
            };
            kernel.resize_with(workers, || None);
            for ((pair, kernel), mine) in e.port.queues()?.into_iter().zip(kernel).zip(&mut dealt) {
                mine.push(PortQueues {
                    rx: pair.rx,
                    tx: pair.tx,
                    kernel,
                });
            }
        }
        Ok(dealt)
    }

    /// Stops every kernel interface and port; dropping them closes them,
    /// which returns the mbufs their drivers held.
    pub(super) fn stop(&mut self) {
        for e in &mut self.entries {
            if let Some(k) = &mut e.kernel {
                if let Err(err) = k.stop() {
                    error!(port = %e.name, "kernel interface stop failed: {err}");
                }
            }
            if let Err(err) = e.port.stop() {
                error!(port = %e.name, "stop failed: {err}");
            }
        }
    }
}

fn open_port(
    eal: &Eal,
    pool: &Arc<Mempool>,
    cfg: &Config,
    pc: &PortConfig,
    index: usize,
) -> Result<PortEntry, AppError> {
    let queues = cfg.dataplane.workers.len() as u16;
    let mut port = Port::open(eal, pc.device.port_name())?;
    let info = port.info()?;
    let rss = port.configure(
        &DeviceConfig {
            queues,
            rx_desc: cfg.dataplane.rx_desc,
            tx_desc: cfg.dataplane.tx_desc,
            promiscuous: pc.promiscuous,
            all_multicast: !pc.addresses6.is_empty(),
        },
        pool,
    )?;
    port.start()?;
    let mac = MacAddr(port.mac()?);
    let kernel = match &pc.kernel_interface {
        Some(ifname) => Some(super::kernel::open(eal, pool, cfg, index, ifname, mac, pc)?),
        None => None,
    };
    info!(port = %pc.name, device = %pc.device.describe(), driver = %info.driver, %mac, rss, "port started");
    Ok(PortEntry {
        port,
        kernel,
        name: pc.name.clone(),
        device: pc.device.describe().to_string(),
        driver: info.driver,
        mac,
        addresses: pc.addresses.clone(),
        addresses6: pc.addresses6.clone(),
        queues,
        rss,
    })
}
