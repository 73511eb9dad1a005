#include "kernels/backend_factory.h"

#include "common/status.h"
#include "kernels/cpu/cpu_backend.h"

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
    case BackendKind::kCuda:
      if (!CudaBackendCompiled()) {
        return absl::FailedPreconditionError(
            "CreateBackend(cuda): this binary was built without the CUDA backend");
      }
      return absl::UnimplementedError(
          "CreateBackend(cuda): the CUDA backend is not implemented yet; use --device=cpu");
  }
  return absl::InvalidArgumentError("CreateBackend: unknown backend kind");
}

}  // namespace loraserve
