//! The service and real verbs, shaped after ipvsadm's options (`-t`/`-u`
//! service address, `-s` scheduler, `-p`/`-M` persistence, `-r` real,
//! `-w` weight, `-m`/`-g` forwarding, `-x`/`-y` thresholds) but as
//! subcommands.

use clap::{Args, Subcommand};
use sluice_proto::{
    Command, Forward, OnMiss, OnRealRemoval, PassiveHealth, Persistence, Protocol, ProxyProtocol,
    RealPatch, RealSpec, SchedulerKind, ServiceKey, ServicePatch, ServiceSpec, SynProxyMode,
};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// Which service: `-t VIP:PORT` (TCP) or `-u VIP:PORT` (UDP).
#[derive(Args, Debug, Clone)]
#[group(required = true, multiple = false)]
pub struct ServiceAddr {
    /// A TCP service, VIP:PORT.
    #[arg(short = 't', long = "tcp-service", value_name = "VIP:PORT")]
    tcp: Option<SocketAddr>,
    /// A UDP service, VIP:PORT.
    #[arg(short = 'u', long = "udp-service", value_name = "VIP:PORT")]
    udp: Option<SocketAddr>,
}

/// The key named by `-t` or `-u`, if either was given.
fn key_of(tcp: Option<SocketAddr>, udp: Option<SocketAddr>) -> Option<ServiceKey> {
    let (protocol, a) = match (tcp, udp) {
        (Some(a), _) => (Protocol::Tcp, a),
        (None, Some(a)) => (Protocol::Udp, a),
        (None, None) => return None,
    };
    Some(ServiceKey {
        protocol,
        vip: a.ip(),
        port: a.port(),
    })
}

impl ServiceAddr {
    fn key(&self) -> ServiceKey {
        key_of(self.tcp, self.udp).expect("clap requires -t or -u")
    }
}

/// Optionally, which service: `-t VIP:PORT` (TCP) or `-u VIP:PORT` (UDP);
/// neither means every service.
#[derive(Args, Debug, Clone, Default)]
#[group(required = false, multiple = false)]
pub struct OptServiceAddr {
    /// Only this TCP service, VIP:PORT.
    #[arg(short = 't', long = "tcp-service", value_name = "VIP:PORT")]
    tcp: Option<SocketAddr>,
    /// Only this UDP service, VIP:PORT.
    #[arg(short = 'u', long = "udp-service", value_name = "VIP:PORT")]
    udp: Option<SocketAddr>,
}

impl OptServiceAddr {
    /// The service named, or `None` for every service.
    pub fn key(&self) -> Option<ServiceKey> {
        key_of(self.tcp, self.udp)
    }
}

/// Options of `zero`.
#[derive(Args, Debug, Clone, Default)]
pub struct ZeroArgs {
    #[command(flatten)]
    addr: OptServiceAddr,
}

impl ZeroArgs {
    /// The request `zero` sends.
    pub fn into_command(self) -> Command {
        Command::Zero {
            service: self.addr.key(),
        }
    }
}

/// A service's settings.
#[derive(Args, Debug, Clone)]
pub struct ServiceOpts {
    #[command(flatten)]
    addr: ServiceAddr,
    /// Scheduler: rr, wrr, lc, wlc, sed, nq, sh, mh.
    #[arg(short = 's', long, default_value = "wlc")]
    scheduler: SchedulerKind,
    /// Persistence timeout in seconds (source-IP affinity).
    #[arg(short = 'p', long = "persistent", value_name = "SECONDS")]
    persistent: Option<u32>,
    /// Persistence client netmask (e.g. 255.255.255.0 or 24).
    #[arg(short = 'M', long = "netmask", requires = "persistent")]
    netmask: Option<String>,
    /// What happens to a removed real's connections: keep (finish) or end.
    #[arg(long, default_value = "keep", value_parser = ["keep", "end"])]
    on_real_removal: String,
    /// Maglev lookup table size (a prime; mh only).
    #[arg(long)]
    mh_table_size: Option<u32>,
    /// What happens to the connections of a real found down: keep or end.
    #[arg(long, default_value = "keep", value_parser = ["keep", "end"])]
    on_real_down: String,
    /// Drop a quiesced real's persistence templates when next used
    /// (IPVS's expire_quiescent_template).
    #[arg(long)]
    expire_quiescent_template: bool,
    /// Passive health: hold out reals that fail half the connections they
    /// get, at most PERCENT of them at once (0 or absent: off).
    #[arg(long, value_name = "PERCENT", value_parser = clap::value_parser!(u8).range(0..=100))]
    passive_health: Option<u8>,
    /// SYN proxy: answer handshakes with SYN cookies (NAT reals only):
    /// auto (while a SYN flood is on), on or off.
    #[arg(long, default_value = "auto")]
    syn_proxy: SynProxyMode,
    /// A TCP segment of no connection that is not a SYN (moved here from
    /// another appliance): drop, or hash (sh and mh only; mh's default)
    /// to the real the scheduler's hash picks, and make an entry.
    #[arg(long, value_name = "drop|hash")]
    on_miss: Option<OnMiss>,
    /// A local address full-NAT reals see as the client (DPVS's
    /// --add-laddr); repeat for a pool.
    #[arg(short = 'z', long = "local-address", value_name = "LIP")]
    local_addresses: Vec<IpAddr>,
    /// Tell the reals each client's address with the PROXY protocol: v2
    /// or off (NAT and full-NAT reals).
    #[arg(long, value_name = "v2|off", default_value = "off")]
    proxy_protocol: ProxyProtocol,
}

/// Changes to a service: only the options given change (ipvsadm -E, but
/// what is not given is kept, not reset to a default).
#[derive(Args, Debug, Clone)]
pub struct ServiceEditOpts {
    #[command(flatten)]
    addr: ServiceAddr,
    /// Scheduler: rr, wrr, lc, wlc, sed, nq, sh, mh.
    #[arg(short = 's', long)]
    scheduler: Option<SchedulerKind>,
    /// Persistence timeout in seconds (turns persistence on).
    #[arg(short = 'p', long = "persistent", value_name = "SECONDS")]
    persistent: Option<u32>,
    /// Turn persistence off.
    #[arg(long, conflicts_with_all = ["persistent", "netmask"])]
    no_persistent: bool,
    /// Persistence client netmask (e.g. 255.255.255.0 or 24).
    #[arg(short = 'M', long = "netmask")]
    netmask: Option<String>,
    /// What happens to a removed real's connections: keep or end.
    #[arg(long, value_parser = ["keep", "end"])]
    on_real_removal: Option<String>,
    /// What happens to the connections of a real found down: keep or end.
    #[arg(long, value_parser = ["keep", "end"])]
    on_real_down: Option<String>,
    /// Maglev lookup table size (a prime; mh only).
    #[arg(long)]
    mh_table_size: Option<u32>,
    /// Drop a quiesced real's persistence templates when next used: on or
    /// off.
    #[arg(long, value_parser = ["on", "off"])]
    expire_quiescent_template: Option<String>,
    /// Scale weights by health-check latency: on or off.
    #[arg(long, value_parser = ["on", "off"])]
    weight_by_latency: Option<String>,
    /// Passive health holding out at most PERCENT of the reals; 0: off.
    #[arg(long, value_name = "PERCENT", value_parser = clap::value_parser!(u8).range(0..=100))]
    passive_health: Option<u8>,
    /// SYN proxy: auto, on or off.
    #[arg(long)]
    syn_proxy: Option<SynProxyMode>,
    /// The pool of local addresses for full NAT, replacing the old one;
    /// repeat for more.
    #[arg(short = 'z', long = "local-address", value_name = "LIP")]
    local_addresses: Vec<IpAddr>,
    /// Empty the pool of local addresses.
    #[arg(long, conflicts_with = "local_addresses")]
    no_local_addresses: bool,
    /// The PROXY protocol for new connections: v2 or off.
    #[arg(long, value_name = "v2|off")]
    proxy_protocol: Option<ProxyProtocol>,
}

fn policy(s: &str) -> OnRealRemoval {
    if s == "end" {
        OnRealRemoval::End
    } else {
        OnRealRemoval::Keep
    }
}

impl ServiceEditOpts {
    fn patch(&self) -> Result<ServicePatch, String> {
        let mut p = ServicePatch::new(self.addr.key());
        p.scheduler = self.scheduler;
        p.persistence_timeout_secs = if self.no_persistent {
            Some(0)
        } else {
            self.persistent
        };
        if self.persistent == Some(0) {
            return Err(
                "a persistence timeout must be at least 1 s (--no-persistent turns it off)".into(),
            );
        }
        p.persistence_netmask = self.netmask.as_deref().map(parse_netmask).transpose()?;
        p.on_real_removal = self.on_real_removal.as_deref().map(policy);
        p.on_real_down = self.on_real_down.as_deref().map(policy);
        p.mh_table_size = self.mh_table_size;
        p.expire_quiescent_template = self.expire_quiescent_template.as_deref().map(|v| v == "on");
        p.weight_by_latency = self.weight_by_latency.as_deref().map(|v| v == "on");
        p.passive_max_held_out_percent = self.passive_health;
        p.syn_proxy = self.syn_proxy;
        p.proxy_protocol = self.proxy_protocol;
        if self.no_local_addresses {
            p.local_addresses = Some(Vec::new());
        } else if !self.local_addresses.is_empty() {
            p.local_addresses = Some(self.local_addresses.clone());
        }
        if p.is_empty() {
            return Err("nothing to change: give at least one option".into());
        }
        Ok(p)
    }
}

pub(crate) fn parse_netmask(s: &str) -> Result<u8, String> {
    // A prefix length (up to 128: the service's family bounds it), or an
    // IPv4 dotted netmask.
    if let Ok(n) = s.trim_start_matches('/').parse::<u8>() {
        if n <= 128 {
            return Ok(n);
        }
    }
    let ip: Ipv4Addr = s
        .parse()
        .map_err(|_| format!("{s:?} is not a netmask (255.255.255.0, 24, or 64 for IPv6)"))?;
    let m = u32::from(ip);
    if m.leading_ones() + m.trailing_zeros() != 32 {
        return Err(format!("{s} is not a contiguous netmask"));
    }
    Ok(m.leading_ones() as u8)
}

impl ServiceOpts {
    fn spec(&self) -> Result<ServiceSpec, String> {
        let k = self.addr.key();
        let persistence = match self.persistent {
            None => None,
            Some(t) => Some(Persistence {
                timeout_secs: t,
                netmask: match &self.netmask {
                    Some(m) => Some(parse_netmask(m)?),
                    None => None,
                },
            }),
        };
        Ok(ServiceSpec {
            protocol: k.protocol,
            vip: k.vip,
            port: k.port,
            scheduler: self.scheduler,
            persistence,
            on_real_removal: policy(&self.on_real_removal),
            mh_table_size: self.mh_table_size,
            check: None,
            agent: None,
            on_real_down: policy(&self.on_real_down),
            weight_by_latency: false,
            expire_quiescent_template: self.expire_quiescent_template,
            passive_health: self
                .passive_health
                .filter(|p| *p > 0)
                .map(|max_held_out_percent| PassiveHealth {
                    max_held_out_percent,
                }),
            syn_proxy: self.syn_proxy,
            on_miss_setting: self.on_miss,
            local_addresses: self.local_addresses.clone(),
            proxy_protocol: self.proxy_protocol,
            reals: Vec::new(),
        })
    }
}

/// Options of `list`.
#[derive(Args, Debug, Clone, Default)]
pub struct ListArgs {
    /// Show packet, byte and connection totals.
    #[arg(long)]
    pub stats: bool,
    /// Show rates: connections, packets and bytes per second (CPS, InPPS,
    /// OutPPS, InBPS, OutBPS).
    #[arg(long, conflicts_with = "stats")]
    pub rate: bool,
}

/// `sluicectl service ...`
#[derive(Subcommand, Debug)]
pub enum ServiceCmd {
    /// Add a virtual service (ipvsadm -A).
    Add(ServiceOpts),
    /// Change a virtual service (ipvsadm -E): only the options given.
    Edit(ServiceEditOpts),
    /// Delete a virtual service (ipvsadm -D).
    Del {
        #[command(flatten)]
        addr: ServiceAddr,
    },
    /// List services with their reals (ipvsadm -L).
    List(ListArgs),
}

impl ServiceCmd {
    /// The request this verb sends.
    pub fn into_command(self) -> Result<Command, String> {
        Ok(match self {
            ServiceCmd::Add(o) => Command::ServiceAdd { service: o.spec()? },
            ServiceCmd::Edit(o) => Command::ServiceEdit {
                service: o.patch()?,
            },
            ServiceCmd::Del { addr } => Command::ServiceDel { key: addr.key() },
            ServiceCmd::List(_) => Command::ServiceList { raw: false },
        })
    }
}

/// A real's settings.
#[derive(Args, Debug, Clone)]
pub struct RealOpts {
    #[command(flatten)]
    addr: ServiceAddr,
    /// The real server, RIP:PORT.
    #[arg(short = 'r', long = "real-server", value_name = "RIP:PORT")]
    real: SocketAddr,
    /// Weight (0 quiesces: no new connections).
    #[arg(short = 'w', long, default_value_t = 1)]
    weight: u32,
    #[command(flatten)]
    method: MethodArgs,
    /// Upper connection threshold (0: none).
    #[arg(short = 'x', long = "u-threshold", default_value_t = 0)]
    upper: u32,
    /// Lower connection threshold.
    #[arg(short = 'y', long = "l-threshold", default_value_t = 0)]
    lower: u32,
}

/// A real's forwarding method, as ipvsadm's flags name it (and DPVS's
/// -b); none given: NAT for a new real, unchanged for an edit.
#[derive(Args, Debug, Clone)]
pub struct MethodArgs {
    /// Forward by NAT (masquerading; a new real's default).
    #[arg(short = 'm', long = "masquerading", conflicts_with = "gatewaying")]
    masquerading: bool,
    /// Forward by direct routing (gatewaying).
    #[arg(short = 'g', long = "gatewaying", conflicts_with = "ipip")]
    gatewaying: bool,
    /// Forward through a tunnel (ipvsadm's -i): IP-in-IP, or GUE with
    /// --tun-type gue.
    #[arg(short = 'i', long = "ipip", conflicts_with = "masquerading")]
    ipip: bool,
    /// The tunnel's type with -i: ipip (the default) or gue.
    #[arg(long = "tun-type", value_name = "TYPE", requires = "ipip", value_parser = tunnel_type)]
    tun_type: Option<Forward>,
    /// Forward by full NAT (DPVS's -b): the client's address becomes one
    /// of the service's local addresses.
    #[arg(short = 'b', long = "fullnat", conflicts_with_all = ["masquerading", "gatewaying", "ipip"])]
    fullnat: bool,
}

impl MethodArgs {
    /// The method the flags name, if any.
    fn forward(&self) -> Option<Forward> {
        if self.masquerading {
            Some(Forward::Nat)
        } else if self.gatewaying {
            Some(Forward::Dr)
        } else if self.ipip {
            Some(self.tun_type.unwrap_or(Forward::Ipip))
        } else if self.fullnat {
            Some(Forward::FullNat)
        } else {
            None
        }
    }
}

/// `--tun-type`: ipip or gue (ipvsadm's names; gre is not supported).
fn tunnel_type(s: &str) -> Result<Forward, String> {
    match s.to_ascii_lowercase().as_str() {
        "ipip" => Ok(Forward::Ipip),
        "gue" => Ok(Forward::Gue),
        _ => Err(format!("{s:?}: the tunnel types are ipip and gue")),
    }
}

impl RealOpts {
    fn spec(&self) -> RealSpec {
        RealSpec {
            ip: self.real.ip(),
            port: self.real.port(),
            weight: self.weight,
            forward: self.method.forward().unwrap_or(Forward::Nat),
            upper_threshold: self.upper,
            lower_threshold: self.lower,
            check: None,
            agent: None,
        }
    }
}

/// Changes to a real: only the options given change (ipvsadm -e, but what
/// is not given is kept, its forwarding method, thresholds and checks
/// included).
#[derive(Args, Debug, Clone)]
pub struct RealEditOpts {
    #[command(flatten)]
    addr: ServiceAddr,
    /// The real server, RIP:PORT.
    #[arg(short = 'r', long = "real-server", value_name = "RIP:PORT")]
    real: SocketAddr,
    /// Weight (0 quiesces: no new connections; a weight also ends a drain).
    #[arg(short = 'w', long)]
    weight: Option<u32>,
    #[command(flatten)]
    method: MethodArgs,
    /// Upper connection threshold (0: none).
    #[arg(short = 'x', long = "u-threshold")]
    upper: Option<u32>,
    /// Lower connection threshold.
    #[arg(short = 'y', long = "l-threshold")]
    lower: Option<u32>,
}

impl RealEditOpts {
    fn patch(&self) -> Result<RealPatch, String> {
        let mut p = RealPatch::new(self.real.ip(), self.real.port());
        p.weight = self.weight;
        p.forward = self.method.forward();
        p.upper_threshold = self.upper;
        p.lower_threshold = self.lower;
        if p.is_empty() {
            return Err(
                "nothing to change: give at least one of -w, -m, -g, -i, -b, -x, -y".into(),
            );
        }
        Ok(p)
    }
}

/// `sluicectl real ...`
#[derive(Subcommand, Debug)]
pub enum RealCmd {
    /// Add a real server to a service (ipvsadm -a).
    Add(RealOpts),
    /// Change a real server (ipvsadm -e): only the options given.
    Edit(RealEditOpts),
    /// Delete a real server (ipvsadm -d).
    Del {
        #[command(flatten)]
        addr: ServiceAddr,
        /// The real server, RIP:PORT.
        #[arg(short = 'r', long = "real-server", value_name = "RIP:PORT")]
        real: SocketAddr,
    },
    /// Drain a real server: no new connections now; its remaining
    /// connections are ended when the deadline passes.
    Drain {
        #[command(flatten)]
        addr: ServiceAddr,
        /// The real server, RIP:PORT.
        #[arg(short = 'r', long = "real-server", value_name = "RIP:PORT")]
        real: SocketAddr,
        /// How long existing connections may continue: 30s, 5m, 1h or
        /// plain seconds.
        #[arg(long, value_parser = parse_duration_secs)]
        deadline: u32,
    },
}

/// Parses `30s`, `5m`, `1h` or `45` into seconds.
pub fn parse_duration_secs(s: &str) -> Result<u32, String> {
    let (num, mult) = match s.chars().last() {
        Some('s') => (&s[..s.len() - 1], 1),
        Some('m') => (&s[..s.len() - 1], 60),
        Some('h') => (&s[..s.len() - 1], 3600),
        _ => (s, 1),
    };
    num.parse::<u32>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("{s:?} is not a duration such as 30s, 5m or 1h"))
}

impl RealCmd {
    /// The request this verb sends.
    pub fn into_command(self) -> Result<Command, String> {
        Ok(match self {
            RealCmd::Add(o) => Command::RealAdd {
                service: o.addr.key(),
                real: o.spec(),
            },
            RealCmd::Edit(o) => Command::RealEdit {
                service: o.addr.key(),
                real: o.patch()?,
            },
            RealCmd::Drain {
                addr,
                real,
                deadline,
            } => Command::RealDrain {
                service: addr.key(),
                ip: real.ip(),
                port: real.port(),
                deadline_secs: deadline,
            },
            RealCmd::Del { addr, real } => Command::RealDel {
                service: addr.key(),
                ip: real.ip(),
                port: real.port(),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netmasks() {
        assert_eq!(parse_netmask("255.255.255.0"), Ok(24));
        assert_eq!(parse_netmask("24"), Ok(24));
        assert_eq!(parse_netmask("255.255.255.255"), Ok(32));
        assert!(parse_netmask("255.0.255.0").is_err());
        // A prefix length up to 128 (IPv6); the daemon refuses one longer
        // than the service's family.
        assert_eq!(parse_netmask("64"), Ok(64));
        assert!(parse_netmask("129").is_err());
    }
}
