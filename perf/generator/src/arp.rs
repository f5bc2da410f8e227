//! The generator's ARP presence, so that a device under test that resolves
//! its next hops by ARP (as Sluice does) can reach the reals and the
//! clients' gateway: answering requests for the addresses a port owns
//! (turning the request into the reply in place, in the received buffer),
//! gratuitous ARP announcements, requests to resolve the device's MAC, and
//! learning from replies.

use sluice_core::wire::{arp, ethernet};
use sluice_core::{Ipv4Prefix, MacAddr};
use std::collections::HashMap;
use std::net::Ipv4Addr;

/// Length of the ARP frames built here: the 60-byte Ethernet minimum.
pub use arp::FRAME_LEN;

/// The addresses one port answers for.
#[derive(Debug, Clone, Default)]
pub struct ArpTable {
    exact: HashMap<Ipv4Addr, MacAddr>,
    prefixes: Vec<(Ipv4Prefix, MacAddr)>,
}

impl ArpTable {
    /// An empty table.
    pub fn new() -> ArpTable {
        ArpTable::default()
    }

    /// Answers for `ip` with `mac`.
    pub fn add(&mut self, ip: Ipv4Addr, mac: MacAddr) {
        self.exact.insert(ip, mac);
    }

    /// Answers for every address of `prefix` with `mac`.
    pub fn add_prefix(&mut self, prefix: Ipv4Prefix, mac: MacAddr) {
        self.prefixes.push((prefix, mac));
    }

    /// The MAC owning `ip`, if this port answers for it.
    pub fn lookup(&self, ip: Ipv4Addr) -> Option<MacAddr> {
        self.exact.get(&ip).copied().or_else(|| {
            self.prefixes
                .iter()
                .find(|(p, _)| p.contains(ip))
                .map(|(_, m)| *m)
        })
    }

    /// Number of exact entries.
    pub fn len(&self) -> usize {
        self.exact.len()
    }

    /// Whether the table answers for nothing.
    pub fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.prefixes.is_empty()
    }
}

/// What an ARP frame was, for the port that received it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArpOutcome {
    /// A request for one of our addresses: the frame is now the reply.
    Replied,
    /// A reply (or gratuitous announcement): who has which address.
    Learned(Ipv4Addr, MacAddr),
    /// Not for us, or malformed.
    Ignored,
}

/// Handles an ARP frame received on a port owning `table`. A request for
/// one of its addresses is rewritten in place into the reply (to be sent
/// back on the same port); its length is unchanged.
pub fn handle(frame: &mut [u8], table: &ArpTable) -> ArpOutcome {
    if frame.len() < ethernet::HEADER_LEN + arp::LEN
        || ethernet::ethertype(frame) != ethernet::ETHERTYPE_ARP
    {
        return ArpOutcome::Ignored;
    }
    let Some(a) = arp::parse(&frame[ethernet::HEADER_LEN..]) else {
        return ArpOutcome::Ignored;
    };
    match a.op {
        arp::OP_REQUEST if a.spa == a.tpa => ArpOutcome::Learned(a.spa, a.sha),
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
        _ => ArpOutcome::Learned(a.spa, a.sha),
    }
}

/// A gratuitous ARP: a broadcast request from `ip` for itself, announcing
/// that `mac` owns it.
pub fn gratuitous(mac: MacAddr, ip: Ipv4Addr) -> [u8; FRAME_LEN] {
    let mut f = [0u8; FRAME_LEN];
    arp::write_gratuitous(&mut f, mac, ip);
    f
}

/// A broadcast request from `mac`/`ip` asking who has `target`.
pub fn request(mac: MacAddr, ip: Ipv4Addr, target: Ipv4Addr) -> [u8; FRAME_LEN] {
    let mut f = [0u8; FRAME_LEN];
    arp::write_request(&mut f, MacAddr::BROADCAST, mac, ip, target);
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: MacAddr = MacAddr([2, 0, 0, 0, 1, 1]);
    const PEER: MacAddr = MacAddr([2, 0, 0, 0, 9, 9]);

    #[test]
    fn answers_requests_for_its_addresses() {
        let mut t = ArpTable::new();
        let real = Ipv4Addr::new(198, 51, 100, 11);
        t.add(real, ME);
        t.add_prefix("198.18.0.0/15".parse().unwrap(), PEER);
        let peer_ip = Ipv4Addr::new(198, 51, 100, 1);
        let mut f = request(PEER, peer_ip, real);
        assert_eq!(handle(&mut f, &t), ArpOutcome::Replied);
        assert_eq!(ethernet::dst(&f), PEER);
        assert_eq!(ethernet::src(&f), ME);
        let a = arp::parse(&f[14..]).unwrap();
        assert_eq!((a.op, a.sha, a.spa), (arp::OP_REPLY, ME, real));
        assert_eq!((a.tha, a.tpa), (PEER, peer_ip));
        // The reply is learned by the other side.
        assert_eq!(handle(&mut f, &t), ArpOutcome::Learned(real, ME));
        // Prefix entries answer too; unknown addresses are ignored.
        let mut f = request(ME, peer_ip, Ipv4Addr::new(198, 19, 1, 2));
        assert_eq!(handle(&mut f, &t), ArpOutcome::Replied);
        let mut f = request(PEER, peer_ip, Ipv4Addr::new(203, 0, 113, 1));
        assert_eq!(handle(&mut f, &t), ArpOutcome::Ignored);
        assert_eq!(t.lookup(Ipv4Addr::new(203, 0, 113, 1)), None);
    }

    #[test]
    fn gratuitous_is_learned_not_answered() {
        let t = ArpTable::new();
        let ip = Ipv4Addr::new(198, 51, 100, 12);
        let mut g = gratuitous(ME, ip);
        assert_eq!(ethernet::dst(&g), MacAddr::BROADCAST);
        assert_eq!(handle(&mut g, &t), ArpOutcome::Learned(ip, ME));
        let mut junk = [0u8; 20];
        assert_eq!(handle(&mut junk, &t), ArpOutcome::Ignored);
    }
}
