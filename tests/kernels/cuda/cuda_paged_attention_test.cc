// CUDA PagedAttention (kernels/cuda/cuda_attention.h) against the CPU twin on
// the same bf16-rounded inputs: mixed batches of decodes, fresh prefills and
// chunked prefills after cached context, head_dim 64/80/96/128, block_tokens
// 16/32, GQA ratios 1/4/8/20 (20 > 16 heads per CTA: head chunks), shuffled
// non-contiguous block ids, q read from a fused qkv row, outputs poisoned
// with NaN. Each batch runs with the full split-K scratch, a quarter of it
// (fewer splits) and none (no split); all must match the CPU.
//
// Tolerance: the GPU computes in fp32 and rounds the output once to bf16
// (relative error <= 2^-9); the CPU computes in double and keeps fp32. So
// |gpu - cpu| <= 2^-9 |cpu| + fp32 noise (~1e-6 on outputs of size <= 1):
// we allow 2^-8 |cpu| + 2e-5.
//
// The launch-plan and argument checks run without a device; the kernel
// comparisons skip when no CUDA device is visible.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/cuda/cuda_attention.h"
#include "kernels/cuda/cuda_attention_plan.h"
#include "tests/kernels/cpu_test_util.h"
#include "tests/kernels/cuda/cuda_kernel_test_util.h"

namespace loraserve {
namespace {

using ::loraserve::testing::DeviceArray;
using ::loraserve::testing::FromBf16Bits;
using ::loraserve::testing::MakeCpuBackend;
using ::loraserve::testing::RandomVector;
using ::loraserve::testing::RoundToBf16;
using ::loraserve::testing::ToBf16Bits;
using ::testing::HasSubstr;

constexpr int32_t kLayers = 2;
constexpr int32_t kLayer = 1;

struct AttentionCase {
  int32_t head_dim;
  int32_t block_tokens;
  int32_t num_q_heads;
  int32_t num_kv_heads;
};

std::string CaseString(const AttentionCase& c) {
  return "D" + std::to_string(c.head_dim) + "_BT" + std::to_string(c.block_tokens) + "_Hq" +
         std::to_string(c.num_q_heads) + "_Hkv" + std::to_string(c.num_kv_heads);
}
void PrintTo(const AttentionCase& c, std::ostream* os) { *os << CaseString(c); }

struct SeqSpec {
  int32_t seq_len;  // tokens after this step
  int32_t q_len;    // new tokens (the last q_len of seq_len)
};

std::string CaseName(const ::testing::TestParamInfo<AttentionCase>& info) {
  return CaseString(info.param);
}

// One mixed batch, its paged caches on CPU (fp32) and GPU (bf16), and both outputs.
class AttentionRig {
 public:
  AttentionRig(const AttentionCase& c, std::vector<SeqSpec> seqs, uint32_t seed)
      : c_(c), seqs_(std::move(seqs)), rng_(seed), cpu_(MakeCpuBackend(4)) {
    gpu_layout_ = KvLayout{kLayers, c.num_kv_heads, c.head_dim, c.block_tokens, 0};
    gpu_layout_.block_stride_bytes = gpu_layout_.MinBlockBytes(2) + 96;  // pages may be larger
    cpu_layout_ = gpu_layout_;
    cpu_layout_.block_stride_bytes = cpu_layout_.MinBlockBytes(4);
    kv_width_ = int64_t{c.num_kv_heads} * c.head_dim;
    q_width_ = int64_t{c.num_q_heads} * c.head_dim;
    q_stride_ = q_width_ + 2 * kv_width_;  // q is the head of a fused qkv row
  }

  // Builds block tables, writes K/V of both layers into both caches
  // (LaunchWriteKv / CpuBackend::WriteKv), uploads q and the metadata.
  void Prepare() {
    int32_t total_blocks = 0;
    for (const SeqSpec& s : seqs_) total_blocks += (s.seq_len + c_.block_tokens - 1) / c_.block_tokens;
    num_blocks_ = 2 * total_blocks + 3;  // unused blocks in between
    std::vector<int32_t> ids(num_blocks_);
    std::iota(ids.begin(), ids.end(), 0);
    std::shuffle(ids.begin(), ids.end(), rng_);
    max_blocks_ = 0;
    for (const SeqSpec& s : seqs_) {
      max_blocks_ = std::max(max_blocks_, (s.seq_len + c_.block_tokens - 1) / c_.block_tokens);
    }
    std::vector<int32_t> tables;
    std::vector<int64_t> slots;
    std::vector<float> k_all, v_all;
    query_start_ = {0};
    max_seq_len_ = 0;
    for (const SeqSpec& s : seqs_) {
      const int32_t nb = (s.seq_len + c_.block_tokens - 1) / c_.block_tokens;
      std::vector<int32_t> row(max_blocks_, -7);  // padding is never read
      for (int32_t b = 0; b < nb; ++b) {
        row[b] = ids.back();
        ids.pop_back();
      }
      for (int32_t pos = 0; pos < s.seq_len; ++pos) {
        slots.push_back(int64_t{row[pos / c_.block_tokens]} * c_.block_tokens +
                        pos % c_.block_tokens);
      }
      // A padding token between sequences: slot -1 must write nothing.
      slots.push_back(-1);
      tables.insert(tables.end(), row.begin(), row.end());
      seq_lens_.push_back(s.seq_len);
      query_start_.push_back(query_start_.back() + s.q_len);
      max_seq_len_ = std::max(max_seq_len_, s.seq_len);
    }
    num_tokens_ = query_start_.back();
    const int64_t kv_rows = static_cast<int64_t>(slots.size());

    // Caches, poisoned: unwritten slots are NaN and must never be read.
    gpu_cache_ = std::make_unique<DeviceArray<uint8_t>>(num_blocks_ * gpu_layout_.block_stride_bytes);
    gpu_cache_->Fill(0xFF);
    auto cpu_cache = cpu_->Allocate(num_blocks_ * cpu_layout_.block_stride_bytes);
    ASSERT_TRUE(cpu_cache.ok());
    cpu_cache_ = std::move(*cpu_cache);
    std::vector<float> nan(cpu_cache_.size() / 4, std::nanf(""));
    ASSERT_TRUE(cpu_->CopyToDevice(cpu_cache_.data(), nan.data(), cpu_cache_.size(), {}).ok());

    DeviceArray<int64_t> d_slots(slots);
    auto c_slots = testing::UploadRaw(*cpu_, slots);
    for (int32_t layer = 0; layer < kLayers; ++layer) {
      // K and V rows with a stride larger than the heads (fused qkv-like).
      const int64_t stride = kv_width_ + 8;
      std::vector<float> k = RandomVector(kv_rows * stride, rng_());
      std::vector<float> v = RandomVector(kv_rows * stride, rng_());
      RoundToBf16(k);
      RoundToBf16(v);
      DeviceArray<uint16_t> dk(ToBf16Bits(k)), dv(ToBf16Bits(v));
      ASSERT_TRUE(cuda::LaunchWriteKv(dk.get(), stride, dv.get(), stride, kv_rows, d_slots.get(),
                                      gpu_cache_->get(), gpu_layout_, layer, nullptr)
                      .ok());
      auto ck = testing::Upload(*cpu_, k);
      auto cv = testing::Upload(*cpu_, v);
      ASSERT_TRUE(cpu_->WriteKv(ck.data(), stride, cv.data(), stride, kv_rows,
                                c_slots.as<int64_t>(), cpu_cache_.data(), cpu_layout_, layer, {})
                      .ok());
      ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    }

    q_ = RandomVector(num_tokens_ * q_stride_, rng_(), -3.0f, 3.0f);
    RoundToBf16(q_);
    gpu_q_ = std::make_unique<DeviceArray<uint16_t>>(ToBf16Bits(q_));
    gpu_query_start_ = std::make_unique<DeviceArray<int32_t>>(query_start_);
    gpu_seq_lens_ = std::make_unique<DeviceArray<int32_t>>(seq_lens_);
    gpu_tables_ = std::make_unique<DeviceArray<int32_t>>(tables);
    cpu_query_start_ = testing::UploadRaw(*cpu_, query_start_);
    cpu_seq_lens_ = testing::UploadRaw(*cpu_, seq_lens_);
    cpu_tables_ = testing::UploadRaw(*cpu_, tables);
  }

  AttentionBatch GpuBatch() const {
    return AttentionBatch{static_cast<int32_t>(seqs_.size()), gpu_query_start_->get(),
                          gpu_seq_lens_->get(), gpu_tables_->get(), max_blocks_, max_seq_len_};
  }

  float scale() const { return 1.0f / std::sqrt(static_cast<float>(c_.head_dim)); }

  std::vector<float> RunCpu() {
    AttentionBatch batch{static_cast<int32_t>(seqs_.size()), cpu_query_start_.as<int32_t>(),
                         cpu_seq_lens_.as<int32_t>(), cpu_tables_.as<int32_t>(), max_blocks_,
                         max_seq_len_};
    auto q = testing::Upload(*cpu_, q_);
    auto out = testing::Poisoned(*cpu_, num_tokens_ * q_width_);
    const absl::Status st = cpu_->PagedAttention(q.data(), q_stride_, num_tokens_, c_.num_q_heads,
                                                 batch, cpu_cache_.data(), cpu_layout_, kLayer,
                                                 scale(), out.data(), {});
    EXPECT_TRUE(st.ok()) << st;
    return testing::Download(*cpu_, out, num_tokens_ * q_width_);
  }

  // The GPU output with `scratch_bytes` of split-K scratch.
  std::vector<float> RunGpu(size_t scratch_bytes) {
    DeviceArray<uint8_t> scratch(scratch_bytes);
    DeviceArray<uint16_t> out(num_tokens_ * q_width_);
    out.Fill(0xFF);  // NaN
    const absl::Status st = cuda::LaunchPagedAttention(
        gpu_q_->get(), q_stride_, num_tokens_, c_.num_q_heads, GpuBatch(), gpu_cache_->get(),
        gpu_layout_, kLayer, scale(), out.get(), scratch_bytes > 0 ? scratch.get() : nullptr,
        scratch_bytes, nullptr);
    EXPECT_TRUE(st.ok()) << st;
    EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    return FromBf16Bits(out.Download());
  }

  size_t WantedScratch() const {
    return cuda::PagedAttentionScratchBytes(num_tokens_, c_.num_q_heads, c_.head_dim,
                                            max_seq_len_);
  }

  size_t BytesPerSplit() const {
    return static_cast<size_t>(cuda::attention_internal::ScratchBytesPerSplit(
        num_tokens_, c_.num_q_heads, c_.head_dim));
  }

  int32_t SplitsWith(size_t scratch_bytes) const {
    return cuda::attention_internal::PlanAttention(
               num_tokens_, c_.num_q_heads, c_.num_kv_heads, static_cast<int32_t>(seqs_.size()),
               c_.head_dim, max_seq_len_, scratch_bytes,
               cuda::attention_internal::CurrentSmCount())
        .num_splits;
  }

 private:
  AttentionCase c_;
  std::vector<SeqSpec> seqs_;
  std::mt19937 rng_;
  std::unique_ptr<Backend> cpu_;
  KvLayout gpu_layout_, cpu_layout_;
  int64_t kv_width_ = 0, q_width_ = 0, q_stride_ = 0, num_blocks_ = 0;
  int32_t max_blocks_ = 0, max_seq_len_ = 0;
  int64_t num_tokens_ = 0;
  std::vector<int32_t> query_start_, seq_lens_;
  std::vector<float> q_;
  std::unique_ptr<DeviceArray<uint8_t>> gpu_cache_;
  std::unique_ptr<DeviceArray<uint16_t>> gpu_q_;
  std::unique_ptr<DeviceArray<int32_t>> gpu_query_start_, gpu_seq_lens_, gpu_tables_;
  DeviceBuffer cpu_cache_, cpu_query_start_, cpu_seq_lens_, cpu_tables_;
};

void ExpectMatchesCpu(const std::vector<float>& gpu, const std::vector<float>& cpu,
                      const std::string& what) {
  ASSERT_EQ(gpu.size(), cpu.size());
  int reported = 0;
  double max_err = 0;
  for (size_t i = 0; i < gpu.size(); ++i) {
    const double err = std::fabs(double{gpu[i]} - cpu[i]);
    const double tol = std::ldexp(std::fabs(double{cpu[i]}), -8) + 2e-5;
    if (!std::isfinite(gpu[i]) || !(err <= tol)) {
      if (reported++ < 8) ADD_FAILURE() << what << " [" << i << "]: gpu " << gpu[i] << ", cpu " << cpu[i];
    } else {
      max_err = std::max(max_err, err);
    }
  }
  EXPECT_EQ(reported, 0) << what << ": " << reported << " mismatches";
  ::testing::Test::RecordProperty(what + "_max_abs_err", std::to_string(max_err));
}

class CudaPagedAttention : public ::testing::TestWithParam<AttentionCase> {
 protected:
  void SetUp() override { LORASERVE_SKIP_WITHOUT_CUDA(); }
};

TEST_P(CudaPagedAttention, MixedBatchMatchesCpuWithAndWithoutSplits) {
  // A 1-token prompt, a fresh 17-token prefill, decodes after 299 and 2048
  // cached tokens, a 5-token chunk after 65 cached.
  AttentionRig rig(GetParam(), {{1, 1}, {17, 17}, {300, 1}, {70, 5}, {2049, 1}}, 1234);
  ASSERT_NO_FATAL_FAILURE(rig.Prepare());
  const std::vector<float> cpu = rig.RunCpu();
  const size_t wanted = rig.WantedScratch();
  ExpectMatchesCpu(rig.RunGpu(wanted), cpu, "full_scratch");
  ExpectMatchesCpu(rig.RunGpu(wanted / 4), cpu, "quarter_scratch");
  ExpectMatchesCpu(rig.RunGpu(0), cpu, "no_scratch");
}

TEST_P(CudaPagedAttention, LongDecodesSplitAndMatchCpu) {
  // Few rows and long contexts: the plan must split; less scratch, fewer splits.
  AttentionRig rig(GetParam(), {{2049, 1}, {4100, 1}, {777, 1}}, 99);
  ASSERT_NO_FATAL_FAILURE(rig.Prepare());
  const size_t wanted = rig.WantedScratch();
  ASSERT_GT(wanted, 0u);
  const int32_t full = rig.SplitsWith(wanted);
  EXPECT_GT(full, 1);
  const size_t small = 2 * rig.BytesPerSplit();  // room for exactly 2 splits
  EXPECT_EQ(rig.SplitsWith(small), 2);
  EXPECT_EQ(rig.SplitsWith(0), 1);
  const std::vector<float> cpu = rig.RunCpu();
  ExpectMatchesCpu(rig.RunGpu(wanted), cpu, "full_scratch");
  ExpectMatchesCpu(rig.RunGpu(small), cpu, "two_splits");
  ExpectMatchesCpu(rig.RunGpu(0), cpu, "no_split");
}

TEST_P(CudaPagedAttention, LongPrefillChunkMatchesCpu) {
  // 150 new tokens after 100 cached: row tiles cross block boundaries and the
  // causal mask differs per row inside a tile.
  AttentionRig rig(GetParam(), {{250, 150}, {3, 2}}, 7);
  ASSERT_NO_FATAL_FAILURE(rig.Prepare());
  const std::vector<float> cpu = rig.RunCpu();
  ExpectMatchesCpu(rig.RunGpu(rig.WantedScratch()), cpu, "prefill");
}

INSTANTIATE_TEST_SUITE_P(Shapes, CudaPagedAttention,
                         ::testing::Values(AttentionCase{64, 16, 4, 4},    // MHA
                                           AttentionCase{64, 32, 8, 2},    // GQA 4
                                           AttentionCase{80, 16, 16, 2},   // GQA 8
                                           AttentionCase{96, 32, 12, 3},   // GQA 4
                                           AttentionCase{128, 32, 32, 8},  // Llama-3-8B
                                           AttentionCase{128, 16, 16, 16}, // MHA
                                           AttentionCase{128, 16, 40, 2}), // GQA 20: head chunks
                         CaseName);

// ----------------------------------------------------------- no device needed

TEST(CudaPagedAttentionPlan, ScratchBytesCoverThePlanAndLessMeansFewerSplits) {
  using cuda::attention_internal::PlanAttention;
  using cuda::attention_internal::ScratchBytesWanted;
  constexpr int kSms = 132;
  struct Shape {
    int64_t tokens;
    int32_t hq, hkv, seqs, d, max_len;
  };
  for (const Shape& s : {Shape{1, 32, 8, 1, 128, 2049}, Shape{64, 32, 8, 64, 128, 4096},
                         Shape{3, 40, 2, 3, 80, 9000}, Shape{4096, 32, 8, 2, 128, 4096},
                         Shape{5, 8, 8, 5, 64, 200}, Shape{300, 32, 32, 1, 128, 300}}) {
    const size_t wanted = ScratchBytesWanted(s.tokens, s.hq, s.d, s.max_len, kSms);
    const auto unlimited = PlanAttention(s.tokens, s.hq, s.hkv, s.seqs, s.d, s.max_len,
                                         ~size_t{0}, kSms);
    const auto given = PlanAttention(s.tokens, s.hq, s.hkv, s.seqs, s.d, s.max_len, wanted, kSms);
    EXPECT_EQ(given.num_splits, unlimited.num_splits) << s.tokens << " tokens";
    EXPECT_EQ(PlanAttention(s.tokens, s.hq, s.hkv, s.seqs, s.d, s.max_len, 0, kSms).num_splits, 1);
    if (given.num_splits > 1) {
      EXPECT_EQ(given.keys_per_split % cuda::attention_internal::kKeysPerTile, 0);
      EXPECT_GE(given.keys_per_split * given.num_splits, s.max_len);
      EXPECT_LT(given.keys_per_split * (given.num_splits - 1), s.max_len);
      // Room for one split fewer than the plan: fewer splits, never more scratch.
      const size_t per_split = static_cast<size_t>(
          cuda::attention_internal::ScratchBytesPerSplit(s.tokens, s.hq, s.d));
      const auto fewer = PlanAttention(s.tokens, s.hq, s.hkv, s.seqs, s.d, s.max_len,
                                       per_split * (given.num_splits - 1), kSms);
      EXPECT_LT(fewer.num_splits, given.num_splits);
    }
    // Every CTA holds at most 16 (row, head) vectors.
    EXPECT_LE(given.rows_per_cta * given.heads_per_cta, cuda::attention_internal::kMaxVectorsPerCta);
    EXPECT_EQ(given.heads_per_cta * given.head_chunks >= given.group, true);
  }
  // A single long decode splits; a long prefill does not.
  EXPECT_GT(ScratchBytesWanted(1, 32, 128, 8192, kSms), 0u);
  EXPECT_EQ(ScratchBytesWanted(8192, 32, 128, 8192, kSms), 0u);
}

TEST(CudaPagedAttentionArgs, HostKnownValuesAreInvalidArgument) {
  KvLayout layout{2, 2, 100, 16, 0};
  layout.block_stride_bytes = layout.MinBlockBytes(2);
  AttentionBatch batch;
  int dummy = 0;
  auto run = [&](const KvLayout& l, int32_t hq, int64_t tokens, int32_t layer) {
    return cuda::LaunchPagedAttention(&dummy, int64_t{hq} * l.head_dim, tokens, hq, batch, &dummy,
                                      l, layer, 1.0f, &dummy, nullptr, 0, nullptr);
  };
  absl::Status st = run(layout, 4, 3, 0);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(st.message()), HasSubstr("PagedAttention: head_dim 100"));
  layout.head_dim = 128;
  layout.block_stride_bytes = layout.MinBlockBytes(2);
  st = run(layout, 5, 3, 0);
  EXPECT_THAT(std::string(st.message()), HasSubstr("num_q_heads=5"));
  st = run(layout, 4, 3, 2);
  EXPECT_THAT(std::string(st.message()), HasSubstr("layer 2"));
  st = run(layout, 4, -1, 0);
  EXPECT_THAT(std::string(st.message()), HasSubstr("num_tokens=-1"));
  EXPECT_TRUE(run(layout, 4, 0, 0).ok());  // nothing to do, nothing launched
  st = run(layout, 4, 3, 0);               // empty batch metadata
  EXPECT_THAT(std::string(st.message()), HasSubstr("batch.num_seqs=0"));
}

}  // namespace
}  // namespace loraserve
