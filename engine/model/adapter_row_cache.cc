#include "engine/model/adapter_row_cache.h"

#include <algorithm>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/status.h"
#include "common/strings.h"

namespace loraserve {

absl::StatusOr<std::unique_ptr<AdapterRowCache>> AdapterRowCache::Create(const Options& options) {
  if (options.backend == nullptr) {
    return absl::InvalidArgumentError("AdapterRowCache: backend is null");
  }
  return std::unique_ptr<AdapterRowCache>(new AdapterRowCache(options));
}

absl::Status AdapterRowCache::Validate(const PeftAdapter& adapter) const {
  const ModelConfig& c = options_.config;
  if (adapter.num_layers() != c.num_hidden_layers) {
    return absl::InvalidArgumentError(absl::StrCat("adapter ", adapter.path(), " has ",
                                                   adapter.num_layers(), " layers, the model ",
                                                   c.num_hidden_layers));
  }
  for (int l = 0; l < c.num_hidden_layers; ++l) {
    for (LoraModule m : kAllLoraModules) {
      const LoraModuleWeights& w = adapter.module(l, m);
      if (w.rank == 0) continue;
      const ProjShape shape = ModuleShape(c, m);
      if (w.rank < 0 || w.rank > kMaxLoraRank || w.in != shape.in || w.out != shape.out ||
          w.a.size() != static_cast<size_t>(w.rank * w.in) ||
          w.b_t.size() != static_cast<size_t>(w.rank * w.out)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "adapter ", adapter.path(), " layer ", l, " ", Sv(LoraModuleName(m)), ": rank ",
            w.rank, " [", w.in, " -> ", w.out, "] does not fit the model's [", shape.in, " -> ",
            shape.out, "] (max rank ", kMaxLoraRank, ")"));
      }
    }
  }
  return absl::OkStatus();
}

void AdapterRowCache::Footprint(const PeftAdapter& adapter, size_t* row_bytes,
                                size_t* offsets) const {
  const size_t elt = options_.backend->elt_size();
  *row_bytes = 0;
  *offsets = 0;
  for (int l = 0; l < adapter.num_layers(); ++l) {
    for (LoraModule m : kAllLoraModules) {
      const LoraModuleWeights& w = adapter.module(l, m);
      *row_bytes += (w.a.size() + w.b_t.size()) * elt;
      *offsets += 2 * static_cast<size_t>(w.rank);
    }
  }
}

absl::Status AdapterRowCache::Pack(std::shared_ptr<const PeftAdapter> adapter) {
  Backend& backend = *options_.backend;
  const int64_t elt = static_cast<int64_t>(backend.elt_size());
  Entry entry;
  entry.modules.resize(static_cast<size_t>(adapter->num_layers()) * kNumLoraModules);
  offset_staging_.clear();
  const size_t offsets_begin = offsets_used_;
  for (int l = 0; l < adapter->num_layers(); ++l) {
    for (int mi = 0; mi < kNumLoraModules; ++mi) {
      const LoraModuleWeights& w = adapter->module(l, kAllLoraModules[mi]);
      ModuleEntry& me = entry.modules[static_cast<size_t>(l) * kNumLoraModules + mi];
      me.rank = w.rank;
      me.scale = w.scale;
      if (w.rank == 0) continue;
      me.offsets_index = static_cast<int64_t>(offsets_begin + offset_staging_.size());
      const int64_t a_at = static_cast<int64_t>(rows_used_);
      const int64_t bt_at = a_at + w.rank * w.in * elt;
      RETURN_IF_ERROR(backend.UploadConverted(w.a.data(), DType::kF32, w.rank * w.in,
                                              rows_.bytes_at(static_cast<size_t>(a_at))));
      RETURN_IF_ERROR(backend.UploadConverted(w.b_t.data(), DType::kF32, w.rank * w.out,
                                              rows_.bytes_at(static_cast<size_t>(bt_at))));
      for (int r = 0; r < w.rank; ++r) offset_staging_.push_back(a_at + r * w.in * elt);
      for (int r = 0; r < w.rank; ++r) offset_staging_.push_back(bt_at + r * w.out * elt);
      rows_used_ = static_cast<size_t>(bt_at + w.rank * w.out * elt);
    }
  }
  if (!offset_staging_.empty()) {
    RETURN_IF_ERROR(backend.CopyToDevice(offsets_.as<int64_t>() + offsets_begin,
                                         offset_staging_.data(),
                                         offset_staging_.size() * sizeof(int64_t), {}));
    // The copy may be asynchronous; the staging vector is reused next Pack.
    RETURN_IF_ERROR(backend.Synchronize({}));
  }
  offsets_used_ = offsets_begin + offset_staging_.size();
  entry.adapter = adapter;
  entries_[adapter.get()] = std::move(entry);
  return absl::OkStatus();
}

absl::Status AdapterRowCache::Rebuild(size_t row_bytes, size_t offsets) {
  entries_.clear();
  rows_.Reset();
  offsets_.Reset();
  rows_used_ = 0;
  offsets_used_ = 0;
  ++rebuilds_;
  ASSIGN_OR_RETURN(rows_, options_.backend->Allocate(std::max<size_t>(row_bytes, 64)));
  ASSIGN_OR_RETURN(offsets_,
                   options_.backend->Allocate(std::max<size_t>(offsets, 8) * sizeof(int64_t)));
  return absl::OkStatus();
}

absl::Status AdapterRowCache::Prepare(
    const std::vector<std::shared_ptr<const PeftAdapter>>& adapters) {
  std::vector<std::shared_ptr<const PeftAdapter>> wanted;
  absl::flat_hash_set<const PeftAdapter*> seen;
  size_t missing_rows = 0, missing_offsets = 0, all_rows = 0, all_offsets = 0;
  for (const auto& a : adapters) {
    if (a == nullptr || !seen.insert(a.get()).second) continue;
    wanted.push_back(a);
    size_t rows, offs;
    Footprint(*a, &rows, &offs);
    all_rows += rows;
    all_offsets += offs;
    if (!entries_.contains(a.get())) {
      RETURN_IF_ERROR(Validate(*a));
      missing_rows += rows;
      missing_offsets += offs;
    }
  }
  if (missing_rows == 0 && missing_offsets == 0) return absl::OkStatus();
  const bool fits = rows_used_ + missing_rows <= rows_.size() &&
                    (offsets_used_ + missing_offsets) * sizeof(int64_t) <= offsets_.size();
  if (!fits) {
    // Keep only this batch's adapters; leave room to grow.
    const size_t need = all_rows + all_offsets * sizeof(int64_t);
    if (options_.max_bytes != 0 && need > options_.max_bytes) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "AdapterRowCache: the batch's ", wanted.size(), " adapters need ", need,
          " bytes, above the cache limit of ", options_.max_bytes));
    }
    size_t rows_cap = std::max(2 * all_rows, rows_.size());
    size_t offs_cap = std::max(2 * all_offsets, offsets_.size() / sizeof(int64_t));
    if (options_.max_bytes != 0 && rows_cap + offs_cap * sizeof(int64_t) > options_.max_bytes) {
      rows_cap = all_rows;
      offs_cap = all_offsets;
    }
    RETURN_IF_ERROR(Rebuild(rows_cap, offs_cap));
  }
  for (const auto& a : wanted) {
    if (!entries_.contains(a.get())) RETURN_IF_ERROR(Pack(a));
  }
  return absl::OkStatus();
}

LoraSlice AdapterRowCache::Slice(const PeftAdapter* adapter, int layer, LoraModule module) const {
  auto it = entries_.find(adapter);
  LS_CHECK(it != entries_.end()) << "adapter not resident: call Prepare first";
  const ModuleEntry& me =
      it->second.modules[static_cast<size_t>(layer) * kNumLoraModules + static_cast<int>(module)];
  LoraSlice s;
  s.rank = me.rank;
  s.scale = me.scale;
  if (me.rank > 0) {
    s.a_row_offsets = offsets_.as<const int64_t>() + me.offsets_index;
    s.bt_row_offsets = s.a_row_offsets + me.rank;
  }
  return s;
}

}  // namespace loraserve
