// CUDA launchers of the bf16 elementwise ops of CudaBackend: GatherRows,
// SiluAndMul, ResidualAdd, and the bias broadcast the GEMM path uses. Values
// are computed in fp32 and rounded once to bf16 (round to nearest even), the
// exact semantics of the CPU twins (kernels/cpu/cpu_elementwise.cc) up to that
// rounding. Each launcher picks a 16-byte vector path (8 bf16 per access)
// when the pointers are 16-byte aligned and the widths are multiples of 8, a
// scalar path otherwise; both give identical results.
//
// Called by CudaBackend (kernels/cuda/cuda_backend*.cc) and tests. Launchers
// only enqueue on `stream`: they never allocate and never synchronise. Shapes
// are validated by the caller (CudaBackend): launchers assume non-negative
// sizes and non-null pointers where there is work, and return at once when
// there is none. Pointers are device memory. Thread-safe (stateless).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "absl/status/status.h"

namespace loraserve::cuda {

// dst[i, :] = src[indices[i], :]. An index outside [0, src_rows) cannot be
// reported from the device: that row of dst is filled with NaN instead (no
// out-of-bounds read), so the mistake shows in the output.
absl::Status LaunchGatherRows(const void* src /* [src_rows, width] bf16 */, int64_t src_rows,
                              int64_t width, const int32_t* indices /* [num_indices] */,
                              int64_t num_indices, void* dst /* [num_indices, width] bf16 */,
                              cudaStream_t stream);

// out[r, i] = bf16(silu(g) * u) with g = gate_up[r, i], u = gate_up[r, intermediate + i],
// silu(g) = g / (1 + exp(-g)) in fp32.
absl::Status LaunchSiluAndMul(const void* gate_up /* [rows, 2 * intermediate] bf16 */, int64_t rows,
                              int64_t intermediate, void* out /* [rows, intermediate] bf16 */,
                              cudaStream_t stream);

// residual[i] = bf16(float(residual[i]) + float(delta[i])): one fp32 add, one
// rounding, so the result is exactly FloatToBf16 of the CPU's fp32 sum.
absl::Status LaunchResidualAdd(void* residual /* [n] bf16 */, const void* delta /* [n] bf16 */,
                               int64_t n, cudaStream_t stream);

// out[r] = index of the largest of logits[r, :vocab], ties to the lowest
// index, NaN skipped, all-NaN row -> 0 (the CPU twin's rule). One block per row.
absl::Status LaunchArgMaxRows(const float* logits /* [rows, vocab] */, int64_t rows,
                              int64_t vocab, int32_t* out /* [rows] */, cudaStream_t stream);

// y[i, j] = bias[j] (add == false) or y[i, j] = bf16(y[i, j] + bias[j])
// (add == true), for i < m, j < n. The GEMM seeds its output with this and
// then accumulates x . w^T into it (beta = 1).
absl::Status LaunchBroadcastBias(const void* bias /* [n] bf16 */, int64_t m, int64_t n, bool add,
                                 void* y /* [m, n] bf16 */, cudaStream_t stream);

// OK when this binary holds device code the current device can run (SASS for
// its architecture or PTX the driver can compile); FailedPrecondition naming
// the device's compute capability otherwise. CudaBackend::Create calls it so
// an unsupported GPU fails at startup, not at the first launch.
absl::Status ProbeKernelImage(int device_major, int device_minor);

}  // namespace loraserve::cuda
