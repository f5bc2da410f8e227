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
use sluice_model::{IpAddress, SocketAddress};
use std::net::Ipv4Addr;
#[cfg(test)]
use std::net::SocketAddrV4;

/// A 5-tuple as carried by a packet: protocol, source and destination, of
/// one address family (IPv4 unless said otherwise).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FlowKey<A = Ipv4Addr> {
    /// Transport protocol.
    pub proto: Protocol,
    /// Source address of the packet.
    pub src_ip: A,
    /// Source port of the packet (host byte order).
    pub src_port: u16,
    /// Destination address of the packet.
    pub dst_ip: A,
    /// Destination port of the packet (host byte order).
    pub dst_port: u16,
}

impl<A: IpAddress> FlowKey<A> {
    /// A key from a packet's source and destination.
    #[inline(always)]
    pub fn new<S: SocketAddress<Ip = A>>(proto: Protocol, src: S, dst: S) -> FlowKey<A> {
        FlowKey {
            proto,
            src_ip: src.addr(),
            src_port: src.port_number(),
            dst_ip: dst.addr(),
            dst_port: dst.port_number(),
        }
    }

    /// The inbound key of a client -> virtual service packet:
    /// `(proto, CIP, cport, VIP, vport)`.
    #[inline(always)]
    pub fn inbound<S: SocketAddress<Ip = A>>(proto: Protocol, client: S, vip: S) -> FlowKey<A> {
        FlowKey::new(proto, client, vip)
    }

    /// The outbound key of a real server -> client reply (NAT only):
    /// `(proto, RIP, rport, CIP, cport)`.
    #[inline(always)]
    pub fn outbound<S: SocketAddress<Ip = A>>(proto: Protocol, real: S, client: S) -> FlowKey<A> {
        FlowKey::new(proto, real, client)
    }

    /// Source address and port.
    pub fn src(&self) -> A::Socket {
        self.src_ip.socket(self.src_port)
    }

    /// Destination address and port.
    pub fn dst(&self) -> A::Socket {
        self.dst_ip.socket(self.dst_port)
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
