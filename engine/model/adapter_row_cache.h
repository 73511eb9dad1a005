// AdapterRowCache: keeps the LoRA weights of recently used adapters in one
// backend buffer as rank-rows (A's rows [in], B^T's rows [out], storage
// dtype) with int64 row-offset tables in a second buffer: exactly what the
// LoRA ops read (kernels/op_args.h LoraSlice). Keyed by adapter object: the
// cache holds a shared_ptr, so an adapter's address is never reused while it
// is cached, and a new adapter loaded under an old name is a new entry.
// A stopgap: the engine reads adapters from the unified pool's residency
// (ForwardBatch::lora); this cache serves only Forward calls without a
// LoraSliceSource (the model tests).
// bump allocation; when full, everything not needed by the current batch is
// dropped and the needed adapters are repacked into a larger buffer.
// Used by LlamaModel on the forward thread. Not thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "engine/adapters/peft_adapter.h"
#include "engine/model/model_config.h"
#include "kernels/backend.h"

namespace loraserve {

class AdapterRowCache {
 public:
  struct Options {
    Backend* backend = nullptr;  // must outlive the cache
    ModelConfig config;          // the base model the adapters run on
    size_t max_bytes = 0;        // rows + offsets capacity limit; 0 = unlimited
  };
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<AdapterRowCache>> Create(
      const Options& options);

  // Makes every adapter of `adapters` (nullptr entries ignored) resident.
  // InvalidArgument naming the adapter when it does not fit the base model;
  // ResourceExhausted when they cannot fit together under max_bytes.
  // Invalidates earlier Slice() results.
  [[nodiscard]] absl::Status Prepare(
      const std::vector<std::shared_ptr<const PeftAdapter>>& adapters);

  // The LoRA of (layer, module) of a resident adapter, pointing into this
  // cache's buffers (rank 0 when that module has none). Valid until the next
  // Prepare.
  LoraSlice Slice(const PeftAdapter* adapter, int layer, LoraModule module) const;
  const void* rows_base() const { return rows_.data(); }

  int num_resident() const { return static_cast<int>(entries_.size()); }
  bool resident(const PeftAdapter* adapter) const { return entries_.contains(adapter); }
  size_t bytes_used() const { return rows_used_ + offsets_used_ * sizeof(int64_t); }
  // Number of times the buffers were rebuilt (tests).
  int rebuilds() const { return rebuilds_; }

 private:
  struct ModuleEntry {
    int32_t rank = 0;
    float scale = 0;
    int64_t offsets_index = 0;  // [rank] A offsets, then [rank] B^T offsets
  };
  struct Entry {
    std::shared_ptr<const PeftAdapter> adapter;
    std::vector<ModuleEntry> modules;  // [num_layers * kNumLoraModules]
  };

  explicit AdapterRowCache(const Options& options) : options_(options) {}
  absl::Status Validate(const PeftAdapter& adapter) const;
  // Row bytes and offset entries `adapter` needs.
  void Footprint(const PeftAdapter& adapter, size_t* row_bytes, size_t* offsets) const;
  // Packs `adapter` at the current bump positions (space checked by the caller).
  absl::Status Pack(std::shared_ptr<const PeftAdapter> adapter);
  // Drops every entry and reallocates for at least the given sizes.
  absl::Status Rebuild(size_t row_bytes, size_t offsets);

  Options options_;
  DeviceBuffer rows_;
  DeviceBuffer offsets_;  // int64
  size_t rows_used_ = 0;
  size_t offsets_used_ = 0;
  absl::flat_hash_map<const PeftAdapter*, Entry> entries_;
  std::vector<int64_t> offset_staging_;
  int rebuilds_ = 0;
};

}  // namespace loraserve
