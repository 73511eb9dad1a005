// Multi-adapter LoRA kernels on the device, two tables.
//
// Decode: B tokens of U = B distinct adapters (one token each, one segment
// each) at rank r, on a Llama-7B shape (hidden 4096; fused q,k,v 3 x 4096;
// fused gate,up 2 x 11008). For LaunchLoraShrink and LaunchLoraExpand it
// reports the time per launch (cudaEvent over many launches, median of 5
// repetitions) and the achieved bandwidth, counting adapter rows read + x / v
// / y traffic, next to the device-to-device cudaMemcpy bandwidth (read +
// write) measured in the same run. Target: >= 70% of the copy at B = U = 64,
// r = 16. Adapter sets rotate so that at least 256 MiB of rows cycle through
// the L2.
//
// Prefill: G segments (adapters) x L tokens at rank r, in = out = 4096, one
// slice, with the FFMA SGMV kernels and the tensor-core SGMV kernels run
// explicitly (LaunchLoraShrinkWith / LaunchLoraExpandWith). Reports time,
// achieved TFLOP/s (2 x tokens x r x 4096 per op; the tensor-core expand's
// three MMAs per fragment are not counted) next to the H100 SXM dense bf16
// tensor peak, and GB/s (x + A + v, or v + B^T + y read and written) next to
// the copy. G x L = 4 x 512 is the long-prefill case; 16 x 128, 64 x 32 and
// 128 x 16 locate the crossover that kSgmvTcMinTokensPerSegment
// (kernels/cuda/cuda_lora_internal.h, 32 today) should sit at.
//
//   lora_kernels_bench [iterations=50]
//
// Exits 0 with a message when no CUDA device is visible.
#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/cuda/dtype_kernels.h"
#include "kernels/cuda/cuda_lora.h"
#include "kernels/cuda/cuda_lora_internal.h"
#include "kernels/op_args.h"

namespace loraserve {
namespace {

#define BENCH_CHECK(expr)                                                               \
  do {                                                                                  \
    const cudaError_t _err = (expr);                                                    \
    if (_err != cudaSuccess) {                                                          \
      std::fprintf(stderr, "CUDA error %s at %s:%d: %s\n", cudaGetErrorString(_err),    \
                   __FILE__, __LINE__, #expr);                                          \
      std::exit(1);                                                                     \
    }                                                                                   \
  } while (false)

#define BENCH_CHECK_STATUS(expr)                                                        \
  do {                                                                                  \
    const absl::Status _st = (expr);                                                    \
    if (!_st.ok()) {                                                                    \
      std::fprintf(stderr, "%s failed: %s\n", #expr, std::string(_st.message()).c_str()); \
      std::exit(1);                                                                     \
    }                                                                                   \
  } while (false)

// Deterministic pseudo-random bf16 in [-0.5, 0.5) (never zeros: zeros can run faster).
__global__ void FillKernel(__nv_bfloat16* p, int64_t n, uint32_t seed) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    uint32_t h = static_cast<uint32_t>(i) * 2654435761u ^ seed;
    h ^= h >> 15;
    h *= 2246822519u;
    h ^= h >> 13;
    p[i] = __float2bfloat16_rn(static_cast<float>(h & 0xffffu) / 65536.0f - 0.5f);
  }
}

void Fill(void* p, int64_t n, uint32_t seed) {
  FillKernel<<<1024, 256>>>(static_cast<__nv_bfloat16*>(p), n, seed);
  BENCH_CHECK(cudaGetLastError());
}

template <typename T>
T* DeviceAlloc(size_t n) {
  void* p = nullptr;
  BENCH_CHECK(cudaMalloc(&p, std::max<size_t>(n, 1) * sizeof(T)));
  return static_cast<T*>(p);
}

template <typename T>
T* Upload(const std::vector<T>& host) {
  T* d = DeviceAlloc<T>(host.size());
  BENCH_CHECK(cudaMemcpy(d, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice));
  return d;
}

// Median over 5 repetitions of the mean time of `iters` calls of fn, in ms.
template <typename Fn>
double TimeMs(int iters, Fn&& fn) {
  cudaEvent_t start, stop;
  BENCH_CHECK(cudaEventCreate(&start));
  BENCH_CHECK(cudaEventCreate(&stop));
  for (int i = 0; i < 3; ++i) fn(i);  // warm-up
  std::vector<double> reps;
  for (int rep = 0; rep < 5; ++rep) {
    BENCH_CHECK(cudaEventRecord(start));
    for (int i = 0; i < iters; ++i) fn(i);
    BENCH_CHECK(cudaEventRecord(stop));
    BENCH_CHECK(cudaEventSynchronize(stop));
    float ms = 0;
    BENCH_CHECK(cudaEventElapsedTime(&ms, start, stop));
    reps.push_back(ms / iters);
  }
  BENCH_CHECK(cudaEventDestroy(start));
  BENCH_CHECK(cudaEventDestroy(stop));
  std::sort(reps.begin(), reps.end());
  return reps[2];
}

double CopyBandwidthGBs(int iters) {
  const size_t bytes = size_t{1} << 30;
  void* a = DeviceAlloc<uint8_t>(bytes);
  void* b = DeviceAlloc<uint8_t>(bytes);
  BENCH_CHECK(cudaMemset(a, 1, bytes));
  const double ms = TimeMs(std::max(iters / 5, 4), [&](int) {
    BENCH_CHECK(cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice));
  });
  BENCH_CHECK(cudaFree(a));
  BENCH_CHECK(cudaFree(b));
  return 2.0 * bytes / (ms * 1e-3) / 1e9;  // read + write
}

struct Shape {
  const char* name;
  int64_t in;
  std::vector<int64_t> outs;
};

// One set of B adapters (one segment per token) with its own rows and tables.
struct AdapterSet {
  LoraSegments lora;
  std::vector<void*> allocations;
};

void RunShape(const Shape& shape, int32_t b, int32_t r, int iters, double copy_gbs) {
  const int32_t slices = static_cast<int32_t>(shape.outs.size());
  int64_t out_total = 0;
  for (int64_t o : shape.outs) out_total += o;
  // Rows of one set: per adapter and slice, r A rows then r B^T rows.
  const int64_t set_elems = int64_t{b} * r * (slices * shape.in + out_total);
  const int64_t set_bytes = set_elems * 2;
  const int64_t sets = std::min<int64_t>(64, std::max<int64_t>(1, (int64_t{256} << 20) / set_bytes + 1));
  auto* pool = DeviceAlloc<__nv_bfloat16>(static_cast<size_t>(set_elems * sets));
  Fill(pool, set_elems * sets, 1234);

  std::vector<int32_t> starts(b + 1);
  for (int32_t i = 0; i <= b; ++i) starts[i] = i;
  int32_t* d_starts = Upload(starts);
  std::vector<AdapterSet> adapter_sets(sets);
  for (int64_t k = 0; k < sets; ++k) {
    std::vector<int64_t> offsets;  // [adapter][slice]: r A offsets, then r B^T offsets
    int64_t off = k * set_bytes;
    for (int32_t u = 0; u < b; ++u) {
      for (int32_t s = 0; s < slices; ++s) {
        for (int32_t i = 0; i < r; ++i, off += shape.in * 2) offsets.push_back(off);
        for (int32_t i = 0; i < r; ++i, off += shape.outs[s] * 2) offsets.push_back(off);
      }
    }
    int64_t* d_offsets = Upload(offsets);
    std::vector<LoraSlice> table;
    for (int32_t u = 0; u < b; ++u) {
      for (int32_t s = 0; s < slices; ++s) {
        const int64_t base = (int64_t{u} * slices + s) * 2 * r;
        table.push_back(LoraSlice{r, 2.0f, d_offsets + base, d_offsets + base + r});
      }
    }
    LoraSlice* d_table = Upload(table);
    adapter_sets[k].lora = LoraSegments{pool, b, slices, d_starts, d_table, r};
    adapter_sets[k].allocations = {d_offsets, d_table};
  }

  auto* x = DeviceAlloc<__nv_bfloat16>(static_cast<size_t>(b * shape.in));
  auto* y = DeviceAlloc<__nv_bfloat16>(static_cast<size_t>(b * out_total));
  float* v = DeviceAlloc<float>(static_cast<size_t>(b * slices * r));
  Fill(x, b * shape.in, 7);
  Fill(y, b * out_total, 8);
  LoraSliceColumns cols;
  cols.num_slices = slices;
  for (int32_t s = 0; s < slices; ++s) cols.offsets[s + 1] = cols.offsets[s] + shape.outs[s];
  BENCH_CHECK_STATUS(cuda::LaunchLoraShrink(x, b, shape.in, adapter_sets[0].lora, v, nullptr));
  BENCH_CHECK(cudaDeviceSynchronize());

  const double shrink_ms = TimeMs(iters, [&](int i) {
    BENCH_CHECK_STATUS(
        cuda::LaunchLoraShrink(x, b, shape.in, adapter_sets[i % sets].lora, v, nullptr));
  });
  const double expand_ms = TimeMs(iters, [&](int i) {
    BENCH_CHECK_STATUS(cuda::LaunchLoraExpand(v, b, adapter_sets[i % sets].lora, cols, y,
                                              out_total, nullptr));
  });
  BENCH_CHECK(cudaDeviceSynchronize());

  const double v_bytes = 4.0 * b * slices * r;
  const double shrink_bytes = 2.0 * b * slices * r * shape.in + 2.0 * b * shape.in + v_bytes;
  const double expand_bytes = 2.0 * b * r * out_total + v_bytes + 2.0 * 2.0 * b * out_total;
  const double shrink_gbs = shrink_bytes / (shrink_ms * 1e-3) / 1e9;
  const double expand_gbs = expand_bytes / (expand_ms * 1e-3) / 1e9;
  std::printf("| %-7s | %4d | %3d | %9.2f | %7.0f | %4.0f%% | %9.2f | %7.0f | %4.0f%% |%s\n",
              shape.name, b, r, shrink_ms * 1e3, shrink_gbs, 100.0 * shrink_gbs / copy_gbs,
              expand_ms * 1e3, expand_gbs, 100.0 * expand_gbs / copy_gbs,
              b == 64 && r == 16 ? "  <- target >= 70%" : "");
  std::fflush(stdout);

  for (AdapterSet& set : adapter_sets) {
    for (void* p : set.allocations) BENCH_CHECK(cudaFree(p));
  }
  BENCH_CHECK(cudaFree(d_starts));
  BENCH_CHECK(cudaFree(pool));
  BENCH_CHECK(cudaFree(x));
  BENCH_CHECK(cudaFree(y));
  BENCH_CHECK(cudaFree(v));
}

// H100 SXM5 dense bf16 tensor-core peak (no sparsity), TFLOP/s; PCIe: 756.
constexpr double kH100DenseBf16Tflops = 989.4;

// One prefill shape: g segments of l tokens, each its own adapter at rank r,
// in = out = 4096, one slice; both SGMV kernels on the same inputs.
void RunPrefill(int32_t g, int32_t l, int32_t r, int iters, double copy_gbs) {
  constexpr int64_t kIn = 4096;
  constexpr int64_t kOut = 4096;
  const int64_t tokens = int64_t{g} * l;
  // Rows: per adapter, r A rows then r B^T rows, contiguous (16-byte aligned).
  const int64_t adapter_elems = int64_t{r} * (kIn + kOut);
  auto* pool = DeviceAlloc<__nv_bfloat16>(static_cast<size_t>(adapter_elems * g));
  Fill(pool, adapter_elems * g, 4321);
  std::vector<int64_t> offsets;  // [adapter]: r A offsets, then r B^T offsets
  for (int32_t u = 0; u < g; ++u) {
    int64_t off = u * adapter_elems * 2;
    for (int32_t i = 0; i < r; ++i, off += kIn * 2) offsets.push_back(off);
    for (int32_t i = 0; i < r; ++i, off += kOut * 2) offsets.push_back(off);
  }
  int64_t* d_offsets = Upload(offsets);
  std::vector<LoraSlice> table;
  for (int32_t u = 0; u < g; ++u) {
    table.push_back(LoraSlice{r, 2.0f, d_offsets + int64_t{u} * 2 * r,
                              d_offsets + int64_t{u} * 2 * r + r});
  }
  LoraSlice* d_table = Upload(table);
  std::vector<int32_t> starts(g + 1);
  for (int32_t i = 0; i <= g; ++i) starts[i] = i * l;
  int32_t* d_starts = Upload(starts);
  const LoraSegments lora{pool, g, 1, d_starts, d_table, r};
  LoraSliceColumns cols;
  cols.num_slices = 1;
  cols.offsets[1] = kOut;

  auto* x = DeviceAlloc<__nv_bfloat16>(static_cast<size_t>(tokens * kIn));
  auto* y = DeviceAlloc<__nv_bfloat16>(static_cast<size_t>(tokens * kOut));
  float* v = DeviceAlloc<float>(static_cast<size_t>(tokens * r));
  Fill(x, tokens * kIn, 11);
  Fill(y, tokens * kOut, 12);

  const double flop = 2.0 * tokens * r * kIn;  // same for shrink and expand (in == out)
  const double shrink_bytes = 2.0 * tokens * kIn + 2.0 * g * r * kIn + 4.0 * tokens * r;
  const double expand_bytes = 4.0 * tokens * r + 2.0 * g * r * kOut + 2.0 * 2.0 * tokens * kOut;
  using cuda::lora_internal::LoraKernel;
  struct Run {
    LoraKernel kernel;
    const char* name;
  };
  for (const Run& run :
       {Run{LoraKernel::kSgmv, "sgmv fp32"}, Run{LoraKernel::kSgmvTc, "sgmv tc"}}) {
    const LoraKernel kernel = run.kernel;  // captured by the timing lambdas
    const char* name = run.name;
    BENCH_CHECK_STATUS(
        cuda::lora_internal::LaunchLoraShrinkWith(kernel, x, tokens, kIn, lora, v, nullptr));
    BENCH_CHECK(cudaDeviceSynchronize());
    const double shrink_ms = TimeMs(iters, [&](int) {
      BENCH_CHECK_STATUS(
          cuda::lora_internal::LaunchLoraShrinkWith(kernel, x, tokens, kIn, lora, v, nullptr));
    });
    const double expand_ms = TimeMs(iters, [&](int) {
      BENCH_CHECK_STATUS(cuda::lora_internal::LaunchLoraExpandWith(kernel, v, tokens, lora, cols,
                                                                   y, kOut, nullptr));
    });
    BENCH_CHECK(cudaDeviceSynchronize());
    const double shrink_tflops = flop / (shrink_ms * 1e-3) / 1e12;
    const double expand_tflops = flop / (expand_ms * 1e-3) / 1e12;
    const double shrink_gbs = shrink_bytes / (shrink_ms * 1e-3) / 1e9;
    const double expand_gbs = expand_bytes / (expand_ms * 1e-3) / 1e9;
    std::printf(
        "| %3d x %-3d | %3d | %-9s | %8.2f | %6.1f | %5.1f%% | %4.0f%% | %8.2f | %6.1f | %5.1f%% | "
        "%4.0f%% |%s\n",
        g, l, r, name, shrink_ms * 1e3, shrink_tflops, 100.0 * shrink_tflops / kH100DenseBf16Tflops,
        100.0 * shrink_gbs / copy_gbs, expand_ms * 1e3, expand_tflops,
        100.0 * expand_tflops / kH100DenseBf16Tflops, 100.0 * expand_gbs / copy_gbs,
        g == 4 && l == 512 ? "  <- long prefill" : "");
    std::fflush(stdout);
  }

  BENCH_CHECK(cudaFree(d_offsets));
  BENCH_CHECK(cudaFree(d_table));
  BENCH_CHECK(cudaFree(d_starts));
  BENCH_CHECK(cudaFree(pool));
  BENCH_CHECK(cudaFree(x));
  BENCH_CHECK(cudaFree(y));
  BENCH_CHECK(cudaFree(v));
}

}  // namespace
}  // namespace loraserve

int main(int argc, char** argv) {
  using namespace loraserve;  // NOLINT
  if (cuda::VisibleDeviceCount() == 0) {
    std::printf("lora_kernels_bench: no CUDA device visible; nothing measured.\n");
    return 0;
  }
  const int iters = argc > 1 ? std::max(1, std::atoi(argv[1])) : 50;
  cudaDeviceProp prop;
  BENCH_CHECK(cudaGetDeviceProperties(&prop, 0));
  const double copy_gbs = CopyBandwidthGBs(iters);
  std::printf("device: %s (%d SMs); device-to-device cudaMemcpy: %.0f GB/s (read + write)\n\n",
              prop.name, prop.multiProcessorCount, copy_gbs);
  std::printf("| shape   | B=U  | r   | shrink us | GB/s    | copy%% | expand us | GB/s    | copy%% |\n");
  std::printf("|---------|------|-----|-----------|---------|-------|-----------|---------|-------|\n");
  const Shape shapes[] = {{"qkv", 4096, {4096, 4096, 4096}}, {"gate_up", 4096, {11008, 11008}}};
  for (const Shape& shape : shapes) {
    for (int32_t r : {8, 16, 64}) {
      for (int32_t b : {1, 8, 32, 64, 128}) RunShape(shape, b, r, iters, copy_gbs);
    }
  }

  std::printf("\nPrefill, in = out = 4096, one slice; TFLOP/s and %% of the H100 SXM dense bf16 "
              "peak (%.0f TFLOP/s), %% of the copy's GB/s\n\n",
              kH100DenseBf16Tflops);
  std::printf("| G x L     | r   | kernel    | shrink us | TFLOP/s | peak%% | copy%% | expand us "
              "| TFLOP/s | peak%% | copy%% |\n");
  std::printf("|-----------|-----|-----------|-----------|---------|-------|-------|-----------"
              "|---------|-------|-------|\n");
  for (int32_t r : {16, 64}) {
    for (auto [g, l] : {std::pair{4, 512}, std::pair{16, 128}, std::pair{64, 32},
                        std::pair{128, 16}}) {
      RunPrefill(g, l, r, iters, copy_gbs);
    }
  }
  return 0;
}
