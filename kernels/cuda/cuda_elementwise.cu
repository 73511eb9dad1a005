// Kernels and launchers of kernels/cuda/cuda_elementwise.h. Every kernel is a
// grid-stride loop over 64-bit item indices, templated on the pack width V
// (8: 16-byte accesses, 1: scalar fallback).
#include "kernels/cuda/cuda_elementwise.h"

#include "absl/strings/str_cat.h"
#include "common/cuda/cuda_status.h"
#include "kernels/cuda/cuda_kernel_util.cuh"

namespace loraserve::cuda {
namespace {

using namespace kernel_util;  // NOLINT(build/namespaces): this file's own helpers

constexpr int kThreads = 256;
constexpr int kVec = 8;  // bf16 per 16-byte access

// ---------------------------------------------------------------- gather
template <int V>
__global__ void GatherRowsKernel(const Bf16* __restrict__ src, int64_t src_rows, int64_t width,
                                 const int32_t* __restrict__ indices, int64_t num_indices,
                                 Bf16* __restrict__ dst) {
  const int64_t packs_per_row = width / V;
  const int64_t total = num_indices * packs_per_row;
  for (int64_t item = GlobalThreadIndex(); item < total; item += GridThreads()) {
    const int64_t i = item / packs_per_row;
    const int64_t col = (item - i * packs_per_row) * V;
    const int64_t row = indices[i];
    Bf16Pack<V> pack;
    if (row >= 0 && row < src_rows) {
      pack = LoadPack<V>(src + row * width + col);
    } else {
#pragma unroll
      for (int j = 0; j < V; ++j) pack.v[j] = __ushort_as_bfloat16(0x7fc0);  // quiet NaN
    }
    StorePack<V>(dst + i * width + col, pack);
  }
}

// ------------------------------------------------------------ silu * mul
template <int V>
__global__ void SiluAndMulKernel(const Bf16* __restrict__ gate_up, int64_t rows,
                                 int64_t intermediate, Bf16* __restrict__ out) {
  const int64_t packs_per_row = intermediate / V;
  const int64_t total = rows * packs_per_row;
  for (int64_t item = GlobalThreadIndex(); item < total; item += GridThreads()) {
    const int64_t r = item / packs_per_row;
    const int64_t col = (item - r * packs_per_row) * V;
    const Bf16* g_ptr = gate_up + r * 2 * intermediate + col;
    const Bf16Pack<V> g = LoadPack<V>(g_ptr);
    const Bf16Pack<V> u = LoadPack<V>(g_ptr + intermediate);
    Bf16Pack<V> o;
#pragma unroll
    for (int j = 0; j < V; ++j) {
      const float x = ToF32(g.v[j]);
      o.v[j] = ToBf16(x / (1.0f + expf(-x)) * ToF32(u.v[j]));
    }
    StorePack<V>(out + r * intermediate + col, o);
  }
}

// ---------------------------------------------------------- residual add
// Packs cover [0, n / V * V); the at most V - 1 tail elements are done by the
// first threads of the grid.
template <int V>
__global__ void ResidualAddKernel(Bf16* residual, const Bf16* delta, int64_t n) {
  const int64_t num_packs = n / V;
  for (int64_t p = GlobalThreadIndex(); p < num_packs; p += GridThreads()) {
    Bf16Pack<V> r = LoadPack<V>(residual + p * V);
    const Bf16Pack<V> d = LoadPack<V>(delta + p * V);
#pragma unroll
    for (int j = 0; j < V; ++j) r.v[j] = ToBf16(ToF32(r.v[j]) + ToF32(d.v[j]));
    StorePack<V>(residual + p * V, r);
  }
  const int64_t tail = num_packs * V + GlobalThreadIndex();
  if (tail < n) residual[tail] = ToBf16(ToF32(residual[tail]) + ToF32(delta[tail]));
}

// -------------------------------------------------------- bias broadcast
template <int V>
__global__ void BroadcastBiasKernel(const Bf16* __restrict__ bias, int64_t m, int64_t n, bool add,
                                    Bf16* __restrict__ y) {
  const int64_t packs_per_row = n / V;
  const int64_t total = m * packs_per_row;
  for (int64_t item = GlobalThreadIndex(); item < total; item += GridThreads()) {
    const int64_t i = item / packs_per_row;
    const int64_t col = (item - i * packs_per_row) * V;
    Bf16Pack<V> b = LoadPack<V>(bias + col);
    if (add) {
      const Bf16Pack<V> cur = LoadPack<V>(y + i * n + col);
#pragma unroll
      for (int j = 0; j < V; ++j) b.v[j] = ToBf16(ToF32(cur.v[j]) + ToF32(b.v[j]));
    }
    StorePack<V>(y + i * n + col, b);
  }
}

// (v, i) becomes the better of itself and (v2, i2): the larger value, equal
// values to the lower index; i < 0 marks "no candidate" (all NaN so far) and
// always loses. A total order, so any reduction order gives the same answer.
__device__ __forceinline__ void KeepBetter(float& v, int& i, float v2, int i2) {
  if (i2 < 0) return;
  if (i < 0 || v2 > v || (v2 == v && i2 < i)) {
    v = v2;
    i = i2;
  }
}

__device__ __forceinline__ void WarpKeepBetter(float& v, int& i) {
  for (int off = 16; off > 0; off >>= 1) {
    const float v2 = __shfl_xor_sync(0xffffffffu, v, off);
    const int i2 = __shfl_xor_sync(0xffffffffu, i, off);
    KeepBetter(v, i, v2, i2);
  }
}

constexpr int kArgMaxThreads = 256;

// One block per row: each thread scans a strided slice (ascending, strict >,
// so it keeps its first maximum), then warp and block reductions.
__global__ void __launch_bounds__(kArgMaxThreads)
    ArgMaxRowsKernel(const float* __restrict__ logits, int64_t vocab, int32_t* __restrict__ out) {
  const float* x = logits + static_cast<int64_t>(blockIdx.x) * vocab;
  float v = 0.0f;
  int idx = -1;
  for (int64_t j = threadIdx.x; j < vocab; j += kArgMaxThreads) {
    const float xj = x[j];
    if (xj != xj) continue;  // NaN never wins
    if (idx < 0 || xj > v) {
      v = xj;
      idx = static_cast<int>(j);
    }
  }
  WarpKeepBetter(v, idx);
  __shared__ float warp_v[kArgMaxThreads / 32];
  __shared__ int warp_i[kArgMaxThreads / 32];
  const int warp = static_cast<int>(threadIdx.x) / 32;
  const int lane = static_cast<int>(threadIdx.x) % 32;
  if (lane == 0) {
    warp_v[warp] = v;
    warp_i[warp] = idx;
  }
  __syncthreads();
  if (warp == 0) {
    v = lane < kArgMaxThreads / 32 ? warp_v[lane] : 0.0f;
    idx = lane < kArgMaxThreads / 32 ? warp_i[lane] : -1;
    WarpKeepBetter(v, idx);
    if (lane == 0) out[blockIdx.x] = idx < 0 ? 0 : idx;
  }
}

}  // namespace

absl::Status LaunchGatherRows(const void* src, int64_t src_rows, int64_t width,
                              const int32_t* indices, int64_t num_indices, void* dst,
                              cudaStream_t stream) {
  if (num_indices <= 0 || width <= 0) return absl::OkStatus();
  const auto* s = static_cast<const Bf16*>(src);
  auto* d = static_cast<Bf16*>(dst);
  if (width % kVec == 0 && IsAligned(src, 16) && IsAligned(dst, 16)) {
    const int64_t items = num_indices * (width / kVec);
    GatherRowsKernel<kVec><<<GridBlocks(items, kThreads), kThreads, 0, stream>>>(
        s, src_rows, width, indices, num_indices, d);
  } else {
    const int64_t items = num_indices * width;
    GatherRowsKernel<1><<<GridBlocks(items, kThreads), kThreads, 0, stream>>>(
        s, src_rows, width, indices, num_indices, d);
  }
  RETURN_IF_CUDA_ERROR(cudaGetLastError());
  return absl::OkStatus();
}

absl::Status LaunchSiluAndMul(const void* gate_up, int64_t rows, int64_t intermediate, void* out,
                              cudaStream_t stream) {
  if (rows <= 0 || intermediate <= 0) return absl::OkStatus();
  const auto* gu = static_cast<const Bf16*>(gate_up);
  auto* o = static_cast<Bf16*>(out);
  if (intermediate % kVec == 0 && IsAligned(gate_up, 16) && IsAligned(out, 16)) {
    const int64_t items = rows * (intermediate / kVec);
    SiluAndMulKernel<kVec>
        <<<GridBlocks(items, kThreads), kThreads, 0, stream>>>(gu, rows, intermediate, o);
  } else {
    const int64_t items = rows * intermediate;
    SiluAndMulKernel<1>
        <<<GridBlocks(items, kThreads), kThreads, 0, stream>>>(gu, rows, intermediate, o);
  }
  RETURN_IF_CUDA_ERROR(cudaGetLastError());
  return absl::OkStatus();
}

absl::Status LaunchResidualAdd(void* residual, const void* delta, int64_t n, cudaStream_t stream) {
  if (n <= 0) return absl::OkStatus();
  auto* r = static_cast<Bf16*>(residual);
  const auto* d = static_cast<const Bf16*>(delta);
  if (IsAligned(residual, 16) && IsAligned(delta, 16)) {
    // One thread per pack; a block (256 threads) always covers the <= 7 tail elements.
    const int64_t items = n / kVec;
    ResidualAddKernel<kVec><<<GridBlocks(items, kThreads), kThreads, 0, stream>>>(r, d, n);
  } else {
    ResidualAddKernel<1><<<GridBlocks(n, kThreads), kThreads, 0, stream>>>(r, d, n);
  }
  RETURN_IF_CUDA_ERROR(cudaGetLastError());
  return absl::OkStatus();
}

absl::Status LaunchBroadcastBias(const void* bias, int64_t m, int64_t n, bool add, void* y,
                                 cudaStream_t stream) {
  if (m <= 0 || n <= 0) return absl::OkStatus();
  const auto* b = static_cast<const Bf16*>(bias);
  auto* out = static_cast<Bf16*>(y);
  if (n % kVec == 0 && IsAligned(bias, 16) && IsAligned(y, 16)) {
    const int64_t items = m * (n / kVec);
    BroadcastBiasKernel<kVec>
        <<<GridBlocks(items, kThreads), kThreads, 0, stream>>>(b, m, n, add, out);
  } else {
    BroadcastBiasKernel<1><<<GridBlocks(m * n, kThreads), kThreads, 0, stream>>>(b, m, n, add, out);
  }
  RETURN_IF_CUDA_ERROR(cudaGetLastError());
  return absl::OkStatus();
}

absl::Status ProbeKernelImage(int device_major, int device_minor) {
  cudaFuncAttributes attributes;
  const cudaError_t err = cudaFuncGetAttributes(&attributes, ResidualAddKernel<1>);
  if (err == cudaSuccess) return absl::OkStatus();
  (void)cudaGetLastError();  // not sticky: clear it so later launch checks stay clean
  return absl::FailedPreconditionError(
      absl::StrCat("this binary has no device code for the GPU's compute capability ", device_major,
                   ".", device_minor, " (", cudaGetErrorName(err),
                   "); rebuild with CMAKE_CUDA_ARCHITECTURES including it"));
}

absl::Status LaunchArgMaxRows(const float* logits, int64_t rows, int64_t vocab, int32_t* out,
                              cudaStream_t stream) {
  if (rows <= 0 || vocab <= 0) return absl::OkStatus();
  if (rows > 0x7fffffff) {
    return absl::InvalidArgumentError(absl::StrCat("ArgMaxRows: rows=", rows, " exceeds the grid"));
  }
  ArgMaxRowsKernel<<<static_cast<unsigned>(rows), kArgMaxThreads, 0, stream>>>(logits, vocab, out);
  RETURN_IF_CUDA_ERROR(cudaGetLastError());
  return absl::OkStatus();
}

}  // namespace loraserve::cuda
