// The rig of the CUDA LoRA kernel tests (cuda_lora_kernels_test.cc,
// cuda_lora_tc_kernels_test.cc): one LoraCase becomes random bf16-rounded
// weights placed as rank-rows at shuffled, partly (or entirely) only 2-byte
// aligned offsets of one pool, x, y0, and the CPU twin's v and y
// (CpuBackend::LoraShrink / LoraExpand, NaN-poisoned where untouched). Then
// CheckShrink / CheckExpand run one CUDA kernel (LaunchLoraShrinkWith /
// LaunchLoraExpandWith, kernels/cuda/cuda_lora_internal.h) on the same values
// and compare every entry of v and y.
//
// Tolerances (u = 2^-24; S = the sum of |products| of the entry):
//  - shrink, FFMA kernels: both sides are fp32 dot products of length `in` in
//    different orders, each within in*u*S of the exact value: 2*in*u*S.
//  - shrink, tensor cores: the CPU's in*u*S plus the kernel's bound
//    (40*ceil(in/16) + k_splits) u S (kernels/cuda/cuda_lora_shrink_tc.cu),
//    doubled: 2 * (in + 40*ceil(in/16) + 8) u S.
//  - expand: the GPU rounds the result to bf16 (<= 2^-9 relative) after an
//    fp32 sum over the rank; allowed 2^-8 |cpu| + 4 (r + 2 + e) u (|scale| S + |y0|)
//    with e = 0 for the FFMA kernels and e = 41*ceil(r/16) + 1 for the
//    tensor cores (kernels/cuda/cuda_lora_expand_tc.cu; v is split exactly).
// Entries the ops must not touch (v past a rank, rows outside segments, y
// columns of rank-0 slices and past the slices) are compared bit for bit.
// Tests only; one rig per test.
#pragma once

#include <algorithm>
#include <cmath>
#include <memory>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cuda/cuda_lora.h"
#include "kernels/cuda/cuda_lora_internal.h"
#include "tests/kernels/cpu_test_util.h"
#include "tests/kernels/cuda/cuda_kernel_test_util.h"

namespace loraserve::testing {

struct LoraCase {
  std::string name;
  int64_t tokens;
  int64_t in;
  std::vector<int64_t> outs;                // width of each slice
  std::vector<int32_t> seg_starts;          // [segments + 1]
  std::vector<std::vector<int32_t>> ranks;  // [segment][slice]
  cuda::lora_internal::LoraKernel expected_auto;
  int misaligned_one_in = 6;   // 1 row in this many is only 2-byte aligned (1: every row)
  bool misaligned_io = false;  // x, y one bf16 and v one float past an aligned address
};

inline void PrintTo(const LoraCase& c, std::ostream* os) { *os << c.name; }

class LoraRig {
 public:
  using LoraKernel = cuda::lora_internal::LoraKernel;

  explicit LoraRig(const LoraCase& c) : c_(c), rng_(17), cpu_(MakeCpuBackend(4)) {}

  void Prepare() {
    num_slices_ = static_cast<int32_t>(c_.outs.size());
    num_segments_ = static_cast<int32_t>(c_.seg_starts.size()) - 1;
    max_rank_ = 0;
    for (const auto& r : c_.ranks) {
      max_rank_ = std::max(max_rank_, *std::max_element(r.begin(), r.end()));
    }
    cols_.num_slices = num_slices_;
    cols_.offsets[0] = 0;
    for (int32_t s = 0; s < num_slices_; ++s) cols_.offsets[s + 1] = cols_.offsets[s] + c_.outs[s];
    y_cols_ = cols_.offsets[num_slices_] + 5;  // columns past the slices stay untouched
    io_ = c_.misaligned_io ? 1 : 0;

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
    // Place rows in shuffled order with random gaps; 1 in misaligned_one_in
    // only 2-byte aligned.
    std::shuffle(rows.begin(), rows.end(), rng_);
    std::vector<uint16_t> gpu_pool;
    std::vector<float> cpu_pool;
    for (const Row& row : rows) {
      size_t off = (gpu_pool.size() + 7) / 8 * 8 + 8 * (rng_() % 4);  // 16-byte aligned
      if (rng_() % c_.misaligned_one_in == 0) off += 1 + rng_() % 7;  // 2-byte aligned only
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
    cpu_pool_ = UploadRaw(*cpu_, cpu_pool);

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
        cpu_offsets_.push_back(UploadRaw(*cpu_, cpu_a_off_[i]));
        cs.a_row_offsets = cpu_offsets_.back().as<int64_t>();
        cpu_offsets_.push_back(UploadRaw(*cpu_, cpu_bt_off_[i]));
        cs.bt_row_offsets = cpu_offsets_.back().as<int64_t>();
      }
      gpu_table.push_back(gs);
      cpu_table.push_back(cs);
    }
    gpu_slices_ = std::make_unique<DeviceArray<LoraSlice>>(gpu_table);
    gpu_starts_ = std::make_unique<DeviceArray<int32_t>>(c_.seg_starts);
    cpu_slices_ = UploadRaw(*cpu_, cpu_table);
    cpu_starts_ = UploadRaw(*cpu_, c_.seg_starts);

    x_ = RandomVector(c_.tokens * c_.in, rng_());
    RoundToBf16(x_);
    y0_ = RandomVector(c_.tokens * y_cols_, rng_(), -2.0f, 2.0f);
    RoundToBf16(y0_);

    // CPU reference: v (NaN where untouched) and y.
    auto cx = Upload(*cpu_, x_);
    auto cv = PoisonedF32(*cpu_, v_size());
    ASSERT_TRUE(
        cpu_->LoraShrink(cx.data(), c_.tokens, c_.in, CpuSegments(), cv.as<float>(), {}).ok());
    cpu_v_ = DownloadF32(*cpu_, cv, v_size());
    auto cy = Upload(*cpu_, y0_);
    ASSERT_TRUE(cpu_->LoraExpand(cv.as<float>(), c_.tokens, CpuSegments(), cols_, cy.data(),
                                 y_cols_, {})
                    .ok());
    cpu_y_ = Download(*cpu_, cy, c_.tokens * y_cols_);
    ComputeMagnitudes();
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

  // The kernel a launch with `kernel` runs (kAuto resolved as the launchers do).
  LoraKernel Resolved(LoraKernel kernel) const {
    return kernel == LoraKernel::kAuto
               ? cuda::lora_internal::ChooseLoraKernel(c_.tokens, num_segments_)
               : kernel;
  }

  // tc_k_splits: passed to LaunchLoraShrinkWith (kSgmvTc only; 0 = automatic).
  void CheckShrink(LoraKernel kernel, const std::string& what, int32_t tc_k_splits = 0) {
    const bool tc = Resolved(kernel) == LoraKernel::kSgmvTc;
    DeviceArray<uint16_t> x(x_.size() + io_);
    x.Upload(Pad(ToBf16Bits(x_)));
    DeviceArray<float> v(v_size() + io_);
    v.Fill(0xFF);
    const absl::Status st = cuda::lora_internal::LaunchLoraShrinkWith(
        kernel, x.get() + io_, c_.tokens, c_.in, GpuSegments(), v.get() + io_, nullptr,
        tc_k_splits);
    ASSERT_TRUE(st.ok()) << st;
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    const std::vector<float> got = v.Download();
    if (io_ != 0) {
      ASSERT_EQ(F32Bits(got[0]), 0xFFFFFFFFu) << what << ": wrote before v";
    }
    const double per_len =
        tc ? 2.0 * (c_.in + 40.0 * ((c_.in + 15) / 16) + 8.0) : 2.0 * c_.in;
    for (int64_t t = 0; t < c_.tokens; ++t) {
      const int32_t g = SegmentOf(t);
      for (int32_t s = 0; s < num_slices_; ++s) {
        const HostSlice* h = g >= 0 ? &slices_[g * num_slices_ + s] : nullptr;
        for (int32_t r = 0; r < max_rank_; ++r) {
          const size_t i = (t * num_slices_ + s) * max_rank_ + r;
          const float gv = got[i + io_];
          if (h == nullptr || r >= h->rank) {
            ASSERT_EQ(F32Bits(gv), 0xFFFFFFFFu)
                << what << ": v[" << t << ", " << s << ", " << r << "] written outside every rank";
            continue;
          }
          const double tol = per_len * kU * shrink_mag_[i] + 1e-30;
          ASSERT_TRUE(std::isfinite(gv) && std::fabs(double{gv} - cpu_v_[i]) <= tol)
              << what << ": v[" << t << ", " << s << ", " << r << "] gpu " << gv << " cpu "
              << cpu_v_[i] << " tol " << tol;
        }
      }
    }
  }

  // Expand on the CPU's v (NaN where the ops must not read it).
  void CheckExpand(LoraKernel kernel, const std::string& what) {
    const bool tc = Resolved(kernel) == LoraKernel::kSgmvTc;
    DeviceArray<float> v(cpu_v_.size() + io_);
    std::vector<float> v_host(io_, std::nanf(""));
    v_host.insert(v_host.end(), cpu_v_.begin(), cpu_v_.end());
    v.Upload(v_host);
    const std::vector<uint16_t> y0_bits = ToBf16Bits(y0_);
    DeviceArray<uint16_t> y(y0_bits.size() + io_);
    y.Upload(Pad(y0_bits));
    const absl::Status st = cuda::lora_internal::LaunchLoraExpandWith(
        kernel, v.get() + io_, c_.tokens, GpuSegments(), cols_, y.get() + io_, y_cols_, nullptr);
    ASSERT_TRUE(st.ok()) << st;
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    const std::vector<uint16_t> got = y.Download();
    if (io_ != 0) {
      ASSERT_EQ(got[0], 0xFFFFu) << what << ": wrote before y";
    }
    for (int64_t t = 0; t < c_.tokens; ++t) {
      const int32_t g = SegmentOf(t);
      for (int64_t col = 0; col < y_cols_; ++col) {
        const size_t i = t * y_cols_ + col;
        int32_t s = 0;
        while (s < num_slices_ && col >= cols_.offsets[s + 1]) ++s;
        const HostSlice* h = (g >= 0 && s < num_slices_) ? &slices_[g * num_slices_ + s] : nullptr;
        if (h == nullptr || h->rank == 0) {
          ASSERT_EQ(got[i + io_], y0_bits[i]) << what << ": y[" << t << ", " << col << "] changed";
          continue;
        }
        const double extra = tc ? 41.0 * ((h->rank + 15) / 16) + 1.0 : 0.0;
        const double tol = std::ldexp(std::fabs(double{cpu_y_[i]}), -8) +
                           4.0 * (h->rank + 2 + extra) * kU *
                               (std::fabs(h->scale) * expand_mag_[i] + std::fabs(y0_[i]));
        const float gv = Bf16ToFloat(got[i + io_]);
        ASSERT_TRUE(std::isfinite(gv) && std::fabs(double{gv} - cpu_y_[i]) <= tol)
            << what << ": y[" << t << ", " << col << "] gpu " << gv << " cpu " << cpu_y_[i]
            << " tol " << tol;
      }
    }
  }

 private:
  static constexpr double kU = 1.0 / (1 << 24);

  struct HostSlice {
    int32_t rank = 0;
    float scale = 0.0f;
    std::vector<float> a;   // [rank, in]
    std::vector<float> bt;  // [rank, out]
  };

  // `bits` after io_ NaN bf16 (the misaligned copy's leading element).
  std::vector<uint16_t> Pad(const std::vector<uint16_t>& bits) const {
    std::vector<uint16_t> out(io_, 0xFFFF);
    out.insert(out.end(), bits.begin(), bits.end());
    return out;
  }

  // shrink_mag_[v index] = sum_k |x a|; expand_mag_[y index] = sum_r |v b|.
  void ComputeMagnitudes() {
    shrink_mag_.assign(v_size(), 0.0);
    expand_mag_.assign(c_.tokens * y_cols_, 0.0);
    for (int64_t t = 0; t < c_.tokens; ++t) {
      const int32_t g = SegmentOf(t);
      if (g < 0) continue;
      for (int32_t s = 0; s < num_slices_; ++s) {
        const HostSlice& h = slices_[g * num_slices_ + s];
        const size_t v0 = (t * num_slices_ + s) * max_rank_;
        for (int32_t r = 0; r < h.rank; ++r) {
          double mag = 0;
          for (int64_t k = 0; k < c_.in; ++k) {
            mag += std::fabs(double{x_[t * c_.in + k]} * h.a[r * c_.in + k]);
          }
          shrink_mag_[v0 + r] = mag;
          const double vr = std::fabs(double{cpu_v_[v0 + r]});
          for (int64_t j = 0; j < c_.outs[s]; ++j) {
            expand_mag_[t * y_cols_ + cols_.offsets[s] + j] +=
                vr * std::fabs(h.bt[r * c_.outs[s] + j]);
          }
        }
      }
    }
  }

  LoraCase c_;
  std::mt19937 rng_;
  std::unique_ptr<Backend> cpu_;
  int32_t num_slices_ = 0, num_segments_ = 0, max_rank_ = 0;
  size_t io_ = 0;  // element offset of x, v and y in their device arrays
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
  std::vector<double> shrink_mag_, expand_mag_;
};

}  // namespace loraserve::testing
