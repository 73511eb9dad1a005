// CudaBackend vs CpuBackend on the dense ops: GatherRows, RmsNorm, Rope,
// SiluAndMul, ResidualAdd. Fresh random bf16-representable inputs of odd
// sizes (both backends see identical values), CUDA outputs poisoned with
// 0xFF (bf16 NaN) before each run, NaN anywhere fails.
//
// Tolerances (the CPU result is exact fp32 on the same inputs):
//  - GatherRows: a copy, bit-exact.
//  - ResidualAdd: one fp32 add then one rounding on both sides, so the CUDA
//    result is exactly FloatToBf16(cpu): bit-exact.
//  - RmsNorm, SiluAndMul, Rope: fp32 math that differs from the CPU's only
//    by a few fp32 ulps (sqrt/div order, expf, sincosf <= 2 ulp), then one
//    bf16 rounding (<= 2^-8 relative): rtol 2^-7 (kBf16Rtol) plus a tiny
//    atol for results near zero (Rope's x1 c - x2 s cancels: 1e-5 for
//    inputs in [-1, 1]), and a relative error norm below 4e-3.
#include <cmath>
#include <limits>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/rope_frequencies.h"
#include "tests/kernels/cuda/cuda_backend_test_util.h"

namespace loraserve {
namespace {

using ::loraserve::testing::CudaVsCpuTest;
using ::loraserve::testing::Download;
using ::loraserve::testing::ExpectWithin;
using ::loraserve::testing::kBf16Rtol;
using ::loraserve::testing::RandomBf16Vector;
using ::loraserve::testing::RelTol;
using ::loraserve::testing::Upload;
using ::loraserve::testing::UploadRaw;

constexpr double kBf16NormTol = 4e-3;

using CudaOpsTest = CudaVsCpuTest;

TEST_F(CudaOpsTest, GatherRowsIsExact) {
  const int64_t src_rows = 50;
  uint32_t seed = 100;
  for (int64_t width : {96, 200, 1000, 4100, 75}) {
    for (int64_t n : {1, 3, 7, 33}) {
      const auto table = RandomBf16Vector(src_rows * width, ++seed);
      std::vector<int32_t> ids(n);
      for (int64_t i = 0; i < n; ++i) ids[i] = static_cast<int32_t>((i * 37 + seed) % src_rows);
      auto dt = Upload(*cuda_, table);
      auto di = UploadRaw(*cuda_, ids);
      auto dout = PoisonedCuda(n * width);
      ASSERT_TRUE(
          cuda_->GatherRows(dt.data(), src_rows, width, di.as<int32_t>(), n, dout.data(), {}).ok());
      const auto got = GetCuda(dout, n * width);
      for (int64_t i = 0; i < n; ++i) {
        for (int64_t j = 0; j < width; ++j) {
          ASSERT_EQ(got[i * width + j], table[ids[i] * width + j])
              << "width " << width << " row " << i << " col " << j;
        }
      }
    }
  }
}

TEST_F(CudaOpsTest, GatherRowsWritesNaNForAnIndexOutsideTheTable) {
  const int64_t src_rows = 10, width = 96;
  const auto table = RandomBf16Vector(src_rows * width, 7);
  const std::vector<int32_t> ids = {4, 10, -1};
  auto dt = Upload(*cuda_, table);
  auto di = UploadRaw(*cuda_, ids);
  auto dout = Upload(*cuda_, std::vector<float>(3 * width, 0.0f));
  ASSERT_TRUE(
      cuda_->GatherRows(dt.data(), src_rows, width, di.as<int32_t>(), 3, dout.data(), {}).ok());
  const auto got = GetCuda(dout, 3 * width);
  for (int64_t j = 0; j < width; ++j) {
    EXPECT_EQ(got[j], table[4 * width + j]);
    EXPECT_TRUE(std::isnan(got[width + j]));
    EXPECT_TRUE(std::isnan(got[2 * width + j]));
  }
}

TEST_F(CudaOpsTest, RmsNormMatchesCpu) {
  uint32_t seed = 200;
  for (int64_t hidden : {96, 200, 1000, 4100, 75}) {
    for (int64_t rows : {1, 3, 7, 33}) {
      for (float eps : {1e-5f, 1e-6f}) {
        const auto x = RandomBf16Vector(rows * hidden, ++seed, -3.0f, 3.0f);
        const auto w = RandomBf16Vector(hidden, ++seed, 0.5f, 1.5f);
        auto cx = Upload(*cpu_, x);
        auto cw = Upload(*cpu_, w);
        auto cout = Upload(*cpu_, std::vector<float>(rows * hidden, 0.0f));
        ASSERT_TRUE(cpu_->RmsNorm(cx.data(), cw.data(), rows, hidden, eps, cout.data(), {}).ok());
        const auto ref = Download(*cpu_, cout, rows * hidden);

        auto gx = Upload(*cuda_, x);
        auto gw = Upload(*cuda_, w);
        auto gout = PoisonedCuda(rows * hidden);
        ASSERT_TRUE(cuda_->RmsNorm(gx.data(), gw.data(), rows, hidden, eps, gout.data(), {}).ok());
        const std::string what =
            "rmsnorm hidden " + std::to_string(hidden) + " rows " + std::to_string(rows);
        ExpectWithin(GetCuda(gout, rows * hidden), ref, RelTol(ref, kBf16Rtol, 1e-6), kBf16NormTol,
                     what);
        // In place gives the same.
        ASSERT_TRUE(cuda_->RmsNorm(gx.data(), gw.data(), rows, hidden, eps, gx.data(), {}).ok());
        ExpectWithin(GetCuda(gx, rows * hidden), ref, RelTol(ref, kBf16Rtol, 1e-6), kBf16NormTol,
                     what + " in place");
      }
    }
  }
}

// Misaligned pointers (one bf16 past a 16-byte boundary) take the scalar path.
TEST_F(CudaOpsTest, RmsNormAndResidualAddOnMisalignedRows) {
  const int64_t rows = 3, hidden = 96;
  const auto x = RandomBf16Vector(rows * hidden + 1, 9, -3.0f, 3.0f);
  const auto w = RandomBf16Vector(hidden, 10, 0.5f, 1.5f);
  auto gx = Upload(*cuda_, x);
  auto gw = Upload(*cuda_, w);
  auto gout = PoisonedCuda(rows * hidden + 1);
  ASSERT_TRUE(
      cuda_->RmsNorm(gx.bytes_at(2), gw.data(), rows, hidden, 1e-5f, gout.bytes_at(2), {}).ok());
  const std::vector<float> x_rows(x.begin() + 1, x.end());
  auto cx = Upload(*cpu_, x_rows);
  auto cw = Upload(*cpu_, w);
  auto cout = Upload(*cpu_, std::vector<float>(rows * hidden, 0.0f));
  ASSERT_TRUE(cpu_->RmsNorm(cx.data(), cw.data(), rows, hidden, 1e-5f, cout.data(), {}).ok());
  const auto ref = Download(*cpu_, cout, rows * hidden);
  auto got = GetCuda(gout, rows * hidden + 1);
  EXPECT_TRUE(std::isnan(got[0]));  // untouched
  got.erase(got.begin());
  ExpectWithin(got, ref, RelTol(ref, kBf16Rtol, 1e-6), kBf16NormTol, "rmsnorm misaligned");

  const int64_t n = 1001;
  const auto a = RandomBf16Vector(n + 1, 11), d = RandomBf16Vector(n + 1, 12);
  auto ga = Upload(*cuda_, a);
  auto gd = Upload(*cuda_, d);
  ASSERT_TRUE(cuda_->ResidualAdd(ga.bytes_at(2), gd.bytes_at(2), n, {}).ok());
  const auto sum = GetCuda(ga, n + 1);
  EXPECT_EQ(sum[0], a[0]);
  for (int64_t i = 1; i <= n; ++i) ASSERT_EQ(sum[i], Bf16ToFloat(FloatToBf16(a[i] + d[i]))) << i;
}

TEST_F(CudaOpsTest, RopeMatchesCpuAndLeavesVUntouched) {
  uint32_t seed = 300;
  for (int32_t d : {64, 128, 80}) {
    const int32_t hq = 6, hkv = 2;
    const int64_t stride = (hq + 2 * hkv) * d + 5;  // fused qkv plus padding columns
    auto inv = ComputeRopeInvFreq(d, 500000.0, RopeScalingParams{});
    ASSERT_TRUE(inv.ok());
    for (int64_t tokens : {1, 3, 7, 33}) {
      const auto qkv = RandomBf16Vector(tokens * stride, ++seed);
      std::vector<int32_t> positions(tokens);
      // Up to 128k: large angles exercise sincosf's slow argument reduction.
      for (int64_t t = 0; t < tokens; ++t) {
        positions[t] = static_cast<int32_t>((t * 7919 + seed) % 131072);
      }
      auto cq = Upload(*cpu_, qkv);
      auto cp = UploadRaw(*cpu_, positions);
      auto ci = UploadRaw(*cpu_, *inv);
      ASSERT_TRUE(
          cpu_->Rope(cq.data(), stride, tokens, hq, hkv, d, cp.as<int32_t>(), ci.as<float>(), {})
              .ok());
      const auto ref = Download(*cpu_, cq, tokens * stride);

      auto gq = Upload(*cuda_, qkv);
      auto gp = UploadRaw(*cuda_, positions);
      auto gi = UploadRaw(*cuda_, *inv);
      ASSERT_TRUE(
          cuda_->Rope(gq.data(), stride, tokens, hq, hkv, d, gp.as<int32_t>(), gi.as<float>(), {})
              .ok());
      const auto got = GetCuda(gq, tokens * stride);
      ExpectWithin(got, ref, RelTol(ref, kBf16Rtol, 1e-5), kBf16NormTol,
                   "rope head_dim " + std::to_string(d) + " tokens " + std::to_string(tokens));
      // V heads and padding untouched, bit for bit.
      for (int64_t t = 0; t < tokens; ++t) {
        for (int64_t j = int64_t{hq + hkv} * d; j < stride; ++j) {
          ASSERT_EQ(got[t * stride + j], qkv[t * stride + j]) << "token " << t << " col " << j;
        }
      }
    }
  }
}

TEST_F(CudaOpsTest, SiluAndMulMatchesCpu) {
  uint32_t seed = 400;
  for (int64_t inter : {96, 200, 1000, 4100, 75}) {
    for (int64_t rows : {1, 3, 7, 33}) {
      const auto gu = RandomBf16Vector(rows * 2 * inter, ++seed, -6.0f, 6.0f);
      auto cg = Upload(*cpu_, gu);
      auto cout = Upload(*cpu_, std::vector<float>(rows * inter, 0.0f));
      ASSERT_TRUE(cpu_->SiluAndMul(cg.data(), rows, inter, cout.data(), {}).ok());
      const auto ref = Download(*cpu_, cout, rows * inter);
      auto gg = Upload(*cuda_, gu);
      auto gout = PoisonedCuda(rows * inter);
      ASSERT_TRUE(cuda_->SiluAndMul(gg.data(), rows, inter, gout.data(), {}).ok());
      ExpectWithin(GetCuda(gout, rows * inter), ref, RelTol(ref, kBf16Rtol, 1e-6), kBf16NormTol,
                   "silu_and_mul inter " + std::to_string(inter) + " rows " + std::to_string(rows));
    }
  }
}

TEST_F(CudaOpsTest, ResidualAddIsExactlyTheRoundedFp32Sum) {
  uint32_t seed = 500;
  for (int64_t n : {1, 7, 33, 1000, 4100, 4103, 200003}) {
    const auto a = RandomBf16Vector(n, ++seed, -4.0f, 4.0f);
    const auto d = RandomBf16Vector(n, ++seed, -4.0f, 4.0f);
    auto ca = Upload(*cpu_, a);
    auto cd = Upload(*cpu_, d);
    ASSERT_TRUE(cpu_->ResidualAdd(ca.data(), cd.data(), n, {}).ok());
    const auto ref = Download(*cpu_, ca, n);
    auto ga = Upload(*cuda_, a);
    auto gd = Upload(*cuda_, d);
    ASSERT_TRUE(cuda_->ResidualAdd(ga.data(), gd.data(), n, {}).ok());
    const auto got = GetCuda(ga, n);
    for (int64_t i = 0; i < n; ++i) {
      ASSERT_EQ(got[i], Bf16ToFloat(FloatToBf16(ref[i]))) << "n " << n << " i " << i;
    }
  }
}

// Ops on a second stream: ordered by an event, same results.
TEST_F(CudaOpsTest, OpsRunOnAnotherStream) {
  auto stream = cuda_->CreateStream();
  ASSERT_TRUE(stream.ok());
  const int64_t rows = 7, hidden = 200;
  const auto x = RandomBf16Vector(rows * hidden, 600, -3.0f, 3.0f);
  const auto w = RandomBf16Vector(hidden, 601, 0.5f, 1.5f);
  auto gx = Upload(*cuda_, x);
  auto gw = Upload(*cuda_, w);
  auto gout = PoisonedCuda(rows * hidden);
  auto uploaded = cuda_->CreateEvent();
  ASSERT_TRUE(uploaded.ok());
  ASSERT_TRUE(cuda_->RecordEvent(*uploaded, {}).ok());
  ASSERT_TRUE(cuda_->StreamWaitEvent(stream->ref(), *uploaded).ok());
  ASSERT_TRUE(
      cuda_->RmsNorm(gx.data(), gw.data(), rows, hidden, 1e-5f, gout.data(), stream->ref()).ok());
  ASSERT_TRUE(cuda_->Synchronize(stream->ref()).ok());

  auto cx = Upload(*cpu_, x);
  auto cw = Upload(*cpu_, w);
  auto cout = Upload(*cpu_, std::vector<float>(rows * hidden, 0.0f));
  ASSERT_TRUE(cpu_->RmsNorm(cx.data(), cw.data(), rows, hidden, 1e-5f, cout.data(), {}).ok());
  const auto ref = Download(*cpu_, cout, rows * hidden);
  ExpectWithin(GetCuda(gout, rows * hidden), ref, RelTol(ref, kBf16Rtol, 1e-6), kBf16NormTol,
               "rmsnorm on a second stream");
}

TEST_F(CudaOpsTest, ArgMaxRowsMatchesCpu) {
  // Rows of fp32 logits with many exact ties (values on a coarse grid), a NaN
  // sprinkled in, vocab sizes around the block size and a Llama-sized one.
  uint32_t seed = 900;
  for (int64_t vocab : {1, 255, 256, 257, 1000, 32000, 128256}) {
    for (int64_t rows : {1, 3, 7, 33}) {
      std::vector<float> logits(static_cast<size_t>(rows * vocab));
      uint32_t state = ++seed;
      for (float& x : logits) {
        state = state * 1664525u + 1013904223u;
        x = static_cast<float>((state >> 8) % 64) - 32.0f;  // many equal maxima
        if ((state >> 4) % 997 == 0) x = std::numeric_limits<float>::quiet_NaN();
      }
      std::vector<int32_t> want(static_cast<size_t>(rows));
      ASSERT_TRUE(cpu_->ArgMaxRows(logits.data(), rows, vocab, want.data(), {}).ok());
      auto dl = UploadRaw(*cuda_, logits);
      auto dout = UploadRaw(*cuda_, std::vector<int32_t>(static_cast<size_t>(rows), -5));
      ASSERT_TRUE(cuda_->ArgMaxRows(dl.as<float>(), rows, vocab, dout.as<int32_t>(), {}).ok());
      std::vector<int32_t> got(static_cast<size_t>(rows));
      ASSERT_TRUE(cuda_->CopyToHost(got.data(), dout.data(), got.size() * sizeof(int32_t), {}).ok());
      ASSERT_TRUE(cuda_->Synchronize({}).ok());
      EXPECT_EQ(got, want) << "vocab " << vocab << " rows " << rows;
    }
  }
}

}  // namespace
}  // namespace loraserve
