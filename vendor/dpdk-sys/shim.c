/* Bodies of the shim declared in shim.h: one exported function per DPDK
 * static inline function that Sluice calls. Each call is per burst or off
 * the packet path; per-packet work happens in Rust on the mbuf fields. */
#include "shim.h"

uint16_t sluice_eth_rx_burst(uint16_t port_id, uint16_t queue_id,
                             struct rte_mbuf **rx_pkts, uint16_t nb_pkts)
{
	return rte_eth_rx_burst(port_id, queue_id, rx_pkts, nb_pkts);
}

uint16_t sluice_eth_tx_burst(uint16_t port_id, uint16_t queue_id,
                             struct rte_mbuf **tx_pkts, uint16_t nb_pkts)
{
	return rte_eth_tx_burst(port_id, queue_id, tx_pkts, nb_pkts);
}

struct rte_mbuf *sluice_pktmbuf_alloc(struct rte_mempool *mp)
{
	return rte_pktmbuf_alloc(mp);
}

int sluice_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **mbufs,
                              unsigned int count)
{
	return rte_pktmbuf_alloc_bulk(mp, mbufs, count);
}

void sluice_pktmbuf_free(struct rte_mbuf *m)
{
	rte_pktmbuf_free(m);
}

unsigned int sluice_lcore_id(void)
{
	return rte_lcore_id();
}

int sluice_errno(void)
{
	return rte_errno;
}

uint64_t sluice_rdtsc(void)
{
	return rte_rdtsc();
}

uint64_t sluice_tsc_hz(void)
{
	return rte_get_tsc_hz();
}

unsigned int sluice_pktmbuf_headroom(void)
{
	return RTE_PKTMBUF_HEADROOM;
}
