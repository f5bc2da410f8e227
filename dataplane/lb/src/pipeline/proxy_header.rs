//! The PROXY protocol (`proxy_protocol = "v2"`): the real learns each
//! client's address and port from a header in front of what the client
//! sends (see [`sluice_core::proxy_protocol`]).
//!
//! - UDP: every client datagram carries the header.
//! - TCP: the header goes in front of the client's first byte (its ISN
//!   plus 1, recorded from its SYN), in the first segment that carries
//!   that sequence number, and again in any retransmission of it; every
//!   later client byte moves up by the header's length, and the real's
//!   acknowledgments and SACK edges move back down. The real's SYN-ACK
//!   offers an MSS lowered by the header's length, so a full-size client
//!   segment still fits with the header in front.
//!
//! The forwarder fixes the lengths and checksums; the worker moves the
//! payload and writes the header ([`Forwarder::take_insert`]).

use super::{Family, Forwarder};
use sluice_conntrack::{ConnFlags, ConnId};
use sluice_core::flow::{IcmpError, Packet};
use sluice_core::handshake;
use sluice_core::proxy_protocol::{self as pp, Header, Lengths, Placement, Shift};
use sluice_core::wire::{ipv4, l4};
use sluice_model::{IpAddress, SocketAddress};
use std::net::IpAddr;

/// A header the worker puts into the frame at `at` (moving what follows).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insert {
    /// Offset in the frame.
    pub at: usize,
    /// The header.
    pub header: Header,
}

impl Insert {
    /// Puts the header into `grown`, the frame already grown at its end
    /// by the header's length: what follows `at` moves up.
    pub fn apply(&self, grown: &mut [u8]) {
        let n = self.header.len();
        let end = grown.len() - n;
        grown.copy_within(self.at..end, self.at + n);
        grown[self.at..self.at + n].copy_from_slice(self.header.bytes());
    }
}

/// The v2 header of a flow from `client` to `vip`.
fn header_of<S: SocketAddress>(stream: bool, client: S, vip: S) -> Header {
    let (c, v) = (client.addr().to_ip(), vip.addr().to_ip());
    let (cp, vp) = (client.port_number(), vip.port_number());
    match (c, v) {
        (IpAddr::V4(c), IpAddr::V4(v)) => pp::v2(stream, (&c.octets(), cp), (&v.octets(), vp)),
        (c, v) => {
            let six = |a: IpAddr| match a {
                IpAddr::V6(a) => a.octets(),
                IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
            };
            pp::v2(stream, (&six(c), cp), (&six(v), vp))
        }
    }
}

impl Forwarder {
    /// The header the worker must put into the frame just processed.
    pub fn take_insert(&mut self) -> Option<Insert> {
        self.insert.take()
    }

    /// The sequence shift of connection `id`'s stream, whose header is
    /// `len` bytes.
    fn stream_shift<A: Family>(&self, id: ConnId, len: u32) -> Shift {
        let t = self.fam.of::<A>();
        let acked = t
            .conns
            .get(id)
            .is_some_and(|c| c.flags().contains(ConnFlags::HEADER_ACKED));
        Shift {
            s0: t
                .stream_starts
                .get(id.as_u32() as usize)
                .copied()
                .unwrap_or(0),
            len,
            acked,
        }
    }

    /// A new connection of a service with the PROXY protocol: flagged,
    /// and for TCP its first client byte recorded from the SYN.
    pub(super) fn start_proxy_header<A: Family>(
        &mut self,
        frame: &[u8],
        p: &Packet<A>,
        id: ConnId,
    ) {
        let t = self.fam.of_mut::<A>();
        t.conns.mark(id, ConnFlags::PROXY_HEADER);
        if p.proto == ipv4::PROTO_TCP {
            let s0 = pp::seq(&frame[p.l4..]).wrapping_add(1);
            if let Some(x) = t.stream_starts.get_mut(id.as_u32() as usize) {
                *x = s0;
            }
        }
    }

    /// A client packet of connection `id`, flagged `PROXY_HEADER`, on its
    /// way to the real: the header in front, or its sequence number
    /// shifted. False: it would not fit `mtu` (the path to the reals) once
    /// grown (or is a first fragment, whose datagram cannot grow).
    pub(super) fn proxy_header_to_real<A: Family>(
        &mut self,
        frame: &mut [u8],
        p: &Packet<A>,
        id: ConnId,
        mtu: usize,
    ) -> bool {
        let t = self.fam.of::<A>();
        let Some(c) = t.conns.get(id) else {
            return true;
        };
        let tcp = p.proto == ipv4::PROTO_TCP;
        let header = header_of(tcp, c.client(), c.vip());
        let seg_at = p.l4;
        let payload_at = if tcp {
            let shift = self.stream_shift::<A>(id, header.len() as u32);
            let seg = &mut frame[p.l4..p.ip_end()];
            let syn = seg[13] & l4::TCP_SYN != 0;
            match shift.place(pp::seq(seg), syn) {
                Placement::AsItIs => return true,
                Placement::Shifted(s) => {
                    pp::set_seq(seg, s);
                    return true;
                }
                Placement::HeaderInFront if seg[13] & l4::TCP_RST != 0 => {
                    // A reset carries no data: it follows the header.
                    pp::set_seq(seg, shift.s0.wrapping_add(shift.len));
                    return true;
                }
                Placement::HeaderInFront => seg_at + l4::tcp_header_len(seg),
            }
        } else {
            seg_at + l4::UDP_HEADER_LEN
        };
        if p.is_fragment || self.first_fragment {
            return false;
        }
        if p.ip_end() - p.l3 + header.len() > mtu {
            return false;
        }
        let v4 = A::HEADER_CHECKSUM.is_some();
        let lengths = Lengths {
            ip_len: p.l3 + if v4 { 2 } else { 4 },
            ip_checksum: A::HEADER_CHECKSUM.map(|o| p.l3 + o),
            l4: p.l4,
            udp: !tcp,
        };
        pp::grow_segment(frame, lengths, header.bytes());
        self.insert = Some(Insert {
            at: payload_at,
            header,
        });
        self.stats.proxy_headers_sent.add(1);
        true
    }

    /// An ICMP error on its way to the client of connection `id`, flagged
    /// `PROXY_HEADER`, quoting one of its segments as the real got it:
    /// the quoted sequence number goes back to the client's own (as the
    /// real's acknowledgments do), or the client's stack, which checks it
    /// against what it sent, would ignore the error.
    pub(super) fn proxy_header_quote_to_client<A: Family>(
        &self,
        frame: &mut [u8],
        p: &Packet<A>,
        e: &IcmpError<A>,
        id: ConnId,
    ) {
        let seq_at = e.inner_l4 + 4;
        if e.inner_proto != ipv4::PROTO_TCP || e.inner_is_later_fragment || e.inner_l4_len < 8 {
            return;
        }
        let v4 = A::HEADER_CHECKSUM.is_some();
        let shift = self.stream_shift::<A>(id, if v4 { 28 } else { 52 });
        let seq = u32::from_be_bytes([
            frame[seq_at],
            frame[seq_at + 1],
            frame[seq_at + 2],
            frame[seq_at + 3],
        ]);
        let delta = seq.wrapping_sub(shift.to_client(seq));
        if delta != 0 {
            handshake::unshift_quoted_seq(frame, p, e, delta);
        }
    }

    /// A real's TCP segment of connection `id`, flagged `PROXY_HEADER`, on
    /// its way to the client: its acknowledgment and SACK edges mapped
    /// back past the header (and the connection marked once the header is
    /// acknowledged), and a SYN-ACK's MSS lowered by the header's length,
    /// and below what `mtu` (the path to the reals) leaves, so a full-size
    /// client segment still fits with the header in front.
    pub(super) fn proxy_header_to_client<A: Family>(
        &mut self,
        frame: &mut [u8],
        p: &Packet<A>,
        id: ConnId,
        mtu: usize,
    ) {
        if p.proto != ipv4::PROTO_TCP || p.is_fragment {
            return;
        }
        let v4 = A::HEADER_CHECKSUM.is_some();
        let len = if v4 { 28 } else { 52 };
        let shift = self.stream_shift::<A>(id, len);
        let seg = &mut frame[p.l4..p.ip_end()];
        let ack = u32::from_be_bytes([seg[8], seg[9], seg[10], seg[11]]);
        if !shift.acked && seg[13] & l4::TCP_ACK != 0 && shift.acknowledges_header(ack) {
            self.fam
                .of_mut::<A>()
                .conns
                .mark(id, ConnFlags::HEADER_ACKED);
        }
        pp::map_acks(seg, |a| shift.to_client(a));
        if seg[13] & l4::TCP_SYN != 0 {
            let headers = if v4 { 20 + 20 } else { 40 + 20 };
            let cap = mtu.saturating_sub(headers + len as usize).min(0xffff) as u16;
            pp::lower_mss(seg, len as u16, cap);
        }
    }
}
