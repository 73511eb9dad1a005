// CudaBackend vs CpuBackend on the GEMMs: Gemm (bf16 out, with and without
// bias and accumulate, m = 1, large k, shapes that defeat tensor-core
// alignment, on the compute stream and on another stream) and Logits (fp32
// out). Inputs are random bf16-representable values in [-1, 1]; CUDA outputs
// are poisoned with 0xFF (NaN) unless the case accumulates into them.
//
// Tolerances. With S[i, j] = sum_p |x[i, p] w[j, p]|, any fp32 summation
// order of k products (the products of bf16 values are exact in fp32) is
// within k * u * S of the exact sum (u = 2^-24); tensor cores may truncate
// instead of round inside an MMA, so allow 2k * u * S for cuBLAS plus k * u * S
// for OpenBLAS, rounded up to 4k * u * S. On top, for the bf16 output:
//   one rounding of the result (<= 2^-8 |y|) and, with bias and accumulate,
//   one of y + bias (<= 2^-8 (|y0| + |bias|)): 2^-7 of both for margin.
// The relative error norm must stay below 4e-3 (bf16: output rounding alone
// is ~1e-3) / 1e-4 (fp32 logits: truncating tensor-core accumulation over
// k / 16 MMA steps can reach ~2e-5 even when correct).
#include <cmath>
#include <ostream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/kernels/cuda/cuda_backend_test_util.h"

namespace loraserve {
namespace {

using ::loraserve::testing::CudaVsCpuTest;
using ::loraserve::testing::DownloadF32;
using ::loraserve::testing::ExpectWithin;
using ::loraserve::testing::kBf16Rtol;
using ::loraserve::testing::kF32Unit;
using ::loraserve::testing::RandomBf16Vector;
using ::loraserve::testing::Upload;
using ::loraserve::testing::UploadRaw;

// S[i, j] = sum_p |x[i, p] * w[j, p]| in double.
std::vector<double> AbsProductSums(const std::vector<float>& x, const std::vector<float>& w,
                                   int64_t m, int64_t n, int64_t k) {
  std::vector<double> s(m * n);
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double acc = 0;
      const float* xr = x.data() + i * k;
      const float* wr = w.data() + j * k;
      for (int64_t p = 0; p < k; ++p) acc += std::fabs(double{xr[p]} * wr[p]);
      s[i * n + j] = acc;
    }
  }
  return s;
}

struct GemmCase {
  int64_t m, n, k;
  bool bias, accumulate;
  bool second_stream = false;
};

std::string Describe(const GemmCase& c) {
  return "m" + std::to_string(c.m) + "_n" + std::to_string(c.n) + "_k" + std::to_string(c.k) +
         (c.bias ? "_bias" : "") + (c.accumulate ? "_acc" : "") +
         (c.second_stream ? "_stream2" : "");
}

void PrintTo(const GemmCase& c, std::ostream* os) { *os << Describe(c); }

std::string CaseName(const ::testing::TestParamInfo<GemmCase>& info) {
  return Describe(info.param);
}

class CudaGemmTest : public CudaVsCpuTest, public ::testing::WithParamInterface<GemmCase> {};

TEST_P(CudaGemmTest, MatchesCpu) {
  const GemmCase c = GetParam();
  const uint32_t seed = static_cast<uint32_t>(c.m * 131 + c.n * 17 + c.k);
  const auto x = RandomBf16Vector(c.m * c.k, seed + 1);
  const auto w = RandomBf16Vector(c.n * c.k, seed + 2);
  const auto bias = RandomBf16Vector(c.n, seed + 3);
  const auto y0 = RandomBf16Vector(c.m * c.n, seed + 4);

  auto cx = Upload(*cpu_, x);
  auto cw = Upload(*cpu_, w);
  auto cb = Upload(*cpu_, bias);
  auto cy = Upload(*cpu_, c.accumulate ? y0 : std::vector<float>(c.m * c.n, 0.0f));
  ASSERT_TRUE(cpu_->Gemm(cx.data(), cw.data(), c.bias ? cb.data() : nullptr, c.m, c.n, c.k,
                         c.accumulate, cy.data(), {})
                  .ok());
  const auto ref = testing::Download(*cpu_, cy, c.m * c.n);

  auto gx = Upload(*cuda_, x);
  auto gw = Upload(*cuda_, w);
  auto gb = Upload(*cuda_, bias);
  auto gy = c.accumulate ? Upload(*cuda_, y0) : PoisonedCuda(c.m * c.n);
  Stream stream;
  StreamRef ref_stream;
  if (c.second_stream) {
    auto s = cuda_->CreateStream();
    ASSERT_TRUE(s.ok());
    stream = std::move(s).value();
    ref_stream = stream.ref();
    ASSERT_TRUE(cuda_->Synchronize({}).ok());  // uploads done before the other stream reads
  }
  ASSERT_TRUE(cuda_
                  ->Gemm(gx.data(), gw.data(), c.bias ? gb.data() : nullptr, c.m, c.n, c.k,
                         c.accumulate, gy.data(), ref_stream)
                  .ok());
  ASSERT_TRUE(cuda_->Synchronize(ref_stream).ok());
  const auto got = GetCuda(gy, c.m * c.n);

  const auto s = AbsProductSums(x, w, c.m, c.n, c.k);
  std::vector<double> tol(c.m * c.n);
  for (int64_t i = 0; i < c.m; ++i) {
    for (int64_t j = 0; j < c.n; ++j) {
      const int64_t e = i * c.n + j;
      double carried = 0;  // what was added to the product before the final rounding
      if (c.accumulate) carried += std::fabs(y0[e]);
      if (c.bias) carried += std::fabs(bias[j]);
      tol[e] = kBf16Rtol * (std::fabs(ref[e]) + carried) + 4.0 * c.k * kF32Unit * s[e] + 1e-6;
    }
  }
  ExpectWithin(got, ref, tol, 4e-3, "gemm " + Describe(c));
}

INSTANTIATE_TEST_SUITE_P(
    OddShapes, CudaGemmTest,
    ::testing::Values(GemmCase{1, 96, 200, false, false},     // decode row
                      GemmCase{1, 4100, 8192, true, false},   // m = 1, large k, bias
                      GemmCase{3, 200, 96, true, false},      //
                      GemmCase{7, 1000, 4100, false, true},   // accumulate (o_proj + residual)
                      GemmCase{33, 4100, 1000, true, true},   // bias and accumulate
                      GemmCase{33, 75, 77, true, false},      // odd ld: no tensor-core alignment
                      GemmCase{5, 256, 16384, false, false},  // very large k
                      GemmCase{7, 1000, 200, true, true, /*second_stream=*/true},
                      GemmCase{3, 96, 200, false, false, /*second_stream=*/true}),
    CaseName);

TEST_F(CudaVsCpuTest, LogitsAreFp32AndMatchCpu) {
  uint32_t seed = 900;
  for (int64_t hidden : {96, 200, 4100}) {
    for (int64_t vocab : {1000, 4100, 75}) {
      for (int64_t rows : {1, 3, 7, 33}) {
        const auto h = RandomBf16Vector(rows * hidden, ++seed);
        const auto w = RandomBf16Vector(vocab * hidden, ++seed);
        auto ch = Upload(*cpu_, h);
        auto cw = Upload(*cpu_, w);
        auto cl = UploadRaw(*cpu_, std::vector<float>(rows * vocab, 0.0f));
        ASSERT_TRUE(
            cpu_->Logits(ch.data(), cw.data(), rows, vocab, hidden, cl.as<float>(), {}).ok());
        const auto ref = DownloadF32(*cpu_, cl, rows * vocab);

        auto gh = Upload(*cuda_, h);
        auto gw = Upload(*cuda_, w);
        auto gl = PoisonedCuda(rows * vocab, sizeof(float));
        ASSERT_TRUE(
            cuda_->Logits(gh.data(), gw.data(), rows, vocab, hidden, gl.as<float>(), {}).ok());
        const auto got = GetCudaF32(gl, rows * vocab);

        const auto s = AbsProductSums(h, w, rows, vocab, hidden);
        std::vector<double> tol(s.size());
        for (size_t e = 0; e < s.size(); ++e) tol[e] = 4.0 * hidden * kF32Unit * s[e] + 1e-7;
        ExpectWithin(got, ref, tol, 1e-4,
                     "logits hidden " + std::to_string(hidden) + " vocab " + std::to_string(vocab) +
                         " rows " + std::to_string(rows));
      }
    }
  }
}

}  // namespace
}  // namespace loraserve
