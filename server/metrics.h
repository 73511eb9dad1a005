// ServerMetrics: the Prometheus metric set of DESIGN.md ("Metrics"), owned by
// the server and served on /metrics. Names use the prefix `loraserve_` and
// base units (seconds, tokens, pages). The engine does not depend on this
// class: the server feeds it from engine snapshots and request events.
//
// Thread-safety: every method may be called from any thread (prometheus-cpp
// metrics are atomic; the label-changing lora info gauge has its own mutex).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace loraserve {

// Matches the finished_reason label values (and the proto's FinishReason).
enum class MetricsFinishReason { kStop, kLength, kContextLength, kCancelled, kError };

struct RequestMetrics {
  MetricsFinishReason reason = MetricsFinishReason::kStop;
  int64_t prompt_tokens = 0;
  int64_t generation_tokens = 0;
  double time_to_first_token_s = -1;  // < 0: no token was produced
  double e2e_latency_s = 0;
  std::vector<double> inter_token_latencies_s;  // one per token after the first
};

class ServerMetrics {
 public:
  struct Options {
    int max_loras = 0;  // the `max_lora` label of loraserve_lora_requests_info
  };
  explicit ServerMetrics(const Options& options);
  ServerMetrics(const ServerMetrics&) = delete;
  ServerMetrics& operator=(const ServerMetrics&) = delete;

  std::shared_ptr<prometheus::Registry> registry() const { return registry_; }

  // Gauges, set from the engine's periodic snapshot.
  void SetRequestCounts(int64_t running, int64_t waiting);
  // Pool pages by kind; kv_cache_usage_ratio = kv / (kv + adapter + free).
  void SetPoolPages(int64_t kv, int64_t adapter, int64_t free);
  void SetAdaptersResident(int64_t device, int64_t host);
  // Decode graphs held by the model (loraserve_decode_graphs).
  void SetDecodeGraphs(int64_t cached);
  // Replaces the single loraserve_lora_requests_info series: labels
  // running_lora_adapters / waiting_lora_adapters are comma-joined names (the
  // form the Gateway API Inference Extension parses), value is the Unix time.
  void SetLoraRequestsInfo(const std::vector<std::string>& running,
                           const std::vector<std::string>& waiting, double unix_time_s);

  // Events.
  void OnRequestFinished(const RequestMetrics& m);
  void OnPreemptions(int64_t n);
  // Model steps run as decode-graph launches (graph = true) or op by op.
  void OnModelSteps(bool graph, int64_t n);
  void OnGraphCaptures(int64_t n);
  // tier: "device" | "host"; ok=false counts result="error".
  void OnAdapterLoad(const std::string& tier, bool ok, double seconds);

  // Text exposition format (what /metrics returns).
  std::string Serialize() const;

 private:
  const Options options_;
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Gauge* running_;
  prometheus::Gauge* waiting_;
  prometheus::Gauge* kv_usage_;
  prometheus::Gauge* pages_kv_;
  prometheus::Gauge* pages_adapter_;
  prometheus::Gauge* pages_free_;
  prometheus::Gauge* resident_device_;
  prometheus::Gauge* resident_host_;
  prometheus::Family<prometheus::Gauge>* lora_info_family_;
  prometheus::Counter* prompt_tokens_;
  prometheus::Counter* generation_tokens_;
  prometheus::Family<prometheus::Counter>* success_family_;
  prometheus::Family<prometheus::Counter>* adapter_loads_family_;
  prometheus::Counter* preemptions_;
  prometheus::Counter* steps_graph_;
  prometheus::Counter* steps_eager_;
  prometheus::Counter* graph_captures_;
  prometheus::Gauge* decode_graphs_;
  prometheus::Histogram* ttft_;
  prometheus::Histogram* itl_;
  prometheus::Histogram* e2e_;
  prometheus::Histogram* adapter_load_;

  absl::Mutex lora_info_mu_;
  prometheus::Gauge* lora_info_ ABSL_GUARDED_BY(lora_info_mu_) = nullptr;
};

}  // namespace loraserve
