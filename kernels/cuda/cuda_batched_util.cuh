// Device helpers shared by the batched-metadata kernels (paged attention,
// write-KV, multi-adapter LoRA): exact bf16 widening of 16-byte packs,
// bounds- and alignment-checked loads of 8 bf16, warp reductions, and the
// mapping of a CTA to a tile of rows of one group (sequence / adapter
// segment) when only the device knows the group boundaries.
// Included only by the .cu files of those kernels. Stateless; any thread.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

namespace loraserve::cuda::batched_internal {

using Bf16 = __nv_bfloat16;

__device__ __forceinline__ bool Aligned16(const void* p) {
  return (reinterpret_cast<uintptr_t>(p) & 15u) == 0;
}

// bf16 -> fp32 is exact: the bf16 bits are the upper half of the fp32.
__device__ __forceinline__ float Bf16BitsLo(uint32_t w) { return __uint_as_float(w << 16); }
__device__ __forceinline__ float Bf16BitsHi(uint32_t w) { return __uint_as_float(w & 0xffff0000u); }

// The 8 bf16 of a 16-byte pack, widened to fp32 in memory order.
__device__ __forceinline__ void Unpack8(const uint4& u, float f[8]) {
  f[0] = Bf16BitsLo(u.x);
  f[1] = Bf16BitsHi(u.x);
  f[2] = Bf16BitsLo(u.y);
  f[3] = Bf16BitsHi(u.y);
  f[4] = Bf16BitsLo(u.z);
  f[5] = Bf16BitsHi(u.z);
  f[6] = Bf16BitsLo(u.w);
  f[7] = Bf16BitsHi(u.w);
}

__device__ __forceinline__ float LoadBf16(const Bf16* p) {
  return __bfloat162float(__ldg(p));
}

// f[e] = p[e] for e < min(valid, 8), 0 beyond. One 16-byte read-only load
// when p is 16-byte aligned and 8 elements are valid, scalar loads otherwise.
// p must be 2-byte aligned.
__device__ __forceinline__ void Load8(const Bf16* p, int64_t valid, float f[8]) {
  if (valid >= 8 && Aligned16(p)) {
    Unpack8(__ldg(reinterpret_cast<const uint4*>(p)), f);
    return;
  }
#pragma unroll
  for (int e = 0; e < 8; ++e) f[e] = e < valid ? LoadBf16(p + e) : 0.0f;
}

__device__ __forceinline__ float Dot8(const float a[8], const float b[8], float acc) {
#pragma unroll
  for (int e = 0; e < 8; ++e) acc = fmaf(a[e], b[e], acc);
  return acc;
}

__device__ __forceinline__ float WarpSum(float v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

__device__ __forceinline__ float WarpMax(float v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) {
    v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
  }
  return v;
}

// starts[0..n] nondecreasing (query_start / seg_starts). Returns the largest
// g in [0, n] with starts[g] <= t, or -1 when t < starts[0]. Row t belongs to
// group g when 0 <= g < n (then starts[g] <= t < starts[g + 1]; empty groups
// are skipped because the LAST such g is taken).
__device__ __forceinline__ int32_t GroupOfRow(const int32_t* starts, int32_t n, int64_t t) {
  int32_t lo = 0, hi = n + 1;  // upper_bound: number of starts[] <= t
  while (lo < hi) {
    const int32_t mid = (lo + hi) >> 1;
    if (starts[mid] <= t) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo - 1;
}

// Rows [begin, end) of group `group`: the work of one CTA. Empty when begin >= end.
struct RowTile {
  int32_t group = 0;
  int64_t begin = 0;
  int64_t end = 0;
};

// Tiles of at most `tile_rows` rows that never cross a group boundary, without
// knowing the groups on the host. The grid has num_main_tiles =
// ceil(num_rows / tile_rows) "main" blocks plus one "head" block per group:
//  - main block b covers [b*tile_rows, (b+1)*tile_rows) clipped to the group
//    that holds row b*tile_rows (nothing if no group holds it);
//  - head block num_main_tiles + g covers group g's rows below the first
//    multiple of tile_rows at or after its start (nothing if it starts on one).
// Every row of every group lands in exactly one tile. With tile_rows == 1 the
// head blocks are all empty and need not be launched.
__device__ __forceinline__ RowTile TileOfBlock(int64_t block, int64_t num_main_tiles,
                                               int32_t tile_rows, const int32_t* starts,
                                               int32_t num_groups, int64_t num_rows) {
  RowTile tile;
  if (block < num_main_tiles) {
    const int64_t r0 = block * tile_rows;
    const int32_t g = GroupOfRow(starts, num_groups, r0);
    if (g < 0 || g >= num_groups) return tile;
    tile.group = g;
    tile.begin = r0;
    tile.end = min(min(r0 + tile_rows, static_cast<int64_t>(starts[g + 1])), num_rows);
    return tile;
  }
  const int64_t g64 = block - num_main_tiles;
  if (g64 >= num_groups) return tile;
  const int32_t g = static_cast<int32_t>(g64);
  const int64_t start = max(static_cast<int64_t>(starts[g]), int64_t{0});
  if (start % tile_rows == 0) return tile;
  tile.group = g;
  tile.begin = start;
  tile.end = min(min(static_cast<int64_t>(starts[g + 1]), num_rows),
                 (start / tile_rows + 1) * tile_rows);
  return tile;
}

}  // namespace loraserve::cuda::batched_internal
