/* Port bring-up and teardown: the rte_eth_conf dance stays in C. */
#include <errno.h>
#include <string.h>

#include <rte_bus.h>
#include <rte_dev.h>
#include <rte_devargs.h>
#include <rte_ethdev.h>
#include <rte_log.h>

#define LCP_ERR(...) RTE_LOG(ERR, USER1, "lcp: " __VA_ARGS__)

#include "lcp_shim.h"

int lcp_port_setup(uint16_t port, uint16_t nq, uint16_t nb_rxd, uint16_t nb_txd,
                   struct rte_mempool *pool)
{
	struct rte_eth_dev_info info;
	struct rte_eth_conf conf;
	int rc;

	if (!rte_eth_dev_is_valid_port(port))
		return -ENODEV;
	rc = rte_eth_dev_info_get(port, &info);
	if (rc != 0)
		return rc;
	if (nq == 0 || nq > info.max_rx_queues || nq > info.max_tx_queues) {
		LCP_ERR("port %u: %u queues requested, driver %s supports %u rx / %u tx\n", port, nq,
		        info.driver_name, info.max_rx_queues, info.max_tx_queues);
		return -EINVAL;
	}

	memset(&conf, 0, sizeof(conf));
	if (nq > 1) {
		uint64_t want = RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP;
		conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
		conf.rx_adv_conf.rss_conf.rss_hf = want & info.flow_type_rss_offloads;
		if (conf.rx_adv_conf.rss_conf.rss_hf == 0)
			conf.rxmode.mq_mode = RTE_ETH_MQ_RX_NONE;
	}
	if (info.tx_offload_capa & RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE)
		conf.txmode.offloads |= RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE;

	rc = rte_eth_dev_configure(port, nq, nq, &conf);
	if (rc != 0) {
		LCP_ERR("port %u: configure failed: %d\n", port, rc);
		return rc;
	}
	rc = rte_eth_dev_adjust_nb_rx_tx_desc(port, &nb_rxd, &nb_txd);
	if (rc != 0) {
		LCP_ERR("port %u: descriptor adjust failed: %d\n", port, rc);
		return rc;
	}
	int socket = rte_eth_dev_socket_id(port);
	for (uint16_t q = 0; q < nq; q++) {
		rc = rte_eth_rx_queue_setup(port, q, nb_rxd, socket, NULL, pool);
		if (rc != 0) {
			LCP_ERR("port %u: rx queue %u setup (%u descriptors) failed: %d\n", port, q, nb_rxd, rc);
			return rc;
		}
		rc = rte_eth_tx_queue_setup(port, q, nb_txd, socket, NULL);
		if (rc != 0) {
			LCP_ERR("port %u: tx queue %u setup (%u descriptors) failed: %d\n", port, q, nb_txd, rc);
			return rc;
		}
	}
	rc = rte_eth_dev_start(port);
	if (rc != 0)
		LCP_ERR("port %u: start failed: %d\n", port, rc);
	return rc;
}

int lcp_port_driver(uint16_t port, char *buf, size_t len)
{
	struct rte_eth_dev_info info;
	int rc = rte_eth_dev_info_get(port, &info);
	if (rc != 0)
		return rc;
	if (len == 0)
		return -EINVAL;
	strncpy(buf, info.driver_name ? info.driver_name : "", len - 1);
	buf[len - 1] = '\0';
	return 0;
}

int lcp_port_devargs(uint16_t port, char *buf, size_t len)
{
	struct rte_eth_dev_info info;
	int rc = rte_eth_dev_info_get(port, &info);
	if (rc != 0)
		return rc;
	if (len == 0)
		return -EINVAL;
	buf[0] = '\0';
	if (info.device == NULL)
		return 0;
	const struct rte_devargs *da = rte_dev_devargs(info.device);
	if (da != NULL && da->args != NULL) {
		strncpy(buf, da->args, len - 1);
		buf[len - 1] = '\0';
	}
	return 0;
}

int lcp_log_set_level(const char *name, uint32_t level)
{
	/* Registering an existing name returns its type. */
	int type = rte_log_register(name);
	if (type < 0)
		return type;
	int prev = rte_log_get_level((uint32_t)type);
	int rc = rte_log_set_level((uint32_t)type, level);
	return rc < 0 ? rc : prev;
}

int lcp_port_link(uint16_t port, int *up, uint32_t *speed_mbps)
{
	struct rte_eth_link link;
	memset(&link, 0, sizeof(link));
	int rc = rte_eth_link_get_nowait(port, &link);
	if (rc != 0)
		return rc;
	*up = link.link_status == RTE_ETH_LINK_UP;
	*speed_mbps = link.link_speed;
	return 0;
}

int lcp_port_remove(uint16_t port)
{
	struct rte_eth_dev_info info;
	char devname[RTE_DEV_NAME_MAX_LEN];
	char busname[64];
	int rc = rte_eth_dev_info_get(port, &info);
	if (rc != 0)
		return rc;
	if (info.device == NULL)
		return -ENODEV;
	snprintf(devname, sizeof(devname), "%s", rte_dev_name(info.device));
	snprintf(busname, sizeof(busname), "%s", rte_bus_name(rte_dev_bus(info.device)));
	rc = rte_eth_dev_stop(port);
	if (rc != 0 && rc != -EINVAL)
		return rc;
	rc = rte_eth_dev_close(port);
	if (rc != 0)
		return rc;
	return rte_eal_hotplug_remove(busname, devname);
}
