//! Tunnel mode (`forward = "ipip"` or `"gue"`): the client's packet goes
//! to the real unchanged, inside an outer header addressed to it, by the
//! route table, so the real may be routers away; it answers the client
//! directly. The outer header is written here and put in front of the
//! frame by the worker ([`Forwarder::take_outer`]).

use super::{Action, Family, Forwarder, SentError};
use crate::snapshot::Snapshot;
use sluice_core::flow::Packet;
use sluice_core::tunnel::{self, Encap};
use sluice_core::wire::ethernet;
use sluice_core::DropReason;
use sluice_model::Forward;

/// Most second outer fragments queued between two calls of
/// [`Forwarder::take_tunnel_tails`].
pub const TAIL_OUTBOX: usize = 32;
/// The longest frame of a second outer fragment.
pub const TAIL_FRAME: usize = ethernet::HEADER_LEN + tunnel::MAX_TAIL;

impl Forwarder {
    /// Sends `p` to the tunnel real `real` by `fwd` (IP-in-IP or GUE).
    /// The inner TTL is left alone, as under direct routing (the real is
    /// its destination), but a TTL of 0 is on no legal packet. A packet
    /// that would not fit the tunnel's MTU is dropped, and its source told
    /// the MTU left for it, as a router does, unless it may be fragmented
    /// (IPv4 without DF): then the outer packet leaves in two fragments,
    /// the second through [`Forwarder::take_tunnel_tails`].
    pub(super) fn tunnel_to_real<A: Family>(
        &mut self,
        snap: &Snapshot,
        frame: &mut [u8],
        p: &Packet<A>,
        real: A,
        fwd: Forward,
        now_ms: u64,
    ) -> Action {
        if p.ttl == 0 {
            return self.expired::<A>(snap, frame, p, now_ms);
        }
        let t = &snap.tunnel;
        let encap = match fwd {
            Forward::Gue => Encap::Gue { port: t.gue_port },
            _ => Encap::Ipip,
        };
        let (v6, mtu) = (A::BITS == 128, usize::from(t.mtu));
        let fits = tunnel::fits(p.total_len, encap, v6, mtu);
        if !fits && !A::may_fragment(frame, p) {
            let left = tunnel::inner_mtu(encap, v6, mtu) as u16;
            self.tell_source(snap, frame, p, SentError::TooBig { mtu: left }, now_ms);
            return Action::Drop(DropReason::TooBigForTunnel);
        }
        if !fits && self.tunnel_tails.len() >= TAIL_OUTBOX {
            return Action::Drop(DropReason::TooBigForTunnel);
        }
        let Some(nh) = A::routes(snap).lookup(real) else {
            return Action::Drop(DropReason::NoRoute);
        };
        let src =
            A::tunnel_source(snap).unwrap_or_else(|| A::source_on(&snap.ports[nh.port], real));
        // One flow, one hash: the GUE source port and the IPv6 flow label
        // spread tunnels over the network's ECMP paths as flows would be.
        let hash = A::client_hash(0, p.src, Some(p.sport)) as u32 ^ u32::from(p.dport);
        self.outer_id = self.outer_id.wrapping_add(1);
        let outer = A::outer(
            encap,
            src,
            real,
            &frame[p.l3..p.ip_end()],
            self.outer_id,
            hash,
        );
        if !fits {
            return self.in_two_fragments(snap, frame, p, outer, nh.port, nh.via, now_ms);
        }
        let action = self.resolve(snap, frame, nh.port, nh.via, now_ms);
        self.outer = Some(outer);
        action
    }

    /// The outer packet of `p`, which may be fragmented (IPv4 without DF;
    /// IPv6 never may), in two fragments as the kernel's tunnel would send
    /// it (RFC 2003 §5.1): the first the frame grown by `outer` and cut,
    /// the second written here for the worker to send after it, to the
    /// same next hop.
    #[cold]
    #[allow(clippy::too_many_arguments)]
    fn in_two_fragments<A: Family>(
        &mut self,
        snap: &Snapshot,
        frame: &mut [u8],
        p: &Packet<A>,
        outer: tunnel::Outer,
        port: usize,
        via: A,
        now_ms: u64,
    ) -> Action {
        let mtu = usize::from(snap.tunnel.mtu);
        let hdr = ethernet::HEADER_LEN;
        let mut tail = [0u8; TAIL_FRAME];
        let inner = &frame[p.l3..p.ip_end()];
        let Some((first, n)) = tunnel::fragment4(&outer, inner, mtu, &mut tail[hdr..]) else {
            return Action::Drop(DropReason::TooBigForTunnel);
        };
        let action = self.resolve(snap, frame, port, via, now_ms);
        // The same MACs (set now, or by the hold queue for each).
        tail[..12].copy_from_slice(&frame[..12]);
        tail[12..14].copy_from_slice(&ethernet::ETHERTYPE_IPV4.to_be_bytes());
        self.tunnel_tails.push((action, tail, hdr + n));
        self.stats.tunnel_fragmented.add(1);
        self.outer = Some(first);
        action
    }

    /// Hands each second outer fragment written since the last call to
    /// `send` (where it goes: forwarded, or held like its first; the
    /// frame), then forgets them.
    pub fn take_tunnel_tails(&mut self, mut send: impl FnMut(Action, &[u8])) {
        for (a, frame, len) in &self.tunnel_tails {
            send(*a, &frame[..*len]);
        }
        self.tunnel_tails.clear();
    }
}
