//! The appliance's own presence on a port: it answers ARP requests for its
//! addresses, answers ICMP echo sent to them, and learns neighbours from
//! the ARP it sees; IPv6's neighbour discovery and echo are in
//! [`crate::local6`]. Frames are rewritten in place into their replies, so
//! nothing is allocated.

use crate::addr::MacAddr;
use crate::drop_reason::DropReason;
use crate::wire::{arp, checksum, ethernet, icmp, ipv4};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Most addresses the configuration may give one port (virtual IPs of
/// services come on top).
pub const MAX_ADDRESSES: usize = 16;

/// TTL of packets the appliance originates.
pub const DEFAULT_TTL: u8 = 64;

/// A port's identity: its MAC and the IPv4 and IPv6 addresses it answers
/// for (its own addresses, and the virtual IPs of the services).
#[derive(Clone, Debug)]
pub struct LocalPort {
    mac: MacAddr,
    /// Sorted, without duplicates.
    addrs: Vec<Ipv4Addr>,
    /// Sorted, without duplicates.
    addrs6: Vec<Ipv6Addr>,
}

/// What to do with a frame after [`LocalPort::handle`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The frame was rewritten into a reply: transmit it on the same port.
    Reply(Handled),
    /// The frame was used and needs no transmission (an ARP reply).
    Consumed(Handled),
    /// Drop the frame and count it under this reason.
    Drop(DropReason),
}

/// What kind of traffic was handled, for counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    /// An ARP request for one of our addresses, answered.
    ArpRequest,
    /// An ARP reply to us, learned.
    ArpReply,
    /// An ICMP echo request to one of our addresses, answered.
    IcmpEcho,
    /// A neighbour solicitation for one of our IPv6 addresses, answered.
    NeighbourSolicit,
    /// A neighbour advertisement, learned.
    NeighbourAdvert,
    /// An ICMPv6 echo request to one of our addresses, answered.
    Icmpv6Echo,
    /// A SYN to a proxied service, answered with a SYN cookie (counted
    /// by the load balancer as `syn_cookies_sent`).
    SynCookie,
    /// A step of a proxied handshake: the client's ACK, used up to open
    /// the connection to the real, or the real's SYN-ACK, answered with
    /// the ACK that completes it.
    Handshake,
}

/// Result of handling one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// What to do with the frame.
    pub verdict: Verdict,
    /// A neighbour learned from the frame, if any.
    pub learned: Option<(IpAddr, MacAddr)>,
}

impl Outcome {
    pub(crate) fn drop(r: DropReason) -> Outcome {
        Outcome {
            verdict: Verdict::Drop(r),
            learned: None,
        }
    }
}

impl LocalPort {
    /// A port with `mac` answering for `addrs`. Built off the packet path
    /// (it allocates); lookups do not.
    pub fn new(mac: MacAddr, addrs: &[Ipv4Addr]) -> LocalPort {
        let mut a = addrs.to_vec();
        a.sort_unstable();
        a.dedup();
        LocalPort {
            mac,
            addrs: a,
            addrs6: Vec::new(),
        }
    }

    /// The same port answering for IPv6 `addrs` too.
    pub fn with_ipv6(mut self, addrs: &[Ipv6Addr]) -> LocalPort {
        self.addrs6 = addrs.to_vec();
        self.addrs6.sort_unstable();
        self.addrs6.dedup();
        self
    }

    /// Whether IPv6 `ip` is one of the port's addresses.
    #[inline(always)]
    pub fn owns6(&self, ip: Ipv6Addr) -> bool {
        crate::addr::contains_sorted(&self.addrs6, ip)
    }

    /// The port's MAC.
    pub fn mac(&self) -> MacAddr {
        self.mac
    }

    /// Whether `ip` is one of the port's addresses.
    #[inline(always)]
    pub fn owns(&self, ip: Ipv4Addr) -> bool {
        crate::addr::contains_sorted(&self.addrs, ip)
    }

    /// Handles one received frame addressed to the appliance itself.
    pub fn handle(&self, frame: &mut [u8]) -> Outcome {
        if frame.len() < ethernet::HEADER_LEN {
            return Outcome::drop(DropReason::Truncated);
        }
        if ethernet::src(frame).is_multicast() {
            return Outcome::drop(DropReason::BadSourceMac);
        }
        match ethernet::ethertype(frame) {
            ethernet::ETHERTYPE_ARP => self.handle_arp(frame),
            ethernet::ETHERTYPE_IPV4 => self.handle_ipv4(frame),
            ethernet::ETHERTYPE_IPV6 => self.handle_ipv6(frame),
            _ => Outcome::drop(DropReason::UnsupportedEthertype),
        }
    }

    fn handle_arp(&self, frame: &mut [u8]) -> Outcome {
        let body = &mut frame[ethernet::HEADER_LEN..];
        if body.len() < arp::LEN {
            return Outcome::drop(DropReason::Truncated);
        }
        let Some(a) = arp::parse(body) else {
            return Outcome::drop(DropReason::BadArp);
        };
        // Another host claiming one of our addresses (a gratuitous ARP for
        // a VIP, a conflict, a poisoning attempt): never learned, never
        // answered.
        if self.owns(a.spa) {
            return Outcome::drop(DropReason::ArpClaimsOurAddress);
        }
        // A sender hardware address that is multicast or broadcast is no
        // host's: it would be answered to every host on the segment.
        if a.sha.is_multicast() {
            return Outcome::drop(DropReason::BadArp);
        }
        if !self.owns(a.tpa) {
            return Outcome::drop(DropReason::ArpNotForUs);
        }
        let learned = (!a.spa.is_unspecified()).then_some((IpAddr::V4(a.spa), a.sha));
        if a.op == arp::OP_REPLY {
            return Outcome {
                verdict: Verdict::Consumed(Handled::ArpReply),
                learned,
            };
        }
        let reply = arp::Arp {
            op: arp::OP_REPLY,
            sha: self.mac,
            spa: a.tpa,
            tha: a.sha,
            tpa: a.spa,
        };
        arp::write(body, &reply);
        ethernet::set_macs(frame, a.sha, self.mac);
        Outcome {
            verdict: Verdict::Reply(Handled::ArpRequest),
            learned,
        }
    }

    fn handle_ipv4(&self, frame: &mut [u8]) -> Outcome {
        let ip = &mut frame[ethernet::HEADER_LEN..];
        let h = match ipv4::parse(ip) {
            Ok(h) => h,
            Err(ipv4::Ipv4Error::Truncated) => return Outcome::drop(DropReason::Truncated),
            Err(ipv4::Ipv4Error::BadHeader) => return Outcome::drop(DropReason::BadIpv4Header),
            Err(ipv4::Ipv4Error::BadChecksum) => return Outcome::drop(DropReason::BadIpv4Checksum),
        };
        if !self.owns(h.dst) {
            return Outcome::drop(DropReason::NotForUs);
        }
        if h.is_fragment {
            return Outcome::drop(DropReason::Ipv4Fragment);
        }
        if h.protocol != ipv4::PROTO_ICMP {
            return Outcome::drop(DropReason::UnsupportedProtocol);
        }
        let msg = &mut ip[h.header_len..h.total_len];
        if msg.len() < icmp::HEADER_LEN || !checksum::verify(msg) {
            return Outcome::drop(DropReason::BadIcmp);
        }
        if msg[0] != icmp::TYPE_ECHO_REQUEST || msg[1] != 0 {
            return Outcome::drop(DropReason::UnsupportedIcmp);
        }
        icmp::echo_request_to_reply(msg);
        ipv4::rewrite_for_reply(ip, h.header_len, h.dst, h.src, DEFAULT_TTL);
        let src_mac = ethernet::src(frame);
        ethernet::set_macs(frame, src_mac, self.mac);
        Outcome {
            verdict: Verdict::Reply(Handled::IcmpEcho),
            learned: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const OUR_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x01]);
    const HOST_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x0a]);
    const OUR_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
    const HOST_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);

    fn port() -> LocalPort {
        LocalPort::new(OUR_MAC, &[Ipv4Addr::new(198, 51, 100, 1), OUR_IP])
    }

    fn arp_frame(op: u16, tpa: Ipv4Addr) -> Vec<u8> {
        let mut f = vec![0u8; 60];
        ethernet::write_header(
            &mut f,
            MacAddr::BROADCAST,
            HOST_MAC,
            ethernet::ETHERTYPE_ARP,
        );
        arp::write(
            &mut f[14..],
            &arp::Arp {
                op,
                sha: HOST_MAC,
                spa: HOST_IP,
                tha: MacAddr::ZERO,
                tpa,
            },
        );
        f
    }

    fn echo_frame(dst: Ipv4Addr, payload: &[u8]) -> Vec<u8> {
        let icmp_len = 8 + payload.len();
        let mut f = vec![0u8; 14 + 20 + icmp_len];
        ethernet::write_header(&mut f, OUR_MAC, HOST_MAC, ethernet::ETHERTYPE_IPV4);
        ipv4::write_header(
            &mut f[14..],
            (20 + icmp_len) as u16,
            1,
            64,
            ipv4::PROTO_ICMP,
            HOST_IP,
            dst,
        );
        let m = &mut f[34..];
        m[0] = icmp::TYPE_ECHO_REQUEST;
        m[4..8].copy_from_slice(&[0x12, 0x34, 0, 7]);
        m[8..].copy_from_slice(payload);
        let c = checksum::checksum(m);
        m[2..4].copy_from_slice(&c.to_be_bytes());
        f
    }

    #[test]
    fn arp_from_a_multicast_hardware_address_is_refused() {
        // Found by fuzzing: the reply went to the multicast sender address.
        let mut f = arp_frame(arp::OP_REQUEST, OUR_IP);
        f[14 + 8..14 + 14].copy_from_slice(&[0x01, 0, 0x5e, 0, 0, 1]);
        let out = port().handle(&mut f);
        assert_eq!(out.verdict, Verdict::Drop(DropReason::BadArp));
        assert_eq!(out.learned, None);
    }

    #[test]
    fn answers_arp_request_for_own_address() {
        let mut f = arp_frame(arp::OP_REQUEST, OUR_IP);
        let o = port().handle(&mut f);
        assert_eq!(o.verdict, Verdict::Reply(Handled::ArpRequest));
        assert_eq!(o.learned, Some((IpAddr::V4(HOST_IP), HOST_MAC)));
        assert_eq!(ethernet::dst(&f), HOST_MAC);
        assert_eq!(ethernet::src(&f), OUR_MAC);
        let a = arp::parse(&f[14..]).unwrap();
        assert_eq!(a.op, arp::OP_REPLY);
        assert_eq!(
            (a.sha, a.spa, a.tha, a.tpa),
            (OUR_MAC, OUR_IP, HOST_MAC, HOST_IP)
        );
    }

    #[test]
    fn ignores_arp_for_other_addresses_and_learns_replies() {
        let mut f = arp_frame(arp::OP_REQUEST, Ipv4Addr::new(192, 0, 2, 99));
        assert_eq!(
            port().handle(&mut f).verdict,
            Verdict::Drop(DropReason::ArpNotForUs)
        );
        let mut f = arp_frame(arp::OP_REPLY, OUR_IP);
        let o = port().handle(&mut f);
        assert_eq!(o.verdict, Verdict::Consumed(Handled::ArpReply));
        assert_eq!(o.learned, Some((IpAddr::V4(HOST_IP), HOST_MAC)));
    }

    #[test]
    fn answers_echo_with_valid_checksums() {
        let mut f = echo_frame(OUR_IP, b"sluice ping payload");
        let o = port().handle(&mut f);
        assert_eq!(o.verdict, Verdict::Reply(Handled::IcmpEcho));
        let h = ipv4::parse(&f[14..]).unwrap();
        assert_eq!((h.src, h.dst, h.ttl), (OUR_IP, HOST_IP, DEFAULT_TTL));
        assert_eq!(f[34], icmp::TYPE_ECHO_REPLY);
        assert!(checksum::verify(&f[34..]));
        assert_eq!(&f[42..], b"sluice ping payload");
        assert_eq!(ethernet::dst(&f), HOST_MAC);
    }

    #[test]
    fn drops_by_reason() {
        let p = port();
        let mut f = echo_frame(Ipv4Addr::new(203, 0, 113, 5), b"x");
        assert_eq!(
            p.handle(&mut f).verdict,
            Verdict::Drop(DropReason::NotForUs)
        );
        let mut f = echo_frame(OUR_IP, b"x");
        f[40] ^= 0xff; // corrupt the ICMP checksum
        assert_eq!(p.handle(&mut f).verdict, Verdict::Drop(DropReason::BadIcmp));
        let mut f = echo_frame(OUR_IP, b"x");
        f[24] ^= 0xff; // corrupt the IP checksum
        assert_eq!(
            p.handle(&mut f).verdict,
            Verdict::Drop(DropReason::BadIpv4Checksum)
        );
        let mut f = echo_frame(OUR_IP, b"x");
        f[12] = 0x88;
        f[13] = 0xcc; // LLDP
        assert_eq!(
            p.handle(&mut f).verdict,
            Verdict::Drop(DropReason::UnsupportedEthertype)
        );
        let mut f = vec![0u8; 10];
        assert_eq!(
            p.handle(&mut f).verdict,
            Verdict::Drop(DropReason::Truncated)
        );
        let mut f = arp_frame(arp::OP_REQUEST, OUR_IP);
        f[6] = 0x01; // multicast source
        assert_eq!(
            p.handle(&mut f).verdict,
            Verdict::Drop(DropReason::BadSourceMac)
        );
    }

    proptest! {
        // Whatever arrives, handling never panics, and a reply is only ever
        // produced for a frame addressed to one of our addresses.
        #[test]
        fn arbitrary_frames_never_panic(mut f in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = port().handle(&mut f);
        }

        #[test]
        fn mutated_echo_never_panics(idx in 0usize..62, val in any::<u8>()) {
            let mut f = echo_frame(OUR_IP, b"0123456789abcdefghij");
            let i = idx % f.len();
            f[i] = val;
            let o = port().handle(&mut f);
            if let Verdict::Reply(Handled::IcmpEcho) = o.verdict {
                prop_assert!(checksum::verify(&f[34..]));
                prop_assert!(ipv4::parse(&f[14..]).is_ok());
            }
        }
    }
}
