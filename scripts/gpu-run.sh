#!/usr/bin/env bash
# Runs on a lent GPU machine, in the repo root, after the device tool carried
# gpu-bundle.tar.xz (made here by scripts/gpu-bundle.sh): unpacks it, runs
# every test binary (the CUDA ones compare each kernel with its CPU twin; the
# engine/model ones run on CUDA against the HF goldens) and the CUDA
# benchmarks, and writes logs, gtest XML and a summary under $OUT (default
# ./gpu-out). Prints the summary last, since the device tool returns the tail.
#
#   bash scripts/gpu-run.sh [--tests-only|--bench-only] [GTEST_FILTER]
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-$PWD/gpu-out}
mode=all
filter='*'
for arg in "$@"; do
  case "$arg" in
    --tests-only) mode=tests ;;
    --bench-only) mode=bench ;;
    *) filter=$arg ;;
  esac
done
mkdir -p "$out/logs"
[[ -f gpu-bundle.tar.xz ]] || { echo "gpu-run.sh: gpu-bundle.tar.xz not carried" >&2; exit 2; }
rm -rf /tmp/gpu-bundle && tar -C /tmp -xJf gpu-bundle.tar.xz
B=/tmp/gpu-bundle
# cuBLAS (and nothing else) from the GPU image's CUDA 13.0.
cuda_libs=/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib
py_cublas=$(python3 -c 'import nvidia.cublas, os; print(os.path.join(list(nvidia.cublas.__path__)[0], "lib"))' 2>/dev/null || true)
export LORASERVE_CUDA_LIBS="$cuda_libs${py_cublas:+:$py_cublas}"
# The tests find tests/data at the path it had where they were built.
data_path=$(sed -n 2p "$B/BUILD_INFO")
if [[ ! -e "$data_path" ]]; then
  mkdir -p "$(dirname "$data_path")" && ln -s "$PWD/tests/data" "$data_path"
fi
{ echo "bundle: $(head -1 "$B/BUILD_INFO")"; nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.mem --format=csv,noheader; } \
  | tee "$out/device.txt"

summary=$out/summary.txt
: > "$summary"
if [[ $mode != bench ]]; then
  # Every test binary except the one that needs the source-tree server path.
  for t in "$B"/build/tests/*_test; do
    name=$(basename "$t")
    [[ $name == server_e2e_stress_test ]] && continue
    echo "$t"
  done | xargs -P 8 -I{} bash -c '
    t={}; name=$(basename "$t")
    LORASERVE_TEST_DATA='"$PWD"'/tests/data timeout 300 "$t" --gtest_filter="'"$filter"'" \
      --gtest_output=xml:'"$out"'/logs/$name.xml > '"$out"'/logs/$name.log 2>&1
    rc=$?
    pass=$(grep -c "^\[       OK \]" '"$out"'/logs/$name.log)
    fail=$(grep -c "^\[  FAILED  \].*(" '"$out"'/logs/$name.log)
    skip=$(grep -c "^\[  SKIPPED \].*(" '"$out"'/logs/$name.log)
    printf "%-44s rc=%-3s ok=%-4s failed=%-3s skipped=%s\n" "$name" "$rc" "$pass" "$fail" "$skip"
  ' | sort >> "$summary"
fi
if [[ $mode != tests ]]; then
  # name|command: the log goes to logs/<name>.txt. forward_bench generates
  # the 7B weights on the device (--random-weights: nothing written to disk)
  # and runs once with decode graphs and once op by op.
  fb="bench/forward_bench --device=cuda --shape=llama-7b --random-weights --decode-batch=1,16,64 --adapters=0,1,64 --prompt=512 --decode-steps=100"
  for entry in "lora_kernels_bench|bench/cuda/lora_kernels_bench" \
               "forward_bench_graphs|$fb --graphs=on" \
               "forward_bench_eager|$fb --graphs=off"; do
    name=${entry%%|*}
    cmd=${entry#*|}
    bin=${cmd%% *}
    if [[ -x "$B/build/$bin" ]]; then
      # shellcheck disable=SC2086
      timeout 400 "$B/build/$bin" ${cmd#"$bin"} > "$out/logs/$name.txt" 2>&1
      echo "bench $name rc=$? (log: logs/$name.txt)" >> "$summary"
    else
      echo "bench $name: $bin not in the bundle" >> "$summary"
    fi
  done
fi
echo "== summary ($out)"
cat "$summary"
grep -h "^\[  FAILED  \]" "$out"/logs/*.log 2>/dev/null | sort -u | head -40
