// CUDA launchers of the paged-KV ops: WriteKv (new K/V rows into the paged
// cache) and PagedAttention (causal GQA attention of a mixed batch of prefill
// chunks and decodes, with a split-K "flash-decoding" path for long contexts).
// Storage is bf16 (every void* below), accumulation and softmax are fp32.
// The exact semantics are those of the CPU twins (kernels/cpu/cpu_attention.cc)
// and of AttentionBatch / KvLayout (kernels/op_args.h, kernels/kv_layout.h).
//
// Called by CudaBackend (kernels/cuda/cuda_backend.*), tests and benchmarks.
// Launchers only enqueue on `stream`: they never allocate, never synchronise,
// and check host-known values only (InvalidArgument naming the op). Pointers
// are device memory unless marked host; the metadata pointers inside
// AttentionBatch (query_start, seq_lens, block_tables) are DEVICE pointers,
// its scalar fields are host-known. Thread-safe (stateless); each stream from
// one thread at a time.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"
#include "kernels/kv_layout.h"
#include "kernels/op_args.h"

namespace loraserve::cuda {

// Bytes of scratch the fastest split-K plan of LaunchPagedAttention wants for
// this shape (0 when no split helps). Given less, the launcher uses fewer
// splits (down to none) and still gives the same answer up to fp32 rounding.
size_t PagedAttentionScratchBytes(int64_t num_tokens, int32_t num_q_heads, int32_t head_dim,
                                  int32_t max_seq_len);

// Writes token t's K and V heads (row t of k / v: num_kv_heads * head_dim bf16
// each) into layer `layer` of the paged cache at slot slot_mapping[t] =
// block_id * block_tokens + offset_in_block; slot -1 skips t (untouched).
absl::Status LaunchWriteKv(const void* k /* [num_tokens, k_row_stride] bf16 */,
                           int64_t k_row_stride /* elements */,
                           const void* v /* [num_tokens, v_row_stride] bf16 */,
                           int64_t v_row_stride /* elements */, int64_t num_tokens,
                           const int64_t* slot_mapping /* [num_tokens] */,
                           void* kv_base /* KvLayout blocks, bf16 */, const KvLayout& layout,
                           int32_t layer, cudaStream_t stream);

// Causal GQA attention of a mixed batch (see AttentionBatch) for layer
// `layer`: query row t's head h (q[t, h*head_dim : (h+1)*head_dim]) attends
// with kv head h / (num_q_heads / num_kv_heads) to positions [0, its own];
// scores scaled by `scale`, softmax in fp32. K/V of the new tokens must be in
// the cache already (WriteKv first). Rows of q/out outside
// [0, query_start[num_seqs]) are not touched. head_dim in {64, 80, 96, 128}
// (others: InvalidArgument naming it). scratch may be nullptr / 0 bytes.
absl::Status LaunchPagedAttention(const void* q /* [num_tokens, q_row_stride] bf16 */,
                                  int64_t q_row_stride /* elements */, int64_t num_tokens,
                                  int32_t num_q_heads, const AttentionBatch& batch,
                                  const void* kv_base /* KvLayout blocks, bf16 */,
                                  const KvLayout& layout, int32_t layer, float scale,
                                  void* out /* [num_tokens, num_q_heads * head_dim] bf16 */,
                                  void* scratch /* [scratch_bytes] */, size_t scratch_bytes,
                                  cudaStream_t stream);

}  // namespace loraserve::cuda
