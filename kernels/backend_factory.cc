#include "kernels/backend_factory.h"

#include "common/status.h"
#include "kernels/cpu/cpu_backend.h"

// LORASERVE_HAVE_CUDA is defined for loraserve_kernels only when the CUDA
// backend (loraserve_kernels_cuda) is built and linked.
#ifdef LORASERVE_HAVE_CUDA
#include "kernels/cuda/cuda_backend.h"
#endif

namespace loraserve {

absl::StatusOr<std::unique_ptr<Backend>> CreateBackend(BackendKind kind,
                                                       const BackendOptions& options) {
  switch (kind) {
    case BackendKind::kCpu: {
      CpuBackend::Options cpu_options;
      cpu_options.num_threads = options.num_threads;
      ASSIGN_OR_RETURN(std::unique_ptr<CpuBackend> cpu, CpuBackend::Create(cpu_options));
      return std::unique_ptr<Backend>(std::move(cpu));
    }
    case BackendKind::kCuda: {
#ifdef LORASERVE_HAVE_CUDA
      CudaBackend::Options cuda_options;
      cuda_options.device_index = options.device;
      absl::StatusOr<std::unique_ptr<CudaBackend>> cuda = CudaBackend::Create(cuda_options);
      if (!cuda.ok()) return AnnotateStatus(cuda.status(), "CreateBackend(cuda)");
      return std::unique_ptr<Backend>(std::move(cuda).value());
#else
      return absl::FailedPreconditionError(
          "CreateBackend(cuda): this binary was built without the CUDA backend");
#endif
    }
  }
  return absl::InvalidArgumentError("CreateBackend: unknown backend kind");
}

}  // namespace loraserve
