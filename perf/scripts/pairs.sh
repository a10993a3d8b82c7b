#!/usr/bin/env bash
# lcpd against DPDK's l3fwd in interleaved pairs on ../shared/bench's pcap topology (DUT alone
# on one CPU, both ports replaying the same pcap). The host's speed drifts by tens of percent
# within minutes, so each pair runs back to back and the order alternates (ABBA...): the ratio
# of a pair is meaningful, a single Mpps figure much less so. Prints every run, the ratio of
# every pair and their median; writes the table to perf/results/pairs-<time>.md.
#   perf/scripts/pairs.sh [pairs, default 4]
# env: FAMILY (v4 | v6), REPS (3 per run), SECS (10 per rep), FLOWS (1024; PCAP_FLOWS: frames,
# i.e. flows, in the replayed pcap if not FLOWS, which the harness wants a power of two), LCPD_ENV (extra
# environment for lcpd-dut.sh, e.g. "BENCH_CONTROL_CPU=1"). ANCHOR_ENV=<env>: the anchor side is
# lcpd too, with this environment instead of l3fwd (e.g. LCPD_ENV=BENCH_TABLE=100 ANCHOR_ENV=
# BENCH_TABLE=: a non-default table against the main table, in the same interleaved pairs).
# VLAN=<vid>[.<inner>]: lcpd routing between two sub-interfaces of that tag (the same frames,
# tagged) against lcpd on the untagged frames, in the same interleaved pairs.
set -euo pipefail
ROOT=$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)
BENCH=${BENCH_DIR:-$(cd "$ROOT/../shared/bench" 2>/dev/null && pwd || true)}
[ -x "$BENCH/run-anchor.sh" ] || { echo "pairs: ../shared/bench/run-anchor.sh not found (set BENCH_DIR)" >&2; exit 1; }
PAIRS=${1:-4}
FAMILY=${FAMILY:-v4}
FLOWS=${FLOWS:-1024}
PCAP_FLOWS=${PCAP_FLOWS:-$FLOWS}
SECS=${SECS:-10}
export REPS=${REPS:-3} TOPO=pcap STAT_PORTS=0,1 FLOWS BENCH_DIR=$BENCH
[ -x "$BENCH/build/l3fwd/build/l3fwd" ] || "$BENCH/run-anchor.sh" build >/dev/null
PCAP=$(mktemp /tmp/lcp-pairs-XXXXXX.pcap)
trap 'rm -f "$PCAP"' EXIT
if [ "$FAMILY" = v6 ]; then
    python3 "$ROOT/perf/scripts/mkpcap.py" "$PCAP" --flows "$PCAP_FLOWS" --size 62 --ipv6 >/dev/null
    LCPD_ENV="BENCH_V6=1 ${LCPD_ENV:-}"
    LCPD_ENV_BASE="BENCH_V6=1"
else
    python3 "$ROOT/perf/scripts/mkpcap.py" "$PCAP" --flows "$PCAP_FLOWS" --size 60 >/dev/null
fi
if [ -n "${VLAN:-}" ]; then
    TAGGED=$(mktemp /tmp/lcp-pairs-vlan-XXXXXX.pcap)
    trap 'rm -f "$PCAP" "$TAGGED"' EXIT
    python3 "$ROOT/perf/scripts/mkpcap.py" "$TAGGED" --flows "$PCAP_FLOWS" --size $([ "$FAMILY" = v6 ] && echo 66 || echo 60) \
        --vlan "$VLAN" $([ "$FAMILY" = v6 ] && echo --ipv6) >/dev/null
    LCPD_ENV="BENCH_VLAN=$VLAN BENCH_PCAP=$TAGGED ${LCPD_ENV:-}"
    ANCHOR_ENV=${ANCHOR_ENV:-}
fi
OUT=${PAIRS_OUT:-$ROOT/perf/results/pairs-$(date +%Y%m%d-%H%M).md}
mkdir -p "$(dirname "$OUT")"

# run <dut command>: prints "<median Mpps> <min>-<max> <contended reps>"
run() {
    local line
    line=$(cd "$BENCH" && BENCH_PCAP="$PCAP" ./run-anchor.sh custom "$1" "$SECS" 2>&1 | grep '^DUT=.*min=' | tail -1)
    [ -n "$line" ] || { echo "0 0-0 ?"; return; }
    sed -E 's/.*Mpps=([0-9.]+) min=([0-9.]+) max=([0-9.]+).*contended_reps=([0-9]+).*/\1 \2-\3 \4/' <<<"$line"
}

{
    echo "# lcpd${LCPD_ENV:+ [$LCPD_ENV]} vs ${ANCHOR_ENV+lcpd [$ANCHOR_ENV] (in the l3fwd rows)}${ANCHOR_ENV-l3fwd} ($FAMILY), $(date -u +%Y-%m-%dT%H:%MZ), pcap topology, $SECS s x $REPS reps per run, $PCAP_FLOWS flows, pairs interleaved (ABBA)"
    echo
    echo "lcpd: $(git -C "$ROOT" log -1 --format='%h %s' | cut -c1-100)$(git -C "$ROOT" diff --quiet || echo ' (+ uncommitted changes)')"
    echo
    echo "| pair | time | DUT | Mpps median (min-max) | contended reps |"
    echo "|---|---|---|---|---|"
} > "$OUT"
ratios=()
for p in $(seq "$PAIRS"); do
    order="l3fwd lcpd"
    [ $((p % 2)) = 0 ] && order="lcpd l3fwd"
    declare -A mpps=()
    for dut in $order; do
        if [ "$dut" = l3fwd ] && [ -n "${ANCHOR_ENV+set}" ]; then
            read -r m range cont < <(run "$ANCHOR_ENV ${LCPD_ENV_BASE:-} $ROOT/perf/scripts/lcpd-dut.sh")
        elif [ "$dut" = l3fwd ]; then
            read -r m range cont < <(run "$ROOT/perf/scripts/l3fwd-dut.sh")
        else
            read -r m range cont < <(run "${LCPD_ENV:-} $ROOT/perf/scripts/lcpd-dut.sh")
        fi
        mpps[$dut]=$m
        echo "| $p | $(date -u +%H:%M) | $dut | $m ($range) | $cont |" | tee -a "$OUT"
    done
    r=$(python3 -c "a,b=float('${mpps[lcpd]}'),float('${mpps[l3fwd]}'); print(f'{a/b:.2f}' if b else 'nan')")
    ratios+=("$r")
    unset mpps
done
med=$(printf '%s\n' "${ratios[@]}" | python3 -c "import sys,statistics; v=[float(x) for x in sys.stdin if x.strip()!='nan']; print(f'{statistics.median(v):.2f}' if v else 'nan')")
{
    echo
    echo "Ratios lcpd/l3fwd by pair: ${ratios[*]}; median $med"
} | tee -a "$OUT"

# A picture of the table next to it (Debian's python3-matplotlib).
if /usr/bin/python3 -c 'import matplotlib' 2>/dev/null; then
    /usr/bin/python3 "$ROOT/perf/scripts/plot.py" pairs "$OUT" -o "${OUT%.md}.png" || true
else
    echo "plot: skipped (apt-get install python3-matplotlib for a PNG of this table)"
fi
