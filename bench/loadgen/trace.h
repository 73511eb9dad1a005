// The S-LoRA synthetic workload: TraceOptions (the trace flags, validated
// with messages naming the flag) and SynthesizeTrace, which turns them into
// the list of requests the replay sends.
//
//   total      = floor(rate * duration)   (+1e-9 so 0.29 * 100 is 29, not 28)
//   adapter    = floor(Power(alpha) * n) clamped to n - 1 (numpy power(alpha);
//                P(index < k) = (k / n)^alpha: alpha = 1 is uniform, smaller
//                alpha piles requests onto low indices); name = adapter_format
//                applied to the index; n = 0 sends everything to the base model
//   gaps       ~ Gamma(shape 1 / cv^2, scale cv^2 / rate) (cv = 1: Poisson);
//                arrival t = cumulative sum of the gaps (the first is t = gap 0)
//   lengths    uniform integers in [lo, hi) for input and output
//   prompt     input_len ids uniform in [prompt_token_min, prompt_token_max)
//
// Each field draws from its own sub-stream of the seed (trace_random.h), so
// e.g. changing cv moves arrival times but keeps every adapter and length.
// Deterministic across runs and standard libraries.
//
// Free functions and plain structs; any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace loraserve::loadgen {

// One request of a trace; also one line of a trace file (trace_file.h).
struct TraceRequest {
  int64_t id = 0;
  double t = 0;                      // seconds after the run's start
  std::string adapter;               // "" = the base model
  int32_t input_len = 0;             // prompt tokens
  int32_t output_len = 0;            // tokens to generate (max_tokens, ignore_eos)
  std::vector<uint32_t> prompt_ids;  // input_len ids; empty = not yet drawn

  bool operator==(const TraceRequest&) const = default;
};

// A half-open integer range [lo, hi), written "lo:hi" on the command line.
struct LengthRange {
  int32_t lo = 8;
  int32_t hi = 512;
  bool operator==(const LengthRange&) const = default;
};

struct TraceOptions {
  double rate = 1.0;         // --rate: requests per second, > 0
  double duration_s = 60.0;  // --duration: seconds, > 0
  double cv = 1.0;           // --cv: coefficient of variation of the gaps, > 0
  double alpha = 1.0;        // --alpha: adapter popularity skew, > 0
  int32_t num_adapters = 0;  // --num-adapters: 0 = base model only
  std::string adapter_format = "adapter-%04d";  // --adapter-format: one integer conversion
  LengthRange input_len;                        // --input-len lo:hi
  LengthRange output_len;                       // --output-len lo:hi
  uint32_t prompt_token_min = 1;                // --prompt-token-min
  uint32_t prompt_token_max = 500;              // --prompt-token-max (exclusive)
  uint64_t seed = 42;                           // --seed

  // InvalidArgument naming the flag: "--alpha is 0, must be > 0".
  absl::Status Validate() const;
  // floor(rate * duration) (see the header comment).
  int64_t TotalRequests() const;
};

// The whole trace, ids 0.., t nondecreasing, prompts drawn. Validates first.
absl::StatusOr<std::vector<TraceRequest>> SynthesizeTrace(const TraceOptions& options);

// Draws the prompt of every request whose prompt_ids is empty: the prompt
// sub-stream of `seed` is walked over all requests in order (requests that
// have prompt_ids still consume their draws), so a trace replayed without
// prompt_ids gets exactly the prompts SynthesizeTrace gave it.
// InvalidArgument when token_min >= token_max.
absl::Status FillMissingPrompts(uint64_t seed, uint32_t token_min, uint32_t token_max,
                                 std::vector<TraceRequest>* trace);

// `format` applied to `index` ("adapter-%04d", 7 -> "adapter-0007");
// InvalidArgument naming --adapter-format unless it holds exactly one integer
// conversion (absl::ParsedFormat<'d'>).
absl::StatusOr<std::string> AdapterName(std::string_view format, int32_t index);

// "lo:hi" -> [lo, hi); InvalidArgument naming `flag` unless 1 <= lo < hi.
absl::StatusOr<LengthRange> ParseLengthRange(std::string_view flag, std::string_view text);

}  // namespace loraserve::loadgen
