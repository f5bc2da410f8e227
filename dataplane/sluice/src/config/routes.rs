//! The `[routes]` section: the default gateway and static routes, each
//! next hop on a port's prefix.

use super::ports::PortConfig;
use super::raw::RawRoutes;
use super::refusal::{refusal, refuse, Refusal};
use sluice_core::family::IpAddress;
use sluice_core::{Ipv4Prefix, Prefix};
use std::net::{Ipv4Addr, Ipv6Addr};

/// A static route, IPv4 or (`Route<Ipv6Addr>`) IPv6.
#[derive(Debug, Clone, PartialEq)]
pub struct Route<A = Ipv4Addr> {
    /// Destination prefix.
    pub prefix: Prefix<A>,
    /// Next hop.
    pub via: A,
}

/// The gateways and static routes of both families.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Routes {
    /// IPv4 default gateway.
    pub gateway: Option<Ipv4Addr>,
    /// IPv4 static routes.
    pub routes: Vec<Route>,
    /// IPv6 default gateway.
    pub gateway6: Option<Ipv6Addr>,
    /// IPv6 static routes.
    pub routes6: Vec<Route<Ipv6Addr>>,
}

/// Whether `ip` is inside one of the ports' address prefixes.
pub(super) fn connected(ports: &[PortConfig], ip: Ipv4Addr) -> bool {
    ports
        .iter()
        .any(|p| p.addresses.iter().any(|a| a.contains(ip)))
}

/// Whether IPv6 `ip` is inside one of the ports' IPv6 prefixes.
pub(super) fn connected6(ports: &[PortConfig], ip: Ipv6Addr) -> bool {
    ports
        .iter()
        .any(|p| p.addresses6.iter().any(|a| a.contains(ip)))
}

/// Checks the gateways and static routes against `ports`; a static route
/// is IPv6 when its prefix is.
pub(super) fn validate(raw: &RawRoutes, ports: &[PortConfig]) -> Result<Routes, Refusal> {
    let mut r = Routes::default();
    if let Some(g) = &raw.gateway {
        r.gateway = Some(next_hop("routes.gateway", g, |ip| connected(ports, ip))?);
    }
    if let Some(g) = &raw.gateway6 {
        r.gateway6 = Some(next_hop("routes.gateway6", g, |ip| connected6(ports, ip))?);
    }
    for (i, s) in raw.statics.iter().enumerate() {
        let at = |f: &str| format!("routes.static[{i}].{f}");
        if s.prefix.contains(':') {
            let prefix: Prefix<Ipv6Addr> = s
                .prefix
                .parse()
                .map_err(|e: String| refusal(at("prefix"), e))?;
            let via = next_hop(&at("via"), &s.via, |ip| connected6(ports, ip))?;
            r.routes6.push(Route { prefix, via });
        } else {
            let prefix: Ipv4Prefix = s
                .prefix
                .parse()
                .map_err(|e: String| refusal(at("prefix"), e))?;
            let via = next_hop(&at("via"), &s.via, |ip| connected(ports, ip))?;
            r.routes.push(Route { prefix, via });
        }
    }
    Ok(r)
}

fn next_hop<A: IpAddress + std::str::FromStr>(
    at: &str,
    text: &str,
    connected: impl Fn(A) -> bool,
) -> Result<A, Refusal> {
    let family = if A::BITS == 32 { "IPv4" } else { "IPv6" };
    let ip: A = text
        .parse()
        .map_err(|_| refusal(at, format!("{text:?} is not an {family} address")))?;
    if !connected(ip) {
        return refuse(at, format!("{ip} is not inside any port's address prefix"));
    }
    Ok(ip)
}
