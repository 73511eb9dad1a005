// The pure bucket functions of engine/model/llama_model_graph.h.
#include <algorithm>
#include <bit>

#include "engine/model/llama_model.h"
#include "engine/model/llama_model_graph.h"

namespace loraserve {

int32_t GraphBatchBucket(int32_t num_seqs) {
  if (num_seqs <= 1) return 1;
  if (num_seqs <= 2) return 2;
  if (num_seqs <= 4) return 4;
  return (num_seqs + 7) / 8 * 8;
}

int32_t GraphContextBucket(int32_t max_seq_len, int64_t max_context) {
  const uint32_t want = static_cast<uint32_t>(std::max(max_seq_len, kMinGraphContext));
  // The next power of two, or max_seq_len itself where that would not fit int32.
  int64_t c = want > (uint32_t{1} << 30) ? int64_t{max_seq_len} : int64_t{std::bit_ceil(want)};
  if (max_context > 0 && c > max_context) c = std::max<int64_t>(max_context, max_seq_len);
  return static_cast<int32_t>(c);
}

int32_t GraphRankBucket(int32_t max_rank) {
  if (max_rank <= 0) return 0;
  return static_cast<int32_t>(
      std::bit_ceil(static_cast<uint32_t>(std::max(max_rank, kMinGraphRank))));
}

bool IsDecodeOnly(std::span<const SequenceStep> sequences) {
  return !sequences.empty() && std::all_of(sequences.begin(), sequences.end(), [](const auto& s) {
    return s.tokens.size() == 1 && s.compute_logits && !s.all_logits;
  });
}

}  // namespace loraserve
