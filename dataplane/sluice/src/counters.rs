//! Per-worker counters. Each worker owns one cache-padded block and is its
//! only writer (relaxed load + store: no locked instruction on the packet
//! path); the control thread reads them at any time. The [`Counter`] is
//! the load balancer's, so one type counts everything.

use crate::config::MAX_PORTS;
use crossbeam_utils::CachePadded;
use sluice_core::DropReason;
pub use sluice_lb::Counter;
use sluice_lb::WorkerLbStats;
use sluice_proto::{ConnTableStats, Traffic, WorkerStats};

/// Traffic on one port, as one worker saw it.
#[derive(Default)]
pub struct PortCounters {
    /// Packets received.
    pub rx_packets: Counter,
    /// Bytes received.
    pub rx_bytes: Counter,
    /// Packets transmitted.
    pub tx_packets: Counter,
    /// Bytes transmitted.
    pub tx_bytes: Counter,
}

/// One counter per drop reason.
pub struct DropCounters([Counter; DropReason::COUNT]);

impl Default for DropCounters {
    fn default() -> Self {
        DropCounters(std::array::from_fn(|_| Counter::default()))
    }
}

impl std::ops::Deref for DropCounters {
    type Target = [Counter; DropReason::COUNT];

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

/// Everything one worker counts.
#[derive(Default)]
pub struct WorkerCounters {
    /// Per port.
    pub ports: [PortCounters; MAX_PORTS],
    /// ARP requests answered.
    pub arp_requests_answered: Counter,
    /// ARP replies learned.
    pub arp_replies_learned: Counter,
    /// ICMP echo requests answered.
    pub icmp_echo_answered: Counter,
    /// IPv6 neighbour solicitations answered.
    pub nd_solicits_answered: Counter,
    /// IPv6 neighbour advertisements learned.
    pub nd_adverts_learned: Counter,
    /// ICMPv6 echo requests answered.
    pub icmpv6_echo_answered: Counter,
    /// Polls that received packets.
    pub busy_polls: Counter,
    /// Polls that received nothing.
    pub idle_polls: Counter,
    /// TSC cycles spent in polls that received packets.
    pub busy_cycles: Counter,
    /// Drops by reason.
    pub drops: DropCounters,
    /// The IPv4 connection table's figures.
    pub ct: TableCounters,
    /// The IPv6 connection table's figures.
    pub ct6: TableCounters,
    /// Frames passed up to kernel interfaces.
    pub kernel_rx: Counter,
    /// Frames the kernel sent out through the ports.
    pub kernel_tx: Counter,
}

impl WorkerCounters {
    /// A zeroed, cache-padded block.
    pub fn new() -> CachePadded<WorkerCounters> {
        CachePadded::new(WorkerCounters::default())
    }

    /// Traffic on port `i`.
    pub fn traffic(&self, i: usize) -> Traffic {
        let p = &self.ports[i];
        Traffic {
            rx_packets: p.rx_packets.get(),
            rx_bytes: p.rx_bytes.get(),
            tx_packets: p.tx_packets.get(),
            tx_bytes: p.tx_bytes.get(),
        }
    }

    /// These counters and `lb`'s as `stats` reports them, over the first
    /// `ports` ports; the id, the lcore and the rates (which need samples)
    /// are left for the caller.
    pub fn report(&self, lb: &WorkerLbStats, ports: usize) -> WorkerStats {
        WorkerStats {
            traffic: (0..ports.min(MAX_PORTS)).map(|i| self.traffic(i)).sum(),
            arp_requests_answered: self.arp_requests_answered.get(),
            arp_replies_learned: self.arp_replies_learned.get(),
            icmp_echo_answered: self.icmp_echo_answered.get(),
            nd_solicits_answered: self.nd_solicits_answered.get(),
            nd_adverts_learned: self.nd_adverts_learned.get(),
            icmpv6_echo_answered: self.icmpv6_echo_answered.get(),
            busy_polls: self.busy_polls.get(),
            idle_polls: self.idle_polls.get(),
            busy_cycles: self.busy_cycles.get(),
            tsc_hz: sluice_dpdk::cycles_hz(),
            drops: DropReason::ALL
                .iter()
                .map(|r| (r.name().to_string(), self.drops[r.index()].get()))
                .collect(),
            conntrack: self.ct.report(),
            conntrack6: self.ct6.report(),
            handoff_out: lb.handoff_out.get(),
            handoff_in: lb.handoff_in.get(),
            stateless_forwards: lb.stateless_forwards.get(),
            tableless_adopted: lb.tableless_adopted.get(),
            hashed_on_miss: lb.hashed_on_miss.get(),
            sync_queued: lb.sync_queued.get(),
            sync_overflow: lb.sync_overflow.get(),
            sync_installed: lb.sync_installed.get(),
            sync_unknown: lb.sync_unknown.get(),
            time_exceeded_sent: lb.time_exceeded_sent.get(),
            too_big_sent: lb.too_big_sent.get(),
            tunnel_fragmented: lb.tunnel_fragmented.get(),
            fragments_remembered: lb.fragments_remembered.get(),
            fragments_replaced: lb.fragments_replaced.get(),
            fragments_unremembered: lb.fragments_unremembered.get(),
            fragments_followed: lb.fragments_followed.get(),
            fragments_held: lb.fragments_held.get(),
            syns: lb.syns.get(),
            syn_cookies_sent: lb.syn_cookies_sent.get(),
            syn_cookies_valid: lb.syn_cookies_valid.get(),
            syn_cookies_invalid: lb.syn_cookies_invalid.get(),
            syn_proxy_handshakes: lb.syn_proxy_handshakes.get(),
            half_open: lb.half_open.get(),
            local_ports_in_use: lb.local_ports_in_use.get(),
            proxy_headers_sent: lb.proxy_headers_sent.get(),
            syn_proxy_engaged: lb.syn_proxy_engaged.get(),
            held_for_arp: lb.held_for_arp.get(),
            arp_requests_sent: lb.arp_requests_sent.get(),
            nd_solicits_sent: lb.nd_solicits_sent.get(),
            ..WorkerStats::default()
        }
    }

    /// Counts a drop.
    #[inline(always)]
    pub fn drop_packet(&self, r: DropReason) {
        self.drops[r.index()].add(1);
    }
}

/// A connection table's figures, as its worker last read them.
#[derive(Default)]
pub struct TableCounters {
    occupancy: Counter,
    capacity: Counter,
    inserts: Counter,
    insert_failures: Counter,
    expiries: Counter,
    removals: Counter,
    templates: Counter,
}

impl TableCounters {
    /// Records the table's figures `st` and its `templates`.
    pub fn set(&self, st: &sluice_conntrack::TableStats, templates: u32) {
        self.occupancy.set(st.occupancy as u64);
        self.capacity.set(st.capacity as u64);
        self.inserts.set(st.inserts);
        self.insert_failures.set(st.insert_full);
        self.expiries.set(st.expiries);
        self.removals.set(st.removals);
        self.templates.set(u64::from(templates));
    }

    /// The figures as `stats` reports them.
    pub fn report(&self) -> ConnTableStats {
        ConnTableStats {
            occupancy: self.occupancy.get(),
            capacity: self.capacity.get(),
            inserts: self.inserts.get(),
            insert_failures: self.insert_failures.get(),
            expiries: self.expiries.get(),
            removals: self.removals.get(),
            templates: self.templates.get(),
        }
    }
}
