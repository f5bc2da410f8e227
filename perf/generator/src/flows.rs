//! Flows: which client address and port each flow uses, how flows are
//! replaced by fresh ones at a steady rate, and the sender's per-flow state.
//!
//! Clients live in a range of 131,072 addresses of the run's family
//! ([`GenFamily`]: 198.18.0.0/15, RFC 2544's benchmarking range, or
//! 2001:db8:18::/111), with source ports 1024..=65535. A flow *key*
//! numbers one client `ip:port`: the address is client number
//! `key % 131072`, the port `1024 + key / 131072`, so up to 131,072 flows
//! each get their own address.
//!
//! There are `flows` concurrent flows, in *slots* `0..flows`. The flow in a
//! slot is replaced by a fresh one (a new key, so a new connection to the
//! device under test) at `--new-flows-per-sec`, round robin over the slots:
//! after `r` replacements, slot `s` is in generation
//! `r / flows + (s < r % flows)`, and its key is `gen * flows + s` (with the
//! generation wrapped so the key stays in the key space). So
//! `key % flows == slot` always, which lets the receiver check a returned
//! packet's client address against the slot its stamp names.
//!
//! The sender keeps a 32-bit sequence number per slot (continuing across
//! generations, so the receiver's tracking needs no reset) and one "fresh"
//! bit per slot: the first packet of a flow generation is a TCP SYN.
//! 10 million flows take 41 MB here.

use crate::family::{GenFamily, CLIENT_BITS};

/// Number of client addresses (2^17).
pub const CLIENT_ADDRS: u64 = 1 << CLIENT_BITS;
/// First client source port.
pub const PORT_BASE: u16 = 1024;
/// Number of client source ports (1024..=65535).
pub const PORTS: u64 = 65536 - PORT_BASE as u64;
/// Number of distinct client `ip:port` pairs.
pub const KEY_SPACE: u64 = CLIENT_ADDRS * PORTS;
/// Most concurrent flows.
pub const MAX_FLOWS: u64 = 10_000_000;

/// The mapping between slots, generations, keys and client `ip:port`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowSpace {
    flows: u64,
    generations: u64,
}

impl FlowSpace {
    /// A space of `flows` concurrent flows (1..=MAX_FLOWS).
    pub fn new(flows: u64) -> Result<FlowSpace, String> {
        if !(1..=MAX_FLOWS).contains(&flows) {
            return Err(format!("flows must be 1..={MAX_FLOWS}, not {flows}"));
        }
        Ok(FlowSpace {
            flows,
            generations: KEY_SPACE / flows,
        })
    }

    /// Number of concurrent flows (slots).
    #[inline(always)]
    pub fn flows(&self) -> u64 {
        self.flows
    }

    /// The key of slot `slot` in generation `gen`.
    #[inline(always)]
    pub fn key(&self, slot: u32, gen: u64) -> u64 {
        (gen % self.generations) * self.flows + slot as u64
    }

    /// The slot a key belongs to.
    #[inline(always)]
    pub fn slot_of(&self, key: u64) -> u32 {
        (key % self.flows) as u32
    }

    /// The client address and port of `key`.
    #[inline(always)]
    pub fn client<A: GenFamily>(key: u64) -> (A, u16) {
        let ip = A::client((key % CLIENT_ADDRS) as u32);
        let port = PORT_BASE + (key / CLIENT_ADDRS) as u16;
        (ip, port)
    }

    /// The key of a client `ip:port`, if it is one of ours.
    #[inline(always)]
    pub fn key_of<A: GenFamily>(ip: A, port: u16) -> Option<u64> {
        let off = A::client_offset(ip)?;
        if port < PORT_BASE {
            return None;
        }
        Some(u64::from(off) + (port - PORT_BASE) as u64 * CLIENT_ADDRS)
    }

    /// Whether `ip` is a client address.
    #[inline(always)]
    pub fn is_client<A: GenFamily>(ip: A) -> bool {
        A::client_offset(ip).is_some()
    }
}

/// Which generation each slot is in, after some number of replacements.
#[derive(Debug, Clone)]
pub struct Rotation {
    flows: u64,
    replaced: u64,
    base_gen: u64,
    boundary: u64,
}

impl Rotation {
    /// No replacement yet: every slot in generation 0.
    pub fn new(space: &FlowSpace) -> Rotation {
        Rotation {
            flows: space.flows(),
            replaced: 0,
            base_gen: 0,
            boundary: 0,
        }
    }

    /// Replaces the next slot's flow by a fresh one; returns the slot.
    #[inline]
    pub fn replace_next(&mut self) -> u32 {
        let slot = self.boundary as u32;
        self.replaced += 1;
        self.boundary += 1;
        if self.boundary == self.flows {
            self.boundary = 0;
            self.base_gen += 1;
        }
        slot
    }

    /// The current generation of `slot`.
    #[inline(always)]
    pub fn generation(&self, slot: u32) -> u64 {
        self.base_gen + ((slot as u64) < self.boundary) as u64
    }

    /// Total replacements so far (new flows beyond the initial set).
    pub fn replaced(&self) -> u64 {
        self.replaced
    }
}

/// The next packet the sender builds: which flow, its sequence number, and
/// whether it opens the flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pick {
    /// Slot of the flow.
    pub slot: u32,
    /// Key of the flow (its client `ip:port`).
    pub key: u64,
    /// Sequence number of the packet within the slot.
    pub seq: u32,
    /// First packet of this flow generation (a SYN for TCP).
    pub first: bool,
}

/// The sender's per-slot state and its round-robin cursor over the slots.
pub struct SenderFlows {
    space: FlowSpace,
    rotation: Rotation,
    seq: Vec<u32>,
    fresh: Vec<u64>,
    cursor: u32,
}

impl SenderFlows {
    /// Every slot fresh, sequence numbers at 0.
    pub fn new(space: FlowSpace) -> SenderFlows {
        let n = space.flows() as usize;
        let mut fresh = vec![u64::MAX; n.div_ceil(64)];
        if n & 63 != 0 {
            *fresh.last_mut().unwrap() = (1u64 << (n % 64)) - 1;
        }
        SenderFlows {
            rotation: Rotation::new(&space),
            space,
            seq: vec![0; n],
            fresh,
            cursor: 0,
        }
    }

    /// The flow space.
    pub fn space(&self) -> &FlowSpace {
        &self.space
    }

    /// The rotation state.
    pub fn rotation(&self) -> &Rotation {
        &self.rotation
    }

    /// Replaces the next slot's flow by a fresh one.
    #[inline]
    pub fn replace_next(&mut self) {
        let s = self.rotation.replace_next() as usize;
        self.fresh[s / 64] |= 1 << (s % 64);
    }

    /// The next packet: the slot under the cursor, which then advances.
    #[inline(always)]
    pub fn next_pick(&mut self) -> Pick {
        let slot = self.cursor;
        self.cursor += 1;
        if self.cursor as u64 == self.space.flows() {
            self.cursor = 0;
        }
        let s = slot as usize;
        let seq = self.seq[s];
        self.seq[s] = seq.wrapping_add(1);
        let bit = 1u64 << (s % 64);
        let first = self.fresh[s / 64] & bit != 0;
        self.fresh[s / 64] &= !bit;
        let key = self.space.key(slot, self.rotation.generation(slot));
        Pick {
            slot,
            key,
            seq,
            first,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn keys_map_to_clients_and_back() {
        for key in [0, 1, CLIENT_ADDRS - 1, CLIENT_ADDRS, KEY_SPACE - 1] {
            let (ip, port) = FlowSpace::client::<Ipv4Addr>(key);
            assert!(FlowSpace::is_client(ip));
            assert!(port >= PORT_BASE);
            assert_eq!(FlowSpace::key_of(ip, port), Some(key));
            let (ip6, port6) = FlowSpace::client::<Ipv6Addr>(key);
            assert_eq!(port6, port);
            assert_eq!(FlowSpace::key_of(ip6, port6), Some(key));
        }
        assert_eq!(
            FlowSpace::client(0),
            (Ipv4Addr::new(198, 18, 0, 0), PORT_BASE)
        );
        assert_eq!(
            FlowSpace::client(CLIENT_ADDRS - 1),
            (Ipv4Addr::new(198, 19, 255, 255), PORT_BASE)
        );
        assert_eq!(
            FlowSpace::client(CLIENT_ADDRS + 5),
            ("2001:db8:18::5".parse::<Ipv6Addr>().unwrap(), PORT_BASE + 1)
        );
        assert_eq!(FlowSpace::key_of(Ipv4Addr::new(198, 20, 0, 0), 2000), None);
        assert_eq!(FlowSpace::key_of(Ipv4Addr::new(198, 18, 0, 1), 80), None);
        assert_eq!(FlowSpace::key_of(Ipv6Addr::LOCALHOST, 2000), None);
    }

    #[test]
    fn flow_count_bounds() {
        assert!(FlowSpace::new(0).is_err());
        assert!(FlowSpace::new(MAX_FLOWS + 1).is_err());
        assert!(FlowSpace::new(MAX_FLOWS).is_ok());
    }

    #[test]
    fn keys_stay_in_their_slot_across_generations() {
        let sp = FlowSpace::new(7_777_777).unwrap();
        for gen in [0, 1, 1000, u64::MAX] {
            for slot in [0u32, 1, 7_777_776] {
                let k = sp.key(slot, gen);
                assert!(k < KEY_SPACE);
                assert_eq!(sp.slot_of(k), slot);
            }
        }
    }

    #[test]
    fn rotation_is_round_robin() {
        let sp = FlowSpace::new(3).unwrap();
        let mut r = Rotation::new(&sp);
        assert_eq!(r.replace_next(), 0);
        assert_eq!((r.generation(0), r.generation(1)), (1, 0));
        assert_eq!(r.replace_next(), 1);
        assert_eq!(r.replace_next(), 2);
        assert_eq!(r.replace_next(), 0);
        assert_eq!(
            (r.generation(0), r.generation(1), r.generation(2)),
            (2, 1, 1)
        );
        assert_eq!(r.replaced(), 4);
    }

    #[test]
    fn sender_sends_first_then_data_and_counts_per_slot() {
        let sp = FlowSpace::new(2).unwrap();
        let mut f = SenderFlows::new(sp);
        let a = f.next_pick();
        let b = f.next_pick();
        let c = f.next_pick();
        assert_eq!((a.slot, a.seq, a.first), (0, 0, true));
        assert_eq!((b.slot, b.seq, b.first), (1, 0, true));
        assert_eq!((c.slot, c.seq, c.first), (0, 1, false));
        f.replace_next(); // slot 0 gets a new flow
        let d = f.next_pick(); // slot 1
        let e = f.next_pick(); // slot 0, fresh again, new key, seq continues
        assert!(!d.first);
        assert_eq!((e.slot, e.seq, e.first), (0, 2, true));
        assert_ne!(e.key, a.key);
        assert_eq!(sp.slot_of(e.key), 0);
    }

    #[test]
    fn fresh_bits_cover_exactly_the_slots() {
        let sp = FlowSpace::new(65).unwrap();
        let mut f = SenderFlows::new(sp);
        for _ in 0..65 {
            assert!(f.next_pick().first);
        }
        for _ in 0..65 {
            assert!(!f.next_pick().first);
        }
    }
}
