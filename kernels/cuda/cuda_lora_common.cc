// Host side shared by the CUDA LoRA launchers (kernels/cuda/cuda_lora_internal.h):
// validation of host-known values, kernel choice (and the tensor-core
// shrink's split of `in`, kernels/cuda/cuda_lora_tc.h), the public launchers.
#include <limits>

#include "absl/strings/str_cat.h"
#include "kernels/cuda/cuda_lora.h"
#include "kernels/cuda/cuda_lora_internal.h"
#include "kernels/cuda/cuda_lora_tc.h"

namespace loraserve::cuda {
namespace lora_internal {

LoraKernel ChooseLoraKernel(int64_t num_tokens, int32_t num_segments) {
  if (num_tokens >= kSgmvTcMinTokensPerSegment * num_segments) return LoraKernel::kSgmvTc;
  if (num_tokens >= kSgmvMinTokensPerSegment * num_segments) return LoraKernel::kSgmv;
  return LoraKernel::kBgmv;
}

int32_t ChooseTcShrinkSplits(int64_t num_tokens, int32_t num_slices, int32_t max_rank,
                             int64_t in) {
  const int64_t tiles = (num_tokens + kTcTokens - 1) / kTcTokens * num_slices *
                        ((max_rank + kTcShrinkRanks - 1) / kTcShrinkRanks);
  int32_t splits = 1;
  while (splits < kTcShrinkMaxSplits && tiles * splits < kTcShrinkTargetCtas &&
         in >= 2 * splits * kTcShrinkMinSplitK) {
    splits *= 2;
  }
  return splits;
}

LoraKernelArgs MakeKernelArgs(const LoraSegments& lora, int64_t num_tokens) {
  LoraKernelArgs a;
  a.rows_base = static_cast<const uint8_t*>(lora.rows_base);
  a.seg_starts = lora.seg_starts;
  a.slices = lora.slices;
  a.num_segments = lora.num_segments;
  a.num_slices = lora.num_slices;
  a.max_rank = lora.max_rank;
  a.num_tokens = num_tokens;
  return a;
}

absl::Status ValidateSegments(const char* op, int64_t num_tokens, const LoraSegments& lora) {
  if (num_tokens < 0) {
    return absl::InvalidArgumentError(absl::StrCat(op, ": num_tokens=", num_tokens, " < 0"));
  }
  if (num_tokens > std::numeric_limits<int32_t>::max()) {
    return absl::InvalidArgumentError(
        absl::StrCat(op, ": num_tokens=", num_tokens, " exceeds the 2^31-1 rows of a launch"));
  }
  if (lora.num_segments < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(op, ": lora.num_segments=", lora.num_segments, " < 0"));
  }
  if (lora.num_slices < 1 || lora.num_slices > kMaxLoraSlices) {
    return absl::InvalidArgumentError(absl::StrCat(op, ": lora.num_slices=", lora.num_slices,
                                                   " outside [1, ", kMaxLoraSlices, "]"));
  }
  if (lora.max_rank < 0 || lora.max_rank > kMaxLoraRank) {
    return absl::InvalidArgumentError(absl::StrCat(op, ": lora.max_rank=", lora.max_rank,
                                                   " outside [0, ", kMaxLoraRank,
                                                   "] (the supported maximum rank)"));
  }
  if (lora.num_segments > 0 && (lora.seg_starts == nullptr || lora.slices == nullptr)) {
    return absl::InvalidArgumentError(
        absl::StrCat(op, ": null lora.seg_starts or lora.slices with num_segments=",
                     lora.num_segments));
  }
  return absl::OkStatus();
}

}  // namespace lora_internal

absl::Status LaunchLoraShrink(const void* x, int64_t num_tokens, int64_t in,
                              const LoraSegments& lora, float* v, cudaStream_t stream) {
  return lora_internal::LaunchLoraShrinkWith(lora_internal::LoraKernel::kAuto, x, num_tokens, in,
                                             lora, v, stream);
}

absl::Status LaunchLoraExpand(const float* v, int64_t num_tokens, const LoraSegments& lora,
                              const LoraSliceColumns& cols, void* y, int64_t y_cols,
                              cudaStream_t stream) {
  return lora_internal::LaunchLoraExpandWith(lora_internal::LoraKernel::kAuto, v, num_tokens,
                                             lora, cols, y, y_cols, stream);
}

}  // namespace loraserve::cuda
