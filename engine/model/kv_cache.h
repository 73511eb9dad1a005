// KvCache: one backend buffer of KV blocks in the KvLayout of
// kernels/kv_layout.h, a simple free-list block allocator over it, and the
// growth of per-sequence block tables. A stopgap until the unified page pool
// (memory/) owns KV pages: the model only ever sees KvCacheView (base pointer
// + layout) and block tables, so the pool plugs in without touching it.
// The engine now runs on the unified pool (engine_kv_manager.h builds a
// KvCacheView over it); KvCache itself is used only by the model tests.
// Not thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/model/model_config.h"
#include "kernels/backend.h"

namespace loraserve {

// What the forward pass reads: the cache base and its layout.
struct KvCacheView {
  void* base = nullptr;  // [num_blocks] blocks of layout.block_stride_bytes
  KvLayout layout;
};

class KvCache {
 public:
  struct Options {
    Backend* backend = nullptr;  // must outlive the cache
    int32_t num_layers = 0;
    int32_t num_kv_heads = 0;
    int32_t head_dim = 0;
    int32_t block_tokens = 16;
    int64_t num_blocks = 0;
  };
  // Options for `config`'s layer count and KV heads.
  static Options ForModel(Backend* backend, const ModelConfig& config, int32_t block_tokens,
                          int64_t num_blocks);

  [[nodiscard]] static absl::StatusOr<std::unique_ptr<KvCache>> Create(const Options& options);

  KvCacheView view() const { return KvCacheView{buffer_.data(), layout_}; }
  const KvLayout& layout() const { return layout_; }
  int64_t num_blocks() const { return num_blocks_; }
  int64_t num_free_blocks() const { return static_cast<int64_t>(free_.size()); }

  // Grows `table` so it covers `num_tokens` tokens (never shrinks). All or
  // nothing: ResourceExhausted when there are not enough free blocks.
  [[nodiscard]] absl::Status Reserve(std::vector<int32_t>* table, int64_t num_tokens);
  // Returns every block of `table` and clears it.
  void Release(std::vector<int32_t>* table);

 private:
  KvCache() = default;

  DeviceBuffer buffer_;
  KvLayout layout_;
  int64_t num_blocks_ = 0;
  std::vector<int32_t> free_;  // stack of free block ids
};

}  // namespace loraserve
