// Argument structs of the batched ops in kernels/backend.h: the metadata of a
// mixed attention batch and of a segmented LoRA launch. Plain data holding raw
// pointers into backend memory (host memory on CPU); the caller owns what they
// point to and keeps it alive until the op's stream has passed the op.
// Any thread.
#pragma once

#include <array>
#include <cstdint>

#include "kernels/logits_ops.h"

namespace loraserve {

// Largest LoRA rank any backend supports (the CUDA kernels are specialised up
// to it); adapters above it are refused at load.
inline constexpr int32_t kMaxLoraRank = 256;
// Most projections sharing one input in one LoRA launch (q,k,v).
inline constexpr int32_t kMaxLoraSlices = 3;
// Largest head_dim the attention/RoPE ops support.
inline constexpr int32_t kMaxHeadDim = 512;
// Most candidates per row Backend::SampleCandidates returns: as many as the
// host sampler's top-p pass tries before it searches the whole vocabulary.
inline constexpr int32_t kMaxSampleCandidates = logits_ops::kTopCandidates;

// A mixed batch for paged attention: prefill chunks and decodes of several
// sequences. Sequence i owns query rows [query_start[i], query_start[i+1]) of
// q/out; its new tokens are the LAST (query_start[i+1]-query_start[i]) of its
// seq_lens[i] tokens, i.e. token j of the chunk is at position
// seq_lens[i] - q_len_i + j and attends causally to positions [0, that]. Its
// K/V for every position (cached and new: write the new ones first) is read
// through its block table row.
struct AttentionBatch {
  int32_t num_seqs = 0;
  const int32_t* query_start = nullptr;   // [num_seqs + 1], query_start[0] == 0, nondecreasing
  const int32_t* seq_lens = nullptr;      // [num_seqs], >= that sequence's query length
  const int32_t* block_tables = nullptr;  // [num_seqs, max_blocks_per_seq] block ids
  int32_t max_blocks_per_seq = 0;         // row stride of block_tables
  int32_t max_seq_len = 0;                // host-known bound on every seq_lens[i]
};

// One adapter's LoRA weights for one layer and one projection (a "slice" of a
// fused projection), read as rank-rows so the pool may place rows anywhere.
// A is [rank, in] and B^T is [rank, out_slice], both in the backend's storage
// dtype, row i starting at rows_base + a_row_offsets[i] (resp. bt_row_offsets).
struct LoraSlice {
  int32_t rank = 0;                         // 0 = no LoRA here: skipped at zero cost
  float scale = 0.0f;                       // lora_alpha / r (or / sqrt(r) with rsLoRA)
  const int64_t* a_row_offsets = nullptr;   // [rank]: bytes from rows_base to A row i ([in])
  const int64_t* bt_row_offsets = nullptr;  // [rank]: bytes from rows_base to B^T row i ([out_slice])
};

// Tokens grouped by adapter into segments, for one layer and one (possibly
// fused) projection. Segment g covers token rows [seg_starts[g], seg_starts[g+1])
// and uses slices[g * num_slices + s] for slice s. Rows outside
// [seg_starts[0], seg_starts[num_segments]) are not touched (base-model tokens
// can simply be left out). Each segment runs at its own rank.
//
// The fp32 intermediate v is [num_tokens, num_slices, max_rank] row-major:
// v[t, s, r] = v[(t * num_slices + s) * max_rank + r]. Only r < rank of token
// t's slice s is written by the shrink and read by the expand; the rest (and
// rows of tokens outside every segment) is left untouched.
struct LoraSegments {
  const void* rows_base = nullptr;      // base the row offsets count from
  int32_t num_segments = 0;
  int32_t num_slices = 1;               // 1..kMaxLoraSlices
  const int32_t* seg_starts = nullptr;  // [num_segments + 1], nondecreasing
  const LoraSlice* slices = nullptr;    // [num_segments, num_slices]
  int32_t max_rank = 0;                 // v's innermost stride: >= every slice rank, <= kMaxLoraRank
};

// Output columns of each slice in the fused projection output y: slice s adds
// into columns [offsets[s], offsets[s+1]) of each y row. E.g. q,k,v:
// {0, q_out, q_out + k_out, q_out + k_out + v_out}.
struct LoraSliceColumns {
  int32_t num_slices = 1;
  std::array<int64_t, kMaxLoraSlices + 1> offsets{};
};

}  // namespace loraserve
