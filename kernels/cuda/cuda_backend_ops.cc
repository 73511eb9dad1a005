// CudaBackend: the dense ops (GatherRows, RmsNorm, Rope, SiluAndMul,
// ResidualAdd) and the GEMMs (Gemm, Logits). Each checks the host-known
// arguments with the checks it shares with its CPU twin (kernels/op_checks.h),
// then enqueues the launcher of cuda_elementwise.h / cuda_norm_rope.h /
// cuda_gemm.h.
#include <limits>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/cuda_elementwise.h"
#include "kernels/cuda/cuda_gemm.h"
#include "kernels/cuda/cuda_norm_rope.h"
#include "kernels/op_checks.h"

namespace loraserve {

absl::Status CudaBackend::GatherRows(const void* src, int64_t src_rows, int64_t width,
                                     const int32_t* indices, int64_t num_indices, void* dst,
                                     StreamRef stream) {
  ASSIGN_OR_RETURN(const bool has_work, op_checks::CheckGatherRowsArgs(src, src_rows, width,
                                                                       indices, num_indices, dst));
  if (!has_work) return absl::OkStatus();
  RETURN_IF_ERROR(UseDevice());
  return cuda::LaunchGatherRows(src, src_rows, width, indices, num_indices, dst, Resolve(stream));
}

absl::Status CudaBackend::RmsNorm(const void* x, const void* weight, int64_t rows, int64_t hidden,
                                  float eps, void* out, StreamRef stream) {
  ASSIGN_OR_RETURN(const bool has_work,
                   op_checks::CheckRmsNormArgs(x, weight, rows, hidden, eps, out));
  if (!has_work) return absl::OkStatus();
  RETURN_IF_ERROR(UseDevice());
  return cuda::LaunchRmsNorm(x, weight, rows, hidden, eps, out, Resolve(stream));
}

absl::Status CudaBackend::Gemm(const void* x, const void* w, const void* bias, int64_t m, int64_t n,
                               int64_t k, bool accumulate, void* y, StreamRef stream) {
  ASSIGN_OR_RETURN(const bool has_work, op_checks::CheckGemmArgs(x, w, m, n, k, y));
  if (!has_work) return absl::OkStatus();
  RETURN_IF_ERROR(UseDevice());
  return gemm_->Gemm(x, w, bias, m, n, k, accumulate, y, Resolve(stream));
}

absl::Status CudaBackend::Logits(const void* hidden, const void* lm_head, int64_t rows,
                                 int64_t vocab, int64_t hidden_size, float* logits,
                                 StreamRef stream) {
  ASSIGN_OR_RETURN(const bool has_work,
                   op_checks::CheckLogitsArgs(hidden, lm_head, rows, vocab, hidden_size, logits));
  if (!has_work) return absl::OkStatus();
  RETURN_IF_ERROR(UseDevice());
  return gemm_->Logits(hidden, lm_head, rows, vocab, hidden_size, logits, Resolve(stream));
}

absl::Status CudaBackend::ArgMaxRows(const float* logits, int64_t rows, int64_t vocab,
                                     int32_t* out, StreamRef stream) {
  ASSIGN_OR_RETURN(const bool has_work, op_checks::CheckArgMaxRowsArgs(logits, rows, vocab, out));
  if (!has_work) return absl::OkStatus();
  RETURN_IF_ERROR(UseDevice());
  return cuda::LaunchArgMaxRows(logits, rows, vocab, out, Resolve(stream));
}

absl::Status CudaBackend::Rope(void* qkv, int64_t row_stride, int64_t num_tokens,
                               int32_t num_q_heads, int32_t num_kv_heads, int32_t head_dim,
                               const int32_t* positions, const float* inv_freq, StreamRef stream) {
  ASSIGN_OR_RETURN(const bool has_work,
                   op_checks::CheckRopeArgs(qkv, row_stride, num_tokens, num_q_heads,
                                            num_kv_heads, head_dim, positions, inv_freq));
  const int64_t rotated = (int64_t{num_q_heads} + num_kv_heads) * head_dim;
  if (rotated > std::numeric_limits<int32_t>::max()) {  // the kernel indexes heads in 32 bits
    return absl::InvalidArgumentError(
        absl::StrCat("Rope: (num_q_heads + num_kv_heads) * head_dim=", rotated, " exceeds 2^31-1"));
  }
  if (!has_work) return absl::OkStatus();
  RETURN_IF_ERROR(UseDevice());
  return cuda::LaunchRope(qkv, row_stride, num_tokens, num_q_heads, num_kv_heads, head_dim,
                          positions, inv_freq, Resolve(stream));
}

absl::Status CudaBackend::SiluAndMul(const void* gate_up, int64_t rows, int64_t intermediate,
                                     void* out, StreamRef stream) {
  ASSIGN_OR_RETURN(const bool has_work,
                   op_checks::CheckSiluAndMulArgs(gate_up, rows, intermediate, out));
  if (!has_work) return absl::OkStatus();
  RETURN_IF_ERROR(UseDevice());
  return cuda::LaunchSiluAndMul(gate_up, rows, intermediate, out, Resolve(stream));
}

absl::Status CudaBackend::ResidualAdd(void* residual, const void* delta, int64_t n,
                                      StreamRef stream) {
  ASSIGN_OR_RETURN(const bool has_work, op_checks::CheckResidualAddArgs(residual, delta, n));
  if (!has_work) return absl::OkStatus();
  RETURN_IF_ERROR(UseDevice());
  return cuda::LaunchResidualAdd(residual, delta, n, Resolve(stream));
}

}  // namespace loraserve
