//! The sync thread: connection synchronisation between appliances (the
//! format, authentication and replay window are `sluice-sync`'s).
//!
//! Every few milliseconds it takes the records the workers queued (new
//! connections, state changes), packs them into authenticated datagrams
//! and sends each to every peer, within the configured rate; it receives
//! the peers' datagrams on an ordinary UDP socket (through the port's
//! kernel interface), checks each one's tag and sequence number, and hands
//! every record to the worker that owns its client, which installs it.
//! Losses only mean a connection not known in advance; every one is
//! counted.

use crate::config::SyncConfig;
use crate::worker::Rings;
use sluice_lb::steer;
use sluice_sync::limit::TokenBucket;
use sluice_sync::replay::{self, ReplayWindow};
use sluice_sync::wire::{self, DecodeError};
use sluice_sync::ConnRecord;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tracing::{info, warn};

/// How long a receive waits: also the pace of sending.
const TICK: Duration = Duration::from_millis(5);
/// Records taken from the workers per tick at most.
const RECORDS_PER_TICK: usize = 16_384;
/// Senders remembered (replay windows) at most.
const MAX_SENDERS: usize = 256;
/// When, after it starts listening, an appliance asks its peers for all
/// their connections (ms): more than once, as the first datagrams may go
/// while the path to a peer is still being resolved; the answers are
/// idempotent.
const REQUEST_AT_MS: [u64; 3] = [0, 1_000, 3_000];

/// The sync thread's counters.
#[derive(Debug, Default)]
pub struct SyncCounters {
    /// Datagrams sent (one per peer).
    pub datagrams_sent: AtomicU64,
    /// Connection records sent to at least one peer (each counted once).
    pub conns_sent: AtomicU64,
    /// Ticks at which the rate limit held records back (they wait).
    pub rate_limited: AtomicU64,
    /// Datagrams the socket refused.
    pub send_errors: AtomicU64,
    /// Authentic, fresh datagrams received.
    pub datagrams_received: AtomicU64,
    /// Connection records they held.
    pub conns_received: AtomicU64,
    /// Datagrams refused: not sync, another version, or malformed.
    pub rejected_malformed: AtomicU64,
    /// Datagrams refused: the tag did not match (wrong key, altered,
    /// forged).
    pub rejected_auth: AtomicU64,
    /// Datagrams refused: seen before, older than the window, or older
    /// than a minute by the clock.
    pub rejected_replay: AtomicU64,
    /// Records not handed to their worker: its ring was full.
    pub queue_full: AtomicU64,
    /// Peers that joined and asked for every connection.
    pub requests_received: AtomicU64,
}

impl SyncCounters {
    fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }
}

/// The running sync thread.
pub struct SyncThread {
    /// Its counters.
    pub counters: Arc<SyncCounters>,
    /// The configuration it runs.
    pub config: SyncConfig,
    /// This appliance's sender id.
    pub sender: u32,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl SyncThread {
    /// Starts the thread for `config`, moving records through `rings`;
    /// `sender` identifies this appliance to its peers.
    pub fn start(
        config: SyncConfig,
        rings: Arc<Rings>,
        sender: u32,
    ) -> std::io::Result<SyncThread> {
        let counters = Arc::new(SyncCounters::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (c, s, cfg) = (counters.clone(), stop.clone(), config.clone());
        let thread = std::thread::Builder::new()
            .name("sync".into())
            .spawn(move || run(&cfg, &rings, sender, &c, &s))?;
        Ok(SyncThread {
            counters,
            config,
            sender,
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for SyncThread {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The wall clock in microseconds.
fn wall_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// The sender id for an appliance listening on `listen`: its IPv4
/// address, or a hash of its IPv6 one.
pub fn sender_id(listen: SocketAddr) -> u32 {
    match listen.ip() {
        IpAddr::V4(v) => u32::from(v),
        IpAddr::V6(v) => {
            let b = u128::from(v);
            (b as u32) ^ ((b >> 32) as u32) ^ ((b >> 64) as u32) ^ ((b >> 96) as u32)
        }
    }
}

/// Binds the socket, retrying every second until it works (the kernel
/// interface may get its address after the thread starts) or the stop.
fn bind(listen: SocketAddr, stop: &AtomicBool) -> Option<UdpSocket> {
    let mut said = false;
    while !stop.load(Ordering::Relaxed) {
        match UdpSocket::bind(listen) {
            Ok(s) => {
                info!(%listen, "connection sync listening");
                return Some(s);
            }
            Err(e) => {
                if !said {
                    warn!(%listen, "connection sync cannot listen yet (retrying): {e}");
                    said = true;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
    None
}

fn run(cfg: &SyncConfig, rings: &Rings, sender: u32, c: &SyncCounters, stop: &AtomicBool) {
    let Some(rings_sync) = &rings.sync else {
        return;
    };
    let Some(sock) = bind(cfg.listen, stop) else {
        return;
    };
    if let Err(e) = sock.set_read_timeout(Some(TICK)) {
        warn!("connection sync: {e}");
        return;
    }
    let start = Instant::now();
    let ms = || start.elapsed().as_millis() as u64;
    // Sequence numbers follow the wall clock (in microseconds), so that a
    // restarted appliance's datagrams are still newer than its last, and a
    // receiver can refuse old ones (replay::fresh).
    let mut seq = 0;
    let mut bucket = TokenBucket::new(
        cfg.max_datagrams_per_sec,
        // (At least one datagram to every peer at once, or none would go.)
        (cfg.max_datagrams_per_sec / 10 + 1).max(cfg.peers.len() as u32),
        ms(),
    );
    let mut windows: HashMap<u32, ReplayWindow> = HashMap::new();
    let mut pending: Vec<ConnRecord> = Vec::new();
    let mut datagram = Vec::with_capacity(wire::MAX_DATAGRAM);
    let mut buf = vec![0u8; 2048];
    let workers = rings_sync.inbox.len();
    let mut requests = REQUEST_AT_MS.iter().peekable();
    while !stop.load(Ordering::Relaxed) {
        // Joining: ask the peers for the connections they carry.
        if requests.next_if(|at| ms() >= **at).is_some() {
            seq = replay::next_seq(seq, wall_us());
            wire::encode_request(sender, seq, &cfg.key, &mut datagram);
            for peer in &cfg.peers {
                match sock.send_to(&datagram, peer) {
                    Ok(_) => SyncCounters::add(&c.datagrams_sent, 1),
                    Err(_) => SyncCounters::add(&c.send_errors, 1),
                }
            }
        }
        for q in &rings_sync.out {
            while pending.len() < RECORDS_PER_TICK {
                match q.pop() {
                    Some(r) => pending.push(r),
                    None => break,
                }
            }
        }
        // Within the rate: what does not fit waits for the next tick (and
        // the workers' rings fill, which holds back a full retelling, or
        // counts the loss of a new connection's record).
        let mut done = 0;
        while done < pending.len() {
            if !bucket.take_n(cfg.peers.len() as u32, ms()) {
                SyncCounters::add(&c.rate_limited, 1);
                break;
            }
            seq = replay::next_seq(seq, wall_us());
            let n = wire::encode(sender, seq, &pending[done..], &cfg.key, &mut datagram);
            done += n.max(1);
            let mut sent = false;
            for peer in &cfg.peers {
                match sock.send_to(&datagram, peer) {
                    Ok(_) => {
                        SyncCounters::add(&c.datagrams_sent, 1);
                        sent = true;
                    }
                    Err(_) => SyncCounters::add(&c.send_errors, 1),
                }
            }
            if sent {
                SyncCounters::add(&c.conns_sent, n as u64);
            }
        }
        pending.drain(..done);
        // Receive until the socket is quiet for a tick.
        for _ in 0..1024 {
            let Ok((len, _from)) = sock.recv_from(&mut buf) else {
                break;
            };
            receive(
                &buf[..len],
                cfg,
                sender,
                &mut windows,
                rings_sync,
                workers,
                c,
            );
        }
    }
}

fn receive(
    d: &[u8],
    cfg: &SyncConfig,
    me: u32,
    windows: &mut HashMap<u32, ReplayWindow>,
    rings: &crate::worker::SyncRings,
    workers: usize,
    c: &SyncCounters,
) {
    let m = match wire::decode(d, &cfg.key) {
        Ok(m) => m,
        Err(DecodeError::BadTag) => return SyncCounters::add(&c.rejected_auth, 1),
        Err(_) => return SyncCounters::add(&c.rejected_malformed, 1),
    };
    if m.sender == me {
        return;
    }
    if !replay::fresh(m.seq, wall_us()) {
        return SyncCounters::add(&c.rejected_replay, 1);
    }
    if !windows.contains_key(&m.sender) && windows.len() >= MAX_SENDERS {
        windows.clear();
    }
    if !windows.entry(m.sender).or_default().accept(m.seq) {
        return SyncCounters::add(&c.rejected_replay, 1);
    }
    SyncCounters::add(&c.datagrams_received, 1);
    SyncCounters::add(&c.conns_received, m.records.len() as u64);
    if m.request {
        // A peer joined: every worker tells all its connections.
        info!(
            sender = m.sender,
            "a peer joined: telling it every connection"
        );
        SyncCounters::add(&c.requests_received, 1);
        for flag in &rings.retell_all {
            flag.store(true, Ordering::Relaxed);
        }
    }
    for r in m.records {
        let owner = match r.client.ip() {
            IpAddr::V4(v) => steer::owner(v, workers),
            IpAddr::V6(v) => steer::owner(v, workers),
        };
        if rings.inbox[owner].push(r).is_err() {
            SyncCounters::add(&c.queue_full, 1);
        }
    }
}
