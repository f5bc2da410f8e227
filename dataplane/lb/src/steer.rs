//! Flow steering across workers: the worker that owns a flow is chosen by
//! a hash of the client's address (IPv4 or IPv6), which both directions of a NAT
//! connection carry (the client sends from it, the real replies to it).
//! Any worker that receives a packet of a flow it does not own hands the
//! packet to the owner; so every packet of a connection, and every
//! connection of a client (persistence), meets one table on one core, with
//! no lock and no NIC flow rule.

use sluice_model::IpAddress;

/// The worker owning flows of `client` among `workers` workers. An IPv6
/// address is folded to 64 bits first (its halves exclusive-or'ed): a
/// client can pick its own address anyway, so steering needs spread, not
/// secrecy (the connection table's hash is keyed).
#[inline(always)]
pub fn owner<A: IpAddress>(client: A, workers: usize) -> usize {
    if workers <= 1 {
        return 0;
    }
    let b = client.to_bits();
    let x = (b as u64) ^ ((b >> 64) as u64);
    // SplitMix64 finaliser: every address bit affects the result.
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    ((z as u128 * workers as u128) >> 64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn spreads_ipv6_clients_over_workers() {
        use std::net::Ipv6Addr;
        for n in [2usize, 3, 8] {
            let mut c = vec![0u32; n];
            // Clients of one /64 differing in the interface identifier, and
            // clients of different /64s.
            for i in 0..20_000u128 {
                c[owner(Ipv6Addr::from(0x2001_0db8_0001u128 << 80 | i), n)] += 1;
                c[owner(Ipv6Addr::from(0x2001_0db8u128 << 96 | i << 64 | 1), n)] += 1;
            }
            let ideal = 40_000 / n as u32;
            for x in &c {
                assert!(x.abs_diff(ideal) < ideal / 10, "{c:?}");
            }
        }
    }

    #[test]
    fn spreads_clients_over_workers() {
        for n in [2usize, 3, 4, 8] {
            let mut c = vec![0u32; n];
            for i in 0..40_000u32 {
                c[owner(Ipv4Addr::from(0xc633_6400 + i), n)] += 1;
            }
            let ideal = 40_000 / n as u32;
            for x in &c {
                assert!(x.abs_diff(ideal) < ideal / 10, "{c:?}");
            }
        }
        assert_eq!(owner(Ipv4Addr::new(192, 0, 2, 1), 1), 0);
    }
}
