// Helpers shared by the CPU backend op tests: a backend, seeded random data,
// NaN-poisoned outputs, upload/download through the Backend API (so the same
// tests can later drive the CUDA twin). Header-only; tests only.
#pragma once

#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/backend.h"
#include "kernels/backend_factory.h"

namespace loraserve::testing {

inline std::unique_ptr<Backend> MakeCpuBackend(int threads = 2) {
  BackendOptions options;
  options.num_threads = threads;
  auto backend = CreateBackend(BackendKind::kCpu, options);
  EXPECT_TRUE(backend.ok()) << backend.status();
  return std::move(backend).value();
}

inline std::vector<float> RandomVector(size_t n, uint32_t seed, float lo = -1.0f,
                                       float hi = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// A device buffer holding `host` (fp32, converted to the storage dtype).
inline DeviceBuffer Upload(Backend& backend, const std::vector<float>& host) {
  auto buf = backend.Allocate(std::max<size_t>(1, host.size()) * backend.elt_size());
  EXPECT_TRUE(buf.ok()) << buf.status();
  EXPECT_TRUE(backend
                  .UploadConverted(host.data(), DType::kF32, static_cast<int64_t>(host.size()),
                                   buf->data())
                  .ok());
  return std::move(buf).value();
}

// Raw bytes (metadata: int32/int64 arrays, structs) copied into device memory.
template <typename T>
DeviceBuffer UploadRaw(Backend& backend, const std::vector<T>& host) {
  auto buf = backend.Allocate(std::max<size_t>(1, host.size()) * sizeof(T));
  EXPECT_TRUE(buf.ok()) << buf.status();
  if (!host.empty()) {
    EXPECT_TRUE(backend.CopyToDevice(buf->data(), host.data(), host.size() * sizeof(T), {}).ok());
  }
  return std::move(buf).value();
}

// n storage elements, all NaN: anything an op forgets to write stays NaN.
inline DeviceBuffer Poisoned(Backend& backend, size_t n) {
  return Upload(backend, std::vector<float>(n, std::numeric_limits<float>::quiet_NaN()));
}

// Poisoned fp32 buffer (LoRA intermediate, logits).
inline DeviceBuffer PoisonedF32(Backend& backend, size_t n) {
  return UploadRaw(backend, std::vector<float>(n, std::numeric_limits<float>::quiet_NaN()));
}

inline std::vector<float> Download(Backend& backend, const DeviceBuffer& buf, size_t n) {
  std::vector<float> out(n);
  EXPECT_TRUE(backend.DownloadToF32(buf.data(), static_cast<int64_t>(n), out.data()).ok());
  return out;
}

inline std::vector<float> DownloadF32(Backend& backend, const DeviceBuffer& buf, size_t n) {
  std::vector<float> out(n);
  EXPECT_TRUE(backend.CopyToHost(out.data(), buf.data(), n * sizeof(float), {}).ok());
  return out;
}

// Every element finite and within atol + rtol * |ref| of ref; returns max abs error.
inline double ExpectClose(const std::vector<float>& got, const std::vector<double>& ref,
                          double atol, double rtol, const char* what) {
  EXPECT_EQ(got.size(), ref.size()) << what;
  double max_err = 0;
  int reported = 0;
  for (size_t i = 0; i < std::min(got.size(), ref.size()); ++i) {
    const double err = std::fabs(static_cast<double>(got[i]) - ref[i]);
    if (!std::isfinite(got[i]) || err > atol + rtol * std::fabs(ref[i])) {
      if (reported++ < 5) {
        ADD_FAILURE() << what << "[" << i << "]: got " << got[i] << ", want " << ref[i];
      }
    }
    if (std::isfinite(err)) max_err = std::max(max_err, err);
  }
  return max_err;
}

}  // namespace loraserve::testing
