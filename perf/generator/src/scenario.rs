//! The scenario's vocabulary: what the device under test does to a packet
//! ([`Mode`]), which layer-4 protocol is sent ([`Proto`]), and the real
//! servers behind the virtual service ([`Real`]), each answered by ARP with
//! a fixed MAC.

use serde::{Deserialize, Serialize};
use sluice_core::MacAddr;
use std::net::{IpAddr, SocketAddr};

/// What the device under test does to a packet, so returned packets can be
/// checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Direct routing: only the MACs change (destination: the chosen real's
    /// MAC; source: the device's).
    Dr,
    /// NAT: the destination VIP:vport becomes one of the reals' RIP:rport,
    /// the TTL (hop limit) drops by one, checksums stay valid; MACs as for
    /// DR.
    Nat,
    /// `dpdk-testpmd --forward-mode=5tswap`: MACs, IP addresses (IPv4 or
    /// IPv6) and layer-4 ports swapped.
    Swap,
    /// Tunnel mode, IP-in-IP: the packet as sent (as for DR) inside an
    /// outer IP header to one of the reals, whose MAC it is sent to.
    Ipip,
    /// Tunnel mode, GUE: the same with a UDP header to port 6080.
    Gue,
    /// Full NAT: as NAT, and the source becomes a local address and port
    /// (not a client's): the flow is known by its stamp alone.
    #[value(name = "fullnat")]
    FullNat,
}

impl Mode {
    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Dr => "dr",
            Mode::Nat => "nat",
            Mode::Swap => "swap",
            Mode::Ipip => "ipip",
            Mode::Gue => "gue",
            Mode::FullNat => "fullnat",
        }
    }
}

/// The layer-4 protocol sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    /// TCP: a SYN opens each flow, then ACK|PSH data segments.
    Tcp,
    /// UDP datagrams.
    Udp,
}

impl Proto {
    /// IP protocol number.
    pub fn number(self) -> u8 {
        match self {
            Proto::Tcp => sluice_core::wire::ipv4::PROTO_TCP,
            Proto::Udp => sluice_core::wire::ipv4::PROTO_UDP,
        }
    }

    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

/// Most reals (their MACs number them in one byte).
pub const MAX_REALS: usize = 254;

/// A real server: its address, port (NAT's rport) and the MAC the
/// generator answers ARP (neighbour solicitations) with for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Real {
    /// Real IP.
    pub ip: IpAddr,
    /// Real port.
    pub port: u16,
    /// The MAC the generator owns for it.
    pub mac: MacAddr,
}

/// The MAC of real number `i` (0-based): `02:00:00:00:01:xx`, xx = i + 1.
pub fn real_mac(i: usize) -> MacAddr {
    MacAddr([0x02, 0, 0, 0, 0x01, (i + 1) as u8])
}

/// Parses a list of reals: comma-separated items, each `IP:PORT` or
/// `FIRST-LAST:PORT` (an inclusive address range), IPv4 or IPv6 (an IPv6
/// address may be bracketed), e.g. `198.51.100.11-198.51.100.18:8080` or
/// `2001:db8:2::11-2001:db8:2::18:8080`.
pub fn parse_reals(spec: &str) -> Result<Vec<Real>, String> {
    let mut out = Vec::new();
    for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (addrs, port) = item
            .rsplit_once(':')
            .ok_or_else(|| format!("real {item:?}: want IP:PORT or FIRST-LAST:PORT"))?;
        let port: u16 = port
            .parse()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("real {item:?}: bad port {port:?}"))?;
        let (first, last) = match addrs.split_once('-') {
            Some((a, b)) => (a, b),
            None => (addrs, addrs),
        };
        let addr = |a: &str| -> Result<IpAddr, String> {
            a.trim_start_matches('[')
                .trim_end_matches(']')
                .parse()
                .map_err(|_| format!("real {item:?}: bad address {a:?}"))
        };
        let (first, last) = (addr(first)?, addr(last)?);
        if first.is_ipv4() != last.is_ipv4() {
            return Err(format!("real {item:?}: a range within one family"));
        }
        let (a, b) = (bits(first), bits(last));
        if b < a {
            return Err(format!("real {item:?}: range goes backwards"));
        }
        if b - a >= MAX_REALS as u128 {
            return Err(format!("at most {MAX_REALS} reals"));
        }
        for n in a..=b {
            if out.len() == MAX_REALS {
                return Err(format!("at most {MAX_REALS} reals"));
            }
            let ip = match first {
                IpAddr::V4(_) => IpAddr::V4((n as u32).into()),
                IpAddr::V6(_) => IpAddr::V6(n.into()),
            };
            out.push(Real {
                ip,
                port,
                mac: real_mac(out.len()),
            });
        }
    }
    if out.is_empty() {
        return Err("no reals given".into());
    }
    for (i, r) in out.iter().enumerate() {
        let sa = SocketAddr::new(r.ip, r.port);
        if out[..i].iter().any(|o| o.ip == r.ip && o.port == r.port) {
            return Err(format!("real {sa} is listed twice"));
        }
        if r.ip.is_ipv4() != out[0].ip.is_ipv4() {
            return Err(format!("real {sa}: every real of one family"));
        }
    }
    Ok(out)
}

fn bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u32::from(a).into(),
        IpAddr::V6(a) => a.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ranges_and_singles() {
        let r = parse_reals("198.51.100.11-198.51.100.18:8080, 198.51.100.30:9000").unwrap();
        assert_eq!(r.len(), 9);
        assert_eq!(r[0].ip, IpAddr::from([198, 51, 100, 11]));
        assert_eq!(r[7].ip, IpAddr::from([198, 51, 100, 18]));
        assert_eq!(r[8].port, 9000);
        assert_eq!(r[0].mac.to_string(), "02:00:00:00:01:01");
        assert_eq!(r[8].mac.to_string(), "02:00:00:00:01:09");
        let r = parse_reals("2001:db8:2::11-2001:db8:2::18:8080,[2001:db8:2::30]:9000").unwrap();
        assert_eq!(r.len(), 9);
        assert_eq!(r[7].ip, "2001:db8:2::18".parse::<IpAddr>().unwrap());
        assert_eq!(r[8].ip, "2001:db8:2::30".parse::<IpAddr>().unwrap());
        assert_eq!(r[8].port, 9000);
    }

    #[test]
    fn refuses_bad_lists() {
        for bad in [
            "",
            "198.51.100.11",
            "198.51.100.11:0",
            "198.51.100.18-198.51.100.11:80",
            "198.51.100.1-198.51.101.1:80",
            "1.2.3.4:80,1.2.3.4:80",
            "x:80",
            "198.51.100.11-2001:db8::11:80",
            "198.51.100.11:80,2001:db8::11:80",
            "2001:db8::1-2001:db8::1:0:80",
        ] {
            assert!(parse_reals(bad).is_err(), "{bad:?}");
        }
    }
}
