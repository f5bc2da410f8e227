//! The immutable configuration a worker runs with, published by the
//! control thread and switched whole between bursts.

use crate::ingress::{Martians, Martians6};
use crate::model::{Drain, ServiceTable, SlottedService};
use crate::route::RouteTable;
use sluice_core::local::LocalPort;
use sluice_core::{Ipv4Prefix, Ipv6Prefix, MacAddr};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
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
    /// Its own IPv6 addresses.
    pub addresses6: Vec<Ipv6Prefix>,
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

    /// The IPv6 address to send from towards `dst` on this port: the one
    /// whose prefix holds `dst`, else the first, else :: (a duplicate
    /// address probe's source).
    pub fn source_for6(&self, dst: Ipv6Addr) -> Ipv6Addr {
        self.addresses6
            .iter()
            .find(|a| a.contains(dst))
            .or(self.addresses6.first())
            .map(|a| a.addr)
            .unwrap_or(Ipv6Addr::UNSPECIFIED)
    }
}

/// How tunnel-mode reals are reached (the `[tunnel]` section).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TunnelView {
    /// The outer source address towards IPv4 reals; None: the address of
    /// the port the route to the real leaves by.
    pub source: Option<Ipv4Addr>,
    /// The outer source address towards IPv6 reals; None: the port's.
    pub source6: Option<Ipv6Addr>,
    /// The UDP port GUE reals receive on.
    pub gue_port: u16,
    /// The largest packet, outer header included, the path to the reals
    /// carries: a client packet that would not fit once encapsulated is
    /// refused with fragmentation needed (packet too big). A packet grown
    /// by a PROXY protocol header must fit it too, and the MSS a real
    /// offers a PROXY-protocol client is kept below what it leaves.
    pub mtu: u16,
}

impl TunnelView {
    /// The MTU when the configuration sets none: Ethernet's.
    pub const DEFAULT_MTU: u16 = 1500;
}

impl Default for TunnelView {
    fn default() -> TunnelView {
        TunnelView {
            source: None,
            source6: None,
            gue_port: sluice_core::tunnel::DEFAULT_GUE_PORT,
            mtu: TunnelView::DEFAULT_MTU,
        }
    }
}

/// Everything a worker needs to forward.
#[derive(Debug)]
pub struct Snapshot {
    /// By port index.
    pub ports: Vec<PortView>,
    /// Services.
    pub services: Arc<ServiceTable>,
    /// IPv6 services.
    pub services6: Arc<ServiceTable<Ipv6Addr>>,
    /// Routes.
    pub routes: Arc<RouteTable>,
    /// IPv6 routes (none unless [`Snapshot::with_routes6`] gives them).
    pub routes6: Arc<RouteTable<Ipv6Addr>>,
    /// Sources no received packet may carry.
    pub martians: Martians,
    /// IPv6 sources no received packet may carry.
    pub martians6: Martians6,
    /// How tunnel-mode reals are reached.
    pub tunnel: TunnelView,
}

impl Snapshot {
    /// Builds a complete snapshot: the service table (which validates every
    /// service; any error refuses the change), then each port answering
    /// ARP and ICMP echo for its own addresses, every VIP and every local
    /// address, and the
    /// martian sources of this configuration.
    pub fn build(
        services: &[SlottedService],
        drains: &[Drain],
        ports: &[PortBase],
        routes: &Arc<RouteTable>,
    ) -> Result<Snapshot, String> {
        let table: ServiceTable = ServiceTable::build(services, drains)?;
        let table6 = ServiceTable::<Ipv6Addr>::build(services, drains)?;
        // A local address is the appliance's for full NAT alone: a port's
        // own address belongs to the port (and its kernel interface).
        for p in ports {
            let own = p.addresses.iter().map(|a| IpAddr::V4(a.addr));
            let own6 = p.addresses6.iter().map(|a| IpAddr::V6(a.addr));
            if let Some(a) = own.chain(own6).find(|a| match a {
                IpAddr::V4(v) => table.is_local_address(*v),
                IpAddr::V6(v) => table6.is_local_address(*v),
            }) {
                return Err(format!(
                    "{a} is a port's own address: a local address must be one of its own"
                ));
            }
        }
        // Local addresses (full NAT) are the appliance's as VIPs are:
        // answered for on every port, never a source it receives.
        let vips = [table.vips(), table.local_addresses()].concat();
        let vips6 = [table6.vips(), table6.local_addresses()].concat();
        let all6: Vec<Ipv6Addr> = ports
            .iter()
            .flat_map(|p| p.addresses6.iter().map(|a| a.addr))
            .collect();
        let martians6 = Martians6::new(&all6, &vips6);
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
                let mut addrs6: Vec<_> = p.addresses6.iter().map(|a| a.addr).collect();
                addrs6.extend_from_slice(&vips6);
                PortView {
                    local: LocalPort::new(p.mac, &addrs).with_ipv6(&addrs6),
                    mac: p.mac,
                    addresses: p.addresses.clone(),
                    addresses6: p.addresses6.clone(),
                    kernel: p.kernel,
                }
            })
            .collect();
        Ok(Snapshot {
            ports,
            services: Arc::new(table),
            services6: Arc::new(table6),
            routes: routes.clone(),
            routes6: Arc::new(RouteTable::default()),
            martians,
            martians6,
            tunnel: TunnelView::default(),
        })
    }

    /// The same snapshot with these tunnel settings.
    pub fn with_tunnel(mut self, tunnel: TunnelView) -> Snapshot {
        self.tunnel = tunnel;
        self
    }

    /// The same snapshot with IPv6 routes.
    pub fn with_routes6(mut self, routes6: &Arc<RouteTable<Ipv6Addr>>) -> Snapshot {
        self.routes6 = routes6.clone();
        self
    }
}
