// SamplingParams: how one request turns logits into tokens (the wire fields
// of loraserve.v1.SamplingParams plus the logprob options), with the range
// check the server runs before accepting a request.
//
// Plain value type; any thread. Used by the server (Validate) and by
// SamplerState (engine/sampler/sampler.h).
#pragma once

#include <cstdint>
#include <optional>

#include "absl/status/status.h"

namespace loraserve {

struct SamplingParams {
  // 0 = greedy (argmax, ties to the lowest id). Range [0, 100].
  float temperature = 1.0f;
  // Keep the k most likely tokens; 0 = off. Range [0, vocab_size].
  int32_t top_k = 0;
  // Keep the smallest set of most likely tokens with mass >= top_p. (0, 1].
  float top_p = 1.0f;
  // Drop tokens with probability < min_p * p(most likely). [0, 1].
  float min_p = 0.0f;
  // HF repetition penalty over prompt and output tokens: a seen token's
  // logit l becomes l / p if l > 0, else l * p. (0, 10]; 1 = off.
  float repetition_penalty = 1.0f;
  // OpenAI penalties over output tokens: l -= presence * (count > 0)
  // + frequency * count. Each in [-2, 2].
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  // Seed of the request's own random stream; unset = from a random device.
  std::optional<uint64_t> seed;
  // Return the chosen token's logprob (implied by top_logprobs > 0).
  bool logprobs = false;
  // Also return this many most likely tokens' logprobs. [0, 20].
  int32_t top_logprobs = 0;

  // OK, or InvalidArgument naming the first bad field and its allowed range
  // (NaN is out of every range). `vocab_size` bounds top_k.
  absl::Status Validate(int32_t vocab_size) const;

  bool wants_logprobs() const { return logprobs || top_logprobs > 0; }
  bool has_penalties() const {
    return repetition_penalty != 1.0f || presence_penalty != 0.0f || frequency_penalty != 0.0f;
  }
};

inline constexpr int32_t kMaxTopLogprobs = 20;
inline constexpr float kMaxTemperature = 100.0f;
inline constexpr float kMaxRepetitionPenalty = 10.0f;
inline constexpr float kMaxAbsPresenceFrequencyPenalty = 2.0f;

}  // namespace loraserve
