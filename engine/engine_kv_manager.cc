#include "engine/engine_kv_manager.h"

#include <algorithm>

namespace loraserve {

int64_t EngineKvManager::BlocksFor(int32_t tokens) const {
  const int64_t bt = block_tokens();
  return (int64_t{tokens} + bt - 1) / bt;
}

bool EngineKvManager::CanGrow(RequestId seq, int32_t new_total_tokens) const {
  auto it = tables_.find(seq);
  const int64_t held = it == tables_.end() ? 0 : static_cast<int64_t>(it->second.size());
  return std::max<int64_t>(0, BlocksFor(new_total_tokens) - held) <= cache_->num_free_blocks();
}

absl::Status EngineKvManager::Grow(RequestId seq, int32_t new_total_tokens) {
  std::vector<int32_t>& table = tables_[seq];
  absl::Status s = cache_->Reserve(&table, new_total_tokens);
  if (table.empty()) tables_.erase(seq);
  return s;
}

void EngineKvManager::Free(RequestId seq) {
  auto it = tables_.find(seq);
  if (it == tables_.end()) return;
  cache_->Release(&it->second);
  tables_.erase(it);
}

int32_t EngineKvManager::NumFreeBlocks() const {
  return static_cast<int32_t>(cache_->num_free_blocks());
}

int32_t EngineKvManager::NumTotalBlocks() const {
  return static_cast<int32_t>(cache_->num_blocks());
}

std::span<const int32_t> EngineKvManager::Table(RequestId seq) const {
  auto it = tables_.find(seq);
  if (it == tables_.end()) return {};
  return it->second;
}

}  // namespace loraserve
