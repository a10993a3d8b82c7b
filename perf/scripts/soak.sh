#!/usr/bin/env bash
# Soak: lcpd forwards traffic at 80 % of its measured no-loss rate for <minutes> while the control
# plane is churned: 10k route changes a second through netlink (`ip -batch`), the API polled every
# 100 ms, a neighbour flush every minute. Reports loss, RSS, managed heap, GC counts, mbufs in use
# and the longest loop gap over time; writes a table, a CSV and a PNG plot; exits 1 on loss, on a
# growth trend, on mbufs not returned, or on a FIB that differs from the kernel's at the end.
#   perf/scripts/soak.sh [minutes=2]   (knobs: RATE_PPS skips the probe, PROBE_S=10 s per probe step,
#                                       CHURN_RATE=10000, OUT_DIR=perf/results, ISOLATE=1 below)
#
# Topology: soakgen (perf/native/soakgen.c, a paced DPDK generator with two memif server ports)
# on the other CPU; lcpd's worker alone on CPU WORKER_CPU (0 or 1, default 0), its control threads
# with the generator and the churn tools on the other one; the
# mirrors lcp0/lcp1 in a private namespace hold 172.16.{0,1}.1/24, static neighbours for the
# generator and the routes 10.253.0.0/23 -> port 1, 10.253.2.0/23 -> port 0 (as ../shared/bench).
# The churn adds and deletes 5000 /24s under 100.64/10 via 16 gateways whose neighbours are
# dynamic; the minute's flush removes those neighbours (never the generator's) and puts them back.
set -euo pipefail
ROOT=$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)
MIN=${1:-2}
CHURN_RATE=${CHURN_RATE:-10000}
ID=$$
NS=lcpsoak-$ID
RUN=/run/lcpsoak-$ID
SOCK=$RUN/api.sock
STAMP=$(date -u +%Y%m%d-%H%M)
OUT_DIR=${OUT_DIR:-$ROOT/perf/results}
OUT=$OUT_DIR/soak-$STAMP
DUT_MAC=00:01:02:03:04:01
GEN_MAC0=02:00:00:00:00:a0 GEN_MAC1=02:00:00:00:00:a1
pids=()
HP=/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages
hp_restore=
cleanup() {
    set +e
    # lcpd first: the generator's memif servers must outlive its clients (see soakgen --linger).
    [ -n "${lcpd:-}" ] && kill -TERM "$lcpd" 2>/dev/null && wait "$lcpd" 2>/dev/null
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
    ip netns del "$NS" 2>/dev/null
    [ -f "$RUN/isolated" ] && /usr/bin/python3 "$ROOT/perf/scripts/soakpoll.py" restore "$RUN/isolated"
    rm -rf "$RUN" "/var/run/dpdk/lcpsoak$ID" "/var/run/dpdk/soakgen$ID"
    [ -n "$hp_restore" ] && echo "$hp_restore" >"$HP"
}
trap cleanup EXIT
trap 'exit 1' TERM INT
[ -x "$ROOT/bin/lcpd" ] || { echo "soak: build first (./build.sh build)" >&2; exit 2; }
mkdir -p "$RUN" "$OUT_DIR"
GEN=$RUN/soakgen
cc -O2 -o "$GEN" "$ROOT/perf/native/soakgen.c" $(pkg-config --cflags --libs libdpdk)

# lcpd's DPDK memory on hugepages (--in-memory: no mount needed), so that its RSS is the memory
# of the .NET runtime and the native code alone: a trend there is a leak, not DPDK's heap being
# touched for the first time. 520 pages are reserved for the run and given back at exit; without
# them the run falls back to --no-huge and says so.
free_hp=$(awk '/HugePages_Free/ {print $2}' /proc/meminfo)
if [ "$free_hp" -lt 520 ]; then
    hp_restore=$(cat "$HP")
    echo $((hp_restore + 520 - free_hp)) >"$HP" 2>/dev/null || true
fi
if [ "$(awk '/HugePages_Free/ {print $2}' /proc/meminfo)" -ge 520 ]; then
    DPDK_MEM=(--in-memory -m 1024)
else
    echo "soak: 520 free 2 MiB hugepages could not be reserved: --no-huge, so RSS includes DPDK's memory" >&2
    DPDK_MEM=(--no-huge -m 1024)
fi

# Everything but lcpd's worker runs on the other CPU (the worker's lcore is pinned by EAL).
WORKER_CPU=${WORKER_CPU:-0}
case "$WORKER_CPU" in 0) OTHER_CPU=1 ;; 1) OTHER_CPU=0 ;; *) echo "soak: WORKER_CPU is 0 or 1" >&2; exit 2 ;; esac
export WORKER_CPU
taskset -pc "$OTHER_CPU" $$ >/dev/null
# ISOLATE=1: the worker's CPU is kept for it as a production host keeps its dataplane cores
# (isolcpus, tuned's cpu-partitioning): kernel threads that may move and the unbound workqueues
# go to the other CPU for the run and are put back at exit. On this VM the kernel's DAMON thread
# (kdamond, free page reporting) otherwise takes the worker's CPU for up to 7 ms every 5.12 s.
# Work the kernel queued on one CPU stays there (conntrack's table scan, 7.5 ms once a minute
# here, runs on CPU 0): WORKER_CPU=1 keeps the worker off it, as isolcpus keeps such
# housekeeping on the CPUs it leaves to the system.
[ "${ISOLATE:-0}" = 1 ] && /usr/bin/python3 "$ROOT/perf/scripts/soakpoll.py" isolate "$WORKER_CPU" "$RUN/isolated"
ip netns add "$NS"
ip -n "$NS" link set lo up
memif() { echo "net_memif$1,role=$2,id=0,socket=$RUN/memif$1.sock,socket-abstract=no$3"; }
SECONDS_SOAK=$((MIN * 60))
if [ -n "${RATE_PPS:-}" ]; then RATEARG=(--rate "$RATE_PPS"); else RATEARG=(--probe "${PROBE_S:-10}" --rate-pct 80); fi
# The generator sleeps between bursts; its priority keeps it on time while the churn runs.
nice -n -15 "$GEN" --lcores "0@$OTHER_CPU" --no-pci --no-huge -m 256 --no-telemetry --file-prefix "soakgen$ID" --log-level 4 \
    --vdev "$(memif 0 server ",mac=$GEN_MAC0")" --vdev "$(memif 1 server ",mac=$GEN_MAC1")" -- \
    "${RATEARG[@]}" --seconds "$SECONDS_SOAK" --dut-mac "$DUT_MAC" --flows 1024 --go "$RUN/go" --linger >"$OUT.gen" 2>"$RUN/gen.err" &
pids+=($!); gen=$!
# lcpd: main lcore (control plane) on the other CPU, the worker (lcore 1) on WORKER_CPU.
# The memif client sets the rings' size: 4096 descriptors, as a NIC's RX ring would be configured.
taskset -c 0,1 "$ROOT/bin/lcpd" --lcores "0@$OTHER_CPU,1@$WORKER_CPU" --main-lcore 0 --no-pci "${DPDK_MEM[@]}" --file-prefix "lcpsoak$ID" \
    --vdev "$(memif 0 client ",rsize=12")" --vdev "$(memif 1 client ",rsize=12")" -- \
    --netns "$NS" --pair 0=lcp0 --pair 1=lcp1 --port-mac "0=$DUT_MAC" --port-mac "1=$DUT_MAC" \
    --api-socket "$SOCK" --no-rest ${LCPD_ARGS:-} >"$OUT.lcpd.log" 2>&1 &
pids+=($!); lcpd=$!
for _ in $(seq 600); do [ -S "$SOCK" ] && break; kill -0 "$lcpd" 2>/dev/null || break; sleep 0.1; done
[ -S "$SOCK" ] || { echo "soak: lcpd did not start (see $OUT.lcpd.log)" >&2; exit 1; }
in_ns() { ip netns exec "$NS" "$@"; }
for p in 0 1; do
    in_ns ip addr add "172.16.$p.1/24" dev "lcp$p"
    in_ns ip link set "lcp$p" up
done
in_ns ip neigh replace 172.16.0.2 lladdr "$GEN_MAC0" dev lcp0 nud permanent
in_ns ip neigh replace 172.16.1.2 lladdr "$GEN_MAC1" dev lcp1 nud permanent
in_ns ip route replace 10.253.0.0/23 via 172.16.1.2
in_ns ip route replace 10.253.2.0/23 via 172.16.0.2
churn_neighbours() {   # the churn's 16 gateways, dynamic entries (REACHABLE), 8 per mirror
    for g in $(seq 0 15); do
        p=$((g % 2))
        printf 'neigh replace 172.16.%d.%d lladdr 02:00:00:cc:%02x:%02x dev lcp%d nud reachable\n' $p $((10 + g / 2)) $p $g $p
    done | in_ns ip -force -batch -
}
churn_neighbours
: >"$RUN/flushes"
# mbufs in use while idle (ports connected, no traffic yet): the value they must return to.
for _ in $(seq 300); do grep -q '^ready' "$OUT.gen" 2>/dev/null && break; sleep 0.1; done
sleep 1
idle_mbufs=$("$ROOT/bin/lcpctl" --socket "$SOCK" --json show buffers | /usr/bin/python3 -c 'import json,sys; print(sum(b["in_use"] for b in json.load(sys.stdin)))')
touch "$RUN/go"

# Wait for the probe (it starts once lcpd's memif clients are connected), then start the churn.
for _ in $(seq 3000); do grep -q '^soak rate=' "$OUT.gen" 2>/dev/null && break; kill -0 "$gen" 2>/dev/null || break; sleep 0.1; done
grep -q '^soak rate=' "$OUT.gen" || { echo "soak: the generator did not reach the soak phase:" >&2; cat "$OUT.gen" "$RUN/gen.err" >&2; exit 1; }
/usr/bin/python3 "$ROOT/perf/scripts/soakpoll.py" churn "$CHURN_RATE" "$RUN/churn.count" "$NS" &
pids+=($!)
/usr/bin/python3 "$ROOT/perf/scripts/soakpoll.py" poll "$SOCK" "$lcpd" "$OUT.gen" "$RUN/churn.count" "$OUT.csv" &
pids+=($!); poller=$!
# The minute's neighbour flush, until the generator's soak phase ends.
t_end=$(( $(date +%s) + SECONDS_SOAK ))
next_flush=$(( $(date +%s) + 60 ))
while kill -0 "$gen" 2>/dev/null && [ "$(date +%s)" -lt "$t_end" ]; do
    if [ "$(date +%s)" -ge "$next_flush" ]; then
        in_ns ip neigh flush dev lcp0; in_ns ip neigh flush dev lcp1
        churn_neighbours
        echo "$(date +%s) flush" >>"$RUN/flushes"
        next_flush=$((next_flush + 60))
    fi
    sleep 1
done
# The generator reports its counters and stays connected (--linger) until the cleanup.
for _ in $(seq 600); do grep -q '^done' "$OUT.gen" 2>/dev/null && break; kill -0 "$gen" 2>/dev/null || break; sleep 0.1; done
# Stop the churn and the poller; let the control plane settle, then the end-of-run checks.
for p in "${pids[@]:2}"; do kill -TERM "$p" 2>/dev/null; done
sleep 3
flushes=$(wc -l <"$RUN/flushes" 2>/dev/null || echo 0)
verify=$("$ROOT/bin/lcpctl" --socket "$SOCK" lcp verify 2>&1) && verify_rc=0 || verify_rc=$?
/usr/bin/python3 "$ROOT/perf/scripts/soakpoll.py" report "$SOCK" "$OUT" "$MIN" "$flushes" "$verify_rc" "$verify" "$idle_mbufs"
