// LoadgenOptions: every loraserve-loadgen flag as one struct, its validation
// (InvalidArgument naming the flag, which the binary turns into exit code 2),
// and its JSON form (the report's "config" object, keys = flag names with
// underscores). loadgen_main.cc fills it from absl flags; loadgen_run.h runs
// it; tests build it directly.
//
// Plain data and free functions; any thread.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "bench/loadgen/trace.h"
#include "nlohmann/json.hpp"

namespace loraserve::loadgen {

struct LoadgenOptions {
  std::string addr;                 // --addr H:P of the Generation service ("" only with --write-trace)
  std::string admin_addr;           // --admin-addr H:P of AdapterAdmin (for --register-adapters)
  std::string admin_token_file;     // --admin-token-file: bearer token for AdapterAdmin
  std::string register_adapters;    // --register-adapters DIR: load DIR/* before the run
  int32_t register_concurrency = 16;  // --register-concurrency: LoadAdapter calls in flight
  double wait_ready_s = 0;          // --wait-ready: poll health until SERVING (0 = no)
  double connect_timeout_s = 10;    // --connect-timeout: channel connect wait otherwise
  TraceOptions trace;               // --rate --duration --cv --alpha --num-adapters ...
  std::string trace_file;           // --trace FILE: replay instead of synthesizing
  std::string write_trace;          // --write-trace FILE: save the trace (alone: no run)
  double request_timeout_s = 0;     // --request-timeout: per-request deadline (0 = none)
  double drain_timeout_s = 600;     // --drain-timeout: after the last send
  double slo_ttft_s = 6;            // --slo-ttft: first-token SLO
  std::string json;                 // --json FILE: the report as JSON
  bool fail_on_error = false;       // --fail-on-error: exit 1 if any request did not succeed
  double progress_interval_s = 5;   // --progress-interval: stderr progress (0 = none)

  // InvalidArgument naming the flag. Trace synthesis flags are checked only
  // when no --trace is given (the prompt token range always).
  absl::Status Validate() const;
  // The "config" object of the JSON report.
  nlohmann::ordered_json ToJson() const;
};

}  // namespace loraserve::loadgen
