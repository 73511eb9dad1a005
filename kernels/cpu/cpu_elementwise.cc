// CpuBackend: GatherRows, SiluAndMul, ResidualAdd.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "common/status.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/cpu_graph.h"
#include "kernels/op_checks.h"

namespace loraserve {

namespace {
// Elements per parallel chunk below which threads do not pay.
constexpr int64_t kMinElementsPerChunk = 1 << 15;

int64_t RowsPerChunk(int64_t width) {
  return std::max<int64_t>(1, kMinElementsPerChunk / std::max<int64_t>(1, width));
}
}  // namespace

absl::Status CpuBackend::GatherRows(const void* src, int64_t src_rows, int64_t width,
                                    const int32_t* indices, int64_t num_indices, void* dst,
                                    StreamRef stream) {
  LS_CPU_RECORD(stream, GatherRows(src, src_rows, width, indices, num_indices, dst, StreamRef{}));
  ASSIGN_OR_RETURN(const bool has_work,
                   op_checks::CheckGatherRowsArgs(src, src_rows, width, indices, num_indices, dst));
  if (!has_work) return absl::OkStatus();
  for (int64_t i = 0; i < num_indices; ++i) {
    if (indices[i] < 0 || indices[i] >= src_rows) {
      return absl::InvalidArgumentError(absl::StrCat("GatherRows: indices[", i, "]=", indices[i],
                                                     " outside [0, ", src_rows, ")"));
    }
  }
  const auto* s = static_cast<const float*>(src);
  auto* d = static_cast<float*>(dst);
  for (int64_t i = 0; i < num_indices; ++i) {
    std::memcpy(d + i * width, s + static_cast<int64_t>(indices[i]) * width,
                static_cast<size_t>(width) * sizeof(float));
  }
  return absl::OkStatus();
}

absl::Status CpuBackend::SiluAndMul(const void* gate_up, int64_t rows, int64_t intermediate,
                                    void* out, StreamRef stream) {
  LS_CPU_RECORD(stream, SiluAndMul(gate_up, rows, intermediate, out, StreamRef{}));
  ASSIGN_OR_RETURN(const bool has_work,
                   op_checks::CheckSiluAndMulArgs(gate_up, rows, intermediate, out));
  if (!has_work) return absl::OkStatus();
  const auto* gu = static_cast<const float*>(gate_up);
  auto* o = static_cast<float*>(out);
  pool_.ParallelFor(rows, RowsPerChunk(intermediate), [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const float* g = gu + r * 2 * intermediate;
      const float* u = g + intermediate;
      float* y = o + r * intermediate;
      for (int64_t i = 0; i < intermediate; ++i) {
        const float x = g[i];
        y[i] = x / (1.0f + std::exp(-x)) * u[i];
      }
    }
  });
  return absl::OkStatus();
}

absl::Status CpuBackend::ResidualAdd(void* residual, const void* delta, int64_t n,
                                     StreamRef stream) {
  LS_CPU_RECORD(stream, ResidualAdd(residual, delta, n, StreamRef{}));
  ASSIGN_OR_RETURN(const bool has_work, op_checks::CheckResidualAddArgs(residual, delta, n));
  if (!has_work) return absl::OkStatus();
  auto* r = static_cast<float*>(residual);
  const auto* d = static_cast<const float*>(delta);
  pool_.ParallelFor(n, kMinElementsPerChunk * 4, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) r[i] += d[i];
  });
  return absl::OkStatus();
}

}  // namespace loraserve
