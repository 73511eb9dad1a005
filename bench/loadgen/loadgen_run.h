// RunLoadgen: one whole loraserve-loadgen run minus flag parsing, so tests
// run it in-process:
//   1. the trace: --trace FILE (missing prompts drawn from --seed) or
//      synthesized (trace.h); --write-trace saves it (without --addr: done)
//   2. --wait-ready: poll health until SERVING; else wait for the channel to
//      connect (--connect-timeout)
//   3. --register-adapters DIR through --admin-addr (adapter_registrar.h)
//   4. the open-loop replay (generate_client.h)
//   5. the report: table on `out`, --json FILE (latency_report.h)
// Exit codes: kExitOk (the run completed and was reported, even with failed
// requests), kExitSetupError (no connection, bad trace file, registration
// failed, unwritable output; or --fail-on-error and some request did not
// succeed), kExitUsage (invalid options). Messages go to `err`.
//
// Blocks the calling thread; not reentrant per stream arguments.
#pragma once

#include <ostream>

#include "bench/loadgen/loadgen_options.h"

namespace loraserve::loadgen {

inline constexpr int kExitOk = 0;
inline constexpr int kExitSetupError = 1;
inline constexpr int kExitUsage = 2;

int RunLoadgen(const LoadgenOptions& options, std::ostream& out, std::ostream& err);

}  // namespace loraserve::loadgen
