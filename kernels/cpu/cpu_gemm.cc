// CpuBackend: Gemm and Logits through OpenBLAS cblas_sgemm, and the greedy
// pick over logits rows (ArgMaxRows).
#include <cblas.h>

#include "common/status.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/cpu_graph.h"
#include "kernels/op_checks.h"

namespace loraserve {

namespace {

// y[m, n] = x[m, k] . w[n, k]^T + beta * y.
void Sgemm(const float* x, const float* w, int64_t m, int64_t n, int64_t k, float beta, float* y) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(m), static_cast<int>(n),
              static_cast<int>(k), 1.0f, x, static_cast<int>(k), w, static_cast<int>(k), beta, y,
              static_cast<int>(n));
}

}  // namespace

absl::Status CpuBackend::Gemm(const void* x, const void* w, const void* bias, int64_t m, int64_t n,
                              int64_t k, bool accumulate, void* y, StreamRef stream) {
  LS_CPU_RECORD(stream, Gemm(x, w, bias, m, n, k, accumulate, y, StreamRef{}));
  ASSIGN_OR_RETURN(const bool has_work, op_checks::CheckGemmArgs(x, w, m, n, k, y));
  if (!has_work) return absl::OkStatus();
  auto* yf = static_cast<float*>(y);
  Sgemm(static_cast<const float*>(x), static_cast<const float*>(w), m, n, k,
        accumulate ? 1.0f : 0.0f, yf);
  if (bias != nullptr) {
    const auto* b = static_cast<const float*>(bias);
    for (int64_t i = 0; i < m; ++i) {
      float* row = yf + i * n;
      for (int64_t j = 0; j < n; ++j) row[j] += b[j];
    }
  }
  return absl::OkStatus();
}

absl::Status CpuBackend::Logits(const void* hidden, const void* lm_head, int64_t rows,
                                int64_t vocab, int64_t hidden_size, float* logits,
                                StreamRef stream) {
  LS_CPU_RECORD(stream, Logits(hidden, lm_head, rows, vocab, hidden_size, logits, StreamRef{}));
  ASSIGN_OR_RETURN(const bool has_work,
                   op_checks::CheckLogitsArgs(hidden, lm_head, rows, vocab, hidden_size, logits));
  if (!has_work) return absl::OkStatus();
  Sgemm(static_cast<const float*>(hidden), static_cast<const float*>(lm_head), rows, vocab,
        hidden_size, 0.0f, logits);
  return absl::OkStatus();
}

absl::Status CpuBackend::ArgMaxRows(const float* logits, int64_t rows, int64_t vocab, int32_t* out,
                                    StreamRef stream) {
  LS_CPU_RECORD(stream, ArgMaxRows(logits, rows, vocab, out, StreamRef{}));
  ASSIGN_OR_RETURN(const bool has_work, op_checks::CheckArgMaxRowsArgs(logits, rows, vocab, out));
  if (!has_work) return absl::OkStatus();
  for (int64_t r = 0; r < rows; ++r) {
    const float* x = logits + r * vocab;
    int32_t best = 0;
    bool found = false;
    for (int64_t i = 0; i < vocab; ++i) {
      if (x[i] != x[i]) continue;  // NaN never wins
      if (!found || x[i] > x[best]) {
        best = static_cast<int32_t>(i);
        found = true;
      }
    }
    out[r] = best;
  }
  return absl::OkStatus();
}

}  // namespace loraserve
