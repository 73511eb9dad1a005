// CPU backend: LoRA shrink/expand over segments of mixed ranks (4, 8, 16, 64,
// and a base-model segment), fused q,k,v slices with per-slice ranks, rank-rows
// scattered over shuffled "pages", against a naive double reference.
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
using ::loraserve::testing::DownloadF32;
using ::loraserve::testing::ExpectClose;
using ::loraserve::testing::MakeCpuBackend;
using ::loraserve::testing::PoisonedF32;
using ::loraserve::testing::RandomVector;
using ::loraserve::testing::Upload;
using ::loraserve::testing::UploadRaw;
using ::testing::HasSubstr;

constexpr int64_t kIn = 72;
constexpr int64_t kRowCapacity = 96;  // floats per pool row slot (>= every row length)

// Host view of one slice's weights (what an adapter file holds).
struct HostSlice {
  int32_t rank = 0;
  float scale = 0;
  std::vector<float> a;   // [rank, kIn]
  std::vector<float> bt;  // [rank, out]
};

class CpuLora : public ::testing::Test {
 protected:
  void SetUp() override {
    backend_ = MakeCpuBackend(3);
    // A pool of row slots handed out in shuffled order: rows of one adapter
    // land anywhere, in any order.
    slots_.resize(4096);
    std::iota(slots_.begin(), slots_.end(), 0);
    std::shuffle(slots_.begin(), slots_.end(), std::mt19937(7));
    auto pool = backend_->Allocate(slots_.size() * kRowCapacity * 4);
    ASSERT_TRUE(pool.ok());
    pool_ = std::move(*pool);
  }

  // Places `rows` ([n, len]) in free slots; returns their byte offsets.
  std::vector<int64_t> Place(const std::vector<float>& rows, int64_t n, int64_t len) {
    std::vector<int64_t> offsets;
    for (int64_t r = 0; r < n; ++r) {
      const int64_t slot = slots_.back();
      slots_.pop_back();
      const int64_t off = slot * kRowCapacity * 4;
      EXPECT_TRUE(backend_
                      ->UploadConverted(rows.data() + r * len, DType::kF32, len,
                                        pool_.bytes_at(off))
                      .ok());
      offsets.push_back(off);
    }
    return offsets;
  }

  HostSlice MakeSlice(int32_t rank, int64_t out, uint32_t seed) {
    HostSlice s;
    s.rank = rank;
    s.scale = rank == 0 ? 0.0f : 16.0f / static_cast<float>(rank);
    s.a = RandomVector(rank * kIn, seed, -0.5f, 0.5f);
    s.bt = RandomVector(rank * out, seed + 1, -0.5f, 0.5f);
    return s;
  }

  // Device LoraSlice table for host slices [segment][slice]; keeps offset tables alive.
  std::vector<LoraSlice> Describe(const std::vector<std::vector<HostSlice>>& segs,
                                  const std::vector<int64_t>& outs) {
    std::vector<LoraSlice> table;
    for (const auto& seg : segs) {
      for (size_t s = 0; s < seg.size(); ++s) {
        LoraSlice d;
        d.rank = seg[s].rank;
        d.scale = seg[s].scale;
        if (d.rank > 0) {
          offsets_.push_back(UploadRaw(*backend_, Place(seg[s].a, d.rank, kIn)));
          d.a_row_offsets = offsets_.back().as<int64_t>();
          offsets_.push_back(UploadRaw(*backend_, Place(seg[s].bt, d.rank, outs[s])));
          d.bt_row_offsets = offsets_.back().as<int64_t>();
        }
        table.push_back(d);
      }
    }
    return table;
  }

  std::unique_ptr<Backend> backend_;
  std::vector<int64_t> slots_;
  DeviceBuffer pool_;
  std::vector<DeviceBuffer> offsets_;
};

TEST_F(CpuLora, SlicedQkvSegmentsOfMixedRanks) {
  // Fused qkv of GQA 6/2 heads of 12: q 72, k 24, v 24 columns.
  const std::vector<int64_t> outs = {72, 24, 24};
  const int64_t y_cols = 120, tokens = 33;
  // Tokens 0-1: outside every segment. Then: rank 4 (5 tokens), base (1 token,
  // all slices rank 0), rank 16 with k at rank 0 (14 tokens, rank_pattern),
  // rank 64 decode (1 token), rank 8 (10 tokens; q 8, k 4, v 8).
  const std::vector<int32_t> seg_starts = {2, 7, 8, 22, 23, 33};
  const std::vector<std::array<int32_t, 3>> ranks = {
      {4, 4, 4}, {0, 0, 0}, {16, 0, 16}, {64, 64, 64}, {8, 4, 8}};
  std::vector<std::vector<HostSlice>> segs;
  int32_t max_rank = 0;
  for (size_t g = 0; g < ranks.size(); ++g) {
    segs.emplace_back();
    for (int s = 0; s < 3; ++s) {
      segs.back().push_back(MakeSlice(ranks[g][s], outs[s], 1000 + 10 * g + 2 * s));
      max_rank = std::max(max_rank, ranks[g][s]);
    }
  }
  const auto slices = Describe(segs, outs);
  auto dslices = UploadRaw(*backend_, slices);
  auto dstarts = UploadRaw(*backend_, seg_starts);
  LoraSegments lora{pool_.data(), 5, 3, dstarts.as<int32_t>(), dslices.as<LoraSlice>(),
                    max_rank};

  const auto x = RandomVector(tokens * kIn, 1);
  const auto y0 = RandomVector(tokens * y_cols, 2);
  auto dx = Upload(*backend_, x);
  auto dv = PoisonedF32(*backend_, tokens * 3 * max_rank);
  ASSERT_TRUE(backend_->LoraShrink(dx.data(), tokens, kIn, lora, dv.as<float>(), {}).ok());

  // Reference v and y in double.
  std::vector<double> v_ref(tokens * 3 * max_rank, std::nan(""));
  std::vector<double> y_ref(y0.begin(), y0.end());
  for (size_t g = 0; g < ranks.size(); ++g) {
    for (int32_t t = seg_starts[g]; t < seg_starts[g + 1]; ++t) {
      int64_t col = 0;
      for (int s = 0; s < 3; ++s) {
        const HostSlice& sl = segs[g][s];
        for (int32_t r = 0; r < sl.rank; ++r) {
          double acc = 0;
          for (int64_t i = 0; i < kIn; ++i) acc += double{x[t * kIn + i]} * sl.a[r * kIn + i];
          v_ref[(t * 3 + s) * max_rank + r] = acc;
        }
        for (int64_t j = 0; j < outs[s]; ++j) {
          double acc = 0;
          for (int32_t r = 0; r < sl.rank; ++r) {
            acc += v_ref[(t * 3 + s) * max_rank + r] * sl.bt[r * outs[s] + j];
          }
          y_ref[t * y_cols + col + j] += sl.scale * acc;
        }
        col += outs[s];
      }
    }
  }
  const auto v = DownloadF32(*backend_, dv, tokens * 3 * max_rank);
  double max_err = 0;
  for (size_t i = 0; i < v.size(); ++i) {
    if (std::isnan(v_ref[i])) {
      // Beyond a slice's rank, base tokens, tokens outside segments: untouched.
      ASSERT_TRUE(std::isnan(v[i])) << "v[" << i << "] written but outside every rank";
    } else {
      ASSERT_NEAR(v[i], v_ref[i], 1e-5) << i;
      max_err = std::max(max_err, std::fabs(v[i] - v_ref[i]));
    }
  }
  EXPECT_LT(max_err, 1e-5);

  auto dy = Upload(*backend_, y0);
  LoraSliceColumns cols{3, {0, 72, 96, 120}};
  ASSERT_TRUE(
      backend_->LoraExpand(dv.as<float>(), tokens, lora, cols, dy.data(), y_cols, {}).ok());
  const auto y = Download(*backend_, dy, tokens * y_cols);
  ExpectClose(y, y_ref, 1e-5, 1e-5, "expand");
  // Untouched rows are bitwise unchanged: tokens 0-1 and the base token 7.
  for (int64_t t : {0, 1, 7}) {
    for (int64_t j = 0; j < y_cols; ++j) ASSERT_EQ(y[t * y_cols + j], y0[t * y_cols + j]) << t;
  }
  // k columns of the segment with k at rank 0 are unchanged too.
  for (int64_t j = 72; j < 96; ++j) ASSERT_EQ(y[10 * y_cols + j], y0[10 * y_cols + j]);
}

TEST_F(CpuLora, SingleSliceDecodeBatch) {
  // o_proj-like: one slice, 7 decode tokens of 7 different adapters.
  const std::vector<int64_t> outs = {72};
  const std::vector<int32_t> ranks = {8, 4, 64, 16, 8, 4, 16};
  std::vector<std::vector<HostSlice>> segs;
  std::vector<int32_t> starts = {0};
  for (size_t g = 0; g < ranks.size(); ++g) {
    segs.push_back({MakeSlice(ranks[g], 72, 2000 + g)});
    starts.push_back(starts.back() + 1);
  }
  const auto slices = Describe(segs, outs);
  auto dslices = UploadRaw(*backend_, slices);
  auto dstarts = UploadRaw(*backend_, starts);
  LoraSegments lora{pool_.data(), 7, 1, dstarts.as<int32_t>(), dslices.as<LoraSlice>(), 64};
  const auto x = RandomVector(7 * kIn, 3);
  auto dx = Upload(*backend_, x);
  auto dv = PoisonedF32(*backend_, 7 * 64);
  auto dy = Upload(*backend_, std::vector<float>(7 * 72, 0.0f));
  ASSERT_TRUE(backend_->LoraShrink(dx.data(), 7, kIn, lora, dv.as<float>(), {}).ok());
  ASSERT_TRUE(backend_
                  ->LoraExpand(dv.as<float>(), 7, lora, LoraSliceColumns{1, {0, 72}}, dy.data(),
                               72, {})
                  .ok());
  std::vector<double> ref(7 * 72, 0.0);
  for (int t = 0; t < 7; ++t) {
    const HostSlice& sl = segs[t][0];
    std::vector<double> vt(sl.rank, 0.0);
    for (int r = 0; r < sl.rank; ++r) {
      for (int64_t i = 0; i < kIn; ++i) vt[r] += double{x[t * kIn + i]} * sl.a[r * kIn + i];
    }
    for (int j = 0; j < 72; ++j) {
      double acc = 0;
      for (int r = 0; r < sl.rank; ++r) acc += vt[r] * sl.bt[r * 72 + j];
      ref[t * 72 + j] = sl.scale * acc;
    }
  }
  ExpectClose(Download(*backend_, dy, 7 * 72), ref, 1e-5, 1e-5, "decode expand");
}

TEST_F(CpuLora, BadArgumentsAreInvalidArgument) {
  const std::vector<int64_t> outs = {72};
  auto slices = Describe({{MakeSlice(8, 72, 3000)}}, outs);
  const std::vector<int32_t> starts = {0, 3};
  auto dstarts = UploadRaw(*backend_, starts);
  auto dx = Upload(*backend_, RandomVector(3 * kIn, 4));
  auto dv = PoisonedF32(*backend_, 3 * 512);
  auto dy = Upload(*backend_, RandomVector(3 * 72, 5));
  auto shrink = [&](const std::vector<LoraSlice>& sl, int32_t max_rank, int64_t tokens) {
    auto ds = UploadRaw(*backend_, sl);
    LoraSegments lora{pool_.data(), 1, 1, dstarts.as<int32_t>(), ds.as<LoraSlice>(), max_rank};
    return backend_->LoraShrink(dx.data(), tokens, kIn, lora, dv.as<float>(), {});
  };
  EXPECT_TRUE(shrink(slices, 8, 3).ok());
  absl::Status st = shrink(slices, 4, 3);  // slice rank 8 > max_rank 4
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(st.message()), HasSubstr("LoraShrink: segment 0 slice 0 rank 8"));
  st = shrink(slices, 300, 3);
  EXPECT_THAT(std::string(st.message()), HasSubstr("max_rank=300 exceeds the supported maximum"));
  auto big = slices;
  big[0].rank = 300;
  st = shrink(big, 256, 3);
  EXPECT_THAT(std::string(st.message()), HasSubstr("rank 300"));
  st = shrink(slices, 8, 2);  // segment runs past num_tokens
  EXPECT_THAT(std::string(st.message()), HasSubstr("segment 0 token rows [0, 3)"));
  auto null_offsets = slices;
  null_offsets[0].a_row_offsets = nullptr;
  st = shrink(null_offsets, 8, 3);
  EXPECT_THAT(std::string(st.message()), HasSubstr("null row offsets"));

  auto ds = UploadRaw(*backend_, slices);
  LoraSegments lora{pool_.data(), 1, 1, dstarts.as<int32_t>(), ds.as<LoraSlice>(), 8};
  st = backend_->LoraExpand(dv.as<float>(), 3, lora, LoraSliceColumns{1, {0, 73}}, dy.data(), 72,
                            {});
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(st.message()), HasSubstr("LoraExpand: slice 0 columns [0, 73)"));
  st = backend_->LoraExpand(dv.as<float>(), 3, lora, LoraSliceColumns{2, {0, 36, 72}},
                            dy.data(), 72, {});
  EXPECT_THAT(std::string(st.message()), HasSubstr("cols.num_slices=2"));
  LoraSegments four = lora;
  four.num_slices = 4;
  st = backend_->LoraShrink(dx.data(), 3, kIn, four, dv.as<float>(), {});
  EXPECT_THAT(std::string(st.message()), HasSubstr("num_slices=4"));
}

}  // namespace
}  // namespace loraserve
