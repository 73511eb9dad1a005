// Wire <-> engine conversions for Generation: a GenerateRequest is validated
// (every field range, the message naming the field as the proto spells it,
// e.g. "prompt.token_ids[3]", "sampling.top_p", "stopping.stop[2]") and
// tokenized into a GenerationRequest; engine events become GenerateResponses.
//
// Free functions; any thread (the Tokenizer is immutable and thread-safe).
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "engine/engine_api.h"
#include "loraserve/v1/generation.pb.h"

namespace loraserve {

class Tokenizer;

struct ModelLimits {
  const Tokenizer* tokenizer = nullptr;  // for text prompts
  int32_t vocab_size = 0;
  int32_t max_context = 0;  // prompt + output tokens
};

// InvalidArgument naming the first bad field. request_id and arrival are
// copied as given (the caller assigns an id when the request has none).
absl::StatusOr<GenerationRequest> ToGenerationRequest(const v1::GenerateRequest& request,
                                                      const ModelLimits& limits);

v1::FinishReason ToProtoFinishReason(GenerationFinish finish);

// "stop", "length", "context_length", "cancelled" or "unspecified" (the
// engine's and the metrics' spelling), for clients and tools.
const char* FinishReasonName(v1::FinishReason reason);

// The response message for one engine event.
v1::GenerateResponse ToGenerateResponse(const GenerationEvent& event,
                                        const std::string& request_id);

}  // namespace loraserve
