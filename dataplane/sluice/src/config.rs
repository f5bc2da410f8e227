//! The daemon's TOML configuration: parsing, validation with the location
//! of every error (file, field, reason), and the EAL arguments it implies.

use serde::{Deserialize, Serialize};
use sluice_core::Ipv4Prefix;
use std::fmt;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

/// A configuration error: where it is and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file.
    pub file: PathBuf,
    /// The field (e.g. `port[0].addresses[1]`) or `line L, column C`.
    pub location: String,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {}: {}",
            self.file.display(),
            self.location,
            self.reason
        )
    }
}

impl std::error::Error for ConfigError {}

#[derive(Debug, Deserialize, Serialize, Default, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    eal: RawEal,
    dataplane: RawDataplane,
    #[serde(default)]
    control: RawControl,
    #[serde(default, rename = "port")]
    ports: Vec<RawPort>,
    #[serde(default)]
    routes: RawRoutes,
    #[serde(default)]
    timeouts: RawTimeouts,
    #[serde(default, rename = "service")]
    services: Vec<sluice_proto::ServiceSpec>,
    #[serde(default)]
    metrics: RawMetrics,
}

#[derive(Debug, Deserialize, Serialize, Default, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
struct RawTimeouts {
    #[serde(skip_serializing_if = "Option::is_none")]
    tcp_established: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tcp_syn_recv: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tcp_fin_wait: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tcp_close_wait: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tcp_time_wait: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tcp_close: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tcp_last_ack: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    udp: Option<u32>,
}

#[derive(Debug, Deserialize, Serialize, Default, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
struct RawEal {
    #[serde(default)]
    no_huge: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    huge_unlink: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    memory_mb: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    file_prefix: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lcores: Option<String>,
    #[serde(default)]
    extra_args: Vec<String>,
}

#[derive(Debug, Deserialize, Serialize, Default, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
struct RawDataplane {
    #[serde(default)]
    main_lcore: u32,
    workers: Vec<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mempool_size: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mempool_cache: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rx_desc: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tx_desc: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    burst: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    idle_sleep_us: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    idle_polls_before_sleep: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    neighbour_reachable_secs: Option<u32>,
    /// Replaced by `neighbour_reachable_secs`; refused with a pointer.
    #[serde(skip_serializing)]
    neighbour_max_age_secs: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    connections: Option<u32>,
}

#[derive(Debug, Deserialize, Serialize, Default, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
struct RawControl {
    #[serde(skip_serializing_if = "Option::is_none")]
    socket: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mode: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    group: Option<String>,
}

#[derive(Debug, Deserialize, Serialize, Default, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
struct RawMetrics {
    #[serde(default)]
    enabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    listen: Option<String>,
}

#[derive(Debug, Deserialize, Serialize, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
struct RawPort {
    name: String,
    device: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    kernel_interface: Option<String>,
    #[serde(default)]
    addresses: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    promiscuous: Option<bool>,
}

#[derive(Debug, Deserialize, Serialize, Default, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
struct RawRoutes {
    #[serde(skip_serializing_if = "Option::is_none")]
    gateway: Option<String>,
    #[serde(default, rename = "static")]
    statics: Vec<RawRoute>,
}

#[derive(Debug, Deserialize, Serialize, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    prefix: String,
    via: String,
}

/// EAL settings.
#[derive(Debug, Clone, PartialEq)]
pub struct EalConfig {
    /// Run without hugepages.
    pub no_huge: bool,
    /// Unlink hugepage files once mapped (default): nothing is left in
    /// hugetlbfs after exit, but secondary processes cannot attach.
    pub huge_unlink: bool,
    /// Memory to reserve in MiB (`-m`).
    pub memory_mb: Option<u32>,
    /// Runtime file prefix (`--file-prefix`).
    pub file_prefix: Option<String>,
    /// Explicit lcore-to-CPU map (`--lcores`), else `-l` from the lcores.
    pub lcores: Option<String>,
    /// Further EAL arguments, passed as they are.
    pub extra_args: Vec<String>,
}

/// Worker and buffer settings.
#[derive(Debug, Clone, PartialEq)]
pub struct DataplaneConfig {
    /// The control thread's lcore.
    pub main_lcore: u32,
    /// One worker per lcore listed.
    pub workers: Vec<u32>,
    /// Mbufs in the pool.
    pub mempool_size: u32,
    /// Per-lcore mempool cache.
    pub mempool_cache: u32,
    /// RX descriptors per queue.
    pub rx_desc: u16,
    /// TX descriptors per queue.
    pub tx_desc: u16,
    /// Packets per RX burst.
    pub burst: u16,
    /// Sleep this long after idle polls (0: never sleep, pure polling).
    pub idle_sleep_us: u32,
    /// Consecutive empty polls before sleeping.
    pub idle_polls_before_sleep: u32,
    /// How long an ARP answer keeps a neighbour REACHABLE (then STALE:
    /// still used, re-checked by unicast probes when used).
    pub neighbour_reachable_secs: u32,
    /// Connection-table capacity of each worker.
    pub connections: u32,
}

/// Control socket settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ControlConfig {
    /// Path of the Unix socket.
    pub socket: PathBuf,
    /// File mode of the socket.
    pub mode: u32,
    /// Group allowed to use the socket besides root (name, gid).
    pub group: Option<(String, u32)>,
}

/// Where the Prometheus/OpenMetrics endpoint listens, if enabled.
pub const DEFAULT_METRICS_LISTEN: &str = "127.0.0.1:9469";

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
    /// The appliance's addresses on it.
    pub addresses: Vec<Ipv4Prefix>,
    /// Receive every destination MAC.
    pub promiscuous: bool,
    /// Name of the kernel interface (a DPDK tap) that gives the kernel a
    /// leg on this port's segment, carrying the port's addresses: the path
    /// health checks and management traffic take.
    pub kernel_interface: Option<String>,
}

/// A static route.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    /// Destination prefix.
    pub prefix: Ipv4Prefix,
    /// Next hop.
    pub via: Ipv4Addr,
}

/// A validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The file it came from.
    pub file: PathBuf,
    /// EAL.
    pub eal: EalConfig,
    /// Workers and buffers.
    pub dataplane: DataplaneConfig,
    /// Control socket.
    pub control: ControlConfig,
    /// Ports.
    pub ports: Vec<PortConfig>,
    /// Default gateway.
    pub gateway: Option<Ipv4Addr>,
    /// Static routes.
    pub routes: Vec<Route>,
    /// Connection timeouts (milliseconds, as the connection table uses).
    pub timeouts: sluice_conntrack::Timeouts,
    /// Virtual services.
    pub services: Vec<sluice_proto::ServiceSpec>,
    /// The metrics endpoint's address, when enabled.
    pub metrics: Option<std::net::SocketAddr>,
    raw: RawConfig,
}

/// Most ports a configuration may have.
pub const MAX_PORTS: usize = 8;

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.len() - before.rfind('\n').map(|i| i + 1).unwrap_or(0) + 1;
    (line, col)
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

impl Config {
    /// Reads and validates `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.to_path_buf(),
            location: "file".into(),
            reason: format!("cannot read: {e}"),
        })?;
        Config::parse(path, &text)
    }

    /// Parses and validates `text`, reporting errors against `path`.
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let err = |location: String, reason: String| ConfigError {
            file: path.to_path_buf(),
            location,
            reason,
        };
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let location = match e.span() {
                Some(s) => {
                    let (l, c) = line_col(text, s.start);
                    format!("line {l}, column {c}")
                }
                None => "file".into(),
            };
            err(location, e.message().to_string())
        })?;

        let d = &raw.dataplane;
        if d.workers.is_empty() {
            return Err(err(
                "dataplane.workers".into(),
                "at least one worker lcore is needed".into(),
            ));
        }
        for (i, w) in d.workers.iter().enumerate() {
            if *w == d.main_lcore {
                return Err(err(
                    format!("dataplane.workers[{i}]"),
                    format!("lcore {w} is the main (control) lcore; workers need their own"),
                ));
            }
            if *w >= 128 {
                return Err(err(
                    format!("dataplane.workers[{i}]"),
                    format!("lcore {w} is past the EAL's limit of 128"),
                ));
            }
            if d.workers[..i].contains(w) {
                return Err(err(
                    format!("dataplane.workers[{i}]"),
                    format!("lcore {w} is listed twice"),
                ));
            }
        }
        let burst = d.burst.unwrap_or(32);
        if !(1..=256).contains(&burst) {
            return Err(err(
                "dataplane.burst".into(),
                format!("{burst} is not in 1..=256"),
            ));
        }
        let mempool_size = d.mempool_size.unwrap_or(8191);
        let mempool_cache = d.mempool_cache.unwrap_or(256);
        if mempool_cache > 512 {
            return Err(err(
                "dataplane.mempool_cache".into(),
                format!("{mempool_cache} is larger than DPDK's limit of 512"),
            ));
        }
        let rx_desc = d.rx_desc.unwrap_or(1024);
        let tx_desc = d.tx_desc.unwrap_or(1024);
        if raw.ports.is_empty() {
            return Err(err("port".into(), "at least one [[port]] is needed".into()));
        }
        if raw.ports.len() > MAX_PORTS {
            return Err(err(
                "port".into(),
                format!(
                    "{} ports, at most {MAX_PORTS} are supported",
                    raw.ports.len()
                ),
            ));
        }
        // Every worker needs an RX and TX queue on every port, and the
        // mempool must cover the RX rings plus bursts in flight.
        let needed = (raw.ports.len() * d.workers.len()) as u64
            * (rx_desc as u64 + burst as u64 * 2)
            + (mempool_cache as u64 * (d.workers.len() as u64 + 1));
        if (mempool_size as u64) < needed.min(1 << 20) {
            return Err(err(
                "dataplane.mempool_size".into(),
                format!(
                    "{mempool_size} mbufs cannot fill {} RX rings of {rx_desc} descriptors plus \
                     bursts and caches; use at least {needed}",
                    raw.ports.len() * d.workers.len()
                ),
            ));
        }

        let mut ports = Vec::new();
        for (i, p) in raw.ports.iter().enumerate() {
            if p.name.is_empty()
                || !p
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(err(
                    format!("port[{i}].name"),
                    format!("{:?} must be non-empty letters, digits, '-' or '_'", p.name),
                ));
            }
            if ports.iter().any(|q: &PortConfig| q.name == p.name) {
                return Err(err(
                    format!("port[{i}].name"),
                    format!("{:?} is used by another port", p.name),
                ));
            }
            let device = if is_pci_address(&p.device) {
                Device::Pci(p.device.clone())
            } else if p.device.starts_with("net_") {
                let name = p.device.split(',').next().unwrap_or_default().to_string();
                let mut args = p.device.clone();
                // af_packet spreads received packets over `qpairs` queues by
                // the kernel's fanout hash: give it one queue per worker.
                if name.starts_with("net_af_packet") && !args.contains("qpairs=") {
                    args.push_str(&format!(",qpairs={}", d.workers.len()));
                }
                Device::Vdev { name, args }
            } else {
                return Err(err(
                    format!("port[{i}].device"),
                    format!(
                        "{:?} is neither a PCI address (0000:03:00.0) nor a DPDK virtual \
                         device (net_af_packet0,iface=veth0)",
                        p.device
                    ),
                ));
            };
            if ports
                .iter()
                .any(|q: &PortConfig| q.device.port_name() == device.port_name())
            {
                return Err(err(
                    format!("port[{i}].device"),
                    format!("device {:?} is used by another port", device.port_name()),
                ));
            }
            let mut addresses = Vec::new();
            for (j, a) in p.addresses.iter().enumerate() {
                let pfx: Ipv4Prefix = a
                    .parse()
                    .map_err(|e: String| err(format!("port[{i}].addresses[{j}]"), e))?;
                if pfx.addr.is_unspecified() || pfx.addr.is_multicast() || pfx.addr.is_broadcast() {
                    return Err(err(
                        format!("port[{i}].addresses[{j}]"),
                        format!("{a:?} cannot be an interface address"),
                    ));
                }
                addresses.push(pfx);
            }
            if addresses.len() > sluice_core::local::MAX_ADDRESSES {
                return Err(err(
                    format!("port[{i}].addresses"),
                    format!(
                        "{} addresses, at most {} per port",
                        addresses.len(),
                        sluice_core::local::MAX_ADDRESSES
                    ),
                ));
            }
            if let Some(k) = &p.kernel_interface {
                if k.is_empty()
                    || k.len() > 15
                    || !k
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                {
                    return Err(err(
                        format!("port[{i}].kernel_interface"),
                        format!("{k:?} is not an interface name (1-15 letters, digits, '-', '_')"),
                    ));
                }
            }
            ports.push(PortConfig {
                name: p.name.clone(),
                device,
                addresses,
                promiscuous: p.promiscuous.unwrap_or(true),
                kernel_interface: p.kernel_interface.clone(),
            });
        }
        let connected = |ip: Ipv4Addr| {
            ports
                .iter()
                .any(|p| p.addresses.iter().any(|a| a.contains(ip)))
        };
        let gateway = match &raw.routes.gateway {
            None => None,
            Some(g) => {
                let ip: Ipv4Addr = g.parse().map_err(|_| {
                    err(
                        "routes.gateway".into(),
                        format!("{g:?} is not an IPv4 address"),
                    )
                })?;
                if !connected(ip) {
                    return Err(err(
                        "routes.gateway".into(),
                        format!("{ip} is not inside any port's address prefix"),
                    ));
                }
                Some(ip)
            }
        };
        let mut routes = Vec::new();
        for (i, r) in raw.routes.statics.iter().enumerate() {
            let prefix: Ipv4Prefix = r
                .prefix
                .parse()
                .map_err(|e: String| err(format!("routes.static[{i}].prefix"), e))?;
            let via: Ipv4Addr = r.via.parse().map_err(|_| {
                err(
                    format!("routes.static[{i}].via"),
                    format!("{:?} is not an IPv4 address", r.via),
                )
            })?;
            if !connected(via) {
                return Err(err(
                    format!("routes.static[{i}].via"),
                    format!("{via} is not inside any port's address prefix"),
                ));
            }
            routes.push(Route { prefix, via });
        }

        let metrics = if raw.metrics.enabled {
            let l = raw
                .metrics
                .listen
                .clone()
                .unwrap_or_else(|| DEFAULT_METRICS_LISTEN.into());
            Some(l.parse::<std::net::SocketAddr>().map_err(|_| {
                err(
                    "metrics.listen".into(),
                    format!("{l:?} is not an address:port such as \"127.0.0.1:9469\""),
                )
            })?)
        } else {
            None
        };
        let mut timeouts = sluice_conntrack::Timeouts::default();
        let t = &raw.timeouts;
        for (name, v, slot) in [
            (
                "tcp_established",
                t.tcp_established,
                &mut timeouts.tcp_established,
            ),
            ("tcp_syn_recv", t.tcp_syn_recv, &mut timeouts.tcp_syn_recv),
            ("tcp_fin_wait", t.tcp_fin_wait, &mut timeouts.tcp_fin_wait),
            (
                "tcp_close_wait",
                t.tcp_close_wait,
                &mut timeouts.tcp_close_wait,
            ),
            (
                "tcp_time_wait",
                t.tcp_time_wait,
                &mut timeouts.tcp_time_wait,
            ),
            ("tcp_close", t.tcp_close, &mut timeouts.tcp_close),
            ("tcp_last_ack", t.tcp_last_ack, &mut timeouts.tcp_last_ack),
            ("udp", t.udp, &mut timeouts.udp),
        ] {
            if let Some(secs) = v {
                if secs == 0 || secs > 7 * 86400 {
                    return Err(err(
                        format!("timeouts.{name}"),
                        format!("{secs} s is not in 1..=604800"),
                    ));
                }
                *slot = secs * 1000;
            }
        }
        if d.neighbour_max_age_secs.is_some() {
            return Err(err(
                "dataplane.neighbour_max_age_secs".into(),
                "neighbours no longer age out: use neighbour_reachable_secs (how long an \
                 ARP answer counts; stale neighbours are still used and re-checked)"
                    .into(),
            ));
        }
        let connections = d.connections.unwrap_or(1 << 22);
        if !(1024..=sluice_conntrack::MAX_CAPACITY).contains(&connections) {
            return Err(err(
                "dataplane.connections".into(),
                format!(
                    "{connections} is not in 1024..={}",
                    sluice_conntrack::MAX_CAPACITY
                ),
            ));
        }
        let mut keys = std::collections::HashSet::new();
        for (i, svc) in raw.services.iter().enumerate() {
            sluice_lb::model::validate(svc).map_err(|e| err(format!("service[{i}]"), e))?;
            if !keys.insert(svc.key()) {
                return Err(err(
                    format!("service[{i}]"),
                    format!("{} is defined twice", svc.key()),
                ));
            }
            if let Some(p) = svc.persistence {
                if p.netmask < 32 && d.workers.len() > 1 {
                    // Steering keeps each client address on one worker; a
                    // template for a client network must not be split.
                    return Err(err(
                        format!("service[{i}].persistence.netmask"),
                        format!(
                            "/{} groups clients, which needs a single worker (steering is \
                             per client address); use netmask = 32 or one worker",
                            p.netmask
                        ),
                    ));
                }
            }
            for (j, r) in svc.reals.iter().enumerate() {
                if r.forward == sluice_proto::Forward::Dr && !connected(r.ip) {
                    return Err(err(
                        format!("service[{i}].real[{j}]"),
                        format!(
                            "{} uses direct routing but is not on a port's prefix: a DR real \
                             must share a segment with the appliance",
                            r.ip
                        ),
                    ));
                }
            }
        }

        let group = match &raw.control.group {
            None => None,
            Some(name) => match nix::unistd::Group::from_name(name) {
                Ok(Some(g)) => Some((name.clone(), g.gid.as_raw())),
                _ => {
                    return Err(err(
                        "control.group".into(),
                        format!("no group named {name:?} on this system"),
                    ))
                }
            },
        };
        let default_mode = if group.is_some() { "0660" } else { "0600" };
        let mode_str = raw
            .control
            .mode
            .clone()
            .unwrap_or_else(|| default_mode.into());
        let mode = u32::from_str_radix(mode_str.trim_start_matches("0o"), 8)
            .ok()
            .filter(|m| *m <= 0o777)
            .ok_or_else(|| {
                err(
                    "control.mode".into(),
                    format!("{mode_str:?} is not an octal file mode such as \"0600\""),
                )
            })?;
        let socket = PathBuf::from(
            raw.control
                .socket
                .clone()
                .unwrap_or_else(|| "/run/sluice/sluice.sock".into()),
        );
        if socket.as_os_str().len() > 100 {
            return Err(err(
                "control.socket".into(),
                "path longer than a Unix socket address allows (100 bytes)".into(),
            ));
        }
        if let Some(fp) = &raw.eal.file_prefix {
            if fp.is_empty() || fp.contains('/') {
                return Err(err(
                    "eal.file_prefix".into(),
                    format!("{fp:?} must be a non-empty name without '/'"),
                ));
            }
        }
        Ok(Config {
            file: path.to_path_buf(),
            eal: EalConfig {
                no_huge: raw.eal.no_huge,
                huge_unlink: raw.eal.huge_unlink.unwrap_or(true),
                memory_mb: raw.eal.memory_mb,
                file_prefix: raw.eal.file_prefix.clone(),
                lcores: raw.eal.lcores.clone(),
                extra_args: raw.eal.extra_args.clone(),
            },
            dataplane: DataplaneConfig {
                main_lcore: d.main_lcore,
                workers: d.workers.clone(),
                mempool_size,
                mempool_cache,
                rx_desc,
                tx_desc,
                burst,
                idle_sleep_us: d.idle_sleep_us.unwrap_or(0),
                idle_polls_before_sleep: d.idle_polls_before_sleep.unwrap_or(100),
                neighbour_reachable_secs: d.neighbour_reachable_secs.unwrap_or(30),
                connections,
            },
            control: ControlConfig {
                socket,
                mode,
                group,
            },
            ports,
            gateway,
            routes,
            timeouts,
            services: raw.services.clone(),
            metrics,
            raw,
        })
    }

    /// This configuration with `services` in place of its own, in the
    /// file's format (what `sluicectl save` prints).
    pub fn to_toml(&self, services: &[sluice_proto::ServiceSpec]) -> String {
        let mut raw = self.raw.clone();
        raw.services = services.to_vec();
        let body = toml::to_string(&raw).unwrap_or_else(|e| format!("# cannot serialise: {e}\n"));
        format!(
            "# Sluice configuration, saved from the running daemon.\n\
             # Load it with `sluice --config FILE` or `sluicectl restore FILE`.\n\n{body}"
        )
    }

    /// The names of the sections other than `[[service]]` that differ from
    /// `other` (they cannot change without a restart).
    pub fn static_differences(&self, other: &Config) -> Vec<&'static str> {
        let (a, b) = (&self.raw, &other.raw);
        let mut d = Vec::new();
        if a.eal != b.eal {
            d.push("[eal]");
        }
        if a.dataplane != b.dataplane {
            d.push("[dataplane]");
        }
        if a.control != b.control {
            d.push("[control]");
        }
        if a.ports != b.ports {
            d.push("[[port]]");
        }
        if a.routes != b.routes {
            d.push("[routes]");
        }
        if a.timeouts != b.timeouts {
            d.push("[timeouts]");
        }
        if a.metrics != b.metrics {
            d.push("[metrics]");
        }
        d
    }

    /// The EAL arguments this configuration implies.
    pub fn eal_args(&self) -> Vec<String> {
        let mut a = Vec::new();
        let d = &self.dataplane;
        match &self.eal.lcores {
            Some(map) => {
                a.push("--lcores".into());
                a.push(map.clone());
            }
            None => {
                let mut l = vec![d.main_lcore];
                l.extend(&d.workers);
                a.push("-l".into());
                a.push(
                    l.iter()
                        .map(|x| x.to_string())
                        .collect::<Vec<_>>()
                        .join(","),
                );
            }
        }
        a.push("--main-lcore".into());
        a.push(d.main_lcore.to_string());
        if self.eal.no_huge {
            a.push("--no-huge".into());
        } else if self.eal.huge_unlink {
            // Unlink hugepage files as soon as they are mapped: nothing is
            // left in hugetlbfs after the daemon exits, even if it crashes.
            a.push("--huge-unlink".into());
        }
        if let Some(m) = self.eal.memory_mb {
            a.push("-m".into());
            a.push(m.to_string());
        }
        if let Some(fp) = &self.eal.file_prefix {
            a.push("--file-prefix".into());
            a.push(fp.clone());
        }
        let mut any_pci = false;
        for p in &self.ports {
            match &p.device {
                Device::Pci(addr) => {
                    any_pci = true;
                    a.push("-a".into());
                    a.push(addr.clone());
                }
                Device::Vdev { args, .. } => {
                    a.push("--vdev".into());
                    a.push(args.clone());
                }
            }
        }
        if !any_pci {
            a.push("--no-pci".into());
        }
        a.extend(self.eal.extra_args.iter().cloned());
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[eal]
no_huge = true
memory_mb = 256
file_prefix = "t1"

[dataplane]
workers = [1, 2]
mempool_size = 8192

[control]
socket = "/tmp/s.sock"

[[port]]
name = "client"
device = "net_af_packet0,iface=veth0"
addresses = ["192.0.2.1/24"]

[[port]]
name = "servers"
device = "0000:03:00.0"
addresses = ["198.51.100.1/24", "198.51.100.2/24"]

[routes]
gateway = "192.0.2.254"
static = [{ prefix = "203.0.113.0/24", via = "198.51.100.254" }]

[timeouts]
tcp_established = 600

[[service]]
protocol = "tcp"
vip = "192.0.2.100"
port = 80
scheduler = "wrr"

[[service.real]]
ip = "198.51.100.11"
port = 8080
weight = 3

[[service.real]]
ip = "198.51.100.12"
port = 80
forward = "dr"
"#;

    fn parse(s: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("test.toml"), s)
    }

    #[test]
    fn parses_a_full_config() {
        let c = parse(GOOD).unwrap();
        assert_eq!(c.dataplane.workers, vec![1, 2]);
        assert_eq!(c.ports.len(), 2);
        assert_eq!(
            c.ports[0].device,
            Device::Vdev {
                name: "net_af_packet0".into(),
                args: "net_af_packet0,iface=veth0,qpairs=2".into()
            }
        );
        assert_eq!(c.ports[1].device, Device::Pci("0000:03:00.0".into()));
        assert_eq!(c.gateway, Some(Ipv4Addr::new(192, 0, 2, 254)));
        assert_eq!(c.control.mode, 0o600);
        assert_eq!(c.timeouts.tcp_established, 600_000);
        assert_eq!(c.services.len(), 1);
        assert_eq!(c.services[0].reals[0].weight, 3);
        assert_eq!(c.services[0].reals[1].forward, sluice_proto::Forward::Dr);
        let args = c.eal_args().join(" ");
        assert!(args.contains("-l 0,1,2"), "{args}");
        assert!(
            args.contains("--vdev net_af_packet0,iface=veth0,qpairs=2"),
            "{args}"
        );
        assert!(args.contains("-a 0000:03:00.0"), "{args}");
        assert!(args.contains("--no-huge -m 256 --file-prefix t1"), "{args}");
        assert!(!args.contains("--no-pci"));
    }

    fn expect_err(s: &str, location: &str, reason_part: &str) {
        let e = parse(s).unwrap_err();
        assert_eq!(e.location, location, "{e}");
        assert!(e.reason.contains(reason_part), "{e}");
        assert!(e.to_string().starts_with("test.toml: "), "{e}");
    }

    #[test]
    fn refuses_with_locations() {
        expect_err(
            &GOOD.replace("192.0.2.1/24", "192.0.2.1/33"),
            "port[0].addresses[0]",
            "length",
        );
        expect_err(
            &GOOD.replace("workers = [1, 2]", "workers = [0]"),
            "dataplane.workers[0]",
            "main",
        );
        expect_err(
            &GOOD.replace("workers = [1, 2]", "workers = []"),
            "dataplane.workers",
            "at least",
        );
        expect_err(
            &GOOD.replace("0000:03:00.0", "eth0"),
            "port[1].device",
            "neither",
        );
        expect_err(
            &GOOD.replace("\"servers\"", "\"client\""),
            "port[1].name",
            "used by another",
        );
        expect_err(
            &GOOD.replace("192.0.2.254", "203.0.113.254"),
            "routes.gateway",
            "not inside",
        );
        expect_err(
            &GOOD.replace("mempool_size = 8192", "mempool_size = 100"),
            "dataplane.mempool_size",
            "at least",
        );
        expect_err(
            &GOOD.replace("[control]", "[control]\nmode = \"rw\""),
            "control.mode",
            "octal",
        );
    }

    #[test]
    fn syntax_and_unknown_fields_give_line_and_column() {
        let e = parse(&GOOD.replace("no_huge = true", "no_hugE = true")).unwrap_err();
        assert_eq!(e.location, "line 3, column 1", "{e}");
        assert!(e.reason.contains("no_hugE"), "{e}");
        let e = parse("[dataplane\nworkers = [1]").unwrap_err();
        assert!(e.location.starts_with("line 1"), "{e}");
        let e = parse("[[port]]\nname = \"a\"\ndevice = \"net_null0\"\n").unwrap_err();
        assert!(e.reason.contains("dataplane"), "{e}");
    }

    #[test]
    fn the_old_neighbour_age_is_refused_with_its_replacement() {
        let old = GOOD.replace("[dataplane]", "[dataplane]\nneighbour_max_age_secs = 300");
        let e = parse(&old).unwrap_err();
        assert_eq!(e.location, "dataplane.neighbour_max_age_secs", "{e}");
        assert!(e.reason.contains("neighbour_reachable_secs"), "{e}");
        let new = GOOD.replace("[dataplane]", "[dataplane]\nneighbour_reachable_secs = 60");
        assert_eq!(parse(&new).unwrap().dataplane.neighbour_reachable_secs, 60);
    }
}
