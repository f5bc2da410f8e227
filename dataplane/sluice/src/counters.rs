//! Per-worker counters. Each worker owns one cache-padded block and is its
//! only writer (relaxed load + store: no locked instruction on the packet
//! path); the control thread reads them at any time. The [`Counter`] is
//! the load balancer's, so one type counts everything.

use crate::config::MAX_PORTS;
use crossbeam_utils::CachePadded;
use sluice_core::DropReason;
pub use sluice_lb::Counter;

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
    /// Polls that received packets.
    pub busy_polls: Counter,
    /// Polls that received nothing.
    pub idle_polls: Counter,
    /// TSC cycles spent in polls that received packets.
    pub busy_cycles: Counter,
    /// Drops by reason.
    pub drops: [Counter; DropReason::COUNT],
    /// Connection table: entries now.
    pub ct_occupancy: Counter,
    /// Connection table: capacity.
    pub ct_capacity: Counter,
    /// Connection table: inserts.
    pub ct_inserts: Counter,
    /// Connection table: inserts refused (full).
    pub ct_insert_failures: Counter,
    /// Connection table: expiries.
    pub ct_expiries: Counter,
    /// Connection table: removals.
    pub ct_removals: Counter,
    /// Persistence templates now.
    pub ct_templates: Counter,
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

    /// Counts a drop.
    #[inline(always)]
    pub fn drop_packet(&self, r: DropReason) {
        self.drops[r.index()].add(1);
    }
}
