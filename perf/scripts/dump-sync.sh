#!/usr/bin/env bash
# lcpd's own netlink ingest rate, without the kernel's insertion cost in the way: N /24 routes
# are put in the mirrors' namespace first (timed: that is the kernel's own rate), then lcpd
# starts and takes them from its start-up dump. Prints the kernel's time, lcpd's time from
# process start to the FIB holding all N (EAL start-up included) and from its API being up, the
# GC collections it ran, and its memory (RSS, DPDK heap in use, RSS minus that heap).
#   LCORES=0@0,1@1 LOAD_CPUS=0 perf/scripts/dump-sync.sh [routes=1000000]
# MIX=realistic: IPv4 prefix lengths as in an Internet table (most /24, /16-/23, some /25-/32
# inside the /24s) and V6=<n> IPv6 routes (mostly /48 and /32-/44, clustered per /32 as
# allocations are), instead of N uniform /24s. HUGE=1: EAL on hugepages; WARM=1: touched once
# before lcpd starts (see below); REPS=<n>: n starts over the same kernel table; LCPD_ARGS: more
# lcpd options.
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
    [ -n "${HP_BEFORE:-}" ] && echo "$HP_BEFORE" > "$HP"
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
python3 "$ROOT/perf/scripts/mkroutes.py" "$N" "$MIX" "$V6" >"/tmp/lcpdump-$ID.batch"
k0=$(date +%s.%N)
ip netns exec "$RT" ip -batch "/tmp/lcpdump-$ID.batch"
k1=$(date +%s.%N)
# HUGE=1: EAL on 2 MiB hugepages (reserved here for the run and given back after), as in
# production; otherwise --no-huge (EAL's memory is then anonymous memory, counted in the RSS).
MEMARGS=(--no-huge -m "${MEM:-4096}")
if [ "${HUGE:-0}" = 1 ]; then
    HP=/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages
    HP_BEFORE=$(cat "$HP")
    echo $((HP_BEFORE + ${MEM:-4096} / 2 + 64)) > "$HP"
    # WARM=1: touch the reserved hugepages once before lcpd starts. On this VM (Firecracker,
    # free page reporting) memory the guest has not touched since the host reclaimed it costs
    # ~4.6 ms per 2 MiB page at first touch and ~0.1 ms after (the kernel zeroing it): hugepages
    # reserved at boot and used by an earlier lcpd (a restart) are warm; pages reserved just now
    # are cold.
    if [ "${WARM:-0}" = 1 ]; then
        python3 -c 'import mmap, sys; n = int(sys.argv[1]) << 21; mmap.mmap(-1, n, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | 0x40000 | mmap.MAP_POPULATE).close()' \
            "$(( $(cat /sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages) ))"
    fi
    MEMARGS=(--huge-unlink) # no -m: EAL takes hugepages as the FIB asks for them, not all up front
fi
# REPS=<n>: start lcpd n times over the same kernel table (a restart: the hugepages are warm
# from the second on), one report each.
for rep in $(seq "${REPS:-1}"); do
    t0=$(date +%s.%N)
    ip netns exec "$DP" ${LCPD_WRAP:-} "$ROOT/bin/lcpd" "${MEMARGS[@]}" --no-pci --file-prefix "lcpdump$ID" --lcores "${LCORES:-0@0}" \
        --vdev net_af_packet0,iface=dp0 -- --idle-sleep-us 50 --fib-routes $((N + 65536)) --fib6-routes $((V6 + 65536)) --fib-tbl8 ${TBL8:-16384} --fib6-tbl8 "${TBL8_6:-$((V6 > 0 ? 3 * V6 + 65536 : 65536))}" \
        --netns "$RT" --pair net_af_packet0=lcp0 --api-socket "$SOCK" ${LCPD_ARGS:-} >>"/tmp/lcpdump-$ID.log" 2>&1 &
    pid=$!
    for _ in $(seq 1200); do [ -S "$SOCK" ] && break; sleep 0.05; done
    t1=$(date +%s.%N)
    while :; do
        # awk, not python: python's start-up (~0.35 s here) would be counted in lcpd's time
        have=$("$ROOT/bin/lcpctl" --socket "$SOCK" show ip fib summary --json 2>/dev/null | awk -v n="$N" -v n6="$V6" '
            { gsub(/[",]/, "") } $1 == "ipv4:" { v4 = $2 } $1 == "ipv6:" { v6 = $2 } $1 == "refused:" { r = $2 } $1 == "syncing:" { s = $2 }
            END { if (s != "false") print 0; else if (r > 0) print 2; else print (v4 >= n && v6 >= n6) ? 1 : 0 }')
        [ "$have" = 1 ] && break
        [ "$have" -ge 2 ] && { echo "prefixes refused for lack of table space; log: /tmp/lcpdump-$ID.log" >&2; KEEP_LOG=${KEEP_LOG:-/tmp/lcpdump-refused.log}; exit 1; }
        kill -0 "$pid" 2>/dev/null || { echo "lcpd exited; log: /tmp/lcpdump-$ID.log" >&2; exit 1; }
        sleep 0.05 # (each poll costs the CPU lcpd uses ~15 ms: not more often)
    done
    t2=$(date +%s.%N)
    "$ROOT/bin/lcpctl" --socket "$SOCK" show memory --json >"/tmp/lcpdump-$ID.mem"
    "$ROOT/bin/lcpctl" --socket "$SOCK" show ip fib summary --json >"/tmp/lcpdump-$ID.sum"
    # Then a resync of the whole table (lcp resync), and the collections it ran.
    r0=$(date +%s.%N)
    "$ROOT/bin/lcpctl" --socket "$SOCK" lcp resync --json >/dev/null
    r1=$(date +%s.%N)
    "$ROOT/bin/lcpctl" --socket "$SOCK" show memory --json >"/tmp/lcpdump-$ID.mem2"
    python3 - "$N" "$V6" "$k0" "$k1" "$t0" "$t1" "$t2" "/tmp/lcpdump-$ID.mem" "/tmp/lcpdump-$ID.sum" "$r0" "$r1" "/tmp/lcpdump-$ID.mem2"  <<'PY'
import json, sys
n, n6 = int(sys.argv[1]), int(sys.argv[2]); k0, k1, t0, t1, t2 = map(float, sys.argv[3:8])
m = json.load(open(sys.argv[8])); s = json.load(open(sys.argv[9]))
r0, r1 = float(sys.argv[10]), float(sys.argv[11]); m2 = json.load(open(sys.argv[12]))
mb = lambda b: b / 2**20
rss, dpdk = m["rss_bytes"], (0 if m["hugepages_total"] else m["dpdk_heap_allocated_bytes"])  # hugepages are not in the RSS
print(f"routes={n} v6={n6} kernel_s={k1 - k0:.2f} (kernel {(n + n6) / (k1 - k0):.0f} routes/s) "
      f"lcpd_start_to_fib_full_s={t2 - t0:.2f} api_up_s={t1 - t0:.2f} api_up_to_fib_full_s={t2 - t1:.2f} "
      f"lcpd_rate_per_s={(n + n6) / (t2 - t0):.0f}")
print(f"fib_v4={s['ipv4']} fib_v6={s['ipv6']} refused={s['refused']} "
      f"gc_gen0={m['gen0_collections']} gc_gen1={m['gen1_collections']} gc_gen2={m['gen2_collections']} "
      f"managed_heap_mb={mb(m['managed_heap_bytes']):.0f} rss_mb={mb(rss):.0f} dpdk_heap_mb={mb(dpdk):.0f} "
      f"rss_minus_dpdk_heap_mb={mb(rss - dpdk):.0f}")
print(f"resync_s={r1 - r0:.2f} (lcpctl included) gc_during_resync={m2['gen0_collections'] - m['gen0_collections']} "
      f"allocated_during_resync_mb={mb(m2['total_allocated_bytes'] - m['total_allocated_bytes']):.0f}")
PY
    kill -TERM "$pid"; wait "$pid" 2>/dev/null || true; pid=
    rm -f "$SOCK"
done
