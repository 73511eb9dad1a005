// CUDA LoRA shrink/expand (kernels/cuda/cuda_lora.h) against the CPU twins on
// the same bf16-rounded inputs: batches of 1, 3, 7, 33, 150 tokens; in 1000
// and 4100 (not a multiple of 8: scalar paths); ranks 4..256 mixed across
// segments and slices (some slices rank 0); 1, 2 and 3 slices of different
// widths; rank-rows at shuffled offsets in one pool, 1 row in 6 only 2-byte
// aligned; tokens outside every segment. Every case runs the BGMV kernel, the
// FFMA SGMV kernel, the tensor-core SGMV kernel and the automatic choice.
// The rig and its tolerances: tests/kernels/cuda/cuda_lora_test_rig.h; the
// tensor-core kernels' own edge cases: cuda_lora_tc_kernels_test.cc.
#include <string>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/cuda/cuda_lora.h"
#include "kernels/cuda/cuda_lora_internal.h"
#include "tests/kernels/cuda/cuda_kernel_test_util.h"
#include "tests/kernels/cuda/cuda_lora_test_rig.h"

namespace loraserve {
namespace {

using ::loraserve::cuda::lora_internal::ChooseLoraKernel;
using ::loraserve::cuda::lora_internal::LoraKernel;
using ::loraserve::testing::LoraCase;
using ::loraserve::testing::LoraRig;
using ::testing::HasSubstr;

std::vector<LoraCase> Cases() {
  const auto B = LoraKernel::kBgmv;
  const auto S = LoraKernel::kSgmv;
  const auto T = LoraKernel::kSgmvTc;
  return {
      {"Batch1Decode", 1, 1000, {1000}, {0, 1}, {{16}}, B},
      {"Batch3QkvIn4100", 3, 4100, {320, 64, 68}, {0, 1, 3}, {{8, 0, 8}, {4, 4, 4}}, B},
      {"Batch7DecodesTokenOutside", 7, 1000, {1000}, {1, 2, 3, 4, 5, 6, 7},
       {{8}, {4}, {64}, {16}, {8}, {4}}, B},
      {"Batch33MixedQkvIn4100", 33, 4100, {640, 128, 136}, {2, 7, 8, 22, 23, 33},
       {{4, 4, 4}, {0, 0, 0}, {16, 0, 16}, {64, 64, 64}, {8, 4, 8}}, B},
      {"Batch33OneLongSegment", 33, 1000, {1000, 1000}, {0, 30}, {{64, 16}}, T},
      {"Prefill150ThreeSegments", 150, 1000, {512, 64, 64}, {0, 70, 71, 150},
       {{16, 16, 16}, {8, 0, 8}, {64, 32, 4}}, T},
      {"Rank256", 9, 4096, {4096}, {0, 9}, {{256}}, S},
  };
}

class CudaLoraKernels : public ::testing::TestWithParam<LoraCase> {
 protected:
  void SetUp() override { LORASERVE_SKIP_WITHOUT_CUDA(); }
};

TEST_P(CudaLoraKernels, ShrinkAndExpandMatchCpuWithEveryKernel) {
  LoraRig rig(GetParam());
  ASSERT_NO_FATAL_FAILURE(rig.Prepare());
  for (auto [kernel, name] :
       {std::pair{LoraKernel::kBgmv, "bgmv"}, std::pair{LoraKernel::kSgmv, "sgmv"},
        std::pair{LoraKernel::kSgmvTc, "sgmv_tc"}, std::pair{LoraKernel::kAuto, "auto"}}) {
    SCOPED_TRACE(name);
    ASSERT_NO_FATAL_FAILURE(rig.CheckShrink(kernel, name));
    ASSERT_NO_FATAL_FAILURE(rig.CheckExpand(kernel, name));
  }
}

INSTANTIATE_TEST_SUITE_P(Batches, CudaLoraKernels, ::testing::ValuesIn(Cases()),
                         [](const ::testing::TestParamInfo<LoraCase>& info) {
                           return info.param.name;
                         });

// ----------------------------------------------------------- no device needed

TEST(CudaLoraChoice, ShapesPickTheIntendedKernel) {
  for (const LoraCase& c : Cases()) {
    EXPECT_EQ(ChooseLoraKernel(c.tokens, static_cast<int32_t>(c.seg_starts.size()) - 1),
              c.expected_auto)
        << c.name;
  }
  EXPECT_EQ(ChooseLoraKernel(64, 64), LoraKernel::kBgmv);     // decode: one token per adapter
  EXPECT_EQ(ChooseLoraKernel(1024, 64), LoraKernel::kSgmv);   // short prefill chunks
  EXPECT_EQ(ChooseLoraKernel(4096, 4), LoraKernel::kSgmvTc);  // prefill
}

TEST(CudaLoraArgs, HostKnownValuesAreInvalidArgument) {
  int dummy = 0;
  LoraSegments lora{&dummy, 1, 1, reinterpret_cast<const int32_t*>(&dummy),
                    reinterpret_cast<const LoraSlice*>(&dummy), 8};
  float v = 0;
  auto shrink = [&](const LoraSegments& l, int64_t tokens) {
    return cuda::LaunchLoraShrink(&dummy, tokens, 64, l, &v, nullptr);
  };
  LoraSegments four = lora;
  four.num_slices = 4;
  absl::Status st = shrink(four, 3);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(st.message()), HasSubstr("LoraShrink: lora.num_slices=4"));
  LoraSegments big = lora;
  big.max_rank = 300;
  EXPECT_THAT(std::string(shrink(big, 3).message()), HasSubstr("LoraShrink: lora.max_rank=300"));
  EXPECT_THAT(std::string(shrink(lora, -1).message()), HasSubstr("LoraShrink: num_tokens=-1"));
  EXPECT_THAT(std::string(cuda::LaunchLoraShrink(&dummy, 3, 0, lora, &v, nullptr).message()),
              HasSubstr("in=0"));

  // No segments: returns at once, nothing launched, even with null pointers.
  LoraSegments none{nullptr, 0, 3, nullptr, nullptr, 0};
  EXPECT_TRUE(cuda::LaunchLoraShrink(nullptr, 5, 64, none, nullptr, nullptr).ok());
  LoraSliceColumns cols3{3, {0, 8, 16, 24}};
  EXPECT_TRUE(cuda::LaunchLoraExpand(nullptr, 5, none, cols3, nullptr, 24, nullptr).ok());

  LoraSliceColumns bad{1, {0, 73}};
  st = cuda::LaunchLoraExpand(&v, 3, lora, bad, &dummy, 72, nullptr);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(st.message()), HasSubstr("LoraExpand: slice 0 columns [0, 73)"));
  st = cuda::LaunchLoraExpand(&v, 3, lora, cols3, &dummy, 24, nullptr);
  EXPECT_THAT(std::string(st.message()), HasSubstr("cols.num_slices=3"));
  EXPECT_THAT(std::string(cuda::LaunchLoraExpand(&v, 3, big, LoraSliceColumns{1, {0, 8}}, &dummy,
                                                 8, nullptr)
                              .message()),
              HasSubstr("LoraExpand: lora.max_rank=300"));
}

}  // namespace
}  // namespace loraserve
