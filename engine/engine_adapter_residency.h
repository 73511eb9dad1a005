// EngineAdapterResidency: the engine's side of adapter residency over the
// unified pool (memory/adapter_residency.h + host_adapter_cache.h):
//  - the scheduler's AdapterAvailability: IsReady(key) is true only after the
//    adapter's host->pool copy completed and was published by Poll(). A ready
//    adapter is pinned at that moment for the rest of the Schedule() call
//    (EndSchedule drops those pins), so the KV the scheduler then reserves
//    for its request cannot evict it (pin before reserving KV);
//  - the model's LoraSliceSource (slices point into the pool's pages);
//  - per request: an AdapterRef from acceptance to the terminal event (the
//    object outlives an unload), and an AdapterPin while it is scheduled or
//    running (dropped on preemption and at the end);
//  - Prefetch(the scheduler's list) / Poll(): host->pool copies run on the
//    prefetcher's worker; idle adapters are evicted LRU for prefetches and
//    for KV (the pool's reclaimer).
// Adapters are registered lazily, when the first request for them arrives
// (AdapterKey == AdapterId: catalog keys are never reused).
// The host tier: LoadAdapter hands the copy it loaded (on its own thread) to
// QueueHostCopy; the engine thread moves it into the budgeted HostAdapterCache
// (ApplyHostCopies). Adapters referenced by accepted requests are marked in
// use there (never dropped from host); idle ones are dropped LRU beyond the
// budget and reloaded from their PEFT directory on the cache's loader thread
// when a request needs them again.
//
// Owns: the host cache, the residency, the requests' refs and pins. Must be
// destroyed before the pool.
// Called by: the engine loop and the Scheduler (engine thread) for
// everything except InUse, LastUsed, NumPins, Names, OnDevice, OnHost,
// QueueHostCopy and CheckFits, which any thread may call (internal mutex;
// CheckFits reads only the pool's immutable geometry).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "engine/adapters/peft_adapter.h"
#include "engine/model/lora_batch.h"
#include "engine/scheduler/scheduler_resources.h"
#include "memory/adapter_residency.h"
#include "memory/host_adapter_cache.h"
#include "memory/unified_pool.h"

namespace loraserve {

class EngineAdapterResidency final : public AdapterAvailability, public LoraSliceSource {
 public:
  struct Options {
    UnifiedPool* pool = nullptr;  // must outlive this
    HostAdapterCache::Loader loader;  // disk -> host reload of a dropped host copy
    size_t host_budget_bytes = 0;     // 0 = unlimited
    int32_t host_max_adapters = 0;    // host copies at most; 0 = unlimited
  };
  static absl::StatusOr<std::unique_ptr<EngineAdapterResidency>> Create(const Options& options);
  ~EngineAdapterResidency() override;

  // AdapterAvailability (see the header comment about the scheduling pin).
  bool IsReady(AdapterKey adapter) const override;
  // Drops the pins IsReady took during this Schedule().
  void EndSchedule();

  // LoraSliceSource.
  const void* rows_base() const override { return residency_->rows_base(); }
  LoraSlice Slice(uint64_t key, int layer, LoraModule module) const override;

  // OK when `weights` can ever be packed into the pool.
  absl::Status CheckFits(const AdapterWeights& weights) const {
    return residency_->CheckFits(weights);
  }

  // Any thread: the host copy LoadAdapter just loaded for `key` (from
  // `path`); it goes into the host cache at the next ApplyHostCopies.
  void QueueHostCopy(AdapterKey key, std::string path, std::shared_ptr<const PeftAdapter> adapter);
  // Moves the queued host copies into the host cache (budget enforced).
  void ApplyHostCopies();

  // Request `id` (accepted) uses adapter `key` (not the base model): takes a
  // ref, registering the adapter first if needed (its host copy is loaded
  // from `path` when it is not in the host cache). `current` is false when
  // the name no longer maps to `key` (unloaded meanwhile): it is retired at
  // once.
  absl::Status Attach(RequestId id, AdapterKey key, const std::string& name,
                      const std::string& path, bool current);
  // Scheduled into a batch: pin its adapter (idempotent).
  void PinRequest(RequestId id);
  // Preempted: unpin (keeps the ref).
  void UnpinRequest(RequestId id);
  // Terminal event: drop the pin and the ref (no-op for requests never attached).
  void Detach(RequestId id);
  // The name was unloaded: free the object (and its host copy) when its last
  // holder goes.
  void Retire(AdapterKey key);
  // The adapter of `id` (kBaseModelAdapter when none).
  AdapterKey KeyOf(RequestId id) const;
  bool Pinned(RequestId id) const;

  void Prefetch(const std::vector<AdapterKey>& keys);
  // Publishes finished copies and host loads; returns adapters made ready.
  int Poll();
  // Non-OK when `key` can never become ready.
  absl::Status AdapterError(AdapterKey key) const { return residency_->AdapterError(key); }
  // Host->pool copies in flight.
  bool Copying() const { return residency_->stats().device_copying > 0; }
  ResidencyStats stats() const { return residency_->stats(); }
  const HostAdapterCache& host() const { return *host_; }
  // Host (disk -> host) and device (host -> pool) loads since the last call.
  std::vector<AdapterLoadEvent> TakeLoadEvents();
  // Refreshes the device/host-tier flags ListAdapters reads.
  void RefreshTiers();
  // Adapters whose host copy is in memory.
  int32_t NumOnHost() const { return host_->num_on_host(); }

  // Any thread.
  int32_t InUse(AdapterKey key) const;
  absl::Time LastUsed(AdapterKey key) const;
  int64_t NumPins() const;
  bool OnDevice(AdapterKey key) const;
  // In the host cache (or queued for it) at the last RefreshTiers.
  bool OnHost(AdapterKey key) const;
  std::vector<std::string> Names(const std::vector<AdapterKey>& keys) const;

 private:
  struct Holder {
    AdapterKey key = kBaseModelAdapter;
    AdapterRef ref;
    AdapterPin pin;
  };
  struct Info {
    std::string name;
    int32_t in_use = 0;
    absl::Time last_used = absl::InfinitePast();
    bool on_device = false;
  };
  EngineAdapterResidency() = default;

  std::unique_ptr<HostAdapterCache> host_;
  std::unique_ptr<AdapterResidency> residency_;  // after host_: destroyed first
  absl::flat_hash_map<RequestId, Holder> holders_;
  mutable absl::flat_hash_map<AdapterKey, AdapterPin> sched_pins_;
  std::vector<AdapterLoadEvent> host_events_;

  mutable absl::Mutex mu_;
  absl::flat_hash_map<AdapterKey, Info> info_ ABSL_GUARDED_BY(mu_);
  int64_t total_in_use_ ABSL_GUARDED_BY(mu_) = 0;
  struct HostCopy {
    AdapterKey key;
    std::string path;
    std::shared_ptr<const PeftAdapter> adapter;
  };
  std::vector<HostCopy> pending_host_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<AdapterKey> on_host_ ABSL_GUARDED_BY(mu_);
};

}  // namespace loraserve
