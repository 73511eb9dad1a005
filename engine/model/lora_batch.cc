#include "engine/model/lora_batch.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/status.h"
#include "engine/model/llama_model_graph.h"

namespace loraserve {

std::vector<LoraModule> LoraGroupModules(LoraGroup group) {
  switch (group) {
    case LoraGroup::kQkv:
      return {LoraModule::kQ, LoraModule::kK, LoraModule::kV};
    case LoraGroup::kO:
      return {LoraModule::kO};
    case LoraGroup::kGateUp:
      return {LoraModule::kGate, LoraModule::kUp};
    case LoraGroup::kDown:
      return {LoraModule::kDown};
  }
  return {};
}

LoraSliceColumns LoraGroupColumns(const ModelConfig& config, LoraGroup group) {
  LoraSliceColumns cols;
  const std::vector<LoraModule> modules = LoraGroupModules(group);
  cols.num_slices = static_cast<int32_t>(modules.size());
  cols.offsets[0] = 0;
  for (size_t s = 0; s < modules.size(); ++s) {
    cols.offsets[s + 1] = cols.offsets[s] + ModuleShape(config, modules[s]).out;
  }
  return cols;
}

absl::Status LoraBatch::Build(const AdapterRowCache& cache,
                              const std::vector<const PeftAdapter*>& adapters,
                              const std::vector<int32_t>& seg_starts, const LoraPadding& pad) {
  return BuildFrom(cache.rows_base(), adapters.size(), seg_starts, pad,
                   [&](size_t g, int l, LoraModule m) { return cache.Slice(adapters[g], l, m); });
}

absl::Status LoraBatch::Build(const LoraSliceSource& source, const std::vector<uint64_t>& keys,
                              const std::vector<int32_t>& seg_starts, const LoraPadding& pad) {
  return BuildFrom(source.rows_base(), keys.size(), seg_starts, pad,
                   [&](size_t g, int l, LoraModule m) { return source.Slice(keys[g], l, m); });
}

absl::Status LoraBatch::BuildFrom(const void* rows_base, size_t num_segments,
                                  const std::vector<int32_t>& seg_starts,
                                  const LoraPadding& pad,
                                  absl::FunctionRef<LoraSlice(size_t, int, LoraModule)> slice) {
  num_segments_ = static_cast<int32_t>(num_segments);
  max_rank_ = 0;
  rows_base_ = rows_base;
  active_.assign(static_cast<size_t>(num_layers_) * kNumLoraGroups, false);
  table_index_.assign(static_cast<size_t>(num_layers_) * kNumLoraGroups, 0);
  slices_.clear();
  seg_starts_ = seg_starts;
  if (num_segments_ == 0) return absl::OkStatus();
  LS_CHECK_EQ(seg_starts.size(), num_segments + 1);
  const bool padded = pad.num_segments > 0;
  if (padded) {
    if (pad.num_segments < num_segments_ || pad.max_rank < 0 || pad.max_rank > kMaxLoraRank) {
      return absl::InvalidArgumentError(absl::StrCat(
          "LoraBatch: padding to ", pad.num_segments, " segments of rank stride ", pad.max_rank,
          " cannot hold ", num_segments_, " segments"));
    }
    // Empty segments at the end: every start equals the end of the last real one.
    seg_starts_.resize(static_cast<size_t>(pad.num_segments) + 1, seg_starts.back());
  }
  const size_t table_segments = padded ? static_cast<size_t>(pad.num_segments) : num_segments;

  for (int l = 0; l < num_layers_; ++l) {
    for (int g = 0; g < kNumLoraGroups; ++g) {
      const size_t key = static_cast<size_t>(l) * kNumLoraGroups + g;
      table_index_[key] = static_cast<int64_t>(slices_.size());
      const std::vector<LoraModule> modules = LoraGroupModules(static_cast<LoraGroup>(g));
      for (size_t seg = 0; seg < table_segments; ++seg) {
        for (LoraModule m : modules) {
          const LoraSlice s = seg < num_segments ? slice(seg, l, m) : LoraSlice{};
          if (s.rank > 0 || padded) active_[key] = true;
          max_rank_ = std::max(max_rank_, s.rank);
          slices_.push_back(s);
        }
      }
    }
  }
  if (padded) {
    if (max_rank_ == 0) {  // adapters without LoRA weights here: a step without LoRA
      num_segments_ = 0;
      active_.assign(active_.size(), false);
      return absl::OkStatus();
    }
    const int32_t stride = pad.max_rank > 0 ? pad.max_rank : GraphRankBucket(max_rank_);
    if (max_rank_ > stride) {
      return absl::InvalidArgumentError(absl::StrCat(
          "LoraBatch: a slice of rank ", max_rank_, " exceeds the padded rank stride ", stride));
    }
    max_rank_ = stride;
    num_segments_ = pad.num_segments;
  }

  // Upload: seg_starts padded to 8 bytes, then the slice tables.
  const size_t starts_bytes = (seg_starts_.size() * sizeof(int32_t) + 7) / 8 * 8;
  const size_t bytes = starts_bytes + slices_.size() * sizeof(LoraSlice);
  if (meta_.size() < bytes) {
    meta_.Reset();
    ASSIGN_OR_RETURN(meta_, backend_->Allocate(bytes * 2));
  }
  RETURN_IF_ERROR(backend_->CopyToDevice(meta_.data(), seg_starts_.data(),
                                         seg_starts_.size() * sizeof(int32_t), {}));
  RETURN_IF_ERROR(backend_->CopyToDevice(meta_.bytes_at(starts_bytes), slices_.data(),
                                         slices_.size() * sizeof(LoraSlice), {}));
  return absl::OkStatus();
}

LoraSegments LoraBatch::segments(int layer, LoraGroup group) const {
  const size_t key = static_cast<size_t>(layer) * kNumLoraGroups + static_cast<int>(group);
  const size_t starts_bytes = (seg_starts_.size() * sizeof(int32_t) + 7) / 8 * 8;
  LoraSegments s;
  s.rows_base = rows_base_;
  s.num_segments = num_segments_;
  s.num_slices = static_cast<int32_t>(LoraGroupModules(group).size());
  s.seg_starts = meta_.as<const int32_t>();
  s.slices = reinterpret_cast<const LoraSlice*>(meta_.bytes_at(starts_bytes)) + table_index_[key];
  s.max_rank = max_rank_;
  return s;
}

}  // namespace loraserve
