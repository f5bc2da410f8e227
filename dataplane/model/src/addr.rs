//! The two IP address families behind one trait, [`IpAddress`], so that
//! tables keyed by addresses (connections, persistence templates,
//! neighbours) are written once for IPv4 and IPv6.

use std::fmt::{Debug, Display};
use std::hash::Hash;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};

/// An IPv4 or IPv6 address, as a value of fixed width.
pub trait IpAddress: Copy + Eq + Ord + Hash + Debug + Display + Send + Sync + 'static {
    /// Width in bits: 32 or 128.
    const BITS: u8;
    /// The unspecified address (0.0.0.0 or ::).
    const UNSPECIFIED: Self;

    /// The family's address and port ([`SocketAddrV4`] or
    /// [`SocketAddrV6`], the latter with no flow label or scope).
    type Socket: SocketAddress<Ip = Self>;

    /// The socket address of this address and `port`.
    fn socket(self, port: u16) -> Self::Socket;
    /// `ip` if it is of this family.
    fn from_ip(ip: IpAddr) -> Option<Self>;
    /// As an [`IpAddr`].
    fn to_ip(self) -> IpAddr;

    /// The address as an integer, most significant bit first.
    fn to_bits(self) -> u128;
    /// The address of integer `b` (its low [`Self::BITS`] bits).
    fn from_bits(b: u128) -> Self;

    /// The mask of a prefix of `len` bits (all ones when `len` is
    /// [`Self::BITS`] or more, zero for 0).
    fn prefix_mask(len: u8) -> Self {
        let len = u32::from(len.min(Self::BITS));
        let ones = if len == 0 {
            0
        } else {
            u128::MAX << (128 - len)
        };
        Self::from_bits(ones >> (128 - u32::from(Self::BITS)))
    }

    /// The address with only the bits of `mask` kept.
    #[inline(always)]
    fn masked(self, mask: Self) -> Self {
        Self::from_bits(self.to_bits() & mask.to_bits())
    }

    /// The address folded to 32 bits, for small hash tables (the address
    /// itself for IPv4; the exclusive or of its four words for IPv6). Not
    /// for tables an attacker can fill: folding makes collisions easy.
    #[inline(always)]
    fn fold32(self) -> u32 {
        let w = self.to_bits();
        (w as u32) ^ ((w >> 32) as u32) ^ ((w >> 64) as u32) ^ ((w >> 96) as u32)
    }
}

/// An address and port of one family; [`Self::Ip`] is the family, so
/// generic code infers it from the socket address it is given.
pub trait SocketAddress: Copy + Eq + Ord + Hash + Debug + Display + Send + Sync + 'static {
    /// The address family.
    type Ip: IpAddress<Socket = Self>;
    /// The address.
    fn addr(&self) -> Self::Ip;
    /// The port.
    fn port_number(&self) -> u16;
}

impl SocketAddress for SocketAddrV4 {
    type Ip = Ipv4Addr;

    #[inline(always)]
    fn addr(&self) -> Ipv4Addr {
        *self.ip()
    }

    #[inline(always)]
    fn port_number(&self) -> u16 {
        self.port()
    }
}

impl SocketAddress for SocketAddrV6 {
    type Ip = Ipv6Addr;

    #[inline(always)]
    fn addr(&self) -> Ipv6Addr {
        *self.ip()
    }

    #[inline(always)]
    fn port_number(&self) -> u16 {
        self.port()
    }
}

impl IpAddress for Ipv4Addr {
    const BITS: u8 = 32;
    const UNSPECIFIED: Self = Ipv4Addr::UNSPECIFIED;
    type Socket = SocketAddrV4;

    #[inline(always)]
    fn socket(self, port: u16) -> SocketAddrV4 {
        SocketAddrV4::new(self, port)
    }

    #[inline(always)]
    fn from_ip(ip: IpAddr) -> Option<Self> {
        match ip {
            IpAddr::V4(a) => Some(a),
            IpAddr::V6(_) => None,
        }
    }

    #[inline(always)]
    fn to_ip(self) -> IpAddr {
        IpAddr::V4(self)
    }

    #[inline(always)]
    fn to_bits(self) -> u128 {
        u128::from(u32::from(self))
    }

    #[inline(always)]
    fn from_bits(b: u128) -> Self {
        Ipv4Addr::from(b as u32)
    }
}

impl IpAddress for Ipv6Addr {
    const BITS: u8 = 128;
    const UNSPECIFIED: Self = Ipv6Addr::UNSPECIFIED;
    type Socket = SocketAddrV6;

    #[inline(always)]
    fn socket(self, port: u16) -> SocketAddrV6 {
        SocketAddrV6::new(self, port, 0, 0)
    }

    #[inline(always)]
    fn from_ip(ip: IpAddr) -> Option<Self> {
        match ip {
            IpAddr::V6(a) => Some(a),
            IpAddr::V4(_) => None,
        }
    }

    #[inline(always)]
    fn to_ip(self) -> IpAddr {
        IpAddr::V6(self)
    }

    #[inline(always)]
    fn to_bits(self) -> u128 {
        u128::from(self)
    }

    #[inline(always)]
    fn from_bits(b: u128) -> Self {
        Ipv6Addr::from(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_masks() {
        assert_eq!(Ipv4Addr::prefix_mask(24), Ipv4Addr::new(255, 255, 255, 0));
        assert_eq!(Ipv4Addr::prefix_mask(0), Ipv4Addr::UNSPECIFIED);
        assert_eq!(Ipv4Addr::prefix_mask(32), Ipv4Addr::BROADCAST);
        assert_eq!(Ipv4Addr::prefix_mask(40), Ipv4Addr::BROADCAST);
        assert_eq!(
            Ipv6Addr::prefix_mask(64),
            "ffff:ffff:ffff:ffff::".parse::<Ipv6Addr>().unwrap()
        );
        assert_eq!(Ipv6Addr::prefix_mask(128), Ipv6Addr::from(u128::MAX));
        assert_eq!(Ipv6Addr::prefix_mask(0), Ipv6Addr::UNSPECIFIED);
        let a: Ipv6Addr = "2001:db8:1:2:3:4:5:6".parse().unwrap();
        assert_eq!(
            a.masked(Ipv6Addr::prefix_mask(48)),
            "2001:db8:1::".parse::<Ipv6Addr>().unwrap()
        );
    }

    #[test]
    fn fold32_is_the_ipv4_address() {
        assert_eq!(Ipv4Addr::new(192, 0, 2, 1).fold32(), 0xc000_0201);
    }
}
