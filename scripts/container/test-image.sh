#!/usr/bin/env bash
# Tests Dockerfile.dpdk's steps without a Docker engine: runs scripts/container/image.sh exactly
# as the two image stages do (build into a staging folder from a copy of the tracked sources,
# then the runtime packages), removes the sources, and runs the image's entrypoint (lcpd) and
# health check (lcpctl show version) from the staged layout only, on a net_null port with a
# mirror in a private namespace. Leaves nothing behind; kills only the lcpd it started.
set -euo pipefail
ROOT=$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)
ID=$$
TMP=$(mktemp -d /tmp/lcp-image-XXXXXX)
NS=lcpimg-$ID
SOCK=/run/lcpimg-$ID.sock
pid=
cleanup() {
    set +e
    [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    ip netns del "$NS" 2>/dev/null
    rm -rf "$TMP" "/var/run/dpdk/lcpimg$ID" "$SOCK"
}
trap cleanup EXIT
fail() { echo "test-image: FAIL: $*" >&2; [ -f "$TMP/lcpd.log" ] && cat "$TMP/lcpd.log" >&2; exit 1; }

echo "test-image: staging the tracked sources"
mkdir -p "$TMP/src"
git -C "$ROOT" ls-files -z | tar -C "$ROOT" --null -T - -cf - | tar -C "$TMP/src" -xf -

echo "test-image: build stage (image.sh build)"
"$ROOT/scripts/container/image.sh" build "$TMP/src" "$TMP/opt/linuxcp" > "$TMP/build.log" 2>&1 \
    || { tail -40 "$TMP/build.log" >&2; fail "image.sh build"; }
echo "test-image: runtime stage (image.sh runtime)"
"$ROOT/scripts/container/image.sh" runtime > "$TMP/runtime.log" 2>&1 || { cat "$TMP/runtime.log" >&2; fail "image.sh runtime"; }
rm -rf "$TMP/src"   # the image has no sources: the layout must stand alone

BIN=$TMP/opt/linuxcp/bin
[ -x "$BIN/lcpd" ] && [ -x "$BIN/lcpctl" ] || fail "the layout lacks bin/lcpd or bin/lcpctl"
"$BIN/lcpd" --help | grep -q "Usage: lcpd" || fail "lcpd --help"

echo "test-image: entrypoint (lcpd) and health check (lcpctl show version)"
ip netns add "$NS"
"$BIN/lcpd" --no-huge -m 512 --no-pci --file-prefix "lcpimg$ID" --lcores 0@0 --vdev net_null0 -- \
    --no-fib --idle-sleep-us 100 --netns "$NS" --pair net_null0=img0 --api-socket "$SOCK" > "$TMP/lcpd.log" 2>&1 &
pid=$!
for _ in $(seq 300); do [ -S "$SOCK" ] && break; kill -0 "$pid" 2>/dev/null || fail "lcpd exited"; sleep 0.1; done
LCPD_SOCKET=$SOCK "$BIN/lcpctl" show version > "$TMP/health.txt" || fail "health check (lcpctl show version)"
grep -q "^dpdk .*22.11" "$TMP/health.txt" || fail "unexpected health output: $(cat "$TMP/health.txt")"
ip netns exec "$NS" ip link show img0 > /dev/null || fail "mirror img0 missing in $NS"
kill -TERM "$pid"
rc=0; wait "$pid" || rc=$?
pid=
[ "$rc" = 0 ] || fail "lcpd exit code $rc after SIGTERM"
echo "test-image: PASS"
