//! Why a packet was dropped. Every drop in the dataplane is counted under
//! one of these reasons; the names are stable (they appear in `sluicectl
//! stats --json` and in metrics).

/// A reason for dropping a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum DropReason {
    /// Shorter than the headers it claims to carry.
    Truncated = 0,
    /// An EtherType Sluice does not handle (LLDP, ...).
    UnsupportedEthertype,
    /// A malformed ARP packet, or ARP for another protocol than IPv4.
    BadArp,
    /// An ARP request for an address that is not the appliance's.
    ArpNotForUs,
    /// An IPv4 header with a bad version, header length or total length.
    BadIpv4Header,
    /// An IPv4 header checksum mismatch.
    BadIpv4Checksum,
    /// An IPv4 fragment that cannot follow a flow: a first fragment too
    /// short for its TCP or UDP header (RFC 1858's tiny fragments), or an
    /// ICMP fragment to the appliance itself (Sluice does not
    /// reassemble).
    Ipv4Fragment,
    /// IPv4 to an address that is neither the appliance's nor a service's.
    NotForUs,
    /// ICMP other than echo request to the appliance.
    UnsupportedIcmp,
    /// A malformed ICMP message (too short, bad checksum).
    BadIcmp,
    /// An IP protocol the appliance does not serve on its own addresses.
    UnsupportedProtocol,
    /// A frame with a source MAC that is multicast or broadcast.
    BadSourceMac,
    /// A packet of more than one segment.
    MultiSegment,
    /// The transmit queue was full.
    TxFull,
    /// A packet to forward whose TTL would reach zero.
    TtlExceeded,
    /// A packet of a connection whose real server (or service) was removed
    /// with the "end connections" policy.
    RealRemoved,
    /// TCP that is not a SYN for a virtual service, with no connection.
    NoConnection,
    /// A new connection for a service with no usable real server.
    NoRealAvailable,
    /// No route to the destination (or a DR real off the connected prefixes).
    NoRoute,
    /// The next hop did not answer ARP in time.
    NeighbourUnresolved,
    /// Too many packets already waiting for ARP resolution.
    HoldQueueFull,
    /// The ring to the worker that owns the flow was full.
    HandoffFull,
    /// A new NAT connection whose reply key (real, client address and
    /// port) is held by the client's connection to another VIP through
    /// the same real, with no other real free of such a clash.
    ReplyKeyClash,
    /// A frame whose destination MAC is not the port's (nor broadcast ARP):
    /// the appliance is not its next hop.
    NotOurMac,
    /// An IPv4 source no host may use (0.0.0.0/8, 127/8, multicast,
    /// 240/4, a connected subnet's broadcast) or one of the appliance's
    /// own addresses or VIPs (a land attack), as the kernel's martian
    /// filter drops them.
    MartianSource,
    /// A TCP flag combination no TCP sends (NULL, SYN+FIN, SYN+RST,
    /// XMAS, FIN without ACK, ...), as netfilter's `tcp_valid_flags`.
    BadTcpFlags,
    /// A TCP data offset below 5 words or beyond the segment.
    BadTcpHeader,
    /// A UDP length field below 8 or above the IP payload.
    BadUdpLength,
    /// A TCP or UDP checksum mismatch on a packet that would create a
    /// connection or feed passive health.
    BadL4Checksum,
    /// ARP from a sender whose address is not on the segment of the port it
    /// came in on: never learned, so it cannot redirect another segment's
    /// traffic.
    ArpWrongSegment,
    /// ARP from another host claiming one of the appliance's addresses or
    /// VIPs (gratuitous or not): ignored.
    ArpClaimsOurAddress,
    /// A packet from a real's side (a reply, or an ICMP error about a
    /// connection) that came in on a port the route table does not reach
    /// that side through.
    SpoofedReply,
    /// A packet of a proxied connection whose handshake with the real is
    /// not complete: a client packet with nothing to deliver (or no room
    /// to park it, or parked too long), or a real's packet that is not
    /// the answer to the appliance's SYN.
    HandshakePending,
    /// A new connection found the connection table full and could not be
    /// forwarded without an entry (a proxied handshake needs one).
    TableFull,
    /// An IPv6 header with a version other than 6.
    BadIpv6Header,
    /// An IPv6 fragment that cannot follow a flow, as
    /// [`DropReason::Ipv4Fragment`] (an atomic fragment, RFC 6946, is not
    /// a fragment).
    Ipv6Fragment,
    /// An IPv6 extension-header chain Sluice does not walk: a header that
    /// runs past the payload, hop-by-hop options not first, a routing
    /// header with segments left, or more than 8 headers.
    BadIpv6Extension,
    /// A neighbour discovery message that fails RFC 4861's checks (hop
    /// limit not 255, bad checksum, bad option, multicast target or
    /// link-layer address, a malformed duplicate address probe).
    BadNd,
    /// A neighbour solicitation from, or advertisement of, one of the
    /// appliance's own IPv6 addresses or VIPs by another host: ignored.
    NdClaimsOurAddress,
    /// A packet for a tunnel real that would not fit the tunnel's MTU once
    /// encapsulated (its source is told with fragmentation needed or
    /// packet too big, unless it may be fragmented).
    TooBigForTunnel,
    /// A frame for a tunnel real whose buffer has no room in front for the
    /// outer header.
    NoHeadroom,
    /// A later fragment whose datagram's first fragment did not come (or
    /// was not forwarded) while it was held.
    FragmentUnmatched,
    /// A later fragment that found no room to wait for its first.
    FragmentHoldFull,
    /// A new full-NAT connection found no local port free towards its
    /// real on any of the service's local addresses.
    LocalPortsExhausted,
    /// A client packet that would not fit the MTU towards the reals with
    /// the PROXY protocol header in front, or a fragment of a datagram
    /// that should carry one.
    TooBigForProxyHeader,
    /// A frame whose buffer has no room at its end for the PROXY protocol
    /// header.
    NoTailroom,
}

impl DropReason {
    /// Number of reasons.
    pub const COUNT: usize = 46;

    /// Every reason, in index order.
    pub const ALL: [DropReason; DropReason::COUNT] = [
        DropReason::Truncated,
        DropReason::UnsupportedEthertype,
        DropReason::BadArp,
        DropReason::ArpNotForUs,
        DropReason::BadIpv4Header,
        DropReason::BadIpv4Checksum,
        DropReason::Ipv4Fragment,
        DropReason::NotForUs,
        DropReason::UnsupportedIcmp,
        DropReason::BadIcmp,
        DropReason::UnsupportedProtocol,
        DropReason::BadSourceMac,
        DropReason::MultiSegment,
        DropReason::TxFull,
        DropReason::TtlExceeded,
        DropReason::RealRemoved,
        DropReason::NoConnection,
        DropReason::NoRealAvailable,
        DropReason::NoRoute,
        DropReason::NeighbourUnresolved,
        DropReason::HoldQueueFull,
        DropReason::HandoffFull,
        DropReason::ReplyKeyClash,
        DropReason::NotOurMac,
        DropReason::MartianSource,
        DropReason::BadTcpFlags,
        DropReason::BadTcpHeader,
        DropReason::BadUdpLength,
        DropReason::BadL4Checksum,
        DropReason::ArpWrongSegment,
        DropReason::ArpClaimsOurAddress,
        DropReason::SpoofedReply,
        DropReason::HandshakePending,
        DropReason::TableFull,
        DropReason::BadIpv6Header,
        DropReason::Ipv6Fragment,
        DropReason::BadIpv6Extension,
        DropReason::BadNd,
        DropReason::NdClaimsOurAddress,
        DropReason::TooBigForTunnel,
        DropReason::NoHeadroom,
        DropReason::FragmentUnmatched,
        DropReason::FragmentHoldFull,
        DropReason::LocalPortsExhausted,
        DropReason::TooBigForProxyHeader,
        DropReason::NoTailroom,
    ];

    /// Index into per-reason counter arrays.
    #[inline(always)]
    pub fn index(self) -> usize {
        self as usize
    }

    /// The stable snake_case name.
    pub fn name(self) -> &'static str {
        match self {
            DropReason::Truncated => "truncated",
            DropReason::UnsupportedEthertype => "unsupported_ethertype",
            DropReason::BadArp => "bad_arp",
            DropReason::ArpNotForUs => "arp_not_for_us",
            DropReason::BadIpv4Header => "bad_ipv4_header",
            DropReason::BadIpv4Checksum => "bad_ipv4_checksum",
            DropReason::Ipv4Fragment => "ipv4_fragment",
            DropReason::NotForUs => "not_for_us",
            DropReason::UnsupportedIcmp => "unsupported_icmp",
            DropReason::BadIcmp => "bad_icmp",
            DropReason::UnsupportedProtocol => "unsupported_protocol",
            DropReason::BadSourceMac => "bad_source_mac",
            DropReason::MultiSegment => "multi_segment",
            DropReason::TxFull => "tx_full",
            DropReason::TtlExceeded => "ttl_exceeded",
            DropReason::RealRemoved => "real_removed",
            DropReason::NoConnection => "no_connection",
            DropReason::NoRealAvailable => "no_real_available",
            DropReason::NoRoute => "no_route",
            DropReason::NeighbourUnresolved => "neighbour_unresolved",
            DropReason::HoldQueueFull => "hold_queue_full",
            DropReason::HandoffFull => "handoff_full",
            DropReason::ReplyKeyClash => "reply_key_clash",
            DropReason::NotOurMac => "not_our_mac",
            DropReason::MartianSource => "martian_source",
            DropReason::BadTcpFlags => "bad_tcp_flags",
            DropReason::BadTcpHeader => "bad_tcp_header",
            DropReason::BadUdpLength => "bad_udp_length",
            DropReason::BadL4Checksum => "bad_l4_checksum",
            DropReason::ArpWrongSegment => "arp_wrong_segment",
            DropReason::ArpClaimsOurAddress => "arp_claims_our_address",
            DropReason::SpoofedReply => "spoofed_reply",
            DropReason::HandshakePending => "handshake_pending",
            DropReason::TableFull => "table_full",
            DropReason::BadIpv6Header => "bad_ipv6_header",
            DropReason::Ipv6Fragment => "ipv6_fragment",
            DropReason::BadIpv6Extension => "bad_ipv6_extension",
            DropReason::BadNd => "bad_nd",
            DropReason::NdClaimsOurAddress => "nd_claims_our_address",
            DropReason::TooBigForTunnel => "too_big_for_tunnel",
            DropReason::NoHeadroom => "no_headroom",
            DropReason::FragmentUnmatched => "fragment_unmatched",
            DropReason::FragmentHoldFull => "fragment_hold_full",
            DropReason::LocalPortsExhausted => "local_ports_exhausted",
            DropReason::TooBigForProxyHeader => "too_big_for_proxy_header",
            DropReason::NoTailroom => "no_tailroom",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_and_names_are_consistent() {
        let mut names = std::collections::HashSet::new();
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
            assert!(names.insert(r.name()), "duplicate name {}", r.name());
        }
    }
}
