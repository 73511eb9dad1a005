// logits_ops against naive references (std::exp in double, full sorts), on
// odd sizes so the vector loops' tails are exercised.
#include "kernels/logits_ops.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace loraserve::logits_ops {
namespace {

std::vector<float> RandomRow(int n, uint32_t seed, float sigma = 4.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, sigma);
  std::vector<float> x(n);
  for (float& v : x) v = normal(rng);
  return x;
}

// Ids sorted best first: larger value, ties to the lower id.
std::vector<int32_t> NaiveOrder(const std::vector<float>& x) {
  std::vector<int32_t> ids(x.size());
  std::iota(ids.begin(), ids.end(), 0);
  std::stable_sort(ids.begin(), ids.end(), [&](int32_t a, int32_t b) { return x[a] > x[b]; });
  return ids;
}

TEST(LogitsOpsTest, MaxAndArgMaxOnOddSizesAndTies) {
  for (int n : {1, 3, 7, 8, 9, 17, 1001}) {
    std::vector<float> x = RandomRow(n, n);
    const int32_t best = NaiveOrder(x)[0];
    EXPECT_EQ(MaxOf(x.data(), n), x[best]) << n;
    EXPECT_EQ(ArgMax(x.data(), n), best) << n;
  }
  const std::vector<float> tied = {1, 5, 2, 5, 5, 0, 0, 0, 0, 5};
  EXPECT_EQ(ArgMax(tied.data(), 10), 1);
  const float ninf = -std::numeric_limits<float>::infinity();
  const std::vector<float> masked = {ninf, ninf, -3.0f, ninf, ninf, ninf, ninf, ninf, ninf};
  EXPECT_EQ(ArgMax(masked.data(), 9), 2);
}

TEST(LogitsOpsTest, ExpWeightsMatchStdExp) {
  for (int n : {1, 5, 8, 13, 4099}) {
    std::vector<float> x = RandomRow(n, 100 + n, 10.0f);
    if (n > 1) x[0] = -std::numeric_limits<float>::infinity();  // a masked token
    const float m = *std::max_element(x.begin(), x.end());
    for (float scale : {1.0f, 1.0f / 0.7f, 5.0f}) {
      std::vector<float> w(n);
      const double sum = ExpWeights(x.data(), n, m, scale, w.data());
      double want_sum = 0;
      for (int i = 0; i < n; ++i) {
        const float arg = (x[i] - m) * scale;  // the float exponent the op sees
        const double want = arg < -87.0f ? 0.0 : std::exp(static_cast<double>(arg));
        want_sum += want;
        EXPECT_NEAR(w[i], want, 1e-6 * want) << "n " << n << " i " << i << " arg " << arg;
      }
      if (n > 1) {
        EXPECT_EQ(w[0], 0.0f);
      }
      EXPECT_NEAR(sum, want_sum, 1e-6 * want_sum);
    }
  }
}

TEST(LogitsOpsTest, TopKMatchesSortWithTies) {
  std::vector<float> x = RandomRow(1003, 7);
  for (int i = 0; i < 1003; i += 10) x[i] = std::round(x[i]);  // create ties
  const std::vector<int32_t> order = NaiveOrder(x);
  std::vector<Scored> top;
  for (int k : {1, 5, 20, 64, 1003, 2000}) {
    TopK(x.data(), 1003, k, &top);
    ASSERT_EQ(top.size(), static_cast<size_t>(std::min(k, 1003)));
    for (size_t i = 0; i < top.size(); ++i) {
      EXPECT_EQ(top[i].id, order[i]) << "k " << k << " rank " << i;
      EXPECT_EQ(top[i].value, x[order[i]]);
    }
  }
  TopK(x.data(), 1003, 0, &top);
  EXPECT_TRUE(top.empty());
}

TEST(LogitsOpsTest, TopKRanksNaNAfterEveryNumberAndZerosAsEqual) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  // NaN first (it used to poison the heap), a -inf, signed zeros tied by id.
  const std::vector<float> x = {nan, -0.0f, 2.0f, nan, -inf, 0.0f, nan, -1.0f};
  std::vector<Scored> top;
  TopK(x.data(), 8, 8, &top);
  std::vector<int32_t> ids;
  for (const Scored& s : top) ids.push_back(s.id);
  EXPECT_EQ(ids, (std::vector<int32_t>{2, 1, 5, 7, 4, 0, 3, 6}));
  for (int k = 1; k <= 8; ++k) {
    TopK(x.data(), 8, k, &top);
    ASSERT_EQ(top.size(), static_cast<size_t>(k));
    for (int i = 0; i < k; ++i) EXPECT_EQ(top[i].id, ids[i]) << "k " << k << " rank " << i;
  }
  EXPECT_TRUE(Before({1.0f, 9}, {nan, 0}));
  EXPECT_FALSE(Before({nan, 0}, {-inf, 9}));
  EXPECT_TRUE(Before({nan, 0}, {nan, 1}));
  EXPECT_TRUE(Before({-0.0f, 1}, {0.0f, 2}));
  EXPECT_FALSE(Before({0.0f, 2}, {-0.0f, 1}));
}

TEST(LogitsOpsTest, ExpSumIsExpWeightsSumBitForBit) {
  for (int n : {1, 3, 4, 9, 1001, 32003}) {
    const std::vector<float> x = RandomRow(n, 300 + n, 6.0f);
    const float m = MaxOf(x.data(), n);
    std::vector<float> w(n);
    for (float scale : {1.0f, 1.0f / 0.3f, 0.5f}) {
      EXPECT_EQ(ExpSum(x.data(), n, m, scale), ExpWeights(x.data(), n, m, scale, w.data()))
          << "n " << n;
    }
  }
}

TEST(LogitsOpsTest, FindNucleusMatchesSortedPrefix) {
  std::vector<Scored> scratch;
  for (uint32_t seed : {1u, 2u, 3u}) {
    std::vector<float> w = RandomRow(5000, seed, 1.0f);
    for (float& v : w) v = std::exp(v);
    for (int i = 0; i < 5000; i += 7) w[i] = w[(i + 1) % 5000];  // ties
    const double total = std::accumulate(w.begin(), w.end(), 0.0);
    const std::vector<int32_t> order = NaiveOrder(w);
    for (double p : {0.01, 0.3, 0.9, 0.999}) {
      double cum = 0;
      size_t m = 0;
      while (m < order.size() && cum < p * total) cum += w[order[m++]];
      const NucleusCut cut = FindNucleus(w.data(), 5000, p * total, &scratch);
      std::vector<bool> want(5000, false);
      for (size_t i = 0; i < m; ++i) want[order[i]] = true;
      int mismatches = 0;
      for (int t = 0; t < 5000; ++t) {
        const bool kept = w[t] > cut.threshold || (w[t] == cut.threshold && t <= cut.last_id);
        mismatches += kept != want[t];
      }
      EXPECT_EQ(mismatches, 0) << "seed " << seed << " p " << p << " size " << m;
    }
    // Rounding short of the target: everything kept.
    const NucleusCut all = FindNucleus(w.data(), 5000, total * 2, &scratch);
    EXPECT_EQ(all.threshold, 0.0f);
    EXPECT_EQ(all.last_id, 4999);
  }
}

}  // namespace
}  // namespace loraserve::logits_ops
