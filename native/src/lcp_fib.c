/* FIB creation: the rte_fib*_conf structs stay in C. Lookups and updates are bound directly. */
#include <string.h>

#include <rte_fib.h>
#include <rte_fib6.h>

#include "lcp_shim.h"

struct rte_fib *lcp_fib4_create(const char *name, int socket_id, uint32_t max_routes, uint32_t num_tbl8)
{
	struct rte_fib_conf conf;
	memset(&conf, 0, sizeof(conf));
	conf.type = RTE_FIB_DIR24_8;
	conf.default_nh = 0;
	conf.max_routes = (int)max_routes;
	conf.dir24_8.nh_sz = RTE_FIB_DIR24_8_2B;
	conf.dir24_8.num_tbl8 = num_tbl8;
	return rte_fib_create(name, socket_id, &conf);
}

struct rte_fib6 *lcp_fib6_create(const char *name, int socket_id, uint32_t max_routes, uint32_t num_tbl8)
{
	struct rte_fib6_conf conf;
	memset(&conf, 0, sizeof(conf));
	conf.type = RTE_FIB6_TRIE;
	conf.default_nh = 0;
	conf.max_routes = (int)max_routes;
	conf.trie.nh_sz = RTE_FIB6_TRIE_4B; /* 2-byte entries would cap tbl8 groups at 32767: too few for an IPv6 Internet table */
	conf.trie.num_tbl8 = num_tbl8;
	return rte_fib6_create(name, socket_id, &conf);
}
