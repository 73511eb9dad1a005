#!/usr/bin/env bash
# Builds the GPU tests, benchmarks and serving binaries HERE (Debian 12 with the
# CUDA toolkit, no GPU) and packs them, with every shared library they need
# except the CUDA driver and cuBLAS, into gpu-bundle.tar.xz at the repo root,
# for a lent GPU machine whose image has CUDA 13.0 but none of our Debian
# packages (gRPC, abseil, OpenBLAS, ...). The bundle carries Debian's own
# dynamic loader and glibc, so nothing of the GPU machine's userland is used
# but its driver (libcuda) and cuBLAS (its CUDA 13.0 toolkit).
#
#   scripts/gpu-bundle.sh                 build (build-gpu/, sm_90, Release) + pack
#   scripts/gpu-bundle.sh --pack-only     pack what build-gpu/ already has
#
# On the GPU machine (device tool: carry ["gpu-bundle.tar.xz"]):
#   bash scripts/gpu-run.sh               unpack, run every GPU test and benchmark,
#                                         write logs and a summary under $OUT
# The layout inside the bundle mirrors the build tree (bin wrappers at the
# same relative paths), so bench/run_suite.py --build-dir <bundle>/build works.
set -euo pipefail
cd "$(dirname "$0")/.."

build_dir=${BUILD_DIR:-build-gpu}
pack_only=0
for arg in "$@"; do
  case "$arg" in
    --pack-only) pack_only=1 ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "gpu-bundle.sh: unknown argument '$arg' (try --help)" >&2; exit 2 ;;
  esac
done

# What the GPU session runs: every test binary (CUDA ones test the kernels, the
# parametrized engine/model ones run on CUDA when a device exists) and the
# CUDA benchmarks + serving stack for the suites.
programs=(loraserve loraserve-cli loraserve-loadgen loraserve-make-model
          loraserve-make-adapters lora_kernels_bench forward_bench)

# No -Werror here: GCC 12 at -O3 raises known false positives inside libstdc++
# (free-nonheap-object, restrict); CI checks warnings at RelWithDebInfo.
if [[ $pack_only -eq 0 ]]; then
  bash scripts/install-deps.sh
  cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DLORASERVE_CUDA=ON \
        -DCMAKE_CUDA_ARCHITECTURES=90
  cmake --build "$build_dir" -j "${JOBS:-$(nproc)}"
fi

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
root="$stage/gpu-bundle"
mkdir -p "$root/lib" "$root/libexec" "$root/build"

# Every executable test binary plus the named programs, found in the build tree.
mapfile -t bins < <(
  find "$build_dir/tests" -maxdepth 1 -type f -name '*_test' -perm -u+x
  for p in "${programs[@]}"; do
    find "$build_dir" -type f -perm -u+x -name "$p" -not -path '*/CMakeFiles/*' 2>/dev/null
  done | sort -u)
[[ ${#bins[@]} -gt 0 ]] || { echo "gpu-bundle.sh: nothing built in $build_dir" >&2; exit 1; }

for b in "${bins[@]}"; do
  rel=${b#"$build_dir"/}
  real="$root/libexec/$rel"
  mkdir -p "$(dirname "$real")" "$(dirname "$root/build/$rel")"
  strip -o "$real" "$b"
  # A wrapper at the build-tree path runs the real binary under the bundled
  # loader; exec keeps the pid, so signals (SIGTERM drains) reach the server.
  up=$(dirname "$rel" | sed 's|[^/][^/]*|..|g')
  cat > "$root/build/$rel" <<EOF
#!/usr/bin/env bash
here=\$(cd "\$(dirname "\$0")" && pwd)
b=\$here/../$up
exec "\$b/lib/ld-linux-x86-64.so.2" --library-path "\$b/lib:\${LORASERVE_CUDA_LIBS:-}" \\
  "\$b/libexec/$rel" "\$@"
EOF
  chmod +x "$root/build/$rel"
  ldd "$b" | awk '/=>/ {print $3} /ld-linux/ {print $1}' >> "$stage/libs"
done

# Shared libraries: all but the driver and cuBLAS (taken from the GPU image).
sort -u "$stage/libs" | while read -r lib; do
  [[ -f "$lib" ]] || continue
  case "$(basename "$lib")" in
    libcuda.so*|libcublas.so*|libcublasLt.so*|linux-vdso*) continue ;;
  esac
  cp -L "$lib" "$root/lib/"
done
cp -L /lib64/ld-linux-x86-64.so.2 "$root/lib/ld-linux-x86-64.so.2"
# Line 2: where the tests look for tests/data (a compile-time path).
{ echo "${build_dir} @ $(git rev-parse --short HEAD) $(date -u +%FT%TZ)"; echo "$PWD/tests/data"; } \
  > "$root/BUILD_INFO"

tar -C "$stage" -cJf gpu-bundle.tar.xz gpu-bundle
echo "gpu-bundle.tar.xz: ${#bins[@]} programs, $(du -sh "$root/lib" | cut -f1) of libraries," \
     "$(du -h gpu-bundle.tar.xz | cut -f1) packed (the device tool carries at most 64 MiB)"
