//! Frames that wait for their next hop's MAC address, and when to ask for
//! it: the hold queue a worker keeps while ARP resolves a next hop.
//!
//! Sans-IO: the queue holds any frame handle `F` (an mbuf in the worker, a
//! byte vector in tests) and every decision takes `now` in milliseconds.
//! A frame is held at most [`HOLD_MS`]; an ARP request for a next hop goes
//! out when the first frame for it is held and then at most every
//! [`ARP_RETRY_MS`] while frames wait for it; at most [`MAX_HELD`] frames
//! wait at once.

use sluice_core::MacAddr;
use std::net::{IpAddr, Ipv4Addr};

/// Most frames held while next hops are resolved.
pub const MAX_HELD: usize = 256;
/// A held frame is dropped when its next hop stays unresolved this long.
pub const HOLD_MS: u64 = 3000;
/// ARP requests for one next hop are sent at most this often.
pub const ARP_RETRY_MS: u64 = 500;

struct Held<F> {
    frame: F,
    port: usize,
    next_hop: IpAddr,
    since: u64,
    /// When an ARP request for `next_hop` last went out; every frame held
    /// for the same next hop has the same value.
    asked: u64,
}

/// What became of a frame offered to [`HoldQueue::hold`].
#[derive(Debug, PartialEq, Eq)]
pub enum Holding<F> {
    /// Held. `ask`: send an ARP request for its next hop now.
    Held {
        /// Whether to ask now.
        ask: bool,
    },
    /// The queue is full: the frame comes back, to be dropped.
    Full(F),
}

/// What [`HoldQueue::release`] asks its caller to do.
#[derive(Debug, PartialEq, Eq)]
pub enum Release<F> {
    /// The next hop is known: address the frame to `mac` (from the port's
    /// own MAC) and send it on `port`.
    Send {
        /// The frame.
        frame: F,
        /// The port to send it on.
        port: usize,
        /// The next hop's MAC.
        mac: MacAddr,
    },
    /// The next hop never answered: drop the frame.
    Expired(F),
    /// Ask again for `next_hop` on `port`.
    Ask {
        /// The port.
        port: usize,
        /// The address to resolve.
        next_hop: IpAddr,
    },
}

/// The frames waiting for next hops. Allocated once; never grows.
pub struct HoldQueue<F> {
    held: Vec<Held<F>>,
}

impl<F> Default for HoldQueue<F> {
    fn default() -> Self {
        HoldQueue::new()
    }
}

impl<F> HoldQueue<F> {
    /// An empty queue with room for [`MAX_HELD`] frames.
    pub fn new() -> HoldQueue<F> {
        HoldQueue {
            held: Vec::with_capacity(MAX_HELD),
        }
    }

    /// Frames held.
    pub fn len(&self) -> usize {
        self.held.len()
    }

    /// Whether no frame is held.
    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// Holds `frame`, to go out on `port` once `next_hop` is resolved.
    pub fn hold(&mut self, frame: F, port: usize, next_hop: IpAddr, now: u64) -> Holding<F> {
        if self.held.len() >= MAX_HELD {
            return Holding::Full(frame);
        }
        let asked = self
            .held
            .iter()
            .filter(|h| h.next_hop == next_hop)
            .map(|h| h.asked)
            .max();
        let ask = asked.is_none_or(|a| now.saturating_sub(a) >= ARP_RETRY_MS);
        self.held.push(Held {
            frame,
            port,
            next_hop,
            since: now,
            asked: asked.unwrap_or(0),
        });
        if ask {
            self.asked(next_hop, now);
        }
        Holding::Held { ask }
    }

    fn asked(&mut self, next_hop: IpAddr, now: u64) {
        for h in self.held.iter_mut().filter(|h| h.next_hop == next_hop) {
            h.asked = now;
        }
    }

    /// Goes through the held frames at `now`: those whose next hop
    /// `mac_of` knows are handed out to send, those held too long to drop,
    /// and an ARP request is asked for where the last one is old.
    pub fn release(
        &mut self,
        now: u64,
        mut mac_of: impl FnMut(IpAddr) -> Option<MacAddr>,
        mut out: impl FnMut(Release<F>),
    ) {
        let mut i = 0;
        while i < self.held.len() {
            let h = &self.held[i];
            if let Some(mac) = mac_of(h.next_hop) {
                let h = self.held.swap_remove(i);
                out(Release::Send {
                    frame: h.frame,
                    port: h.port,
                    mac,
                });
            } else if now.saturating_sub(h.since) > HOLD_MS {
                out(Release::Expired(self.held.swap_remove(i).frame));
            } else {
                if now.saturating_sub(h.asked) >= ARP_RETRY_MS {
                    let (port, next_hop) = (h.port, h.next_hop);
                    self.asked(next_hop, now);
                    out(Release::Ask { port, next_hop });
                }
                i += 1;
            }
        }
    }

    /// Hands every held frame back (shutdown).
    pub fn drain(&mut self) -> impl Iterator<Item = F> + '_ {
        self.held.drain(..).map(|h| h.frame)
    }
}

/// Which virtual IPs are new since the last snapshot, so the appliance
/// announces them with a gratuitous ARP (IPv6: an unsolicited neighbour
/// advertisement). One per address family.
#[derive(Debug)]
pub struct Announcer<A = Ipv4Addr> {
    known: Vec<A>,
}

impl<A> Default for Announcer<A> {
    fn default() -> Self {
        Announcer { known: Vec::new() }
    }
}

impl<A: Copy + PartialEq> Announcer<A> {
    /// Calls `announce` for each VIP of `vips` that was not in the last
    /// list, and remembers `vips` (off the packet path: between bursts,
    /// when a new snapshot arrives).
    pub fn update(&mut self, vips: &[A], mut announce: impl FnMut(A)) {
        for v in vips.iter().filter(|v| !self.known.contains(v)) {
            announce(*v);
        }
        self.known.clear();
        self.known.extend_from_slice(vips);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NH: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 11));
    const NH2: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 12));
    const MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 11]);

    fn release(q: &mut HoldQueue<u32>, now: u64, known: bool) -> Vec<Release<u32>> {
        let mut out = Vec::new();
        q.release(
            now,
            |nh| (known && nh == NH).then_some(MAC),
            |r| out.push(r),
        );
        out
    }

    #[test]
    fn the_first_frame_asks_and_the_others_wait_for_the_answer() {
        let mut q = HoldQueue::new();
        assert_eq!(q.hold(1, 1, NH, 1000), Holding::Held { ask: true });
        assert_eq!(q.hold(2, 1, NH, 1100), Holding::Held { ask: false });
        assert_eq!(q.hold(3, 1, NH2, 1100), Holding::Held { ask: true });
        assert!(release(&mut q, 1200, false).is_empty());
        // Half a second on: ask again, once per next hop.
        let out = release(&mut q, 1500, false);
        assert_eq!(
            out,
            vec![Release::Ask {
                port: 1,
                next_hop: NH
            }]
        );
        // The answer: both frames for NH go, the other stays.
        let mut sent: Vec<u32> = release(&mut q, 1550, true)
            .into_iter()
            .map(|r| match r {
                Release::Send { frame, port, mac } => {
                    assert_eq!((port, mac), (1, MAC));
                    frame
                }
                other => panic!("{other:?}"),
            })
            .collect();
        sent.sort();
        assert_eq!(sent, vec![1, 2]);
        assert_eq!(q.len(), 1);
    }

    #[test]
    fn frames_expire_and_the_queue_is_bounded() {
        let mut q = HoldQueue::new();
        for i in 0..MAX_HELD as u32 {
            assert!(matches!(q.hold(i, 0, NH2, 10), Holding::Held { .. }));
        }
        assert_eq!(q.hold(999, 0, NH2, 10), Holding::Full(999));
        let out = release(&mut q, 10 + HOLD_MS + 1, false);
        assert_eq!(out.len(), MAX_HELD);
        assert!(out.iter().all(|r| matches!(r, Release::Expired(_))));
        assert!(q.is_empty());
    }

    #[test]
    fn new_vips_are_announced_once() {
        let mut a = Announcer::default();
        let vip = |d| Ipv4Addr::new(192, 0, 2, d);
        let mut out = Vec::new();
        a.update(&[vip(100)], |v| out.push(v));
        a.update(&[vip(100), vip(101)], |v| out.push(v));
        a.update(&[vip(101)], |v| out.push(v));
        a.update(&[vip(100), vip(101)], |v| out.push(v));
        assert_eq!(out, vec![vip(100), vip(101), vip(100)]);
    }
}
