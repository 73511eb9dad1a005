// RequestState: everything the engine loop keeps for one accepted request:
// the request, its sink, its tokens (prompt ++ generated, the spans the
// model reads), the adapter object it started with, its sampler state, stop
// checker and incremental detokenizer, and its timings. Turns each sampled
// token into a delta event (and the terminal event when generation ends) and
// guarantees exactly one terminal event.
//
// Built and validated by RequestState::Create on the Submit caller's thread
// (so bad input is refused before acceptance), then owned and used by the
// engine thread only. Not thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "engine/adapters/peft_adapter.h"
#include "engine/engine_api.h"
#include "engine/model/tokenizer.h"
#include "engine/model/tokenizer_incremental_decoder.h"
#include "engine/sampler/sampler.h"
#include "engine/scheduler/sequence.h"
#include "engine/stopping/stop_checker.h"

namespace loraserve {

// What Create needs to know about the model.
struct RequestLimits {
  const Tokenizer* tokenizer = nullptr;  // must outlive the state
  int32_t vocab_size = 0;                // model vocab (logit rows)
  int32_t max_context = 0;               // prompt + output tokens
  std::vector<int32_t> eos_token_ids;
};

class RequestState {
 public:
  // Validates `request` (InvalidArgument naming the field: request_id,
  // prompt_ids, sampling.*, stopping.*) and builds its state. `seed` replaces
  // an unset request.sampling.seed when given (engine seed policy).
  static absl::StatusOr<std::unique_ptr<RequestState>> Create(
      GenerationRequest request, std::shared_ptr<GenerationSink> sink, const RequestLimits& limits,
      std::optional<uint64_t> seed);

  RequestState(const RequestState&) = delete;
  RequestState& operator=(const RequestState&) = delete;

  // Set by the engine at acceptance.
  RequestId id = 0;
  AdapterKey adapter_key = kBaseModelAdapter;
  std::string adapter_path;  // its PEFT directory (disk tier); empty = base model

  const GenerationRequest& request() const { return request_; }
  // prompt ++ generated; the model reads spans of it.
  const std::vector<int32_t>& tokens() const { return tokens_; }
  int32_t num_prompt_tokens() const { return num_prompt_tokens_; }
  int32_t num_output_tokens() const {
    return static_cast<int32_t>(tokens_.size()) - num_prompt_tokens_;
  }
  SamplerState* sampler() { return &sampler_; }
  RequestTimings& timings() { return timings_; }
  bool done() const { return done_; }

  // Accounts the token just sampled: appends it, detokenizes, runs the stop
  // checks and pushes a delta (and the finished event when it ends the
  // request). Returns true when generation ended (finished or error: a
  // detokenization failure ends the request with an error event).
  bool OnToken(const SampledToken& sampled, absl::Time now);
  // Terminal events other than a natural finish. Each LS_CHECKs no terminal
  // event was pushed before.
  void Cancel(absl::Status why, absl::Time now);
  void Fail(absl::Status error, absl::Time now);

 private:
  RequestState(GenerationRequest request, std::shared_ptr<GenerationSink> sink,
               SamplerState sampler, StopChecker stop, const RequestLimits& limits);
  GenerationEvent NewEvent(GenerationEvent::Kind kind, absl::Time now) const;
  void PushTerminal(GenerationEvent event, absl::Time now);

  GenerationRequest request_;  // prompt_ids moved into tokens_
  std::shared_ptr<GenerationSink> sink_;
  std::vector<int32_t> tokens_;
  int32_t num_prompt_tokens_ = 0;
  SamplerState sampler_;
  StopChecker stop_;
  IncrementalDecoder decoder_;
  RequestTimings timings_;
  bool done_ = false;
};

}  // namespace loraserve
