/* soakgen: a paced traffic source and sink for perf/scripts/soak.sh.
 *
 * Two memif server ports (the DUT connects as client). Each port sends 64-byte IPv4/UDP frames
 * to the DUT's MAC, 10.254.0.0 -> 10.253.0.0 + i (i = 0..flows-1, round robin), at a total rate
 * paced by the TSC, and counts what comes back. Printed once a second (cumulative):
 *   t=<s> tx=<accepted by the DUT's ring> txfail=<refused: ring full> rx=<returned> other=<other frames> skipped=<behind>
 * "skipped" are packets the generator itself could not send in time (it was descheduled for more
 * than 1 ms): they are not offered, so they are not loss, but they lower the offered rate.
 * After --seconds it stops sending, waits --drain-ms for frames in flight and prints
 *   done tx=.. txfail=.. rx=.. lost=<tx - rx> other=.. skipped=.. offered_pps=.. returned_pps=..
 * With --probe <s>, the rate is first found: a step as fast as the generator can send gives the
 * capacity, then a binary search (7 steps) for the highest rate that loses nothing (the no-loss
 * rate); the soak then runs at --rate-pct (80) percent of that. Probe lines: "probe ...", then "soak rate=..".
 * Usage: soakgen <EAL args> -- (--rate <pps> | --probe <s> [--rate-pct 80]) --seconds <s> --dut-mac <mac>
 *        [--flows 1024] [--drain-ms 1000] [--go <file>]
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <rte_byteorder.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_udp.h>

#define BURST 32
#define FRAME 60

static volatile int stop;
static void on_signal(int s) { (void)s; stop = 1; }

static int setup_port(uint16_t port, struct rte_mempool *pool)
{
    struct rte_eth_conf conf;
    memset(&conf, 0, sizeof conf);
    if (rte_eth_dev_configure(port, 1, 1, &conf) < 0) return -1;
    if (rte_eth_rx_queue_setup(port, 0, 1024, rte_eth_dev_socket_id(port), NULL, pool) < 0) return -1;
    if (rte_eth_tx_queue_setup(port, 0, 1024, rte_eth_dev_socket_id(port), NULL) < 0) return -1;
    return rte_eth_dev_start(port);
}

static void build(uint8_t *f, const struct rte_ether_addr *dst, const struct rte_ether_addr *src, uint32_t flow)
{
    struct rte_ether_hdr *eth = (struct rte_ether_hdr *)f;
    struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(eth + 1);
    struct rte_udp_hdr *udp = (struct rte_udp_hdr *)(ip + 1);
    memset(f, 0, FRAME);
    rte_ether_addr_copy(dst, &eth->dst_addr);
    rte_ether_addr_copy(src, &eth->src_addr);
    eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
    ip->version_ihl = 0x45;
    ip->total_length = rte_cpu_to_be_16(FRAME - sizeof *eth);
    ip->time_to_live = 64;
    ip->next_proto_id = IPPROTO_UDP;
    ip->src_addr = rte_cpu_to_be_32(0x0afe0000);            /* 10.254.0.0 */
    ip->dst_addr = rte_cpu_to_be_32(0x0afd0000 + flow);     /* 10.253.0.0 + flow */
    ip->hdr_checksum = rte_ipv4_cksum(ip);
    udp->src_port = rte_cpu_to_be_16(1000);
    udp->dst_port = rte_cpu_to_be_16(1001);
    udp->dgram_len = rte_cpu_to_be_16(FRAME - sizeof *eth - sizeof *ip);
}

static int ours(struct rte_mbuf *m)
{
    if (rte_pktmbuf_data_len(m) < sizeof(struct rte_ether_hdr) + sizeof(struct rte_ipv4_hdr) + sizeof(struct rte_udp_hdr))
        return 0;
    struct rte_ether_hdr *eth = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
    if (eth->ether_type != rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4)) return 0;
    struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(eth + 1);
    if (ip->next_proto_id != IPPROTO_UDP || (rte_be_to_cpu_32(ip->dst_addr) >> 16) != 0x0afd) return 0;
    struct rte_udp_hdr *udp = (struct rte_udp_hdr *)(ip + 1);
    return udp->dst_port == rte_cpu_to_be_16(1001);
}

struct phase { uint64_t tx, txfail, rx, other, skipped; double secs, offered_pps; };
static struct rte_ether_addr mac[2];

/* Sends at <rate> pps for <seconds>, then only receives for <drain_ms>. */
static struct phase run_phase(struct rte_mempool *pool, const uint8_t *tmpl, uint32_t flows, double rate,
                              double seconds, uint32_t drain_ms, int progress)
{
    struct phase r = {0};
    uint64_t offered = 0;
    static uint32_t flow[2];
    uint64_t hz = rte_get_tsc_hz();
    uint64_t t0 = rte_rdtsc(), end = t0 + (uint64_t)(seconds * hz), next_print = t0 + hz;
    uint64_t backlog_max = (uint64_t)(rate / 1000) + BURST;   /* 1 ms of packets */
    int port = 0;
    struct rte_mbuf *b[BURST];
    uint64_t stop_at = 0;
    for (;;) {
        uint64_t now = rte_rdtsc();
        if (!stop_at && (now >= end || stop)) stop_at = now;
        if (!stop_at) {
            uint64_t due = (uint64_t)((double)(now - t0) / hz * rate);
            if (due > offered + backlog_max) { r.skipped += due - offered - backlog_max; offered = due - backlog_max; }
            /* At most 4 bursts before the receive side is served, or returned frames overflow its ring. */
            /* Whole bursts only: a DUT fed one packet per poll would be measured at its worst. */
            for (int bursts = 0; offered + BURST <= due && bursts < 4; bursts++) {
                uint32_t k = BURST;
                if (rte_pktmbuf_alloc_bulk(pool, b, k) != 0) break;
                for (uint32_t i = 0; i < k; i++) {
                    uint8_t *d = (uint8_t *)rte_pktmbuf_append(b[i], FRAME);
                    memcpy(d, tmpl + ((size_t)port * flows + flow[port]) * FRAME, FRAME);
                    if (++flow[port] == flows) flow[port] = 0;
                }
                uint16_t sent = rte_eth_tx_burst(port, 0, b, k);
                if (sent < k) rte_pktmbuf_free_bulk(b + sent, k - sent);
                r.tx += sent;
                r.txfail += k - sent;
                offered += k;
                port ^= 1;
            }
        }
        uint32_t got = 0;
        for (uint16_t p = 0; p < 2; p++) {
            uint16_t n;
            while ((n = rte_eth_rx_burst(p, 0, b, BURST)) > 0) {
                got += n;
                for (uint16_t i = 0; i < n; i++) {
                    if (ours(b[i])) r.rx++; else r.other++;
                }
                rte_pktmbuf_free_bulk(b, n);
            }
        }
        if (progress && now >= next_print && !stop_at) {
            printf("t=%.0f tx=%" PRIu64 " txfail=%" PRIu64 " rx=%" PRIu64 " other=%" PRIu64 " skipped=%" PRIu64 "\n",
                   (double)(now - t0) / hz, r.tx, r.txfail, r.rx, r.other, r.skipped);
            fflush(stdout);
            next_print += hz;
        }
        if (stop_at && now - stop_at > (uint64_t)drain_ms * hz / 1000) break;
        /* Nothing received and less than a burst due: sleep (the CPU is shared with the churn
         * tools). What accrues meanwhile is sent in whole bursts on waking. */
        if (!got && (stop_at || offered + BURST > (uint64_t)((double)(rte_rdtsc() - t0) / hz * rate)))
            rte_delay_us_sleep(20);
    }
    r.secs = (double)(stop_at - t0) / hz;
    r.offered_pps = (r.tx + r.txfail) / r.secs;
    return r;
}

int main(int argc, char **argv)
{
    int n = rte_eal_init(argc, argv);
    if (n < 0) { fprintf(stderr, "soakgen: EAL init failed\n"); return 2; }
    argc -= n; argv += n;
    double rate = 0, seconds = 0, probe_s = 0, rate_pct = 80;
    uint32_t flows = 1024, drain_ms = 1000;
    const char *go = NULL;
    struct rte_ether_addr dut;
    int have_mac = 0, linger = 0;
    for (int i = 1; i < argc; i += 2) {
        if (!strcmp(argv[i], "--linger")) { linger = 1; i--; continue; }
        if (i + 1 >= argc) { fprintf(stderr, "soakgen: %s needs a value\n", argv[i]); return 2; }
        if (!strcmp(argv[i], "--rate")) rate = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--seconds")) seconds = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--probe")) probe_s = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--go")) go = argv[i + 1];
        else if (!strcmp(argv[i], "--rate-pct")) rate_pct = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--flows")) flows = (uint32_t)atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--drain-ms")) drain_ms = (uint32_t)atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--dut-mac")) have_mac = rte_ether_unformat_addr(argv[i + 1], &dut) == 0;
        else { fprintf(stderr, "soakgen: unknown option %s\n", argv[i]); return 2; }
    }
    if ((rate <= 0 && probe_s <= 0) || seconds <= 0 || !have_mac || flows == 0 || flows > 65536) {
        fprintf(stderr, "soakgen: need --rate <pps> | --probe <s per step> [--rate-pct 80], --seconds <s> --dut-mac <mac> [--flows 1..65536]\n");
        return 2;
    }
    uint16_t nports = rte_eth_dev_count_avail();
    if (nports != 2) { fprintf(stderr, "soakgen: need exactly 2 ports, have %u\n", nports); return 2; }
    struct rte_mempool *pool = rte_pktmbuf_pool_create("soakgen", 16383, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE, rte_socket_id());
    if (!pool) { fprintf(stderr, "soakgen: mempool: %s\n", rte_strerror(rte_errno)); return 2; }
    for (uint16_t p = 0; p < 2; p++) {
        if (setup_port(p, pool) < 0) { fprintf(stderr, "soakgen: port %u setup failed\n", p); return 2; }
        rte_eth_macaddr_get(p, &mac[p]);
    }
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);

    /* One frame template per flow and port, copied into each mbuf. */
    uint8_t *tmpl = malloc((size_t)flows * 2 * FRAME);
    for (uint16_t p = 0; p < 2; p++)
        for (uint32_t f = 0; f < flows; f++)
            build(tmpl + ((size_t)p * flows + f) * FRAME, &dut, &mac[p], f);

    /* Wait for the DUT's memif clients to connect (link up on both). */
    uint64_t hz = rte_get_tsc_hz(), deadline = rte_rdtsc() + 60 * hz;
    for (;;) {
        struct rte_eth_link l0, l1;
        rte_eth_link_get_nowait(0, &l0);
        rte_eth_link_get_nowait(1, &l1);
        if (l0.link_status && l1.link_status) break;
        if (stop || rte_rdtsc() > deadline) { fprintf(stderr, "soakgen: DUT never connected\n"); return 3; }
        rte_delay_us_sleep(10000);
    }
    printf("ready\n");
    fflush(stdout);
    /* --go <file>: nothing is sent until the file exists (the DUT is configured meanwhile). */
    while (go && !stop && access(go, F_OK) != 0) rte_delay_us_sleep(50000);

    double nlr = 0;
    if (probe_s > 0) {
        /* The no-loss rate: first as fast as the generator can (the returned rate is the capacity
         * of the pair), then a binary search below it for the highest rate whose step loses
         * nothing (7 steps: 1/128 of the capacity). */
        struct phase r = run_phase(pool, tmpl, flows, 100e6, probe_s, 300, 0);
        double cap = r.rx / r.secs, lo = 0, hi = cap;
        printf("probe rate=max offered_pps=%.0f returned_pps=%.0f\n", r.offered_pps, cap);
        for (int step = 0; step < 7 && !stop; step++) {
            double want = (lo + hi) / 2;
            r = run_phase(pool, tmpl, flows, want, probe_s, 300, 0);
            /* Frames the generator itself sent late (skipped) are not loss: they lower the rate it
             * offered, which is what the no-loss rate records. */
            int clean = r.tx == r.rx && r.txfail == 0 && r.tx > 0;
            printf("probe rate=%.0f offered_pps=%.0f returned_pps=%.0f lost=%" PRId64 " txfail=%" PRIu64 " skipped=%" PRIu64 " %s\n",
                   want, r.offered_pps, r.rx / r.secs, (int64_t)(r.tx - r.rx), r.txfail, r.skipped, clean ? "clean" : "loss");
            fflush(stdout);
            if (clean) { nlr = r.offered_pps; lo = want; } else hi = want;
        }
        if (nlr == 0) { printf("probe failed: no step without loss\n"); return 4; }
        printf("probe capacity_pps=%.0f no_loss_pps=%.0f\n", cap, nlr);
        rate = nlr * rate_pct / 100;
    }
    printf("soak rate=%.0f seconds=%.0f\n", rate, seconds);
    fflush(stdout);
    struct phase r = run_phase(pool, tmpl, flows, rate, seconds, drain_ms, 1);
    printf("done tx=%" PRIu64 " txfail=%" PRIu64 " rx=%" PRIu64 " lost=%" PRId64 " other=%" PRIu64 " skipped=%" PRIu64
           " offered_pps=%.0f returned_pps=%.0f\n",
           r.tx, r.txfail, r.rx, (int64_t)(r.tx - r.rx), r.other, r.skipped, r.offered_pps, r.rx / r.secs);
    fflush(stdout);
    /* --linger: the ports stay connected (what arrives is freed) until SIGTERM, so that the DUT
     * is stopped first. DPDK 22.11's memif PMD unmaps a client's rings when its peer goes away
     * without waiting for the client's lcores to leave rx/tx: a DUT polling at that moment
     * crashes (docs/deployment.md, memif ports). */
    while (linger && !stop) {
        struct rte_mbuf *pkts[BURST];
        uint16_t got = 0;
        for (uint16_t p = 0; p < 2; p++) {
            uint16_t k = rte_eth_rx_burst(p, 0, pkts, BURST);
            rte_pktmbuf_free_bulk(pkts, k);
            got += k;
        }
        if (got == 0) rte_delay_us_sleep(1000);
    }
    for (uint16_t p = 0; p < 2; p++) { rte_eth_dev_stop(p); rte_eth_dev_close(p); }
    free(tmpl);
    rte_eal_cleanup();
    return 0;
}
