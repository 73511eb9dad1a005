// CudaBackend::SampleCandidates vs its CPU twin on fp32 logits (both see the
// very same floats): ids and values must match exactly (one total ranking:
// value, then id, NaN last), and totals to within the summation order: the
// per-element weights are computed bit for bit alike (the CPU's exp
// polynomial with unfused operations), each side sums n non-negative terms
// in double, so |cuda - cpu| <= 2 (n - 1) 2^-53 of the sum. NaN totals (a NaN
// or +inf in the row, or an all -inf row) must agree. Skipped without a
// device.
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/kernels/cuda/cuda_backend_test_util.h"
#include "tests/kernels/sample_candidates_rows.h"

namespace loraserve {
namespace {

using ::loraserve::testing::CudaVsCpuTest;
using ::loraserve::testing::MakeLogitsRow;
using ::loraserve::testing::UploadRaw;

using CudaSampleCandidatesTest = CudaVsCpuTest;

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

TEST_F(CudaSampleCandidatesTest, MatchesCpuExactlyUpToSummationOrder) {
  std::mt19937 rng(4242);
  for (int64_t vocab : {1, 7, 255, 256, 257, 1000, 32003, 128256}) {
    for (int64_t rows : {1, 3, 7, 33}) {
      for (int32_t k : {1, 2, 31, 32, 33, 63, 64}) {
        if (k > vocab) continue;
        if (vocab >= 32003 && rows == 33 && k != 64) continue;  // keep the run short
        std::vector<float> logits;
        std::vector<float> temperature;
        for (int64_t r = 0; r < rows; ++r) {
          const std::vector<float> row = MakeLogitsRow(
              vocab, static_cast<int>((r + k) % testing::kSampleRowKinds), (r + k) % 4 == 1, rng);
          logits.insert(logits.end(), row.begin(), row.end());
          temperature.push_back(0.3f + 0.4f * static_cast<float>(r % 4));
        }
        const auto n = static_cast<size_t>(rows * k);
        std::vector<int32_t> want_ids(n);
        std::vector<float> want_values(n);
        std::vector<double> want_total(static_cast<size_t>(rows));
        ASSERT_TRUE(cpu_->SampleCandidates(logits.data(), rows, vocab, temperature.data(), k,
                                           want_ids.data(), want_values.data(), want_total.data(),
                                           {})
                        .ok());
        auto dl = UploadRaw(*cuda_, logits);
        auto dt = UploadRaw(*cuda_, temperature);
        auto di = UploadRaw(*cuda_, std::vector<int32_t>(n, -7));
        auto dv = UploadRaw(*cuda_, std::vector<float>(n, kNaN));
        auto dtot = UploadRaw(*cuda_, std::vector<double>(static_cast<size_t>(rows), -1.0));
        ASSERT_TRUE(cuda_
                        ->SampleCandidates(dl.as<float>(), rows, vocab, dt.as<float>(), k,
                                           di.as<int32_t>(), dv.as<float>(), dtot.as<double>(), {})
                        .ok());
        std::vector<int32_t> ids(n);
        std::vector<float> values(n);
        std::vector<double> total(static_cast<size_t>(rows));
        ASSERT_TRUE(cuda_->CopyToHost(ids.data(), di.data(), n * sizeof(int32_t), {}).ok());
        ASSERT_TRUE(cuda_->CopyToHost(values.data(), dv.data(), n * sizeof(float), {}).ok());
        ASSERT_TRUE(
            cuda_->CopyToHost(total.data(), dtot.data(), total.size() * sizeof(double), {}).ok());
        ASSERT_TRUE(cuda_->Synchronize({}).ok());
        const std::string where = "vocab " + std::to_string(vocab) + " rows " +
                                  std::to_string(rows) + " k " + std::to_string(k);
        ASSERT_EQ(ids, want_ids) << where;
        ASSERT_EQ(std::memcmp(values.data(), want_values.data(), n * sizeof(float)), 0) << where;
        for (int64_t r = 0; r < rows; ++r) {
          const double want = want_total[static_cast<size_t>(r)];
          const double got = total[static_cast<size_t>(r)];
          if (std::isnan(want)) {
            EXPECT_TRUE(std::isnan(got)) << where << " row " << r;
            continue;
          }
          const double bound = 2.0 * static_cast<double>(vocab) * 0x1.0p-53 * want;
          EXPECT_NEAR(got, want, bound) << where << " row " << r;
        }
      }
    }
  }
}

TEST_F(CudaSampleCandidatesTest, RejectsWhatTheCpuRejects) {
  const std::vector<float> x(100, 0.0f);
  auto dl = UploadRaw(*cuda_, x);
  auto dt = UploadRaw(*cuda_, std::vector<float>(1, 1.0f));
  auto di = UploadRaw(*cuda_, std::vector<int32_t>(128, 0));
  auto dv = UploadRaw(*cuda_, std::vector<float>(128, 0.0f));
  auto dtot = UploadRaw(*cuda_, std::vector<double>(1, 0.0));
  for (int32_t k : {0, kMaxSampleCandidates + 1}) {
    const absl::Status s =
        cuda_->SampleCandidates(dl.as<float>(), 1, 100, dt.as<float>(), k, di.as<int32_t>(),
                                dv.as<float>(), dtot.as<double>(), {});
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
    EXPECT_THAT(std::string(s.message()),
                ::testing::HasSubstr("SampleCandidates: k=" + std::to_string(k)));
  }
  EXPECT_TRUE(
      cuda_->SampleCandidates(nullptr, 0, 100, nullptr, 4, nullptr, nullptr, nullptr, {}).ok());
}

}  // namespace
}  // namespace loraserve
