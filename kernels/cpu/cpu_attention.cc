// CpuBackend: WriteKv and PagedAttention (mixed prefill-chunk / decode batch,
// causal, GQA, K/V read through block tables). Softmax is computed online over
// tiles of keys with double accumulators, so no scratch memory is needed.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>

#include "common/status.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/cpu_graph.h"
#include "kernels/op_checks.h"

namespace loraserve {

namespace {

constexpr int kKeyTile = 64;

// Index i of the sequence whose query rows [query_start[i], query_start[i+1]) hold row t.
int32_t SequenceOfRow(const int32_t* query_start, int32_t num_seqs, int64_t t) {
  // First i with query_start[i + 1] > t.
  const int32_t* it = std::upper_bound(query_start + 1, query_start + num_seqs + 1, t);
  return static_cast<int32_t>(it - (query_start + 1));
}

// The data behind the batch's pointers (op_checks checked the counts and
// pointers): query rows, sequence lengths, block ids.
absl::Status ValidateAttentionBatch(const AttentionBatch& b, int64_t num_tokens,
                                    int32_t block_tokens) {
  constexpr const char* kOp = "PagedAttention";
  if (b.query_start[0] != 0 || b.query_start[b.num_seqs] != num_tokens) {
    return absl::InvalidArgumentError(
        absl::StrCat(kOp, ": batch.query_start must run from 0 to num_tokens=", num_tokens,
                     "; got ", b.query_start[0], "..", b.query_start[b.num_seqs]));
  }
  for (int32_t i = 0; i < b.num_seqs; ++i) {
    const int64_t q_len = int64_t{b.query_start[i + 1]} - b.query_start[i];
    const int32_t len = b.seq_lens[i];
    if (q_len < 0 || len < q_len || len > b.max_seq_len) {
      return absl::InvalidArgumentError(
          absl::StrCat(kOp, ": sequence ", i, " has query length ", q_len, " and seq_len ", len,
                       " (need 0 <= query length <= seq_len <= max_seq_len=", b.max_seq_len, ")"));
    }
    const int64_t blocks = (int64_t{len} + block_tokens - 1) / block_tokens;
    if (blocks > b.max_blocks_per_seq) {
      return absl::InvalidArgumentError(
          absl::StrCat(kOp, ": sequence ", i, " needs ", blocks, " blocks for seq_len ", len,
                       " but max_blocks_per_seq=", b.max_blocks_per_seq));
    }
    const int32_t* table = b.block_tables + int64_t{i} * b.max_blocks_per_seq;
    for (int64_t j = 0; j < blocks; ++j) {
      if (table[j] < 0) {
        return absl::InvalidArgumentError(absl::StrCat(kOp, ": sequence ", i, " block_tables[", j,
                                                       "]=", table[j], " is negative"));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status CpuBackend::WriteKv(const void* k, int64_t k_row_stride, const void* v,
                                 int64_t v_row_stride, int64_t num_tokens,
                                 const int64_t* slot_mapping, void* kv_base, const KvLayout& layout,
                                 int32_t layer, StreamRef stream) {
  LS_CPU_RECORD(stream, WriteKv(k, k_row_stride, v, v_row_stride, num_tokens, slot_mapping, kv_base,
                                layout, layer, StreamRef{}));
  constexpr const char* kOp = "WriteKv";
  ASSIGN_OR_RETURN(const bool has_work, op_checks::CheckWriteKvArgs(
                                            k, k_row_stride, v, v_row_stride, num_tokens,
                                            slot_mapping, kv_base, layout, layer, sizeof(float)));
  if (!has_work) return absl::OkStatus();
  for (int64_t t = 0; t < num_tokens; ++t) {
    if (slot_mapping[t] < -1) {
      return absl::InvalidArgumentError(
          absl::StrCat(kOp, ": slot_mapping[", t, "]=", slot_mapping[t], " is below -1"));
    }
  }
  const int64_t width = int64_t{layout.num_kv_heads} * layout.head_dim;
  auto* base = static_cast<uint8_t*>(kv_base);
  const auto* ks = static_cast<const float*>(k);
  const auto* vs = static_cast<const float*>(v);
  for (int64_t t = 0; t < num_tokens; ++t) {
    const int64_t slot = slot_mapping[t];
    if (slot < 0) continue;
    const int64_t block = slot / layout.block_tokens;
    const int64_t s = slot % layout.block_tokens;
    // All heads of one (layer, kv, slot) are contiguous.
    std::memcpy(base + layout.ByteOffset(block, layer, 0, s, 0, sizeof(float)),
                ks + t * k_row_stride, static_cast<size_t>(width) * sizeof(float));
    std::memcpy(base + layout.ByteOffset(block, layer, 1, s, 0, sizeof(float)),
                vs + t * v_row_stride, static_cast<size_t>(width) * sizeof(float));
  }
  return absl::OkStatus();
}

absl::Status CpuBackend::PagedAttention(const void* q, int64_t q_row_stride, int64_t num_tokens,
                                        int32_t num_q_heads, const AttentionBatch& batch,
                                        const void* kv_base, const KvLayout& layout, int32_t layer,
                                        float scale, void* out, StreamRef stream) {
  LS_CPU_RECORD(stream, PagedAttention(q, q_row_stride, num_tokens, num_q_heads, batch, kv_base,
                                       layout, layer, scale, out, StreamRef{}));
  ASSIGN_OR_RETURN(const bool has_work, op_checks::CheckPagedAttentionArgs(
                                            q, q_row_stride, num_tokens, num_q_heads, batch,
                                            kv_base, layout, layer, out, sizeof(float)));
  if (!has_work) return absl::OkStatus();
  RETURN_IF_ERROR(ValidateAttentionBatch(batch, num_tokens, layout.block_tokens));
  const int32_t d = layout.head_dim;

  const auto* qs = static_cast<const float*>(q);
  auto* os = static_cast<float*>(out);
  const auto* base = static_cast<const uint8_t*>(kv_base);
  const int32_t group = num_q_heads / layout.num_kv_heads;
  const int64_t work = num_tokens * num_q_heads;
  const int64_t min_chunk =
      std::max<int64_t>(1, (1 << 16) / std::max<int64_t>(1, int64_t{batch.max_seq_len} * d));

  pool_.ParallelFor(work, min_chunk, [&](int64_t begin, int64_t end) {
    std::array<double, kMaxHeadDim> acc;
    std::array<double, kKeyTile> scores;
    for (int64_t item = begin; item < end; ++item) {
      const int64_t t = item / num_q_heads;
      const int32_t h = static_cast<int32_t>(item % num_q_heads);
      const int32_t kvh = h / group;
      const int32_t seq = SequenceOfRow(batch.query_start, batch.num_seqs, t);
      const int64_t q_len = batch.query_start[seq + 1] - batch.query_start[seq];
      const int64_t pos = batch.seq_lens[seq] - q_len + (t - batch.query_start[seq]);
      const int64_t num_keys = pos + 1;  // causal: positions [0, pos]
      const int32_t* table = batch.block_tables + int64_t{seq} * batch.max_blocks_per_seq;
      const float* qv = qs + t * q_row_stride + int64_t{h} * d;

      auto key_ptr = [&](int64_t p, int kv) {
        return reinterpret_cast<const float*>(
            base + layout.ByteOffset(table[p / layout.block_tokens], layer, kv,
                                     p % layout.block_tokens, kvh, sizeof(float)));
      };

      double running_max = -std::numeric_limits<double>::infinity();
      double denom = 0.0;
      std::fill(acc.begin(), acc.begin() + d, 0.0);
      for (int64_t j0 = 0; j0 < num_keys; j0 += kKeyTile) {
        const int64_t n = std::min<int64_t>(kKeyTile, num_keys - j0);
        double tile_max = -std::numeric_limits<double>::infinity();
        for (int64_t j = 0; j < n; ++j) {
          const float* kp = key_ptr(j0 + j, 0);
          double dot = 0.0;
          for (int32_t i = 0; i < d; ++i) dot += static_cast<double>(qv[i]) * kp[i];
          scores[j] = dot * scale;
          tile_max = std::max(tile_max, scores[j]);
        }
        const double new_max = std::max(running_max, tile_max);
        const double correction = std::exp(running_max - new_max);  // 0 on the first tile
        denom *= correction;
        for (int32_t i = 0; i < d; ++i) acc[i] *= correction;
        for (int64_t j = 0; j < n; ++j) {
          const double p = std::exp(scores[j] - new_max);
          denom += p;
          const float* vp = key_ptr(j0 + j, 1);
          for (int32_t i = 0; i < d; ++i) acc[i] += p * vp[i];
        }
        running_max = new_max;
      }
      float* o = os + t * (int64_t{num_q_heads} * d) + int64_t{h} * d;
      const double inv = 1.0 / denom;
      for (int32_t i = 0; i < d; ++i) o[i] = static_cast<float>(acc[i] * inv);
    }
  });
  return absl::OkStatus();
}

}  // namespace loraserve
