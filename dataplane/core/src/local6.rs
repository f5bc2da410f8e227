//! The appliance's own IPv6 presence on a port, the counterpart of
//! [`crate::local`]'s ARP and ICMP echo: it answers neighbour
//! solicitations for its IPv6 addresses and VIPs, learns neighbours from
//! solicitations and advertisements, answers ICMPv6 echo, and builds the
//! solicitations it sends to resolve a next hop and the unsolicited
//! advertisements it sends when an address appears (RFC 4861).
//!
//! Every neighbour discovery message is validated as RFC 4861 7.1 asks:
//! hop limit 255 (so it was not routed), a correct ICMPv6 checksum, code
//! 0, a non-multicast target, options of non-zero length within the
//! message; a solicitation from the unspecified address (duplicate address
//! detection) must go to a solicited-node address and carry no link-layer
//! option; a solicited advertisement may not go to a multicast address.

use crate::addr::MacAddr;
use crate::drop_reason::DropReason;
use crate::flow6;
use crate::local::{Handled, LocalPort, Outcome, Verdict, DEFAULT_TTL};
use crate::wire::{ethernet, icmpv6, ipv6};
use std::net::{IpAddr, Ipv6Addr};

/// All-nodes multicast (ff02::1), where unsolicited advertisements go.
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// Length of a frame carrying a neighbour solicitation or advertisement
/// with its link-layer address option.
pub const ND_FRAME_LEN: usize = ethernet::HEADER_LEN + ipv6::HEADER_LEN + icmpv6::ND_LEN + 8;

impl LocalPort {
    /// Handles a received IPv6 frame addressed to the appliance itself:
    /// neighbour discovery and echo.
    pub(crate) fn handle_ipv6(&self, frame: &mut [u8]) -> Outcome {
        let p = match flow6::parse(frame) {
            Ok(p) => p,
            Err(r) => return Outcome::drop(r),
        };
        if p.is_fragment {
            return Outcome::drop(DropReason::Ipv6Fragment);
        }
        let Some(icmp) = p.icmp else {
            return Outcome::drop(if self.owns6(p.dst) {
                DropReason::UnsupportedProtocol
            } else {
                DropReason::NotForUs
            });
        };
        match icmp.ty {
            icmpv6::TYPE_NEIGHBOUR_SOLICIT | icmpv6::TYPE_NEIGHBOUR_ADVERT => {
                self.handle_nd(frame, p.l3, p.l4, p.ip_end(), p.ttl)
            }
            icmpv6::TYPE_ECHO_REQUEST if self.owns6(p.dst) => {
                // The parser checks only errors' checksums (RFC 4443 2.4:
                // a message with a wrong one is discarded, never echoed).
                if !flow6::icmpv6_checksum_ok(p.src, p.dst, &frame[p.l4..p.ip_end()]) {
                    return Outcome::drop(DropReason::BadIcmp);
                }
                self.answer_echo(frame, p.l4, p.ip_end())
            }
            _ if self.owns6(p.dst) => Outcome::drop(DropReason::UnsupportedIcmp),
            _ => Outcome::drop(DropReason::NotForUs),
        }
    }

    fn handle_nd(&self, frame: &mut [u8], l3: usize, l4: usize, end: usize, hops: u8) -> Outcome {
        let ip = &frame[l3..];
        let (src, dst) = (
            ipv6::address(ip, ipv6::SRC_OFFSET),
            ipv6::address(ip, ipv6::DST_OFFSET),
        );
        let m = &frame[l4..end];
        if hops != icmpv6::ND_HOP_LIMIT || !flow6::icmpv6_checksum_ok(src, dst, m) {
            return Outcome::drop(DropReason::BadNd);
        }
        let Ok(nd) = icmpv6::parse_nd(m) else {
            return Outcome::drop(DropReason::BadNd);
        };
        if nd.mac.is_some_and(|m| m.is_multicast()) {
            return Outcome::drop(DropReason::BadNd);
        }
        if self.owns6(src) {
            return Outcome::drop(DropReason::NdClaimsOurAddress);
        }
        if nd.ty == icmpv6::TYPE_NEIGHBOUR_ADVERT {
            return self.advertised(&nd, dst);
        }
        let dad = src.is_unspecified();
        if dad && (dst != ipv6::solicited_node(&nd.target) || nd.mac.is_some()) {
            return Outcome::drop(DropReason::BadNd);
        }
        if !self.owns6(nd.target) {
            return Outcome::drop(DropReason::NotForUs);
        }
        let learned = nd.mac.filter(|_| !dad).map(|mac| (IpAddr::V6(src), mac));
        // The answer goes to the solicitation's sender, or for a duplicate
        // address detection probe to all nodes, which defends the address.
        let (to_ip, to_mac, flags) = if dad {
            (
                ALL_NODES,
                MacAddr(ipv6::multicast_mac(&ALL_NODES)),
                icmpv6::NA_OVERRIDE,
            )
        } else {
            let mac = nd.mac.unwrap_or_else(|| ethernet::src(frame));
            (src, mac, icmpv6::NA_SOLICITED | icmpv6::NA_OVERRIDE)
        };
        // The answer is written over the solicitation. One that carried a
        // link-layer option has room for ours; one without (a unicast NUD
        // probe, where RFC 4861 7.2.4 lets the answer omit it, or a
        // duplicate address probe, where it should be there but the
        // advertisement alone is what makes the prober give the address
        // up) gets an answer without it.
        let room = frame.len() >= ND_FRAME_LEN;
        let advert = icmpv6::Nd {
            ty: icmpv6::TYPE_NEIGHBOUR_ADVERT,
            flags,
            target: nd.target,
            mac: room.then_some(self.mac()),
        };
        write_nd_frame(frame, self.mac(), to_mac, nd.target, to_ip, &advert);
        Outcome {
            verdict: Verdict::Reply(Handled::NeighbourSolicit),
            learned,
        }
    }

    /// A neighbour advertisement: learned when it carries the target's
    /// link-layer address; another host advertising one of our addresses
    /// is refused.
    fn advertised(&self, nd: &icmpv6::Nd, dst: Ipv6Addr) -> Outcome {
        if nd.flags & icmpv6::NA_SOLICITED != 0 && ipv6::is_multicast(&dst) {
            return Outcome::drop(DropReason::BadNd);
        }
        if self.owns6(nd.target) {
            return Outcome::drop(DropReason::NdClaimsOurAddress);
        }
        Outcome {
            verdict: Verdict::Consumed(Handled::NeighbourAdvert),
            learned: nd.mac.map(|mac| (IpAddr::V6(nd.target), mac)),
        }
    }

    /// Turns an echo request into its reply in place. Extension headers of
    /// the request are not echoed: the message moves up behind the fixed
    /// header, and what is left of the frame becomes padding.
    fn answer_echo(&self, frame: &mut [u8], l4: usize, end: usize) -> Outcome {
        let l3 = ethernet::HEADER_LEN;
        let at = l3 + ipv6::HEADER_LEN;
        let len = end - l4;
        frame.copy_within(l4..end, at);
        let ip = &mut frame[l3..];
        let (src, dst) = (
            ipv6::address(ip, ipv6::SRC_OFFSET),
            ipv6::address(ip, ipv6::DST_OFFSET),
        );
        ip[ipv6::PAYLOAD_LEN_OFFSET..ipv6::PAYLOAD_LEN_OFFSET + 2]
            .copy_from_slice(&(len as u16).to_be_bytes());
        ip[ipv6::NEXT_HEADER_OFFSET] = ipv6::NEXT_ICMPV6;
        ip[ipv6::HOP_LIMIT_OFFSET] = DEFAULT_TTL;
        ip[ipv6::SRC_OFFSET..ipv6::SRC_OFFSET + 16].copy_from_slice(&dst.octets());
        ip[ipv6::DST_OFFSET..ipv6::DST_OFFSET + 16].copy_from_slice(&src.octets());
        let m = &mut frame[at..at + len];
        m[0] = icmpv6::TYPE_ECHO_REPLY;
        let c = flow6::icmpv6_checksum(dst, src, m);
        m[2..4].copy_from_slice(&c.to_be_bytes());
        let src_mac = ethernet::src(frame);
        ethernet::set_macs(frame, src_mac, self.mac());
        Outcome {
            verdict: Verdict::Reply(Handled::Icmpv6Echo),
            learned: None,
        }
    }
}

/// Writes a whole frame carrying neighbour discovery message `nd` from
/// `src_ip` (at `src_mac`) to `dst_ip` (at `dst_mac`) into the start of
/// `frame` (at least [`ND_FRAME_LEN`] bytes), hop limit 255, checksum
/// computed; returns its length.
pub fn write_nd_frame(
    frame: &mut [u8],
    src_mac: MacAddr,
    dst_mac: MacAddr,
    src_ip: Ipv6Addr,
    dst_ip: Ipv6Addr,
    nd: &icmpv6::Nd,
) -> usize {
    let len = icmpv6::nd_len(nd);
    ethernet::write_header(frame, dst_mac, src_mac, ethernet::ETHERTYPE_IPV6);
    let ip = &mut frame[ethernet::HEADER_LEN..];
    ipv6::write_header(
        ip,
        len as u16,
        ipv6::NEXT_ICMPV6,
        icmpv6::ND_HOP_LIMIT,
        src_ip,
        dst_ip,
    );
    let m = &mut ip[ipv6::HEADER_LEN..ipv6::HEADER_LEN + len];
    icmpv6::write_nd(m, nd);
    let c = flow6::icmpv6_checksum(src_ip, dst_ip, m);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    ethernet::HEADER_LEN + ipv6::HEADER_LEN + len
}

/// A neighbour solicitation for `target` from `src_ip` at `mac`: to the
/// target's solicited-node multicast address, or, to re-confirm a known
/// neighbour (NUD probe), unicast to its MAC `known`. Returns the length
/// written into `frame`.
pub fn solicit(
    frame: &mut [u8],
    mac: MacAddr,
    src_ip: Ipv6Addr,
    target: Ipv6Addr,
    known: Option<MacAddr>,
) -> usize {
    let (dst_ip, dst_mac) = match known {
        Some(m) => (target, m),
        None => {
            let group = ipv6::solicited_node(&target);
            (group, MacAddr(ipv6::multicast_mac(&group)))
        }
    };
    let nd = icmpv6::Nd {
        ty: icmpv6::TYPE_NEIGHBOUR_SOLICIT,
        flags: 0,
        target,
        mac: Some(mac),
    };
    write_nd_frame(frame, mac, dst_mac, src_ip, dst_ip, &nd)
}

/// An unsolicited neighbour advertisement of `addr` at `mac` to all nodes
/// (override set, solicited clear): IPv6's gratuitous ARP, sent when an
/// address or a VIP appears. Returns the length written into `frame`.
pub fn unsolicited_advert(frame: &mut [u8], mac: MacAddr, addr: Ipv6Addr) -> usize {
    let nd = icmpv6::Nd {
        ty: icmpv6::TYPE_NEIGHBOUR_ADVERT,
        flags: icmpv6::NA_OVERRIDE,
        target: addr,
        mac: Some(mac),
    };
    write_nd_frame(
        frame,
        mac,
        MacAddr(ipv6::multicast_mac(&ALL_NODES)),
        addr,
        ALL_NODES,
        &nd,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow6::build::*;

    const OUR_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x01]);
    const HOST_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x0a]);

    fn ip(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    fn port() -> LocalPort {
        LocalPort::new(OUR_MAC, &[]).with_ipv6(&[ip("2001:db8::1"), ip("2001:db8::100")])
    }

    /// A solicitation from the host for `target`, built from scratch with
    /// the test oracle's checksum.
    fn ns(target: Ipv6Addr, src: Ipv6Addr, dst: Ipv6Addr, slla: Option<MacAddr>) -> Vec<u8> {
        let mut m = vec![135, 0, 0, 0, 0, 0, 0, 0];
        m.extend_from_slice(&target.octets());
        if let Some(mac) = slla {
            m.extend_from_slice(&[1, 1]);
            m.extend_from_slice(&mac.0);
        }
        let mut f = frame6(&Spec6 {
            proto: 58,
            src,
            dst,
            hop_limit: 255,
            payload: m,
            ..Spec6::default()
        });
        f[6..12].copy_from_slice(&HOST_MAC.0);
        f
    }

    #[test]
    fn answers_a_solicitation_for_a_vip_and_learns_the_sender() {
        let host = ip("2001:db8::a");
        let target = ip("2001:db8::100");
        let mut f = ns(target, host, ipv6::solicited_node(&target), Some(HOST_MAC));
        let o = port().handle(&mut f);
        assert_eq!(o.verdict, Verdict::Reply(Handled::NeighbourSolicit));
        assert_eq!(o.learned, Some((IpAddr::V6(host), HOST_MAC)));
        assert_eq!(ethernet::dst(&f), HOST_MAC);
        assert_eq!(ethernet::src(&f), OUR_MAC);
        let p = flow6::parse(&f).unwrap();
        assert_eq!((p.src, p.dst, p.ttl), (target, host, 255));
        let m = &f[p.l4..p.ip_end()];
        assert!(flow6::icmpv6_checksum_ok(p.src, p.dst, m));
        let nd = icmpv6::parse_nd(m).unwrap();
        assert_eq!(nd.ty, icmpv6::TYPE_NEIGHBOUR_ADVERT);
        assert_eq!(nd.flags, icmpv6::NA_SOLICITED | icmpv6::NA_OVERRIDE);
        assert_eq!((nd.target, nd.mac), (target, Some(OUR_MAC)));
    }

    #[test]
    fn duplicate_address_detection_is_defended_to_all_nodes() {
        let target = ip("2001:db8::1");
        let mut f = ns(
            target,
            Ipv6Addr::UNSPECIFIED,
            ipv6::solicited_node(&target),
            None,
        );
        let o = port().handle(&mut f);
        assert_eq!(o.verdict, Verdict::Reply(Handled::NeighbourSolicit));
        assert_eq!(o.learned, None);
        let p = flow6::parse(&f).unwrap();
        assert_eq!(p.dst, ALL_NODES);
        assert_eq!(ethernet::dst(&f), MacAddr([0x33, 0x33, 0, 0, 0, 1]));
        let nd = icmpv6::parse_nd(&f[p.l4..p.ip_end()]).unwrap();
        assert_eq!(nd.flags, icmpv6::NA_OVERRIDE);
        assert_eq!(nd.target, target);
        // A DAD probe with a link-layer option is malformed.
        let mut bad = ns(
            target,
            Ipv6Addr::UNSPECIFIED,
            ipv6::solicited_node(&target),
            Some(HOST_MAC),
        );
        assert_eq!(
            port().handle(&mut bad).verdict,
            Verdict::Drop(DropReason::BadNd)
        );
    }

    #[test]
    fn refusals() {
        let host = ip("2001:db8::a");
        let ours = ip("2001:db8::1");
        let group = ipv6::solicited_node(&ours);
        let check = |mut f: Vec<u8>, r| assert_eq!(port().handle(&mut f).verdict, Verdict::Drop(r));
        // Routed (hop limit not 255).
        let mut f = ns(ours, host, group, Some(HOST_MAC));
        f[14 + 7] = 254;
        check(f, DropReason::BadNd);
        // Bad checksum.
        let mut f = ns(ours, host, group, Some(HOST_MAC));
        let l = f.len();
        f[l - 1] ^= 1;
        check(f, DropReason::BadNd);
        // For someone else.
        check(
            ns(ip("2001:db8::77"), host, group, Some(HOST_MAC)),
            DropReason::NotForUs,
        );
        // From one of our own addresses.
        check(
            ns(ours, ip("2001:db8::100"), group, Some(HOST_MAC)),
            DropReason::NdClaimsOurAddress,
        );
        // A multicast link-layer address.
        check(
            ns(ours, host, group, Some(MacAddr([0x33, 0x33, 0, 0, 0, 1]))),
            DropReason::BadNd,
        );
    }

    #[test]
    fn advertisements_are_learned_unless_they_claim_our_address() {
        let host = ip("2001:db8::a");
        let mut f = vec![0u8; ND_FRAME_LEN];
        let nd = icmpv6::Nd {
            ty: icmpv6::TYPE_NEIGHBOUR_ADVERT,
            flags: icmpv6::NA_SOLICITED,
            target: host,
            mac: Some(HOST_MAC),
        };
        write_nd_frame(&mut f, HOST_MAC, OUR_MAC, host, ip("2001:db8::1"), &nd);
        let o = port().handle(&mut f.clone());
        assert_eq!(o.verdict, Verdict::Consumed(Handled::NeighbourAdvert));
        assert_eq!(o.learned, Some((IpAddr::V6(host), HOST_MAC)));
        let claim = icmpv6::Nd {
            target: ip("2001:db8::100"),
            ..nd
        };
        write_nd_frame(&mut f, HOST_MAC, OUR_MAC, host, ip("2001:db8::1"), &claim);
        assert_eq!(
            port().handle(&mut f).verdict,
            Verdict::Drop(DropReason::NdClaimsOurAddress)
        );
    }

    #[test]
    fn echo_to_a_vip_is_answered_without_the_extension_headers() {
        let host = ip("2001:db8::a");
        let vip = ip("2001:db8::100");
        let payload = [128, 0, 0, 0, 0x12, 0x34, 0, 1, b'p', b'i', b'n', b'g'];
        let mut f = frame6(&Spec6 {
            proto: 58,
            src: host,
            dst: vip,
            ext: vec![Ext::DestOpts(1)],
            payload: payload.to_vec(),
            ..Spec6::default()
        });
        let len = f.len();
        let o = port().handle(&mut f);
        assert_eq!(o.verdict, Verdict::Reply(Handled::Icmpv6Echo));
        assert_eq!(f.len(), len);
        let p = flow6::parse(&f).unwrap();
        assert_eq!(
            (p.src, p.dst, p.ip_header_len, p.ttl),
            (vip, host, 40, DEFAULT_TTL)
        );
        let m = &f[p.l4..p.ip_end()];
        assert_eq!(m[0], icmpv6::TYPE_ECHO_REPLY);
        assert_eq!(&m[4..], &payload[4..]);
        assert!(flow6::icmpv6_checksum_ok(p.src, p.dst, m));
        // To someone else: not ours to answer.
        let mut other = frame6(&Spec6 {
            proto: 58,
            src: host,
            dst: ip("2001:db8::99"),
            payload: payload.to_vec(),
            ..Spec6::default()
        });
        assert_eq!(
            port().handle(&mut other).verdict,
            Verdict::Drop(DropReason::NotForUs)
        );
        // A wrong checksum: discarded, not echoed with a right one.
        let mut bad = frame6(&Spec6 {
            proto: 58,
            src: host,
            dst: vip,
            payload: payload.to_vec(),
            ..Spec6::default()
        });
        let at = bad.len() - payload.len() + 2;
        bad[at] ^= 0x40;
        assert_eq!(
            port().handle(&mut bad).verdict,
            Verdict::Drop(DropReason::BadIcmp)
        );
    }

    #[test]
    fn solicitations_and_unsolicited_adverts_parse_back() {
        let mut f = vec![0u8; ND_FRAME_LEN];
        let target = ip("2001:db8:2::11");
        let n = solicit(&mut f, OUR_MAC, ip("2001:db8:2::1"), target, None);
        assert_eq!(n, ND_FRAME_LEN);
        let p = flow6::parse(&f).unwrap();
        assert_eq!(p.dst, ipv6::solicited_node(&target));
        assert_eq!(ethernet::dst(&f).0, ipv6::multicast_mac(&p.dst));
        let nd = icmpv6::parse_nd(&f[p.l4..p.ip_end()]).unwrap();
        assert_eq!((nd.target, nd.mac), (target, Some(OUR_MAC)));
        solicit(&mut f, OUR_MAC, ip("2001:db8:2::1"), target, Some(HOST_MAC));
        assert_eq!(flow6::parse(&f).unwrap().dst, target);
        assert_eq!(ethernet::dst(&f), HOST_MAC);
        unsolicited_advert(&mut f, OUR_MAC, ip("2001:db8::100"));
        let p = flow6::parse(&f).unwrap();
        assert_eq!(p.dst, ALL_NODES);
        assert!(flow6::icmpv6_checksum_ok(
            p.src,
            p.dst,
            &f[p.l4..p.ip_end()]
        ));
    }
}
