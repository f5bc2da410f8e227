//! The Prometheus/OpenMetrics endpoint (placeholder until implemented).

use crate::control::Pending;
use crossbeam_channel::Sender;
use std::net::SocketAddr;

/// The metrics HTTP server; stops when dropped.
pub struct MetricsServer {}

impl MetricsServer {
    /// Starts serving `GET /metrics` on `addr`, answering from the control
    /// thread through `requests`.
    pub fn start(addr: SocketAddr, requests: Sender<Pending>) -> std::io::Result<MetricsServer> {
        let _ = (addr, requests);
        Err(std::io::Error::other(
            "the metrics endpoint is not built yet",
        ))
    }
}
