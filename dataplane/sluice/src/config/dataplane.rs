//! The `[dataplane]` section: worker lcores, buffers, bursts, idling,
//! neighbour timing and the connection table's size.

use super::raw::RawDataplane;
use super::refusal::{refuse, Refusal};

/// Worker and buffer settings.
#[derive(Debug, Clone, PartialEq)]
pub struct DataplaneConfig {
    /// The control thread's lcore.
    pub main_lcore: u32,
    /// One worker per lcore listed.
    pub workers: Vec<u32>,
    /// Mbufs in the pool.
    pub mempool_size: u32,
    /// Per-lcore mempool cache.
    pub mempool_cache: u32,
    /// RX descriptors per queue.
    pub rx_desc: u16,
    /// TX descriptors per queue.
    pub tx_desc: u16,
    /// Packets per RX burst.
    pub burst: u16,
    /// Sleep this long after idle polls (0: never sleep, pure polling).
    pub idle_sleep_us: u32,
    /// Consecutive empty polls before sleeping.
    pub idle_polls_before_sleep: u32,
    /// How long an ARP answer keeps a neighbour REACHABLE (then STALE:
    /// still used, re-checked by unicast probes when used).
    pub neighbour_reachable_secs: u32,
    /// Connection-table capacity of each worker.
    pub connections: u32,
    /// IPv6 connection-table capacity of each worker (its entries are 104
    /// bytes to IPv4's 56).
    pub connections6: u32,
    /// Half-open connections (SYN_RECV, unanswered) on one worker at which
    /// services left at `syn_proxy = "auto"` answer SYNs with cookies (0:
    /// never automatically).
    pub syn_recv_threshold: u32,
    /// The local ports full NAT allocates from (each worker owns those
    /// that are its index modulo the worker count).
    pub local_ports: std::ops::RangeInclusive<u16>,
}

/// Checks `[dataplane]` for a box with `ports` ports.
pub(super) fn validate(d: &RawDataplane, ports: usize) -> Result<DataplaneConfig, Refusal> {
    check_workers(d)?;
    let burst = d.burst.unwrap_or(32);
    if !(1..=256).contains(&burst) {
        return refuse("dataplane.burst", format!("{burst} is not in 1..=256"));
    }
    let mempool_cache = d.mempool_cache.unwrap_or(256);
    if mempool_cache > 512 {
        return refuse(
            "dataplane.mempool_cache",
            format!("{mempool_cache} is larger than DPDK's limit of 512"),
        );
    }
    let config = DataplaneConfig {
        main_lcore: d.main_lcore,
        workers: d.workers.clone(),
        mempool_size: d.mempool_size.unwrap_or(8191),
        mempool_cache,
        rx_desc: d.rx_desc.unwrap_or(1024),
        tx_desc: d.tx_desc.unwrap_or(1024),
        burst,
        idle_sleep_us: d.idle_sleep_us.unwrap_or(0),
        idle_polls_before_sleep: d.idle_polls_before_sleep.unwrap_or(100),
        neighbour_reachable_secs: d.neighbour_reachable_secs.unwrap_or(30),
        connections: d.connections.unwrap_or(1 << 22),
        connections6: d.connections6.unwrap_or(1 << 16),
        syn_recv_threshold: d
            .syn_recv_threshold
            .unwrap_or(sluice_lb::synproxy::DEFAULT_SYN_RECV_THRESHOLD),
        local_ports: local_ports(d)?,
    };
    check_mempool(&config, ports)?;
    if d.neighbour_max_age_secs.is_some() {
        return refuse(
            "dataplane.neighbour_max_age_secs",
            "neighbours no longer age out: use neighbour_reachable_secs (how long an \
             ARP answer counts; stale neighbours are still used and re-checked)",
        );
    }
    for (at, n) in [
        ("dataplane.connections", config.connections),
        ("dataplane.connections6", config.connections6),
    ] {
        if !(1024..=sluice_conntrack::MAX_CAPACITY).contains(&n) {
            return refuse(
                at,
                format!("{n} is not in 1024..={}", sluice_conntrack::MAX_CAPACITY),
            );
        }
    }
    Ok(config)
}

/// `local_ports = [first, last]`: not port 0, in order, and at least one
/// port per worker.
fn local_ports(d: &RawDataplane) -> Result<std::ops::RangeInclusive<u16>, Refusal> {
    let Some([first, last]) = d.local_ports else {
        return Ok(sluice_lb::local_ports::DEFAULT_LOCAL_PORTS);
    };
    if first == 0 || first > last {
        return refuse(
            "dataplane.local_ports",
            format!("[{first}, {last}] is not a range of ports from 1 up (first, last)"),
        );
    }
    let workers = d.workers.len();
    if usize::from(last - first) + 1 < workers {
        return refuse(
            "dataplane.local_ports",
            format!("[{first}, {last}] leaves no port for some of the {workers} workers"),
        );
    }
    Ok(first..=last)
}

fn check_workers(d: &RawDataplane) -> Result<(), Refusal> {
    if d.workers.is_empty() {
        return refuse("dataplane.workers", "at least one worker lcore is needed");
    }
    for (i, w) in d.workers.iter().enumerate() {
        let at = format!("dataplane.workers[{i}]");
        if *w == d.main_lcore {
            return refuse(
                at,
                format!("lcore {w} is the main (control) lcore; workers need their own"),
            );
        }
        if *w >= 128 {
            return refuse(at, format!("lcore {w} is past the EAL's limit of 128"));
        }
        if d.workers[..i].contains(w) {
            return refuse(at, format!("lcore {w} is listed twice"));
        }
    }
    Ok(())
}

/// Every worker needs an RX and TX queue on every port, and the mempool
/// must cover the RX rings plus bursts in flight.
fn check_mempool(d: &DataplaneConfig, ports: usize) -> Result<(), Refusal> {
    let rings = (ports * d.workers.len()) as u64;
    let needed = rings * (d.rx_desc as u64 + d.burst as u64 * 2)
        + (d.mempool_cache as u64 * (d.workers.len() as u64 + 1));
    if (d.mempool_size as u64) < needed.min(1 << 20) {
        return refuse(
            "dataplane.mempool_size",
            format!(
                "{} mbufs cannot fill {rings} RX rings of {} descriptors plus bursts and \
                 caches; use at least {needed}",
                d.mempool_size, d.rx_desc
            ),
        );
    }
    Ok(())
}
