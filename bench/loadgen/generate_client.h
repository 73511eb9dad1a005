// ReplayTrace: the open-loop replay of a trace against
// loraserve.v1.Generation/Generate. One dispatcher (the calling thread)
// starts each request at its trace time after the run's start, whatever is
// still in flight, through the gRPC callback API (one
// grpc::ClientReadReactor per request, any number in flight). Each request
// is greedy (temperature 0) with max_tokens = output_len and ignore_eos, id
// "lg-<id>", and an optional deadline. Every request ends in exactly one
// RequestRecord: after the last send the run waits up to drain_timeout_s,
// then cancels what is still open and records those as cancelled.
// Progress (sent / done / failed / in flight) goes to `progress` every
// progress_interval_s.
//
// Blocks the calling thread for the whole run; the stub must outlive the
// call. Reactors run on gRPC's callback threads and write only their own
// record; the records are returned after the last call is done.
#pragma once

#include <ostream>
#include <vector>

#include "bench/loadgen/request_record.h"
#include "bench/loadgen/trace.h"
#include "loraserve/v1/generation.grpc.pb.h"

namespace loraserve::loadgen {

struct ReplayOptions {
  double request_timeout_s = 0;    // per-request gRPC deadline; 0 = none
  double drain_timeout_s = 600;    // after the last send; then open requests are cancelled
  double progress_interval_s = 5;  // 0 = no progress lines
  std::ostream* progress = nullptr;
};

// One record per trace request, in trace order. `trace` must be sorted by t
// (as SynthesizeTrace and ReadTraceFile return it) with prompts filled.
std::vector<RequestRecord> ReplayTrace(v1::Generation::StubInterface* stub,
                                       const std::vector<TraceRequest>& trace,
                                       const ReplayOptions& options);

// The request ReplayTrace sends for `request`.
v1::GenerateRequest MakeGenerateRequest(const TraceRequest& request);

}  // namespace loraserve::loadgen
