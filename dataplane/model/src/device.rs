//! A network device's own counters, as DPDK's `rte_eth_stats` keeps them:
//! what the DPDK layer reads from a port and the control protocol reports,
//! so both speak of one type.

use serde::{Deserialize, Serialize};

/// A device's basic counters (`rte_eth_stats`).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct DeviceStats {
    /// Packets received.
    pub ipackets: u64,
    /// Packets sent.
    pub opackets: u64,
    /// Bytes received.
    pub ibytes: u64,
    /// Bytes sent.
    pub obytes: u64,
    /// Dropped by the device (RX queue full).
    pub imissed: u64,
    /// Receive errors.
    pub ierrors: u64,
    /// Transmit errors.
    pub oerrors: u64,
    /// RX buffer allocation failures.
    pub rx_nombuf: u64,
}
