// CudaBackend::FillRandom vs CpuBackend::FillRandom: both compute the fp32
// values of kernels/counter_random.h with the same shared functions, so the
// CUDA bf16 output must be exactly FloatToBf16 of the CPU's fp32 output, for
// odd sizes (the 8-wide store path with its scalar tail, and an unaligned
// destination for the scalar path), several seeds and ranges, and constants.
// Argument errors match the CPU twin's. Skips without a CUDA device.
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "common/dtype.h"
#include "gtest/gtest.h"
#include "tests/kernels/cuda/cuda_backend_test_util.h"

namespace loraserve {
namespace {

using ::loraserve::testing::CudaVsCpuTest;
using CudaRandomTest = CudaVsCpuTest;

std::vector<float> CpuFill(Backend& cpu, int64_t n, uint64_t seed, float lo, float hi) {
  auto buf = cpu.Allocate(static_cast<size_t>(n) * cpu.elt_size());
  EXPECT_TRUE(buf.ok()) << buf.status();
  EXPECT_TRUE(cpu.FillRandom(buf->data(), n, seed, lo, hi, {}).ok());
  std::vector<float> out(static_cast<size_t>(n));
  EXPECT_TRUE(cpu.DownloadToF32(buf->data(), n, out.data()).ok());
  return out;
}

TEST_F(CudaRandomTest, EqualsTheCpuValuesRoundedToBf16) {
  const float a = std::sqrt(3.0f) * 0.02f;
  const float ranges[][2] = {{-a, a}, {-3.0f, 5.0f}, {0.0f, 1.0f}, {1.0f, 1.0f}, {0.0f, 0.0f}};
  for (int64_t n : {1, 7, 9, 1001, 100003}) {
    for (uint64_t seed : {uint64_t{0}, uint64_t{1}, uint64_t{0xfeedfacecafebeefull}}) {
      for (const auto& r : ranges) {
        // offset 1: a 2-byte-aligned destination takes the scalar path.
        for (int64_t offset : {0, 1}) {
          const std::vector<float> cpu = CpuFill(*cpu_, n, seed, r[0], r[1]);
          DeviceBuffer buf = PoisonedCuda(static_cast<size_t>(n + offset));
          void* dst = static_cast<uint16_t*>(buf.data()) + offset;
          ASSERT_TRUE(cuda_->FillRandom(dst, n, seed, r[0], r[1], {}).ok());
          std::vector<uint16_t> got(static_cast<size_t>(n));
          ASSERT_TRUE(cuda_->CopyToHost(got.data(), dst, got.size() * 2, {}).ok());
          ASSERT_TRUE(cuda_->Synchronize({}).ok());
          for (int64_t i = 0; i < n; ++i) {
            ASSERT_EQ(got[static_cast<size_t>(i)], FloatToBf16(cpu[static_cast<size_t>(i)]))
                << "n " << n << " seed " << seed << " range [" << r[0] << ", " << r[1]
                << "] offset " << offset << " i " << i;
          }
        }
      }
    }
  }
}

TEST_F(CudaRandomTest, BadArgumentsGiveTheCpuMessages) {
  DeviceBuffer buf = PoisonedCuda(8);
  struct Case {
    int64_t n;
    float lo, hi;
  };
  const Case cases[] = {{-1, -1, 1}, {4, NAN, 1}, {4, -1, INFINITY}, {4, 2, 1}};
  for (const Case& c : cases) {
    const absl::Status got = cuda_->FillRandom(buf.data(), c.n, 1, c.lo, c.hi, {});
    const absl::Status want = cpu_->FillRandom(buf.data(), c.n, 1, c.lo, c.hi, {});
    EXPECT_EQ(got.code(), absl::StatusCode::kInvalidArgument) << got;
    EXPECT_EQ(got.message(), want.message());
  }
  EXPECT_TRUE(cuda_->FillRandom(nullptr, 0, 1, -1, 1, {}).ok());
}

}  // namespace
}  // namespace loraserve
