// CPU backend: memory, streams, GEMM, logits, RMSNorm, RoPE (incl. llama3
// frequencies), gather, SiLU-and-mul, residual add, against naive double
// references on odd sizes. Attention and LoRA have their own test files.
#include "kernels/cpu/cpu_backend.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>
#include <numbers>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/rope_frequencies.h"
#include "tests/kernels/cpu_test_util.h"

namespace loraserve {
namespace {

using ::loraserve::testing::Download;
using ::loraserve::testing::DownloadF32;
using ::loraserve::testing::ExpectClose;
using ::loraserve::testing::MakeCpuBackend;
using ::loraserve::testing::Poisoned;
using ::loraserve::testing::PoisonedF32;
using ::loraserve::testing::RandomVector;
using ::loraserve::testing::Upload;
using ::loraserve::testing::UploadRaw;
using ::testing::HasSubstr;

TEST(CpuBackend, FactoryAndIdentity) {
  auto backend = MakeCpuBackend();
  EXPECT_EQ(backend->kind(), BackendKind::kCpu);
  EXPECT_EQ(backend->dtype(), DType::kF32);
  EXPECT_EQ(backend->elt_size(), 4u);
  auto cuda = CreateBackend(BackendKind::kCuda, {});
  if (CudaDeviceCount() > 0) {
    EXPECT_TRUE(cuda.ok()) << cuda.status();
  } else {
    EXPECT_FALSE(cuda.ok());
    EXPECT_THAT(std::string(cuda.status().message()), HasSubstr("cuda"));
  }
}

TEST(CpuBackend, HostBuffersAreAlignedMoveOnlyAndWritable) {
  auto backend = MakeCpuBackend();
  auto empty = backend->AllocateHost(0);
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_TRUE(empty->empty());
  EXPECT_EQ(empty->size(), 0u);

  auto a = backend->AllocateHost(1000);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_FALSE(a->empty());
  EXPECT_EQ(a->size(), 1000u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(a->data()) % 64, 0u);
  for (size_t i = 0; i < 1000; ++i) a->as<uint8_t>()[i] = static_cast<uint8_t>(i * 13 + 1);
  EXPECT_EQ(a->bytes_at(999), a->as<uint8_t>() + 999);

  // Move construction and assignment carry the memory; the source is empty.
  void* const p = a->data();
  HostBuffer b = std::move(*a);
  EXPECT_TRUE(a->empty());
  EXPECT_EQ(a->size(), 0u);
  EXPECT_EQ(b.data(), p);
  HostBuffer c;
  c = std::move(b);
  EXPECT_TRUE(b.empty());
  ASSERT_EQ(c.data(), p);
  for (size_t i = 0; i < 1000; ++i) ASSERT_EQ(c.as<uint8_t>()[i], static_cast<uint8_t>(i * 13 + 1));

  // A host buffer is a valid copy source and destination.
  auto dev = backend->Allocate(1000);
  ASSERT_TRUE(dev.ok());
  ASSERT_TRUE(backend->CopyToDevice(dev->data(), c.data(), 1000, {}).ok());
  auto back = backend->AllocateHost(1000);
  ASSERT_TRUE(back.ok());
  ASSERT_TRUE(backend->CopyToHost(back->data(), dev->data(), 1000, {}).ok());
  EXPECT_EQ(std::memcmp(back->data(), c.data(), 1000), 0);

  c.Reset();
  EXPECT_TRUE(c.empty());
  c.Reset();  // twice is fine
}

TEST(CpuBackend, BuffersAreMoveOnlyAndCopiesRoundTrip) {
  auto backend = MakeCpuBackend();
  auto a = backend->Allocate(100);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->size(), 100u);
  DeviceBuffer b = std::move(*a);
  EXPECT_TRUE(a->empty());
  EXPECT_FALSE(b.empty());
  std::vector<uint8_t> src(100), dst(100, 0);
  for (int i = 0; i < 100; ++i) src[i] = static_cast<uint8_t>(i * 7);
  ASSERT_TRUE(backend->CopyToDevice(b.data(), src.data(), 100, {}).ok());
  auto c = backend->Allocate(100);
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(backend->CopyDeviceToDevice(c->data(), b.data(), 100, {}).ok());
  ASSERT_TRUE(backend->CopyToHost(dst.data(), c->data(), 100, {}).ok());
  EXPECT_EQ(src, dst);
  ASSERT_TRUE(backend->Memset(c->data(), 0xAB, 10, {}).ok());
  ASSERT_TRUE(backend->CopyToHost(dst.data(), c->data(), 100, {}).ok());
  EXPECT_EQ(dst[9], 0xAB);
  EXPECT_EQ(dst[10], src[10]);
  b.Reset();
  EXPECT_TRUE(b.empty());
  auto empty = backend->Allocate(0);
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
}

TEST(CpuBackend, UploadConvertsBf16AndF16) {
  auto backend = MakeCpuBackend();
  const std::vector<float> values = {1.0f, -2.5f, 0.15625f, 3.0e-3f, 65504.0f};
  std::vector<uint16_t> bf16(values.size()), f16(values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    bf16[i] = FloatToBf16(values[i]);
    f16[i] = FloatToHalf(values[i]);
  }
  auto buf = backend->Allocate(values.size() * 4);
  ASSERT_TRUE(buf.ok());
  std::vector<float> out(values.size());
  ASSERT_TRUE(backend->UploadConverted(bf16.data(), DType::kBF16, 5, buf->data()).ok());
  ASSERT_TRUE(backend->DownloadToF32(buf->data(), 5, out.data()).ok());
  for (size_t i = 0; i < values.size(); ++i) EXPECT_EQ(out[i], Bf16ToFloat(bf16[i]));
  ASSERT_TRUE(backend->UploadConverted(f16.data(), DType::kF16, 5, buf->data()).ok());
  ASSERT_TRUE(backend->DownloadToF32(buf->data(), 5, out.data()).ok());
  for (size_t i = 0; i < values.size(); ++i) EXPECT_EQ(out[i], HalfToFloat(f16[i]));
  EXPECT_EQ(out[4], 65504.0f);
}

TEST(CpuBackend, StreamsAndEventsAreTriviallyComplete) {
  auto backend = MakeCpuBackend();
  auto s1 = backend->CreateStream();
  auto s2 = backend->CreateStream();
  ASSERT_TRUE(s1.ok() && s2.ok());
  EXPECT_NE(s1->ref().native, s2->ref().native);
  auto e = backend->CreateEvent();
  ASSERT_TRUE(e.ok());
  EXPECT_TRUE(backend->RecordEvent(*e, s1->ref()).ok());
  EXPECT_TRUE(backend->StreamWaitEvent(s2->ref(), *e).ok());
  auto done = backend->EventDone(*e);
  ASSERT_TRUE(done.ok());
  EXPECT_TRUE(*done);
  EXPECT_TRUE(backend->SynchronizeEvent(*e).ok());
  EXPECT_TRUE(backend->Synchronize(s1->ref()).ok());
  Event empty;
  EXPECT_EQ(backend->RecordEvent(empty, {}).code(), absl::StatusCode::kInvalidArgument);
}

struct GemmCase {
  int64_t m, n, k;
  bool bias, accumulate;
};

class CpuGemm : public ::testing::TestWithParam<GemmCase> {};

TEST_P(CpuGemm, MatchesNaiveReference) {
  const GemmCase c = GetParam();
  auto backend = MakeCpuBackend();
  const auto x = RandomVector(c.m * c.k, 1);
  const auto w = RandomVector(c.n * c.k, 2);
  const auto bias = RandomVector(c.n, 3);
  const auto y0 = RandomVector(c.m * c.n, 4);
  auto dx = Upload(*backend, x);
  auto dw = Upload(*backend, w);
  auto db = Upload(*backend, bias);
  auto dy = c.accumulate ? Upload(*backend, y0) : Poisoned(*backend, c.m * c.n);
  ASSERT_TRUE(backend
                  ->Gemm(dx.data(), dw.data(), c.bias ? db.data() : nullptr, c.m, c.n, c.k,
                         c.accumulate, dy.data(), {})
                  .ok());
  std::vector<double> ref(c.m * c.n);
  for (int64_t i = 0; i < c.m; ++i) {
    for (int64_t j = 0; j < c.n; ++j) {
      double acc = c.accumulate ? y0[i * c.n + j] : 0.0;
      if (c.bias) acc += bias[j];
      for (int64_t p = 0; p < c.k; ++p) acc += double{x[i * c.k + p]} * w[j * c.k + p];
      ref[i * c.n + j] = acc;
    }
  }
  ExpectClose(Download(*backend, dy, c.m * c.n), ref, 1e-5, 1e-5, "gemm");
}

INSTANTIATE_TEST_SUITE_P(OddShapes, CpuGemm,
                         ::testing::Values(GemmCase{1, 96, 72, false, false},
                                           GemmCase{3, 72, 96, true, false},
                                           GemmCase{7, 120, 72, false, true},
                                           GemmCase{33, 40, 96, true, true}));

TEST(CpuBackend, LogitsAreFp32Products) {
  auto backend = MakeCpuBackend();
  const int64_t rows = 3, vocab = 101, hidden = 72;
  const auto h = RandomVector(rows * hidden, 5);
  const auto w = RandomVector(vocab * hidden, 6);
  auto dh = Upload(*backend, h);
  auto dw = Upload(*backend, w);
  auto dl = PoisonedF32(*backend, rows * vocab);
  ASSERT_TRUE(
      backend->Logits(dh.data(), dw.data(), rows, vocab, hidden, dl.as<float>(), {}).ok());
  std::vector<double> ref(rows * vocab);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t v = 0; v < vocab; ++v) {
      double acc = 0;
      for (int64_t i = 0; i < hidden; ++i) acc += double{h[r * hidden + i]} * w[v * hidden + i];
      ref[r * vocab + v] = acc;
    }
  }
  ExpectClose(DownloadF32(*backend, dl, rows * vocab), ref, 1e-5, 1e-5, "logits");
}

TEST(CpuBackend, RmsNormMatchesReference) {
  auto backend = MakeCpuBackend();
  for (int64_t rows : {1, 3, 7, 33}) {
    for (int64_t hidden : {72, 96}) {
      const float eps = 1e-5f;
      const auto x = RandomVector(rows * hidden, 7, -3.0f, 3.0f);
      const auto w = RandomVector(hidden, 8, 0.5f, 1.5f);
      auto dx = Upload(*backend, x);
      auto dw = Upload(*backend, w);
      auto dout = Poisoned(*backend, rows * hidden);
      ASSERT_TRUE(backend->RmsNorm(dx.data(), dw.data(), rows, hidden, eps, dout.data(), {}).ok());
      std::vector<double> ref(rows * hidden);
      for (int64_t r = 0; r < rows; ++r) {
        double ss = 0;
        for (int64_t i = 0; i < hidden; ++i) ss += double{x[r * hidden + i]} * x[r * hidden + i];
        const double inv = 1.0 / std::sqrt(ss / hidden + eps);
        for (int64_t i = 0; i < hidden; ++i) ref[r * hidden + i] = w[i] * x[r * hidden + i] * inv;
      }
      ExpectClose(Download(*backend, dout, rows * hidden), ref, 1e-6, 1e-6, "rmsnorm");
      // In place gives the same.
      ASSERT_TRUE(backend->RmsNorm(dx.data(), dw.data(), rows, hidden, eps, dx.data(), {}).ok());
      ExpectClose(Download(*backend, dx, rows * hidden), ref, 1e-6, 1e-6, "rmsnorm in place");
    }
  }
}

TEST(RopeFrequencies, Llama3MatchesHandComputedValues) {
  // head_dim 8, theta 5e5, llama3 factor 8, low 1, high 4, original 8192: the
  // four frequencies fall in the high (x2), medium and low bands.
  RopeScalingParams s;
  s.type = RopeScalingParams::Type::kLlama3;
  s.factor = 8;
  s.low_freq_factor = 1;
  s.high_freq_factor = 4;
  s.original_max_position_embeddings = 8192;
  auto f = ComputeRopeInvFreq(8, 500000.0, s);
  ASSERT_TRUE(f.ok()) << f.status();
  ASSERT_EQ(f->size(), 4u);
  EXPECT_FLOAT_EQ((*f)[0], 1.0f);
  EXPECT_FLOAT_EQ((*f)[1], 0.0376060309308639f);   // wavelen 167 < 2048: kept
  EXPECT_FLOAT_EQ((*f)[2], 0.000524846160992955f);  // wavelen 4443: smoothed, s = 0.28128
  EXPECT_FLOAT_EQ((*f)[3], 6.64786987118124e-06f);  // wavelen 118143 > 8192: / 8

  auto plain = ComputeRopeInvFreq(8, 10000.0, RopeScalingParams{});
  ASSERT_TRUE(plain.ok());
  EXPECT_FLOAT_EQ((*plain)[1], 0.1f);
  EXPECT_FLOAT_EQ((*plain)[2], 0.01f);
  RopeScalingParams linear;
  linear.type = RopeScalingParams::Type::kLinear;
  linear.factor = 4;
  auto lin = ComputeRopeInvFreq(8, 10000.0, linear);
  ASSERT_TRUE(lin.ok());
  EXPECT_FLOAT_EQ((*lin)[2], 0.0025f);

  EXPECT_EQ(ComputeRopeInvFreq(7, 10000.0, {}).status().code(),
            absl::StatusCode::kInvalidArgument);
  s.high_freq_factor = 0.5;
  EXPECT_EQ(ComputeRopeInvFreq(8, 10000.0, s).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(CpuBackend, RopeRotatesQAndKHalvesOnly) {
  auto backend = MakeCpuBackend();
  const int32_t hq = 6, hkv = 2, d = 24;
  const int64_t stride = (hq + 2 * hkv) * d + 5;  // fused qkv plus padding columns
  for (int64_t tokens : {1, 3, 7, 33}) {
    const auto qkv = RandomVector(tokens * stride, 9);
    std::vector<int32_t> positions(tokens);
    for (int64_t t = 0; t < tokens; ++t) positions[t] = static_cast<int32_t>((t * 37 + 5) % 3000);
    auto inv = ComputeRopeInvFreq(d, 500000.0, RopeScalingParams{});
    ASSERT_TRUE(inv.ok());
    auto dqkv = Upload(*backend, qkv);
    auto dpos = UploadRaw(*backend, positions);
    auto dinv = UploadRaw(*backend, *inv);
    ASSERT_TRUE(backend
                    ->Rope(dqkv.data(), stride, tokens, hq, hkv, d, dpos.as<int32_t>(),
                           dinv.as<float>(), {})
                    .ok());
    std::vector<double> ref(qkv.begin(), qkv.end());
    for (int64_t t = 0; t < tokens; ++t) {
      for (int h = 0; h < hq + hkv; ++h) {
        const int64_t o = t * stride + h * d;
        for (int i = 0; i < d / 2; ++i) {
          const double a = static_cast<float>(positions[t]) * (*inv)[i];  // fp32 product
          const double x1 = qkv[o + i], x2 = qkv[o + i + d / 2];
          ref[o + i] = x1 * std::cos(a) - x2 * std::sin(a);
          ref[o + i + d / 2] = x2 * std::cos(a) + x1 * std::sin(a);
        }
      }
    }
    const auto got = Download(*backend, dqkv, tokens * stride);
    ExpectClose(got, ref, 1e-6, 1e-6, "rope");
    // V heads and padding untouched, bit for bit.
    for (int64_t t = 0; t < tokens; ++t) {
      for (int64_t j = (hq + hkv) * d; j < stride; ++j) {
        ASSERT_EQ(got[t * stride + j], qkv[t * stride + j]);
      }
    }
  }
}

TEST(CpuBackend, GatherSiluResidual) {
  auto backend = MakeCpuBackend();
  const int64_t vocab = 50, width = 72;
  const auto table = RandomVector(vocab * width, 10);
  const std::vector<int32_t> ids = {3, 49, 0, 3, 17, 8, 21};
  auto dt = Upload(*backend, table);
  auto di = UploadRaw(*backend, ids);
  auto dout = Poisoned(*backend, ids.size() * width);
  ASSERT_TRUE(backend
                  ->GatherRows(dt.data(), vocab, width, di.as<int32_t>(), 7, dout.data(), {})
                  .ok());
  const auto got = Download(*backend, dout, ids.size() * width);
  for (size_t i = 0; i < ids.size(); ++i) {
    for (int64_t j = 0; j < width; ++j) ASSERT_EQ(got[i * width + j], table[ids[i] * width + j]);
  }

  const int64_t rows = 33, inter = 96;
  const auto gu = RandomVector(rows * 2 * inter, 11, -6.0f, 6.0f);
  auto dgu = Upload(*backend, gu);
  auto dact = Poisoned(*backend, rows * inter);
  ASSERT_TRUE(backend->SiluAndMul(dgu.data(), rows, inter, dact.data(), {}).ok());
  std::vector<double> ref(rows * inter);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t i = 0; i < inter; ++i) {
      const double g = gu[r * 2 * inter + i], u = gu[r * 2 * inter + inter + i];
      ref[r * inter + i] = g / (1.0 + std::exp(-g)) * u;
    }
  }
  ExpectClose(Download(*backend, dact, rows * inter), ref, 1e-6, 1e-6, "silu_and_mul");

  const auto a = RandomVector(1000, 12), b = RandomVector(1000, 13);
  auto da = Upload(*backend, a);
  auto dbuf = Upload(*backend, b);
  ASSERT_TRUE(backend->ResidualAdd(da.data(), dbuf.data(), 1000, {}).ok());
  const auto sum = Download(*backend, da, 1000);
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(sum[i], a[i] + b[i]);
}

TEST(CpuBackend, BadShapesNameTheOp) {
  auto backend = MakeCpuBackend();
  auto buf = backend->Allocate(4096);
  ASSERT_TRUE(buf.ok());
  void* p = buf->data();
  auto expect_invalid = [](const absl::Status& s, const char* needle) {
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
    EXPECT_THAT(std::string(s.message()), HasSubstr(needle));
  };
  expect_invalid(backend->Gemm(p, p, nullptr, 2, 3, 0, false, p, {}), "Gemm: k");
  expect_invalid(backend->Gemm(p, nullptr, nullptr, 2, 3, 4, false, p, {}), "Gemm: w is null");
  expect_invalid(backend->RmsNorm(p, p, -1, 8, 1e-5f, p, {}), "RmsNorm: rows");
  expect_invalid(backend->Rope(p, 64, 1, 2, 1, 7, static_cast<int32_t*>(p),
                               static_cast<float*>(p), {}),
                 "Rope: head_dim");
  expect_invalid(backend->Rope(p, 20, 1, 2, 1, 8, static_cast<int32_t*>(p),
                               static_cast<float*>(p), {}),
                 "Rope: row_stride=20");
  const std::vector<int32_t> bad_ids = {0, 50};
  auto di = UploadRaw(*backend, bad_ids);
  expect_invalid(backend->GatherRows(p, 50, 4, di.as<int32_t>(), 2, p, {}),
                 "GatherRows: indices[1]=50");
  expect_invalid(backend->SiluAndMul(p, 2, 0, p, {}), "SiluAndMul: intermediate");
  expect_invalid(backend->Logits(p, p, 1, 0, 8, static_cast<float*>(p), {}), "Logits: n");
}

}  // namespace
}  // namespace loraserve

namespace loraserve {
namespace {

// ArgMaxRows: the greedy pick, by hand: first maximum wins, NaN never wins,
// -inf rows and all-NaN rows are defined, rows are independent.
TEST(CpuBackend, ArgMaxRowsPicksTheFirstLargestAndSkipsNaN) {
  auto backend = testing::MakeCpuBackend();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<float> logits = {
      0.5f, 2.0f, -1.0f, 2.0f, 1.0f,   // tie: the lower index (1)
      nan,  -3.0f, nan, -2.5f, -9.0f,  // NaN skipped: 3
      -inf, -inf, -inf, -inf, -inf,    // all -inf: the first (0)
      nan,  nan,  nan,  nan,  nan,     // all NaN: 0 by definition
      1.0f, 1.0f, 1.0f, 1.0f, 7.0f};   // the last column (4)
  std::vector<int32_t> out(5, -7);
  ASSERT_TRUE(backend->ArgMaxRows(logits.data(), 5, 5, out.data(), {}).ok());
  EXPECT_EQ(out, (std::vector<int32_t>{1, 3, 0, 0, 4}));

  // Zero rows touch nothing; bad sizes name the op and the value.
  std::vector<int32_t> untouched = {-7};
  EXPECT_TRUE(backend->ArgMaxRows(nullptr, 0, 5, untouched.data(), {}).ok());
  EXPECT_EQ(untouched[0], -7);
  auto bad = backend->ArgMaxRows(logits.data(), 1, 0, out.data(), {});
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.message()), ::testing::HasSubstr("ArgMaxRows: vocab"));
  auto big = backend->ArgMaxRows(logits.data(), 1, int64_t{1} << 32, out.data(), {});
  EXPECT_THAT(std::string(big.message()), ::testing::HasSubstr("does not fit an int32"));
}

}  // namespace
}  // namespace loraserve
