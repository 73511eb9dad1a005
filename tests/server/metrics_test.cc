#include "server/metrics.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <unistd.h>
#include <string>

#include "gtest/gtest.h"

namespace loraserve {
namespace {

bool Contains(const std::string& text, const std::string& needle) {
  return text.find(needle) != std::string::npos;
}

TEST(ServerMetrics, GaugesAndCountersSerializeWithTheirLabels) {
  ServerMetrics m({.max_loras = 4});
  m.SetRequestCounts(3, 7);
  m.SetPoolPages(/*kv=*/30, /*adapter=*/10, /*free=*/60);
  m.SetAdaptersResident(2, 5);
  m.OnPreemptions(2);
  m.OnModelSteps(/*graph=*/true, 5);
  m.OnModelSteps(/*graph=*/true, 2);
  m.OnModelSteps(/*graph=*/false, 3);
  m.OnGraphCaptures(1);
  m.SetDecodeGraphs(4);
  m.OnAdapterLoad("device", true, 0.002);
  m.OnAdapterLoad("host", false, 0.5);
  RequestMetrics r;
  r.reason = MetricsFinishReason::kLength;
  r.prompt_tokens = 11;
  r.generation_tokens = 4;
  r.time_to_first_token_s = 0.03;
  r.e2e_latency_s = 0.2;
  r.inter_token_latencies_s = {0.01, 0.02, 0.012};
  m.OnRequestFinished(r);

  const std::string text = m.Serialize();
  EXPECT_TRUE(Contains(text, "loraserve_num_requests_running 3")) << text;
  EXPECT_TRUE(Contains(text, "loraserve_num_requests_waiting 7"));
  EXPECT_TRUE(Contains(text, "loraserve_pool_pages{kind=\"kv\"} 30"));
  EXPECT_TRUE(Contains(text, "loraserve_pool_pages{kind=\"free\"} 60"));
  EXPECT_TRUE(Contains(text, "loraserve_kv_cache_usage_ratio 0.3"));
  EXPECT_TRUE(Contains(text, "loraserve_adapters_resident{tier=\"host\"} 5"));
  EXPECT_TRUE(Contains(text, "loraserve_preemptions_total 2"));
  EXPECT_TRUE(Contains(text, "loraserve_model_steps_total{mode=\"graph\"} 7"));
  EXPECT_TRUE(Contains(text, "loraserve_model_steps_total{mode=\"eager\"} 3"));
  EXPECT_TRUE(Contains(text, "loraserve_decode_graph_captures_total 1"));
  EXPECT_TRUE(Contains(text, "loraserve_decode_graphs 4"));
  EXPECT_TRUE(Contains(text, "loraserve_prompt_tokens_total 11"));
  EXPECT_TRUE(Contains(text, "loraserve_generation_tokens_total 4"));
  EXPECT_TRUE(Contains(text, "loraserve_request_success_total{finished_reason=\"length\"} 1"));
  EXPECT_TRUE(Contains(text, "loraserve_request_success_total{finished_reason=\"stop\"} 0"));
  EXPECT_TRUE(Contains(text, "loraserve_adapter_loads_total{result=\"error\",tier=\"host\"} 1"));
  EXPECT_TRUE(Contains(text, "loraserve_inter_token_latency_seconds_count 3"));
  EXPECT_TRUE(Contains(text, "loraserve_time_to_first_token_seconds_count 1"));
  // Failed loads are counted but not timed.
  EXPECT_TRUE(Contains(text, "loraserve_adapter_load_seconds_count 1"));
}

TEST(ServerMetrics, LoraInfoKeepsExactlyOneSeries) {
  ServerMetrics m({.max_loras = 8});
  m.SetLoraRequestsInfo({"sql", "chat"}, {"math"}, 1700000000.0);
  m.SetLoraRequestsInfo({"chat"}, {}, 1700000001.0);
  const std::string text = m.Serialize();
  EXPECT_TRUE(Contains(text,
                       "loraserve_lora_requests_info{max_lora=\"8\",running_lora_adapters="
                       "\"chat\",waiting_lora_adapters=\"\"} 1700000001"))
      << text;
  EXPECT_FALSE(Contains(text, "running_lora_adapters=\"sql,chat\"")) << "stale series left";
}

// promtool (from the `prometheus` Debian package, installed by
// scripts/install-deps.sh) must accept the exposition.
TEST(ServerMetrics, PromtoolAcceptsTheOutput) {
  const char* promtool = "/usr/bin/promtool";
  ASSERT_EQ(access(promtool, X_OK), 0) << "promtool not found: run scripts/install-deps.sh";
  ServerMetrics m({.max_loras = 2});
  m.SetLoraRequestsInfo({"a"}, {"b", "c"}, 1.0);
  RequestMetrics r;
  r.e2e_latency_s = 1;
  m.OnRequestFinished(r);
  const std::string path = ::testing::TempDir() + "/metrics.txt";
  std::ofstream(path) << m.Serialize();
  const std::string cmd = std::string(promtool) + " check metrics < " + path + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[512];
  while (fgets(buf, sizeof(buf), p) != nullptr) out += buf;
  const int rc = pclose(p);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_FALSE(Contains(out, "error")) << out;
}

}  // namespace
}  // namespace loraserve
