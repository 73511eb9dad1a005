// KvBlockTable: one sequence's KV-cache blocks in the unified page pool.
//
// A block is one pool page holding `block_tokens` tokens of K and V for every
// layer (the layout the attention kernels read: kernels/backend.h KvLayout).
// The table grows as tokens arrive (Reserve), and gives every block back on
// finish or preemption (Free, or destruction). Block ids are pool page ids,
// in token order: token t lives in blocks()[t / block_tokens], slot
// t % block_tokens.
//
// Owned by the engine thread's per-sequence state; not thread-safe itself
// (the allocator underneath is).
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "memory/page_allocator.h"

namespace loraserve {

class KvBlockTable {
 public:
  // `allocator` must outlive the table; block_tokens > 0.
  KvBlockTable(PageAllocator* allocator, int32_t block_tokens);

  KvBlockTable(KvBlockTable&&) noexcept = default;
  KvBlockTable& operator=(KvBlockTable&&) noexcept = default;

  int32_t block_tokens() const { return block_tokens_; }
  // Tokens that have KV slots reserved (a multiple of nothing: exact count).
  int32_t reserved_tokens() const { return reserved_tokens_; }
  int32_t num_blocks() const { return blocks_.size(); }
  const std::vector<int32_t>& blocks() const { return blocks_.pages(); }

  // Blocks needed to hold `tokens` tokens.
  int32_t BlocksFor(int32_t tokens) const {
    return (tokens + block_tokens_ - 1) / block_tokens_;
  }
  // Additional blocks Reserve(total_tokens) would take.
  int32_t ExtraBlocksFor(int32_t total_tokens) const;
  // True when Reserve(total_tokens) would succeed now.
  bool CanReserve(int32_t total_tokens) const;
  // Ensures slots for `total_tokens` tokens (never shrinks); all or nothing,
  // ResourceExhausted when the pool is short.
  absl::Status Reserve(int32_t total_tokens);
  // Returns every block to the pool (preemption or finish).
  void Free();

 private:
  PageAllocator* allocator_;
  int32_t block_tokens_;
  int32_t reserved_tokens_ = 0;
  PageSet blocks_;
};

}  // namespace loraserve
