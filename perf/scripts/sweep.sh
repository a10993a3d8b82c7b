#!/usr/bin/env bash
# lcpd against DPDK's l3fwd, measured back to back by ../shared/bench/run-anchor.sh for each
# case, printing "lcpd Mpps, l3fwd Mpps, ratio". Cases (override with the env knobs):
#   64-byte frames, TOPO=pcap (DUT alone, pcap replay: per-core capacity), FLOWS in $FLOWS_LIST,
#     FIB small (the bench's 2 routes) and with $BIG_FIB extra routes (lcpd only: l3fwd's table
#     is compiled in, so its figure is the small-FIB one)
#   $SIZES frame sizes over memif with the testpmd generator (the pcap replay has 60-byte frames
#     only); at these sizes the 1-core generator or memif's copy is usually the limit: the
#     harness prints limit=generator|dut for every run and so does this table.
# IPv6 is not in the table: the harness's generators (testpmd flowgen, tools/mkpcap.py) send
# IPv4 only. Usage: perf/scripts/sweep.sh [seconds per rep] (default 10). REPS (default 3).
set -euo pipefail
ROOT=$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)
BENCH=${BENCH_DIR:-$(cd "$ROOT/../shared/bench" 2>/dev/null && pwd || true)}
[ -x "$BENCH/run-anchor.sh" ] || { echo "sweep: ../shared/bench/run-anchor.sh not found (set BENCH_DIR)" >&2; exit 1; }
SECS=${1:-10}
FLOWS_LIST=${FLOWS_LIST:-"2 1024"}
SIZES=${SIZES:-"64 512 1518"}
BIG_FIB=${BIG_FIB:-1000000}
export REPS=${REPS:-3}
DUT="$ROOT/perf/scripts/lcpd-dut.sh"
OUT=${SWEEP_OUT:-$ROOT/perf/results/sweep-$(date +%Y%m%d-%H%M%S).txt}
mkdir -p "$(dirname "$OUT")"

# run <label> <env...> -- <run-anchor args...>: prints "<Mpps> <limit>"
run() {
    local envs=() log
    while [ "$1" != "--" ]; do envs+=("$1"); shift; done
    shift
    log=$(mktemp)
    env "${envs[@]}" "$BENCH/run-anchor.sh" "$@" > "$log" 2>&1 || { tail -5 "$log" >&2; rm -f "$log"; echo "fail -"; return; }
    local line
    line=$(grep '^DUT=.* limit=' "$log" | tail -1)
    rm -f "$log"
    echo "$(sed -E 's/.* Mpps=([0-9.]+).*/\1/' <<<"$line") $(sed -E 's/.* limit=([a-z]+).*/\1/' <<<"$line")"
}

row() { # case, lcpd "mpps limit", l3fwd "mpps limit"
    local l=($2) a=($3) ratio="-"
    [[ ${l[0]} =~ ^[0-9.]+$ && ${a[0]} =~ ^[0-9.]+$ ]] && ratio=$(awk -v x="${l[0]}" -v y="${a[0]}" 'BEGIN{printf "%.2f", x / y}')
    printf '| %-34s | %8s | %-9s | %8s | %-9s | %5s |\n' "$1" "${l[0]}" "${l[1]}" "${a[0]}" "${a[1]}" "$ratio" | tee -a "$OUT"
}

{
    echo "# lcpd vs l3fwd, $(date -u +%F\ %H:%MZ), ${SECS}s x $REPS reps per run, $(nproc) CPUs"
    echo "| case | lcpd Mpps | limit | l3fwd Mpps | limit | ratio |"
    echo "|---|---:|---|---:|---|---:|"
} | tee "$OUT"

for flows in $FLOWS_LIST; do
    a=$(run TOPO=pcap STAT_PORTS=0,1 FLOWS="$flows" -- l3fwd "$SECS")
    l=$(run TOPO=pcap STAT_PORTS=0,1 FLOWS="$flows" -- custom "$DUT" "$SECS")
    row "64 B, pcap, $flows flows, 2 routes" "$l" "$a"
    if [ "$BIG_FIB" -gt 0 ]; then
        l=$(run TOPO=pcap STAT_PORTS=0,1 FLOWS="$flows" WARMUP=15 BENCH_FIB_ROUTES="$BIG_FIB" -- custom "$DUT" "$SECS")
        row "64 B, pcap, $flows flows, $BIG_FIB routes" "$l" "$a"
    fi
done
for size in $SIZES; do
    a=$(run GEN_EXTRA_ARGS="--txpkts=$size" -- l3fwd "$SECS")
    l=$(run GEN_EXTRA_ARGS="--txpkts=$size" -- custom "$DUT" "$SECS")
    row "$size B, memif, 1024 flows, 2 routes" "$l" "$a"
done
echo "results: $OUT"
