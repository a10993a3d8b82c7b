/* EAL-level helpers: errno, TSC, sleeps, thread affinity. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>

#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_malloc.h>

#include "lcp_shim.h"

int lcp_shim_abi(void) { return LCP_SHIM_ABI; }

int lcp_rte_errno(void) { return rte_errno; }

uint64_t lcp_rdtsc(void) { return rte_rdtsc(); }

uint64_t lcp_tsc_hz(void) { return rte_get_tsc_hz(); }

void lcp_sleep_us(uint32_t usec)
{
	struct timespec ts = { .tv_sec = usec / 1000000, .tv_nsec = (long)(usec % 1000000) * 1000 };
	nanosleep(&ts, NULL);
}

static cpu_set_t initial_set;
static int initial_saved;

int lcp_save_initial_affinity(void)
{
	CPU_ZERO(&initial_set);
	int rc = pthread_getaffinity_np(pthread_self(), sizeof(initial_set), &initial_set);
	if (rc != 0)
		return -rc;
	initial_saved = 1;
	return CPU_COUNT(&initial_set);
}

/* The initial CPUs minus `exclude`; all initial CPUs if that leaves none. */
static int control_set(uint64_t exclude, cpu_set_t *out)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	cpu_set_t set;
	int count = 0;

	CPU_ZERO(&set);
	for (long cpu = 0; cpu < ncpu && cpu < CPU_SETSIZE; cpu++) {
		if (initial_saved && !CPU_ISSET(cpu, &initial_set))
			continue;
		if (cpu < 64 && (exclude & (1ULL << cpu)))
			continue;
		CPU_SET(cpu, &set);
		count++;
	}
	if (count == 0) {
		for (long cpu = 0; cpu < ncpu && cpu < CPU_SETSIZE; cpu++)
			if (!initial_saved || CPU_ISSET(cpu, &initial_set)) {
				CPU_SET(cpu, &set);
				count++;
			}
	}
	*out = set;
	return count;
}

int lcp_thread_set_control_affinity(uint64_t exclude)
{
	cpu_set_t set;
	int count = control_set(exclude, &set);
	int rc = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	return rc == 0 ? count : -rc;
}

int lcp_gettid(void) { return (int)syscall(SYS_gettid); }

int lcp_pin_other_threads(uint64_t exclude, const int *keep, int nkeep)
{
	cpu_set_t set;
	control_set(exclude, &set);
	DIR *d = opendir("/proc/self/task");
	if (d == NULL)
		return -errno;
	int pinned = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		int tid = atoi(e->d_name);
		int skip = 0;
		for (int i = 0; i < nkeep; i++)
			if (keep[i] == tid)
				skip = 1;
		/* A thread may have exited meanwhile (ESRCH): not an error. */
		if (!skip && sched_setaffinity(tid, sizeof(set), &set) == 0)
			pinned++;
	}
	closedir(d);
	return pinned;
}

uint64_t lcp_lcore_cpuset(unsigned lcore)
{
	rte_cpuset_t set = rte_lcore_cpuset(lcore);
	uint64_t mask = 0;
	for (int cpu = 0; cpu < 64; cpu++)
		if (CPU_ISSET(cpu, &set))
			mask |= 1ULL << cpu;
	return mask;
}

int lcp_heap_stats(int socket, uint64_t *total, uint64_t *free_bytes, uint64_t *allocated)
{
	struct rte_malloc_socket_stats st;
	if (rte_malloc_get_socket_stats(socket, &st) != 0)
		return -EINVAL;
	*total = st.heap_totalsz_bytes;
	*free_bytes = st.heap_freesz_bytes;
	*allocated = st.heap_allocsz_bytes;
	return 0;
}
