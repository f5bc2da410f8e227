//! ICMPv4 messages: echo request/reply.

use super::checksum;

/// Echo reply.
pub const TYPE_ECHO_REPLY: u8 = 0;
/// Destination unreachable.
pub const TYPE_DEST_UNREACHABLE: u8 = 3;
/// Echo request.
pub const TYPE_ECHO_REQUEST: u8 = 8;
/// Time exceeded.
pub const TYPE_TIME_EXCEEDED: u8 = 11;
/// Minimum ICMP header length.
pub const HEADER_LEN: usize = 8;

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
}
