//! What the control thread knows of the running ports and workers: the
//! devices with their names and addresses, and each worker's lcore and
//! counters. Built by [`crate::app`], read by [`crate::control`].

use crate::counters::WorkerCounters;
use crossbeam_utils::CachePadded;
use sluice_core::{Ipv4Prefix, Ipv6Prefix, MacAddr};
use sluice_dpdk::Port;
use std::sync::Arc;

/// A port as the control thread knows it.
pub(crate) struct PortEntry {
    pub(crate) port: Port,
    /// Its kernel interface, if it has one.
    pub(crate) kernel: Option<Port>,
    pub(crate) name: String,
    pub(crate) device: String,
    pub(crate) driver: String,
    pub(crate) mac: MacAddr,
    pub(crate) addresses: Vec<Ipv4Prefix>,
    pub(crate) addresses6: Vec<Ipv6Prefix>,
    pub(crate) queues: u16,
    pub(crate) rss: bool,
}

/// Every port of the appliance, in configuration order.
pub(crate) struct Ports {
    pub(crate) entries: Vec<PortEntry>,
}

impl Ports {
    /// How many there are.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

/// A worker as the control thread knows it.
pub(crate) struct WorkerEntry {
    pub(crate) lcore: u32,
    pub(crate) socket: u32,
    pub(crate) counters: Arc<CachePadded<WorkerCounters>>,
}
