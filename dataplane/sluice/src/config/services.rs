//! The `[[service]]` sections: each valid on its own, none twice, and
//! possible on this box (client-network persistence, direct-routing reals).

use super::ports::PortConfig;
use super::refusal::{refusal, refuse, Refusal};
use super::routes::{connected, connected6};
use sluice_proto::{Forward, ServiceSpec};
use std::collections::HashSet;

/// Checks the services for a box with `workers` workers and `ports`.
pub(super) fn validate(
    services: &[ServiceSpec],
    workers: usize,
    ports: &[PortConfig],
) -> Result<(), Refusal> {
    let mut keys = HashSet::new();
    for (i, svc) in services.iter().enumerate() {
        let at = format!("service[{i}]");
        sluice_lb::model::validate(svc).map_err(|e| refusal(&at, e))?;
        if !keys.insert(svc.key()) {
            return refuse(at, format!("{} is defined twice", svc.key()));
        }
        check_persistence(i, svc, workers)?;
        check_direct_routing(i, svc, ports)?;
        check_local_addresses(i, svc, ports)?;
    }
    Ok(())
}

/// A local address (full NAT) is the appliance's, as a VIP is, but not
/// one of its ports' own: replies to it belong to the connections, not to
/// the port (or its kernel interface).
fn check_local_addresses(i: usize, svc: &ServiceSpec, ports: &[PortConfig]) -> Result<(), Refusal> {
    for (k, a) in svc.local_addresses.iter().enumerate() {
        let port_own = ports.iter().any(|p| match a {
            std::net::IpAddr::V4(ip) => p.addresses.iter().any(|x| x.addr == *ip),
            std::net::IpAddr::V6(ip) => p.addresses6.iter().any(|x| x.addr == *ip),
        });
        if port_own {
            return refuse(
                format!("service[{i}].local_addresses[{k}]"),
                format!("{a} is a port's own address: a local address must be one of its own"),
            );
        }
    }
    Ok(())
}

/// Steering keeps each client address on one worker; a template for a
/// client network must not be split.
fn check_persistence(i: usize, svc: &ServiceSpec, workers: usize) -> Result<(), Refusal> {
    match svc.persistence {
        Some(p) if p.prefix_len(svc.vip) < 32 && workers > 1 => refuse(
            format!("service[{i}].persistence.netmask"),
            format!(
                "/{} groups clients, which needs a single worker (steering is per client \
                 address); use netmask = 32 or one worker",
                p.prefix_len(svc.vip)
            ),
        ),
        _ => Ok(()),
    }
}

fn check_direct_routing(i: usize, svc: &ServiceSpec, ports: &[PortConfig]) -> Result<(), Refusal> {
    for (j, r) in svc.reals.iter().enumerate() {
        let dr_off_segment = match r.ip {
            std::net::IpAddr::V4(ip) => !connected(ports, ip),
            std::net::IpAddr::V6(ip) => !connected6(ports, ip),
        };
        if r.forward == Forward::Dr && dr_off_segment {
            return refuse(
                format!("service[{i}].real[{j}]"),
                format!(
                    "{} uses direct routing but is not on a port's prefix: a DR real must \
                     share a segment with the appliance",
                    r.ip
                ),
            );
        }
    }
    Ok(())
}
