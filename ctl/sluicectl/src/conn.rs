//! `conn list`: the connections in the workers' tables, filtered, as a
//! table in the manner of `ipvsadm -Lnc`.

use crate::verbs::OptServiceAddr;
use clap::{Args, Subcommand};
use sluice_proto::{ConnFilter, ConnList, Forward};
use std::fmt::Write;
use std::net::IpAddr;

/// The daemon's limit when the request names none.
pub const DEFAULT_LIMIT: u32 = 100;

/// `sluicectl conn ...`
#[derive(Subcommand, Debug)]
pub enum ConnCmd {
    /// List connections (ipvsadm -Lnc).
    List(ConnListArgs),
}

/// Options of `conn list`.
#[derive(Args, Debug, Clone, Default)]
pub struct ConnListArgs {
    #[command(flatten)]
    addr: OptServiceAddr,
    /// Only connections from this client address.
    #[arg(long, value_name = "IP")]
    client: Option<IpAddr>,
    /// Only connections to this real server address.
    #[arg(long, value_name = "IP")]
    real: Option<IpAddr>,
    /// Only connections in this state (ESTABLISHED, SYN_RECV, FIN_WAIT,
    /// TIME_WAIT, CLOSE, UDP, ...; any case).
    #[arg(long)]
    state: Option<String>,
    /// At most this many (1 to 10000; the daemon's default is 100).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=10000))]
    limit: Option<u32>,
}

impl ConnListArgs {
    /// The filter `conn list` sends.
    pub fn filter(&self) -> ConnFilter {
        ConnFilter {
            service: self.addr.key(),
            client: self.client,
            real: self.real,
            state: self.state.as_ref().map(|s| s.to_ascii_uppercase()),
            limit: self.limit,
        }
    }
}

const HEAD: [&str; 8] = [
    "Pro",
    "FromIP:Port",
    "VIP:Port",
    "DestIP:Port",
    "Fwd",
    "State",
    "Expires",
    "Worker",
];

fn row(o: &mut String, c: [&str; 8]) {
    let _ = writeln!(
        o,
        "{:<4} {:<21} {:<21} {:<21} {:<5} {:<11} {:>7} {:>6}",
        c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]
    );
}

/// The `conn list` table; `limit` is the limit the request named, for the
/// note when more connections matched than were listed.
pub fn render(l: &ConnList, limit: Option<u32>) -> String {
    let mut o = String::new();
    row(&mut o, HEAD);
    for c in &l.connections {
        let fwd = match c.forward {
            Forward::Nat => "Masq",
            Forward::Dr => "Route",
            Forward::Ipip => "Tunnel",
            Forward::Gue => "GUE",
            Forward::FullNat => "FullNat",
        };
        // Full NAT: the real sees the local address as the client's.
        let real = match c.local {
            Some(l) => format!("{} via {l}", c.real),
            None => c.real.to_string(),
        };
        row(
            &mut o,
            [
                &c.protocol.to_string().to_uppercase(),
                &c.client.to_string(),
                &c.vip.to_string(),
                &real,
                fwd,
                &c.state,
                &crate::units::mm_ss(c.expires_in_secs),
                &c.worker.to_string(),
            ],
        );
    }
    if l.truncated {
        let limit = match limit {
            Some(n) => format!("the limit of {n}"),
            None => format!("the default limit of {DEFAULT_LIMIT}"),
        };
        let _ = writeln!(
            o,
            "(only {} shown: more connections matched than {limit}; narrow the filter or raise --limit)",
            l.connections.len()
        );
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_proto::{ConnInfo, Protocol};

    #[test]
    fn table() {
        let l = ConnList {
            connections: vec![ConnInfo {
                protocol: Protocol::Tcp,
                client: "203.0.113.7:40000".parse().unwrap(),
                vip: "192.0.2.100:80".parse().unwrap(),
                real: "198.51.100.11:8080".parse().unwrap(),
                forward: Forward::Dr,
                local: None,
                state: "ESTABLISHED".into(),
                expires_in_secs: 899,
                worker: 1,
            }],
            truncated: true,
        };
        let t = render(&l, Some(1));
        let lines: Vec<_> = t.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("Pro  FromIP:Port"));
        assert!(lines[1].starts_with("TCP  203.0.113.7:40000     192.0.2.100:80"));
        assert!(lines[1].contains("Route ESTABLISHED   14:59      1"));
        assert!(lines[2].contains("limit of 1"));
        let t = render(
            &ConnList {
                connections: vec![],
                truncated: false,
            },
            None,
        );
        assert_eq!(t.lines().count(), 1);
    }
}
