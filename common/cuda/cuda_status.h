// CUDA error -> absl::Status, for CUDA translation units and the host code that
// drives them. Every CUDA runtime call and every kernel launch is checked:
//
//   RETURN_IF_CUDA_ERROR(cudaMemcpyAsync(...));
//   my_kernel<<<grid, block, 0, stream>>>(...);
//   RETURN_IF_CUDA_ERROR(cudaGetLastError());   // after every launch
//
// Errors become absl::InternalError("CUDA error <name> (<text>) at file:line: <expr>").
// Only included by code built when the CUDA backend is on. Any thread.
#pragma once

#include <cuda_runtime_api.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace loraserve {

inline absl::Status CudaErrorToStatus(cudaError_t err, const char* expr, const char* file,
                                      int line) {
  if (err == cudaSuccess) return absl::OkStatus();
  return absl::InternalError(absl::StrCat("CUDA error ", cudaGetErrorName(err), " (",
                                          cudaGetErrorString(err), ") at ", file, ":", line,
                                          ": ", expr));
}

}  // namespace loraserve

#define CUDA_STATUS(expr) ::loraserve::CudaErrorToStatus((expr), #expr, __FILE__, __LINE__)

#define RETURN_IF_CUDA_ERROR(expr)                               \
  do {                                                           \
    ::absl::Status _ls_cuda_status = CUDA_STATUS(expr);          \
    if (!_ls_cuda_status.ok()) [[unlikely]] return _ls_cuda_status; \
  } while (false)
