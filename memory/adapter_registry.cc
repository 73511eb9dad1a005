#include "memory/adapter_registry.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/status.h"

namespace loraserve {

absl::StatusOr<std::unique_ptr<AdapterRegistry>> AdapterRegistry::Create(
    const Options& options) {
  if (options.residency == nullptr || options.host == nullptr) {
    return absl::InvalidArgumentError("AdapterRegistry: residency and host cache are required");
  }
  return std::unique_ptr<AdapterRegistry>(new AdapterRegistry(options));
}

absl::StatusOr<AdapterId> AdapterRegistry::Load(const std::string& name,
                                                const std::string& source, LoadCallback done) {
  if (name.empty()) return absl::InvalidArgumentError("adapter name must not be empty");
  const AdapterId id = next_id_++;
  host_->Add(id, source, nullptr);
  pending_[id] = Pending{name, std::move(done)};
  host_->StartLoad(id);
  return id;
}

absl::StatusOr<AdapterId> AdapterRegistry::Add(const std::string& name,
                                               const std::string& source,
                                               std::shared_ptr<const AdapterWeights> weights) {
  if (name.empty()) return absl::InvalidArgumentError("adapter name must not be empty");
  if (weights == nullptr) return absl::InvalidArgumentError("no adapter weights");
  RETURN_IF_ERROR(residency_->CheckFits(*weights));
  const AdapterId id = next_id_++;
  host_->Add(id, source, std::move(weights));
  residency_->Register(id);
  Publish(name, id);
  return id;
}

void AdapterRegistry::Publish(const std::string& name, AdapterId id) {
  auto [it, inserted] = names_.try_emplace(name, id);
  if (!inserted) {
    const AdapterId old = it->second;
    it->second = id;
    residency_->Retire(old);
  }
}

absl::Status AdapterRegistry::Unload(const std::string& name) {
  auto it = names_.find(name);
  if (it == names_.end()) {
    return absl::NotFoundError(absl::StrCat("adapter \"", name, "\" is not loaded"));
  }
  const AdapterId id = it->second;
  names_.erase(it);
  residency_->Retire(id);
  return absl::OkStatus();
}

absl::StatusOr<AdapterId> AdapterRegistry::Lookup(const std::string& name) const {
  auto it = names_.find(name);
  if (it == names_.end()) {
    return absl::NotFoundError(absl::StrCat("adapter \"", name, "\" is not loaded"));
  }
  return it->second;
}

std::vector<std::pair<std::string, AdapterId>> AdapterRegistry::List() const {
  std::vector<std::pair<std::string, AdapterId>> out(names_.begin(), names_.end());
  std::sort(out.begin(), out.end());
  return out;
}

void AdapterRegistry::Poll() {
  for (const HostAdapterCache::LoadDone& d : host_->Poll()) {
    load_events_.push_back(
        AdapterLoadEvent{AdapterLoadEvent::Tier::kHost, d.id, d.status.ok(), d.seconds});
    auto it = pending_.find(d.id);
    if (it == pending_.end()) continue;  // a reload after host eviction
    Pending p = std::move(it->second);
    pending_.erase(it);
    absl::Status status = d.status;
    if (status.ok()) {
      status = residency_->CheckFits(*d.weights);
    }
    if (!status.ok()) {
      host_->Remove(d.id);
      if (p.done) p.done(AnnotateStatus(status, absl::StrCat("adapter \"", p.name, "\"")));
      continue;
    }
    residency_->Register(d.id);
    Publish(p.name, d.id);
    if (p.done) p.done(d.id);
  }
}

}  // namespace loraserve
