//! The Prometheus/OpenMetrics endpoint.
//!
//! A small HTTP/1.1 server on a `std` TCP listener: `GET /metrics` asks the
//! control thread (as an internal client, over the same channel as the
//! control socket) for `status`, `stats` and the raw (never zeroed)
//! `service list`, and renders them in the Prometheus text format 0.0.4, or
//! in OpenMetrics 1.0.0 when the `Accept` header prefers
//! `application/openmetrics-text`. `GET /` answers a short page pointing at
//! `/metrics`; other paths get 404, other methods 405, malformed requests
//! 400. Every connection is closed after its one response.
//!
//! The accept loop polls a stop flag; each connection is served on its own
//! short-lived thread (at most [`MAX_CONNECTIONS`] at once), which also
//! watches the flag while it reads the request or waits for the control
//! thread, so dropping the [`MetricsServer`] ends promptly.

mod exposition;
mod families;
#[cfg(test)]
mod fixtures;
mod http;
mod server;

pub use exposition::{Format, OPENMETRICS_CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE};
pub use families::render;
pub use http::{MAX_HEAD_BYTES, READ_TIMEOUT};
pub use server::{MetricsServer, MAX_CONNECTIONS, REPLY_TIMEOUT, WRITE_TIMEOUT};
