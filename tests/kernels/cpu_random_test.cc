// CpuBackend::FillRandom and kernels/counter_random.h against an independent
// reference: a sequential SplitMix64 generator written here from Vigna's
// published algorithm (checked against its published first output for state
// 0), whose output number i must be CounterHash(seed, i), and the documented
// formula fmaf(hi - lo, (hash >> 40) * 2^-24, lo) computed here, compared bit
// for bit. Also: range, the first two moments and a histogram of 1e6 draws,
// constants, seeds, odd sizes, thread-count independence and argument errors.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/backend.h"
#include "kernels/counter_random.h"
#include "tests/kernels/cpu_test_util.h"

namespace loraserve {
namespace {

using ::loraserve::testing::MakeCpuBackend;
using ::testing::HasSubstr;

// Vigna's SplitMix64 (https://prng.di.unimi.it/splitmix64.c), stepped sequentially.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t state) : x_(state) {}
  uint64_t Next() {
    uint64_t z = (x_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }

 private:
  uint64_t x_;
};

// The documented value of element i, from the i-th SplitMix64 output.
float Expected(uint64_t hash, float lo, float hi) {
  const float u = static_cast<float>(hash >> 40) / 16777216.0f;
  return std::fmaf(hi - lo, u, lo);
}

uint32_t Bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

// FillRandom into a fresh buffer of `backend`, downloaded as fp32.
std::vector<float> Fill(Backend& backend, int64_t n, uint64_t seed, float lo, float hi) {
  auto buf = backend.Allocate(static_cast<size_t>(n) * backend.elt_size());
  EXPECT_TRUE(buf.ok()) << buf.status();
  const absl::Status s = backend.FillRandom(buf->data(), n, seed, lo, hi, {});
  EXPECT_TRUE(s.ok()) << s;
  std::vector<float> out(static_cast<size_t>(n));
  EXPECT_TRUE(backend.DownloadToF32(buf->data(), n, out.data()).ok());
  return out;
}

TEST(CounterRandomTest, MatchesPublishedSplitMix64) {
  EXPECT_EQ(SplitMix64(0).Next(), 0xE220A8397B1DCDAFull);
  EXPECT_EQ(CounterHash(0, 0), 0xE220A8397B1DCDAFull);
  for (uint64_t seed : {uint64_t{0}, uint64_t{1}, uint64_t{42}, ~uint64_t{0}}) {
    SplitMix64 ref(seed);
    for (uint64_t i = 0; i < 1000; ++i) {
      ASSERT_EQ(CounterHash(seed, i), ref.Next()) << "seed " << seed << " i " << i;
    }
  }
}

TEST(CounterRandomTest, UniformIsTheDocumentedFormula) {
  SplitMix64 ref(7);
  for (uint64_t i = 0; i < 1000; ++i) {
    const uint64_t h = ref.Next();
    const float u = CounterUniform(7, i);
    ASSERT_EQ(Bits(u), Bits(static_cast<float>(h >> 40) / 16777216.0f)) << i;
    ASSERT_GE(u, 0.0f);
    ASSERT_LT(u, 1.0f);
    ASSERT_EQ(Bits(CounterUniformIn(7, i, -0.25f, 3.0f)), Bits(Expected(h, -0.25f, 3.0f))) << i;
  }
}

TEST(CpuFillRandomTest, EqualsTheReferenceBitForBitAtOddSizes) {
  auto cpu = MakeCpuBackend(3);
  const float a = std::sqrt(3.0f) * 0.02f;
  for (int64_t n : {1, 7, 1001}) {
    for (uint64_t seed : {uint64_t{0}, uint64_t{5}, uint64_t{0x123456789abcdefull}}) {
      const std::vector<float> got = Fill(*cpu, n, seed, -a, a);
      SplitMix64 ref(seed);
      for (int64_t i = 0; i < n; ++i) {
        ASSERT_EQ(Bits(got[static_cast<size_t>(i)]), Bits(Expected(ref.Next(), -a, a)))
            << "n " << n << " seed " << seed << " i " << i;
      }
    }
  }
}

TEST(CpuFillRandomTest, ExactValuesAtChosenIndices) {
  auto cpu = MakeCpuBackend(2);
  const int64_t n = 5000;
  const std::vector<float> got = Fill(*cpu, n, 3, -1.0f, 1.0f);
  SplitMix64 ref(3);
  std::vector<uint64_t> hashes(static_cast<size_t>(n));
  for (uint64_t& h : hashes) h = ref.Next();
  for (int64_t i : {0, 1, 2, 999, 4096, 4999}) {
    const uint64_t h = hashes[static_cast<size_t>(i)];
    // 2 * u - 1 with u = k * 2^-24: exact in fp32.
    const float want = static_cast<float>(static_cast<double>(h >> 40) / 8388608.0 - 1.0);
    EXPECT_EQ(got[static_cast<size_t>(i)], want) << i;
  }
}

TEST(CpuFillRandomTest, RangeMomentsAndHistogramOfAMillionDraws) {
  auto cpu = MakeCpuBackend(4);
  const int64_t n = 1000000;
  const float lo = -1.0f, hi = 1.0f;
  const std::vector<float> v = Fill(*cpu, n, 11, lo, hi);
  double sum = 0, sum_sq = 0;
  std::vector<int64_t> buckets(10, 0);
  for (float x : v) {
    ASSERT_GE(x, lo);
    ASSERT_LT(x, hi);
    sum += x;
    sum_sq += double(x) * x;
    ++buckets[std::min<size_t>(9, static_cast<size_t>((double(x) - lo) / (hi - lo) * 10))];
  }
  const double mean = sum / n;
  const double var = sum_sq / n - mean * mean;
  // Uniform on [-1, 1): mean 0, variance 1/3; the standard errors of the
  // estimates are sqrt(1/3 / n) and sqrt((1/5 - 1/9) / n). Allow 5 of them.
  EXPECT_NEAR(mean, 0.0, 5 * std::sqrt(1.0 / 3 / n));
  EXPECT_NEAR(var, 1.0 / 3, 5 * std::sqrt((1.0 / 5 - 1.0 / 9) / n));
  // Each tenth: binomial(n, 0.1), standard deviation sqrt(n * 0.09) = 300.
  for (int64_t b : buckets) EXPECT_NEAR(static_cast<double>(b), n / 10.0, 5 * 300.0);
}

TEST(CpuFillRandomTest, EqualBoundsGiveAConstant) {
  auto cpu = MakeCpuBackend(2);
  for (float c : {1.0f, 0.0f, -2.5f}) {
    for (float x : Fill(*cpu, 1001, 9, c, c)) ASSERT_EQ(Bits(x), Bits(c));
  }
}

TEST(CpuFillRandomTest, SameSeedSameValuesOtherSeedOtherValues) {
  auto cpu = MakeCpuBackend(2);
  const std::vector<float> a = Fill(*cpu, 1001, 1, -1, 1);
  EXPECT_EQ(a, Fill(*cpu, 1001, 1, -1, 1));
  const std::vector<float> b = Fill(*cpu, 1001, 2, -1, 1);
  int equal = 0;
  for (size_t i = 0; i < a.size(); ++i) equal += a[i] == b[i];
  EXPECT_LE(equal, 2);  // a coincidence has probability 2^-24 per element
}

TEST(CpuFillRandomTest, IndependentOfTheThreadCountAndOfPrefixLength) {
  auto one = MakeCpuBackend(1);
  auto four = MakeCpuBackend(4);
  const std::vector<float> a = Fill(*one, 300001, 77, -3, 5);
  EXPECT_EQ(a, Fill(*four, 300001, 77, -3, 5));
  const std::vector<float> prefix = Fill(*four, 1001, 77, -3, 5);
  EXPECT_TRUE(std::equal(prefix.begin(), prefix.end(), a.begin()));
}

TEST(CpuFillRandomTest, ZeroElementsIsANoOp) {
  auto cpu = MakeCpuBackend(1);
  EXPECT_TRUE(cpu->FillRandom(nullptr, 0, 1, -1, 1, {}).ok());
}

TEST(CpuFillRandomTest, BadArgumentsAreInvalidArgumentNamingThem) {
  auto cpu = MakeCpuBackend(1);
  auto buf = cpu->Allocate(64);
  ASSERT_TRUE(buf.ok());
  void* d = buf->data();
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  struct Case {
    void* dst;
    int64_t n;
    float lo, hi;
    const char* want;
  };
  const Case cases[] = {
      {d, -1, -1, 1, "n must be >= 0; got -1"},
      {d, 4, nan, 1, "lo must be finite; got nan"},
      {d, 4, -1, inf, "hi must be finite; got inf"},
      {d, 4, -inf, 1, "lo must be finite; got -inf"},
      {d, 4, 2, 1, "lo=2 is above hi=1"},
      {d, 0, 2, 1, "lo=2 is above hi=1"},
      {d, 4, -3e38f, 3e38f, "hi - lo overflows"},
      {nullptr, 4, -1, 1, "dst is null"},
  };
  for (const Case& c : cases) {
    const absl::Status s = cpu->FillRandom(c.dst, c.n, 1, c.lo, c.hi, {});
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.want;
    EXPECT_THAT(std::string(s.message()), HasSubstr("FillRandom")) << s;
    EXPECT_THAT(std::string(s.message()), HasSubstr(c.want)) << s;
  }
}

}  // namespace
}  // namespace loraserve
