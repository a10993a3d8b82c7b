#!/usr/bin/env bash
# The steps of Dockerfile.dpdk, kept here so they can run (and be tested) without a Docker engine.
#   image.sh build <src> <dest>   build stage: packages, ./build.sh, copy the published apps to <dest>
#   image.sh runtime              run stage: DPDK runtime libraries and tools
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
