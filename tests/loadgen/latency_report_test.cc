// The report (bench/loadgen/latency_report.h) from hand-built records:
// numpy-linear percentiles, ITL weighting by each delta's token count, TPOT,
// SLO attainment over all requests (failed count as missed), error counts
// by code name, and the documented JSON keys.
#include "bench/loadgen/latency_report.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace loraserve::loadgen {
namespace {

constexpr double kEps = 1e-12;

TEST(Percentile, InterpolatesLinearlyBetweenClosestRanks) {
  const std::vector<double> x = {1, 2, 3, 4};
  // h = (n - 1) p: p50 -> 1.5 -> 2 + 0.5 * (3 - 2).
  EXPECT_NEAR(Percentile(x, 0.5), 2.5, kEps);
  EXPECT_NEAR(Percentile(x, 0.9), 3.7, kEps);   // h = 2.7
  EXPECT_NEAR(Percentile(x, 0.99), 3.97, kEps);  // h = 2.97
  EXPECT_NEAR(Percentile(x, 0.0), 1.0, kEps);
  EXPECT_NEAR(Percentile(x, 1.0), 4.0, kEps);
  EXPECT_NEAR(Percentile({7}, 0.99), 7.0, kEps);
  // numpy.percentile([10, 20, 30, 40, 50, 60, 70, 80, 90, 100], 90) = 91.
  EXPECT_NEAR(Percentile({10, 20, 30, 40, 50, 60, 70, 80, 90, 100}, 0.9), 91.0, 1e-9);
}

TEST(Percentile, StatsSortTheirSample) {
  const LatencyStats s = ComputeStats({4, 1, 3, 2});
  EXPECT_EQ(s.count, 4);
  EXPECT_NEAR(s.mean, 2.5, kEps);
  EXPECT_NEAR(s.p50, 2.5, kEps);
  EXPECT_NEAR(s.p90, 3.7, kEps);
  EXPECT_NEAR(s.p99, 3.97, kEps);
  EXPECT_NEAR(s.max, 4, kEps);
  EXPECT_EQ(ComputeStats({}).count, 0);
}

RequestRecord Ok(int64_t id, double send, std::vector<DeltaArrival> deltas, double end,
                 int64_t prompt, int64_t output) {
  RequestRecord r;
  r.id = id;
  r.scheduled_s = send;
  r.send_s = send;
  r.deltas = std::move(deltas);
  if (!r.deltas.empty()) r.first_token_s = r.deltas.front().t_s;
  r.end_s = end;
  r.outcome = Outcome::kOk;
  r.finish_reason = "length";
  r.prompt_tokens = prompt;
  r.output_tokens = output;
  return r;
}

RequestRecord Failed(int64_t id, double send, double end, int code, bool fast_first_token) {
  RequestRecord r;
  r.id = id;
  r.scheduled_s = send - 0.25;  // sent late: send lag 0.25
  r.send_s = send;
  if (fast_first_token) {
    r.deltas = {{send + 0.1, 1}};
    r.first_token_s = send + 0.1;
  }
  r.end_s = end;
  r.outcome = Outcome::kFailed;
  r.status_code = code;
  r.output_tokens = fast_first_token ? 1 : 0;
  return r;
}

std::vector<RequestRecord> Records() {
  std::vector<RequestRecord> v;
  // ttft 0.5, e2e 1.2; ITL: 0.2 (one token), then 0.6 / 2 tokens = 0.3 twice.
  v.push_back(Ok(0, 1.0, {{1.5, 1}, {1.7, 1}, {2.3, 2}}, 2.3, 10, 4));
  // ttft 7 > SLO 6; one token: no TPOT, no ITL.
  v.push_back(Ok(1, 2.0, {{9.0, 1}}, 9.0, 20, 1));
  // Failed with a fast first token: still a missed SLO.
  v.push_back(Failed(2, 3.0, 3.5, 4 /* DEADLINE_EXCEEDED */, true));
  v.push_back(Failed(3, 0.5, 4.0, 14 /* UNAVAILABLE */, false));
  v.push_back(Failed(4, 4.0, 9.5, 4, false));
  RequestRecord c = Failed(5, 4.5, 10.5, 1, false);
  c.outcome = Outcome::kCancelled;
  v.push_back(c);
  return v;
}

TEST(LatencyReport, CountsThroughputAndLatencies) {
  const LatencyReport r = BuildReport(Records(), 6.0);
  EXPECT_EQ(r.requests, 6);
  EXPECT_EQ(r.ok, 2);
  EXPECT_EQ(r.failed, 3);
  EXPECT_EQ(r.cancelled, 1);
  // First send 0.5, last end 10.5.
  EXPECT_NEAR(r.duration_s, 10.0, kEps);
  EXPECT_NEAR(r.throughput_rps, 0.2, kEps);
  EXPECT_EQ(r.output_tokens, 5);
  EXPECT_EQ(r.prompt_tokens, 30);
  EXPECT_NEAR(r.output_tokens_per_s, 0.5, kEps);
  EXPECT_NEAR(r.total_tokens_per_s, 3.5, kEps);
  EXPECT_EQ(r.finish_reasons, (std::map<std::string, int64_t>{{"length", 2}}));

  // TTFT over ok requests {0.5, 7}.
  EXPECT_EQ(r.ttft_s.count, 2);
  EXPECT_NEAR(r.ttft_s.mean, 3.75, kEps);
  EXPECT_NEAR(r.ttft_s.p50, 3.75, kEps);
  EXPECT_NEAR(r.ttft_s.p90, 0.5 + 0.9 * 6.5, kEps);
  EXPECT_NEAR(r.ttft_s.max, 7, kEps);
  // ITL: one sample per token: {0.2, 0.3, 0.3} (not {0.2, 0.6} per delta).
  EXPECT_EQ(r.itl_s.count, 3);
  EXPECT_NEAR(r.itl_s.mean, 0.8 / 3, 1e-9);
  EXPECT_NEAR(r.itl_s.p50, 0.3, 1e-9);
  EXPECT_NEAR(r.itl_s.max, 0.3, 1e-9);
  // TPOT: (1.3 - 0.5) / 3 for request 0 only.
  EXPECT_EQ(r.tpot_s.count, 1);
  EXPECT_NEAR(r.tpot_s.mean, 0.8 / 3, 1e-9);
  // E2E {1.3, 7}.
  EXPECT_EQ(r.e2e_s.count, 2);
  EXPECT_NEAR(r.e2e_s.p50, 4.15, 1e-9);
  EXPECT_NEAR(r.e2e_s.max, 7, 1e-9);
  // Send lag over every request: four 0.25, two 0.
  EXPECT_EQ(r.send_lag_s.count, 6);
  EXPECT_NEAR(r.send_lag_s.max, 0.25, 1e-9);
  EXPECT_NEAR(r.send_lag_s.mean, 1.0 / 6, 1e-9);
}

TEST(LatencyReport, SloAttainmentCountsEveryNonOkRequestAsMissed) {
  LatencyReport r = BuildReport(Records(), 6.0);
  EXPECT_EQ(r.slo_met, 1);  // only request 0 (request 2 was fast but failed)
  EXPECT_NEAR(r.slo_attainment, 1.0 / 6, kEps);
  r = BuildReport(Records(), 7.0);  // now request 1 makes it too (7 <= 7)
  EXPECT_EQ(r.slo_met, 2);
  EXPECT_NEAR(r.slo_attainment, 2.0 / 6, kEps);
}

TEST(LatencyReport, ErrorsAreCountedByCodeName) {
  const LatencyReport r = BuildReport(Records(), 6.0);
  EXPECT_EQ(r.errors,
            (std::map<std::string, int64_t>{{"DEADLINE_EXCEEDED", 2}, {"UNAVAILABLE", 1}}));
}

TEST(LatencyReport, JsonHasTheDocumentedKeys) {
  const nlohmann::ordered_json config = {{"rate", 2.0}, {"addr", "h:1"}};
  const nlohmann::ordered_json j = ReportToJson(BuildReport(Records(), 6.0), config);
  EXPECT_EQ(j.at("config"), config);
  const auto& s = j.at("summary");
  for (const char* key : {"requests", "ok", "failed", "cancelled", "duration_s", "throughput_rps",
                          "output_tokens_per_s", "total_tokens_per_s", "prompt_tokens",
                          "output_tokens", "finish_reasons"}) {
    EXPECT_TRUE(s.contains(key)) << key;
  }
  EXPECT_EQ(s.at("ok"), 2);
  EXPECT_EQ(s.at("failed"), 3);
  EXPECT_EQ(s.at("cancelled"), 1);
  for (const char* metric : {"ttft_s", "itl_s", "tpot_s", "e2e_s", "send_lag_s"}) {
    const auto& m = j.at("latency").at(metric);
    for (const char* stat : {"count", "mean", "p50", "p90", "p99", "max"}) {
      EXPECT_TRUE(m.contains(stat)) << metric << "." << stat;
    }
  }
  EXPECT_NEAR(j.at("latency").at("ttft_s").at("p50").get<double>(), 3.75, kEps);
  EXPECT_EQ(j.at("slo").at("ttft_s"), 6.0);
  EXPECT_NEAR(j.at("slo").at("attainment").get<double>(), 1.0 / 6, kEps);
  EXPECT_EQ(j.at("errors").at("DEADLINE_EXCEEDED"), 2);
  EXPECT_EQ(j.at("errors").at("UNAVAILABLE"), 1);
}

TEST(LatencyReport, EmptySamplesAreNullInJsonAndDashesInTheTable) {
  std::vector<RequestRecord> v = {Failed(0, 1.0, 2.0, 14, false)};
  const LatencyReport r = BuildReport(v, 6.0);
  EXPECT_EQ(r.ok, 0);
  EXPECT_EQ(r.slo_attainment, 0.0);
  const nlohmann::ordered_json j = ReportToJson(r, nlohmann::ordered_json::object());
  EXPECT_EQ(j.at("latency").at("ttft_s").at("count"), 0);
  EXPECT_TRUE(j.at("latency").at("ttft_s").at("p50").is_null());
  const std::string table = FormatReportTable(r);
  EXPECT_THAT(table, ::testing::HasSubstr("error UNAVAILABLE"));
  EXPECT_THAT(table, ::testing::ContainsRegex("ttft +0 +-"));
}

TEST(LatencyReport, TableIsAlignedAndInMilliseconds) {
  const std::string table = FormatReportTable(BuildReport(Records(), 6.0));
  EXPECT_THAT(table, ::testing::HasSubstr("requests"));
  EXPECT_THAT(table, ::testing::HasSubstr("16.67 % (1 of 6)"));
  // ttft: count 2, mean 3750 ms, p50 3750, p90 6350, p99 6935, max 7000.
  EXPECT_THAT(table, ::testing::ContainsRegex(
                         "ttft +2 +3750\\.00 +3750\\.00 +6350\\.00 +6935\\.00 +7000\\.00"));
}

}  // namespace
}  // namespace loraserve::loadgen
