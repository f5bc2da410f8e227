//! Admission at the door: which received frames the pipeline looks at at
//! all. A frame must be addressed to the port's MAC (or be broadcast ARP,
//! or IPv6 to a solicited-node multicast MAC, where neighbour
//! solicitations go, or to all nodes, where unsolicited advertisements go),
//! come from a unicast MAC, and, once parsed, carry a source address some
//! host may use. What fails is dropped and counted before it can touch a
//! table, a scheduler or a real.

use sluice_core::wire::ethernet;
use sluice_core::{hygiene, DropReason, Ipv4Prefix, MacAddr};
use std::net::{Ipv4Addr, Ipv6Addr};

/// Checks a frame's Ethernet header on the port it came in on, whose MAC
/// is `port_mac`: the destination must be the port's MAC, or broadcast for
/// ARP, or for IPv6 a solicited-node multicast MAC (33:33:ff:xx:xx:xx,
/// where neighbour solicitations go; the port's responder answers only
/// for its own addresses) or the all-nodes one (33:33:00:00:00:01, where
/// unsolicited advertisements go, as gratuitous ARP is broadcast) (ports
/// may be promiscuous, and a switch floods unknown unicast), and the
/// source must be a unicast MAC.
#[inline(always)]
pub fn admit_frame(frame: &[u8], port_mac: MacAddr) -> Result<(), DropReason> {
    let dst = ethernet::dst(frame);
    if dst != port_mac && !admitted_group(dst, ethernet::ethertype(frame)) {
        return Err(DropReason::NotOurMac);
    }
    if ethernet::src(frame).is_multicast() {
        return Err(DropReason::BadSourceMac);
    }
    Ok(())
}

/// Whether a frame to group address `dst` with `ethertype` is one the
/// appliance listens to: broadcast ARP, and IPv6 solicited-node and
/// all-nodes multicast.
#[inline(always)]
fn admitted_group(dst: MacAddr, ethertype: u16) -> bool {
    match ethertype {
        ethernet::ETHERTYPE_ARP => dst == MacAddr::BROADCAST,
        ethernet::ETHERTYPE_IPV6 => {
            dst.0[..3] == [0x33, 0x33, 0xff] || dst.0 == [0x33, 0x33, 0, 0, 0, 1]
        }
        _ => false,
    }
}

/// The sources no packet may carry on this appliance: besides the fixed
/// martian classes ([`hygiene::is_martian_source`]), the directed
/// broadcasts of the connected prefixes and the appliance's own addresses
/// and VIPs (a packet "from" them is a land attack or a loop).
#[derive(Debug, Clone, Default)]
pub struct Martians {
    /// Sorted, without duplicates.
    addrs: Vec<Ipv4Addr>,
}

impl Martians {
    /// The martians of an appliance with these port addresses and VIPs.
    pub fn new(addresses: &[Ipv4Prefix], vips: &[Ipv4Addr]) -> Martians {
        let mut addrs: Vec<Ipv4Addr> = addresses
            .iter()
            .flat_map(|a| std::iter::once(a.addr).chain(a.broadcast()))
            .chain(vips.iter().copied())
            .collect();
        addrs.sort_unstable();
        addrs.dedup();
        Martians { addrs }
    }

    /// Whether no packet may come from `src`.
    #[inline(always)]
    pub fn contains(&self, src: Ipv4Addr) -> bool {
        hygiene::is_martian_source(src) || sluice_core::contains_sorted(&self.addrs, src)
    }
}

/// The IPv6 sources no packet may carry: the unspecified address,
/// loopback, multicast, and the appliance's own IPv6 addresses and VIPs.
#[derive(Debug, Clone, Default)]
pub struct Martians6 {
    /// Sorted, without duplicates.
    addrs: Vec<Ipv6Addr>,
}

impl Martians6 {
    /// The martians of a configuration with these addresses and VIPs.
    pub fn new(addresses: &[Ipv6Addr], vips: &[Ipv6Addr]) -> Martians6 {
        let mut addrs: Vec<Ipv6Addr> = addresses.iter().chain(vips).copied().collect();
        addrs.sort_unstable();
        addrs.dedup();
        Martians6 { addrs }
    }

    /// Whether `src` is one.
    #[inline]
    pub fn contains(&self, src: Ipv6Addr) -> bool {
        src.is_unspecified()
            || src.is_loopback()
            || src.is_multicast()
            || sluice_core::contains_sorted(&self.addrs, src)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);

    fn frame(dst: MacAddr, src: MacAddr, ethertype: u16) -> Vec<u8> {
        let mut f = vec![0u8; 60];
        ethernet::write_header(&mut f, dst, src, ethertype);
        f
    }

    #[test]
    fn only_frames_for_the_port_or_broadcast_arp() {
        let host = MacAddr([2, 0, 0, 0, 0, 9]);
        let other = MacAddr([2, 0, 0, 0, 0, 7]);
        let mcast = MacAddr([1, 0, 0x5e, 0, 0, 1]);
        let ok = |f: Vec<u8>| admit_frame(&f, MAC);
        assert_eq!(ok(frame(MAC, host, ethernet::ETHERTYPE_IPV4)), Ok(()));
        assert_eq!(ok(frame(MAC, host, ethernet::ETHERTYPE_ARP)), Ok(()));
        assert_eq!(
            ok(frame(MacAddr::BROADCAST, host, ethernet::ETHERTYPE_ARP)),
            Ok(())
        );
        for dst in [other, MacAddr::BROADCAST, mcast] {
            assert_eq!(
                ok(frame(dst, host, ethernet::ETHERTYPE_IPV4)),
                Err(DropReason::NotOurMac),
                "{dst}"
            );
        }
        assert_eq!(
            ok(frame(other, host, ethernet::ETHERTYPE_ARP)),
            Err(DropReason::NotOurMac)
        );
        assert_eq!(
            ok(frame(MAC, mcast, ethernet::ETHERTYPE_IPV4)),
            Err(DropReason::BadSourceMac)
        );
        // Neighbour solicitations go to a solicited-node group,
        // unsolicited advertisements to all nodes; other IPv6 groups
        // (all routers, MLD) and IPv4 to those MACs are not ours.
        let solicited = MacAddr([0x33, 0x33, 0xff, 0, 0, 1]);
        let all_nodes = MacAddr([0x33, 0x33, 0, 0, 0, 1]);
        assert_eq!(ok(frame(solicited, host, ethernet::ETHERTYPE_IPV6)), Ok(()));
        assert_eq!(ok(frame(all_nodes, host, ethernet::ETHERTYPE_IPV6)), Ok(()));
        assert_eq!(
            ok(frame(
                MacAddr([0x33, 0x33, 0, 0, 0, 2]),
                host,
                ethernet::ETHERTYPE_IPV6
            )),
            Err(DropReason::NotOurMac)
        );
        assert_eq!(
            ok(frame(all_nodes, host, ethernet::ETHERTYPE_IPV4)),
            Err(DropReason::NotOurMac)
        );
        assert_eq!(
            ok(frame(solicited, host, ethernet::ETHERTYPE_IPV4)),
            Err(DropReason::NotOurMac)
        );
    }

    #[test]
    fn martians_of_the_configuration() {
        let m = Martians::new(
            &[
                "192.0.2.1/24".parse().unwrap(),
                "198.51.100.1/30".parse().unwrap(),
            ],
            &[Ipv4Addr::new(192, 0, 2, 100)],
        );
        for bad in [
            "192.0.2.1",
            "192.0.2.255",
            "192.0.2.100",
            "198.51.100.1",
            "198.51.100.3",
            "255.255.255.255",
            "0.0.0.0",
            "127.0.0.1",
            "224.0.0.1",
        ] {
            assert!(m.contains(bad.parse().unwrap()), "{bad}");
        }
        for good in ["192.0.2.10", "198.51.100.2", "203.0.113.7", "192.0.2.0"] {
            assert!(!m.contains(good.parse().unwrap()), "{good}");
        }
    }
}
