// LoRA expand on CUDA (kernels/cuda/cuda_lora.h):
//   y[t, cols.offsets[s] + j] += scale_{g,s} * sum_{i<rank} v[t, s, i] * B^T_{g,s}[i, j]
// summed in fp32, y read once and rounded to bf16 once. Two kernels:
//
// BGMV (decode). grid = (token, slice, 1024-column chunks), 128 threads: the
//   CTA stages v[t, s, :rank] and the B^T row pointers in shared memory; each
//   thread owns 8 consecutive columns and walks all ranks with one 16-byte
//   load per rank-row (8 rows in flight), then read-modify-writes 8 y values.
// SGMV (prefill). grid = (token tiles, slice, 64-column chunks), 256 threads:
//   a CTA owns up to 64 tokens of one segment (TileOfBlock) x 64 columns;
//   32-rank steps of v (fp32) and B^T (bf16 -> fp32) go through shared
//   memory, each thread computes 4 tokens x 4 columns, so each B^T tile is
//   loaded once per 64 tokens.
// Rows of B^T are reached through bt_row_offsets: 16-byte loads where the row
// and column allow, scalar loads otherwise (same values either way).
// SGMV on tensor cores (long segments): kernels/cuda/cuda_lora_expand_tc.cu,
//   dispatched from LaunchLoraExpandWith below. Every expand adds into y
//   through AddToY (kernels/cuda/cuda_lora_device.cuh): one rounding.
#include <cuda_bf16.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/cuda/cuda_status.h"
#include "common/status.h"
#include "kernels/cuda/cuda_batched_util.cuh"
#include "kernels/cuda/cuda_lora.h"
#include "kernels/cuda/cuda_lora_device.cuh"
#include "kernels/cuda/cuda_lora_internal.h"
#include "kernels/cuda/cuda_lora_tc.h"

namespace loraserve::cuda::lora_internal {
namespace {

using batched_internal::Bf16;
using batched_internal::GroupOfRow;
using batched_internal::Load8;
using batched_internal::RowTile;
using batched_internal::TileOfBlock;

// ---------------------------------------------------------------- BGMV
constexpr int kBgmvThreads = 128;
constexpr int kBgmvCols = 8 * kBgmvThreads;  // columns per CTA
constexpr int kBgmvUnroll = 8;               // rank-rows in flight per thread

__global__ void __launch_bounds__(kBgmvThreads)
    BgmvExpandKernel(const float* __restrict__ v, const LoraKernelArgs a,
                     const LoraColumnArgs cols, Bf16* __restrict__ y, int64_t y_cols) {
  __shared__ float v_s[kMaxLoraRank];
  __shared__ const Bf16* row_s[kMaxLoraRank];
  const int64_t t = blockIdx.x;
  const int32_t s = blockIdx.y;
  const int64_t col = static_cast<int64_t>(blockIdx.z) * kBgmvCols + threadIdx.x * 8;
  const int64_t col_begin = ColumnOffset(cols, s);
  const int64_t width = ColumnOffset(cols, s + 1) - col_begin;
  if (static_cast<int64_t>(blockIdx.z) * kBgmvCols >= width) return;
  const int32_t g = GroupOfRow(a.seg_starts, a.num_segments, t);
  if (g < 0 || g >= a.num_segments) return;
  const LoraSlice sl = a.slices[static_cast<int64_t>(g) * a.num_slices + s];
  const int32_t rank = ClampRank(sl.rank, a.max_rank);
  if (rank == 0) return;
  const float* vt = v + (t * a.num_slices + s) * a.max_rank;
  for (int i = threadIdx.x; i < rank; i += kBgmvThreads) {
    v_s[i] = vt[i];
    row_s[i] = reinterpret_cast<const Bf16*>(a.rows_base + sl.bt_row_offsets[i]);
  }
  __syncthreads();
  if (col >= width) return;
  const int64_t valid = width - col;

  float acc[8] = {};
  int i = 0;
  for (; i + kBgmvUnroll <= rank; i += kBgmvUnroll) {
    float b[kBgmvUnroll][8];
#pragma unroll
    for (int u = 0; u < kBgmvUnroll; ++u) Load8(row_s[i + u] + col, valid, b[u]);
#pragma unroll
    for (int u = 0; u < kBgmvUnroll; ++u) {
      const float vi = v_s[i + u];
#pragma unroll
      for (int e = 0; e < 8; ++e) acc[e] = fmaf(vi, b[u][e], acc[e]);
    }
  }
  for (; i < rank; ++i) {
    float b[8];
    Load8(row_s[i] + col, valid, b);
    const float vi = v_s[i];
#pragma unroll
    for (int e = 0; e < 8; ++e) acc[e] = fmaf(vi, b[e], acc[e]);
  }
  AddToY<8>(y + t * y_cols + col_begin + col, valid, acc, sl.scale);
}

// ---------------------------------------------------------------- SGMV
constexpr int kSgmvThreads = 256;
constexpr int kSgmvTokens = 64;  // token rows per tile
constexpr int kSgmvCols = 64;    // output columns per tile
constexpr int kSgmvK = 32;       // ranks per step
constexpr int kVStride = kSgmvK + 4;     // floats per v_s row (token-major)
constexpr int kBStride = kSgmvCols + 4;  // floats per b_s row (rank-major)
static_assert(kSgmvTokens * kSgmvK == 8 * kSgmvThreads, "8 v values per thread");
static_assert(kSgmvK * (kSgmvCols / 8) == kSgmvThreads, "1 B^T chunk per thread");

__global__ void __launch_bounds__(kSgmvThreads)
    SgmvExpandKernel(const float* __restrict__ v, const LoraKernelArgs a,
                     const LoraColumnArgs cols, int64_t num_main_tiles, Bf16* __restrict__ y,
                     int64_t y_cols) {
  __shared__ __align__(16) float v_s[kSgmvTokens * kVStride];  // [token][rank]
  __shared__ __align__(16) float b_s[kSgmvK * kBStride];       // [rank][column]

  const int32_t s = blockIdx.y;
  const int64_t n0 = static_cast<int64_t>(blockIdx.z) * kSgmvCols;
  const int64_t col_begin = ColumnOffset(cols, s);
  const int64_t width = ColumnOffset(cols, s + 1) - col_begin;
  if (n0 >= width) return;
  SgmvWork work;
  if (!FindSgmvWork(a, num_main_tiles, kSgmvTokens, s, &work)) return;
  const RowTile& tile = work.tile;
  const LoraSlice& sl = work.slice;
  const int32_t rank = work.rank;
  const int32_t nt = work.nt;

  const int tid = threadIdx.x;
  const int ty = tid >> 4;  // tokens 4*ty .. 4*ty+3
  const int tx = tid & 15;  // columns n0 + 4*tx .. +3
  const int br = tid >> 3;  // B^T row this thread stages
  const int bc = tid & 7;   // and its 8-column chunk

  float acc[4][4] = {};
  for (int32_t k0 = 0; k0 < rank; k0 += kSgmvK) {
#pragma unroll
    for (int l = 0; l < 8; ++l) {
      const int e = tid + l * kSgmvThreads;
      const int m = e >> 5;
      const int kk = e & 31;
      v_s[m * kVStride + kk] =
          m < nt && k0 + kk < rank
              ? v[((tile.begin + m) * a.num_slices + s) * a.max_rank + k0 + kk]
              : 0.0f;
    }
    {
      const int64_t c = n0 + bc * 8;
      float f[8] = {};
      if (k0 + br < rank && c < width) {
        const Bf16* row =
            reinterpret_cast<const Bf16*>(a.rows_base + sl.bt_row_offsets[k0 + br]);
        Load8(row + c, width - c, f);
      }
      float* dst = b_s + br * kBStride + bc * 8;
      reinterpret_cast<float4*>(dst)[0] = make_float4(f[0], f[1], f[2], f[3]);
      reinterpret_cast<float4*>(dst)[1] = make_float4(f[4], f[5], f[6], f[7]);
    }
    __syncthreads();
    const int k_end = (min(kSgmvK, rank - k0) + 3) & ~3;  // zero-padded past rank
    for (int kk = 0; kk < k_end; kk += 4) {
      float4 va[4];
#pragma unroll
      for (int mm = 0; mm < 4; ++mm) {
        va[mm] = *reinterpret_cast<const float4*>(v_s + (ty * 4 + mm) * kVStride + kk);
      }
#pragma unroll
      for (int q = 0; q < 4; ++q) {
        const float4 b = *reinterpret_cast<const float4*>(b_s + (kk + q) * kBStride + tx * 4);
#pragma unroll
        for (int mm = 0; mm < 4; ++mm) {
          const float vq = q == 0 ? va[mm].x : q == 1 ? va[mm].y : q == 2 ? va[mm].z : va[mm].w;
          acc[mm][0] = fmaf(vq, b.x, acc[mm][0]);
          acc[mm][1] = fmaf(vq, b.y, acc[mm][1]);
          acc[mm][2] = fmaf(vq, b.z, acc[mm][2]);
          acc[mm][3] = fmaf(vq, b.w, acc[mm][3]);
        }
      }
    }
    __syncthreads();
  }
  const int64_t c = n0 + tx * 4;
  if (c >= width) return;
#pragma unroll
  for (int mm = 0; mm < 4; ++mm) {
    const int m = ty * 4 + mm;
    if (m < nt) {
      AddToY<4>(y + (tile.begin + m) * y_cols + col_begin + c, width - c, acc[mm],
                sl.scale);
    }
  }
}

}  // namespace

absl::Status LaunchLoraExpandWith(LoraKernel kernel, const float* v, int64_t num_tokens,
                                  const LoraSegments& lora, const LoraSliceColumns& cols,
                                  void* y, int64_t y_cols, cudaStream_t stream) {
  constexpr const char* kOp = "LoraExpand";
  RETURN_IF_ERROR(ValidateSegments(kOp, num_tokens, lora));
  if (y_cols <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(kOp, ": y_cols=", y_cols, " <= 0"));
  }
  if (cols.num_slices != lora.num_slices) {
    return absl::InvalidArgumentError(absl::StrCat(kOp, ": cols.num_slices=", cols.num_slices,
                                                   " != lora.num_slices=", lora.num_slices));
  }
  LoraColumnArgs col_args = {};
  int64_t max_width = 0;
  for (int32_t s = 0; s < cols.num_slices; ++s) {
    if (cols.offsets[s] < 0 || cols.offsets[s + 1] < cols.offsets[s] ||
        cols.offsets[s + 1] > y_cols) {
      return absl::InvalidArgumentError(absl::StrCat(
          kOp, ": slice ", s, " columns [", cols.offsets[s], ", ", cols.offsets[s + 1],
          ") not inside [0, y_cols=", y_cols, ")"));
    }
    max_width = std::max(max_width, cols.offsets[s + 1] - cols.offsets[s]);
  }
  for (int32_t s = 0; s <= cols.num_slices; ++s) col_args.offsets[s] = cols.offsets[s];
  if (lora.num_segments == 0 || num_tokens == 0 || lora.max_rank == 0 || max_width == 0) {
    return absl::OkStatus();
  }
  if (v == nullptr || y == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(kOp, ": null v or y"));
  }
  if (kernel == LoraKernel::kAuto) kernel = ChooseLoraKernel(num_tokens, lora.num_segments);
  const int64_t tile_cols = kernel == LoraKernel::kBgmv     ? kBgmvCols
                            : kernel == LoraKernel::kSgmvTc ? kTcExpandCols
                                                            : kSgmvCols;
  const int64_t col_blocks = (max_width + tile_cols - 1) / tile_cols;
  if (col_blocks > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat(kOp, ": slice width ", max_width, " exceeds the kernels' column grid"));
  }
  const LoraKernelArgs args = MakeKernelArgs(lora, num_tokens);
  auto* ys = static_cast<Bf16*>(y);
  if (kernel == LoraKernel::kSgmvTc) {
    return LaunchSgmvTcExpand(v, args, col_args, col_blocks, ys, y_cols, stream);
  }
  if (kernel == LoraKernel::kBgmv) {
    const dim3 grid(static_cast<unsigned>(num_tokens), static_cast<unsigned>(lora.num_slices),
                    static_cast<unsigned>(col_blocks));
    BgmvExpandKernel<<<grid, kBgmvThreads, 0, stream>>>(v, args, col_args, ys, y_cols);
  } else {
    const int64_t main_tiles = (num_tokens + kSgmvTokens - 1) / kSgmvTokens;
    const dim3 grid(static_cast<unsigned>(main_tiles + lora.num_segments),
                    static_cast<unsigned>(lora.num_slices), static_cast<unsigned>(col_blocks));
    SgmvExpandKernel<<<grid, kSgmvThreads, 0, stream>>>(v, args, col_args, main_tiles, ys,
                                                        y_cols);
  }
  RETURN_IF_CUDA_ERROR(cudaGetLastError());
  return absl::OkStatus();
}

}  // namespace loraserve::cuda::lora_internal
