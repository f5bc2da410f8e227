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
use sluice_conntrack::{Conn, ConnFlags, ConnId};
use sluice_core::flow::{IcmpError, Packet};
use sluice_core::handshake;
use sluice_core::proxy_protocol::{self as pp, Header, Lengths, Placement, Shift};
use sluice_core::wire::{ipv4, l4};
use sluice_model::SocketAddress;

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

/// The v2 header of a flow of family `A` from `client` to `vip`.
fn header_of<A: Family>(stream: bool, client: A::Socket, vip: A::Socket) -> Header {
    let (mut c, mut v) = ([0u8; 16], [0u8; 16]);
    client.addr().write(&mut c);
    vip.addr().write(&mut v);
    pp::v2(
        stream,
        (&c[..A::LEN], client.port_number()),
        (&v[..A::LEN], vip.port_number()),
    )
}

/// The length of family `A`'s header (28 bytes for IPv4, 52 for IPv6).
fn header_len<A: Family>() -> u32 {
    pp::v2_len(A::LEN) as u32
}

impl Forwarder {
    /// The header the worker must put into the frame just processed.
    pub fn take_insert(&mut self) -> Option<Insert> {
        self.insert.take()
    }

    /// The sequence shift of connection `id`'s stream, whose flags are
    /// `flags`.
    fn stream_shift<A: Family>(&self, id: ConnId, flags: ConnFlags) -> Shift {
        let starts = &self.fam.of::<A>().stream_starts;
        Shift {
            s0: starts.get(id.as_u32() as usize).copied().unwrap_or(0),
            len: header_len::<A>(),
            acked: flags.contains(ConnFlags::HEADER_ACKED),
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

    /// A client packet of connection `c` (`id`), flagged `PROXY_HEADER`,
    /// on its way to the real: the header in front, or its sequence number
    /// shifted. False: it would not fit `mtu` (the path to the reals) once
    /// grown (or is a first fragment, whose datagram cannot grow).
    pub(super) fn proxy_header_to_real<A: Family>(
        &mut self,
        frame: &mut [u8],
        p: &Packet<A>,
        id: ConnId,
        c: &Conn<A>,
        mtu: usize,
    ) -> bool {
        let tcp = p.proto == ipv4::PROTO_TCP;
        let payload_at = if tcp {
            let shift = self.stream_shift::<A>(id, c.flags());
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
                Placement::HeaderInFront => p.l4 + l4::tcp_header_len(seg),
            }
        } else {
            p.l4 + l4::UDP_HEADER_LEN
        };
        let len = header_len::<A>() as usize;
        if p.is_fragment || self.first_fragment || p.ip_end() - p.l3 + len > mtu {
            return false;
        }
        let header = header_of::<A>(tcp, c.client(), c.vip());
        let lengths = Lengths {
            ip_len: p.l3 + if A::HEADER_CHECKSUM.is_some() { 2 } else { 4 },
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

    /// An ICMP error on its way to the client of connection `id` (flags
    /// `flags`, `PROXY_HEADER` among them), quoting one of its segments as
    /// the real got it:
    /// the quoted sequence number goes back to the client's own (as the
    /// real's acknowledgments do), or the client's stack, which checks it
    /// against what it sent, would ignore the error.
    pub(super) fn proxy_header_quote_to_client<A: Family>(
        &self,
        frame: &mut [u8],
        p: &Packet<A>,
        e: &IcmpError<A>,
        id: ConnId,
        flags: ConnFlags,
    ) {
        let seq_at = e.inner_l4 + 4;
        if e.inner_proto != ipv4::PROTO_TCP || e.inner_is_later_fragment || e.inner_l4_len < 8 {
            return;
        }
        let shift = self.stream_shift::<A>(id, flags);
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

    /// A real's TCP segment of connection `id` (flags `flags`,
    /// `PROXY_HEADER` among them), on its way to the client: its acknowledgment and SACK edges mapped
    /// back past the header (and the connection marked once the header is
    /// acknowledged), and a SYN-ACK's MSS lowered by the header's length,
    /// and below what `mtu` (the path to the reals) leaves, so a full-size
    /// client segment still fits with the header in front.
    pub(super) fn proxy_header_to_client<A: Family>(
        &mut self,
        frame: &mut [u8],
        p: &Packet<A>,
        id: ConnId,
        flags: ConnFlags,
        mtu: usize,
    ) {
        if p.proto != ipv4::PROTO_TCP || p.is_fragment {
            return;
        }
        let shift = self.stream_shift::<A>(id, flags);
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
            // What the MTU leaves for the payload of a segment grown by
            // the header (an MSS counts no TCP option: RFC 9293 3.7.1).
            let headers = p.l4 - p.l3 + l4::TCP_MIN_HEADER_LEN;
            let cap = mtu.saturating_sub(headers + shift.len as usize).min(0xffff) as u16;
            pp::lower_mss(seg, shift.len as u16, cap);
        }
    }
}
