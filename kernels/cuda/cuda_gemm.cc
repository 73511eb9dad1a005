// CublasGemm (kernels/cuda/cuda_gemm.h).
//
// Row-major <-> column-major. cuBLAS reads matrices column-major; a row-major
// [r, c] matrix with row stride c is the column-major [c, r] matrix (its
// transpose) with leading dimension c. We want row-major
//   Y[m, n] = X[m, k] . W[n, k]^T,
// i.e. column-major Y^T[n, m] = W . X^T with
//   A = W: row-major [n, k] = column-major [k, n], lda = k, op(A) = A^T -> [n, k]
//   B = X: row-major [m, k] = column-major [k, m], ldb = k, op(B) = B   -> [k, m]
//   C = Y: row-major [m, n] = column-major [n, m], ldc = n
// so cublasGemmEx(T, N, /*m=*/n, /*n=*/m, /*k=*/k, W, k, X, k, Y, n): the
// classic "swap the operands" trick, no data is transposed.
#include "kernels/cuda/cuda_gemm.h"

#include <cublas_v2.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/cuda/cuda_status.h"
#include "common/logging.h"
#include "common/status.h"
#include "kernels/cuda/cuda_elementwise.h"

namespace loraserve::cuda {

namespace {

absl::Status CublasErrorToStatus(cublasStatus_t status, const char* expr, const char* file,
                                 int line) {
  if (status == CUBLAS_STATUS_SUCCESS) return absl::OkStatus();
  return absl::InternalError(absl::StrCat("cuBLAS error ", cublasGetStatusName(status), " (",
                                          cublasGetStatusString(status), ") at ", file, ":", line,
                                          ": ", expr));
}

#define RETURN_IF_CUBLAS_ERROR(expr)                                                           \
  do {                                                                                         \
    ::absl::Status _ls_cublas_status = CublasErrorToStatus((expr), #expr, __FILE__, __LINE__); \
    if (!_ls_cublas_status.ok()) [[unlikely]]                                                  \
      return _ls_cublas_status;                                                                \
  } while (false)

}  // namespace

CublasGemm::CublasGemm(cublasContext* handle, cudaStream_t compute_stream, void* workspace,
                       size_t workspace_bytes)
    : handle_(handle),
      compute_stream_(compute_stream),
      workspace_(workspace),
      workspace_bytes_(workspace_bytes) {}

absl::StatusOr<std::unique_ptr<CublasGemm>> CublasGemm::Create(cudaStream_t compute_stream,
                                                               void* workspace,
                                                               size_t workspace_bytes) {
  cublasHandle_t handle = nullptr;
  RETURN_IF_CUBLAS_ERROR(cublasCreate(&handle));
  std::unique_ptr<CublasGemm> gemm(
      new CublasGemm(handle, compute_stream, workspace, workspace_bytes));
  // Tensor cores stay allowed (bf16 inputs, fp32 compute); what is forbidden
  // is reducing split-K partial sums in the bf16 output type.
  RETURN_IF_CUBLAS_ERROR(cublasSetMathMode(
      handle, static_cast<cublasMath_t>(CUBLAS_DEFAULT_MATH |
                                        CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION)));
  RETURN_IF_CUBLAS_ERROR(cublasSetPointerMode(handle, CUBLAS_POINTER_MODE_HOST));
  {
    std::lock_guard<std::mutex> lock(gemm->mu_);
    RETURN_IF_ERROR(gemm->BindStreamLocked(compute_stream));
  }
  return gemm;
}

CublasGemm::~CublasGemm() {
  const cublasStatus_t status = cublasDestroy(handle_);
  if (status != CUBLAS_STATUS_SUCCESS) {
    LS_LOG(ERROR) << "cublasDestroy failed: " << cublasGetStatusName(status);
  }
}

absl::Status CublasGemm::BindStreamLocked(cudaStream_t stream) {
  if (bound_ && stream == bound_stream_) return absl::OkStatus();
  bound_ = false;
  // cublasSetStream also resets the handle to cuBLAS's default workspace
  // pool (cuBLAS-managed: NVIDIA's documented one-handle, many-streams
  // usage), which is what other streams get. The compute stream gets our
  // workspace right after. (A zero-byte cublasSetWorkspace is avoided on
  // purpose: it disables the workspace and some routines then fail with
  // CUBLAS_STATUS_ALLOC_FAILED.)
  RETURN_IF_CUBLAS_ERROR(cublasSetStream(handle_, stream));
  if (stream == compute_stream_ && workspace_bytes_ > 0) {
    RETURN_IF_CUBLAS_ERROR(cublasSetWorkspace(handle_, workspace_, workspace_bytes_));
  }
  bound_stream_ = stream;
  bound_ = true;
  return absl::OkStatus();
}

absl::Status CublasGemm::GemmLocked(const void* x, const void* w, int64_t m, int64_t n, int64_t k,
                                    float beta, void* y, cudaDataType_t y_type,
                                    cudaStream_t stream) {
  RETURN_IF_ERROR(BindStreamLocked(stream));
  const float alpha = 1.0f;
  const int mi = static_cast<int>(m);
  const int ni = static_cast<int>(n);
  const int ki = static_cast<int>(k);
  RETURN_IF_CUBLAS_ERROR(cublasGemmEx(handle_, CUBLAS_OP_T, CUBLAS_OP_N, ni, mi, ki, &alpha, w,
                                      CUDA_R_16BF, ki, x, CUDA_R_16BF, ki, &beta, y, y_type, ni,
                                      CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
  // cuBLAS launches kernels: catch a launch failure it did not report.
  RETURN_IF_CUDA_ERROR(cudaGetLastError());
  return absl::OkStatus();
}

absl::Status CublasGemm::Gemm(const void* x, const void* w, const void* bias, int64_t m, int64_t n,
                              int64_t k, bool accumulate, void* y, cudaStream_t stream) {
  if (m == 0) return absl::OkStatus();
  float beta = accumulate ? 1.0f : 0.0f;
  if (bias != nullptr) {
    // y = bias (or y + bias), then y += x . w^T: the bias joins the fp32
    // accumulation of the GEMM epilogue (alpha * acc + beta * y), rounded once
    // when not accumulating.
    RETURN_IF_ERROR(LaunchBroadcastBias(bias, m, n, /*add=*/accumulate, y, stream));
    beta = 1.0f;
  }
  std::lock_guard<std::mutex> lock(mu_);
  return GemmLocked(x, w, m, n, k, beta, y, CUDA_R_16BF, stream);
}

absl::Status CublasGemm::Logits(const void* hidden, const void* lm_head, int64_t rows,
                                int64_t vocab, int64_t hidden_size, float* logits,
                                cudaStream_t stream) {
  if (rows == 0) return absl::OkStatus();
  std::lock_guard<std::mutex> lock(mu_);
  return GemmLocked(hidden, lm_head, rows, vocab, hidden_size, 0.0f, logits, CUDA_R_32F, stream);
}

}  // namespace loraserve::cuda
