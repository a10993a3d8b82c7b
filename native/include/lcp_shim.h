/*
 * lcp_shim.h - the only header the C# bindings are generated from (besides DPDK's own).
 *
 * The shim exists for what C# cannot call directly: DPDK's static-inline fast path
 * (rx/tx burst, mbuf bulk alloc), struct-heavy init sequences (rte_eth_conf), thread-local
 * rte_errno, and namespace-aware helpers. Real DPDK exports are bound directly, not wrapped.
 *
 * Conventions: lcp_ prefix; functions that can fail return 0 or a negative errno.
 */
#ifndef LCP_SHIM_H
#define LCP_SHIM_H

#include <stdint.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

struct rte_mbuf;
struct rte_mempool;

/* ---- version / errors -------------------------------------------------- */

/* Shim ABI version; the bindings refuse a library with another value. */
#define LCP_SHIM_ABI 2
int lcp_shim_abi(void);
/* rte_errno of the calling thread (a TLS variable, not reachable from C#). */
int lcp_rte_errno(void);
/* Read the TSC (rte_rdtsc is inline). */
uint64_t lcp_rdtsc(void);
/* TSC frequency in Hz as measured by EAL. */
uint64_t lcp_tsc_hz(void);
/* Sleep the calling thread (idle back-off of adaptive polling). */
void lcp_sleep_us(uint32_t usec);

/* ---- fast path (one call per burst) ------------------------------------ */

uint16_t lcp_rx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n);
uint16_t lcp_tx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n);
/* Allocates n mbufs or none; 0 on success, -ENOENT when the pool cannot supply them. */
int lcp_pktmbuf_alloc_bulk(struct rte_mempool *pool, struct rte_mbuf **pkts, uint32_t n);

/* ---- mempools ----------------------------------------------------------- */

/*
 * Packet mbuf pool. no_iova_contig != 0 creates it with RTE_MEMPOOL_F_NO_IOVA_CONTIG, which
 * packs objects densely when EAL runs without hugepages (otherwise one mbuf per 4 KiB page).
 * Returns NULL and sets rte_errno on failure.
 */
struct rte_mempool *lcp_pktmbuf_pool_create(const char *name, uint32_t n, uint32_t cache_size,
                                            uint16_t data_room, int socket_id, int no_iova_contig);

/* ---- ports -------------------------------------------------------------- */

/*
 * Configure nq rx and nq tx queues (rx/tx descriptors as given, 0 = PMD default), enable RSS
 * over IP/L4 when nq > 1 (masked by what the PMD supports) and start the port.
 */
int lcp_port_setup(uint16_t port, uint16_t nq, uint16_t nb_rxd, uint16_t nb_txd,
                   struct rte_mempool *pool);
/* Driver name of a port (e.g. "net_tap"), copied into buf. */
int lcp_port_driver(uint16_t port, char *buf, size_t len);
/* Device arguments the port was probed with (the part after the name, e.g. "iface=eth1" of a
 * net_af_packet vdev), copied into buf; "" when it has none. */
int lcp_port_devargs(uint16_t port, char *buf, size_t len);
/* Sets the level of one DPDK log type by name (e.g. "pmd.net.tap"); returns its previous
 * level, or a negative errno. */
int lcp_log_set_level(const char *name, uint32_t level);
/* Link state without waiting: *up = 0/1, *speed_mbps. */
int lcp_port_link(uint16_t port, int *up, uint32_t *speed_mbps);
/* Stop, close and detach a port's device (hot-unplug for vdevs). */
int lcp_port_remove(uint16_t port);

/* ---- FIB ----------------------------------------------------------------- */

struct rte_fib;
struct rte_fib6;
/*
 * IPv4 DIR-24-8 FIB / IPv6 trie FIB with 2-byte next hops (15-bit next-hop group ids), default
 * next hop 0. NULL with rte_errno set on failure. Updates and bulk lookups: rte_fib*_add/
 * delete/lookup_bulk, bound directly.
 */
struct rte_fib *lcp_fib4_create(const char *name, int socket_id, uint32_t max_routes, uint32_t num_tbl8);
struct rte_fib6 *lcp_fib6_create(const char *name, int socket_id, uint32_t max_routes, uint32_t num_tbl8);

/* ---- classifier (rte_acl) ---------------------------------------------- */

struct rte_acl_ctx;
/* Words of one rule record for lcp_acl_build:
 *   [0] userdata (non-zero: what rte_acl_classify returns for a match; 0 = no match)
 *   [1] rte_acl priority (1 .. 2^29-1, larger wins)
 *   [2] proto | proto mask << 8 | TCP flags << 16 | TCP flags mask << 24
 *   [3] source port low | high << 16 (ICMP: type)   [4] destination port low | high << 16 (ICMP: code)
 *   [5] source prefix length   [6] destination prefix length
 *   [7..10] source address, [11..14] destination address: 32-bit words in host byte order,
 *   most significant first (IPv4: word 7 / 11 only) */
#define LCP_ACL_RULE_WORDS 15
/* Bytes of the key lcp_acl_build's contexts read per packet: 20 (IPv4) or 44 (IPv6). */
uint32_t lcp_acl_key_size(int v6);
/* Builds a classifier context over n rules (one category). NULL with *error set (a positive
 * errno) on failure. Classify with rte_acl_classify, free with rte_acl_free. */
struct rte_acl_ctx *lcp_acl_build(const char *name, int socket_id, int v6, const uint32_t *rules, uint32_t n, int *error);

/* ---- bonds ------------------------------------------------------------- */

/* 802.3ad state of a bond member as the bonding PMD reports it (actor: us, partner: the peer). */
struct lcp_lacp_info {
	uint8_t selected;      /* 0 unselected, 1 standby, 2 selected */
	uint8_t actor_state;   /* LACP state bits: activity, timeout, aggregation, sync, collecting, distributing, defaulted, expired */
	uint8_t partner_state;
	uint8_t reserved;
	uint16_t agg_port;     /* the aggregator (port id) it is attached to */
	uint16_t actor_key, partner_key, actor_port, partner_port;
	uint8_t actor_system[6], partner_system[6];
};

/*
 * Creates a bond (net_bonding device `name`, which must start with net_bonding) of `n` member
 * ports in `mode` (BONDING_MODE_*) with `xmit_policy` (BALANCE_XMIT_POLICY_*, for balance and
 * 802.3ad). Returns its port id or -errno; nothing is left behind on failure.
 */
int lcp_bond_create(const char *name, uint8_t mode, uint8_t xmit_policy, const uint16_t *members,
                    uint16_t n, int socket_id);
/* Members (up to len) and the active ones; returns the member count or -errno. */
int lcp_bond_members(uint16_t bond, uint16_t *members, uint16_t len, uint16_t *active, uint16_t *nactive);
int lcp_bond_mode(uint16_t bond);
/* 802.3ad state of a member (mode 4 only); 0 or -errno. */
int lcp_bond_lacp(uint16_t bond, uint16_t member, struct lcp_lacp_info *out);
int lcp_bond_member_remove(uint16_t bond, uint16_t member);
int lcp_bond_member_add(uint16_t bond, uint16_t member);

/* ---- namespaces and mirrors -------------------------------------------- */

/* Create the named network namespace (/run/netns/<name>) if missing. 1 = created, 0 = existed. */
int lcp_netns_ensure(const char *name);
/*
 * rte_dev_probe(devargs) from a helper thread that first entered the namespace (NULL or ""
 * = the caller's). PMDs that create kernel devices (net_tap/net_tun) create them there.
 */
int lcp_dev_probe_in_netns(const char *netns, const char *devargs);
/*
 * lcp_port_setup from a helper thread inside the namespace. Needed for net_tap/net_tun: the PMD
 * opens one tun fd per queue (TUNSETIFF by name) at queue setup, in the caller's namespace.
 */
int lcp_port_setup_in_netns(const char *netns, uint16_t port, uint16_t nq, uint16_t nb_rxd,
                            uint16_t nb_txd, struct rte_mempool *pool);
/* ifindex of a kernel interface by name inside a namespace (NULL = current); <0 on error. */
int lcp_ifindex_in_netns(const char *netns, const char *ifname);
/*
 * A network sysctl (a path under /proc/sys/net/) read and/or written from a helper thread inside
 * the namespace: the old value (NUL-terminated, up to oldlen - 1 bytes) into old when not NULL,
 * then value written when not NULL. 0 or -errno.
 */
int lcp_sysctl_in_netns(const char *netns, const char *path, const char *value, char *old, uint32_t oldlen);
/* One legacy ethtool set command (ETHTOOL_STXCSUM, ETHTOOL_SGRO, ... with a struct ethtool_value)
 * on an interface of a namespace. 0 or -errno. */
int lcp_ethtool_set(const char *netns, const char *ifname, uint32_t cmd, uint32_t value);
/*
 * Identity of a named namespace: the inode of /run/netns/<name> (NULL = the caller's own,
 * /proc/self/ns/net; an absolute path: that file). -ENOENT when it is not a namespace file. A namespace deleted and created again under the same name has another.
 */
int lcp_netns_inode(const char *netns, uint64_t *inode);

/* ---- netlink ------------------------------------------------------------- */

/*
 * NETLINK_ROUTE socket created inside the namespace (NULL = ours; a name under /run/netns, or an
 * absolute path to any namespace file), subscribed to `groups`
 * (RTMGRP_* bits), receive buffer `rcvbuf` bytes (0 = default). Returns the fd or -errno.
 */
int lcp_netlink_open(const char *netns, uint32_t groups, int rcvbuf);
int lcp_netlink_send(int fd, const void *buf, uint32_t len);
/* Waits up to timeout_ms; returns bytes, -EAGAIN on timeout, -ENOBUFS on overrun, -errno. */
/*
 * Waits up to timeout_ms (-1: forever) for a message on fd, or for wake_fd (an eventfd from
 * lcp_wakeup_open; -1 for none) to be signalled. Returns the bytes received, -EAGAIN on timeout,
 * -EINTR when woken (the wakeup is consumed), or another negative errno.
 */
int lcp_netlink_recv(int fd, int wake_fd, void *buf, uint32_t len, int timeout_ms);
/* A non-blocking eventfd to interrupt lcp_netlink_recv from another thread. */
int lcp_wakeup_open(void);
int lcp_wakeup_signal(int wake_fd);
int lcp_netlink_close(int fd);

/* ---- threads ------------------------------------------------------------ */

/*
 * Remember the calling thread's CPU affinity (call before rte_eal_init pins it): the set the
 * process was started with, e.g. by taskset. Returns the number of CPUs in it.
 */
int lcp_save_initial_affinity(void);
/*
 * Pin the calling thread to the initial CPUs except those in `exclude` (a bitmask over CPUs
 * 0..63). If that leaves nothing, all initial CPUs. Returns the number of CPUs allowed.
 */
int lcp_thread_set_control_affinity(uint64_t exclude);
/* The calling thread's kernel thread id. */
int lcp_gettid(void);
/*
 * Pin every thread of the process except those listed in keep[0..nkeep) to the CPUs
 * lcp_thread_set_control_affinity would allow. For the threads that existed before EAL pinned
 * the main thread (the runtime's JIT, finalizer, signal and logging threads), which otherwise
 * may run on a worker's CPU and stall it. Returns the number of threads pinned, or a negative
 * errno.
 */
int lcp_pin_other_threads(uint64_t exclude, const int *keep, int nkeep);
/* Bitmask of CPUs the given lcore's thread is pinned to (from EAL's lcore config). */
uint64_t lcp_lcore_cpuset(unsigned lcore);
/*
 * DPDK malloc heap figures for one NUMA socket (rte_malloc_get_socket_stats): total heap size,
 * free bytes, allocated bytes. 0, or a negative errno for a bad socket.
 */
int lcp_heap_stats(int socket, uint64_t *total, uint64_t *free_bytes, uint64_t *allocated);

/* ---- layout probe ------------------------------------------------------- */

/*
 * offsetof/sizeof values compiled against the installed DPDK headers, by name such as
 * "rte_mbuf.data_off" or "sizeof.rte_ipv4_hdr". Returns -1 for an unknown name.
 */
long lcp_probe_layout(const char *name);

#ifdef __cplusplus
}
#endif
#endif
