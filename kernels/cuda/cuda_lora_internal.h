// Internal to the CUDA LoRA kernels (kernels/cuda/cuda_lora_*.cu): the device
// view of a LoraSegments launch, the host-side validation of host-known
// values, the choice between the segmented (SGMV, FFMA or tensor-core) and
// gather (BGMV) kernels, and launchers that take that choice explicitly so
// tests and benchmarks can run every kernel on the same inputs. Stateless;
// any thread.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "absl/status/status.h"
#include "kernels/op_args.h"

namespace loraserve::cuda::lora_internal {

enum class LoraKernel {
  kAuto,    // chosen from num_tokens / num_segments (ChooseLoraKernel)
  kSgmv,    // segmented, fp32 FFMA: tiles of up to 64 tokens of one segment share each weight tile
  kSgmvTc,  // segmented on tensor cores (bf16 wmma, fp32 accumulate): kernels/cuda/cuda_lora_tc.h
  kBgmv,    // gather: CTAs per token, each reading its own adapter's rows
};

// Segments averaging at least this many tokens take the SGMV kernels.
inline constexpr int64_t kSgmvMinTokensPerSegment = 8;
// Segments averaging at least this many tokens take the tensor-core SGMV
// kernels. Both SGMV kernels tile up to 64 tokens of one segment per CTA and
// read the tile's adapter rows once; they differ in arithmetic. The FFMA
// kernels compute all 64 rows of a tile whatever it holds, at the FP32 rate
// (~1/15 of the bf16 tensor rate on an H100): 64 FMAs per weight element, more
// time than streaming that element, even from DRAM. The tensor-core kernels
// compute only the 16-row fragments holding tokens and are bound by the
// weight / x / y streams, but pay fixed costs per tile (bf16 staging through
// shared memory, three MMAs per fragment and the split of v in the expand,
// the cluster reduction in the shrink). From 32 tokens per segment on, tiles
// average at least two full fragments of four, so the tensor-core kernels do
// at most half the FFMA kernels' row work at ~15x the rate: a sure win. Below
// that the model still favours them, but by less than its uncertainty;
// bench/cuda/lora_kernels_bench measures segments of 16..512 tokens with both
// kernels: lower this (to kSgmvMinTokensPerSegment at most) when it agrees.
inline constexpr int64_t kSgmvTcMinTokensPerSegment = 32;

// kSgmvTc when the average segment is long (prefill), kSgmv for medium
// segments (short prefill chunks), kBgmv otherwise (decode).
LoraKernel ChooseLoraKernel(int64_t num_tokens, int32_t num_segments);

// The LoraSegments fields the kernels read (all pointers device memory).
struct LoraKernelArgs {
  const uint8_t* rows_base;   // rank-rows: A row i of a slice at rows_base + a_row_offsets[i]
  const int32_t* seg_starts;  // [num_segments + 1]
  const LoraSlice* slices;    // [num_segments, num_slices]
  int32_t num_segments;
  int32_t num_slices;
  int32_t max_rank;           // v's innermost stride
  int64_t num_tokens;
};

// Output column ranges of the slices in y (LoraSliceColumns, by value).
struct LoraColumnArgs {
  int64_t offsets[kMaxLoraSlices + 1];
};

LoraKernelArgs MakeKernelArgs(const LoraSegments& lora, int64_t num_tokens);

// InvalidArgument naming `op` for a bad host-known value of a launch:
// num_tokens < 0, num_segments < 0, num_slices outside [1, kMaxLoraSlices],
// max_rank outside [0, kMaxLoraRank], or a grid the device cannot launch.
absl::Status ValidateSegments(const char* op, int64_t num_tokens, const LoraSegments& lora);

// As LaunchLoraShrink / LaunchLoraExpand (kernels/cuda/cuda_lora.h) with the
// kernel given; kAuto is exactly the public launchers. tc_k_splits is for
// kSgmvTc only: the CTAs (one cluster) that split `in`, 1, 2, 4 or 8, or 0 to
// let ChooseTcShrinkSplits pick (kernels/cuda/cuda_lora_tc.h).
absl::Status LaunchLoraShrinkWith(LoraKernel kernel, const void* x /* [num_tokens, in] bf16 */,
                                  int64_t num_tokens, int64_t in, const LoraSegments& lora,
                                  float* v /* [num_tokens, num_slices, max_rank] */,
                                  cudaStream_t stream, int32_t tc_k_splits = 0);
absl::Status LaunchLoraExpandWith(LoraKernel kernel,
                                  const float* v /* [num_tokens, num_slices, max_rank] */,
                                  int64_t num_tokens, const LoraSegments& lora,
                                  const LoraSliceColumns& cols,
                                  void* y /* [num_tokens, y_cols] bf16 */, int64_t y_cols,
                                  cudaStream_t stream);

// Rank of a slice as the kernels use it: device data is not validated, so a
// rank outside [0, max_rank] is clamped rather than written past v's row.
__host__ __device__ inline int32_t ClampRank(int32_t rank, int32_t max_rank) {
  return rank < 0 ? 0 : (rank > max_rank ? max_rank : rank);
}

}  // namespace loraserve::cuda::lora_internal
