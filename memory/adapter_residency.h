// AdapterResidency: the device tier of adapter residency, and the lifetime of
// adapter objects (DESIGN.md, "Unified paged memory"). Keyed by AdapterId
// (a unique object id, never a name).
//
// An adapter on device is its rank-rows packed into unified-pool pages of
// kind adapter, with its row-offset tables in those same pages (see
// adapter_layout.h); Slice() hands the LoRA kernels a LoraSlice into them
// (LoraSegments.rows_base = rows_base() = the pool base).
//
//  - Prefetch(priority): the scheduler's list of adapters the next iterations
//    need, most urgent first. Each one not on device gets its host copy from
//    the HostAdapterCache (starting a disk load if needed) and pages from the
//    pool (evicting idle adapters, LRU, never one in `priority`), and is
//    copied host->pool by the Prefetcher's worker while the batch computes.
//    The first adapter that does not fit stops the walk (priority order).
//  - Poll(): publishes adapters whose copy completed. IsReady(id) is true, and
//    Slice() may be called, only after that: kernels never see pages in flight.
//  - Pins: AdapterPin (move-only) keeps an adapter from being evicted (hold
//    one for every request in a batch or scheduled into one). AdapterRef keeps
//    the object alive (host copy, eligibility for the pool) after its name is
//    unloaded (hold one per accepted request). Idle adapters (no pin) stay
//    resident until their pages are needed: by Prefetch, or by any pool
//    allocation, KV included (this class is the pool allocator's
//    PageReclaimer), so idle adapters are always evicted before KV is refused.
//  - Retire(id) (on unload/replace): once no ref or pin is left, the pages and
//    the host copy go back at once (after an in-flight copy completes).
//
// Owned by the engine; must be destroyed before the pool and host cache.
// Thread-safety: engine thread only (including dropping pins and refs, and
// pool allocations, which may call back into Reclaim). The prefetch worker
// talks to it only through the Prefetcher's completion list.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "kernels/op_args.h"
#include "memory/adapter_layout.h"
#include "memory/adapter_weights.h"
#include "memory/host_adapter_cache.h"
#include "memory/page_allocator.h"
#include "memory/prefetcher.h"
#include "memory/unified_pool.h"

namespace loraserve {

class AdapterResidency;

// A pin (kPin = true: no eviction) or a reference (kPin = false: the object
// stays alive) on one adapter. Move-only; releases itself on the engine thread.
template <bool kPin>
class AdapterHold {
 public:
  AdapterHold() = default;
  ~AdapterHold() { Reset(); }
  AdapterHold(AdapterHold&& other) noexcept { *this = std::move(other); }
  AdapterHold& operator=(AdapterHold&& other) noexcept {
    if (this != &other) {
      Reset();
      std::swap(owner_, other.owner_);
      std::swap(id_, other.id_);
    }
    return *this;
  }
  AdapterHold(const AdapterHold&) = delete;
  AdapterHold& operator=(const AdapterHold&) = delete;

  AdapterId id() const { return id_; }
  bool empty() const { return owner_ == nullptr; }
  inline void Reset();

 private:
  friend class AdapterResidency;
  AdapterHold(AdapterResidency* owner, AdapterId id) : owner_(owner), id_(id) {}
  AdapterResidency* owner_ = nullptr;
  AdapterId id_ = 0;
};
using AdapterPin = AdapterHold<true>;
using AdapterRef = AdapterHold<false>;

// Counts for the metrics (DESIGN.md, "Metrics").
struct ResidencyStats {
  int32_t known = 0;           // registered objects not yet freed
  int32_t device_ready = 0;    // loraserve_adapters_resident{tier="device"}
  int32_t device_copying = 0;  // prefetch copies in flight
  int32_t pinned = 0;          // adapters with at least one pin
  int32_t adapter_pages = 0;
  int64_t device_loads_ok = 0;      // loraserve_adapter_loads_total{tier="device",result="ok"}
  int64_t device_loads_failed = 0;  // ... result="error"
  int64_t evictions = 0;
};

class AdapterResidency final : public PageReclaimer {
 public:
  struct Options {
    UnifiedPool* pool = nullptr;       // must outlive this; its reclaimer becomes this
    HostAdapterCache* host = nullptr;  // must outlive this
  };
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<AdapterResidency>> Create(
      const Options& options);
  ~AdapterResidency() override;
  AdapterResidency(const AdapterResidency&) = delete;
  AdapterResidency& operator=(const AdapterResidency&) = delete;

  // ------------------------------------------------ lifecycle (the registry)
  // OK when `weights` can be packed into this pool (ranks, row sizes, and no
  // more pages than the pool has); InvalidArgument naming the reason.
  absl::Status CheckFits(const AdapterWeights& weights) const;
  // Starts tracking `id` (new; its host entry is in the HostAdapterCache).
  void Register(AdapterId id);
  // No new holders will come (name unloaded or replaced); frees `id` when
  // its last pin/ref drops (now if none).
  void Retire(AdapterId id);
  bool Known(AdapterId id) const { return entries_.contains(id); }

  // ------------------------------------------------ holders (engine/scheduler)
  // NotFound when `id` is unknown or already freed.
  absl::StatusOr<AdapterRef> Acquire(AdapterId id);
  absl::StatusOr<AdapterPin> Pin(AdapterId id);

  // ------------------------------------------------ scheduling
  void Prefetch(std::span<const AdapterId> priority);
  // Publishes completed copies; returns how many adapters became ready.
  int Poll();
  // Base model (id 0) is always ready.
  bool IsReady(AdapterId id) const;
  // Non-OK when `id` cannot become ready: its disk load or copy failed
  // (requests waiting on it should fail with this), or it is unknown.
  absl::Status AdapterError(AdapterId id) const;
  // The LoRA of (layer, module) of a ready adapter (rank 0 where it has none).
  LoraSlice Slice(AdapterId id, int layer, int module) const;
  const void* rows_base() const { return pool_->base(); }
  // Pool pages `id` occupies (0 when not on device).
  int32_t pages_of(AdapterId id) const;

  ResidencyStats stats() const;
  // Device loads finished since the last call (for the load histogram).
  std::vector<AdapterLoadEvent> TakeLoadEvents() { return std::move(load_events_); }

  // ------------------------------------------------ PageReclaimer
  int32_t ReclaimablePages() const override;
  int32_t Reclaim(int32_t pages) override;

 private:
  template <bool kPin>
  friend class AdapterHold;
  enum class State : uint8_t { kAbsent, kCopying, kReady };
  struct Entry {
    bool retired = false;
    int32_t refs = 0;
    int32_t pins = 0;
    State state = State::kAbsent;
    PageSet pages;
    std::shared_ptr<const AdapterLayout> layout;
    std::vector<LoraSlice> slices;  // [num_layers * kNumAdapterModules] once ready
    uint64_t last_use = 0;
    uint64_t wanted_epoch = 0;
    absl::Status error;
  };

  explicit AdapterResidency(const Options& options) : pool_(options.pool), host_(options.host) {}
  void Release(AdapterId id, bool pin);
  bool Evictable(const Entry& e) const;
  void Evict(Entry& e);
  void Publish(Entry& e);
  // Frees `id` if it is retired and nothing holds or copies it.
  void MaybeFree(AdapterId id);

  UnifiedPool* pool_;
  HostAdapterCache* host_;
  absl::flat_hash_map<AdapterId, Entry> entries_;  // before prefetcher_: outlives its copies
  uint64_t tick_ = 0;
  uint64_t epoch_ = 0;
  bool in_prefetch_ = false;
  int64_t loads_ok_ = 0;
  int64_t loads_failed_ = 0;
  int64_t evictions_ = 0;
  std::vector<AdapterLoadEvent> load_events_;
  std::unique_ptr<Prefetcher> prefetcher_;
};

template <bool kPin>
void AdapterHold<kPin>::Reset() {
  if (owner_ != nullptr) owner_->Release(id_, kPin);
  owner_ = nullptr;
  id_ = 0;
}

}  // namespace loraserve
