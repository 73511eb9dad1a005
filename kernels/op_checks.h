// Argument checks shared by the backends (kernels/cpu/, kernels/cuda/): the
// primitives (NonNegative, Positive, Pointer, AtLeast) and, per op, the checks
// of the HOST-KNOWN arguments (sizes, strides, layout, pointers) that every
// backend runs before touching data. Each failure is InvalidArgument naming
// the op and the bad value, so both backends report the same message.
//
// The per-op checks return "has work": false when the op has nothing to do
// (no rows, tokens or segments), in which case the pointers were not checked
// and the caller returns OK:
//   ASSIGN_OR_RETURN(const bool has_work, op_checks::CheckRmsNormArgs(...));
//   if (!has_work) return absl::OkStatus();
// Checks that read data behind the pointers (token ids, block tables, segment
// contents) stay with the backend that can read it (the CPU one).
// Stateless; any thread.
#pragma once

#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "kernels/kv_layout.h"
#include "kernels/op_args.h"

namespace loraserve::op_checks {

inline absl::Status NonNegative(const char* op, const char* what, int64_t v) {
  if (v >= 0) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(op, ": ", what, " must be >= 0; got ", v));
}

inline absl::Status Positive(const char* op, const char* what, int64_t v) {
  if (v > 0) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(op, ": ", what, " must be > 0; got ", v));
}

// A pointer that is dereferenced when `needed` (some elements to touch).
inline absl::Status Pointer(const char* op, const char* what, const void* p, bool needed = true) {
  if (p != nullptr || !needed) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(op, ": ", what, " is null"));
}

inline absl::Status AtLeast(const char* op, const char* what, int64_t v, const char* bound_name,
                            int64_t bound) {
  if (v >= bound) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(op, ": ", what, "=", v, " is below ", bound_name, "=", bound));
}

// ---------------------------------------------------------------------------
// Per op: the host-known checks. Arguments mirror the op's Backend signature
// (kernels/backend.h); the Status is the first failure, the bool "has work".

[[nodiscard]] absl::StatusOr<bool> CheckGatherRowsArgs(const void* src, int64_t src_rows,
                                                       int64_t width, const int32_t* indices,
                                                       int64_t num_indices, const void* dst);

[[nodiscard]] absl::StatusOr<bool> CheckRmsNormArgs(const void* x, const void* weight,
                                                    int64_t rows, int64_t hidden, float eps,
                                                    const void* out);

[[nodiscard]] absl::StatusOr<bool> CheckRopeArgs(const void* qkv, int64_t row_stride,
                                                 int64_t num_tokens, int32_t num_q_heads,
                                                 int32_t num_kv_heads, int32_t head_dim,
                                                 const int32_t* positions,
                                                 const float* inv_freq);

[[nodiscard]] absl::StatusOr<bool> CheckSiluAndMulArgs(const void* gate_up, int64_t rows,
                                                       int64_t intermediate, const void* out);

[[nodiscard]] absl::StatusOr<bool> CheckResidualAddArgs(const void* residual, const void* delta,
                                                        int64_t n);

// m, n, k also fit the int dimensions of BLAS / cuBLAS. `bias` may be null.
[[nodiscard]] absl::StatusOr<bool> CheckGemmArgs(const void* x, const void* w, int64_t m,
                                                 int64_t n, int64_t k, const void* y);

[[nodiscard]] absl::StatusOr<bool> CheckLogitsArgs(const void* hidden, const void* lm_head,
                                                   int64_t rows, int64_t vocab,
                                                   int64_t hidden_size, const float* logits);

// vocab must fit int32 (the result is an int32 index).
[[nodiscard]] absl::StatusOr<bool> CheckArgMaxRowsArgs(const float* logits, int64_t rows,
                                                       int64_t vocab, const int32_t* out);

// vocab must fit int32; 1 <= k <= min(kMaxSampleCandidates, vocab). The
// temperatures are data (the CPU backend checks them).
[[nodiscard]] absl::StatusOr<bool> CheckSampleCandidatesArgs(const float* logits, int64_t rows,
                                                             int64_t vocab,
                                                             const float* temperature, int32_t k,
                                                             const int32_t* ids,
                                                             const float* values,
                                                             const double* total);

// n < 0, a non-finite lo or hi, lo > hi, or hi - lo overflowing fp32; dst is
// checked only when n > 0.
[[nodiscard]] absl::StatusOr<bool> CheckFillRandomArgs(const void* dst /* [n] */, int64_t n,
                                                       float lo, float hi);

// `elt_size`: bytes per K/V element in the backend's cache.
[[nodiscard]] absl::StatusOr<bool> CheckWriteKvArgs(const void* k, int64_t k_row_stride,
                                                    const void* v, int64_t v_row_stride,
                                                    int64_t num_tokens,
                                                    const int64_t* slot_mapping,
                                                    const void* kv_base, const KvLayout& layout,
                                                    int32_t layer, size_t elt_size);

// Only the batch's counts and pointers: what they point to is the caller's.
[[nodiscard]] absl::StatusOr<bool> CheckPagedAttentionArgs(
    const void* q, int64_t q_row_stride, int64_t num_tokens, int32_t num_q_heads,
    const AttentionBatch& batch, const void* kv_base, const KvLayout& layout, int32_t layer,
    const void* out, size_t elt_size);

// The segment header only (counts, slice count, max_rank, header pointers):
// the rows behind lora.seg_starts / lora.slices are the caller's to check.
[[nodiscard]] absl::StatusOr<bool> CheckLoraShrinkArgs(const void* x, int64_t num_tokens,
                                                       int64_t in, const LoraSegments& lora,
                                                       const float* v);

[[nodiscard]] absl::StatusOr<bool> CheckLoraExpandArgs(const float* v, int64_t num_tokens,
                                                       const LoraSegments& lora,
                                                       const LoraSliceColumns& cols,
                                                       const void* y, int64_t y_cols);

}  // namespace loraserve::op_checks
