// AdapterCatalog: the adapters the engine serves, by name (the admin API's
// view): name -> its PEFT directory (the disk tier), its metadata (ranks,
// target modules, bytes) and its AdapterKey. It does NOT keep the weights:
// Load parses and validates the PEFT directory on the CALLER's thread
// (PeftAdapter::Load) outside the lock, so errors come back synchronously and
// admin loads never stall the engine loop, and hands the loaded object back
// to the caller (the engine puts it in its budgeted host cache). Unload
// removes the name at once; requests already accepted keep their AdapterKey
// (the residency keeps that object alive). A later load under the same name
// is a new object with a new key, so no request ever reads another adapter's
// weights.
//
// Owns: the name table.
// Called by: Engine (Submit lookups, LoadAdapter / UnloadAdapter /
// ListAdapters) from any thread. Thread-safe (one internal mutex).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "engine/adapters/peft_adapter.h"
#include "engine/engine_api.h"
#include "engine/model/model_config.h"
#include "engine/scheduler/sequence.h"

namespace loraserve {

class AdapterCatalog {
 public:
  struct Options {
    ModelConfig base;          // the model adapters must fit
    AdapterLoadOptions load;   // max_rank
  };
  struct Entry {
    std::string name;
    std::string path;
    AdapterKey key = kBaseModelAdapter;
    std::vector<int> ranks;                   // PeftAdapter::ranks()
    std::vector<LoraModule> target_modules;   // PeftAdapter::target_modules()
    size_t bytes = 0;                         // host bytes of the loaded copy
    absl::Time loaded_at = absl::InfinitePast();
  };
  struct LoadResult {
    Entry entry;
    bool already_loaded = false;
    // The freshly loaded object (null when already_loaded).
    std::shared_ptr<const PeftAdapter> loaded;
  };

  explicit AdapterCatalog(Options options) : options_(std::move(options)) {}
  AdapterCatalog(const AdapterCatalog&) = delete;
  AdapterCatalog& operator=(const AdapterCatalog&) = delete;

  // Loads `path` under `name`. Same name + same path: already_loaded (no
  // reload). A different path under a taken name: AlreadyExists. Empty name
  // or path: InvalidArgument. Loader errors are returned as they are
  // (InvalidArgument / NotFound / DataLoss naming the directory).
  absl::StatusOr<LoadResult> Load(const std::string& name, const std::string& path);
  // Removes `name`; NotFound when it is not loaded.
  absl::Status Unload(const std::string& name);
  // The adapter currently under `name`, or nullopt.
  std::optional<Entry> Find(const std::string& name) const;
  // Every loaded adapter, by name.
  std::vector<Entry> List() const;
  int32_t size() const;

  // The admin description of `entry` (tier, in_use, last_used left default).
  static AdapterDescription Describe(const Entry& entry);

 private:
  const Options options_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, Entry> by_name_ ABSL_GUARDED_BY(mu_);
  AdapterKey next_key_ ABSL_GUARDED_BY(mu_) = kBaseModelAdapter + 1;
};

}  // namespace loraserve
