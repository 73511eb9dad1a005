// LlamaModel's decode-graph path (see engine/model/llama_model_graph.h):
// padding a planned decode step to its key's shape, and capturing, caching
// and launching one graph per key. Forward thread only.
#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/status.h"
#include "engine/model/llama_model.h"
#include "engine/model/llama_model_graph.h"
#include "engine/model/llama_model_workspace.h"

namespace loraserve {

namespace {

auto Address(const void* p) { return reinterpret_cast<uintptr_t>(p); }

}  // namespace

GraphKey LlamaModel::GraphKeyFor() const {
  const Workspace& w = *ws_;
  GraphKey key;
  key.batch = GraphBatchBucket(static_cast<int32_t>(w.seq_lens.size()));
  key.context = GraphContextBucket(w.max_seq_len, config_.max_context());
  return key;
}

void LlamaModel::PadPlanForGraph(const GraphKey& key, int32_t block_tokens) {
  Workspace& w = *ws_;
  const size_t seqs = w.seq_lens.size();
  const int32_t stride = (key.context + block_tokens - 1) / block_tokens;
  LS_CHECK(stride >= w.max_blocks);
  LS_CHECK(static_cast<size_t>(key.batch) >= seqs);
  // Re-stride the block tables; pad rows read block 0 (any valid block).
  w.padded_tables.assign(static_cast<size_t>(key.batch) * stride, 0);
  for (size_t i = 0; i < seqs; ++i) {
    std::copy_n(w.block_tables.begin() + static_cast<int64_t>(i) * w.max_blocks, w.max_blocks,
                w.padded_tables.begin() + static_cast<int64_t>(i) * stride);
  }
  w.block_tables.swap(w.padded_tables);
  w.max_blocks = stride;
  w.max_seq_len = key.context;
  for (size_t i = seqs; i < static_cast<size_t>(key.batch); ++i) {
    w.tokens.push_back(0);
    w.positions.push_back(0);
    w.slots.push_back(-1);  // no K/V write
    w.seq_lens.push_back(1);
    w.logit_rows.push_back(static_cast<int32_t>(w.tokens.size()) - 1);
    w.query_start.push_back(static_cast<int32_t>(w.tokens.size()));
  }
}

absl::Status LlamaModel::RunGraph(const GraphKey& key, int64_t t, int64_t r,
                                  const AttentionBatch& attn, const KvCacheView& kv) {
  Workspace& w = *ws_;
  Backend& b = *backend_;
  // Every address and layout value the recorded launches hold (the LoRA
  // ones only when the graph has LoRA launches).
  std::vector<uintptr_t> addresses = {
      Address(w.x.data()),
      Address(w.h.data()),
      Address(w.qkv.data()),
      Address(w.attn.data()),
      Address(w.proj.data()),
      Address(w.gate_up.data()),
      Address(w.act.data()),
      Address(w.sel.data()),
      Address(w.logits.data()),
      Address(w.d_tokens.data()),
      Address(w.d_positions.data()),
      Address(w.d_slots.data()),
      Address(w.d_query_start.data()),
      Address(w.d_seq_lens.data()),
      Address(w.d_block_tables.data()),
      Address(w.d_logit_rows.data()),
      Address(w.d_argmax.data()),
      Address(kv.base),
      static_cast<uintptr_t>(kv.layout.block_tokens),
      static_cast<uintptr_t>(kv.layout.block_stride_bytes),
  };
  if (key.rank > 0) {
    addresses.insert(addresses.end(),
                     {Address(w.lora_v.data()), Address(lora_batch_->tables_address()),
                      Address(lora_batch_->rows_base())});
  }
  auto it = w.graphs.find(key);
  if (it == w.graphs.end() || it->second.addresses != addresses) {
    if (it == w.graphs.end() && w.graphs.size() >= Workspace::kMaxGraphs) {
      auto lru = std::min_element(
          w.graphs.begin(), w.graphs.end(),
          [](const auto& a, const auto& c) { return a.second.last_used < c.second.last_used; });
      w.graphs.erase(lru);
    }
    RETURN_IF_ERROR(b.BeginCapture());
    const absl::Status computed = Compute(t, r, attn, kv, /*argmax=*/true);
    absl::StatusOr<Graph> graph = b.EndCapture();  // always closes the capture
    if (!computed.ok()) {
      w.graphs.erase(key);
      return absl::Status(computed.code(),
                          absl::StrCat("decode graph (batch ", key.batch, ", context ", key.context,
                                       ", rank ", key.rank, "): ", computed.message()));
    }
    if (!graph.ok()) {
      w.graphs.erase(key);
      return graph.status();
    }
    Workspace::CapturedGraph& entry = w.graphs[key];
    entry.graph = *std::move(graph);
    entry.addresses = addresses;
    ++w.graph_stats.captures;
    it = w.graphs.find(key);
  }
  it->second.last_used = ++w.graph_clock;
  ++w.graph_stats.launches;
  return b.LaunchGraph(it->second.graph);
}

GraphStats LlamaModel::graph_stats() const {
  GraphStats s = ws_->graph_stats;
  s.cached = static_cast<int64_t>(ws_->graphs.size());
  return s;
}

}  // namespace loraserve
