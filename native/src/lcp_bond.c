/*
 * Link bonds: DPDK's bonding PMD (net_bonding) made and read through a small surface. The PMD
 * runs the 802.3ad (LACP) state machine on an EAL alarm; the workers' RX/TX bursts on the bond
 * carry its LACPDUs.
 */
#include <errno.h>
#include <string.h>

#include <rte_eth_bond.h>
#include <rte_eth_bond_8023ad.h>
#include <rte_ethdev.h>
#include <rte_errno.h>

#include "lcp_shim.h"

int lcp_bond_create(const char *name, uint8_t mode, uint8_t xmit_policy, const uint16_t *members,
                    uint16_t n, int socket_id)
{
	if (name == NULL || members == NULL || n == 0)
		return -EINVAL;
	int port = rte_eth_bond_create(name, mode, (uint8_t)(socket_id < 0 ? 0 : socket_id));
	if (port < 0)
		return port == -1 ? -(rte_errno ? rte_errno : EINVAL) : port;
	int rc = 0;
	if (mode == BONDING_MODE_BALANCE || mode == BONDING_MODE_8023AD)
		rc = rte_eth_bond_xmit_policy_set((uint16_t)port, xmit_policy);
	for (uint16_t i = 0; rc == 0 && i < n; i++)
		rc = rte_eth_bond_slave_add((uint16_t)port, members[i]);
	if (rc != 0) {
		rte_eth_bond_free(name);
		return rc < 0 ? rc : -rc;
	}
	return port;
}

int lcp_bond_members(uint16_t bond, uint16_t *members, uint16_t len, uint16_t *active, uint16_t *nactive)
{
	int n = rte_eth_bond_slaves_get(bond, members, len);
	if (n < 0)
		return n;
	int a = rte_eth_bond_active_slaves_get(bond, active, len);
	*nactive = a < 0 ? 0 : (uint16_t)a;
	return n;
}

int lcp_bond_mode(uint16_t bond)
{
	return rte_eth_bond_mode_get(bond);
}

int lcp_bond_lacp(uint16_t bond, uint16_t member, struct lcp_lacp_info *out)
{
	struct rte_eth_bond_8023ad_slave_info info;
	memset(&info, 0, sizeof(info));
	int rc = rte_eth_bond_8023ad_slave_info(bond, member, &info);
	if (rc != 0)
		return rc;
	memset(out, 0, sizeof(*out));
	out->selected = (uint8_t)info.selected;
	out->actor_state = info.actor_state;
	out->partner_state = info.partner_state;
	out->agg_port = info.agg_port_id;
	out->actor_key = info.actor.key;
	out->partner_key = info.partner.key;
	out->actor_port = info.actor.port_number;
	out->partner_port = info.partner.port_number;
	memcpy(out->actor_system, info.actor.system.addr_bytes, 6);
	memcpy(out->partner_system, info.partner.system.addr_bytes, 6);
	return 0;
}

int lcp_bond_member_remove(uint16_t bond, uint16_t member)
{
	return rte_eth_bond_slave_remove(bond, member);
}

int lcp_bond_member_add(uint16_t bond, uint16_t member)
{
	return rte_eth_bond_slave_add(bond, member);
}
