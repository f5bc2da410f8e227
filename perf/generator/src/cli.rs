//! Command-line flags and the TOML file (`--config gen.toml`): the same
//! options either way, the file's keys being the flags' long names
//! (`tx-port = "net_memif0"`, `eal-args = ["--no-huge", ...]`). A flag
//! given on the command line wins over the file; EAL arguments add up (the
//! file's `eal-args`, then `--eal`, then those after `--`).
//! [`crate::config::Config::from_opts`] validates the result and fills in
//! defaults.

use crate::scenario::{Mode, Proto};
use clap::Parser;
use serde::Deserialize;
use std::net::IpAddr;
use std::path::PathBuf;

/// Which RFC 2544 rates to search for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum SearchArg {
    /// No-drop rate.
    Ndr,
    /// Partial-drop rate.
    Pdr,
    /// Both: NDR, then PDR above it.
    Both,
}

/// sluice-gen: a DPDK traffic generator for Sluice's performance kit.
///
/// Sends flows from 198.18.0.0/15 to a virtual service through a device
/// under test (TX port), receives what comes back (RX port), checks every
/// packet against what the device must have done (--mode), and reports
/// rates, loss, duplicates, reordering and latency. EAL arguments go after
/// `--`, e.g. `-- -l 0,1 --no-huge -m 512 --file-prefix gen --vdev
/// net_memif0,role=server,socket=/tmp/g0.sock,id=0`.
#[derive(Debug, Default, Parser, Deserialize)]
#[command(name = "sluice-gen", version)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Opts {
    /// TOML file with any of these options (keys are the long flag names).
    #[arg(long, value_name = "FILE")]
    #[serde(skip)]
    pub config: Option<PathBuf>,

    /// EAL arguments as one string, split at whitespace.
    #[arg(long, value_name = "ARGS", allow_hyphen_values = true)]
    pub eal: Option<String>,

    /// EAL arguments (everything after `--`).
    #[arg(last = true, value_name = "EAL_ARGS")]
    pub eal_args: Vec<String>,

    /// Device the generator sends on, as the EAL names it (e.g. net_memif0).
    #[arg(long, value_name = "DEVICE")]
    pub tx_port: Option<String>,

    /// Device the packets come back on (may be the TX port).
    #[arg(long, value_name = "DEVICE")]
    pub rx_port: Option<String>,

    /// What the device under test does [default: swap].
    #[arg(long, value_enum)]
    pub mode: Option<Mode>,

    /// Layer-4 protocol [default: udp].
    #[arg(long, value_enum)]
    pub proto: Option<Proto>,

    /// Concurrent flows, 1..=10000000 [default: 1024].
    #[arg(long)]
    pub flows: Option<u64>,

    /// Flows replaced by fresh ones per second; 0: a fixed set [default: 0].
    #[arg(long, value_name = "RATE")]
    pub new_flows_per_sec: Option<u64>,

    /// Frame size in bytes, FCS included, 64..=1518 [default: 64].
    #[arg(long, value_name = "BYTES", conflicts_with = "imix")]
    pub size: Option<u16>,

    /// IMIX: 7:4:1 of 64, 570 and 1518-byte frames.
    #[arg(long)]
    pub imix: bool,

    /// Virtual IP, IPv4 or IPv6: the family sent [default: 192.0.2.100].
    #[arg(long)]
    pub vip: Option<IpAddr>,

    /// Virtual port [default: 80].
    #[arg(long)]
    pub vport: Option<u16>,

    /// Reals: IP:PORT or FIRST-LAST:PORT, comma-separated, of the VIP's
    /// family; the generator answers ARP (IPv6: neighbour solicitations)
    /// for them on the RX port with 02:00:00:00:01:xx
    /// [default: 198.51.100.11-198.51.100.18:8080, or for an IPv6 VIP
    /// 2001:db8:2::11-2001:db8:2::18:8080].
    #[arg(long, value_name = "LIST")]
    pub reals: Option<String>,

    /// Offered rate in packets/s; 0: full speed [default: 0].
    #[arg(long, value_name = "PPS")]
    pub rate: Option<u64>,

    /// Measurement time, seconds [default: 10].
    #[arg(long, value_name = "SECS")]
    pub duration: Option<f64>,

    /// Traffic before measuring, seconds (not counted) [default: 1].
    #[arg(long, value_name = "SECS")]
    pub warmup: Option<f64>,

    /// Wait for stragglers after sending stops, seconds [default: 0.5].
    #[arg(long, value_name = "SECS")]
    pub drain: Option<f64>,

    /// RFC 2544 search instead of one fixed-rate run.
    #[arg(long, value_enum)]
    pub search: Option<SearchArg>,

    /// Seconds per search trial [default: 5].
    #[arg(long, value_name = "SECS")]
    pub trial: Option<f64>,

    /// Most trials per search, the full-speed one included [default: 12].
    #[arg(long, value_name = "N")]
    pub search_steps: Option<u32>,

    /// PDR loss threshold, percent [default: 0.5].
    #[arg(long, value_name = "PCT")]
    pub pdr_loss: Option<f64>,

    /// Search resolution, percent of the full-speed rate [default: 1].
    #[arg(long, value_name = "PCT")]
    pub resolution: Option<f64>,

    /// Write the results as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,

    /// No progress line.
    #[arg(long)]
    pub quiet: bool,

    /// MAC of the device under test, the frames' destination.
    #[arg(long, value_name = "MAC")]
    pub dut_mac: Option<String>,

    /// Resolve the device's MAC by ARP (IPv6: neighbour discovery) for
    /// this address on the TX port.
    #[arg(long, value_name = "IP", conflicts_with = "dut_mac")]
    pub dut_ip: Option<IpAddr>,

    /// The device's MAC on the return side, checked as the source of
    /// returned frames in dr and nat modes.
    #[arg(long, value_name = "MAC")]
    pub dut_rx_mac: Option<String>,

    /// The clients' gateway: the generator answers ARP (neighbour
    /// solicitations) for it on the TX port (and asks from it when
    /// resolving --dut-ip).
    #[arg(long, value_name = "IP")]
    pub gateway: Option<IpAddr>,

    /// Do not answer ARP (neighbour solicitations) for client addresses on
    /// the TX port.
    #[arg(long)]
    pub no_client_arp: bool,

    /// TTL (IPv6: hop limit) sent [default: 64].
    #[arg(long)]
    pub ttl: Option<u8>,

    /// Packets per burst, 1..=256 [default: 32].
    #[arg(long)]
    pub burst: Option<u16>,

    /// Mbufs in the pool [default: 16383].
    #[arg(long)]
    pub mbufs: Option<u32>,

    /// Descriptors per RX and TX queue [default: 1024].
    #[arg(long)]
    pub desc: Option<u16>,

    /// Lcore that sends [default: the first worker lcore].
    #[arg(long, value_name = "LCORE")]
    pub tx_lcore: Option<u32>,

    /// Lcore that receives [default: the second worker lcore if there is
    /// one and the ports differ, else the TX lcore].
    #[arg(long, value_name = "LCORE")]
    pub rx_lcore: Option<u32>,

    /// Seconds to wait for the links to come up [default: 10].
    #[arg(long, value_name = "SECS")]
    pub link_timeout: Option<f64>,
}

impl Opts {
    /// Reads a TOML options file.
    pub fn from_file(path: &std::path::Path) -> Result<Opts, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// The command line over `file`: the line's values win, EAL arguments
    /// are concatenated (file first).
    pub fn over(self, file: Opts) -> Opts {
        macro_rules! pick {
            ($($f:ident),* $(,)?) => {
                Opts {
                    config: self.config,
                    eal: match (file.eal, self.eal) {
                        (Some(a), Some(b)) => Some(format!("{a} {b}")),
                        (a, b) => b.or(a),
                    },
                    eal_args: file.eal_args.into_iter().chain(self.eal_args).collect(),
                    imix: self.imix || file.imix,
                    quiet: self.quiet || file.quiet,
                    no_client_arp: self.no_client_arp || file.no_client_arp,
                    $($f: self.$f.or(file.$f),)*
                }
            };
        }
        pick!(
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
            rate,
            duration,
            warmup,
            drain,
            search,
            trial,
            search_steps,
            pdr_loss,
            resolution,
            json,
            dut_mac,
            dut_ip,
            dut_rx_mac,
            gateway,
            ttl,
            burst,
            mbufs,
            desc,
            tx_lcore,
            rx_lcore,
            link_timeout,
        )
    }

    /// Every EAL argument: `--eal`'s split at whitespace, then the rest.
    pub fn all_eal_args(&self) -> Vec<String> {
        self.eal
            .iter()
            .flat_map(|s| s.split_whitespace().map(String::from))
            .chain(self.eal_args.iter().cloned())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_parses() {
        let o = Opts::try_parse_from([
            "sluice-gen",
            "--tx-port",
            "net_memif0",
            "--rx-port=net_memif1",
            "--mode",
            "nat",
            "--proto",
            "tcp",
            "--imix",
            "--eal",
            "-l 0,1 --no-huge",
            "--",
            "--vdev",
            "net_memif0,role=server",
        ])
        .unwrap();
        assert_eq!(o.mode, Some(Mode::Nat));
        assert_eq!(o.proto, Some(Proto::Tcp));
        assert!(o.imix);
        assert_eq!(
            o.all_eal_args(),
            ["-l", "0,1", "--no-huge", "--vdev", "net_memif0,role=server"]
        );
        assert!(Opts::try_parse_from(["sluice-gen", "--size", "64", "--imix"]).is_err());
        assert!(Opts::try_parse_from(["sluice-gen", "--mode", "bridge"]).is_err());
    }

    #[test]
    fn file_and_line_merge() {
        let file: Opts = toml::from_str(
            r#"
            tx-port = "net_memif0"
            rx-port = "net_memif1"
            flows = 5000
            rate = 1000
            mode = "dr"
            imix = true
            eal-args = ["--no-huge"]
            "#,
        )
        .unwrap();
        let line =
            Opts::try_parse_from(["sluice-gen", "--rate", "2000", "--", "-l", "0,1"]).unwrap();
        let o = line.over(file);
        assert_eq!(o.rate, Some(2000));
        assert_eq!(o.flows, Some(5000));
        assert_eq!(o.mode, Some(Mode::Dr));
        assert!(o.imix);
        assert_eq!(o.all_eal_args(), ["--no-huge", "-l", "0,1"]);
        assert!(toml::from_str::<Opts>("bogus = 1").is_err());
    }
}
