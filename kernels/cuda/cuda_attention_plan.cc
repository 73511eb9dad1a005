// Host-side launch planning of the CUDA paged attention
// (kernels/cuda/cuda_attention_plan.h) and PagedAttentionScratchBytes.
#include "kernels/cuda/cuda_attention_plan.h"

#include <algorithm>

#include "kernels/cuda/cuda_attention.h"

namespace loraserve::cuda {
namespace attention_internal {
namespace {

int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

}  // namespace

int64_t ScratchBytesPerSplit(int64_t num_tokens, int32_t num_q_heads, int32_t head_dim) {
  return num_tokens * num_q_heads * (int64_t{head_dim} + 2) * static_cast<int64_t>(sizeof(float));
}

int CurrentSmCount() {
  int device = 0;
  int sms = 0;
  if (cudaGetDevice(&device) != cudaSuccess ||
      cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device) != cudaSuccess ||
      sms <= 0) {
    cudaGetLastError();  // not sticky; clear it so the next launch check stays clean
    return kFallbackSmCount;
  }
  return sms;
}

void PlanSplits(int64_t ctas, int64_t max_seq_len, int sm_count, int64_t bytes_per_split,
                size_t scratch_bytes, AttentionLaunchShape& shape) {
  shape.num_splits = 1;
  shape.keys_per_split = 0;
  if (max_seq_len <= kMinKeysPerSplit || ctas <= 0 || bytes_per_split <= 0) return;
  const int64_t target = kTargetCtasPerSm * std::max(sm_count, 1);
  int64_t n = CeilDiv(target, ctas);
  n = std::min(n, CeilDiv(max_seq_len, kMinKeysPerSplit));
  n = std::min<int64_t>(n, kMaxSplits);
  n = std::min<int64_t>(n, static_cast<int64_t>(scratch_bytes / static_cast<size_t>(bytes_per_split)));
  if (n <= 1) return;
  const int64_t per = CeilDiv(CeilDiv(max_seq_len, n), kKeysPerTile) * kKeysPerTile;
  n = CeilDiv(max_seq_len, per);  // rounding per up never needs more splits
  if (n <= 1) return;
  shape.num_splits = static_cast<int32_t>(n);
  shape.keys_per_split = per;
}

AttentionLaunchShape PlanAttention(int64_t num_tokens, int32_t num_q_heads,
                                   int32_t num_kv_heads, int32_t num_seqs, int32_t head_dim,
                                   int32_t max_seq_len, size_t scratch_bytes, int sm_count) {
  AttentionLaunchShape s;
  s.group = num_q_heads / num_kv_heads;
  s.heads_per_cta = std::min(s.group, kMaxVectorsPerCta);
  s.head_chunks = static_cast<int32_t>(CeilDiv(s.group, s.heads_per_cta));
  s.rows_per_cta = std::max(1, kMaxVectorsPerCta / s.heads_per_cta);
  // A decode-only batch (one row per sequence or fewer) gains nothing from
  // row tiles: one row per CTA, no head tiles.
  if (num_tokens <= num_seqs) s.rows_per_cta = 1;
  s.num_main_tiles = CeilDiv(num_tokens, s.rows_per_cta);
  s.grid_x = s.num_main_tiles + (s.rows_per_cta > 1 ? num_seqs : 0);
  s.grid_y = int64_t{num_kv_heads} * s.head_chunks;
  PlanSplits(s.grid_x * s.grid_y, max_seq_len, sm_count,
             ScratchBytesPerSplit(num_tokens, num_q_heads, head_dim), scratch_bytes, s);
  return s;
}

size_t ScratchBytesWanted(int64_t num_tokens, int32_t num_q_heads, int32_t head_dim,
                          int32_t max_seq_len, int sm_count) {
  if (num_tokens <= 0 || num_q_heads <= 0 || head_dim <= 0) return 0;
  // Every CTA carries at most kMaxVectorsPerCta (row, head) vectors, so the
  // launcher's grid has at least this many CTAs whatever num_kv_heads and
  // num_seqs are. More CTAs only ever ask for fewer splits, so the launcher,
  // given this much scratch, always gets its whole plan.
  AttentionLaunchShape s;
  const int64_t per_split = ScratchBytesPerSplit(num_tokens, num_q_heads, head_dim);
  PlanSplits(CeilDiv(num_tokens * num_q_heads, kMaxVectorsPerCta), max_seq_len, sm_count,
             per_split, ~size_t{0}, s);
  return s.num_splits > 1 ? static_cast<size_t>(per_split) * s.num_splits : 0;
}

}  // namespace attention_internal

size_t PagedAttentionScratchBytes(int64_t num_tokens, int32_t num_q_heads, int32_t head_dim,
                                  int32_t max_seq_len) {
  return attention_internal::ScratchBytesWanted(num_tokens, num_q_heads, head_dim, max_seq_len,
                                                attention_internal::CurrentSmCount());
}

}  // namespace loraserve::cuda
