// AdapterRegistry: adapter names -> adapter objects (AdapterId), with load,
// unload and replace (DESIGN.md, "Unload"). Every load creates a new object
// with a fresh id from a generation counter that is never reused, so a name
// that is unloaded and loaded again (or replaced) never makes a request read
// another adapter's weights: requests resolve the name once, at acceptance,
// and keep their id (hold an AdapterRef) until they finish.
//
//  - Load(name, source): disk -> host on the HostAdapterCache's worker (the
//    engine's loader callback runs the PEFT loader there). The name maps to
//    the new id only when Poll sees the load succeed and the adapter fit the
//    pool; a name that already mapped to an older id keeps serving it until
//    then, and the older id is retired at that moment (replace).
//  - Add(name, source, weights): the same for an adapter already loaded
//    elsewhere (e.g. by the admin RPC thread); takes effect at once.
//  - Unload(name): the name disappears at once; the object is retired and
//    freed (pool pages and host copy) when its last ref/pin drops. A Load of
//    that name still in flight is not cancelled: it publishes when it ends.
//    Loads finish in submission order (one loader thread), so the last Load
//    of a name wins.
//
// Owned by the engine. Thread-safety: engine thread only (the admin RPC hands
// its calls to the engine inbox); completion callbacks run inside Poll.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "memory/adapter_residency.h"
#include "memory/adapter_weights.h"
#include "memory/host_adapter_cache.h"

namespace loraserve {

class AdapterRegistry {
 public:
  struct Options {
    AdapterResidency* residency = nullptr;  // must outlive the registry
    HostAdapterCache* host = nullptr;       // must outlive the registry
  };
  // Called from Poll with the new id, or the reason the load was refused.
  using LoadCallback = std::function<void(absl::StatusOr<AdapterId>)>;

  [[nodiscard]] static absl::StatusOr<std::unique_ptr<AdapterRegistry>> Create(
      const Options& options);

  // Starts loading `source` under `name`; returns the id the object will
  // have. `done` (may be empty) runs from a later Poll. InvalidArgument for
  // an empty name.
  absl::StatusOr<AdapterId> Load(const std::string& name, const std::string& source,
                                 LoadCallback done);
  // Registers already-loaded `weights` under `name` now (replacing any older
  // object). InvalidArgument when they do not fit the pool.
  absl::StatusOr<AdapterId> Add(const std::string& name, const std::string& source,
                                std::shared_ptr<const AdapterWeights> weights);
  // NotFound when `name` is not loaded. Cancels nothing already accepted.
  absl::Status Unload(const std::string& name);
  // The current object of `name`; NotFound when none.
  absl::StatusOr<AdapterId> Lookup(const std::string& name) const;
  // (name, id) of every loaded adapter, sorted by name.
  std::vector<std::pair<std::string, AdapterId>> List() const;

  // Applies finished disk loads (publishing names, running callbacks).
  void Poll();
  // Host-tier loads finished since the last call (for the load metrics).
  std::vector<AdapterLoadEvent> TakeLoadEvents() { return std::move(load_events_); }

 private:
  struct Pending {
    std::string name;
    LoadCallback done;
  };
  explicit AdapterRegistry(const Options& options)
      : residency_(options.residency), host_(options.host) {}
  // Points `name` at `id`, retiring the object it pointed at before.
  void Publish(const std::string& name, AdapterId id);

  AdapterResidency* residency_;
  HostAdapterCache* host_;
  AdapterId next_id_ = 1;  // 0 is the base model
  absl::flat_hash_map<std::string, AdapterId> names_;
  absl::flat_hash_map<AdapterId, Pending> pending_;
  std::vector<AdapterLoadEvent> load_events_;
};

}  // namespace loraserve
