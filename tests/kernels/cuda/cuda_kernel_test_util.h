// Helpers for the CUDA kernel tests (tests/kernels/cuda/): an owning device
// array, bf16 rounding and packing on the host, poisoning. Tests call the
// launchers of kernels/cuda/ directly on cudaMalloc'd buffers and compare with
// the CPU twins (CpuBackend) run on the same bf16-rounded values in fp32.
// Header-only; tests only.
#pragma once

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "common/cuda/dtype_kernels.h"
#include "common/dtype.h"
#include "gtest/gtest.h"

namespace loraserve::testing {

#define LORASERVE_SKIP_WITHOUT_CUDA()                                                 \
  do {                                                                                \
    if (::loraserve::cuda::VisibleDeviceCount() == 0) GTEST_SKIP() << "no CUDA device"; \
  } while (false)

// An owning cudaMalloc'd array of n T (at least one element).
template <typename T>
class DeviceArray {
 public:
  explicit DeviceArray(size_t n) : n_(n) {
    EXPECT_EQ(cudaMalloc(&data_, std::max<size_t>(n, 1) * sizeof(T)), cudaSuccess);
  }
  explicit DeviceArray(const std::vector<T>& host) : DeviceArray(host.size()) { Upload(host); }
  ~DeviceArray() { cudaFree(data_); }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;

  T* get() const { return static_cast<T*>(data_); }
  size_t size() const { return n_; }
  size_t bytes() const { return n_ * sizeof(T); }

  void Upload(const std::vector<T>& host) {
    ASSERT_LE(host.size(), n_);
    if (!host.empty()) {
      ASSERT_EQ(cudaMemcpy(data_, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice),
                cudaSuccess);
    }
  }
  std::vector<T> Download() const {
    std::vector<T> host(n_);
    EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    if (n_ > 0) {
      EXPECT_EQ(cudaMemcpy(host.data(), data_, n_ * sizeof(T), cudaMemcpyDeviceToHost),
                cudaSuccess);
    }
    return host;
  }
  // Every byte set to `byte` (0xFF: NaN in bf16 and fp32).
  void Fill(uint8_t byte) { ASSERT_EQ(cudaMemset(data_, byte, bytes()), cudaSuccess); }

 private:
  void* data_ = nullptr;
  size_t n_ = 0;
};

// Rounds every value to bf16 in place (so CPU and GPU see identical inputs).
inline void RoundToBf16(std::vector<float>& v) {
  for (float& f : v) f = Bf16ToFloat(FloatToBf16(f));
}

inline std::vector<uint16_t> ToBf16Bits(const std::vector<float>& v) {
  std::vector<uint16_t> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = FloatToBf16(v[i]);
  return out;
}

inline std::vector<float> FromBf16Bits(const std::vector<uint16_t>& v) {
  std::vector<float> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = Bf16ToFloat(v[i]);
  return out;
}

inline uint32_t F32Bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

}  // namespace loraserve::testing
