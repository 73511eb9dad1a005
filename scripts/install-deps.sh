#!/usr/bin/env bash
# Installs everything loraserve needs to build and test, from Debian/Ubuntu apt
# packages only. Idempotent: when every package is already present it checks
# with dpkg and exits without touching the network.
#
# Usage: scripts/install-deps.sh            (as root, or as a user with sudo)
#        LORASERVE_EXTRA_PKGS="a b" scripts/install-deps.sh
set -euo pipefail

PKGS=(
  build-essential cmake ninja-build pkg-config git ccache python3 curl
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev
  prometheus-cpp-dev
  libcpp-httplib-dev
  nlohmann-json3-dev
  libopenblas-dev
  libgtest-dev libgmock-dev googletest
  libbenchmark-dev
  prometheus
)
# shellcheck disable=SC2206
PKGS+=(${LORASERVE_EXTRA_PKGS:-})

missing=()
for p in "${PKGS[@]}"; do
  # "install ok installed" is the only state that counts as present.
  if [[ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)" != "install ok installed" ]]; then
    missing+=("$p")
  fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-deps: all ${#PKGS[@]} packages present"
  exit 0
fi

SUDO=""
if [[ "$(id -u)" -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
  else
    echo "install-deps: not root and no sudo; cannot install: ${missing[*]}" >&2
    exit 1
  fi
fi

echo "install-deps: installing ${#missing[@]} packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# prometheus pulls in a daemon; we only want promtool, so never start services.
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
echo "install-deps: done"
