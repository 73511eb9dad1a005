// RequestRecord: what the replay (generate_client.h) observed for one
// request, and all the report (latency_report.h) reads. Times are seconds on
// the steady clock since the run's start.
//
// Plain data; written by one gRPC callback thread while its call is open,
// read after the run has ended.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace loraserve::loadgen {

// How a request ended.
enum class Outcome {
  kOk,         // gRPC OK and a Finished event that is not CANCELLED
  kFailed,     // a gRPC error status, an Error event, or no terminal event
  kCancelled,  // cancelled by us at the drain timeout, or Finished CANCELLED
};

const char* OutcomeName(Outcome outcome);  // "ok", "failed", "cancelled"

// One TokenDelta carrying >= 1 token.
struct DeltaArrival {
  double t_s = 0;      // arrival
  int32_t tokens = 0;  // token ids in the delta
};

struct RequestRecord {
  int64_t id = 0;
  std::string adapter;
  int32_t input_len = 0;   // requested prompt length
  int32_t output_len = 0;  // requested max_tokens

  double scheduled_s = 0;                // the trace's t
  double send_s = 0;                     // when the call was started
  std::optional<double> first_token_s;   // first delta with >= 1 token
  std::vector<DeltaArrival> deltas;      // every delta with >= 1 token, in order
  double end_s = 0;                      // when the call was done (status received)

  Outcome outcome = Outcome::kFailed;
  std::string finish_reason;  // "stop", "length", "context_length", "cancelled" when Finished
  int status_code = 0;        // google.rpc code of the failure (0 when not failed)
  std::string message;        // the failure's message

  int64_t prompt_tokens = 0;  // Usage of the last message, else input_len
  int64_t output_tokens = 0;  // Usage of the last message, else counted from deltas
};

}  // namespace loraserve::loadgen
