//! The `[[port]]` sections: names, devices, addresses, kernel legs.

use super::raw::RawPort;
use super::refusal::{is_plain_name, refusal, refuse, Refusal};
use sluice_core::{Ipv4Prefix, Ipv6Prefix};

/// Most ports a configuration may have.
pub const MAX_PORTS: usize = 8;

/// Where a port's device comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Device {
    /// A PCI device, by address.
    Pci(String),
    /// A virtual device: its name and its full devargs string.
    Vdev {
        /// Name, e.g. `net_af_packet0`.
        name: String,
        /// Full string, e.g. `net_af_packet0,iface=veth0`.
        args: String,
    },
}

impl Device {
    /// The name the EAL registers the port under.
    pub fn port_name(&self) -> &str {
        match self {
            Device::Pci(a) => a,
            Device::Vdev { name, .. } => name,
        }
    }

    /// The device as configured.
    pub fn describe(&self) -> &str {
        match self {
            Device::Pci(a) => a,
            Device::Vdev { args, .. } => args,
        }
    }
}

/// One port.
#[derive(Debug, Clone, PartialEq)]
pub struct PortConfig {
    /// Operator's name for it.
    pub name: String,
    /// The device.
    pub device: Device,
    /// The appliance's IPv4 addresses on it.
    pub addresses: Vec<Ipv4Prefix>,
    /// Its IPv6 addresses (answered for neighbour discovery and echo).
    pub addresses6: Vec<Ipv6Prefix>,
    /// Receive every destination MAC (default off). Whatever the device
    /// delivers, the pipeline drops frames not addressed to the port's MAC
    /// (`not_our_mac`), so this only matters for capture.
    pub promiscuous: bool,
    /// Name of the kernel interface (a DPDK tap) that gives the kernel a
    /// leg on this port's segment, carrying the port's addresses: the path
    /// health checks and management traffic take.
    pub kernel_interface: Option<String>,
}

/// Checks every `[[port]]` for a box with `workers` workers.
pub(super) fn validate(raw: &[RawPort], workers: usize) -> Result<Vec<PortConfig>, Refusal> {
    if raw.is_empty() {
        return refuse("port", "at least one [[port]] is needed");
    }
    if raw.len() > MAX_PORTS {
        return refuse(
            "port",
            format!("{} ports, at most {MAX_PORTS} are supported", raw.len()),
        );
    }
    let mut ports: Vec<PortConfig> = Vec::new();
    for (i, p) in raw.iter().enumerate() {
        let port = validate_port(i, p, workers)?;
        if ports.iter().any(|q| q.name == port.name) {
            return refuse(
                format!("port[{i}].name"),
                format!("{:?} is used by another port", p.name),
            );
        }
        let name = port.device.port_name();
        if ports.iter().any(|q| q.device.port_name() == name) {
            return refuse(
                format!("port[{i}].device"),
                format!("device {name:?} is used by another port"),
            );
        }
        ports.push(port);
    }
    Ok(ports)
}

fn validate_port(i: usize, p: &RawPort, workers: usize) -> Result<PortConfig, Refusal> {
    if !is_plain_name(&p.name) {
        return refuse(
            format!("port[{i}].name"),
            format!("{:?} must be non-empty letters, digits, '-' or '_'", p.name),
        );
    }
    if let Some(k) = &p.kernel_interface {
        if k.len() > 15 || !is_plain_name(k) {
            return refuse(
                format!("port[{i}].kernel_interface"),
                format!("{k:?} is not an interface name (1-15 letters, digits, '-', '_')"),
            );
        }
    }
    Ok(PortConfig {
        name: p.name.clone(),
        device: device(i, &p.device, workers)?,
        addresses: addresses(i, &p.addresses)?.0,
        addresses6: addresses(i, &p.addresses)?.1,
        promiscuous: p.promiscuous.unwrap_or(false),
        kernel_interface: p.kernel_interface.clone(),
    })
}

fn device(i: usize, spec: &str, workers: usize) -> Result<Device, Refusal> {
    if is_pci_address(spec) {
        return Ok(Device::Pci(spec.to_string()));
    }
    if !spec.starts_with("net_") {
        return refuse(
            format!("port[{i}].device"),
            format!(
                "{spec:?} is neither a PCI address (0000:03:00.0) nor a DPDK virtual \
                 device (net_af_packet0,iface=veth0)"
            ),
        );
    }
    let name = spec.split(',').next().unwrap_or_default().to_string();
    let mut args = spec.to_string();
    // af_packet spreads received packets over `qpairs` queues by the
    // kernel's fanout hash: give it one queue per worker.
    if name.starts_with("net_af_packet") && !args.contains("qpairs=") {
        args.push_str(&format!(",qpairs={workers}"));
    }
    Ok(Device::Vdev { name, args })
}

/// The IPv4 and the IPv6 addresses of a port, given in one list.
fn addresses(i: usize, raw: &[String]) -> Result<(Vec<Ipv4Prefix>, Vec<Ipv6Prefix>), Refusal> {
    let (mut v4, mut v6) = (Vec::new(), Vec::new());
    for (j, a) in raw.iter().enumerate() {
        let at = format!("port[{i}].addresses[{j}]");
        if a.contains(':') {
            let pfx: Ipv6Prefix = a.parse().map_err(|e: String| refusal(&at, e))?;
            let ip = pfx.addr;
            if ip.is_unspecified() || ip.is_multicast() || ip.is_loopback() {
                return refuse(at, format!("{a:?} cannot be an interface address"));
            }
            v6.push(pfx);
            continue;
        }
        let pfx: Ipv4Prefix = a.parse().map_err(|e: String| refusal(&at, e))?;
        if pfx.addr.is_unspecified() || pfx.addr.is_multicast() || pfx.addr.is_broadcast() {
            return refuse(at, format!("{a:?} cannot be an interface address"));
        }
        v4.push(pfx);
    }
    let most = sluice_core::local::MAX_ADDRESSES;
    for (n, family) in [(v4.len(), "IPv4"), (v6.len(), "IPv6")] {
        if n > most {
            return refuse(
                format!("port[{i}].addresses"),
                format!("{n} {family} addresses, at most {most} per port"),
            );
        }
    }
    Ok((v4, v6))
}

fn is_pci_address(s: &str) -> bool {
    // [dddd:]bb:dd.f with hexadecimal digits.
    let hex = |p: &str, n: usize| p.len() == n && p.chars().all(|c| c.is_ascii_hexdigit());
    let parts: Vec<&str> = s.split(':').collect();
    let (bus, devfn) = match parts.as_slice() {
        [domain, bus, devfn] if hex(domain, 4) => (*bus, *devfn),
        [bus, devfn] => (*bus, *devfn),
        _ => return false,
    };
    match devfn.split_once('.') {
        Some((dev, func)) => hex(bus, 2) && hex(dev, 2) && hex(func, 1),
        None => false,
    }
}
