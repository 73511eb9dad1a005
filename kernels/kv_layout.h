// KvLayout: how the paged KV cache is laid out in backend memory. The cache is
// a base pointer plus this layout; block ids index blocks from the base. One
// block (one page of the unified pool) holds `block_tokens` tokens of K and V
// for ALL layers; element (block b, layer l, kv in {0=K,1=V}, slot s, head h,
// dim d) lives at
//
//   base + b * block_stride_bytes
//        + ((((l * 2 + kv) * block_tokens + s) * num_kv_heads + h) * head_dim + d) * elt_size
//
// so a page is self-contained and the pool may place pages anywhere
// (block_stride_bytes >= MinBlockBytes; a pool page may be larger). Token at
// position p of a sequence lives in block block_table[p / block_tokens], slot
// p % block_tokens. Block tables are int32 block ids.
// Used by the attention / write-KV ops (kernels), the KV allocator and the
// model (engine, memory). Plain data; any thread.
#pragma once

#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace loraserve {

struct KvLayout {
  int32_t num_layers = 0;
  int32_t num_kv_heads = 0;
  int32_t head_dim = 0;
  int32_t block_tokens = 0;
  int64_t block_stride_bytes = 0;

  // Bytes one block needs for all layers, K and V, at `elt_size` bytes/element.
  int64_t MinBlockBytes(size_t elt_size) const {
    return int64_t{2} * num_layers * block_tokens * num_kv_heads * head_dim *
           static_cast<int64_t>(elt_size);
  }

  // Element offset (not bytes) of (layer, kv, slot, head, 0) inside a block.
  int64_t ElementOffsetInBlock(int64_t layer, int64_t kv, int64_t slot, int64_t head) const {
    return (((layer * 2 + kv) * block_tokens + slot) * num_kv_heads + head) * head_dim;
  }

  // Byte offset from the cache base of element (block, layer, kv, slot, head, 0).
  int64_t ByteOffset(int64_t block, int64_t layer, int64_t kv, int64_t slot, int64_t head,
                     size_t elt_size) const {
    return block * block_stride_bytes +
           ElementOffsetInBlock(layer, kv, slot, head) * static_cast<int64_t>(elt_size);
  }

  // InvalidArgument naming `op` and the bad field when the layout is unusable.
  absl::Status Validate(const char* op, size_t elt_size) const {
    if (num_layers <= 0 || num_kv_heads <= 0 || head_dim <= 0 || block_tokens <= 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          op, ": bad KvLayout (num_layers=", num_layers, ", num_kv_heads=", num_kv_heads,
          ", head_dim=", head_dim, ", block_tokens=", block_tokens, ")"));
    }
    if (block_stride_bytes < MinBlockBytes(elt_size)) {
      return absl::InvalidArgumentError(
          absl::StrCat(op, ": KvLayout block_stride_bytes=", block_stride_bytes,
                       " is below the ", MinBlockBytes(elt_size), " bytes one block needs"));
    }
    return absl::OkStatus();
  }
};

}  // namespace loraserve
