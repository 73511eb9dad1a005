// LaunchPagedAttention (kernels/cuda/cuda_attention.h), host side: checks
// the host-known values, plans the launch (cuda_attention_plan.h), launches
// the attention kernel (cuda_paged_attention_kernel.cu) and, with split-K,
// the merge (cuda_attention_merge.cu).
#include <cstdint>
#include <numbers>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "kernels/cuda/cuda_attention.h"
#include "kernels/cuda/cuda_attention_plan.h"

namespace loraserve::cuda {

using attention_internal::AttentionLaunchShape;
using attention_internal::AttentionParams;
using attention_internal::CurrentSmCount;
using attention_internal::LaunchAttentionKernel;
using attention_internal::LaunchMergeSplits;
using attention_internal::MergeParams;
using attention_internal::PlanAttention;

namespace {
constexpr size_t kBf16Bytes = 2;
}  // namespace

absl::Status LaunchPagedAttention(const void* q, int64_t q_row_stride, int64_t num_tokens,
                                  int32_t num_q_heads, const AttentionBatch& batch,
                                  const void* kv_base, const KvLayout& layout, int32_t layer,
                                  float scale, void* out, void* scratch, size_t scratch_bytes,
                                  cudaStream_t stream) {
  constexpr const char* kOp = "PagedAttention";
  RETURN_IF_ERROR(layout.Validate(kOp, kBf16Bytes));
  if (num_tokens < 0) {
    return absl::InvalidArgumentError(absl::StrCat(kOp, ": num_tokens=", num_tokens, " < 0"));
  }
  if (layer < 0 || layer >= layout.num_layers) {
    return absl::InvalidArgumentError(
        absl::StrCat(kOp, ": layer ", layer, " outside [0, ", layout.num_layers, ")"));
  }
  const int32_t d = layout.head_dim;
  if (d != 64 && d != 80 && d != 96 && d != 128) {
    return absl::InvalidArgumentError(absl::StrCat(
        kOp, ": head_dim ", d, " is not supported by the CUDA kernels (64, 80, 96 or 128)"));
  }
  if (num_q_heads <= 0 || num_q_heads % layout.num_kv_heads != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(kOp, ": num_q_heads=", num_q_heads,
                     " must be a positive multiple of num_kv_heads=", layout.num_kv_heads));
  }
  if (q_row_stride < int64_t{num_q_heads} * d) {
    return absl::InvalidArgumentError(absl::StrCat(kOp, ": q_row_stride=", q_row_stride,
                                                   " is below num_q_heads * head_dim=",
                                                   int64_t{num_q_heads} * d));
  }
  if (num_tokens == 0) return absl::OkStatus();
  if (batch.num_seqs <= 0 || batch.max_blocks_per_seq <= 0 || batch.max_seq_len <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(kOp, ": batch.num_seqs=", batch.num_seqs, ", batch.max_blocks_per_seq=",
                     batch.max_blocks_per_seq, " and batch.max_seq_len=", batch.max_seq_len,
                     " must be positive"));
  }
  if (q == nullptr || out == nullptr || kv_base == nullptr || batch.query_start == nullptr ||
      batch.seq_lens == nullptr || batch.block_tables == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(kOp, ": null q, out, kv_base or batch metadata pointer"));
  }
  const bool scratch_ok =
      scratch != nullptr && reinterpret_cast<uintptr_t>(scratch) % 16 == 0;
  const AttentionLaunchShape shape =
      PlanAttention(num_tokens, num_q_heads, layout.num_kv_heads, batch.num_seqs, d,
                    batch.max_seq_len, scratch_ok ? scratch_bytes : 0, CurrentSmCount());
  if (shape.grid_y > 65535 || shape.grid_x > 0x7fffffff) {
    return absl::InvalidArgumentError(absl::StrCat(
        kOp, ": grid of ", shape.grid_x, " x ", shape.grid_y,
        " CTAs exceeds the CUDA limits (num_tokens=", num_tokens, ", num_q_heads=", num_q_heads,
        ")"));
  }

  AttentionParams p;
  p.q = q;
  p.q_row_stride = q_row_stride;
  p.out = out;
  p.out_row_stride = int64_t{num_q_heads} * d;
  p.num_tokens = num_tokens;
  p.head_dim = d;
  p.num_q_heads = num_q_heads;
  p.group = shape.group;
  p.heads_per_cta = shape.heads_per_cta;
  p.head_chunks = shape.head_chunks;
  p.rows_per_cta = shape.rows_per_cta;
  p.num_main_tiles = shape.num_main_tiles;
  p.query_start = batch.query_start;
  p.seq_lens = batch.seq_lens;
  p.block_tables = batch.block_tables;
  p.num_seqs = batch.num_seqs;
  p.max_blocks_per_seq = batch.max_blocks_per_seq;
  p.kv_base = kv_base;
  p.block_stride_bytes = layout.block_stride_bytes;
  p.block_tokens = layout.block_tokens;
  p.k_layer_offset = layout.ElementOffsetInBlock(layer, 0, 0, 0);
  p.v_minus_k = layout.ElementOffsetInBlock(layer, 1, 0, 0) - p.k_layer_offset;
  p.slot_stride = int64_t{layout.num_kv_heads} * d;
  p.scale_log2 = scale * std::numbers::log2e_v<float>;
  p.num_splits = shape.num_splits;
  p.keys_per_split = shape.keys_per_split;
  p.o_part = nullptr;
  p.ml_part = nullptr;
  if (shape.num_splits > 1) {
    const int64_t o_bytes =
        num_tokens * num_q_heads * int64_t{shape.num_splits} * d * int64_t{sizeof(float)};
    p.o_part = static_cast<float*>(scratch);
    p.ml_part = reinterpret_cast<float2*>(static_cast<uint8_t*>(scratch) + o_bytes);
  }
  p.kv_vec_ok = reinterpret_cast<uintptr_t>(kv_base) % 16 == 0 &&
                layout.block_stride_bytes % 16 == 0;

  RETURN_IF_ERROR(LaunchAttentionKernel(p, shape, stream));
  if (shape.num_splits > 1) {
    MergeParams m;
    m.o_part = p.o_part;
    m.ml_part = p.ml_part;
    m.out = out;
    m.num_tokens = num_tokens;
    m.num_q_heads = num_q_heads;
    m.head_dim = d;
    m.num_splits = shape.num_splits;
    m.keys_per_split = shape.keys_per_split;
    m.query_start = batch.query_start;
    m.seq_lens = batch.seq_lens;
    m.num_seqs = batch.num_seqs;
    RETURN_IF_ERROR(LaunchMergeSplits(m, stream));
  }
  return absl::OkStatus();
}

}  // namespace loraserve::cuda
