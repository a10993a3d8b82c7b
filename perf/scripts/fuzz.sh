#!/usr/bin/env bash
# Coverage-guided fuzzing of lcpd's input parsers with AFL++ and SharpFuzz.
#   perf/scripts/fuzz.sh <frame|netlink|api|launch|config|all> [seconds per target=60]
# The targets (tests/LinuxCp.Fuzz/Targets.cs) are published to out/fuzz, LinuxCp's assemblies
# there are instrumented by SharpFuzz, and afl-fuzz runs each target for the given time from the
# seed corpus tests/fuzz/corpus/<target>. Findings go to out/fuzz/findings/<target>/; a crash is
# copied to tests/fuzz/crashes/<target>/ (which the replay test runs from then on) and the
# script exits 1. One summary line per target: executions, corpus size, coverage, crashes.
set -euo pipefail
ROOT=$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)
WHAT=${1:-all}
SECS=${2:-60}
OUT=$ROOT/out/fuzz
TOOLS=$ROOT/out/tools
command -v afl-fuzz >/dev/null || { echo "fuzz: afl-fuzz missing (./build.sh deps installs afl++)" >&2; exit 2; }
[ -x "$TOOLS/sharpfuzz" ] || dotnet tool install --tool-path "$TOOLS" SharpFuzz.CommandLine --version 2.3.0 >/dev/null
rm -rf "$OUT/bin"
dotnet publish "$ROOT/tests/LinuxCp.Fuzz" -c Release -o "$OUT/bin" -nologo -v q >/dev/null
for dll in LinuxCp.Dataplane LinuxCp.ControlPlane LinuxCp.Management LinuxCp.Config; do
    "$TOOLS/sharpfuzz" "$OUT/bin/$dll.dll" >/dev/null
done
targets=(frame netlink api launch config)
[ "$WHAT" = all ] || targets=("$WHAT")
fail=0
for t in "${targets[@]}"; do
    find=$OUT/findings/$t
    rm -rf "$find"; mkdir -p "$OUT/findings"
    # The .NET runtime is not instrumented itself (AFL_SKIP_BIN_CHECK); SharpFuzz speaks the fork
    # server protocol and runs many inputs per process. No CPU binding: lcpd tests may run beside.
    AFL_SKIP_BIN_CHECK=1 AFL_NO_UI=1 AFL_NO_AFFINITY=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 \
    AFL_FORKSRV_INIT_TMOUT=60000 AFL_QUIET=1 \
        timeout $((SECS + 120)) afl-fuzz -i "$ROOT/tests/fuzz/corpus/$t" -o "$find" -t 5000 -m none -V "$SECS" -- \
        "$(command -v dotnet)" "$OUT/bin/LinuxCp.Fuzz.dll" "$t" >"$OUT/afl-$t.log" 2>&1 || true
    stats=$find/default/fuzzer_stats
    if [ ! -f "$stats" ]; then
        echo "fuzz $t: afl-fuzz did not run (see $OUT/afl-$t.log)"; tail -5 "$OUT/afl-$t.log"; fail=1; continue
    fi
    get() { awk -F' *: *' -v k="$1" '$1 == k {print $2}' "$stats"; }
    crashes=$(find "$find/default/crashes" -type f -name 'id:*' 2>/dev/null | wc -l)
    echo "fuzz $t: ${SECS}s execs=$(get execs_done) execs_per_sec=$(get execs_per_sec) corpus=$(get corpus_count) edges=$(get edges_found)/$(get total_edges) bitmap=$(get bitmap_cvg) crashes=$crashes hangs=$(get saved_hangs)"
    if [ "$crashes" -gt 0 ]; then
        mkdir -p "$ROOT/tests/fuzz/crashes/$t"
        for c in "$find"/default/crashes/id:*; do cp "$c" "$ROOT/tests/fuzz/crashes/$t/$(sha1sum "$c" | cut -c1-16)"; done
        fail=1
    fi
done
exit $fail
