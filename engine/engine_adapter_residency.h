// EngineAdapterResidency: the scheduler's AdapterAvailability plus the
// adapter pins of in-flight requests and the prefetch list of the next steps.
// A request pins its adapter object (by AdapterKey) from acceptance by the
// engine loop until its terminal event; the pin holds a shared_ptr, so the
// weights outlive an Unload while any request uses them.
//
// Stopgap residency: every pinned adapter is ready at once (the model's
// AdapterRowCache packs it into backend memory inside Forward). The prefetch
// list (most urgent first) is only recorded.
// SEAM for memory/adapter_residency + prefetcher: Pin/Unpin become residency
// pins, SetPrefetch hands the list to the prefetcher, and IsReady asks the
// residency whether the adapter's pages are published; the engine loop and
// the scheduler do not change.
//
// Owns: the pins (shared ownership of pinned adapters).
// Called by: the engine loop and the Scheduler (engine thread): Pin, Unpin,
// SetPrefetch, IsReady; any thread: InUse, NumPins, Names (internal mutex).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "engine/adapters/peft_adapter.h"
#include "engine/scheduler/scheduler_resources.h"

namespace loraserve {

class EngineAdapterResidency final : public AdapterAvailability {
 public:
  bool IsReady(AdapterKey adapter) const override;

  // One more pin of `key` (name and object as loaded). kBaseModelAdapter is
  // never pinned.
  void Pin(AdapterKey key, const std::string& name, std::shared_ptr<const PeftAdapter> adapter);
  // Drops one pin; the last one releases the object. LS_CHECKs a pin exists.
  void Unpin(AdapterKey key);
  // Adapters the next steps need, most urgent first (Scheduler prefetch).
  void SetPrefetch(std::vector<AdapterKey> keys);
  const std::vector<AdapterKey>& prefetch() const { return prefetch_; }

  // Pins of `key` (0 when none).
  int32_t InUse(AdapterKey key) const;
  // When `key` was last pinned (InfinitePast when never or released).
  absl::Time LastUsed(AdapterKey key) const;
  // Total pins over all adapters.
  int64_t NumPins() const;
  // The names of `keys` (pinned ones; unknown keys are skipped).
  std::vector<std::string> Names(const std::vector<AdapterKey>& keys) const;

 private:
  struct PinEntry {
    std::string name;
    std::shared_ptr<const PeftAdapter> adapter;
    int32_t pins = 0;
    absl::Time last_used = absl::InfinitePast();
  };
  mutable absl::Mutex mu_;
  absl::flat_hash_map<AdapterKey, PinEntry> pinned_ ABSL_GUARDED_BY(mu_);
  int64_t total_pins_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<AdapterKey> prefetch_;  // engine thread only
};

}  // namespace loraserve
