// Decode graphs of LlamaModel: which decode steps replay a captured graph and
// under which key. A decode-only step of S sequences is padded to a batch
// bucket B >= S (pad rows: token 0, position 0, no K/V write, one key of
// block 0, outside every LoRA segment, their outputs dropped), its attention
// bound rounded up to a context bucket C (which fixes the block-table stride
// and the split-K plan) and its LoRA rank stride to a rank bucket R (0 = no
// LoRA in the step; otherwise every layer and group launches, B segments,
// empty ones at rank 0). Every host-known launch value is then a function of
// (B, C, R) alone, so one graph per key serves every step with that key; the
// step's metadata is uploaded into the same buffers before each launch.
// Pure functions; any thread. Used by engine/model/llama_model*.cc and tests.
#pragma once

#include <cstdint>
#include <optional>
#include <span>

#include "absl/hash/hash.h"

namespace loraserve {

struct SequenceStep;

struct GraphKey {
  int32_t batch = 0;    // B: padded number of sequences (= tokens = logit rows)
  int32_t context = 0;  // C: bound on every sequence's length this step
  int32_t rank = 0;     // R: LoRA rank stride; 0 = no LoRA launches

  bool operator==(const GraphKey&) const = default;
  template <typename H>
  friend H AbslHashValue(H h, const GraphKey& k) {
    return H::combine(std::move(h), k.batch, k.context, k.rank);
  }
};

// Smallest context bucket.
inline constexpr int32_t kMinGraphContext = 256;
// Smallest nonzero rank bucket.
inline constexpr int32_t kMinGraphRank = 16;

// B for S sequences: 1, 2, 4, then multiples of 8.
int32_t GraphBatchBucket(int32_t num_seqs);
// C for a longest sequence of max_seq_len tokens: the next power of two, at
// least kMinGraphContext, capped at max_context when that is > 0 (and still
// >= max_seq_len).
int32_t GraphContextBucket(int32_t max_seq_len, int64_t max_context);
// R for a largest slice rank of max_rank: 0 for 0, else the next power of
// two, at least kMinGraphRank.
int32_t GraphRankBucket(int32_t max_rank);

// True when the step is decode-only: every sequence brings exactly one token
// and wants only that token's logits (or argmax).
bool IsDecodeOnly(std::span<const SequenceStep> sequences);

}  // namespace loraserve
