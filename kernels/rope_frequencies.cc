#include "kernels/rope_frequencies.h"

#include <cmath>
#include <numbers>

#include "absl/strings/str_cat.h"

namespace loraserve {

absl::StatusOr<std::vector<float>> ComputeRopeInvFreq(int head_dim, double theta,
                                                      const RopeScalingParams& scaling) {
  if (head_dim <= 0 || head_dim % 2 != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("rope: head_dim must be positive and even; got ", head_dim));
  }
  if (!(theta > 0.0)) {
    return absl::InvalidArgumentError(absl::StrCat("rope: rope_theta must be > 0; got ", theta));
  }
  if (scaling.type != RopeScalingParams::Type::kNone && !(scaling.factor > 0.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("rope: rope_scaling factor must be > 0; got ", scaling.factor));
  }
  if (scaling.type == RopeScalingParams::Type::kLlama3 &&
      (!(scaling.high_freq_factor > scaling.low_freq_factor) || !(scaling.low_freq_factor > 0) ||
       !(scaling.original_max_position_embeddings > 0))) {
    return absl::InvalidArgumentError(absl::StrCat(
        "rope: llama3 rope_scaling needs 0 < low_freq_factor < high_freq_factor and "
        "original_max_position_embeddings > 0; got low=",
        scaling.low_freq_factor, " high=", scaling.high_freq_factor,
        " original_max_position_embeddings=", scaling.original_max_position_embeddings));
  }
  const int half = head_dim / 2;
  std::vector<float> out(half);
  for (int i = 0; i < half; ++i) {
    double f = 1.0 / std::pow(theta, static_cast<double>(2 * i) / head_dim);
    switch (scaling.type) {
      case RopeScalingParams::Type::kNone:
        break;
      case RopeScalingParams::Type::kLinear:
        f /= scaling.factor;
        break;
      case RopeScalingParams::Type::kLlama3: {
        const double orig = scaling.original_max_position_embeddings;
        const double low_wavelen = orig / scaling.low_freq_factor;
        const double high_wavelen = orig / scaling.high_freq_factor;
        const double wavelen = 2.0 * std::numbers::pi / f;
        if (wavelen < high_wavelen) {
          // high frequency: unchanged
        } else if (wavelen > low_wavelen) {
          f /= scaling.factor;
        } else {
          const double s = (orig / wavelen - scaling.low_freq_factor) /
                           (scaling.high_freq_factor - scaling.low_freq_factor);
          f = (1.0 - s) * f / scaling.factor + s * f;
        }
        break;
      }
    }
    out[i] = static_cast<float>(f);
  }
  return out;
}

}  // namespace loraserve
