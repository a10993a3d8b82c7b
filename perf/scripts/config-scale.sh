#!/usr/bin/env bash
# Scale figures of the declarative config layer (issue 12): a document of PAIRS veth pairs over
# NS namespaces (two addresses per end), ROUTES routes and ARPS static ARP entries applied to a
# running lcpd; then the same document again (a no-op), the document with one route changed,
# and idle with everything managed (memory per item, GC, the workers' loop gap, drift checks).
# usage: perf/scripts/config-scale.sh            (PAIRS=500 NS=20 ROUTES=5000 ARPS=5000 IDLE=20)
set -euo pipefail
ROOT=$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)
PAIRS=${PAIRS:-500} NS=${NS:-20} ROUTES=${ROUTES:-5000} ARPS=${ARPS:-5000} IDLE=${IDLE:-20}
ID=$$ P=cs$$ SOCK=/run/lcpcfg-$$.sock MIRNS=lcpcfg-m$$ DIR=$(mktemp -d)
pid=
cleanup() {
    set +e
    [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    for i in $(seq 0 $((NS - 1))); do ip netns del "$P-$i" 2>/dev/null; done
    ip netns del "$MIRNS" 2>/dev/null
    ip link del "cfp$ID" 2>/dev/null
    rm -rf "$DIR" "$SOCK"
}
trap cleanup EXIT
ctl() { "$ROOT/bin/lcpctl" --socket "$SOCK" "$@"; }
ms() { local t=${EPOCHREALTIME//[.,]/}; echo $((t / 1000)); } # no process: a python start would add ~25 ms
rss_kb() { awk '/VmRSS/ { print $2 }' "/proc/$pid/status"; }

python3 "$ROOT/perf/scripts/mkconfig.py" "$P" "$PAIRS" "$NS" "$ROUTES" "$ARPS" > "$DIR/doc.json"
python3 - "$DIR/doc.json" "$DIR/doc1.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
d["linux_config"]["routes"][0]["metric"] = 77
json.dump(d, open(sys.argv[2], "w"))
PY
ip netns add "$MIRNS"
ip link add "cfp$ID" type veth peer name "cfq$ID"
ip link set "cfp$ID" up; ip link set "cfq$ID" up
"$ROOT/bin/lcpd" --no-huge -m 1024 --no-pci --file-prefix "lcpcfg$ID" --lcores 0@0,1@1 --vdev "net_af_packet0,iface=cfp$ID" -- \
    --api-socket "$SOCK" --fib-routes 131072 --fib6-routes 65536 --fib-tbl8 4096 --netns "$MIRNS" --pair net_af_packet0=lcp0 \
    --config-state-dir "$DIR/state" > "$DIR/lcpd.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do ctl show version >/dev/null 2>&1 && break; sleep 0.2; done
sleep 2
ctl clear runtime > /dev/null
sleep "$IDLE"
gap0=$(ctl --json show runtime | python3 -c "import json,sys; print(max(w['max_loop_gap_us'] for w in json.load(sys.stdin)))")
echo "before any config: worker loop gap max $gap0 us over $IDLE s idle"
rss0=$(rss_kb)
items=$((PAIRS * 2 + ROUTES + ARPS))
derived=$((PAIRS * 2 * 3))
echo "document: $PAIRS veth pairs in $NS namespaces, 2 addresses per end, $ROUTES routes, $ARPS ARP entries ($items items, $derived derived; $(wc -c < "$DIR/doc.json") bytes)"

t0=$(ms); ctl --json config update -f "$DIR/doc.json" > "$DIR/r1.json"; t1=$(ms)
[ -n "${DEBUG:-}" ] && ctl config status | head -5
ops=$(python3 -c "import json,sys; r=json.load(open('$DIR/r1.json')); print(sum(1 for o in r['ops'] if o['result']=='ok'), r['outcome'])")
configured=$(ctl --json config status | python3 -c "import json,sys; s=json.load(sys.stdin); print(sum(1 for x in s if x['state']=='CONFIGURED'), len(s))")
echo "apply:               $((t1 - t0)) ms  (operations made, outcome: $ops; CONFIGURED/keys: $configured)"
linux_routes=$(for i in $(seq 0 $((NS - 1))); do ip -n "$P-$i" route show proto 200; done | wc -l)
linux_arps=$(for i in $(seq 0 $((NS - 1))); do ip -n "$P-$i" neigh show nud permanent; done | wc -l)
echo "  in Linux: $linux_routes routes of proto 200, $linux_arps permanent neighbours"

t0=$(ms); ctl config update -f "$DIR/doc.json" > "$DIR/r2.txt"; t1=$(ms)
echo "same document again: $((t1 - t0)) ms  ($(head -1 "$DIR/r2.txt"))"
t0=$(ms); ctl config update -f "$DIR/doc1.json" > "$DIR/r3.txt"; t1=$(ms)
echo "one route changed:   $((t1 - t0)) ms  ($(head -1 "$DIR/r3.txt"))"
# One item changed, REPS times each through lcpctl (a new process per command, as an operator
# runs it) and through REST on the API socket; each change is a different metric, so every one
# is a real delete + create of the route in Linux. Median and worst, end to end.
REPS=${REPS:-15}
one() { printf '{"linux_config":{"routes":[{"outgoing_interface":"sa0","dst_network":"10.0.0.0/24","gw_addr":"100.64.0.2","metric":%d}]}}' "$1" > "$DIR/one.json"; }
# The first request of a kind runs cold code in lcpd (JIT): shown apart.
stats() {
    local all first; all=$(cat); first=$(head -1 <<< "$all")
    sort -n <<< "$all" | awk -v first="$first" -v all="$(tr '\n' ' ' <<< "$all")" \
        '{ v[NR] = $1 } END { printf "median %d ms, worst %d ms, first %d ms (%d runs: %s)", v[int((NR + 1) / 2)], v[NR], first, NR, all }'
}
for i in $(seq 1 "$REPS"); do
    one $((100 + i)); sleep 0.5
    t0=$(ms); ctl config update -f "$DIR/one.json" > "$DIR/r4.txt"; t1=$(ms)
    echo $((t1 - t0))
done > "$DIR/t-lcpctl.txt"
echo "one-item update, lcpctl: $(stats < "$DIR/t-lcpctl.txt")  ($(head -1 "$DIR/r4.txt"))"
for i in $(seq 1 "$REPS"); do
    one $((200 + i)); sleep 0.5
    t0=$(ms); curl -sS --fail-with-body --unix-socket "$SOCK" -X POST --data-binary @"$DIR/one.json" http://lcpd/api/v1/config > "$DIR/r5.json"; t1=$(ms)
    echo $((t1 - t0))
done > "$DIR/t-rest.txt"
echo "one-item update, REST:   $(stats < "$DIR/t-rest.txt")  ($(python3 -c "import json; r=json.load(open('$DIR/r5.json')); print(r['outcome'], len(r['ops']), 'ops')"))"
ctl --json config history --details > "$DIR/hist.json"
python3 - "$DIR/hist.json" <<'PY'
import json, sys
for t in json.load(open(sys.argv[1]))[-4:]:
    phases = " ".join(f"{k} {v}" for k, v in t.get("phases_ms", {}).items())
    print(f"  txn {t['seq']}: {t['kind']} {t['outcome']}, {t['executed']} op(s), {t['ms']} ms inside lcpd ({phases})")
PY

ctl clear runtime > /dev/null
gc0=$(ctl --json show memory | python3 -c "import json,sys; m=json.load(sys.stdin); print(m.get('gen0_collections', m.get('gc_gen0', '?')), m.get('gen2_collections', m.get('gc_gen2', '?')))")
sleep "$IDLE"
gc1=$(ctl --json show memory | python3 -c "import json,sys; m=json.load(sys.stdin); print(m.get('gen0_collections', m.get('gc_gen0', '?')), m.get('gen2_collections', m.get('gc_gen2', '?')))")
rss1=$(rss_kb)
gap=$(ctl --json show runtime | python3 -c "import json,sys; print(max(w['max_loop_gap_us'] for w in json.load(sys.stdin)))")
echo "idle $IDLE s, everything managed: RSS $((rss0 / 1024)) -> $((rss1 / 1024)) MiB ($(( (rss1 - rss0) * 1024 / (items + derived) )) bytes per key), GC gen0/gen2 $gc0 -> $gc1, worker loop gap max $gap us"

t0=$(ms); ctl config delete config/linux/ > /dev/null; t1=$(ms)
echo "delete everything:   $((t1 - t0)) ms"
