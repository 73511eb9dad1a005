// Kernel and launcher of kernels/cuda/cuda_random.h.
#include "kernels/cuda/cuda_random.h"

#include "common/cuda/cuda_status.h"
#include "kernels/counter_random.h"
#include "kernels/cuda/cuda_kernel_util.cuh"

namespace loraserve::cuda {
namespace {

using namespace kernel_util;  // NOLINT(build/namespaces): this file's own helpers

constexpr int kThreads = 256;
constexpr int kVec = 8;  // bf16 per 16-byte store

// Packs of V elements cover [0, n / V * V); the at most V - 1 tail elements
// are written by the first threads of the grid.
template <int V>
__global__ void FillRandomKernel(Bf16* __restrict__ dst, int64_t n, uint64_t seed, float lo,
                                 float hi) {
  const int64_t num_packs = n / V;
  for (int64_t p = GlobalThreadIndex(); p < num_packs; p += GridThreads()) {
    Bf16Pack<V> pack;
#pragma unroll
    for (int j = 0; j < V; ++j) {
      pack.v[j] = ToBf16(CounterUniformIn(seed, static_cast<uint64_t>(p * V + j), lo, hi));
    }
    StorePack<V>(dst + p * V, pack);
  }
  const int64_t tail = num_packs * V + GlobalThreadIndex();
  if (tail < n) dst[tail] = ToBf16(CounterUniformIn(seed, static_cast<uint64_t>(tail), lo, hi));
}

}  // namespace

absl::Status LaunchFillRandom(void* dst, int64_t n, uint64_t seed, float lo, float hi,
                              cudaStream_t stream) {
  if (n <= 0) return absl::OkStatus();
  auto* d = static_cast<Bf16*>(dst);
  if (IsAligned(dst, 16)) {
    // One thread per pack; a block (256 threads) always covers the <= 7 tail elements.
    FillRandomKernel<kVec>
        <<<GridBlocks(n / kVec, kThreads), kThreads, 0, stream>>>(d, n, seed, lo, hi);
  } else {
    FillRandomKernel<1><<<GridBlocks(n, kThreads), kThreads, 0, stream>>>(d, n, seed, lo, hi);
  }
  RETURN_IF_CUDA_ERROR(cudaGetLastError());
  return absl::OkStatus();
}

}  // namespace loraserve::cuda
