// CpuBackend::SampleCandidates against brute-force references: the k best by
// a full sort on (-value, id) with NaN last, and the weight sum by std::exp in
// double (within ExpWeights' 1e-6 relative accuracy), on random logits with
// exact ties, signed zeros, -inf and NaN, odd vocab sizes, k = 1..64 and
// rows 1/3/7. Also: the argument checks, and the op recorded in a graph.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/backend.h"
#include "tests/kernels/cpu_test_util.h"
#include "tests/kernels/sample_candidates_rows.h"

namespace loraserve {
namespace {

using ::testing::HasSubstr;

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

// Ids of x ranked best first: larger value, ties to the lower id, NaN last.
std::vector<int32_t> BruteForceOrder(const float* x, int64_t n) {
  std::vector<int32_t> ids(static_cast<size_t>(n));
  std::iota(ids.begin(), ids.end(), 0);
  std::sort(ids.begin(), ids.end(), [&](int32_t a, int32_t b) {
    const bool an = std::isnan(x[a]);
    const bool bn = std::isnan(x[b]);
    if (an != bn) return bn;
    if (!an && x[a] != x[b]) return x[a] > x[b];
    return a < b;
  });
  return ids;
}

// sum_i exp((x_i - max) / T) in double; NaN when the row holds a NaN or has
// no finite max (all -inf), as x - max is then NaN somewhere.
double BruteForceTotal(const float* x, int64_t n, float temperature) {
  float m = -kInf;
  for (int64_t i = 0; i < n; ++i) {
    if (std::isnan(x[i])) return std::nan("");
    m = std::max(m, x[i]);
  }
  if (!std::isfinite(m)) return std::nan("");
  const float inv_t = 1.0f / temperature;
  double s = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const double e = static_cast<double>((x[i] - m) * inv_t);
    if (e >= -87.0) s += std::exp(e);
  }
  return s;
}

TEST(CpuSampleCandidates, MatchesBruteForceRankingAndSum) {
  auto backend = testing::MakeCpuBackend(2);
  std::mt19937 rng(2024);
  int checked = 0;
  for (int64_t vocab : {1, 7, 1000, 32003}) {
    for (int64_t rows : {1, 3, 7}) {
      for (int32_t k = 1; k <= kMaxSampleCandidates; ++k) {
        if (k > vocab) break;
        // Every k on small vocabularies; a spread of them on the large one.
        if (vocab == 32003 && k % 7 != 1 && k != kMaxSampleCandidates) continue;
        const int kind = static_cast<int>((k + rows) % testing::kSampleRowKinds);
        const bool with_nan = k % 2 == 0;
        std::vector<float> logits;
        std::vector<float> temperature;
        for (int64_t r = 0; r < rows; ++r) {
          const std::vector<float> row =
              testing::MakeLogitsRow(vocab, kind, with_nan && r != 1, rng);
          logits.insert(logits.end(), row.begin(), row.end());
          temperature.push_back(0.25f + 0.5f * static_cast<float>(r));
        }
        std::vector<int32_t> ids(static_cast<size_t>(rows * k), -1);
        std::vector<float> values(static_cast<size_t>(rows * k), kNaN);
        std::vector<double> total(static_cast<size_t>(rows), -1.0);
        ASSERT_TRUE(backend
                        ->SampleCandidates(logits.data(), rows, vocab, temperature.data(), k,
                                           ids.data(), values.data(), total.data(), {})
                        .ok());
        for (int64_t r = 0; r < rows; ++r) {
          const float* x = logits.data() + r * vocab;
          const std::vector<int32_t> order = BruteForceOrder(x, vocab);
          const std::string where = "vocab " + std::to_string(vocab) + " rows " +
                                    std::to_string(rows) + " k " + std::to_string(k) + " row " +
                                    std::to_string(r);
          for (int32_t j = 0; j < k; ++j) {
            const int32_t id = ids[static_cast<size_t>(r * k + j)];
            ASSERT_EQ(id, order[static_cast<size_t>(j)]) << where << " rank " << j;
            const float v = values[static_cast<size_t>(r * k + j)];
            ASSERT_EQ(std::memcmp(&v, &x[id], sizeof(float)), 0) << where << " rank " << j;
          }
          const double want = BruteForceTotal(x, vocab, temperature[static_cast<size_t>(r)]);
          const double got = total[static_cast<size_t>(r)];
          if (std::isnan(want)) {
            EXPECT_TRUE(std::isnan(got)) << where;
          } else {
            EXPECT_NEAR(got, want, 1e-6 * want) << where;
            // The exact sum the sampler's whole-vocabulary draw uses.
            EXPECT_EQ(got, logits_ops::ExpSum(x, static_cast<int32_t>(vocab),
                                              logits_ops::MaxOf(x, static_cast<int32_t>(vocab)),
                                              1.0f / temperature[static_cast<size_t>(r)]))
                << where;
          }
          ++checked;
        }
      }
    }
  }
  EXPECT_GT(checked, 500);
}

TEST(CpuSampleCandidates, NaNOnlyFillsWhatNumbersCannot) {
  auto backend = testing::MakeCpuBackend(1);
  const std::vector<float> x = {kNaN, 1.0f, kNaN, -kInf, kNaN};
  const float t = 1.0f;
  std::vector<int32_t> ids(4);
  std::vector<float> values(4);
  double total = 0;
  ASSERT_TRUE(
      backend->SampleCandidates(x.data(), 1, 5, &t, 4, ids.data(), values.data(), &total, {}).ok());
  EXPECT_EQ(ids, (std::vector<int32_t>{1, 3, 0, 2}));
  EXPECT_EQ(values[0], 1.0f);
  EXPECT_EQ(values[1], -kInf);
  EXPECT_TRUE(std::isnan(total));
}

TEST(CpuSampleCandidates, RejectsBadArgumentsNamingTheOpAndValue) {
  auto backend = testing::MakeCpuBackend(1);
  const std::vector<float> x(100, 0.0f);
  std::vector<float> t(2, 1.0f);
  std::vector<int32_t> ids(2 * kMaxSampleCandidates);
  std::vector<float> values(2 * kMaxSampleCandidates);
  std::vector<double> total(2);
  auto call = [&](int64_t rows, int64_t vocab, int32_t k) {
    return backend->SampleCandidates(x.data(), rows, vocab, t.data(), k, ids.data(), values.data(),
                                     total.data(), {});
  };
  auto expect_bad = [](const absl::Status& s, const std::string& what) {
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
    EXPECT_THAT(std::string(s.message()), HasSubstr("SampleCandidates: " + what)) << s;
  };
  expect_bad(call(1, 100, 0), "k=0");
  expect_bad(call(1, 100, kMaxSampleCandidates + 1), "k=65");
  expect_bad(call(1, 5, 6), "k=6");
  expect_bad(call(-1, 100, 4), "rows");
  expect_bad(call(1, 0, 1), "vocab");
  expect_bad(backend->SampleCandidates(x.data(), 1, int64_t{1} << 32, t.data(), 4, ids.data(),
                                       values.data(), total.data(), {}),
             "vocab=4294967296");
  expect_bad(backend->SampleCandidates(x.data(), 1, 100, nullptr, 4, ids.data(), values.data(),
                                       total.data(), {}),
             "temperature is null");
  t[1] = 0.0f;
  expect_bad(call(2, 50, 4), "temperature[1]=0");
  t[1] = kNaN;
  expect_bad(call(2, 50, 4), "temperature[1]=nan");
  EXPECT_TRUE(call(0, 100, 4).ok());  // nothing to do
}

TEST(CpuSampleCandidates, RecordedInAGraphRunsAtLaunch) {
  auto backend = testing::MakeCpuBackend(1);
  ASSERT_TRUE(backend->SupportsGraphs());
  const std::vector<float> x = {0.5f, 3.0f, -1.0f, 3.0f, 2.0f};
  const float t = 1.0f;
  std::vector<int32_t> ids(2, -1);
  std::vector<float> values(2, 0.0f);
  double total = -1.0;
  ASSERT_TRUE(backend->BeginCapture().ok());
  ASSERT_TRUE(
      backend->SampleCandidates(x.data(), 1, 5, &t, 2, ids.data(), values.data(), &total, {}).ok());
  auto graph = backend->EndCapture();
  ASSERT_TRUE(graph.ok()) << graph.status();
  EXPECT_EQ(ids[0], -1);  // recorded, not run
  ASSERT_TRUE(backend->LaunchGraph(*graph).ok());
  EXPECT_EQ(ids, (std::vector<int32_t>{1, 3}));
  EXPECT_EQ(values, (std::vector<float>{3.0f, 3.0f}));
  EXPECT_NEAR(total, 2.0 + std::exp(-1.0) + std::exp(-2.5) + std::exp(-4.0), 1e-6);
}

}  // namespace
}  // namespace loraserve
