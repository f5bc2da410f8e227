//! Connection synchronisation between appliances, sans-IO.
//!
//! Appliances side by side behind an ECMP router tell each other about
//! the connections they schedule, so that a connection moved to another
//! appliance (when the set of appliances changes) finds an entry there and
//! reaches the same real, whatever the scheduler. The model is IPVS's sync
//! daemon (one message carries many connections; loss only means a
//! connection not known in advance), with what IPVS lacks: every datagram
//! is authenticated with HMAC-SHA256 under a shared key and carries a
//! sequence number checked against a replay window, so no one on the
//! segment can inject or replay connections.
//!
//! * [`ConnRecord`]: one connection as it travels;
//! * [`wire`]: the datagram format ([`wire::encode`], [`wire::decode`]);
//! * [`replay`]: the receiver's per-sender window;
//! * [`limit`]: the sender's token bucket (datagrams per second).
//!
//! Nothing here does I/O; the daemon's sync thread sends and receives.

pub mod limit;
pub mod replay;
pub mod wire;

use sluice_model::{Forward, Protocol};
use std::net::SocketAddr;

/// One connection, as one appliance tells the others about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnRecord {
    /// TCP or UDP.
    pub proto: Protocol,
    /// The connection table's state code: a TCP state's index (0 NONE,
    /// 1 ESTABLISHED, 2 SYN_SENT, 3 SYN_RECV, 4 FIN_WAIT, 5 TIME_WAIT,
    /// 6 CLOSE, 7 CLOSE_WAIT, 8 LAST_ACK, 9 LISTEN, 10 SYNACK), 11 for UDP.
    pub state: u8,
    /// How its packets reach the real.
    pub fwd: Forward,
    /// The client's address and port.
    pub client: SocketAddr,
    /// The service's VIP and port.
    pub vip: SocketAddr,
    /// The real's address and port.
    pub real: SocketAddr,
}
