//! The PROXY protocol, version 2 (HAProxy's specification, "binary
//! header format"): a header put in front of what a client sends, so a
//! real behind NAT or full NAT learns the client's address and port.
//!
//! - [`v2`] writes the header: TCP (`STREAM`) or UDP (`DGRAM`) over IPv4
//!   (28 bytes) or IPv6 (52), from the client's address and port to the
//!   one it connected to (the VIP).
//! - A TCP stream's header goes in front of the client's first byte, so
//!   everything the client sends after it moves up by the header's length
//!   in the real's sequence space. [`Shift`] says where a client segment
//!   goes (header in front, shifted, or as it is), and maps the real's
//!   acknowledgments (and SACK blocks, [`map_acks`]) back.
//! - [`grow_segment`] fixes the IP and transport lengths and checksums of
//!   a packet for bytes put in front of its payload, before the bytes are
//!   in place; the caller moves the payload and writes them.
//! - [`lower_mss`] lowers the MSS a SYN offers by the header's length, so the
//!   client's full-size segments, grown by the header, still fit the real's.
//!
//! Version 1 (text) is not written: its length depends on the addresses
//! and is often odd, which would move the payload by an odd number of
//! bytes and change its checksum's word alignment.

use crate::wire::{checksum, l4};

/// The v2 signature, the first 12 bytes of every header.
pub const V2_SIGNATURE: [u8; 12] = [
    0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
];

/// The longest header written: IPv6 (16 + 36 bytes).
pub const MAX_LEN: usize = 52;

/// A header, ready to put in front of a payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    bytes: [u8; MAX_LEN],
    len: u8,
}

impl Header {
    /// Its bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// Its length: 28 (IPv4) or 52 (IPv6), even either way.
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// Never: a header has its signature at least.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// The length of a v2 header whose addresses are `addr_len` bytes long
/// (4, IPv4: 28; 16, IPv6: 52).
pub const fn v2_len(addr_len: usize) -> usize {
    16 + 2 * addr_len + 4
}

/// The v2 header of a connection (`stream`, TCP) or datagram (UDP) from
/// `client` to `to` (the address the client sent to: the VIP), both of
/// one family: 4-byte addresses (IPv4) or 16-byte ones (IPv6).
pub fn v2(stream: bool, client: (&[u8], u16), to: (&[u8], u16)) -> Header {
    let v6 = client.0.len() == 16;
    let mut b = [0u8; MAX_LEN];
    b[..12].copy_from_slice(&V2_SIGNATURE);
    // Version 2, command PROXY.
    b[12] = 0x21;
    // Family (1 INET, 2 INET6) and transport (1 STREAM, 2 DGRAM).
    b[13] = if v6 { 0x20 } else { 0x10 } | if stream { 0x01 } else { 0x02 };
    let alen = v2_len(client.0.len()) - 16;
    b[14..16].copy_from_slice(&(alen as u16).to_be_bytes());
    let a = client.0.len();
    b[16..16 + a].copy_from_slice(client.0);
    b[16 + a..16 + 2 * a].copy_from_slice(to.0);
    b[16 + 2 * a..18 + 2 * a].copy_from_slice(&client.1.to_be_bytes());
    b[18 + 2 * a..20 + 2 * a].copy_from_slice(&to.1.to_be_bytes());
    Header {
        bytes: b,
        len: (16 + alen) as u8,
    }
}

/// Where a client's segment goes in the real's sequence space.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// Before the stream's first byte (the SYN), or before the header was
    /// needed: as it is.
    AsItIs,
    /// At the stream's first byte: the header goes in front of its payload
    /// (even an empty one), the sequence number stays. A retransmission of
    /// the first segment gets it again, the same bytes.
    HeaderInFront,
    /// After the first byte: moved up by the header's length, to this.
    Shifted(u32),
}

/// The sequence translation of a stream with a header of `len` bytes in
/// front of the client's byte `s0` (its initial sequence number plus 1).
///
/// Until the real acknowledges the header, the client's sequence numbers
/// are compared with `s0` (the client cannot be more than its window,
/// at most 1 GiB, past its first unacknowledged byte, so the comparison
/// is sound). Once it has (`acked`), no client segment can be the first
/// one again, and every number moves by the header's length whatever
/// its distance from `s0`: a stream of 2 GiB, or 4, moves the same.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shift {
    /// The client's first byte.
    pub s0: u32,
    /// The header's length.
    pub len: u32,
    /// The real has acknowledged the header.
    pub acked: bool,
}

/// Whether sequence number `a` comes after `b` (RFC 1982 arithmetic).
#[inline]
fn after(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

impl Shift {
    /// Where a client segment with sequence number `seq` goes; `syn`: it
    /// is the SYN itself.
    pub fn place(&self, seq: u32, syn: bool) -> Placement {
        if syn {
            Placement::AsItIs
        } else if self.acked {
            Placement::Shifted(seq.wrapping_add(self.len))
        } else if seq == self.s0 {
            Placement::HeaderInFront
        } else if after(seq, self.s0) {
            Placement::Shifted(seq.wrapping_add(self.len))
        } else {
            Placement::AsItIs
        }
    }

    /// Whether the real's acknowledgment `ack` covers the header.
    pub fn acknowledges_header(&self, ack: u32) -> bool {
        let end = self.s0.wrapping_add(self.len);
        after(ack, end) || ack == end
    }

    /// The client's view of the real's acknowledgment (or SACK edge)
    /// `ack`: past the header it moves down by its length; inside the
    /// header it acknowledges none of the client's bytes.
    pub fn to_client(&self, ack: u32) -> u32 {
        let end = self.s0.wrapping_add(self.len);
        if self.acked || after(ack, end) || ack == end {
            ack.wrapping_sub(self.len)
        } else if after(ack, self.s0) {
            self.s0
        } else {
            ack
        }
    }
}

fn get32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Replaces the 32-bit word at `at` of TCP segment `seg`, updating the
/// checksum.
fn set32(seg: &mut [u8], at: usize, new: u32) {
    let old = get32(seg, at);
    if old == new {
        return;
    }
    seg[at..at + 4].copy_from_slice(&new.to_be_bytes());
    let c = u16::from_be_bytes([seg[16], seg[17]]);
    let c = checksum::update32(c, old, new);
    seg[16..18].copy_from_slice(&c.to_be_bytes());
}

/// The sequence number of TCP segment `seg`.
pub fn seq(seg: &[u8]) -> u32 {
    get32(seg, 4)
}

/// Sets the sequence number of TCP segment `seg`, updating its checksum.
pub fn set_seq(seg: &mut [u8], new: u32) {
    set32(seg, 4, new);
}

/// The TCP options of `seg`: (offset, kind, length) of each, walked as
/// far as they are well formed.
fn options(seg: &[u8], mut each: impl FnMut(usize, u8, usize)) {
    let end = l4::tcp_header_len(seg).min(seg.len());
    let mut i = l4::TCP_MIN_HEADER_LEN;
    while i < end {
        match seg[i] {
            0 => break,
            1 => i += 1,
            kind => {
                let Some(&len) = seg.get(i + 1) else { break };
                let len = usize::from(len);
                if len < 2 || i + len > end {
                    break;
                }
                each(i, kind, len);
                i += len;
            }
        }
    }
}

/// Rewrites the acknowledgment number (when the ACK flag is set) and the
/// edges of every SACK block of TCP segment `seg` with `map`, updating
/// its checksum.
pub fn map_acks(seg: &mut [u8], map: impl Fn(u32) -> u32) {
    if seg[13] & l4::TCP_ACK != 0 {
        let a = get32(seg, 8);
        set32(seg, 8, map(a));
    }
    let mut edges = [0usize; 8];
    let mut n = 0;
    options(seg, |at, kind, len| {
        // SACK (kind 5): blocks of two 32-bit edges.
        if kind == 5 {
            let mut e = at + 2;
            while e + 8 <= at + len && n + 2 <= edges.len() {
                edges[n] = e;
                edges[n + 1] = e + 4;
                n += 2;
                e += 8;
            }
        }
    });
    for &at in &edges[..n] {
        let v = get32(seg, at);
        set32(seg, at, map(v));
    }
}

/// Lowers the MSS option of SYN segment `seg` by `by`, and to at most
/// `max`, updating its checksum; whether it changed.
pub fn lower_mss(seg: &mut [u8], by: u16, max: u16) -> bool {
    let mut found = None;
    options(seg, |at, kind, len| {
        if kind == 2 && len == 4 {
            found = Some(at + 2);
        }
    });
    let Some(at) = found else {
        return false;
    };
    let old = u16::from_be_bytes([seg[at], seg[at + 1]]);
    // (Never below the 536 every host must take, RFC 9293 3.7.1.)
    let new = old.saturating_sub(by).min(max).max(536);
    if new >= old {
        return false;
    }
    seg[at..at + 2].copy_from_slice(&new.to_be_bytes());
    let c = u16::from_be_bytes([seg[16], seg[17]]);
    let c = checksum::update16(c, old, new);
    seg[16..18].copy_from_slice(&c.to_be_bytes());
    true
}

/// Where the lengths of a packet are, for [`grow_segment`].
#[derive(Clone, Copy, Debug)]
pub struct Lengths {
    /// Offset of the IP length field (IPv4 total length, IPv6 payload
    /// length) in the frame.
    pub ip_len: usize,
    /// Offset of the IPv4 header checksum; None for IPv6.
    pub ip_checksum: Option<usize>,
    /// Offset of the transport header.
    pub l4: usize,
    /// UDP (a length field, and a checksum that may be 0: none).
    pub udp: bool,
}

/// Makes the packet in `frame` describe itself with `inserted` (of even
/// length) in front of its transport payload, before the bytes are
/// there: the IP length, the UDP length, the IPv4 header checksum and
/// the transport checksum (its pseudo-header length, and the inserted
/// words; an even insertion at the payload, which starts at an even
/// offset, keeps the payload's words aligned, so their sum stays).
pub fn grow_segment(frame: &mut [u8], at: Lengths, inserted: &[u8]) {
    debug_assert!(inserted.len().is_multiple_of(2));
    let n = inserted.len() as u16;
    let bump = |frame: &mut [u8], off: usize| -> (u16, u16) {
        let old = u16::from_be_bytes([frame[off], frame[off + 1]]);
        let new = old.wrapping_add(n);
        frame[off..off + 2].copy_from_slice(&new.to_be_bytes());
        (old, new)
    };
    let (old, new) = bump(frame, at.ip_len);
    if let Some(c) = at.ip_checksum {
        let hc = u16::from_be_bytes([frame[c], frame[c + 1]]);
        let hc = checksum::update16(hc, old, new);
        frame[c..c + 2].copy_from_slice(&hc.to_be_bytes());
    }
    let csum_at = at.l4
        + if at.udp {
            l4::UDP_CHECKSUM_OFFSET
        } else {
            l4::TCP_CHECKSUM_OFFSET
        };
    let old_sum = u16::from_be_bytes([frame[csum_at], frame[csum_at + 1]]);
    // The pseudo-header's length grows by n; so does UDP's own length
    // field, which the checksum covers too.
    let mut s = u32::from(!old_sum) + u32::from(n) + checksum::sum(inserted, 0);
    if at.udp {
        bump(frame, at.l4 + 4);
        s += u32::from(n);
    }
    if at.udp && old_sum == 0 {
        return; // no checksum (IPv4 only)
    }
    let mut c = !checksum::fold(s);
    if at.udp && c == 0 {
        c = 0xffff;
    }
    frame[csum_at..csum_at + 2].copy_from_slice(&c.to_be_bytes());
}

#[cfg(test)]
mod tests;
