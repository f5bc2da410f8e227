//! Safe layer over `dpdk-sys`: the only place in Sluice where DPDK is called
//! and where `unsafe` code lives. Every `unsafe` block carries a `// SAFETY:`
//! comment that says why it holds.
//!
//! - [`eal`]: EAL initialisation and teardown, DPDK version.
//! - [`mempool`]: packet-buffer pools and their occupancy (leak checks).
//! - [`mbuf`]: an owned [`Mbuf`] and fixed-capacity [`MbufBatch`]es that
//!   make transmit ownership exact.
//! - [`port`]: [`Port`] configuration, queues, link, MAC, statistics.
//! - [`lcore`]: launching closures on worker lcores, cycle counter.
//! - [`telemetry`]: Sluice's commands on DPDK's telemetry socket.
//! - [`pdump`]: enabling capture by `dpdk-dumpcap`.

pub mod eal;
pub mod error;
pub mod lcore;
pub mod mbuf;
pub mod mempool;
pub mod pdump;
pub mod port;
pub mod telemetry;

pub use eal::Eal;
pub use error::{DpdkError, Result};
pub use lcore::{cycles, cycles_hz, LcoreHandle, Scope};
pub use mbuf::{Mbuf, MbufBatch};
pub use mempool::Mempool;
pub use port::{DeviceConfig, LinkStatus, Port, PortInfo, QueuePair, RxQueue, TxQueue};
pub use sluice_model::DeviceStats;
