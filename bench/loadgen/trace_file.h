// Trace files: JSON Lines, one request per line, the format both this load
// generator and the Hugging Face reference peer (bench/peer/) replay:
//
//   {"id": 0, "t": 0.1234, "adapter": "adapter-0007", "input_len": 100,
//    "output_len": 50, "prompt_ids": [17, 4, ...]}
//
// id      integer >= 0, unique in the file (the request is sent as "lg-<id>")
// t       seconds after the run's start, >= 0, nondecreasing line to line
// adapter adapter name, "" = the base model
// input_len  prompt length >= 1; equals prompt_ids' length when both are given
// output_len tokens to generate, >= 1 (sent as max_tokens with ignore_eos)
// prompt_ids optional on reading (then drawn from --seed, trace.h); always
//            written
// Blank lines are skipped; any other malformed line is InvalidArgument
// "FILE:LINE: field \"t\" ..." naming the file, line and field.
//
// Free functions; any thread (each call owns its stream).
#pragma once

#include <istream>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "bench/loadgen/trace.h"

namespace loraserve::loadgen {

// One line (no newline), keys in the order above.
std::string TraceLine(const TraceRequest& request);

// Writes every request, one line each; an error names the path.
absl::Status WriteTraceFile(const std::string& path, const std::vector<TraceRequest>& trace);

// Parses a trace from `in`; `name` stands for the file in messages.
absl::StatusOr<std::vector<TraceRequest>> ParseTrace(std::istream& in, std::string_view name);

// ParseTrace over the file at `path` (NotFound naming it when unreadable).
absl::StatusOr<std::vector<TraceRequest>> ReadTraceFile(const std::string& path);

}  // namespace loraserve::loadgen
