/*
 * Network namespaces. Namespaces are named like iproute2's (bind mounts under /run/netns), so
 * `ip netns exec <name>` sees what lcpd created and vice versa. Work that must happen inside a
 * namespace runs on a short-lived helper thread that setns()'d into it: the calling thread (and
 * with it the .NET runtime's threads) never changes namespace.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <rte_dev.h>
#include <rte_errno.h>

#include "lcp_shim.h"
#include "lcp_internal.h"

#define NETNS_RUN_DIR "/run/netns"
#define NSFS_MAGIC_NUMBER 0x6e736673UL /* linux/magic.h NSFS_MAGIC */

static int netns_path(const char *name, char *buf, size_t len)
{
	if (name == NULL || name[0] == '\0' || strchr(name, '/') != NULL ||
	    strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return -EINVAL;
	int n = snprintf(buf, len, NETNS_RUN_DIR "/%s", name);
	return (n < 0 || (size_t)n >= len) ? -ENAMETOOLONG : 0;
}

/* Make /run/netns a shared mount point, as iproute2 does, so mounts propagate. */
static int prepare_run_dir(void)
{
	if (mkdir(NETNS_RUN_DIR, 0755) != 0 && errno != EEXIST)
		return -errno;
	if (mount("", NETNS_RUN_DIR, "none", MS_SHARED | MS_REC, NULL) == 0)
		return 0;
	if (errno != EINVAL)
		return -errno;
	if (mount(NETNS_RUN_DIR, NETNS_RUN_DIR, "none", MS_BIND | MS_REC, NULL) != 0)
		return -errno;
	if (mount("", NETNS_RUN_DIR, "none", MS_SHARED | MS_REC, NULL) != 0)
		return -errno;
	return 0;
}

#define run_in_netns lcp_run_in_netns
static int do_nothing(const void *arg) { (void)arg; return 0; }

struct create_arg {
	const char *path;
	int rc;
};

static void *create_thread(void *p)
{
	struct create_arg *a = p;
	char self[64];
	if (unshare(CLONE_NEWNET) != 0) {
		a->rc = -errno;
		return NULL;
	}
	snprintf(self, sizeof(self), "/proc/self/task/%ld/ns/net", (long)syscall(SYS_gettid));
	a->rc = mount(self, a->path, "none", MS_BIND, NULL) == 0 ? 0 : -errno;
	return NULL;
}

int lcp_netns_ensure(const char *name)
{
	char path[256];
	struct stat st;
	int rc = netns_path(name, path, sizeof(path));
	if (rc != 0)
		return rc;
	if (stat(path, &st) == 0) {
		/* Exists: usable if a helper thread can enter it (a stale plain file cannot). */
		if (run_in_netns(name, do_nothing, NULL) == 0)
			return 0;
		umount2(path, MNT_DETACH);
		unlink(path);
	}
	rc = prepare_run_dir();
	if (rc != 0)
		return rc;
	int fd = open(path, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0);
	if (fd < 0 && errno != EEXIST)
		return -errno;
	if (fd >= 0)
		close(fd);
	struct create_arg a = { .path = path, .rc = 0 };
	pthread_t t;
	if (pthread_create(&t, NULL, create_thread, &a) != 0)
		return -EAGAIN;
	pthread_join(t, NULL);
	if (a.rc != 0) {
		unlink(path);
		return a.rc;
	}
	return 1;
}

struct ns_call {
	const char *netns;
	const void *arg;
	int (*fn)(const void *arg);
	int rc;
};

static void *ns_thread(void *p)
{
	struct ns_call *c = p;
	if (c->netns != NULL && c->netns[0] != '\0') {
		char path[256];
		int rc;
		/* An absolute path names any namespace file (/proc/<pid>/ns/net, a bind mount
		 * elsewhere); a bare name is one of iproute2's under /run/netns. */
		if (c->netns[0] == '/') {
			rc = snprintf(path, sizeof(path), "%s", c->netns) >= (int)sizeof(path) ? -ENAMETOOLONG : 0;
		} else {
			rc = netns_path(c->netns, path, sizeof(path));
		}
		if (rc != 0) {
			c->rc = rc;
			return NULL;
		}
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			c->rc = -errno;
			return NULL;
		}
		rc = setns(fd, CLONE_NEWNET);
		close(fd);
		if (rc != 0) {
			c->rc = -errno;
			return NULL;
		}
	}
	c->rc = c->fn(c->arg);
	return NULL;
}

int lcp_run_in_netns(const char *netns, int (*fn)(const void *), const void *arg)
{
	struct ns_call c = { .netns = netns, .arg = arg, .fn = fn, .rc = 0 };
	pthread_t t;
	if (pthread_create(&t, NULL, ns_thread, &c) != 0)
		return -EAGAIN;
	pthread_join(t, NULL);
	return c.rc;
}

static int do_probe(const void *devargs)
{
	return rte_dev_probe(devargs);
}

static int do_ifindex(const void *ifname)
{
	unsigned idx = if_nametoindex(ifname);
	return idx == 0 ? -errno : (int)idx;
}

struct setup_arg {
	uint16_t port, nq, nb_rxd, nb_txd;
	struct rte_mempool *pool;
};

static int do_setup(const void *p)
{
	const struct setup_arg *a = p;
	return lcp_port_setup(a->port, a->nq, a->nb_rxd, a->nb_txd, a->pool);
}

int lcp_port_setup_in_netns(const char *netns, uint16_t port, uint16_t nq, uint16_t nb_rxd,
                            uint16_t nb_txd, struct rte_mempool *pool)
{
	struct setup_arg a = { .port = port, .nq = nq, .nb_rxd = nb_rxd, .nb_txd = nb_txd, .pool = pool };
	return run_in_netns(netns, do_setup, &a);
}

int lcp_dev_probe_in_netns(const char *netns, const char *devargs)
{
	return run_in_netns(netns, do_probe, devargs);
}

int lcp_ifindex_in_netns(const char *netns, const char *ifname)
{
	return run_in_netns(netns, do_ifindex, ifname);
}

struct sysctl_arg {
	const char *path;
	const char *value;
	char *old;
	uint32_t oldlen;
};

static int do_sysctl(const void *p)
{
	const struct sysctl_arg *a = p;
	if (a->old != NULL && a->oldlen > 1) {
		int fd = open(a->path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return -errno;
		ssize_t n = read(fd, a->old, a->oldlen - 1);
		int err = errno;
		close(fd);
		if (n < 0)
			return -err;
		a->old[n] = '\0';
	}
	if (a->value != NULL) {
		int fd = open(a->path, O_WRONLY | O_CLOEXEC);
		if (fd < 0)
			return -errno;
		size_t len = strlen(a->value);
		ssize_t n = write(fd, a->value, len);
		int err = errno;
		close(fd);
		if (n < 0)
			return -err;
		if ((size_t)n != len)
			return -EIO;
	}
	return 0;
}

int lcp_sysctl_in_netns(const char *netns, const char *path, const char *value, char *old, uint32_t oldlen)
{
	/* Network sysctls are the namespace's of the thread that opens them. */
	if (path == NULL || strncmp(path, "/proc/sys/net/", 14) != 0 || strstr(path, "..") != NULL)
		return -EINVAL;
	struct sysctl_arg a = { .path = path, .value = value, .old = old, .oldlen = oldlen };
	return run_in_netns(netns, do_sysctl, &a);
}

struct ethtool_arg {
	const char *ifname;
	uint32_t cmd;
	uint32_t value;
};

static int do_ethtool(const void *p)
{
	const struct ethtool_arg *a = p;
	struct ethtool_value ev = { .cmd = a->cmd, .data = a->value };
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	if (strlen(a->ifname) >= sizeof(ifr.ifr_name))
		return -ENAMETOOLONG;
	strcpy(ifr.ifr_name, a->ifname);
	ifr.ifr_data = (void *)&ev;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int rc = ioctl(fd, SIOCETHTOOL, &ifr) == 0 ? 0 : -errno;
	close(fd);
	return rc;
}

int lcp_ethtool_set(const char *netns, const char *ifname, uint32_t cmd, uint32_t value)
{
	if (ifname == NULL)
		return -EINVAL;
	struct ethtool_arg a = { .ifname = ifname, .cmd = cmd, .value = value };
	return run_in_netns(netns, do_ethtool, &a);
}

int lcp_netns_inode(const char *netns, uint64_t *inode)
{
	char path[256];
	if (netns == NULL || netns[0] == '\0') {
		snprintf(path, sizeof(path), "/proc/self/ns/net");
	} else if (netns[0] == '/') {
		if (snprintf(path, sizeof(path), "%s", netns) >= (int)sizeof(path))
			return -ENAMETOOLONG;
	} else {
		int rc = netns_path(netns, path, sizeof(path));
		if (rc < 0)
			return rc;
	}
	/* `ip netns add` creates the file first and bind-mounts the namespace on it after: until
	 * then it is a plain file on /run, not a namespace, and counts as absent. */
	struct statfs fs;
	struct stat st;
	if (statfs(path, &fs) != 0 || stat(path, &st) != 0)
		return -errno;
	if ((unsigned long)fs.f_type != NSFS_MAGIC_NUMBER)
		return -ENOENT;
	*inode = (uint64_t)st.st_ino;
	return 0;
}
