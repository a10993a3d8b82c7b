#!/usr/bin/env bash
# lcpd's own netlink ingest rate, without the kernel's insertion cost in the way: N /24 routes
# are put in the mirrors' namespace first (timed: that is the kernel's own rate), then lcpd
# starts and takes them from its start-up dump. Prints the kernel's time, lcpd's time from
# process start to the FIB holding all N (EAL start-up included) and from its API being up.
#   LCORES=0@0,1@1 LOAD_CPUS=0 perf/scripts/dump-sync.sh [routes=1000000]
set -euo pipefail
[ -n "${LOAD_CPUS:-}" ] && taskset -pc "$LOAD_CPUS" $$ >/dev/null
ROOT=$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)
N=${1:-1000000}
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
python3 - "$N" >"/tmp/lcpdump-$ID.batch" <<'PY'
import sys
n = int(sys.argv[1])
for i in range(n):
    a = 0x64000000 + (i << 8)  # 100.0.0.0/24, 100.0.1.0/24, ...
    print(f"route add {a >> 24}.{(a >> 16) & 255}.{(a >> 8) & 255}.0/24 via 10.0.0.2")
PY
k0=$(date +%s.%N)
ip netns exec "$RT" ip -batch "/tmp/lcpdump-$ID.batch"
k1=$(date +%s.%N)
t0=$(date +%s.%N)
ip netns exec "$DP" ${LCPD_WRAP:-} "$ROOT/bin/lcpd" --no-huge -m 2048 --no-pci --file-prefix "lcpdump$ID" --lcores "${LCORES:-0@0}" \
    --vdev net_af_packet0,iface=dp0 -- --idle-sleep-us 50 --fib-routes $((N + 65536)) --fib-tbl8 4096 \
    --netns "$RT" --pair net_af_packet0=lcp0 --api-socket "$SOCK" >"/tmp/lcpdump-$ID.log" 2>&1 &
pid=$!
for _ in $(seq 1200); do [ -S "$SOCK" ] && break; sleep 0.05; done
t1=$(date +%s.%N)
while :; do
    have=$("$ROOT/bin/lcpctl" --socket "$SOCK" show ip fib summary --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["ipv4"])')
    [ "$have" -ge "$N" ] && break
    kill -0 "$pid" 2>/dev/null || { echo "lcpd exited; log: /tmp/lcpdump-$ID.log" >&2; exit 1; }
    sleep 0.1
done
t2=$(date +%s.%N)
rss=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
python3 - "$N" "$k0" "$k1" "$t0" "$t1" "$t2" "$rss" <<'PY'
import sys
n = int(sys.argv[1]); k0, k1, t0, t1, t2 = map(float, sys.argv[2:7]); rss = int(sys.argv[7])
print(f"routes={n} kernel_s={k1 - k0:.2f} (kernel {n / (k1 - k0):.0f} routes/s) "
      f"lcpd_start_to_fib_full_s={t2 - t0:.2f} api_up_s={t1 - t0:.2f} api_up_to_fib_full_s={t2 - t1:.2f} "
      f"lcpd_rate_per_s={n / (t2 - t0):.0f} rss_mb={rss / 1024:.0f}")
PY
