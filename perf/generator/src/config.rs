//! The validated configuration of a generator run: the merged options
//! ([`crate::cli::Opts`]) checked and completed with defaults.

use crate::cli::{Opts, SearchArg};
use crate::family::GenFamily;
use crate::flows::MAX_FLOWS;
use crate::scenario::{parse_reals, Mode, Proto, Real};
use crate::sizes::SizeSpec;
use sluice_core::MacAddr;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

/// Default reals.
pub const DEFAULT_REALS: &str = "198.51.100.11-198.51.100.18:8080";
/// Default reals of an IPv6 VIP.
pub const DEFAULT_REALS6: &str = "2001:db8:2::11-2001:db8:2::18:8080";
/// Default device MAC, when neither --dut-mac nor --dut-ip is given (fine
/// for a promiscuous device such as testpmd on memif).
pub const DEFAULT_DUT_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0xfe]);

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// EAL arguments.
    pub eal_args: Vec<String>,
    /// TX device name.
    pub tx_port: String,
    /// RX device name.
    pub rx_port: String,
    /// What the device does.
    pub mode: Mode,
    /// Protocol.
    pub proto: Proto,
    /// Concurrent flows.
    pub flows: u64,
    /// New flows per second.
    pub new_flows_per_sec: u64,
    /// Frame sizes.
    pub size: SizeSpec,
    /// Virtual IP: its family is the run's.
    pub vip: IpAddr,
    /// Virtual port.
    pub vport: u16,
    /// Reals.
    pub reals: Vec<Real>,
    /// Offered rate, pps (0: full speed).
    pub rate: u64,
    /// Measurement seconds.
    pub duration: f64,
    /// Warm-up seconds.
    pub warmup: f64,
    /// Drain seconds.
    pub drain: f64,
    /// RFC 2544 search.
    pub search: Option<SearchArg>,
    /// Seconds per trial.
    pub trial: f64,
    /// Most trials per search.
    pub search_steps: u32,
    /// PDR loss threshold as a ratio.
    pub pdr_loss: f64,
    /// Search resolution as a ratio of the maximum.
    pub resolution: f64,
    /// JSON output file.
    pub json: Option<PathBuf>,
    /// No progress line.
    pub quiet: bool,
    /// Device MAC, if fixed.
    pub dut_mac: Option<MacAddr>,
    /// Device IP to resolve the MAC of, if given.
    pub dut_ip: Option<IpAddr>,
    /// Device MAC on the return side, if known.
    pub dut_rx_mac: Option<MacAddr>,
    /// Clients' gateway address.
    pub gateway: Option<IpAddr>,
    /// Answer ARP for client addresses on the TX port.
    pub client_arp: bool,
    /// TTL sent.
    pub ttl: u8,
    /// Burst size.
    pub burst: u16,
    /// Mbufs in the pool.
    pub mbufs: u32,
    /// Descriptors per queue.
    pub desc: u16,
    /// TX lcore, if chosen.
    pub tx_lcore: Option<u32>,
    /// RX lcore, if chosen.
    pub rx_lcore: Option<u32>,
    /// Link wait, seconds.
    pub link_timeout: f64,
}

fn secs(name: &str, v: f64, min: f64, max: f64) -> Result<f64, String> {
    if v.is_finite() && v >= min && v <= max {
        Ok(v)
    } else {
        Err(format!("--{name} must be {min}..={max} seconds, not {v}"))
    }
}

fn mac(name: &str, v: Option<String>) -> Result<Option<MacAddr>, String> {
    v.map(|s| s.parse().map_err(|e| format!("--{name}: {e}")))
        .transpose()
}

impl Config {
    /// Validates merged options.
    pub fn from_opts(o: Opts) -> Result<Config, String> {
        let eal_args = o.all_eal_args();
        if eal_args.is_empty() {
            return Err("no EAL arguments: give them after `--` or with --eal".into());
        }
        let tx_port = o.tx_port.ok_or("--tx-port is required")?;
        let rx_port = o.rx_port.ok_or("--rx-port is required")?;
        let mode = o.mode.unwrap_or(Mode::Swap);
        let proto = o.proto.unwrap_or(Proto::Udp);
        let flows = o.flows.unwrap_or(1024);
        if !(1..=MAX_FLOWS).contains(&flows) {
            return Err(format!("--flows must be 1..={MAX_FLOWS}, not {flows}"));
        }
        let new_flows_per_sec = o.new_flows_per_sec.unwrap_or(0);
        if new_flows_per_sec > 100_000_000 {
            return Err("--new-flows-per-sec must be at most 100000000".into());
        }
        let size = if o.imix {
            SizeSpec::Imix
        } else {
            SizeSpec::Fixed(o.size.unwrap_or(64))
        };
        size.validate().map_err(|e| format!("--{e}"))?;
        let vip = o.vip.unwrap_or(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 100)));
        let default_reals = if vip.is_ipv4() {
            DEFAULT_REALS
        } else {
            DEFAULT_REALS6
        };
        let reals = parse_reals(o.reals.as_deref().unwrap_or(default_reals))
            .map_err(|e| format!("--reals: {e}"))?;
        let same_family = |name: &str, ip: Option<IpAddr>| match ip {
            Some(ip) if ip.is_ipv4() != vip.is_ipv4() => {
                Err(format!("--{name} {ip} is not of the VIP's family ({vip})"))
            }
            _ => Ok(()),
        };
        same_family("reals", Some(reals[0].ip))?;
        same_family("dut-ip", o.dut_ip)?;
        same_family("gateway", o.gateway)?;
        if vip.is_ipv6() {
            let least = min_frame::<Ipv6Addr>(proto);
            match size {
                SizeSpec::Fixed(s) if s < least => {
                    return Err(format!(
                        "--size: IPv6 frames carry the stamp in at least {least} bytes, not {s}"
                    ))
                }
                SizeSpec::Imix => {
                    return Err(
                        "--imix: its 64-byte frames are too small for IPv6 and the stamp".into(),
                    )
                }
                _ => {}
            }
        }
        let ttl = o.ttl.unwrap_or(64);
        if ttl < 2 {
            return Err("--ttl must be at least 2 (a NAT device decrements it)".into());
        }
        let vport = o.vport.unwrap_or(80);
        if vport == 0 {
            return Err("--vport must not be 0".into());
        }
        let burst = o.burst.unwrap_or(32);
        if !(1..=256).contains(&burst) {
            return Err(format!("--burst must be 1..=256, not {burst}"));
        }
        let search_steps = o.search_steps.unwrap_or(12);
        if !(1..=64).contains(&search_steps) {
            return Err(format!("--search-steps must be 1..=64, not {search_steps}"));
        }
        let pdr_loss = o.pdr_loss.unwrap_or(0.5);
        if !(pdr_loss > 0.0 && pdr_loss < 100.0) {
            return Err(format!(
                "--pdr-loss must be a percentage in (0, 100), not {pdr_loss}"
            ));
        }
        let resolution = o.resolution.unwrap_or(1.0);
        if !(resolution > 0.0 && resolution <= 50.0) {
            return Err(format!(
                "--resolution must be a percentage in (0, 50], not {resolution}"
            ));
        }
        let mbufs = o.mbufs.unwrap_or(16383);
        let desc = o.desc.unwrap_or(1024);
        if mbufs < 4 * desc as u32 + 4 * burst as u32 {
            return Err(format!(
                "--mbufs {mbufs} is too few for 2 ports of {desc} RX and TX descriptors"
            ));
        }
        Ok(Config {
            eal_args,
            tx_port,
            rx_port,
            mode,
            proto,
            flows,
            new_flows_per_sec,
            size,
            vip,
            vport,
            reals,
            rate: o.rate.unwrap_or(0),
            duration: secs("duration", o.duration.unwrap_or(10.0), 0.01, 86_400.0)?,
            warmup: secs("warmup", o.warmup.unwrap_or(1.0), 0.0, 3600.0)?,
            drain: secs("drain", o.drain.unwrap_or(0.5), 0.0, 60.0)?,
            search: o.search,
            trial: secs("trial", o.trial.unwrap_or(5.0), 0.01, 3600.0)?,
            search_steps,
            pdr_loss: pdr_loss / 100.0,
            resolution: resolution / 100.0,
            json: o.json,
            quiet: o.quiet,
            dut_mac: mac("dut-mac", o.dut_mac)?,
            dut_ip: o.dut_ip,
            dut_rx_mac: mac("dut-rx-mac", o.dut_rx_mac)?,
            gateway: o.gateway,
            client_arp: !o.no_client_arp,
            ttl,
            burst,
            mbufs,
            desc,
            tx_lcore: o.tx_lcore,
            rx_lcore: o.rx_lcore,
            link_timeout: secs("link-timeout", o.link_timeout.unwrap_or(10.0), 0.0, 600.0)?,
        })
    }
}

/// The smallest frame (FCS included) of family `A` that holds the stamp.
pub fn min_frame<A: GenFamily>(proto: Proto) -> u16 {
    let l4 = match proto {
        Proto::Udp => sluice_core::wire::l4::UDP_HEADER_LEN + crate::stamp::UDP_LEN,
        Proto::Tcp => sluice_core::wire::l4::TCP_MIN_HEADER_LEN + crate::stamp::TCP_PAYLOAD_LEN,
    };
    (crate::frame::L3 + A::HEADER_LEN + l4) as u16 + crate::sizes::FCS_LEN
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn parse(args: &[&str]) -> Result<Config, String> {
        let mut v = vec!["sluice-gen", "--tx-port", "a", "--rx-port", "b"];
        v.extend_from_slice(args);
        v.extend_from_slice(&["--", "--no-huge"]);
        Config::from_opts(Opts::try_parse_from(v).unwrap())
    }

    #[test]
    fn defaults() {
        let c = parse(&[]).unwrap();
        assert_eq!(c.mode, Mode::Swap);
        assert_eq!(c.proto, Proto::Udp);
        assert_eq!(c.flows, 1024);
        assert_eq!(c.size, SizeSpec::Fixed(64));
        assert_eq!(c.reals.len(), 8);
        assert_eq!((c.rate, c.duration, c.warmup), (0, 10.0, 1.0));
        assert_eq!(c.pdr_loss, 0.005);
        assert!(c.client_arp);
        assert_eq!(c.eal_args, ["--no-huge"]);
    }

    #[test]
    fn refusals() {
        for bad in [
            &["--flows", "0"][..],
            &["--flows", "10000001"],
            &["--size", "63"],
            &["--size", "1519"],
            &["--ttl", "1"],
            &["--duration", "0"],
            &["--burst", "0"],
            &["--pdr-loss", "0"],
            &["--dut-mac", "nope"],
            &["--reals", "1.2.3.4"],
            &["--mbufs", "100"],
            &["--vip", "2001:db8::100", "--size", "64"],
            &["--vip", "2001:db8::100", "--imix"],
            &[
                "--vip",
                "2001:db8::100",
                "--reals",
                "198.51.100.11:80",
                "--size",
                "128",
            ],
            &["--vip", "192.0.2.100", "--gateway", "2001:db8::1"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        let no_eal = Opts::try_parse_from(["sluice-gen", "--tx-port", "a", "--rx-port", "b"]);
        assert!(Config::from_opts(no_eal.unwrap()).is_err());
        let no_port = Opts::try_parse_from(["sluice-gen", "--tx-port", "a", "--", "-l", "0"]);
        assert!(Config::from_opts(no_port.unwrap()).is_err());
    }

    #[test]
    fn example_file_is_valid() {
        let file: Opts = toml::from_str(include_str!("../gen.example.toml")).unwrap();
        let c = Config::from_opts(Opts::default().over(file)).unwrap();
        assert_eq!(
            (c.tx_port.as_str(), c.rate, c.flows),
            ("net_memif0", 100_000, 1000)
        );
        assert_eq!(c.eal_args[0], "-l");
    }

    #[test]
    fn accepted_extremes() {
        let c = parse(&["--flows", "10000000", "--imix", "--search", "both"]).unwrap();
        assert_eq!(c.flows, 10_000_000);
        assert_eq!(c.size, SizeSpec::Imix);
        assert_eq!(c.search, Some(SearchArg::Both));
        let c = parse(&["--dut-mac", "02:00:00:00:00:aa", "--size", "1518"]).unwrap();
        assert_eq!(c.dut_mac, Some(MacAddr([2, 0, 0, 0, 0, 0xaa])));
        // IPv6: the reals default to the family's; 84 bytes is the least.
        let c = parse(&["--vip", "2001:db8::100", "--size", "84"]).unwrap();
        assert!(c.vip.is_ipv6() && c.reals[0].ip.is_ipv6());
        assert_eq!(min_frame::<Ipv6Addr>(Proto::Udp), 84);
        assert_eq!(min_frame::<Ipv6Addr>(Proto::Tcp), 84);
        assert_eq!(min_frame::<Ipv4Addr>(Proto::Udp), 64);
    }
}
