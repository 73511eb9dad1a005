// RoPE inverse frequencies, computed once on the host from the model config
// and uploaded by the model; the Rope op reads them. Mirrors Hugging Face
// transformers' `_compute_default_rope_parameters` and
// `_compute_llama3_parameters` (Llama 3.1+ rope scaling) and plain "linear"
// scaling. Pure functions, any thread.
#pragma once

#include <vector>

#include "absl/status/statusor.h"

namespace loraserve {

struct RopeScalingParams {
  enum class Type { kNone, kLinear, kLlama3 };
  Type type = Type::kNone;
  double factor = 1.0;                           // linear and llama3
  double low_freq_factor = 1.0;                  // llama3
  double high_freq_factor = 4.0;                 // llama3
  double original_max_position_embeddings = 8192;  // llama3
};

// inv_freq[i] for i < head_dim / 2: theta^(-2i / head_dim), then rescaled:
//   linear: / factor.
//   llama3: wavelen = 2*pi / f; wavelen < orig/high_freq_factor: kept;
//           wavelen > orig/low_freq_factor: f / factor; otherwise
//           s = (orig / wavelen - low) / (high - low), f = (1 - s) * f / factor + s * f.
// Computed in double, rounded once to float. InvalidArgument for an odd or
// non-positive head_dim, theta <= 0, factor <= 0, or llama3 with
// high_freq_factor <= low_freq_factor.
absl::StatusOr<std::vector<float>> ComputeRopeInvFreq(int head_dim, double theta,
                                                      const RopeScalingParams& scaling);

}  // namespace loraserve
