//! The neighbour (ARP) cache: IPv4 address to MAC address, learned from
//! ARP, with an age limit. Fixed capacity, allocated once; learning and
//! lookup never allocate.

use crate::addr::MacAddr;
use std::net::Ipv4Addr;

#[derive(Clone, Copy, Default)]
struct Slot {
    ip: u32,
    mac: MacAddr,
    /// Time of the last confirmation; 0 marks an empty slot.
    seen: u64,
}

/// A fixed-capacity neighbour cache (open addressing, linear probing over
/// a bounded window; when the window is full the oldest entry in it is
/// replaced).
pub struct NeighbourTable {
    slots: Box<[Slot]>,
    mask: usize,
    max_age: u64,
}

const PROBE: usize = 8;

impl NeighbourTable {
    /// A cache of at least `capacity` entries (rounded up to a power of
    /// two) whose entries expire `max_age` time units after last seen.
    pub fn new(capacity: usize, max_age: u64) -> NeighbourTable {
        let cap = capacity.max(PROBE).next_power_of_two();
        NeighbourTable {
            slots: vec![Slot::default(); cap].into_boxed_slice(),
            mask: cap - 1,
            max_age,
        }
    }

    #[inline(always)]
    fn home(&self, ip: u32) -> usize {
        (ip.wrapping_mul(0x9e37_79b1) >> 7) as usize & self.mask
    }

    /// Records that `ip` is at `mac` at time `now` (now must be non-zero).
    pub fn learn(&mut self, ip: Ipv4Addr, mac: MacAddr, now: u64) {
        let ip = u32::from(ip);
        let now = now.max(1);
        let h = self.home(ip);
        let mut victim = h;
        for i in 0..PROBE {
            let idx = (h + i) & self.mask;
            let s = &mut self.slots[idx];
            if s.seen != 0 && s.ip == ip {
                s.mac = mac;
                s.seen = now;
                return;
            }
            if s.seen == 0 || now.saturating_sub(s.seen) > self.max_age {
                victim = idx;
                break;
            }
            if s.seen < self.slots[victim].seen {
                victim = idx;
            }
        }
        self.slots[victim] = Slot { ip, mac, seen: now };
    }

    /// The MAC of `ip` if known and not older than the age limit.
    pub fn lookup(&self, ip: Ipv4Addr, now: u64) -> Option<MacAddr> {
        let ip = u32::from(ip);
        let h = self.home(ip);
        for i in 0..PROBE {
            let s = &self.slots[(h + i) & self.mask];
            if s.seen != 0 && s.ip == ip {
                return (now.saturating_sub(s.seen) <= self.max_age).then_some(s.mac);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learn_lookup_expire() {
        let mut t = NeighbourTable::new(64, 100);
        let ip = Ipv4Addr::new(192, 0, 2, 10);
        let mac = MacAddr([2, 0, 0, 0, 0, 10]);
        assert_eq!(t.lookup(ip, 1), None);
        t.learn(ip, mac, 10);
        assert_eq!(t.lookup(ip, 50), Some(mac));
        assert_eq!(t.lookup(ip, 110), Some(mac));
        assert_eq!(t.lookup(ip, 111), None);
        let mac2 = MacAddr([2, 0, 0, 0, 0, 11]);
        t.learn(ip, mac2, 120);
        assert_eq!(t.lookup(ip, 121), Some(mac2));
    }

    #[test]
    fn many_entries_keep_the_recent_ones() {
        let mut t = NeighbourTable::new(1024, 1_000_000);
        for i in 0..512u32 {
            t.learn(
                Ipv4Addr::from(0xc000_0200 + i),
                MacAddr([2, 0, 0, 0, (i >> 8) as u8, i as u8]),
                1 + i as u64,
            );
        }
        let found = (0..512u32)
            .filter(|i| t.lookup(Ipv4Addr::from(0xc000_0200 + i), 600).is_some())
            .count();
        assert!(
            found >= 500,
            "only {found} of 512 kept in a 1024-slot table"
        );
    }
}
