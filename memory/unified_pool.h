// UnifiedPool: the one backend allocation that KV-cache blocks and adapter
// rank-rows share (DESIGN.md, "Unified paged memory"). It owns the buffer
// (device memory on CUDA, host memory on the CPU backend) cut into fixed-size
// pages, and the PageAllocator (host-side free list, per-kind accounting)
// over it. Page p occupies bytes [p * page_bytes, (p + 1) * page_bytes) from
// base(); base() is both the KV cache base the attention kernels read
// (KvLayout.block_stride_bytes = page_bytes, block id = page id) and the
// rows_base the LoRA kernels read adapter rows from.
//
// Also here: the page size computation (one page = one KV block for all
// layers, and at least the largest rank-row, so both kinds share a page
// size) and the pool-size flag ("4GiB", "1073741824" or a fraction "0.9" of
// free device memory).
//
// Created once by the engine after the model weights are loaded; owned by the
// engine thread. Thread-safety: as PageAllocator (the allocator is the only
// mutable state; the buffer pointer never changes).
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>
#include <utility>

#include "absl/status/statusor.h"
#include "kernels/backend.h"
#include "memory/page_allocator.h"

namespace loraserve {

// The model shape the page size depends on.
struct PoolGeometry {
  int32_t num_layers = 0;
  int32_t num_kv_heads = 0;
  int32_t head_dim = 0;
  int32_t block_tokens = 0;  // tokens per KV block (= per page)
  // Elements of the longest adapter rank-row: max over LoRA projections of
  // max(in, out), i.e. max(hidden, intermediate, q_heads * head_dim).
  int64_t max_row_elems = 0;
};

// Page bytes for `geometry` at `elt_size` bytes/element: the max of one KV
// block (all layers, K and V), the longest rank-row, and one rank-row offset
// table at kMaxLoraRank (8 * 256 bytes), rounded up to kPageAlign.
// InvalidArgument naming the bad field.
inline constexpr int64_t kPageAlign = 256;
absl::StatusOr<int64_t> ComputePageBytes(const PoolGeometry& geometry, size_t elt_size);

// The KV layout of a pool with `page_bytes` pages for `geometry`.
KvLayout MakeKvLayout(const PoolGeometry& geometry, int64_t page_bytes);

// The pool-size flag: absolute bytes, or a fraction of free device memory.
struct PoolSize {
  int64_t bytes = 0;      // > 0: exactly this many bytes (rounded down to pages)
  double fraction = 0.0;  // in (0, 1]: this share of free device memory
};
// Parses "1073741824", "512MiB", "4GiB", "100MB" (powers of 1000) or a
// fraction "0.85" (any value with a '.' below or at 1). InvalidArgument otherwise.
absl::StatusOr<PoolSize> ParsePoolSize(std::string_view flag);
// Bytes for `size`, given the device's free bytes after the weights are
// loaded (-1: unknown, e.g. a backend without a memory query, then only
// absolute sizes work).
absl::StatusOr<int64_t> ResolvePoolBytes(const PoolSize& size, int64_t free_device_bytes);

// Page counts by kind, for the loraserve_pool_pages{kind} gauge.
struct PoolStats {
  int64_t page_bytes = 0;
  int32_t total_pages = 0;
  int32_t free_pages = 0;
  int32_t kv_pages = 0;
  int32_t adapter_pages = 0;
};

class UnifiedPool {
 public:
  struct Options {
    Backend* backend = nullptr;  // must outlive the pool
    int64_t page_bytes = 0;      // > 0, a multiple of the backend's element size
    int64_t pool_bytes = 0;      // rounded down to whole pages; >= one page
  };
  // Allocates the pool buffer. InvalidArgument for bad options,
  // ResourceExhausted when the backend cannot allocate it.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<UnifiedPool>> Create(const Options& options);

  UnifiedPool(const UnifiedPool&) = delete;
  UnifiedPool& operator=(const UnifiedPool&) = delete;

  Backend* backend() const { return backend_; }
  // Start of page 0: the KV cache base and the LoRA rows_base.
  uint8_t* base() const { return buffer_.as<uint8_t>(); }
  uint8_t* page(int32_t id) const { return base() + static_cast<int64_t>(id) * page_bytes_; }
  int64_t page_bytes() const { return page_bytes_; }
  int32_t num_pages() const { return allocator_.num_pages(); }
  PageAllocator& allocator() { return allocator_; }
  const PageAllocator& allocator() const { return allocator_; }

  PoolStats stats() const;

 private:
  UnifiedPool(Backend* backend, DeviceBuffer buffer, int64_t page_bytes, int32_t num_pages)
      : backend_(backend),
        buffer_(std::move(buffer)),
        page_bytes_(page_bytes),
        allocator_(num_pages) {}

  Backend* backend_;
  DeviceBuffer buffer_;
  int64_t page_bytes_;
  PageAllocator allocator_;  // declared last: destroyed first, after its PageSets are gone
};

}  // namespace loraserve
