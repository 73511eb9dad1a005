// CudaBackend::FillRandom: checks the arguments with the CPU twin's checks
// (kernels/op_checks.h), then enqueues the bf16 fill of
// cuda_random.h on the resolved stream.
#include "common/status.h"
#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/cuda_random.h"
#include "kernels/op_checks.h"

namespace loraserve {

absl::Status CudaBackend::FillRandom(void* dst, int64_t n, uint64_t seed, float lo, float hi,
                                     StreamRef stream) {
  ASSIGN_OR_RETURN(const bool has_work, op_checks::CheckFillRandomArgs(dst, n, lo, hi));
  if (!has_work) return absl::OkStatus();
  RETURN_IF_ERROR(UseDevice());
  return cuda::LaunchFillRandom(dst, n, seed, lo, hi, Resolve(stream));
}

}  // namespace loraserve
