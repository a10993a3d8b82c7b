#!/usr/bin/env bash
# Allocation budget: every benchmark in perf/LinuxCp.Benchmarks must allocate 0 bytes per
# operation (they all model hot-path code). Runs the suite in-process with a short job (4096
# invocations per iteration: the Dry job reports 0 bytes even for allocating code, checked) and
# the memory diagnoser, then checks the JSON report. ./build.sh test runs it (a few seconds).
# The in-process diagnoser counts what every thread of the process allocates: on a loaded host a
# runtime thread's few bytes can land in a measurement (seen: 1 byte/op, on a benchmark that only
# reads the TSC). A benchmark over budget is therefore measured once more on its own, and only one
# that allocates again fails: a real allocation (24 bytes or more per operation) always does.
set -euo pipefail
ROOT=$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
run() { # <artifacts dir> <filter>...
    local dir=$1
    shift
    dotnet run -c Release --no-build --project "$ROOT/perf/LinuxCp.Benchmarks" -- \
        --filter "$@" --launchCount 1 --warmupCount 1 --iterationCount 3 --invocationCount 4096 --unrollFactor 1 --inProcess --memory --exporters json --artifacts "$dir" >"$dir.log" 2>&1 \
        || { tail -30 "$dir.log" >&2; echo "allocation budget: benchmark run failed" >&2; exit 1; }
}
over() { # <artifacts dir>: prints "<method filter>\t<full name>\t<bytes/op>" of each benchmark over budget
    python3 - "$1" <<'PY'
import glob, json, sys
rows = []
for f in glob.glob(sys.argv[1] + "/results/*-full-compressed.json"):
    for b in json.load(open(f))["Benchmarks"]:
        rows.append((b["Type"], b["Method"], b["FullName"], (b.get("Memory") or {}).get("BytesAllocatedPerOperation")))
if not rows:
    print("none\tno benchmark results\t?")
for t, m, n, a in rows:
    if a is None or a > 0:
        print(f"*{t}.{m}*\t{n}\t{a}")
PY
}
run "$out/all" '*'
total=$(python3 -c 'import glob,json,sys; print(sum(len(json.load(open(f))["Benchmarks"]) for f in glob.glob(sys.argv[1] + "/results/*-full-compressed.json")))' "$out/all")
mapfile -t first < <(over "$out/all")
failed=0
n=0
for line in "${first[@]}"; do
    IFS=$'\t' read -r filter name bytes <<<"$line"
    [ "$filter" = none ] && { echo "allocation budget: no benchmark results" >&2; exit 1; }
    echo "allocation budget: $name: $bytes bytes/op; measuring it again" >&2
    n=$((n + 1))
    run "$out/again-$n" "$filter"
    again=$(over "$out/again-$n")
    if [ -n "$again" ]; then
        echo "allocation budget exceeded: $name: $(cut -f3 <<<"$again" | head -1) bytes/op (twice)" >&2
        failed=$((failed + 1))
    fi
done
echo "allocation budget: $total benchmarks, $failed over the 0-byte budget"
[ "$failed" = 0 ]
