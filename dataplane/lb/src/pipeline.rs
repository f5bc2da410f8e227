//! The forwarding decision for one packet: the [`Forwarder`] of a worker
//! classifies a frame, steers it to the worker that owns its flow, finds
//! or schedules its connection, rewrites it (NAT) or re-addresses it (DR),
//! routes it and resolves the next hop's MAC. It works on `&mut [u8]` and
//! returns an [`Action`]; the worker moves the buffer accordingly. Over a
//! burst, [`Forwarder::process_burst`] (or its stages, for a worker that
//! holds mbufs) prefetches every packet's connection before deciding.

mod burst;
mod family;
mod fragment;
mod proxied;
mod proxy_header;
mod synced;
mod tunnel;
pub use synced::{Installed, RetellCursor};

pub use burst::{Lookahead, LOOK_AHEAD_FROM, MAX_BURST};
pub use family::{Families, Family, Tables};
pub use proxied::SYN_OUTBOX;
pub use proxy_header::Insert;

use crate::ingress;
use crate::loads::{MissLoads, ServiceLoads};
use crate::local_ports::{self, LocalPorts};
use crate::model::{RealServer, SynProxyUse, VirtualService};
use crate::slot::MAX_SERVICES;
use crate::slot::{RealSlot, ServiceSlot};
use crate::snapshot::Snapshot;
use crate::stats::{SharedStats, WorkerLbStats};
use crate::steer;
use crate::synproxy::{SynProxy, SynProxyConfig};
use crate::tableless::Tableless;
use crossbeam_utils::CachePadded;
use sluice_conntrack::{
    Conn, ConnId, ConnTable, Dir, Forward, InsertError, NewConn, Protocol, ScanCursor, TcpFlags,
};
use sluice_conntrack::{ConnFlags, ConnState, FlowKey, TableConfig, TcpState};
use sluice_core::flow::{self, IcmpError, Packet};
use sluice_core::flow6;
use sluice_core::handshake::SYN_LEN;
use sluice_core::local::{Handled, Verdict};
use sluice_core::neigh::NudConfig;
use sluice_core::tunnel::Outer;
use sluice_core::wire::{ethernet, icmpv6, ipv4};
use sluice_core::{hygiene, icmp_error, nat, DropReason, MacAddr};
use sluice_model::SocketAddress;
use sluice_sched::loads::Restricted;
use sluice_sched::{Cursor, DEFAULT_SEED};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::RangeInclusive;
use std::sync::Arc;

/// What the worker must do with the frame after [`Forwarder::process`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Transmit on `port`; the frame is complete (MACs set).
    Forward {
        /// Port index.
        port: usize,
    },
    /// The frame became a reply: transmit it on the port it came in on.
    Reply(Handled),
    /// The frame was used up (an ARP reply to us).
    Consumed(Handled),
    /// Rewritten, but the next hop's MAC is unknown: hold the frame, ask
    /// with ARP, then set the MACs and transmit on `port`.
    Hold {
        /// Port index.
        port: usize,
        /// Address to resolve (ARP for IPv4, neighbour discovery for IPv6).
        next_hop: IpAddr,
    },
    /// For the kernel's own stack on this port (health checks, management
    /// traffic to the port's address): pass it up the port's kernel
    /// interface unchanged.
    ToKernel,
    /// A client packet of a proxied connection whose handshake with the
    /// real is not complete: keep it, and process it again once
    /// [`Forwarder::handshakes_completed`] moves (dropped when kept too
    /// long).
    Park,
    /// A later fragment whose first fragment has not come yet: keep it,
    /// and process it again once [`Forwarder::fragments_learned`] moves
    /// (dropped when kept too long).
    HoldFragment,
    /// Another worker owns this flow: hand the frame over unchanged.
    HandOff {
        /// The owning worker.
        worker: usize,
    },
    /// Drop, counted under the reason.
    Drop(DropReason),
}

/// Settings of a forwarder.
#[derive(Debug, Clone)]
pub struct ForwarderConfig {
    /// This worker's index.
    pub worker: usize,
    /// Number of workers.
    pub workers: usize,
    /// Connection-table settings.
    pub table: TableConfig,
    /// The IPv6 connection table's settings (its entries are 104 bytes to
    /// IPv4's 56, so it is sized on its own).
    pub table6: TableConfig,
    /// Neighbour cache size.
    pub neighbours: usize,
    /// Neighbour timers.
    pub neighbour: NudConfig,
    /// The SYN proxy.
    pub syn_proxy: SynProxyConfig,
    /// The local ports full NAT allocates from (each worker owns the ones
    /// [`crate::local_ports::owner`] gives it).
    pub local_ports: RangeInclusive<u16>,
}

/// Most learned neighbours kept for broadcast to other workers per burst.
pub const LEARNED_OUTBOX: usize = 64;
/// Most unicast neighbour probes queued between two calls of
/// [`Forwarder::take_probes`].
pub const PROBE_OUTBOX: usize = 64;
/// Most ICMP errors (time exceeded, fragmentation needed) queued between
/// two calls of [`Forwarder::take_icmp_errors`].
pub const ICMP_ERROR_OUTBOX: usize = 16;
/// ICMP errors a worker sends a second at most, of both kinds together
/// (RFC 1812 §4.3.2.8: routers limit the rate of their ICMP errors).
pub const ICMP_ERRORS_PER_SEC: u64 = 100;
/// And at most this many at once.
pub const ICMP_ERRORS_BURST: u64 = 20;

/// Which ICMP error the appliance sends about a packet it did not forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SentError {
    /// Time exceeded: the TTL (hop limit) ran out here.
    TimeExceeded,
    /// Fragmentation needed (IPv6: packet too big), with the MTU a tunnel
    /// leaves for the client's packets.
    TooBig {
        /// That MTU.
        mtu: u16,
    },
}
/// Entries expired per step of [`Forwarder::housekeeping`]; between steps
/// it asks its caller whether time is left.
pub const EXPIRE_STEP: usize = 64;
/// How often a worker runs [`Forwarder::housekeeping`] when it is caught
/// up (when it is not, it runs at every poll).
pub const HOUSEKEEPING_MS: u64 = 10;
/// Slots examined per call when ending a removed real's connections.
pub const DRAIN_BUDGET: usize = 1024;
/// How often the neighbour timers are polled (they visit every entry).
pub const NEIGHBOUR_POLL_MS: u64 = 100;

/// One worker's forwarding state: its connection table, neighbour cache,
/// scheduler cursors and counters.
pub struct Forwarder {
    worker: usize,
    workers: usize,
    /// Connections, neighbours and drain progress, per address family.
    fam: Families,
    cursors: Vec<Cursor>,
    stats: Arc<CachePadded<WorkerLbStats>>,
    shared: Arc<SharedStats>,
    last_neighbour_poll: u64,
    /// Flows forwarded without an entry while the table was full.
    tableless: Tableless,
    /// Connections to tell the peer appliances about (connection sync),
    /// when it is on.
    sync_out: Option<synced::Outbox>,
    /// The port the packet being processed came in on.
    rx_port: usize,
    /// ICMP errors to send: (kind, port, frame, length).
    icmp_errors: Vec<(SentError, usize, [u8; icmp_error::MAX_FRAME], usize)>,
    /// How fast they may go.
    icmp_error_limit: icmp_error::Limiter,
    /// The outer header of the packet being processed, when it goes to a
    /// tunnel real: the worker puts it in front (see
    /// [`Forwarder::take_outer`]).
    outer: Option<Outer>,
    /// The outer IPv4 identification of the next tunnelled packet.
    outer_id: u16,
    /// Second outer fragments to send: (where, frame, length).
    tunnel_tails: Vec<(Action, [u8; tunnel::TAIL_FRAME], usize)>,
    /// The packet being processed is a first fragment (its transport
    /// checksum cannot be verified).
    first_fragment: bool,
    /// First fragments remembered so far.
    fragments_learned: u64,
    /// The full-NAT local ports this worker owns.
    local_ports: LocalPorts,
    /// The PROXY protocol header to put into the packet being processed
    /// (see [`Forwarder::take_insert`]).
    insert: Option<Insert>,
    /// The SYN proxy.
    synproxy: SynProxy,
    /// SYNs of proxied connections to send to reals.
    syns_out: Vec<(Action, [u8; SYN_LEN])>,
    /// Table occupancy from which bursts are looked ahead at.
    look_ahead_from: u32,
}

/// When a worker runs [`Forwarder::housekeeping`]: every
/// [`HOUSEKEEPING_MS`], and at every poll while the last run ran out of
/// time before it caught up, so expiry keeps pace with any connection rate
/// (each run bounded by the worker's time budget).
#[derive(Debug, Default, Clone, Copy)]
pub struct HousekeepingTimer {
    last: u64,
    behind: bool,
}

impl HousekeepingTimer {
    /// Whether housekeeping is due at `now_ms`.
    #[inline]
    pub fn due(&self, now_ms: u64) -> bool {
        self.behind || now_ms.saturating_sub(self.last) >= HOUSEKEEPING_MS
    }

    /// Records a run at `now_ms` and what it got through.
    pub fn ran(&mut self, now_ms: u64, h: Housekeeping) {
        self.last = now_ms;
        self.behind = !h.caught_up;
    }
}

/// What [`Forwarder::housekeeping`] got through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Housekeeping {
    /// Every connection and template due has expired; `false`: the time
    /// budget ran out first, call again at the next poll.
    pub caught_up: bool,
}

/// The transport key of a packet.
/// A TCP or UDP packet's protocol and endpoints.
#[derive(Clone, Copy)]
pub struct Tuple<A: sluice_model::IpAddress = Ipv4Addr> {
    proto: Protocol,
    src: A::Socket,
    dst: A::Socket,
}

fn tcp_flags<A>(p: &Packet<A>) -> TcpFlags {
    TcpFlags::from_bits(p.tcp_flags)
}

impl Forwarder {
    /// A forwarder for worker `cfg.worker`; allocates its tables now.
    pub fn new(cfg: &ForwarderConfig, shared: Arc<SharedStats>) -> Result<Forwarder, String> {
        let conns: ConnTable = ConnTable::new(&cfg.table).map_err(|e| e.to_string())?;
        let conns6 = ConnTable::new(&cfg.table6).map_err(|e| format!("IPv6 table: {e}"))?;
        let synproxy = SynProxy::new(&cfg.syn_proxy, conns.capacity() as usize);
        let local_ports = LocalPorts::new(cfg.local_ports.clone(), cfg.worker, cfg.workers)
            .ok_or_else(|| {
                format!(
                    "local ports {}-{}: none for worker {} of {}",
                    cfg.local_ports.start(),
                    cfg.local_ports.end(),
                    cfg.worker,
                    cfg.workers
                )
            })?;
        Ok(Forwarder {
            worker: cfg.worker,
            workers: cfg.workers.max(1),
            fam: Families {
                v4: Tables::new(conns, cfg.neighbours, cfg.neighbour),
                v6: Tables::new(conns6, cfg.neighbours, cfg.neighbour),
            },
            cursors: (0..MAX_SERVICES)
                .map(|i| Cursor::starting_at(cfg.worker + i))
                .collect(),
            stats: shared.workers[cfg.worker].clone(),
            shared,
            last_neighbour_poll: 0,
            tableless: Tableless::new(),
            sync_out: None,
            rx_port: 0,
            icmp_errors: Vec::with_capacity(ICMP_ERROR_OUTBOX),
            icmp_error_limit: icmp_error::Limiter::new(ICMP_ERRORS_PER_SEC, ICMP_ERRORS_BURST),
            outer: None,
            outer_id: 0,
            tunnel_tails: Vec::with_capacity(tunnel::TAIL_OUTBOX),
            first_fragment: false,
            fragments_learned: 0,
            local_ports,
            insert: None,
            synproxy,
            syns_out: Vec::with_capacity(proxied::SYN_OUTBOX),
            look_ahead_from: burst::LOOK_AHEAD_FROM,
        })
    }

    /// This worker's load-balancing counters.
    pub fn stats(&self) -> &WorkerLbStats {
        &self.stats
    }

    /// This worker's load-balancing counters, to keep beside the forwarder.
    pub fn stats_handle(&self) -> Arc<CachePadded<WorkerLbStats>> {
        self.stats.clone()
    }

    /// This worker's connection table (read-only, for the control plane).
    pub fn table(&self) -> &ConnTable {
        &self.fam.v4.conns
    }

    /// This worker's IPv6 connection table.
    pub fn table6(&self) -> &ConnTable<Ipv6Addr> {
        &self.fam.v6.conns
    }

    /// Neighbours learned since the last call, to share with other workers.
    pub fn take_learned(&mut self) -> impl Iterator<Item = (IpAddr, MacAddr)> + '_ {
        let v4 = self
            .fam
            .v4
            .learned
            .drain(..)
            .map(|(a, m)| (IpAddr::V4(a), m));
        let v6 = self
            .fam
            .v6
            .learned
            .drain(..)
            .map(|(a, m)| (IpAddr::V6(a), m));
        v4.chain(v6)
    }

    /// Records a neighbour another worker learned.
    pub fn learn_remote(&mut self, ip: impl Into<IpAddr>, mac: MacAddr, now_ms: u64) {
        match ip.into() {
            IpAddr::V4(a) => self.fam.v4.neigh.learn(a, mac, now_ms),
            IpAddr::V6(a) => self.fam.v6.neigh.learn(a, mac, now_ms),
        }
    }

    /// The MAC to send to `ip` with, if its neighbour entry is usable.
    pub fn neighbour(&mut self, ip: impl Into<IpAddr>, now_ms: u64) -> Option<MacAddr> {
        match ip.into() {
            IpAddr::V4(a) => self.fam.v4.neigh.lookup(a, now_ms),
            IpAddr::V6(a) => self.fam.v6.neigh.lookup(a, now_ms),
        }
    }

    /// Unicast probes to send now (neighbour, its MAC: an ARP request or
    /// a neighbour solicitation), queued by [`Forwarder::housekeeping`].
    pub fn take_probes(&mut self) -> impl Iterator<Item = (IpAddr, MacAddr)> + '_ {
        let v4 = self
            .fam
            .v4
            .probes
            .drain(..)
            .map(|(a, m)| (IpAddr::V4(a), m));
        let v6 = self
            .fam
            .v6
            .probes
            .drain(..)
            .map(|(a, m)| (IpAddr::V6(a), m));
        v4.chain(v6)
    }

    /// Hands each ICMP error queued since the last call to `send` (its
    /// kind, the port to send it on, the frame), then forgets them.
    pub fn take_icmp_errors(&mut self, mut send: impl FnMut(SentError, usize, &[u8])) {
        for (kind, port, frame, len) in &self.icmp_errors {
            send(*kind, *port, &frame[..*len]);
        }
        self.icmp_errors.clear();
    }

    /// The outer header the packet just processed needs in front of it
    /// (it goes to a tunnel real), taken: after an [`Action::Forward`] or
    /// [`Action::Hold`], the caller grows the frame at the front by its
    /// length and applies it with [`sluice_core::tunnel::prepend`].
    #[inline(always)]
    pub fn take_outer(&mut self) -> Option<Outer> {
        self.outer.take()
    }

    /// A packet whose TTL (hop limit) runs out here: dropped, and its
    /// source told with an ICMP time exceeded from the port it came in on,
    /// as a router would (rate-limited; never about an ICMP error).
    fn expired<A: Family>(
        &mut self,
        snap: &Snapshot,
        frame: &[u8],
        p: &Packet<A>,
        now_ms: u64,
    ) -> Action {
        self.tell_source(snap, frame, p, SentError::TimeExceeded, now_ms);
        Action::Drop(DropReason::TtlExceeded)
    }

    /// Queues the ICMP error `kind` about `p` to its source, from the port
    /// it came in on, within the rate limit.
    fn tell_source<A: Family>(
        &mut self,
        snap: &Snapshot,
        frame: &[u8],
        p: &Packet<A>,
        kind: SentError,
        now_ms: u64,
    ) {
        let port = self.rx_port;
        if self.icmp_errors.len() < ICMP_ERROR_OUTBOX {
            if let Some(pv) = snap.ports.get(port) {
                let mut out = [0u8; icmp_error::MAX_FRAME];
                let written = A::write_icmp_error(pv, frame, p, kind, &mut out);
                if let Some(n) = written.filter(|_| self.icmp_error_limit.take(now_ms)) {
                    self.icmp_errors.push((kind, port, out, n));
                }
            }
        }
    }

    fn learn<A: Family>(&mut self, ip: A, mac: MacAddr, now_ms: u64) {
        let t = self.fam.of_mut::<A>();
        t.neigh.learn(ip, mac, now_ms);
        if t.learned.len() < LEARNED_OUTBOX {
            t.learned.push((ip, mac));
        }
    }

    /// Periodic work between bursts: expires connections and persistence
    /// templates in steps of [`EXPIRE_STEP`] until caught up or until
    /// `more()` says the caller's time budget is spent, ends the
    /// connections of drained pairs (bounded, resuming where it stopped,
    /// also across snapshots), and moves the neighbour timers. A caller
    /// that is not caught up calls again at its next poll, so expiry keeps
    /// up with any connection rate the budget allows.
    pub fn housekeeping(
        &mut self,
        snap: &Snapshot,
        now_ms: u64,
        mut more: impl FnMut() -> bool,
    ) -> Housekeeping {
        let v4_done = self.expire::<Ipv4Addr>(now_ms, &mut more);
        let v6_done = self.expire::<Ipv6Addr>(now_ms, &mut more);
        self.end_drained::<Ipv4Addr>(snap);
        self.end_drained::<Ipv6Addr>(snap);
        self.tableless.tick(now_ms);
        self.synproxy.tick(self.stats.half_open.get(), now_ms);
        self.stats
            .syn_proxy_engaged
            .set(u64::from(self.synproxy.engaged()));
        if now_ms.saturating_sub(self.last_neighbour_poll) >= NEIGHBOUR_POLL_MS {
            self.last_neighbour_poll = now_ms;
            self.poll_neighbours::<Ipv4Addr>(now_ms);
            self.poll_neighbours::<Ipv6Addr>(now_ms);
        }
        Housekeeping {
            caught_up: v4_done && v6_done,
        }
    }

    /// Expires family `A`'s connections, then its persistence templates,
    /// in steps while `more()` allows; whether it caught up.
    fn expire<A: Family>(&mut self, now_ms: u64, more: &mut impl FnMut() -> bool) -> bool {
        let stats = &self.stats;
        let t = self.fam.of_mut::<A>();
        let sync_out = &mut self.sync_out;
        let conns_done = loop {
            let on_kept = |_: ConnId, c: &Conn<A>| {
                // A connection that lives on (it carried traffic): the
                // peers' copy, made at its last state change, would
                // expire about now; tell them again (established TCP and
                // UDP: the states a connection stays in). Never a peer's
                // copy: the two would keep each other alive.
                if (c.is_active() || c.proto() == Protocol::Udp)
                    && !c.flags().contains(ConnFlags::SYNCED)
                {
                    synced::retell(sync_out, stats, c);
                }
            };
            let p = t.conns.expire_noting(
                now_ms,
                EXPIRE_STEP,
                |_, c| {
                    stats.gauge(RealSlot(c.real())).closed(c.is_active());
                    if half_open(c) {
                        stats.half_open.sub(1);
                    }
                    if c.fwd() == Forward::FullNat {
                        stats.local_ports_in_use.sub(1);
                    }
                    // Passive health: a NAT connection whose SYN never got an
                    // answer (a peer's copy says nothing of that).
                    if c.fwd().translates()
                        && c.state() == ConnState::Tcp(TcpState::SynRecv)
                        && !c.flags().contains(ConnFlags::SEEN_REPLY)
                        && !c.flags().contains(ConnFlags::SYNCED)
                    {
                        stats.real(RealSlot(c.real())).syn_timeouts.add(1);
                    }
                },
                on_kept,
            );
            if p.done || !more() {
                break p.done;
            }
        };
        let templates_done = loop {
            let p = t
                .conns
                .templates_mut()
                .expire(now_ms, EXPIRE_STEP, |_, _| {});
            if p.done || !more() {
                break p.done;
            }
        };
        conns_done && templates_done
    }

    /// Moves family `A`'s neighbour timers, queueing the unicast probes due.
    fn poll_neighbours<A: Family>(&mut self, now_ms: u64) {
        let t = self.fam.of_mut::<A>();
        let probes = &mut t.probes;
        let room = PROBE_OUTBOX - probes.len();
        t.neigh.poll(now_ms, room, |ip, mac| probes.push((ip, mac)));
    }

    /// Ends the connections of the first drain not scanned to the end yet,
    /// examining at most [`DRAIN_BUDGET`] slots. Progress is kept per drain
    /// id, so snapshots published while a scan runs do not restart it.
    fn end_drained<A: Family>(&mut self, snap: &Snapshot) {
        let stats = &self.stats;
        let t = self.fam.of_mut::<A>();
        let done_below = t.drains_done_below;
        let Some(d) = A::services(snap).drains.iter().find(|d| d.id >= done_below) else {
            return;
        };
        let mut cursor = match t.drain_cursor {
            Some((id, c)) if id == d.id => c,
            _ => ScanCursor::new(),
        };
        let done = t.conns.drain_real(
            &mut cursor,
            u32::from(d.service.0),
            d.real.0,
            DRAIN_BUDGET,
            |_, c| {
                stats.gauge(RealSlot(c.real())).closed(c.is_active());
                if half_open(c) {
                    stats.half_open.sub(1);
                }
                if c.fwd() == Forward::FullNat {
                    stats.local_ports_in_use.sub(1);
                }
            },
        );
        if done {
            t.drains_done_below = d.id + 1;
            t.drain_cursor = None;
        } else {
            t.drain_cursor = Some((d.id, cursor));
        }
    }

    /// Decides what happens to one received frame. `rx_port` is the port
    /// it came in on; `now_ms` a monotonic clock in milliseconds.
    pub fn process(
        &mut self,
        snap: &Snapshot,
        frame: &mut [u8],
        rx_port: usize,
        now_ms: u64,
    ) -> Action {
        if frame.len() < ethernet::HEADER_LEN {
            return Action::Drop(DropReason::Truncated);
        }
        self.rx_port = rx_port;
        self.outer = None;
        self.insert = None;
        let Some(port) = snap.ports.get(rx_port) else {
            return Action::Drop(DropReason::NotForUs);
        };
        if let Err(r) = ingress::admit_frame(frame, port.mac) {
            return Action::Drop(r);
        }
        match ethernet::ethertype(frame) {
            ethernet::ETHERTYPE_IPV4 => match flow::parse(frame) {
                Ok(p) => self.ip(snap, frame, &p, rx_port, now_ms),
                Err(r) => Action::Drop(r),
            },
            ethernet::ETHERTYPE_IPV6 => match flow6::parse(frame) {
                // Neighbour discovery, and echo to the port: its own.
                Ok(p) if for_the_port6(&p, port) => self.local(snap, frame, rx_port, now_ms),
                Ok(p) => self.ip(snap, frame, &p, rx_port, now_ms),
                Err(r) => Action::Drop(r),
            },
            _ => self.local(snap, frame, rx_port, now_ms),
        }
    }

    /// An IPv4 or IPv6 packet, parsed.
    fn ip<A: Family>(
        &mut self,
        snap: &Snapshot,
        frame: &mut [u8],
        p: &Packet<A>,
        rx_port: usize,
        now_ms: u64,
    ) -> Action {
        let port = &snap.ports[rx_port];
        if A::martian(snap, p.src) {
            return Action::Drop(DropReason::MartianSource);
        }
        if p.proto == ipv4::PROTO_TCP && !p.is_fragment && !hygiene::valid_tcp_flags(p.tcp_flags) {
            return Action::Drop(DropReason::BadTcpFlags);
        }
        // `owns` covers the port's addresses and every VIP: decided once.
        let local = A::owns(port, p.dst);
        // A family the appliance has no route of (IPv6 on an IPv4-only
        // configuration): nothing of it is ours unless addressed to us.
        if !local && A::routes(snap).is_empty() {
            return Action::Drop(DropReason::NotForUs);
        }
        // Traffic to the port's own address (not a VIP) that the dataplane
        // does not answer itself belongs to the kernel, when it has an
        // interface on this port: replies to health checks, management.
        let services = A::services(snap);
        if port.kernel && local && !services.is_vip(p.dst) && !services.is_local_address(p.dst) {
            let echo = p.proto == A::ICMP && p.icmp.is_some_and(|i| i.ty == A::ICMP_ECHO_REQUEST);
            if !echo {
                return Action::ToKernel;
            }
        }
        match p.proto {
            ipv4::PROTO_TCP | ipv4::PROTO_UDP if p.is_fragment => {
                self.fragment(snap, frame, p, rx_port, local, now_ms)
            }
            ipv4::PROTO_TCP | ipv4::PROTO_UDP => {
                self.transport(snap, frame, p, rx_port, local, now_ms)
            }
            proto if proto == A::ICMP => {
                if let Some(e) = p.icmp.and_then(|i| i.error) {
                    if e.inner_proto == ipv4::PROTO_TCP || e.inner_proto == ipv4::PROTO_UDP {
                        // Its sender was on the way to the quoted packet's
                        // destination: it comes in from that side.
                        if !arrived_from_side_of(snap, e.inner_dst, rx_port) {
                            return Action::Drop(DropReason::SpoofedReply);
                        }
                        // About a reply sent to a client from a VIP:port
                        // (VIP:vport -> CIP:cport): it goes to the real.
                        // Else about a packet a real received from a client
                        // (CIP:cport -> RIP:rport): it goes to the client.
                        // Either way the client owns it.
                        let services = A::services(snap);
                        let to_real = services
                            .lookup(e.inner_proto, e.inner_src, e.inner_sport)
                            .is_some();
                        let client = if to_real { e.inner_dst } else { e.inner_src };
                        // (Full NAT: a packet from a local address, whose
                        // port names the owner.)
                        let owner = if !to_real && services.is_local_address(client) {
                            local_ports::owner(e.inner_sport, self.workers)
                        } else {
                            steer::owner(client, self.workers)
                        };
                        if owner != self.worker {
                            return Action::HandOff { worker: owner };
                        }
                        return if to_real {
                            self.icmp_error_to_real(snap, frame, p, &e, now_ms)
                        } else {
                            self.icmp_error_to_client(snap, frame, p, &e, now_ms)
                        };
                    }
                }
                if local {
                    // Echo request: answered in place.
                    return local_action(port.local.handle(frame).verdict);
                }
                Action::Drop(DropReason::NotForUs)
            }
            _ if local => Action::Drop(DropReason::UnsupportedProtocol),
            _ => Action::Drop(DropReason::NotForUs),
        }
    }

    /// A TCP or UDP packet (or a datagram's first fragment, its ports
    /// read): to a service, or a NAT reply, steered to its owner.
    fn transport<A: Family>(
        &mut self,
        snap: &Snapshot,
        frame: &mut [u8],
        p: &Packet<A>,
        rx_port: usize,
        local: bool,
        now_ms: u64,
    ) -> Action {
        let proto = if p.proto == ipv4::PROTO_TCP {
            Protocol::Tcp
        } else {
            Protocol::Udp
        };
        let t = Tuple {
            proto,
            src: p.src.socket(p.sport),
            dst: p.dst.socket(p.dport),
        };
        if let Some(svc) = A::services(snap).lookup(p.proto, p.dst, p.dport) {
            let owner = steer::owner(p.src, self.workers);
            if owner != self.worker {
                return Action::HandOff { worker: owner };
            }
            return self.inbound(snap, svc, frame, p, t, now_ms);
        }
        if local {
            if A::services(snap).is_local_address(p.dst) {
                return self.full_nat_reply(snap, frame, p, t, rx_port, now_ms);
            }
            // TCP/UDP to an appliance address or an unserved VIP port:
            // nothing in the dataplane listens there.
            return Action::Drop(DropReason::UnsupportedProtocol);
        }
        // Maybe a NAT reply: real -> client. It must come in from the
        // real's side.
        if !arrived_from_side_of(snap, p.src, rx_port) {
            return Action::Drop(DropReason::SpoofedReply);
        }
        // The client owns it.
        let owner = steer::owner(p.dst, self.workers);
        if owner != self.worker {
            return Action::HandOff { worker: owner };
        }
        self.outbound(snap, frame, p, t, now_ms)
    }

    /// A real's reply to a local address (full NAT): it must come in from
    /// the real's side, and the worker its local port names owns it
    /// (see [`crate::local_ports`]).
    fn full_nat_reply<A: Family>(
        &mut self,
        snap: &Snapshot,
        frame: &mut [u8],
        p: &Packet<A>,
        t: Tuple<A>,
        rx_port: usize,
        now_ms: u64,
    ) -> Action {
        if !arrived_from_side_of(snap, p.src, rx_port) {
            return Action::Drop(DropReason::SpoofedReply);
        }
        let owner = local_ports::owner(p.dport, self.workers);
        if owner != self.worker {
            return Action::HandOff { worker: owner };
        }
        self.outbound(snap, frame, p, t, now_ms)
    }

    /// ARP, IPv6 neighbour discovery and echo to the port, and other
    /// frames that are not IP: answered or learned by the port's local
    /// presence. A neighbour is learned only from the segment its address
    /// is on, so ARP (or ND) sent on one port never redirects traffic
    /// meant for another.
    fn local(&mut self, snap: &Snapshot, frame: &mut [u8], rx_port: usize, now_ms: u64) -> Action {
        let port = &snap.ports[rx_port];
        let out = port.local.handle(frame);
        match out.learned {
            Some((IpAddr::V4(ip), mac)) => {
                if snap.routes.is_connected(ip) != Some(rx_port) {
                    return Action::Drop(DropReason::ArpWrongSegment);
                }
                self.learn(ip, mac, now_ms);
            }
            // Off-segment (and link-local) IPv6 neighbours are not used
            // for forwarding: the answer still goes out.
            Some((IpAddr::V6(ip), mac)) if snap.routes6.is_connected(ip) == Some(rx_port) => {
                self.learn(ip, mac, now_ms);
            }
            Some((IpAddr::V6(_), _)) | None => {}
        }
        // The kernel resolves its own next hops: it gets ARP replies and
        // neighbour advertisements too.
        let answer = matches!(
            out.verdict,
            Verdict::Consumed(Handled::ArpReply | Handled::NeighbourAdvert)
        );
        if port.kernel && answer {
            return Action::ToKernel;
        }
        local_action(out.verdict)
    }

    fn inbound<A: Family>(
        &mut self,
        snap: &Snapshot,
        svc: &VirtualService<A>,
        frame: &mut [u8],
        p: &Packet<A>,
        t: Tuple<A>,
        now_ms: u64,
    ) -> Action {
        let key = FlowKey::inbound(t.proto, t.src, t.dst);
        let flags = tcp_flags(p);
        let is_syn = t.proto == Protocol::Tcp
            && flags.contains(TcpFlags::SYN)
            && !flags.contains(TcpFlags::ACK);
        // A SYN on an old entry's key may be a new connection: it is
        // scheduled afresh below, and the old entry ends (its real's counts
        // corrected) once a real is found for the new one.
        let mut old = None;
        if let Some(id) = self.fam.of::<A>().conns.lookup_inbound(&key) {
            let c = *self
                .fam
                .of::<A>()
                .conns
                .get(id)
                .expect("looked-up id is live");
            let (service, real) = slots_of(&c);
            let gone = A::services(snap).connection_gone(service, real);
            if !(is_syn && (gone || self.reschedules(svc, &c))) {
                return self.along(snap, frame, p, id, flags, now_ms);
            }
            old = Some(id);
        }
        // A new connection: TCP only from a SYN (as LVS without sloppy TCP),
        // but a connection forwarded without an entry while the table was
        // full stays forwarded: by the same hash while the table is still
        // under pressure, adopted (an entry made) once it has room.
        if t.proto == Protocol::Tcp && !is_syn {
            let cookies = svc.syn_proxy != SynProxyUse::Never && self.synproxy.cookies_live(now_ms);
            if cookies {
                if let Some(a) = A::cookie_ack(self, snap, svc, frame, p, t, now_ms) {
                    return a;
                }
            }
            if self.table_under_pressure::<A>() {
                return self.stateless(snap, svc, frame, p, t, now_ms);
            }
            if self.tableless.contains(flow_hash(t)) {
                return self.adopt(snap, svc, frame, p, t, now_ms);
            }
            // (Not while SYN cookies are live: an ACK that is no valid
            // cookie is then most likely a flood's.)
            if svc.hash_on_miss && !cookies {
                return self.hash_miss(snap, svc, frame, p, t, now_ms);
            }
            return Action::Drop(DropReason::NoConnection);
        }
        // A segment whose checksum is wrong never reaches a real (it would
        // drop it): it must not create a connection, move a scheduler or
        // count as an unanswered SYN.
        if !self.l4_checksum_ok(frame, p) {
            return Action::Drop(DropReason::BadL4Checksum);
        }
        // A packet that cannot be forwarded by NAT (TTL would expire) must
        // not create a connection or move a scheduler.
        if p.ttl == 0 || (p.ttl <= 1 && svc.reals.iter().any(|r| r.fwd.translates())) {
            return self.expired::<A>(snap, frame, p, now_ms);
        }
        if is_syn {
            self.stats.syns.add(1);
            if let Some(answer) = A::syn_cookie(self, snap, svc, frame, p, t, now_ms) {
                // The client proves its address before anything is kept;
                // an old entry on its key ends (it would catch the ACK).
                if let Some(id) = old {
                    self.remove::<A>(id);
                }
                return answer;
            }
        }
        let Some((pos, template, fresh)) = self.schedule(svc, t, now_ms) else {
            // No real takes a new connection: the old entry, if any, stays
            // what it was.
            return match old {
                Some(id) => self.along(snap, frame, p, id, flags, now_ms),
                None => Action::Drop(DropReason::NoRealAvailable),
            };
        };
        if let Some(id) = old {
            self.remove::<A>(id);
        }
        let fresh_template = template.filter(|_| fresh);
        let (pos, id) = match self.open(svc, t, pos, template, now_ms) {
            Ok(id) => (pos, id),
            Err(Unopened::NoLocalPort) => {
                if let Some(tid) = fresh_template {
                    self.fam.of_mut::<A>().conns.templates_mut().remove(tid);
                }
                return Action::Drop(DropReason::LocalPortsExhausted);
            }
            Err(Unopened::Exists) => {
                // The reply key (RIP:rport, CIP:cport) is taken: this client
                // port already reaches the same real through another VIP.
                // Replies could not tell the two apart, so pick a real
                // whose reply key is free.
                if let Some(tid) = fresh_template {
                    self.fam.of_mut::<A>().conns.templates_mut().remove(tid);
                }
                let opened = self.pick_clash_free(svc, t).and_then(|pos| {
                    self.open(svc, t, pos, None, now_ms)
                        .ok()
                        .map(|id| (pos, id))
                });
                match opened {
                    Some(x) => x,
                    None => return Action::Drop(DropReason::ReplyKeyClash),
                }
            }
            Err(_) => {
                // No room: forward this connection by the consistent hash,
                // exactly as its later packets will be (stateless()); a
                // template made for it would pin the client elsewhere.
                if let Some(tid) = fresh_template {
                    self.fam.of_mut::<A>().conns.templates_mut().remove(tid);
                }
                self.stats.service(svc.slot).connections.add(1);
                return self.stateless(snap, svc, frame, p, t, now_ms);
            }
        };
        if svc.proxy_protocol {
            self.start_proxy_header(frame, p, id);
        }
        self.update::<A>(id, Dir::Inbound, flags, now_ms);
        let r = &svc.reals[pos];
        self.stats.service(svc.slot).connections.add(1);
        self.stats.real(r.slot).connections.add(1);
        self.count_in(svc.slot, r.slot, p);
        if r.fwd == Forward::FullNat || svc.proxy_protocol {
            let c = *self.fam.of::<A>().conns.get(id).expect("opened");
            return self.forward_conn(snap, frame, p, id, &c, now_ms);
        }
        let (addr, fwd) = (r.addr, r.fwd);
        self.forward_to_real(snap, frame, p, addr, fwd, now_ms)
    }

    /// Forwards a packet of existing connection `id` to its real, or drops
    /// it (and ends the connection) when its real or service is gone.
    fn along<A: Family>(
        &mut self,
        snap: &Snapshot,
        frame: &mut [u8],
        p: &Packet<A>,
        id: ConnId,
        flags: TcpFlags,
        now_ms: u64,
    ) -> Action {
        let c = *self
            .fam
            .of::<A>()
            .conns
            .get(id)
            .expect("looked-up id is live");
        let (service, real) = slots_of(&c);
        if A::services(snap).connection_gone(service, real) {
            self.remove::<A>(id);
            return Action::Drop(DropReason::RealRemoved);
        }
        if c.flags().contains(ConnFlags::SYN_PROXY) {
            if let Some(a) = A::proxied_from_client(self, snap, frame, p, id, now_ms) {
                return a;
            }
        }
        self.update::<A>(id, Dir::Inbound, flags, now_ms);
        self.count_in(service, real, p);
        if c.fwd() == Forward::FullNat || c.flags().contains(ConnFlags::PROXY_HEADER) {
            return self.forward_conn(snap, frame, p, id, &c, now_ms);
        }
        self.forward_to_real(snap, frame, p, c.real_addr(), c.fwd(), now_ms)
    }

    /// Whether a SYN that matches live connection `c` of service `svc`
    /// starts a new connection, as IPVS does with `conn_reuse_mode = 1`
    /// (and `expire_nodest_conn` for reals that cannot take it): the old
    /// entry is closing (TIME_WAIT or CLOSE: a client reusing its port), or
    /// its real would not be scheduled now (removed, moved to another
    /// service, quiesced or drained, down, or overloaded).
    fn reschedules<A: Family>(&self, svc: &VirtualService<A>, c: &Conn<A>) -> bool {
        if matches!(
            c.state(),
            ConnState::Tcp(TcpState::TimeWait | TcpState::Close)
        ) {
            return true;
        }
        if slots_of(c).0 != svc.slot {
            return true;
        }
        match svc.real_by_slot(RealSlot(c.real())) {
            None => true,
            Some(r) => !self.takes_new_connections(r),
        }
    }

    /// Whether the scheduler may give real `r` a new connection now.
    #[inline]
    fn takes_new_connections<A: Family>(&self, r: &RealServer<A>) -> bool {
        r.weight > 0 && !self.shared.is_down(r.slot) && !self.shared.is_overloaded(r.slot)
    }

    /// Inserts the connection of `t` to real `pos` of `svc` and counts it
    /// for the real.
    fn open<A: Family>(
        &mut self,
        svc: &VirtualService<A>,
        t: Tuple<A>,
        pos: usize,
        template: Option<sluice_conntrack::TemplateId>,
        now_ms: u64,
    ) -> Result<ConnId, Unopened> {
        let r = &svc.reals[pos];
        let local = match r.fwd {
            Forward::FullNat => Some(
                self.local_port(svc, t, r.addr)
                    .ok_or(Unopened::NoLocalPort)?,
            ),
            _ => None,
        };
        let new = NewConn {
            proto: t.proto,
            client: t.src,
            vip: t.dst,
            real_addr: r.addr,
            local,
            fwd: r.fwd,
            service: u32::from(svc.slot.0),
            real: r.slot.0,
            template,
        };
        let id = self.fam.of_mut::<A>().conns.insert(&new, now_ms)?;
        self.stats.gauge(r.slot).opened();
        if local.is_some() {
            self.stats.local_ports_in_use.add(1);
        }
        if t.proto == Protocol::Udp && self.sync_out.is_some() && !svc.proxy_protocol {
            // (A TCP connection is told about at its first state change,
            // which follows at once. Connections with the PROXY protocol,
            // flagged only once opened, are never told: see retell.)
            self.tell_peers::<A>(id);
        }
        Ok(id)
    }

    /// A local address and port of `svc` for the connection of `t` to
    /// `real` (full NAT): one of this worker's ports that no connection
    /// to `real` holds on that address. Clients are spread over the
    /// addresses by their flow's hash.
    fn local_port<A: Family>(
        &mut self,
        svc: &VirtualService<A>,
        t: Tuple<A>,
        real: A::Socket,
    ) -> Option<A::Socket> {
        let conns = &self.fam.of::<A>().conns;
        let start = (flow_hash(t) % svc.locals.len().max(1) as u64) as usize;
        self.local_ports
            .allocate(&svc.locals, start, |a, port| {
                conns
                    .lookup_outbound(&FlowKey::outbound(t.proto, real, a.socket(port)))
                    .is_some()
            })
            .map(|(a, port)| a.socket(port))
    }

    /// Schedules `t` among the reals of `svc` whose reply key for this
    /// client is free (NAT), or that need none (DR).
    fn pick_clash_free<A: Family>(
        &mut self,
        svc: &VirtualService<A>,
        t: Tuple<A>,
    ) -> Option<usize> {
        let conns = &self.fam.of::<A>().conns;
        let service = ServiceLoads {
            reals: &svc.reals,
            shared: &self.shared,
        };
        let loads = Restricted::without(&service, |i: usize| {
            let r = &svc.reals[i];
            r.fwd == Forward::Nat
                && conns
                    .lookup_outbound(&FlowKey::outbound(t.proto, r.addr, t.src))
                    .is_some()
        });
        let hash = client_hash(svc, t);
        svc.schedule
            .pick(&mut self.cursors[svc.slot.index()], hash, &loads)
    }

    /// The real the service's consistent hash gives the client socket of
    /// `t`: what a flow without an entry is sent to, every time.
    fn consistent_real<A: Family>(&self, svc: &VirtualService<A>, t: Tuple<A>) -> Option<usize> {
        let loads = ServiceLoads {
            reals: &svc.reals,
            shared: &self.shared,
        };
        let h = A::client_hash(DEFAULT_SEED, t.src.addr(), Some(t.src.port_number()));
        svc.schedule.consistent_pick(h, &loads)
    }

    /// Forwards by consistent hash without a table entry (table full).
    fn stateless<A: Family>(
        &mut self,
        snap: &Snapshot,
        svc: &VirtualService<A>,
        frame: &mut [u8],
        p: &Packet<A>,
        t: Tuple<A>,
        now_ms: u64,
    ) -> Action {
        let Some(pos) = self.consistent_real(svc, t) else {
            return Action::Drop(DropReason::NoRealAvailable);
        };
        let r = &svc.reals[pos];
        if r.fwd == Forward::FullNat || svc.proxy_protocol {
            // No entry, no local port: nothing could bring the reply back;
            // nor could the PROXY header's shift be kept.
            return Action::Drop(DropReason::TableFull);
        }
        self.stats.stateless_forwards.add(1);
        self.tableless.mark(flow_hash(t), now_ms);
        self.count_in(svc.slot, r.slot, p);
        let (addr, fwd) = (r.addr, r.fwd);
        self.forward_to_real(snap, frame, p, addr, fwd, now_ms)
    }

    /// A packet of a connection forwarded without an entry, now that the
    /// table has room: the same consistent hash picks the same real (while
    /// the service's reals are the same), and an entry is made for it, so
    /// its replies and later packets find it. When no entry can be made,
    /// it is forwarded without one, as before.
    fn adopt<A: Family>(
        &mut self,
        snap: &Snapshot,
        svc: &VirtualService<A>,
        frame: &mut [u8],
        p: &Packet<A>,
        t: Tuple<A>,
        now_ms: u64,
    ) -> Action {
        let Some(pos) = self.consistent_real(svc, t) else {
            return Action::Drop(DropReason::NoRealAvailable);
        };
        let id = match self.open(svc, t, pos, None, now_ms) {
            Ok(id) => id,
            Err(Unopened::NoLocalPort) => return Action::Drop(DropReason::LocalPortsExhausted),
            Err(_) => return self.stateless(snap, svc, frame, p, t, now_ms),
        };
        self.stats.tableless_adopted.add(1);
        self.update::<A>(id, Dir::Inbound, tcp_flags(p), now_ms);
        let r = &svc.reals[pos];
        self.count_in(svc.slot, r.slot, p);
        let c = *self.fam.of::<A>().conns.get(id).expect("opened");
        self.forward_conn(snap, frame, p, id, &c, now_ms)
    }

    /// A mid-connection segment of no entry on a service that hashes its
    /// misses (`on_miss = "hash"`): most likely a connection another
    /// appliance behind the same ECMP router scheduled, moved here when
    /// the set of appliances changed. The service's own hash (sh or mh,
    /// built alike on every appliance from the same reals) picks the real
    /// that appliance picked for its SYN, and an entry is made so that its
    /// later packets find it; a stray gets a reset from that real.
    fn hash_miss<A: Family>(
        &mut self,
        snap: &Snapshot,
        svc: &VirtualService<A>,
        frame: &mut [u8],
        p: &Packet<A>,
        t: Tuple<A>,
        now_ms: u64,
    ) -> Action {
        if !self.l4_checksum_ok(frame, p) {
            return Action::Drop(DropReason::BadL4Checksum);
        }
        let loads = MissLoads(ServiceLoads {
            reals: &svc.reals,
            shared: &self.shared,
        });
        let cursor = &mut self.cursors[svc.slot.index()];
        let Some(pos) = svc.schedule.pick(cursor, client_hash(svc, t), &loads) else {
            return Action::Drop(DropReason::NoRealAvailable);
        };
        // A connection met mid-stream cannot be taken over by full NAT
        // (the real knows it by another appliance's local port) nor given
        // its PROXY header (where its stream starts is not known).
        if svc.proxy_protocol || svc.reals[pos].fwd == Forward::FullNat {
            return Action::Drop(DropReason::NoConnection);
        }
        if let Ok(id) = self.open(svc, t, pos, None, now_ms) {
            self.update::<A>(id, Dir::Inbound, tcp_flags(p), now_ms);
            self.stats.hashed_on_miss.add(1);
        }
        let r = &svc.reals[pos];
        self.count_in(svc.slot, r.slot, p);
        let (addr, fwd) = (r.addr, r.fwd);
        self.forward_to_real(snap, frame, p, addr, fwd, now_ms)
    }

    fn table_under_pressure<A: Family>(&self) -> bool {
        let cap = self.fam.of::<A>().conns.capacity() as u64;
        self.fam.of::<A>().conns.len() as u64 * 10 >= cap * 9
    }

    /// Picks a real: the persistence template first, else the scheduler.
    /// Returns the real, the template used, and whether it was made now.
    fn schedule<A: Family>(
        &mut self,
        svc: &VirtualService<A>,
        t: Tuple<A>,
        now_ms: u64,
    ) -> Option<(usize, Option<sluice_conntrack::TemplateId>, bool)> {
        let loads = ServiceLoads {
            reals: &svc.reals,
            shared: &self.shared,
        };
        let client = t.src.addr();
        if let Some(pc) = svc.persistence {
            let tpl = self.fam.of::<A>().conns.templates().lookup(
                u32::from(svc.slot.0),
                client,
                pc.netmask,
            );
            if let Some(id) = tpl {
                let real_slot = self
                    .fam
                    .of::<A>()
                    .conns
                    .templates()
                    .get(id)
                    .map(|x| RealSlot(x.real()));
                if let Some(pos) =
                    real_slot.and_then(|s| svc.reals.iter().position(|r| r.slot == s))
                {
                    // A template keeps its real while the real is configured
                    // and up, even when quiesced (LVS), unless overloaded or
                    // the service expires quiescent templates.
                    let r = &svc.reals[pos];
                    let held_out = self.shared.is_overloaded(r.slot) || self.shared.is_down(r.slot);
                    let expired = r.weight == 0 && svc.expire_quiescent_template;
                    if !held_out && !expired {
                        self.fam
                            .of_mut::<A>()
                            .conns
                            .templates_mut()
                            .refresh(id, now_ms);
                        return Some((pos, Some(id), false));
                    }
                }
                self.fam.of_mut::<A>().conns.templates_mut().remove(id);
            }
        }
        let hash = client_hash(svc, t);
        let pos = svc
            .schedule
            .pick(&mut self.cursors[svc.slot.index()], hash, &loads)?;
        let template = match svc.persistence {
            Some(pc) => self
                .fam
                .of_mut::<A>()
                .conns
                .templates_mut()
                .insert(
                    u32::from(svc.slot.0),
                    client,
                    pc.netmask,
                    svc.reals[pos].slot.0,
                    pc.timeout_ms,
                    now_ms,
                )
                .ok(),
            None => None,
        };
        Some((pos, template, true))
    }

    fn outbound<A: Family>(
        &mut self,
        snap: &Snapshot,
        frame: &mut [u8],
        p: &Packet<A>,
        t: Tuple<A>,
        now_ms: u64,
    ) -> Action {
        let key = FlowKey::outbound(t.proto, t.src, t.dst);
        let Some(id) = self.fam.of::<A>().conns.lookup_outbound(&key) else {
            // A reply of a connection forwarded without an entry (table
            // full, or full until lately): translate it if exactly one
            // service uses this real. (The cheap tests first: most
            // unmatched packets are strays, and the table is rarely full.)
            let pressure = self.table_under_pressure::<A>();
            if !pressure && self.tableless.is_empty() {
                return Action::Drop(DropReason::NotForUs);
            }
            // (A full-NAT reply without an entry names no client.)
            if A::services(snap).is_local_address(t.dst.addr()) {
                return Action::Drop(DropReason::NotForUs);
            }
            let svc = A::services(snap)
                .by_real(t.proto.number(), t.src.addr(), t.src.port_number())
                .filter(|svc| {
                    pressure
                        || self.tableless.contains(flow_hash(Tuple::<A> {
                            proto: t.proto,
                            src: t.dst,
                            dst: svc.vip,
                        }))
                });
            let Some(svc) = svc else {
                return Action::Drop(DropReason::NotForUs);
            };
            let (vip, slot) = (svc.vip, svc.slot);
            let real = svc.reals.iter().find(|r| r.addr == t.src).map(|r| r.slot);
            let len = p.total_len as u64;
            self.stats.service(slot).count_out(len);
            if let Some(r) = real {
                self.stats.real(r).count_out(len);
            }
            return self.forward_to_client(snap, frame, p, vip, None, now_ms);
        };
        let (service, real, vip, unanswered, proxied, client, flags) = {
            let c = self
                .fam
                .of::<A>()
                .conns
                .get(id)
                .expect("looked-up id is live");
            let (service, real) = slots_of(c);
            let unanswered = c.state() == ConnState::Tcp(TcpState::SynRecv)
                && !c.flags().contains(ConnFlags::SEEN_REPLY);
            let proxied = c.flags().contains(ConnFlags::SYN_PROXY);
            let client = (c.fwd() == Forward::FullNat).then(|| c.client());
            (
                service,
                real,
                c.vip(),
                unanswered,
                proxied,
                client,
                c.flags(),
            )
        };
        if A::services(snap).connection_gone(service, real) {
            self.remove::<A>(id);
            return Action::Drop(DropReason::RealRemoved);
        }
        if proxied {
            if let Some(a) = A::proxied_from_real(self, snap, frame, p, id, now_ms) {
                return a;
            }
        }
        // A reset ends the connection: only a genuine one. The real refused
        // the connection when the reset is its answer to the SYN; that, not
        // a reset later on (which forged segments can provoke), is what
        // passive health counts.
        let reset = p.tcp_flags & sluice_core::wire::l4::TCP_RST != 0;
        if reset && !self.l4_checksum_ok(frame, p) {
            return Action::Drop(DropReason::BadL4Checksum);
        }
        self.update::<A>(id, Dir::Outbound, tcp_flags(p), now_ms);
        if flags.contains(ConnFlags::PROXY_HEADER) {
            let mtu = usize::from(snap.tunnel.mtu);
            self.proxy_header_to_client(frame, p, id, flags, mtu);
        }
        let len = p.total_len as u64;
        if reset && unanswered {
            self.stats.real(real).resets.add(1);
        }
        self.stats.service(service).count_out(len);
        self.stats.real(real).count_out(len);
        self.forward_to_client(snap, frame, p, vip, client, now_ms)
    }

    /// An ICMP error about a packet a real received from a client (quoted
    /// CIP:cport -> RIP:rport), from the real or a router on the way to
    /// it: translated so the client sees it about its packet to the VIP.
    fn icmp_error_to_client<A: Family>(
        &mut self,
        snap: &Snapshot,
        frame: &mut [u8],
        p: &Packet<A>,
        e: &IcmpError<A>,
        now_ms: u64,
    ) -> Action {
        // The quoted packet went client -> real: its reply key is
        // (real -> client).
        let quoted = match self.quoted_connection(snap, e, Quoted::Outbound, now_ms) {
            Ok(q) => q,
            Err(why) => return Action::Drop(why),
        };
        let vip = quoted.vip;
        if !nat::decrement_ttl(frame, p) {
            return Action::Drop(DropReason::TtlExceeded);
        }
        nat::translate_icmp_error_to_client(frame, p, e, vip.addr(), vip.port_number());
        if quoted.flags.contains(ConnFlags::PROXY_HEADER) {
            self.proxy_header_quote_to_client(frame, p, e, quoted.id, quoted.flags);
        }
        if quoted.fwd == Forward::FullNat {
            // The quote left from the local address: it becomes the
            // client's, and so does the error's destination.
            let c = quoted.client;
            nat::translate_icmp_error_to_real(frame, p, e, c.addr(), c.port_number());
            return self.route(snap, frame, c.addr(), now_ms);
        }
        self.route(snap, frame, p.dst, now_ms)
    }

    /// An ICMP error about a reply the load balancer sent to a client
    /// (quoted VIP:vport -> CIP:cport), from a router on the client's side
    /// (fragmentation needed, unreachable): it goes to the real that sent
    /// the reply, so path MTU discovery works through NAT (IPVS's
    /// `ip_vs_in_icmp`). NAT translates it back to the real's address; DR
    /// passes it unchanged to the real, which holds the VIP.
    fn icmp_error_to_real<A: Family>(
        &mut self,
        snap: &Snapshot,
        frame: &mut [u8],
        p: &Packet<A>,
        e: &IcmpError<A>,
        now_ms: u64,
    ) -> Action {
        let (id, proxied, real_addr, fwd, local) =
            match self.quoted_connection(snap, e, Quoted::Inbound, now_ms) {
                Ok(q) => (q.id, q.proxied, q.real_addr, q.fwd, q.local),
                Err(why) => return Action::Drop(why),
            };
        match fwd {
            Forward::Nat => {
                if !nat::decrement_ttl(frame, p) {
                    return Action::Drop(DropReason::TtlExceeded);
                }
                nat::translate_icmp_error_to_real(
                    frame,
                    p,
                    e,
                    real_addr.addr(),
                    real_addr.port_number(),
                );
                if proxied {
                    A::unshift_quote(self, frame, p, e, id);
                }
                self.route(snap, frame, real_addr.addr(), now_ms)
            }
            // The real knows the reply as sent to the local address.
            Forward::FullNat => {
                if !nat::decrement_ttl(frame, p) {
                    return Action::Drop(DropReason::TtlExceeded);
                }
                let (r, l) = (real_addr, local);
                nat::translate_icmp_error_to_real(frame, p, e, r.addr(), r.port_number());
                nat::translate_icmp_error_to_client(frame, p, e, l.addr(), l.port_number());
                self.route(snap, frame, r.addr(), now_ms)
            }
            // Direct routing and tunnels: the real holds the VIP.
            fwd => self.forward_to_real(snap, frame, p, real_addr, fwd, now_ms),
        }
    }

    /// The connection of the packet an ICMP error quotes, looked up by
    /// the key of its direction, and refreshed: the error keeps it alive.
    /// Not one of ours (or a request that did not go through NAT):
    /// `not_for_us`; its real is gone: `real_removed`.
    fn quoted_connection<A: Family>(
        &mut self,
        snap: &Snapshot,
        e: &IcmpError<A>,
        direction: Quoted,
        now_ms: u64,
    ) -> Result<QuotedConn<A>, DropReason> {
        let from = e.inner_dst.socket(e.inner_dport);
        let to = e.inner_src.socket(e.inner_sport);
        let id = match direction {
            Quoted::Outbound => self.fam.of::<A>().conns.lookup_outbound(&FlowKey::outbound(
                quoted_proto(e),
                from,
                to,
            )),
            Quoted::Inbound => self.fam.of::<A>().conns.lookup_inbound(&FlowKey::inbound(
                quoted_proto(e),
                from,
                to,
            )),
        }
        .ok_or(DropReason::NotForUs)?;
        let c = self
            .fam
            .of::<A>()
            .conns
            .get(id)
            .expect("looked-up id is live");
        let (service, real) = slots_of(c);
        let quoted = QuotedConn {
            id,
            proxied: c.flags().contains(ConnFlags::SYN_PROXY),
            vip: c.vip(),
            real_addr: c.real_addr(),
            fwd: c.fwd(),
            client: c.client(),
            local: c.local(),
            flags: c.flags(),
        };
        // A request only reaches a real through us rewritten by NAT or
        // full NAT; under DR the real answers the client itself.
        if direction == Quoted::Outbound && !quoted.fwd.translates() {
            return Err(DropReason::NotForUs);
        }
        if A::services(snap).connection_gone(service, real) {
            return Err(DropReason::RealRemoved);
        }
        self.fam.of_mut::<A>().conns.refresh(id, now_ms);
        Ok(quoted)
    }

    fn update<A: Family>(&mut self, id: ConnId, dir: Dir, flags: TcpFlags, now_ms: u64) {
        let was_half_open = self.fam.of::<A>().conns.get(id).is_some_and(half_open);
        let Some(u) = self.fam.of_mut::<A>().conns.update(id, dir, flags, now_ms) else {
            return;
        };
        if self.sync_out.is_some() && u.old != u.new {
            self.tell_peers::<A>(id);
        }
        if let Some(c) = self.fam.of::<A>().conns.get(id) {
            self.stats.gauge(RealSlot(c.real())).moved(u.activity);
            match (was_half_open, half_open(c)) {
                (false, true) => self.stats.half_open.add(1),
                (true, false) => self.stats.half_open.sub(1),
                _ => {}
            }
        }
    }

    fn remove<A: Family>(&mut self, id: ConnId) {
        if let Some(c) = self.fam.of_mut::<A>().conns.remove(id) {
            self.stats.gauge(RealSlot(c.real())).closed(c.is_active());
            if half_open(&c) {
                self.stats.half_open.sub(1);
            }
            if c.fwd() == Forward::FullNat {
                self.stats.local_ports_in_use.sub(1);
            }
        }
    }

    fn count_in<A: Family>(&self, service: ServiceSlot, real: RealSlot, p: &Packet<A>) {
        let len = p.total_len as u64;
        self.stats.service(service).count_in(len);
        self.stats.real(real).count_in(len);
    }

    fn forward_to_real<A: Family>(
        &mut self,
        snap: &Snapshot,
        frame: &mut [u8],
        p: &Packet<A>,
        real: A::Socket,
        fwd: Forward,
        now_ms: u64,
    ) -> Action {
        match fwd {
            Forward::Nat => {
                if !nat::decrement_ttl(frame, p) {
                    return self.expired::<A>(snap, frame, p, now_ms);
                }
                nat::rewrite_destination(frame, p, real.addr(), real.port_number());
                self.route(snap, frame, real.addr(), now_ms)
            }
            Forward::Dr => {
                // Direct routing: the packet is unchanged but for its MACs
                // (the TTL too: the real is the destination, as under
                // IPVS), but a TTL of 0 is on no legal packet (found by
                // fuzzing); the real must be on a connected prefix.
                if p.ttl == 0 {
                    return self.expired::<A>(snap, frame, p, now_ms);
                }
                let Some(port) = A::routes(snap).is_connected(real.addr()) else {
                    return Action::Drop(DropReason::NoRoute);
                };
                self.resolve(snap, frame, port, real.addr(), now_ms)
            }
            Forward::Ipip | Forward::Gue => {
                self.tunnel_to_real(snap, frame, p, real.addr(), fwd, now_ms)
            }
            // Full NAT needs the connection's local address: see
            // forward_conn (a packet without an entry never gets here).
            Forward::FullNat => Action::Drop(DropReason::TableFull),
        }
    }

    /// Forwards a packet of connection `c` (`id`) to its real, as its
    /// method says, with the PROXY protocol's header or shift where it has one
    /// (the way of full NAT and of the header; the others take
    /// `forward_to_real` straight).
    fn forward_conn<A: Family>(
        &mut self,
        snap: &Snapshot,
        frame: &mut [u8],
        p: &Packet<A>,
        id: ConnId,
        c: &Conn<A>,
        now_ms: u64,
    ) -> Action {
        let (real, fwd) = (c.real_addr(), c.fwd());
        let action = if fwd == Forward::FullNat {
            self.full_nat_to_real(snap, frame, p, c.local(), real, now_ms)
        } else {
            self.forward_to_real(snap, frame, p, real, fwd, now_ms)
        };
        let header = c.flags().contains(ConnFlags::PROXY_HEADER);
        let leaves = matches!(action, Action::Forward { .. } | Action::Hold { .. });
        let mtu = usize::from(snap.tunnel.mtu);
        if header && leaves && !self.proxy_header_to_real(frame, p, id, c, mtu) {
            self.insert = None;
            return Action::Drop(DropReason::TooBigForProxyHeader);
        }
        action
    }

    /// Full NAT towards the real: from LIP:lport to RIP:rport.
    fn full_nat_to_real<A: Family>(
        &mut self,
        snap: &Snapshot,
        frame: &mut [u8],
        p: &Packet<A>,
        local: A::Socket,
        real: A::Socket,
        now_ms: u64,
    ) -> Action {
        if !nat::decrement_ttl(frame, p) {
            return self.expired::<A>(snap, frame, p, now_ms);
        }
        nat::rewrite_source(frame, p, local.addr(), local.port_number());
        nat::rewrite_destination(frame, p, real.addr(), real.port_number());
        self.route(snap, frame, real.addr(), now_ms)
    }

    /// A reply towards the client: from VIP:vport, and under full NAT
    /// to the `client` (CIP:cport) instead of the local address.
    fn forward_to_client<A: Family>(
        &mut self,
        snap: &Snapshot,
        frame: &mut [u8],
        p: &Packet<A>,
        vip: A::Socket,
        client: Option<A::Socket>,
        now_ms: u64,
    ) -> Action {
        if !nat::decrement_ttl(frame, p) {
            return self.expired::<A>(snap, frame, p, now_ms);
        }
        nat::rewrite_source(frame, p, vip.addr(), vip.port_number());
        let to = match client {
            Some(c) => {
                nat::rewrite_destination(frame, p, c.addr(), c.port_number());
                c.addr()
            }
            None => p.dst,
        };
        self.route(snap, frame, to, now_ms)
    }

    fn route<A: Family>(
        &mut self,
        snap: &Snapshot,
        frame: &mut [u8],
        dst: A,
        now_ms: u64,
    ) -> Action {
        let Some(nh) = A::routes(snap).lookup(dst) else {
            return Action::Drop(DropReason::NoRoute);
        };
        self.resolve(snap, frame, nh.port, nh.via, now_ms)
    }

    fn resolve<A: Family>(
        &mut self,
        snap: &Snapshot,
        frame: &mut [u8],
        port: usize,
        via: A,
        now_ms: u64,
    ) -> Action {
        match self.fam.of_mut::<A>().neigh.lookup(via, now_ms) {
            Some(mac) => {
                ethernet::set_macs(frame, mac, snap.ports[port].mac);
                Action::Forward { port }
            }
            None => Action::Hold {
                port,
                next_hop: A::next_hop(via),
            },
        }
    }
}

/// Why a connection could not be opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unopened {
    /// Its key, or the reply key its real would answer to, is taken.
    Exists,
    /// The table has no room (or the template is gone).
    Full,
    /// Full NAT: this worker has no local port free towards the real.
    NoLocalPort,
}

impl From<InsertError> for Unopened {
    fn from(e: InsertError) -> Unopened {
        match e {
            InsertError::Exists => Unopened::Exists,
            _ => Unopened::Full,
        }
    }
}

/// Whether a packet from (or about) `addr` came in on the port the route
/// table reaches `addr` through: replies come from the reals' side.
#[inline]
fn arrived_from_side_of<A: Family>(snap: &Snapshot, addr: A, rx_port: usize) -> bool {
    A::routes(snap)
        .lookup(addr)
        .is_some_and(|nh| nh.port == rx_port)
}

/// Whether `c` is half-open: a TCP connection in SYN_RECV whose client
/// has not completed the handshake, and not proxied (what a SYN flood
/// leaves behind). The real's SYN-ACK does not end it: a NAT real answers
/// a spoofed SYN too, through us, as Linux counts a request socket in its
/// SYN queue whether or not the SYN-ACK went out.
#[inline]
fn half_open<A: sluice_model::IpAddress>(c: &Conn<A>) -> bool {
    // (A peer's copy is not this appliance's handshake.)
    c.state() == ConnState::Tcp(TcpState::SynRecv)
        && !c.flags().contains(ConnFlags::SYN_PROXY)
        && !c.flags().contains(ConnFlags::SYNCED)
}

/// The service and real slots connection `c` records.
#[inline(always)]
fn slots_of<A: sluice_model::IpAddress>(c: &Conn<A>) -> (ServiceSlot, RealSlot) {
    (ServiceSlot(c.service() as u16), RealSlot(c.real()))
}

/// Which way the packet an ICMP error quotes went.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Quoted {
    /// Client to real (the error is about a request; looked up by its
    /// reply key).
    Outbound,
    /// VIP to client (the error is about a reply; looked up by the
    /// client's key).
    Inbound,
}

/// What an ICMP error's connection says about where to send it.
struct QuotedConn<A: sluice_model::IpAddress> {
    id: ConnId,
    proxied: bool,
    vip: A::Socket,
    real_addr: A::Socket,
    fwd: Forward,
    client: A::Socket,
    /// LIP:lport under full NAT (else the client's).
    local: A::Socket,
    /// Its flags (`PROXY_HEADER`: the real gets the PROXY protocol header).
    flags: ConnFlags,
}

/// The transport protocol of the packet an ICMP error quotes (TCP or UDP).
fn quoted_proto<A>(e: &IcmpError<A>) -> Protocol {
    if e.inner_proto == ipv4::PROTO_TCP {
        Protocol::Tcp
    } else {
        Protocol::Udp
    }
}

/// The hash a client-side flow (client -> VIP:vport) is remembered by in
/// [`Tableless`].
#[inline]
fn flow_hash<A: Family>(t: Tuple<A>) -> u64 {
    let d = t.dst.addr().to_bits();
    let dst = (d as u64) ^ ((d >> 64) as u64);
    let service = (dst << 24) ^ (u64::from(t.dst.port_number()) << 8) ^ u64::from(t.proto.number());
    A::client_hash(
        DEFAULT_SEED ^ service.wrapping_mul(0x9e37_79b9_7f4a_7c15),
        t.src.addr(),
        Some(t.src.port_number()),
    )
}

/// The client hash hash-based schedulers (sh, mh) read; 0 for the others.
#[inline]
fn client_hash<A: Family>(svc: &VirtualService<A>, t: Tuple<A>) -> u64 {
    if svc.schedule.kind().needs_hash() {
        A::client_hash(DEFAULT_SEED, t.src.addr(), None)
    } else {
        0
    }
}

/// Whether an IPv6 packet is the port's own to answer: neighbour
/// discovery, and echo to one of its addresses or VIPs.
#[inline]
fn for_the_port6(p: &Packet<Ipv6Addr>, port: &crate::snapshot::PortView) -> bool {
    match p.icmp {
        Some(i) => {
            (icmpv6::TYPE_ROUTER_SOLICIT..=icmpv6::TYPE_REDIRECT).contains(&i.ty)
                || (i.ty == icmpv6::TYPE_ECHO_REQUEST && port.local.owns6(p.dst))
        }
        None => false,
    }
}

fn local_action(v: Verdict) -> Action {
    match v {
        Verdict::Reply(h) => Action::Reply(h),
        Verdict::Consumed(h) => Action::Consumed(h),
        Verdict::Drop(r) => Action::Drop(r),
    }
}
