// LatencyReport: the numbers of one run, computed from its RequestRecords
// (pure: no clock, no I/O), printed as an aligned table and written as JSON.
// bench/run_suite.py parses the JSON; these key names are stable:
//
// {
//   "config":  { every loadgen flag: value },
//   "summary": { "requests", "ok", "failed", "cancelled",
//                "duration_s",              first send to last end, all requests
//                "throughput_rps",          ok requests / duration_s
//                "output_tokens_per_s",     output tokens of ok requests / duration_s
//                "total_tokens_per_s",      (prompt + output) tokens of ok requests / duration_s
//                "prompt_tokens", "output_tokens",   sums over ok requests
//                "finish_reasons": { "length": n, ... } },   ok requests
//   "latency": { "ttft_s", "itl_s", "tpot_s", "e2e_s", "send_lag_s":
//                { "count", "mean", "p50", "p90", "p99", "max" } },  null when count = 0
//   "slo":     { "ttft_s": 6, "attainment": 0.93, "met": n },
//   "errors":  { "DEADLINE_EXCEEDED": n, ... }       failed requests by gRPC code name
// }
//
// Latencies are in seconds over ok requests:
//   ttft    first token - send
//   itl     for each delta after the first: (its arrival - the previous
//           delta's) / its token count, one sample per token it carries
//   tpot    (e2e - ttft) / (output_tokens - 1), requests with >= 2 tokens
//   e2e     end - send
//   send_lag  send - scheduled (all requests): how far the client fell behind
// SLO attainment is over ALL requests: failed and cancelled ones count as
// missed. Percentiles interpolate linearly between the closest ranks
// (numpy.percentile's default "linear" method): rank h = (n - 1) * p,
// value = x[floor h] + (h - floor h) * (x[floor h + 1] - x[floor h]).
//
// Free functions over plain data; any thread.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "bench/loadgen/request_record.h"
#include "nlohmann/json.hpp"

namespace loraserve::loadgen {

// p in [0, 1] of an ascending, non-empty sample (see the header comment).
double Percentile(const std::vector<double>& sorted, double p);

struct LatencyStats {
  int64_t count = 0;
  double mean = 0;
  double p50 = 0;
  double p90 = 0;
  double p99 = 0;
  double max = 0;
};

// Stats of an unsorted sample (all zero with count 0 when empty).
LatencyStats ComputeStats(std::vector<double> sample);

struct LatencyReport {
  int64_t requests = 0;
  int64_t ok = 0;
  int64_t failed = 0;
  int64_t cancelled = 0;
  double duration_s = 0;
  double throughput_rps = 0;
  double output_tokens_per_s = 0;
  double total_tokens_per_s = 0;
  int64_t prompt_tokens = 0;
  int64_t output_tokens = 0;
  std::map<std::string, int64_t> finish_reasons;
  LatencyStats ttft_s;
  LatencyStats itl_s;
  LatencyStats tpot_s;
  LatencyStats e2e_s;
  LatencyStats send_lag_s;
  double slo_ttft_s = 6;
  int64_t slo_met = 0;
  double slo_attainment = 0;
  std::map<std::string, int64_t> errors;  // gRPC code name -> failed requests
};

LatencyReport BuildReport(const std::vector<RequestRecord>& records, double slo_ttft_s);

// The documented JSON, with `config` (the flags) under "config".
nlohmann::ordered_json ReportToJson(const LatencyReport& report, const nlohmann::ordered_json& config);

// The aligned human-readable table (milliseconds for latencies).
std::string FormatReportTable(const LatencyReport& report);

}  // namespace loraserve::loadgen
