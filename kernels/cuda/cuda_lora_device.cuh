// Device helpers shared by the CUDA LoRA kernels (kernels/cuda/cuda_lora_*.cu):
// the CTA work lookup of the SGMV kernels, the column range of a slice in y,
// the one-rounding add of a fp32 sum into
// bf16 y (the epilogue every expand kernel uses, so all of them round y the
// same way), and raw 8 x bf16 loads for tiles staged in shared memory as bf16.
// Included only by those .cu files. Stateless; any thread.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/cuda/cuda_batched_util.cuh"
#include "kernels/cuda/cuda_lora_internal.h"

namespace loraserve::cuda::lora_internal {

// The work of one SGMV CTA (FFMA and tensor-core kernels): the token tile
// that blockIdx.x names (TileOfBlock over tiles of `tile_rows` tokens) and
// slice `s` of that tile's segment, at its clamped rank.
struct SgmvWork {
  batched_internal::RowTile tile;
  LoraSlice slice;
  int32_t rank = 0;  // ClampRank(slice.rank, a.max_rank)
  int32_t nt = 0;    // tokens in the tile
};

// False when the CTA has nothing to do: an empty tile or a rank-0 slice. The
// answer depends on blockIdx.x and `s` only.
__device__ __forceinline__ bool FindSgmvWork(const LoraKernelArgs& a, int64_t num_main_tiles,
                                             int tile_rows, int32_t s, SgmvWork* w) {
  w->tile = batched_internal::TileOfBlock(blockIdx.x, num_main_tiles, tile_rows, a.seg_starts,
                                          a.num_segments, a.num_tokens);
  if (w->tile.begin >= w->tile.end) return false;
  w->slice = a.slices[static_cast<int64_t>(w->tile.group) * a.num_slices + s];
  w->rank = ClampRank(w->slice.rank, a.max_rank);
  w->nt = static_cast<int32_t>(w->tile.end - w->tile.begin);
  return w->rank > 0;
}

// cols.offsets[s] without a dynamically indexed copy of the parameter struct
// in local memory.
__device__ __forceinline__ int64_t ColumnOffset(const LoraColumnArgs& cols, int32_t s) {
  int64_t off = cols.offsets[0];
#pragma unroll
  for (int k = 1; k <= kMaxLoraSlices; ++k) off = s == k ? cols.offsets[k] : off;
  return off;
}

// Packs bf16(float(word's two bf16) + acc * scale) back into a word.
__device__ __forceinline__ uint32_t AddPair(uint32_t w, float acc_lo, float acc_hi, float scale) {
  const __nv_bfloat162 packed =
      __floats2bfloat162_rn(batched_internal::Bf16BitsLo(w) + acc_lo * scale,
                            batched_internal::Bf16BitsHi(w) + acc_hi * scale);
  return static_cast<uint32_t>(__bfloat16_as_ushort(packed.x)) |
         (static_cast<uint32_t>(__bfloat16_as_ushort(packed.y)) << 16);
}

// y[e] = bf16(float(y[e]) + acc[e] * scale) for e < min(valid, N), one
// rounding per element; a single vector access when aligned and full.
template <int N>
__device__ __forceinline__ void AddToY(__nv_bfloat16* y /* [>= min(valid, N)] */, int64_t valid,
                                       const float (&acc)[N], float scale) {
  static_assert(N == 4 || N == 8, "4 or 8 columns");
  if (valid >= N && (reinterpret_cast<uintptr_t>(y) % (2 * N)) == 0) {
    if constexpr (N == 8) {
      uint4 u = *reinterpret_cast<const uint4*>(y);
      u.x = AddPair(u.x, acc[0], acc[1], scale);
      u.y = AddPair(u.y, acc[2], acc[3], scale);
      u.z = AddPair(u.z, acc[4], acc[5], scale);
      u.w = AddPair(u.w, acc[6], acc[7], scale);
      *reinterpret_cast<uint4*>(y) = u;
    } else {
      uint2 u = *reinterpret_cast<const uint2*>(y);
      u.x = AddPair(u.x, acc[0], acc[1], scale);
      u.y = AddPair(u.y, acc[2], acc[3], scale);
      *reinterpret_cast<uint2*>(y) = u;
    }
    return;
  }
#pragma unroll
  for (int e = 0; e < N; ++e) {
    if (e < valid) y[e] = __float2bfloat16_rn(__bfloat162float(y[e]) + acc[e] * scale);
  }
}

// The 8 bf16 p[0..7] as one 16-byte pack (memory order), 0 past `valid`.
// One 16-byte read-only load when p is 16-byte aligned and 8 are valid,
// 2-byte loads otherwise. p must be 2-byte aligned.
__device__ __forceinline__ uint4 LoadRaw8(const __nv_bfloat16* p /* [>= min(valid, 8)] */,
                                          int64_t valid) {
  if (valid >= 8 && batched_internal::Aligned16(p)) return __ldg(reinterpret_cast<const uint4*>(p));
  const auto* h = reinterpret_cast<const unsigned short*>(p);
  uint32_t w[4];
#pragma unroll
  for (int e = 0; e < 4; ++e) {
    const uint32_t lo = 2 * e < valid ? __ldg(h + 2 * e) : 0u;
    const uint32_t hi = 2 * e + 1 < valid ? __ldg(h + 2 * e + 1) : 0u;
    w[e] = lo | (hi << 16);
  }
  return make_uint4(w[0], w[1], w[2], w[3]);
}

}  // namespace loraserve::cuda::lora_internal
