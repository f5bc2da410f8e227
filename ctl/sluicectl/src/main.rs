//! `sluicectl`: the operator's client for the Sluice control socket.
//!
//! Exit codes: 0 success; 2 usage error; 3 the daemon cannot be reached;
//! 4 the daemon refused the request (error reply); 5 the reply could not
//! be understood.

mod client;
mod render;
mod verbs;

use clap::{Parser, Subcommand};
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
    /// List services with their reals (as `service list`).
    List(verbs::ListArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut list_args = verbs::ListArgs::default();
    let command = match cli.cmd {
        Cmd::Status => Command::Status,
        Cmd::Stats => Command::Stats,
        Cmd::Shutdown => Command::Shutdown,
        Cmd::List(a) => {
            list_args = a;
            Command::ServiceList { raw: false }
        }
        Cmd::Service(verbs::ServiceCmd::List(a)) => {
            list_args = a;
            Command::ServiceList { raw: false }
        }
        Cmd::Service(s) => match s.into_command() {
            Ok(c) => c,
            Err(e) => {
                eprintln!("sluicectl: {e}");
                return ExitCode::from(2);
            }
        },
        Cmd::Real(r) => match r.into_command() {
            Ok(c) => c,
            Err(e) => {
                eprintln!("sluicectl: {e}");
                return ExitCode::from(2);
            }
        },
    };
    let reply = match client::request(&cli.socket, &command) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("sluicectl: {e}");
            return ExitCode::from(e.exit_code());
        }
    };
    if cli.json {
        match serde_json::to_string_pretty(&reply) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("sluicectl: cannot print the reply: {e}");
                return ExitCode::from(5);
            }
        }
        return if reply.ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(4)
        };
    }
    if !reply.ok {
        let (code, msg) = reply
            .error
            .map(|e| (format!("{:?}", e.code), e.message))
            .unwrap_or_else(|| ("unknown".into(), "no error given".into()));
        eprintln!("sluicectl: the daemon refused the request ({code}): {msg}");
        return ExitCode::from(4);
    }
    match reply.result {
        Some(ReplyBody::Status(s)) => print!("{}", render::status(&s)),
        Some(ReplyBody::Stats(s)) => print!("{}", render::stats(&s)),
        Some(ReplyBody::ShuttingDown) => println!("sluice is shutting down"),
        Some(ReplyBody::Services(l)) => print!("{}", render::services(&l, &list_args)),
        Some(ReplyBody::Applied(a)) => println!("{} (epoch {})", a.message, a.epoch),
        Some(ReplyBody::Config { toml }) => print!("{toml}"),
        Some(ReplyBody::Connections(c)) => {
            print!("{}", serde_json::to_string_pretty(&c).unwrap_or_default())
        }
        None => {
            eprintln!("sluicectl: the daemon sent an empty reply");
            return ExitCode::from(5);
        }
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

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
        ])
        .unwrap();
        match c.cmd {
            Cmd::Service(s) => match s.into_command().unwrap() {
                Command::ServiceAdd { service } => {
                    assert_eq!(service.protocol, sluice_proto::Protocol::Udp);
                    assert_eq!(service.scheduler, "mh");
                    assert_eq!(service.persistence.unwrap().netmask, 24);
                }
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        }
        assert!(Cli::try_parse_from(["sluicectl", "service", "add", "-s", "rr"]).is_err());
    }
}
