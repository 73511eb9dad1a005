// The tensor-core SGMV LoRA kernels (LoraKernel::kSgmvTc,
// kernels/cuda/cuda_lora_tc.h) against the CPU twins, run explicitly whatever
// the automatic choice would be: batches of 1, 3, 7, 33, 64, 65 and 200
// tokens (tiles ending mid-fragment and mid-tile, a tile of exactly 64, one
// past it); in 1000 and 4100 (not multiples of 16 or 64); ranks 4, 8, 16, 64
// and 256 mixed in one batch, each segment and slice at its own rank;
// rank-0 slices and an empty segment in the middle; segments starting
// mid-tile; tokens outside every segment; rank-rows scattered at offsets that
// are all only 2-byte aligned, and x / v / y one element past alignment.
// Each shrink runs with the automatic split of `in` and with 1, 2 and 8 CTAs
// per cluster. Tolerances are derived in tests/kernels/cuda/cuda_lora_test_rig.h.
// The host-side tests (thresholds of ChooseLoraKernel and
// ChooseTcShrinkSplits, the exact split of v, argument checks) need no device.
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/cuda/cuda_lora_internal.h"
#include "kernels/cuda/cuda_lora_tc.h"
#include "tests/kernels/cuda/cuda_kernel_test_util.h"
#include "tests/kernels/cuda/cuda_lora_test_rig.h"

namespace loraserve {
namespace {

using ::loraserve::cuda::lora_internal::Bf16x3;
using ::loraserve::cuda::lora_internal::ChooseLoraKernel;
using ::loraserve::cuda::lora_internal::ChooseTcShrinkSplits;
using ::loraserve::cuda::lora_internal::kSgmvMinTokensPerSegment;
using ::loraserve::cuda::lora_internal::kSgmvTcMinTokensPerSegment;
using ::loraserve::cuda::lora_internal::LoraKernel;
using ::loraserve::cuda::lora_internal::SplitBf16x3;
using ::loraserve::testing::LoraCase;
using ::loraserve::testing::LoraRig;
using ::testing::HasSubstr;

std::vector<LoraCase> TcCases() {
  const auto B = LoraKernel::kBgmv;
  const auto S = LoraKernel::kSgmv;
  const auto T = LoraKernel::kSgmvTc;
  return {
      {"Tc1Token", 1, 1000, {1000}, {0, 1}, {{16}}, B, 1, true},
      {"Tc3TokensQkvIn4100", 3, 4100, {320, 64, 68}, {0, 3}, {{4, 8, 256}}, B, 1},
      {"Tc7TokensEmptySegmentMidTile", 7, 1000, {1000}, {0, 2, 2, 7}, {{8}, {64}, {4}}, B, 1,
       true},
      {"Tc33MixedRanksRank0Middle", 33, 4100, {640, 128, 136}, {1, 5, 17, 33},
       {{4, 8, 16}, {64, 0, 64}, {256, 16, 8}}, S, 1},
      {"Tc64ExactlyOneTile", 64, 1000, {1000}, {0, 64}, {{64}}, T, 1},
      {"Tc65SegmentsStartMidTile", 65, 4100, {512, 520}, {0, 13, 50, 65},
       {{16, 4}, {0, 8}, {256, 64}}, S, 1, true},
      {"Tc200Ranks4To256", 200, 1000, {1000, 256}, {3, 40, 71, 100, 164, 190, 200},
       {{4, 8}, {8, 16}, {16, 0}, {64, 4}, {256, 256}, {0, 64}}, T, 1},
      {"Tc200In4100", 200, 4100, {4100}, {0, 64, 128, 130, 200}, {{8}, {64}, {4}, {16}}, T, 1,
       true},
      {"Tc65Rank256In4100", 65, 4100, {200}, {0, 65}, {{256}}, T, 1, true},
      // A partial second 64-rank tile (72, 100), in below one 64-wide K tile,
      // in an exact multiple of it, and in = 200 where 8 K splits leave some
      // splits without columns.
      {"Tc80Ranks72And100", 80, 1000, {1000}, {0, 40, 80}, {{72}, {100}}, T, 1},
      {"Tc96In48", 96, 48, {200}, {0, 96}, {{16}}, T, 1},
      {"Tc64In128", 64, 128, {128}, {0, 64}, {{64}}, T, 1},
      {"Tc40In200", 40, 200, {300}, {0, 40}, {{32}}, T, 1, true},
  };
}

class CudaLoraTcKernels : public ::testing::TestWithParam<LoraCase> {
 protected:
  void SetUp() override { LORASERVE_SKIP_WITHOUT_CUDA(); }
};

TEST_P(CudaLoraTcKernels, ShrinkAndExpandMatchCpu) {
  LoraRig rig(GetParam());
  ASSERT_NO_FATAL_FAILURE(rig.Prepare());
  for (int32_t splits : {0, 1, 2, 8}) {
    const std::string name = "sgmv_tc shrink, k_splits " + std::to_string(splits);
    SCOPED_TRACE(name);
    ASSERT_NO_FATAL_FAILURE(rig.CheckShrink(LoraKernel::kSgmvTc, name, splits));
  }
  ASSERT_NO_FATAL_FAILURE(rig.CheckExpand(LoraKernel::kSgmvTc, "sgmv_tc expand"));
  // The FFMA SGMV kernel on the same edge cases, for comparison.
  ASSERT_NO_FATAL_FAILURE(rig.CheckShrink(LoraKernel::kSgmv, "sgmv shrink"));
  ASSERT_NO_FATAL_FAILURE(rig.CheckExpand(LoraKernel::kSgmv, "sgmv expand"));
}

INSTANTIATE_TEST_SUITE_P(Batches, CudaLoraTcKernels, ::testing::ValuesIn(TcCases()),
                         [](const ::testing::TestParamInfo<LoraCase>& info) {
                           return info.param.name;
                         });

// ----------------------------------------------------------- no device needed

TEST(CudaLoraTcChoice, ThresholdsPerSegmentLength) {
  EXPECT_EQ(kSgmvMinTokensPerSegment, 8);
  EXPECT_EQ(kSgmvTcMinTokensPerSegment, 32);
  for (const LoraCase& c : TcCases()) {
    EXPECT_EQ(ChooseLoraKernel(c.tokens, static_cast<int32_t>(c.seg_starts.size()) - 1),
              c.expected_auto)
        << c.name;
  }
  struct Shape {
    int64_t tokens;
    int32_t segments;
    LoraKernel want;
  };
  for (const Shape& s : {
           Shape{1, 1, LoraKernel::kBgmv},             // one decode
           Shape{64, 64, LoraKernel::kBgmv},           // decode batch
           Shape{7 * 64 + 63, 64, LoraKernel::kBgmv},  // average just under 8
           Shape{8 * 64, 64, LoraKernel::kSgmv},       // average 8
           Shape{8, 1, LoraKernel::kSgmv},
           Shape{31, 1, LoraKernel::kSgmv},
           Shape{32 * 64 - 1, 64, LoraKernel::kSgmv},  // average just under 32
           Shape{32, 1, LoraKernel::kSgmvTc},          // average 32
           Shape{32 * 64, 64, LoraKernel::kSgmvTc},
           Shape{4 * 512, 4, LoraKernel::kSgmvTc},  // prefill of 4 adapters
           Shape{16384, 1, LoraKernel::kSgmvTc},
       }) {
    EXPECT_EQ(ChooseLoraKernel(s.tokens, s.segments), s.want)
        << s.tokens << " tokens in " << s.segments << " segments";
  }
}

TEST(CudaLoraTcChoice, ShrinkSplitsUntilEnoughCtas) {
  // 32 token tiles of one slice at r <= 64: split 8 ways (256 CTAs).
  EXPECT_EQ(ChooseTcShrinkSplits(2048, 1, 16, 4096), 8);
  EXPECT_EQ(ChooseTcShrinkSplits(2048, 3, 64, 4096), 8);  // 96 tiles
  EXPECT_EQ(ChooseTcShrinkSplits(2048, 1, 256, 4096), 4);  // 128 tiles -> 512 CTAs
  EXPECT_EQ(ChooseTcShrinkSplits(16384, 1, 16, 4096), 2);  // 256 tiles
  EXPECT_EQ(ChooseTcShrinkSplits(16384, 3, 64, 4096), 1);  // 768 tiles: enough
  // Splits cover at least 256 input columns.
  EXPECT_EQ(ChooseTcShrinkSplits(2048, 1, 16, 1000), 2);
  EXPECT_EQ(ChooseTcShrinkSplits(2048, 1, 16, 511), 1);
  EXPECT_EQ(ChooseTcShrinkSplits(2048, 1, 16, 512), 2);
  EXPECT_EQ(ChooseTcShrinkSplits(1, 1, 4, 4100), 8);
}

double Sum3(const Bf16x3& p) {
  return double{__bfloat162float(p.hi)} + double{__bfloat162float(p.mid)} +
         double{__bfloat162float(p.lo)};
}

TEST(CudaLoraTcSplit, ThreeBf16AreExactForEveryExponentInRange) {
  std::mt19937 rng(5);
  for (int i = 0; i < 2000000; ++i) {
    // Random sign and significand, exponent in [-110, 127].
    const uint32_t exp_bits = 17 + rng() % (127 + 127 - 17 + 1);  // biased exponent
    const uint32_t bits = (rng() & 0x80000000u) | (exp_bits << 23) | (rng() & 0x7FFFFFu);
    float v;
    std::memcpy(&v, &bits, 4);
    if (std::fabs(v) > 3.38e38f) continue;  // above the largest bf16: NaN by contract
    const Bf16x3 p = SplitBf16x3(v);
    ASSERT_EQ(Sum3(p), double{v}) << "v bits 0x" << std::hex << bits;
    // hi carries v's leading bits: the rest is within 2^-8 of it.
    ASSERT_LE(std::fabs(double{v} - __bfloat162float(p.hi)), std::ldexp(std::fabs(double{v}), -8));
  }
  for (float v : {0.0f, -0.0f, 1.0f, -1.0f, 1.99999988f, 3.0e38f, std::ldexp(1.0f, -110),
                  1.1754944e-38f /* smallest normal */, 0.1f, -1234.5678f}) {
    const Bf16x3 p = SplitBf16x3(v);
    const double err = std::fabs(Sum3(p) - double{v});
    EXPECT_LE(err, std::ldexp(1.0, -133)) << v;
    if (std::fabs(v) >= std::ldexp(1.0f, -110)) {
      EXPECT_EQ(err, 0.0) << v;
    }
  }
}

TEST(CudaLoraTcArgs, BadSplitsAndWideSlicesAreInvalidArgument) {
  int dummy = 0;
  float v = 0;
  LoraSegments lora{&dummy, 1, 1, reinterpret_cast<const int32_t*>(&dummy),
                    reinterpret_cast<const LoraSlice*>(&dummy), 8};
  for (int32_t bad : {-1, 3, 5, 16}) {
    const absl::Status st = cuda::lora_internal::LaunchLoraShrinkWith(
        LoraKernel::kSgmvTc, &dummy, 3, 64, lora, &v, nullptr, bad);
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(std::string(st.message()),
                HasSubstr("LoraShrink: tc_k_splits=" + std::to_string(bad)));
  }
  // 65537 column tiles of 128: past the grid (the FFMA kernel's 64-wide tiles fail earlier).
  const int64_t wide = int64_t{65536} * 128 + 1;
  LoraSliceColumns cols{1, {0, wide}};
  const absl::Status st = cuda::lora_internal::LaunchLoraExpandWith(
      LoraKernel::kSgmvTc, &v, 3, lora, cols, &dummy, wide, nullptr);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(st.message()),
              HasSubstr("LoraExpand: slice width " + std::to_string(wide)));
}

}  // namespace
}  // namespace loraserve
