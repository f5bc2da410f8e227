//! Lookup keys: the transport protocol and the 5-tuple as seen on the wire.
//!
//! A connection is found by one of two keys, like the two tuple hashes of
//! Linux Virtual Server:
//!
//! * the **inbound** key `(proto, CIP, cport, VIP, vport)` of packets sent by
//!   the client to the virtual service, built with [`FlowKey::inbound`];
//! * the **outbound** key `(proto, RIP, rport, CIP, cport)` of NAT replies
//!   sent by the real server back to the client, built with
//!   [`FlowKey::outbound`].
//!
//! Both are a [`FlowKey`] holding source and destination exactly as they
//! appear in the packet's IPv4 and TCP/UDP headers, so the data path builds
//! the key straight from the headers without knowing the direction. Ports
//! are in host byte order.

pub use sluice_model::Protocol;
use std::net::{Ipv4Addr, SocketAddrV4};

/// A 5-tuple as carried by a packet: protocol, source and destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FlowKey {
    /// Transport protocol.
    pub proto: Protocol,
    /// Source address of the packet.
    pub src_ip: Ipv4Addr,
    /// Source port of the packet (host byte order).
    pub src_port: u16,
    /// Destination address of the packet.
    pub dst_ip: Ipv4Addr,
    /// Destination port of the packet (host byte order).
    pub dst_port: u16,
}

impl FlowKey {
    /// A key from a packet's source and destination.
    pub fn new(proto: Protocol, src: SocketAddrV4, dst: SocketAddrV4) -> FlowKey {
        FlowKey {
            proto,
            src_ip: *src.ip(),
            src_port: src.port(),
            dst_ip: *dst.ip(),
            dst_port: dst.port(),
        }
    }

    /// The inbound key of a client -> virtual service packet:
    /// `(proto, CIP, cport, VIP, vport)`.
    pub fn inbound(proto: Protocol, client: SocketAddrV4, vip: SocketAddrV4) -> FlowKey {
        FlowKey::new(proto, client, vip)
    }

    /// The outbound key of a real server -> client reply (NAT only):
    /// `(proto, RIP, rport, CIP, cport)`.
    pub fn outbound(proto: Protocol, real: SocketAddrV4, client: SocketAddrV4) -> FlowKey {
        FlowKey::new(proto, real, client)
    }

    /// Source address and port.
    pub fn src(&self) -> SocketAddrV4 {
        SocketAddrV4::new(self.src_ip, self.src_port)
    }

    /// Destination address and port.
    pub fn dst(&self) -> SocketAddrV4 {
        SocketAddrV4::new(self.dst_ip, self.dst_port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inbound_and_outbound_shapes() {
        let c = SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, 7), 40000);
        let v = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 80);
        let r = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 8080);
        let i = FlowKey::inbound(Protocol::Tcp, c, v);
        assert_eq!((i.src(), i.dst()), (c, v));
        let o = FlowKey::outbound(Protocol::Tcp, r, c);
        assert_eq!((o.src(), o.dst()), (r, c));
        assert_eq!(Protocol::from_number(6), Some(Protocol::Tcp));
        assert_eq!(Protocol::from_number(17), Some(Protocol::Udp));
        assert_eq!(Protocol::from_number(1), None);
        assert_eq!(Protocol::Udp.number(), 17);
    }
}
