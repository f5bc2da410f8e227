//! The BIRD configuration Sluice writes: its announcements as a static
//! protocol, and a BGP session per neighbour that exports only them. The
//! operator's `bird.conf` includes the file (README, "Scale-out").

use super::decide::VipState;
use crate::config::BgpConfig;
use std::fmt::Write;
use std::net::IpAddr;

/// BIRD's name of the static protocol holding the IPv4 (IPv6) VIPs.
const STATIC4: &str = "sluice_vips4";
const STATIC6: &str = "sluice_vips6";

/// The include file for `states` (only the announced ones are routes).
pub fn render(c: &BgpConfig, states: &[VipState]) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "# Written by Sluice from the [bgp] section of its configuration: the\n\
         # VIPs this appliance announces now. Rewritten on every change; do not edit.\n\
         router id {};\n",
        c.router_id
    );
    for (name, v4) in [(STATIC4, true), (STATIC6, false)] {
        let _ = writeln!(
            o,
            "protocol static {name} {{\n\t{};",
            if v4 { "ipv4" } else { "ipv6" }
        );
        for s in states
            .iter()
            .filter(|s| s.withdrawn.is_none() && s.vip.is_ipv4() == v4)
        {
            let _ = writeln!(o, "\troute {} blackhole;", prefix(s.vip));
        }
        let _ = writeln!(o, "}}\n");
        // What the neighbours get: these routes only, with each VIP's
        // attributes (set on export: BIRD sends eBGP peers a MED only
        // when the export filter sets it).
        let _ = writeln!(
            o,
            "filter {name}_export {{\n\tif proto != \"{name}\" then reject;"
        );
        for v in c.vips.iter().filter(|v| v.address.is_ipv4() == v4) {
            let body = attributes(v);
            if !body.is_empty() {
                let _ = writeln!(o, "\tif net = {} then {{{body} }}", prefix(v.address));
            }
        }
        let _ = writeln!(o, "\taccept;\n}}\n");
    }
    if c.bfd {
        let _ = writeln!(
            o,
            "protocol bfd sluice_bfd {{\n\tinterface \"*\" {{ min rx interval 100 ms; \
             min tx interval 100 ms; multiplier 3; }};\n}}\n"
        );
    }
    for (i, n) in c.neighbors.iter().enumerate() {
        let (channel, source) = if n.address.is_ipv4() {
            ("ipv4", STATIC4)
        } else {
            ("ipv6", STATIC6)
        };
        let _ = writeln!(
            o,
            "protocol bgp sluice_peer{} {{\n\
             \tlocal as {};\n\
             \tneighbor {} as {};\n\
             \thold time {};\n\
             \tkeepalive time {};\n\
             \tconnect retry time 1;\n\
             \terror wait time 1, 10;\n{}{}\
             \t{channel} {{ import none; export filter {source}_export; next hop self; }};\n\
             }}\n",
            i + 1,
            c.local_as,
            n.address,
            n.remote_as,
            c.hold_time,
            (c.hold_time / 3).max(1),
            // iBGP is multihop to BIRD unless told the neighbour is on a
            // connected segment (and multihop BFD wants a local address).
            if n.remote_as == c.local_as {
                "\tdirect;\n"
            } else {
                ""
            },
            if c.bfd { "\tbfd on;\n" } else { "" },
        );
    }
    o
}

fn prefix(vip: IpAddr) -> String {
    match vip {
        IpAddr::V4(v) => format!("{v}/32"),
        IpAddr::V6(v) => format!("{v}/128"),
    }
}

/// ` bgp_med = ..; bgp_community.add(..);` for `v`.
fn attributes(v: &crate::config::VipRoute) -> String {
    let mut body = String::new();
    if let Some(med) = v.med {
        let _ = write!(body, " bgp_med = {med};");
    }
    for (a, n) in &v.communities {
        let _ = write!(body, " bgp_community.add(({a},{n}));");
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bgp::decide::Withdrawn;
    use crate::config::{Neighbor, VipRoute};

    fn config() -> BgpConfig {
        BgpConfig {
            router_id: "198.51.100.11".parse().unwrap(),
            local_as: 64513,
            bird_socket: "/run/bird/bird.ctl".into(),
            include_file: "/run/sluice/bird.conf".into(),
            drain_ms: 3000,
            hold_time: 3,
            bfd: true,
            neighbors: vec![Neighbor {
                address: "198.51.100.1".parse().unwrap(),
                remote_as: 64512,
            }],
            vips: vec![VipRoute {
                address: "192.0.2.10".parse().unwrap(),
                med: Some(50),
                communities: vec![(64512, 100)],
            }],
        }
    }

    #[test]
    fn only_announced_vips_are_routes() {
        let states = [
            VipState {
                vip: "192.0.2.10".parse().unwrap(),
                withdrawn: None,
            },
            VipState {
                vip: "192.0.2.11".parse().unwrap(),
                withdrawn: Some(Withdrawn::NoUsableReal),
            },
            VipState {
                vip: "2001:db8::10".parse().unwrap(),
                withdrawn: None,
            },
        ];
        let t = render(&config(), &states);
        assert!(t.contains("route 192.0.2.10/32 blackhole;"));
        assert!(t.contains(
            "if net = 192.0.2.10/32 then { bgp_med = 50; bgp_community.add((64512,100)); }"
        ));
        assert!(!t.contains("192.0.2.11"));
        assert!(t.contains("route 2001:db8::10/128 blackhole;"));
        assert!(t.contains("neighbor 198.51.100.1 as 64512;"));
        assert!(t.contains("hold time 3;\n\tkeepalive time 1;"));
        assert!(t.contains("bfd on;"));
        assert!(t.contains("export filter sluice_vips4_export;"));
        assert!(t.contains("if proto != \"sluice_vips4\" then reject;"));
    }
}
