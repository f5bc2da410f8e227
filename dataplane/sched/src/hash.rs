//! Hashes for the hashing schedulers: the client key hashed by the caller for
//! sh / mh ([`hash_ipv4`], [`hash_ipv6`], [`hash_ip`]), and the stable
//! identity of a real that Maglev builds its permutations from
//! ([`real_identity`]).
//!
//! All of them are built on [`fmix64`], the 64-bit finaliser of
//! MurmurHash3: an invertible mix (xorshift, multiply, xorshift, multiply,
//! xorshift) in which every input bit flips each output bit with probability
//! close to 1/2. A client key (address, optional port, and a bit saying
//! whether a port is present) is packed into 64 bits, xored with a mixed
//! seed, and finalised, so different keys never collide for IPv4 (the mix is
//! a bijection) and the result is uniform in all 64 bits, high ones included
//! (the tables index with the high bits). It costs a handful of cycles and
//! allocates nothing.
//!
//! The functions and their constants are part of the contract: tables built
//! by one version of Sluice pick the same reals for the same hashes in
//! another, and so do two Sluice instances behind the same ECMP router, as
//! long as they use the same seed.
//!
//! The seed is not a secret key: this is not a keyed PRF and offers no
//! protection against an attacker who knows it and chooses client addresses.
//! The schedulers do not need one (a lookup is O(1) whatever the hash).

use std::net::IpAddr;

/// The seed Sluice uses for client hashes unless configured otherwise.
pub const DEFAULT_SEED: u64 = 0x51_0c_e5_ee_d0_00_00_01;

/// The seed of [`real_identity`]; fixed, so that identities are stable.
pub const IDENTITY_SEED: u64 = 0x1d_e4_71_7e_5e_ed_00_02;

/// Tag mixed into the seed for IPv6 keys, so that an IPv6 key and an IPv4
/// key do not share a hash function.
const V6_TAG: u64 = 0x6666_0000_0000_0006;

/// MurmurHash3's 64-bit finaliser (`fmix64`): a bijection on `u64` with full
/// avalanche. `fmix64(0) == 0`.
#[inline]
pub const fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^= k >> 33;
    k
}

/// The 17 low bits of a packed key: the port and a "port present" flag, so
/// that `(a, None)` and `(a, Some(0))` differ.
#[inline]
const fn port_bits(port: Option<u16>) -> u64 {
    match port {
        Some(p) => 0x1_0000 | p as u64,
        None => 0,
    }
}

/// Hash of a client IPv4 address and optional port, for sh / mh.
///
/// `addr` is the address as a number, `u32::from(Ipv4Addr)` (for a raw
/// network-order header field, `u32::from_be(field)`). Pass `port: None` to
/// hash by address only (LVS `sh` default: all connections of a client go to
/// the same real), `Some(port)` to hash by address and source port (LVS
/// `sh-port`).
///
/// Definition: `fmix64(((addr << 32) | flag << 16 | port) ^ fmix64(seed))`
/// where `flag` is 1 when a port is given. For a fixed seed this is
/// injective: distinct keys get distinct hashes.
#[inline]
pub const fn hash_ipv4(seed: u64, addr: u32, port: Option<u16>) -> u64 {
    let key = ((addr as u64) << 32) | port_bits(port);
    fmix64(key ^ fmix64(seed))
}

/// Hash of a client IPv6 address (as a number, `u128::from(Ipv6Addr)`) and
/// optional port, for sh / mh. Like [`hash_ipv4`], with the 128 bits folded
/// in two chained rounds: `fmix64(fmix64(fmix64(hi ^ s) ^ lo) ^ port_bits)`
/// with `s = fmix64(seed ^ V6_TAG)`.
#[inline]
pub const fn hash_ipv6(seed: u64, addr: u128, port: Option<u16>) -> u64 {
    let s = fmix64(seed ^ V6_TAG);
    let hi = (addr >> 64) as u64;
    let lo = addr as u64;
    fmix64(fmix64(fmix64(hi ^ s) ^ lo) ^ port_bits(port))
}

/// [`hash_ipv4`] or [`hash_ipv6`], by address family.
#[inline]
pub fn hash_ip(seed: u64, addr: IpAddr, port: Option<u16>) -> u64 {
    match addr {
        IpAddr::V4(a) => hash_ipv4(seed, u32::from(a), port),
        IpAddr::V6(a) => hash_ipv6(seed, u128::from(a), port),
    }
}

/// A stable 64-bit identity for a real server at `addr:port`, for
/// [`WeightedReal::identity`](crate::WeightedReal::identity): the Maglev table
/// depends on identities, not on the order of the reals in the
/// configuration, so a real keeps its slots when others are added, removed or
/// reordered. Equal to `hash_ip(IDENTITY_SEED, addr, Some(port))`.
#[inline]
pub fn real_identity(addr: IpAddr, port: u16) -> u64 {
    hash_ip(IDENTITY_SEED, addr, Some(port))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn fmix64_known_values() {
        assert_eq!(fmix64(0), 0);
        // Reference values of MurmurHash3's fmix64.
        assert_eq!(fmix64(1), 0xb456_bcfc_34c2_cb2c);
        assert_eq!(fmix64(u64::MAX), 0x64b5_720b_4b82_5f21);
    }

    #[test]
    fn keys_are_distinguished() {
        let s = DEFAULT_SEED;
        let a = u32::from(Ipv4Addr::new(10, 0, 0, 1));
        let b = u32::from(Ipv4Addr::new(10, 0, 0, 2));
        assert_ne!(hash_ipv4(s, a, None), hash_ipv4(s, b, None));
        assert_ne!(hash_ipv4(s, a, None), hash_ipv4(s, a, Some(0)));
        assert_ne!(hash_ipv4(s, a, Some(80)), hash_ipv4(s, a, Some(81)));
        assert_ne!(hash_ipv4(s, a, None), hash_ipv4(s ^ 1, a, None));
        // Deterministic.
        assert_eq!(hash_ipv4(s, a, Some(80)), hash_ipv4(s, a, Some(80)));
        let v6 = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
        assert_ne!(
            hash_ip(s, IpAddr::V6(v6), None),
            hash_ip(s, IpAddr::V6(v6), Some(0))
        );
        assert_eq!(
            hash_ip(s, IpAddr::V4(Ipv4Addr::from(a)), None),
            hash_ipv4(s, a, None)
        );
        // v4 and v4-mapped v6 are different keys.
        let mapped = Ipv4Addr::from(a).to_ipv6_mapped();
        assert_ne!(hash_ip(s, IpAddr::V6(mapped), None), hash_ipv4(s, a, None));
    }

    #[test]
    fn identities_of_a_subnet_are_distinct() {
        let mut seen = HashSet::new();
        for host in 0..=255u8 {
            for port in [80u16, 443, 8080] {
                let id = real_identity(IpAddr::V4(Ipv4Addr::new(192, 168, 1, host)), port);
                assert!(seen.insert(id));
            }
        }
    }

    /// Consecutive addresses (a /16 of clients) spread evenly over the high
    /// bits, which is what the tables index with.
    #[test]
    fn consecutive_addresses_spread_evenly() {
        const BUCKETS: usize = 64;
        let mut counts = [0u32; BUCKETS];
        let base = u32::from(Ipv4Addr::new(172, 16, 0, 0));
        let n = 1u32 << 16;
        for i in 0..n {
            let h = hash_ipv4(DEFAULT_SEED, base + i, None);
            counts[(h >> 58) as usize] += 1;
        }
        let expect = n / BUCKETS as u32; // 1024
        for c in counts {
            // ~6.4 standard deviations at 1024 expected.
            assert!(c.abs_diff(expect) < 200, "{counts:?}");
        }
    }

    /// Flipping one input bit flips about half of the output bits.
    #[test]
    fn avalanche() {
        let mut total = 0u64;
        let mut samples = 0u64;
        for a in (0..4096u32).map(|i| i.wrapping_mul(0x9e37_79b9)) {
            let h = hash_ipv4(DEFAULT_SEED, a, Some(1234));
            for bit in 0..32 {
                total += u64::from(
                    (h ^ hash_ipv4(DEFAULT_SEED, a ^ (1 << bit), Some(1234))).count_ones(),
                );
                samples += 1;
            }
        }
        let mean = total as f64 / samples as f64;
        assert!((31.0..33.0).contains(&mean), "mean flipped bits {mean}");
    }
}
