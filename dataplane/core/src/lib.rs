//! Sans-IO packet core of Sluice: everything that reads or writes packets
//! works here on plain byte slices and plain structs, with no DPDK, so it is
//! unit-tested, property-tested and fuzzed on its own.
//!
//! - [`wire`]: zero-copy views of Ethernet, ARP, IPv4, IPv6 (extension
//!   headers included), ICMP, ICMPv6, UDP and TCP,
//!   and Internet checksums (full and RFC 1624 incremental).
//! - [`addr`]: MAC addresses and IPv4 and IPv6 prefixes.
//! - [`family`]: the [`Address`] trait that writes parsing results, NAT
//!   and checksum updates once for IPv4 and IPv6.
//! - [`drop_reason`]: why a packet was dropped, with stable names.
//! - [`local`]: the appliance's own network presence on a port: answering
//!   ARP and ICMP echo, and learning neighbours.
//! - [`local6`]: the same for IPv6: neighbour discovery (answering and
//!   sending solicitations, advertisements) and ICMPv6 echo.
//! - [`neigh`]: the neighbour cache (ARP and neighbour discovery).
//! - [`flow`]: parsing a frame into the addresses, ports and offsets that
//!   load balancing needs (IPv4 with TCP, UDP or ICMP, ICMP errors included).
//! - [`flow6`]: the same for IPv6, through its extension headers, with
//!   ICMPv6.
//! - [`hygiene`]: what no honest packet looks like (martian sources,
//!   invalid TCP flags, bad TCP and UDP checksums).
//! - [`icmp_error`]: the ICMP errors the appliance sends (time exceeded,
//!   fragmentation needed, packet too big), and their rate limit.
//! - [`nat`]: in-place NAT rewrites with incremental checksum updates.
//! - [`syn_cookie`]: the SYN cookies of the SYN proxy, and the SYN
//!   options they carry.
//! - [`handshake`]: the frames of a proxied handshake, and the sequence
//!   and window translation of the connection after it.
//! - [`tunnel`]: the outer headers of tunnel mode (IP-in-IP, GUE), put in
//!   front of the client's packet.

pub mod addr;
pub mod drop_reason;
pub mod family;
pub mod flow;
pub mod flow6;
pub mod handshake;
pub mod hygiene;
pub mod icmp_error;
pub mod local;
pub mod local6;
pub mod nat;
pub mod neigh;
pub mod proxy_protocol;
pub mod syn_cookie;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod tunnel;
pub mod wire;

pub use addr::{contains_sorted, Ipv4Prefix, Ipv6Prefix, MacAddr, Prefix};
pub use drop_reason::DropReason;
pub use family::Address;
