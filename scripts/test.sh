#!/usr/bin/env bash
# Installs dependencies (apt), configures, builds and runs the whole test suite
# with ctest. This is the README's second command and exactly what .ci/run runs.
#
#   scripts/test.sh              release-with-debug-info build in build/
#   scripts/test.sh --sanitize   ASan + UBSan build in build-sanitize/
#   scripts/test.sh --no-cuda    CPU backend only (the CUDA objects are skipped)
# Environment: JOBS (default: nproc), CTEST_ARGS (extra ctest arguments).
set -euo pipefail
cd "$(dirname "$0")/.."

build_dir=build
cmake_args=()
for arg in "$@"; do
  case "$arg" in
    --sanitize) build_dir=build-sanitize; cmake_args+=(-DLORASERVE_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug) ;;
    --no-cuda) cmake_args+=(-DLORASERVE_CUDA=OFF) ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "test.sh: unknown argument '$arg' (try --help)" >&2; exit 2 ;;
  esac
done

bash scripts/install-deps.sh
jobs="${JOBS:-$(nproc)}"
echo "== configure ($build_dir)"
cmake -S . -B "$build_dir" -G Ninja -DLORASERVE_WERROR=ON "${cmake_args[@]}"
echo "== build ($jobs jobs)"
cmake --build "$build_dir" -j "$jobs"
echo "== test"
# ASan cannot run alongside the CUDA driver's address-space reservations;
# GPU tests skip themselves on machines without a device anyway.
ctest --test-dir "$build_dir" --output-on-failure --timeout 300 -j "$jobs" ${CTEST_ARGS:-}
