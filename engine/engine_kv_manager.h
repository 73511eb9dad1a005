// EngineKvManager: the scheduler's KvBlockManager over the unified page pool
// (memory/unified_pool.h): one KvBlockTable per in-flight request (a KV block
// is one pool page holding block_tokens tokens for every layer), grown on
// demand and freed whole on finish, abort or preemption; and the view + block
// tables the model's Forward reads (KV base = the pool base, block stride =
// the page size). Growing may evict idle adapters (the pool's reclaimer), so
// CanGrow counts their pages as available.
//
// Owns: the block tables (not the pool; it must outlive this object).
// Called by: the Scheduler and the engine loop, on the engine thread only.
// Not thread-safe.
#pragma once

#include <cstdint>
#include <span>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "engine/model/kv_cache.h"
#include "engine/scheduler/scheduler_resources.h"
#include "memory/kv_block_table.h"
#include "memory/unified_pool.h"

namespace loraserve {

class EngineKvManager final : public KvBlockManager {
 public:
  // `layout` is MakeKvLayout(geometry, pool->page_bytes()).
  EngineKvManager(UnifiedPool* pool, const KvLayout& layout) : pool_(pool), layout_(layout) {}

  bool CanGrow(RequestId seq, int32_t new_total_tokens) const override;
  [[nodiscard]] absl::Status Grow(RequestId seq, int32_t new_total_tokens) override;
  void Free(RequestId seq) override;
  // Free pool pages (not counting idle adapters' reclaimable pages).
  int32_t NumFreeBlocks() const override;
  // Every page of the pool (KV and adapters share them).
  int32_t NumTotalBlocks() const override;

  // The block ids of `seq` in token order (empty when it holds none). Valid
  // until the next Grow/Free of `seq`.
  std::span<const int32_t> Table(RequestId seq) const;
  KvCacheView view() const { return KvCacheView{pool_->base(), layout_}; }
  int32_t block_tokens() const { return layout_.block_tokens; }
  // Requests holding at least one block.
  int32_t NumHolders() const { return static_cast<int32_t>(tables_.size()); }

 private:
  UnifiedPool* const pool_;
  const KvLayout layout_;
  absl::flat_hash_map<RequestId, KvBlockTable> tables_;
};

}  // namespace loraserve
