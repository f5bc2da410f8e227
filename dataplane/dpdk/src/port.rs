//! Ethernet ports: opening a probed device by name, configuring one RX and
//! one TX queue per worker (with RSS when the device supports it), start,
//! stop, link state, MAC address and statistics.
//!
//! Soundness rests on three claims the types make: a device is opened by
//! one [`Port`] at a time in the process, a port is configured once, and
//! its queues are handed out once, as [`QueuePair`]s that borrow the port.
//! So no queue is polled by two threads, and a port cannot be stopped or
//! closed while a queue of it exists.
//!
//! ```no_run
//! # use sluice_dpdk::{Eal, Port};
//! fn poll_then_stop(mut port: Port) {
//!     let pairs = port.queues().unwrap();
//!     drop(pairs);
//!     port.stop().unwrap();
//! }
//! ```
//!
//! A queue cannot outlive its port, nor can the port stop under it:
//!
//! ```compile_fail
//! # use sluice_dpdk::{Eal, Port};
//! fn queues_outlive_the_port(eal: &Eal) {
//!     let pairs = {
//!         let port = Port::open(eal, "net_null0").unwrap();
//!         port.queues().unwrap()
//!     };
//! }
//! ```
//!
//! ```compile_fail
//! # use sluice_dpdk::{Eal, Port};
//! fn stop_under_a_queue(mut port: Port) {
//!     let pairs = port.queues().unwrap();
//!     port.stop().unwrap();
//!     drop(pairs);
//! }
//! ```

use crate::eal::Eal;
use crate::error::{check, DpdkError, Result};
use crate::mbuf::MbufBatch;
use crate::mempool::Mempool;
use sluice_model::DeviceStats;
use std::ffi::{CStr, CString};
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// The port ids a [`Port`] holds in this process.
static CLAIMED: Mutex<Vec<u16>> = Mutex::new(Vec::new());

// RTE_ETH_RSS_* are built with RTE_BIT64(), which bindgen cannot evaluate.
const RSS_IPV4: u64 = 1 << 2;
const RSS_FRAG_IPV4: u64 = 1 << 3;
const RSS_NONFRAG_IPV4_TCP: u64 = 1 << 4;
const RSS_NONFRAG_IPV4_UDP: u64 = 1 << 5;
const RSS_NONFRAG_IPV4_OTHER: u64 = 1 << 7;
const RSS_WANTED: u64 =
    RSS_IPV4 | RSS_FRAG_IPV4 | RSS_NONFRAG_IPV4_TCP | RSS_NONFRAG_IPV4_UDP | RSS_NONFRAG_IPV4_OTHER;

/// How to set a device up.
#[derive(Debug, Clone)]
pub struct DeviceConfig {
    /// Queue pairs (one RX and one TX queue each; one pair per worker).
    pub queues: u16,
    /// Descriptors per RX queue.
    pub rx_desc: u16,
    /// Descriptors per TX queue.
    pub tx_desc: u16,
    /// Receive frames for every destination MAC.
    pub promiscuous: bool,
    /// Receive every multicast frame (IPv6 neighbour discovery sends
    /// solicitations to solicited-node groups).
    pub all_multicast: bool,
}

/// What the driver says about a port.
#[derive(Debug, Clone)]
pub struct PortInfo {
    /// Driver name, e.g. `net_af_packet`.
    pub driver: String,
    /// Most RX queues the device supports.
    pub max_rx_queues: u16,
    /// Most TX queues the device supports.
    pub max_tx_queues: u16,
    /// RSS hash types the device supports (0: no RSS).
    pub rss_offloads: u64,
}

/// Link state.
#[derive(Debug, Clone, Copy)]
pub struct LinkStatus {
    /// Link is up.
    pub up: bool,
    /// Speed in Mbit/s (0 when unknown).
    pub speed_mbps: u32,
    /// Full duplex.
    pub full_duplex: bool,
}

/// A probed Ethernet device, held by this value alone in the process.
pub struct Port {
    id: u16,
    name: String,
    /// Queue pairs set up by [`Port::configure`] (0: not configured).
    queues: u16,
    started: bool,
    queues_taken: AtomicBool,
    pool: Option<Arc<Mempool>>,
    _eal: Eal,
}

/// One RX queue of a port; owned by exactly one worker, and unable to
/// outlive the port.
pub struct RxQueue<'port> {
    port: u16,
    queue: u16,
    _port: PhantomData<&'port Port>,
}

/// One TX queue of a port; owned by exactly one worker, and unable to
/// outlive the port.
pub struct TxQueue<'port> {
    port: u16,
    queue: u16,
    _port: PhantomData<&'port Port>,
}

/// Queue `i` of each kind of one port: what one worker polls and sends on.
pub struct QueuePair<'port> {
    /// The RX queue.
    pub rx: RxQueue<'port>,
    /// The TX queue.
    pub tx: TxQueue<'port>,
}

impl Port {
    /// Opens the device the EAL probed under `name` (a PCI address such as
    /// `0000:03:00.0` or a vdev name such as `net_af_packet0`). Refused if
    /// another [`Port`] of this process holds the device.
    pub fn open(eal: &Eal, name: &str) -> Result<Port> {
        let cname =
            CString::new(name).map_err(|_| DpdkError::other("open port", "name contains NUL"))?;
        let mut id: u16 = 0;
        // SAFETY: cname is a valid C string and id a valid out-pointer for
        // the duration of the call; the EAL is initialised (`eal`).
        let rc = unsafe { dpdk_sys::rte_eth_dev_get_port_by_name(cname.as_ptr(), &mut id) };
        check(|| format!("rte_eth_dev_get_port_by_name({name})"), rc)?;
        let mut claimed = CLAIMED.lock().unwrap_or_else(|e| e.into_inner());
        if claimed.contains(&id) {
            return Err(DpdkError::other(
                format!("open port {name}"),
                "the device is already open in this process",
            ));
        }
        claimed.push(id);
        Ok(Port {
            id,
            name: name.to_string(),
            queues: 0,
            started: false,
            queues_taken: AtomicBool::new(false),
            pool: None,
            _eal: eal.clone(),
        })
    }

    /// DPDK's port id.
    pub fn id(&self) -> u16 {
        self.id
    }

    /// The device name it was opened with.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What the driver reports about the device.
    pub fn info(&self) -> Result<PortInfo> {
        let mut info = dpdk_sys::rte_eth_dev_info::default();
        // SAFETY: the port id is valid (opened) and info a valid out-pointer.
        let rc = unsafe { dpdk_sys::rte_eth_dev_info_get(self.id, &mut info) };
        check(|| format!("rte_eth_dev_info_get(port {})", self.id), rc)?;
        let driver = if info.driver_name.is_null() {
            String::new()
        } else {
            // SAFETY: driver_name, when set, points to the driver's static
            // NUL-terminated name.
            unsafe { CStr::from_ptr(info.driver_name) }
                .to_string_lossy()
                .into_owned()
        };
        Ok(PortInfo {
            driver,
            max_rx_queues: info.max_rx_queues,
            max_tx_queues: info.max_tx_queues,
            rss_offloads: info.flow_type_rss_offloads,
        })
    }

    /// Configures `cfg.queues` queue pairs and sets them up with buffers
    /// from `pool`; once per port. Returns whether RSS was enabled. The
    /// queues are taken with [`Port::queues`].
    pub fn configure(&mut self, cfg: &DeviceConfig, pool: &Arc<Mempool>) -> Result<bool> {
        if self.queues != 0 {
            return Err(DpdkError::other(
                format!("configure port {}", self.name),
                "the port is already configured",
            ));
        }
        let info = self.info()?;
        let n = cfg.queues;
        if n == 0 || n > info.max_rx_queues || n > info.max_tx_queues {
            return Err(DpdkError::other(
                format!("configure port {}", self.name),
                format!(
                    "{n} queue pairs asked, the device supports 1 to {} rx/{} tx",
                    info.max_rx_queues, info.max_tx_queues
                ),
            ));
        }
        let mut conf = dpdk_sys::rte_eth_conf::default();
        let rss_hf = info.rss_offloads & RSS_WANTED;
        let rss = n > 1 && rss_hf != 0;
        if rss {
            conf.rxmode.mq_mode = dpdk_sys::RTE_ETH_MQ_RX_RSS;
            conf.rx_adv_conf.rss_conf.rss_hf = rss_hf;
        }
        // SAFETY: valid port id; conf is a fully initialised (zeroed, then
        // set) struct that outlives the call.
        let rc = unsafe { dpdk_sys::rte_eth_dev_configure(self.id, n, n, &conf) };
        check(|| format!("rte_eth_dev_configure(port {})", self.name), rc)?;
        let mut rx_desc = cfg.rx_desc;
        let mut tx_desc = cfg.tx_desc;
        // SAFETY: valid port id and out-pointers to local u16s.
        let rc = unsafe {
            dpdk_sys::rte_eth_dev_adjust_nb_rx_tx_desc(self.id, &mut rx_desc, &mut tx_desc)
        };
        check(
            || format!("rte_eth_dev_adjust_nb_rx_tx_desc(port {})", self.name),
            rc,
        )?;
        // SAFETY: rte_eth_dev_socket_id accepts any port id.
        let socket = unsafe { dpdk_sys::rte_eth_dev_socket_id(self.id) };
        let socket = if socket < 0 { 0 } else { socket as u32 };
        for q in 0..n {
            // SAFETY: configured port, q < n; a NULL rxconf means the
            // driver's defaults; the pool is a live pktmbuf pool kept alive
            // by self.pool for as long as the port exists.
            let rc = unsafe {
                dpdk_sys::rte_eth_rx_queue_setup(
                    self.id,
                    q,
                    rx_desc,
                    socket,
                    std::ptr::null(),
                    pool.as_ptr(),
                )
            };
            check(
                || format!("rte_eth_rx_queue_setup(port {}, queue {q})", self.name),
                rc,
            )?;
        }
        for q in 0..n {
            // SAFETY: configured port, q < n, NULL txconf = defaults.
            let rc = unsafe {
                dpdk_sys::rte_eth_tx_queue_setup(self.id, q, tx_desc, socket, std::ptr::null())
            };
            check(
                || format!("rte_eth_tx_queue_setup(port {}, queue {q})", self.name),
                rc,
            )?;
        }
        if cfg.promiscuous {
            // SAFETY: valid port id. Failure is not fatal (some virtual
            // devices do not support it), so the code is ignored.
            unsafe {
                dpdk_sys::rte_eth_promiscuous_enable(self.id);
            }
        }
        if cfg.all_multicast {
            // SAFETY: valid port id. Failure is not fatal either: a device
            // without multicast filtering delivers every group anyway.
            unsafe {
                dpdk_sys::rte_eth_allmulticast_enable(self.id);
            }
        }
        self.pool = Some(pool.clone());
        self.queues = n;
        Ok(rss)
    }

    /// The configured queue pairs, pair `i` for worker `i`; handed out once
    /// per port. They borrow the port, so it cannot be stopped or closed
    /// while one of them exists.
    pub fn queues(&self) -> Result<Vec<QueuePair<'_>>> {
        if self.queues == 0 {
            return Err(DpdkError::other(
                format!("queues of port {}", self.name),
                "the port is not configured",
            ));
        }
        if self.queues_taken.swap(true, Ordering::SeqCst) {
            return Err(DpdkError::other(
                format!("queues of port {}", self.name),
                "the queues were already handed out",
            ));
        }
        Ok((0..self.queues)
            .map(|queue| QueuePair {
                rx: RxQueue {
                    port: self.id,
                    queue,
                    _port: PhantomData,
                },
                tx: TxQueue {
                    port: self.id,
                    queue,
                    _port: PhantomData,
                },
            })
            .collect())
    }

    /// Starts the device.
    pub fn start(&mut self) -> Result<()> {
        if self.queues == 0 {
            return Err(DpdkError::other(
                format!("start port {}", self.name),
                "the port is not configured",
            ));
        }
        // SAFETY: valid, configured port id.
        let rc = unsafe { dpdk_sys::rte_eth_dev_start(self.id) };
        check(|| format!("rte_eth_dev_start(port {})", self.name), rc)?;
        self.started = true;
        Ok(())
    }

    /// Stops the device. Taking `&mut self` proves that no queue of it
    /// exists any more (they borrow the port), so no thread polls it.
    pub fn stop(&mut self) -> Result<()> {
        if self.started {
            // SAFETY: valid port id; no queue handle exists (they borrow
            // self, which is exclusively borrowed here).
            let rc = unsafe { dpdk_sys::rte_eth_dev_stop(self.id) };
            check(|| format!("rte_eth_dev_stop(port {})", self.name), rc)?;
            self.started = false;
        }
        Ok(())
    }

    /// The port's MAC address.
    pub fn mac(&self) -> Result<[u8; 6]> {
        let mut addr = dpdk_sys::rte_ether_addr::default();
        // SAFETY: valid port id and out-pointer.
        let rc = unsafe { dpdk_sys::rte_eth_macaddr_get(self.id, &mut addr) };
        check(|| format!("rte_eth_macaddr_get(port {})", self.name), rc)?;
        Ok(addr.addr_bytes)
    }

    /// The link state, without waiting.
    pub fn link(&self) -> Result<LinkStatus> {
        let mut link = dpdk_sys::rte_eth_link::default();
        // SAFETY: valid port id and out-pointer.
        let rc = unsafe { dpdk_sys::rte_eth_link_get_nowait(self.id, &mut link) };
        check(
            || format!("rte_eth_link_get_nowait(port {})", self.name),
            rc,
        )?;
        Ok(LinkStatus {
            up: link.link_status() != 0,
            speed_mbps: if link.link_speed == u32::MAX {
                0
            } else {
                link.link_speed
            },
            full_duplex: link.link_duplex() != 0,
        })
    }

    /// The device's basic counters.
    pub fn stats(&self) -> Result<DeviceStats> {
        let mut s = dpdk_sys::rte_eth_stats::default();
        // SAFETY: valid port id and out-pointer; drivers read their counters
        // without disturbing the queues, so this may run beside workers.
        let rc = unsafe { dpdk_sys::rte_eth_stats_get(self.id, &mut s) };
        check(|| format!("rte_eth_stats_get(port {})", self.name), rc)?;
        Ok(DeviceStats {
            ipackets: s.ipackets,
            opackets: s.opackets,
            ibytes: s.ibytes,
            obytes: s.obytes,
            imissed: s.imissed,
            ierrors: s.ierrors,
            oerrors: s.oerrors,
            rx_nombuf: s.rx_nombuf,
        })
    }

    /// The device's extended statistics as (name, value) pairs.
    pub fn xstats(&self) -> Result<Vec<(String, u64)>> {
        // SAFETY: a NULL array with size 0 asks for the count only.
        let n = unsafe { dpdk_sys::rte_eth_xstats_get_names(self.id, std::ptr::null_mut(), 0) };
        let n = check(
            || format!("rte_eth_xstats_get_names(port {})", self.name),
            n,
        )? as usize;
        let mut names = vec![dpdk_sys::rte_eth_xstat_name::default(); n];
        let mut vals = vec![dpdk_sys::rte_eth_xstat::default(); n];
        let got = {
            let ptr = names.as_mut_ptr();
            // SAFETY: names has room for n entries.
            unsafe { dpdk_sys::rte_eth_xstats_get_names(self.id, ptr, n as u32) }
        };
        let got = check(
            || format!("rte_eth_xstats_get_names(port {})", self.name),
            got,
        )?;
        // SAFETY: vals has room for n entries.
        let got2 = unsafe { dpdk_sys::rte_eth_xstats_get(self.id, vals.as_mut_ptr(), n as u32) };
        let got2 = check(|| format!("rte_eth_xstats_get(port {})", self.name), got2)?;
        let m = (got as usize).min(got2 as usize).min(n);
        Ok(vals[..m]
            .iter()
            .map(|v| {
                let name = names
                    .get(v.id as usize)
                    .map(|nm| {
                        // SAFETY: xstat names are NUL-terminated within the
                        // fixed-size array DPDK filled in.
                        unsafe { CStr::from_ptr(nm.name.as_ptr()) }
                            .to_string_lossy()
                            .into_owned()
                    })
                    .unwrap_or_default();
                (name, v.value)
            })
            .collect())
    }
}

impl Drop for Port {
    fn drop(&mut self) {
        // SAFETY: no queue handle exists (they borrow the port, which is
        // being dropped), so no thread polls it; stop (if started) and close
        // release the driver's queues and return every mbuf the driver held
        // to the pool, which self.pool keeps alive until after this.
        unsafe {
            if self.started {
                dpdk_sys::rte_eth_dev_stop(self.id);
            }
            dpdk_sys::rte_eth_dev_close(self.id);
        }
        let mut claimed = CLAIMED.lock().unwrap_or_else(|e| e.into_inner());
        claimed.retain(|id| *id != self.id);
    }
}

impl RxQueue<'_> {
    /// The port id.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The queue id.
    pub fn queue(&self) -> u16 {
        self.queue
    }

    /// Receives up to the batch's capacity into `batch`, which must be
    /// empty. Returns the number received.
    #[inline(always)]
    pub fn rx_burst(&mut self, batch: &mut MbufBatch) -> usize {
        let (port, queue) = (self.port, self.queue);
        // SAFETY: rx_burst writes as many owned mbuf pointers as it returns,
        // at most cap, which is fill_with's contract. The call itself: this
        // RxQueue is the only handle on (port, queue) (handed out once),
        // &mut self keeps it on one thread, the port outlives it, and ptr
        // has room for cap mbufs.
        unsafe {
            batch.fill_with(|ptr, cap| dpdk_sys::sluice_eth_rx_burst(port, queue, ptr, cap));
        }
        batch.len()
    }
}

impl TxQueue<'_> {
    /// The port id.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The queue id.
    pub fn queue(&self) -> u16 {
        self.queue
    }

    /// Offers every mbuf of `batch` to the device. The accepted ones leave
    /// the batch (the driver owns them now); the refused ones stay in it.
    /// Returns the number accepted.
    #[inline(always)]
    pub fn tx_burst(&mut self, batch: &mut MbufBatch) -> usize {
        let (port, queue) = (self.port, self.queue);
        // SAFETY: tx_burst takes ownership of exactly the first mbufs it
        // reports as sent, which is send_with's contract. The call itself:
        // this TxQueue is the only handle on (port, queue) (handed out
        // once), &mut self keeps it on one thread, the port outlives it, and
        // ptr holds n owned mbufs.
        unsafe { batch.send_with(|ptr, n| dpdk_sys::sluice_eth_tx_burst(port, queue, ptr, n)) }
    }
}
