//! The SYN proxy's part of the [`Forwarder`]: a SYN answered with a
//! cookie, the client's ACK that proves its address opening the
//! connection to a real, the real's SYN-ACK completing it, and the
//! sequence translation of every packet after (see
//! [`crate::synproxy`] and [`sluice_core::handshake`]).

use super::{Action, Forwarder, Tuple, Unopened};
use crate::model::VirtualService;
use crate::snapshot::Snapshot;
use crate::synproxy::{Link, MAX_TIME_WAIT_RESETS, OFFERED_WSCALE, SYN_RESEND_MS};
use sluice_conntrack::{ConnFlags, ConnId, Dir, Forward, TcpFlags};
use sluice_core::flow::{IcmpError, Packet};
use sluice_core::handshake::{self, SynAckOptions, SynToReal, SYN_LEN};
use sluice_core::local::Handled;
use sluice_core::syn_cookie::{CookieFlow, CookieOptions, SynOptions};
use sluice_core::wire::l4;
use sluice_core::DropReason;
use std::net::{Ipv4Addr, SocketAddrV4};

/// Most SYNs to reals queued between two calls of
/// [`Forwarder::take_syns`].
pub const SYN_OUTBOX: usize = 64;

fn flow_of(t: Tuple) -> CookieFlow {
    CookieFlow {
        client: t.src,
        service: t.dst,
    }
}

impl Forwarder {
    /// Hands each SYN to a real queued since the last call to `send` (what
    /// to do with it: `Forward` with its MACs set, or `Hold` until its
    /// next hop is resolved; the frame), then forgets them.
    pub fn take_syns(&mut self, mut send: impl FnMut(Action, &[u8])) {
        for (a, frame) in &self.syns_out {
            send(*a, frame);
        }
        self.syns_out.clear();
    }

    /// Handshakes with reals completed so far (the worker retries its
    /// parked packets when this moves).
    pub fn handshakes_completed(&self) -> u64 {
        self.synproxy.completions()
    }

    /// Whether a new connection's SYN to `svc` is answered with a cookie.
    #[inline]
    pub(super) fn proxies(&mut self, svc: &VirtualService, now_ms: u64) -> bool {
        let half_open = self.stats.half_open.get();
        self.synproxy.applies(svc.syn_proxy, half_open, now_ms)
    }

    /// Answers the client's SYN `p` with a SYN-ACK carrying a cookie, in
    /// place: nothing is remembered.
    pub(super) fn answer_with_cookie(
        &mut self,
        snap: &Snapshot,
        frame: &mut [u8],
        p: &Packet,
        t: Tuple,
        now_ms: u64,
    ) -> Action {
        let opts = SynOptions::parse(&frame[p.l4..p.ip_end()]);
        let isn = handshake::seq(frame, p);
        let cookie = self.synproxy.cookie(flow_of(t), isn, opts, now_ms);
        let offer = SynAckOptions {
            mss: opts.rounded().mss,
            wscale: opts.wscale.map(|_| OFFERED_WSCALE),
        };
        let mac = snap.ports[self.rx_port].mac;
        handshake::answer_syn(frame, p, cookie, offer, mac);
        self.stats.syn_cookies_sent.add(1);
        Action::Reply(Handled::SynCookie)
    }

    /// An ACK without an entry to a proxied service: if it acknowledges a
    /// valid cookie, the connection to a real is opened; `None` lets the
    /// packet go on as any other without an entry.
    pub(super) fn cookie_ack(
        &mut self,
        snap: &Snapshot,
        svc: &VirtualService,
        frame: &mut [u8],
        p: &Packet,
        t: Tuple,
        now_ms: u64,
    ) -> Option<Action> {
        let handshake_ack = p.tcp_flags & (l4::TCP_ACK | l4::TCP_SYN | l4::TCP_RST) == l4::TCP_ACK;
        if !handshake_ack || !self.l4_checksum_ok(frame, p) {
            return None;
        }
        let isn = handshake::seq(frame, p).wrapping_sub(1);
        let cookie = handshake::ack(frame, p).wrapping_sub(1);
        let Some(opts) = self.synproxy.check(flow_of(t), isn, cookie, now_ms) else {
            self.stats.syn_cookies_invalid.add(1);
            return None;
        };
        self.stats.syn_cookies_valid.add(1);
        let link = Link {
            cookie,
            client_isn: isn,
            delta: 0,
            syn_sent_ms: now_ms as u32,
            client_window: handshake::window(frame, p),
            mss: opts.mss,
            client_ws: opts.wscale,
            offered_ws: opts.wscale.map(|_| OFFERED_WSCALE),
            real_ws: None,
            pending: true,
            resets: 0,
        };
        Some(self.open_proxied(snap, svc, frame, p, t, link, now_ms))
    }

    /// Schedules the proxied connection of `t` and sends its real the SYN;
    /// the ACK is used up, or parked when it carries data.
    #[allow(clippy::too_many_arguments)]
    fn open_proxied(
        &mut self,
        snap: &Snapshot,
        svc: &VirtualService,
        frame: &mut [u8],
        p: &Packet,
        t: Tuple,
        link: Link,
        now_ms: u64,
    ) -> Action {
        let Some((pos, template, fresh)) = self.schedule(svc, t, now_ms) else {
            return Action::Drop(DropReason::NoRealAvailable);
        };
        let fresh_template = template.filter(|_| fresh);
        let opened = if svc.reals[pos].fwd == Forward::Nat {
            self.open(svc, t, pos, template, now_ms)
        } else {
            Err(Unopened::Full)
        };
        let (pos, id) = match opened {
            Ok(id) => (pos, id),
            Err(e) => {
                if let Some(tid) = fresh_template {
                    self.fam.v4.conns.templates_mut().remove(tid);
                }
                // The reply key is taken (this client port reaches the
                // same real through another VIP): another real, as for a
                // connection that is not proxied.
                let other = (e == Unopened::Exists)
                    .then(|| self.pick_clash_free(svc, t))
                    .flatten()
                    .and_then(|pos| {
                        self.open(svc, t, pos, None, now_ms)
                            .ok()
                            .map(|id| (pos, id))
                    });
                match other {
                    Some(x) => x,
                    None => {
                        return Action::Drop(match e {
                            Unopened::Exists => DropReason::ReplyKeyClash,
                            _ if svc.reals[pos].fwd != Forward::Nat => DropReason::NoRealAvailable,
                            _ => DropReason::TableFull,
                        })
                    }
                }
            }
        };
        let r = &svc.reals[pos];
        // Flagged before its first update: a proxied connection is never
        // half-open (its client has proven its address).
        self.fam.v4.conns.mark(id, ConnFlags::SYN_PROXY);
        self.update::<Ipv4Addr>(id, Dir::Inbound, TcpFlags::SYN, now_ms);
        self.synproxy.set_link(id, link);
        let (real, slot) = (r.addr, r.slot);
        self.stats.service(svc.slot).connections.add(1);
        self.stats.real(slot).connections.add(1);
        self.count_in(svc.slot, slot, p);
        self.send_syn(snap, t.src, real, &link, p.ttl, now_ms);
        self.after_handshake_ack(frame, p)
    }

    /// Queues the SYN of a proxied connection to its real.
    fn send_syn(
        &mut self,
        snap: &Snapshot,
        client: SocketAddrV4,
        real: SocketAddrV4,
        link: &Link,
        ttl: u8,
        now_ms: u64,
    ) {
        if self.syns_out.len() >= SYN_OUTBOX {
            return;
        }
        let s = SynToReal {
            client,
            real,
            isn: link.client_isn,
            window: handshake::rescale(link.client_window, link.client_ws.unwrap_or(0), 0),
            ttl: ttl.saturating_sub(1).max(1),
            opts: CookieOptions {
                mss: link.mss,
                wscale: link.client_ws,
            },
        };
        let mut out = [0u8; SYN_LEN];
        handshake::write_syn(&s, &mut out);
        let a = self.route(snap, &mut out, *real.ip(), now_ms);
        if matches!(a, Action::Forward { .. } | Action::Hold { .. }) {
            self.syns_out.push((a, out));
        }
    }

    /// What becomes of a client packet that the real cannot take yet: one
    /// with data (or a FIN) is parked until the handshake completes, an
    /// empty ACK has nothing to deliver.
    fn after_handshake_ack(&self, frame: &[u8], p: &Packet) -> Action {
        if handshake::payload_len(frame, p) > 0 || p.tcp_flags & l4::TCP_FIN != 0 {
            Action::Park
        } else {
            Action::Consumed(Handled::Handshake)
        }
    }

    /// A client packet of proxied connection `id` whose real has not
    /// answered yet: the SYN goes again when it has been a while; a reset
    /// ends the connection.
    pub(super) fn pending_from_client(
        &mut self,
        snap: &Snapshot,
        frame: &[u8],
        p: &Packet,
        id: ConnId,
        mut link: Link,
        now_ms: u64,
    ) -> Action {
        if p.tcp_flags & l4::TCP_RST != 0 {
            self.remove::<Ipv4Addr>(id);
            return Action::Drop(DropReason::HandshakePending);
        }
        let since = (now_ms as u32).wrapping_sub(link.syn_sent_ms);
        if u64::from(since) >= SYN_RESEND_MS {
            if let Some(c) = self.fam.v4.conns.get(id).copied() {
                link.syn_sent_ms = now_ms as u32;
                self.synproxy.set_link(id, link);
                self.send_syn(snap, c.client(), c.real_addr(), &link, p.ttl, now_ms);
            }
        }
        match self.after_handshake_ack(frame, p) {
            Action::Park => Action::Park,
            _ => Action::Drop(DropReason::HandshakePending),
        }
    }

    /// A client packet of an established proxied connection: its
    /// acknowledgment moved into the real's sequence space, its window
    /// into the real's scale.
    #[inline]
    pub(super) fn translate_to_real(&self, frame: &mut [u8], p: &Packet, link: &Link) {
        handshake::shift_ack(frame, p, link.delta);
        if let Some(w) = link.window_to_real(handshake::window(frame, p)) {
            handshake::set_window(frame, p, w);
        }
    }

    /// A packet from the real of proxied connection `id`. While the
    /// handshake pends, only the answer to the appliance's SYN is taken:
    /// a SYN-ACK completes it, a reset refuses the connection and goes
    /// to the client. After, sequence numbers move into the cookie's
    /// space and windows into the client's scale; `None`: forward it.
    pub(super) fn proxied_from_real(
        &mut self,
        snap: &Snapshot,
        frame: &mut [u8],
        p: &Packet,
        id: ConnId,
        now_ms: u64,
    ) -> Option<Action> {
        let mut link = self.synproxy.link(id);
        let syn_ack = p.tcp_flags & (l4::TCP_SYN | l4::TCP_ACK) == l4::TCP_SYN | l4::TCP_ACK;
        if syn_ack {
            // The answer to our SYN (again, if our ACK was lost).
            return Some(self.complete_handshake(snap, frame, p, id, link, now_ms));
        }
        if link.pending {
            if p.tcp_flags & l4::TCP_RST == 0 {
                return Some(self.unacceptable_answer(snap, frame, p, id, link, now_ms));
            }
            // A refusal: the client hears it as from the VIP, in its
            // sequence space.
            link.delta = link
                .cookie
                .wrapping_add(1)
                .wrapping_sub(handshake::seq(frame, p));
        }
        handshake::shift_seq(frame, p, link.delta);
        let w = link.window_to_client(handshake::window(frame, p));
        if w != handshake::window(frame, p) {
            handshake::set_window(frame, p, w);
        }
        None
    }

    /// A segment from the real that is neither a SYN-ACK nor a reset while
    /// our SYN pends. A bare ACK is how a TIME_WAIT of the same addresses
    /// and ports answers a SYN it finds too old (the client's port last
    /// reached this real through another VIP, say): as the client's stack
    /// would, the appliance resets it, which ends the TIME_WAIT, and sends
    /// the SYN again at once, a few times at most. Anything else waits.
    fn unacceptable_answer(
        &mut self,
        snap: &Snapshot,
        frame: &mut [u8],
        p: &Packet,
        id: ConnId,
        mut link: Link,
        now_ms: u64,
    ) -> Action {
        // A TIME_WAIT acknowledges the end of the old connection, never
        // our SYN.
        let time_wait = p.tcp_flags & (l4::TCP_ACK | l4::TCP_SYN | l4::TCP_FIN) == l4::TCP_ACK
            && handshake::ack(frame, p) != link.client_isn.wrapping_add(1);
        if !time_wait || link.resets >= MAX_TIME_WAIT_RESETS || !self.l4_checksum_ok(frame, p) {
            return Action::Drop(DropReason::HandshakePending);
        }
        let Some(c) = self.fam.v4.conns.get(id).copied() else {
            return Action::Drop(DropReason::NoConnection);
        };
        link.resets += 1;
        link.syn_sent_ms = now_ms as u32;
        self.synproxy.set_link(id, link);
        let mac = snap.ports[self.rx_port].mac;
        handshake::reset_to_real(frame, p, c.client(), mac);
        self.send_syn(
            snap,
            c.client(),
            c.real_addr(),
            &link,
            handshake::TTL,
            now_ms,
        );
        Action::Reply(Handled::Handshake)
    }

    /// The real's SYN-ACK: the connection's sequence delta is learned and
    /// the real gets the ACK that completes its handshake.
    fn complete_handshake(
        &mut self,
        snap: &Snapshot,
        frame: &mut [u8],
        p: &Packet,
        id: ConnId,
        mut link: Link,
        now_ms: u64,
    ) -> Action {
        if handshake::ack(frame, p) != link.client_isn.wrapping_add(1) {
            return Action::Drop(DropReason::HandshakePending);
        }
        if !self.l4_checksum_ok(frame, p) {
            return Action::Drop(DropReason::BadL4Checksum);
        }
        let Some(client) = self.fam.v4.conns.get(id).map(|c| c.client()) else {
            return Action::Drop(DropReason::NoConnection);
        };
        if link.pending {
            let real_isn = handshake::seq(frame, p);
            link.delta = link.cookie.wrapping_sub(real_isn);
            link.real_ws = SynOptions::parse(&frame[p.l4..p.ip_end()]).wscale;
            link.pending = false;
            self.synproxy.set_link(id, link);
            self.update::<Ipv4Addr>(id, Dir::Outbound, TcpFlags::SYN | TcpFlags::ACK, now_ms);
            self.update::<Ipv4Addr>(id, Dir::Inbound, TcpFlags::ACK, now_ms);
            self.synproxy.completed();
            self.stats.syn_proxy_handshakes.add(1);
        }
        let window = link
            .window_to_real(link.client_window)
            .unwrap_or(link.client_window);
        let mac = snap.ports[self.rx_port].mac;
        handshake::answer_syn_ack(frame, p, client, window, mac);
        Action::Reply(Handled::Handshake)
    }

    /// An ICMP error quoting a reply of proxied connection `id`, on its
    /// way to the real: the quoted sequence number goes back to the real's
    /// own, which the real checks before it believes the error (path MTU
    /// discovery depends on it).
    pub(super) fn unshift_quote(&self, frame: &mut [u8], p: &Packet, e: &IcmpError, id: ConnId) {
        let link = self.synproxy.link(id);
        if !link.pending {
            handshake::unshift_quoted_seq(frame, p, e, link.delta);
        }
    }
}
