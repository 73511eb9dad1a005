#include "engine/engine_kv_manager.h"

#include <utility>

namespace loraserve {

bool EngineKvManager::CanGrow(RequestId seq, int32_t new_total_tokens) const {
  auto it = tables_.find(seq);
  if (it != tables_.end()) return it->second.CanReserve(new_total_tokens);
  const KvBlockTable empty(&pool_->allocator(), layout_.block_tokens);
  return empty.CanReserve(new_total_tokens);
}

absl::Status EngineKvManager::Grow(RequestId seq, int32_t new_total_tokens) {
  auto it = tables_.find(seq);
  if (it == tables_.end()) {
    it = tables_.emplace(seq, KvBlockTable(&pool_->allocator(), layout_.block_tokens)).first;
  }
  absl::Status s = it->second.Reserve(new_total_tokens);
  if (it->second.num_blocks() == 0) tables_.erase(it);
  return s;
}

void EngineKvManager::Free(RequestId seq) { tables_.erase(seq); }

int32_t EngineKvManager::NumFreeBlocks() const { return pool_->allocator().free_pages(); }

int32_t EngineKvManager::NumTotalBlocks() const { return pool_->num_pages(); }

std::span<const int32_t> EngineKvManager::Table(RequestId seq) const {
  auto it = tables_.find(seq);
  if (it == tables_.end()) return {};
  return it->second.blocks();
}

}  // namespace loraserve
