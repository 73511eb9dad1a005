// LoRA shrink on CUDA (kernels/cuda/cuda_lora.h): v[t, s, i] = x[t, :] . A_{g,s}[i, :]
// in fp32 for i < rank of token t's segment g and slice s. Two kernels:
//
// BGMV (decode: many short segments). grid = (token, slice, rank rows / 8),
//   128 threads: each warp owns two rank-rows and reads them with x[t] in
//   coalesced 16-byte loads (4 per row in flight per lane), then warp-reduces.
//   A row is read once per token, so with one token per adapter the kernel
//   streams the adapter rows at memory bandwidth.
// SGMV (prefill: few long segments). grid = (token tiles, slice x rank tiles):
//   a CTA owns up to 64 tokens of one segment (TileOfBlock) and 16 rank-rows;
//   64-wide K steps of x and A go through shared memory in fp32, each thread
//   computes 4 tokens x 2 ranks, so each A tile is loaded once per 64 tokens.
// Rows of A are reached through a_row_offsets (anywhere in the pool): 16-byte
// loads where the row and x allow it, scalar loads otherwise.
// SGMV on tensor cores (long segments): kernels/cuda/cuda_lora_shrink_tc.cu,
//   dispatched from LaunchLoraShrinkWith below.
#include <cuda_bf16.h>

#include "absl/strings/str_cat.h"
#include "common/cuda/cuda_status.h"
#include "common/status.h"
#include "kernels/cuda/cuda_batched_util.cuh"
#include "kernels/cuda/cuda_lora_device.cuh"
#include "kernels/cuda/cuda_lora.h"
#include "kernels/cuda/cuda_lora_internal.h"
#include "kernels/cuda/cuda_lora_tc.h"

namespace loraserve::cuda::lora_internal {
namespace {

using batched_internal::Aligned16;
using batched_internal::Bf16;
using batched_internal::Dot8;
using batched_internal::GroupOfRow;
using batched_internal::Load8;
using batched_internal::LoadBf16;
using batched_internal::RowTile;
using batched_internal::TileOfBlock;
using batched_internal::Unpack8;
using batched_internal::WarpSum;

// ---------------------------------------------------------------- BGMV
constexpr int kBgmvThreads = 128;
constexpr int kBgmvRowsPerWarp = 2;
constexpr int kBgmvRowsPerCta = kBgmvRowsPerWarp * kBgmvThreads / 32;
constexpr int kBgmvUnroll = 4;

__device__ __forceinline__ void DotStep(const uint4& xv, const uint4& a0, const uint4& a1,
                                        float& acc0, float& acc1) {
  float xf[8];
  float af[8];
  Unpack8(xv, xf);
  Unpack8(a0, af);
  acc0 = Dot8(xf, af, acc0);
  Unpack8(a1, af);
  acc1 = Dot8(xf, af, acc1);
}

__global__ void __launch_bounds__(kBgmvThreads)
    BgmvShrinkKernel(const Bf16* __restrict__ x, int64_t in, const LoraKernelArgs a,
                     float* __restrict__ v) {
  const int64_t t = blockIdx.x;
  const int32_t s = blockIdx.y;
  const int32_t g = GroupOfRow(a.seg_starts, a.num_segments, t);
  if (g < 0 || g >= a.num_segments) return;  // token outside every segment
  const LoraSlice sl = a.slices[static_cast<int64_t>(g) * a.num_slices + s];
  const int32_t rank = ClampRank(sl.rank, a.max_rank);
  const int lane = threadIdx.x & 31;
  const int32_t i0 = blockIdx.z * kBgmvRowsPerCta + (threadIdx.x >> 5) * kBgmvRowsPerWarp;
  if (i0 >= rank) return;  // whole warp: no rows here (no block barrier below)
  const bool two = i0 + 1 < rank;
  const Bf16* a0 = reinterpret_cast<const Bf16*>(a.rows_base + sl.a_row_offsets[i0]);
  const Bf16* a1 =
      two ? reinterpret_cast<const Bf16*>(a.rows_base + sl.a_row_offsets[i0 + 1]) : a0;
  const Bf16* xr = x + t * in;

  float acc0 = 0.0f;
  float acc1 = 0.0f;
  if ((in & 7) == 0 && Aligned16(xr) && Aligned16(a0) && Aligned16(a1)) {
    const auto* x4 = reinterpret_cast<const uint4*>(xr);
    const auto* a04 = reinterpret_cast<const uint4*>(a0);
    const auto* a14 = reinterpret_cast<const uint4*>(a1);
    const int64_t n8 = in >> 3;
    int64_t c = lane;
    for (; c + (kBgmvUnroll - 1) * 32 < n8; c += kBgmvUnroll * 32) {
      uint4 xv[kBgmvUnroll];
      uint4 av0[kBgmvUnroll];
      uint4 av1[kBgmvUnroll];
#pragma unroll
      for (int u = 0; u < kBgmvUnroll; ++u) {
        xv[u] = __ldg(x4 + c + 32 * u);
        av0[u] = __ldg(a04 + c + 32 * u);
        av1[u] = __ldg(a14 + c + 32 * u);
      }
#pragma unroll
      for (int u = 0; u < kBgmvUnroll; ++u) DotStep(xv[u], av0[u], av1[u], acc0, acc1);
    }
    for (; c < n8; c += 32) DotStep(__ldg(x4 + c), __ldg(a04 + c), __ldg(a14 + c), acc0, acc1);
  } else {
    for (int64_t k = lane; k < in; k += 32) {
      const float xv = LoadBf16(xr + k);
      acc0 = fmaf(xv, LoadBf16(a0 + k), acc0);
      acc1 = fmaf(xv, LoadBf16(a1 + k), acc1);
    }
  }
  acc0 = WarpSum(acc0);
  acc1 = WarpSum(acc1);
  if (lane == 0) {
    float* vt = v + (t * a.num_slices + s) * a.max_rank;
    vt[i0] = acc0;
    if (two) vt[i0 + 1] = acc1;
  }
}

// ---------------------------------------------------------------- SGMV
constexpr int kSgmvThreads = 128;
constexpr int kSgmvTokens = 64;  // token rows per tile
constexpr int kSgmvRanks = 16;   // rank-rows per tile
constexpr int kSgmvK = 64;       // input columns per step
constexpr int kSgmvStride = kSgmvK + 4;  // floats per smem row (16-byte aligned, padded)
static_assert(kSgmvTokens * (kSgmvK / 8) == 4 * kSgmvThreads, "4 x chunks per thread");
static_assert(kSgmvRanks * (kSgmvK / 8) == kSgmvThreads, "1 A chunk per thread");

__device__ __forceinline__ void Store8(float* dst, const float f[8]) {
  reinterpret_cast<float4*>(dst)[0] = make_float4(f[0], f[1], f[2], f[3]);
  reinterpret_cast<float4*>(dst)[1] = make_float4(f[4], f[5], f[6], f[7]);
}

__device__ __forceinline__ float Dot4(const float4& a, const float4& b, float acc) {
  acc = fmaf(a.x, b.x, acc);
  acc = fmaf(a.y, b.y, acc);
  acc = fmaf(a.z, b.z, acc);
  return fmaf(a.w, b.w, acc);
}

__global__ void __launch_bounds__(kSgmvThreads)
    SgmvShrinkKernel(const Bf16* __restrict__ x, int64_t in, const LoraKernelArgs a,
                     int64_t num_main_tiles, int32_t rank_tiles, float* __restrict__ v) {
  __shared__ __align__(16) float x_s[kSgmvTokens * kSgmvStride];  // [token][k]
  __shared__ __align__(16) float a_s[kSgmvRanks * kSgmvStride];   // [rank][k]

  const int32_t s = blockIdx.y / rank_tiles;
  const int32_t r0 = (blockIdx.y - s * rank_tiles) * kSgmvRanks;
  SgmvWork work;
  if (!FindSgmvWork(a, num_main_tiles, kSgmvTokens, s, &work)) return;
  const RowTile& tile = work.tile;
  const LoraSlice& sl = work.slice;
  const int32_t rank = work.rank;
  if (r0 >= rank) return;
  const int32_t nr = min(kSgmvRanks, rank - r0);
  const int32_t nt = work.nt;

  const int tid = threadIdx.x;
  const int ty = tid >> 3;  // tokens 4*ty .. 4*ty+3
  const int tx = tid & 7;   // ranks tx and tx + 8
  const int ar = tid >> 3;  // A row this thread stages
  const int ac = tid & 7;   // and its 8-column chunk
  const Bf16* arow =
      ar < nr ? reinterpret_cast<const Bf16*>(a.rows_base + sl.a_row_offsets[r0 + ar]) : nullptr;

  float acc[4][2] = {};
  for (int64_t k0 = 0; k0 < in; k0 += kSgmvK) {
#pragma unroll
    for (int l = 0; l < 4; ++l) {
      const int c = tid + l * kSgmvThreads;
      const int m = c >> 3;
      const int64_t k = k0 + (c & 7) * 8;
      float f[8] = {};
      if (m < nt && k < in) Load8(x + (tile.begin + m) * in + k, in - k, f);
      Store8(x_s + m * kSgmvStride + (c & 7) * 8, f);
    }
    {
      const int64_t k = k0 + ac * 8;
      float f[8] = {};
      if (arow != nullptr && k < in) Load8(arow + k, in - k, f);
      Store8(a_s + ar * kSgmvStride + ac * 8, f);
    }
    __syncthreads();
#pragma unroll 4
    for (int kk = 0; kk < kSgmvK; kk += 4) {
      float4 xa[4];
#pragma unroll
      for (int mm = 0; mm < 4; ++mm) {
        xa[mm] = *reinterpret_cast<const float4*>(x_s + (ty * 4 + mm) * kSgmvStride + kk);
      }
      const float4 a0 = *reinterpret_cast<const float4*>(a_s + tx * kSgmvStride + kk);
      const float4 a1 = *reinterpret_cast<const float4*>(a_s + (tx + 8) * kSgmvStride + kk);
#pragma unroll
      for (int mm = 0; mm < 4; ++mm) {
        acc[mm][0] = Dot4(xa[mm], a0, acc[mm][0]);
        acc[mm][1] = Dot4(xa[mm], a1, acc[mm][1]);
      }
    }
    __syncthreads();
  }
#pragma unroll
  for (int mm = 0; mm < 4; ++mm) {
    const int m = ty * 4 + mm;
    if (m >= nt) continue;
    float* vt = v + ((tile.begin + m) * a.num_slices + s) * a.max_rank + r0;
    if (tx < nr) vt[tx] = acc[mm][0];
    if (tx + 8 < nr) vt[tx + 8] = acc[mm][1];
  }
}

}  // namespace

absl::Status LaunchLoraShrinkWith(LoraKernel kernel, const void* x, int64_t num_tokens,
                                  int64_t in, const LoraSegments& lora, float* v,
                                  cudaStream_t stream, int32_t tc_k_splits) {
  constexpr const char* kOp = "LoraShrink";
  RETURN_IF_ERROR(ValidateSegments(kOp, num_tokens, lora));
  if (in <= 0) return absl::InvalidArgumentError(absl::StrCat(kOp, ": in=", in, " <= 0"));
  if (tc_k_splits != 0 && tc_k_splits != 1 && tc_k_splits != 2 && tc_k_splits != 4 &&
      tc_k_splits != kTcShrinkMaxSplits) {
    return absl::InvalidArgumentError(absl::StrCat(
        kOp, ": tc_k_splits=", tc_k_splits, " is not 0 (automatic), 1, 2, 4 or 8"));
  }
  if (lora.num_segments == 0 || num_tokens == 0 || lora.max_rank == 0) return absl::OkStatus();
  if (x == nullptr || v == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(kOp, ": null x or v"));
  }
  if (kernel == LoraKernel::kAuto) kernel = ChooseLoraKernel(num_tokens, lora.num_segments);
  const LoraKernelArgs args = MakeKernelArgs(lora, num_tokens);
  const auto* xs = static_cast<const Bf16*>(x);
  if (kernel == LoraKernel::kSgmvTc) {
    const int32_t splits =
        tc_k_splits != 0 ? tc_k_splits
                         : ChooseTcShrinkSplits(num_tokens, lora.num_slices, lora.max_rank, in);
    return LaunchSgmvTcShrink(xs, in, args, splits, v, stream);
  }
  if (kernel == LoraKernel::kBgmv) {
    const dim3 grid(static_cast<unsigned>(num_tokens), static_cast<unsigned>(lora.num_slices),
                    static_cast<unsigned>((lora.max_rank + kBgmvRowsPerCta - 1) / kBgmvRowsPerCta));
    BgmvShrinkKernel<<<grid, kBgmvThreads, 0, stream>>>(xs, in, args, v);
  } else {
    const int64_t main_tiles = (num_tokens + kSgmvTokens - 1) / kSgmvTokens;
    const int32_t rank_tiles = (lora.max_rank + kSgmvRanks - 1) / kSgmvRanks;
    const dim3 grid(static_cast<unsigned>(main_tiles + lora.num_segments),
                    static_cast<unsigned>(lora.num_slices * rank_tiles));
    SgmvShrinkKernel<<<grid, kSgmvThreads, 0, stream>>>(xs, in, args, main_tiles, rank_tiles, v);
  }
  RETURN_IF_CUDA_ERROR(cudaGetLastError());
  return absl::OkStatus();
}

}  // namespace loraserve::cuda::lora_internal
