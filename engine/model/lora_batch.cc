#include "engine/model/lora_batch.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/status.h"

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
                              const std::vector<int32_t>& seg_starts) {
  num_segments_ = static_cast<int32_t>(adapters.size());
  max_rank_ = 0;
  rows_base_ = cache.rows_base();
  active_.assign(static_cast<size_t>(num_layers_) * kNumLoraGroups, false);
  table_index_.assign(static_cast<size_t>(num_layers_) * kNumLoraGroups, 0);
  slices_.clear();
  seg_starts_ = seg_starts;
  if (num_segments_ == 0) return absl::OkStatus();
  LS_CHECK_EQ(seg_starts.size(), adapters.size() + 1);

  for (int l = 0; l < num_layers_; ++l) {
    for (int g = 0; g < kNumLoraGroups; ++g) {
      const size_t key = static_cast<size_t>(l) * kNumLoraGroups + g;
      table_index_[key] = static_cast<int64_t>(slices_.size());
      const std::vector<LoraModule> modules = LoraGroupModules(static_cast<LoraGroup>(g));
      for (const PeftAdapter* adapter : adapters) {
        for (LoraModule m : modules) {
          const LoraSlice s = cache.Slice(adapter, l, m);
          if (s.rank > 0) active_[key] = true;
          max_rank_ = std::max(max_rank_, s.rank);
          slices_.push_back(s);
        }
      }
    }
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
