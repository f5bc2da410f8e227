//! ICMPv6 (RFC 4443) and the neighbour discovery messages (RFC 4861) the
//! appliance reads and writes: echo, the errors that quote the packet that
//! caused them, and neighbour solicitation and advertisement with their
//! link-layer address options.

use crate::addr::MacAddr;
use std::net::Ipv6Addr;

/// Destination unreachable.
pub const TYPE_DEST_UNREACHABLE: u8 = 1;
/// Packet too big (bytes 4..8: the next-hop MTU).
pub const TYPE_PACKET_TOO_BIG: u8 = 2;
/// Time exceeded.
pub const TYPE_TIME_EXCEEDED: u8 = 3;
/// Parameter problem (bytes 4..8: the pointer).
pub const TYPE_PARAMETER_PROBLEM: u8 = 4;
/// Echo request.
pub const TYPE_ECHO_REQUEST: u8 = 128;
/// Echo reply.
pub const TYPE_ECHO_REPLY: u8 = 129;
/// Router solicitation.
pub const TYPE_ROUTER_SOLICIT: u8 = 133;
/// Router advertisement.
pub const TYPE_ROUTER_ADVERT: u8 = 134;
/// Neighbour solicitation.
pub const TYPE_NEIGHBOUR_SOLICIT: u8 = 135;
/// Neighbour advertisement.
pub const TYPE_NEIGHBOUR_ADVERT: u8 = 136;
/// Redirect.
pub const TYPE_REDIRECT: u8 = 137;
/// Length of the ICMPv6 header (type, code, checksum, 4 bytes of body).
pub const HEADER_LEN: usize = 8;
/// Offset of the checksum.
pub const CHECKSUM_OFFSET: usize = 2;
/// Length of a neighbour solicitation or advertisement without options.
pub const ND_LEN: usize = 24;
/// The hop limit every neighbour discovery message is sent with, and must
/// arrive with (so that it cannot come from off the link).
pub const ND_HOP_LIMIT: u8 = 255;
/// Option: source link-layer address.
pub const OPT_SOURCE_LL: u8 = 1;
/// Option: target link-layer address.
pub const OPT_TARGET_LL: u8 = 2;
/// Neighbour advertisement flag: router.
pub const NA_ROUTER: u8 = 0x80;
/// Neighbour advertisement flag: solicited.
pub const NA_SOLICITED: u8 = 0x40;
/// Neighbour advertisement flag: override.
pub const NA_OVERRIDE: u8 = 0x20;

/// Whether `ty` is an error message (types 0-127), one that quotes as much
/// of the packet that caused it as fits in the minimum MTU.
#[inline(always)]
pub fn is_error(ty: u8) -> bool {
    ty < 128
}

/// A neighbour solicitation or advertisement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Nd {
    /// 135 (solicitation) or 136 (advertisement).
    pub ty: u8,
    /// The advertisement's flags byte (router, solicited, override); 0 for
    /// a solicitation.
    pub flags: u8,
    /// The address asked about, or advertised.
    pub target: Ipv6Addr,
    /// The link-layer address option: the sender's in a solicitation, the
    /// target's in an advertisement.
    pub mac: Option<MacAddr>,
}

/// Why a neighbour discovery message was refused (RFC 4861 7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NdError {
    /// Not a solicitation or advertisement, a code other than 0, or
    /// shorter than 24 bytes.
    Malformed,
    /// An option of length 0 or running past the message.
    BadOption,
    /// A multicast target.
    MulticastTarget,
}

/// Reads the neighbour solicitation or advertisement `m` (the ICMPv6
/// message; its checksum and the IPv6 hop limit are the caller's to check).
pub fn parse_nd(m: &[u8]) -> Result<Nd, NdError> {
    if m.len() < ND_LEN
        || m[1] != 0
        || !(m[0] == TYPE_NEIGHBOUR_SOLICIT || m[0] == TYPE_NEIGHBOUR_ADVERT)
    {
        return Err(NdError::Malformed);
    }
    let target = crate::wire::ipv6::address(m, 8);
    if crate::wire::ipv6::is_multicast(&target) {
        return Err(NdError::MulticastTarget);
    }
    let wanted = if m[0] == TYPE_NEIGHBOUR_SOLICIT {
        OPT_SOURCE_LL
    } else {
        OPT_TARGET_LL
    };
    let mut mac = None;
    let mut opts = &m[ND_LEN..];
    while !opts.is_empty() {
        let len = opts.get(1).map_or(0, |&l| usize::from(l) * 8);
        if len == 0 || len > opts.len() {
            return Err(NdError::BadOption);
        }
        if opts[0] == wanted && len == 8 {
            mac = Some(MacAddr(opts[2..8].try_into().unwrap()));
        }
        opts = &opts[len..];
    }
    Ok(Nd {
        ty: m[0],
        flags: if m[0] == TYPE_NEIGHBOUR_ADVERT {
            m[4] & (NA_ROUTER | NA_SOLICITED | NA_OVERRIDE)
        } else {
            0
        },
        target,
        mac,
    })
}

/// Writes neighbour discovery message `nd` into `m` (at least
/// [`nd_len`] bytes), its checksum field zero: the caller sums it with
/// the pseudo-header.
pub fn write_nd(m: &mut [u8], nd: &Nd) {
    m[..ND_LEN].fill(0);
    m[0] = nd.ty;
    m[4] = nd.flags;
    m[8..24].copy_from_slice(&nd.target.octets());
    if let Some(mac) = nd.mac {
        m[24] = if nd.ty == TYPE_NEIGHBOUR_SOLICIT {
            OPT_SOURCE_LL
        } else {
            OPT_TARGET_LL
        };
        m[25] = 1;
        m[26..32].copy_from_slice(&mac.0);
    }
}

/// The length of `nd` as written by [`write_nd`].
pub fn nd_len(nd: &Nd) -> usize {
    ND_LEN + if nd.mac.is_some() { 8 } else { 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn solicitation_round_trip() {
        let nd = Nd {
            ty: TYPE_NEIGHBOUR_SOLICIT,
            flags: 0,
            target: "2001:db8::100".parse().unwrap(),
            mac: Some(MacAddr([2, 0, 0, 0, 0, 9])),
        };
        let mut m = vec![0; nd_len(&nd)];
        write_nd(&mut m, &nd);
        assert_eq!(m[24..26], [OPT_SOURCE_LL, 1]);
        assert_eq!(parse_nd(&m), Ok(nd));
    }

    #[test]
    fn advertisement_flags_and_target_option() {
        let nd = Nd {
            ty: TYPE_NEIGHBOUR_ADVERT,
            flags: NA_SOLICITED | NA_OVERRIDE,
            target: "2001:db8::1".parse().unwrap(),
            mac: Some(MacAddr([2, 0, 0, 0, 0, 1])),
        };
        let mut m = vec![0; nd_len(&nd)];
        write_nd(&mut m, &nd);
        assert_eq!(m[4], 0x60);
        assert_eq!(parse_nd(&m), Ok(nd));
    }

    #[test]
    fn refusals() {
        let nd = Nd {
            ty: TYPE_NEIGHBOUR_SOLICIT,
            flags: 0,
            target: "2001:db8::100".parse().unwrap(),
            mac: Some(MacAddr([2, 0, 0, 0, 0, 9])),
        };
        let mut m = vec![0; nd_len(&nd)];
        write_nd(&mut m, &nd);
        assert_eq!(parse_nd(&m[..20]), Err(NdError::Malformed));
        let mut zero_len = m.clone();
        zero_len[25] = 0;
        assert_eq!(parse_nd(&zero_len), Err(NdError::BadOption));
        let mut long = m.clone();
        long[25] = 2;
        assert_eq!(parse_nd(&long), Err(NdError::BadOption));
        let mut code = m.clone();
        code[1] = 1;
        assert_eq!(parse_nd(&code), Err(NdError::Malformed));
        let mut mcast = m.clone();
        mcast[8] = 0xff;
        assert_eq!(parse_nd(&mcast), Err(NdError::MulticastTarget));
        // Without an option: accepted, no MAC.
        assert_eq!(parse_nd(&m[..24]).unwrap().mac, None);
        // An unknown option is skipped.
        let mut other = m[..24].to_vec();
        other.extend_from_slice(&[14, 1, 0, 0, 0, 0, 0, 0]);
        other.extend_from_slice(&m[24..]);
        assert_eq!(parse_nd(&other), Ok(nd));
    }
}
