#include "kernels/backend_kind.h"

#include "absl/strings/str_cat.h"
#include "common/strings.h"

#ifdef LORASERVE_HAVE_CUDA
#include "common/cuda/dtype_kernels.h"
#endif

namespace loraserve {

std::string_view BackendKindName(BackendKind kind) {
  return kind == BackendKind::kCuda ? "cuda" : "cpu";
}

bool CudaBackendCompiled() {
#ifdef LORASERVE_HAVE_CUDA
  return true;
#else
  return false;
#endif
}

int CudaDeviceCount() {
#ifdef LORASERVE_HAVE_CUDA
  return cuda::VisibleDeviceCount();
#else
  return 0;
#endif
}

absl::StatusOr<BackendKind> ResolveBackendKind(std::string_view device_flag) {
  if (device_flag == "cpu") return BackendKind::kCpu;
  if (device_flag == "cuda" || device_flag == "auto") {
    if (!CudaBackendCompiled()) {
      if (device_flag == "auto") return BackendKind::kCpu;
      return absl::FailedPreconditionError(
          "--device=cuda: this binary was built without the CUDA backend "
          "(configure with -DLORASERVE_CUDA=ON where nvcc is installed)");
    }
    if (CudaDeviceCount() == 0) {
      if (device_flag == "auto") return BackendKind::kCpu;
      return absl::FailedPreconditionError(
          "--device=cuda: no CUDA device is visible (check the driver and "
          "CUDA_VISIBLE_DEVICES)");
    }
    return BackendKind::kCuda;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("--device must be cpu, cuda or auto; got \"", Sv(device_flag), "\""));
}

std::string DescribeBackendSupport() {
  if (!CudaBackendCompiled()) return "CUDA backend not compiled in; CPU backend only";
  return absl::StrCat("CUDA backend compiled in, ", CudaDeviceCount(), " device(s) visible");
}

}  // namespace loraserve
