//! Tunnel mode (`forward = "ipip"` or `"gue"`): the client's packet goes
//! to the real unchanged, inside an outer header addressed to it, by the
//! route table, so the real may be routers away; it answers the client
//! directly. The outer header is written here and put in front of the
//! frame by the worker ([`Forwarder::take_outer`]).

use super::{Action, Family, Forwarder, SentError};
use crate::snapshot::Snapshot;
use sluice_core::flow::Packet;
use sluice_core::tunnel::{self, Encap};
use sluice_core::DropReason;
use sluice_model::Forward;

impl Forwarder {
    /// Sends `p` to the tunnel real `real` by `fwd` (IP-in-IP or GUE).
    /// The inner TTL is left alone, as under direct routing (the real is
    /// its destination), but a TTL of 0 is on no legal packet. A packet
    /// that would not fit the tunnel's MTU is dropped, and its source told
    /// the MTU left for it, as a router does (unless it may be
    /// fragmented: IPv4 without DF, which the appliance does not do).
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
        let v6 = A::BITS == 128;
        if !tunnel::fits(p.total_len, encap, v6, usize::from(t.mtu)) {
            if !A::may_fragment(frame, p) {
                let mtu = tunnel::inner_mtu(encap, v6, usize::from(t.mtu)) as u16;
                self.tell_source(snap, frame, p, SentError::TooBig { mtu }, now_ms);
            }
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
        let action = self.resolve(snap, frame, nh.port, nh.via, now_ms);
        self.outer = Some(outer);
        action
    }
}
