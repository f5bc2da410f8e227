//! The address family a run sends: IPv4 or IPv6 ([`GenFamily`]), chosen by
//! the VIP's address. Everything per packet (frames, checks, client
//! addresses) is written once over it; what differs is here: where the
//! clients live, how the IP header is written and parsed, and what the
//! parser's refusals mean to the checker.
//!
//! IPv4 clients live in 198.18.0.0/15 (RFC 2544's benchmarking range);
//! IPv6 clients in 2001:db8:18::/111, the same 131,072 addresses inside the
//! documentation prefix.

use sluice_core::flow::Packet;
use sluice_core::wire::{ipv4, ipv6};
use sluice_core::{flow, flow6, Address, DropReason};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Client prefix length within the family's addresses: 2^17 clients.
pub const CLIENT_BITS: u32 = 17;

/// An address family the generator sends.
pub trait GenFamily: Address + std::hash::Hash + std::fmt::Debug + Send + 'static {
    /// Length of the IP header sent (no options, no extension headers).
    const HEADER_LEN: usize;
    /// The first client address.
    const CLIENT_BASE: Self;
    /// Family name, for reports.
    const NAME: &'static str;

    /// Client address number `off` (below 2^CLIENT_BITS).
    #[inline(always)]
    fn client(off: u32) -> Self {
        Self::from_bits(Self::CLIENT_BASE.to_bits() + u128::from(off))
    }

    /// The client number of `ip`, if it is a client address.
    #[inline(always)]
    fn client_offset(ip: Self) -> Option<u32> {
        let off = ip.to_bits().wrapping_sub(Self::CLIENT_BASE.to_bits());
        (off < 1u128 << CLIENT_BITS).then_some(off as u32)
    }

    /// The clients' prefix length.
    fn client_prefix_len() -> u8 {
        Self::BITS - CLIENT_BITS as u8
    }

    /// Writes an IP header at the start of `b` for `payload_len` bytes of
    /// protocol `proto`, from `src` to `dst` (IPv4: don't fragment, id 0,
    /// checksum for these fields).
    fn write_header(b: &mut [u8], payload_len: usize, proto: u8, ttl: u8, src: Self, dst: Self);

    /// Parses a received frame of this family.
    fn parse(frame: &[u8]) -> Result<Packet<Self>, DropReason>;

    /// This family's address in `ip`, if it is of this family.
    fn of(ip: IpAddr) -> Option<Self> {
        Self::from_ip(ip)
    }
}

impl GenFamily for Ipv4Addr {
    const HEADER_LEN: usize = ipv4::MIN_HEADER_LEN;
    const CLIENT_BASE: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 0);
    const NAME: &'static str = "ipv4";

    fn write_header(b: &mut [u8], payload_len: usize, proto: u8, ttl: u8, src: Self, dst: Self) {
        ipv4::write_header(
            b,
            (Self::HEADER_LEN + payload_len) as u16,
            0,
            ttl,
            proto,
            src,
            dst,
        );
    }

    #[inline(always)]
    fn parse(frame: &[u8]) -> Result<Packet<Self>, DropReason> {
        flow::parse(frame)
    }
}

impl GenFamily for Ipv6Addr {
    const HEADER_LEN: usize = ipv6::HEADER_LEN;
    const CLIENT_BASE: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x18, 0, 0, 0, 0, 0);
    const NAME: &'static str = "ipv6";

    fn write_header(b: &mut [u8], payload_len: usize, proto: u8, ttl: u8, src: Self, dst: Self) {
        ipv6::write_header(b, payload_len as u16, proto, ttl, src, dst);
    }

    #[inline(always)]
    fn parse(frame: &[u8]) -> Result<Packet<Self>, DropReason> {
        flow6::parse(frame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_map_to_numbers_and_back() {
        for off in [0u32, 1, 77, (1 << CLIENT_BITS) - 1] {
            assert_eq!(Ipv4Addr::client_offset(Ipv4Addr::client(off)), Some(off));
            assert_eq!(Ipv6Addr::client_offset(Ipv6Addr::client(off)), Some(off));
        }
        assert_eq!(
            Ipv4Addr::client((1 << CLIENT_BITS) - 1),
            Ipv4Addr::new(198, 19, 255, 255)
        );
        assert_eq!(
            Ipv6Addr::client((1 << CLIENT_BITS) - 1),
            "2001:db8:18::1:ffff".parse::<Ipv6Addr>().unwrap()
        );
        assert_eq!(Ipv4Addr::client_offset(Ipv4Addr::new(198, 20, 0, 0)), None);
        assert_eq!(
            Ipv4Addr::client_offset(Ipv4Addr::new(198, 17, 255, 255)),
            None
        );
        let past: Ipv6Addr = "2001:db8:18::2:0".parse().unwrap();
        assert_eq!(Ipv6Addr::client_offset(past), None);
        assert_eq!(
            (Ipv4Addr::client_prefix_len(), Ipv6Addr::client_prefix_len()),
            (15, 111)
        );
    }
}
