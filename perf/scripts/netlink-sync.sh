#!/usr/bin/env bash
# Netlink sync figure: N routes added with one `ip -batch` in the mirrors' namespace; prints the
# time until the kernel has them, until lcpd's FIB has them, and lcpd's RSS before and after.
# While the routes arrive, the API is polled (show runtime + show ip fib summary, back to back)
# and the worker's longest loop gap is reported (reset after start-up with clear runtime). The
# kernel's and the FIB's route counts every 0.2 s go to $OUT.csv and a plot $OUT.png
# (OUT=perf/results/ingest-<time> by default).
#   LCORES=0@0,1@1 perf/scripts/netlink-sync.sh [routes=100000]
set -euo pipefail
# Everything this script starts (ip, the pollers, every lcpctl: a .NET process start costs
# ~100 ms of CPU) stays on LOAD_CPUS; only lcpd's worker lcores (EAL pins them) run elsewhere.
# Without this an lcpctl started on the worker's CPU shows up as millisecond loop gaps.
[ -n "${LOAD_CPUS:-}" ] && taskset -pc "$LOAD_CPUS" $$ >/dev/null
ROOT=$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)
N=${1:-100000}
ID=$$
DP=lcpsync-dp-$ID RT=lcpsync-rt-$ID SOCK=/run/lcpsync-$ID.sock
pid=
cleanup() {
    set +e
    [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    ip netns del "$DP" 2>/dev/null; ip netns del "$RT" 2>/dev/null; rm -f "$SOCK"
    rm -rf "/var/run/dpdk/lcpsync$ID" "/tmp/lcpsync-$ID.batch"
}
trap cleanup EXIT
ip netns add "$DP"; ip netns add "$RT"
ip link add dp0 netns "$DP" type veth peer name h0 netns "$DP"
ip netns exec "$DP" ip link set dp0 up
ip netns exec "$DP" "$ROOT/bin/lcpd" --no-huge -m 2048 --no-pci --file-prefix "lcpsync$ID" --lcores "${LCORES:-0@0}" \
    --vdev net_af_packet0,iface=dp0 -- --idle-sleep-us "${IDLE_SLEEP_US:-50}" --fib-routes $((N + 65536)) --fib-tbl8 4096 \
    --netns "$RT" --pair net_af_packet0=lcp0 --api-socket "$SOCK" >"/tmp/lcpsync-$ID.log" 2>&1 &
pid=$!
for _ in $(seq 600); do [ -S "$SOCK" ] && break; sleep 0.1; done
ip netns exec "$RT" ip link set lcp0 up
ip netns exec "$RT" ip addr add 10.0.0.1/24 dev lcp0
ip netns exec "$RT" ip neigh replace 10.0.0.2 lladdr 02:00:00:00:00:02 dev lcp0 nud permanent
base=$("$ROOT/bin/lcpctl" --socket "$SOCK" show ip fib summary --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["ipv4"])')
rss0=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
python3 - "$N" >"/tmp/lcpsync-$ID.batch" <<'PY'
import sys
n = int(sys.argv[1])
for i in range(n):
    a = 0x64000000 + (i << 8)  # 100.0.0.0/24, 100.0.1.0/24, ...
    print(f"route add {a >> 24}.{(a >> 16) & 255}.{(a >> 8) & 255}.0/24 via 10.0.0.2")
PY
gcstats() { "$ROOT/bin/lcpctl" --socket "$SOCK" show memory --json | python3 -c 'import json,sys; m=json.load(sys.stdin); print(m["gen0_collections"], m["gen1_collections"], m["gen2_collections"], m["gc_pause_total_ms"], m["total_allocated_bytes"])'; }
gc0=$(gcstats)
"$ROOT/bin/lcpctl" --socket "$SOCK" clear runtime >/dev/null
( while [ ! -e "/tmp/lcpsync-$ID.stop" ]; do
      "$ROOT/bin/lcpctl" --socket "$SOCK" show runtime >/dev/null; "$ROOT/bin/lcpctl" --socket "$SOCK" show ip fib summary >/dev/null
  done ) &
poller=$!
# Routes in the kernel and in the FIB over time: a CSV and a plot (plot.py ingest).
OUT=${OUT:-$ROOT/perf/results/ingest-$(date -u +%Y%m%d-%H%M)}
/usr/bin/python3 "$ROOT/perf/scripts/soakpoll.py" ingest "$SOCK" "$RT" "$OUT.csv" "/tmp/lcpsync-$ID.stop" "$base" &
sampler=$!
t0=$(date +%s.%N)
ip netns exec "$RT" ip -batch "/tmp/lcpsync-$ID.batch"
t1=$(date +%s.%N)
want=$((base + N))
while :; do
    have=$("$ROOT/bin/lcpctl" --socket "$SOCK" show ip fib summary --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["ipv4"])')
    [ "$have" -ge "$want" ] && break
    sleep 0.05
done
t2=$(date +%s.%N)
rss1=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
touch "/tmp/lcpsync-$ID.stop"; wait "$poller" 2>/dev/null || true; wait "$sampler" 2>/dev/null || true; rm -f "/tmp/lcpsync-$ID.stop"
/usr/bin/python3 "$ROOT/perf/scripts/plot.py" ingest "$OUT.csv" -o "$OUT.png" || true
gc1=$(gcstats)
python3 -c 'import sys; a=list(map(float,sys.argv[1:6])); b=list(map(float,sys.argv[6:11])); print("gc_during_flood gen0=%d gen1=%d gen2=%d pause_ms=%.1f allocated_mb=%.0f" % (b[0]-a[0], b[1]-a[1], b[2]-a[2], b[3]-a[3], (b[4]-a[4])/1e6))' $gc0 $gc1
gap=$("$ROOT/bin/lcpctl" --socket "$SOCK" show runtime --json | python3 -c 'import json,sys; print(max(w["max_loop_gap_us"] for w in json.load(sys.stdin)))')
echo "max_loop_gap_us=$gap (during the flood, API polled)"
"$ROOT/bin/lcpctl" --socket "$SOCK" show latency --json | python3 -c 'import json,sys; g=[p for p in json.load(sys.stdin) if p["path"]=="loop-gap"][0]; print("loop_gap samples=%d p999_us=%s max_us=%s over_100us=%d over_1ms=%d" % (g["samples"], g["p999_us"], g["max_us"], g["over_100us"], g["over_1ms"]))'
"$ROOT/bin/lcpctl" --socket "$SOCK" show memory --json | python3 -c 'import json,sys; m=json.load(sys.stdin); print("gc_suspensions=%d gc_max_suspend_ms=%s gc_triggers=%s" % (m["gc_suspensions"], m["gc_max_suspend_ms"], json.dumps(m["gc_triggers"])))'
python3 - "$N" "$t0" "$t1" "$t2" "$rss0" "$rss1" <<'PY'
import sys
n, t0, t1, t2, r0, r1 = int(sys.argv[1]), *map(float, sys.argv[2:])
print(f"routes={n} kernel_s={t1 - t0:.2f} fib_s={t2 - t0:.2f} lag_after_kernel_s={t2 - t1:.2f} "
      f"rate_per_s={n / (t2 - t0):.0f} rss_delta_mb={(r1 - r0) / 1024:.0f} rss_mb_per_million={(r1 - r0) / 1024 / n * 1e6:.0f}")
PY
