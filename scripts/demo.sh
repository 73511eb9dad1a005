#!/usr/bin/env bash
# Installs dependencies (apt), builds, and runs the loraserve server on the
# small default model (tests/data/tiny-llama). The README's first command.
# Extra arguments go to the server, e.g. scripts/demo.sh --device=cpu
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -G Ninja -DLORASERVE_BUILD_TESTS=OFF -DLORASERVE_BUILD_BENCH=OFF
cmake --build build -j "${JOBS:-$(nproc)}" --target loraserve
exec build/server/loraserve "$@"
