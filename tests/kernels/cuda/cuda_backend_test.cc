// CudaBackend: the factory (also without a GPU: it must name the problem),
// identity, copies and memset, dtype conversions bit-exact with
// common/dtype.h, streams and events, pinned host buffers, out-of-memory as
// ResourceExhausted, and InvalidArgument naming the op for bad shapes. The
// op-vs-CPU comparisons live in cuda_ops_test.cc and cuda_gemm_test.cc.
#include "kernels/cuda/cuda_backend.h"

#include <cuda_runtime_api.h>

#include <chrono>
#include <cstring>
#include <limits>
#include <numeric>
#include <random>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/kernels/cuda/cuda_backend_test_util.h"

namespace loraserve {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;
using CudaBackendTest = ::loraserve::testing::CudaVsCpuTest;

// Runs without a GPU too: the factory either builds a CudaBackend or says why not.
TEST(CudaBackendFactory, BuildsCudaBackendOrNamesTheProblem) {
  auto backend = CreateBackend(BackendKind::kCuda, {});
  if (cuda::VisibleDeviceCount() > 0) {
    ASSERT_TRUE(backend.ok()) << backend.status();
    EXPECT_EQ((*backend)->kind(), BackendKind::kCuda);
    EXPECT_EQ((*backend)->dtype(), DType::kBF16);
    EXPECT_EQ((*backend)->elt_size(), 2u);
    const std::string name((*backend)->name());
    EXPECT_THAT(name, StartsWith("cuda ("));
    EXPECT_THAT(name, HasSubstr(", bf16, sm_"));
  } else {
    ASSERT_FALSE(backend.ok());
    EXPECT_EQ(backend.status().code(), absl::StatusCode::kFailedPrecondition) << backend.status();
    const std::string message(backend.status().message());
    EXPECT_THAT(message, HasSubstr("CreateBackend(cuda)"));
    EXPECT_THAT(message, HasSubstr("no CUDA device visible"));
  }
  // --device=auto resolves to the CPU before anything asks for CUDA without a device.
  auto kind = ResolveBackendKind("auto");
  ASSERT_TRUE(kind.ok()) << kind.status();
  EXPECT_EQ(*kind, cuda::VisibleDeviceCount() > 0 ? BackendKind::kCuda : BackendKind::kCpu);
}

TEST(CudaBackendFactory, DeviceIndexOutsideTheVisibleDevices) {
  CudaBackend::Options options;
  options.device_index = 4096;
  auto backend = CudaBackend::Create(options);
  ASSERT_FALSE(backend.ok());
  EXPECT_EQ(backend.status().code(), cuda::VisibleDeviceCount() > 0
                                         ? absl::StatusCode::kInvalidArgument
                                         : absl::StatusCode::kFailedPrecondition)
      << backend.status();
}

TEST_F(CudaBackendTest, OwnsScratchAndWorkspace) {
  auto* cuda = dynamic_cast<CudaBackend*>(cuda_.get());
  ASSERT_NE(cuda, nullptr);
  EXPECT_EQ(cuda->device_index(), 0);
  EXPECT_LE(cuda->attention_scratch_bytes(), CudaBackend::kMaxDefaultAttentionScratchBytes);
  // No scratch at all is a valid configuration.
  CudaBackend::Options options;
  options.attention_scratch_bytes = 0;
  options.cublas_workspace_bytes = 0;
  auto bare = CudaBackend::Create(options);
  ASSERT_TRUE(bare.ok()) << bare.status();
  EXPECT_EQ((*bare)->attention_scratch_bytes(), 0u);
}

TEST_F(CudaBackendTest, CopiesAndMemsetRoundTrip) {
  Backend& b = *cuda_;
  constexpr size_t kBytes = 100003;
  std::vector<uint8_t> src(kBytes), dst(kBytes, 0);
  for (size_t i = 0; i < kBytes; ++i) src[i] = static_cast<uint8_t>(i * 7 + 3);
  auto a = b.Allocate(kBytes);
  auto c = b.Allocate(kBytes);
  ASSERT_TRUE(a.ok() && c.ok());
  EXPECT_EQ(a->size(), kBytes);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(a->data()) % 256, 0u);
  ASSERT_TRUE(b.CopyToDevice(a->data(), src.data(), kBytes, {}).ok());
  ASSERT_TRUE(b.CopyDeviceToDevice(c->data(), a->data(), kBytes, {}).ok());
  ASSERT_TRUE(b.CopyToHost(dst.data(), c->data(), kBytes, {}).ok());
  ASSERT_TRUE(b.Synchronize({}).ok());
  EXPECT_EQ(src, dst);

  // Memset of a range at an odd offset touches exactly that range.
  ASSERT_TRUE(b.Memset(c->bytes_at(11), 0xAB, 1000, {}).ok());
  ASSERT_TRUE(b.CopyToHost(dst.data(), c->data(), kBytes, {}).ok());
  ASSERT_TRUE(b.Synchronize({}).ok());
  for (size_t i = 0; i < kBytes; ++i) {
    const uint8_t want = (i >= 11 && i < 1011) ? 0xAB : src[i];
    ASSERT_EQ(dst[i], want) << i;
  }

  auto empty = b.Allocate(0);
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
  EXPECT_TRUE(b.CopyToDevice(nullptr, nullptr, 0, {}).ok());  // nothing to copy
  const absl::Status null_dst = b.CopyToDevice(nullptr, src.data(), 4, {});
  EXPECT_EQ(null_dst.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(null_dst.message()), HasSubstr("CopyToDevice: dst is null"));
}

// Every fp16 and bf16 bit pattern, fp32 specials and random fp32 bit patterns
// over more than one staging chunk: the stored bf16 bits are exactly those of
// the common/dtype.h helpers.
TEST_F(CudaBackendTest, UploadConvertedIsBitExact) {
  Backend& b = *cuda_;
  auto check = [&](const void* src, DType dtype, const std::vector<uint16_t>& want,
                   const char* what) {
    const size_t n = want.size();
    auto buf = b.Allocate(n * 2);
    ASSERT_TRUE(buf.ok());
    ASSERT_TRUE(b.Memset(buf->data(), 0xFF, n * 2, {}).ok());
    ASSERT_TRUE(b.UploadConverted(src, dtype, static_cast<int64_t>(n), buf->data()).ok());
    std::vector<uint16_t> got(n);
    ASSERT_TRUE(b.CopyToHost(got.data(), buf->data(), n * 2, {}).ok());
    ASSERT_TRUE(b.Synchronize({}).ok());
    int bad = 0;
    for (size_t i = 0; i < n; ++i) {
      if (got[i] != want[i] && bad++ < 5) {
        ADD_FAILURE() << what << "[" << i << "]: got 0x" << std::hex << got[i] << ", want 0x"
                      << want[i] << std::dec;
      }
    }
    EXPECT_EQ(bad, 0) << what;
  };

  std::vector<uint16_t> all(65536);
  std::iota(all.begin(), all.end(), uint16_t{0});
  std::vector<uint16_t> want(65536);
  for (size_t i = 0; i < all.size(); ++i) want[i] = FloatToBf16(HalfToFloat(all[i]));
  check(all.data(), DType::kF16, want, "f16");
  check(all.data(), DType::kBF16, all, "bf16");  // already the storage dtype: unchanged

  const size_t n = (size_t{1} << 22) + 3;  // a staging chunk (4 Mi elements) and a bit
  std::vector<float> f32(n);
  std::mt19937 rng(42);
  for (float& f : f32) f = BitsToFloat(static_cast<uint32_t>(rng()));
  const float specials[] = {0.0f,
                            -0.0f,
                            1.0f,
                            -2.5f,
                            1.0f + 1.0f / 256,  // tie: to even (1.0)
                            1.0f + 3.0f / 256,  // tie: to even (up)
                            std::nextafter(1.0f, 2.0f),
                            std::numeric_limits<float>::max(),  // rounds up to Inf
                            -std::numeric_limits<float>::max(),
                            std::numeric_limits<float>::min(),
                            std::numeric_limits<float>::denorm_min(),
                            1e-40f,
                            std::numeric_limits<float>::infinity(),
                            -std::numeric_limits<float>::infinity(),
                            std::numeric_limits<float>::quiet_NaN(),
                            65504.0f,
                            3.0e-3f};
  std::copy(std::begin(specials), std::end(specials), f32.begin());
  std::vector<uint16_t> want32(n);
  for (size_t i = 0; i < n; ++i) want32[i] = FloatToBf16(f32[i]);
  check(f32.data(), DType::kF32, want32, "f32");
  // An fp32 source that is not 4-byte aligned takes the realigning path.
  std::vector<uint8_t> unaligned(1 + 1000 * sizeof(float));
  std::memcpy(unaligned.data() + 1, f32.data(), 1000 * sizeof(float));
  check(unaligned.data() + 1, DType::kF32,
        std::vector<uint16_t>(want32.begin(), want32.begin() + 1000), "f32 unaligned");
}

TEST_F(CudaBackendTest, DownloadToF32IsExactWidening) {
  Backend& b = *cuda_;
  for (size_t n : {size_t{65536}, (size_t{1} << 22) + 3}) {
    std::vector<uint16_t> bits(n);
    for (size_t i = 0; i < n; ++i) bits[i] = static_cast<uint16_t>(i * 40503u);
    auto buf = b.Allocate(n * 2);
    ASSERT_TRUE(buf.ok());
    ASSERT_TRUE(b.CopyToDevice(buf->data(), bits.data(), n * 2, {}).ok());
    std::vector<float> got(n, 0.0f);
    ASSERT_TRUE(b.DownloadToF32(buf->data(), static_cast<int64_t>(n), got.data()).ok());
    int bad = 0;
    for (size_t i = 0; i < n; ++i) {
      if (FloatBits(got[i]) != FloatBits(Bf16ToFloat(bits[i])) && bad++ < 5) {
        ADD_FAILURE() << "[" << i << "] bits 0x" << std::hex << bits[i] << std::dec << ": got "
                      << got[i];
      }
    }
    EXPECT_EQ(bad, 0) << n;
  }
}

TEST_F(CudaBackendTest, SecondStreamWaitsForAnEvent) {
  Backend& b = *cuda_;
  auto s1 = b.CreateStream();
  auto s2 = b.CreateStream();
  ASSERT_TRUE(s1.ok() && s2.ok());
  EXPECT_NE(s1->ref().native, nullptr);
  EXPECT_NE(s1->ref().native, s2->ref().native);

  constexpr size_t kBytes = size_t{64} << 20;
  auto src = b.Allocate(kBytes);
  auto dst = b.Allocate(kBytes);
  ASSERT_TRUE(src.ok() && dst.ok());
  ASSERT_TRUE(b.Memset(dst->data(), 0x00, kBytes, {}).ok());
  ASSERT_TRUE(b.Synchronize({}).ok());
  // A queue of work on the compute stream; the last pass writes 0x5A.
  for (int pass = 0; pass < 16; ++pass) {
    ASSERT_TRUE(b.Memset(src->data(), pass == 15 ? 0x5A : pass, kBytes, {}).ok());
  }
  auto ready = b.CreateEvent();
  ASSERT_TRUE(ready.ok());
  ASSERT_TRUE(b.RecordEvent(*ready, {}).ok());
  ASSERT_TRUE(b.StreamWaitEvent(s2->ref(), *ready).ok());
  ASSERT_TRUE(b.CopyDeviceToDevice(dst->data(), src->data(), kBytes, s2->ref()).ok());
  auto copied = b.CreateEvent();
  ASSERT_TRUE(copied.ok());
  ASSERT_TRUE(b.RecordEvent(*copied, s2->ref()).ok());

  // EventDone never blocks and becomes true.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  bool done = false;
  while (!done && std::chrono::steady_clock::now() < deadline) {
    auto d = b.EventDone(*copied);
    ASSERT_TRUE(d.ok()) << d.status();
    done = *d;
    if (!done) std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
  EXPECT_TRUE(done);
  ASSERT_TRUE(b.SynchronizeEvent(*copied).ok());

  std::vector<uint8_t> host(kBytes, 0);
  ASSERT_TRUE(b.CopyToHost(host.data(), dst->data(), kBytes, s1->ref()).ok());
  ASSERT_TRUE(b.Synchronize(s1->ref()).ok());
  EXPECT_EQ(std::count(host.begin(), host.end(), uint8_t{0x5A}),
            static_cast<std::ptrdiff_t>(kBytes));

  // A never-recorded event is complete; an empty one is an argument error.
  auto fresh = b.CreateEvent();
  ASSERT_TRUE(fresh.ok());
  auto fresh_done = b.EventDone(*fresh);
  ASSERT_TRUE(fresh_done.ok());
  EXPECT_TRUE(*fresh_done);
  Event empty;
  EXPECT_EQ(b.RecordEvent(empty, {}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(b.StreamWaitEvent({}, empty).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(b.EventDone(empty).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(b.SynchronizeEvent(empty).code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(CudaBackendTest, PinnedHostBuffersRoundTripAsynchronously) {
  Backend& b = *cuda_;
  auto empty = b.AllocateHost(0);
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_TRUE(empty->empty());

  constexpr size_t kBytes = (size_t{1} << 20) + 3;
  auto up = b.AllocateHost(kBytes);
  auto down = b.AllocateHost(kBytes);
  ASSERT_TRUE(up.ok() && down.ok()) << up.status() << down.status();
  EXPECT_EQ(up->size(), kBytes);
  cudaPointerAttributes attributes;
  ASSERT_EQ(cudaPointerGetAttributes(&attributes, up->data()), cudaSuccess);
  EXPECT_EQ(attributes.type, cudaMemoryTypeHost) << "AllocateHost memory is not pinned";

  for (size_t i = 0; i < kBytes; ++i) up->as<uint8_t>()[i] = static_cast<uint8_t>(i * 31 + 7);
  std::memset(down->data(), 0, kBytes);
  auto stream = b.CreateStream();
  auto dev = b.Allocate(kBytes);
  ASSERT_TRUE(stream.ok() && dev.ok());
  ASSERT_TRUE(b.CopyToDevice(dev->data(), up->data(), kBytes, stream->ref()).ok());
  ASSERT_TRUE(b.CopyToHost(down->data(), dev->data(), kBytes, stream->ref()).ok());
  ASSERT_TRUE(b.Synchronize(stream->ref()).ok());
  EXPECT_EQ(std::memcmp(up->data(), down->data(), kBytes), 0);

  void* const p = up->data();
  HostBuffer moved = std::move(*up);
  EXPECT_TRUE(up->empty());
  EXPECT_EQ(moved.data(), p);
  moved.Reset();
  EXPECT_TRUE(moved.empty());
}

TEST_F(CudaBackendTest, OutOfMemoryIsResourceExhaustedAndLeavesNoError) {
  Backend& b = *cuda_;
  constexpr size_t kPiB = size_t{1} << 50;
  auto huge = b.Allocate(kPiB);
  ASSERT_FALSE(huge.ok());
  EXPECT_EQ(huge.status().code(), absl::StatusCode::kResourceExhausted) << huge.status();
  EXPECT_THAT(std::string(huge.status().message()),
              HasSubstr("out of device memory for 1125899906842624 bytes"));
  auto huge_host = b.AllocateHost(kPiB);
  EXPECT_FALSE(huge_host.ok());

  // The failed allocations left no error behind for the next launch check.
  const std::vector<float> x = {1.0f, 2.0f, 3.0f};
  auto a = testing::Upload(b, x);
  auto d = testing::Upload(b, x);
  ASSERT_TRUE(b.ResidualAdd(a.data(), d.data(), 3, {}).ok());
  EXPECT_EQ(testing::Download(b, a, 3), (std::vector<float>{2.0f, 4.0f, 6.0f}));
}

TEST_F(CudaBackendTest, BadShapesNameTheOp) {
  Backend& b = *cuda_;
  auto buf = b.Allocate(4096);
  ASSERT_TRUE(buf.ok());
  void* p = buf->data();
  auto* pf = static_cast<float*>(p);
  auto* pi = static_cast<int32_t*>(p);
  auto expect_invalid = [](const absl::Status& s, const char* needle) {
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
    EXPECT_THAT(std::string(s.message()), HasSubstr(needle));
  };
  expect_invalid(b.Gemm(p, p, nullptr, 2, 3, 0, false, p, {}), "Gemm: k");
  expect_invalid(b.Gemm(p, nullptr, nullptr, 2, 3, 4, false, p, {}), "Gemm: w is null");
  expect_invalid(b.Gemm(p, p, nullptr, int64_t{1} << 31, 3, 4, false, p, {}), "exceeds BLAS int");
  expect_invalid(b.RmsNorm(p, p, -1, 8, 1e-5f, p, {}), "RmsNorm: rows");
  expect_invalid(b.RmsNorm(p, p, 1, 8, -1.0f, p, {}), "RmsNorm: eps");
  expect_invalid(b.Rope(p, 64, 1, 2, 1, 7, pi, pf, {}), "Rope: head_dim");
  expect_invalid(b.Rope(p, 20, 1, 2, 1, 8, pi, pf, {}), "Rope: row_stride=20");
  expect_invalid(b.GatherRows(p, 50, 0, pi, 2, p, {}), "GatherRows: width");
  expect_invalid(b.SiluAndMul(p, 2, 0, p, {}), "SiluAndMul: intermediate");
  expect_invalid(b.ResidualAdd(p, p, -1, {}), "ResidualAdd: n");
  expect_invalid(b.Logits(p, p, 1, 0, 8, pf, {}), "Logits: n");
  const float host = 1.0f;
  expect_invalid(b.UploadConverted(&host, DType::kF32, -1, p), "UploadConverted: n");
  expect_invalid(b.DownloadToF32(p, 1, nullptr), "DownloadToF32: dst is null");

  KvLayout layout;
  layout.num_layers = 2;
  layout.num_kv_heads = 2;
  layout.head_dim = 64;
  layout.block_tokens = 16;
  layout.block_stride_bytes = layout.MinBlockBytes(2);
  expect_invalid(b.WriteKv(p, 128, p, 128, 1, static_cast<int64_t*>(p), p, layout, 2, {}),
                 "WriteKv: layer 2");
  expect_invalid(b.WriteKv(p, 100, p, 128, 1, static_cast<int64_t*>(p), p, layout, 0, {}),
                 "WriteKv: k_row_stride=100");
  AttentionBatch batch;
  batch.num_seqs = 1;
  batch.query_start = pi;
  batch.seq_lens = pi;
  batch.block_tables = pi;
  batch.max_blocks_per_seq = 1;
  batch.max_seq_len = 16;
  expect_invalid(b.PagedAttention(p, 320, 1, 5, batch, p, layout, 0, 1.0f, p, {}),
                 "PagedAttention: num_q_heads=5");
  KvLayout small = layout;
  small.block_stride_bytes = 8;
  expect_invalid(b.PagedAttention(p, 256, 1, 4, batch, p, small, 0, 1.0f, p, {}),
                 "PagedAttention: KvLayout block_stride_bytes=8");
  LoraSegments bad_slices;
  bad_slices.num_slices = 4;
  expect_invalid(b.LoraShrink(p, 1, 8, bad_slices, pf, {}), "LoraShrink: lora.num_slices=4");
  LoraSegments lora;
  LoraSliceColumns cols;
  cols.num_slices = 2;
  expect_invalid(b.LoraExpand(pf, 1, lora, cols, p, 8, {}), "LoraExpand: cols.num_slices=2");
}

}  // namespace
}  // namespace loraserve
