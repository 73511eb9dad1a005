// The tensor-core SGMV LoRA kernels (LoraKernel::kSgmvTc): their tile sizes,
// the host's choice of how many CTAs split a shrink's `in` (one thread block
// cluster), the exact split of a fp32 value into three bf16 that the expand
// feeds to the tensor cores, and their launchers. The kernels are in
// kernels/cuda/cuda_lora_shrink_tc.cu and cuda_lora_expand_tc.cu; the
// launchers are called only by LaunchLoraShrinkWith / LaunchLoraExpandWith
// (kernels/cuda/cuda_lora_internal.h) after those checked every host-known
// value. The constants, ChooseTcShrinkSplits and SplitBf16x3 are host code too
// and are tested without a device. Stateless; any thread.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

#include "absl/status/status.h"
#include "kernels/cuda/cuda_lora_internal.h"

namespace loraserve::cuda::lora_internal {

// Token rows of one CTA tile in both kernels (4 warps x 16-row fragments):
// a tile never crosses a segment (batched_internal::TileOfBlock).
inline constexpr int32_t kTcTokens = 64;
// Rank-rows per shrink CTA (4 fragments of 16; grid.y = slices x ceil(max_rank / 64)).
inline constexpr int32_t kTcShrinkRanks = 64;
// Output columns per expand CTA (grid.z = ceil(widest slice / 128)).
inline constexpr int32_t kTcExpandCols = 128;

// The shrink reads each x row once per (slice, 64-rank tile), so a prefill of
// T tokens has only ceil(T / 64) x slices x rank-tiles CTAs: 32 for 2048
// tokens of one slice at r <= 64, far too few to keep an H100's 132 SMs
// streaming x. Up to kTcShrinkMaxSplits CTAs of one thread block cluster then
// split `in` and add their partial tiles through distributed shared memory,
// in a fixed order (deterministic). Splitting stops once there are
// kTcShrinkTargetCtas CTAs (~4 per SM) or a split would cover fewer than
// kTcShrinkMinSplitK input columns.
inline constexpr int64_t kTcShrinkTargetCtas = 512;
inline constexpr int32_t kTcShrinkMaxSplits = 8;  // the portable cluster size
inline constexpr int64_t kTcShrinkMinSplitK = 256;

// 1, 2, 4 or 8: the CTAs (one cluster) that split `in` for a kSgmvTc shrink
// of this shape (see above). num_tokens, in >= 1; 1 <= num_slices;
// 1 <= max_rank <= kMaxLoraRank.
int32_t ChooseTcShrinkSplits(int64_t num_tokens, int32_t num_slices, int32_t max_rank, int64_t in);

// v == float(hi) + float(mid) + float(lo) exactly for every finite fp32 v
// with 2^-110 <= |v| <= the largest finite bf16 (~3.39e38): hi takes v's top
// 8 significant bits, mid the next 8, lo the last 8 (each residual is exact
// by Sterbenz's lemma, and the last one spans at most 8 bits). Below 2^-110
// lo falls under bf16's subnormal spacing: absolute error < 2^-133. 0 gives
// three zeros; Inf, NaN and |v| above the largest bf16 give NaN in mid/lo.
struct Bf16x3 {
  __nv_bfloat16 hi;
  __nv_bfloat16 mid;
  __nv_bfloat16 lo;
};
__host__ __device__ inline Bf16x3 SplitBf16x3(float v) {
  const __nv_bfloat16 hi = __float2bfloat16_rn(v);
  const float r1 = v - __bfloat162float(hi);  // exact
  const __nv_bfloat16 mid = __float2bfloat16_rn(r1);
  const float r2 = r1 - __bfloat162float(mid);  // exact
  return Bf16x3{hi, mid, __float2bfloat16_rn(r2)};
}

// The kSgmvTc shrink of LaunchLoraShrinkWith: args describe a validated
// launch with num_segments, num_tokens, max_rank > 0; k_splits is 1, 2, 4 or 8
// (run as 1 where the kernel image has no thread block clusters: before sm_90).
// InvalidArgument when ceil(num_tokens / 64) + num_segments CTAs exceed a
// grid row; Internal for a CUDA launch error (a cluster that cannot launch).
absl::Status LaunchSgmvTcShrink(const __nv_bfloat16* x /* [num_tokens, in] */, int64_t in,
                                const LoraKernelArgs& args, int32_t k_splits,
                                float* v /* [num_tokens, num_slices, max_rank] */,
                                cudaStream_t stream);

// The kSgmvTc expand of LaunchLoraExpandWith: args and cols describe a
// validated launch with work; col_blocks = ceil(widest slice / kTcExpandCols)
// <= 65535. InvalidArgument when ceil(num_tokens / 64) + num_segments CTAs
// exceed a grid row; Internal for a CUDA launch error.
absl::Status LaunchSgmvTcExpand(const float* v /* [num_tokens, num_slices, max_rank] */,
                                const LoraKernelArgs& args, const LoraColumnArgs& cols,
                                int64_t col_blocks, __nv_bfloat16* y /* [num_tokens, y_cols] */,
                                int64_t y_cols, cudaStream_t stream);

}  // namespace loraserve::cuda::lora_internal
