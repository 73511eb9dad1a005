// CreateBackend: the one place that knows every backend (CPU always; CUDA
// when compiled in). Called once at startup by the server, and by tests and
// benchmarks. Thread-safe (no shared state).
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "kernels/backend.h"
#include "kernels/backend_kind.h"

namespace loraserve {

struct BackendOptions {
  // CPU: threads of the backend's parallel-for (attention, elementwise ops),
  // the caller included; 0 = std::thread::hardware_concurrency(). OpenBLAS
  // keeps its own threads (OPENBLAS_NUM_THREADS).
  int num_threads = 0;
  // CUDA: device ordinal among the visible devices (CudaBackend::Options::device_index).
  int device = 0;
};

// The backend of `kind`. kCuda is FailedPrecondition naming the problem when
// the binary has no CUDA backend or no CUDA device is visible (with
// --device=auto the server resolves to the CPU first: ResolveBackendKind).
absl::StatusOr<std::unique_ptr<Backend>> CreateBackend(BackendKind kind,
                                                       const BackendOptions& options);

}  // namespace loraserve
