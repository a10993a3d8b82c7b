#!/usr/bin/env bash
# lcpd as the DUT of ../shared/bench/run-anchor.sh (custom mode). The harness exports
# PORT_VDEV0/1, DUT_EAL, DUT_MAC, GEN_MAC0/1 and ROUTES ("prefix=port,..."). lcpd owns the two
# bench ports and mirrors them into a private namespace; Linux there holds what a router would
# have: an address per port, a static neighbour for each generator port, and the bench routes.
# The FIB is filled through netlink, exactly as in production. Extra lcpd options: LCPD_ARGS;
# another lcpd build (an A/B in pairs.sh's ANCHOR_ENV): LCPD_BIN=<its bin/lcpd or out/lcpd/lcpd>.
set -euo pipefail
ROOT=$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)
NS=lcpbench-$$
SOCK=/run/lcpbench-$$.sock
pid=
churn=
newflows=
stats=
cleanup() {
    set +e
    [ -n "$churn" ] && kill "$churn" 2>/dev/null
    [ -n "$newflows" ] && kill "$newflows" 2>/dev/null
    [ -n "$stats" ] && kill "$stats" 2>/dev/null
    [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid"
    ip netns del "$NS" 2>/dev/null
    ip netns del "$NS-src" 2>/dev/null
    rm -f "$SOCK" "/tmp/lcpbench-acl-$$"
}
trap cleanup EXIT
trap 'exit 0' TERM INT

ip netns add "$NS"
OTHER_CPU=$(( DUT_CPU == 0 ? 1 : 0 ))   # the CPU of the harness's two that the DUT does not use
# BENCH_FIB_ROUTES=N: a full table. N /24 routes (16.0.0.0/24 upwards, disjoint from the bench's
# 10.253/16) are in Linux before lcpd starts, on a veth inside the namespace (routes not via a mirror are kept
# in the FIB and punted), so every lookup walks a FIB of N+ routes. lcpd reads them with its
# start-up dump; give the harness WARMUP time for that.
if [ "${BENCH_FIB_ROUTES:-0}" -gt 0 ]; then
    ip -n "$NS" link add fill0 type veth peer name fill1   # (no dummy module on every kernel)
    ip -n "$NS" link set fill1 up
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
# BENCH_PCAP=<file> (pcap topology): replay this file instead of the harness's (frame sizes,
# IPv6: perf/scripts/mkpcap.py). BENCH_V6=1: Linux gets IPv6 addresses, neighbours and l3fwd's
# default IPv6 routes (2001:200:0:N::/64 via port N) as well.
if [ -n "${BENCH_PCAP:-}" ]; then
    PORT_VDEV0=$(sed -E "s|rx_pcap=[^,]+|rx_pcap=$BENCH_PCAP|" <<<"$PORT_VDEV0")
    PORT_VDEV1=$(sed -E "s|rx_pcap=[^,]+|rx_pcap=$BENCH_PCAP|" <<<"$PORT_VDEV1")
fi
# BENCH_WORKERS=2 (pcap topology): two workers, worker lcore 1 on the DUT CPU (with the control
# threads), lcore 2 on the other CPU; each pcap port gets a second RX queue replaying the same
# file (and a second TX queue), so each worker polls one queue of each port.
if [ "${BENCH_WORKERS:-1}" = 2 ]; then
    DUT_EAL=$(sed -E "s/--lcores=[^ ]+/--lcores=0@$DUT_CPU,1@$DUT_CPU,2@$OTHER_CPU/" <<<"$DUT_EAL")
    for v in PORT_VDEV0 PORT_VDEV1; do
        rx=$(grep -oE 'rx_pcap=[^,]+' <<<"${!v}")
        printf -v "$v" '%s,%s' "${!v}" "$rx"
    done
fi
# BENCH_CONTROL_CPU=<cpu>: lcpd's main lcore (control plane: netlink, API) and the churn tools
# run on that CPU, the worker alone on the harness's DUT CPU, as in production where the control
# plane has its own core. Without it everything shares the DUT CPU.
TASKSET=()
if [ -n "${BENCH_CONTROL_CPU:-}" ]; then
    DUT_EAL=$(sed -E "s/--lcores=[^ ]+/--lcores=0@$BENCH_CONTROL_CPU,1@$DUT_CPU/" <<<"$DUT_EAL")
    TASKSET=(taskset -c "$DUT_CPU,$BENCH_CONTROL_CPU")
fi
# BENCH_VLAN=<vid>[.<inner>]: the bench's frames carry that tag (a pcap from mkpcap.py --vlan):
# what is paired (lcp0, lcp1) is each port's sub-interface of that tag, so the traffic is
# received on one sub-interface and routed out of the other, tags popped and pushed.
SUB=${BENCH_VLAN:+.$BENCH_VLAN}
# BENCH_TABLE=<n>: both ports forward in kernel table n (--pair ...,table=n): the bench's routes
# and the connected subnets go to table n, the main table keeps only the connected routes.
PT=${BENCH_TABLE:+,table=$BENCH_TABLE}
RT=(${BENCH_TABLE:+table $BENCH_TABLE})
# BENCH_ACL=N: N IPv4 and N IPv6 input classifier rules on each of the two ports, none of which
# matches the bench's traffic (UDP 1000 -> 1001 from 10.254/16 or 2001:db8::1): what a port pays
# for carrying rules. Varied prefixes, protocols and port ranges, as a real filter list would be.
ACL_ARGS=()
[ -n "${BENCH_FLOW_TABLE:-}" ] && ACL_ARGS+=(--flow-table "$BENCH_FLOW_TABLE")
# BENCH_MBUFS=N: lcpd's --mbufs (net_pcap's infinite_rx holds every frame of the pcap in mbufs,
# per port: FLOWS=1048576 needs about 2.2 million, and HUGEPAGES=4096 for the harness).
[ -n "${BENCH_MBUFS:-}" ] && ACL_ARGS+=(--mbufs "$BENCH_MBUFS")
if [ "${BENCH_ACL:-0}" -gt 0 ]; then
    ACL_FILE=/tmp/lcpbench-acl-$$
    python3 - "$BENCH_ACL" "${PORT_VDEV0%%,*}" "${PORT_VDEV1%%,*}" > "$ACL_FILE" <<'PY'
import sys
n, ports = int(sys.argv[1]), sys.argv[2:]
for port in ports:
    for i in range(n):
        proto = ("tcp", "udp")[i % 2]
        print(f"{port} input src 100.{64 + (i >> 8 & 63)}.{i & 255}.0/24 dst 10.{i % 200}.0.0/16 proto {proto} dport {2000 + i % 1000}-{2000 + i % 1000 + 10} drop priority {i % 4096}")
        print(f"{port} input src 2001:db8:{0x100 + i:x}::/48 proto {proto} dport {3000 + i % 1000} drop priority {i % 4096}")
PY
    ACL_ARGS+=(--classify-file "$ACL_FILE")
fi
# BENCH_NEW_FLOWS=R: R new flows a second beside the pcap's (the tracker's churn). lcpd owns a
# third port, an af_packet port on a veth whose peer sits in a namespace of its own; a sender
# there (on the CPU the DUT does not use) sends R UDP frames a second, each from a source
# address and port not seen before, to 10.251.0.0/16, routed out of port 0, so with
# BENCH_FLOWTRACK each is a new flow on port 0's tracker. BENCH_FLOW_UDP=<s>: the tracker's UDP
# timeout, so that the new flows also expire during the run (the default is 300 s).
EXTRA_PORT=()
if [ "${BENCH_NEW_FLOWS:-0}" -gt 0 ]; then
    SRCNS=$NS-src
    ip netns add "$SRCNS"
    ip link add "lcpnf$$" type veth peer name src0 netns "$SRCNS"
    # (deleting the namespace deletes both ends; no IPv6 chatter on either)
    sysctl -qw "net.ipv6.conf.lcpnf$$.disable_ipv6=1"
    ip link set "lcpnf$$" up
    ip netns exec "$SRCNS" sysctl -qw net.ipv6.conf.src0.disable_ipv6=1
    ip -n "$SRCNS" link set src0 up
    EXTRA_PORT=(--vdev="net_af_packet2,iface=lcpnf$$")
fi
# shellcheck disable=SC2086
"${TASKSET[@]}" "${LCPD_BIN:-$ROOT/bin/lcpd}" $DUT_EAL --vdev="$PORT_VDEV0" --vdev="$PORT_VDEV1" "${EXTRA_PORT[@]}" -- \
    --netns "$NS" --pair "0$SUB=lcp0$PT" --pair "1$SUB=lcp1$PT" --port-mac "0=$DUT_MAC" --port-mac "1=$DUT_MAC" \
    ${EXTRA_PORT:+--pair "net_af_packet2=lcp2$PT"} \
    --api-socket "$SOCK" --no-rest "${ACL_ARGS[@]}" ${LCPD_ARGS:-} &
pid=$!
for _ in $(seq 600); do [ -S "$SOCK" ] && break; sleep 0.1; done

in_ns() { ip netns exec "$NS" "$@"; }
in_ns ip link set lo up
for p in 0 1; do
    in_ns ip addr add "172.16.$p.1/24" dev "lcp$p"
    in_ns ip link set "lcp$p" up
done
if [ -n "${BENCH_TABLE:-}" ]; then
    for p in 0 1; do in_ns ip route replace "172.16.$p.0/24" dev "lcp$p" "${RT[@]}"; done
fi
in_ns ip neigh replace 172.16.0.2 lladdr "$GEN_MAC0" dev lcp0 nud permanent
in_ns ip neigh replace 172.16.1.2 lladdr "$GEN_MAC1" dev lcp1 nud permanent
if [ "${BENCH_V6:-0}" = 1 ]; then
    for p in 0 1; do
        in_ns ip -6 addr add "fd00:16:$p::1/64" dev "lcp$p" nodad
    done
    in_ns ip -6 neigh replace fd00:16:0::2 lladdr "$GEN_MAC0" dev lcp0 nud permanent
    in_ns ip -6 neigh replace fd00:16:1::2 lladdr "$GEN_MAC1" dev lcp1 nud permanent
    for p in 0 1; do
        [ -n "${BENCH_TABLE:-}" ] && in_ns ip -6 route replace "fd00:16:$p::/64" dev "lcp$p" "${RT[@]}"
        in_ns ip -6 route replace "2001:200:0:$p::/64" via "fd00:16:$p::2" "${RT[@]}"
    done
fi
# BENCH_FLOWTRACK=1: the flow tracker on port 0 (what it receives and what it sends: with the
# bench's symmetric traffic, FLOWS flows in one zone). BENCH_FLOW_TABLE=N: lcpd's --flow-table
# (e.g. 1048576 for FLOWS=1048576; the default 262144 would be full).
if [ "${BENCH_FLOWTRACK:-0}" = 1 ]; then
    "$ROOT/bin/lcpctl" --socket "$SOCK" flow enable "${PORT_VDEV0%%,*}" >/dev/null
fi
[ -n "${BENCH_FLOW_UDP:-}" ] && "$ROOT/bin/lcpctl" --socket "$SOCK" set flow timeouts udp "$BENCH_FLOW_UDP" >/dev/null
IFS=, read -ra routes <<<"$ROUTES"
for r in "${routes[@]}"; do
    in_ns ip route replace "${r%%=*}" via "172.16.${r##*=}.2" "${RT[@]}"
done
if [ "${BENCH_NEW_FLOWS:-0}" -gt 0 ]; then
    in_ns ip addr add 172.16.2.1/24 dev lcp2
    in_ns ip link set lcp2 up
    in_ns ip route replace 10.251.0.0/16 via 172.16.0.2 "${RT[@]}"
    [ -n "${BENCH_TABLE:-}" ] && in_ns ip route replace 172.16.2.0/24 dev lcp2 "${RT[@]}"
    ip netns exec "$SRCNS" taskset -c "$OTHER_CPU" python3 "$ROOT/perf/scripts/newflows.py" src0 \
        "$(cat "/sys/class/net/lcpnf$$/address")" "$BENCH_NEW_FLOWS" &
    newflows=$!
fi

# BENCH_CHURN=R: R route changes per second while traffic flows, from 2 s after start: replaces
# of the routes that carry the traffic (same next hop) and adds/deletes of 1000 other /24s.
# Errors and runtime are cleared when churn starts, so with BENCH_STATS_OUT any packet the churn
# made lcpd punt or drop shows there.
if [ "${BENCH_CHURN:-0}" -gt 0 ]; then
    sleep 2
    "$ROOT/bin/lcpctl" --socket "$SOCK" clear errors >/dev/null
    "$ROOT/bin/lcpctl" --socket "$SOCK" clear runtime >/dev/null
    CHURN_CPU=${BENCH_CONTROL_CPU:-$DUT_CPU}
    taskset -c "$CHURN_CPU" python3 - "$BENCH_CHURN" "$ROUTES" <<'PY' | taskset -c "$CHURN_CPU" ip netns exec "$NS" ip -force -batch - &
import sys, time
rate, routes = int(sys.argv[1]), [r.split("=") for r in sys.argv[2].split(",")]
tick, i, t0 = 0.01, 0, time.time()
per_tick = max(1, int(rate * tick))
while True:
    for _ in range(per_tick):
        k = i % 4
        if k == 0:
            p, port = routes[(i // 4) % len(routes)]
            print(f"route replace {p} via 172.16.{port}.2")
        else:
            n = (i // 4) % 1000
            print(f"route {'add' if (i // 4000) % 2 == 0 else 'del'} 100.{64 + n // 256}.{n % 256}.0/24 via 172.16.{n % 2}.2")
        i += 1
    sys.stdout.flush()
    t0 += tick
    time.sleep(max(0, t0 - time.time()))
PY
    churn=$!
fi
# BENCH_STATS_OUT=<file>: lcpd's errors, interfaces, runtime, latency, memory and FIB summary, rewritten
# every 2 s while it runs (the harness stops the DUT's whole process group at once, so there is
# no "at exit").
if [ -n "${BENCH_STATS_OUT:-}" ]; then
    # lcpctl is a .NET process: keep it off the worker's CPU when there is a control CPU
    [ -n "${BENCH_CONTROL_CPU:-}" ] && taskset -pc "$BENCH_CONTROL_CPU" $$ >/dev/null
    while sleep 2; do
        { echo "# errors"; "$ROOT/bin/lcpctl" --socket "$SOCK" --json show errors
          echo "# interfaces"; "$ROOT/bin/lcpctl" --socket "$SOCK" --json show interfaces
          echo "# runtime"; "$ROOT/bin/lcpctl" --socket "$SOCK" --json show runtime
          echo "# latency"; "$ROOT/bin/lcpctl" --socket "$SOCK" --json show latency
          echo "# memory"; "$ROOT/bin/lcpctl" --socket "$SOCK" --json show memory
          echo "# fib"; "$ROOT/bin/lcpctl" --socket "$SOCK" --json show ip fib summary
          echo "# flows"; "$ROOT/bin/lcpctl" --socket "$SOCK" --json show flow summary; } > "$BENCH_STATS_OUT.tmp" 2>&1 \
            && mv "$BENCH_STATS_OUT.tmp" "$BENCH_STATS_OUT"
    done &
    stats=$!
fi
wait "$pid"
