#include "server/request_convert.h"

#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "engine/model/tokenizer.h"
#include "engine/stopping/stop_checker.h"

namespace loraserve {
namespace {

// uint32 on the wire, int32 inside: values past INT32_MAX saturate (every
// range check below rejects them anyway).
int32_t Narrow(uint32_t v) {
  return v > static_cast<uint32_t>(std::numeric_limits<int32_t>::max())
             ? std::numeric_limits<int32_t>::max()
             : static_cast<int32_t>(v);
}

absl::StatusOr<std::vector<int32_t>> PromptIds(const v1::GenerateRequest& r,
                                               const ModelLimits& limits) {
  std::vector<int32_t> ids;
  switch (r.prompt_case()) {
    case v1::GenerateRequest::kText: {
      if (r.text().empty()) return absl::InvalidArgumentError("prompt.text is empty");
      if (limits.tokenizer == nullptr) {
        return absl::UnavailableError("prompt.text needs the model's tokenizer, not loaded yet");
      }
      auto encoded = limits.tokenizer->Encode(r.text(), /*add_special_tokens=*/true);
      if (!encoded.ok()) return AnnotateStatus(encoded.status(), "prompt.text");
      ids = *std::move(encoded);
      break;
    }
    case v1::GenerateRequest::kTokenIds: {
      const auto& wire = r.token_ids().ids();
      if (wire.empty()) return absl::InvalidArgumentError("prompt.token_ids is empty");
      ids.reserve(wire.size());
      for (int i = 0; i < wire.size(); ++i) {
        if (wire[i] >= static_cast<uint32_t>(limits.vocab_size)) {
          return absl::InvalidArgumentError(absl::StrCat("prompt.token_ids[", i, "] is ", wire[i],
                                                         ", must be < vocab size ",
                                                         limits.vocab_size));
        }
        ids.push_back(static_cast<int32_t>(wire[i]));
      }
      break;
    }
    case v1::GenerateRequest::PROMPT_NOT_SET:
      return absl::InvalidArgumentError("prompt is not set: give prompt.text or prompt.token_ids");
  }
  if (ids.empty()) return absl::InvalidArgumentError("prompt tokenizes to no tokens");
  if (static_cast<int64_t>(ids.size()) >= limits.max_context) {
    return absl::InvalidArgumentError(absl::StrCat("prompt is ", ids.size(),
                                                   " tokens, the model's context holds ",
                                                   limits.max_context, " (prompt + output)"));
  }
  return ids;
}

absl::StatusOr<SamplingParams> Sampling(const v1::GenerateRequest& r, int32_t vocab_size) {
  SamplingParams p;
  const v1::SamplingParams& s = r.sampling();
  if (s.has_temperature()) p.temperature = s.temperature();
  if (s.has_top_k()) p.top_k = Narrow(s.top_k());
  if (s.has_top_p()) p.top_p = s.top_p();
  if (s.has_min_p()) p.min_p = s.min_p();
  if (s.has_repetition_penalty()) p.repetition_penalty = s.repetition_penalty();
  if (s.has_presence_penalty()) p.presence_penalty = s.presence_penalty();
  if (s.has_frequency_penalty()) p.frequency_penalty = s.frequency_penalty();
  if (s.has_seed()) p.seed = s.seed();
  if (r.top_logprobs() > static_cast<uint32_t>(kMaxTopLogprobs)) {
    return absl::InvalidArgumentError(absl::StrCat("top_logprobs is ", r.top_logprobs(),
                                                   ", must be in [0, ", kMaxTopLogprobs, "]"));
  }
  p.logprobs = r.logprobs();
  p.top_logprobs = static_cast<int32_t>(r.top_logprobs());
  RETURN_IF_ERROR(p.Validate(vocab_size));
  return p;
}

absl::StatusOr<StoppingOptions> Stopping(const v1::StoppingParams& s, const ModelLimits& limits,
                                         int32_t num_prompt_tokens) {
  StoppingOptions o;
  if (s.has_max_tokens()) o.max_tokens = Narrow(s.max_tokens());
  o.stop.assign(s.stop().begin(), s.stop().end());
  for (int i = 0; i < s.stop_token_ids_size(); ++i) {
    const uint32_t id = s.stop_token_ids(i);
    if (id >= static_cast<uint32_t>(limits.vocab_size)) {
      return absl::InvalidArgumentError(absl::StrCat("stopping.stop_token_ids[", i, "] is ", id,
                                                     ", must be < vocab size ", limits.vocab_size));
    }
    o.stop_token_ids.push_back(static_cast<int32_t>(id));
  }
  o.ignore_eos = s.ignore_eos();
  // The engine's own checker validates the rest (max_tokens >= 1, stop
  // string count, sizes, UTF-8) with the field names of the proto.
  StopConfig config;
  config.max_tokens = o.max_tokens;
  config.stop_strings = o.stop;
  config.stop_token_ids = o.stop_token_ids;
  config.ignore_eos = o.ignore_eos;
  config.context_length = limits.max_context;
  config.num_prompt_tokens = num_prompt_tokens;
  RETURN_IF_ERROR(StopChecker::Create(std::move(config)).status());
  return o;
}

}  // namespace

absl::StatusOr<GenerationRequest> ToGenerationRequest(const v1::GenerateRequest& request,
                                                      const ModelLimits& limits) {
  GenerationRequest out;
  out.request_id = request.request_id();
  out.adapter = request.adapter_id();
  ASSIGN_OR_RETURN(out.sampling, Sampling(request, limits.vocab_size));
  ASSIGN_OR_RETURN(out.prompt_ids, PromptIds(request, limits));
  ASSIGN_OR_RETURN(out.stopping, Stopping(request.stopping(), limits,
                                          static_cast<int32_t>(out.prompt_ids.size())));
  return out;
}

v1::FinishReason ToProtoFinishReason(GenerationFinish finish) {
  switch (finish) {
    case GenerationFinish::kStop:
      return v1::FINISH_REASON_STOP;
    case GenerationFinish::kLength:
      return v1::FINISH_REASON_LENGTH;
    case GenerationFinish::kContextLength:
      return v1::FINISH_REASON_CONTEXT_LENGTH;
    case GenerationFinish::kCancelled:
      return v1::FINISH_REASON_CANCELLED;
  }
  return v1::FINISH_REASON_UNSPECIFIED;
}

v1::GenerateResponse ToGenerateResponse(const GenerationEvent& event,
                                        const std::string& request_id) {
  v1::GenerateResponse out;
  out.set_request_id(request_id);
  switch (event.kind) {
    case GenerationEvent::Kind::kDelta: {
      v1::TokenDelta* d = out.mutable_delta();
      for (int32_t id : event.token_ids) d->add_token_ids(static_cast<uint32_t>(id));
      d->set_text(event.text);
      for (const TokenLogprobEntry& lp : event.logprobs) {
        v1::TokenLogprob* p = d->add_logprobs();
        p->set_token_id(static_cast<uint32_t>(lp.token_id));
        p->set_logprob(lp.logprob);
        for (const TopLogprobEntry& t : lp.top) {
          v1::TopLogprob* tp = p->add_top();
          tp->set_token_id(static_cast<uint32_t>(t.token_id));
          tp->set_logprob(t.logprob);
        }
      }
      break;
    }
    case GenerationEvent::Kind::kFinished:
      out.mutable_finished()->set_reason(ToProtoFinishReason(event.finish));
      out.mutable_finished()->set_matched_stop(event.matched_stop);
      break;
    case GenerationEvent::Kind::kError:
      out.mutable_error()->set_code(static_cast<int32_t>(event.error.code()));
      out.mutable_error()->set_message(std::string(event.error.message()));
      break;
  }
  out.mutable_usage()->set_prompt_tokens(static_cast<uint32_t>(event.prompt_tokens));
  out.mutable_usage()->set_completion_tokens(static_cast<uint32_t>(event.completion_tokens));
  return out;
}

const char* FinishReasonName(v1::FinishReason reason) {
  switch (reason) {
    case v1::FINISH_REASON_STOP:
      return "stop";
    case v1::FINISH_REASON_LENGTH:
      return "length";
    case v1::FINISH_REASON_CONTEXT_LENGTH:
      return "context_length";
    case v1::FINISH_REASON_CANCELLED:
      return "cancelled";
    default:
      return "unspecified";
  }
}

}  // namespace loraserve
