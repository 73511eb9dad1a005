// CUDA launcher of CudaBackend::SampleCandidates (kernels/backend.h): per row
// of fp32 logits, the k best (id, logit) pairs by the host sampler's ranking
// (logits_ops::Before) and the sum of its exp weights over the whole row,
// each weight computed bit for bit as logits_ops::ExpWeights does (the same
// polynomial, unfused fp32 operations) and summed in double in a tree order
// (the CPU twin sums in its vector-lane order: totals agree to within
// 2 vocab 2^-53 relative, ids and values exactly).
//
// One block per row: each warp keeps the k best 64-bit rank keys of its slice
// (two list positions per lane, in registers, insertion only for an element
// that beats the warp's current k-th), then every listed key finds its rank
// among all warps' lists by binary search; a second pass sums the weights.
//
// Called by CudaBackend (kernels/cuda/cuda_backend_sample_candidates.cc) and
// tests. Only enqueues on `stream`: never allocates, never synchronises.
// Arguments are validated by the caller (op_checks::CheckSampleCandidatesArgs:
// 1 <= k <= min(kMaxSampleCandidates, vocab), vocab fits int32); the
// temperatures, device data, must be finite and > 0 (not checked here).
// Thread-safe (stateless).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "absl/status/status.h"

namespace loraserve::cuda {

absl::Status LaunchSampleCandidates(const float* logits /* [rows, vocab] */, int64_t rows,
                                    int64_t vocab, const float* temperature /* [rows] */, int32_t k,
                                    int32_t* ids /* [rows, k] */, float* values /* [rows, k] */,
                                    double* total /* [rows] */, cudaStream_t stream);

}  // namespace loraserve::cuda
