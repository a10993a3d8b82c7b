#!/usr/bin/env bash
# The mirror kinds side by side in one run: TAP (the TAP PMD), veth (af_packet rings) and
# veth-xdp (XDP sockets). For each kind, on the same topology (lcpd with two af_packet ports on
# veths, hosts in namespaces, the mirrors in a router namespace):
#   tcp      TCP throughput from a host to the router's Linux through the mirror (iperf3, 10 s)
#   bgp      how long a BGP session (BIRD to BIRD) takes to carry ROUTES routes over the mirror
#   punt     64-byte UDP frames to the router's address (punted, policer off) that reach Linux,
#            per second, while a DPDK generator (testpmd txonly) floods the port
#   cpu      busy share of each CPU during the tcp test (the worker busy-polls its CPU anyway)
# Writes a markdown table to perf/results/mirrors-<time>.md.
#   perf/scripts/mirror-compare.sh [kinds, default "tap veth veth-xdp"]
# env: ROUTES (bgp, default 1000000), SECS (tcp and punt windows, default 10), REPS (default 1).
set -euo pipefail
ROOT=$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)
KINDS=${1:-"tap veth veth-xdp"}
ROUTES=${ROUTES:-1000000}
SECS=${SECS:-10}
REPS=${REPS:-1}
for p in iperf3 bird2; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$p" >/dev/null
done
ID=mc$$
DP=$ID-dp RT=$ID-rt HA=$ID-ha HB=$ID-hb
WORK=$(mktemp -d /tmp/lcp-mirrors-XXXXXX)
pids=()
cleanup() {
    set +e
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    sleep 1
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
    for n in $DP $RT $HA $HB; do ip netns del "$n" 2>/dev/null; done
    rm -rf "$WORK" /run/$ID.sock /var/run/dpdk/$ID-gen /var/run/dpdk/$ID
}
trap cleanup EXIT
OUT=$ROOT/perf/results/mirrors-$(date +%Y%m%d-%H%M).md
mkdir -p "$(dirname "$OUT")"

# The host side of the BGP test: one BIRD config with ROUTES static routes, made once.
python3 - "$ROUTES" > "$WORK/routes.conf" <<'PY'
import sys
n = int(sys.argv[1])
print("protocol static { ipv4;")
for i in range(n):
    print(f"  route {16 + (i >> 16)}.{(i >> 8) & 255}.{i & 255}.0/24 blackhole;")
print("}")
PY

cpu_busy() { awk '/^cpu[0-9]/ { print $1, $2+$3+$4+$7+$8, $2+$3+$4+$5+$6+$7+$8 }' /proc/stat; }

one_kind() {
    local kind=$1 opt=""
    [ "$kind" != tap ] && opt=",$kind"
    for n in $DP $RT $HA $HB; do ip netns add "$n"; done
    local i=0
    for h in $HA $HB; do
        ip link add dp$i netns $DP type veth peer name h$i netns "$h"
        ip netns exec $DP sysctl -qw net.ipv6.conf.dp$i.disable_ipv6=1
        ip -n $DP link set dp$i up
        ip -n "$h" link set lo up
        ip -n "$h" addr add 10.77.$i.2/24 dev h$i
        ip -n "$h" link set h$i up
        ip -n "$h" route add default via 10.77.$i.1
        ip netns exec "$h" ethtool -K h$i tx off >/dev/null
        i=$((i + 1))
    done
    ip netns exec $DP "$ROOT/bin/lcpd" --no-huge -m 1024 --no-pci --file-prefix $ID --lcores 0@0,1@1 --log-level lib.eal:warning \
        --vdev net_af_packet0,iface=dp0 --vdev net_af_packet1,iface=dp1 -- --netns $RT --api-socket /run/$ID.sock --no-config-state \
        --fib-routes 131072 --fib6-routes 65536 --fib-tbl8 4096 --pair "net_af_packet0=lcp0$opt" --pair "net_af_packet1=lcp1$opt" > "$WORK/lcpd-$kind.log" 2>&1 &
    local lcpd=$!
    pids+=("$lcpd")
    for _ in $(seq 300); do kill -0 "$lcpd" 2>/dev/null || { cat "$WORK/lcpd-$kind.log" >&2; exit 1; }; [ -S /run/$ID.sock ] && "$ROOT/bin/lcpctl" --socket /run/$ID.sock show version >/dev/null 2>&1 && break; sleep 0.2; done
    ip netns exec $RT sysctl -qw net.ipv4.ip_forward=1
    ip -n $RT link set lo up
    for p in 0 1; do ip -n $RT addr add 10.77.$p.1/24 dev lcp$p; ip -n $RT link set lcp$p up; done
    "$ROOT/bin/lcpctl" --socket /run/$ID.sock set punt policer local off >/dev/null
    ip netns exec $HA ping -c 2 -W 2 10.77.0.1 >/dev/null

    # tcp + cpu
    ip netns exec $RT iperf3 -s -1 -p 5201 >/dev/null 2>&1 &
    local srv=$!
    sleep 1
    local c0 c1; c0=$(cpu_busy)
    local bps
    bps=$(ip netns exec $HA iperf3 -c 10.77.0.1 -p 5201 -t "$SECS" -J 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"])' || echo 0)
    c1=$(cpu_busy)
    wait $srv 2>/dev/null || true
    local cpu
    cpu=$(paste <(echo "$c0") <(echo "$c1") | awk '{ printf "%s %.0f%% ", $1, 100 * ($5 - $2) / ($6 - $3) }')

    # bgp: ROUTES routes from host A's BIRD to the router's BIRD over lcp0
    cat > "$WORK/r.conf" <<EOF
router id 10.77.0.1;
protocol device { }
protocol bgp h { local 10.77.0.1 as 65001; neighbor 10.77.0.2 as 65002; hold time 240; connect delay time 1; ipv4 { import all; export none; }; }
EOF
    cat > "$WORK/h.conf" <<EOF
router id 10.77.0.2;
protocol device { }
include "$WORK/routes.conf";
protocol bgp r { local 10.77.0.2 as 65002; neighbor 10.77.0.1 as 65001; hold time 240; connect delay time 1; ipv4 { import none; export all; }; }
EOF
    ip netns exec $HA bird -f -c "$WORK/h.conf" -s "$WORK/h.ctl" -P "$WORK/h.pid" &
    pids+=($!)
    for _ in $(seq 600); do birdc -s "$WORK/h.ctl" show route count 2>/dev/null | grep -q "$ROUTES of $ROUTES" && break; sleep 0.5; done
    local t0 t1 n=0
    ip netns exec $RT bird -f -c "$WORK/r.conf" -s "$WORK/r.ctl" -P "$WORK/r.pid" &
    pids+=($!)
    # The transfer's duration: from the session's establishment to the last route received.
    for _ in $(seq 600); do birdc -s "$WORK/r.ctl" show protocols h 2>/dev/null | grep -q Established && break; sleep 0.05; done
    t0=$(date +%s.%N)
    for _ in $(seq 2400); do
        n=$(birdc -s "$WORK/r.ctl" show route count 2>/dev/null | awk '/routes/ { print $1; exit }' || echo 0)
        [ "${n:-0}" -ge "$ROUTES" ] && break
        sleep 0.25
    done
    t1=$(date +%s.%N)
    local bgp
    bgp=$(python3 -c "print(f'{$t1 - $t0:.1f}' if int('${n:-0}') >= $ROUTES else 'timeout')")
    kill "$(cat "$WORK/r.pid")" "$(cat "$WORK/h.pid")" 2>/dev/null || true

    # punt: testpmd txonly floods port 0 with 64-byte UDP frames to the router's address
    local mac
    mac=$("$ROOT/bin/lcpctl" --socket /run/$ID.sock --json show interfaces | python3 -c 'import json,sys; print([i["mac"] for i in json.load(sys.stdin) if i["name"]=="net_af_packet0"][0])')
    ip netns exec $HA dpdk-testpmd --no-huge -m 256 --no-pci --file-prefix $ID-gen --lcores 0@0,1@0 --log-level lib.eal:error \
        --vdev net_af_packet0,iface=h0,qdisc_bypass=1 -- --forward-mode=txonly --txpkts=64 --tx-ip=10.77.0.2,10.77.0.1 \
        --eth-peer=0,"$mac" --auto-start --stats-period=1 --total-num-mbufs=8192 > "$WORK/gen.log" 2>&1 &
    local gen=$!
    pids+=("$gen")
    sleep 3
    local r0 r1
    r0=$(ip -n $RT -s -j link show lcp0 | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["stats64"]["rx"]["packets"])')
    sleep "$SECS"
    r1=$(ip -n $RT -s -j link show lcp0 | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["stats64"]["rx"]["packets"])')
    kill -0 "$gen" 2>/dev/null || { echo "generator died:" >&2; tail -5 "$WORK/gen.log" >&2; }
    kill "$gen" 2>/dev/null || true
    wait "$gen" 2>/dev/null || true
    local pps=$(( (r1 - r0) / SECS ))

    kill "$lcpd" 2>/dev/null || true
    wait "$lcpd" 2>/dev/null || true
    for n in $DP $RT $HA $HB; do ip netns del "$n" 2>/dev/null; done
    printf '| %s | %.2f | %s | %d | %s |\n' "$kind" "$(python3 -c "print($bps / 1e9)")" "$bgp" "$pps" "$cpu" | tee -a "$OUT"
}

{
    echo "# Mirror kinds, $(date -u +%Y-%m-%dT%H:%MZ): TCP host -> router's Linux (iperf3, $SECS s), BGP transfer of $ROUTES routes, 64 B punts reaching Linux, CPU busy during the TCP test"
    echo
    echo "lcpd: $(git -C "$ROOT" log -1 --format='%h %s' | cut -c1-100)"
    echo
    echo "| mirror | TCP Gbit/s | BGP ${ROUTES} routes (s) | punts/s into Linux | CPU busy during TCP |"
    echo "|---|---|---|---|---|"
} > "$OUT"
for r in $(seq "$REPS"); do
    for k in $KINDS; do one_kind "$k"; done
done
echo "table: $OUT"
