// Internal to the CUDA LoRA kernels (kernels/cuda/cuda_lora_*.cu): the device
// view of a LoraSegments launch, the host-side validation of host-known
// values, the choice between the segmented (SGMV) and gather (BGMV) kernels,
// and launchers that take that choice explicitly so tests can run both
// kernels on the same inputs. Stateless; any thread.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "absl/status/status.h"
#include "kernels/op_args.h"

namespace loraserve::cuda::lora_internal {

enum class LoraKernel {
  kAuto,  // chosen from num_tokens / num_segments (ChooseLoraKernel)
  kSgmv,  // segmented: CTA tiles of up to 64 tokens of one segment share each weight tile
  kBgmv,  // gather: CTAs per token, each reading its own adapter's rows
};

// Segments averaging at least this many tokens take the SGMV kernels.
inline constexpr int64_t kSgmvMinTokensPerSegment = 8;

// kSgmv when the average segment is long (prefill), kBgmv otherwise (decode).
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
// kernel given; kAuto is exactly the public launchers.
absl::Status LaunchLoraShrinkWith(LoraKernel kernel, const void* x /* [num_tokens, in] bf16 */,
                                  int64_t num_tokens, int64_t in, const LoraSegments& lora,
                                  float* v /* [num_tokens, num_slices, max_rank] */,
                                  cudaStream_t stream);
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
