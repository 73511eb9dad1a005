// CUDA launchers of the multi-adapter LoRA ops (S-LoRA / Punica style):
// shrink v = x . A^T (fp32 intermediate) and expand y += scale * v . B^T,
// over tokens grouped by adapter into segments, each segment and slice at its
// own rank, A / B^T rank-rows read through per-row byte offsets from
// lora.rows_base (LoraSegments / LoraSlice / LoraSliceColumns in
// kernels/op_args.h; the CPU twins are kernels/cpu/cpu_lora.cc). All slices
// of a fused projection (q,k,v; gate,up) go in one launch. The host picks,
// from num_tokens / num_segments, a segmented SGMV-style kernel on tensor
// cores (long segments: prefill), a segmented fp32 FFMA one (medium
// segments) or a gather BGMV-style kernel (many short segments: decode)
// (ChooseLoraKernel, kernels/cuda/cuda_lora_internal.h). num_segments == 0
// returns at once without a launch.
//
// Called by CudaBackend (kernels/cuda/cuda_backend.*), tests and benchmarks.
// Launchers only enqueue on `stream`: never allocate, never synchronise, and
// check host-known values only (InvalidArgument naming the op). Pointers are
// device memory; lora.seg_starts, lora.slices and the offset arrays inside
// each LoraSlice are DEVICE pointers; lora.rows_base is a device address; the
// scalar fields of LoraSegments and all of LoraSliceColumns are host-known.
// Rank-rows must be 2-byte aligned (bf16); 16-byte alignment of rows, x, y and
// widths enables vector loads, checked per row on the device.
// Thread-safe (stateless); each stream from one thread at a time.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "absl/status/status.h"
#include "kernels/op_args.h"

namespace loraserve::cuda {

// For each segment g and slice s with rank r > 0, for each token t of g:
// v[t, s, i] = x[t, :] . A_{g,s}[i, :] in fp32, for i < r. The rest of v
// (i >= r, tokens outside every segment) is left untouched.
absl::Status LaunchLoraShrink(const void* x /* [num_tokens, in] bf16 */, int64_t num_tokens,
                              int64_t in, const LoraSegments& lora,
                              float* v /* [num_tokens, lora.num_slices, lora.max_rank] fp32 */,
                              cudaStream_t stream);

// For each segment g and slice s with rank r > 0, for each token t of g and
// j < cols.offsets[s+1] - cols.offsets[s]:
// y[t, cols.offsets[s] + j] += scale_{g,s} * sum_{i<r} v[t, s, i] * B^T_{g,s}[i, j]
// (fp32 sum, y read and rounded to bf16 once). Other y entries are untouched.
absl::Status LaunchLoraExpand(const float* v /* [num_tokens, lora.num_slices, lora.max_rank] fp32 */,
                              int64_t num_tokens, const LoraSegments& lora,
                              const LoraSliceColumns& cols,
                              void* y /* [num_tokens, y_cols] bf16 */, int64_t y_cols,
                              cudaStream_t stream);

}  // namespace loraserve::cuda
