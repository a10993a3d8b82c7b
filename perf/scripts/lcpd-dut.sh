#!/usr/bin/env bash
# lcpd as the DUT of ../shared/bench/run-anchor.sh (custom mode). The harness exports
# PORT_VDEV0/1, DUT_EAL, DUT_MAC, GEN_MAC0/1 and ROUTES ("prefix=port,..."). lcpd owns the two
# bench ports and mirrors them into a private namespace; Linux there holds what a router would
# have: an address per port, a static neighbour for each generator port, and the bench routes.
# The FIB is filled through netlink, exactly as in production. Extra lcpd options: LCPD_ARGS.
set -euo pipefail
ROOT=$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)
NS=lcpbench-$$
SOCK=/run/lcpbench-$$.sock
pid=
cleanup() {
    set +e
    [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid"
    ip netns del "$NS" 2>/dev/null
    rm -f "$SOCK"
}
trap cleanup EXIT
trap 'exit 0' TERM INT

ip netns add "$NS"
# BENCH_FIB_ROUTES=N: a full table. N /24 routes (16.0.0.0/24 upwards, disjoint from the bench's
# 10.253/16) are in Linux before lcpd starts, on a dummy link (routes not via a mirror are kept
# in the FIB and punted), so every lookup walks a FIB of N+ routes. lcpd reads them with its
# start-up dump; give the harness WARMUP time for that.
if [ "${BENCH_FIB_ROUTES:-0}" -gt 0 ]; then
    ip -n "$NS" link add fill0 type dummy
    ip -n "$NS" link set fill0 up
    python3 - "$BENCH_FIB_ROUTES" > "/tmp/lcpbench-routes-$$" <<'PY'
import sys
n = int(sys.argv[1])
for i in range(n):
    print(f"route add {16 + (i >> 16)}.{(i >> 8) & 255}.{i & 255}.0/24 dev fill0")
PY
    ip -n "$NS" -batch "/tmp/lcpbench-routes-$$"
    rm -f "/tmp/lcpbench-routes-$$"
fi
# shellcheck disable=SC2086
"$ROOT/bin/lcpd" $DUT_EAL --vdev="$PORT_VDEV0" --vdev="$PORT_VDEV1" -- \
    --netns "$NS" --pair 0=lcp0 --pair 1=lcp1 --port-mac "0=$DUT_MAC" --port-mac "1=$DUT_MAC" \
    --api-socket "$SOCK" --no-rest ${LCPD_ARGS:-} &
pid=$!
for _ in $(seq 600); do [ -S "$SOCK" ] && break; sleep 0.1; done

in_ns() { ip netns exec "$NS" "$@"; }
in_ns ip link set lo up
for p in 0 1; do
    in_ns ip addr add "172.16.$p.1/24" dev "lcp$p"
    in_ns ip link set "lcp$p" up
done
in_ns ip neigh replace 172.16.0.2 lladdr "$GEN_MAC0" dev lcp0 nud permanent
in_ns ip neigh replace 172.16.1.2 lladdr "$GEN_MAC1" dev lcp1 nud permanent
IFS=, read -ra routes <<<"$ROUTES"
for r in "${routes[@]}"; do
    in_ns ip route replace "${r%%=*}" via "172.16.${r##*=}.2"
done
wait "$pid"
