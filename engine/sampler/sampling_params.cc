#include "engine/sampler/sampling_params.h"

#include "absl/strings/str_cat.h"

namespace loraserve {
namespace {

// True when lo <= v <= hi (false for NaN).
bool InClosed(float v, float lo, float hi) { return v >= lo && v <= hi; }

absl::Status OutOfRange(const char* field, float value, const char* range) {
  return absl::InvalidArgumentError(
      absl::StrCat("sampling.", field, " is ", value, ", must be in ", range));
}

}  // namespace

absl::Status SamplingParams::Validate(int32_t vocab_size) const {
  if (!InClosed(temperature, 0.0f, kMaxTemperature)) {
    return OutOfRange("temperature", temperature, "[0, 100]");
  }
  if (top_k < 0 || top_k > vocab_size) {
    return absl::InvalidArgumentError(absl::StrCat(
        "sampling.top_k is ", top_k, ", must be in [0, vocab size ", vocab_size, "] (0 disables)"));
  }
  if (!(top_p > 0.0f && top_p <= 1.0f)) return OutOfRange("top_p", top_p, "(0, 1]");
  if (!InClosed(min_p, 0.0f, 1.0f)) return OutOfRange("min_p", min_p, "[0, 1]");
  if (!(repetition_penalty > 0.0f && repetition_penalty <= kMaxRepetitionPenalty)) {
    return OutOfRange("repetition_penalty", repetition_penalty, "(0, 10]");
  }
  if (!InClosed(presence_penalty, -kMaxAbsPresenceFrequencyPenalty,
                kMaxAbsPresenceFrequencyPenalty)) {
    return OutOfRange("presence_penalty", presence_penalty, "[-2, 2]");
  }
  if (!InClosed(frequency_penalty, -kMaxAbsPresenceFrequencyPenalty,
                kMaxAbsPresenceFrequencyPenalty)) {
    return OutOfRange("frequency_penalty", frequency_penalty, "[-2, 2]");
  }
  if (top_logprobs < 0 || top_logprobs > kMaxTopLogprobs) {
    return absl::InvalidArgumentError(
        absl::StrCat("sampling.top_logprobs is ", top_logprobs, ", must be in [0, 20]"));
  }
  return absl::OkStatus();
}

}  // namespace loraserve
