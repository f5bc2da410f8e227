//! Ethernet ports: opening a probed device by name, configuring one RX and
//! one TX queue per worker (with RSS when the device supports it), start,
//! stop, link state, MAC address and statistics. Queues are handed out as
//! [`RxQueue`]/[`TxQueue`] values so that each is used by one thread only.

use crate::eal::Eal;
use crate::error::{check, DpdkError, Result};
use crate::mbuf::MbufBatch;
use crate::mempool::Mempool;
use std::ffi::{CStr, CString};
use std::sync::Arc;

// RTE_ETH_RSS_* are built with RTE_BIT64(), which bindgen cannot evaluate.
const RSS_IPV4: u64 = 1 << 2;
const RSS_FRAG_IPV4: u64 = 1 << 3;
const RSS_NONFRAG_IPV4_TCP: u64 = 1 << 4;
const RSS_NONFRAG_IPV4_UDP: u64 = 1 << 5;
const RSS_NONFRAG_IPV4_OTHER: u64 = 1 << 7;
const RSS_WANTED: u64 =
    RSS_IPV4 | RSS_FRAG_IPV4 | RSS_NONFRAG_IPV4_TCP | RSS_NONFRAG_IPV4_UDP | RSS_NONFRAG_IPV4_OTHER;

/// How to set a port up.
#[derive(Debug, Clone)]
pub struct PortConfig {
    /// RX queues (one per worker).
    pub rx_queues: u16,
    /// TX queues (one per worker).
    pub tx_queues: u16,
    /// Descriptors per RX queue.
    pub rx_desc: u16,
    /// Descriptors per TX queue.
    pub tx_desc: u16,
    /// Receive frames for every destination MAC.
    pub promiscuous: bool,
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

/// The device's basic counters (`rte_eth_stats`).
#[derive(Debug, Clone, Copy, Default)]
pub struct PortStats {
    /// Packets received.
    pub ipackets: u64,
    /// Packets sent.
    pub opackets: u64,
    /// Bytes received.
    pub ibytes: u64,
    /// Bytes sent.
    pub obytes: u64,
    /// Packets the device dropped because RX queues were full.
    pub imissed: u64,
    /// Erroneous received packets.
    pub ierrors: u64,
    /// Failed transmissions.
    pub oerrors: u64,
    /// RX mbuf allocation failures.
    pub rx_nombuf: u64,
}

/// A probed Ethernet device.
pub struct Port {
    id: u16,
    name: String,
    started: bool,
    queues_alive: Arc<()>,
    pool: Option<Arc<Mempool>>,
    _eal: Eal,
}

/// One RX queue of a port; owned by exactly one worker.
pub struct RxQueue {
    port: u16,
    queue: u16,
    _alive: Arc<()>,
}

/// One TX queue of a port; owned by exactly one worker.
pub struct TxQueue {
    port: u16,
    queue: u16,
    _alive: Arc<()>,
}

impl Port {
    /// Opens the device the EAL probed under `name` (a PCI address such as
    /// `0000:03:00.0` or a vdev name such as `net_af_packet0`).
    pub fn open(eal: &Eal, name: &str) -> Result<Port> {
        let cname =
            CString::new(name).map_err(|_| DpdkError::other("open port", "name contains NUL"))?;
        let mut id: u16 = 0;
        // SAFETY: cname is a valid C string and id a valid out-pointer for
        // the duration of the call; the EAL is initialised (`eal`).
        let rc = unsafe { dpdk_sys::rte_eth_dev_get_port_by_name(cname.as_ptr(), &mut id) };
        check(|| format!("rte_eth_dev_get_port_by_name({name})"), rc)?;
        Ok(Port {
            id,
            name: name.to_string(),
            started: false,
            queues_alive: Arc::new(()),
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

    /// Configures queues, sets them up with buffers from `pool`, and returns
    /// their handles (queue i of each kind belongs together). Returns
    /// whether RSS was enabled.
    pub fn configure(
        &mut self,
        cfg: &PortConfig,
        pool: &Arc<Mempool>,
    ) -> Result<(Vec<RxQueue>, Vec<TxQueue>, bool)> {
        let info = self.info()?;
        if cfg.rx_queues > info.max_rx_queues || cfg.tx_queues > info.max_tx_queues {
            return Err(DpdkError::other(
                format!("configure port {}", self.name),
                format!(
                    "{} rx/{} tx queues asked, the device supports at most {} rx/{} tx",
                    cfg.rx_queues, cfg.tx_queues, info.max_rx_queues, info.max_tx_queues
                ),
            ));
        }
        let mut conf = dpdk_sys::rte_eth_conf::default();
        let rss_hf = info.rss_offloads & RSS_WANTED;
        let rss = cfg.rx_queues > 1 && rss_hf != 0;
        if rss {
            conf.rxmode.mq_mode = dpdk_sys::RTE_ETH_MQ_RX_RSS;
            conf.rx_adv_conf.rss_conf.rss_hf = rss_hf;
        }
        // SAFETY: valid port id; conf is a fully initialised (zeroed, then
        // set) struct that outlives the call.
        let rc = unsafe {
            dpdk_sys::rte_eth_dev_configure(self.id, cfg.rx_queues, cfg.tx_queues, &conf)
        };
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
        for q in 0..cfg.rx_queues {
            // SAFETY: configured port, q < rx_queues; a NULL rxconf means the
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
        for q in 0..cfg.tx_queues {
            // SAFETY: configured port, q < tx_queues, NULL txconf = defaults.
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
        self.pool = Some(pool.clone());
        let rxq = (0..cfg.rx_queues)
            .map(|queue| RxQueue {
                port: self.id,
                queue,
                _alive: self.queues_alive.clone(),
            })
            .collect();
        let txq = (0..cfg.tx_queues)
            .map(|queue| TxQueue {
                port: self.id,
                queue,
                _alive: self.queues_alive.clone(),
            })
            .collect();
        Ok((rxq, txq, rss))
    }

    /// Starts the device.
    pub fn start(&mut self) -> Result<()> {
        // SAFETY: valid, configured port id.
        let rc = unsafe { dpdk_sys::rte_eth_dev_start(self.id) };
        check(|| format!("rte_eth_dev_start(port {})", self.name), rc)?;
        self.started = true;
        Ok(())
    }

    /// Stops the device. Every queue handle must have been dropped first
    /// (workers joined), otherwise this refuses.
    pub fn stop(&mut self) -> Result<()> {
        if Arc::strong_count(&self.queues_alive) != 1 {
            return Err(DpdkError::other(
                format!("stop port {}", self.name),
                "queues are still in use by workers",
            ));
        }
        if self.started {
            // SAFETY: valid port id; no queue handle exists, so no thread
            // is polling it.
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
    pub fn stats(&self) -> Result<PortStats> {
        let mut s = dpdk_sys::rte_eth_stats::default();
        // SAFETY: valid port id and out-pointer; drivers read their counters
        // without disturbing the queues, so this may run beside workers.
        let rc = unsafe { dpdk_sys::rte_eth_stats_get(self.id, &mut s) };
        check(|| format!("rte_eth_stats_get(port {})", self.name), rc)?;
        Ok(PortStats {
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
        if Arc::strong_count(&self.queues_alive) != 1 {
            // A worker still holds a queue: closing the device under it
            // would be unsound, so the device is left open.
            return;
        }
        // SAFETY: no queue handle exists, so no thread polls the port; stop
        // (if started) and close release the driver's queues and return
        // every mbuf the driver held to the pool, which self.pool keeps
        // alive until after this.
        unsafe {
            if self.started {
                dpdk_sys::rte_eth_dev_stop(self.id);
            }
            dpdk_sys::rte_eth_dev_close(self.id);
        }
    }
}

impl RxQueue {
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
        batch.fill_with(|ptr, cap| {
            // SAFETY: this RxQueue is the only handle on (port, queue) and
            // &mut self keeps it on one thread; ptr has room for cap mbufs.
            unsafe { dpdk_sys::sluice_eth_rx_burst(port, queue, ptr, cap) }
        });
        batch.len()
    }
}

impl TxQueue {
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
        batch.send_with(|ptr, n| {
            // SAFETY: this TxQueue is the only handle on (port, queue) and
            // &mut self keeps it on one thread; ptr holds n owned mbufs.
            unsafe { dpdk_sys::sluice_eth_tx_burst(port, queue, ptr, n) }
        })
    }
}
