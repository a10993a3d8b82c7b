/*
 * The machine's floor for loop gaps: a C loop that does nothing but read the TSC, pinned to one
 * CPU, reporting the longest interval between two reads and how many exceeded thresholds.
 * Whatever this sees (hypervisor steal, interrupts, kernel threads) no dataplane loop on that
 * CPU can avoid.   usage: gapfloor <cpu> <seconds>
 */
#define _GNU_SOURCE
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <x86intrin.h>

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	int cpu = argc > 1 ? atoi(argv[1]) : 1;
	double secs = argc > 2 ? atof(argv[2]) : 10;
	size_t touch = argc > 3 ? (size_t)atol(argv[3]) << 20 : 0;
	volatile uint8_t *buf = NULL;
	if (touch) {
		buf = malloc(touch);
		for (size_t i = 0; i < touch; i += 4096)
			buf[i] = 1;
	}
	uint64_t x = 88172645463325252ULL;
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set) != 0) {
		perror("sched_setaffinity");
		return 1;
	}
	/* TSC rate from a 200 ms calibration */
	double t0 = now_s();
	uint64_t c0 = __rdtsc();
	while (now_s() - t0 < 0.2)
		;
	double hz = (__rdtsc() - c0) / (now_s() - t0);

	uint64_t end = __rdtsc() + (uint64_t)(secs * hz), last = __rdtsc(), max = 0;
	uint64_t over10 = 0, over100 = 0, over1000 = 0, n = 0;
	uint64_t t10 = hz / 1e5, t100 = hz / 1e4, t1000 = hz / 1e3;
	for (;;) {
		if (buf) {
			x ^= x << 13; x ^= x >> 7; x ^= x << 17;
			size_t at = (x % touch) & ~(size_t)63;
			buf[at] = buf[at] + 1;
		}
		uint64_t t = __rdtsc();
		uint64_t gap = t - last;
		last = t;
		n++;
		if (gap > max)
			max = gap;
		if (gap > t10) {
			over10++;
			if (gap > t100) {
				over100++;
				if (gap > t1000)
					over1000++;
			}
		}
		if (t > end)
			break;
	}
	printf("touch_mib=%zu cpu=%d seconds=%.0f iterations=%llu max_gap_us=%.1f gaps_over_10us=%llu over_100us=%llu over_1ms=%llu\n",
	       touch >> 20, cpu, secs, (unsigned long long)n, max / hz * 1e6, (unsigned long long)over10,
	       (unsigned long long)over100, (unsigned long long)over1000);
	return 0;
}
