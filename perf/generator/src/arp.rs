//! The generator's ARP and neighbour discovery presence, so that a device
//! under test that resolves its next hops (as Sluice does) can reach the
//! reals and the clients' gateway: answering ARP requests and neighbour
//! solicitations for the addresses a port owns (turning the request into
//! the reply in place, in the received buffer), gratuitous ARP and
//! unsolicited advertisements, requests to resolve the device's MAC, and
//! learning from replies and advertisements.

use sluice_core::wire::{arp, ethernet, icmpv6};
use sluice_core::{flow6, local6, Ipv4Prefix, Ipv6Prefix, MacAddr};
use std::collections::HashMap;
use std::net::IpAddr;

/// Length of the ARP frames built here: the 60-byte Ethernet minimum.
pub use arp::FRAME_LEN;

/// The addresses one port answers for.
#[derive(Debug, Clone, Default)]
pub struct ArpTable {
    exact: HashMap<IpAddr, MacAddr>,
    prefixes: Vec<(Ipv4Prefix, MacAddr)>,
    prefixes6: Vec<(Ipv6Prefix, MacAddr)>,
}

impl ArpTable {
    /// An empty table.
    pub fn new() -> ArpTable {
        ArpTable::default()
    }

    /// Answers for `ip` with `mac`.
    pub fn add(&mut self, ip: impl Into<IpAddr>, mac: MacAddr) {
        self.exact.insert(ip.into(), mac);
    }

    /// Answers for every address of IPv4 `prefix` with `mac`.
    pub fn add_prefix(&mut self, prefix: Ipv4Prefix, mac: MacAddr) {
        self.prefixes.push((prefix, mac));
    }

    /// Answers for every address of IPv6 `prefix` with `mac`.
    pub fn add_prefix6(&mut self, prefix: Ipv6Prefix, mac: MacAddr) {
        self.prefixes6.push((prefix, mac));
    }

    /// The MAC owning `ip`, if this port answers for it.
    pub fn lookup(&self, ip: impl Into<IpAddr>) -> Option<MacAddr> {
        let ip = ip.into();
        self.exact.get(&ip).copied().or_else(|| match ip {
            IpAddr::V4(a) => self
                .prefixes
                .iter()
                .find(|(p, _)| p.contains(a))
                .map(|(_, m)| *m),
            IpAddr::V6(a) => self
                .prefixes6
                .iter()
                .find(|(p, _)| p.contains(a))
                .map(|(_, m)| *m),
        })
    }

    /// Number of exact entries.
    pub fn len(&self) -> usize {
        self.exact.len()
    }

    /// Whether the table answers for nothing.
    pub fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.prefixes.is_empty() && self.prefixes6.is_empty()
    }
}

/// What an ARP or neighbour discovery frame was, for the port that
/// received it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArpOutcome {
    /// A request for one of our addresses: the frame is now the reply.
    Replied,
    /// A reply (or gratuitous announcement): who has which address.
    Learned(IpAddr, MacAddr),
    /// Not for us, or malformed.
    Ignored,
}

/// Whether `frame` is ARP or neighbour discovery (a solicitation or an
/// advertisement right after the IPv6 header), for [`handle`]: cheap
/// enough for every received frame.
#[inline(always)]
pub fn is_resolution(frame: &[u8]) -> bool {
    const NEXT: usize = ethernet::HEADER_LEN + 6;
    const TYPE: usize = ethernet::HEADER_LEN + 40;
    if frame.len() <= TYPE {
        return frame.len() >= ethernet::HEADER_LEN
            && ethernet::ethertype(frame) == ethernet::ETHERTYPE_ARP;
    }
    match ethernet::ethertype(frame) {
        ethernet::ETHERTYPE_ARP => true,
        ethernet::ETHERTYPE_IPV6 => {
            frame[NEXT] == 58
                && (frame[TYPE] == icmpv6::TYPE_NEIGHBOUR_SOLICIT
                    || frame[TYPE] == icmpv6::TYPE_NEIGHBOUR_ADVERT)
        }
        _ => false,
    }
}

/// Handles an ARP or neighbour discovery frame received on a port owning
/// `table`. A request (solicitation) for one of its addresses is rewritten
/// in place into the reply (advertisement), to be sent back on the same
/// port; its length is unchanged.
pub fn handle(frame: &mut [u8], table: &ArpTable) -> ArpOutcome {
    if frame.len() < ethernet::HEADER_LEN {
        return ArpOutcome::Ignored;
    }
    match ethernet::ethertype(frame) {
        ethernet::ETHERTYPE_ARP => handle_arp(frame, table),
        ethernet::ETHERTYPE_IPV6 => handle_nd(frame, table),
        _ => ArpOutcome::Ignored,
    }
}

fn handle_arp(frame: &mut [u8], table: &ArpTable) -> ArpOutcome {
    if frame.len() < ethernet::HEADER_LEN + arp::LEN {
        return ArpOutcome::Ignored;
    }
    let Some(a) = arp::parse(&frame[ethernet::HEADER_LEN..]) else {
        return ArpOutcome::Ignored;
    };
    match a.op {
        arp::OP_REQUEST if a.spa == a.tpa => ArpOutcome::Learned(a.spa.into(), a.sha),
        arp::OP_REQUEST => match table.lookup(a.tpa) {
            Some(mac) => {
                ethernet::write_header(frame, a.sha, mac, ethernet::ETHERTYPE_ARP);
                arp::write(
                    &mut frame[ethernet::HEADER_LEN..],
                    &arp::Arp {
                        op: arp::OP_REPLY,
                        sha: mac,
                        spa: a.tpa,
                        tha: a.sha,
                        tpa: a.spa,
                    },
                );
                ArpOutcome::Replied
            }
            None => ArpOutcome::Ignored,
        },
        _ => ArpOutcome::Learned(a.spa.into(), a.sha),
    }
}

/// A neighbour solicitation for one of `table`'s addresses becomes the
/// solicited advertisement (with our link-layer address where the frame
/// has room for it); an advertisement is learned.
fn handle_nd(frame: &mut [u8], table: &ArpTable) -> ArpOutcome {
    let Ok(p) = flow6::parse(frame) else {
        return ArpOutcome::Ignored;
    };
    let Some(icmp) = p.icmp else {
        return ArpOutcome::Ignored;
    };
    if p.ttl != icmpv6::ND_HOP_LIMIT
        || !flow6::icmpv6_checksum_ok(p.src, p.dst, &frame[p.l4..p.ip_end()])
    {
        return ArpOutcome::Ignored;
    }
    let Ok(nd) = icmpv6::parse_nd(&frame[p.l4..p.ip_end()]) else {
        return ArpOutcome::Ignored;
    };
    match icmp.ty {
        icmpv6::TYPE_NEIGHBOUR_ADVERT => match nd.mac {
            Some(mac) => ArpOutcome::Learned(nd.target.into(), mac),
            None => ArpOutcome::Ignored,
        },
        icmpv6::TYPE_NEIGHBOUR_SOLICIT if !p.src.is_unspecified() => {
            let Some(mac) = table.lookup(nd.target) else {
                return ArpOutcome::Ignored;
            };
            let to_mac = nd.mac.unwrap_or_else(|| ethernet::src(frame));
            let room = frame.len() >= local6::ND_FRAME_LEN;
            let advert = icmpv6::Nd {
                ty: icmpv6::TYPE_NEIGHBOUR_ADVERT,
                flags: icmpv6::NA_SOLICITED | icmpv6::NA_OVERRIDE,
                target: nd.target,
                mac: room.then_some(mac),
            };
            let len = local6::write_nd_frame(frame, mac, to_mac, nd.target, p.src, &advert);
            frame[len..].fill(0);
            ArpOutcome::Replied
        }
        _ => ArpOutcome::Ignored,
    }
}

/// An announcement that `mac` owns `ip`: a gratuitous ARP (a broadcast
/// request from `ip` for itself), or for IPv6 an unsolicited neighbour
/// advertisement to all nodes.
pub fn gratuitous(mac: MacAddr, ip: impl Into<IpAddr>) -> Vec<u8> {
    match ip.into() {
        IpAddr::V4(a) => {
            let mut f = vec![0u8; FRAME_LEN];
            arp::write_gratuitous(&mut f, mac, a);
            f
        }
        IpAddr::V6(a) => {
            let mut f = vec![0u8; local6::ND_FRAME_LEN];
            let n = local6::unsolicited_advert(&mut f, mac, a);
            f.truncate(n);
            f
        }
    }
}

/// A request from `mac`/`ip` asking who has `target`: a broadcast ARP
/// request, or a neighbour solicitation to the target's solicited-node
/// group. Both addresses must be of one family.
pub fn request(mac: MacAddr, ip: IpAddr, target: IpAddr) -> Vec<u8> {
    match (ip, target) {
        (IpAddr::V4(ip), IpAddr::V4(target)) => {
            let mut f = vec![0u8; FRAME_LEN];
            arp::write_request(&mut f, MacAddr::BROADCAST, mac, ip, target);
            f
        }
        (IpAddr::V6(ip), IpAddr::V6(target)) => {
            let mut f = vec![0u8; local6::ND_FRAME_LEN];
            let n = local6::solicit(&mut f, mac, ip, target, None);
            f.truncate(n);
            f
        }
        _ => panic!("request: {ip} and {target} are of two families"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const ME: MacAddr = MacAddr([2, 0, 0, 0, 1, 1]);
    const PEER: MacAddr = MacAddr([2, 0, 0, 0, 9, 9]);

    #[test]
    fn answers_requests_for_its_addresses() {
        let mut t = ArpTable::new();
        let real = Ipv4Addr::new(198, 51, 100, 11);
        t.add(real, ME);
        t.add_prefix("198.18.0.0/15".parse().unwrap(), PEER);
        let peer_ip = Ipv4Addr::new(198, 51, 100, 1);
        let mut f = request(PEER, peer_ip.into(), real.into());
        assert_eq!(handle(&mut f, &t), ArpOutcome::Replied);
        assert_eq!(ethernet::dst(&f), PEER);
        assert_eq!(ethernet::src(&f), ME);
        let a = arp::parse(&f[14..]).unwrap();
        assert_eq!((a.op, a.sha, a.spa), (arp::OP_REPLY, ME, real));
        assert_eq!((a.tha, a.tpa), (PEER, peer_ip));
        // The reply is learned by the other side.
        assert_eq!(handle(&mut f, &t), ArpOutcome::Learned(real.into(), ME));
        // Prefix entries answer too; unknown addresses are ignored.
        let mut f = request(ME, peer_ip.into(), [198, 19, 1, 2].into());
        assert_eq!(handle(&mut f, &t), ArpOutcome::Replied);
        let mut f = request(PEER, peer_ip.into(), [203, 0, 113, 1].into());
        assert_eq!(handle(&mut f, &t), ArpOutcome::Ignored);
        assert_eq!(t.lookup(Ipv4Addr::new(203, 0, 113, 1)), None);
    }

    #[test]
    fn gratuitous_is_learned_not_answered() {
        let t = ArpTable::new();
        let ip = Ipv4Addr::new(198, 51, 100, 12);
        let mut g = gratuitous(ME, ip);
        assert_eq!(ethernet::dst(&g), MacAddr::BROADCAST);
        assert_eq!(handle(&mut g, &t), ArpOutcome::Learned(ip.into(), ME));
        let mut junk = [0u8; 20];
        assert_eq!(handle(&mut junk, &t), ArpOutcome::Ignored);
    }

    #[test]
    fn solicitations_for_its_ipv6_addresses_are_advertised() {
        let mut t = ArpTable::new();
        let real: Ipv6Addr = "2001:db8:2::11".parse().unwrap();
        t.add(real, ME);
        t.add_prefix6("2001:db8:18::/111".parse().unwrap(), ME);
        let dut: Ipv6Addr = "2001:db8:2::1".parse().unwrap();
        let mut f = request(PEER, dut.into(), real.into());
        assert_eq!(ethernet::dst(&f).0[..3], [0x33, 0x33, 0xff]);
        assert_eq!(handle(&mut f, &t), ArpOutcome::Replied);
        assert_eq!((ethernet::dst(&f), ethernet::src(&f)), (PEER, ME));
        let p = flow6::parse(&f).unwrap();
        assert_eq!((p.src, p.dst, p.ttl), (real, dut, 255));
        let m = &f[p.l4..p.ip_end()];
        assert!(flow6::icmpv6_checksum_ok(p.src, p.dst, m));
        let nd = icmpv6::parse_nd(m).unwrap();
        assert_eq!((nd.ty, nd.target, nd.mac), (136, real, Some(ME)));
        // The advertisement is learned by the other side.
        assert_eq!(handle(&mut f, &t), ArpOutcome::Learned(real.into(), ME));
        // A client address of the prefix answers; others are ignored.
        let client: Ipv6Addr = "2001:db8:18::1:2".parse().unwrap();
        let mut f = request(PEER, dut.into(), client.into());
        assert_eq!(handle(&mut f, &t), ArpOutcome::Replied);
        let mut f = request(PEER, dut.into(), "2001:db8:9::1".parse().unwrap());
        assert_eq!(handle(&mut f, &t), ArpOutcome::Ignored);
        assert!(is_resolution(&f) && is_resolution(&request(PEER, dut.into(), real.into())));
        // Unsolicited advertisements are learned, not answered.
        let mut g = gratuitous(ME, real);
        assert_eq!(handle(&mut g, &t), ArpOutcome::Learned(real.into(), ME));
    }
}
