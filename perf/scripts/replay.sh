#!/usr/bin/env bash
# lcpd's route-processing rate on recorded kernel messages: N routes are put in a scratch
# namespace, the kernel's own dump of them is saved (`ip route save`: raw RTM_NEWROUTE
# messages), and LinuxCp.Benchmarks' replay feeds them through the netlink parser, the model and
# the FIB on rte_fib/rte_fib6 (both copies), from an empty FIB each rep. Prints routes/s per rep
# and the median, the collections and the bytes allocated.
#   perf/scripts/replay.sh [ipv4 routes=1000000] ; env MIX=realistic|uniform (realistic),
#   V6=<ipv6 routes> (200000), REPS (5), CPU (the CPU to run on, 1)
set -euo pipefail
ROOT=$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)
N=${1:-1000000}
NS=lcpreplay-$$
DIR=$(mktemp -d /tmp/lcpreplay-XXXXXX)
cleanup() { set +e; ip netns del "$NS" 2>/dev/null; rm -rf "$DIR" "/var/run/dpdk/replay"*; }
trap cleanup EXIT
BENCH=$ROOT/perf/LinuxCp.Benchmarks/bin/Release/net10.0/LinuxCp.Benchmarks.dll
[ -f "$BENCH" ] || dotnet build "$ROOT/perf/LinuxCp.Benchmarks" -c Release -nologo -v q >/dev/null
ip netns add "$NS"
ip -n "$NS" link add fill0 type veth peer name fill1
ip -n "$NS" link set fill1 up
ip -n "$NS" link set fill0 up
ip -n "$NS" addr add 10.0.0.1/24 dev fill0
ip -n "$NS" addr add 2001:db8::1/64 dev fill0 nodad
python3 "$ROOT/perf/scripts/mkroutes.py" "$N" "${MIX:-realistic}" "${V6:-200000}" > "$DIR/batch"
ip netns exec "$NS" ip -batch "$DIR/batch"
ip -n "$NS" -4 route save table main > "$DIR/v4.bin"
ip -n "$NS" -6 route save table main > "$DIR/v6.bin"
oif=$(ip -n "$NS" -o link show fill0 | cut -d: -f1)
taskset -c "${CPU:-1}" dotnet "$BENCH" replay --oif "$oif" --reps "${REPS:-5}" "$DIR/v4.bin" "$DIR/v6.bin"
