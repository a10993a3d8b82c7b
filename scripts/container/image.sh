#!/usr/bin/env bash
# The steps of Dockerfile.dpdk, kept here so they can run (and be tested) without a Docker engine.
#   image.sh build <src> <dest>   build stage: packages, ./build.sh, copy the published apps to <dest>
#   image.sh runtime <dest>       run stage: DPDK runtime libraries + tools, lay out <dest>/bin
set -euo pipefail

RUNTIME_PACKAGES=(dpdk iproute2 ethtool procps)

apt_install() {
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "$@"
    rm -rf /var/lib/apt/lists/*
}

case "${1:-}" in
    build)
        src=${2:?source folder}; dest=${3:?destination folder}
        apt_install ca-certificates make
        (cd "$src" && ./build.sh)
        mkdir -p "$dest"
        cp -a "$src/out" "$dest/"
        ;;
    runtime)
        dest=${2:?destination folder}
        apt_install "${RUNTIME_PACKAGES[@]}"
        mkdir -p "$dest/bin"
        cat > "$dest/bin/lcpd" <<'SH'
#!/bin/sh
: "${DOTNET_GCgen0size:=0x10000000}"
export DOTNET_GCgen0size
exec "$(dirname "$(readlink -f "$0")")/../out/lcpd/lcpd" "$@"
SH
        cat > "$dest/bin/lcpctl" <<'SH'
#!/bin/sh
exec "$(dirname "$(readlink -f "$0")")/../out/lcpctl/lcpctl" "$@"
SH
        chmod +x "$dest/bin/lcpd" "$dest/bin/lcpctl"
        ;;
    *)
        echo "usage: image.sh build <src> <dest> | runtime <dest>" >&2
        exit 2
        ;;
esac
