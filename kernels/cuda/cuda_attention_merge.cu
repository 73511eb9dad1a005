// Split-K ("flash-decoding") merge of the CUDA paged attention
// (kernels/cuda/cuda_attention_plan.h): for each query row with more than one
// split, out = sum_s 2^(m_s - M) o_s / sum_s 2^(m_s - M) l_s over its splits,
// where each split wrote its unnormalised output o_s, its running max m_s
// (log2 domain) and its sum l_s. Rows with one split were written directly by
// the attention kernel and are skipped here.
// Grid: one CTA per query row (grid-stride beyond 2^20), 128 threads over
// (head, dim).
#include <cuda_bf16.h>

#include "common/cuda/cuda_status.h"
#include "kernels/cuda/cuda_attention_plan.h"
#include "kernels/cuda/cuda_batched_util.cuh"

namespace loraserve::cuda::attention_internal {
namespace {

using batched_internal::Bf16;
using batched_internal::GroupOfRow;

constexpr int kThreads = 128;
constexpr int64_t kMaxBlocks = int64_t{1} << 20;

__global__ void __launch_bounds__(kThreads) MergeSplitsKernel(const MergeParams p) {
  auto* out = static_cast<Bf16*>(p.out);
  const int64_t width = int64_t{p.num_q_heads} * p.head_dim;
  for (int64_t t = blockIdx.x; t < p.num_tokens; t += gridDim.x) {
    const int32_t seq = GroupOfRow(p.query_start, p.num_seqs, t);
    if (seq < 0 || seq >= p.num_seqs) continue;  // row outside every sequence: untouched
    const int64_t q_begin = p.query_start[seq];
    const int64_t q_len = p.query_start[seq + 1] - q_begin;
    const int64_t pos = p.seq_lens[seq] - q_len + (t - q_begin);
    const int32_t n = SplitsOfRow(pos, p.keys_per_split, p.num_splits);
    if (n <= 1) continue;  // written by the attention kernel itself
    for (int64_t idx = threadIdx.x; idx < width; idx += kThreads) {
      const int64_t h = idx / p.head_dim;
      const int64_t d = idx - h * p.head_dim;
      const int64_t base = (t * p.num_q_heads + h) * p.num_splits;
      float m = -INFINITY;
      for (int32_t s = 0; s < n; ++s) m = fmaxf(m, p.ml_part[base + s].x);
      float l = 0.0f;
      float o = 0.0f;
      for (int32_t s = 0; s < n; ++s) {
        const float2 ml = p.ml_part[base + s];
        const float w = ml.x == -INFINITY ? 0.0f : exp2f(ml.x - m);
        l = fmaf(ml.y, w, l);
        o = fmaf(p.o_part[(base + s) * p.head_dim + d], w, o);
      }
      out[t * width + idx] = __float2bfloat16_rn(o / l);
    }
  }
}

}  // namespace

absl::Status LaunchMergeSplits(const MergeParams& params, cudaStream_t stream) {
  if (params.num_tokens <= 0 || params.num_splits <= 1) return absl::OkStatus();
  const unsigned blocks =
      static_cast<unsigned>(params.num_tokens < kMaxBlocks ? params.num_tokens : kMaxBlocks);
  MergeSplitsKernel<<<blocks, kThreads, 0, stream>>>(params);
  RETURN_IF_CUDA_ERROR(cudaGetLastError());
  return absl::OkStatus();
}

}  // namespace loraserve::cuda::attention_internal
