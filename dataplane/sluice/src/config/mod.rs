//! The daemon's TOML configuration: parsing, validation with the location
//! of every error (file, field, reason), and the EAL arguments it implies.
//!
//! The file is read into [`raw`] types as written; each section is then
//! checked by its own module (`dataplane`, `ports`, `routes`, `timeouts`,
//! `services`, `control`, `eal`, `machine`, `bgp`, `sync`), which names the field it refuses.

mod bgp;
mod control;
mod dataplane;
mod eal;
mod machine;
mod ports;
mod raw;
mod refusal;
mod routes;
mod services;
mod sync;
mod timeouts;
mod tunnel;

pub use bgp::{BgpConfig, Neighbor, VipRoute};
pub use control::{ControlConfig, DEFAULT_METRICS_LISTEN};
pub use dataplane::DataplaneConfig;
pub use eal::EalConfig;
pub use machine::{MachineConfig, PCI_DRIVERS};
pub use ports::{Device, PortConfig, MAX_PORTS};
pub use routes::Route;
pub use sync::SyncConfig;

use raw::RawConfig;
use refusal::Refusal;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
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
    /// IPv6 default gateway.
    pub gateway6: Option<std::net::Ipv6Addr>,
    /// IPv6 static routes.
    pub routes6: Vec<Route<std::net::Ipv6Addr>>,
    /// Connection timeouts (milliseconds, as the connection table uses).
    pub timeouts: sluice_conntrack::Timeouts,
    /// Virtual services.
    pub services: Vec<sluice_proto::ServiceSpec>,
    /// The metrics endpoint's address, when enabled.
    pub metrics: Option<SocketAddr>,
    /// What `sluice --prepare` sets up.
    pub machine: MachineConfig,
    /// How the VIPs are announced over BGP (through BIRD), when they are.
    pub bgp: Option<BgpConfig>,
    /// Connection synchronisation with the peer appliances, when on.
    pub sync: Option<SyncConfig>,
    /// How tunnel-mode reals are reached.
    pub tunnel: sluice_lb::TunnelView,
    raw: RawConfig,
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.len() - before.rfind('\n').map(|i| i + 1).unwrap_or(0) + 1;
    (line, col)
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
        let at_file = |r: Refusal| ConfigError {
            file: path.to_path_buf(),
            location: r.location,
            reason: r.reason,
        };
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let location = match e.span() {
                Some(s) => {
                    let (l, c) = line_col(text, s.start);
                    format!("line {l}, column {c}")
                }
                None => "file".into(),
            };
            at_file(refusal::refusal(location, e.message()))
        })?;
        Config::validate(path, raw).map_err(at_file)
    }

    /// Checks every section of `raw`, in the order of the file.
    fn validate(path: &Path, raw: RawConfig) -> Result<Config, Refusal> {
        let eal = eal::validate(&raw.eal)?;
        let dataplane = dataplane::validate(&raw.dataplane, raw.ports.len())?;
        let workers = dataplane.workers.len();
        let ports = ports::validate(&raw.ports, workers)?;
        let routes::Routes {
            gateway,
            routes,
            gateway6,
            routes6,
        } = routes::validate(&raw.routes, &ports)?;
        let timeouts = timeouts::validate(&raw.timeouts)?;
        services::validate(&raw.services, workers, &ports)?;
        let control = control::validate(&raw.control)?;
        let metrics = control::validate_metrics(&raw.metrics)?;
        let machine = machine::validate(&raw.machine)?;
        let bgp = bgp::validate(&raw.bgp)?;
        let sync = sync::validate(&raw.sync)?;
        let tunnel = tunnel::validate(&raw.tunnel)?;
        Ok(Config {
            file: path.to_path_buf(),
            eal,
            dataplane,
            control,
            ports,
            gateway,
            routes,
            gateway6,
            routes6,
            timeouts,
            services: raw.services.clone(),
            metrics,
            machine,
            bgp,
            sync,
            tunnel,
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
        if a.machine != b.machine {
            d.push("[machine]");
        }
        if a.bgp != b.bgp {
            d.push("[bgp]");
        }
        if a.sync != b.sync {
            d.push("[sync]");
        }
        if a.tunnel != b.tunnel {
            d.push("[tunnel]");
        }
        d
    }

    /// The EAL arguments this configuration implies.
    pub fn eal_args(&self) -> Vec<String> {
        eal::args(&self.eal, &self.dataplane, &self.ports)
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

    /// Ports with IPv6 prefixes, an IPv6 gateway and static route, and an
    /// IPv6 service whose reals the routes reach; a route whose next hop
    /// is of the other family, or off every port, is refused.
    #[test]
    fn ipv6_addresses_routes_and_services() {
        let v6 = GOOD
            .replace(
                "addresses = [\"192.0.2.1/24\"]",
                "addresses = [\"192.0.2.1/24\", \"2001:db8:1::1/64\"]",
            )
            .replace(
                "addresses = [\"198.51.100.1/24\", \"198.51.100.2/24\"]",
                "addresses = [\"198.51.100.1/24\", \"198.51.100.2/24\", \"2001:db8:2::1/64\"]",
            )
            .replace(
                "gateway = \"192.0.2.254\"",
                "gateway = \"192.0.2.254\"\ngateway6 = \"2001:db8:1::fe\"",
            )
            .replace(
                "static = [{ prefix = \"203.0.113.0/24\", via = \"198.51.100.254\" }]",
                "static = [{ prefix = \"203.0.113.0/24\", via = \"198.51.100.254\" }, \
                 { prefix = \"2001:db8:99::/48\", via = \"2001:db8:2::fe\" }]",
            )
            .replace("vip = \"192.0.2.100\"", "vip = \"2001:db8::100\"")
            .replace("ip = \"198.51.100.11\"", "ip = \"2001:db8:2::11\"")
            .replace("ip = \"198.51.100.12\"", "ip = \"2001:db8:1::12\"");
        let c = parse(&v6).unwrap();
        assert_eq!(c.ports[0].addresses6[0].to_string(), "2001:db8:1::1/64");
        assert_eq!(c.gateway6, Some("2001:db8:1::fe".parse().unwrap()));
        assert_eq!(c.routes6[0].prefix.to_string(), "2001:db8:99::/48");
        assert_eq!(c.routes.len(), 1);
        expect_err(
            &v6.replace("via = \"2001:db8:2::fe\"", "via = \"198.51.100.254\""),
            "routes.static[1].via",
            "not an IPv6 address",
        );
        expect_err(
            &v6.replace(
                "gateway6 = \"2001:db8:1::fe\"",
                "gateway6 = \"2001:db8:7::fe\"",
            ),
            "routes.gateway6",
            "not inside",
        );
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

    /// An IPv6 service with /64 persistence and reals of both forwarding
    /// methods is saved and read back as it was: `sluicectl save` then a
    /// reload or `restore` keep it.
    #[test]
    fn an_ipv6_service_survives_a_save_and_a_reload() {
        let v6 = GOOD
            .replace(
                "addresses = [\"198.51.100.1/24\", \"198.51.100.2/24\"]",
                "addresses = [\"198.51.100.1/24\", \"198.51.100.2/24\", \"2001:db8:2::1/64\"]",
            )
            .replace("workers = [1, 2]", "workers = [1]")
            .replace(
                "scheduler = \"wrr\"",
                "scheduler = \"wrr\"\npersistence = { timeout_secs = 60, netmask = 64 }",
            )
            .replace("vip = \"192.0.2.100\"", "vip = \"2001:db8::100\"")
            .replace("ip = \"198.51.100.11\"", "ip = \"2001:db8:2::11\"")
            .replace("ip = \"198.51.100.12\"", "ip = \"2001:db8:2::12\"");
        let c = parse(&v6).unwrap_or_else(|e| panic!("{e}\n{v6}"));
        let svc = &c.services[0];
        assert_eq!(svc.vip.to_string(), "2001:db8::100");
        assert_eq!(svc.persistence.map(|p| p.prefix_len(svc.vip)), Some(64));
        let saved = c.to_toml(&c.services);
        assert!(saved.contains("\"2001:db8::100\""), "{saved}");
        assert!(saved.contains("\"2001:db8:2::12\""), "{saved}");
        let back = parse(&saved).unwrap_or_else(|e| panic!("{e}\n{saved}"));
        assert_eq!(back.services, c.services);
    }

    #[test]
    fn passive_health_survives_a_save_and_a_reload() {
        let c = parse(GOOD).unwrap();
        let mut services = c.services.clone();
        services[0].passive_health = Some(sluice_proto::PassiveHealth {
            max_held_out_percent: 34,
        });
        let saved = c.to_toml(&services);
        let back = parse(&saved).unwrap_or_else(|e| panic!("{e}\n{saved}"));
        assert_eq!(back.services, services);
        // The inline form of the README.
        let inline = GOOD.replace(
            "scheduler = \"wrr\"",
            "scheduler = \"wrr\"\npassive_health = { max_held_out_percent = 50 }",
        );
        let c = parse(&inline).unwrap();
        assert_eq!(
            c.services[0].passive_health.map(|p| p.max_held_out_percent),
            Some(50)
        );
    }

    /// `[bgp]` and `[sync]` as docs/scale-out.md writes them, and
    /// `on_miss`, which needs a hashing scheduler.
    #[test]
    fn scale_out_sections() {
        let text = format!(
            "{GOOD}\n[bgp]\nrouter_id = \"198.51.100.1\"\nlocal_as = 64513\nbfd = true\n\
             [[bgp.neighbor]]\naddress = \"198.51.100.254\"\nremote_as = 64512\n\
             [[bgp.vip]]\naddress = \"192.0.2.100\"\nmed = 10\ncommunities = [\"64512:1\"]\n\
             [sync]\nlisten = \"198.51.100.1:8848\"\npeers = [\"198.51.100.2:8848\"]\n\
             key = \"0123456789abcdef\"\n"
        );
        let c = parse(&text).unwrap();
        let b = c.bgp.as_ref().unwrap();
        assert_eq!((b.local_as, b.bfd, b.vips[0].med), (64513, true, Some(10)));
        assert_eq!(c.sync.as_ref().unwrap().peers.len(), 1);
        let back = parse(&c.to_toml(&c.services)).unwrap();
        assert_eq!((back.bgp, back.sync), (c.bgp.clone(), c.sync.clone()));
        expect_err(
            &GOOD.replace(
                "scheduler = \"wrr\"",
                "scheduler = \"wrr\"\non_miss = \"hash\"",
            ),
            "service[0]",
            "needs a hashing scheduler",
        );
        let mh = GOOD.replace(
            "scheduler = \"wrr\"",
            "scheduler = \"mh\"\non_miss = \"drop\"",
        );
        assert_eq!(
            parse(&mh).unwrap().services[0].on_miss(),
            sluice_proto::OnMiss::Drop
        );
    }

    /// Tunnel reals (`forward = "ipip"`, `"gue"`) anywhere routed, and
    /// `[tunnel]`, survive `save` as they were written; a bad `[tunnel]`
    /// field is refused by name.
    #[test]
    fn tunnel_reals_and_section() {
        let text = format!(
            "{GOOD}\n[[service.real]]\nip = \"203.0.113.50\"\nport = 80\nforward = \"ipip\"\n\
             [[service.real]]\nip = \"203.0.113.51\"\nport = 80\nforward = \"gue\"\n\
             [tunnel]\nsource = \"198.51.100.2\"\ngue_port = 5555\nmtu = 9000\n"
        );
        let c = parse(&text).unwrap();
        let forwards: Vec<_> = c.services[0].reals.iter().map(|r| r.forward).collect();
        use sluice_proto::Forward::*;
        assert_eq!(forwards, [Nat, Dr, Ipip, Gue]);
        assert_eq!((c.tunnel.gue_port, c.tunnel.mtu), (5555, 9000));
        let saved = c.to_toml(&c.services);
        assert!(saved.contains("forward = \"gue\""), "{saved}");
        let back = parse(&saved).unwrap();
        assert_eq!((&back.services, back.tunnel), (&c.services, c.tunnel));
        expect_err(
            &text.replace("mtu = 9000", "mtu = 100"),
            "tunnel.mtu",
            "outside 1328-9216",
        );
        // A tunnel carries the packet unchanged: the port stays the VIP's.
        expect_err(
            &text.replace("203.0.113.51\"\nport = 80", "203.0.113.51\"\nport = 81"),
            "service[0]",
            "a GUE tunnel, which cannot change the port",
        );
    }

    /// Full-NAT reals and their service's local addresses survive `save`;
    /// a full-NAT real without local addresses, and a local address that
    /// is a port's own, are refused where they are written.
    #[test]
    fn full_nat_reals_and_local_addresses() {
        let text = GOOD.replace(
            "scheduler = \"wrr\"\n",
            "scheduler = \"wrr\"\nlocal_addresses = [\"198.51.100.200\", \"198.51.100.201\"]\n",
        )
            + "\n[[service.real]]\nip = \"203.0.113.50\"\nport = 8080\nforward = \"fullnat\"\n";
        let c = parse(&text).unwrap();
        assert_eq!(
            c.services[0].reals[2].forward,
            sluice_proto::Forward::FullNat
        );
        assert_eq!(c.services[0].local_addresses.len(), 2);
        let saved = c.to_toml(&c.services);
        assert!(saved.contains("forward = \"fullnat\""), "{saved}");
        let back = parse(&saved).unwrap();
        assert_eq!(back.services, c.services);
        expect_err(
            &text.replace(
                "local_addresses = [\"198.51.100.200\", \"198.51.100.201\"]\n",
                "",
            ),
            "service[0]",
            "full NAT needs local_addresses",
        );
        expect_err(
            &text.replace("\"198.51.100.201\"", "\"198.51.100.1\""),
            "service[0].local_addresses[1]",
            "a port's own address",
        );
        // The local ports: configurable, in order, a port per worker.
        let ports = text.replace(
            "workers = [1, 2]",
            "workers = [1, 2]\nlocal_ports = [20000, 20001]",
        );
        assert_eq!(parse(&ports).unwrap().dataplane.local_ports, 20000..=20001);
        assert_eq!(
            parse(&text).unwrap().dataplane.local_ports,
            sluice_lb::local_ports::DEFAULT_LOCAL_PORTS
        );
        for bad in ["[0, 100]", "[2000, 1999]", "[3000, 3000]"] {
            expect_err(
                &text.replace(
                    "workers = [1, 2]",
                    &format!("workers = [1, 2]\nlocal_ports = {bad}"),
                ),
                "dataplane.local_ports",
                "port",
            );
        }
        // The PROXY protocol: saved as written; refused while a DR real
        // would answer past the header's shift.
        let pp = text.replace(
            "scheduler = \"wrr\"\n",
            "scheduler = \"wrr\"\nproxy_protocol = \"v2\"\n",
        );
        expect_err(&pp, "service[0]", "needs NAT or full-NAT reals");
        let pp = pp.replace("forward = \"dr\"", "forward = \"nat\"");
        let c = parse(&pp).unwrap();
        assert_eq!(
            c.services[0].proxy_protocol,
            sluice_proto::ProxyProtocol::V2
        );
        let saved = c.to_toml(&c.services);
        assert!(saved.contains("proxy_protocol = \"v2\""), "{saved}");
        assert_eq!(parse(&saved).unwrap().services, c.services);
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
    fn each_section_names_the_field_it_refuses() {
        expect_err(
            &GOOD.replace("tcp_established = 600", "tcp_established = 0"),
            "timeouts.tcp_established",
            "not in 1..=604800",
        );
        expect_err(
            &GOOD.replace(
                "mempool_size = 8192",
                "mempool_size = 8192\nconnections = 10",
            ),
            "dataplane.connections",
            "not in 1024",
        );
        expect_err(
            &GOOD.replace(
                "name = \"client\"",
                "name = \"client\"\nkernel_interface = \"a-name-longer-than-15\"",
            ),
            "port[0].kernel_interface",
            "not an interface name",
        );
        expect_err(
            &GOOD.replace("via = \"198.51.100.254\"", "via = \"203.0.113.1\""),
            "routes.static[0].via",
            "not inside",
        );
        expect_err(
            &GOOD.replace("port = 80\nforward = \"dr\"", "port = 80\nforward = \"dr\"\n[[service.real]]\nip = \"203.0.113.9\"\nport = 80\nforward = \"dr\""),
            "service[0].real[2]",
            "direct routing",
        );
        expect_err(
            &GOOD.replace(
                "scheduler = \"wrr\"",
                "scheduler = \"wrr\"\npersistence = { timeout_secs = 60, netmask = 24 }",
            ),
            "service[0].persistence.netmask",
            "single worker",
        );
        // A service of one family with reals of the other, and an IPv6
        // DR real off every port's prefix: each refused where it stands.
        expect_err(
            &GOOD.replace("ip = \"198.51.100.12\"", "ip = \"2001:db8:2::12\""),
            "service[0]",
            "is IPv6 but the virtual IP 192.0.2.100 is IPv4",
        );
        expect_err(
            &GOOD
                .replace("vip = \"192.0.2.100\"", "vip = \"2001:db8::100\"")
                .replace("ip = \"198.51.100.11\"", "ip = \"2001:db8:2::11\"")
                .replace("ip = \"198.51.100.12\"", "ip = \"2001:db8:2::12\""),
            "service[0].real[1]",
            "direct routing but is not on a port's prefix",
        );
        expect_err(
            &GOOD.replace("file_prefix = \"t1\"", "file_prefix = \"a/b\""),
            "eal.file_prefix",
            "without '/'",
        );
        expect_err(
            &format!("{GOOD}\n[metrics]\nenabled = true\nlisten = \"nowhere\"\n"),
            "metrics.listen",
            "address:port",
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
