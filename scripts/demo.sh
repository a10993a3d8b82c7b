#!/usr/bin/env bash
# LinuxCp demo: two hosts in their own namespaces, wired by veth pairs to two net_af_packet
# ports that lcpd owns; lcpd mirrors the ports into a router namespace where Linux has the
# addresses and routes. Pings cross the router through the dataplane (punt + x-connect).
# Everything it creates carries a unique suffix and is removed on exit, Ctrl-C included.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."
[ "$(id -u)" = 0 ] || { echo "demo: needs root (namespaces, veths, DPDK)" >&2; exit 1; }

ID=${LCP_DEMO_ID:-$$}
NS_DP=lcpdemo-dp-$ID      # where lcpd runs and owns the ports
NS_RT=lcpdemo-rt-$ID      # the router: Linux with the mirrors
NS_A=lcpdemo-a-$ID        # host A
NS_B=lcpdemo-b-$ID        # host B
SOCK=/run/lcpdemo-$ID.sock
LOG=/tmp/lcpdemo-$ID.log
LCPD_PID=

cleanup() {
    set +e
    if [ -n "$LCPD_PID" ] && kill -0 "$LCPD_PID" 2>/dev/null; then
        kill -TERM "$LCPD_PID"; for _ in $(seq 50); do kill -0 "$LCPD_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$LCPD_PID" 2>/dev/null
    fi
    for ns in "$NS_A" "$NS_B" "$NS_DP" "$NS_RT"; do ip netns del "$ns" 2>/dev/null; done
    rm -f "$SOCK"
    rm -rf "/var/run/dpdk/lcpdemo$ID"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

step "topology: $NS_A <-veth-> [$NS_DP: lcpd] <-veth-> $NS_B, mirrors in $NS_RT"
for ns in "$NS_DP" "$NS_RT" "$NS_A" "$NS_B"; do ip netns add "$ns"; done
ip link add dp0 netns "$NS_DP" type veth peer name h0 netns "$NS_A"
ip link add dp1 netns "$NS_DP" type veth peer name h1 netns "$NS_B"
for i in 0 1; do
    # The kernel of the dataplane namespace must not answer on the ports (as with a NIC bound to DPDK).
    in_ns "$NS_DP" sysctl -qw "net.ipv6.conf.dp$i.disable_ipv6=1"
    in_ns "$NS_DP" ip link set "dp$i" up
done
in_ns "$NS_A" ip addr add 10.200.1.2/24 dev h0; in_ns "$NS_A" ip -6 addr add 2001:db8:1::2/64 dev h0 nodad
in_ns "$NS_A" ip link set h0 up; in_ns "$NS_A" ip link set lo up
in_ns "$NS_A" ip route add default via 10.200.1.1; in_ns "$NS_A" ip -6 route add default via 2001:db8:1::1
in_ns "$NS_B" ip addr add 10.200.2.2/24 dev h1; in_ns "$NS_B" ip -6 addr add 2001:db8:2::2/64 dev h1 nodad
in_ns "$NS_B" ip link set h1 up; in_ns "$NS_B" ip link set lo up
in_ns "$NS_B" ip route add default via 10.200.2.1; in_ns "$NS_B" ip -6 route add default via 2001:db8:2::1

step "start lcpd (EAL: no hugepages, two af_packet ports; mirrors lcp0/lcp1 in $NS_RT)"
LCORES=${LCP_DEMO_LCORES:-0@0,1@$(( $(nproc) > 1 ? 1 : 0 ))}
ip netns exec "$NS_DP" bin/lcpd --no-huge -m 1024 --file-prefix "lcpdemo$ID" --no-pci --lcores "$LCORES" \
    --vdev net_af_packet0,iface=dp0 --vdev net_af_packet1,iface=dp1 \
    -- --fib-routes 131072 --fib6-routes 65536 --fib-tbl8 4096 --netns "$NS_RT" --pair net_af_packet0=lcp0 --pair net_af_packet1=lcp1 --api-socket "$SOCK" \
    >"$LOG" 2>&1 &
LCPD_PID=$!
for _ in $(seq 300); do [ -S "$SOCK" ] && break; kill -0 "$LCPD_PID" 2>/dev/null || { cat "$LOG"; exit 1; }; sleep 0.1; done
[ -S "$SOCK" ] || { cat "$LOG"; echo "demo: lcpd did not come up" >&2; exit 1; }

step "Linux configures the router on the mirrors"
in_ns "$NS_RT" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
in_ns "$NS_RT" ip link set lo up
in_ns "$NS_RT" ip addr add 10.200.1.1/24 dev lcp0; in_ns "$NS_RT" ip -6 addr add 2001:db8:1::1/64 dev lcp0 nodad
in_ns "$NS_RT" ip addr add 10.200.2.1/24 dev lcp1; in_ns "$NS_RT" ip -6 addr add 2001:db8:2::1/64 dev lcp1 nodad
in_ns "$NS_RT" ip link set lcp0 up; in_ns "$NS_RT" ip link set lcp1 up
in_ns "$NS_RT" ip -br addr

[ -n "${LCP_DEMO_PAUSE:-}" ] && { echo "paused ${LCP_DEMO_PAUSE}s: ID=$ID socket=$SOCK"; sleep "$LCP_DEMO_PAUSE"; }
step "host A pings the router, then host B across it (IPv4 and IPv6)"
in_ns "$NS_A" ping -c 3 -i 0.2 -W 2 10.200.1.1
in_ns "$NS_A" ping -c 3 -i 0.2 -W 2 10.200.2.2
in_ns "$NS_A" ping -6 -c 3 -i 0.2 -W 2 2001:db8:2::2

step "lcpctl show lcp"
bin/lcpctl --socket "$SOCK" show lcp
step "lcpctl show interfaces"
bin/lcpctl --socket "$SOCK" show interfaces
step "lcpctl show errors"
bin/lcpctl --socket "$SOCK" show errors
step "done; tearing down"
