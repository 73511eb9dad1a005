// CpuBackend: RmsNorm and Rope.
#include <algorithm>
#include <array>
#include <cmath>

#include "common/status.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/cpu_graph.h"
#include "kernels/op_checks.h"

namespace loraserve {

absl::Status CpuBackend::RmsNorm(const void* x, const void* weight, int64_t rows, int64_t hidden,
                                 float eps, void* out, StreamRef stream) {
  LS_CPU_RECORD(stream, RmsNorm(x, weight, rows, hidden, eps, out, StreamRef{}));
  ASSIGN_OR_RETURN(const bool has_work,
                   op_checks::CheckRmsNormArgs(x, weight, rows, hidden, eps, out));
  if (!has_work) return absl::OkStatus();
  const auto* xs = static_cast<const float*>(x);
  const auto* w = static_cast<const float*>(weight);
  auto* o = static_cast<float*>(out);
  const int64_t rows_per_chunk = std::max<int64_t>(1, (1 << 14) / hidden);
  pool_.ParallelFor(rows, rows_per_chunk, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const float* xr = xs + r * hidden;
      double sum_sq = 0.0;
      for (int64_t i = 0; i < hidden; ++i) sum_sq += static_cast<double>(xr[i]) * xr[i];
      const float variance = static_cast<float>(sum_sq / static_cast<double>(hidden));
      const float inv_rms =
          static_cast<float>(1.0 / std::sqrt(static_cast<double>(variance + eps)));
      float* orow = o + r * hidden;
      for (int64_t i = 0; i < hidden; ++i) orow[i] = w[i] * (xr[i] * inv_rms);
    }
  });
  return absl::OkStatus();
}

absl::Status CpuBackend::Rope(void* qkv, int64_t row_stride, int64_t num_tokens,
                              int32_t num_q_heads, int32_t num_kv_heads, int32_t head_dim,
                              const int32_t* positions, const float* inv_freq, StreamRef stream) {
  LS_CPU_RECORD(stream, Rope(qkv, row_stride, num_tokens, num_q_heads, num_kv_heads, head_dim,
                             positions, inv_freq, StreamRef{}));
  ASSIGN_OR_RETURN(const bool has_work,
                   op_checks::CheckRopeArgs(qkv, row_stride, num_tokens, num_q_heads, num_kv_heads,
                                            head_dim, positions, inv_freq));
  if (!has_work) return absl::OkStatus();
  for (int64_t t = 0; t < num_tokens; ++t) {
    if (positions[t] < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("Rope: positions[", t, "]=", positions[t], " is negative"));
    }
  }
  auto* base = static_cast<float*>(qkv);
  const int half = head_dim / 2;
  const int heads = num_q_heads + num_kv_heads;
  const int64_t rotated = int64_t{heads} * head_dim;
  const int64_t tokens_per_chunk = std::max<int64_t>(1, (1 << 14) / rotated);
  pool_.ParallelFor(num_tokens, tokens_per_chunk, [&](int64_t begin, int64_t end) {
    std::array<float, kMaxHeadDim / 2> cos_a;
    std::array<float, kMaxHeadDim / 2> sin_a;
    for (int64_t t = begin; t < end; ++t) {
      const float pos = static_cast<float>(positions[t]);
      for (int i = 0; i < half; ++i) {
        const float angle = pos * inv_freq[i];  // fp32 product, as Hugging Face
        cos_a[i] = static_cast<float>(std::cos(static_cast<double>(angle)));
        sin_a[i] = static_cast<float>(std::sin(static_cast<double>(angle)));
      }
      float* row = base + t * row_stride;
      for (int h = 0; h < heads; ++h) {
        float* x = row + static_cast<int64_t>(h) * head_dim;
        for (int i = 0; i < half; ++i) {
          const float x1 = x[i];
          const float x2 = x[i + half];
          x[i] = x1 * cos_a[i] - x2 * sin_a[i];
          x[i + half] = x2 * cos_a[i] + x1 * sin_a[i];
        }
      }
    }
  });
  return absl::OkStatus();
}

}  // namespace loraserve
