// LlamaModel::Workspace: the activation buffers, step metadata (host staging
// and device copies) and LoRA intermediate of the forward pass, grown to the
// largest step seen and reused. Private to engine/model/llama_model*.cc;
// owned by one LlamaModel, used on its forward thread only.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "engine/model/llama_model.h"
#include "engine/model/llama_model_graph.h"
#include "kernels/backend.h"

namespace loraserve {

// Makes `buf` hold at least `bytes` (growing by 1.5x, contents not kept).
absl::Status GrowBuffer(Backend& backend, DeviceBuffer& buf, size_t bytes);

struct LlamaModel::Workspace {
  // Activations, storage dtype.
  DeviceBuffer x;        // [T, hidden] residual stream
  DeviceBuffer h;        // [T, hidden] normed
  DeviceBuffer qkv;      // [T, q_out + 2 kv_out]
  DeviceBuffer attn;     // [T, q_out]
  DeviceBuffer proj;     // [T, hidden] o / down output
  DeviceBuffer gate_up;  // [T, 2 intermediate]
  DeviceBuffer act;      // [T, intermediate]
  DeviceBuffer lora_v;   // [T, 3, max_rank] fp32
  DeviceBuffer sel;      // [R, hidden] rows that need logits
  DeviceBuffer logits;   // [R, vocab] fp32

  // Step metadata on the device.
  DeviceBuffer d_tokens;        // [T] int32
  DeviceBuffer d_positions;     // [T] int32
  DeviceBuffer d_slots;         // [T] int64
  DeviceBuffer d_query_start;   // [S + 1] int32
  DeviceBuffer d_seq_lens;      // [S] int32
  DeviceBuffer d_block_tables;  // [S, max_blocks] int32
  DeviceBuffer d_logit_rows;    // [R] int32
  DeviceBuffer d_argmax;        // [R] int32
  // SampleCandidates (outside any graph), K = min(kMaxSampleCandidates, vocab).
  DeviceBuffer d_temperature;   // [R] fp32
  DeviceBuffer d_cand_ids;      // [R, K] int32
  DeviceBuffer d_cand_values;   // [R, K] fp32
  DeviceBuffer d_cand_totals;   // [R] double

  // Host staging of the same, in grouped (internal) order.
  std::vector<int32_t> tokens, positions, query_start, seq_lens, block_tables, logit_rows;
  std::vector<int64_t> slots;
  std::vector<int32_t> padded_tables;  // PadPlanForGraph's re-strided block_tables (reused)
  std::vector<float> temperatures;  // [rows] SampleCandidates staging
  // Rows of `logits` the last Forward left for CopyLogitsRow (0 after a
  // failed one).
  int64_t logits_rows = 0;
  int32_t max_blocks = 0;
  int32_t max_seq_len = 0;

  // Grouping: order[k] = caller index of the k-th sequence laid out.
  std::vector<int32_t> order;
  std::vector<std::shared_ptr<const PeftAdapter>> adapters;  // distinct, first appearance
  std::vector<const PeftAdapter*> seg_adapters;              // per LoRA segment (row cache)
  std::vector<uint64_t> seg_keys;                            // per LoRA segment (lora source)
  std::vector<int32_t> seg_starts;                           // [segments + 1]

  // Captured decode graphs (llama_model_graph.cc), by key. A graph is valid
  // while every address it was captured with is unchanged (`addresses`);
  // otherwise it is captured again. At most kMaxGraphs, least recently used
  // dropped first.
  struct CapturedGraph {
    Graph graph;
    std::vector<uintptr_t> addresses;
    int64_t last_used = 0;
  };
  static constexpr size_t kMaxGraphs = 128;
  absl::flat_hash_map<GraphKey, CapturedGraph> graphs;
  int64_t graph_clock = 0;
  GraphStats graph_stats;
};

}  // namespace loraserve
