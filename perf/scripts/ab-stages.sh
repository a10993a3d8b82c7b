#!/usr/bin/env bash
# Interleaved A/B of two lcpd builds on the pcap bench: ROUNDS rounds of (A, B), each one
# ../shared/bench run (REPS reps x SECONDS s) with the worker alone on its CPU. Prints per run
# the harness's Mpps and lcpd's own per-stage cycles per packet (show runtime), and the ratio of
# lcpd's own stages (classify + lookup + rewrite) to the PMD's rx stage, which cancels most of
# the host's drift (the PMD's cost moves with it).
#   perf/scripts/ab-stages.sh <checkout A> <checkout B> [rounds]
# Each checkout must have been built (bin/lcpd). PCAP (default: a 64 B, 1024-flow IPv4 file
# made with mkpcap.py), REPS (2), SECONDS_PER_REP (10), BENCH_V6 (pcap must then be IPv6),
# TSC_MHZ (2600; "other" = TSC cycles per packet not in any stage: loop and per-burst overhead).
set -euo pipefail
A=$(readlink -f "$1"); B=$(readlink -f "$2"); ROUNDS=${3:-2}
HERE=$(cd "$(dirname "$(readlink -f "$0")")" && pwd)
BENCH=${BENCH_DIR:-$HERE/../../../shared/bench}
PCAP=${PCAP:-/tmp/ab-v4-64-1024.pcap}
[ -f "$PCAP" ] || python3 "$HERE/mkpcap.py" "$PCAP" --flows 1024 --size 60 >/dev/null
stats=$(mktemp -d)
trap 'rm -rf "$stats"' EXIT
printf '%-6s %-2s %7s %6s %6s %6s %6s %6s %6s %6s\n' round ab Mpps rx clsfy lookup rewrt tx other own/rx
for r in $(seq "$ROUNDS"); do
    for side in A B; do
        root=$A; [ "$side" = B ] && root=$B
        out=$(cd "$BENCH" && TOPO=pcap STAT_PORTS=0,1 REPS=${REPS:-2} FLOWS=1024 BENCH_PCAP="$PCAP" \
            ./run-anchor.sh custom "BENCH_CONTROL_CPU=1 BENCH_V6=${BENCH_V6:-0} BENCH_STATS_OUT=$stats/$side$r.txt $root/perf/scripts/lcpd-dut.sh" "${SECONDS_PER_REP:-10}" 2>&1 | grep '^DUT=' | tail -1)
        mpps=$(sed -E 's/.*Mpps=([0-9.]+).*/\1/' <<<"$out")
        python3 - "$stats/$side$r.txt" "$r" "$side" "$mpps" "${TSC_MHZ:-2600}" <<'PY'
import json, sys
text = open(sys.argv[1]).read()
part = text.split("# runtime\n", 1)[1].split("\n# ", 1)[0]
w = json.loads(part)[0]
c = {p["path"]: (p["cycles_per_packet"] or 0.0) for p in w["paths"]}
own = c["classify"] + c["lookup"] + c["rewrite"]
mpps = float(sys.argv[4])
# the worker's CPU is always busy: TSC cycles per forwarded packet, less the stages' sum
other = float(sys.argv[5]) / mpps - own - c["rx"] - c["tx"]
print(f'{sys.argv[2]:<6} {sys.argv[3]:<2} {mpps:7.2f} {c["rx"]:6.1f} {c["classify"]:6.1f} {c["lookup"]:6.1f} {c["rewrite"]:6.1f} {c["tx"]:6.1f} {other:6.1f} {own / c["rx"]:6.2f}')
PY
    done
done
