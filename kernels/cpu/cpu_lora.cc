// CpuBackend: the segmented LoRA ops. Shrink runs one cblas_sgemv per rank-row
// over a segment's tokens; expand accumulates sum_r v[r] * B^T[r, :] in fp32
// per token, then adds scale * that into the fused output (Hugging Face PEFT
// order: y + (v . B^T) * scale).
#include <cblas.h>

#include <algorithm>
#include <array>
#include <cmath>

#include "common/status.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/cpu_graph.h"
#include "kernels/op_checks.h"

namespace loraserve {

namespace {

constexpr int64_t kExpandColumnTile = 256;

const float* RowAt(const void* rows_base, int64_t byte_offset) {
  return reinterpret_cast<const float*>(static_cast<const uint8_t*>(rows_base) + byte_offset);
}

// Checks the segment contents the ops read (bounds, ranks, offsets), whether
// or not there is work; op_checks checked the header and its pointers.
absl::Status ValidateSegments(const char* op, const LoraSegments& lora, int64_t num_tokens) {
  for (int32_t g = 0; g < lora.num_segments; ++g) {
    const int32_t b = lora.seg_starts[g];
    const int32_t e = lora.seg_starts[g + 1];
    if (b < 0 || e < b || e > num_tokens) {
      return absl::InvalidArgumentError(absl::StrCat(op, ": segment ", g, " token rows [", b, ", ",
                                                     e, ") not inside [0, ", num_tokens, ")"));
    }
    for (int32_t s = 0; s < lora.num_slices; ++s) {
      const LoraSlice& sl = lora.slices[int64_t{g} * lora.num_slices + s];
      if (sl.rank == 0) continue;
      if (sl.rank < 0 || sl.rank > kMaxLoraRank) {
        return absl::InvalidArgumentError(absl::StrCat(op, ": segment ", g, " slice ", s, " rank ",
                                                       sl.rank, " outside [0, ", kMaxLoraRank,
                                                       "] (the supported maximum rank)"));
      }
      if (sl.rank > lora.max_rank) {
        return absl::InvalidArgumentError(absl::StrCat(op, ": segment ", g, " slice ", s, " rank ",
                                                       sl.rank,
                                                       " exceeds lora.max_rank=", lora.max_rank));
      }
      if (!std::isfinite(sl.scale)) {
        return absl::InvalidArgumentError(
            absl::StrCat(op, ": segment ", g, " slice ", s, " scale is not finite"));
      }
      if (sl.a_row_offsets == nullptr || sl.bt_row_offsets == nullptr ||
          lora.rows_base == nullptr) {
        return absl::InvalidArgumentError(absl::StrCat(op, ": segment ", g, " slice ", s,
                                                       " has rank ", sl.rank,
                                                       " but null row offsets or rows_base"));
      }
      for (int32_t r = 0; r < sl.rank; ++r) {
        if (sl.a_row_offsets[r] < 0 || sl.bt_row_offsets[r] < 0 ||
            sl.a_row_offsets[r] % sizeof(float) != 0 || sl.bt_row_offsets[r] % sizeof(float) != 0) {
          return absl::InvalidArgumentError(absl::StrCat(op, ": segment ", g, " slice ", s, " row ",
                                                         r,
                                                         " has a negative or misaligned offset"));
        }
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status CpuBackend::LoraShrink(const void* x, int64_t num_tokens, int64_t in,
                                    const LoraSegments& lora, float* v, StreamRef stream) {
  LS_CPU_RECORD(stream, LoraShrink(x, num_tokens, in, lora, v, StreamRef{}));
  ASSIGN_OR_RETURN(const bool has_work, op_checks::CheckLoraShrinkArgs(x, num_tokens, in, lora, v));
  RETURN_IF_ERROR(ValidateSegments("LoraShrink", lora, num_tokens));
  if (!has_work) return absl::OkStatus();
  const auto* xs = static_cast<const float*>(x);
  const int64_t v_row = int64_t{lora.num_slices} * lora.max_rank;
  for (int32_t g = 0; g < lora.num_segments; ++g) {
    const int64_t begin = lora.seg_starts[g];
    const int64_t n = lora.seg_starts[g + 1] - begin;
    if (n == 0) continue;
    for (int32_t s = 0; s < lora.num_slices; ++s) {
      const LoraSlice& sl = lora.slices[int64_t{g} * lora.num_slices + s];
      for (int32_t r = 0; r < sl.rank; ++r) {
        // v[begin.., s, r] = X_seg[n, in] . A[r, :]
        cblas_sgemv(CblasRowMajor, CblasNoTrans, static_cast<int>(n), static_cast<int>(in), 1.0f,
                    xs + begin * in, static_cast<int>(in),
                    RowAt(lora.rows_base, sl.a_row_offsets[r]), 1, 0.0f,
                    v + begin * v_row + int64_t{s} * lora.max_rank + r, static_cast<int>(v_row));
      }
    }
  }
  return absl::OkStatus();
}

absl::Status CpuBackend::LoraExpand(const float* v, int64_t num_tokens, const LoraSegments& lora,
                                    const LoraSliceColumns& cols, void* y, int64_t y_cols,
                                    StreamRef stream) {
  LS_CPU_RECORD(stream, LoraExpand(v, num_tokens, lora, cols, y, y_cols, StreamRef{}));
  ASSIGN_OR_RETURN(const bool has_work,
                   op_checks::CheckLoraExpandArgs(v, num_tokens, lora, cols, y, y_cols));
  RETURN_IF_ERROR(ValidateSegments("LoraExpand", lora, num_tokens));
  if (!has_work) return absl::OkStatus();
  auto* ys = static_cast<float*>(y);
  const int64_t v_row = int64_t{lora.num_slices} * lora.max_rank;
  const int64_t first = lora.seg_starts[0];
  const int64_t last = lora.seg_starts[lora.num_segments];
  pool_.ParallelFor(last - first, 1, [&](int64_t begin, int64_t end) {
    std::array<float, kExpandColumnTile> acc;
    for (int64_t t = first + begin; t < first + end; ++t) {
      // Segment of token t: last g with seg_starts[g] <= t.
      const int32_t g = static_cast<int32_t>(
          std::upper_bound(lora.seg_starts, lora.seg_starts + lora.num_segments + 1, t) -
          lora.seg_starts - 1);
      for (int32_t s = 0; s < lora.num_slices; ++s) {
        const LoraSlice& sl = lora.slices[int64_t{g} * lora.num_slices + s];
        if (sl.rank == 0) continue;
        const float* vt = v + t * v_row + int64_t{s} * lora.max_rank;
        const int64_t width = cols.offsets[s + 1] - cols.offsets[s];
        float* yt = ys + t * y_cols + cols.offsets[s];
        for (int64_t j0 = 0; j0 < width; j0 += kExpandColumnTile) {
          const int64_t n = std::min(kExpandColumnTile, width - j0);
          std::fill(acc.begin(), acc.begin() + n, 0.0f);
          for (int32_t r = 0; r < sl.rank; ++r) {
            const float vr = vt[r];
            const float* b = RowAt(lora.rows_base, sl.bt_row_offsets[r]) + j0;
            for (int64_t j = 0; j < n; ++j) acc[j] += vr * b[j];
          }
          for (int64_t j = 0; j < n; ++j) yt[j0 + j] += acc[j] * sl.scale;
        }
      }
    }
  });
  return absl::OkStatus();
}

}  // namespace loraserve
