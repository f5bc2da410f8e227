//! The `[bgp]` section: how the appliance's VIPs are announced to the
//! upstream routers through the BIRD daemon beside it (see
//! [`crate::bgp`]).

use super::raw::RawBgp;
use super::refusal::{refusal, refuse, Refusal};
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

/// Where BIRD's control socket is by default (Debian's bird2).
pub const DEFAULT_BIRD_SOCKET: &str = "/run/bird/bird.ctl";
/// The file Sluice writes for BIRD's configuration to include.
pub const DEFAULT_INCLUDE_FILE: &str = "/run/sluice/bird.conf";
/// How long a graceful stop waits between withdrawing and stopping.
pub const DEFAULT_DRAIN_MS: u32 = 3000;
/// The BGP hold time offered to the neighbours (seconds).
pub const DEFAULT_HOLD_TIME: u16 = 9;

/// BGP settings, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BgpConfig {
    /// BGP router id.
    pub router_id: Ipv4Addr,
    /// The appliance's AS.
    pub local_as: u32,
    /// BIRD's control socket.
    pub bird_socket: PathBuf,
    /// The file Sluice writes and BIRD's configuration includes.
    pub include_file: PathBuf,
    /// Withdraw, wait this long for the routers to move, then stop.
    pub drain_ms: u32,
    /// Hold time offered (keepalives every third of it).
    pub hold_time: u16,
    /// BFD on every session.
    pub bfd: bool,
    /// Upstream routers.
    pub neighbors: Vec<Neighbor>,
    /// Attributes of some VIPs' announcements.
    pub vips: Vec<VipRoute>,
}

/// An upstream router.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Neighbor {
    /// Its address.
    pub address: IpAddr,
    /// Its AS.
    pub remote_as: u32,
}

/// What a VIP's announcement carries besides the prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VipRoute {
    /// The VIP.
    pub address: IpAddr,
    /// BGP MED (lower is preferred: primary and backup sites).
    pub med: Option<u32>,
    /// Standard communities, (AS, value).
    pub communities: Vec<(u16, u16)>,
}

/// Checks `[bgp]`.
pub(super) fn validate(raw: &Option<RawBgp>) -> Result<Option<BgpConfig>, Refusal> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    let router_id: Ipv4Addr = raw.router_id.parse().map_err(|_| {
        refusal(
            "bgp.router_id",
            format!("{:?} is not an IPv4 address", raw.router_id),
        )
    })?;
    if raw.local_as == 0 {
        return refuse("bgp.local_as", "AS 0 is reserved");
    }
    let hold_time = raw.hold_time.unwrap_or(DEFAULT_HOLD_TIME);
    if hold_time < 3 {
        return refuse(
            "bgp.hold_time",
            "a hold time is at least 3 seconds (RFC 4271)",
        );
    }
    if raw.neighbors.is_empty() {
        return refuse("bgp.neighbor", "at least one neighbour is needed");
    }
    let mut neighbors = Vec::new();
    for (i, n) in raw.neighbors.iter().enumerate() {
        let address = n.address.parse().map_err(|_| {
            refusal(
                format!("bgp.neighbor[{i}].address"),
                format!("{:?} is not an IP address", n.address),
            )
        })?;
        if n.remote_as == 0 {
            return refuse(format!("bgp.neighbor[{i}].remote_as"), "AS 0 is reserved");
        }
        neighbors.push(Neighbor {
            address,
            remote_as: n.remote_as,
        });
    }
    let mut vips = Vec::new();
    for (i, v) in raw.vips.iter().enumerate() {
        let address = v.address.parse().map_err(|_| {
            refusal(
                format!("bgp.vip[{i}].address"),
                format!("{:?} is not an IP address", v.address),
            )
        })?;
        let mut communities = Vec::new();
        for (j, c) in v.communities.iter().enumerate() {
            communities.push(community(c).ok_or_else(|| {
                refusal(
                    format!("bgp.vip[{i}].communities[{j}]"),
                    format!("{c:?} is not a community: \"AS:VALUE\", each 0..65535"),
                )
            })?);
        }
        vips.push(VipRoute {
            address,
            med: v.med,
            communities,
        });
    }
    for (name, path) in [
        ("bird_socket", &raw.bird_socket),
        ("include_file", &raw.include_file),
    ] {
        if let Some(p) = path {
            if !p.starts_with('/') || p.contains('"') {
                return refuse(
                    format!("bgp.{name}"),
                    format!("{p:?} is not an absolute path without quotes"),
                );
            }
        }
    }
    Ok(Some(BgpConfig {
        router_id,
        local_as: raw.local_as,
        bird_socket: raw
            .bird_socket
            .as_deref()
            .unwrap_or(DEFAULT_BIRD_SOCKET)
            .into(),
        include_file: raw
            .include_file
            .as_deref()
            .unwrap_or(DEFAULT_INCLUDE_FILE)
            .into(),
        drain_ms: raw.drain_ms.unwrap_or(DEFAULT_DRAIN_MS),
        hold_time,
        bfd: raw.bfd,
        neighbors,
        vips,
    }))
}

/// "AS:VALUE" as a standard community.
fn community(s: &str) -> Option<(u16, u16)> {
    let (a, v) = s.split_once(':')?;
    Some((a.trim().parse().ok()?, v.trim().parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::raw::{RawNeighbor, RawVipRoute};

    fn raw() -> RawBgp {
        RawBgp {
            router_id: "198.51.100.11".into(),
            local_as: 64513,
            neighbors: vec![RawNeighbor {
                address: "198.51.100.1".into(),
                remote_as: 64512,
            }],
            ..RawBgp::default()
        }
    }

    #[test]
    fn defaults_and_attributes() {
        let mut r = raw();
        r.vips.push(RawVipRoute {
            address: "192.0.2.10".into(),
            med: Some(50),
            communities: vec!["64512:100".into()],
        });
        let c = validate(&Some(r)).unwrap().unwrap();
        assert_eq!(c.bird_socket, PathBuf::from(DEFAULT_BIRD_SOCKET));
        assert_eq!(c.drain_ms, DEFAULT_DRAIN_MS);
        assert_eq!(c.hold_time, DEFAULT_HOLD_TIME);
        assert_eq!(c.vips[0].communities, vec![(64512, 100)]);
        assert_eq!(validate(&None).unwrap(), None);
    }

    #[test]
    fn refusals_name_the_field() {
        type Change = Box<dyn Fn(&mut RawBgp)>;
        let cases: Vec<(Change, &str)> = vec![
            (Box::new(|r| r.router_id = "x".into()), "bgp.router_id"),
            (Box::new(|r| r.local_as = 0), "bgp.local_as"),
            (Box::new(|r| r.hold_time = Some(2)), "bgp.hold_time"),
            (Box::new(|r| r.neighbors.clear()), "bgp.neighbor"),
            (
                Box::new(|r| r.neighbors[0].address = "1.2.3".into()),
                "bgp.neighbor[0].address",
            ),
            (
                Box::new(|r| {
                    r.vips.push(RawVipRoute {
                        address: "192.0.2.10".into(),
                        med: None,
                        communities: vec!["70000:1".into()],
                    })
                }),
                "bgp.vip[0].communities[0]",
            ),
            (
                Box::new(|r| r.include_file = Some("relative.conf".into())),
                "bgp.include_file",
            ),
        ];
        for (change, field) in cases {
            let mut r = raw();
            change(&mut r);
            let e = validate(&Some(r)).unwrap_err();
            assert_eq!(e.location, field, "{}", e.reason);
        }
    }
}
