//! Sluice's fuzz targets as plain functions over bytes that panic when an
//! invariant breaks. cargo-fuzz runs them (the `fuzz/` project, one
//! `fuzz_targets/*.rs` per function) and `cargo test` replays the
//! committed corpora in `fuzz/corpus/<target>/` (`tests/replay.rs`), so a
//! regression fails CI without a fuzzer.
//!
//! | target | what it reads |
//! |---|---|
//! | [`forwarder`] | sequences of frames through two workers' `Forwarder::process`, every direction, live tables, every scheduler and forwarding method |
//! | [`parse`] | `sluice_core::flow::parse` |
//! | [`local`] | the ARP and ICMP echo responder |
//! | [`control`] | the control protocol's request line |
//! | [`config`] | the configuration file |
//! | [`agent`] | a server agent's reply |

pub mod forwarder;
pub mod frames;
pub mod lab;
pub mod seeds;
pub mod text;
pub mod wire;

pub use forwarder::target as forwarder;
pub use text::{agent, config, control};
pub use wire::{local, parse};

/// A fuzz target: any bytes in, a panic when an invariant breaks.
pub type Target = fn(&[u8]);

/// Every target by name, as the corpus folders are named.
pub const TARGETS: &[(&str, Target)] = &[
    ("forwarder", forwarder),
    ("parse", parse),
    ("local", local),
    ("control", control),
    ("config", config),
    ("agent", agent),
];
