//! The configuration file as written: what serde reads and `save` writes
//! back. Nothing here is validated; the section modules turn it into the
//! checked types.

use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize, Serialize, Default, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    #[serde(default)]
    pub(super) eal: RawEal,
    pub(super) dataplane: RawDataplane,
    #[serde(default)]
    pub(super) control: RawControl,
    #[serde(default, rename = "port")]
    pub(super) ports: Vec<RawPort>,
    #[serde(default)]
    pub(super) routes: RawRoutes,
    #[serde(default)]
    pub(super) timeouts: RawTimeouts,
    #[serde(default, rename = "service")]
    pub(super) services: Vec<sluice_proto::ServiceSpec>,
    #[serde(default)]
    pub(super) metrics: RawMetrics,
    #[serde(default, skip_serializing_if = "RawMachine::is_empty")]
    pub(super) machine: RawMachine,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) bgp: Option<RawBgp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) sync: Option<RawSync>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) tunnel: Option<RawTunnel>,
}

/// `[tunnel]`: how tunnel-mode reals are reached.
#[derive(Debug, Deserialize, Serialize, Default, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTunnel {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) source6: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) gue_port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) mtu: Option<u16>,
}

/// `[sync]`: connection synchronisation with the peer appliances.
#[derive(Debug, Deserialize, Serialize, Default, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSync {
    pub(super) listen: String,
    pub(super) peers: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) key_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) max_datagrams_per_sec: Option<u32>,
}

/// `[bgp]`: the VIPs announced through BIRD.
#[derive(Debug, Deserialize, Serialize, Default, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBgp {
    pub(super) router_id: String,
    pub(super) local_as: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) bird_socket: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) include_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) drain_ms: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) hold_time: Option<u16>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(super) bfd: bool,
    #[serde(default, rename = "neighbor")]
    pub(super) neighbors: Vec<RawNeighbor>,
    #[serde(default, rename = "vip", skip_serializing_if = "Vec::is_empty")]
    pub(super) vips: Vec<RawVipRoute>,
}

/// `[[bgp.neighbor]]`: an upstream router.
#[derive(Debug, Deserialize, Serialize, Default, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNeighbor {
    pub(super) address: String,
    pub(super) remote_as: u32,
}

/// `[[bgp.vip]]`: what a VIP's announcement carries.
#[derive(Debug, Deserialize, Serialize, Default, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub(super) struct RawVipRoute {
    pub(super) address: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) med: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(super) communities: Vec<String>,
}

/// `[machine]`: what `sluice --prepare` sets up before the daemon starts.
#[derive(Debug, Deserialize, Serialize, Default, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMachine {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) hugepages_mb: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) hugepage_size: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) pci_driver: Option<String>,
}

impl RawMachine {
    fn is_empty(&self) -> bool {
        *self == RawMachine::default()
    }
}

#[derive(Debug, Deserialize, Serialize, Default, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTimeouts {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) tcp_established: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) tcp_syn_recv: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) tcp_fin_wait: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) tcp_close_wait: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) tcp_time_wait: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) tcp_close: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) tcp_last_ack: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) udp: Option<u32>,
}

#[derive(Debug, Deserialize, Serialize, Default, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEal {
    #[serde(default)]
    pub(super) no_huge: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) huge_unlink: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) memory_mb: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) file_prefix: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) lcores: Option<String>,
    #[serde(default)]
    pub(super) extra_args: Vec<String>,
}

#[derive(Debug, Deserialize, Serialize, Default, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDataplane {
    #[serde(default)]
    pub(super) main_lcore: u32,
    pub(super) workers: Vec<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) mempool_size: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) mempool_cache: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) rx_desc: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) tx_desc: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) burst: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) idle_sleep_us: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) idle_polls_before_sleep: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) neighbour_reachable_secs: Option<u32>,
    /// Replaced by `neighbour_reachable_secs`; refused with a pointer.
    #[serde(skip_serializing)]
    pub(super) neighbour_max_age_secs: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) connections: Option<u32>,
    /// IPv6 connection-table capacity of each worker.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) connections6: Option<u32>,
    /// Half-open connections per worker at which `auto` services are
    /// SYN-proxied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) syn_recv_threshold: Option<u32>,
    /// The first and last local port full NAT allocates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) local_ports: Option<[u16; 2]>,
}

#[derive(Debug, Deserialize, Serialize, Default, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub(super) struct RawControl {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) socket: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) mode: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) group: Option<String>,
}

#[derive(Debug, Deserialize, Serialize, Default, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMetrics {
    #[serde(default)]
    pub(super) enabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) listen: Option<String>,
}

#[derive(Debug, Deserialize, Serialize, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPort {
    pub(super) name: String,
    pub(super) device: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) kernel_interface: Option<String>,
    #[serde(default)]
    pub(super) addresses: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) promiscuous: Option<bool>,
}

#[derive(Debug, Deserialize, Serialize, Default, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRoutes {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) gateway: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) gateway6: Option<String>,
    #[serde(default, rename = "static")]
    pub(super) statics: Vec<RawRoute>,
}

#[derive(Debug, Deserialize, Serialize, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRoute {
    pub(super) prefix: String,
    pub(super) via: String,
}
