//! `sluicectl`: the operator's client for the Sluice control socket.
//!
//! Exit codes: 0 success; 2 usage error; 3 the daemon cannot be reached;
//! 4 the daemon refused the request (error reply); 5 the reply could not
//! be understood.

mod client;
mod completions;
mod config;
mod conn;
mod import;
mod render;
mod top;
mod units;
mod verbs;

use clap::{CommandFactory, Parser, Subcommand};
use sluice_proto::{Command, ReplyBody};
use std::path::PathBuf;
use std::process::ExitCode;

/// Default control socket path.
pub const DEFAULT_SOCKET: &str = "/run/sluice/sluice.sock";

/// Control the Sluice load balancer.
#[derive(Parser, Debug)]
#[command(
    name = "sluicectl",
    version,
    about,
    after_help = "Exit codes: 0 ok, 2 usage error, 3 daemon unreachable, 4 request refused, 5 unreadable reply."
)]
struct Cli {
    /// The daemon's control socket.
    #[arg(long, global = true, env = "SLUICE_SOCKET", default_value = DEFAULT_SOCKET)]
    socket: PathBuf,
    /// Print the daemon's reply as JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Version, uptime, ports (link, MAC, addresses, queues) and workers.
    Status,
    /// Counters per port and per worker, drops by reason.
    Stats,
    /// Stop the daemon cleanly.
    Shutdown,
    /// Virtual services: add, edit, del, list.
    #[command(subcommand)]
    Service(verbs::ServiceCmd),
    /// Real servers of a service: add, edit, del.
    #[command(subcommand)]
    Real(verbs::RealCmd),
    /// Every real's health: state, check, latency, agent.
    Health,
    /// BGP announcements of a VIP: withdraw (maintenance) or announce.
    #[command(subcommand)]
    Vip(VipCmd),
    /// List services with their reals (as `service list`).
    List(verbs::ListArgs),
    /// Reset the counters of every service, or of one (ipvsadm -Z).
    Zero(verbs::ZeroArgs),
    /// Print the live configuration in the configuration file's format
    /// (ipvsadm -S).
    Save,
    /// Replace every service by those of a configuration file (ipvsadm -R).
    Restore(config::RestoreArgs),
    /// Re-read the daemon's configuration file and apply the difference
    /// (as SIGHUP).
    Reload,
    /// Connections in the workers' tables: list.
    #[command(subcommand)]
    Conn(conn::ConnCmd),
    /// A live view of services, reals and workers (q quits).
    Top(top::TopArgs),
    /// Print an LVS configuration (ipvsadm rules, keepalived.conf) as
    /// Sluice's [[service]] sections; what cannot be carried over is named
    /// with its line. Needs no daemon.
    #[command(subcommand)]
    Import(import::ImportCmd),
    /// Print a shell completion script.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page sluicectl(8), in roff (for packaging).
    #[command(hide = true)]
    Man,
}

/// `vip withdraw|announce VIP`.
#[derive(Subcommand, Debug)]
enum VipCmd {
    /// Stop announcing the VIP over BGP: the routers send its traffic to
    /// the other appliances (connections move with it).
    Withdraw {
        /// The VIP.
        vip: std::net::IpAddr,
    },
    /// Announce the VIP again (while its reals and the dataplane allow).
    Announce {
        /// The VIP.
        vip: std::net::IpAddr,
    },
}

/// How a successful reply is shown, where its kind is not enough.
#[derive(Default)]
enum View {
    /// The reply's own table.
    #[default]
    Plain,
    /// `list` with these options.
    List(verbs::ListArgs),
    /// `conn list` with this limit.
    Conns(Option<u32>),
    /// `health`.
    Health,
}

fn main() -> ExitCode {
    ExitCode::from(run(Cli::parse()))
}

/// Runs the command line; returns the exit code, having printed any error.
fn run(cli: Cli) -> u8 {
    let usage = |e: String| {
        eprintln!("sluicectl: {e}");
        2
    };
    let mut view = View::Plain;
    let command = match cli.cmd {
        Cmd::Completions { shell } => {
            completions::write(shell, &mut Cli::command(), &mut std::io::stdout());
            return 0;
        }
        Cmd::Man => {
            return match completions::man(Cli::command(), &mut std::io::stdout()) {
                Ok(()) => 0,
                Err(e) => usage(format!("cannot write the manual page: {e}")),
            };
        }
        Cmd::Import(i) => {
            return match import::run(&i) {
                Ok(toml) => {
                    print!("{toml}");
                    0
                }
                Err(e) => {
                    eprintln!("sluicectl: {e}");
                    2
                }
            };
        }
        Cmd::Top(a) => {
            if cli.json {
                return usage("top has no JSON output; use list --json and stats --json".into());
            }
            return top::run(&cli.socket, &a);
        }
        Cmd::Status => Command::Status,
        Cmd::Health => {
            view = View::Health;
            Command::ServiceList { raw: false }
        }
        Cmd::Stats => Command::Stats,
        Cmd::Vip(VipCmd::Withdraw { vip }) => Command::VipWithdraw { vip },
        Cmd::Vip(VipCmd::Announce { vip }) => Command::VipAnnounce { vip },
        Cmd::Shutdown => Command::Shutdown,
        Cmd::List(a) | Cmd::Service(verbs::ServiceCmd::List(a)) => {
            view = View::List(a);
            Command::ServiceList { raw: false }
        }
        Cmd::Service(s) => match s.into_command() {
            Ok(c) => c,
            Err(e) => return usage(e),
        },
        Cmd::Real(r) => match r.into_command() {
            Ok(c) => c,
            Err(e) => return usage(e),
        },
        Cmd::Zero(a) => a.into_command(),
        Cmd::Save => Command::Save,
        Cmd::Restore(a) => match a.into_command() {
            Ok(c) => c,
            Err(e) => return usage(e),
        },
        Cmd::Reload => Command::Reload,
        Cmd::Conn(conn::ConnCmd::List(a)) => {
            let filter = a.filter();
            view = View::Conns(filter.limit);
            Command::ConnList { filter }
        }
    };
    let reply = match client::request(&cli.socket, &command) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("sluicectl: {e}");
            return e.exit_code();
        }
    };
    if cli.json {
        return match serde_json::to_string_pretty(&reply) {
            Ok(s) => {
                println!("{s}");
                if reply.ok {
                    0
                } else {
                    4
                }
            }
            Err(e) => {
                eprintln!("sluicectl: cannot print the reply: {e}");
                5
            }
        };
    }
    if !reply.ok {
        eprintln!("sluicectl: {}", client::refusal_message(&reply));
        return 4;
    }
    match reply.result {
        Some(ReplyBody::Status(s)) => print!("{}", render::status(&s)),
        Some(ReplyBody::Stats(s)) => print!("{}", render::stats(&s)),
        Some(ReplyBody::ShuttingDown) => println!("sluice is shutting down"),
        Some(ReplyBody::Services(l)) if matches!(view, View::Health) => {
            print!("{}", render::health(&l))
        }
        Some(ReplyBody::Services(l)) => {
            let args = match view {
                View::List(a) => a,
                _ => verbs::ListArgs::default(),
            };
            print!("{}", render::services(&l, &args))
        }
        Some(ReplyBody::Applied(a)) => println!("{} (epoch {})", a.message, a.epoch),
        Some(ReplyBody::Config { toml }) => print!("{toml}"),
        Some(ReplyBody::Connections(c)) => {
            let limit = match view {
                View::Conns(l) => l,
                _ => None,
            };
            print!("{}", conn::render(&c, limit))
        }
        None => {
            eprintln!("sluicectl: the daemon sent an empty reply");
            return 5;
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn ipvsadm_shaped_verbs_parse() {
        let c = Cli::try_parse_from([
            "sluicectl",
            "real",
            "add",
            "-t",
            "192.0.2.100:80",
            "-r",
            "198.51.100.11:8080",
            "-w",
            "3",
            "-g",
        ])
        .unwrap();
        match c.cmd {
            Cmd::Real(r) => match r.into_command().unwrap() {
                Command::RealAdd { service, real } => {
                    assert_eq!(service.port, 80);
                    assert_eq!(real.weight, 3);
                    assert_eq!(real.forward, sluice_proto::Forward::Dr);
                }
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        }
        // -i tunnels, IP-in-IP unless --tun-type says gue; --tun-type
        // needs -i, and -i goes with neither -m nor -g.
        for (args, want) in [
            (&["-i"][..], Some(sluice_proto::Forward::Ipip)),
            (
                &["-i", "--tun-type", "gue"][..],
                Some(sluice_proto::Forward::Gue),
            ),
            (
                &["-i", "--tun-type", "ipip"][..],
                Some(sluice_proto::Forward::Ipip),
            ),
            (&["-i", "--tun-type", "gre"][..], None),
            (&["--tun-type", "gue"][..], None),
            (&["-i", "-g"][..], None),
            (&["-i", "-m"][..], None),
            // -b: full NAT, with no other method.
            (&["-b"][..], Some(sluice_proto::Forward::FullNat)),
            (&["--fullnat"][..], Some(sluice_proto::Forward::FullNat)),
            (&["-b", "-m"][..], None),
            (&["-b", "-i"][..], None),
        ] {
            let mut argv = vec!["sluicectl", "real", "add", "-t", "192.0.2.100:80"];
            argv.extend(["-r", "203.0.113.11:80"]);
            argv.extend(args);
            let got = Cli::try_parse_from(&argv).ok().map(|c| match c.cmd {
                Cmd::Real(r) => match r.into_command().unwrap() {
                    Command::RealAdd { real, .. } => real.forward,
                    other => panic!("{other:?}"),
                },
                other => panic!("{other:?}"),
            });
            assert_eq!(got, want, "{args:?}");
        }
        let c = Cli::try_parse_from([
            "sluicectl",
            "service",
            "add",
            "-u",
            "192.0.2.100:53",
            "-s",
            "mh",
            "-p",
            "60",
            "-M",
            "255.255.255.0",
            "-z",
            "198.51.100.200",
            "--local-address",
            "198.51.100.201",
        ])
        .unwrap();
        match c.cmd {
            Cmd::Service(s) => match s.into_command().unwrap() {
                Command::ServiceAdd { service } => {
                    assert_eq!(service.protocol, sluice_proto::Protocol::Udp);
                    assert_eq!(service.scheduler, sluice_proto::SchedulerKind::Mh);
                    assert_eq!(service.persistence.unwrap().netmask, Some(24));
                    let l: Vec<String> = service
                        .local_addresses
                        .iter()
                        .map(|a| a.to_string())
                        .collect();
                    assert_eq!(l, ["198.51.100.200", "198.51.100.201"]);
                }
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        }
        assert!(Cli::try_parse_from(["sluicectl", "service", "add", "-s", "rr"]).is_err());
    }

    /// IPv6 services and reals are written as `[address]:port`, and an
    /// IPv6 prefix length is a netmask.
    #[test]
    fn ipv6_addresses_in_brackets() {
        let c = Cli::try_parse_from([
            "sluicectl",
            "service",
            "add",
            "-t",
            "[2001:db8::100]:80",
            "-p",
            "60",
            "-M",
            "64",
        ])
        .unwrap();
        match c.cmd {
            Cmd::Service(s) => match s.into_command().unwrap() {
                Command::ServiceAdd { service } => {
                    assert_eq!(service.key().to_string(), "tcp [2001:db8::100]:80");
                    assert_eq!(service.persistence.unwrap().netmask, Some(64));
                }
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        }
        assert!(
            Cli::try_parse_from(["sluicectl", "service", "add", "-t", "2001:db8::100:80"]).is_err()
        );
    }
}
