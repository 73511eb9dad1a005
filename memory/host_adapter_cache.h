// HostAdapterCache: the host tier of adapter residency (DESIGN.md, "Residency
// tiers": device pool <- host cache <- disk). Holds loaded adapters (fp32
// rank-rows, AdapterWeights) under a byte budget, keyed by AdapterId, each
// with the source it was loaded from (the PEFT directory: the disk tier).
// When over budget (bytes, or number of adapters) the least recently used
// host copies are dropped, never one marked in use (SetInUse: referenced by
// accepted requests); a later Get of such an id reloads it from its source on
// the loader thread. When only in-use copies are left the cache stays above
// its budget until they are released.
//
// Disk -> host loads run on a worker thread through the Loader callback the
// engine supplies (it runs the PEFT loader); their results are handed back
// through a mutex-guarded list and applied on the engine thread by Poll.
// A host copy dropped from the cache stays alive while a prefetch copy still
// reads it (shared_ptr), so dropping is always safe.
//
// Owned by the engine (next to AdapterResidency / AdapterRegistry).
// Thread-safety: every method is engine-thread only, except that the Loader
// runs on the cache's worker thread (it must be safe to call there).
// (CUDA: the host copies should live in pinned memory for async copies;
// Backend has no pinned allocator yet, so they are ordinary heap memory.)
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "memory/adapter_weights.h"
#include "memory/worker_thread.h"

namespace loraserve {

class HostAdapterCache {
 public:
  // Disk -> host: loads the adapter at `source`. Runs on the worker thread.
  using Loader =
      std::function<absl::StatusOr<std::shared_ptr<const AdapterWeights>>(const std::string&)>;

  struct Options {
    size_t budget_bytes = 0;  // 0 = unlimited; one adapter above it is still kept alone
    Loader loader;            // required for disk loads
    int32_t max_entries = 0;  // host copies at most (vLLM --max-cpu-loras); 0 = unlimited
  };
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<HostAdapterCache>> Create(
      const Options& options);
  ~HostAdapterCache();
  HostAdapterCache(const HostAdapterCache&) = delete;
  HostAdapterCache& operator=(const HostAdapterCache&) = delete;

  // A disk load finished (Poll's result).
  struct LoadDone {
    AdapterId id = 0;
    absl::Status status;
    std::shared_ptr<const AdapterWeights> weights;  // the loaded copy when OK
    double seconds = 0;
  };

  // Registers `id` (new) with its `source`; `weights` may be null, then the
  // first Get (or StartLoad) loads it from disk.
  void Add(AdapterId id, std::string source, std::shared_ptr<const AdapterWeights> weights);
  // Starts a disk load of `id` unless it is on host or already loading.
  void StartLoad(AdapterId id);
  // Forgets `id`: its host copy is dropped; a load in flight is discarded.
  void Remove(AdapterId id);
  bool Contains(AdapterId id) const { return entries_.contains(id); }
  // True when `id`'s host copy is in memory (not only on disk).
  bool OnHost(AdapterId id) const;
  // The ids whose host copy is in memory.
  std::vector<AdapterId> OnHostIds() const;
  // In use (referenced by accepted requests): its host copy is never dropped
  // for the budget. Releasing it enforces the budget again.
  void SetInUse(AdapterId id, bool in_use);

  // The host copy of `id` (marked most recently used), or null while it is
  // only on disk, in which case a load is started. Null for unknown ids.
  std::shared_ptr<const AdapterWeights> Get(AdapterId id);
  // The error of `id`'s last disk load (OK when none failed). A failed id
  // stays failed until StartLoad is called again.
  absl::Status LoadError(AdapterId id) const;

  // Applies finished disk loads and enforces the budget; returns them.
  std::vector<LoadDone> Poll();

  // Metrics.
  int32_t num_on_host() const { return on_host_; }
  int32_t num_loading() const { return loading_; }
  size_t bytes_on_host() const { return bytes_; }

 private:
  struct Entry {
    std::string source;
    std::shared_ptr<const AdapterWeights> weights;
    bool loading = false;
    uint64_t generation = 0;  // bumps on Remove/StartLoad: stale loads are discarded
    uint64_t last_use = 0;
    bool in_use = false;
    absl::Status error;
  };
  struct Finished {
    AdapterId id;
    uint64_t generation;
    absl::StatusOr<std::shared_ptr<const AdapterWeights>> result;
    double seconds;
  };

  explicit HostAdapterCache(Options options) : options_(std::move(options)) {}
  void SetWeights(Entry& e, std::shared_ptr<const AdapterWeights> w);
  void EnforceBudget(AdapterId keep);
  bool OverBudget() const;

  Options options_;
  absl::flat_hash_map<AdapterId, Entry> entries_;
  uint64_t tick_ = 0;
  uint64_t next_generation_ = 1;
  int32_t on_host_ = 0;
  int32_t loading_ = 0;
  size_t bytes_ = 0;
  absl::Mutex mu_;
  std::vector<Finished> finished_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<WorkerThread> worker_;  // last: joined first
};

}  // namespace loraserve
