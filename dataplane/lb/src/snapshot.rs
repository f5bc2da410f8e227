//! The immutable configuration a worker runs with, published by the
//! control thread and switched whole between bursts.

use crate::model::ServiceTable;
use crate::route::RouteTable;
use sluice_core::local::LocalPort;
use sluice_core::MacAddr;
use std::sync::Arc;

/// One port as the pipeline sees it.
#[derive(Debug, Clone)]
pub struct PortView {
    /// Its MAC and the addresses it answers ARP and ICMP echo for (its own
    /// addresses and every VIP).
    pub local: LocalPort,
    /// Its MAC.
    pub mac: MacAddr,
    /// Its own addresses (not the VIPs), with prefix lengths.
    pub addresses: Vec<sluice_core::Ipv4Prefix>,
    /// Whether the kernel has an interface on this port (exception path):
    /// frames for the port's address that the dataplane does not answer go
    /// up to it, and what it sends goes out of the port.
    pub kernel: bool,
}

impl PortView {
    /// The address to send from towards `dst` on this port: the one whose
    /// prefix holds `dst`, else the first, else 0.0.0.0 (an ARP probe).
    pub fn source_for(&self, dst: std::net::Ipv4Addr) -> std::net::Ipv4Addr {
        self.addresses
            .iter()
            .find(|a| a.contains(dst))
            .or(self.addresses.first())
            .map(|a| a.addr)
            .unwrap_or(std::net::Ipv4Addr::UNSPECIFIED)
    }
}

/// Everything a worker needs to forward.
#[derive(Debug)]
pub struct Snapshot {
    /// By port index.
    pub ports: Vec<PortView>,
    /// Services.
    pub services: Arc<ServiceTable>,
    /// Routes.
    pub routes: Arc<RouteTable>,
}
