//! The control plane's socket side: a Unix stream socket speaking
//! newline-delimited JSON ([`sluice_proto`]). Client connections are served
//! on their own threads, which only parse and frame; every request is
//! answered by the control thread, one at a time, so control operations are
//! serialised without locks shared with the workers.

pub mod server;

pub use server::{ControlServer, Pending};
