#include "engine/model/kv_cache.h"

#include <limits>

#include "absl/strings/str_cat.h"
#include "common/status.h"

namespace loraserve {

KvCache::Options KvCache::ForModel(Backend* backend, const ModelConfig& config,
                                   int32_t block_tokens, int64_t num_blocks) {
  Options o;
  o.backend = backend;
  o.num_layers = config.num_hidden_layers;
  o.num_kv_heads = config.num_key_value_heads;
  o.head_dim = static_cast<int32_t>(config.head_dim);
  o.block_tokens = block_tokens;
  o.num_blocks = num_blocks;
  return o;
}

absl::StatusOr<std::unique_ptr<KvCache>> KvCache::Create(const Options& options) {
  if (options.backend == nullptr) return absl::InvalidArgumentError("KvCache: backend is null");
  if (options.num_blocks <= 0 || options.num_blocks > std::numeric_limits<int32_t>::max()) {
    return absl::InvalidArgumentError(
        absl::StrCat("KvCache: num_blocks must be in [1, 2^31); got ", options.num_blocks));
  }
  KvLayout layout{options.num_layers, options.num_kv_heads, options.head_dim,
                  options.block_tokens, 0};
  layout.block_stride_bytes = layout.MinBlockBytes(options.backend->elt_size());
  RETURN_IF_ERROR(layout.Validate("KvCache", options.backend->elt_size()));
  auto cache = std::unique_ptr<KvCache>(new KvCache());
  ASSIGN_OR_RETURN(cache->buffer_, options.backend->Allocate(static_cast<size_t>(
                                       options.num_blocks * layout.block_stride_bytes)));
  cache->layout_ = layout;
  cache->num_blocks_ = options.num_blocks;
  cache->free_.reserve(static_cast<size_t>(options.num_blocks));
  for (int64_t b = options.num_blocks - 1; b >= 0; --b) {
    cache->free_.push_back(static_cast<int32_t>(b));  // block 0 is handed out first
  }
  return cache;
}

absl::Status KvCache::Reserve(std::vector<int32_t>* table, int64_t num_tokens) {
  const int64_t needed = (num_tokens + layout_.block_tokens - 1) / layout_.block_tokens;
  const int64_t extra = needed - static_cast<int64_t>(table->size());
  if (extra <= 0) return absl::OkStatus();
  if (extra > num_free_blocks()) {
    return absl::ResourceExhaustedError(absl::StrCat("KvCache: ", num_tokens, " tokens need ",
                                                     extra, " more blocks, ", num_free_blocks(),
                                                     " free"));
  }
  for (int64_t i = 0; i < extra; ++i) {
    table->push_back(free_.back());
    free_.pop_back();
  }
  return absl::OkStatus();
}

void KvCache::Release(std::vector<int32_t>* table) {
  for (int32_t b : *table) free_.push_back(b);
  table->clear();
}

}  // namespace loraserve
