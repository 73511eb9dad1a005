#include "engine/adapter_catalog.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/status.h"

namespace loraserve {

absl::StatusOr<AdapterCatalog::LoadResult> AdapterCatalog::Load(const std::string& name,
                                                                const std::string& path) {
  if (name.empty()) {
    return absl::InvalidArgumentError("adapter name is empty (\"\" is the base model)");
  }
  if (path.empty()) return absl::InvalidArgumentError(absl::StrCat("adapter \"", name, "\": path is empty"));
  auto check_taken = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> std::optional<absl::StatusOr<LoadResult>> {
    auto it = by_name_.find(name);
    if (it == by_name_.end()) return std::nullopt;
    if (it->second.path == path) return LoadResult{it->second, /*already_loaded=*/true, nullptr};
    return absl::StatusOr<LoadResult>(absl::AlreadyExistsError(
        absl::StrCat("adapter \"", name, "\" is already loaded from ", it->second.path,
                     "; unload it before loading ", path)));
  };
  {
    absl::MutexLock lock(&mu_);
    if (auto taken = check_taken()) return *std::move(taken);
  }
  // The slow part, outside the lock, on the caller's thread.
  const absl::Time start = absl::Now();
  ASSIGN_OR_RETURN(std::unique_ptr<PeftAdapter> loaded,
                   PeftAdapter::Load(path, options_.base, options_.load));
  absl::MutexLock lock(&mu_);
  // Another caller may have loaded this name meanwhile.
  if (auto taken = check_taken()) return *std::move(taken);
  Entry e;
  e.name = name;
  e.path = path;
  e.key = next_key_++;
  std::shared_ptr<const PeftAdapter> adapter(std::move(loaded));
  e.ranks = adapter->ranks();
  e.target_modules = adapter->target_modules();
  e.bytes = adapter->bytes();
  e.loaded_at = absl::Now();
  LS_LOG(INFO) << "adapter \"" << name << "\" loaded from " << path << " (key " << e.key
               << ", max rank " << adapter->max_rank() << ", " << e.bytes << " bytes) in "
               << absl::FormatDuration(e.loaded_at - start);
  by_name_[name] = e;
  return LoadResult{std::move(e), false, std::move(adapter)};
}

absl::Status AdapterCatalog::Unload(const std::string& name) {
  absl::MutexLock lock(&mu_);
  auto it = by_name_.find(name);
  if (it == by_name_.end()) {
    return absl::NotFoundError(absl::StrCat("adapter \"", name, "\" is not loaded"));
  }
  LS_LOG(INFO) << "adapter \"" << name << "\" unloaded (key " << it->second.key << ")";
  by_name_.erase(it);
  return absl::OkStatus();
}

std::optional<AdapterCatalog::Entry> AdapterCatalog::Find(const std::string& name) const {
  absl::MutexLock lock(&mu_);
  auto it = by_name_.find(name);
  if (it == by_name_.end()) return std::nullopt;
  return it->second;
}

std::vector<AdapterCatalog::Entry> AdapterCatalog::List() const {
  std::vector<Entry> out;
  {
    absl::MutexLock lock(&mu_);
    out.reserve(by_name_.size());
    for (const auto& [name, e] : by_name_) out.push_back(e);
  }
  std::sort(out.begin(), out.end(), [](const Entry& a, const Entry& b) { return a.name < b.name; });
  return out;
}

int32_t AdapterCatalog::size() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int32_t>(by_name_.size());
}

AdapterDescription AdapterCatalog::Describe(const Entry& entry) {
  AdapterDescription d;
  d.name = entry.name;
  d.path = entry.path;
  for (int r : entry.ranks) d.ranks.push_back(r);
  for (LoraModule m : entry.target_modules) d.target_modules.emplace_back(LoraModuleName(m));
  d.bytes = entry.bytes;
  d.tier = AdapterTier::kHost;
  return d;
}

}  // namespace loraserve
