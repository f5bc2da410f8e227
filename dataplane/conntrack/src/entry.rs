//! The connection entry: what the table records about one connection.
//!
//! [`Conn`] is 56 bytes for IPv4 and 104 for IPv6 (asserted by a test):
//! four address/port pairs
//! (client, virtual service, real server, and the local address the real
//! sees as the client: the client's own but under full NAT), protocol,
//! forwarding method, TCP
//! state, flags, service and real indices, the persistence template it
//! belongs to, the expiry time, and the two timing-wheel links. There are no
//! per-entry packet or byte counters (those are kept per service and per
//! real elsewhere).

use sluice_model::{IpAddress, SocketAddress};
use std::net::{Ipv4Addr, SocketAddrV4};

use crate::key::{FlowKey, Protocol};
use crate::persist::TemplateId;
use crate::slab::{Node, NIL};
use crate::tcp_state::ConnState;

/// Handle of a connection in its [`ConnTable`](crate::ConnTable).
///
/// Valid until the connection is removed or expires; after that the slot
/// may be reused by another connection, so handles should not be kept
/// across calls that can remove entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub(crate) u32);

impl ConnId {
    /// The slot index (for logs and diagnostics).
    pub fn as_u32(self) -> u32 {
        self.0
    }
}

pub use sluice_model::Forward;

/// Flags of a connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ConnFlags(u8);

impl ConnFlags {
    /// A packet from the real server (outbound) has been seen. On a DR
    /// connection this switches the state machine from the input-only table
    /// to the input/output pair, like clearing LVS's `NOOUTPUT`.
    pub const SEEN_REPLY: ConnFlags = ConnFlags(0x01);
    /// The connection holds a reference on a persistence template.
    pub const PERSISTENT: ConnFlags = ConnFlags(0x02);
    /// The handshake was proxied with a SYN cookie: the real's sequence
    /// numbers are translated for the rest of the connection.
    pub const SYN_PROXY: ConnFlags = ConnFlags(0x04);
    /// A peer appliance told about the connection (connection sync) and
    /// it has carried no packet here since: a backup copy, never told
    /// back, not this appliance's handshake.
    pub const SYNCED: ConnFlags = ConnFlags(0x08);
    /// The real is told the client's address with the PROXY protocol: a
    /// header goes in front of the client's first byte (TCP, whose
    /// sequence numbers then shift) or of each datagram (UDP).
    pub const PROXY_HEADER: ConnFlags = ConnFlags(0x10);
    /// With [`ConnFlags::PROXY_HEADER`] on TCP: the real has acknowledged
    /// the header, so the stream is past its first byte for good.
    pub const HEADER_ACKED: ConnFlags = ConnFlags(0x20);
    /// Internal: the slot is in use. Never visible through [`Conn::flags`].
    const LIVE: u8 = 0x80;

    /// The raw bits.
    pub fn bits(self) -> u8 {
        self.0
    }

    /// Whether all flags of `other` are set.
    pub fn contains(self, other: ConnFlags) -> bool {
        self.0 & other.0 == other.0
    }
}

/// Everything needed to create a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NewConn<S = SocketAddrV4> {
    /// Transport protocol.
    pub proto: Protocol,
    /// Client address and port (CIP:cport).
    pub client: S,
    /// Virtual service address and port (VIP:vport).
    pub vip: S,
    /// Real server address and port (RIP:rport). For DR, rport is vport.
    pub real_addr: S,
    /// Full NAT: the local address and port (LIP:lport) the connection
    /// leaves from, which the real answers to. `None`: the client's own.
    pub local: Option<S>,
    /// Forwarding method.
    pub fwd: Forward,
    /// Index of the virtual service.
    pub service: u32,
    /// Index of the real server within the data plane's real table.
    pub real: u16,
    /// Persistence template the connection was scheduled by, if any: the
    /// connection then holds a reference on it (see
    /// [`PersistTable`](crate::PersistTable)).
    pub template: Option<TemplateId>,
}

/// One connection (56 bytes for IPv4, 104 for IPv6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct Conn<A = Ipv4Addr> {
    pub(crate) expires: u64,
    pub(crate) cip: A,
    pub(crate) vip: A,
    pub(crate) rip: A,
    pub(crate) lip: A,
    pub(crate) service: u32,
    pub(crate) template: u32,
    pub(crate) next: u32,
    pub(crate) prev: u32,
    pub(crate) cport: u16,
    pub(crate) vport: u16,
    pub(crate) rport: u16,
    pub(crate) real: u16,
    pub(crate) lport: u16,
    pub(crate) proto: u8,
    pub(crate) fwd: u8,
    pub(crate) state: u8,
    pub(crate) flags: u8,
}

impl<A: IpAddress> Conn<A> {
    pub(crate) fn new<S: SocketAddress<Ip = A>>(
        n: &NewConn<S>,
        state: ConnState,
        expires: u64,
    ) -> Conn<A> {
        let mut flags = ConnFlags::LIVE;
        if n.template.is_some() {
            flags |= ConnFlags::PERSISTENT.0;
        }
        let local = n.local.unwrap_or(n.client);
        Conn {
            expires,
            cip: n.client.addr(),
            vip: n.vip.addr(),
            rip: n.real_addr.addr(),
            lip: local.addr(),
            service: n.service,
            template: n.template.map_or(NIL, |t| t.0),
            next: NIL,
            prev: NIL,
            cport: n.client.port_number(),
            vport: n.vip.port_number(),
            rport: n.real_addr.port_number(),
            real: n.real,
            lport: local.port_number(),
            proto: n.proto as u8,
            fwd: n.fwd as u8,
            state: state.to_u8(),
            flags,
        }
    }

    /// Transport protocol.
    pub fn proto(&self) -> Protocol {
        if self.proto == Protocol::Udp as u8 {
            Protocol::Udp
        } else {
            Protocol::Tcp
        }
    }

    /// Client address and port (CIP:cport).
    pub fn client(&self) -> A::Socket {
        self.cip.socket(self.cport)
    }

    /// Virtual service address and port (VIP:vport).
    pub fn vip(&self) -> A::Socket {
        self.vip.socket(self.vport)
    }

    /// Real server address and port (RIP:rport).
    pub fn real_addr(&self) -> A::Socket {
        self.rip.socket(self.rport)
    }

    /// The address and port the real sees as the client's: LIP:lport
    /// under full NAT, else CIP:cport.
    pub fn local(&self) -> A::Socket {
        self.lip.socket(self.lport)
    }

    /// Forwarding method.
    pub fn fwd(&self) -> Forward {
        // Only a `Forward` is ever stored (`Forward::from_u8` would check).
        match self.fwd {
            0 => Forward::Nat,
            1 => Forward::Dr,
            2 => Forward::Ipip,
            3 => Forward::Gue,
            _ => Forward::FullNat,
        }
    }

    /// Service index.
    pub fn service(&self) -> u32 {
        self.service
    }

    /// Real server index.
    pub fn real(&self) -> u16 {
        self.real
    }

    /// Current state.
    pub fn state(&self) -> ConnState {
        ConnState::from_u8(self.state)
    }

    /// Whether the connection counts as active (TCP ESTABLISHED).
    pub fn is_active(&self) -> bool {
        self.state().is_active()
    }

    /// Flags (without internal bits).
    pub fn flags(&self) -> ConnFlags {
        ConnFlags(self.flags & !ConnFlags::LIVE)
    }

    /// Time (ms, the caller's clock) at which the connection expires.
    pub fn expires(&self) -> u64 {
        self.expires
    }

    /// The persistence template the connection holds a reference on.
    pub fn template(&self) -> Option<TemplateId> {
        (self.template != NIL).then_some(TemplateId(self.template))
    }

    /// The inbound key `(proto, CIP, cport, VIP, vport)`.
    pub fn inbound_key(&self) -> FlowKey<A> {
        FlowKey::inbound(self.proto(), self.client(), self.vip())
    }

    /// The outbound key `(proto, RIP, rport, CIP, cport)`; under full NAT
    /// `(proto, RIP, rport, LIP, lport)`.
    pub fn outbound_key(&self) -> FlowKey<A> {
        FlowKey::outbound(self.proto(), self.real_addr(), self.local())
    }

    #[inline(always)]
    pub(crate) fn matches_inbound(&self, k: &FlowKey<A>) -> bool {
        self.cip == k.src_ip
            && self.vip == k.dst_ip
            && self.cport == k.src_port
            && self.vport == k.dst_port
            && self.proto == k.proto as u8
    }

    #[inline(always)]
    pub(crate) fn matches_outbound(&self, k: &FlowKey<A>) -> bool {
        self.rip == k.src_ip
            && self.lip == k.dst_ip
            && self.rport == k.src_port
            && self.lport == k.dst_port
            && self.proto == k.proto as u8
    }

    pub(crate) fn set_flag(&mut self, f: ConnFlags) {
        self.flags |= f.0;
    }

    #[inline]
    pub(crate) fn clear_flag(&mut self, f: ConnFlags) {
        self.flags &= !f.0;
    }
}

impl<A: IpAddress> Node for Conn<A> {
    const EMPTY: Conn<A> = Conn {
        expires: 0,
        cip: A::UNSPECIFIED,
        vip: A::UNSPECIFIED,
        rip: A::UNSPECIFIED,
        lip: A::UNSPECIFIED,
        service: 0,
        template: NIL,
        next: NIL,
        prev: NIL,
        cport: 0,
        vport: 0,
        rport: 0,
        real: 0,
        lport: 0,
        proto: 0,
        fwd: 0,
        state: 0,
        flags: 0,
    };

    #[inline(always)]
    fn is_live(&self) -> bool {
        self.flags & ConnFlags::LIVE != 0
    }
    #[inline(always)]
    fn next(&self) -> u32 {
        self.next
    }
    #[inline(always)]
    fn set_next(&mut self, v: u32) {
        self.next = v;
    }
    #[inline(always)]
    fn prev(&self) -> u32 {
        self.prev
    }
    #[inline(always)]
    fn set_prev(&mut self, v: u32) {
        self.prev = v;
    }
    #[inline(always)]
    fn expires(&self) -> u64 {
        self.expires
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_is_56_bytes_for_ipv4_and_104_for_ipv6() {
        assert_eq!(std::mem::size_of::<Conn>(), 56);
        assert_eq!(std::mem::size_of::<Conn<std::net::Ipv6Addr>>(), 104);
    }

    #[test]
    fn an_ipv6_entry_keeps_its_endpoints() {
        let n = NewConn {
            proto: Protocol::Tcp,
            client: "[2001:db8:1::7]:40000"
                .parse::<std::net::SocketAddrV6>()
                .unwrap(),
            vip: "[2001:db8::100]:80".parse().unwrap(),
            real_addr: "[2001:db8:2::11]:8080".parse().unwrap(),
            local: None,
            fwd: Forward::Nat,
            service: 1,
            real: 2,
            template: None,
        };
        let c = Conn::new(&n, ConnState::Tcp(crate::tcp_state::TcpState::SynRecv), 9);
        assert_eq!(
            (c.client(), c.vip(), c.real_addr()),
            (n.client, n.vip, n.real_addr)
        );
        assert!(c.matches_inbound(&c.inbound_key()));
        assert!(c.matches_outbound(&c.outbound_key()));
        assert!(!c.matches_inbound(&c.outbound_key()));
    }

    #[test]
    fn accessors_round_trip() {
        let n: NewConn = NewConn {
            proto: Protocol::Udp,
            client: "198.51.100.7:40000".parse().unwrap(),
            vip: "192.0.2.1:53".parse().unwrap(),
            real_addr: "10.0.0.2:5353".parse().unwrap(),
            local: None,
            fwd: Forward::Dr,
            service: 70_000,
            real: 65_000,
            template: Some(TemplateId(3)),
        };
        let c = Conn::new(&n, ConnState::Udp, 1234);
        assert_eq!(c.proto(), Protocol::Udp);
        assert_eq!(c.client(), n.client);
        assert_eq!(c.vip(), n.vip);
        assert_eq!(c.real_addr(), n.real_addr);
        assert_eq!(c.fwd(), Forward::Dr);
        assert_eq!(c.service(), 70_000);
        assert_eq!(c.real(), 65_000);
        assert_eq!(c.state(), ConnState::Udp);
        assert_eq!(c.expires(), 1234);
        assert_eq!(c.template(), Some(TemplateId(3)));
        assert_eq!(c.flags(), ConnFlags::PERSISTENT);
        assert!(c.is_live());
        assert!(c.matches_inbound(&c.inbound_key()));
        assert!(c.matches_outbound(&c.outbound_key()));
        assert!(!c.matches_inbound(&c.outbound_key()));
    }
}
