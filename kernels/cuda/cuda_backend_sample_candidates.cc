// CudaBackend::SampleCandidates: checks the host-known arguments with the CPU
// twin's checks (op_checks::CheckSampleCandidatesArgs), then enqueues the
// kernel of cuda_sample_candidates.h on the resolved stream.
#include "common/status.h"
#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/cuda_sample_candidates.h"
#include "kernels/op_checks.h"

namespace loraserve {

absl::Status CudaBackend::SampleCandidates(const float* logits, int64_t rows, int64_t vocab,
                                           const float* temperature, int32_t k, int32_t* ids,
                                           float* values, double* total, StreamRef stream) {
  ASSIGN_OR_RETURN(const bool has_work,
                   op_checks::CheckSampleCandidatesArgs(logits, rows, vocab, temperature, k, ids,
                                                        values, total));
  if (!has_work) return absl::OkStatus();
  RETURN_IF_ERROR(UseDevice());
  return cuda::LaunchSampleCandidates(logits, rows, vocab, temperature, k, ids, values, total,
                                      Resolve(stream));
}

}  // namespace loraserve
