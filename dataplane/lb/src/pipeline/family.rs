//! The packet path written once for IPv4 and IPv6: [`Family`] says where a
//! family's tables, services, routes and martians are, and supplies the
//! steps written per family (ICMP errors, tunnel headers) or only for IPv4 today
//! (the SYN proxy's cookies and proxied handshakes); every other step of
//! [`Forwarder`](super::Forwarder) is generic over it.

use super::{Action, Forwarder, SentError, Tuple};
use crate::fragments::FragmentTable;
use crate::ingress::Martians6;
use crate::model::{ServiceTable, VirtualService};
use crate::route::RouteTable;
use crate::snapshot::{PortView, Snapshot};
use sluice_conntrack::{ConnId, ConnTable, ScanCursor};
use sluice_core::flow::{IcmpError, Packet};
use sluice_core::neigh::{NeighbourTable, NudConfig};
use sluice_core::wire::ipv6;
use sluice_core::{icmp_error, tunnel, Address, DropReason, MacAddr};
use sluice_sched::{hash_ipv4, hash_ipv6};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// What a worker keeps per address family: its connections, neighbours,
/// the neighbours learned and probes due since they were last taken, and
/// the progress of ending drained reals' connections.
pub struct Tables<A: Address> {
    pub(super) conns: ConnTable<A>,
    pub(super) neigh: NeighbourTable<A>,
    pub(super) learned: Vec<(A, MacAddr)>,
    pub(super) probes: Vec<(A, MacAddr)>,
    /// Every drain whose id is below this has been scanned to the end.
    pub(super) drains_done_below: u64,
    /// The drain being scanned, and how far.
    pub(super) drain_cursor: Option<(u64, ScanCursor)>,
    /// The datagrams whose first fragment went through.
    pub(super) frags: FragmentTable<A>,
    /// PROXY protocol: each TCP connection's first client byte, by entry
    /// slot (read only for entries flagged `PROXY_HEADER`).
    pub(super) stream_starts: Vec<u32>,
}

impl<A: Address> Tables<A> {
    pub(super) fn new(conns: ConnTable<A>, neighbours: usize, nud: NudConfig) -> Tables<A> {
        Tables {
            neigh: NeighbourTable::new(neighbours, nud),
            learned: Vec::with_capacity(super::LEARNED_OUTBOX),
            probes: Vec::with_capacity(super::PROBE_OUTBOX),
            drains_done_below: 0,
            drain_cursor: None,
            frags: FragmentTable::new(),
            // Zeroed: its pages are only touched as entries use them.
            stream_starts: vec![0; conns.capacity() as usize],
            conns,
        }
    }
}

/// Both families' tables.
pub struct Families {
    pub(super) v4: Tables<Ipv4Addr>,
    pub(super) v6: Tables<Ipv6Addr>,
}

impl Families {
    #[inline(always)]
    pub(super) fn of<A: Family>(&self) -> &Tables<A> {
        A::tables(self)
    }

    #[inline(always)]
    pub(super) fn of_mut<A: Family>(&mut self) -> &mut Tables<A> {
        A::tables_mut(self)
    }
}

/// An address family the packet path runs for.
pub trait Family: Address {
    /// Why a fragment that cannot be followed is dropped.
    const FRAGMENT_DROP: DropReason;
    /// This family's tables.
    fn tables(f: &Families) -> &Tables<Self>;
    /// This family's tables, to change.
    fn tables_mut(f: &mut Families) -> &mut Tables<Self>;
    /// This family's services.
    fn services(s: &Snapshot) -> &ServiceTable<Self>;
    /// This family's routes.
    fn routes(s: &Snapshot) -> &RouteTable<Self>;
    /// Whether no packet may come from `src`.
    fn martian(s: &Snapshot, src: Self) -> bool;
    /// Whether `ip` is one of `port`'s addresses or a VIP.
    fn owns(port: &PortView, ip: Self) -> bool;
    /// The schedulers' client hash of `ip` (and `port`), as sh and mh and
    /// the table-less path read it.
    fn client_hash(seed: u64, ip: Self, port: Option<u16>) -> u64;

    /// Writes into `out` the ICMP error `kind` about `p`, not forwarded,
    /// from `port`'s address to its source; its length, or None where no
    /// error may be sent about it.
    fn write_icmp_error(
        port: &PortView,
        frame: &[u8],
        p: &Packet<Self>,
        kind: SentError,
        out: &mut [u8; icmp_error::MAX_FRAME],
    ) -> Option<usize>;

    /// The identification, offset and more-fragments flag of fragment
    /// `p`.
    fn fragment_of(frame: &[u8], p: &Packet<Self>) -> Option<ipv6::Fragment>;

    /// Whether `p` may be fragmented on the way (IPv4 without DF), so a
    /// router would not answer it with fragmentation needed.
    fn may_fragment(frame: &[u8], p: &Packet<Self>) -> bool;

    /// The outer header that takes `inner` (an IP packet of this family)
    /// from `src` to the tunnel real `real`.
    fn outer(
        encap: tunnel::Encap,
        src: Self,
        real: Self,
        inner: &[u8],
        id: u16,
        hash: u32,
    ) -> tunnel::Outer;

    /// The configured outer source address of this family, if any.
    fn tunnel_source(s: &Snapshot) -> Option<Self>;

    /// `port`'s address to send from towards `dst`.
    fn source_on(port: &PortView, dst: Self) -> Self;

    /// A client's ACK that may complete a proxied handshake (IPv4 only).
    fn cookie_ack(
        _f: &mut Forwarder,
        _s: &Snapshot,
        _svc: &VirtualService<Self>,
        _frame: &mut [u8],
        _p: &Packet<Self>,
        _t: Tuple<Self>,
        _now: u64,
    ) -> Option<Action> {
        None
    }

    /// Answers a SYN with a cookie when the service's proxy applies
    /// (IPv4 only); `None` when it does not.
    fn syn_cookie(
        _f: &mut Forwarder,
        _s: &Snapshot,
        _svc: &VirtualService<Self>,
        _frame: &mut [u8],
        _p: &Packet<Self>,
        _t: Tuple<Self>,
        _now: u64,
    ) -> Option<Action> {
        None
    }

    /// A client packet of a proxied connection: held while its handshake
    /// pends (`Some`), else its sequence numbers translated (`None`).
    fn proxied_from_client(
        _f: &mut Forwarder,
        _s: &Snapshot,
        _frame: &mut [u8],
        _p: &Packet<Self>,
        _id: ConnId,
        _now: u64,
    ) -> Option<Action> {
        None
    }

    /// A real's packet of a proxied connection.
    fn proxied_from_real(
        _f: &mut Forwarder,
        _s: &Snapshot,
        _frame: &mut [u8],
        _p: &Packet<Self>,
        _id: ConnId,
        _now: u64,
    ) -> Option<Action> {
        None
    }

    /// An ICMP error's quote about a proxied connection, in the real's
    /// sequence space again.
    fn unshift_quote(
        _f: &Forwarder,
        _frame: &mut [u8],
        _p: &Packet<Self>,
        _e: &IcmpError<Self>,
        _id: ConnId,
    ) {
    }

    /// The next hop to resolve, as the worker's hold queue takes it.
    fn next_hop(via: Self) -> IpAddr {
        via.to_ip()
    }
}

impl Family for Ipv4Addr {
    const FRAGMENT_DROP: DropReason = DropReason::Ipv4Fragment;
    #[inline(always)]
    fn tables(f: &Families) -> &Tables<Self> {
        &f.v4
    }
    #[inline(always)]
    fn tables_mut(f: &mut Families) -> &mut Tables<Self> {
        &mut f.v4
    }
    #[inline(always)]
    fn services(s: &Snapshot) -> &ServiceTable<Self> {
        &s.services
    }
    #[inline(always)]
    fn routes(s: &Snapshot) -> &RouteTable<Self> {
        &s.routes
    }
    #[inline(always)]
    fn martian(s: &Snapshot, src: Self) -> bool {
        s.martians.contains(src)
    }
    #[inline(always)]
    fn owns(port: &PortView, ip: Self) -> bool {
        port.local.owns(ip)
    }
    #[inline(always)]
    fn client_hash(seed: u64, ip: Self, port: Option<u16>) -> u64 {
        hash_ipv4(seed, u32::from(ip), port)
    }

    fn write_icmp_error(
        port: &PortView,
        frame: &[u8],
        p: &Packet,
        kind: SentError,
        out: &mut [u8; icmp_error::MAX_FRAME],
    ) -> Option<usize> {
        let from = port.source_for(p.src);
        let out = (&mut out[..icmp_error::MAX_LEN]).try_into().ok()?;
        let kind = match kind {
            SentError::TimeExceeded => icmp_error::TIME_EXCEEDED,
            SentError::TooBig { mtu } => icmp_error::too_big(false, mtu),
        };
        icmp_error::write_kind(frame, p, from, port.mac, kind, out)
    }

    fn fragment_of(frame: &[u8], p: &Packet) -> Option<ipv6::Fragment> {
        Some(super::fragment::fragment_of4(frame, p))
    }

    fn may_fragment(frame: &[u8], p: &Packet) -> bool {
        frame[p.l3 + 6] & 0x40 == 0
    }

    fn outer(
        encap: tunnel::Encap,
        src: Self,
        real: Self,
        inner: &[u8],
        id: u16,
        hash: u32,
    ) -> tunnel::Outer {
        tunnel::outer4(encap, src, real, inner, id, hash)
    }

    fn tunnel_source(s: &Snapshot) -> Option<Self> {
        s.tunnel.source
    }

    fn source_on(port: &PortView, dst: Self) -> Self {
        port.source_for(dst)
    }

    fn cookie_ack(
        f: &mut Forwarder,
        s: &Snapshot,
        svc: &VirtualService,
        frame: &mut [u8],
        p: &Packet,
        t: Tuple<Self>,
        now: u64,
    ) -> Option<Action> {
        f.cookie_ack(s, svc, frame, p, t, now)
    }

    fn syn_cookie(
        f: &mut Forwarder,
        s: &Snapshot,
        svc: &VirtualService,
        frame: &mut [u8],
        p: &Packet,
        t: Tuple<Self>,
        now: u64,
    ) -> Option<Action> {
        f.proxies(svc, now)
            .then(|| f.answer_with_cookie(s, frame, p, t, now))
    }

    fn proxied_from_client(
        f: &mut Forwarder,
        s: &Snapshot,
        frame: &mut [u8],
        p: &Packet,
        id: ConnId,
        now: u64,
    ) -> Option<Action> {
        let link = f.synproxy.link(id);
        if link.pending {
            return Some(f.pending_from_client(s, frame, p, id, link, now));
        }
        f.translate_to_real(frame, p, &link);
        None
    }

    fn proxied_from_real(
        f: &mut Forwarder,
        s: &Snapshot,
        frame: &mut [u8],
        p: &Packet,
        id: ConnId,
        now: u64,
    ) -> Option<Action> {
        f.proxied_from_real(s, frame, p, id, now)
    }

    fn unshift_quote(f: &Forwarder, frame: &mut [u8], p: &Packet, e: &IcmpError, id: ConnId) {
        f.unshift_quote(frame, p, e, id)
    }
}

impl Family for Ipv6Addr {
    const FRAGMENT_DROP: DropReason = DropReason::Ipv6Fragment;
    #[inline(always)]
    fn tables(f: &Families) -> &Tables<Self> {
        &f.v6
    }
    #[inline(always)]
    fn tables_mut(f: &mut Families) -> &mut Tables<Self> {
        &mut f.v6
    }
    #[inline(always)]
    fn services(s: &Snapshot) -> &ServiceTable<Self> {
        &s.services6
    }
    #[inline(always)]
    fn routes(s: &Snapshot) -> &RouteTable<Self> {
        &s.routes6
    }
    #[inline(always)]
    fn martian(s: &Snapshot, src: Self) -> bool {
        Martians6::contains(&s.martians6, src)
    }
    #[inline(always)]
    fn owns(port: &PortView, ip: Self) -> bool {
        port.local.owns6(ip)
    }
    #[inline(always)]
    fn client_hash(seed: u64, ip: Self, port: Option<u16>) -> u64 {
        hash_ipv6(seed, u128::from(ip), port)
    }

    fn write_icmp_error(
        port: &PortView,
        frame: &[u8],
        p: &Packet<Self>,
        kind: SentError,
        out: &mut [u8; icmp_error::MAX_FRAME],
    ) -> Option<usize> {
        let from = port.source_for6(p.src);
        let out = (&mut out[..icmp_error::MAX_LEN6]).try_into().ok()?;
        let kind = match kind {
            SentError::TimeExceeded => icmp_error::TIME_EXCEEDED6,
            SentError::TooBig { mtu } => icmp_error::too_big(true, mtu),
        };
        icmp_error::write6_kind(frame, p, from, port.mac, kind, out)
    }

    fn fragment_of(frame: &[u8], p: &Packet<Self>) -> Option<ipv6::Fragment> {
        super::fragment::fragment_of6(frame, p)
    }

    fn may_fragment(_frame: &[u8], _p: &Packet<Self>) -> bool {
        // Only the source fragments IPv6 (RFC 8200 §5).
        false
    }

    fn outer(
        encap: tunnel::Encap,
        src: Self,
        real: Self,
        inner: &[u8],
        _id: u16,
        hash: u32,
    ) -> tunnel::Outer {
        tunnel::outer6(encap, src, real, inner, hash)
    }

    fn tunnel_source(s: &Snapshot) -> Option<Self> {
        s.tunnel.source6
    }

    fn source_on(port: &PortView, dst: Self) -> Self {
        port.source_for6(dst)
    }
}
