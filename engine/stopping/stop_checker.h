// StopChecker: decides when one request's generation ends and which of its
// detokenized text may be streamed now (DESIGN.md, "The data path of one
// request"; loraserve.v1.StoppingParams).
//
// Fed once per generated token with the text that token completes (chunks
// never end inside a UTF-8 character: the incremental detokenizer's job),
// it returns the text that is safe to emit and, at the end, why generation
// stopped. Checks, in this order, after each token:
//   1. eos ids of the model (unless ignore_eos), then stop_token_ids: stop;
//      the token id is part of the output, its text is not emitted.
//   2. stop strings, matched on the concatenated text: the earliest complete
//      match wins (ties: first in the list); the text before it is emitted,
//      the stop string and anything after it never are. Generation stops as
//      soon as any stop string is complete (a longer one starting earlier
//      that might still complete is not waited for).
//   3. max_tokens generated: kLength.
//   4. prompt + output tokens reach the context length: kContextLength.
// While running, the longest suffix of the text that is still a proper
// prefix of some stop string is held back; it is released as soon as it can
// no longer start a stop string, or when generation ends for another reason.
// Stop strings are valid UTF-8, so held-back and emitted text split only at
// character boundaries.
//
// One per request, owned by the engine thread's per-request state; not
// thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace loraserve {

enum class FinishReason : uint8_t {
  kStop,           // eos id, stop token id or stop string
  kLength,         // max_tokens generated
  kContextLength,  // the model's context is full
};

// "stop", "length", "context_length" (metric label values).
const char* FinishReasonName(FinishReason reason);

inline constexpr int kMaxStopStrings = 16;
inline constexpr int kMaxStopStringBytes = 256;

struct StopConfig {
  // Tokens to generate at most (>= 1); unset: up to the context length.
  std::optional<int32_t> max_tokens;
  // At most 16, each non-empty valid UTF-8 of at most 256 bytes.
  std::vector<std::string> stop_strings;
  std::vector<int32_t> stop_token_ids;
  bool ignore_eos = false;
  // The model's end-of-sequence ids (generation_config.json).
  std::vector<int32_t> eos_token_ids;
  // Tokens (prompt + output) the model can hold, > num_prompt_tokens.
  int32_t context_length = 0;
  int32_t num_prompt_tokens = 0;
};

struct FinishInfo {
  FinishReason reason = FinishReason::kStop;
  // The stop string that matched (reason kStop by string), else empty.
  std::string matched_stop_string;
  // The eos or stop token id that matched (reason kStop by token).
  std::optional<int32_t> matched_token;
};

struct StopUpdate {
  // Text safe to emit now; may be empty.
  std::string text;
  // Set on the token that ends generation.
  std::optional<FinishInfo> finish;
};

class StopChecker {
 public:
  // InvalidArgument naming the field ("stopping.stop[2]", "stopping.max_tokens",
  // ...) when the config is out of range.
  static absl::StatusOr<StopChecker> Create(StopConfig config);

  // Accounts one generated token and the text it completes. For an end token
  // (IsEndToken) `text` must not hold that token's own text (it is never
  // emitted), only text of earlier tokens the caller held back, e.g. a
  // detokenizer's flushed bytes: it is still checked for stop strings. Must not
  // be called after finished().
  StopUpdate Append(int32_t token, std::string_view text);

  // Whether Append(token, ...) will end generation for a reason that does not
  // depend on text: an eos / stop token id (whose own text is dropped), or
  // max_tokens / the context length being reached by this token. Callers use
  // it to flush a detokenizer before the final Append.
  bool IsEndToken(int32_t token) const;
  bool NextTokenReachesLimit() const;

  bool finished() const { return finished_; }
  int32_t num_output_tokens() const { return num_output_tokens_; }
  // Text held back as a possible stop-string prefix.
  std::string_view held_text() const { return pending_; }

 private:
  explicit StopChecker(StopConfig config);
  // Length of the longest suffix of pending_ that is a proper prefix of a
  // stop string.
  size_t HeldSuffixLength() const;
  StopUpdate Finish(FinishInfo info, std::string text);

  StopConfig config_;
  size_t max_stop_bytes_ = 0;
  std::string pending_;  // text not yet emitted
  int32_t num_output_tokens_ = 0;
  bool finished_ = false;
};

}  // namespace loraserve
