// Internal to the CUDA paged attention (cuda_paged_attention.cc: host side,
// cuda_paged_attention_kernel.cu, cuda_attention_merge.cu): the launch shape
// of a mixed batch (query rows and heads per CTA, grid, split-K plan)
// computed from host-known numbers only, the layout of the split-K scratch,
// the kernel parameters and the internal launchers. The planning is host-only
// so tests check it without a device. Stateless; any thread.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"

namespace loraserve::cuda::attention_internal {

// Keys staged through shared memory per step of the attention kernel.
inline constexpr int kKeysPerTile = 64;
// Query vectors (query row x q head of one kv-head group) one CTA carries.
inline constexpr int kMaxVectorsPerCta = 16;
// A split-K slice covers at least this many keys (4 tiles): shorter slices
// cost more in merge traffic than they win in parallelism.
inline constexpr int64_t kMinKeysPerSplit = 256;
inline constexpr int32_t kMaxSplits = 64;
// Split until about this many CTAs per SM are in the grid.
inline constexpr int64_t kTargetCtasPerSm = 4;
// Used when the device cannot be asked (no device, or an error).
inline constexpr int kFallbackSmCount = 132;

struct AttentionLaunchShape {
  int32_t group = 1;          // q heads per kv head
  int32_t heads_per_cta = 1;  // q heads of one group in one CTA (<= kMaxVectorsPerCta)
  int32_t head_chunks = 1;    // CTAs across one group's q heads
  int32_t rows_per_cta = 1;   // query rows per CTA tile (heads_per_cta * rows <= 16)
  int64_t num_main_tiles = 0; // ceil(num_tokens / rows_per_cta)
  int64_t grid_x = 0;         // main tiles (+ one head tile per sequence when rows_per_cta > 1)
  int64_t grid_y = 0;         // num_kv_heads * head_chunks
  int32_t num_splits = 1;     // grid_z; 1 = no split-K, no scratch, no merge
  int64_t keys_per_split = 0; // multiple of kKeysPerTile; the last split runs to the end
};

// Bytes of scratch one split needs: o_part [num_tokens, num_q_heads, 1, head_dim]
// fp32 plus (m, l) [num_tokens, num_q_heads, 1] float2.
int64_t ScratchBytesPerSplit(int64_t num_tokens, int32_t num_q_heads, int32_t head_dim);

// Number of SMs of the current device, kFallbackSmCount when it cannot be read.
int CurrentSmCount();

// Splits for a grid of `ctas` CTAs over keys up to max_seq_len, capped by
// what `scratch_bytes` holds (at bytes_per_split each). keys_per_split is 0
// when num_splits == 1.
void PlanSplits(int64_t ctas, int64_t max_seq_len, int sm_count, int64_t bytes_per_split,
                size_t scratch_bytes, AttentionLaunchShape& shape);

// The launch shape LaunchPagedAttention uses. Inputs must be valid
// (num_q_heads a positive multiple of num_kv_heads, num_tokens >= 1).
AttentionLaunchShape PlanAttention(int64_t num_tokens, int32_t num_q_heads,
                                   int32_t num_kv_heads, int32_t num_seqs, int32_t head_dim,
                                   int32_t max_seq_len, size_t scratch_bytes, int sm_count);

// Scratch PagedAttentionScratchBytes reports, for a given sm_count.
size_t ScratchBytesWanted(int64_t num_tokens, int32_t num_q_heads, int32_t head_dim,
                          int32_t max_seq_len, int sm_count);

// Splits a query row at `pos` (0-based position) has under a plan: its keys
// [0, pos] cover splits [0, n). Same formula on host and device.
__host__ __device__ inline int32_t SplitsOfRow(int64_t pos, int64_t keys_per_split,
                                               int32_t num_splits) {
  if (num_splits <= 1 || pos < 0) return 1;
  const int64_t n = pos / keys_per_split + 1;
  return n < num_splits ? static_cast<int32_t>(n) : num_splits;
}

// Everything the attention kernel reads (device pointers; see AttentionBatch
// and KvLayout). head_dim is one of 64, 80, 96, 128.
struct AttentionParams {
  const void* q;              // [num_tokens, q_row_stride] bf16
  int64_t q_row_stride;
  void* out;                  // [num_tokens, num_q_heads * head_dim] bf16
  int64_t out_row_stride;
  int64_t num_tokens;
  int32_t head_dim;
  int32_t num_q_heads;
  int32_t group;
  int32_t heads_per_cta;
  int32_t head_chunks;
  int32_t rows_per_cta;
  int64_t num_main_tiles;
  const int32_t* query_start; // [num_seqs + 1]
  const int32_t* seq_lens;    // [num_seqs]
  const int32_t* block_tables;// [num_seqs, max_blocks_per_seq]
  int32_t num_seqs;
  int32_t max_blocks_per_seq;
  const void* kv_base;        // KvLayout blocks, bf16
  int64_t block_stride_bytes;
  int32_t block_tokens;
  int64_t k_layer_offset;     // elements: ElementOffsetInBlock(layer, 0, 0, 0)
  int64_t v_minus_k;          // elements from a K row to its V row
  int64_t slot_stride;        // elements between slots: num_kv_heads * D
  float scale_log2;           // scale * log2(e)
  int32_t num_splits;
  int64_t keys_per_split;
  float* o_part;              // [num_tokens, num_q_heads, num_splits, head_dim] when split
  float2* ml_part;            // [num_tokens, num_q_heads, num_splits] when split
  bool kv_vec_ok;             // kv_base and block stride 16-byte aligned
};

// Launches the attention kernel for params.head_dim over shape's grid.
absl::Status LaunchAttentionKernel(const AttentionParams& params,
                                   const AttentionLaunchShape& shape, cudaStream_t stream);

// The merge of split-K partials into out, for rows with more than one split.
struct MergeParams {
  const float* o_part = nullptr;     // [num_tokens, num_q_heads, num_splits, head_dim]
  const float2* ml_part = nullptr;   // [num_tokens, num_q_heads, num_splits] (max log2, sum)
  void* out = nullptr;               // [num_tokens, num_q_heads * head_dim] bf16
  int64_t num_tokens = 0;
  int32_t num_q_heads = 0;
  int32_t head_dim = 0;
  int32_t num_splits = 1;
  int64_t keys_per_split = 0;
  const int32_t* query_start = nullptr;  // [num_seqs + 1] device
  const int32_t* seq_lens = nullptr;     // [num_seqs] device
  int32_t num_seqs = 0;
};
absl::Status LaunchMergeSplits(const MergeParams& params, cudaStream_t stream);

}  // namespace loraserve::cuda::attention_internal
