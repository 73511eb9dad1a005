// CUDA LoRA shrink/expand (kernels/cuda/cuda_lora.h) against the CPU twins on
// the same bf16-rounded inputs: batches of 1, 3, 7, 33, 150 tokens; in 1000
// and 4100 (not a multiple of 8: scalar paths); ranks 4..256 mixed across
// segments and slices (some slices rank 0); 1, 2 and 3 slices of different
// widths; rank-rows at shuffled offsets in one pool, 1 row in 6 only 2-byte
// aligned; tokens outside every segment. Every case runs the BGMV kernel, the
// SGMV kernel and the automatic choice.
//
// Tolerances (u = 2^-24):
//  - shrink: both sides are fp32 dot products of length `in` in different
//    orders, each within in*u*sum|x a| of the exact value, so
//    |gpu - cpu| <= 2 * in * u * sum_k |x_k a_k|.
//  - expand: the GPU rounds the result to bf16 (<= 2^-9 relative) after an
//    fp32 sum over the rank; allowed 2^-8 |cpu| + 4 (r + 2) u (|scale| sum|v b| + |y0|).
// Entries the ops must not touch (v past a rank, rows outside segments, y
// columns of rank-0 slices and past the slices) are compared bit for bit.
#include <algorithm>
#include <cmath>
#include <memory>
#include <numeric>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/cuda/cuda_lora.h"
#include "kernels/cuda/cuda_lora_internal.h"
#include "tests/kernels/cpu_test_util.h"
#include "tests/kernels/cuda/cuda_kernel_test_util.h"

namespace loraserve {
namespace {

using ::loraserve::cuda::lora_internal::ChooseLoraKernel;
using ::loraserve::cuda::lora_internal::LoraKernel;
using ::loraserve::testing::DeviceArray;
using ::loraserve::testing::F32Bits;
using ::loraserve::testing::MakeCpuBackend;
using ::loraserve::testing::RandomVector;
using ::loraserve::testing::RoundToBf16;
using ::loraserve::testing::ToBf16Bits;
using ::testing::HasSubstr;

constexpr double kU = 1.0 / (1 << 24);

struct LoraCase {
  std::string name;
  int64_t tokens;
  int64_t in;
  std::vector<int64_t> outs;                // width of each slice
  std::vector<int32_t> seg_starts;          // [segments + 1]
  std::vector<std::vector<int32_t>> ranks;  // [segment][slice]
  LoraKernel expected_auto;
};

void PrintTo(const LoraCase& c, std::ostream* os) { *os << c.name; }

struct HostSlice {
  int32_t rank = 0;
  float scale = 0.0f;
  std::vector<float> a;   // [rank, in]
  std::vector<float> bt;  // [rank, out]
};

class LoraRig {
 public:
  explicit LoraRig(const LoraCase& c) : c_(c), rng_(17), cpu_(MakeCpuBackend(4)) {}

  void Prepare() {
    num_slices_ = static_cast<int32_t>(c_.outs.size());
    num_segments_ = static_cast<int32_t>(c_.seg_starts.size()) - 1;
    max_rank_ = 0;
    for (const auto& r : c_.ranks) max_rank_ = std::max(max_rank_, *std::max_element(r.begin(), r.end()));
    cols_.num_slices = num_slices_;
    cols_.offsets[0] = 0;
    for (int32_t s = 0; s < num_slices_; ++s) cols_.offsets[s + 1] = cols_.offsets[s] + c_.outs[s];
    y_cols_ = cols_.offsets[num_slices_] + 5;  // columns past the slices stay untouched

    // Weights, rows collected for placement.
    struct Row {
      const float* data;
      int64_t len;
      int64_t* gpu_off;
      int64_t* cpu_off;
    };
    std::vector<Row> rows;
    slices_.resize(num_segments_ * num_slices_);
    gpu_a_off_.resize(slices_.size());
    gpu_bt_off_.resize(slices_.size());
    cpu_a_off_.resize(slices_.size());
    cpu_bt_off_.resize(slices_.size());
    for (int32_t g = 0; g < num_segments_; ++g) {
      for (int32_t s = 0; s < num_slices_; ++s) {
        const size_t i = g * num_slices_ + s;
        HostSlice& h = slices_[i];
        h.rank = c_.ranks[g][s];
        h.scale = h.rank == 0 ? 0.0f : 16.0f / static_cast<float>(h.rank);
        h.a = RandomVector(h.rank * c_.in, rng_(), -0.5f, 0.5f);
        h.bt = RandomVector(h.rank * c_.outs[s], rng_(), -0.5f, 0.5f);
        RoundToBf16(h.a);
        RoundToBf16(h.bt);
        gpu_a_off_[i].resize(h.rank);
        gpu_bt_off_[i].resize(h.rank);
        cpu_a_off_[i].resize(h.rank);
        cpu_bt_off_[i].resize(h.rank);
        for (int32_t r = 0; r < h.rank; ++r) {
          rows.push_back({h.a.data() + r * c_.in, c_.in, &gpu_a_off_[i][r], &cpu_a_off_[i][r]});
          rows.push_back({h.bt.data() + r * c_.outs[s], c_.outs[s], &gpu_bt_off_[i][r],
                          &cpu_bt_off_[i][r]});
        }
      }
    }
    // Place rows in shuffled order with random gaps; 1 in 6 only 2-byte aligned.
    std::shuffle(rows.begin(), rows.end(), rng_);
    std::vector<uint16_t> gpu_pool;
    std::vector<float> cpu_pool;
    for (const Row& row : rows) {
      size_t off = (gpu_pool.size() + 7) / 8 * 8 + 8 * (rng_() % 4);  // 16-byte aligned
      if (rng_() % 6 == 0) off += 1 + rng_() % 7;                    // 2-byte aligned only
      gpu_pool.resize(off, 0xFFFF);
      *row.gpu_off = static_cast<int64_t>(off * 2);
      const auto bits = ToBf16Bits(std::vector<float>(row.data, row.data + row.len));
      gpu_pool.insert(gpu_pool.end(), bits.begin(), bits.end());
      *row.cpu_off = static_cast<int64_t>(cpu_pool.size() * 4);
      cpu_pool.insert(cpu_pool.end(), row.data, row.data + row.len);
    }
    gpu_pool.resize(gpu_pool.size() + 64, 0xFFFF);
    cpu_pool.resize(cpu_pool.size() + 1, 0.0f);
    gpu_pool_ = std::make_unique<DeviceArray<uint16_t>>(gpu_pool);
    cpu_pool_ = testing::UploadRaw(*cpu_, cpu_pool);

    // Slice tables pointing at per-slice offset arrays.
    std::vector<LoraSlice> gpu_table, cpu_table;
    for (size_t i = 0; i < slices_.size(); ++i) {
      LoraSlice gs, cs;
      gs.rank = cs.rank = slices_[i].rank;
      gs.scale = cs.scale = slices_[i].scale;
      if (slices_[i].rank > 0) {
        gpu_offsets_.push_back(std::make_unique<DeviceArray<int64_t>>(gpu_a_off_[i]));
        gs.a_row_offsets = gpu_offsets_.back()->get();
        gpu_offsets_.push_back(std::make_unique<DeviceArray<int64_t>>(gpu_bt_off_[i]));
        gs.bt_row_offsets = gpu_offsets_.back()->get();
        cpu_offsets_.push_back(testing::UploadRaw(*cpu_, cpu_a_off_[i]));
        cs.a_row_offsets = cpu_offsets_.back().as<int64_t>();
        cpu_offsets_.push_back(testing::UploadRaw(*cpu_, cpu_bt_off_[i]));
        cs.bt_row_offsets = cpu_offsets_.back().as<int64_t>();
      }
      gpu_table.push_back(gs);
      cpu_table.push_back(cs);
    }
    gpu_slices_ = std::make_unique<DeviceArray<LoraSlice>>(gpu_table);
    gpu_starts_ = std::make_unique<DeviceArray<int32_t>>(c_.seg_starts);
    cpu_slices_ = testing::UploadRaw(*cpu_, cpu_table);
    cpu_starts_ = testing::UploadRaw(*cpu_, c_.seg_starts);

    x_ = RandomVector(c_.tokens * c_.in, rng_());
    RoundToBf16(x_);
    y0_ = RandomVector(c_.tokens * y_cols_, rng_(), -2.0f, 2.0f);
    RoundToBf16(y0_);

    // CPU reference: v (NaN where untouched) and y.
    auto cx = testing::Upload(*cpu_, x_);
    auto cv = testing::PoisonedF32(*cpu_, v_size());
    ASSERT_TRUE(cpu_->LoraShrink(cx.data(), c_.tokens, c_.in, CpuSegments(), cv.as<float>(), {}).ok());
    cpu_v_ = testing::DownloadF32(*cpu_, cv, v_size());
    auto cy = testing::Upload(*cpu_, y0_);
    ASSERT_TRUE(cpu_->LoraExpand(cv.as<float>(), c_.tokens, CpuSegments(), cols_, cy.data(),
                                 y_cols_, {})
                    .ok());
    cpu_y_ = testing::Download(*cpu_, cy, c_.tokens * y_cols_);
  }

  size_t v_size() const { return static_cast<size_t>(c_.tokens * num_slices_ * max_rank_); }

  LoraSegments CpuSegments() const {
    return LoraSegments{cpu_pool_.data(), num_segments_, num_slices_, cpu_starts_.as<int32_t>(),
                        cpu_slices_.as<LoraSlice>(), max_rank_};
  }
  LoraSegments GpuSegments() const {
    return LoraSegments{gpu_pool_->get(), num_segments_, num_slices_, gpu_starts_->get(),
                        gpu_slices_->get(), max_rank_};
  }

  // Segment of token t, -1 outside every segment.
  int32_t SegmentOf(int64_t t) const {
    for (int32_t g = 0; g < num_segments_; ++g) {
      if (c_.seg_starts[g] <= t && t < c_.seg_starts[g + 1]) return g;
    }
    return -1;
  }

  void CheckShrink(LoraKernel kernel, const std::string& what) {
    DeviceArray<uint16_t> x(ToBf16Bits(x_));
    DeviceArray<float> v(v_size());
    v.Fill(0xFF);
    const absl::Status st = cuda::lora_internal::LaunchLoraShrinkWith(
        kernel, x.get(), c_.tokens, c_.in, GpuSegments(), v.get(), nullptr);
    ASSERT_TRUE(st.ok()) << st;
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    const std::vector<float> got = v.Download();
    for (int64_t t = 0; t < c_.tokens; ++t) {
      const int32_t g = SegmentOf(t);
      for (int32_t s = 0; s < num_slices_; ++s) {
        const HostSlice* h = g >= 0 ? &slices_[g * num_slices_ + s] : nullptr;
        for (int32_t r = 0; r < max_rank_; ++r) {
          const size_t i = (t * num_slices_ + s) * max_rank_ + r;
          if (h == nullptr || r >= h->rank) {
            ASSERT_EQ(F32Bits(got[i]), 0xFFFFFFFFu) << what << ": v[" << t << ", " << s << ", "
                                                    << r << "] written outside every rank";
            continue;
          }
          double mag = 0;
          for (int64_t k = 0; k < c_.in; ++k) {
            mag += std::fabs(double{x_[t * c_.in + k]} * h->a[r * c_.in + k]);
          }
          const double tol = 2.0 * c_.in * kU * mag + 1e-30;
          ASSERT_TRUE(std::isfinite(got[i]) && std::fabs(double{got[i]} - cpu_v_[i]) <= tol)
              << what << ": v[" << t << ", " << s << ", " << r << "] gpu " << got[i] << " cpu "
              << cpu_v_[i] << " tol " << tol;
        }
      }
    }
  }

  // Expand on the CPU's v (NaN where the ops must not read it).
  void CheckExpand(LoraKernel kernel, const std::string& what) {
    DeviceArray<float> v(cpu_v_);
    const std::vector<uint16_t> y0_bits = ToBf16Bits(y0_);
    DeviceArray<uint16_t> y(y0_bits);
    const absl::Status st = cuda::lora_internal::LaunchLoraExpandWith(
        kernel, v.get(), c_.tokens, GpuSegments(), cols_, y.get(), y_cols_, nullptr);
    ASSERT_TRUE(st.ok()) << st;
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    const std::vector<uint16_t> got = y.Download();
    for (int64_t t = 0; t < c_.tokens; ++t) {
      const int32_t g = SegmentOf(t);
      for (int64_t col = 0; col < y_cols_; ++col) {
        const size_t i = t * y_cols_ + col;
        int32_t s = 0;
        while (s < num_slices_ && col >= cols_.offsets[s + 1]) ++s;
        const HostSlice* h = (g >= 0 && s < num_slices_) ? &slices_[g * num_slices_ + s] : nullptr;
        if (h == nullptr || h->rank == 0) {
          ASSERT_EQ(got[i], y0_bits[i]) << what << ": y[" << t << ", " << col << "] changed";
          continue;
        }
        const int64_t j = col - cols_.offsets[s];
        double mag = 0;
        for (int32_t r = 0; r < h->rank; ++r) {
          mag += std::fabs(double{cpu_v_[(t * num_slices_ + s) * max_rank_ + r]} *
                           h->bt[r * c_.outs[s] + j]);
        }
        const double tol = std::ldexp(std::fabs(double{cpu_y_[i]}), -8) +
                           4.0 * (h->rank + 2) * kU * (std::fabs(h->scale) * mag + std::fabs(y0_[i]));
        const float gv = Bf16ToFloat(got[i]);
        ASSERT_TRUE(std::isfinite(gv) && std::fabs(double{gv} - cpu_y_[i]) <= tol)
            << what << ": y[" << t << ", " << col << "] gpu " << gv << " cpu " << cpu_y_[i]
            << " tol " << tol;
      }
    }
  }

 private:
  LoraCase c_;
  std::mt19937 rng_;
  std::unique_ptr<Backend> cpu_;
  int32_t num_slices_ = 0, num_segments_ = 0, max_rank_ = 0;
  LoraSliceColumns cols_;
  int64_t y_cols_ = 0;
  std::vector<HostSlice> slices_;
  std::vector<std::vector<int64_t>> gpu_a_off_, gpu_bt_off_, cpu_a_off_, cpu_bt_off_;
  std::unique_ptr<DeviceArray<uint16_t>> gpu_pool_;
  std::vector<std::unique_ptr<DeviceArray<int64_t>>> gpu_offsets_;
  std::unique_ptr<DeviceArray<LoraSlice>> gpu_slices_;
  std::unique_ptr<DeviceArray<int32_t>> gpu_starts_;
  DeviceBuffer cpu_pool_, cpu_slices_, cpu_starts_;
  std::vector<DeviceBuffer> cpu_offsets_;
  std::vector<float> x_, y0_, cpu_v_, cpu_y_;
};

std::vector<LoraCase> Cases() {
  const auto B = LoraKernel::kBgmv;
  const auto S = LoraKernel::kSgmv;
  return {
      {"Batch1Decode", 1, 1000, {1000}, {0, 1}, {{16}}, B},
      {"Batch3QkvIn4100", 3, 4100, {320, 64, 68}, {0, 1, 3}, {{8, 0, 8}, {4, 4, 4}}, B},
      {"Batch7DecodesTokenOutside", 7, 1000, {1000}, {1, 2, 3, 4, 5, 6, 7},
       {{8}, {4}, {64}, {16}, {8}, {4}}, B},
      {"Batch33MixedQkvIn4100", 33, 4100, {640, 128, 136}, {2, 7, 8, 22, 23, 33},
       {{4, 4, 4}, {0, 0, 0}, {16, 0, 16}, {64, 64, 64}, {8, 4, 8}}, B},
      {"Batch33OneLongSegment", 33, 1000, {1000, 1000}, {0, 30}, {{64, 16}}, S},
      {"Prefill150ThreeSegments", 150, 1000, {512, 64, 64}, {0, 70, 71, 150},
       {{16, 16, 16}, {8, 0, 8}, {64, 32, 4}}, S},
      {"Rank256", 9, 4096, {4096}, {0, 9}, {{256}}, S},
  };
}

class CudaLoraKernels : public ::testing::TestWithParam<LoraCase> {
 protected:
  void SetUp() override { LORASERVE_SKIP_WITHOUT_CUDA(); }
};

TEST_P(CudaLoraKernels, ShrinkAndExpandMatchCpuWithBothKernels) {
  LoraRig rig(GetParam());
  ASSERT_NO_FATAL_FAILURE(rig.Prepare());
  for (auto [kernel, name] : {std::pair{LoraKernel::kBgmv, "bgmv"}, std::pair{LoraKernel::kSgmv, "sgmv"},
                              std::pair{LoraKernel::kAuto, "auto"}}) {
    SCOPED_TRACE(name);
    ASSERT_NO_FATAL_FAILURE(rig.CheckShrink(kernel, name));
    ASSERT_NO_FATAL_FAILURE(rig.CheckExpand(kernel, name));
  }
}

INSTANTIATE_TEST_SUITE_P(Batches, CudaLoraKernels, ::testing::ValuesIn(Cases()),
                         [](const ::testing::TestParamInfo<LoraCase>& info) {
                           return info.param.name;
                         });

// ----------------------------------------------------------- no device needed

TEST(CudaLoraChoice, ShapesPickTheIntendedKernel) {
  for (const LoraCase& c : Cases()) {
    EXPECT_EQ(ChooseLoraKernel(c.tokens, static_cast<int32_t>(c.seg_starts.size()) - 1),
              c.expected_auto)
        << c.name;
  }
  EXPECT_EQ(ChooseLoraKernel(64, 64), LoraKernel::kBgmv);   // decode: one token per adapter
  EXPECT_EQ(ChooseLoraKernel(4096, 4), LoraKernel::kSgmv);  // prefill
}

TEST(CudaLoraArgs, HostKnownValuesAreInvalidArgument) {
  int dummy = 0;
  LoraSegments lora{&dummy, 1, 1, reinterpret_cast<const int32_t*>(&dummy),
                    reinterpret_cast<const LoraSlice*>(&dummy), 8};
  float v = 0;
  auto shrink = [&](const LoraSegments& l, int64_t tokens) {
    return cuda::LaunchLoraShrink(&dummy, tokens, 64, l, &v, nullptr);
  };
  LoraSegments four = lora;
  four.num_slices = 4;
  absl::Status st = shrink(four, 3);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(st.message()), HasSubstr("LoraShrink: lora.num_slices=4"));
  LoraSegments big = lora;
  big.max_rank = 300;
  EXPECT_THAT(std::string(shrink(big, 3).message()), HasSubstr("LoraShrink: lora.max_rank=300"));
  EXPECT_THAT(std::string(shrink(lora, -1).message()), HasSubstr("LoraShrink: num_tokens=-1"));
  EXPECT_THAT(std::string(cuda::LaunchLoraShrink(&dummy, 3, 0, lora, &v, nullptr).message()),
              HasSubstr("in=0"));

  // No segments: returns at once, nothing launched, even with null pointers.
  LoraSegments none{nullptr, 0, 3, nullptr, nullptr, 0};
  EXPECT_TRUE(cuda::LaunchLoraShrink(nullptr, 5, 64, none, nullptr, nullptr).ok());
  LoraSliceColumns cols3{3, {0, 8, 16, 24}};
  EXPECT_TRUE(cuda::LaunchLoraExpand(nullptr, 5, none, cols3, nullptr, 24, nullptr).ok());

  LoraSliceColumns bad{1, {0, 73}};
  st = cuda::LaunchLoraExpand(&v, 3, lora, bad, &dummy, 72, nullptr);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(st.message()), HasSubstr("LoraExpand: slice 0 columns [0, 73)"));
  st = cuda::LaunchLoraExpand(&v, 3, lora, cols3, &dummy, 24, nullptr);
  EXPECT_THAT(std::string(st.message()), HasSubstr("cols.num_slices=3"));
  EXPECT_THAT(std::string(cuda::LaunchLoraExpand(&v, 3, big, LoraSliceColumns{1, {0, 8}}, &dummy,
                                                 8, nullptr)
                              .message()),
              HasSubstr("LoraExpand: lora.max_rank=300"));
}

}  // namespace
}  // namespace loraserve
