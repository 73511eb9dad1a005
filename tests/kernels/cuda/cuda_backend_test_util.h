// Helpers for the CudaBackend tests: a fixture holding a CudaBackend and its
// CPU twin (skipped when no CUDA device is visible), bf16-representable random
// inputs (so both backends see exactly the same values), 0xFF-poisoned
// outputs (NaN in bf16 and fp32) and tolerance checks that fail on NaN.
// Header-only; tests only.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/cuda/dtype_kernels.h"
#include "common/dtype.h"
#include "gtest/gtest.h"
#include "kernels/backend.h"
#include "kernels/backend_factory.h"
#include "tests/kernels/cpu_test_util.h"

namespace loraserve::testing {

// bf16 keeps 8 significant bits: one rounding is off by at most 2^-8 of the
// value. Ops that round once (or twice) to bf16 are checked against the fp32
// CPU result with this relative tolerance, i.e. two roundings' worth.
inline constexpr double kBf16Rtol = 1.0 / 128;
// Unit roundoff of fp32 (2^-24).
inline constexpr double kF32Unit = 1.0 / 16777216.0;

// Uniform values in [lo, hi), rounded to bf16 (exactly representable).
inline std::vector<float> RandomBf16Vector(size_t n, uint32_t seed, float lo = -1.0f,
                                           float hi = 1.0f) {
  std::vector<float> v = RandomVector(n, seed, lo, hi);
  for (float& x : v) x = Bf16ToFloat(FloatToBf16(x));
  return v;
}

// Checks every got[i] is finite and within tol[i] of ref[i]; also the
// aggregate ||got - ref|| / ||ref|| <= max_rel_norm. Reports the first 5
// failures with their index.
inline void ExpectWithin(const std::vector<float>& got, const std::vector<float>& ref,
                         const std::vector<double>& tol, double max_rel_norm,
                         const std::string& what) {
  ASSERT_EQ(got.size(), ref.size()) << what;
  ASSERT_EQ(tol.size(), ref.size()) << what;
  int reported = 0;
  double err_sq = 0, ref_sq = 0, max_err = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double err = std::fabs(static_cast<double>(got[i]) - ref[i]);
    if (!std::isfinite(got[i]) || !(err <= tol[i])) {
      if (reported++ < 5) {
        ADD_FAILURE() << what << "[" << i << "]: got " << got[i] << ", want " << ref[i]
                      << " (tolerance " << tol[i] << ")";
      }
      continue;
    }
    err_sq += err * err;
    ref_sq += static_cast<double>(ref[i]) * ref[i];
    max_err = std::max(max_err, err);
  }
  if (reported == 0 && ref_sq > 0) {
    EXPECT_LE(std::sqrt(err_sq / ref_sq), max_rel_norm) << what << ": relative error norm";
  }
  EXPECT_EQ(reported, 0) << what << ": " << reported << " elements out of tolerance";
}

// Element tolerance atol + rtol * |ref|.
inline std::vector<double> RelTol(const std::vector<float>& ref, double rtol, double atol) {
  std::vector<double> tol(ref.size());
  for (size_t i = 0; i < ref.size(); ++i) tol[i] = atol + rtol * std::fabs(ref[i]);
  return tol;
}

class CudaVsCpuTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (cuda::VisibleDeviceCount() == 0) GTEST_SKIP() << "no CUDA device visible";
    auto cuda = CreateBackend(BackendKind::kCuda, {});
    ASSERT_TRUE(cuda.ok()) << cuda.status();
    cuda_ = std::move(cuda).value();
    ASSERT_EQ(cuda_->dtype(), DType::kBF16);
    cpu_ = MakeCpuBackend(2);
  }

  // n bf16 elements of the CUDA backend, every byte 0xFF (NaN).
  DeviceBuffer PoisonedCuda(size_t n, size_t elt_size = 2) {
    auto buf = cuda_->Allocate(std::max<size_t>(1, n) * elt_size);
    EXPECT_TRUE(buf.ok()) << buf.status();
    EXPECT_TRUE(cuda_->Memset(buf->data(), 0xFF, n * elt_size, {}).ok());
    return std::move(buf).value();
  }

  // The CUDA bf16 buffer as floats (synchronous).
  std::vector<float> GetCuda(const DeviceBuffer& buf, size_t n) { return Download(*cuda_, buf, n); }
  // An fp32 CUDA buffer (logits) as floats, after the compute stream drained.
  std::vector<float> GetCudaF32(const DeviceBuffer& buf, size_t n) {
    std::vector<float> out = DownloadF32(*cuda_, buf, n);
    EXPECT_TRUE(cuda_->Synchronize({}).ok());
    return out;
  }

  std::unique_ptr<Backend> cuda_;
  std::unique_ptr<Backend> cpu_;
};

}  // namespace loraserve::testing
