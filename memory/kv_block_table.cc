#include "memory/kv_block_table.h"

#include <algorithm>

#include "common/logging.h"

namespace loraserve {

KvBlockTable::KvBlockTable(PageAllocator* allocator, int32_t block_tokens)
    : allocator_(allocator), block_tokens_(block_tokens) {
  LS_CHECK(allocator != nullptr);
  LS_CHECK_GT(block_tokens, 0);
}

int32_t KvBlockTable::ExtraBlocksFor(int32_t total_tokens) const {
  return std::max(0, BlocksFor(total_tokens) - blocks_.size());
}

bool KvBlockTable::CanReserve(int32_t total_tokens) const {
  return total_tokens >= 0 && allocator_->CanAllocate(ExtraBlocksFor(total_tokens));
}

absl::Status KvBlockTable::Reserve(int32_t total_tokens) {
  if (total_tokens < 0) return absl::InvalidArgumentError("negative token count");
  const int32_t extra = ExtraBlocksFor(total_tokens);
  if (extra > 0) {
    if (absl::Status s = allocator_->Grow(blocks_, extra, PageKind::kKv); !s.ok()) return s;
  }
  reserved_tokens_ = std::max(reserved_tokens_, total_tokens);
  return absl::OkStatus();
}

void KvBlockTable::Free() {
  blocks_.Reset();
  reserved_tokens_ = 0;
}

}  // namespace loraserve
