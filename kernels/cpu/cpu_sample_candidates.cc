// CpuBackend::SampleCandidates: per row, the k best logits and the full-row
// exp weight sum, computed by the very logits_ops functions the host Sampler
// calls (TopK, MaxOf, ExpSum), so its output is bit-identical to what
// Sampler::Sample would compute from the row. Rows run over the backend's
// thread pool. Called through Backend (LlamaModel::Forward, tests).
#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/cpu_graph.h"
#include "kernels/logits_ops.h"
#include "kernels/op_checks.h"

namespace loraserve {

absl::Status CpuBackend::SampleCandidates(const float* logits, int64_t rows, int64_t vocab,
                                          const float* temperature, int32_t k, int32_t* ids,
                                          float* values, double* total, StreamRef stream) {
  LS_CPU_RECORD(stream, SampleCandidates(logits, rows, vocab, temperature, k, ids, values, total,
                                         StreamRef{}));
  ASSIGN_OR_RETURN(const bool has_work,
                   op_checks::CheckSampleCandidatesArgs(logits, rows, vocab, temperature, k, ids,
                                                        values, total));
  if (!has_work) return absl::OkStatus();
  for (int64_t r = 0; r < rows; ++r) {
    const float t = temperature[r];
    if (!std::isfinite(t) || !(t > 0.0f)) {
      return absl::InvalidArgumentError(
          absl::StrCat("SampleCandidates: temperature[", r, "]=", t, " must be finite and > 0"));
    }
  }
  const auto n = static_cast<int32_t>(vocab);
  pool_.ParallelFor(rows, 1, [&](int64_t begin, int64_t end) {
    std::vector<logits_ops::Scored> best;
    best.reserve(static_cast<size_t>(k));
    for (int64_t r = begin; r < end; ++r) {
      const float* x = logits + r * vocab;
      logits_ops::TopK(x, n, k, &best);  // k <= vocab: exactly k entries
      for (int32_t j = 0; j < k; ++j) {
        ids[r * k + j] = best[j].id;
        values[r * k + j] = best[j].value;
      }
      // As Sampler::Draw: 1 / T rounded to float, the max as MaxOf finds it.
      total[r] = logits_ops::ExpSum(x, n, logits_ops::MaxOf(x, n), 1.0f / temperature[r]);
    }
  });
  return absl::OkStatus();
}

}  // namespace loraserve
