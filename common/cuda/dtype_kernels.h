// Device-side dtype conversions (the CUDA twins of ConvertToF32 /
// ConvertFromF32 in common/dtype.h, with identical rounding: nearest-even,
// NaN kept NaN, fp16 overflow to Inf). Launchers take device pointers, an
// element count and a stream; they never allocate and never synchronise.
// Callers: weight loading and the CUDA backend. Thread-safe (stateless).
#pragma once

#include <cstdint>

#include <cuda_runtime_api.h>

#include "absl/status/status.h"
#include "common/dtype.h"

namespace loraserve::cuda {

// dst[i] = float(src[i]) for i < n. `src` holds n elements of `src_type`.
absl::Status ConvertToF32(const void* src /* [n] src_type, device */, DType src_type,
                          float* dst /* [n], device */, int64_t n, cudaStream_t stream);

// dst[i] = dst_type(src[i]) for i < n, rounded to nearest even.
absl::Status ConvertFromF32(const float* src /* [n], device */,
                            void* dst /* [n] dst_type, device */, DType dst_type, int64_t n,
                            cudaStream_t stream);

// Returns the number of visible CUDA devices; 0 (not an error) when there is
// no driver or no device, so tests can skip cleanly.
int VisibleDeviceCount();

}  // namespace loraserve::cuda
