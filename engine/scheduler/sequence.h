// Sequence: the scheduler's view of one request (DESIGN.md, "The data path of
// one request"): its adapter, prompt and generated tokens, how many of those
// tokens already have KV in the cache, and where it sits (waiting / running).
//
// Token positions: a sequence's known tokens are prompt ++ output. The tokens
// [0, num_computed_tokens()) have KV; a scheduled step feeds the next
// `num_new_tokens` of them (Token(i) gives the id at position i). When a step
// feeds the last known token, the runner samples the next one. A running
// decode therefore has num_computed_tokens() == num_tokens() - 1 before its
// step; after a preemption num_computed_tokens() is 0 and the prompt plus the
// tokens generated so far are recomputed (in chunks) before sampling resumes.
//
// Owned by the Scheduler; the engine reads sequences through const pointers
// that stay valid until the next non-const Scheduler call. Not thread-safe
// (engine thread only).
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "common/logging.h"

namespace loraserve {

// Engine-wide id of an accepted request (unique among in-flight requests).
using RequestId = uint64_t;
// Opaque adapter identity chosen by the engine. A new adapter loaded under an
// old name gets a new key, so a key never refers to two sets of weights.
using AdapterKey = uint64_t;
// The base model: always ready, never counts toward max_loras.
inline constexpr AdapterKey kBaseModelAdapter = 0;

enum class SequenceStatus : uint8_t {
  kWaiting,  // queued: no KV, not in any batch
  kRunning,  // admitted: holds KV, is (or will next be) in a batch
};

class Sequence {
 public:
  // `arrival` orders sequences (smaller = older); the scheduler assigns it.
  Sequence(RequestId id, AdapterKey adapter, std::vector<int32_t> prompt, uint64_t arrival)
      : id_(id), adapter_(adapter), arrival_(arrival), prompt_(std::move(prompt)) {}

  Sequence(const Sequence&) = delete;
  Sequence& operator=(const Sequence&) = delete;

  RequestId id() const { return id_; }
  AdapterKey adapter() const { return adapter_; }
  uint64_t arrival() const { return arrival_; }
  SequenceStatus status() const { return status_; }

  const std::vector<int32_t>& prompt_tokens() const { return prompt_; }
  const std::vector<int32_t>& output_tokens() const { return output_; }
  int32_t num_prompt_tokens() const { return static_cast<int32_t>(prompt_.size()); }
  int32_t num_output_tokens() const { return static_cast<int32_t>(output_.size()); }
  // Known tokens: prompt plus generated.
  int32_t num_tokens() const { return num_prompt_tokens() + num_output_tokens(); }
  // The token id at position `i` of prompt ++ output; 0 <= i < num_tokens().
  int32_t Token(int32_t i) const {
    LS_CHECK(i >= 0 && i < num_tokens()) << "position " << i << " of " << num_tokens();
    return i < num_prompt_tokens() ? prompt_[i] : output_[i - num_prompt_tokens()];
  }

  // Tokens whose KV is in the cache (or is being computed by the step just
  // scheduled: the scheduler advances this when it schedules a step).
  int32_t num_computed_tokens() const { return num_computed_; }
  // Known tokens not yet fed to the model. 0 while a sampled token is awaited.
  int32_t num_remaining_tokens() const { return num_tokens() - num_computed_; }
  // Times this sequence was preempted (its KV dropped and recomputed).
  int32_t num_preemptions() const { return num_preemptions_; }

 private:
  friend class Scheduler;

  const RequestId id_;
  const AdapterKey adapter_;
  const uint64_t arrival_;
  std::vector<int32_t> prompt_;
  std::vector<int32_t> output_;
  SequenceStatus status_ = SequenceStatus::kWaiting;
  int32_t num_computed_ = 0;
  int32_t num_preemptions_ = 0;
  // Schedule() calls in which this waiting sequence, with its adapter ready,
  // was refused a LoRA slot (max_loras or another request's claim). Reset on
  // admission. See SchedulerConfig::starvation_iterations.
  int32_t passed_over_ = 0;
  // Schedule() call that last put this sequence in the batch (scratch).
  uint64_t scheduled_in_ = 0;
};

}  // namespace loraserve
