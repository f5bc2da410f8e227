//! ICMPv4 messages: echo request/reply, and the error messages that quote
//! the header of the packet that caused them.

use super::checksum;

/// Echo reply.
pub const TYPE_ECHO_REPLY: u8 = 0;
/// Destination unreachable.
pub const TYPE_DEST_UNREACHABLE: u8 = 3;
/// Source quench (deprecated by RFC 6633, still an error message).
pub const TYPE_SOURCE_QUENCH: u8 = 4;
/// Echo request.
pub const TYPE_ECHO_REQUEST: u8 = 8;
/// Time exceeded.
pub const TYPE_TIME_EXCEEDED: u8 = 11;
/// Parameter problem.
pub const TYPE_PARAMETER_PROBLEM: u8 = 12;
/// Destination unreachable code: port unreachable.
pub const CODE_PORT_UNREACHABLE: u8 = 3;
/// Destination unreachable code: fragmentation needed and DF set (the
/// next-hop MTU is in bytes 6..8 of the message, RFC 1191).
pub const CODE_FRAGMENTATION_NEEDED: u8 = 4;
/// Minimum ICMP header length.
pub const HEADER_LEN: usize = 8;
/// Offset of the checksum in an ICMP message.
pub const CHECKSUM_OFFSET: usize = 2;
/// Bytes of the offending datagram's payload an error must quote after its
/// IP header (RFC 792).
pub const ERROR_QUOTED_PAYLOAD_LEN: usize = 8;

/// Whether ICMP `ty` is an error message, one that quotes the IP header and
/// the first bytes of the datagram that caused it (destination unreachable,
/// source quench, time exceeded, parameter problem).
#[inline(always)]
pub fn is_error(ty: u8) -> bool {
    matches!(
        ty,
        TYPE_DEST_UNREACHABLE | TYPE_SOURCE_QUENCH | TYPE_TIME_EXCEEDED | TYPE_PARAMETER_PROBLEM
    )
}

/// Turns the echo request `m` (the whole ICMP message, checksum verified by
/// the caller) into an echo reply, updating the checksum incrementally.
pub fn echo_request_to_reply(m: &mut [u8]) {
    let old = u16::from_be_bytes([m[0], m[1]]);
    m[0] = TYPE_ECHO_REPLY;
    let new = u16::from_be_bytes([m[0], m[1]]);
    let c = u16::from_be_bytes([m[2], m[3]]);
    let c = checksum::update16(c, old, new);
    m[2..4].copy_from_slice(&c.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_checksum_is_valid() {
        let mut m = vec![8, 0, 0, 0, 0x12, 0x34, 0, 1, b'h', b'e', b'l', b'l', b'o'];
        let c = checksum::checksum(&m);
        m[2..4].copy_from_slice(&c.to_be_bytes());
        echo_request_to_reply(&mut m);
        assert_eq!(m[0], TYPE_ECHO_REPLY);
        assert!(checksum::verify(&m));
    }

    #[test]
    fn error_types() {
        for ty in [3, 4, 11, 12] {
            assert!(is_error(ty));
        }
        for ty in [0, 5, 8, 13, 255] {
            assert!(!is_error(ty));
        }
    }
}
