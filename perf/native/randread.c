/*
 * What the machine's memory does for a flow table: random 64-byte lines of a large array read
 * and written (as a tracker updates a flow), either one at a time or in batches whose lines are
 * all prefetched before the first is used, with and without transparent huge pages. Prints the
 * time per line. The batched figure is the floor of a tracker that touches one prefetched line
 * per packet; a line it reaches without a prefetch costs a whole memory latency instead.
 *   usage: randread <MiB=96> <huge=1> <batch=64>      (pin it: taskset -c 1 randread ...)
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <x86intrin.h>

static double seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static uint64_t state = 0x9E3779B97F4A7C15ull;

static inline uint64_t next(void)
{
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
}

int main(int argc, char **argv)
{
    size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 96;
    int huge = argc > 2 ? atoi(argv[2]) : 1;
    int batch = argc > 3 ? atoi(argv[3]) : 64;
    if (mib == 0 || batch < 1 || batch > 256) {
        fprintf(stderr, "usage: randread <MiB> <huge 0|1> <batch 1..256>\n");
        return 2;
    }
    const size_t page = 2u << 20, bytes = mib << 20, lines = bytes / 64;
    uint8_t *raw = mmap(NULL, bytes + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    uint8_t *table = (uint8_t *)(((uintptr_t)raw + page - 1) & ~(uintptr_t)(page - 1));
    madvise(table, bytes, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
    memset(table, 1, bytes); /* resident before the clock starts */

    const size_t reads = 20000000;
    uint64_t at[256], sum = 0;
    double t0 = seconds();
    for (size_t i = 0; i < reads; i += batch) {
        for (int k = 0; k < batch; k++) {
            at[k] = next() % lines;
            _mm_prefetch((const char *)(table + at[k] * 64), _MM_HINT_T0);
        }
        for (int k = 0; k < batch; k++) {
            uint64_t *line = (uint64_t *)(table + at[k] * 64);
            sum += line[0];
            line[1]++; /* a counter, as a flow's packets */
        }
    }
    double t1 = seconds();
    printf("%zu MiB, huge pages %s, batches of %d: %.1f ns a line (checksum %llu)\n", mib, huge ? "advised" : "off", batch,
           (t1 - t0) * 1e9 / reads, (unsigned long long)(sum & 0xff));
    return 0;
}
