//! The immutable configuration a worker runs with, published by the
//! control thread and switched whole between bursts.

use crate::ingress::Martians;
use crate::model::{Drain, ServiceTable, SlottedService};
use crate::route::RouteTable;
use sluice_core::local::LocalPort;
use sluice_core::{Ipv4Prefix, Ipv6Prefix, MacAddr};
use std::net::Ipv4Addr;
use std::sync::Arc;

/// A port's fixed identity, from the configuration.
#[derive(Debug, Clone)]
pub struct PortBase {
    /// MAC address.
    pub mac: MacAddr,
    /// The appliance's addresses on it.
    pub addresses: Vec<Ipv4Prefix>,
    /// Its IPv6 addresses: answered for neighbour discovery and echo.
    pub addresses6: Vec<Ipv6Prefix>,
    /// Whether the kernel has an interface on it (exception path).
    pub kernel: bool,
}

/// One port as the pipeline sees it.
#[derive(Debug, Clone)]
pub struct PortView {
    /// Its MAC and the addresses it answers ARP and ICMP echo for (its own
    /// addresses and every VIP), and the IPv6 addresses it answers
    /// neighbour discovery and ICMPv6 echo for.
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
    /// Sources no received packet may carry.
    pub martians: Martians,
}

impl Snapshot {
    /// Builds a complete snapshot: the service table (which validates every
    /// service; any error refuses the change), then each port answering
    /// ARP and ICMP echo for its own addresses and every VIP, and the
    /// martian sources of this configuration.
    pub fn build(
        services: &[SlottedService],
        drains: &[Drain],
        ports: &[PortBase],
        routes: &Arc<RouteTable>,
    ) -> Result<Snapshot, String> {
        let table = ServiceTable::build(services, drains)?;
        let vips = table.vips().to_vec();
        let all_addresses: Vec<Ipv4Prefix> = ports
            .iter()
            .flat_map(|p| p.addresses.iter().copied())
            .collect();
        let martians = Martians::new(&all_addresses, &vips);
        let ports = ports
            .iter()
            .map(|p| {
                let mut addrs: Vec<Ipv4Addr> = p.addresses.iter().map(|a| a.addr).collect();
                addrs.extend_from_slice(&vips);
                let addrs6: Vec<_> = p.addresses6.iter().map(|a| a.addr).collect();
                PortView {
                    local: LocalPort::new(p.mac, &addrs).with_ipv6(&addrs6),
                    mac: p.mac,
                    addresses: p.addresses.clone(),
                    kernel: p.kernel,
                }
            })
            .collect();
        Ok(Snapshot {
            ports,
            services: Arc::new(table),
            routes: routes.clone(),
            martians,
        })
    }
}
