// Kernels and launchers of kernels/cuda/cuda_norm_rope.h: one block per row
// (RmsNorm) or per token (Rope), grid-stride over rows / tokens.
#include "kernels/cuda/cuda_norm_rope.h"

#include "common/cuda/cuda_status.h"
#include "kernels/cuda/cuda_kernel_util.cuh"
#include "kernels/op_args.h"

namespace loraserve::cuda {
namespace {

using namespace kernel_util;  // NOLINT(build/namespaces): this file's own helpers

constexpr int kVec = 8;  // bf16 per 16-byte access

// Threads for `work` items per block: a multiple of 32 in [32, max_threads].
int BlockThreads(int64_t work, int max_threads) {
  int64_t t = (work + 31) / 32 * 32;
  if (t < 32) t = 32;
  if (t > max_threads) t = max_threads;
  return static_cast<int>(t);
}

// ---------------------------------------------------------------- rmsnorm
// Block per row. x and out may alias (no __restrict__): each element is read
// and written by the same thread, and every read of the first pass precedes
// the barrier inside the reduction.
template <int V>
__global__ void RmsNormKernel(const Bf16* x, const Bf16* __restrict__ weight, int64_t rows,
                              int64_t hidden, float eps, Bf16* out) {
  __shared__ float warp_sums[32];
  __shared__ float inv_rms_shared;
  const int64_t step = static_cast<int64_t>(blockDim.x) * V;
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const Bf16* xr = x + r * hidden;
    Bf16* orow = out + r * hidden;
    float sum_sq = 0.0f;
    for (int64_t c = static_cast<int64_t>(threadIdx.x) * V; c < hidden; c += step) {
      const Bf16Pack<V> p = LoadPack<V>(xr + c);
#pragma unroll
      for (int j = 0; j < V; ++j) {
        const float v = ToF32(p.v[j]);
        sum_sq = fmaf(v, v, sum_sq);
      }
    }
    sum_sq = BlockSumToThread0(sum_sq, warp_sums);
    if (threadIdx.x == 0) {
      const float variance = sum_sq / static_cast<float>(hidden);
      inv_rms_shared = 1.0f / sqrtf(variance + eps);  // IEEE sqrt and division
    }
    __syncthreads();
    const float inv_rms = inv_rms_shared;
    for (int64_t c = static_cast<int64_t>(threadIdx.x) * V; c < hidden; c += step) {
      const Bf16Pack<V> p = LoadPack<V>(xr + c);
      const Bf16Pack<V> w = LoadPack<V>(weight + c);
      Bf16Pack<V> o;
#pragma unroll
      for (int j = 0; j < V; ++j) o.v[j] = ToBf16(ToF32(w.v[j]) * (ToF32(p.v[j]) * inv_rms));
      StorePack<V>(orow + c, o);
    }
    __syncthreads();  // warp_sums and inv_rms_shared are reused by the next row
  }
}

// ------------------------------------------------------------------- rope
// Block per token: cos/sin of the token's half angles into shared memory,
// then every (head, i) pair of the q and k heads rotated by one thread.
__global__ void RopeKernel(Bf16* __restrict__ qkv, int64_t row_stride, int64_t num_tokens,
                           int32_t heads, int32_t half, const int32_t* __restrict__ positions,
                           const float* __restrict__ inv_freq) {
  __shared__ float cos_shared[kMaxHeadDim / 2];
  __shared__ float sin_shared[kMaxHeadDim / 2];
  const int32_t pairs = heads * half;
  for (int64_t t = blockIdx.x; t < num_tokens; t += gridDim.x) {
    const float pos = static_cast<float>(positions[t]);
    for (int32_t i = threadIdx.x; i < half; i += blockDim.x) {
      const float angle = __fmul_rn(pos, inv_freq[i]);  // the fp32 product, never fused
      sincosf(angle, &sin_shared[i], &cos_shared[i]);
    }
    __syncthreads();
    Bf16* row = qkv + t * row_stride;
    for (int32_t p = threadIdx.x; p < pairs; p += blockDim.x) {
      const int32_t h = p / half;
      const int32_t i = p - h * half;
      Bf16* xh = row + static_cast<int64_t>(h) * 2 * half;
      const float x1 = ToF32(xh[i]);
      const float x2 = ToF32(xh[i + half]);
      const float c = cos_shared[i];
      const float s = sin_shared[i];
      xh[i] = ToBf16(x1 * c - x2 * s);
      xh[i + half] = ToBf16(x2 * c + x1 * s);
    }
    __syncthreads();  // the next token overwrites cos/sin
  }
}

unsigned RowBlocks(int64_t rows) {
  return static_cast<unsigned>(rows < kMaxGridBlocks ? rows : kMaxGridBlocks);
}

}  // namespace

absl::Status LaunchRmsNorm(const void* x, const void* weight, int64_t rows, int64_t hidden,
                           float eps, void* out, cudaStream_t stream) {
  if (rows <= 0 || hidden <= 0) return absl::OkStatus();
  const auto* xs = static_cast<const Bf16*>(x);
  const auto* w = static_cast<const Bf16*>(weight);
  auto* o = static_cast<Bf16*>(out);
  if (hidden % kVec == 0 && IsAligned(x, 16) && IsAligned(weight, 16) && IsAligned(out, 16)) {
    const int threads = BlockThreads(hidden / kVec, 1024);
    RmsNormKernel<kVec><<<RowBlocks(rows), threads, 0, stream>>>(xs, w, rows, hidden, eps, o);
  } else {
    const int threads = BlockThreads(hidden, 1024);
    RmsNormKernel<1><<<RowBlocks(rows), threads, 0, stream>>>(xs, w, rows, hidden, eps, o);
  }
  RETURN_IF_CUDA_ERROR(cudaGetLastError());
  return absl::OkStatus();
}

absl::Status LaunchRope(void* qkv, int64_t row_stride, int64_t num_tokens, int32_t num_q_heads,
                        int32_t num_kv_heads, int32_t head_dim, const int32_t* positions,
                        const float* inv_freq, cudaStream_t stream) {
  const int32_t heads = num_q_heads + num_kv_heads;
  const int32_t half = head_dim / 2;
  if (num_tokens <= 0 || heads <= 0 || half <= 0) return absl::OkStatus();
  const int threads = BlockThreads(int64_t{heads} * half, 512);
  RopeKernel<<<RowBlocks(num_tokens), threads, 0, stream>>>(
      static_cast<Bf16*>(qkv), row_stride, num_tokens, heads, half, positions, inv_freq);
  RETURN_IF_CUDA_ERROR(cudaGetLastError());
  return absl::OkStatus();
}

}  // namespace loraserve::cuda
