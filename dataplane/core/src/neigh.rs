//! The neighbour cache (ARP for IPv4, neighbour discovery for IPv6: one
//! table per family, [`NeighbourTable<A>`]), modelled on the kernel's neighbour states
//! (NUD): an entry confirmed by ARP is REACHABLE for `reachable_ms`, then
//! STALE: still used, and its first use starts DELAY; if nothing confirms
//! it within `delay_ms`, PROBE sends up to `probes` unicast ARP requests
//! `retrans_ms` apart; with no answer the entry FAILED and is no longer
//! used (the next packet for it is held and a broadcast request asks
//! again). An entry is usable in REACHABLE, STALE, DELAY and PROBE, so a
//! neighbour that stays quiet, such as a direct-routing real that never
//! sends to the load balancer, is re-confirmed in the background without
//! its traffic ever waiting.
//!
//! Sans-IO: every call takes `now` (milliseconds); [`NeighbourTable::poll`]
//! moves the timers and reports the unicast probes to send. Fixed
//! capacity, allocated once; nothing allocates afterwards.

use crate::addr::MacAddr;
use crate::family::Address;
use std::net::Ipv4Addr;

/// The state of an entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum NudState {
    /// An empty slot.
    #[default]
    Empty,
    /// Confirmed recently.
    Reachable,
    /// Not confirmed for a while; used, and checked when next used.
    Stale,
    /// Used while stale; a probe follows unless something confirms it.
    Delay,
    /// Being probed with unicast ARP requests.
    Probe,
    /// Probes went unanswered: not used until learned again.
    Failed,
}

impl NudState {
    /// Whether packets may be sent to the entry's MAC.
    pub fn usable(self) -> bool {
        matches!(
            self,
            NudState::Reachable | NudState::Stale | NudState::Delay | NudState::Probe
        )
    }
}

/// The neighbour timers, as the kernel's `base_reachable_time`,
/// `delay_first_probe_time`, `retrans_time` and `ucast_solicit`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NudConfig {
    /// How long a confirmation keeps an entry REACHABLE.
    pub reachable_ms: u64,
    /// How long a used STALE entry waits for a confirmation before probes.
    pub delay_ms: u64,
    /// Time between unicast probes.
    pub retrans_ms: u64,
    /// Unicast probes before the entry FAILED.
    pub probes: u8,
}

impl Default for NudConfig {
    /// The kernel's defaults: 30 s, 5 s, 1 s, 3 probes.
    fn default() -> Self {
        NudConfig {
            reachable_ms: 30_000,
            delay_ms: 5_000,
            retrans_ms: 1_000,
            probes: 3,
        }
    }
}

#[derive(Clone, Copy)]
struct Slot<A> {
    ip: A,
    mac: MacAddr,
    state: NudState,
    /// When the state was entered (or the last probe sent, in PROBE).
    since: u64,
    /// When an ARP packet from the neighbour last confirmed it.
    confirmed: u64,
    /// Unicast probes sent in PROBE.
    probes: u8,
}

/// A fixed-capacity neighbour cache (open addressing, linear probing over
/// a bounded window; when the window is full, a FAILED entry or else the
/// least recently confirmed one is replaced).
pub struct NeighbourTable<A = Ipv4Addr> {
    slots: Box<[Slot<A>]>,
    mask: usize,
    cfg: NudConfig,
}

const PROBE_WINDOW: usize = 8;

impl<A: Address> NeighbourTable<A> {
    /// A cache of at least `capacity` entries (rounded up to a power of
    /// two) with the timers of `cfg`.
    pub fn new(capacity: usize, cfg: NudConfig) -> NeighbourTable<A> {
        let cap = capacity.max(PROBE_WINDOW).next_power_of_two();
        let empty = Slot {
            ip: A::UNSPECIFIED,
            mac: MacAddr::ZERO,
            state: NudState::Empty,
            since: 0,
            confirmed: 0,
            probes: 0,
        };
        NeighbourTable {
            slots: vec![empty; cap].into_boxed_slice(),
            mask: cap - 1,
            cfg,
        }
    }

    #[inline(always)]
    fn home(&self, ip: A) -> usize {
        (ip.fold32().wrapping_mul(0x9e37_79b1) >> 7) as usize & self.mask
    }

    #[inline]
    fn find(&self, ip: A) -> Option<usize> {
        let h = self.home(ip);
        (0..PROBE_WINDOW)
            .map(|i| (h + i) & self.mask)
            .find(|&idx| self.slots[idx].state != NudState::Empty && self.slots[idx].ip == ip)
    }

    /// Records that `ip` is at `mac` at time `now`: the entry becomes
    /// REACHABLE. An address has at most one entry. Any ARP packet from the
    /// neighbour confirms it (the kernel makes an entry learned from a
    /// request STALE; an answer to our request or probe is REACHABLE in
    /// both): a request proves it is there just as well.
    pub fn learn(&mut self, ip: A, mac: MacAddr, now: u64) {
        let idx = match self.find(ip) {
            Some(i) => i,
            None => self.victim(ip, now),
        };
        self.slots[idx] = Slot {
            ip,
            mac,
            state: NudState::Reachable,
            since: now,
            confirmed: now,
            probes: 0,
        };
    }

    /// The slot a new entry for `ip` takes: an empty one in its window,
    /// else a FAILED one, else the one confirmed longest ago.
    fn victim(&self, ip: A, now: u64) -> usize {
        let h = self.home(ip);
        let window = (0..PROBE_WINDOW).map(|i| (h + i) & self.mask);
        let rank = |idx: usize| {
            let s = &self.slots[idx];
            match s.state {
                NudState::Empty => (0, 0),
                NudState::Failed => (1, 0),
                _ => (2, s.confirmed.min(now)),
            }
        };
        window.min_by_key(|&idx| rank(idx)).unwrap_or(h)
    }

    /// The MAC to send to `ip` with, if the entry is usable. A STALE entry
    /// used now starts its DELAY timer, as in the kernel.
    #[inline]
    pub fn lookup(&mut self, ip: A, now: u64) -> Option<MacAddr> {
        let idx = self.find(ip)?;
        let cfg = self.cfg;
        let s = &mut self.slots[idx];
        age(s, &cfg, now);
        if s.state == NudState::Stale {
            s.state = NudState::Delay;
            s.since = now;
        }
        s.state.usable().then_some(s.mac)
    }

    /// The entry of `ip`, if any: its MAC and state at `now` (read-only,
    /// for tests and the control plane).
    pub fn entry(&self, ip: A, now: u64) -> Option<(MacAddr, NudState)> {
        let idx = self.find(ip)?;
        let mut s = self.slots[idx];
        age(&mut s, &self.cfg, now);
        Some((s.mac, s.state))
    }

    /// Moves every entry's timers to `now` and calls `probe(ip, mac)` for
    /// each unicast ARP request to send (an entry entering or staying in
    /// PROBE), at most `max_probes` of them: an entry whose probe does not
    /// fit waits, its state unchanged, for the next poll, so no entry fails
    /// without its probes having been sent. Call it every few hundred
    /// milliseconds; it visits every slot.
    pub fn poll(&mut self, now: u64, max_probes: usize, mut probe: impl FnMut(A, MacAddr)) {
        let cfg = self.cfg;
        let mut left = max_probes;
        for s in self.slots.iter_mut() {
            if s.state != NudState::Empty {
                advance(s, &cfg, now, &mut left, &mut probe);
            }
        }
    }
}

/// REACHABLE becomes STALE when its time is up: the one change that needs
/// no probe, applied on every read.
fn age<A>(s: &mut Slot<A>, cfg: &NudConfig, now: u64) {
    if s.state == NudState::Reachable && now.saturating_sub(s.since) >= cfg.reachable_ms {
        s.state = NudState::Stale;
        s.since += cfg.reachable_ms;
    }
}

/// Applies the timers that ran out by `now` to one entry, reporting the
/// probes they call for while `left` allows. Only
/// [`NeighbourTable::poll`] moves DELAY and PROBE on, so that no probe is
/// skipped.
fn advance<A: Copy>(
    s: &mut Slot<A>,
    cfg: &NudConfig,
    now: u64,
    left: &mut usize,
    probe: &mut dyn FnMut(A, MacAddr),
) {
    age(s, cfg, now);
    let elapsed = now.saturating_sub(s.since);
    let due = match s.state {
        NudState::Delay => elapsed >= cfg.delay_ms,
        NudState::Probe => elapsed >= cfg.retrans_ms,
        _ => false,
    };
    if !due {
        return;
    }
    if s.state == NudState::Probe && s.probes >= cfg.probes {
        s.state = NudState::Failed;
        s.since = now;
        return;
    }
    if *left == 0 {
        return;
    }
    *left -= 1;
    s.probes = if s.state == NudState::Delay {
        1
    } else {
        s.probes + 1
    };
    s.state = NudState::Probe;
    s.since = now;
    probe(s.ip, s.mac);
}

#[cfg(test)]
mod tests {
    use super::*;

    const IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
    const MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 10]);

    fn table() -> NeighbourTable {
        NeighbourTable::new(64, NudConfig::default())
    }

    fn probes(t: &mut NeighbourTable, now: u64) -> Vec<Ipv4Addr> {
        let mut out = Vec::new();
        t.poll(now, usize::MAX, |ip, mac| {
            assert_eq!(mac, MAC);
            out.push(ip)
        });
        out
    }

    #[test]
    fn reachable_then_stale_but_still_used() {
        let mut t = table();
        assert_eq!(t.lookup(IP, 1), None);
        t.learn(IP, MAC, 1000);
        assert_eq!(t.entry(IP, 30_999).unwrap().1, NudState::Reachable);
        assert_eq!(t.entry(IP, 31_000).unwrap().1, NudState::Stale);
        // Unused for an hour: stale, no probe, still used when needed.
        assert!(probes(&mut t, 3_600_000).is_empty());
        assert_eq!(t.lookup(IP, 3_600_000), Some(MAC));
        assert_eq!(t.entry(IP, 3_600_000).unwrap().1, NudState::Delay);
    }

    #[test]
    fn a_used_stale_entry_is_probed_and_fails_without_an_answer() {
        let mut t = table();
        t.learn(IP, MAC, 1000);
        let used = 100_000;
        assert_eq!(t.lookup(IP, used), Some(MAC));
        assert!(probes(&mut t, used + 4_999).is_empty());
        // Three unicast probes, one second apart; the entry stays usable.
        assert_eq!(probes(&mut t, used + 5_000), vec![IP]);
        assert_eq!(t.lookup(IP, used + 5_500), Some(MAC));
        assert_eq!(probes(&mut t, used + 6_000), vec![IP]);
        assert_eq!(probes(&mut t, used + 7_000), vec![IP]);
        assert_eq!(t.entry(IP, used + 7_999).unwrap().1, NudState::Probe);
        // No answer: failed, not used any more, not probed again.
        assert!(probes(&mut t, used + 8_000).is_empty());
        assert_eq!(t.entry(IP, used + 8_000).unwrap().1, NudState::Failed);
        assert_eq!(t.lookup(IP, used + 8_001), None);
        assert!(probes(&mut t, used + 60_000).is_empty());
        // Learned again: reachable.
        t.learn(IP, MAC, used + 70_000);
        assert_eq!(t.lookup(IP, used + 70_001), Some(MAC));
    }

    #[test]
    fn an_answer_to_a_probe_confirms_the_entry() {
        let mut t = table();
        t.learn(IP, MAC, 1000);
        assert_eq!(t.lookup(IP, 40_000), Some(MAC));
        assert_eq!(probes(&mut t, 45_000), vec![IP]);
        t.learn(IP, MAC, 45_010);
        assert_eq!(t.entry(IP, 45_010).unwrap().1, NudState::Reachable);
        assert!(probes(&mut t, 50_000).is_empty());
    }

    #[test]
    fn only_polls_move_delay_and_probe_on() {
        // A lookup long after the last poll still uses a delayed entry:
        // the probes that decide its fate are sent by poll, never skipped.
        let mut t = table();
        t.learn(IP, MAC, 1000);
        assert_eq!(t.lookup(IP, 40_000), Some(MAC));
        assert_eq!(t.lookup(IP, 90_000), Some(MAC));
        assert_eq!(t.entry(IP, 90_000).unwrap().1, NudState::Delay);
        assert_eq!(probes(&mut t, 90_000), vec![IP]);
    }

    #[test]
    fn probes_that_do_not_fit_wait_for_the_next_poll() {
        // 100 neighbours go stale together and are used together: each
        // poll sends as many probes as fit, and every entry gets its three
        // probes before it can fail.
        let mut t = NeighbourTable::new(256, NudConfig::default());
        let ips: Vec<Ipv4Addr> = (0..100u32)
            .map(|i| Ipv4Addr::from(0xc633_6400 + i))
            .collect();
        for ip in &ips {
            t.learn(*ip, MAC, 1000);
            assert_eq!(t.lookup(*ip, 40_000), Some(MAC));
        }
        let mut sent = std::collections::HashMap::new();
        let mut now = 45_000;
        while now < 80_000 {
            t.poll(now, 16, |ip, _| *sent.entry(ip).or_insert(0) += 1);
            now += 100;
        }
        for ip in &ips {
            assert_eq!(sent.get(ip), Some(&3), "{ip}");
            assert_eq!(t.entry(*ip, now).unwrap().1, NudState::Failed);
        }
    }

    #[test]
    fn eviction_takes_the_least_recently_confirmed() {
        // A full window: the entry confirmed longest ago goes, whatever
        // state the others are in.
        let mut t = NeighbourTable::new(8, NudConfig::default());
        let ips: Vec<Ipv4Addr> = (0..8u32).map(|i| Ipv4Addr::from(0x0a00_0000 + i)).collect();
        for (k, ip) in ips.iter().enumerate() {
            t.learn(*ip, MAC, 1000 + k as u64);
        }
        // The oldest is used while stale (its state timer restarts).
        assert_eq!(t.lookup(ips[0], 100_000), Some(MAC));
        t.learn(Ipv4Addr::new(10, 1, 0, 0), MAC, 100_001);
        assert!(t.entry(ips[0], 100_001).is_none(), "the oldest was kept");
        assert!(ips[1..].iter().all(|ip| t.entry(*ip, 100_001).is_some()));
    }

    #[test]
    fn learning_never_makes_a_duplicate() {
        // Two addresses with the same home slot: the second lands behind
        // the first. When the first goes, learning the second again must
        // update its entry, not make a new one in the freed slot.
        let mut t: NeighbourTable = NeighbourTable::new(8, NudConfig::default());
        let a = Ipv4Addr::from(0x0a00_0001u32);
        let h = t.home(a);
        let b = (0x0a00_0002u32..)
            .map(Ipv4Addr::from)
            .find(|x| t.home(*x) == h)
            .unwrap();
        t.learn(a, MAC, 10);
        t.learn(b, MAC, 20);
        let ia = t.find(a).unwrap();
        t.slots[ia].state = NudState::Empty;
        let mac2 = MacAddr([2, 0, 0, 0, 0, 99]);
        t.learn(b, mac2, 30);
        let copies = t
            .slots
            .iter()
            .filter(|s| s.state != NudState::Empty && s.ip == b)
            .count();
        assert_eq!(copies, 1);
        assert_eq!(t.lookup(b, 31), Some(mac2));
    }

    #[test]
    fn many_entries_keep_the_recent_ones() {
        let mut t = NeighbourTable::new(1024, NudConfig::default());
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

    /// The same states and timers for IPv6 neighbours: 200 addresses of
    /// one /64 differing only in their last bytes are each found again
    /// (the fold of the address spreads them), and a used stale entry is
    /// probed by unicast and fails unanswered.
    #[test]
    fn ipv6_neighbours_follow_the_same_states() {
        use std::net::Ipv6Addr;
        let mut t: NeighbourTable<Ipv6Addr> = NeighbourTable::new(512, NudConfig::default());
        let ip = |i: u16| Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0, 0, 0, i);
        for i in 0..200 {
            t.learn(ip(i), MacAddr([2, 0, 0, 0, (i >> 8) as u8, i as u8]), 1000);
        }
        for i in 0..200 {
            assert_eq!(
                t.entry(ip(i), 1000),
                Some((
                    MacAddr([2, 0, 0, 0, (i >> 8) as u8, i as u8]),
                    NudState::Reachable
                ))
            );
        }
        let used = 100_000;
        assert!(t.lookup(ip(7), used).is_some());
        let mut sent = Vec::new();
        t.poll(used + 5_000, usize::MAX, |a, _| sent.push(a));
        assert_eq!(sent, vec![ip(7)]);
        for k in 1..=3 {
            t.poll(used + 5_000 + 1_000 * k, usize::MAX, |_, _| {});
        }
        assert_eq!(t.entry(ip(7), used + 8_000).unwrap().1, NudState::Failed);
        assert_eq!(t.lookup(ip(7), used + 8_001), None);
    }

    /// What the model remembers of one neighbour since it was last learned.
    #[derive(Default, Clone, Copy)]
    struct Seen {
        mac: Option<MacAddr>,
        learned_at: u64,
        probes: u8,
        last_probe: Option<u64>,
    }

    #[derive(Debug, Clone)]
    enum Op {
        Learn(usize, u8),
        Lookup(usize),
        Poll(usize),
        Wait(u64),
    }

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        prop_oneof![
            (0..6usize, any::<u8>()).prop_map(|(i, m)| Op::Learn(i, m)),
            (0..6usize).prop_map(Op::Lookup),
            (0..3usize).prop_map(Op::Poll),
            (0..12_000u64).prop_map(Op::Wait),
        ]
    }

    proptest::proptest! {
        /// The neighbour discovery state machine against what RFC 4861
        /// (and the kernel's NUD) promise, on random sequences of
        /// advertisements learned, lookups, timer polls with a probe
        /// budget, and waits, for six IPv6 neighbours: a lookup yields the
        /// last MAC learned or nothing; a fresh entry is REACHABLE and
        /// never probed; the first probe comes no sooner than reachable +
        /// delay after the advertisement, the next ones retrans apart, at
        /// most `probes` of them; an entry FAILS only after all its probes
        /// went unanswered. Then, left alone but used, every learned
        /// neighbour is probed exactly `probes` times and fails.
        #[test]
        fn nd_states_keep_rfc_4861s_promises(ops in proptest::collection::vec(op(), 1..120)) {
            use std::net::Ipv6Addr;
            let cfg = NudConfig::default();
            let mut t: NeighbourTable<Ipv6Addr> = NeighbourTable::new(64, cfg);
            let ip = |i: usize| Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x10 + i as u16);
            let mut seen = [Seen::default(); 6];
            let mut now = 1_000u64;
            let poll = |t: &mut NeighbourTable<Ipv6Addr>, seen: &mut [Seen; 6], now: u64, budget: usize| {
                let mut sent = Vec::new();
                t.poll(now, budget, |a, m| sent.push((a, m)));
                assert!(sent.len() <= budget);
                for (a, m) in sent {
                    let i = (0..6).find(|&i| ip(i) == a).expect("a probe for a neighbour learned");
                    let s = &mut seen[i];
                    assert_eq!(Some(m), s.mac, "probed at the MAC learned");
                    assert!(now >= s.learned_at + cfg.reachable_ms + cfg.delay_ms, "probed too soon");
                    if let Some(last) = s.last_probe {
                        assert!(now >= last + cfg.retrans_ms, "probes closer than retrans");
                    }
                    s.probes += 1;
                    assert!(s.probes <= cfg.probes, "more probes than allowed");
                    s.last_probe = Some(now);
                }
            };
            for op in ops {
                match op {
                    Op::Learn(i, m) => {
                        let mac = MacAddr([2, 0, 0, 0, i as u8, m]);
                        t.learn(ip(i), mac, now);
                        seen[i] = Seen { mac: Some(mac), learned_at: now, probes: 0, last_probe: None };
                        assert_eq!(t.entry(ip(i), now), Some((mac, NudState::Reachable)));
                    }
                    Op::Lookup(i) => {
                        let got = t.lookup(ip(i), now);
                        let state = t.entry(ip(i), now).map(|e| e.1);
                        match got {
                            Some(m) => assert_eq!(Some(m), seen[i].mac),
                            None => assert!(seen[i].mac.is_none() || state == Some(NudState::Failed)),
                        }
                    }
                    Op::Poll(budget) => poll(&mut t, &mut seen, now, budget),
                    Op::Wait(ms) => now += ms,
                }
                for (i, s) in seen.iter().enumerate() {
                    let Some((mac, state)) = t.entry(ip(i), now) else {
                        assert!(s.mac.is_none(), "a neighbour learned was forgotten");
                        continue;
                    };
                    assert_eq!(Some(mac), s.mac);
                    if now < s.learned_at + cfg.reachable_ms {
                        assert_eq!(state, NudState::Reachable);
                    }
                    if state == NudState::Failed {
                        assert_eq!(s.probes, cfg.probes, "failed before its probes");
                    }
                }
            }
            // Used and never confirmed again: each learned neighbour is
            // probed exactly `probes` times, then fails.
            let end = now + cfg.reachable_ms + cfg.delay_ms + (u64::from(cfg.probes) + 2) * cfg.retrans_ms;
            while now <= end {
                for i in 0..6 {
                    t.lookup(ip(i), now);
                }
                poll(&mut t, &mut seen, now, usize::MAX);
                now += 100;
            }
            for (i, s) in seen.iter().enumerate() {
                if s.mac.is_some() {
                    assert_eq!(t.entry(ip(i), now).map(|e| e.1), Some(NudState::Failed));
                    assert_eq!(s.probes, cfg.probes);
                }
            }
        }
    }
}
