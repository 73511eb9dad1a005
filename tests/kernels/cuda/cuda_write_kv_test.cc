// CUDA WriteKv (kernels/cuda/cuda_attention.h) against the CPU twin: every
// cache element bit-equal to the bf16 of what the CPU wrote, slots of -1 and
// everything not written left untouched (still the 0xFFFF poison), with
// 16-byte aligned rows (vector path) and odd row strides (scalar path).
// Argument checks run without a device; the rest skips without one.
#include <cmath>
#include <numeric>
#include <ostream>
#include <string>
#include <random>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/cuda/cuda_attention.h"
#include "tests/kernels/cpu_test_util.h"
#include "tests/kernels/cuda/cuda_kernel_test_util.h"

namespace loraserve {
namespace {

using ::loraserve::testing::DeviceArray;
using ::loraserve::testing::MakeCpuBackend;
using ::loraserve::testing::RandomVector;
using ::loraserve::testing::RoundToBf16;
using ::loraserve::testing::ToBf16Bits;
using ::testing::HasSubstr;

struct WriteCase {
  int32_t num_kv_heads, head_dim, block_tokens;
  int64_t row_pad;  // k/v row stride = heads * head_dim + row_pad (odd: unaligned rows)
};

std::string WriteCaseName(const WriteCase& c) {
  return "Hkv" + std::to_string(c.num_kv_heads) + "_D" + std::to_string(c.head_dim) + "_BT" +
         std::to_string(c.block_tokens) + "_Pad" + std::to_string(c.row_pad);
}
void PrintTo(const WriteCase& c, std::ostream* os) { *os << WriteCaseName(c); }

class CudaWriteKv : public ::testing::TestWithParam<WriteCase> {
 protected:
  void SetUp() override { LORASERVE_SKIP_WITHOUT_CUDA(); }
};

TEST_P(CudaWriteKv, BitEqualToCpuAndSkipsMinusOne) {
  const WriteCase c = GetParam();
  constexpr int32_t kLayers = 3, kLayer = 1, kBlocks = 12;  // >= 40 slots
  KvLayout gpu_layout{kLayers, c.num_kv_heads, c.head_dim, c.block_tokens, 0};
  gpu_layout.block_stride_bytes = gpu_layout.MinBlockBytes(2) + 48;
  KvLayout cpu_layout = gpu_layout;
  cpu_layout.block_stride_bytes = cpu_layout.MinBlockBytes(4);
  const int64_t width = int64_t{c.num_kv_heads} * c.head_dim;
  const int64_t stride = width + c.row_pad;

  // 40 tokens to shuffled distinct slots, every 7th a padding token (-1).
  std::vector<int64_t> all_slots(int64_t{kBlocks} * c.block_tokens);
  std::iota(all_slots.begin(), all_slots.end(), 0);
  std::shuffle(all_slots.begin(), all_slots.end(), std::mt19937(3));
  const int64_t tokens = 40;
  std::vector<int64_t> slots(all_slots.begin(), all_slots.begin() + tokens);
  for (int64_t t = 0; t < tokens; t += 7) slots[t] = -1;
  std::vector<float> k = RandomVector(tokens * stride, 11, -4.0f, 4.0f);
  std::vector<float> v = RandomVector(tokens * stride, 12, -4.0f, 4.0f);
  RoundToBf16(k);
  RoundToBf16(v);

  DeviceArray<uint8_t> gpu_cache(kBlocks * gpu_layout.block_stride_bytes);
  gpu_cache.Fill(0xFF);
  DeviceArray<uint16_t> dk(ToBf16Bits(k)), dv(ToBf16Bits(v));
  DeviceArray<int64_t> dslots(slots);
  ASSERT_TRUE(cuda::LaunchWriteKv(dk.get(), stride, dv.get(), stride, tokens, dslots.get(),
                                  gpu_cache.get(), gpu_layout, kLayer, nullptr)
                  .ok());
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  const std::vector<uint8_t> got = gpu_cache.Download();

  auto cpu = MakeCpuBackend(2);
  auto cpu_cache = cpu->Allocate(kBlocks * cpu_layout.block_stride_bytes);
  ASSERT_TRUE(cpu_cache.ok());
  std::vector<float> nan(cpu_cache->size() / 4, std::nanf(""));
  ASSERT_TRUE(cpu->CopyToDevice(cpu_cache->data(), nan.data(), cpu_cache->size(), {}).ok());
  auto ck = testing::Upload(*cpu, k);
  auto cv = testing::Upload(*cpu, v);
  auto cs = testing::UploadRaw(*cpu, slots);
  ASSERT_TRUE(cpu->WriteKv(ck.data(), stride, cv.data(), stride, tokens, cs.as<int64_t>(),
                           cpu_cache->data(), cpu_layout, kLayer, {})
                  .ok());
  const auto* want = reinterpret_cast<const float*>(cpu_cache->data());

  int64_t written = 0;
  for (int64_t b = 0; b < kBlocks; ++b) {
    for (int32_t layer = 0; layer < kLayers; ++layer) {
      for (int32_t kv = 0; kv < 2; ++kv) {
        for (int32_t s = 0; s < c.block_tokens; ++s) {
          for (int32_t h = 0; h < c.num_kv_heads; ++h) {
            for (int32_t d = 0; d < c.head_dim; ++d) {
              const float w = want[(cpu_layout.ByteOffset(b, layer, kv, s, h, 4) / 4) + d];
              uint16_t g;
              std::memcpy(&g, got.data() + gpu_layout.ByteOffset(b, layer, kv, s, h, 2) + 2 * d, 2);
              if (std::isnan(w)) {
                ASSERT_EQ(g, 0xFFFF) << "untouched element written: block " << b << " layer "
                                     << layer << " kv " << kv << " slot " << s;
              } else {
                ASSERT_EQ(g, FloatToBf16(w)) << "block " << b << " slot " << s << " head " << h;
                ++written;
              }
            }
          }
        }
      }
    }
  }
  const int64_t live = tokens - (tokens + 6) / 7;
  EXPECT_EQ(written, live * 2 * width);
  // Bytes past MinBlockBytes in each page are untouched as well.
  for (int64_t b = 0; b < kBlocks; ++b) {
    for (int64_t i = gpu_layout.MinBlockBytes(2); i < gpu_layout.block_stride_bytes; ++i) {
      ASSERT_EQ(got[b * gpu_layout.block_stride_bytes + i], 0xFF);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, CudaWriteKv,
                         ::testing::Values(WriteCase{8, 128, 16, 0},   // 16-byte rows
                                           WriteCase{2, 80, 32, 8},    // aligned, padded stride
                                           WriteCase{3, 64, 16, 1},    // odd stride: scalar path
                                           WriteCase{1, 24, 4, 3}),    // width not a multiple of 8
                         [](const ::testing::TestParamInfo<WriteCase>& info) {
                           return WriteCaseName(info.param);
                         });

TEST(CudaWriteKvArgs, HostKnownValuesAreInvalidArgument) {
  KvLayout layout{2, 2, 64, 16, 0};
  layout.block_stride_bytes = layout.MinBlockBytes(2);
  int dummy = 0;
  int64_t slot = 0;
  auto run = [&](const KvLayout& l, int64_t stride, int64_t tokens, int32_t layer) {
    return cuda::LaunchWriteKv(&dummy, stride, &dummy, stride, tokens, &slot, &dummy, l, layer,
                               nullptr);
  };
  absl::Status st = run(layout, 127, 1, 0);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(st.message()), HasSubstr("WriteKv: k_row_stride=127"));
  EXPECT_THAT(std::string(run(layout, 128, 1, 2).message()), HasSubstr("layer 2"));
  EXPECT_THAT(std::string(run(layout, 128, -2, 0).message()), HasSubstr("num_tokens=-2"));
  EXPECT_TRUE(run(layout, 128, 0, 0).ok());
  KvLayout small = layout;
  small.block_stride_bytes = 16;
  EXPECT_THAT(std::string(run(small, 128, 1, 0).message()), HasSubstr("block_stride_bytes=16"));
}

}  // namespace
}  // namespace loraserve
