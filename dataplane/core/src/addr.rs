//! MAC addresses and IPv4 prefixes, with parsing and formatting.

use sluice_model::IpAddress;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// An Ethernet MAC address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// ff:ff:ff:ff:ff:ff.
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);
    /// 00:00:00:00:00:00.
    pub const ZERO: MacAddr = MacAddr([0; 6]);

    /// Whether the group bit is set (broadcast or multicast).
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 1 == 1
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for MacAddr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.split(':').collect();
        if parts.len() != 6 {
            return Err(format!(
                "{s:?} is not a MAC address (want xx:xx:xx:xx:xx:xx)"
            ));
        }
        let mut m = [0u8; 6];
        for (i, p) in parts.iter().enumerate() {
            m[i] = u8::from_str_radix(p, 16)
                .map_err(|_| format!("{s:?} is not a MAC address (bad byte {p:?})"))?;
        }
        Ok(MacAddr(m))
    }
}

/// An address with a prefix length, e.g. `192.0.2.1/24` or
/// `2001:db8::1/64`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Prefix<A> {
    /// The address (host bits may be set: an interface address).
    pub addr: A,
    /// Prefix length, 0..=32 (IPv4) or 0..=128 (IPv6).
    pub len: u8,
}

/// An IPv4 prefix.
pub type Ipv4Prefix = Prefix<Ipv4Addr>;
/// An IPv6 prefix.
pub type Ipv6Prefix = Prefix<Ipv6Addr>;

impl<A: IpAddress> Prefix<A> {
    /// Builds a prefix; `len` must be at most the family's width.
    pub fn new(addr: A, len: u8) -> Option<Prefix<A>> {
        (len <= A::BITS).then_some(Prefix { addr, len })
    }

    /// The network address.
    pub fn network(&self) -> A {
        self.addr.masked(A::prefix_mask(self.len))
    }

    /// Whether `ip` is inside the prefix.
    pub fn contains(&self, ip: A) -> bool {
        ip.masked(A::prefix_mask(self.len)) == self.network()
    }
}

impl Ipv4Prefix {
    /// The netmask as a host-order integer.
    pub fn mask(&self) -> u32 {
        u32::from(Ipv4Addr::prefix_mask(self.len))
    }

    /// The directed broadcast address (all host bits set), for prefixes
    /// that have one (shorter than /31, RFC 3021).
    pub fn broadcast(&self) -> Option<Ipv4Addr> {
        (self.len < 31).then(|| Ipv4Addr::from(u32::from(self.addr) | !self.mask()))
    }
}

impl<A: fmt::Display> fmt::Display for Prefix<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl<A: IpAddress + FromStr> FromStr for Prefix<A> {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let family = if A::BITS == 32 { "IPv4" } else { "IPv6" };
        let (a, l) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let addr: A = a.parse().map_err(|_| {
            format!("{s:?} is not an {family} prefix ({a:?} is not an {family} address)")
        })?;
        let len = match l {
            None => A::BITS,
            Some(l) => l
                .parse::<u8>()
                .ok()
                .filter(|l| *l <= A::BITS)
                .ok_or_else(|| {
                    format!(
                        "{s:?} is not an {family} prefix (length {l:?} is not 0..={})",
                        A::BITS
                    )
                })?,
        };
        Ok(Prefix { addr, len })
    }
}

/// Addresses up to which [`contains_sorted`] scans instead of bisecting.
const SCAN_UP_TO: usize = 16;

/// Whether `set`, sorted, holds `ip`: a scan of compares while the set is
/// short (a port's addresses, a few VIPs), a binary search beyond.
#[inline(always)]
pub fn contains_sorted<A: Ord>(set: &[A], ip: A) -> bool {
    if set.len() <= SCAN_UP_TO {
        set.contains(&ip)
    } else {
        set.binary_search(&ip).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contains_sorted_scans_short_sets_and_bisects_long_ones() {
        for n in [0u32, 1, 5, 16, 17, 300] {
            let set: Vec<Ipv4Addr> = (0..n)
                .map(|i| Ipv4Addr::from(0x0a00_0000 + 3 * i))
                .collect();
            for probe in 0..(3 * n + 3) {
                let ip = Ipv4Addr::from(0x0a00_0000 + probe);
                assert_eq!(contains_sorted(&set, ip), set.contains(&ip), "{n} {ip}");
            }
        }
    }

    #[test]
    fn mac_round_trip() {
        let m: MacAddr = "02:00:5e:10:00:ff".parse().unwrap();
        assert_eq!(m.to_string(), "02:00:5e:10:00:ff");
        assert!("02:00:5e:10:00".parse::<MacAddr>().is_err());
        assert!("02:00:5e:10:00:zz".parse::<MacAddr>().is_err());
        assert!(MacAddr::BROADCAST.is_multicast());
        assert!(!m.is_multicast());
    }

    #[test]
    fn prefix_parse_and_contains() {
        let p: Ipv4Prefix = "192.0.2.1/24".parse().unwrap();
        assert_eq!(p.network(), Ipv4Addr::new(192, 0, 2, 0));
        assert!(p.contains(Ipv4Addr::new(192, 0, 2, 200)));
        assert!(!p.contains(Ipv4Addr::new(192, 0, 3, 1)));
        assert_eq!(p.broadcast(), Some(Ipv4Addr::new(192, 0, 2, 255)));
        let p31: Ipv4Prefix = "192.0.2.0/31".parse().unwrap();
        assert_eq!(p31.broadcast(), None);
        assert_eq!("192.0.2.1".parse::<Ipv4Prefix>().unwrap().len, 32);
        assert!("192.0.2.1/33".parse::<Ipv4Prefix>().is_err());
        assert!("192.0.2/24".parse::<Ipv4Prefix>().is_err());
        let all: Ipv4Prefix = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(Ipv4Addr::new(203, 0, 113, 9)));
    }

    #[test]
    fn ipv6_prefixes() {
        let p: Ipv6Prefix = "2001:db8:1::1/64".parse().unwrap();
        assert_eq!(p.network(), "2001:db8:1::".parse::<Ipv6Addr>().unwrap());
        assert!(p.contains("2001:db8:1::ffff:1".parse().unwrap()));
        assert!(!p.contains("2001:db8:2::1".parse().unwrap()));
        assert_eq!(p.to_string(), "2001:db8:1::1/64");
        assert_eq!("2001:db8::1".parse::<Ipv6Prefix>().unwrap().len, 128);
        let e = "2001:db8::1/129".parse::<Ipv6Prefix>().unwrap_err();
        assert!(e.contains("not 0..=128"), "{e}");
        assert!("192.0.2.1/24"
            .parse::<Ipv6Prefix>()
            .unwrap_err()
            .contains("not an IPv6 address"));
        let all: Ipv6Prefix = "::/0".parse().unwrap();
        assert!(all.contains("2001:db8::9".parse().unwrap()));
    }
}
