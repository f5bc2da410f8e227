//! The load-balancing pipeline of Sluice, sans-IO: what happens to one
//! packet, decided on plain bytes and plain structs, with no DPDK. The
//! daemon's workers run it on mbuf data; tests and benchmarks run it on
//! byte vectors.
//!
//! - [`ingress`]: admission at the door: the frame's MACs and the
//!   packet's source address.
//! - [`model`]: virtual services and real servers as workers see them
//!   ([`ServiceTable`]), built from the control protocol's specs.
//! - [`route`]: connected prefixes, static routes and the default gateway.
//! - [`steer`]: which worker owns a flow (by client address), so NAT
//!   replies find their connection with any number of workers.
//! - [`stats`]: per-worker, single-writer counters and connection gauges
//!   per service and per real; [`loads`] turns them into scheduler input.
//! - [`snapshot`]: the immutable configuration a worker runs with.
//! - [`pipeline`]: the [`Forwarder`]: classify, steer, look up or
//!   schedule, rewrite, route.
//! - [`tableless`]: the flows forwarded without an entry while the table
//!   was full, so they stay forwarded once it has room.
//! - [`synproxy`]: the SYN proxy: when handshakes are answered with
//!   cookies, and the sequence translation state of proxied connections.
//! - [`park`]: client packets waiting for a proxied handshake with the
//!   real to complete, and fragments waiting for their first.
//! - [`fragments`]: the datagrams whose first fragment went through, for
//!   their later fragments to follow.
//! - [`hold`]: frames waiting for their next hop's MAC, ARP retries, and
//!   the VIPs to announce with gratuitous ARP.

pub mod fragments;
pub mod hold;
pub mod ingress;
pub mod loads;
pub mod local_ports;
pub mod model;
pub mod park;
pub mod pipeline;
pub mod route;
pub mod slot;
pub mod snapshot;
pub mod stats;
pub mod steer;
pub mod synproxy;
pub mod tableless;

pub use model::{Drain, RealServer, ServiceTable, VirtualService};
pub use pipeline::{
    Action, Forwarder, ForwarderConfig, Installed, Lookahead, RetellCursor, SentError, MAX_BURST,
};
pub use route::RouteTable;
pub use slot::{RealSlot, ServiceSlot, MAX_REALS, MAX_SERVICES};
pub use snapshot::{PortBase, PortView, Snapshot, TunnelView};
pub use stats::{Counter, SharedStats, WorkerLbStats};
