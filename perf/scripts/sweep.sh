#!/usr/bin/env bash
# lcpd against DPDK's l3fwd, each case measured back to back by ../shared/bench/run-anchor.sh
# in its pcap topology (DUT alone on one CPU, both ports replaying a pcap: per-core capacity,
# no generator in the way). Both DUTs run as "custom" DUTs replaying the same file:
# perf/scripts/l3fwd-dut.sh (the harness's l3fwd command line) and perf/scripts/lcpd-dut.sh.
# Prints one row per case: lcpd Mpps, l3fwd Mpps and their ratio (medians of REPS reps).
#   cases: IPv4 frames of $SIZES bytes (wire size, FCS included) x $FLOWS_LIST flows with the
#   bench's routes; IPv4 64 B with $BIG_FIB extra routes in lcpd's FIB (l3fwd's LPM table is
#   capped at 1024 rules, so its figure is the small-table one); IPv6 66 B (the smallest
#   IPv6/UDP frame) with l3fwd's default IPv6 routes.
# SWEEP_TOPO=memif runs the same cases against the harness's testpmd generator over net_memif
# instead (frame size via testpmd --txpkts; IPv4 only: flowgen has no IPv6). On a 2-vCPU VM that
# topology is capped by the 1-core generator, so ratios there say little about lcpd.
# Usage: perf/scripts/sweep.sh [seconds per rep, default 10]; env REPS (3), SIZES, FLOWS_LIST,
# BIG_FIB (0 skips), V6 (0 skips). Results also go to perf/results/sweep-<time>.md.
set -euo pipefail
ROOT=$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)
BENCH=${BENCH_DIR:-$(cd "$ROOT/../shared/bench" 2>/dev/null && pwd || true)}
[ -x "$BENCH/run-anchor.sh" ] || { echo "sweep: ../shared/bench/run-anchor.sh not found (set BENCH_DIR)" >&2; exit 1; }
SECS=${1:-10}
SIZES=${SIZES:-"64 512 1518"}
FLOWS_LIST=${FLOWS_LIST:-"2 1024"}
BIG_FIB=${BIG_FIB:-1000000}
V6=${V6:-1}
SWEEP_TOPO=${SWEEP_TOPO:-pcap}
export REPS=${REPS:-3} BENCH_DIR=$BENCH
if [ "$SWEEP_TOPO" = pcap ]; then export TOPO=pcap STAT_PORTS=0,1; else export TOPO=memif; V6=0; fi
OUT=${SWEEP_OUT:-$ROOT/perf/results/sweep-$(date +%Y%m%d-%H%M%S).md}
PCAPS=$(mktemp -d /tmp/lcp-sweep-XXXXXX)
trap 'rm -rf "$PCAPS"' EXIT
mkdir -p "$(dirname "$OUT")"
# the harness builds l3fwd on first use of its anchor
[ -x "$BENCH/build/l3fwd/build/l3fwd" ] || "$BENCH/run-anchor.sh" build >/dev/null

# run <env...> -- <dut script>: prints "<Mpps> <limit>"
run() {
    local envs=() log line
    while [ "$1" != "--" ]; do envs+=("$1"); shift; done
    shift
    log=$(mktemp)
    if ! env "${envs[@]}" "$BENCH/run-anchor.sh" custom "$1" "$SECS" > "$log" 2>&1; then
        tail -3 "$log" >&2; rm -f "$log"; echo "fail -"; return
    fi
    line=$(grep '^DUT=.* limit=' "$log" | tail -1)
    rm -f "$log"
    echo "$(sed -E 's/.* Mpps=([0-9.]+).*/\1/' <<<"$line") $(sed -E 's/.* contended_reps=([0-9]+).*/c\1/' <<<"$line")"
}

row() { # case, "lcpd-mpps contended", "l3fwd-mpps contended"
    local l=($2) a=($3) ratio="-"
    [[ ${l[0]} =~ ^[0-9.]+$ && ${a[0]} =~ ^[0-9.]+$ ]] && ratio=$(awk -v x="${l[0]}" -v y="${a[0]}" 'BEGIN{printf "%.2f", x / y}')
    printf '| %-36s | %8s | %8s | %5s | %s/%s |\n' "$1" "${l[0]}" "${a[0]}" "$ratio" "${l[1]#c}" "${a[1]#c}" | tee -a "$OUT"
}

{
    echo "# lcpd vs l3fwd, $(date -u +%F\ %H:%MZ), $SWEEP_TOPO topology, ${SECS}s x $REPS reps per DUT, $(nproc) CPUs"
    echo
    echo "| case | lcpd Mpps | l3fwd Mpps | ratio | contended reps lcpd/l3fwd |"
    echo "|---|---:|---:|---:|---|"
} | tee "$OUT"

L3=$ROOT/perf/scripts/l3fwd-dut.sh
LC=$ROOT/perf/scripts/lcpd-dut.sh
for flows in $FLOWS_LIST; do
    for size in $SIZES; do
        if [ "$SWEEP_TOPO" = pcap ]; then
            pcap=$PCAPS/v4-$size-$flows.pcap
            python3 "$ROOT/perf/scripts/mkpcap.py" "$pcap" --flows "$flows" --size $((size - 4))
            traffic=(BENCH_PCAP="$pcap")
        else
            traffic=(GEN_EXTRA_ARGS="--txpkts=$size")
        fi
        a=$(run FLOWS="$flows" "${traffic[@]}" -- "$L3")
        l=$(run FLOWS="$flows" "${traffic[@]}" -- "$LC")
        row "IPv4 $size B, $flows flows" "$l" "$a"
        if [ "$size" = 64 ] && [ "$flows" = 1024 ] && [ "$BIG_FIB" -gt 0 ]; then
            big=$(run FLOWS="$flows" "${traffic[@]}" WARMUP=20 BENCH_FIB_ROUTES="$BIG_FIB" -- "$LC")
            row "IPv4 64 B, $flows flows, +$BIG_FIB routes" "$big" "$a"
        fi
    done
done
if [ "$V6" = 1 ]; then
    pcap=$PCAPS/v6.pcap
    python3 "$ROOT/perf/scripts/mkpcap.py" "$pcap" --flows 1024 --ipv6
    a=$(run FLOWS=1024 BENCH_PCAP="$pcap" -- "$L3")
    l=$(run FLOWS=1024 BENCH_PCAP="$pcap" BENCH_V6=1 -- "$LC")
    row "IPv6 66 B, 1024 flows" "$l" "$a"
fi
echo "results: $OUT"

# A picture of the table next to it (Debian's python3-matplotlib).
if /usr/bin/python3 -c 'import matplotlib' 2>/dev/null; then
    /usr/bin/python3 "$ROOT/perf/scripts/plot.py" sweep "$OUT" -o "${OUT%.md}.png" || true
else
    echo "plot: skipped (apt-get install python3-matplotlib for a PNG of this table)"
fi
