//! The sync datagram.
//!
//! ```text
//! offset  size  field
//!      0     4  magic "SLSY"
//!      4     1  version (1)
//!      5     1  flags: bit 0 asks the receiver to tell all its
//!               connections (a joining appliance's request; no records)
//!      6     2  count of records (big endian, as every field)
//!      8     4  sender id (the sender's listen address: IPv4 as a
//!               number, IPv6 folded to 32 bits)
//!     12     8  sequence number (grows with every datagram of a sender)
//!     20     -  records
//!    end-32 32  HMAC-SHA256 under the shared key of everything before it
//!
//! record: family (4 or 6), protocol (6 or 17), state, forwarding (0 NAT,
//!         1 DR, 2 IP-in-IP, 3 GUE), client port, VIP port, real port (2
//!         bytes each), then the client, VIP and real addresses (4 or 16
//!         bytes each):
//!         22 bytes for IPv4, 58 for IPv6.
//! ```
//!
//! A datagram is at most [`MAX_DATAGRAM`] bytes, so that it crosses any
//! path without fragments (IPv6's minimum MTU, less headers).

use crate::ConnRecord;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use sluice_model::{Forward, Protocol};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The datagram's first bytes.
pub const MAGIC: &[u8; 4] = b"SLSY";
/// The format's version.
pub const VERSION: u8 = 1;
/// The largest datagram sent.
pub const MAX_DATAGRAM: usize = 1200;
/// Flag: the sender (an appliance that just started) asks for every
/// connection the receiver has; such a datagram carries no record.
pub const FLAG_REQUEST: u8 = 0x01;
/// Header length.
pub const HEADER: usize = 20;
/// Tag length.
pub const TAG: usize = 32;

type HmacSha256 = Hmac<Sha256>;

/// A datagram's contents, authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Who sent it.
    pub sender: u32,
    /// Its sequence number.
    pub seq: u64,
    /// The sender asks for every connection ([`FLAG_REQUEST`]).
    pub request: bool,
    /// The connections.
    pub records: Vec<ConnRecord>,
}

/// Why a datagram was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// Shorter than a header and a tag, or not ours (magic).
    NotSync,
    /// Another version of the format.
    Version,
    /// The tag does not match: not from a holder of the key, or altered.
    BadTag,
    /// Authentic but its records do not parse (a sender's bug).
    Malformed,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DecodeError::NotSync => "not a sync datagram",
            DecodeError::Version => "another version",
            DecodeError::BadTag => "authentication failed",
            DecodeError::Malformed => "malformed records",
        })
    }
}

fn mac(key: &[u8]) -> HmacSha256 {
    // HMAC takes a key of any length.
    HmacSha256::new_from_slice(key).unwrap_or_else(|_| unreachable!("HMAC accepts any key"))
}

/// The encoded length of `r`.
pub fn record_len(r: &ConnRecord) -> usize {
    if r.client.is_ipv4() {
        22
    } else {
        58
    }
}

/// Encodes into `out` (cleared) a datagram of the longest prefix of
/// `records` that fits, and returns how many records it holds. Records
/// whose addresses are not all of one family are skipped (counted in the
/// return value, not sent).
pub fn encode(
    sender: u32,
    seq: u64,
    records: &[ConnRecord],
    key: &[u8],
    out: &mut Vec<u8>,
) -> usize {
    out.clear();
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[VERSION, 0, 0, 0]);
    out.extend_from_slice(&sender.to_be_bytes());
    out.extend_from_slice(&seq.to_be_bytes());
    let mut taken = 0;
    let mut count: u16 = 0;
    for r in records {
        if out.len() + record_len(r) + TAG > MAX_DATAGRAM {
            break;
        }
        taken += 1;
        if put_record(r, out) {
            count += 1;
        }
    }
    out[6..8].copy_from_slice(&count.to_be_bytes());
    sign(key, out);
    taken
}

/// Encodes into `out` (cleared) a request for every connection the
/// receiver has ([`FLAG_REQUEST`], no records).
pub fn encode_request(sender: u32, seq: u64, key: &[u8], out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[VERSION, FLAG_REQUEST, 0, 0]);
    out.extend_from_slice(&sender.to_be_bytes());
    out.extend_from_slice(&seq.to_be_bytes());
    sign(key, out);
}

/// Appends the tag of everything in `out`.
fn sign(key: &[u8], out: &mut Vec<u8>) {
    let mut m = mac(key);
    m.update(out);
    let tag = m.finalize().into_bytes();
    out.extend_from_slice(&tag);
}

fn put_record(r: &ConnRecord, out: &mut Vec<u8>) -> bool {
    let v4 = r.client.is_ipv4();
    if r.vip.is_ipv4() != v4 || r.real.is_ipv4() != v4 {
        return false;
    }
    out.push(if v4 { 4 } else { 6 });
    out.push(r.proto.number());
    out.push(r.state);
    out.push(r.fwd as u8);
    for a in [r.client, r.vip, r.real] {
        out.extend_from_slice(&a.port().to_be_bytes());
    }
    for a in [r.client, r.vip, r.real] {
        match a.ip() {
            IpAddr::V4(v) => out.extend_from_slice(&v.octets()),
            IpAddr::V6(v) => out.extend_from_slice(&v.octets()),
        }
    }
    true
}

/// Authenticates and parses `d`.
pub fn decode(d: &[u8], key: &[u8]) -> Result<Message, DecodeError> {
    if d.len() < HEADER + TAG || &d[..4] != MAGIC {
        return Err(DecodeError::NotSync);
    }
    if d[4] != VERSION {
        return Err(DecodeError::Version);
    }
    let (body, tag) = d.split_at(d.len() - TAG);
    let mut m = mac(key);
    m.update(body);
    m.verify_slice(tag).map_err(|_| DecodeError::BadTag)?;
    let count = u16::from_be_bytes([body[6], body[7]]);
    let sender = u32::from_be_bytes([body[8], body[9], body[10], body[11]]);
    let seq = u64::from_be_bytes(body[12..20].try_into().map_err(|_| DecodeError::NotSync)?);
    let mut records = Vec::with_capacity(usize::from(count));
    let mut rest = &body[HEADER..];
    for _ in 0..count {
        let (r, n) = record(rest).ok_or(DecodeError::Malformed)?;
        records.push(r);
        rest = &rest[n..];
    }
    if !rest.is_empty() {
        return Err(DecodeError::Malformed);
    }
    Ok(Message {
        sender,
        seq,
        request: body[5] & FLAG_REQUEST != 0,
        records,
    })
}

fn record(b: &[u8]) -> Option<(ConnRecord, usize)> {
    let (v4, alen) = match *b.first()? {
        4 => (true, 4),
        6 => (false, 16),
        _ => return None,
    };
    let len = 10 + 3 * alen;
    let b = b.get(..len)?;
    let proto = match b[1] {
        6 => Protocol::Tcp,
        17 => Protocol::Udp,
        _ => return None,
    };
    let fwd = Forward::from_u8(b[3])?;
    let port = |i: usize| u16::from_be_bytes([b[4 + 2 * i], b[5 + 2 * i]]);
    let addr = |i: usize| -> IpAddr {
        let a = &b[10 + i * alen..10 + (i + 1) * alen];
        if v4 {
            IpAddr::V4(Ipv4Addr::new(a[0], a[1], a[2], a[3]))
        } else {
            let mut o = [0u8; 16];
            o.copy_from_slice(a);
            IpAddr::V6(Ipv6Addr::from(o))
        }
    };
    let sock = |i: usize| SocketAddr::new(addr(i), port(i));
    Some((
        ConnRecord {
            proto,
            state: b[2],
            fwd,
            client: sock(0),
            vip: sock(1),
            real: sock(2),
        },
        len,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const KEY: &[u8] = b"a key the appliances share";

    fn rec(i: u16, v6: bool) -> ConnRecord {
        let ip = |last: u16| -> IpAddr {
            if v6 {
                format!("2001:db8::{last:x}").parse().unwrap()
            } else {
                IpAddr::V4(Ipv4Addr::new(192, 0, 2, (last % 250) as u8))
            }
        };
        ConnRecord {
            proto: if i.is_multiple_of(3) {
                Protocol::Udp
            } else {
                Protocol::Tcp
            },
            state: (i % 7) as u8,
            fwd: Forward::from_u8((i % 4) as u8).unwrap(),
            client: SocketAddr::new(ip(i), 30000 + i),
            vip: SocketAddr::new(ip(100), 80),
            real: SocketAddr::new(ip(200 + i % 3), 8080),
        }
    }

    #[test]
    fn a_datagram_round_trips_and_is_bounded() {
        let records: Vec<_> = (0..100).map(|i| rec(i, i.is_multiple_of(4))).collect();
        let mut out = Vec::new();
        let mut sent = Vec::new();
        let mut seq = 1;
        let mut rest = &records[..];
        while !rest.is_empty() {
            let n = encode(7, seq, rest, KEY, &mut out);
            assert!(n > 0 && out.len() <= MAX_DATAGRAM, "{n} {}", out.len());
            let m = decode(&out, KEY).unwrap();
            assert_eq!((m.sender, m.seq), (7, seq));
            sent.extend(m.records);
            rest = &rest[n..];
            seq += 1;
        }
        assert_eq!(sent, records);
        assert!(seq > 3, "100 records take several datagrams");
    }

    #[test]
    fn a_request_round_trips() {
        let mut out = Vec::new();
        encode_request(9, 77, KEY, &mut out);
        assert_eq!(out.len(), HEADER + TAG);
        let m = decode(&out, KEY).unwrap();
        assert_eq!(
            (m.sender, m.seq, m.request, m.records.len()),
            (9, 77, true, 0)
        );
        encode(9, 78, &[rec(1, false)], KEY, &mut out);
        assert!(!decode(&out, KEY).unwrap().request);
    }

    #[test]
    fn a_wrong_key_or_an_altered_byte_is_refused() {
        let mut out = Vec::new();
        encode(7, 1, &[rec(1, false)], KEY, &mut out);
        assert_eq!(decode(&out, b"another key"), Err(DecodeError::BadTag));
        for i in 4..out.len() {
            let mut d = out.clone();
            d[i] ^= 1;
            let e = decode(&d, KEY).unwrap_err();
            assert!(
                matches!(e, DecodeError::BadTag | DecodeError::Version),
                "byte {i}: {e:?}"
            );
        }
        assert_eq!(decode(&out[..30], KEY), Err(DecodeError::NotSync));
        assert_eq!(
            decode(b"GET / HTTP/1.0\r\n\r\n", KEY),
            Err(DecodeError::NotSync)
        );
    }

    proptest! {
        /// Any bytes: refused or parsed, never a panic; and without the key
        /// nothing is accepted.
        #[test]
        fn garbage_never_passes(d in proptest::collection::vec(any::<u8>(), 0..1300)) {
            let mut d = d;
            if d.len() >= 5 {
                d[..4].copy_from_slice(MAGIC);
                d[4] = VERSION;
            }
            prop_assert!(decode(&d, KEY).is_err());
        }
    }
}
