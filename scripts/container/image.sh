#!/usr/bin/env bash
# The steps of Dockerfile.dpdk, kept here so they can run (and be tested) without a Docker engine.
#   image.sh build <src> <dest>   build stage: packages, ./build.sh, copy the published apps to <dest>
#   image.sh runtime              run stage: DPDK runtime libraries and tools
set -euo pipefail

RUNTIME_PACKAGES=(dpdk iproute2 ethtool procps)

apt_install() {
    export DEBIAN_FRONTEND=noninteractive
    local missing=()
    for p in "$@"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p"); done
    [ ${#missing[@]} -eq 0 ] && return 0
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
    # Image layers drop the package lists; a host running this script (the test) keeps them.
    [ "${LCP_IMAGE_CLEAN_APT:-0}" = 1 ] && rm -rf /var/lib/apt/lists/*
    return 0
}

case "${1:-}" in
    build)
        src=${2:?source folder}; dest=${3:?destination folder}
        apt_install ca-certificates make
        (cd "$src" && ./build.sh)
        mkdir -p "$dest"
        cp -a "$src/out" "$src/bin" "$dest/"   # bin/ holds build.sh's launchers (GC settings)
        ;;
    runtime)
        apt_install "${RUNTIME_PACKAGES[@]}"
        ;;
    *)
        echo "usage: image.sh build <src> <dest> | runtime" >&2
        exit 2
        ;;
esac
