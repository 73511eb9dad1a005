#include "server/metrics_collector.h"

#include <utility>

namespace loraserve {

std::string MetricsCollector::Scrape(EngineApi* engine) {
  if (engine != nullptr) {
    const EngineStats s = engine->Stats();
    metrics_.SetRequestCounts(s.running, s.waiting);
    metrics_.SetPoolPages(s.pool_pages_kv, s.pool_pages_adapter, s.pool_pages_free);
    metrics_.SetAdaptersResident(s.adapters_device, s.adapters_host);
    metrics_.SetLoraRequestsInfo(s.running_adapters, s.waiting_adapters,
                                 absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch()));
    metrics_.SetDecodeGraphs(s.graphs_cached);
    // Engine totals become counter increments: the part not yet reported.
    int64_t preempted = 0, graph_steps = 0, eager_steps = 0, captures = 0;
    {
      absl::MutexLock lock(&mu_);
      auto take = [](int64_t total, int64_t& seen) {
        const int64_t delta = total - seen;
        if (delta <= 0) return int64_t{0};
        seen = total;
        return delta;
      };
      preempted = take(s.preemptions_total, preemptions_seen_);
      graph_steps = take(s.steps_graph_total, steps_graph_seen_);
      eager_steps = take(s.steps_eager_total, steps_eager_seen_);
      captures = take(s.graph_captures_total, graph_captures_seen_);
    }
    if (preempted > 0) metrics_.OnPreemptions(preempted);
    if (graph_steps > 0) metrics_.OnModelSteps(true, graph_steps);
    if (eager_steps > 0) metrics_.OnModelSteps(false, eager_steps);
    if (captures > 0) metrics_.OnGraphCaptures(captures);
    for (const AdapterLoadRecord& r : engine->TakeAdapterLoads()) {
      // Loads into the device pool (host -> pool copy) or into host memory
      // (disk -> host); the label values DESIGN.md names.
      metrics_.OnAdapterLoad(r.tier == AdapterTier::kDevice ? "device" : "host", r.ok, r.seconds);
    }
  }
  return metrics_.Serialize();
}

std::optional<RequestMetrics> RequestObserver::OnEvent(const GenerationEvent& event,
                                                       absl::Time now) {
  m_.prompt_tokens = event.prompt_tokens;
  m_.generation_tokens = event.completion_tokens;
  switch (event.kind) {
    case GenerationEvent::Kind::kDelta:
      if (event.token_ids.empty()) return std::nullopt;
      if (!last_token_.has_value()) {
        m_.time_to_first_token_s = absl::ToDoubleSeconds(now - arrival_);
        // Tokens delivered together after the first share the gap equally.
        for (size_t i = 1; i < event.token_ids.size(); ++i) m_.inter_token_latencies_s.push_back(0);
      } else {
        const double gap = absl::ToDoubleSeconds(now - *last_token_) /
                           static_cast<double>(event.token_ids.size());
        for (size_t i = 0; i < event.token_ids.size(); ++i) m_.inter_token_latencies_s.push_back(gap);
      }
      last_token_ = now;
      return std::nullopt;
    case GenerationEvent::Kind::kFinished:
      switch (event.finish) {
        case GenerationFinish::kStop:
          return Finish(MetricsFinishReason::kStop, now);
        case GenerationFinish::kLength:
          return Finish(MetricsFinishReason::kLength, now);
        case GenerationFinish::kContextLength:
          return Finish(MetricsFinishReason::kContextLength, now);
        case GenerationFinish::kCancelled:
          return Finish(MetricsFinishReason::kCancelled, now);
      }
      return Finish(MetricsFinishReason::kStop, now);
    case GenerationEvent::Kind::kError:
      return Finish(MetricsFinishReason::kError, now);
  }
  return std::nullopt;
}

RequestMetrics RequestObserver::Abandon(absl::Time now) {
  return Finish(MetricsFinishReason::kCancelled, now);
}

RequestMetrics RequestObserver::Finish(MetricsFinishReason reason, absl::Time now) {
  m_.reason = reason;
  m_.e2e_latency_s = absl::ToDoubleSeconds(now - arrival_);
  return std::move(m_);
}

}  // namespace loraserve
