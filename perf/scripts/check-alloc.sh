#!/usr/bin/env bash
# Allocation budget: every benchmark in perf/LinuxCp.Benchmarks must allocate 0 bytes per
# operation (they all model hot-path code). Runs the suite in-process with a short job (4096
# invocations per iteration: the Dry job reports 0 bytes even for allocating code, checked) and
# the memory diagnoser, then checks the JSON report. ./build.sh test runs it (a few seconds).
set -euo pipefail
ROOT=$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
dotnet run -c Release --no-build --project "$ROOT/perf/LinuxCp.Benchmarks" -- \
    --filter '*' --launchCount 1 --warmupCount 1 --iterationCount 3 --invocationCount 4096 --unrollFactor 1 --inProcess --memory --exporters json --artifacts "$out" >"$out/run.log" 2>&1 \
    || { tail -30 "$out/run.log" >&2; echo "allocation budget: benchmark run failed" >&2; exit 1; }
python3 - "$out" <<'PY'
import glob, json, sys
rows = []
for f in glob.glob(sys.argv[1] + "/results/*-full-compressed.json"):
    for b in json.load(open(f))["Benchmarks"]:
        rows.append((b["FullName"], (b.get("Memory") or {}).get("BytesAllocatedPerOperation")))
over = [(n, a) for n, a in rows if a is None or a > 0]
for n, a in over:
    print(f"allocation budget exceeded: {n}: {a} bytes/op", file=sys.stderr)
print(f"allocation budget: {len(rows)} benchmarks, {len(over)} over the 0-byte budget")
sys.exit(1 if over or not rows else 0)
PY
