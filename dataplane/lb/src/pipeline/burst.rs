//! A burst in stages. With a million connections, a packet's lookup is a
//! chain of cache misses (index bucket, then entry) that one packet at a
//! time must wait out in turn. Over a burst, the [`Forwarder`] instead
//! asks for every packet's bucket first ([`Forwarder::look_ahead`]), then
//! for every packet's entry ([`Forwarder::prefetch_entry`]), and only then
//! processes each packet ([`Forwarder::process`]), whose lookups now hit
//! the cache: the misses of a burst overlap instead of adding up.
//!
//! The stages change nothing but timing: every decision is still made by
//! `process`, one packet at a time, in order, so a burst gets exactly the
//! actions that calling `process` on each of its packets would give.

use super::{Action, Forwarder};
use crate::snapshot::Snapshot;
use sluice_conntrack::{Dir, FlowKey, Protocol};
use sluice_core::flow;

/// Connections below which a table's entries and buckets fit in a core's
/// cache anyway (32 Ki: 1.75 MiB of entries plus their buckets): there
/// the look-ahead would only add work, so it looks at nothing.
pub const LOOK_AHEAD_FROM: u32 = 32 * 1024;

/// Most packets whose look-aheads [`Forwarder::process_burst`] keeps at
/// once (a longer burst is taken in chunks of this many).
pub const MAX_BURST: usize = 64;

/// Where a packet's connection may be indexed, found by
/// [`Forwarder::look_ahead`] for [`Forwarder::prefetch_entry`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Lookahead {
    hash: u64,
    dir: Option<Dir>,
}

impl Forwarder {
    /// Stage one over a burst: reads a TCP or UDP frame's endpoints and
    /// asks the CPU for the index bucket of its connection (inbound when
    /// it is addressed to a VIP, else as a reply), without waiting.
    /// Anything else needs no connection lookup and looks ahead at
    /// nothing. Callers ask [`Forwarder::looks_ahead`] once per burst and
    /// skip the stages when it says no.
    #[inline]
    pub fn look_ahead(&self, snap: &Snapshot, frame: &[u8]) -> Lookahead {
        let Some((proto, src, dst)) = flow::peek_endpoints(frame) else {
            return Lookahead::default();
        };
        let proto = if proto == sluice_core::wire::ipv4::PROTO_TCP {
            Protocol::Tcp
        } else {
            Protocol::Udp
        };
        let (key, dir) = if snap.services.is_vip(*dst.ip()) {
            (FlowKey::inbound(proto, src, dst), Dir::Inbound)
        } else {
            (FlowKey::outbound(proto, src, dst), Dir::Outbound)
        };
        Lookahead {
            hash: self.fam.v4.conns.prefetch_index(&key, dir),
            dir: Some(dir),
        }
    }

    /// Whether bursts are looked ahead at now: the table holds at least
    /// [`Forwarder::look_ahead_from`] connections. A worker asks once per
    /// burst and skips the stages when not.
    #[inline]
    pub fn looks_ahead(&self) -> bool {
        self.fam.v4.conns.len() >= self.look_ahead_from
    }

    /// Looks ahead only while the table holds at least `n` connections
    /// (0: always, as the tests that compare bursts with single packets
    /// need).
    pub fn look_ahead_from(&mut self, n: u32) {
        self.look_ahead_from = n;
    }

    /// Stage two: reads the bucket stage one asked for and asks the CPU
    /// for the connection entry it points at.
    #[inline]
    pub fn prefetch_entry(&self, la: Lookahead) {
        if let Some(dir) = la.dir {
            self.fam.v4.conns.prefetch_entry(la.hash, dir);
        }
    }

    /// Decides what happens to each frame of a burst received on
    /// `rx_port`, in stages (see the module's description): `actions[i]`
    /// is what [`Forwarder::process`] decides for `frames[i]`. A frame
    /// that must grow (a tunnel's outer header, a PROXY protocol header:
    /// [`Forwarder::take_outer`], [`Forwarder::take_insert`]) cannot be
    /// grown here, where only the last one could be taken: such services
    /// go through `process`, as the worker runs them.
    ///
    /// # Panics
    ///
    /// If `actions` is shorter than `frames`.
    pub fn process_burst<F: AsMut<[u8]>>(
        &mut self,
        snap: &Snapshot,
        frames: &mut [F],
        rx_port: usize,
        now_ms: u64,
        actions: &mut [Action],
    ) {
        assert!(actions.len() >= frames.len(), "an action for every frame");
        for (frames, actions) in frames
            .chunks_mut(MAX_BURST)
            .zip(actions.chunks_mut(MAX_BURST))
        {
            if self.looks_ahead() {
                let mut ahead = [Lookahead::default(); MAX_BURST];
                for (la, f) in ahead.iter_mut().zip(frames.iter_mut()) {
                    *la = self.look_ahead(snap, f.as_mut());
                }
                for la in &ahead[..frames.len()] {
                    self.prefetch_entry(*la);
                }
            }
            for (a, f) in actions.iter_mut().zip(frames.iter_mut()) {
                *a = self.process(snap, f.as_mut(), rx_port, now_ms);
            }
        }
    }
}
