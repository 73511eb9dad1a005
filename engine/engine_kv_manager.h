// EngineKvManager: the scheduler's KvBlockManager over the model's KvCache
// (engine/model/kv_cache.h): one block table per in-flight request, grown on
// demand and released whole on finish, abort or preemption; and the view +
// block tables the model's Forward reads.
//
// SEAM for the unified page pool (memory/unified_pool): replace the KvCache
// with the pool's KV page allocator and the per-request std::vector tables
// with memory/kv_block_table.h KvBlockTable; CanGrow/Grow/Free/Table/view()
// keep their meaning, so neither the Scheduler nor the engine loop changes.
//
// Owns: the block tables (not the cache; it must outlive this object).
// Called by: the Scheduler and the engine loop, on the engine thread only.
// Not thread-safe.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "engine/model/kv_cache.h"
#include "engine/scheduler/scheduler_resources.h"

namespace loraserve {

class EngineKvManager final : public KvBlockManager {
 public:
  explicit EngineKvManager(KvCache* cache) : cache_(cache) {}

  bool CanGrow(RequestId seq, int32_t new_total_tokens) const override;
  [[nodiscard]] absl::Status Grow(RequestId seq, int32_t new_total_tokens) override;
  void Free(RequestId seq) override;
  int32_t NumFreeBlocks() const override;
  int32_t NumTotalBlocks() const override;

  // The block ids of `seq` in token order (empty when it holds none). Valid
  // until the next Grow/Free of `seq`.
  std::span<const int32_t> Table(RequestId seq) const;
  KvCacheView view() const { return cache_->view(); }
  int32_t block_tokens() const { return cache_->layout().block_tokens; }
  // Requests holding at least one block.
  int32_t NumHolders() const { return static_cast<int32_t>(tables_.size()); }

 private:
  int64_t BlocksFor(int32_t tokens) const;

  KvCache* const cache_;
  absl::flat_hash_map<RequestId, std::vector<int32_t>> tables_;
};

}  // namespace loraserve
