#include "engine/engine_adapter_residency.h"

#include <utility>

#include "common/logging.h"

namespace loraserve {

bool EngineAdapterResidency::IsReady(AdapterKey adapter) const {
  absl::MutexLock lock(&mu_);
  return pinned_.contains(adapter);
}

void EngineAdapterResidency::Pin(AdapterKey key, const std::string& name,
                                 std::shared_ptr<const PeftAdapter> adapter) {
  if (key == kBaseModelAdapter) return;
  absl::MutexLock lock(&mu_);
  PinEntry& e = pinned_[key];
  if (e.pins == 0) {
    e.name = name;
    e.adapter = std::move(adapter);
  }
  ++e.pins;
  ++total_pins_;
  e.last_used = absl::Now();
}

void EngineAdapterResidency::Unpin(AdapterKey key) {
  if (key == kBaseModelAdapter) return;
  absl::MutexLock lock(&mu_);
  auto it = pinned_.find(key);
  LS_CHECK(it != pinned_.end() && it->second.pins > 0) << "unpin of unpinned adapter " << key;
  --total_pins_;
  if (--it->second.pins == 0) pinned_.erase(it);
}

void EngineAdapterResidency::SetPrefetch(std::vector<AdapterKey> keys) {
  prefetch_ = std::move(keys);
}

int32_t EngineAdapterResidency::InUse(AdapterKey key) const {
  absl::MutexLock lock(&mu_);
  auto it = pinned_.find(key);
  return it == pinned_.end() ? 0 : it->second.pins;
}

absl::Time EngineAdapterResidency::LastUsed(AdapterKey key) const {
  absl::MutexLock lock(&mu_);
  auto it = pinned_.find(key);
  return it == pinned_.end() ? absl::InfinitePast() : it->second.last_used;
}

int64_t EngineAdapterResidency::NumPins() const {
  absl::MutexLock lock(&mu_);
  return total_pins_;
}

std::vector<std::string> EngineAdapterResidency::Names(const std::vector<AdapterKey>& keys) const {
  std::vector<std::string> out;
  absl::MutexLock lock(&mu_);
  for (AdapterKey k : keys) {
    auto it = pinned_.find(k);
    if (it != pinned_.end()) out.push_back(it->second.name);
  }
  return out;
}

}  // namespace loraserve
