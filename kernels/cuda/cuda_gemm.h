// CublasGemm: the GEMMs of CudaBackend (Gemm and Logits) through cuBLAS
// cublasGemmEx with bf16 A/B, fp32 accumulation (CUBLAS_COMPUTE_32F) and
// reduced-precision split-K reductions disallowed, so every partial sum stays
// fp32 and the output is rounded once.
//
// Owns one cuBLAS handle, created on the current device at Create and bound
// to the backend's compute stream with the backend-owned workspace (no
// allocation at launch). A call on another stream rebinds the handle to that
// stream with cuBLAS's own default workspace pool (cuBLAS-managed), so
// our workspace is never used by two streams at once. Owned and called by
// CudaBackend.
// Thread-safe: a mutex serialises (bind stream, enqueue) pairs; the enqueue
// takes microseconds and GEMMs come from the engine thread only in practice.
#pragma once

#include <cuda_runtime_api.h>
#include <library_types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

struct cublasContext;  // cublasHandle_t is cublasContext*

namespace loraserve::cuda {

class CublasGemm {
 public:
  // `workspace` ([workspace_bytes] device memory, 256-byte aligned) is owned by
  // the caller and must outlive this object; used only on `compute_stream`.
  // workspace_bytes == 0: the compute stream uses cuBLAS's default pool too.
  static absl::StatusOr<std::unique_ptr<CublasGemm>> Create(cudaStream_t compute_stream,
                                                            void* workspace,
                                                            size_t workspace_bytes);
  ~CublasGemm();
  CublasGemm(const CublasGemm&) = delete;
  CublasGemm& operator=(const CublasGemm&) = delete;

  // y[m, n] = x[m, k] . w[n, k]^T (+ bias[n]) (+ y when accumulate), bf16.
  // With a bias, y is first seeded with bias (or bias added into y when
  // accumulating, one extra bf16 rounding) and the product accumulated with
  // beta = 1. Without accumulate and bias, beta = 0 and y is never read (NaN
  // in y does not propagate). m == 0 is a no-op. m, n, k must fit in int.
  absl::Status Gemm(const void* x /* [m, k] bf16 */, const void* w /* [n, k] bf16 */,
                    const void* bias /* [n] bf16 or nullptr */, int64_t m, int64_t n, int64_t k,
                    bool accumulate, void* y /* [m, n] bf16 */, cudaStream_t stream);

  // logits[rows, vocab] = hidden[rows, hidden_size] . lm_head[vocab, hidden_size]^T,
  // bf16 inputs, fp32 output (cuBLAS C type CUDA_R_32F).
  absl::Status Logits(const void* hidden /* [rows, hidden_size] bf16 */,
                      const void* lm_head /* [vocab, hidden_size] bf16 */, int64_t rows,
                      int64_t vocab, int64_t hidden_size, float* logits /* [rows, vocab] */,
                      cudaStream_t stream);

 private:
  CublasGemm(cublasContext* handle, cudaStream_t compute_stream, void* workspace,
             size_t workspace_bytes);

  // Row-major y[m, n] = x[m, k] . w[n, k]^T + beta * y with y of `y_type`
  // (see the mapping in cuda_gemm.cc). Requires mu_.
  absl::Status GemmLocked(const void* x, const void* w, int64_t m, int64_t n, int64_t k, float beta,
                          void* y, cudaDataType_t y_type, cudaStream_t stream);
  absl::Status BindStreamLocked(cudaStream_t stream);

  std::mutex mu_;
  cublasContext* const handle_;
  const cudaStream_t compute_stream_;
  void* const workspace_;
  const size_t workspace_bytes_;
  bool bound_ = false;
  cudaStream_t bound_stream_ = nullptr;  // guarded by mu_
};

}  // namespace loraserve::cuda
