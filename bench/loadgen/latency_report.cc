#include "bench/loadgen/latency_report.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/logging.h"
#include "server/grpc_status.h"

namespace loraserve::loadgen {

double Percentile(const std::vector<double>& sorted, double p) {
  LS_CHECK(!sorted.empty());
  LS_CHECK(p >= 0 && p <= 1) << p;
  const double h = static_cast<double>(sorted.size() - 1) * p;
  const size_t lo = static_cast<size_t>(std::floor(h));
  const size_t hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (h - static_cast<double>(lo)) * (sorted[hi] - sorted[lo]);
}

LatencyStats ComputeStats(std::vector<double> sample) {
  LatencyStats s;
  if (sample.empty()) return s;
  std::sort(sample.begin(), sample.end());
  s.count = static_cast<int64_t>(sample.size());
  s.mean = std::accumulate(sample.begin(), sample.end(), 0.0) / static_cast<double>(sample.size());
  s.p50 = Percentile(sample, 0.50);
  s.p90 = Percentile(sample, 0.90);
  s.p99 = Percentile(sample, 0.99);
  s.max = sample.back();
  return s;
}

LatencyReport BuildReport(const std::vector<RequestRecord>& records, double slo_ttft_s) {
  LatencyReport r;
  r.requests = static_cast<int64_t>(records.size());
  r.slo_ttft_s = slo_ttft_s;
  std::vector<double> ttft, itl, tpot, e2e, lag;
  double first_send = std::numeric_limits<double>::infinity();
  double last_end = -std::numeric_limits<double>::infinity();
  for (const RequestRecord& rec : records) {
    first_send = std::min(first_send, rec.send_s);
    last_end = std::max(last_end, rec.end_s);
    lag.push_back(rec.send_s - rec.scheduled_s);
    switch (rec.outcome) {
      case Outcome::kFailed:
        ++r.failed;
        ++r.errors[GrpcCodeName(rec.status_code)];
        continue;
      case Outcome::kCancelled:
        ++r.cancelled;
        continue;
      case Outcome::kOk:
        break;
    }
    ++r.ok;
    ++r.finish_reasons[rec.finish_reason];
    r.prompt_tokens += rec.prompt_tokens;
    r.output_tokens += rec.output_tokens;
    const double e2e_s = rec.end_s - rec.send_s;
    e2e.push_back(e2e_s);
    if (!rec.first_token_s.has_value()) continue;
    const double ttft_s = *rec.first_token_s - rec.send_s;
    ttft.push_back(ttft_s);
    if (ttft_s <= slo_ttft_s) ++r.slo_met;
    if (rec.output_tokens >= 2) {
      tpot.push_back((e2e_s - ttft_s) / static_cast<double>(rec.output_tokens - 1));
    }
    for (size_t k = 1; k < rec.deltas.size(); ++k) {
      const DeltaArrival& d = rec.deltas[k];
      const double per_token = (d.t_s - rec.deltas[k - 1].t_s) / d.tokens;
      for (int32_t n = 0; n < d.tokens; ++n) itl.push_back(per_token);
    }
  }
  if (!records.empty()) r.duration_s = std::max(0.0, last_end - first_send);
  if (r.duration_s > 0) {
    r.throughput_rps = static_cast<double>(r.ok) / r.duration_s;
    r.output_tokens_per_s = static_cast<double>(r.output_tokens) / r.duration_s;
    r.total_tokens_per_s = static_cast<double>(r.prompt_tokens + r.output_tokens) / r.duration_s;
  }
  if (r.requests > 0) {
    r.slo_attainment = static_cast<double>(r.slo_met) / static_cast<double>(r.requests);
  }
  r.ttft_s = ComputeStats(std::move(ttft));
  r.itl_s = ComputeStats(std::move(itl));
  r.tpot_s = ComputeStats(std::move(tpot));
  r.e2e_s = ComputeStats(std::move(e2e));
  r.send_lag_s = ComputeStats(std::move(lag));
  return r;
}

namespace {

nlohmann::ordered_json StatsJson(const LatencyStats& s) {
  nlohmann::ordered_json j;
  j["count"] = s.count;
  auto value = [&](double v) { return s.count == 0 ? nlohmann::ordered_json() : nlohmann::ordered_json(v); };
  j["mean"] = value(s.mean);
  j["p50"] = value(s.p50);
  j["p90"] = value(s.p90);
  j["p99"] = value(s.p99);
  j["max"] = value(s.max);
  return j;
}

std::string StatsRow(const char* name, const LatencyStats& s) {
  if (s.count == 0) {
    return absl::StrFormat("  %-14s %8d %10s %10s %10s %10s %10s\n", name, 0, "-", "-", "-", "-", "-");
  }
  return absl::StrFormat("  %-14s %8d %10.2f %10.2f %10.2f %10.2f %10.2f\n", name, s.count,
                         s.mean * 1e3, s.p50 * 1e3, s.p90 * 1e3, s.p99 * 1e3, s.max * 1e3);
}

}  // namespace

nlohmann::ordered_json ReportToJson(const LatencyReport& r, const nlohmann::ordered_json& config) {
  nlohmann::ordered_json j;
  j["config"] = config;
  nlohmann::ordered_json& s = j["summary"];
  s["requests"] = r.requests;
  s["ok"] = r.ok;
  s["failed"] = r.failed;
  s["cancelled"] = r.cancelled;
  s["duration_s"] = r.duration_s;
  s["throughput_rps"] = r.throughput_rps;
  s["output_tokens_per_s"] = r.output_tokens_per_s;
  s["total_tokens_per_s"] = r.total_tokens_per_s;
  s["prompt_tokens"] = r.prompt_tokens;
  s["output_tokens"] = r.output_tokens;
  s["finish_reasons"] = nlohmann::ordered_json::object();
  for (const auto& [reason, n] : r.finish_reasons) s["finish_reasons"][reason] = n;
  nlohmann::ordered_json& l = j["latency"];
  l["ttft_s"] = StatsJson(r.ttft_s);
  l["itl_s"] = StatsJson(r.itl_s);
  l["tpot_s"] = StatsJson(r.tpot_s);
  l["e2e_s"] = StatsJson(r.e2e_s);
  l["send_lag_s"] = StatsJson(r.send_lag_s);
  j["slo"] = {{"ttft_s", r.slo_ttft_s}, {"attainment", r.slo_attainment}, {"met", r.slo_met}};
  j["errors"] = nlohmann::ordered_json::object();
  for (const auto& [code, n] : r.errors) j["errors"][code] = n;
  return j;
}

std::string FormatReportTable(const LatencyReport& r) {
  std::string out;
  absl::StrAppendFormat(&out, "%-22s %d (ok %d, failed %d, cancelled %d)\n", "requests",
                        r.requests, r.ok, r.failed, r.cancelled);
  absl::StrAppendFormat(&out, "%-22s %.3f s\n", "duration", r.duration_s);
  absl::StrAppendFormat(&out, "%-22s %.3f req/s\n", "throughput", r.throughput_rps);
  absl::StrAppendFormat(&out, "%-22s %.1f tok/s (%d tokens)\n", "output tokens",
                        r.output_tokens_per_s, r.output_tokens);
  absl::StrAppendFormat(&out, "%-22s %.1f tok/s (%d prompt tokens)\n", "total tokens",
                        r.total_tokens_per_s, r.prompt_tokens);
  absl::StrAppendFormat(&out, "%-22s %.2f %% (%d of %d)\n",
                        absl::StrFormat("SLO ttft <= %gs", r.slo_ttft_s), r.slo_attainment * 100,
                        r.slo_met, r.requests);
  for (const auto& [code, n] : r.errors) {
    absl::StrAppendFormat(&out, "%-22s %d\n", absl::StrCat("error ", code), n);
  }
  absl::StrAppendFormat(&out, "  %-14s %8s %10s %10s %10s %10s %10s\n", "latency (ms)", "count",
                        "mean", "p50", "p90", "p99", "max");
  out += StatsRow("ttft", r.ttft_s);
  out += StatsRow("itl", r.itl_s);
  out += StatsRow("tpot", r.tpot_s);
  out += StatsRow("e2e", r.e2e_s);
  out += StatsRow("send lag", r.send_lag_s);
  return out;
}

}  // namespace loraserve::loadgen
