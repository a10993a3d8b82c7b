#!/usr/bin/env bash
# The flow tracker's expiry sweep against the machine's floor: lcpd takes FLOWS distinct UDP flows
# (a pcap replayed once on a net_pcap port, every frame creating a flow through a catch-all reflect
# rule), then all of them time out at once (UDP timeout 1 s) and the incremental sweep removes them
# while nothing else runs. Reports the worker's longest loop gap during the sweep next to the
# longest gap a bare C loop (perf/native/gapfloor.c) sees on the same CPU for as long.
#   perf/scripts/flow-sweep.sh [flows, default 1048576] [seconds, default 10]
# CONTROL=1: no expiry, the same polling for CONTROL_SECS; LCPD_ARGS: extra lcpd options.
set -euo pipefail
ROOT=$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)
FLOWS=${1:-1048576}
SECS=${2:-10}
CPU=${CPU:-1}
tmp=$(mktemp -d /tmp/lcp-sweep-XXXXXX)
sock=/run/lcp-sweep-$$.sock
pid=
cleanup() {
    set +e
    [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$tmp" "$sock"
}
trap cleanup EXIT
ctl() { "$ROOT/bin/lcpctl" --socket "$sock" "$@"; }

python3 "$ROOT/perf/scripts/mkpcap.py" "$tmp/flows.pcap" --flows "$FLOWS" --size 60 >/dev/null
printf 'net_pcap0 input reflect\n' > "$tmp/rules"
gcc -O2 -o "$tmp/gapfloor" "$ROOT/perf/native/gapfloor.c"
"$ROOT/bin/lcpd" --no-huge -m 1024 --no-pci --file-prefix "lcpsweep$$" --lcores "0@0,1@$CPU" \
    --vdev "net_pcap0,rx_pcap=$tmp/flows.pcap,tx_pcap=/dev/null" -- \
    --api-socket "$sock" --no-rest --flow-table "$FLOWS" --classify-file "$tmp/rules" ${LCPD_ARGS:-} > "$tmp/lcpd.log" 2>&1 &
pid=$!
# lcpctl and python are processes too: keep them (this shell's children) off the worker's CPU.
taskset -pc 0 $$ >/dev/null
for _ in $(seq 300); do [ -S "$sock" ] && ctl show version >/dev/null 2>&1 && break; sleep 0.1; done
# The pcap is read once, as fast as the worker polls: wait for every flow.
for _ in $(seq 300); do
    n=$(ctl --json show flow summary | python3 -c 'import json,sys; print(json.load(sys.stdin)["flows"])')
    [ "$n" -ge "$FLOWS" ] && break
    sleep 0.1
done
echo "flows: $n of $FLOWS ($(ctl --json show flow summary | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["bytes_per_flow"] * d["capacity"] // 1048576, "MiB of table")'))"
echo "lcpd memory: $(grep -E '^(Rss|AnonHugePages)' /proc/$pid/smaps_rollup | tr -s ' ' | tr '\n' ' ')"
sleep 1
ctl clear runtime >/dev/null
# CONTROL=1: the same window without the expiry (the flows stay), polled the same way for
# CONTROL_SECS (default 2.5, about as long as an expiry takes): lcpd's own gaps without a sweep.
[ "${CONTROL:-0}" = 1 ] || ctl set flow timeouts udp 1 >/dev/null
polls=$(python3 -c "print(int(${CONTROL_SECS:-2.5} * 10))")
t0=$(date +%s.%N)
for i in $(seq $((SECS * 10))); do
    n=$(ctl --json show flow summary | python3 -c 'import json,sys; print(json.load(sys.stdin)["flows"])')
    [ "${CONTROL:-0}" = 1 ] && [ "$i" -ge "$polls" ] && break
    [ "$n" = 0 ] && break
    sleep 0.1
done
t1=$(date +%s.%N)
sleep 1
gap=$(ctl --json show runtime | python3 -c 'import json,sys; print(max(w["max_loop_gap_us"] for w in json.load(sys.stdin)))')
gc=$(ctl --json show memory | python3 -c 'import json,sys; d=json.load(sys.stdin); print("gc suspensions %s, longest %s ms, gen0 %s" % (d["gc_suspensions"], d["gc_max_suspend_ms"], d["gen0_collections"]))')
echo "sweep: $FLOWS flows expired in $(python3 -c "print(round($t1 - $t0, 2))") s; flows left: $n; longest worker loop gap: ${gap} us; $gc"
kill -TERM "$pid"; wait "$pid" 2>/dev/null || true; pid=
echo "floor: $("$tmp/gapfloor" "$CPU" "$(python3 -c "print(round($t1 - $t0 + 2, 1))")")"
