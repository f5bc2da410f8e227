//! Ethernet II frames: destination, source, EtherType.

use crate::addr::MacAddr;

/// Length of the Ethernet header.
pub const HEADER_LEN: usize = 14;
/// EtherType of IPv4.
pub const ETHERTYPE_IPV4: u16 = 0x0800;
/// EtherType of ARP.
pub const ETHERTYPE_ARP: u16 = 0x0806;
/// EtherType of IPv6.
pub const ETHERTYPE_IPV6: u16 = 0x86dd;

/// Destination MAC of a frame at least HEADER_LEN long.
#[inline(always)]
pub fn dst(frame: &[u8]) -> MacAddr {
    MacAddr(frame[0..6].try_into().unwrap())
}

/// Source MAC.
#[inline(always)]
pub fn src(frame: &[u8]) -> MacAddr {
    MacAddr(frame[6..12].try_into().unwrap())
}

/// EtherType.
#[inline(always)]
pub fn ethertype(frame: &[u8]) -> u16 {
    u16::from_be_bytes([frame[12], frame[13]])
}

/// Sets both MACs.
#[inline(always)]
pub fn set_macs(frame: &mut [u8], dst: MacAddr, src: MacAddr) {
    frame[0..6].copy_from_slice(&dst.0);
    frame[6..12].copy_from_slice(&src.0);
}

/// Writes a full header.
#[inline(always)]
pub fn write_header(frame: &mut [u8], dst: MacAddr, src: MacAddr, ethertype: u16) {
    set_macs(frame, dst, src);
    frame[12..14].copy_from_slice(&ethertype.to_be_bytes());
}
