// CUDA launchers of RmsNorm and Rope for CudaBackend, bf16 storage with fp32
// math, the semantics of the CPU twins (kernels/cpu/cpu_norm_rope.cc):
//  - RmsNorm: fp32 sum of squares per row (block reduction), inv_rms =
//    1 / sqrt(sum / hidden + eps), out = bf16(weight * (x * inv_rms)):
//    normalised and weighted in fp32, rounded once (the CPU twin's order).
//  - Rope: neox rotate_half in place on the q and k heads of fused qkv rows,
//    angle = float(position) * inv_freq[i] (fp32 product, as Hugging Face),
//    cos/sin by the precise sincosf (never the __sincosf intrinsic: angles
//    reach 1e5 rad at long context), each rotated value rounded once.
//
// Called by CudaBackend and tests. Launchers only enqueue on `stream`: they
// never allocate and never synchronise. Shapes are validated by the caller
// (CudaBackend); launchers return at once when there is no work. Pointers are
// device memory. Thread-safe (stateless).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "absl/status/status.h"

namespace loraserve::cuda {

// out may equal x (in place).
absl::Status LaunchRmsNorm(const void* x /* [rows, hidden] bf16 */,
                           const void* weight /* [hidden] bf16 */, int64_t rows, int64_t hidden,
                           float eps, void* out /* [rows, hidden] bf16 */, cudaStream_t stream);

// Rotates columns [0, (num_q_heads + num_kv_heads) * head_dim) of each row of
// qkv; the other columns (v heads, padding) are not touched. head_dim even,
// <= kMaxHeadDim (op_args.h). A negative position is not detected on the
// device (the CPU twin rejects it); it rotates by a negative angle.
absl::Status LaunchRope(void* qkv /* [num_tokens, row_stride] bf16 */, int64_t row_stride,
                        int64_t num_tokens, int32_t num_q_heads, int32_t num_kv_heads,
                        int32_t head_dim, const int32_t* positions /* [num_tokens] */,
                        const float* inv_freq /* [head_dim / 2] */, cudaStream_t stream);

}  // namespace loraserve::cuda
