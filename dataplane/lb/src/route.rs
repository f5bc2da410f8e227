//! The routing table: the connected prefixes of the ports' addresses,
//! static routes and the default gateway. Longest prefix wins; a connected
//! prefix delivers to the destination itself, a route to its next hop.
//! One table per address family, the same code (`RouteTable<Ipv6Addr>`).

use sluice_core::Prefix;
use sluice_model::IpAddress;
use std::net::Ipv4Addr;

/// Where a packet to some destination goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NextHop<A = Ipv4Addr> {
    /// Port index.
    pub port: usize,
    /// The address whose MAC to send to.
    pub via: A,
}

#[derive(Debug, Clone)]
struct Entry<A> {
    prefix: Prefix<A>,
    port: usize,
    /// None: connected (the destination is the next hop).
    via: Option<A>,
}

/// Connected prefixes, static routes and the default gateway.
#[derive(Debug, Clone)]
pub struct RouteTable<A = Ipv4Addr> {
    /// Sorted by prefix length, longest first.
    entries: Vec<Entry<A>>,
}

impl<A> Default for RouteTable<A> {
    fn default() -> Self {
        RouteTable {
            entries: Vec::new(),
        }
    }
}

impl<A: IpAddress> RouteTable<A> {
    /// Builds the table. `connected` are (port, interface prefix); routes
    /// and the gateway must be reachable through a connected prefix, else
    /// an error names them.
    pub fn new(
        connected: &[(usize, Prefix<A>)],
        statics: &[(Prefix<A>, A)],
        gateway: Option<A>,
    ) -> Result<RouteTable<A>, String> {
        let mut entries: Vec<Entry<A>> = connected
            .iter()
            .map(|(port, p)| Entry {
                prefix: Prefix {
                    addr: p.network(),
                    len: p.len,
                },
                port: *port,
                via: None,
            })
            .collect();
        let port_of = |ip: A, entries: &[Entry<A>]| {
            entries
                .iter()
                .filter(|e| e.via.is_none() && e.prefix.contains(ip))
                .max_by_key(|e| e.prefix.len)
                .map(|e| e.port)
        };
        let mut extra = Vec::new();
        for (prefix, via) in statics {
            let port = port_of(*via, &entries).ok_or_else(|| {
                format!("next hop {via} of route {prefix} is not on a connected prefix")
            })?;
            extra.push(Entry {
                prefix: Prefix {
                    addr: prefix.network(),
                    len: prefix.len,
                },
                port,
                via: Some(*via),
            });
        }
        if let Some(gw) = gateway {
            let port = port_of(gw, &entries)
                .ok_or_else(|| format!("gateway {gw} is not on a connected prefix"))?;
            extra.push(Entry {
                prefix: Prefix {
                    addr: A::UNSPECIFIED,
                    len: 0,
                },
                port,
                via: Some(gw),
            });
        }
        entries.extend(extra);
        // Longest prefix first; at equal length connected before routes.
        entries.sort_by(|a, b| {
            b.prefix
                .len
                .cmp(&a.prefix.len)
                .then(a.via.is_some().cmp(&b.via.is_some()))
        });
        Ok(RouteTable { entries })
    }

    /// Whether the table has no route at all (the family is not configured).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The next hop towards `dst`.
    #[inline]
    pub fn lookup(&self, dst: A) -> Option<NextHop<A>> {
        self.entries
            .iter()
            .find(|e| e.prefix.contains(dst))
            .map(|e| NextHop {
                port: e.port,
                via: e.via.unwrap_or(dst),
            })
    }

    /// Whether `ip` is on a connected prefix (DR reals must be).
    pub fn is_connected(&self, ip: A) -> Option<usize> {
        self.entries
            .iter()
            .find(|e| e.via.is_none() && e.prefix.contains(ip))
            .map(|e| e.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use sluice_core::{Ipv4Prefix, Ipv6Prefix};
    use std::net::Ipv6Addr;

    fn p(s: &str) -> Ipv4Prefix {
        s.parse().unwrap()
    }

    /// The same table for IPv6: a connected /64 per port, a static route
    /// and a default gateway, longest prefix first.
    #[test]
    fn ipv6_routes() {
        let p6 = |s: &str| s.parse::<Ipv6Prefix>().unwrap();
        let ip = |s: &str| s.parse::<Ipv6Addr>().unwrap();
        let t = RouteTable::new(
            &[(0, p6("2001:db8:1::1/64")), (1, p6("2001:db8:2::1/64"))],
            &[(p6("2001:db8:99::/48"), ip("2001:db8:2::fe"))],
            Some(ip("2001:db8:1::fe")),
        )
        .unwrap();
        assert_eq!(
            t.lookup(ip("2001:db8:2::11")),
            Some(NextHop {
                port: 1,
                via: ip("2001:db8:2::11")
            })
        );
        assert_eq!(
            t.lookup(ip("2001:db8:99:5::1")),
            Some(NextHop {
                port: 1,
                via: ip("2001:db8:2::fe")
            })
        );
        assert_eq!(
            t.lookup(ip("2001:db8:7::1")),
            Some(NextHop {
                port: 0,
                via: ip("2001:db8:1::fe")
            })
        );
        assert_eq!(t.is_connected(ip("2001:db8:99::1")), None);
        assert!(RouteTable::new(
            &[(0, p6("2001:db8:1::1/64"))],
            &[],
            Some(ip("2001:db8:5::1"))
        )
        .is_err());
    }

    #[test]
    fn longest_prefix_and_gateway() {
        let t = RouteTable::new(
            &[(0, p("192.0.2.1/24")), (1, p("198.51.100.1/24"))],
            &[(p("203.0.113.0/25"), "198.51.100.254".parse().unwrap())],
            Some("192.0.2.254".parse().unwrap()),
        )
        .unwrap();
        let ip = |s: &str| s.parse::<Ipv4Addr>().unwrap();
        assert_eq!(
            t.lookup(ip("192.0.2.7")),
            Some(NextHop {
                port: 0,
                via: ip("192.0.2.7")
            })
        );
        assert_eq!(
            t.lookup(ip("198.51.100.9")),
            Some(NextHop {
                port: 1,
                via: ip("198.51.100.9")
            })
        );
        assert_eq!(
            t.lookup(ip("203.0.113.5")),
            Some(NextHop {
                port: 1,
                via: ip("198.51.100.254")
            })
        );
        assert_eq!(
            t.lookup(ip("203.0.113.200")),
            Some(NextHop {
                port: 0,
                via: ip("192.0.2.254")
            })
        );
        assert_eq!(t.is_connected(ip("203.0.113.5")), None);
        assert_eq!(t.is_connected(ip("198.51.100.9")), Some(1));
    }

    #[test]
    fn unreachable_next_hops_are_refused() {
        assert!(RouteTable::new(
            &[(0, p("192.0.2.1/24"))],
            &[],
            Some("10.9.9.9".parse().unwrap())
        )
        .is_err());
        let t = RouteTable::new(&[(0, p("192.0.2.1/24"))], &[], None).unwrap();
        assert_eq!(t.lookup("203.0.113.1".parse().unwrap()), None);
    }
}
