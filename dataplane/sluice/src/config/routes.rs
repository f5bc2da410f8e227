//! The `[routes]` section: the default gateway and static routes, each
//! next hop on a port's prefix.

use super::ports::PortConfig;
use super::raw::RawRoutes;
use super::refusal::{refusal, refuse, Refusal};
use sluice_core::Ipv4Prefix;
use std::net::Ipv4Addr;

/// A static route.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    /// Destination prefix.
    pub prefix: Ipv4Prefix,
    /// Next hop.
    pub via: Ipv4Addr,
}

/// Whether `ip` is inside one of the ports' address prefixes.
pub(super) fn connected(ports: &[PortConfig], ip: Ipv4Addr) -> bool {
    ports
        .iter()
        .any(|p| p.addresses.iter().any(|a| a.contains(ip)))
}

/// Checks the gateway and static routes against `ports`.
pub(super) fn validate(
    raw: &RawRoutes,
    ports: &[PortConfig],
) -> Result<(Option<Ipv4Addr>, Vec<Route>), Refusal> {
    let gateway = match &raw.gateway {
        None => None,
        Some(g) => Some(next_hop("routes.gateway", g, ports)?),
    };
    let mut routes = Vec::new();
    for (i, r) in raw.statics.iter().enumerate() {
        let prefix: Ipv4Prefix = r
            .prefix
            .parse()
            .map_err(|e: String| refusal(format!("routes.static[{i}].prefix"), e))?;
        let via = next_hop(&format!("routes.static[{i}].via"), &r.via, ports)?;
        routes.push(Route { prefix, via });
    }
    Ok((gateway, routes))
}

fn next_hop(at: &str, text: &str, ports: &[PortConfig]) -> Result<Ipv4Addr, Refusal> {
    let ip: Ipv4Addr = text
        .parse()
        .map_err(|_| refusal(at, format!("{text:?} is not an IPv4 address")))?;
    if !connected(ports, ip) {
        return refuse(at, format!("{ip} is not inside any port's address prefix"));
    }
    Ok(ip)
}
