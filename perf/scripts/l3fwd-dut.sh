#!/usr/bin/env bash
# DPDK's l3fwd as a custom DUT of ../shared/bench/run-anchor.sh, started exactly as the
# harness's own l3fwd anchor (same binary, EAL and options, LPM lookup) but able to replay
# another pcap: BENCH_PCAP=<file> replaces the rx_pcap of both ports (sizes, IPv6: see
# perf/scripts/mkpcap.py). IPv4 rules come from the harness's ROUTES, IPv6 rules are l3fwd's
# defaults (2001:200:0:N::/64 -> port N). Run the harness's l3fwd anchor once first (it builds
# l3fwd under ../shared/bench/build).
set -euo pipefail
BENCH=${BENCH_DIR:-$(cd "$(dirname "$(readlink -f "$0")")/../../../shared/bench" && pwd)}
L3FWD=$BENCH/build/l3fwd/build/l3fwd
[ -x "$L3FWD" ] || { echo "l3fwd-dut: $L3FWD not built (run ../shared/bench/run-anchor.sh l3fwd once)" >&2; exit 1; }
TMP=$(mktemp -d /tmp/l3fwd-dut-XXXXXX)
trap 'rm -rf "$TMP"' EXIT
IFS=, read -ra routes <<<"$ROUTES"
for r in "${routes[@]}"; do echo "R${r%=*} ${r#*=}"; done > "$TMP/v4.cfg"
cp /usr/share/dpdk/examples/l3fwd/lpm_default_v6.cfg "$TMP/v6.cfg"
v0=$PORT_VDEV0 v1=$PORT_VDEV1
if [ -n "${BENCH_PCAP:-}" ]; then
    v0=$(sed -E "s|rx_pcap=[^,]+|rx_pcap=$BENCH_PCAP|" <<<"$v0")
    v1=$(sed -E "s|rx_pcap=[^,]+|rx_pcap=$BENCH_PCAP|" <<<"$v1")
fi
# shellcheck disable=SC2086
"$L3FWD" $DUT_EAL --vdev="$v0" --vdev="$v1" -- -p 0x3 -P --lookup=lpm --parse-ptype \
    --config='(0,0,0),(1,0,0)' --rule_ipv4="$TMP/v4.cfg" --rule_ipv6="$TMP/v6.cfg" \
    --eth-dest=0,"$GEN_MAC0" --eth-dest=1,"$GEN_MAC1" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid; rm -rf "$TMP"; exit 0' TERM INT
wait $pid
