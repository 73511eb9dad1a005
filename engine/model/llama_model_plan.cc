// LlamaModel: validating, grouping and laying out one step's batch (the host
// side of Forward), and uploading its metadata.
#include <algorithm>
#include <cmath>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "engine/model/llama_model.h"
#include "engine/model/llama_model_workspace.h"

namespace loraserve {

absl::Status GrowBuffer(Backend& backend, DeviceBuffer& buf, size_t bytes) {
  if (buf.size() >= bytes) return absl::OkStatus();
  const size_t grown = std::max(bytes, buf.size() + buf.size() / 2);
  buf.Reset();
  ASSIGN_OR_RETURN(buf, backend.Allocate(grown));
  return absl::OkStatus();
}

namespace {

absl::Status CheckSequence(const SequenceStep& s, size_t i, const ModelConfig& c,
                           int32_t block_tokens) {
  auto bad = [&](auto&&... parts) {
    return absl::InvalidArgumentError(absl::StrCat("Forward: sequence ", i, ": ", parts...));
  };
  if (s.tokens.empty()) return bad("no new tokens");
  if (s.num_cached < 0) return bad("num_cached=", s.num_cached, " is negative");
  const int64_t total = int64_t{s.num_cached} + static_cast<int64_t>(s.tokens.size());
  if (c.max_context() > 0 && total > c.max_context()) {
    return bad(total, " tokens exceed the model's max context ", c.max_context());
  }
  const int64_t blocks = (total + block_tokens - 1) / block_tokens;
  if (static_cast<int64_t>(s.block_table.size()) < blocks) {
    return bad("block table has ", s.block_table.size(), " blocks, ", total, " tokens need ",
               blocks);
  }
  for (int64_t b = 0; b < blocks; ++b) {
    if (s.block_table[b] < 0) return bad("block_table[", b, "]=", s.block_table[b]);
  }
  for (size_t t = 0; t < s.tokens.size(); ++t) {
    if (s.tokens[t] < 0 || s.tokens[t] >= c.vocab_size) {
      return bad("token ", s.tokens[t], " at ", t, " is outside the vocabulary [0, ",
                 c.vocab_size, ")");
    }
  }
  if (s.candidates_on_device && s.compute_logits && !s.all_logits &&
      !(std::isfinite(s.temperature) && s.temperature > 0.0f)) {
    return bad("temperature=", s.temperature,
               " for candidates on the device must be finite and > 0");
  }
  if (s.adapter != nullptr && s.adapter->num_layers() != c.num_hidden_layers) {
    return bad("adapter ", s.adapter->path(), " has ", s.adapter->num_layers(),
               " layers, the model ", c.num_hidden_layers);
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status LlamaModel::Plan(const ForwardBatch& batch, const KvCacheView& kv,
                              ForwardOutput* out) {
  const auto& seqs = batch.sequences;
  if (seqs.empty()) return absl::InvalidArgumentError("Forward: empty batch");
  const KvLayout& layout = kv.layout;
  if (kv.base == nullptr || layout.num_layers != config_.num_hidden_layers ||
      layout.num_kv_heads != config_.num_key_value_heads || layout.head_dim != config_.head_dim) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Forward: KV cache layout (layers ", layout.num_layers, ", kv heads ",
        layout.num_kv_heads, ", head_dim ", layout.head_dim, ") does not match the model"));
  }
  RETURN_IF_ERROR(layout.Validate("Forward", backend_->elt_size()));
  for (size_t i = 0; i < seqs.size(); ++i) {
    RETURN_IF_ERROR(CheckSequence(seqs[i], i, config_, layout.block_tokens));
  }

  Workspace& w = *ws_;
  // Group by adapter, stable: base (-1) first, then adapters by first appearance.
  // The group key is the adapter id with a lora source, else the object.
  const bool by_id = batch.lora != nullptr;
  absl::flat_hash_map<uint64_t, int32_t> group_of;
  w.adapters.clear();
  std::vector<int32_t> group(seqs.size());
  std::vector<uint64_t> group_keys;
  std::vector<const PeftAdapter*> group_adapters;
  for (size_t i = 0; i < seqs.size(); ++i) {
    const PeftAdapter* a = by_id ? nullptr : seqs[i].adapter.get();
    const uint64_t key = by_id ? seqs[i].adapter_id : reinterpret_cast<uintptr_t>(a);
    if (key == 0) {
      group[i] = -1;
      continue;
    }
    auto [it, inserted] = group_of.try_emplace(key, static_cast<int32_t>(group_keys.size()));
    if (inserted) {
      group_keys.push_back(key);
      group_adapters.push_back(a);
      if (!by_id) w.adapters.push_back(seqs[i].adapter);
    }
    group[i] = it->second;
  }
  w.order.resize(seqs.size());
  for (size_t i = 0; i < seqs.size(); ++i) w.order[i] = static_cast<int32_t>(i);
  std::stable_sort(w.order.begin(), w.order.end(),
                   [&](int32_t a, int32_t b) { return group[a] < group[b]; });

  // Lay out tokens in grouped order.
  w.max_blocks = 1;
  w.max_seq_len = 0;
  for (const SequenceStep& s : seqs) {
    const int64_t total = int64_t{s.num_cached} + static_cast<int64_t>(s.tokens.size());
    w.max_blocks = std::max<int32_t>(
        w.max_blocks, static_cast<int32_t>((total + layout.block_tokens - 1) / layout.block_tokens));
    w.max_seq_len = std::max<int32_t>(w.max_seq_len, static_cast<int32_t>(total));
  }
  w.tokens.clear();
  w.positions.clear();
  w.slots.clear();
  w.query_start.assign(1, 0);
  w.seq_lens.clear();
  w.block_tables.assign(seqs.size() * static_cast<size_t>(w.max_blocks), 0);
  w.seg_adapters.clear();
  w.seg_keys.clear();
  w.seg_starts.clear();
  int32_t last_group = -1;
  std::vector<int32_t> row_begin(seqs.size());
  for (size_t k = 0; k < w.order.size(); ++k) {
    const int32_t i = w.order[k];
    const SequenceStep& s = seqs[i];
    const int32_t begin = static_cast<int32_t>(w.tokens.size());
    row_begin[i] = begin;
    if (group[i] >= 0 && group[i] != last_group) {
      w.seg_adapters.push_back(group_adapters[group[i]]);
      w.seg_keys.push_back(group_keys[group[i]]);
      w.seg_starts.push_back(begin);
      last_group = group[i];
    }
    for (size_t t = 0; t < s.tokens.size(); ++t) {
      const int64_t pos = s.num_cached + static_cast<int64_t>(t);
      w.tokens.push_back(s.tokens[t]);
      w.positions.push_back(static_cast<int32_t>(pos));
      w.slots.push_back(int64_t{s.block_table[pos / layout.block_tokens]} * layout.block_tokens +
                        pos % layout.block_tokens);
    }
    w.query_start.push_back(static_cast<int32_t>(w.tokens.size()));
    w.seq_lens.push_back(s.num_cached + static_cast<int32_t>(s.tokens.size()));
    const int64_t blocks = (int64_t{w.seq_lens.back()} + layout.block_tokens - 1) /
                           layout.block_tokens;
    std::copy(s.block_table.begin(), s.block_table.begin() + blocks,
              w.block_tables.begin() + static_cast<int64_t>(k) * w.max_blocks);
  }
  if (!w.seg_adapters.empty()) w.seg_starts.push_back(static_cast<int32_t>(w.tokens.size()));

  // Rows needing logits, in the caller's order.
  w.logit_rows.clear();
  out->first_row.assign(seqs.size(), -1);
  for (size_t i = 0; i < seqs.size(); ++i) {
    const SequenceStep& s = seqs[i];
    const int32_t n = static_cast<int32_t>(s.tokens.size());
    if (!s.all_logits && !s.compute_logits) continue;
    out->first_row[i] = static_cast<int64_t>(w.logit_rows.size());
    for (int32_t t = s.all_logits ? 0 : n - 1; t < n; ++t) w.logit_rows.push_back(row_begin[i] + t);
  }
  return absl::OkStatus();
}

absl::Status LlamaModel::UploadPlan(AttentionBatch* attn) {
  Workspace& w = *ws_;
  Backend& b = *backend_;
  auto upload = [&](DeviceBuffer& dst, const auto& host) -> absl::Status {
    const size_t bytes = host.size() * sizeof(host[0]);
    RETURN_IF_ERROR(GrowBuffer(b, dst, std::max<size_t>(bytes, 8)));
    return b.CopyToDevice(dst.data(), host.data(), bytes, {});
  };
  RETURN_IF_ERROR(upload(w.d_tokens, w.tokens));
  RETURN_IF_ERROR(upload(w.d_positions, w.positions));
  RETURN_IF_ERROR(upload(w.d_slots, w.slots));
  RETURN_IF_ERROR(upload(w.d_query_start, w.query_start));
  RETURN_IF_ERROR(upload(w.d_seq_lens, w.seq_lens));
  RETURN_IF_ERROR(upload(w.d_block_tables, w.block_tables));
  RETURN_IF_ERROR(upload(w.d_logit_rows, w.logit_rows));
  attn->num_seqs = static_cast<int32_t>(w.seq_lens.size());
  attn->query_start = w.d_query_start.as<const int32_t>();
  attn->seq_lens = w.d_seq_lens.as<const int32_t>();
  attn->block_tables = w.d_block_tables.as<const int32_t>();
  attn->max_blocks_per_seq = w.max_blocks;
  attn->max_seq_len = w.max_seq_len;
  return absl::OkStatus();
}

}  // namespace loraserve
