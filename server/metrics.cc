#include "server/metrics.h"

#include <sstream>

#include "absl/strings/str_join.h"
#include "prometheus/text_serializer.h"

namespace loraserve {
namespace {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;
using prometheus::Histogram;

const char* ReasonLabel(MetricsFinishReason r) {
  switch (r) {
    case MetricsFinishReason::kStop:
      return "stop";
    case MetricsFinishReason::kLength:
      return "length";
    case MetricsFinishReason::kContextLength:
      return "context_length";
    case MetricsFinishReason::kCancelled:
      return "cancelled";
    case MetricsFinishReason::kError:
      return "error";
  }
  return "error";
}

// Latency buckets (seconds) in the ranges vLLM dashboards use.
Histogram::BucketBoundaries TtftBuckets() {
  return {0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0,
          2.5,   5.0,   7.5,  10.0, 20.0, 40.0, 80.0, 160.0};
}
Histogram::BucketBoundaries ItlBuckets() {
  return {0.001, 0.005, 0.01, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05, 0.075, 0.1, 0.15,
          0.2,   0.3,   0.4,  0.5,   0.75, 1.0,   2.5,  5.0,  7.5,  10.0, 20.0};
}
Histogram::BucketBoundaries E2eBuckets() {
  return {0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0,
          120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0};
}
Histogram::BucketBoundaries AdapterLoadBuckets() {
  return {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0};
}

}  // namespace

ServerMetrics::ServerMetrics(const Options& options)
    : options_(options), registry_(std::make_shared<prometheus::Registry>()) {
  auto& reg = *registry_;
  running_ = &BuildGauge()
                  .Name("loraserve_num_requests_running")
                  .Help("Requests in the running batch (prefilling or decoding).")
                  .Register(reg)
                  .Add({});
  waiting_ = &BuildGauge()
                  .Name("loraserve_num_requests_waiting")
                  .Help("Accepted requests waiting to be scheduled.")
                  .Register(reg)
                  .Add({});
  kv_usage_ = &BuildGauge()
                   .Name("loraserve_kv_cache_usage_ratio")
                   .Help("Fraction of the unified page pool holding KV cache (0..1).")
                   .Register(reg)
                   .Add({});
  auto& pages = BuildGauge()
                    .Name("loraserve_pool_pages")
                    .Help("Pages of the unified pool by kind.")
                    .Register(reg);
  pages_kv_ = &pages.Add({{"kind", "kv"}});
  pages_adapter_ = &pages.Add({{"kind", "adapter"}});
  pages_free_ = &pages.Add({{"kind", "free"}});
  auto& resident = BuildGauge()
                       .Name("loraserve_adapters_resident")
                       .Help("Loaded adapters by residency tier.")
                       .Register(reg);
  resident_device_ = &resident.Add({{"tier", "device"}});
  resident_host_ = &resident.Add({{"tier", "host"}});
  lora_info_family_ = &BuildGauge()
                           .Name("loraserve_lora_requests_info")
                           .Help("Running and waiting LoRA adapters (labels); value is the "
                                 "Unix time of the last update.")
                           .Register(reg);
  prompt_tokens_ = &BuildCounter()
                        .Name("loraserve_prompt_tokens_total")
                        .Help("Prompt tokens processed.")
                        .Register(reg)
                        .Add({});
  generation_tokens_ = &BuildCounter()
                            .Name("loraserve_generation_tokens_total")
                            .Help("Tokens generated.")
                            .Register(reg)
                            .Add({});
  success_family_ = &BuildCounter()
                         .Name("loraserve_request_success_total")
                         .Help("Requests that ended, by finished_reason.")
                         .Register(reg);
  for (auto r : {MetricsFinishReason::kStop, MetricsFinishReason::kLength,
                 MetricsFinishReason::kContextLength, MetricsFinishReason::kCancelled,
                 MetricsFinishReason::kError}) {
    success_family_->Add({{"finished_reason", ReasonLabel(r)}});
  }
  adapter_loads_family_ = &BuildCounter()
                               .Name("loraserve_adapter_loads_total")
                               .Help("Adapter loads into a tier, by result.")
                               .Register(reg);
  preemptions_ = &BuildCounter()
                      .Name("loraserve_preemptions_total")
                      .Help("Running requests preempted (KV freed, recomputed later).")
                      .Register(reg)
                      .Add({});
  auto& steps = BuildCounter()
                    .Name("loraserve_model_steps_total")
                    .Help("Model forward steps, by how they ran: mode=\"graph\" (one decode-graph "
                          "launch) or mode=\"eager\" (op by op).")
                    .Register(reg);
  steps_graph_ = &steps.Add({{"mode", "graph"}});
  steps_eager_ = &steps.Add({{"mode", "eager"}});
  graph_captures_ = &BuildCounter()
                         .Name("loraserve_decode_graph_captures_total")
                         .Help("Decode graphs captured (first use of a shape, or after a buffer "
                               "it holds moved).")
                         .Register(reg)
                         .Add({});
  decode_graphs_ = &BuildGauge()
                        .Name("loraserve_decode_graphs")
                        .Help("Decode graphs held by the model.")
                        .Register(reg)
                        .Add({});
  ttft_ = &BuildHistogram()
               .Name("loraserve_time_to_first_token_seconds")
               .Help("Time from arrival to the first generated token.")
               .Register(reg)
               .Add({}, TtftBuckets());
  itl_ = &BuildHistogram()
              .Name("loraserve_inter_token_latency_seconds")
              .Help("Time between consecutive generated tokens of a request.")
              .Register(reg)
              .Add({}, ItlBuckets());
  e2e_ = &BuildHistogram()
              .Name("loraserve_e2e_request_latency_seconds")
              .Help("Time from arrival to the terminal event.")
              .Register(reg)
              .Add({}, E2eBuckets());
  adapter_load_ = &BuildHistogram()
                       .Name("loraserve_adapter_load_seconds")
                       .Help("Time to load an adapter into a tier.")
                       .Register(reg)
                       .Add({}, AdapterLoadBuckets());
  SetLoraRequestsInfo({}, {}, 0);
}

void ServerMetrics::SetRequestCounts(int64_t running, int64_t waiting) {
  running_->Set(static_cast<double>(running));
  waiting_->Set(static_cast<double>(waiting));
}

void ServerMetrics::SetPoolPages(int64_t kv, int64_t adapter, int64_t free) {
  pages_kv_->Set(static_cast<double>(kv));
  pages_adapter_->Set(static_cast<double>(adapter));
  pages_free_->Set(static_cast<double>(free));
  const int64_t total = kv + adapter + free;
  kv_usage_->Set(total > 0 ? static_cast<double>(kv) / static_cast<double>(total) : 0.0);
}

void ServerMetrics::SetAdaptersResident(int64_t device, int64_t host) {
  resident_device_->Set(static_cast<double>(device));
  resident_host_->Set(static_cast<double>(host));
}

void ServerMetrics::SetLoraRequestsInfo(const std::vector<std::string>& running,
                                        const std::vector<std::string>& waiting,
                                        double unix_time_s) {
  absl::MutexLock lock(&lora_info_mu_);
  if (lora_info_ != nullptr) lora_info_family_->Remove(lora_info_);
  lora_info_ = &lora_info_family_->Add({{"max_lora", std::to_string(options_.max_loras)},
                                        {"running_lora_adapters", absl::StrJoin(running, ",")},
                                        {"waiting_lora_adapters", absl::StrJoin(waiting, ",")}});
  lora_info_->Set(unix_time_s);
}

void ServerMetrics::OnRequestFinished(const RequestMetrics& m) {
  prompt_tokens_->Increment(static_cast<double>(m.prompt_tokens));
  generation_tokens_->Increment(static_cast<double>(m.generation_tokens));
  success_family_->Add({{"finished_reason", ReasonLabel(m.reason)}}).Increment();
  if (m.time_to_first_token_s >= 0) ttft_->Observe(m.time_to_first_token_s);
  for (double itl : m.inter_token_latencies_s) itl_->Observe(itl);
  e2e_->Observe(m.e2e_latency_s);
}

void ServerMetrics::OnPreemptions(int64_t n) { preemptions_->Increment(static_cast<double>(n)); }

void ServerMetrics::SetDecodeGraphs(int64_t cached) {
  decode_graphs_->Set(static_cast<double>(cached));
}

void ServerMetrics::OnModelSteps(bool graph, int64_t n) {
  (graph ? steps_graph_ : steps_eager_)->Increment(static_cast<double>(n));
}

void ServerMetrics::OnGraphCaptures(int64_t n) {
  graph_captures_->Increment(static_cast<double>(n));
}

void ServerMetrics::OnAdapterLoad(const std::string& tier, bool ok, double seconds) {
  adapter_loads_family_->Add({{"tier", tier}, {"result", ok ? "ok" : "error"}}).Increment();
  if (ok) adapter_load_->Observe(seconds);
}

std::string ServerMetrics::Serialize() const {
  prometheus::TextSerializer serializer;
  std::ostringstream out;
  serializer.Serialize(out, registry_->Collect());
  return out.str();
}

}  // namespace loraserve
