// Bulk dtype conversion throughput on the CPU (bytes/s read + written),
// printed next to a memcpy of the same bytes: the bandwidth this core allows.
#include <cstring>
#include <vector>

#include "benchmark/benchmark.h"
#include "common/dtype.h"

namespace loraserve {
namespace {

constexpr size_t kN = 1 << 22;  // 4 Mi elements

void BM_MemcpyF32(benchmark::State& state) {
  std::vector<float> src(kN, 1.5f), dst(kN);
  for (auto _ : state) {
    std::memcpy(dst.data(), src.data(), kN * 4);
    benchmark::DoNotOptimize(dst.data());
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * kN * 8);
}
BENCHMARK(BM_MemcpyF32);

void BM_Bf16ToF32(benchmark::State& state) {
  std::vector<uint16_t> src(kN, 0x3f80);
  std::vector<float> dst(kN);
  for (auto _ : state) {
    ConvertToF32(src.data(), DType::kBF16, dst.data(), kN);
    benchmark::DoNotOptimize(dst.data());
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * kN * 6);
}
BENCHMARK(BM_Bf16ToF32);

void BM_F32ToBf16(benchmark::State& state) {
  std::vector<float> src(kN, 1.25f);
  std::vector<uint16_t> dst(kN);
  for (auto _ : state) {
    ConvertFromF32(src.data(), dst.data(), DType::kBF16, kN);
    benchmark::DoNotOptimize(dst.data());
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * kN * 6);
}
BENCHMARK(BM_F32ToBf16);

}  // namespace
}  // namespace loraserve

BENCHMARK_MAIN();
