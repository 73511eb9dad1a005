#include "engine/request_state.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/status.h"

namespace loraserve {
namespace {

GenerationFinish ToGenerationFinish(FinishReason reason) {
  switch (reason) {
    case FinishReason::kStop:
      return GenerationFinish::kStop;
    case FinishReason::kLength:
      return GenerationFinish::kLength;
    case FinishReason::kContextLength:
      return GenerationFinish::kContextLength;
  }
  return GenerationFinish::kStop;
}

}  // namespace

absl::StatusOr<std::unique_ptr<RequestState>> RequestState::Create(
    GenerationRequest request, std::shared_ptr<GenerationSink> sink, const RequestLimits& limits,
    std::optional<uint64_t> seed) {
  LS_CHECK(limits.tokenizer != nullptr);
  if (request.request_id.empty()) return absl::InvalidArgumentError("request_id is empty");
  if (sink == nullptr) return absl::InvalidArgumentError("sink is null");
  const std::vector<int32_t>& prompt = request.prompt_ids;
  if (prompt.empty()) return absl::InvalidArgumentError("prompt_ids is empty");
  for (size_t i = 0; i < prompt.size(); ++i) {
    if (prompt[i] < 0 || prompt[i] >= limits.vocab_size) {
      return absl::InvalidArgumentError(absl::StrCat("prompt_ids[", i, "] is ", prompt[i],
                                                     ", outside the vocab [0, ", limits.vocab_size,
                                                     ")"));
    }
  }
  if (prompt.size() >= static_cast<size_t>(limits.max_context)) {
    return absl::InvalidArgumentError(
        absl::StrCat("prompt_ids has ", prompt.size(), " tokens; the model's context is ",
                     limits.max_context, " tokens (prompt + output), leaving no room to generate"));
  }
  for (size_t i = 0; i < request.stopping.stop_token_ids.size(); ++i) {
    const int32_t t = request.stopping.stop_token_ids[i];
    if (t < 0 || t >= limits.vocab_size) {
      return absl::InvalidArgumentError(absl::StrCat("stopping.stop_token_ids[", i, "] is ", t,
                                                     ", outside the vocab [0, ", limits.vocab_size,
                                                     ")"));
    }
  }
  RETURN_IF_ERROR(request.sampling.Validate(limits.vocab_size));
  if (!request.sampling.seed.has_value() && seed.has_value()) request.sampling.seed = seed;

  StopConfig sc;
  sc.max_tokens = request.stopping.max_tokens;
  sc.stop_strings = request.stopping.stop;
  sc.stop_token_ids = request.stopping.stop_token_ids;
  sc.ignore_eos = request.stopping.ignore_eos;
  sc.eos_token_ids = limits.eos_token_ids;
  sc.context_length = limits.max_context;
  sc.num_prompt_tokens = static_cast<int32_t>(prompt.size());
  ASSIGN_OR_RETURN(StopChecker stop, StopChecker::Create(std::move(sc)));
  ASSIGN_OR_RETURN(SamplerState sampler,
                   SamplerState::Create(request.sampling, limits.vocab_size, prompt));
  return std::unique_ptr<RequestState>(new RequestState(std::move(request), std::move(sink),
                                                        std::move(sampler), std::move(stop),
                                                        limits));
}

RequestState::RequestState(GenerationRequest request, std::shared_ptr<GenerationSink> sink,
                           SamplerState sampler, StopChecker stop, const RequestLimits& limits)
    : request_(std::move(request)),
      sink_(std::move(sink)),
      sampler_(std::move(sampler)),
      stop_(std::move(stop)),
      decoder_(limits.tokenizer, /*skip_special_tokens=*/true) {
  tokens_ = std::move(request_.prompt_ids);
  request_.prompt_ids.clear();
  num_prompt_tokens_ = static_cast<int32_t>(tokens_.size());
  const absl::Time now = absl::Now();
  timings_.accepted = now;
  timings_.arrival = request_.arrival == absl::InfinitePast() ? now : request_.arrival;
}

GenerationEvent RequestState::NewEvent(GenerationEvent::Kind kind, absl::Time now) const {
  GenerationEvent e;
  e.kind = kind;
  e.time = now;
  e.timings = timings_;
  e.prompt_tokens = num_prompt_tokens_;
  e.completion_tokens = num_output_tokens();
  return e;
}

void RequestState::PushTerminal(GenerationEvent event, absl::Time now) {
  LS_CHECK(!done_) << "request " << request_.request_id << ": second terminal event";
  done_ = true;
  timings_.end = now;
  event.timings = timings_;
  sink_->Push(std::move(event));
}

bool RequestState::OnToken(const SampledToken& sampled, absl::Time now) {
  LS_CHECK(!done_) << "request " << request_.request_id << ": token after the terminal event";
  const int32_t token = sampled.token;
  // Will this token end generation for a reason other than a stop string?
  // Then the detokenizer's held-back bytes are flushed with it.
  const bool end_token = stop_.IsEndToken(token);
  const bool end_by_count = stop_.NextTokenReachesLimit();
  tokens_.push_back(token);
  if (timings_.first_token == absl::InfinitePast()) timings_.first_token = now;
  timings_.last_token = now;
  std::string text;
  std::string flushed;  // held-back text of earlier tokens, flushed at an end token
  if (end_token) {
    flushed = decoder_.Finish();  // the end token's own text is never emitted
  } else {
    absl::StatusOr<std::string> step = decoder_.Step(token);
    if (!step.ok()) {
      Fail(AnnotateStatus(step.status(), absl::StrCat("detokenizing generated token ", token)),
           now);
      return true;
    }
    text = *std::move(step);
    if (end_by_count) text += decoder_.Finish();
  }
  StopUpdate update = stop_.Append(token, end_token ? flushed : text);

  GenerationEvent delta = NewEvent(GenerationEvent::Kind::kDelta, now);
  delta.token_ids.push_back(token);
  delta.text = std::move(update.text);
  if (sampled.has_logprobs) {
    TokenLogprobEntry lp;
    lp.token_id = token;
    lp.logprob = sampled.logprob;
    for (const TopLogprob& t : sampled.top) lp.top.push_back({t.token, t.logprob});
    delta.logprobs.push_back(std::move(lp));
  }
  sink_->Push(std::move(delta));

  if (!update.finish.has_value()) return false;
  GenerationEvent fin = NewEvent(GenerationEvent::Kind::kFinished, now);
  fin.finish = ToGenerationFinish(update.finish->reason);
  if (!update.finish->matched_stop_string.empty()) {
    fin.matched_stop = update.finish->matched_stop_string;
  } else if (update.finish->matched_token.has_value()) {
    fin.matched_stop = absl::StrCat(*update.finish->matched_token);
  }
  PushTerminal(std::move(fin), now);
  return true;
}

void RequestState::Cancel(absl::Status why, absl::Time now) {
  GenerationEvent e = NewEvent(GenerationEvent::Kind::kFinished, now);
  e.finish = GenerationFinish::kCancelled;
  e.error = std::move(why);
  PushTerminal(std::move(e), now);
}

void RequestState::Fail(absl::Status error, absl::Time now) {
  LS_CHECK(!error.ok()) << "Fail with OK";
  GenerationEvent e = NewEvent(GenerationEvent::Kind::kError, now);
  e.error = std::move(error);
  PushTerminal(std::move(e), now);
}

}  // namespace loraserve
