/*
 * Sluice's C shim over DPDK 22.11.
 *
 * DPDK implements its fast-path API (rx/tx burst, mbuf alloc/free, lcore id,
 * errno) as `static inline` functions, which bindgen cannot link against.
 * Each one is wrapped here in a real, exported function; shim.c holds the
 * bodies. This header is also the single entry point bindgen reads, so it
 * includes every DPDK header Sluice uses.
 */
#ifndef SLUICE_DPDK_SHIM_H
#define SLUICE_DPDK_SHIM_H

#include <rte_config.h>
#include <rte_common.h>
#include <rte_errno.h>
#include <rte_eal.h>
#include <rte_lcore.h>
#include <rte_launch.h>
#include <rte_cycles.h>
#include <rte_mempool.h>
#include <rte_mbuf.h>
#include <rte_ethdev.h>
#include <rte_ether.h>
#include <rte_dev.h>
#include <rte_bus_vdev.h>
#include <rte_telemetry.h>
#include <rte_pdump.h>
#include <rte_version.h>

uint16_t sluice_eth_rx_burst(uint16_t port_id, uint16_t queue_id,
                             struct rte_mbuf **rx_pkts, uint16_t nb_pkts);
uint16_t sluice_eth_tx_burst(uint16_t port_id, uint16_t queue_id,
                             struct rte_mbuf **tx_pkts, uint16_t nb_pkts);
struct rte_mbuf *sluice_pktmbuf_alloc(struct rte_mempool *mp);
int sluice_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **mbufs,
                              unsigned int count);
void sluice_pktmbuf_free(struct rte_mbuf *m);
unsigned int sluice_lcore_id(void);
int sluice_errno(void);
uint64_t sluice_rdtsc(void);
uint64_t sluice_tsc_hz(void);
/* Size of struct rte_mbuf's headroom default, for checks in Rust. */
unsigned int sluice_pktmbuf_headroom(void);

#endif
