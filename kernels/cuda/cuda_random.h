// CUDA launcher of CudaBackend::FillRandom: the counter-based uniform values
// of kernels/counter_random.h (the same fp32 the CPU twin writes, computed
// with the same shared functions), rounded once to bf16 (round to nearest
// even, as FloatToBf16). A grid-stride loop over 64-bit indices, 8 bf16 per
// 16-byte store when dst is 16-byte aligned, a scalar path otherwise; both
// write identical values.
//
// Called by CudaBackend (kernels/cuda/cuda_backend_random.cc) and tests. Only
// enqueues on `stream`: never allocates, never synchronises. Arguments are
// validated by the caller (op_checks::CheckFillRandomArgs); returns at once
// when n <= 0. Thread-safe (stateless).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "absl/status/status.h"

namespace loraserve::cuda {

// dst[i] = bf16(CounterUniformIn(seed, i, lo, hi)) for i < n.
absl::Status LaunchFillRandom(void* dst /* [n] bf16 */, int64_t n, uint64_t seed, float lo,
                              float hi, cudaStream_t stream);

}  // namespace loraserve::cuda
