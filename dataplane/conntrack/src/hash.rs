//! Seeded fast hash for flow keys and persistence-template keys.
//!
//! The keys hashed here are tiny and fixed-size (at most 13 bytes), so a
//! general byte-stream hasher (SipHash, the `std` default) would spend most of
//! its time on setup and finalisation. [`FlowHasher`] instead packs a key into
//! two 64-bit words `a` and `b` and applies two rounds of the *folded
//! multiply* used by wyhash, foldhash and aHash's fallback:
//!
//! ```text
//! fold(x, y) = lo64(x * y) ^ hi64(x * y)          (128-bit product)
//! h          = fold(fold(a ^ k0, b ^ k1) ^ k2, M)
//! ```
//!
//! `k0`, `k1` and `k2` are derived from the 64-bit seed with SplitMix64; `M`
//! is a fixed odd constant. Every output bit depends on every input bit, so
//! both the low bits (bucket choice) and the high 16 bits (fingerprint) of the
//! result are usable.
//!
//! The seed should be random per process (each worker's table may use its
//! own). With a secret seed, an attacker who controls client addresses and
//! ports cannot target a bucket. The construction is not a proven keyed PRF
//! like SipHash, though: it is a speed/robustness trade-off typical for
//! packet-processing hash tables, and the cuckoo index degrades gracefully
//! (insert failures are reported, never a panic or a long stall).

use crate::key::FlowKey;
use sluice_model::IpAddress;

/// Multiplier of the final round (the 64-bit golden-ratio constant, odd).
const FINAL_MUL: u64 = 0x9E37_79B9_7F4A_7C15;

/// Domain separator mixed into template keys so that a template key never
/// hashes like a flow key with the same words.
const TEMPLATE_DOMAIN: u64 = 0x5445_4D50_4C41_5445; // "TEMPLATE"

#[inline(always)]
fn folded_mul(x: u64, y: u64) -> u64 {
    let r = u128::from(x) * u128::from(y);
    (r as u64) ^ ((r >> 64) as u64)
}

/// One step of SplitMix64, used to expand the seed into the hash keys.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Seeded hasher for [`FlowKey`]s and persistence-template keys.
///
/// Cheap to copy; hashing a flow key costs two 64x64->128 multiplications.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowHasher {
    k: [u64; 3],
}

impl FlowHasher {
    /// Builds a hasher whose keys are derived from `seed`.
    pub fn new(seed: u64) -> Self {
        let mut s = seed;
        let k = [splitmix64(&mut s), splitmix64(&mut s), splitmix64(&mut s)];
        FlowHasher { k }
    }

    /// Hashes two packed 64-bit words.
    #[inline(always)]
    pub fn hash_words(&self, a: u64, b: u64) -> u64 {
        let h = folded_mul(a ^ self.k[0], b ^ self.k[1]);
        folded_mul(h ^ self.k[2], FINAL_MUL)
    }

    /// Hashes a flow key (protocol, source and destination address and port).
    ///
    /// An IPv4 key fits two words, one round. An IPv6 key (37 bytes) takes
    /// three: each address's two halves go through a keyed multiply before
    /// they meet the next, so that colliding keys cannot be built without
    /// the seed (a plain fold of the halves would collide for any seed).
    #[inline(always)]
    pub fn hash_flow<A: IpAddress>(&self, key: &FlowKey<A>) -> u64 {
        let b = (u64::from(key.src_port) << 32)
            | (u64::from(key.dst_port) << 16)
            | u64::from(key.proto as u8);
        let (s, d) = (key.src_ip.to_bits(), key.dst_ip.to_bits());
        if A::BITS == 32 {
            self.hash_words((s << 32 | d) as u64, b)
        } else {
            let h = self.hash_words(s as u64, (s >> 64) as u64);
            let h = self.hash_words(h ^ d as u64, (d >> 64) as u64);
            self.hash_words(h, b)
        }
    }

    /// Hashes a persistence-template key: service index and masked client
    /// address.
    #[inline(always)]
    pub fn hash_template<A: IpAddress>(&self, service: u32, client_net: A) -> u64 {
        let c = client_net.to_bits();
        if A::BITS == 32 {
            let a = (u64::from(service) << 32) | c as u64;
            self.hash_words(a, TEMPLATE_DOMAIN)
        } else {
            let h = self.hash_words(c as u64, (c >> 64) as u64);
            self.hash_words(h ^ u64::from(service), TEMPLATE_DOMAIN)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::Protocol;
    use std::net::Ipv4Addr;

    fn key(i: u32) -> FlowKey {
        FlowKey {
            proto: Protocol::Tcp,
            src_ip: Ipv4Addr::from(0x0a00_0000 + (i >> 8)),
            src_port: 1024 + (i & 0xff) as u16,
            dst_ip: Ipv4Addr::new(192, 0, 2, 1),
            dst_port: 80,
        }
    }

    #[test]
    fn deterministic_per_seed_and_seed_sensitive() {
        let a = FlowHasher::new(1);
        let b = FlowHasher::new(1);
        let c = FlowHasher::new(2);
        let k = key(7);
        assert_eq!(a.hash_flow(&k), b.hash_flow(&k));
        assert_ne!(a.hash_flow(&k), c.hash_flow(&k));
    }

    #[test]
    fn every_field_matters() {
        let h = FlowHasher::new(42);
        let base = key(1);
        let mut variants = vec![base];
        let mut k = base;
        k.proto = Protocol::Udp;
        variants.push(k);
        let mut k = base;
        k.src_port ^= 1;
        variants.push(k);
        let mut k = base;
        k.dst_port ^= 1;
        variants.push(k);
        let mut k = base;
        k.src_ip = Ipv4Addr::from(u32::from(k.src_ip) ^ 1);
        variants.push(k);
        let mut k = base;
        k.dst_ip = Ipv4Addr::from(u32::from(k.dst_ip) ^ 1);
        variants.push(k);
        let hashes: std::collections::HashSet<u64> =
            variants.iter().map(|k| h.hash_flow(k)).collect();
        assert_eq!(hashes.len(), variants.len());
        assert_ne!(
            h.hash_template(1, Ipv4Addr::from(2)),
            h.hash_template(2, Ipv4Addr::from(1))
        );
    }

    /// Sequential client addresses/ports (the common real-world pattern)
    /// spread evenly over buckets (low bits) and fingerprints (high bits).
    #[test]
    fn sequential_keys_spread_evenly() {
        let h = FlowHasher::new(0xdead_beef);
        let n = 1 << 16;
        let buckets = 1 << 10;
        let mut low = vec![0u32; buckets];
        let mut high = vec![0u32; buckets];
        for i in 0..n {
            let x = h.hash_flow(&key(i));
            low[(x as usize) & (buckets - 1)] += 1;
            high[(x >> 54) as usize] += 1;
        }
        // Expected 64 per bucket; a decent hash stays well within 2x.
        let expect = n / buckets as u32;
        for counts in [&low, &high] {
            let max = *counts.iter().max().unwrap();
            let min = *counts.iter().min().unwrap();
            assert!(max < expect * 2, "max {max}");
            assert!(min > expect / 2, "min {min}");
        }
    }

    /// IPv6 keys: every field matters, and keys that agree in the exclusive
    /// or of their address halves (which a fold would make collide for any
    /// seed) hash apart.
    #[test]
    fn ipv6_keys_hash_apart() {
        use std::net::Ipv6Addr;
        let h = FlowHasher::new(7);
        let k = |src: u128, dst: u128, sport| FlowKey {
            proto: Protocol::Tcp,
            src_ip: Ipv6Addr::from(src),
            src_port: sport,
            dst_ip: Ipv6Addr::from(dst),
            dst_port: 80,
        };
        let base = k(0x2001_0db8_0001 << 80 | 7, 0x2001_0db8 << 96 | 0x100, 40000);
        let variants = [
            base,
            k(0x2001_0db8_0001 << 80 | 6, 0x2001_0db8 << 96 | 0x100, 40000),
            k(0x2001_0db8_0001 << 80 | 7, 0x2001_0db8 << 96 | 0x101, 40000),
            k(0x2001_0db8_0001 << 80 | 7, 0x2001_0db8 << 96 | 0x100, 40001),
            // Same xor of the source's halves as base.
            k(
                (0x2001_0db8_0001 << 80 | 7) ^ (1 << 64 | 1),
                0x2001_0db8 << 96 | 0x100,
                40000,
            ),
        ];
        let hashes: std::collections::HashSet<u64> =
            variants.iter().map(|v| h.hash_flow(v)).collect();
        assert_eq!(hashes.len(), variants.len());
        let n = Ipv6Addr::from(0x2001_0db8_0001u128 << 80);
        assert_ne!(h.hash_template(1, n), h.hash_template(2, n));
    }
}
