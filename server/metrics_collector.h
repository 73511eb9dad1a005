// MetricsCollector: feeds ServerMetrics. On each /metrics scrape it refreshes
// the gauges from EngineApi::Stats() (when an engine is attached) and
// serializes; Generate calls report each finished request through a
// RequestObserver, which turns the stream of events it saw into TTFT, ITL,
// e2e latency, token counts and the finish reason.
//
// Owns the ServerMetrics. Thread-safe: Scrape runs on HTTP worker threads,
// OnRequestFinished on gRPC/engine threads. The engine passed to Scrape must
// outlive the call.
#pragma once

#include <cstdint>
#include <optional>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "engine/engine_api.h"
#include "server/metrics.h"

namespace loraserve {

class MetricsCollector {
 public:
  explicit MetricsCollector(const ServerMetrics::Options& options) : metrics_(options) {}

  // Refreshes the gauges from `engine` (may be null: gauges stay as they
  // are), drains its adapter-load records into the load counters/histogram,
  // and returns the text exposition.
  std::string Scrape(EngineApi* engine);

  void OnRequestFinished(const RequestMetrics& m) { metrics_.OnRequestFinished(m); }
  void OnAdapterLoad(const std::string& tier, bool ok, double seconds) {
    metrics_.OnAdapterLoad(tier, ok, seconds);
  }

  ServerMetrics& metrics() { return metrics_; }

 private:
  ServerMetrics metrics_;
  absl::Mutex mu_;
  int64_t preemptions_seen_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t steps_graph_seen_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t steps_eager_seen_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t graph_captures_seen_ ABSL_GUARDED_BY(mu_) = 0;
};

// Accumulates one request's timing from the events it produced. One per
// call; not thread-safe (its owner serializes calls).
class RequestObserver {
 public:
  explicit RequestObserver(absl::Time arrival) : arrival_(arrival) {}

  // Accounts one event at time `now`; returns the finished request's metrics
  // when `event` is terminal.
  std::optional<RequestMetrics> OnEvent(const GenerationEvent& event, absl::Time now);
  // The request ended without a terminal event (client gone): cancelled.
  RequestMetrics Abandon(absl::Time now);

 private:
  RequestMetrics Finish(MetricsFinishReason reason, absl::Time now);

  absl::Time arrival_;
  std::optional<absl::Time> last_token_;
  RequestMetrics m_;
};

}  // namespace loraserve
