// The CUDA dtype kernels against the CPU helpers, on every 16-bit pattern and
// on random floats. Skips when no CUDA device is visible.
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include <cuda_runtime_api.h>

#include "common/cuda/dtype_kernels.h"
#include "common/dtype.h"
#include "gtest/gtest.h"

namespace loraserve {
namespace {

class DTypeCudaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (cuda::VisibleDeviceCount() == 0) GTEST_SKIP() << "no CUDA device";
  }
};

template <typename T>
T* DeviceAlloc(size_t n) {
  void* p = nullptr;
  EXPECT_EQ(cudaMalloc(&p, n * sizeof(T)), cudaSuccess);
  EXPECT_EQ(cudaMemset(p, 0xff, n * sizeof(T)), cudaSuccess);  // poison
  return static_cast<T*>(p);
}

TEST_F(DTypeCudaTest, WideningMatchesCpuOnAllPatterns) {
  const size_t n = 65536;
  std::vector<uint16_t> bits(n);
  for (size_t i = 0; i < n; ++i) bits[i] = static_cast<uint16_t>(i);
  auto* d_src = DeviceAlloc<uint16_t>(n);
  auto* d_dst = DeviceAlloc<float>(n);
  ASSERT_EQ(cudaMemcpy(d_src, bits.data(), n * 2, cudaMemcpyHostToDevice), cudaSuccess);
  for (DType t : {DType::kBF16, DType::kF16}) {
    ASSERT_TRUE(cuda::ConvertToF32(d_src, t, d_dst, n, nullptr).ok());
    std::vector<float> got(n), want(n);
    ASSERT_EQ(cudaMemcpy(got.data(), d_dst, n * 4, cudaMemcpyDeviceToHost), cudaSuccess);
    ConvertToF32(bits.data(), t, want.data(), n);
    for (size_t i = 0; i < n; ++i) {
      if (std::isnan(want[i])) {
        ASSERT_TRUE(std::isnan(got[i])) << DTypeName(t) << " " << i;
      } else {
        ASSERT_EQ(got[i], want[i]) << DTypeName(t) << " " << i;
      }
    }
  }
  cudaFree(d_src);
  cudaFree(d_dst);
}

TEST_F(DTypeCudaTest, NarrowingMatchesCpuOnRandomAndSpecialValues) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<uint32_t> any_bits;
  std::vector<float> src;
  for (int i = 0; i < 100003; ++i) src.push_back(BitsToFloat(any_bits(rng)));
  for (float f : {0.0f, -0.0f, 65504.0f, 65520.0f, 1e-8f, INFINITY, -INFINITY, NAN}) src.push_back(f);
  const size_t n = src.size();
  auto* d_src = DeviceAlloc<float>(n);
  auto* d_dst = DeviceAlloc<uint16_t>(n);
  ASSERT_EQ(cudaMemcpy(d_src, src.data(), n * 4, cudaMemcpyHostToDevice), cudaSuccess);
  for (DType t : {DType::kBF16, DType::kF16}) {
    ASSERT_TRUE(cuda::ConvertFromF32(d_src, d_dst, t, n, nullptr).ok());
    std::vector<uint16_t> got(n), want(n);
    ASSERT_EQ(cudaMemcpy(got.data(), d_dst, n * 2, cudaMemcpyDeviceToHost), cudaSuccess);
    ConvertFromF32(src.data(), want.data(), t, n);
    for (size_t i = 0; i < n; ++i) {
      if (std::isnan(src[i])) {
        const float g = t == DType::kBF16 ? Bf16ToFloat(got[i]) : HalfToFloat(got[i]);
        ASSERT_TRUE(std::isnan(g)) << i;
      } else {
        ASSERT_EQ(got[i], want[i]) << DTypeName(t) << " value " << src[i];
      }
    }
  }
  cudaFree(d_src);
  cudaFree(d_dst);
}

TEST_F(DTypeCudaTest, NegativeCountIsAnError) {
  absl::Status s = cuda::ConvertToF32(nullptr, DType::kBF16, nullptr, -1, nullptr);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace loraserve
