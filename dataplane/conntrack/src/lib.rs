//! Per-worker connection table and TCP state tracking. Sans-IO, no DPDK.
//!
//! This crate is the connection table of the Sluice data plane, the user
//! space counterpart of Linux Virtual Server's `ip_vs_conn` table. Each
//! worker owns one [`ConnTable`] and is its only writer, so the table is a
//! plain `&mut self` structure: no atomics, no locks. It is IPv4 only and
//! never reads a clock: every operation takes `now`, a monotonic timestamp
//! in milliseconds supplied by the caller.
//!
//! # What it does
//!
//! * [`ConnTable::insert`] records a connection ([`NewConn`]): protocol,
//!   client, virtual service and real server address/port, forwarding method
//!   ([`Forward`]), service and real indices, and an
//!   optional persistence template. It fails with an [`InsertError`], never
//!   a panic, when the table is full or the key is taken.
//! * Two lookups per entry, like LVS's two tuple hashes:
//!   [`ConnTable::lookup_inbound`] by `(proto, CIP, cport, VIP, vport)` for
//!   client packets, [`ConnTable::lookup_outbound`] by
//!   `(proto, RIP, rport, CIP, cport)` for NAT replies (see [`FlowKey`]).
//! * [`ConnTable::update`] runs LVS's TCP state machine ([`tcp_state`]) for
//!   one packet, sets the expiry from the per-state [`Timeouts`] and reports
//!   whether the connection became active or inactive ([`Activity`]).
//! * [`ConnTable::expire`] expires connections incrementally, at most
//!   `budget` per call, handing each to a callback.
//! * [`ConnTable::remove`], [`ConnTable::iter`],
//!   [`ConnTable::remove_matching`] and [`ConnTable::drain_real`] (budgeted)
//!   serve the control plane.
//! * [`PersistTable`] holds persistence templates (LVS `-p`/`-M`), kept
//!   alive while connections use them.
//!
//! # Memory
//!
//! Everything is allocated by [`ConnTable::new`]; insert, lookup, update,
//! remove and expire never allocate. Per connection of capacity:
//!
//! | part | bytes |
//! |---|---|
//! | entry ([`Conn`]) | 48 |
//! | inbound index | 8 |
//! | outbound index | 8 |
//! | **total** | **64** |
//!
//! An index is an array of 64-byte buckets (one cache line) of ten slots,
//! each slot a 16-bit fingerprint plus a 32-bit entry index (6 bytes; 10 x 6
//! = 60 bytes + 4 of padding per bucket, i.e. 6.4 bytes per slot). There is
//! one bucket per 8 entries of capacity, rounded up to a power of two, so
//! the index load stays at or below 80 % and the cost is 8 bytes per entry
//! per index when the capacity is a power of two (up to 16 otherwise).
//! A persistence template takes 40 bytes plus 8 bytes of index. The two
//! timing wheels take 4 bytes per slot. The default [`TableConfig`] (2^22
//! connections, 2^18 templates, 16384 wheel slots) allocates about 268 MB
//! for connections and 12.6 MB for templates; see [`TableConfig::memory_bytes`].
//!
//! # Hash index
//!
//! Bucketised cuckoo hashing with fingerprints over an entry slab with a
//! free list (`index` module): each key lives in one of two buckets, so a
//! lookup reads at most two cache lines of index plus the matching entry,
//! and deletion simply clears a slot (no tombstones, no chains). Inserts
//! that find both buckets full move entries along a short path found by a
//! bounded breadth-first search. Keys are hashed with [`FlowHasher`], a
//! seeded two-round folded multiply.
//!
//! # Expiry
//!
//! A hashed timing wheel (`wheel` module) of [`TableConfig::wheel_slots`] slots
//! of [`TableConfig::tick_ms`] each, linked through the entries (no extra
//! memory per entry beyond the two 32-bit links inside [`Conn`]). Each entry
//! stores its expiry time; refreshing a connection on a packet only writes
//! that field. The wheel is visited lazily: an entry found in a due slot
//! with a later expiry is re-slotted then. Only a shortened expiry (e.g. a
//! RST moving ESTABLISHED to CLOSE) re-slots at once, in O(1).
//! `expire(now, budget, ..)` examines at most `budget` entries per call and
//! reports whether it caught up; a clock jump costs at most one walk over
//! the (empty) slots. Entries expire at or after their expiry time, never
//! before, and at most one tick late (plus any backlog left by budgets).
//!
//! # Active and inactive connections
//!
//! As in LVS, a connection is active only in TCP state ESTABLISHED; new
//! connections and UDP connections are inactive. The caller keeps per-real
//! counts: count a new connection as inactive, apply the
//! [`StateUpdate::activity`] reported by [`ConnTable::update`], and on
//! removal or expiry decrement according to [`Conn::is_active`].
//!
//! # Example
//!
//! ```
//! use sluice_conntrack::*;
//!
//! // An IPv4 table (`ConnTable<Ipv6Addr>` is the IPv6 one).
//! let mut t: ConnTable = ConnTable::new(&TableConfig::with_capacity(1024)).unwrap();
//! let new: NewConn = NewConn {
//!     proto: Protocol::Tcp,
//!     client: "198.51.100.7:40000".parse().unwrap(),
//!     vip: "192.0.2.1:80".parse().unwrap(),
//!     real_addr: "10.0.0.2:8080".parse().unwrap(),
//!     local: None,
//!     fwd: Forward::Nat,
//!     service: 0,
//!     real: 1,
//!     template: None,
//! };
//! let now = 1_000;
//! let id = t.insert(&new, now).unwrap();
//! t.update(id, Dir::Inbound, TcpFlags::SYN, now).unwrap();
//!
//! // The reply is found by the outbound key.
//! let reply = FlowKey::outbound(Protocol::Tcp, new.real_addr, new.client);
//! assert_eq!(t.lookup_outbound(&reply), Some(id));
//! t.update(id, Dir::Outbound, TcpFlags::SYN | TcpFlags::ACK, now + 1);
//! let u = t.update(id, Dir::Inbound, TcpFlags::ACK, now + 2).unwrap();
//! assert_eq!(u.new, ConnState::Tcp(TcpState::Established));
//! assert_eq!(u.activity, Activity::Activated);
//!
//! // 15 minutes of silence later it expires.
//! let mut expired = vec![];
//! t.expire(now + 2 + 900_000, 64, |id, c| expired.push((id, c.real())));
//! assert_eq!(expired, vec![(id, 1)]);
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod config;
mod entry;
mod error;
mod hash;
mod index;
mod key;
mod persist;
mod slab;
mod stats;
mod table;
pub mod tcp_state;
mod timeouts;
mod wheel;

pub use config::{TableConfig, MAX_CAPACITY, MAX_WHEEL_SLOTS};
pub use entry::{Conn, ConnFlags, ConnId, Forward, NewConn};
pub use error::{InsertError, TableConfigError};
pub use hash::FlowHasher;
pub use key::{FlowKey, Protocol};
pub use persist::{PersistTable, Template, TemplateId};
pub use stats::{ExpireProgress, ScanCursor, TableStats};
pub use table::{ConnTable, StateUpdate};
pub use tcp_state::{Activity, ConnState, Dir, TcpFlags, TcpState};
pub use timeouts::Timeouts;
