/*
 * Layout probe: offsetof/sizeof of every struct field the C# hot path reads directly, compiled
 * against the installed DPDK headers. The generated bindings carry the same names and values;
 * a unit test and lcpd's start-up check compare the two.
 */
#include <stddef.h>
#include <string.h>

#include <rte_arp.h>
#include <rte_ether.h>
#include <rte_ethdev.h>
#include <rte_ip.h>
#include <rte_mbuf.h>

#include "lcp_shim.h"

#define OFF(type, field) { #type "." #field, (long)offsetof(struct type, field) }
#define SZ(type) { "sizeof." #type, (long)sizeof(struct type) }

static const struct {
	const char *name;
	long value;
} probe[] = {
	SZ(rte_mbuf),
	OFF(rte_mbuf, buf_addr),
	OFF(rte_mbuf, data_off),
	OFF(rte_mbuf, refcnt),
	OFF(rte_mbuf, nb_segs),
	OFF(rte_mbuf, port),
	OFF(rte_mbuf, ol_flags),
	OFF(rte_mbuf, packet_type),
	OFF(rte_mbuf, pkt_len),
	OFF(rte_mbuf, data_len),
	OFF(rte_mbuf, vlan_tci),
	OFF(rte_mbuf, hash),
	OFF(rte_mbuf, buf_len),
	OFF(rte_mbuf, pool),
	OFF(rte_mbuf, next),
	SZ(rte_ether_hdr),
	OFF(rte_ether_hdr, dst_addr),
	OFF(rte_ether_hdr, src_addr),
	OFF(rte_ether_hdr, ether_type),
	SZ(rte_vlan_hdr),
	SZ(rte_ipv4_hdr),
	OFF(rte_ipv4_hdr, version_ihl),
	OFF(rte_ipv4_hdr, total_length),
	OFF(rte_ipv4_hdr, fragment_offset),
	OFF(rte_ipv4_hdr, time_to_live),
	OFF(rte_ipv4_hdr, next_proto_id),
	OFF(rte_ipv4_hdr, hdr_checksum),
	OFF(rte_ipv4_hdr, src_addr),
	OFF(rte_ipv4_hdr, dst_addr),
	SZ(rte_ipv6_hdr),
	OFF(rte_ipv6_hdr, vtc_flow),
	OFF(rte_ipv6_hdr, payload_len),
	OFF(rte_ipv6_hdr, proto),
	OFF(rte_ipv6_hdr, hop_limits),
	OFF(rte_ipv6_hdr, src_addr),
	OFF(rte_ipv6_hdr, dst_addr),
	SZ(rte_arp_hdr),
	OFF(rte_arp_hdr, arp_opcode),
	SZ(rte_eth_stats),
	OFF(rte_eth_stats, ipackets),
	OFF(rte_eth_stats, opackets),
	OFF(rte_eth_stats, ibytes),
	OFF(rte_eth_stats, obytes),
	OFF(rte_eth_stats, imissed),
	OFF(rte_eth_stats, ierrors),
	OFF(rte_eth_stats, oerrors),
	OFF(rte_eth_stats, rx_nombuf),
	OFF(rte_eth_stats, q_ipackets),
	SZ(rte_ether_addr),
	{ "const.RTE_MAX_LCORE", RTE_MAX_LCORE },
	{ "const.RTE_MAX_ETHPORTS", RTE_MAX_ETHPORTS },
	{ "const.RTE_PKTMBUF_HEADROOM", RTE_PKTMBUF_HEADROOM },
	{ "const.RTE_ETHDEV_QUEUE_STAT_CNTRS", RTE_ETHDEV_QUEUE_STAT_CNTRS },
};

long lcp_probe_layout(const char *name)
{
	if (name == NULL)
		return -1;
	for (size_t i = 0; i < sizeof(probe) / sizeof(probe[0]); i++)
		if (strcmp(probe[i].name, name) == 0)
			return probe[i].value;
	return -1;
}
