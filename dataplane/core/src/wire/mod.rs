//! Zero-copy views of the wire formats Sluice reads and rewrites, in the
//! style of smoltcp's `wire` module: plain functions and small structs over
//! byte slices, with bounds checked once at parse time.

pub mod arp;
pub mod checksum;
pub mod ethernet;
pub mod icmp;
pub mod icmpv6;
pub mod ipv4;
pub mod ipv6;
pub mod l4;
