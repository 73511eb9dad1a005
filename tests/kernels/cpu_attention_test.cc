// CPU backend: WriteKv (the KvLayout formula, exactly) and PagedAttention on a
// mixed batch (fresh prefill, decode, chunked prefill after cached context,
// long prefill) with GQA 6/2, block_tokens 4 and shuffled block ids, against
// a naive double attention over dense K/V.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/cpu/cpu_backend.h"
#include "tests/kernels/cpu_test_util.h"

namespace loraserve {
namespace {

using ::loraserve::testing::Download;
using ::loraserve::testing::ExpectClose;
using ::loraserve::testing::MakeCpuBackend;
using ::loraserve::testing::Poisoned;
using ::loraserve::testing::RandomVector;
using ::loraserve::testing::Upload;
using ::loraserve::testing::UploadRaw;
using ::testing::HasSubstr;

constexpr int32_t kHq = 6, kHkv = 2, kD = 24, kLayers = 2, kBlockTokens = 4, kNumBlocks = 64;

// One sequence: dense K/V for all its positions, `cached` already in cache.
struct Seq {
  int32_t len;      // total tokens after this step
  int32_t cached;   // tokens whose K/V were written in earlier steps
  std::vector<float> k, v, q;  // k, v: [len, kHkv*kD]; q: [len, kHq*kD] (all positions)
  std::vector<int32_t> blocks;
};

class CpuAttention : public ::testing::Test {
 protected:
  void SetUp() override {
    backend_ = MakeCpuBackend(3);
    layout_ = KvLayout{kLayers, kHkv, kD, kBlockTokens, 0};
    layout_.block_stride_bytes = layout_.MinBlockBytes(4) + 256;  // pages may be larger
    auto cache = backend_->Allocate(kNumBlocks * layout_.block_stride_bytes);
    ASSERT_TRUE(cache.ok());
    cache_ = std::move(*cache);
    std::vector<float> nan(cache_.size() / 4, std::nanf(""));
    ASSERT_TRUE(backend_->CopyToDevice(cache_.data(), nan.data(), cache_.size(), {}).ok());
    free_.resize(kNumBlocks);
    std::iota(free_.begin(), free_.end(), 0);
    std::shuffle(free_.begin(), free_.end(), std::mt19937(42));
  }

  Seq MakeSeq(int32_t len, int32_t cached, uint32_t seed) {
    Seq s{len, cached, RandomVector(len * kHkv * kD, seed), RandomVector(len * kHkv * kD, seed + 1),
          RandomVector(len * kHq * kD, seed + 2, -2.0f, 2.0f), {}};
    const int32_t nblocks = (len + kBlockTokens - 1) / kBlockTokens;
    for (int32_t i = 0; i < nblocks; ++i) {
      s.blocks.push_back(free_.back());
      free_.pop_back();
    }
    return s;
  }

  // Writes positions [from, to) of `s` into the cache for `layer`.
  void Write(const Seq& s, int32_t from, int32_t to, int32_t layer) {
    std::vector<int64_t> slots;
    for (int32_t p = from; p < to; ++p) {
      slots.push_back(int64_t{s.blocks[p / kBlockTokens]} * kBlockTokens + p % kBlockTokens);
    }
    const int64_t w = kHkv * kD;
    auto dk = Upload(*backend_, std::vector<float>(s.k.begin() + from * w, s.k.begin() + to * w));
    auto dv = Upload(*backend_, std::vector<float>(s.v.begin() + from * w, s.v.begin() + to * w));
    auto ds = UploadRaw(*backend_, slots);
    ASSERT_TRUE(backend_
                    ->WriteKv(dk.data(), w, dv.data(), w, to - from, ds.as<int64_t>(),
                              cache_.data(), layout_, layer, {})
                    .ok());
  }

  // Attention output of the new tokens [cached, len) of each sequence, one call.
  std::vector<float> Run(const std::vector<const Seq*>& seqs, int32_t layer) {
    std::vector<int32_t> qstart = {0}, lens, tables;
    std::vector<float> q;
    int32_t max_blocks = 0, max_len = 0;
    for (const Seq* s : seqs) max_blocks = std::max<int32_t>(max_blocks, s->blocks.size());
    for (const Seq* s : seqs) {
      qstart.push_back(qstart.back() + (s->len - s->cached));
      lens.push_back(s->len);
      max_len = std::max(max_len, s->len);
      std::vector<int32_t> row(max_blocks, -7);  // padding never read
      std::copy(s->blocks.begin(), s->blocks.end(), row.begin());
      tables.insert(tables.end(), row.begin(), row.end());
      q.insert(q.end(), s->q.begin() + int64_t{s->cached} * kHq * kD, s->q.end());
    }
    const int64_t tokens = qstart.back();
    auto dq = Upload(*backend_, q);
    auto dqs = UploadRaw(*backend_, qstart);
    auto dl = UploadRaw(*backend_, lens);
    auto dt = UploadRaw(*backend_, tables);
    AttentionBatch batch{static_cast<int32_t>(seqs.size()), dqs.as<int32_t>(), dl.as<int32_t>(),
                         dt.as<int32_t>(), max_blocks, max_len};
    auto dout = Poisoned(*backend_, tokens * kHq * kD);
    const absl::Status st =
        backend_->PagedAttention(dq.data(), kHq * kD, tokens, kHq, batch, cache_.data(), layout_,
                                 layer, scale_, dout.data(), {});
    EXPECT_TRUE(st.ok()) << st;
    return Download(*backend_, dout, tokens * kHq * kD);
  }

  // Naive causal GQA attention of positions [cached, len) over dense K/V.
  std::vector<double> Reference(const Seq& s) const {
    std::vector<double> out;
    for (int32_t p = s.cached; p < s.len; ++p) {
      for (int32_t h = 0; h < kHq; ++h) {
        const int32_t kvh = h / (kHq / kHkv);
        std::vector<double> sc(p + 1);
        double mx = -1e300;
        for (int32_t j = 0; j <= p; ++j) {
          double dot = 0;
          for (int32_t i = 0; i < kD; ++i) {
            dot += double{s.q[(int64_t{p} * kHq + h) * kD + i]} *
                   s.k[(int64_t{j} * kHkv + kvh) * kD + i];
          }
          sc[j] = dot * scale_;
          mx = std::max(mx, sc[j]);
        }
        double sum = 0;
        for (double& x : sc) sum += (x = std::exp(x - mx));
        for (int32_t i = 0; i < kD; ++i) {
          double acc = 0;
          for (int32_t j = 0; j <= p; ++j) acc += sc[j] * s.v[(int64_t{j} * kHkv + kvh) * kD + i];
          out.push_back(acc / sum);
        }
      }
    }
    return out;
  }

  std::unique_ptr<Backend> backend_;
  KvLayout layout_;
  DeviceBuffer cache_;
  std::vector<int32_t> free_;
  float scale_ = 1.0f / std::sqrt(static_cast<float>(kD));
};

TEST_F(CpuAttention, WriteKvFollowsTheLayoutFormula) {
  Seq s = MakeSeq(7, 0, 100);
  Write(s, 0, 7, 1);
  std::vector<float> host(cache_.size() / 4);
  ASSERT_TRUE(backend_->CopyToHost(host.data(), cache_.data(), cache_.size(), {}).ok());
  for (int32_t p = 0; p < 7; ++p) {
    for (int32_t kv = 0; kv < 2; ++kv) {
      for (int32_t h = 0; h < kHkv; ++h) {
        for (int32_t d = 0; d < kD; ++d) {
          const int64_t b = s.blocks[p / kBlockTokens], slot = p % kBlockTokens;
          // The formula of kernels/kv_layout.h, spelled out.
          const int64_t byte = b * layout_.block_stride_bytes +
                               ((((1 * 2 + kv) * kBlockTokens + slot) * kHkv + h) * kD + d) * 4;
          const auto& src = kv == 0 ? s.k : s.v;
          ASSERT_EQ(host[byte / 4], src[(int64_t{p} * kHkv + h) * kD + d]);
        }
      }
    }
  }
  // Layer 0 of the same blocks is still untouched.
  const int64_t b0 = s.blocks[0];
  EXPECT_TRUE(std::isnan(host[b0 * layout_.block_stride_bytes / 4]));
}

TEST_F(CpuAttention, MixedBatchMatchesNaiveReference) {
  // Fresh 7-token prefill, a decode after 12 cached, a 5-token chunk after 9
  // cached, a 33-token prefill, and a 1-token prompt.
  std::vector<Seq> seqs;
  seqs.push_back(MakeSeq(7, 0, 200));
  seqs.push_back(MakeSeq(13, 12, 300));
  seqs.push_back(MakeSeq(14, 9, 400));
  seqs.push_back(MakeSeq(33, 0, 500));
  seqs.push_back(MakeSeq(1, 0, 600));
  for (const Seq& s : seqs) {
    for (int32_t layer = 0; layer < kLayers; ++layer) Write(s, 0, s.len, layer);
  }
  std::vector<const Seq*> ptrs;
  std::vector<double> ref;
  for (const Seq& s : seqs) {
    ptrs.push_back(&s);
    const auto r = Reference(s);
    ref.insert(ref.end(), r.begin(), r.end());
  }
  ExpectClose(Run(ptrs, 1), ref, 2e-6, 1e-5, "attention");
}

TEST_F(CpuAttention, ChunkedPrefillEqualsFullPrefill) {
  Seq s = MakeSeq(14, 0, 700);
  Write(s, 0, s.len, 0);
  const auto full = Run({&s}, 0);  // all 14 positions at once
  // The same sequence as three steps: 6 tokens, 5 more, then 3 more.
  std::vector<float> chunked;
  for (auto [cached, len] : {std::pair{0, 6}, std::pair{6, 11}, std::pair{11, 14}}) {
    Seq step = s;
    step.cached = cached;
    step.len = len;
    const auto out = Run({&step}, 0);
    chunked.insert(chunked.end(), out.begin(), out.end());
  }
  ASSERT_EQ(chunked.size(), full.size());
  for (size_t i = 0; i < full.size(); ++i) ASSERT_EQ(chunked[i], full[i]) << i;
}

TEST_F(CpuAttention, BadBatchesAreInvalidArgument) {
  Seq s = MakeSeq(5, 0, 800);
  Write(s, 0, 5, 0);
  auto dq = Poisoned(*backend_, 5 * kHq * kD);
  auto dout = Poisoned(*backend_, 5 * kHq * kD);
  const std::vector<int32_t> qstart = {0, 5}, lens = {5}, short_lens = {4};
  auto dqs = UploadRaw(*backend_, qstart);
  auto dl = UploadRaw(*backend_, lens);
  auto dsl = UploadRaw(*backend_, short_lens);
  auto dt = UploadRaw(*backend_, s.blocks);
  AttentionBatch batch{1, dqs.as<int32_t>(), dl.as<int32_t>(), dt.as<int32_t>(),
                       static_cast<int32_t>(s.blocks.size()), 5};
  auto run = [&](int32_t hq, const AttentionBatch& b, int64_t stride) {
    return backend_->PagedAttention(dq.data(), stride, 5, hq, b, cache_.data(), layout_, 0,
                                    scale_, dout.data(), {});
  };
  EXPECT_TRUE(run(kHq, batch, kHq * kD).ok());
  absl::Status st = run(5, batch, kHq * kD);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(st.message()), HasSubstr("num_q_heads=5"));
  st = run(kHq, batch, kHq * kD - 1);
  EXPECT_THAT(std::string(st.message()), HasSubstr("q_row_stride"));
  AttentionBatch short_batch = batch;
  short_batch.seq_lens = dsl.as<int32_t>();  // fewer tokens than the query
  st = run(kHq, short_batch, kHq * kD);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(st.message()), HasSubstr("sequence 0"));
  AttentionBatch few_blocks = batch;
  few_blocks.max_blocks_per_seq = 1;
  st = run(kHq, few_blocks, kHq * kD);
  EXPECT_THAT(std::string(st.message()), HasSubstr("max_blocks_per_seq=1"));
  KvLayout bad = layout_;
  bad.block_stride_bytes = 16;
  st = backend_->PagedAttention(dq.data(), kHq * kD, 5, kHq, batch, cache_.data(), bad, 0,
                                scale_, dout.data(), {});
  EXPECT_THAT(std::string(st.message()), HasSubstr("block_stride_bytes=16"));
}

}  // namespace
}  // namespace loraserve
