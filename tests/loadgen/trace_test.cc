// Trace synthesis (bench/loadgen/trace.h, trace_random.h): determinism per
// seed, Gamma gap mean and CV, power-law adapter popularity against the
// analytic CDF, length and prompt ranges, the per-field sub-streams, and flag
// validation naming the flag.
#include "bench/loadgen/trace.h"

#include <cmath>
#include <map>
#include <numeric>
#include <set>
#include <string>
#include <vector>

#include "bench/loadgen/trace_random.h"
#include "gtest/gtest.h"

namespace loraserve::loadgen {
namespace {

TraceOptions Options(double rate, double duration, double cv = 1.0, double alpha = 1.0,
                     int32_t num_adapters = 10) {
  TraceOptions o;
  o.rate = rate;
  o.duration_s = duration;
  o.cv = cv;
  o.alpha = alpha;
  o.num_adapters = num_adapters;
  o.seed = 1234;
  return o;
}

std::vector<TraceRequest> Synthesize(const TraceOptions& o) {
  absl::StatusOr<std::vector<TraceRequest>> t = SynthesizeTrace(o);
  EXPECT_TRUE(t.ok()) << t.status();
  return t.ok() ? *std::move(t) : std::vector<TraceRequest>{};
}

struct GapStats {
  double mean = 0;
  double cv = 0;
};

GapStats Gaps(const std::vector<TraceRequest>& trace) {
  std::vector<double> gaps;
  double prev = 0;
  for (const TraceRequest& r : trace) {
    gaps.push_back(r.t - prev);
    prev = r.t;
  }
  const double n = static_cast<double>(gaps.size());
  const double mean = std::accumulate(gaps.begin(), gaps.end(), 0.0) / n;
  double var = 0;
  for (double g : gaps) var += (g - mean) * (g - mean);
  var /= n - 1;
  return {mean, std::sqrt(var) / mean};
}

TEST(Trace, SameSeedGivesTheSameTraceAndAnotherSeedAnother) {
  TraceOptions o = Options(50, 10);
  const std::vector<TraceRequest> a = Synthesize(o);
  const std::vector<TraceRequest> b = Synthesize(o);
  ASSERT_EQ(a.size(), 500u);
  EXPECT_EQ(a, b);
  o.seed = 1235;
  const std::vector<TraceRequest> c = Synthesize(o);
  ASSERT_EQ(c.size(), a.size());
  int differing_t = 0, differing_adapter = 0, differing_len = 0, differing_prompt = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    differing_t += a[i].t != c[i].t;
    differing_adapter += a[i].adapter != c[i].adapter;
    differing_len += a[i].input_len != c[i].input_len;
    differing_prompt += a[i].prompt_ids != c[i].prompt_ids;
  }
  EXPECT_EQ(differing_t, 500);
  EXPECT_GT(differing_adapter, 400);  // 10 adapters: ~90% differ by chance
  EXPECT_GT(differing_len, 450);
  EXPECT_EQ(differing_prompt, 500);
}

TEST(Trace, IdsCountAndTimesFollowTheDefinition) {
  const std::vector<TraceRequest> t = Synthesize(Options(7, 3));
  ASSERT_EQ(t.size(), 21u);
  double prev = 0;
  for (size_t i = 0; i < t.size(); ++i) {
    EXPECT_EQ(t[i].id, static_cast<int64_t>(i));
    EXPECT_GE(t[i].t, prev);
    prev = t[i].t;
  }
  EXPECT_GT(t[0].t, 0.0);  // the first arrival is the first gap
  // floor(rate * duration), robust to 0.29 * 100 = 28.999999999999996.
  EXPECT_EQ(Options(0.29, 100).TotalRequests(), 29);
  EXPECT_EQ(Options(2.5, 3).TotalRequests(), 7);
  EXPECT_EQ(Options(1000, 20).TotalRequests(), 20000);
}

TEST(Trace, GapsHaveMeanOneOverRateAndTheRequestedCv) {
  for (double cv : {0.5, 1.0, 2.0}) {
    SCOPED_TRACE(cv);
    const std::vector<TraceRequest> t = Synthesize(Options(1000, 100, cv));
    ASSERT_EQ(t.size(), 100000u);
    const GapStats s = Gaps(t);
    EXPECT_NEAR(s.mean, 1.0 / 1000, 0.03 / 1000);
    EXPECT_NEAR(s.cv, cv, 0.04 * cv);
  }
}

TEST(Trace, AlphaOneSpreadsRequestsUniformlyOverAdapters) {
  const int n = 10;
  const std::vector<TraceRequest> t = Synthesize(Options(1000, 20, 1.0, 1.0, n));
  std::map<std::string, int> counts;
  for (const TraceRequest& r : t) ++counts[r.adapter];
  ASSERT_EQ(counts.size(), static_cast<size_t>(n));
  EXPECT_EQ(counts.begin()->first, "adapter-0000");
  EXPECT_EQ(counts.rbegin()->first, "adapter-0009");
  const double expected = static_cast<double>(t.size()) / n;
  double chi2 = 0;
  for (const auto& [name, c] : counts) chi2 += (c - expected) * (c - expected) / expected;
  // 9 degrees of freedom: P(chi2 > 27.9) = 0.001.
  EXPECT_LT(chi2, 27.9);
}

TEST(Trace, SmallAlphaFollowsThePowerCdfOnLowIndices) {
  const int n = 100;
  const double alpha = 0.1;
  const std::vector<TraceRequest> t = Synthesize(Options(1000, 20, 1.0, alpha, n));
  std::vector<int> counts(n, 0);
  for (const TraceRequest& r : t) {
    ASSERT_EQ(r.adapter.substr(0, 8), "adapter-");
    const int index = std::stoi(r.adapter.substr(8));
    ASSERT_GE(index, 0);
    ASSERT_LT(index, n);
    ++counts[index];
  }
  const double total = static_cast<double>(t.size());
  int below = 0;
  for (int k = 1; k <= n; ++k) {
    below += counts[k - 1];
    const double analytic = std::pow(static_cast<double>(k) / n, alpha);  // P(index < k)
    EXPECT_NEAR(below / total, analytic, 0.012) << "k=" << k;
  }
  // Far more on index 0 (63%) than uniform (1%).
  EXPECT_GT(counts[0], 0.6 * total);
}

TEST(Trace, NoAdaptersMeansTheBaseModel) {
  const std::vector<TraceRequest> t = Synthesize(Options(10, 5, 1.0, 1.0, 0));
  for (const TraceRequest& r : t) EXPECT_EQ(r.adapter, "");
}

TEST(Trace, AdapterFormatNamesTheIndex) {
  TraceOptions o = Options(100, 1, 1.0, 1.0, 3);
  o.adapter_format = "lora_%d_x";
  std::set<std::string> names;
  for (const TraceRequest& r : Synthesize(o)) names.insert(r.adapter);
  EXPECT_EQ(names, (std::set<std::string>{"lora_0_x", "lora_1_x", "lora_2_x"}));
  EXPECT_EQ(*AdapterName("adapter-%04d", 7), "adapter-0007");
  for (const char* bad : {"adapter", "a-%s", "%d-%d", "a-%f"}) {
    absl::StatusOr<std::string> s = AdapterName(bad, 1);
    ASSERT_FALSE(s.ok()) << bad;
    EXPECT_NE(s.status().message().find("--adapter-format"), std::string::npos);
  }
}

TEST(Trace, LengthsStayInTheirRangeAndReachBothEnds) {
  TraceOptions o = Options(1000, 5);
  o.input_len = {8, 24};
  o.output_len = {1, 4};
  o.prompt_token_min = 3;
  o.prompt_token_max = 9;
  std::set<int32_t> in, out;
  std::set<uint32_t> ids;
  for (const TraceRequest& r : Synthesize(o)) {
    ASSERT_GE(r.input_len, 8);
    ASSERT_LT(r.input_len, 24);
    ASSERT_GE(r.output_len, 1);
    ASSERT_LT(r.output_len, 4);
    ASSERT_EQ(r.prompt_ids.size(), static_cast<size_t>(r.input_len));
    in.insert(r.input_len);
    out.insert(r.output_len);
    ids.insert(r.prompt_ids.begin(), r.prompt_ids.end());
  }
  EXPECT_EQ(in.size(), 16u);  // every value in [8, 24)
  EXPECT_EQ(*in.begin(), 8);
  EXPECT_EQ(*in.rbegin(), 23);
  EXPECT_EQ(out, (std::set<int32_t>{1, 2, 3}));
  EXPECT_EQ(ids, (std::set<uint32_t>{3, 4, 5, 6, 7, 8}));
}

TEST(Trace, MissingPromptsAreRedrawnExactlyAsSynthesized) {
  const std::vector<TraceRequest> t = Synthesize(Options(20, 5));
  std::vector<TraceRequest> stripped = t;
  for (TraceRequest& r : stripped) r.prompt_ids.clear();
  stripped[3].prompt_ids = t[3].prompt_ids;  // one kept: the others still line up
  ASSERT_TRUE(FillMissingPrompts(1234, 1, 500, &stripped).ok());
  EXPECT_EQ(stripped, t);
  EXPECT_FALSE(FillMissingPrompts(1234, 5, 5, &stripped).ok());
}

TEST(Trace, EachFieldHasItsOwnStream) {
  // Changing the arrival process keeps every adapter, length and prompt.
  const std::vector<TraceRequest> a = Synthesize(Options(20, 10, 1.0));
  const std::vector<TraceRequest> b = Synthesize(Options(20, 10, 3.0));
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].adapter, b[i].adapter);
    EXPECT_EQ(a[i].input_len, b[i].input_len);
    EXPECT_EQ(a[i].output_len, b[i].output_len);
    EXPECT_EQ(a[i].prompt_ids, b[i].prompt_ids);
  }
  EXPECT_NE(a.back().t, b.back().t);
}

TEST(Trace, BadOptionsNameTheFlag) {
  struct Case {
    const char* flag;
    TraceOptions options;
  };
  std::vector<Case> cases;
  auto add = [&](const char* flag, auto mutate) {
    TraceOptions o = Options(10, 10);
    mutate(o);
    cases.push_back({flag, o});
  };
  add("--alpha", [](TraceOptions& o) { o.alpha = 0; });
  add("--alpha", [](TraceOptions& o) { o.alpha = -1; });
  add("--cv", [](TraceOptions& o) { o.cv = 0; });
  add("--rate", [](TraceOptions& o) { o.rate = 0; });
  add("--rate", [](TraceOptions& o) { o.rate = std::nan(""); });
  add("--duration", [](TraceOptions& o) { o.duration_s = -1; });
  add("--duration", [](TraceOptions& o) { o.duration_s = 0.01; });  // no request at all
  add("--num-adapters", [](TraceOptions& o) { o.num_adapters = -1; });
  add("--input-len", [](TraceOptions& o) { o.input_len = {10, 10}; });
  add("--output-len", [](TraceOptions& o) { o.output_len = {0, 10}; });
  add("--prompt-token-min", [](TraceOptions& o) { o.prompt_token_min = 500; });
  add("--adapter-format", [](TraceOptions& o) { o.adapter_format = "x"; });
  for (const Case& c : cases) {
    absl::StatusOr<std::vector<TraceRequest>> t = SynthesizeTrace(c.options);
    ASSERT_FALSE(t.ok()) << c.flag;
    EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(t.status().message().find(c.flag), std::string::npos) << t.status();
  }
}

TEST(Trace, LengthRangesParse) {
  EXPECT_EQ(*ParseLengthRange("input-len", "8:512"), (LengthRange{8, 512}));
  for (const char* bad : {"8", "8:8", "9:8", "0:5", "a:b", "8:512:3", ""}) {
    absl::StatusOr<LengthRange> r = ParseLengthRange("input-len", bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.status().message().find("--input-len"), std::string::npos);
  }
}

TEST(TraceRandom, GammaMomentsMatchShapeAndScale) {
  for (double shape : {0.3, 1.0, 3.5}) {
    SCOPED_TRACE(shape);
    std::mt19937_64 rng = SubStream(99, 7);
    const int n = 200000;
    double sum = 0, sum2 = 0;
    for (int i = 0; i < n; ++i) {
      const double x = Gamma(rng, shape, 2.0);
      ASSERT_GT(x, 0.0);
      sum += x;
      sum2 += x * x;
    }
    const double mean = sum / n;
    const double var = sum2 / n - mean * mean;
    EXPECT_NEAR(mean, shape * 2.0, 0.02 * shape * 2.0);
    EXPECT_NEAR(var, shape * 4.0, 0.05 * shape * 4.0);
  }
}

TEST(TraceRandom, UniformsAndSubStreams) {
  std::mt19937_64 rng = SubStream(5, 1);
  std::vector<int> counts(3, 0);
  for (int i = 0; i < 30000; ++i) {
    const int64_t v = UniformInt(rng, -1, 2);
    ASSERT_GE(v, -1);
    ASSERT_LT(v, 2);
    ++counts[v + 1];
  }
  for (int c : counts) EXPECT_NEAR(c, 10000, 400);
  for (int i = 0; i < 1000; ++i) {
    const double u = Uniform01(rng);
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
  }
  std::mt19937_64 a = SubStream(5, 1), b = SubStream(5, 1), c = SubStream(5, 2), d = SubStream(6, 1);
  EXPECT_EQ(a(), b());
  EXPECT_NE(SubStream(5, 1)(), c());
  EXPECT_NE(SubStream(5, 1)(), d());
}

}  // namespace
}  // namespace loraserve::loadgen
