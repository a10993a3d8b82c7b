#!/usr/bin/env bash
# lcpd's own netlink ingest rate, without the kernel's insertion cost in the way: N /24 routes
# are put in the mirrors' namespace first (timed: that is the kernel's own rate), then lcpd
# starts and takes them from its start-up dump. Prints the kernel's time, lcpd's time from
# process start to the FIB holding all N (EAL start-up included) and from its API being up, the
# GC collections it ran, and its memory (RSS, DPDK heap in use, RSS minus that heap).
#   LCORES=0@0,1@1 LOAD_CPUS=0 perf/scripts/dump-sync.sh [routes=1000000]
# MIX=realistic: IPv4 prefix lengths as in an Internet table (most /24, /16-/23, some /25-/32
# inside the /24s) and V6=<n> IPv6 routes (mostly /48 and /32-/44, clustered per /32 as
# allocations are), instead of N uniform /24s.
set -euo pipefail
[ -n "${LOAD_CPUS:-}" ] && taskset -pc "$LOAD_CPUS" $$ >/dev/null
ROOT=$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)
N=${1:-1000000}
V6=${V6:-0}
MIX=${MIX:-uniform}
ID=$$
DP=lcpdump-dp-$ID RT=lcpdump-rt-$ID SOCK=/run/lcpdump-$ID.sock
pid=
cleanup() {
    set +e
    [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    ip netns del "$DP" 2>/dev/null; ip netns del "$RT" 2>/dev/null; rm -f "$SOCK"
    rm -rf "/var/run/dpdk/lcpdump$ID" "/tmp/lcpdump-$ID.batch"; [ -n "${KEEP_LOG:-}" ] && cp "/tmp/lcpdump-$ID.log" "$KEEP_LOG"
}
trap cleanup EXIT
ip netns add "$DP"; ip netns add "$RT"
ip link add dp0 netns "$DP" type veth peer name h0 netns "$DP"
ip netns exec "$DP" ip link set dp0 up
# the routes' gateway is on a veth inside the router namespace (no dummy module everywhere)
ip -n "$RT" link add fill0 type veth peer name fill1
ip -n "$RT" link set fill1 up
ip -n "$RT" link set fill0 up
ip -n "$RT" addr add 10.0.0.1/24 dev fill0
ip -n "$RT" addr add 2001:db8::1/64 dev fill0 nodad
python3 - "$N" "$MIX" "$V6" >"/tmp/lcpdump-$ID.batch" <<'PY'
import ipaddress, random, sys
n, mix, n6 = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
out = sys.stdout.write
def v4(a, length):
    out(f"route add {ipaddress.IPv4Address(a)}/{length} via 10.0.0.2\n")
if mix == "uniform":
    for i in range(n):
        v4(0x64000000 + (i << 8), 24)  # 100.0.0.0/24, 100.0.1.0/24, ...
else:
    # Shares of an Internet table; each length fills its own run of address space from 11.0.0.0,
    # /25-/32 are carved out of the /24s (they need tbl8 groups, as in real tables).
    shares = [(16, .005), (17, .005), (18, .01), (19, .02), (20, .04), (21, .06), (22, .10), (23, .12)]
    longer = int(n * .015)
    cursor = 11 << 24
    made = 0
    for length, share in shares:
        cursor = (cursor + (1 << (32 - length)) - 1) & ~((1 << (32 - length)) - 1)
        for _ in range(int(n * share)):
            v4(cursor, length); cursor += 1 << (32 - length); made += 1
    n24 = n - made - longer
    base24 = cursor
    for i in range(n24):
        v4(base24 + (i << 8), 24)
    rnd = random.Random(1)
    i = 0
    taken = set()
    while i < longer:  # a few /24s split into several longer prefixes each
        b = base24 + (rnd.randrange(n24) << 8)
        for length in rnd.sample(range(25, 33), 4):
            if i == longer:
                break
            a = b + (rnd.randrange(1 << (length - 24)) << (32 - length))
            if (a, length) not in taken:
                taken.add((a, length)); v4(a, length); i += 1
if n6:
    rnd = random.Random(6)
    lengths = [(48, .50), (44, .08), (40, .07), (36, .04), (32, .20), (29, .03), (46, .04), (47, .02), (56, .02)]
    pool = [l for l, s in lengths for _ in range(int(s * 100))]
    i = 0
    seen = set()
    while i < n6:
        # an allocation: a /32 (or /29) somewhere in 2400::/6, holding up to 60 prefixes
        alloc = (0x2400 << 112) | (rnd.getrandbits(22) << 96)
        for _ in range(rnd.randint(1, 60)):
            if i == n6:
                break
            length = rnd.choice(pool)
            p = alloc | ((rnd.getrandbits(length - 32) << (128 - length)) if length > 32 else 0)
            p &= ((1 << length) - 1) << (128 - length)
            if (p, length) in seen:
                continue
            seen.add((p, length))
            out(f"route add {ipaddress.IPv6Address(p)}/{length} via 2001:db8::2\n"); i += 1
PY
k0=$(date +%s.%N)
ip netns exec "$RT" ip -batch "/tmp/lcpdump-$ID.batch"
k1=$(date +%s.%N)
t0=$(date +%s.%N)
ip netns exec "$DP" ${LCPD_WRAP:-} "$ROOT/bin/lcpd" --no-huge -m "${MEM:-4096}" --no-pci --file-prefix "lcpdump$ID" --lcores "${LCORES:-0@0}" \
    --vdev net_af_packet0,iface=dp0 -- --idle-sleep-us 50 --fib-routes $((N + 65536)) --fib6-routes $((V6 + 65536)) --fib-tbl8 ${TBL8:-16384} --fib6-tbl8 "${TBL8_6:-$((V6 > 0 ? 3 * V6 + 65536 : 65536))}" \
    --netns "$RT" --pair net_af_packet0=lcp0 --api-socket "$SOCK" >"/tmp/lcpdump-$ID.log" 2>&1 &
pid=$!
for _ in $(seq 1200); do [ -S "$SOCK" ] && break; sleep 0.05; done
t1=$(date +%s.%N)
while :; do
    have=$("$ROOT/bin/lcpctl" --socket "$SOCK" show ip fib summary --json | python3 -c 'import json,sys; d = json.load(sys.stdin); print(int(d["ipv4"] >= '"$N"' and d["ipv6"] >= '"$V6"' and not d["syncing"]) + 2 * int(d["refused"] > 0 and not d["syncing"]))')
    [ "$have" = 1 ] && break
    [ "$have" -ge 2 ] && { echo "prefixes refused for lack of table space; log: /tmp/lcpdump-$ID.log" >&2; KEEP_LOG=${KEEP_LOG:-/tmp/lcpdump-refused.log}; exit 1; }
    kill -0 "$pid" 2>/dev/null || { echo "lcpd exited; log: /tmp/lcpdump-$ID.log" >&2; exit 1; }
    sleep 0.1
done
t2=$(date +%s.%N)
"$ROOT/bin/lcpctl" --socket "$SOCK" show memory --json >"/tmp/lcpdump-$ID.mem"
"$ROOT/bin/lcpctl" --socket "$SOCK" show ip fib summary --json >"/tmp/lcpdump-$ID.sum"
python3 - "$N" "$V6" "$k0" "$k1" "$t0" "$t1" "$t2" "/tmp/lcpdump-$ID.mem" "/tmp/lcpdump-$ID.sum" <<'PY'
import json, sys
n, n6 = int(sys.argv[1]), int(sys.argv[2]); k0, k1, t0, t1, t2 = map(float, sys.argv[3:8])
m = json.load(open(sys.argv[8])); s = json.load(open(sys.argv[9]))
mb = lambda b: b / 2**20
rss, dpdk = m["rss_bytes"], m["dpdk_heap_allocated_bytes"]
print(f"routes={n} v6={n6} kernel_s={k1 - k0:.2f} (kernel {(n + n6) / (k1 - k0):.0f} routes/s) "
      f"lcpd_start_to_fib_full_s={t2 - t0:.2f} api_up_s={t1 - t0:.2f} api_up_to_fib_full_s={t2 - t1:.2f} "
      f"lcpd_rate_per_s={(n + n6) / (t2 - t0):.0f}")
print(f"fib_v4={s['ipv4']} fib_v6={s['ipv6']} refused={s['refused']} "
      f"gc_gen0={m['gen0_collections']} gc_gen1={m['gen1_collections']} gc_gen2={m['gen2_collections']} "
      f"managed_heap_mb={mb(m['managed_heap_bytes']):.0f} rss_mb={mb(rss):.0f} dpdk_heap_mb={mb(dpdk):.0f} "
      f"rss_minus_dpdk_heap_mb={mb(rss - dpdk):.0f}")
PY
