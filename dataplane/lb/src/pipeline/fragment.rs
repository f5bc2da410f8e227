//! TCP and UDP fragments, which follow their datagram's first fragment
//! (see [`crate::fragments`]). A first fragment is balanced by its ports
//! like any packet, with the checksum that covers the whole datagram left
//! unverified, and the way it went is remembered; a later fragment goes
//! the same way, its addresses rewritten the same; one that comes before
//! its first is held by the worker ([`Action::HoldFragment`]) and tried
//! again when a first fragment is remembered
//! ([`Forwarder::fragments_learned`]).

use super::{arrived_from_side_of, Action, Family, Forwarder};
use crate::fragments::{FragmentKey, FragmentWay, Remembered};
use crate::slot::{RealSlot, ServiceSlot};
use crate::snapshot::Snapshot;
use crate::steer;
use sluice_conntrack::FlowKey;
use sluice_core::flow::Packet;
use sluice_core::wire::{ipv4, ipv6, l4};
use sluice_core::{hygiene, DropReason};
use sluice_model::{Forward, Protocol, SocketAddress};

impl Forwarder {
    /// Whether the TCP or UDP checksum of `p` is right, as far as it can
    /// be known: a first fragment's covers data that is not here, so it is
    /// taken as right (the real verifies the datagram).
    #[inline(always)]
    pub(super) fn l4_checksum_ok<A: Family>(&self, frame: &[u8], p: &Packet<A>) -> bool {
        self.first_fragment || hygiene::l4_checksum_ok(frame, p)
    }

    /// Times a first fragment was remembered: held fragments are worth
    /// trying again when it moves.
    pub fn fragments_learned(&self) -> u64 {
        self.fragments_learned
    }

    /// A TCP or UDP fragment.
    pub(super) fn fragment<A: Family>(
        &mut self,
        snap: &Snapshot,
        frame: &mut [u8],
        p: &Packet<A>,
        rx_port: usize,
        local: bool,
        now_ms: u64,
    ) -> Action {
        let Some(f) = A::fragment_of(frame, p) else {
            return Action::Drop(A::FRAGMENT_DROP);
        };
        let key = FragmentKey {
            src: p.src,
            dst: p.dst,
            proto: p.proto,
            id: f.id,
        };
        if f.offset == 0 {
            return self.first_fragment(snap, frame, p, key, rx_port, local, now_ms);
        }
        self.later_fragment(snap, frame, p, key, f.more, rx_port, local, now_ms)
    }

    /// A first fragment: forwarded as the whole packet would be, with its
    /// ports read from the transport header it must hold entirely (else
    /// it is a tiny fragment, RFC 1858, dropped); then remembered.
    #[allow(clippy::too_many_arguments)]
    fn first_fragment<A: Family>(
        &mut self,
        snap: &Snapshot,
        frame: &mut [u8],
        p: &Packet<A>,
        key: FragmentKey<A>,
        rx_port: usize,
        local: bool,
        now_ms: u64,
    ) -> Action {
        let seg = &frame[p.l4..p.ip_end()];
        let whole = match p.proto {
            ipv4::PROTO_TCP => seg.len() >= l4::TCP_MIN_HEADER_LEN,
            _ => seg.len() >= l4::UDP_HEADER_LEN,
        };
        if !whole {
            return Action::Drop(A::FRAGMENT_DROP);
        }
        let mut q = *p;
        q.sport = u16::from_be_bytes([seg[0], seg[1]]);
        q.dport = u16::from_be_bytes([seg[2], seg[3]]);
        q.is_fragment = false;
        if p.proto == ipv4::PROTO_TCP {
            q.tcp_flags = seg[13];
            if !hygiene::valid_tcp_flags(q.tcp_flags) {
                return Action::Drop(DropReason::BadTcpFlags);
            }
        }
        self.first_fragment = true;
        let action = self.transport(snap, frame, &q, rx_port, local, now_ms);
        self.first_fragment = false;
        if matches!(action, Action::Forward { .. } | Action::Hold { .. }) {
            self.remember_fragment(snap, &q, key, now_ms);
        }
        action
    }

    /// Remembers where the datagram of first fragment `q` (its ports
    /// read) went, from its connection; one forwarded without an entry
    /// (the table full) is not remembered, and its later fragments wait
    /// in vain.
    fn remember_fragment<A: Family>(
        &mut self,
        snap: &Snapshot,
        q: &Packet<A>,
        key: FragmentKey<A>,
        now_ms: u64,
    ) {
        let proto = if q.proto == ipv4::PROTO_TCP {
            Protocol::Tcp
        } else {
            Protocol::Udp
        };
        let (src, dst) = (q.src.socket(q.sport), q.dst.socket(q.dport));
        let inbound = A::services(snap).lookup(q.proto, q.dst, q.dport).is_some();
        let t = self.fam.of::<A>();
        let id = if inbound {
            t.conns.lookup_inbound(&FlowKey::inbound(proto, src, dst))
        } else {
            t.conns.lookup_outbound(&FlowKey::outbound(proto, src, dst))
        };
        let Some(c) = id.and_then(|id| t.conns.get(id)) else {
            self.stats.fragments_unremembered.add(1);
            return;
        };
        let way = if inbound {
            FragmentWay::ToReal {
                real: c.real_addr().addr(),
                fwd: c.fwd(),
                local: c.local().addr(),
            }
        } else {
            FragmentWay::ToClient {
                vip: c.vip().addr(),
                client: (c.fwd() == Forward::FullNat).then(|| c.client().addr()),
            }
        };
        let (service, real) = (c.service() as u16, c.real());
        let t = self.fam.of_mut::<A>();
        if t.frags.remember(key, way, service, real, now_ms) == Remembered::Replaced {
            self.stats.fragments_replaced.add(1);
        }
        self.stats.fragments_remembered.add(1);
        self.fragments_learned += 1;
    }

    /// A later fragment: the way its first went, else held until it comes.
    /// It is steered as its first was: by the client's address, the
    /// source towards a VIP, the destination from a real's side.
    #[allow(clippy::too_many_arguments)]
    fn later_fragment<A: Family>(
        &mut self,
        snap: &Snapshot,
        frame: &mut [u8],
        p: &Packet<A>,
        key: FragmentKey<A>,
        more: bool,
        rx_port: usize,
        local: bool,
        now_ms: u64,
    ) -> Action {
        let services = A::services(snap);
        let client = if services.is_vip(p.dst) {
            p.src
        } else if services.is_local_address(p.dst) {
            // A full-NAT reply's: from the real's side, as its first; that
            // was steered by its local port, which a later fragment does
            // not carry: with one worker it is that worker's, with more
            // it cannot be found.
            if !arrived_from_side_of(snap, p.src, rx_port) {
                return Action::Drop(DropReason::SpoofedReply);
            }
            if self.workers > 1 {
                return Action::Drop(DropReason::FragmentUnmatched);
            }
            p.dst
        } else if local {
            return Action::Drop(DropReason::UnsupportedProtocol);
        } else if arrived_from_side_of(snap, p.src, rx_port) {
            p.dst
        } else {
            return Action::Drop(DropReason::SpoofedReply);
        };
        let owner = steer::owner(client, self.workers);
        if owner != self.worker {
            return Action::HandOff { worker: owner };
        }
        let Some(e) = self.fam.of::<A>().frags.get(&key, now_ms) else {
            return Action::HoldFragment;
        };
        let (service, real) = (ServiceSlot(e.service), RealSlot(e.real));
        if A::services(snap).connection_gone(service, real) {
            return Action::Drop(DropReason::RealRemoved);
        }
        if !more {
            self.fam.of_mut::<A>().frags.last_seen(&key, now_ms);
        }
        self.stats.fragments_followed.add(1);
        let len = p.total_len as u64;
        match e.way {
            FragmentWay::ToReal {
                real: to,
                fwd: Forward::FullNat,
                local: from,
            } => {
                self.stats.service(service).count_in(len);
                self.stats.real(real).count_in(len);
                self.full_nat_to_real(snap, frame, p, from.socket(0), to.socket(0), now_ms)
            }
            FragmentWay::ToReal { real: to, fwd, .. } => {
                self.stats.service(service).count_in(len);
                self.stats.real(real).count_in(len);
                self.forward_to_real(snap, frame, p, to.socket(0), fwd, now_ms)
            }
            FragmentWay::ToClient { vip, client } => {
                self.stats.service(service).count_out(len);
                self.stats.real(real).count_out(len);
                let client = client.map(|c| c.socket(0));
                self.forward_to_client(snap, frame, p, vip.socket(0), client, now_ms)
            }
        }
    }
}

/// The identification, offset and more-fragments flag of IPv4 fragment
/// `p` (its header is `frame[p.l3..]`).
pub(super) fn fragment_of4(frame: &[u8], p: &Packet) -> ipv6::Fragment {
    let h = &frame[p.l3..];
    let word = u16::from_be_bytes([h[6], h[7]]);
    ipv6::Fragment {
        offset: word & 0x1fff,
        more: word & 0x2000 != 0,
        id: u32::from(u16::from_be_bytes([h[4], h[5]])),
    }
}

/// The fragment header of IPv6 fragment `p`, walked to again.
pub(super) fn fragment_of6(frame: &[u8], p: &Packet<std::net::Ipv6Addr>) -> Option<ipv6::Fragment> {
    let ip = &frame[p.l3..p.ip_end()];
    ipv6::walk(ip, ip[ipv6::NEXT_HEADER_OFFSET]).ok()?.fragment
}
