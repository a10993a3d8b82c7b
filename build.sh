#!/usr/bin/env bash
# LinuxCp build entry point.
#   ./build.sh            install missing system packages, build native/, check the bindings,
#                         build the solution (Release), publish bin/lcpd and bin/lcpctl
#   ./build.sh test       build, then run every test (unit + integration; needs root)
#   ./build.sh demo       build if needed, then run the two-host demo topology (needs root)
#   ./build.sh bindings   regenerate interop/Generated from the installed headers
#   ./build.sh deps | native | clean
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")"
ROOT=$PWD
CONF=Release
export DOTNET_NOLOGO=1 DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

# System packages the build, the tests and the demo use.
APT_PACKAGES=(dpdk dpdk-dev libdpdk-dev pkg-config gcc make libc6-dev python3 python3-clang-14 libclang1-14
              iproute2 ethtool iputils-ping iputils-arping procps tshark git curl iptables etcd-server etcd-client
              python3-matplotlib afl++ bird2 python3-scapy clang zlib1g-dev)

log() { printf '[build] %s\n' "$*" >&2; }
die() { printf 'build.sh: %s\n' "$*" >&2; exit 1; }

deps() {
    local missing=()
    for p in "${APT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if ((${#missing[@]})); then
        [ "$(id -u)" = 0 ] || die "missing packages (${missing[*]}); run as root or install them"
        log "installing: ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >/dev/null
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
    command -v dotnet >/dev/null || die "the .NET SDK (dotnet, 10.0) is required and not on PATH"
}

native() {
    make -s -C native
}

gen_bindings() { /usr/bin/python3 interop/Generator/gen_bindings.py "$ROOT" "$1"; }

check_bindings() {
    local tmp rc=0; tmp=$(mktemp -d)
    gen_bindings "$tmp"
    if ! diff -r -q "$tmp" interop/Generated -x '.*' >/dev/null; then
        diff -r -u interop/Generated "$tmp" -x '.*' | head -40 >&2 || true
        rc=1
    fi
    rm -rf "$tmp"
    ((rc == 0)) || die "interop/Generated differs from what the installed DPDK headers generate; run ./build.sh bindings and commit"
}

dotnet_build() {
    dotnet build LinuxCp.sln -c "$CONF" -v quiet -nologo -clp:NoSummary -p:WarningLevel=4 >/tmp/lcp-build.log 2>&1 \
        || { grep -E "error|warn" /tmp/lcp-build.log | sort -u | head -40 >&2; die "dotnet build failed (full log: /tmp/lcp-build.log)"; }
}

publish() {
    local app rid
    case "$(uname -m)" in x86_64) rid=linux-x64 ;; aarch64) rid=linux-arm64 ;; *) die "no .NET runtime identifier for $(uname -m)" ;; esac
    # lcpd runs on the shared runtime, its control-plane assemblies precompiled (ReadyToRun; the
    # dataplane's are left to the JIT, see its project file): a start went from ~1,050 compiled
    # methods and ~1.5 s of JIT to ~900 and ~0.65 s (docs/performance.md). lcpctl is compiled ahead of time
    # (PublishAot in its project: clang links it), so a command starts in milliseconds.
    for app in "LinuxCp.Daemon:lcpd:-r $rid --no-self-contained -p:PublishReadyToRun=true" "LinuxCp.Cli:lcpctl:-r $rid"; do
        local proj=${app%%:*} rest=${app#*:}
        local name=${rest%%:*} opts=${rest#*:}
        rm -rf "out/$name"
        # shellcheck disable=SC2086 # opts holds separate words
        dotnet publish "src/$proj" -c "$CONF" -o "out/$name" $opts -v quiet -nologo -clp:NoSummary >/tmp/lcp-publish.log 2>&1 \
            || { cat /tmp/lcp-publish.log >&2; die "publish of $name failed"; }
    done
    mkdir -p bin
    cat > bin/lcpd <<'SH'
#!/bin/sh
# lcpd launcher. A 256 MiB gen0 budget keeps garbage collections (which pause the managed
# lcores) rare; override by exporting DOTNET_GCgen0size yourself.
: "${DOTNET_GCgen0size:=0x10000000}"
export DOTNET_GCgen0size
exec "$(dirname "$(readlink -f "$0")")/../out/lcpd/lcpd" "$@"
SH
    # A link, not a script: a shell and its readlink/dirname would cost more than lcpctl's own start.
    rm -f bin/lcpctl
    ln -s ../out/lcpctl/lcpctl bin/lcpctl
    chmod +x bin/lcpd
}

build() {
    deps
    native
    check_bindings
    dotnet_build
    publish
}

case "${1:-build}" in
    build) build ;;
    deps) deps ;;
    native) native ;;
    bindings) native; gen_bindings interop/Generated; log "regenerated interop/Generated" ;;
    test)
        build
        shift || true
        [ "$(id -u)" = 0 ] || die "the integration tests need root (namespaces, veths, DPDK)"
        perf/scripts/check-alloc.sh
        # The native classifier (rte_acl) must agree with the reference matcher on random rules and packets.
        acl=$(dotnet run -c "$CONF" --no-build --project perf/LinuxCp.Benchmarks -- acl-check 200 2>&1) \
            || { printf '%s\n' "$acl" | tail -20 >&2; die "acl-check: rte_acl and the reference classifier disagree"; }
        printf '%s\n' "$acl" | grep '^acl-check'
        out=$(mktemp)
        set +e
        dotnet test LinuxCp.sln -c "$CONF" --no-build -nologo -v quiet --logger "console;verbosity=normal" "$@" 2>&1 | tee "$out"
        rc=${PIPESTATUS[0]}
        set -e
        # One closing line over every test assembly: "tests: N passed, N failed, N skipped".
        # The container image's steps (Dockerfile.dpdk -> scripts/container/image.sh), run
        # without a Docker engine: a test of its own, after the others (it builds a copy).
        img=0
        if [ "${LCP_SKIP_IMAGE_TEST:-0}" != 1 ]; then
            bash scripts/container/test-image.sh || img=1
        fi
        # Each failed test again, name and message without the stack, where a log's tail shows them.
        awk '/^ +Failed [A-Za-z_]/ { if (!n++) print "failed tests:"; on = 1; k = 0 }
             on && /^ +Stack Trace:/ { on = 0 }
             on && k++ < 40 { print }' "$out"
        awk -v img="$img" -v skip="${LCP_SKIP_IMAGE_TEST:-0}" \
            '/^ +Passed: +[0-9]+$/ { p += $2 } /^ +Failed: +[0-9]+$/ { f += $2 } /^ +Skipped: +[0-9]+$/ { s += $2 }
             END { if (skip == 1) s++; else if (img == 0) p++; else f++
                   printf "tests: %d passed, %d failed, %d skipped\n", p, f, s }' "$out"
        rm -f "$out"
        [ "$rc" = 0 ] && [ "$img" = 0 ] || exit 1
        exit 0
        ;;
    demo) build; exec bash scripts/demo.sh ;;
    clean) make -s -C native clean; rm -rf bin out; find . -name bin -o -name obj -type d -prune -exec rm -rf {} + ;;
    *) die "unknown target '$1' (build, test, demo, bindings, deps, native, clean)" ;;
esac
