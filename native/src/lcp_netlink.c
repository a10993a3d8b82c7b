/* rtnetlink sockets opened inside a namespace (a netlink socket stays bound to the namespace it
 * was created in), with bounded waits so a listener thread can be stopped. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lcp_shim.h"
#include "lcp_internal.h"

struct nl_open_arg {
	uint32_t groups;
	int rcvbuf;
};

static int do_nl_open(const void *p)
{
	const struct nl_open_arg *a = p;
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (fd < 0)
		return -errno;
	if (a->rcvbuf > 0) {
		/* FORCE ignores rmem_max (we are privileged); fall back to the capped one. */
		if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &a->rcvbuf, sizeof(a->rcvbuf)) != 0)
			(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &a->rcvbuf, sizeof(a->rcvbuf));
	}
	int one = 1;
	(void)setsockopt(fd, SOL_NETLINK, NETLINK_NO_ENOBUFS, &(int){0}, sizeof(int));
	(void)setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
	struct sockaddr_nl sa;
	memset(&sa, 0, sizeof(sa));
	sa.nl_family = AF_NETLINK;
	sa.nl_groups = a->groups;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

int lcp_netlink_open(const char *netns, uint32_t groups, int rcvbuf)
{
	struct nl_open_arg a = { .groups = groups, .rcvbuf = rcvbuf };
	return lcp_run_in_netns(netns, do_nl_open, &a);
}

int lcp_netlink_send(int fd, const void *buf, uint32_t len)
{
	struct sockaddr_nl sa;
	memset(&sa, 0, sizeof(sa));
	sa.nl_family = AF_NETLINK;
	ssize_t n = sendto(fd, buf, len, 0, (struct sockaddr *)&sa, sizeof(sa));
	return n < 0 ? -errno : (int)n;
}

int lcp_netlink_recv(int fd, int wake_fd, void *buf, uint32_t len, int timeout_ms)
{
	struct pollfd p[2] = { { .fd = fd, .events = POLLIN }, { .fd = wake_fd, .events = POLLIN } };
	int rc = poll(p, wake_fd >= 0 ? 2 : 1, timeout_ms);
	if (rc < 0)
		return -errno;
	if (rc == 0)
		return -EAGAIN;
	if (wake_fd >= 0 && (p[1].revents & POLLIN) && !(p[0].revents & POLLIN)) {
		uint64_t v;
		if (read(wake_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
			return -errno;
		return -EINTR;
	}
	ssize_t n = recv(fd, buf, len, MSG_DONTWAIT);
	return n < 0 ? -errno : (int)n;
}

int lcp_wakeup_open(void)
{
	int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

int lcp_wakeup_signal(int wake_fd)
{
	uint64_t one = 1;
	return write(wake_fd, &one, sizeof(one)) == sizeof(one) ? 0 : -errno;
}

int lcp_netlink_close(int fd)
{
	return close(fd) == 0 ? 0 : -errno;
}
