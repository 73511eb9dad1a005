#include "kernels/op_checks.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "common/status.h"

namespace loraserve::op_checks {

namespace {

// BLAS and cuBLAS both take int dimensions.
absl::Status CheckGemmShape(const char* op, int64_t m, int64_t n, int64_t k) {
  RETURN_IF_ERROR(NonNegative(op, "m", m));
  RETURN_IF_ERROR(Positive(op, "n", n));
  RETURN_IF_ERROR(Positive(op, "k", k));
  constexpr int64_t kMax = std::numeric_limits<int>::max();
  if (m > kMax || n > kMax || k > kMax) {
    return absl::InvalidArgumentError(
        absl::StrCat(op, ": shape [", m, ", ", k, "] x [", n, ", ", k, "]^T exceeds BLAS int"));
  }
  return absl::OkStatus();
}

absl::Status CheckLayer(const char* op, int32_t layer, const KvLayout& layout) {
  if (layer >= 0 && layer < layout.num_layers) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(op, ": layer ", layer, " outside [0, ", layout.num_layers, ")"));
}

absl::Status CheckSegmentsHeader(const char* op, const LoraSegments& lora) {
  RETURN_IF_ERROR(NonNegative(op, "lora.num_segments", lora.num_segments));
  if (lora.num_slices < 1 || lora.num_slices > kMaxLoraSlices) {
    return absl::InvalidArgumentError(absl::StrCat(op, ": lora.num_slices=", lora.num_slices,
                                                   " outside [1, ", kMaxLoraSlices, "]"));
  }
  if (lora.max_rank < 0 || lora.max_rank > kMaxLoraRank) {
    return absl::InvalidArgumentError(absl::StrCat(op, ": lora.max_rank=", lora.max_rank,
                                                   " exceeds the supported maximum rank ",
                                                   kMaxLoraRank));
  }
  const bool has_segments = lora.num_segments > 0;
  RETURN_IF_ERROR(Pointer(op, "lora.seg_starts", lora.seg_starts, has_segments));
  return Pointer(op, "lora.slices", lora.slices, has_segments);
}

bool LoraHasWork(int64_t num_tokens, const LoraSegments& lora) {
  return num_tokens > 0 && lora.num_segments > 0 && lora.max_rank > 0;
}

}  // namespace

absl::StatusOr<bool> CheckGatherRowsArgs(const void* src, int64_t src_rows, int64_t width,
                                         const int32_t* indices, int64_t num_indices,
                                         const void* dst) {
  constexpr const char* kOp = "GatherRows";
  RETURN_IF_ERROR(Positive(kOp, "src_rows", src_rows));
  RETURN_IF_ERROR(Positive(kOp, "width", width));
  RETURN_IF_ERROR(NonNegative(kOp, "num_indices", num_indices));
  if (num_indices == 0) return false;
  RETURN_IF_ERROR(Pointer(kOp, "src", src));
  RETURN_IF_ERROR(Pointer(kOp, "indices", indices));
  RETURN_IF_ERROR(Pointer(kOp, "dst", dst));
  return true;
}

absl::StatusOr<bool> CheckRmsNormArgs(const void* x, const void* weight, int64_t rows,
                                      int64_t hidden, float eps, const void* out) {
  constexpr const char* kOp = "RmsNorm";
  RETURN_IF_ERROR(NonNegative(kOp, "rows", rows));
  RETURN_IF_ERROR(Positive(kOp, "hidden", hidden));
  if (!(eps >= 0.0f)) {
    return absl::InvalidArgumentError(absl::StrCat(kOp, ": eps must be >= 0; got ", eps));
  }
  if (rows == 0) return false;
  RETURN_IF_ERROR(Pointer(kOp, "x", x));
  RETURN_IF_ERROR(Pointer(kOp, "weight", weight));
  RETURN_IF_ERROR(Pointer(kOp, "out", out));
  return true;
}

absl::StatusOr<bool> CheckRopeArgs(const void* qkv, int64_t row_stride, int64_t num_tokens,
                                   int32_t num_q_heads, int32_t num_kv_heads, int32_t head_dim,
                                   const int32_t* positions, const float* inv_freq) {
  constexpr const char* kOp = "Rope";
  RETURN_IF_ERROR(NonNegative(kOp, "num_tokens", num_tokens));
  RETURN_IF_ERROR(Positive(kOp, "num_q_heads", num_q_heads));
  RETURN_IF_ERROR(NonNegative(kOp, "num_kv_heads", num_kv_heads));
  if (head_dim <= 0 || head_dim % 2 != 0 || head_dim > kMaxHeadDim) {
    return absl::InvalidArgumentError(absl::StrCat(
        kOp, ": head_dim must be even and in [2, ", kMaxHeadDim, "]; got ", head_dim));
  }
  const int64_t rotated = (int64_t{num_q_heads} + num_kv_heads) * head_dim;
  RETURN_IF_ERROR(AtLeast(kOp, "row_stride", row_stride,
                          "(num_q_heads + num_kv_heads) * head_dim", rotated));
  if (num_tokens == 0) return false;
  RETURN_IF_ERROR(Pointer(kOp, "qkv", qkv));
  RETURN_IF_ERROR(Pointer(kOp, "positions", positions));
  RETURN_IF_ERROR(Pointer(kOp, "inv_freq", inv_freq));
  return true;
}

absl::StatusOr<bool> CheckSiluAndMulArgs(const void* gate_up, int64_t rows, int64_t intermediate,
                                         const void* out) {
  constexpr const char* kOp = "SiluAndMul";
  RETURN_IF_ERROR(NonNegative(kOp, "rows", rows));
  RETURN_IF_ERROR(Positive(kOp, "intermediate", intermediate));
  if (rows == 0) return false;
  RETURN_IF_ERROR(Pointer(kOp, "gate_up", gate_up));
  RETURN_IF_ERROR(Pointer(kOp, "out", out));
  return true;
}

absl::StatusOr<bool> CheckResidualAddArgs(const void* residual, const void* delta, int64_t n) {
  constexpr const char* kOp = "ResidualAdd";
  RETURN_IF_ERROR(NonNegative(kOp, "n", n));
  if (n == 0) return false;
  RETURN_IF_ERROR(Pointer(kOp, "residual", residual));
  RETURN_IF_ERROR(Pointer(kOp, "delta", delta));
  return true;
}

absl::StatusOr<bool> CheckGemmArgs(const void* x, const void* w, int64_t m, int64_t n, int64_t k,
                                   const void* y) {
  constexpr const char* kOp = "Gemm";
  RETURN_IF_ERROR(CheckGemmShape(kOp, m, n, k));
  if (m == 0) return false;
  RETURN_IF_ERROR(Pointer(kOp, "x", x));
  RETURN_IF_ERROR(Pointer(kOp, "w", w));
  RETURN_IF_ERROR(Pointer(kOp, "y", y));
  return true;
}

absl::StatusOr<bool> CheckLogitsArgs(const void* hidden, const void* lm_head, int64_t rows,
                                     int64_t vocab, int64_t hidden_size, const float* logits) {
  constexpr const char* kOp = "Logits";
  RETURN_IF_ERROR(CheckGemmShape(kOp, rows, vocab, hidden_size));
  if (rows == 0) return false;
  RETURN_IF_ERROR(Pointer(kOp, "hidden", hidden));
  RETURN_IF_ERROR(Pointer(kOp, "lm_head", lm_head));
  RETURN_IF_ERROR(Pointer(kOp, "logits", logits));
  return true;
}

absl::StatusOr<bool> CheckArgMaxRowsArgs(const float* logits, int64_t rows, int64_t vocab,
                                         const int32_t* out) {
  constexpr const char* kOp = "ArgMaxRows";
  RETURN_IF_ERROR(NonNegative(kOp, "rows", rows));
  RETURN_IF_ERROR(Positive(kOp, "vocab", vocab));
  if (vocab > std::numeric_limits<int32_t>::max()) {
    return absl::InvalidArgumentError(
        absl::StrCat(kOp, ": vocab=", vocab, " does not fit an int32 index"));
  }
  if (rows == 0) return false;
  RETURN_IF_ERROR(Pointer(kOp, "logits", logits));
  RETURN_IF_ERROR(Pointer(kOp, "out", out));
  return true;
}

absl::StatusOr<bool> CheckSampleCandidatesArgs(const float* logits, int64_t rows, int64_t vocab,
                                               const float* temperature, int32_t k,
                                               const int32_t* ids, const float* values,
                                               const double* total) {
  constexpr const char* kOp = "SampleCandidates";
  RETURN_IF_ERROR(NonNegative(kOp, "rows", rows));
  RETURN_IF_ERROR(Positive(kOp, "vocab", vocab));
  if (vocab > std::numeric_limits<int32_t>::max()) {
    return absl::InvalidArgumentError(
        absl::StrCat(kOp, ": vocab=", vocab, " does not fit an int32 index"));
  }
  const int64_t max_k = std::min<int64_t>(kMaxSampleCandidates, vocab);
  if (k < 1 || k > max_k) {
    return absl::InvalidArgumentError(absl::StrCat(kOp, ": k=", k, " must be in [1, ", max_k,
                                                   "] (kMaxSampleCandidates=",
                                                   kMaxSampleCandidates, ", vocab=", vocab, ")"));
  }
  if (rows == 0) return false;
  RETURN_IF_ERROR(Pointer(kOp, "logits", logits));
  RETURN_IF_ERROR(Pointer(kOp, "temperature", temperature));
  RETURN_IF_ERROR(Pointer(kOp, "ids", ids));
  RETURN_IF_ERROR(Pointer(kOp, "values", values));
  RETURN_IF_ERROR(Pointer(kOp, "total", total));
  return true;
}

absl::StatusOr<bool> CheckWriteKvArgs(const void* k, int64_t k_row_stride, const void* v,
                                      int64_t v_row_stride, int64_t num_tokens,
                                      const int64_t* slot_mapping, const void* kv_base,
                                      const KvLayout& layout, int32_t layer, size_t elt_size) {
  constexpr const char* kOp = "WriteKv";
  RETURN_IF_ERROR(layout.Validate(kOp, elt_size));
  RETURN_IF_ERROR(NonNegative(kOp, "num_tokens", num_tokens));
  RETURN_IF_ERROR(CheckLayer(kOp, layer, layout));
  const int64_t width = int64_t{layout.num_kv_heads} * layout.head_dim;
  RETURN_IF_ERROR(AtLeast(kOp, "k_row_stride", k_row_stride, "num_kv_heads * head_dim", width));
  RETURN_IF_ERROR(AtLeast(kOp, "v_row_stride", v_row_stride, "num_kv_heads * head_dim", width));
  if (num_tokens == 0) return false;
  RETURN_IF_ERROR(Pointer(kOp, "k", k));
  RETURN_IF_ERROR(Pointer(kOp, "v", v));
  RETURN_IF_ERROR(Pointer(kOp, "slot_mapping", slot_mapping));
  RETURN_IF_ERROR(Pointer(kOp, "kv_base", kv_base));
  return true;
}

absl::StatusOr<bool> CheckPagedAttentionArgs(const void* q, int64_t q_row_stride,
                                             int64_t num_tokens, int32_t num_q_heads,
                                             const AttentionBatch& batch, const void* kv_base,
                                             const KvLayout& layout, int32_t layer,
                                             const void* out, size_t elt_size) {
  constexpr const char* kOp = "PagedAttention";
  RETURN_IF_ERROR(layout.Validate(kOp, elt_size));
  RETURN_IF_ERROR(NonNegative(kOp, "num_tokens", num_tokens));
  RETURN_IF_ERROR(CheckLayer(kOp, layer, layout));
  if (layout.head_dim > kMaxHeadDim) {
    return absl::InvalidArgumentError(
        absl::StrCat(kOp, ": head_dim ", layout.head_dim, " exceeds ", kMaxHeadDim));
  }
  if (num_q_heads <= 0 || num_q_heads % layout.num_kv_heads != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(kOp, ": num_q_heads=", num_q_heads,
                     " must be a positive multiple of num_kv_heads=", layout.num_kv_heads));
  }
  RETURN_IF_ERROR(AtLeast(kOp, "q_row_stride", q_row_stride, "num_q_heads * head_dim",
                          int64_t{num_q_heads} * layout.head_dim));
  if (num_tokens == 0) return false;
  RETURN_IF_ERROR(Positive(kOp, "batch.num_seqs", batch.num_seqs));
  RETURN_IF_ERROR(Positive(kOp, "batch.max_blocks_per_seq", batch.max_blocks_per_seq));
  RETURN_IF_ERROR(Pointer(kOp, "batch.query_start", batch.query_start));
  RETURN_IF_ERROR(Pointer(kOp, "batch.seq_lens", batch.seq_lens));
  RETURN_IF_ERROR(Pointer(kOp, "batch.block_tables", batch.block_tables));
  RETURN_IF_ERROR(Pointer(kOp, "q", q));
  RETURN_IF_ERROR(Pointer(kOp, "kv_base", kv_base));
  RETURN_IF_ERROR(Pointer(kOp, "out", out));
  return true;
}

absl::StatusOr<bool> CheckLoraShrinkArgs(const void* x, int64_t num_tokens, int64_t in,
                                         const LoraSegments& lora, const float* v) {
  constexpr const char* kOp = "LoraShrink";
  RETURN_IF_ERROR(NonNegative(kOp, "num_tokens", num_tokens));
  RETURN_IF_ERROR(Positive(kOp, "in", in));
  RETURN_IF_ERROR(CheckSegmentsHeader(kOp, lora));
  if (!LoraHasWork(num_tokens, lora)) return false;
  RETURN_IF_ERROR(Pointer(kOp, "x", x));
  RETURN_IF_ERROR(Pointer(kOp, "v", v));
  return true;
}

absl::StatusOr<bool> CheckLoraExpandArgs(const float* v, int64_t num_tokens,
                                         const LoraSegments& lora, const LoraSliceColumns& cols,
                                         const void* y, int64_t y_cols) {
  constexpr const char* kOp = "LoraExpand";
  RETURN_IF_ERROR(NonNegative(kOp, "num_tokens", num_tokens));
  RETURN_IF_ERROR(Positive(kOp, "y_cols", y_cols));
  RETURN_IF_ERROR(CheckSegmentsHeader(kOp, lora));
  if (cols.num_slices != lora.num_slices) {
    return absl::InvalidArgumentError(absl::StrCat(kOp, ": cols.num_slices=", cols.num_slices,
                                                   " != lora.num_slices=", lora.num_slices));
  }
  for (int32_t s = 0; s < cols.num_slices; ++s) {
    if (cols.offsets[s] < 0 || cols.offsets[s + 1] < cols.offsets[s] ||
        cols.offsets[s + 1] > y_cols) {
      return absl::InvalidArgumentError(absl::StrCat(kOp, ": slice ", s, " columns [",
                                                     cols.offsets[s], ", ", cols.offsets[s + 1],
                                                     ") not inside [0, y_cols=", y_cols, ")"));
    }
  }
  if (!LoraHasWork(num_tokens, lora)) return false;
  RETURN_IF_ERROR(Pointer(kOp, "v", v));
  RETURN_IF_ERROR(Pointer(kOp, "y", y));
  return true;
}

absl::StatusOr<bool> CheckFillRandomArgs(const void* dst, int64_t n, float lo, float hi) {
  constexpr const char* kOp = "FillRandom";
  RETURN_IF_ERROR(NonNegative(kOp, "n", n));
  if (!std::isfinite(lo)) {
    return absl::InvalidArgumentError(absl::StrCat(kOp, ": lo must be finite; got ", lo));
  }
  if (!std::isfinite(hi)) {
    return absl::InvalidArgumentError(absl::StrCat(kOp, ": hi must be finite; got ", hi));
  }
  if (lo > hi) {
    return absl::InvalidArgumentError(
        absl::StrCat(kOp, ": lo=", lo, " is above hi=", hi, " (want lo <= hi)"));
  }
  if (!std::isfinite(hi - lo)) {
    return absl::InvalidArgumentError(
        absl::StrCat(kOp, ": hi - lo overflows fp32 (lo=", lo, ", hi=", hi, ")"));
  }
  if (n == 0) return false;
  RETURN_IF_ERROR(Pointer(kOp, "dst", dst));
  return true;
}

}  // namespace loraserve::op_checks
