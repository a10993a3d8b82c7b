/* Fast-path wrappers: DPDK's burst and bulk-alloc calls are static inline. */
#include <errno.h>

#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_mbuf_pool_ops.h>
#include <rte_mempool.h>

#include "lcp_shim.h"

uint16_t lcp_rx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n)
{
	return rte_eth_rx_burst(port, queue, pkts, n);
}

uint16_t lcp_tx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n)
{
	return rte_eth_tx_burst(port, queue, pkts, n);
}

int lcp_pktmbuf_alloc_bulk(struct rte_mempool *pool, struct rte_mbuf **pkts, uint32_t n)
{
	return rte_pktmbuf_alloc_bulk(pool, pkts, n) == 0 ? 0 : -ENOENT;
}

struct rte_mempool *lcp_pktmbuf_pool_create(const char *name, uint32_t n, uint32_t cache_size,
                                            uint16_t data_room, int socket_id, int no_iova_contig)
{
	if (!no_iova_contig)
		return rte_pktmbuf_pool_create(name, n, cache_size, 0, data_room, socket_id);

	/* Same steps as rte_pktmbuf_pool_create, plus the NO_IOVA_CONTIG flag. */
	struct rte_pktmbuf_pool_private priv = { .mbuf_data_room_size = data_room, .mbuf_priv_size = 0 };
	unsigned elt_size = sizeof(struct rte_mbuf) + (unsigned)data_room;
	struct rte_mempool *mp = rte_mempool_create_empty(name, n, elt_size, cache_size,
	                                                  sizeof(priv), socket_id,
	                                                  RTE_MEMPOOL_F_NO_IOVA_CONTIG);
	if (mp == NULL)
		return NULL;
	int rc = rte_mempool_set_ops_byname(mp, rte_mbuf_best_mempool_ops(), NULL);
	if (rc != 0)
		goto fail;
	rte_pktmbuf_pool_init(mp, &priv);
	rc = rte_mempool_populate_default(mp);
	if (rc < 0)
		goto fail;
	rte_mempool_obj_iter(mp, rte_pktmbuf_init, NULL);
	return mp;
fail:
	rte_mempool_free(mp);
	rte_errno = -rc;
	return NULL;
}
