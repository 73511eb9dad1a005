// Device-side helpers shared by the CudaBackend's own kernels
// (cuda_elementwise.cu, cuda_norm_rope.cu): packed bf16 vectors for 4/16-byte
// loads and stores, grid sizing for grid-stride loops, a block-wide fp32 sum.
// Included only by .cu files. Stateless; any thread.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

// A sub-namespace, so these inline names never collide with the helpers of
// the attention / LoRA kernels (cuda_batched_util.cuh).
namespace loraserve::cuda::kernel_util {

using Bf16 = __nv_bfloat16;

// N consecutive bf16 values, aligned to their size so a load or store of one
// pack is a single 2N-byte memory instruction (N = 8: 16 bytes, LDG.128).
template <int N>
struct alignas(2 * N) Bf16Pack {
  Bf16 v[N];
};

template <int N>
__device__ __forceinline__ Bf16Pack<N> LoadPack(const Bf16* p) {
  return *reinterpret_cast<const Bf16Pack<N>*>(p);
}

template <int N>
__device__ __forceinline__ void StorePack(Bf16* p, const Bf16Pack<N>& pack) {
  *reinterpret_cast<Bf16Pack<N>*>(p) = pack;
}

// bf16 rounding of every result: round to nearest even (as FloatToBf16).
__device__ __forceinline__ Bf16 ToBf16(float f) { return __float2bfloat16_rn(f); }
__device__ __forceinline__ float ToF32(Bf16 h) { return __bfloat162float(h); }

// Index of this thread in a 1-D grid and the grid's thread count, in 64 bits
// (blockIdx.x * blockDim.x overflows 32 bits on large grids).
__device__ __forceinline__ int64_t GlobalThreadIndex() {
  return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ int64_t GridThreads() {
  return static_cast<int64_t>(gridDim.x) * blockDim.x;
}

inline bool IsAligned(const void* p, size_t alignment) {
  return reinterpret_cast<uintptr_t>(p) % alignment == 0;
}

// Blocks for a grid-stride loop over `items` with `threads` per block:
// enough to cover every item once, at most kMaxGridBlocks (the loop does the
// rest), at least 1. gridDim.x may go to 2^31-1; 2^20 blocks keep every SM
// busy with little tail while bounding the launch.
inline constexpr int64_t kMaxGridBlocks = int64_t{1} << 20;
inline unsigned GridBlocks(int64_t items, int threads) {
  int64_t blocks = (items + threads - 1) / threads;
  if (blocks < 1) blocks = 1;
  if (blocks > kMaxGridBlocks) blocks = kMaxGridBlocks;
  return static_cast<unsigned>(blocks);
}

// Sum of `v` over the block, returned to thread 0 (other threads get partial
// values). blockDim.x must be a multiple of 32 and at most 1024; `scratch`
// is __shared__ float[32]. Contains __syncthreads: every thread of the block
// must call it. Callers that call it again must __syncthreads() in between
// (after thread 0 has consumed the result).
__device__ __forceinline__ float BlockSumToThread0(float v, float* scratch) {
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  const unsigned lane = threadIdx.x & 31u;
  const unsigned warp = threadIdx.x >> 5;
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  if (warp == 0) {
    const unsigned num_warps = blockDim.x >> 5;
    v = lane < num_warps ? scratch[lane] : 0.0f;
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  }
  return v;
}

}  // namespace loraserve::cuda::kernel_util
