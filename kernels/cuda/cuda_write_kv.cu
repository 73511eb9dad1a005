// LaunchWriteKv (kernels/cuda/cuda_attention.h): copies each token's K and V
// heads into its paged-cache slot. All heads of one (layer, kv, slot) are
// contiguous (kernels/kv_layout.h), so each token is two straight copies of
// num_kv_heads * head_dim bf16: bit-exact, like the CPU memcpy.
// Grid: one CTA per token (grid-stride beyond 2^20 tokens), 128 threads over
// the row; 16-byte accesses when source, destination and width allow.
#include <cuda_bf16.h>

#include "absl/strings/str_cat.h"
#include "common/cuda/cuda_status.h"
#include "common/status.h"
#include "kernels/cuda/cuda_attention.h"
#include "kernels/cuda/cuda_batched_util.cuh"

namespace loraserve::cuda {
namespace {

using batched_internal::Aligned16;
using batched_internal::Bf16;

constexpr int kThreads = 128;
constexpr int64_t kMaxBlocks = int64_t{1} << 20;

struct WriteKvParams {
  const Bf16* k;            // [num_tokens, k_row_stride]
  int64_t k_row_stride;     // elements
  const Bf16* v;            // [num_tokens, v_row_stride]
  int64_t v_row_stride;     // elements
  int64_t num_tokens;
  const int64_t* slots;     // [num_tokens]
  uint8_t* kv_base;         // KvLayout blocks
  int64_t block_stride_bytes;
  int32_t block_tokens;
  int32_t width;            // num_kv_heads * head_dim
  int64_t k_layer_offset;   // elements: ElementOffsetInBlock(layer, 0, 0, 0)
  int64_t v_minus_k;        // elements from K slot to V slot: block_tokens * width
};

__device__ __forceinline__ void CopyRow(Bf16* dst, const Bf16* src, int32_t width) {
  if ((width & 7) == 0 && Aligned16(dst) && Aligned16(src)) {
    const int32_t n = width >> 3;
    auto* d4 = reinterpret_cast<uint4*>(dst);
    const auto* s4 = reinterpret_cast<const uint4*>(src);
    for (int32_t i = threadIdx.x; i < n; i += kThreads) d4[i] = __ldg(s4 + i);
  } else {
    for (int32_t i = threadIdx.x; i < width; i += kThreads) dst[i] = src[i];
  }
}

__global__ void __launch_bounds__(kThreads) WriteKvKernel(const WriteKvParams p) {
  for (int64_t t = blockIdx.x; t < p.num_tokens; t += gridDim.x) {
    const int64_t slot = p.slots[t];
    if (slot < 0) continue;  // -1: padding token, nothing to write
    const int64_t block = slot / p.block_tokens;
    const int64_t offset = slot % p.block_tokens;
    Bf16* dst_k = reinterpret_cast<Bf16*>(p.kv_base + block * p.block_stride_bytes) +
                  p.k_layer_offset + offset * p.width;
    CopyRow(dst_k, p.k + t * p.k_row_stride, p.width);
    CopyRow(dst_k + p.v_minus_k, p.v + t * p.v_row_stride, p.width);
  }
}

}  // namespace

absl::Status LaunchWriteKv(const void* k, int64_t k_row_stride, const void* v,
                           int64_t v_row_stride, int64_t num_tokens,
                           const int64_t* slot_mapping, void* kv_base, const KvLayout& layout,
                           int32_t layer, cudaStream_t stream) {
  constexpr const char* kOp = "WriteKv";
  RETURN_IF_ERROR(layout.Validate(kOp, sizeof(Bf16)));
  if (num_tokens < 0) {
    return absl::InvalidArgumentError(absl::StrCat(kOp, ": num_tokens=", num_tokens, " < 0"));
  }
  if (layer < 0 || layer >= layout.num_layers) {
    return absl::InvalidArgumentError(
        absl::StrCat(kOp, ": layer ", layer, " outside [0, ", layout.num_layers, ")"));
  }
  const int64_t width = int64_t{layout.num_kv_heads} * layout.head_dim;
  if (width > (int64_t{1} << 30)) {
    return absl::InvalidArgumentError(
        absl::StrCat(kOp, ": num_kv_heads * head_dim=", width, " is too large"));
  }
  if (k_row_stride < width || v_row_stride < width) {
    return absl::InvalidArgumentError(
        absl::StrCat(kOp, ": k_row_stride=", k_row_stride, " and v_row_stride=", v_row_stride,
                     " must be >= num_kv_heads * head_dim=", width));
  }
  if (num_tokens == 0) return absl::OkStatus();
  if (k == nullptr || v == nullptr || slot_mapping == nullptr || kv_base == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(kOp, ": null k, v, slot_mapping or kv_base pointer"));
  }
  WriteKvParams p;
  p.k = static_cast<const Bf16*>(k);
  p.k_row_stride = k_row_stride;
  p.v = static_cast<const Bf16*>(v);
  p.v_row_stride = v_row_stride;
  p.num_tokens = num_tokens;
  p.slots = slot_mapping;
  p.kv_base = static_cast<uint8_t*>(kv_base);
  p.block_stride_bytes = layout.block_stride_bytes;
  p.block_tokens = layout.block_tokens;
  p.width = static_cast<int32_t>(width);
  p.k_layer_offset = layout.ElementOffsetInBlock(layer, 0, 0, 0);
  p.v_minus_k = layout.ElementOffsetInBlock(layer, 1, 0, 0) - p.k_layer_offset;
  const unsigned blocks = static_cast<unsigned>(num_tokens < kMaxBlocks ? num_tokens : kMaxBlocks);
  WriteKvKernel<<<blocks, kThreads, 0, stream>>>(p);
  RETURN_IF_CUDA_ERROR(cudaGetLastError());
  return absl::OkStatus();
}

}  // namespace loraserve::cuda
